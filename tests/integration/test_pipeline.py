"""The pipeline on a migrated SQLite database, with MockTransport and a fake rule set.

Covers what the end-to-end test cannot force: backoff and Retry-After on the feed
row, dedup by guid and URL, per-poll caps keeping the old validators, a rule crash
not losing the article, an unexpected exception recorded as a crash, a boxed
extraction that overruns, and the claim of due feeds.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from service import models, store
from service.config import FeedSettings, Settings, load_settings
from service.enums import ArticleOrigin
from service.events import (
    Actor,
    Affiliation,
    DatePrecision,
    Event,
    EventType,
    Evidence,
    Location,
    Precision,
    Source,
)
from service.fetch import BackoffPolicy, Fetcher, FetchLimits
from service.pipeline import Pipeline, PollLimits, PollStatus
from service.rules import Document
from service.sandbox import Sandbox

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FEED_URL = "https://outlet.example/feed.xml"
PUBLIC = "93.184.215.14"


class FakeRules:
    """One deployment event per document mentioning "convoy"; raises on "CRASH"."""

    def __init__(self) -> None:
        self.docs: list[Document] = []

    def extract(self, doc: Document) -> list[Event]:
        self.docs.append(doc)
        if "CRASH" in doc.text:
            raise RuntimeError("rule bug")
        if "convoy" not in doc.text:
            return []
        start = doc.text.index("convoy")
        return [
            Event(
                type=EventType.DEPLOYMENT,
                actor=Actor("Iranian-backed militias", Affiliation.IRAN_BACKED),
                location=Location("al-Mayadin", 35.02, 40.45, "Al Mayadin", Precision.TOWN),
                origin=None,
                date=(doc.published or NOW.date()).isoformat(),
                date_precision=DatePrecision.DAY,
                hedged=False,
                in_region=True,
                evidence=Evidence(doc.text[start : start + 6], start, start + 6),
                source=Source(None, doc.outlet, doc.url),
            )
        ]


def rss(*items: tuple[str, str, str]) -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><link>{link}</link><title>t {guid}</title>"
        f"<pubDate>Tue, 30 Apr 2024 08:00:00 GMT</pubDate><description>{text}</description></item>"
        for guid, link, text in items
    )
    return (f'<rss version="2.0"><channel><title>Outlet</title>{body}</channel></rss>').encode()


def page(text: str) -> bytes:
    return (
        "<html><body><article><h1>Report</h1>"
        + "".join(f"<p>{text} Paragraph {i} adds detail about the report.</p>" for i in range(4))
        + "</article></body></html>"
    ).encode()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout=20) as box:
        yield box


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    store.upgrade(url)
    engine = store.create_engine(url)
    yield store.session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "service.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "service.db"}"\n')
    (tmp_path / "feeds.toml").write_text(
        f'[[feeds]]\nname = "outlet"\nurl = "{FEED_URL}"\noutlet = "Outlet"\n'
        "interval_seconds = 600\n"
    )
    return load_settings(config, environ={})


Handler = Callable[[httpx.Request], httpx.Response]


class World:
    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        sandbox: Sandbox,
        handler: Handler,
        limits: PollLimits | None = None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.rules = FakeRules()
        fetcher = Fetcher(
            httpx.Client(transport=httpx.MockTransport(handler)),
            FetchLimits(),
            resolver=lambda host, port: [PUBLIC],
            now=lambda: NOW,
        )
        self.pipeline = Pipeline(
            settings,
            session_factory=factory,
            rules=self.rules,
            fetcher=fetcher,
            sandbox=sandbox,
            limits=limits or PollLimits(backoff=BackoffPolicy(base=60, ceiling=3600)),
            rand=lambda: 1.0,
        )
        self.pipeline.sync_feeds()

    def target(self) -> store.PollTarget:
        with store.session_scope(self.factory) as session:
            return store.poll_targets(session, ["outlet"])[0]

    def poll(self, now: datetime = NOW) -> object:
        return self.pipeline.poll_feed(self.target(), now=now)

    def feed(self) -> models.Feed:
        with store.session_scope(self.factory) as session:
            row = session.scalars(sa.select(models.Feed)).one()
            session.expunge(row)
            return row

    def articles(self) -> list[store.StoredArticle]:
        with store.session_scope(self.factory) as session:
            return store.list_articles(session)

    def events(self) -> int:
        with store.session_scope(self.factory) as session:
            return store.count_events(session)


def site(feed: bytes, pages: dict[str, bytes], *, etag: str = '"e1"') -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/feed.xml":
            if request.headers.get("if-none-match") == etag:
                return httpx.Response(304)
            return httpx.Response(200, content=feed, headers={"ETag": etag})
        if path in pages:
            return httpx.Response(200, content=pages[path], headers={"Content-Type": "text/html"})
        return httpx.Response(404)

    return handler


def test_poll_stores_articles_events_and_state(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    feed = rss(
        ("a", "https://outlet.example/a", "A convoy arrived."),
        ("b", "https://outlet.example/b", "Quiet day with a convoy mention."),
    )
    world = World(settings, factory, sandbox, site(feed, {"/a": page("A convoy arrived.")}))
    outcome = world.poll()
    assert outcome.status is PollStatus.OK  # type: ignore[attr-defined]
    articles = {a.url: a for a in world.articles()}
    assert articles["https://outlet.example/a"].origin_kind is ArticleOrigin.FEED
    assert articles["https://outlet.example/b"].origin_kind is ArticleOrigin.ENTRY_FALLBACK
    # The fake rules read the same convoy (type, actor, place, day) in both reports:
    # one event, two sources.
    assert world.events() == 1
    with store.session_scope(factory) as session:
        (event,) = store.list_events(session)
    assert event.sources_count == 2 and len(event.article_ids) == 2
    row = world.feed()
    assert (row.etag, row.last_status, row.consecutive_errors, row.last_error) == (
        '"e1"',
        200,
        0,
        None,
    )
    assert row.next_due == NOW + timedelta(seconds=600)
    assert (row.entries_seen, row.events_count) == (2, 2)
    # The rules saw the feed's date, not the clock.
    assert {d.published for d in world.rules.docs} == {datetime(2024, 4, 30).date()}

    second = world.poll(NOW + timedelta(minutes=10))
    assert second.status is PollStatus.NOT_MODIFIED  # type: ignore[attr-defined]
    assert len(world.articles()) == 2


def test_known_entries_skipped_by_guid_and_url(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    first = rss(("a", "https://outlet.example/a", "one convoy"))
    world = World(settings, factory, sandbox, site(first, {}, etag='"1"'))
    world.poll()
    # Same link under a new guid, and a new entry: only the new one is stored.
    second = rss(
        ("a2", "https://outlet.example/a", "one convoy again"),
        ("c", "https://outlet.example/c", "another"),
    )
    world.pipeline.fetcher.client = httpx.Client(
        transport=httpx.MockTransport(site(second, {}, etag='"2"'))
    )
    outcome = world.poll(NOW + timedelta(hours=1))
    assert outcome.new_entries == 1  # type: ignore[attr-defined]
    assert sorted(a.url or "" for a in world.articles()) == [
        "https://outlet.example/a",
        "https://outlet.example/c",
    ]


def test_failures_back_off_and_honour_retry_after(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    responses = iter(
        [httpx.Response(500)] * 3 + [httpx.Response(429, headers={"Retry-After": "7200"})]
    )
    world = World(settings, factory, sandbox, lambda request: next(responses))
    waits = []
    for n in range(4):
        outcome = world.poll()
        assert outcome.status is PollStatus.FAILED  # type: ignore[attr-defined]
        row = world.feed()
        assert row.consecutive_errors == n + 1
        waits.append((row.next_due - NOW).total_seconds())
    assert row.last_status == 429
    assert row.last_error == "http_status: HTTP 429"
    # interval 600 s dominates the first backoff steps; Retry-After (2 h, within the
    # clamp) wins over the 3600 s ceiling at the end.
    assert waits == [600, 600, 600, 7200]
    # Success resets the count.
    world.pipeline.fetcher.client = httpx.Client(transport=httpx.MockTransport(site(rss(), {})))
    world.poll()
    assert world.feed().consecutive_errors == 0


def test_parse_error_recorded(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    handler = site(b"<!DOCTYPE html><html><body>Gateway error</body></html>", {})
    world = World(settings, factory, sandbox, handler)
    outcome = world.poll()
    assert outcome.status is PollStatus.FAILED  # type: ignore[attr-defined]
    assert world.feed().last_error == "parse: an HTML page, not a feed"


def test_unexpected_exception_recorded_as_crash(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError("surprise")

    world = World(settings, factory, sandbox, handler)
    outcome = world.poll()
    assert outcome.status is PollStatus.CRASHED  # type: ignore[attr-defined]
    row = world.feed()
    assert row.consecutive_errors == 1
    assert row.last_error == "internal: ZeroDivisionError: surprise"


def test_rule_crash_keeps_the_article(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    feed = rss(("x", "https://outlet.example/x", "CRASH convoy"))
    world = World(settings, factory, sandbox, site(feed, {}))
    outcome = world.poll()
    assert outcome.status is PollStatus.OK  # type: ignore[attr-defined]
    assert len(world.articles()) == 1 and world.events() == 0


def test_article_cap_keeps_old_validators(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    feed = rss(*[(f"g{i}", f"https://outlet.example/{i}", f"text {i}") for i in range(5)])
    limits = PollLimits(max_articles=2)
    world = World(settings, factory, sandbox, site(feed, {}), limits=limits)
    first = world.poll()
    assert first.new_entries == 2  # type: ignore[attr-defined]
    assert world.feed().etag is None  # left-overs: the next poll is a full GET
    world.poll(NOW + timedelta(minutes=10))
    world.poll(NOW + timedelta(minutes=20))
    assert len(world.articles()) == 5
    assert world.feed().etag == '"e1"'


def test_extraction_overrun_falls_back(settings: Settings, factory: sessionmaker[Session]) -> None:
    feed = rss(("slow", "https://outlet.example/slow", "a convoy summary"))
    with Sandbox(workers=1, timeout=20) as box:
        world = World(settings, factory, box, site(feed, {"/slow": page("convoy")}))

        def overrun(task: str, *args: object, timeout: float | None = None) -> object:
            if task == "extract":
                return Sandbox.call(box, "probe", "sleep", 5, timeout=0.5)
            return Sandbox.call(box, task, *args, timeout=timeout)

        box.call = overrun  # type: ignore[method-assign]
        outcome = world.poll()
    assert outcome.status is PollStatus.OK  # type: ignore[attr-defined]
    (article,) = world.articles()
    assert article.origin_kind is ArticleOrigin.ENTRY_FALLBACK


def test_claim_due_feeds(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    more = dataclasses.replace(
        settings,
        feeds=(
            *settings.feeds,
            FeedSettings("second", "https://outlet.example/2.xml", "Outlet", 600),
        ),
    )
    world = World(more, factory, sandbox, site(rss(), {}))
    with store.session_scope(factory) as session:
        claimed = store.claim_due_feeds(
            session, now=NOW, names=["outlet", "second"], lease_seconds=300
        )
    assert sorted(t.name for t in claimed) == ["outlet", "second"]
    with store.session_scope(factory) as session:
        again = store.claim_due_feeds(
            session, now=NOW + timedelta(seconds=10), names=["outlet", "second"], lease_seconds=300
        )
    assert again == []  # leased
    outcomes = world.pipeline.poll_due(now=NOW + timedelta(seconds=301))
    assert sorted(o.feed_name for o in outcomes) == ["outlet", "second"]
    assert world.pipeline.poll_due(now=NOW + timedelta(seconds=302)) == []


def test_loopback_allowed_network_reaches_fetcher(settings: Settings) -> None:
    from service.pipeline import fetch_limits

    limits = fetch_limits(settings.http, (ipaddress.ip_network("127.0.0.1/32"),))
    assert limits.allowed_networks and not limits.allow_private_networks
    assert limits.max_bytes == settings.http.max_body_bytes


def test_stop_releases_claims_not_started(
    settings: Settings, factory: sessionmaker[Session], sandbox: Sandbox
) -> None:
    world = World(settings, factory, sandbox, site(rss(), {}))
    with store.session_scope(factory) as session:
        claimed = store.claim_due_feeds(session, now=NOW, names=["outlet"], lease_seconds=900)
    world.pipeline.request_stop()
    assert world.pipeline._poll_many(claimed, NOW) == []
    assert world.feed().next_due == NOW  # due again at once, not after the lease
    assert world.feed().last_polled is None


def test_a_report_not_in_english_is_logged_as_such(
    settings: Settings,
    factory: sessionmaker[Session],
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from service.pipeline import Report

    world = World(settings, factory, sandbox, site(b"", {}))
    french = (
        "Des milices soutenues par l'Iran ont envoyé lundi un convoi de camions vers la ville "
        "de Mayadine, selon des sources locales, après que le régime a retiré certaines de ses "
        "unités de la zone proche du fleuve et remis leurs positions aux forces locales."
    )
    english = (
        "Iranian-backed militias sent a convoy of trucks to the town of al-Mayadin on Monday, "
        "local sources said, after the regime withdrew some of its units from the area near "
        "the river and handed their positions over to the Local Defence Forces."
    )
    for text in (french, english):
        report = Report(
            text=text,
            title=None,
            url=f"https://outlet.example/{len(text)}",
            outlet="Outlet",
            published=NOW,
            published_is_estimate=False,
            origin_kind=ArticleOrigin.FEED,
        )
        world.pipeline.events_for(report, now=NOW)
    warned = [r for r in caplog.records if "not in English" in r.getMessage()]
    assert [r.url for r in warned] == [f"https://outlet.example/{len(french)}"]  # type: ignore[attr-defined]
