"""``service backfill`` end to end: a loopback outlet (paged feed archive, sitemaps,
article pages) and temp directories, through the real pipeline and rules, on SQLite
and PostgreSQL.  Each source kind stores its reports once; a second run stores
nothing; a stopped run resumes; --reextract shows and applies a rule change."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service import models, store
from service.backfill import (
    Backfill,
    BackfillOptions,
    BackfillResult,
    BackfillSource,
    Counts,
    ItemOutcome,
    SourceKind,
    reextract,
)
from service.config import load_settings
from service.enums import ArticleOrigin, BackfillItemStatus
from service.pipeline import Pipeline
from service.rules import PROJECT_RULES, RuleSet, load_rules
from service.sandbox import Sandbox
from service.sources import DateWindow
from tests.backends import BACKENDS
from tests.servers import LoopbackServer, Request, Response

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MakePipeline = Callable[..., Pipeline]


@dataclass(frozen=True)
class Story:
    slug: str
    title: str
    text: str
    published: datetime


STORIES = [
    Story(
        "convoy-mayadin",
        "Convoy reaches the city",
        "Iranian-backed militias sent reinforcements to al-Mayadin on Monday, local sources "
        "said. A convoy of 15 vehicles carrying fighters and rocket launchers arrived in the "
        "city from al-Bukamal.",
        datetime(2024, 4, 6, 9, 0, tzinfo=UTC),
    ),
    Story(
        "position-quriyah",
        "New position on the river road",
        "Regime forces established a new military position in al-Quriyah, installing "
        "artillery and anti-aircraft guns, according to residents.",
        datetime(2024, 4, 5, 9, 0, tzinfo=UTC),
    ),
    Story(
        "dhiban-checkpoint",
        "Checkpoint changes hands",
        "SDF fighters took over a checkpoint in Dhiban after clashes with tribal gunmen on "
        "Sunday, residents said.",
        datetime(2024, 4, 4, 9, 0, tzinfo=UTC),
    ),
    Story(
        "russian-withdrawal",
        "Withdrawal from city positions",
        "Russian forces withdrew from their positions near the airport in Deir Ezzor city "
        "yesterday and moved the equipment to Qamishli.",
        datetime(2024, 4, 3, 9, 0, tzinfo=UTC),
    ),
    Story(
        "fatemiyoun-bukamal",
        "Fatemiyoun fighters redeploy",
        "Liwa Fatemiyoun redeployed dozens of fighters to al-Bukamal last week, according to "
        "a local correspondent.",
        datetime(2024, 4, 2, 9, 0, tzinfo=UTC),
    ),
    Story(
        "hezbollah-mayadin",
        "New headquarters",
        "Lebanese Hezbollah set up a new headquarters in al-Mayadin, in a school building "
        "near the old market, residents reported on Tuesday.",
        datetime(2024, 4, 1, 9, 0, tzinfo=UTC),
    ),
]
PER_PAGE = 2


def page_html(story: Story) -> bytes:
    paragraphs = [
        story.text,
        "Residents said the roads were quiet during the night and that shops opened as "
        "usual in the morning, while the monitor could not confirm further details.",
    ]
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f"<html><head><title>{escape(story.title)}</title></head><body>"
        f'<nav><a href="/">Home</a></nav><article><h1>{escape(story.title)}</h1>'
        f"<p>{story.published:%B %d, %Y}</p>{body}</article>"
        "<footer>Valley Monitor</footer></body></html>"
    ).encode()


class Outlet:
    """A WordPress-like site on 127.0.0.1: /feed/?paged=N, sitemaps, one page per story."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.missing: set[str] = set()  # slugs whose page answers 404
        server.route("/feed/", self._feed)
        for story in STORIES:
            server.route(f"/r/{story.slug}", self._page(story))
        half = len(STORIES) // 2
        server.static(
            "/sitemap_index.xml",
            self._index(["/sitemap-1.xml", "/sitemap-2.xml.gz", "/sitemap-gone.xml"]),
            content_type="application/xml",
        )
        server.static("/sitemap-1.xml", self._urlset(STORIES[:half]), content_type="text/xml")
        server.static(
            "/sitemap-2.xml.gz",
            gzip.compress(self._urlset(STORIES[half:])),
            content_type="application/x-gzip",
        )

    def url(self, path: str) -> str:
        return self.server.url(path)

    def page_url(self, story: Story) -> str:
        return self.url(f"/r/{story.slug}")

    def feed_pages_requested(self) -> list[int]:
        pages = []
        for request in self.server.requests:
            parts = urlsplit(request.path)
            if parts.path == "/feed/":
                pages.append(int(parse_qs(parts.query).get("paged", ["1"])[0]))
        return pages

    def _feed(self, request: Request) -> Response:
        page = int(parse_qs(urlsplit(request.path).query).get("paged", ["1"])[0])
        chunk = STORIES[(page - 1) * PER_PAGE : page * PER_PAGE]
        if not chunk:
            return Response(404, {"Content-Type": "text/html"}, b"<html>Page not found</html>")
        items = "".join(
            f"<item><guid>{self.page_url(s)}</guid><link>{self.page_url(s)}</link>"
            f"<title>{escape(s.title)}</title>"
            f"<pubDate>{format_datetime(s.published, usegmt=True)}</pubDate>"
            f"<description>{escape(s.text)}</description></item>"
            for s in chunk
        )
        body = f'<rss version="2.0"><channel><title>Valley</title>{items}</channel></rss>'
        return Response(200, {"Content-Type": "application/rss+xml"}, body.encode())

    def _page(self, story: Story) -> object:
        def handler(_request: Request) -> Response:
            if story.slug in self.missing:
                return Response(404, {"Content-Type": "text/html"}, b"gone")
            return Response(200, {"Content-Type": "text/html; charset=utf-8"}, page_html(story))

        return handler

    def _index(self, paths: list[str]) -> bytes:
        entries = "".join(f"<sitemap><loc>{self.url(p)}</loc></sitemap>" for p in paths)
        return (
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{entries}</sitemapindex>"
        ).encode()

    def _urlset(self, stories: list[Story]) -> bytes:
        entries = "".join(
            f"<url><loc>{self.page_url(s)}</loc><lastmod>{s.published:%Y-%m-%d}</lastmod></url>"
            for s in stories
        )
        return (
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
        ).encode()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout=30) as box:
        yield box


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    with LoopbackServer() as server:
        yield Outlet(server)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object) -> str:
    backend: str = request.param
    if backend == "sqlite":
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


def write_config(
    directory: Path, database_url: str, feed_url: str | None = None, extra: str = ""
) -> Path:
    config = directory / "service.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n\n[http]\nallow_private_networks = true\n'
        "timeout_seconds = 10\n" + extra,
        encoding="utf-8",
    )
    feeds = ""
    if feed_url:
        feeds = f'[[feeds]]\nname = "valley"\nurl = "{feed_url}"\noutlet = "Valley Monitor"\n'
    (directory / "feeds.toml").write_text(feeds, encoding="utf-8")
    return config


@pytest.fixture
def make_pipeline(
    tmp_path: Path, database: str, engine: Engine, rules: RuleSet, sandbox: Sandbox, outlet: Outlet
) -> Iterator[MakePipeline]:
    made: list[Pipeline] = []

    def make(rule_set: RuleSet | None = None, extra_config: str = "") -> Pipeline:
        settings = load_settings(
            write_config(tmp_path, database, outlet.url("/feed/"), extra_config), environ={}
        )
        pipeline = Pipeline(
            settings,
            session_factory=store.session_factory(engine),
            rules=rule_set or rules,
            sandbox=sandbox,
        )
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


def run(pipeline: Pipeline, source: BackfillSource, **options: object) -> BackfillResult:
    return Backfill(pipeline, now=lambda: NOW).run(source, BackfillOptions(**options))  # type: ignore[arg-type]


def articles(engine: Engine) -> list[models.Article]:
    with engine.connect() as connection:
        query = sa.select(models.Article).order_by(models.Article.id)
        return list(connection.execute(query))  # type: ignore[arg-type]


def url_counts(engine: Engine) -> dict[str | None, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(models.Article.url, sa.func.count()).group_by(models.Article.url)
        )
        return {url: n for url, n in rows}


def event_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(models.Event)) or 0


# ------------------------------------------------------------------------------ sources


def test_feed_archive_walks_back_to_since_then_a_rerun_stores_nothing(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine
) -> None:
    pipeline = make_pipeline()
    source = BackfillSource(SourceKind.FEED, "valley")
    result = run(pipeline, source, window=DateWindow(since=date(2024, 4, 3)))

    # Page 2 still reaches --since, page 3 is all older: the walk stops there.
    assert outlet.feed_pages_requested() == [1, 2, 3]
    assert result.counts.stored == 4 and result.counts.skipped == 2
    assert result.counts.events > 0 and not result.failures and not result.interrupted
    rows = articles(engine)
    assert {r.url for r in rows} == {outlet.page_url(s) for s in STORIES[:4]}
    assert {r.origin_kind for r in rows} == {ArticleOrigin.BACKFILL}
    assert all(r.feed_id is not None and r.outlet == "Valley Monitor" for r in rows)
    convoy = next(r for r in rows if r.url.endswith("convoy-mayadin"))
    assert convoy.published == STORIES[0].published
    assert "Home" not in convoy.text  # the page went through article extraction
    events_before = event_count(engine)
    assert events_before == result.counts.events

    again = run(make_pipeline(), source, window=DateWindow(since=date(2024, 4, 3)))
    assert again.counts.stored == 0 and again.resumed
    assert again.counts.settled == 6

    # The whole archive, a new run: walks to the 404 past the last page, stores the rest.
    outlet.server.requests.clear()
    full = run(make_pipeline(), source)
    assert outlet.feed_pages_requested() == [1, 2, 3, 4]
    assert full.counts.stored == 2 and full.counts.duplicates == 4
    assert set(url_counts(engine).values()) == {1} and len(articles(engine)) == 6


def test_sitemap_index_with_gzip_child_and_a_missing_one(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine
) -> None:
    source = BackfillSource(SourceKind.SITEMAP, outlet.url("/sitemap_index.xml"))
    result = run(make_pipeline(), source, outlet="Valley Monitor")
    assert result.counts.stored == len(STORIES)
    assert [f.item for f in result.failures] == [outlet.url("/sitemap-gone.xml")]
    assert "404" in result.failures[0].error
    rows = articles(engine)
    assert len(rows) == len(STORIES)
    # The page's own date is the publication date (lastmod is only a hint).
    assert {r.published.date() for r in rows} == {s.published.date() for s in STORIES}

    since = run(make_pipeline(), source, window=DateWindow(since=date(2024, 4, 5)))
    assert since.counts.stored == 0
    assert since.counts.duplicates == 2 and since.counts.skipped == 4  # lastmod before --since


def test_url_list_failures_are_listed_and_retried(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine
) -> None:
    outlet.missing.add("dhiban-checkpoint")
    urls = tuple(outlet.page_url(s) for s in STORIES[:3])
    source = BackfillSource(SourceKind.URLS, "list.txt", urls=urls)
    result = run(make_pipeline(), source, concurrency=3)
    assert result.counts.stored == 2 and result.counts.failed == 1
    assert [f.item for f in result.failures] == [outlet.page_url(STORIES[2])]
    assert "HTTP 404" in result.failures[0].error

    outlet.missing.clear()
    again = run(make_pipeline(), source)
    assert again.resumed
    assert (again.counts.settled, again.counts.stored, again.counts.failed) == (2, 1, 0)
    assert len(articles(engine)) == 3


def test_stored_urls_are_not_fetched_again_by_another_list(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches: the stored URLs are looked up over several queries.
    monkeypatch.setattr(Backfill, "KNOWN_BATCH", 2)
    first = tuple(outlet.page_url(s) for s in STORIES[:3])
    stored = run(make_pipeline(), BackfillSource(SourceKind.URLS, "a.txt", urls=first))
    assert stored.counts.stored == 3

    outlet.server.requests.clear()
    both = tuple(outlet.page_url(s) for s in STORIES[:5])
    result = run(
        make_pipeline(), BackfillSource(SourceKind.URLS, "b.txt", urls=both), concurrency=2
    )
    assert not result.resumed  # another list: a run of its own
    assert (result.counts.duplicates, result.counts.stored) == (3, 2)
    fetched = {outlet.server.url(request.path) for request in outlet.server.requests}
    assert fetched == set(both[3:])
    assert set(url_counts(engine).values()) == {1} and len(articles(engine)) == 5


def test_directory_with_manifest_then_nothing_new(
    make_pipeline: MakePipeline, engine: Engine, tmp_path: Path
) -> None:
    reports = tmp_path / "saved"
    reports.mkdir()
    (reports / "convoy.html").write_bytes(page_html(STORIES[0]))
    (reports / "quriyah.txt").write_text(STORIES[1].text, encoding="utf-8")
    (reports / "MANIFEST.json").write_text(
        '{"documents": [{"file": "quriyah.txt", "outlet": "SOHR", "title": "Quriyah",'
        ' "published": "2024-04-05"}]}',
        encoding="utf-8",
    )
    source = BackfillSource(SourceKind.DIR, str(reports))
    result = run(make_pipeline(), source, outlet="Saved")
    assert result.counts.stored == 2 and result.counts.events > 0
    rows = {r.title: r for r in articles(engine)}
    assert rows["Quriyah"].outlet == "SOHR"
    assert rows["Quriyah"].published == datetime(2024, 4, 5, tzinfo=UTC)
    assert rows["Convoy reaches the city"].outlet == "Saved"
    assert rows["Convoy reaches the city"].published == datetime(2024, 4, 6, tzinfo=UTC)
    assert {r.origin_kind for r in rows.values()} == {ArticleOrigin.FILE}
    assert {r.url for r in rows.values()} == {None}

    # Other options make another run; the texts are known all the same.
    other = run(make_pipeline(), source, window=DateWindow(since=date(2024, 1, 1)))
    assert not other.resumed
    assert other.counts.stored == 0 and other.counts.duplicates == 2
    assert {o.status for o in other.outcomes} == {BackfillItemStatus.KNOWN}
    with Session(engine) as session:
        latest = session.scalar(sa.select(sa.func.max(models.BackfillRun.id)))
        recorded = store.backfill_item_statuses(session, latest)
    assert list(recorded.values()) == [BackfillItemStatus.KNOWN] * 2
    dry = run(make_pipeline(), source, dry_run=True)
    assert {o.status for o in dry.outcomes} == {BackfillItemStatus.KNOWN}
    assert len(articles(engine)) == 2


def test_a_directory_run_again_skips_settled_files_and_reads_edited_ones(
    make_pipeline: MakePipeline, engine: Engine, tmp_path: Path
) -> None:
    reports = tmp_path / "saved"
    reports.mkdir()
    convoy, quriyah = reports / "convoy.txt", reports / "quriyah.txt"
    convoy.write_text(STORIES[0].text, encoding="utf-8")
    quriyah.write_text(STORIES[1].text, encoding="utf-8")
    source = BackfillSource(SourceKind.DIR, str(reports))
    assert run(make_pipeline(), source).counts.stored == 2

    again = run(make_pipeline(), source)
    assert again.resumed and again.counts.settled == 2
    assert [o for o in again.outcomes if o.status is not None] == []  # none read

    # An analyst adds a correction to one file: it is read (and judged) again.
    quriyah.write_text(STORIES[1].text + "\n\nCorrection: two vehicles, not three.")
    os.utime(quriyah, ns=(quriyah.stat().st_atime_ns, quriyah.stat().st_mtime_ns + 10**9))
    edited = run(make_pipeline(), source)
    assert edited.counts.settled == 1
    handled = [o for o in edited.outcomes if o.status is not None]
    assert [(o.item.label, o.fetched) for o in handled] == [("quriyah.txt", True)]


def test_dry_run_stores_nothing(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine
) -> None:
    urls = tuple(outlet.page_url(s) for s in STORIES)
    result = run(make_pipeline(), BackfillSource(SourceKind.URLS, "-", urls=urls), dry_run=True)
    assert result.counts.stored == len(STORIES) and result.counts.events > 0
    assert all(o.title for o in result.outcomes)
    assert articles(engine) == []
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(models.BackfillRun)) == 0


class StopAfter:
    """Progress that asks the run to stop once ``n`` items are done (like Ctrl-C)."""

    def __init__(self, stop: threading.Event, n: int) -> None:
        self.stop, self.n = stop, n

    def listing(self, message: str) -> None:
        pass

    def listed(self, total: int) -> None:
        pass

    def advanced(self, outcome: ItemOutcome, counts: Counts) -> None:
        if counts.stored + counts.failed >= self.n:
            self.stop.set()


def test_interrupted_run_resumes_where_it_stopped(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine
) -> None:
    urls = tuple(outlet.page_url(s) for s in STORIES)
    source = BackfillSource(SourceKind.URLS, "list.txt", urls=urls)
    stop = threading.Event()
    first = Backfill(make_pipeline(), progress=StopAfter(stop, 2), stop=stop, now=lambda: NOW).run(
        source, BackfillOptions(concurrency=1)
    )
    assert first.interrupted and first.left == len(STORIES) - 2
    assert len(articles(engine)) == 2

    outlet.server.requests.clear()
    second = run(make_pipeline(), source, concurrency=2)
    assert not second.interrupted and second.resumed
    assert (second.counts.settled, second.counts.stored) == (2, len(STORIES) - 2)
    fetched = {r.path for r in outlet.server.requests}
    assert fetched == {f"/r/{s.slug}" for s in STORIES[2:]}  # the first two not fetched again
    assert url_counts(engine) == {outlet.page_url(s): 1 for s in STORIES}
    with engine.connect() as connection:
        statuses = connection.execute(sa.select(models.BackfillItem.status)).scalars().all()
        finished = connection.scalar(sa.select(models.BackfillRun.finished_at))
    assert sorted(statuses) == [BackfillItemStatus.STORED] * len(STORIES)
    assert finished is not None


# ------------------------------------------------------------------------------ reextract


def test_reextract_shows_a_rule_change_then_applies_it(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine, tmp_path: Path
) -> None:
    urls = tuple(outlet.page_url(s) for s in STORIES)
    run(make_pipeline(), BackfillSource(SourceKind.URLS, "list.txt", urls=urls))
    with engine.connect() as connection:
        before = {
            (row.location_name, row.location_lat)
            for row in connection.execute(sa.select(models.Event))
        }
    assert ("al-Mayadin", 35.01982) in before
    count_before = event_count(engine)

    nothing = reextract(make_pipeline(), window=DateWindow(), apply=False, now=NOW)
    assert nothing.articles == len(STORIES) and nothing.diffs == ()

    edited = tmp_path / "rules"
    shutil.copytree(PROJECT_RULES, edited)
    gazetteer = edited / "gazetteer.yaml"
    text = gazetteer.read_text(encoding="utf-8")
    assert "    lat: 35.01982\n" in text
    gazetteer.write_text(text.replace("    lat: 35.01982\n", "    lat: 35.0301\n"), "utf-8")
    new_rules = load_rules(edited)

    shown = reextract(make_pipeline(new_rules), window=DateWindow(), apply=False, now=NOW)
    changed = [c for d in shown.diffs for c in d.changed]
    assert changed and {c.fields for c in changed} == {("location",)}
    assert all(c.new.location.lat == 35.0301 for c in changed)
    with engine.connect() as connection:  # showing changes nothing
        assert (
            connection.scalar(
                sa.select(sa.func.count())
                .select_from(models.Event)
                .where(models.Event.location_lat == 35.0301)
            )
            == 0
        )

    applied = reextract(make_pipeline(new_rules), window=DateWindow(), apply=True, now=NOW)
    assert len(applied.diffs) == len(shown.diffs)
    with engine.connect() as connection:
        after = {
            (row.location_name, row.location_lat)
            for row in connection.execute(sa.select(models.Event))
        }
    assert ("al-Mayadin", 35.0301) in after and ("al-Mayadin", 35.01982) not in after
    assert event_count(engine) == count_before  # updated in place, same ids
    again = reextract(make_pipeline(new_rules), window=DateWindow(), apply=False, now=NOW)
    assert again.diffs == ()


# ------------------------------------------------------------------ merged events, alerts

CONVOY_A = (
    "Iranian-backed militias sent a convoy of 30 vehicles carrying fighters and rocket "
    "launchers to al-Mayadin city in the eastern countryside of Deir Ezzor on June 3, "
    "according to SOHR. The convoy came from the Iraqi border area near Albu Kamal."
)
CONVOY_B = (
    "Iranian-backed militias deployed new reinforcements in al-Mayadin city in the eastern "
    "countryside of Deir Ezzor on {day}, the Syrian Observatory for Human Rights reported. "
    "The reinforcements included 50 fighters, according to the observatory's sources."
)


def saved_reports(directory: Path, texts: dict[str, str]) -> BackfillSource:
    directory.mkdir()
    documents = []
    for name, text in texts.items():
        (directory / name).write_text(text, encoding="utf-8")
        documents.append(
            f'{{"file": "{name}", "outlet": "{name}", "title": "{name}",'
            ' "published": "2020-06-10"}'
        )
    (directory / "MANIFEST.json").write_text(
        '{"documents": [' + ", ".join(documents) + "]}", encoding="utf-8"
    )
    return BackfillSource(SourceKind.DIR, str(directory))


def test_reextract_leaves_a_merged_event_alone_when_the_rules_did_not_change(
    make_pipeline: MakePipeline, engine: Engine, tmp_path: Path
) -> None:
    source = saved_reports(
        tmp_path / "saved", {"a.txt": CONVOY_A, "b.txt": CONVOY_B.format(day="June 3")}
    )
    stored = run(make_pipeline(), source)
    assert stored.counts.stored == 2
    with engine.connect() as connection:
        merged = connection.execute(sa.select(models.Event)).one()
    assert merged.sources_count == 2
    assert merged.quantities == {"vehicles": 30, "fighters": 50}

    shown = reextract(make_pipeline(), window=DateWindow(), apply=False, now=NOW)
    assert shown.articles == 2 and shown.diffs == ()
    applied = reextract(make_pipeline(), window=DateWindow(), apply=True, now=NOW)
    assert applied.diffs == ()
    with engine.connect() as connection:
        after = connection.execute(sa.select(models.Event)).one()
    assert (after.id, after.sources_count) == (merged.id, 2)


def test_reextract_apply_merges_with_the_configured_date_tolerance(
    make_pipeline: MakePipeline, engine: Engine, tmp_path: Path
) -> None:
    source = saved_reports(
        tmp_path / "saved", {"a.txt": CONVOY_A, "b.txt": CONVOY_B.format(day="June 8")}
    )
    run(make_pipeline(), source)  # default tolerance (1 day): two events
    with engine.begin() as connection:
        first, second = connection.execute(
            sa.select(models.Event.id).order_by(models.Event.id)
        ).scalars()
        # As if the rules had missed b.txt's event when it was stored.
        connection.execute(
            sa.delete(models.EventArticle).where(models.EventArticle.event_id == second)
        )
        connection.execute(sa.delete(models.Event).where(models.Event.id == second))

    wide = "\n[dedup]\ndate_tolerance_days = 6\n"
    applied = reextract(make_pipeline(extra_config=wide), window=DateWindow(), apply=True, now=NOW)
    assert [len(d.added) for d in applied.diffs] == [1]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(models.Event.id, models.Event.sources_count)).all()
    assert [tuple(row) for row in rows] == [(first, 2)]  # merged as ingest would merge it


WEBHOOK = (
    '\n[[webhooks]]\nname = "analysts"\nurl = "https://alerts.example/hook"\n'
    'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n'
)


def deliveries(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(models.Delivery)) or 0


def test_backfill_alerts_only_with_alert(
    make_pipeline: MakePipeline, outlet: Outlet, engine: Engine
) -> None:
    quiet = run(
        make_pipeline(extra_config=WEBHOOK),
        BackfillSource(SourceKind.URLS, "old.txt", urls=(outlet.page_url(STORIES[0]),)),
    )
    assert quiet.counts.events > 0 and deliveries(engine) == 0

    loud = run(
        make_pipeline(extra_config=WEBHOOK),
        BackfillSource(SourceKind.URLS, "new.txt", urls=(outlet.page_url(STORIES[5]),)),
        alert=True,
    )
    assert loud.counts.events > 0 and deliveries(engine) == loud.counts.events
