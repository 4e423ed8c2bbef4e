"""Feeds a new user meets, served on 127.0.0.1 and polled by the real pipeline into
SQLite and PostgreSQL (issue 16, items 6, 8 and 9).

* JSON Feed 1.0 and 1.1 are read (feedparser 6 reads no JSON: every JSON Feed
  failed to parse), and a JSON document that is not a JSON Feed is a parse error;
* a 200,000-deep nested Atom document is refused with a clear parse error (it took
  feedparser 7 to 20 s to parse) while ordinary nesting parses;
* a 304 to a request that sent no validator is an error on the feed, not "not
  modified";
* a UTF-8 document served with a contradicting HTTP charset is read as UTF-8, and
  the contradiction is a warning on the feed; one that cannot be settled is read by
  the HTTP charset, with the warning; a poll that is partial (an entry not stored)
  keeps the warning;
* an entry date given as a Unix timestamp ("1630946700") is that instant
  (2021-09-06), not 2016-11-04 (an ISO 8601 ordinal date).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from service import models, store
from service.config import FeedSettings, load_settings
from service.enums import ArticleOrigin
from service.events import Event
from service.fetch import Fetcher, FetchLimits
from service.pipeline import Pipeline, PollOutcome, PollStatus
from service.rules import Document
from service.sandbox import Sandbox
from tests.backends import BACKENDS
from tests.servers import LoopbackServer, Request, Response

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TIMESTAMP = datetime(2021, 9, 6, 16, 45, tzinfo=UTC)  # 1630946700


class NoRules:
    def extract(self, doc: Document) -> list[Event]:
        return []


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1, timeout=30) as box:
        yield box


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as loopback:
        yield loopback


@pytest.fixture(params=BACKENDS)
def factory(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object
) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'oddities.db'}"
    else:
        url = postgres_databases.create()  # type: ignore[attr-defined]
    store.upgrade(url)
    engine = store.create_engine(url)
    yield store.session_factory(engine)
    engine.dispose()


class Outlet:
    """One feed at ``path`` on the loopback server, polled by a pipeline of its own."""

    def __init__(
        self,
        path: str,
        server: LoopbackServer,
        factory: sessionmaker[Session],
        sandbox: Sandbox,
        tmp_path: Path,
    ) -> None:
        self.path = path
        self.factory = factory
        config = tmp_path / "service.toml"
        config.write_text('[database]\nurl = "sqlite:///unused.db"\n')
        (tmp_path / "feeds.toml").write_text("")
        settings = dataclasses.replace(
            load_settings(config, environ={}),
            feeds=(FeedSettings("outlet", server.url(path), "Outlet", 600),),
        )
        limits = FetchLimits(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
        self.client = httpx.Client()
        self.pipeline = Pipeline(
            settings,
            session_factory=factory,
            rules=NoRules(),
            fetcher=Fetcher(self.client, limits),
            sandbox=sandbox,
        )
        self.pipeline.sync_feeds()

    def poll(self) -> PollOutcome:
        with store.session_scope(self.factory) as session:
            (target,) = store.poll_targets(session, ["outlet"])
        return self.pipeline.poll_feed(target, now=NOW)

    def row(self) -> models.Feed:
        with store.session_scope(self.factory) as session:
            row = session.scalars(sa.select(models.Feed)).one()
            session.expunge(row)
            return row

    def articles(self) -> dict[str, store.StoredArticle]:
        with store.session_scope(self.factory) as session:
            return {a.title or "": a for a in store.list_articles(session)}

    def close(self) -> None:
        self.pipeline.close()
        self.client.close()


@pytest.fixture
def outlet(
    request: pytest.FixtureRequest,
    server: LoopbackServer,
    factory: sessionmaker[Session],
    sandbox: Sandbox,
    tmp_path: Path,
) -> Iterator[Outlet]:
    path = f"/{request.node.name.replace('[', '-').rstrip(']')}"
    made = Outlet(path, server, factory, sandbox, tmp_path)
    yield made
    made.close()


def serve(outlet: Outlet, server: LoopbackServer, body: bytes, content_type: str) -> None:
    server.static(outlet.path, body, content_type=content_type, etag='"v1"')


# ------------------------------------------------------------------ item 6: JSON Feed


JSON_FEED_11 = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Valley Monitor",
    "home_page_url": "https://outlet.example/",
    "feed_url": "https://outlet.example/feed.json",
    "language": "en",
    "items": [
        {
            "id": "https://outlet.example/?p=101",
            "title": "Convoy at the river crossing",
            "content_html": "<p>A convoy of <b>twelve</b> trucks crossed the river at dawn.</p>"
            "<script>track()</script><p>Residents counted them from the bank.</p>",
            "date_published": "2024-04-30T08:15:00+03:00",
            "authors": [{"name": "Staff"}],
            "tags": ["convoy"],
        },
        {
            "id": 102,
            "title": "Checkpoint handed over",
            "content_text": "The checkpoint on the eastern road changed hands on Monday.",
            "summary": "Checkpoint changes hands.",
            "date_modified": "2024-04-29T10:00:00Z",
        },
        {
            "id": "103",
            "title": "Night shelling",
            "content_text": "Shelling was heard north of the town during the night.",
            "date_published": "1630946700",
        },
    ],
}

JSON_FEED_10 = {
    "version": "https://jsonfeed.org/version/1",
    "title": "Old-style feed",
    "author": {"name": "Desk"},
    "items": [
        {
            "id": "a-1",
            "title": "Bridge closed",
            "content_text": "The old bridge was closed to traffic for repairs on Sunday.",
            "date_published": "2024-04-28T07:45:00Z",
        }
    ],
}


def test_json_feed_11_entries_stored_then_304(outlet: Outlet, server: LoopbackServer) -> None:
    serve(outlet, server, json.dumps(JSON_FEED_11).encode(), "application/feed+json")
    first = outlet.poll()
    assert first.status is PollStatus.OK, first.error
    assert first.articles == 3 and first.warning is None
    stored = outlet.articles()
    convoy = stored["Convoy at the river crossing"]
    assert convoy.text == (
        "A convoy of twelve trucks crossed the river at dawn.\n\n"
        "Residents counted them from the bank."
    )
    assert convoy.published == datetime(2024, 4, 30, 5, 15, tzinfo=UTC)
    assert convoy.origin_kind is ArticleOrigin.ENTRY_FALLBACK
    checkpoint = stored["Checkpoint handed over"]
    assert checkpoint.text == "The checkpoint on the eastern road changed hands on Monday."
    assert checkpoint.published == datetime(2024, 4, 29, 10, 0, tzinfo=UTC)
    assert stored["Night shelling"].published == TIMESTAMP
    row = outlet.row()
    assert (row.last_status, row.last_error, row.etag) == (200, None, '"v1"')
    second = outlet.poll()
    assert second.status is PollStatus.NOT_MODIFIED


def test_json_feed_10_read(outlet: Outlet, server: LoopbackServer) -> None:
    # Served as application/json (the older type): read all the same.
    serve(outlet, server, json.dumps(JSON_FEED_10).encode(), "application/json")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.OK, outcome.error
    (article,) = outlet.articles().values()
    assert article.title == "Bridge closed"
    assert article.published == datetime(2024, 4, 28, 7, 45, tzinfo=UTC)
    assert outcome.warning is None


@pytest.mark.parametrize(
    ("document", "error"),
    [
        pytest.param(
            {"title": "no version", "items": []},
            "not a JSON Feed: version missing",
            id="no-version",
        ),
        pytest.param(
            {"version": "https://jsonfeed.org/version/1.1", "items": {"id": "1"}},
            "not a JSON Feed: items is an object, not an array",
            id="items-object",
        ),
        pytest.param([{"id": "1"}], "not a JSON Feed: the top level is an array", id="array"),
    ],
)
def test_json_that_is_not_a_json_feed_is_a_parse_error(
    outlet: Outlet, server: LoopbackServer, document: object, error: str
) -> None:
    serve(outlet, server, json.dumps(document).encode(), "application/feed+json")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.FAILED
    row = outlet.row()
    assert row.last_error == f"parse: {error}"
    assert row.consecutive_errors == 1


# ----------------------------------------------------- item 8: pathological nesting


def atom(content: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="utf-8"?>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Deep</title><id>urn:x</id>'
        b"<entry><id>urn:e1</id><title>Deep entry</title>"
        b'<content type="xhtml">' + content + b"</content></entry></feed>"
    )


def test_200000_deep_atom_is_refused_with_a_clear_error(
    outlet: Outlet, server: LoopbackServer
) -> None:
    depth = 200_000
    serve(outlet, server, atom(b"<div>" * depth + b"x" + b"</div>" * depth), "application/atom+xml")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.FAILED
    assert outlet.row().last_error == "parse: refused: elements nested more than 512 deep"


def test_ordinary_nesting_parses(outlet: Outlet, server: LoopbackServer) -> None:
    depth = 60
    body = atom(
        b'<div xmlns="http://www.w3.org/1999/xhtml">'
        + b"<div>" * depth
        + b"<p>Sixty levels down, a report of a convoy near the bridge.</p>"
        + b"</div>" * depth
        + b"</div>"
    )
    serve(outlet, server, body, "application/atom+xml")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.OK, outcome.error
    (article,) = outlet.articles().values()
    assert article.text == "Sixty levels down, a report of a convoy near the bridge."


# ------------------------------------------------------------- item 9: oddities


def test_304_to_a_request_without_validators_is_an_error(
    outlet: Outlet, server: LoopbackServer
) -> None:
    requests: list[Request] = []

    def always_304(request: Request) -> Response:
        requests.append(request)
        return Response(304, {"ETag": '"v1"'})

    server.route(outlet.path, always_304)
    outcome = outlet.poll()
    assert "if-none-match" not in requests[0].headers
    assert "if-modified-since" not in requests[0].headers
    assert outcome.status is PollStatus.FAILED
    row = outlet.row()
    assert row.last_status == 304 and row.consecutive_errors == 1
    assert row.last_error == (
        "http_status: HTTP 304 Not Modified to a request that sent no validator "
        "(no If-None-Match, no If-Modified-Since)"
    )
    assert row.etag is None


RSS_UTF8 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Dayr az-Zawr — news</title>
<item><guid isPermaLink="false">r-1</guid><title>Qūriyah: “a convoy”</title>
<description>Forces moved from al-Qūriyah to al-Mayādīn — 12 vehicles. دير الزور</description>
<pubDate>Tue, 30 Apr 2024 08:00:00 GMT</pubDate></item>
</channel></rss>""".encode()


@pytest.mark.parametrize("charset", ["iso-8859-2", "koi8-r", "windows-1256", "iso-8859-1"])
def test_http_charset_contradicting_the_document_is_read_right_and_warned(
    outlet: Outlet, server: LoopbackServer, charset: str
) -> None:
    serve(outlet, server, RSS_UTF8, f"application/rss+xml; charset={charset}")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.OK, outcome.error
    (article,) = outlet.articles().values()
    assert article.title == "Qūriyah: “a convoy”"
    assert article.text == ("Forces moved from al-Qūriyah to al-Mayādīn — 12 vehicles. دير الزور")
    warning = (
        f"charset: HTTP says {charset}, the document declares utf-8; "
        "read as utf-8 (the bytes are valid UTF-8)"
    )
    assert outcome.warning == warning
    row = outlet.row()
    assert row.last_error == f"warning: {warning}"
    assert row.consecutive_errors == 0
    # The validators are not kept, so the next poll reads the feed again (a 304 would
    # clear the warning while the feed still has it).
    assert row.etag is None
    again = outlet.poll()
    assert again.status is PollStatus.OK and again.warning == warning
    assert outlet.row().last_error == f"warning: {warning}"
    # A later poll without the oddity clears the warning.
    server.static(
        outlet.path, RSS_UTF8, content_type="application/rss+xml; charset=utf-8", etag='"v2"'
    )
    assert outlet.poll().status is PollStatus.OK
    assert outlet.row().last_error is None


def test_a_partial_poll_keeps_the_feed_warning_and_its_entry_failures(
    outlet: Outlet, server: LoopbackServer
) -> None:
    # One entry stored from its text, one whose page is missing and which has no text
    # of its own: the poll is partial (the entry is retried), and the feed's own oddity
    # (the charset) is its warning all the same; the entry's failure is not the feed's.
    dead = server.url(f"{outlet.path}/dead-page")
    body = RSS_UTF8.replace(
        b"</channel>",
        f"<item><guid>r-2</guid><title>Dead</title><link>{dead}</link></item></channel>".encode(),
    )
    serve(outlet, server, body, "application/rss+xml; charset=iso-8859-2")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.PARTIAL
    assert (outcome.articles, outcome.failed_entries) == (1, 1)
    assert outcome.error is not None and "1 entry not stored" in outcome.error
    warning = (
        "charset: HTTP says iso-8859-2, the document declares utf-8; "
        "read as utf-8 (the bytes are valid UTF-8)"
    )
    assert outcome.warning == warning
    row = outlet.row()
    assert row.last_error == f"warning: {warning}"
    assert row.consecutive_errors == 0 and row.etag is None


def test_undecidable_charset_follows_http_with_a_warning(
    outlet: Outlet, server: LoopbackServer
) -> None:
    text = "Колонна вошла в город"
    body = (
        '<?xml version="1.0" encoding="windows-1251"?><rss version="2.0"><channel>'
        f"<title>t</title><item><guid>c-1</guid><title>{text}</title>"
        f"<description>{text} утром.</description></item></channel></rss>"
    ).encode("koi8-r")
    serve(outlet, server, body, "application/rss+xml; charset=koi8-r")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.OK, outcome.error
    (article,) = outlet.articles().values()
    assert article.title == text
    assert outlet.row().last_error == (
        "warning: charset: HTTP says koi8-r, the document declares windows-1251; "
        "read as koi8-r (the HTTP charset wins)"
    )


def test_unix_timestamp_dates_are_that_instant(outlet: Outlet, server: LoopbackServer) -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>
<item><guid>s</guid><title>seconds</title><description>In seconds.</description>
<pubDate>1630946700</pubDate></item>
<item><guid>ms</guid><title>milliseconds</title><description>In milliseconds.</description>
<dc:date>1630946700000</dc:date></item>
<item><guid>d</guid><title>a day</title><description>A compact date.</description>
<dc:date>20210906</dc:date></item>
</channel></rss>"""
    serve(outlet, server, body, "application/rss+xml; charset=utf-8")
    outcome = outlet.poll()
    assert outcome.status is PollStatus.OK, outcome.error
    stored = outlet.articles()
    assert stored["seconds"].published == TIMESTAMP
    assert stored["milliseconds"].published == TIMESTAMP
    assert stored["a day"].published == datetime(2021, 9, 6, tzinfo=UTC)
    assert not any(a.published_is_estimate for a in stored.values())
