"""Deduplication through ``Pipeline.ingest`` on SQLite and PostgreSQL, with the real rules.

The seed corpus is the baseline: reposts of each seed (re-scraped with and without
reader comments, served from a mirror domain, trimmed) are stored as duplicates of
it and produce no events; a rewrite of a report in other words is a new article
whose event corroborates the first report's; look-alike reports stay distinct; a
restarted pipeline rebuilds its index from stored signatures; a second pipeline on
the same database (another replica) sees what the first stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from service import dedup, models, store
from service.config import Settings, load_settings
from service.corpus import ManifestDoc, read_manifest
from service.enums import ArticleOrigin
from service.hashing import content_hash
from service.pipeline import IngestStatus, Pipeline, Report
from service.rules import PROJECT_RULES, RuleSet, load_rules
from service.sandbox import Sandbox
from service.seeding import import_seeds
from tests.backends import BACKENDS

NOW = datetime(2024, 6, 12, 9, 0, tzinfo=UTC)
SEEDS = Path(__file__).resolve().parents[2] / "corpus" / "seeds" / "MANIFEST.json"
# Where the reader comments start in the seeds that carry them.
COMMENTS_START = {
    "000_86bcaa15ba192ac0.txt": "  • Jens Holm",
    "001_643cc20e54ec1169.txt": "These guys need to be careful",
}


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1, timeout=20) as box:
        yield box


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "service.toml"
    config.write_text('[database]\nurl = "sqlite:///unused.db"\n')
    (tmp_path / "feeds.toml").write_text("")
    return load_settings(config, environ={})


@pytest.fixture(params=BACKENDS)
def factory(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object
) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dedup.db'}"
    else:
        url = postgres_databases.create()  # type: ignore[attr-defined]
    store.upgrade(url)
    engine = store.create_engine(url)
    yield store.session_factory(engine)
    engine.dispose()


@pytest.fixture
def seeds(factory: sessionmaker[Session], settings: Settings, rules: RuleSet) -> dict[str, int]:
    docs = read_manifest(SEEDS)
    with store.session_scope(factory) as session:
        import_seeds(session, docs, now=NOW, rules=rules, settings=settings.dedup)
        stored = store.list_articles(session, seeds_only=True)
    return {doc.file: article.id for doc, article in zip(docs, stored, strict=True)}


def pipeline(
    settings: Settings, factory: sessionmaker[Session], rules: RuleSet, sandbox: Sandbox
) -> Pipeline:
    return Pipeline(settings, session_factory=factory, rules=rules, sandbox=sandbox)


def report(text: str, url: str | None, *, published: datetime = NOW) -> Report:
    return Report(
        text=text,
        title=None,
        url=url,
        outlet="Repost Outlet",
        published=published,
        published_is_estimate=False,
        origin_kind=ArticleOrigin.FEED,
    )


def clean(doc: ManifestDoc) -> str:
    """The seed's article without reader comments."""
    text = doc.path.read_text(encoding="utf-8")
    marker = COMMENTS_START.get(doc.file)
    return text[: text.index(marker)].rstrip() if marker else text


def comments() -> str:
    seed = read_manifest(SEEDS)[0]
    text = seed.path.read_text(encoding="utf-8")
    return text[text.index(COMMENTS_START[seed.file]) :]


def reflow(text: str) -> str:
    """Another scraper's spacing and line breaks."""
    return re.sub(r"\s+", lambda m: "\n\n" if "\n" in m.group() else " ", text).strip()


def trimmed(text: str) -> str:
    """The first 60% of the paragraphs, as an aggregator excerpt."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    return "\n\n".join(paragraphs[: max(2, len(paragraphs) * 6 // 10)])


def variants(doc: ManifestDoc) -> dict[str, tuple[str, str]]:
    """Reposts of one seed: name -> (text, url)."""
    body = clean(doc)
    slug = doc.file.removesuffix(".txt")
    with_comments = (
        doc.path.read_text(encoding="utf-8") + "\n\n  • New Reader\n\n    Good report."
        if doc.file in COMMENTS_START
        else body + "\n\n" + comments()
    )
    header_dropped = body.split("\n", 1)[1] if doc.file not in COMMENTS_START else body
    return {
        "rescraped-with-comments": (reflow(with_comments), f"https://scrape.example/{slug}"),
        "rescraped-without-comments": (header_dropped, f"https://clean.example/{slug}"),
        "mirrored": (body, f"http://www.southfront.press/{slug}/?utm_source=rss"),
        "trimmed": (trimmed(body), f"https://aggregator.example/{slug}?ref=feed"),
    }


@pytest.mark.parametrize("doc", read_manifest(SEEDS), ids=lambda d: d.file[:3])
def test_reposts_of_each_seed_are_duplicates(
    doc: ManifestDoc,
    seeds: dict[str, int],
    factory: sessionmaker[Session],
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
) -> None:
    pipe = pipeline(settings, factory, rules, sandbox)
    with store.session_scope(factory) as session:
        seed_events = store.count_events(session)
    for name, (text, url) in variants(doc).items():
        result = pipe.ingest(report(text, url), now=NOW)
        assert result.status is IngestStatus.DUPLICATE, name
        assert result.duplicate_of == seeds[doc.file], name
        assert result.events == 0 and result.similarity is not None
        assert result.similarity >= settings.dedup.containment_threshold, name
    with store.session_scope(factory) as session:
        assert store.count_events(session) == seed_events  # duplicates produce no events
        dups = store.list_articles(session, duplicates_only=True)
    assert len(dups) == 4
    assert {d.duplicate_of for d in dups} == {seeds[doc.file]}


def test_comments_make_jaccard_fail_and_containment_catch(seeds: dict[str, int]) -> None:
    from service.dedup import similarity

    doc = read_manifest(SEEDS)[0]
    sim = similarity(clean(doc), doc.path.read_text(encoding="utf-8"), 3)
    assert sim.jaccard < 0.2 < 0.95 < sim.containment


def test_exact_url_forms_and_wordpress_permalink(
    factory: sessionmaker[Session], settings: Settings, rules: RuleSet, sandbox: Sandbox
) -> None:
    pipe = pipeline(settings, factory, rules, sandbox)
    first = Report(
        text="Regime forces opened a new checkpoint near the bridge. " * 3,
        title=None,
        url="https://southfront.org/regime-checkpoint-bridge/",
        outlet="SouthFront",
        published=NOW,
        published_is_estimate=False,
        origin_kind=ArticleOrigin.FEED,
        guid="https://southfront.org/?p=71234",
    )
    stored = pipe.ingest(first, now=NOW)
    assert stored.status is IngestStatus.STORED
    # Other URL forms of the same article, with a page that changed since.
    for url in (
        "http://www.southfront.press/regime-checkpoint-bridge?utm_source=rss&doing_wp_cron=1.5",
        "https://southfront.org/?p=71234",
        "https://southfront.org/regime-checkpoint-bridge/#comments",
    ):
        result = pipe.ingest(report("An updated page text, nothing alike.", url), now=NOW)
        assert result.status is IngestStatus.DUPLICATE, url
        assert (result.duplicate_of, result.similarity) == (stored.article_id, 1.0)
    # The very same URL cannot take a second row: reported, not stored.
    again = pipe.ingest(report("Other text.", first.url), now=NOW)
    assert again.status is IngestStatus.DUPLICATE and again.article_id is None


CONVOY = (
    "On June 3, a large convoy of Iranian-backed Liwa Fatemiyoun arrived in the town of "
    "al-Mayadin in the southern Deir Ezzor countryside, according to the Syrian "
    "Observatory for Human Rights. The convoy came from al-Heri on the border with Iraq. "
    "Residents said the vehicles settled in farmland east of the town and that new "
    "checkpoints went up on the road to the river during the night."
)
REWRITE = (
    "Local sources told our correspondent that fighters of the Afghan Fatemiyoun "
    "brigade, loyal to Iran, reached al-Mayadin on June 3 in 30 vehicles. The group "
    "had been stationed near the Iraqi border before the move, the sources added, "
    "and the fighters were seen unloading weapons in orchards outside the city."
)
SECOND_CONVOY = (
    "On June 10, another convoy of Iranian-backed Liwa Fatemiyoun arrived in "
    "al-Mayadin, SOHR said. Witnesses counted trucks carrying ammunition crates and "
    "said the fighters moved into a school building on the edge of the city."
)


def events(factory: sessionmaker[Session]) -> list[store.StoredEvent]:
    with store.session_scope(factory) as session:
        return store.list_events(session)


def test_rewrite_corroborates_and_lookalikes_stay_distinct(
    factory: sessionmaker[Session], settings: Settings, rules: RuleSet, sandbox: Sandbox
) -> None:
    pipe = pipeline(settings, factory, rules, sandbox)
    published = datetime(2024, 6, 4, 8, 0, tzinfo=UTC)
    first = pipe.ingest(report(CONVOY, "https://sohr.example/a", published=published), now=NOW)
    assert first.status is IngestStatus.STORED and first.events >= 1
    assert all(w.created for w in first.writes)

    rewrite = pipe.ingest(report(REWRITE, "https://wire.example/b", published=published), now=NOW)
    assert rewrite.status is IngestStatus.STORED  # different words: not a duplicate
    assert [w.created for w in rewrite.writes] == [False]  # it corroborates
    (merged,) = [e for e in events(factory) if e.id == rewrite.writes[0].event_id]
    assert merged.sources_count == 2
    assert set(merged.article_ids) == {first.article_id, rewrite.article_id}
    assert merged.event.quantities.get("vehicles") == 30  # the rewrite's detail
    assert merged.event.date == "2024-06-03"

    later = pipe.ingest(
        report(
            SECOND_CONVOY, "https://sohr.example/c", published=datetime(2024, 6, 11, tzinfo=UTC)
        ),
        now=NOW,
    )
    assert later.status is IngestStatus.STORED
    assert all(w.created for w in later.writes)  # June 10 is another convoy
    deployments = [e for e in events(factory) if e.event.type.value == "deployment"]
    assert sorted(e.event.date or "" for e in deployments) == ["2024-06-03", "2024-06-10"]


def test_withdrawal_then_redeployment_stay_distinct(
    factory: sessionmaker[Session], settings: Settings, rules: RuleSet, sandbox: Sandbox
) -> None:
    pipe = pipeline(settings, factory, rules, sandbox)
    withdrawal = (
        "Russian forces withdrew from their positions in al-Mayadin on May 20, "
        "local sources said. Trucks loaded with equipment left the city before dawn."
    )
    redeployment = (
        "Russian forces deployed again in al-Mayadin on May 28, a week after leaving, "
        "local sources said. Armoured vehicles entered the city from the west."
    )
    a = pipe.ingest(
        report(withdrawal, "https://a.example/1", published=datetime(2024, 5, 21, tzinfo=UTC)),
        now=NOW,
    )
    b = pipe.ingest(
        report(redeployment, "https://b.example/2", published=datetime(2024, 5, 29, tzinfo=UTC)),
        now=NOW,
    )
    assert a.status is b.status is IngestStatus.STORED
    assert a.writes and b.writes
    assert all(w.created for w in (*a.writes, *b.writes))
    assert all(e.sources_count == 1 for e in events(factory))


def test_restart_rebuilds_the_index_and_replicas_see_each_other(
    seeds: dict[str, int],
    factory: sessionmaker[Session],
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
) -> None:
    first = pipeline(settings, factory, rules, sandbox)
    stored = first.ingest(report(CONVOY, "https://sohr.example/a"), now=NOW)
    assert stored.status is IngestStatus.STORED

    # A replica started now builds its index from the stored signatures ...
    other = pipeline(settings, factory, rules, sandbox)
    assert other.rebuild_index() == len(seeds) + 1
    repost = other.ingest(report(CONVOY + " Share this.", "https://copy.example/a"), now=NOW)
    assert repost.status is IngestStatus.DUPLICATE
    assert repost.duplicate_of == stored.article_id

    # ... and the first one folds in what the replica stored since.
    fresh = other.ingest(report(SECOND_CONVOY, "https://sohr.example/c"), now=NOW)
    assert fresh.status is IngestStatus.STORED
    seen = first.ingest(report(SECOND_CONVOY, "https://mirror.example/c"), now=NOW)
    assert seen.status is IngestStatus.DUPLICATE and seen.duplicate_of == fresh.article_id


def _store_with_id(
    factory: sessionmaker[Session], settings: Settings, article_id: int, text: str, url: str
) -> None:
    """An article and its signature committed by another writer, with its own id."""
    with store.session_scope(factory) as session:
        session.add(
            models.Article(
                id=article_id,
                text=text,
                content_hash=content_hash(text),
                origin_kind=ArticleOrigin.FEED,
                fetched=NOW,
                url=url,
            )
        )
        session.flush()
        store.add_signature(session, article_id, dedup.signature(text, settings.dedup))


def test_a_signature_committed_late_below_the_highest_id_is_folded_in(
    seeds: dict[str, int],
    factory: sessionmaker[Session],
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
) -> None:
    """Ids are taken at insert and seen at commit: one can turn up below the highest."""
    pipe = pipeline(settings, factory, rules, sandbox)
    first = pipe.ingest(report(REWRITE, "https://sohr.example/r"), now=NOW)
    assert first.status is IngestStatus.STORED and first.article_id is not None
    _store_with_id(factory, settings, first.article_id + 20, CONVOY, "https://late.example/1")
    # The pipeline looks (and folds in the article above its highest id) ...
    pipe.ingest(report(CONVOY + " Share this.", "https://copy.example/1"), now=NOW)
    assert pipe.index.last_id >= first.article_id + 20
    # ... then an article with a lower id is committed.
    _store_with_id(
        factory, settings, first.article_id + 10, SECOND_CONVOY, "https://late.example/2"
    )
    repost = pipe.ingest(report(SECOND_CONVOY + " Share this.", "https://copy.example/2"), now=NOW)
    assert repost.status is IngestStatus.DUPLICATE
    assert repost.duplicate_of == first.article_id + 10


def test_articles_stored_before_signatures_are_signed(
    factory: sessionmaker[Session], settings: Settings, rules: RuleSet, sandbox: Sandbox
) -> None:
    """Articles from before the dedup migration get a signature on first use."""
    with store.session_scope(factory) as session:
        old = store.add_article(
            session,
            store.NewArticle(
                text=CONVOY,
                content_hash="not-the-hash-of-the-text",
                origin_kind=ArticleOrigin.FEED,
                fetched=NOW,
                url="https://old.example/a",
            ),
        )
    pipe = pipeline(settings, factory, rules, sandbox)
    result = pipe.ingest(report(CONVOY.replace("large", "big"), "https://n.example/a"), now=NOW)
    assert result.status is IngestStatus.DUPLICATE and result.duplicate_of == old
    with store.session_scope(factory) as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(models.ArticleSignature))
    assert count == 2
