"""Nothing a feed offers is lost (issue 16, items 1 to 3), on SQLite and PostgreSQL.

Feeds and article pages are served on 127.0.0.1; the pipeline polls them with its real
fetcher, sandbox and store:

* a feed of 200 entries ends with 200 articles, over as many polls as the caps need,
  in the feed's order, each page fetched once;
* entries whose page fails and that carry no text get retry state of their own
  (backoff, a limit, shown by ``service feeds`` and ``service articles --failed``) and
  never hold back the entries after them;
* URLs of any length are stored once and recognised again (a 6 KB random URL broke
  PostgreSQL's btree index on ``articles.url``), and an entry the store refuses makes
  the poll ``partial``, never ``ok``.
"""

from __future__ import annotations

import ipaddress
import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from service import models, store
from service.cli import main
from service.config import Settings, load_settings
from service.errors import StoreError
from service.events import Event
from service.fetch import BackoffPolicy
from service.pipeline import Pipeline, PollLimits, PollOutcome, PollStatus
from service.rules import Document
from service.sandbox import Sandbox
from tests.backends import BACKENDS
from tests.servers import FeedFarm, LoopbackServer, Request, Response, movement_text

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INTERVAL = 600
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
HTML = {"Content-Type": "text/html; charset=utf-8"}


class NoRules:
    def extract(self, doc: Document) -> list[Event]:
        return []


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout=20) as box:
        yield box


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(max_handler_seconds=10) as srv:
        yield srv


class World:
    """A migrated database, configured feeds and a pipeline polling them."""

    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        feeds: dict[str, str],
        sandbox: Sandbox,
        limits: PollLimits | None = None,
    ) -> None:
        store.upgrade(database_url)
        self.config = tmp_path / "service.toml"
        self.config.write_text(f'[database]\nurl = "{database_url}"\n')
        (tmp_path / "feeds.toml").write_text(
            "".join(
                f'[[feeds]]\nname = "{name}"\nurl = "{url}"\noutlet = "Outlet"\n'
                f"interval_seconds = {INTERVAL}\n\n"
                for name, url in feeds.items()
            )
        )
        self.settings: Settings = load_settings(self.config, environ={})
        self.engine: Engine = store.create_engine(database_url)
        self.factory = store.session_factory(self.engine)
        self.pipeline = Pipeline(
            self.settings,
            session_factory=self.factory,
            rules=NoRules(),
            sandbox=sandbox,
            limits=limits or PollLimits(backoff=BackoffPolicy(base=60, ceiling=3600)),
            allowed_networks=LOOPBACK,
            rand=lambda: 1.0,
        )
        self.pipeline.sync_feeds()

    def poll(self, now: datetime) -> list[PollOutcome]:
        return self.pipeline.poll_all(now=now)

    def articles(self) -> list[dict[str, Any]]:
        """Stored articles in insertion order."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    models.Article.url, models.Article.guid, models.Article.origin_kind
                ).order_by(models.Article.id)
            ).all()
        return [{"url": url, "guid": guid, "origin": origin} for url, guid, origin in rows]

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(
            main, ["--config", str(self.config), *args], env={"COLUMNS": "250"}
        )
        assert result.exit_code == 0, result.output
        return result.output

    def close(self) -> None:
        self.pipeline.close()
        self.engine.dispose()


@pytest.fixture
def make_world(tmp_path: Path, empty_database_url: str, sandbox: Sandbox) -> Iterator[Any]:
    worlds: list[World] = []

    def make(feeds: dict[str, str], limits: PollLimits | None = None) -> World:
        world = World(tmp_path, empty_database_url, feeds, sandbox, limits)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


def page_requests(server: LoopbackServer, prefix: str) -> list[str]:
    return [r.path for r in server.requests if r.path.startswith(prefix)]


# ------------------------------------------------------------------ 1. more than 50 entries


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_a_feed_of_200_entries_ends_with_200_articles(
    server: LoopbackServer, make_world: Any
) -> None:
    farm = FeedFarm(server, 1, entries=200, pages=True)
    world = make_world({"big": farm.url(0)})
    statuses = []
    for n in range(12):
        (outcome,) = world.poll(NOW + timedelta(seconds=n * INTERVAL))
        statuses.append((outcome.status, outcome.new_entries, outcome.articles))
    stored = world.articles()
    assert len(stored) == 200, statuses
    # Twenty article pages per poll: ten polls, newest first as the feed lists them;
    # then the feed's validators are kept and it answers 304.
    assert statuses[:10] == [(PollStatus.OK, 20, 20)] * 10
    assert [s[0] for s in statuses[10:]] == [PollStatus.NOT_MODIFIED] * 2
    assert [a["guid"] for a in stored] == [f"f0-e{k}" for k in reversed(range(200))]
    # Every page fetched once: nothing done is fetched again.
    pages = page_requests(server, "/pages/")
    assert len(pages) == len(set(pages)) == 200


# ------------------------------------------------------------------ 2. a blocked head


def rss(items: list[dict[str, str]]) -> bytes:
    body = "".join(
        "<item>"
        + "".join(
            f'<guid isPermaLink="false">{value}</guid>'
            if key == "guid"
            else f"<{key}>{value}</{key}>"
            for key, value in item.items()
        )
        + f"<pubDate>{formatdate(1714550400, usegmt=True)}</pubDate></item>"
        for item in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Outlet</title>'
        f"{body}</channel></rss>"
    ).encode()


def article_page(text: str) -> Response:
    html = (
        f"<html><head><title>Report</title></head><body><article><h1>Report</h1>"
        f"<p>{text}</p><p>{text}</p></article></body></html>"
    )
    return Response(200, HTML, html.encode())


def serve_site(server: LoopbackServer, feed: bytes) -> None:
    """``/feed.xml`` (no validators: every poll is a full GET); ``/good/<k>`` pages;
    ``/dead/...`` answers 500."""
    server.static("/feed.xml", feed)

    def fallback(request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path.startswith("/good/"):
            return article_page(movement_text(7, int(path.rsplit("/", 1)[1])))
        if path.startswith("/long/"):
            return article_page(movement_text(8, len(request.path) % 97))
        return Response(500, {"Content-Type": "text/plain"}, b"down")

    server.fallback = fallback


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_dead_entries_at_the_head_do_not_starve_the_feed(
    server: LoopbackServer, make_world: Any
) -> None:
    dead = [{"guid": f"dead-{i}", "link": server.url(f"/dead/{i}")} for i in range(25)]
    good = [
        {"guid": f"good-{k}", "link": server.url(f"/good/{k}"), "title": f"Good {k}"}
        for k in range(5)
    ]
    serve_site(server, rss(dead + good))
    world = make_world({"outlet": server.url("/feed.xml")})

    outcomes = [world.poll(NOW + timedelta(seconds=n * INTERVAL))[0] for n in range(3)]
    stored = world.articles()
    assert sorted(a["guid"] for a in stored) == [f"good-{k}" for k in range(5)]
    # The failures are the poll's outcome, never "ok".
    first = outcomes[0]
    assert first.status is PollStatus.PARTIAL and first.failed_entries == 20
    assert first.error is not None and "HTTP 500" in first.error
    second = outcomes[1]
    assert (second.status, second.failed_entries, second.articles) == (PollStatus.PARTIAL, 5, 5)
    # Each dead page was fetched once: they wait for their retry, not for every poll.
    dead_fetches = page_requests(server, "/dead/")
    assert len(dead_fetches) == len(set(dead_fetches)) == 25
    assert outcomes[2].status is PollStatus.OK and outcomes[2].new_entries == 0

    with store.session_scope(world.factory) as session:
        failures = store.list_entry_failures(session)
    assert len(failures) == 25
    assert {f.status.value for f in failures} == {"retrying"}
    assert all(f.attempts == 1 and f.next_attempt_at is not None for f in failures)
    assert all(f.last_error == "http_status: HTTP 500" for f in failures)

    feeds_output = world.cli("feeds")
    assert "25 retrying" in feeds_output
    failed_output = world.cli("articles", "--failed")
    assert server.url("/dead/24") in failed_output and "retrying" in failed_output
    assert "25 feed entries not stored" in world.cli("articles")


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_a_failing_entry_backs_off_then_gives_up_and_one_that_recovers_is_stored(
    server: LoopbackServer, make_world: Any
) -> None:
    items = [
        {"guid": "dead", "link": server.url("/dead/1")},
        {"guid": "flaky", "link": server.url("/flaky/1")},
    ]
    serve_site(server, rss(items))
    flaky_up = False
    fallback = server.fallback

    def flaky(request: Request) -> Response:
        if request.path.startswith("/flaky/"):
            if flaky_up:
                return article_page(movement_text(9, 1))
            return Response(503, {"Content-Type": "text/plain"}, b"later")
        return fallback(request)

    server.fallback = flaky
    limits = PollLimits(
        backoff=BackoffPolicy(base=60, ceiling=3600),
        entry_backoff=BackoffPolicy(base=1800, ceiling=4 * 3600),
        entry_max_attempts=3,
    )
    world = make_world({"outlet": server.url("/feed.xml")}, limits)

    def fetches(prefix: str) -> int:
        return len(page_requests(server, prefix))

    world.poll(NOW)
    assert (fetches("/dead/"), fetches("/flaky/")) == (1, 1)
    # Not due again before its backoff (30 min): a poll in between leaves it alone.
    (outcome,) = world.poll(NOW + timedelta(minutes=10))
    assert outcome.status is PollStatus.OK and fetches("/dead/") == 1
    flaky_up = True
    (outcome,) = world.poll(NOW + timedelta(minutes=31))
    assert (fetches("/dead/"), fetches("/flaky/")) == (2, 2)
    assert outcome.articles == 1 and outcome.failed_entries == 1
    assert [a["guid"] for a in world.articles()] == ["flaky"]
    with store.session_scope(world.factory) as session:
        (failure,) = store.list_entry_failures(session)
    assert (failure.entry_id, failure.attempts) == ("dead", 2)
    assert failure.next_attempt_at == NOW + timedelta(minutes=31 + 60)

    world.poll(NOW + timedelta(minutes=31 + 60))  # third attempt: the limit
    with store.session_scope(world.factory) as session:
        (failure,) = store.list_entry_failures(session)
    assert (failure.status.value, failure.attempts, failure.next_attempt_at) == (
        "gave_up",
        3,
        None,
    )
    for hours in (5, 10, 20):
        world.poll(NOW + timedelta(hours=hours))
    assert fetches("/dead/") == 3  # given up: never fetched again
    assert "1 gave up" in world.cli("feeds")


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_an_entry_the_feed_no_longer_lists_is_retried_from_its_stored_url(
    server: LoopbackServer, make_world: Any
) -> None:
    serve_site(server, rss([{"guid": "gone", "link": server.url("/later/1"), "title": "Gone"}]))
    fallback = server.fallback
    page_up = False

    def later(request: Request) -> Response:
        if request.path.startswith("/later/") and page_up:
            return article_page(movement_text(11, 1))
        return fallback(request)

    server.fallback = later
    world = make_world({"outlet": server.url("/feed.xml")})
    (first,) = world.poll(NOW)
    assert first.status is PollStatus.PARTIAL
    # The feed moves on (with validators now); the page comes back.
    server.static("/feed.xml", rss([]), etag='"empty"')
    page_up = True
    (second,) = world.poll(NOW + timedelta(minutes=10))  # not due yet
    assert (second.status, second.new_entries) == (PollStatus.OK, 0)
    # Nothing the feed lists waits: its validators are kept, and the entry is retried
    # from its stored URL when due, 304 or not.
    (third,) = world.poll(NOW + timedelta(minutes=20))
    assert (third.status, third.new_entries) == (PollStatus.NOT_MODIFIED, 0)
    (fourth,) = world.poll(NOW + timedelta(minutes=40))
    assert (fourth.status, fourth.articles) == (PollStatus.NOT_MODIFIED, 1)
    assert world.articles() == [
        {"url": server.url("/later/1"), "guid": "gone", "origin": world.articles()[0]["origin"]}
    ]
    with store.session_scope(world.factory) as session:
        assert store.list_entry_failures(session) == []


# ------------------------------------------------------------------ 3. long URLs


def random_url_part(size: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_six_kilobyte_random_urls_are_stored_once(server: LoopbackServer, make_world: Any) -> None:
    with_guid = server.url(f"/long/{random_url_part(3000, 1)}?t={random_url_part(3000, 2)}")
    without_guid = server.url(f"/long/{random_url_part(3000, 3)}?t={random_url_part(3100, 4)}")
    assert len(with_guid) > 6000 and len(without_guid) > 6000
    serve_site(
        server,
        rss([{"guid": "long-1", "link": with_guid}, {"link": without_guid, "title": "No guid"}]),
    )
    world = make_world({"outlet": server.url("/feed.xml")})
    (first,) = world.poll(NOW)
    assert (first.status, first.articles, first.failed_entries) == (PollStatus.OK, 2, 0)
    assert sorted(a["url"] for a in world.articles()) == sorted([with_guid, without_guid])
    # Recognised on the next poll by guid and by URL: nothing fetched or stored again.
    (second,) = world.poll(NOW + timedelta(seconds=INTERVAL))
    assert (second.status, second.new_entries) == (PollStatus.OK, 0)
    assert len(page_requests(server, "/long/")) == 2
    assert len(world.articles()) == 2


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_a_storage_failure_makes_the_poll_partial_and_the_entry_is_retried(
    server: LoopbackServer, make_world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        {"guid": f"g{k}", "link": server.url(f"/good/{k}"), "title": f"Good {k}"} for k in range(3)
    ]
    serve_site(server, rss(items))
    world = make_world({"outlet": server.url("/feed.xml")})
    real_add = store.add_article

    def refusing(session: Any, article: store.NewArticle) -> int:
        if article.guid == "g1":
            raise StoreError("database error: DataError: refused for the test")
        return real_add(session, article)

    monkeypatch.setattr(store, "add_article", refusing)
    (outcome,) = world.poll(NOW)
    assert outcome.status is PollStatus.PARTIAL
    assert (outcome.articles, outcome.failed_entries) == (2, 1)
    assert outcome.error is not None and "refused for the test" in outcome.error
    assert outcome.error.startswith("1 entry not stored: store: ")
    with store.session_scope(world.factory) as session:
        (feed,) = session.scalars(sa.select(models.Feed)).all()
        # The feed itself answered: its error stays empty, the entry waits for a retry.
        assert (feed.last_error, feed.consecutive_errors, feed.etag) == (None, 0, None)
    assert "1 retrying" in world.cli("feeds")
    assert "refused for the test" in world.cli("articles", "--failed")

    monkeypatch.setattr(store, "add_article", real_add)
    (outcome,) = world.poll(NOW + timedelta(hours=1))
    assert (outcome.status, outcome.articles) == (PollStatus.OK, 1)
    assert sorted(a["guid"] for a in world.articles()) == ["g0", "g1", "g2"]
    with store.session_scope(world.factory) as session:
        assert store.list_entry_failures(session) == []
