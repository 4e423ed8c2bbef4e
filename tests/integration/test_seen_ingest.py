"""What analysts have already seen does not alert again (issue 16, items 10 and 11).

On SQLite and PostgreSQL, with the real rules, through the daemon's pipeline polling
a loopback site (``tests.seed_copies``) and through ``service backfill``:

- a mirror of a seed, whose page carries a date banner ("OCTOBER 2024") and a
  donation widget ("$ 2,500 5,000 100"), is a duplicate of the seed: no events, no
  alerts (the near-duplicate fact rule reads the report's body, not furniture);
- the seed corpus's events are stored at import, marked as seed events, and another
  outlet's rewrite of a seed merges into them without alerting, even a subscriber
  that takes every event and every corroboration;
- what ``backfill`` imports without ``--alert`` is history: a later report of the same
  event merges into it without alerting; with ``--alert`` it is news.

The tests ask no more of the rules than that each seed has events and that a
rewrite's events are the seed's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service import models, store
from service.backfill import Backfill, BackfillOptions, BackfillSource, SourceKind, reextract
from service.config import Settings, load_settings
from service.corpus import read_manifest
from service.enums import AlertKind, EventProvenance
from service.events import EventType
from service.pipeline import Pipeline, PollOutcome, PollStatus
from service.rules import PROJECT_RULES, RuleSet, load_rules
from service.sandbox import Sandbox
from service.seeding import import_seeds
from service.sources import DateWindow
from tests.backends import BACKENDS
from tests.integration.test_store import EVENT
from tests.integration.test_store import article as stored_article
from tests.seed_copies import (
    REWRITES,
    SEED_MANIFEST,
    CopySite,
    Rewrite,
    rewrite_page,
    seed_doc,
    seed_docs,
)
from tests.servers import LoopbackServer

NOW = datetime(2024, 10, 12, 9, 0, tzinfo=UTC)

# A subscriber that takes everything: any event, any place, hedged or not, and
# every corroboration.  Nothing seen before may reach it.
EVERYTHING = """
[[webhooks]]
name = "everything"
url = "https://alerts.example/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
corroborated = true
[webhooks.filters]
movement_only = false
in_region_only = false
include_hedged = true
"""


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout=30) as box:
        yield box


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'service.db'}"
    else:
        url = postgres_databases.create()  # type: ignore[attr-defined]
    store.upgrade(url)
    return url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = store.create_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return store.session_factory(engine)


@pytest.fixture
def site() -> Iterator[CopySite]:
    with LoopbackServer() as server:
        yield CopySite(server)


@pytest.fixture
def settings(tmp_path: Path, database: str, site: CopySite) -> Settings:
    config = tmp_path / "service.toml"
    config.write_text(
        f'[database]\nurl = "{database}"\n\n[http]\nallow_private_networks = true\n'
        f"timeout_seconds = 10\n{EVERYTHING}",
        encoding="utf-8",
    )
    (tmp_path / "feeds.toml").write_text(
        f'[[feeds]]\nname = "copies"\nurl = "{site.feed_url}"\noutlet = "Copies"\n',
        encoding="utf-8",
    )
    return load_settings(config, environ={})


def seed(factory: sessionmaker[Session], rules: RuleSet, settings: Settings) -> dict[str, int]:
    """Import the seed corpus; its article ids by file name prefix ("001")."""
    with store.session_scope(factory) as session:
        import_seeds(session, seed_docs(), now=NOW, rules=rules, settings=settings.dedup)
        stored = store.list_articles(session, seeds_only=True)
    by_title = {article.title: article.id for article in stored}
    return {doc.file[:3]: by_title[doc.title] for doc in seed_docs()}


def poll(
    settings: Settings, factory: sessionmaker[Session], rules: RuleSet, sandbox: Sandbox
) -> PollOutcome:
    pipeline = Pipeline(settings, session_factory=factory, rules=rules, sandbox=sandbox)
    try:
        pipeline.sync_feeds()
        (outcome,) = pipeline.poll_all(now=NOW)
    finally:
        pipeline.close()
    assert outcome.status is PollStatus.OK, outcome.error
    return outcome


def events(factory: sessionmaker[Session]) -> list[store.StoredEvent]:
    with store.session_scope(factory) as session:
        return store.list_events(session)


def deliveries(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(models.Delivery)) or 0


def article_by_url(factory: sessionmaker[Session], url: str) -> store.StoredArticle:
    with store.session_scope(factory) as session:
        (article,) = [a for a in store.list_articles(session) if a.url == url]
    return article


# ------------------------------------------------------------------------ item 10


def test_a_mirror_of_a_seed_with_page_furniture_is_a_duplicate_of_it(
    factory: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
    site: CopySite,
) -> None:
    seeds = seed(factory, rules, settings)
    seen = events(factory)
    slug = site.add_mirror(seed_doc("001"))

    outcome = poll(settings, factory, rules, sandbox)

    assert (outcome.new_entries, outcome.articles, outcome.duplicates) == (1, 0, 1)
    mirror = article_by_url(factory, site.url(slug))
    assert mirror.duplicate_of == seeds["001"]
    assert "OCTOBER 2024" in mirror.text and "2,500" in mirror.text  # the furniture came along
    assert events(factory) == seen  # no event added, none corroborated
    assert deliveries(engine) == 0


def test_mirrors_of_every_seed_are_duplicates(
    factory: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
    site: CopySite,
) -> None:
    seeds = seed(factory, rules, settings)
    seen = events(factory)
    slugs = {doc.file[:3]: site.add_mirror(doc) for doc in seed_docs()}

    outcome = poll(settings, factory, rules, sandbox)

    assert (outcome.articles, outcome.duplicates) == (0, len(slugs))
    for prefix, slug in slugs.items():
        assert article_by_url(factory, site.url(slug)).duplicate_of == seeds[prefix], prefix
    assert events(factory) == seen
    assert deliveries(engine) == 0


# ------------------------------------------------------------------------ item 11


def test_the_seed_corpus_events_are_stored_as_already_seen(
    factory: sessionmaker[Session], settings: Settings, rules: RuleSet
) -> None:
    seeds = seed(factory, rules, settings)
    stored = events(factory)
    assert stored
    assert {e.provenance for e in stored} == {EventProvenance.SEED}
    reported = {article for e in stored for article in e.article_ids}
    assert reported == set(seeds.values())  # every seed has events, and only seeds

    with store.session_scope(factory) as session:  # a second import adds nothing
        again = import_seeds(session, seed_docs(), now=NOW, rules=rules, settings=settings.dedup)
    assert (again.added, again.skipped, again.events) == (0, 5, 0)
    assert events(factory) == stored


def test_seeds_stored_without_events_get_them_on_the_next_import(
    factory: sessionmaker[Session], engine: Engine, settings: Settings, rules: RuleSet
) -> None:
    """A database seeded by a release that did not extract the seeds' events."""
    seeds = seed(factory, rules, settings)
    with engine.begin() as connection:
        connection.execute(sa.delete(models.Event))
    assert events(factory) == []

    with store.session_scope(factory) as session:
        result = import_seeds(session, seed_docs(), now=NOW, rules=rules, settings=settings.dedup)
    assert (result.added, result.skipped) == (0, 5) and result.events > 0
    stored = events(factory)
    assert {a for e in stored for a in e.article_ids} == set(seeds.values())
    assert {e.provenance for e in stored} == {EventProvenance.SEED}


def test_events_extracted_later_point_into_the_stored_seed_text(
    factory: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    rules: RuleSet,
    tmp_path: Path,
) -> None:
    """A corpus re-saved with other spacing is the same seed corpus (same content hash):
    the events extracted then are read from the stored text, where their offsets point."""
    seed(factory, rules, settings)
    with engine.begin() as connection:
        connection.execute(sa.delete(models.Event))
    resaved = tmp_path / "resaved"
    resaved.mkdir()
    for doc in seed_docs():
        text = doc.path.read_text(encoding="utf-8")
        (resaved / doc.file).write_text("  " + text.replace("\n\n", "\n  \n"), "utf-8")
    shutil.copy(SEED_MANIFEST, resaved / "MANIFEST.json")

    with store.session_scope(factory) as session:
        docs = read_manifest(resaved / "MANIFEST.json")
        result = import_seeds(session, docs, now=NOW, rules=rules, settings=settings.dedup)
        assert (result.added, result.skipped) == (0, 5) and result.events > 0
        checked = 0
        for article in store.list_articles(session, seeds_only=True):
            for linked in store.article_events(session, article.id):
                span = article.text[linked.evidence_start : linked.evidence_end]
                assert span == linked.event.evidence.text
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("rewrite", REWRITES, ids=lambda r: r.seed)
def test_a_rewrite_of_a_seed_merges_into_its_events_and_alerts_nobody(
    rewrite: Rewrite,
    factory: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
    site: CopySite,
) -> None:
    seeds = seed(factory, rules, settings)
    seen = {e.id: e for e in events(factory)}
    slug = site.add_rewrite(rewrite)

    outcome = poll(settings, factory, rules, sandbox)

    assert (outcome.articles, outcome.duplicates) == (1, 0)  # other words: not a duplicate
    article = article_by_url(factory, site.url(slug))
    after = {e.id: e for e in events(factory)}
    assert set(after) == set(seen)  # no new event
    merged = [e for e in after.values() if article.id in e.article_ids]
    assert merged, "the rewrite's events merge into the seed's"
    for event in merged:
        assert seeds[rewrite.seed] in event.article_ids
        assert event.sources_count == seen[event.id].sources_count + 1
        assert event.provenance is EventProvenance.SEED  # still already seen
    assert deliveries(engine) == 0


# A report first imported as history, then reported again by a feed.
OLD_REPORT = (
    "On April 28, 2024, Iranian-backed militias sent a convoy of reinforcements to "
    "al-Quriyah in the eastern Deir Ezzor countryside, local sources said.",
    "Residents said the fighters took over two houses near the river bank and set up a "
    "checkpoint on the road to the bridge.",
)
LATER_REPORT = Rewrite(
    "",
    "quriyah-fighters",
    "Militia fighters in al-Quriyah",
    (
        "Fighters of pro-Iranian groups arrived in al-Quriyah from al-Mayadin on April 28, "
        "2024 in 12 vehicles, according to a correspondent in the area.",
        "The men moved into farmland east of the town, where they unloaded weapons and "
        "ammunition crates.",
    ),
    datetime(2024, 10, 11, 15, 0, tzinfo=UTC),
)


def old_page(server: LoopbackServer) -> str:
    page = rewrite_page(
        Rewrite(
            "", "old", "Convoy reaches al-Quriyah", OLD_REPORT, datetime(2024, 4, 29, tzinfo=UTC)
        )
    )
    server.static("/archive/quriyah-convoy", page, content_type="text/html; charset=utf-8")
    return server.url("/archive/quriyah-convoy")


@pytest.mark.parametrize("alert", [False, True], ids=["history", "with-alert"])
def test_backfilled_history_absorbs_later_reports_without_alerting(
    alert: bool,
    factory: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    rules: RuleSet,
    sandbox: Sandbox,
    site: CopySite,
) -> None:
    url = old_page(site.server)
    pipeline = Pipeline(settings, session_factory=factory, rules=rules, sandbox=sandbox)
    try:
        result = Backfill(pipeline, now=lambda: NOW).run(
            BackfillSource(SourceKind.URLS, "old.txt", urls=(url,)),
            BackfillOptions(alert=alert),
        )
    finally:
        pipeline.close()
    assert result.counts.stored == 1 and not result.failures
    (history,) = events(factory)
    expected = EventProvenance.NEWS if alert else EventProvenance.HISTORY
    assert history.provenance is expected
    alerted = deliveries(engine)
    assert (alerted > 0) is alert  # --alert: news, alerted; else history, not

    site.add_rewrite(LATER_REPORT)
    outcome = poll(settings, factory, rules, sandbox)

    assert outcome.articles == 1
    (merged,) = events(factory)  # the later report merged into it
    assert merged.id == history.id and merged.sources_count == 2
    assert merged.provenance is expected
    if alert:  # news: the subscriber asked for corroborations
        assert deliveries(engine) > alerted
    else:  # history: nobody hears of it, now or later
        assert deliveries(engine) == 0


def test_reextract_with_unchanged_rules_leaves_the_seed_events_alone(
    factory: sessionmaker[Session], settings: Settings, rules: RuleSet, sandbox: Sandbox
) -> None:
    """Seeds are re-extracted too; the import reads them as re-extraction does."""
    seed(factory, rules, settings)
    stored = events(factory)
    pipeline = Pipeline(settings, session_factory=factory, rules=rules, sandbox=sandbox)
    try:
        shown = reextract(pipeline, window=DateWindow(), apply=True, now=NOW)
    finally:
        pipeline.close()
    assert shown.articles == 5 and shown.diffs == ()
    assert events(factory) == stored


def test_an_event_updated_by_reextraction_keeps_its_provenance(session: Session) -> None:
    article_id = store.add_article(session, stored_article())
    store.store_events(session, article_id, [EVENT], now=NOW, provenance=EventProvenance.SEED)
    [before] = store.article_events(session, article_id)

    store.apply_event_diff(
        session,
        article_id,
        removed=[],
        changed=[(before.event_id, replace(EVENT, date="2020-01-21"))],
        added=[replace(EVENT, type=EventType.WITHDRAWAL)],
        now=NOW,
    )
    session.expire_all()
    by_id = {e.id: e for e in store.list_events(session)}
    assert by_id[before.event_id].event.date == "2020-01-21"
    assert by_id[before.event_id].provenance is EventProvenance.SEED
    (added,) = [e for e in by_id.values() if e.id != before.event_id]
    assert added.provenance is EventProvenance.HISTORY  # re-extraction adds no news


@pytest.mark.parametrize("provenance", [EventProvenance.SEED, EventProvenance.HISTORY])
def test_no_alert_is_queued_for_an_event_seen_before(
    session: Session, provenance: EventProvenance, tmp_path: Path
) -> None:
    config = tmp_path / "service.toml"
    config.write_text(EVERYTHING, encoding="utf-8")
    (tmp_path / "feeds.toml").write_text("", encoding="utf-8")
    subscribers = load_settings(config, environ={}).webhooks

    first = store.add_article(session, stored_article())
    (old,) = store.store_events(session, first, [EVENT], now=NOW, provenance=provenance)
    second = store.add_article(session, stored_article(url="https://other.example/r"))
    (again,) = store.store_events(session, second, [EVENT], now=NOW)  # news corroborates it
    assert (again.event_id, again.created) == (old.event_id, False)
    items = [(old.event_id, AlertKind.CREATED), (again.event_id, AlertKind.CORROBORATED)]
    assert store.enqueue_deliveries(session, items, subscribers, now=NOW) == 0

    third = store.add_article(session, stored_article(url="https://third.example/r"))
    (news,) = store.store_events(session, third, [replace(EVENT, date="2021-01-01")], now=NOW)
    assert news.created  # another day: another event, and news
    queued = store.enqueue_deliveries(
        session, [(news.event_id, AlertKind.CREATED)], subscribers, now=NOW
    )
    assert queued == 1
