"""``service run`` end to end against real HTTP servers on 127.0.0.1.

A feed and its article pages are served from short reports written for these tests.
First poll: articles and events stored (one entry's page is missing: stored from the
entry's own summary).  Second poll: 304, nothing new.  Then new entries appear and
are stored.  Finally the daemon, as a real process, keeps running with an unreachable
feed, shows the error in ``service feeds``, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from service import models, store
from service.cli import main
from service.enums import ArticleOrigin
from tests.servers import REPO_ROOT, LoopbackServer, Request, Response, free_port


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    published: datetime
    page: bool = True  # False: the article page answers 404


REPORTS = [
    Report(
        "convoy-mayadin",
        "Convoy reaches the city",
        (
            "Iranian-backed militias sent reinforcements to al-Mayadin on Monday, local "
            "sources said. A convoy of 15 vehicles carrying fighters and rocket launchers "
            "arrived in the city from al-Bukamal.",
            "Residents reported that the vehicles parked near the old market and that "
            "checkpoints on the main road were reinforced during the night. The monitor "
            "could not confirm the number of fighters.",
        ),
        datetime(2024, 4, 30, 9, 0, tzinfo=UTC),
    ),
    Report(
        "position-quriyah",
        "New position on the river road",
        (
            "Regime forces established a new military position in al-Quriyah, installing "
            "artillery and anti-aircraft guns, according to residents.",
            "Earth-moving equipment was seen at the site for three days before the guns "
            "arrived, and farmers nearby were told to keep away from the embankment.",
        ),
        datetime(2024, 4, 29, 15, 30, tzinfo=UTC),
    ),
    Report(
        "dhiban-checkpoint",
        "Checkpoint changes hands",
        (
            "SDF fighters took over a checkpoint in Dhiban after clashes with tribal "
            "gunmen on Sunday.",
        ),
        datetime(2024, 4, 28, 7, 45, tzinfo=UTC),
        page=False,
    ),
]

LATER = [
    Report(
        "russian-withdrawal",
        "Withdrawal from city positions",
        (
            "Russian forces withdrew from their positions near the T4 checkpoint in Deir "
            "Ezzor city yesterday and moved the equipment to the airport.",
            "Trucks loaded with containers left before dawn, escorted by two armoured "
            "vehicles, and the checkpoint was left to a small local guard.",
        ),
        datetime(2024, 5, 2, 6, 0, tzinfo=UTC),
    ),
]


def article_html(report: Report) -> bytes:
    body = "".join(f"<p>{escape(p)}</p>" for p in report.paragraphs)
    return (
        (
            "<html><head><title>{t}</title>"
            '<meta property="og:site_name" content="Valley Monitor"></head><body>'
            '<nav><a href="/">Home</a> | <a href="/about">About</a></nav>'
            "<article><h1>{t}</h1><p>{d}</p>{b}</article>"
            "<aside>Related: weather in the valley</aside>"
            "<section class='comments'><p>Reader comment: send them all home!</p></section>"
            "<footer>Valley Monitor</footer></body></html>"
        )
        .format(t=escape(report.title), d=report.published.strftime("%B %d, %Y"), b=body)
        .encode()
    )


class Outlet:
    """A loopback news site: /feed.xml (with ETag) and one page per report."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.reports: list[Report] = []
        self.version = 0
        server.route("/feed.xml", self._feed)

    def publish(self, *reports: Report) -> None:
        for report in reports:
            self.reports.insert(0, report)
            if report.page:
                html = article_html(report)
                self.server.route(
                    f"/reports/{report.slug}",
                    lambda _r, html=html: Response(
                        200, {"Content-Type": "text/html; charset=utf-8"}, html
                    ),
                )
        self.version += 1

    def _feed(self, request: Request) -> Response:
        etag = f'"v{self.version}"'
        if request.headers.get("if-none-match") == etag:
            return Response(304, {"ETag": etag})
        items = "".join(
            "<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
            "<pubDate>{d}</pubDate><description>{s}</description></item>".format(
                t=escape(r.title),
                link=self.server.url(f"/reports/{r.slug}"),
                d=format_datetime(r.published),
                s=escape(" ".join(r.paragraphs)),
            )
            for r in self.reports
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Valley Monitor</title><link>{self.server.url('/')}</link>{items}"
            "</channel></rss>"
        ).encode()
        return Response(200, {"Content-Type": "application/rss+xml", "ETag": etag}, body)


def write_config(tmp_path: Path, feeds: list[tuple[str, str]], *, tick: int = 30) -> Path:
    config = tmp_path / "service.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "service.db"}"\n\n'
        "[http]\nallow_private_networks = true\ntimeout_seconds = 5\n"
        "connect_timeout_seconds = 2\n\n"
        f"[scheduler]\ntick_seconds = {tick}\nworkers = 2\n"
    )
    (tmp_path / "feeds.toml").write_text(
        "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "{url}"\noutlet = "Valley Monitor"\n'
            "interval_seconds = 60\n\n"
            for name, url in feeds
        )
    )
    return config


def invoke(*args: str) -> str:
    # A wide console so rich does not fold the feeds table's cells.
    result = CliRunner().invoke(main, list(args), catch_exceptions=False, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    with LoopbackServer() as server:
        yield Outlet(server)


def stored(tmp_path: Path) -> tuple[list[store.StoredArticle], int, models.Feed]:
    engine = store.create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            articles = store.list_articles(session)
            events = store.count_events(session)
            feed = session.scalars(sa.select(models.Feed)).one()
            session.expunge(feed)
    finally:
        engine.dispose()
    return articles, events, feed


def test_run_once_stores_then_304_then_new_entries(tmp_path: Path, outlet: Outlet) -> None:
    outlet.publish(*reversed(REPORTS))
    config = write_config(tmp_path, [("valley", outlet.server.url("/feed.xml"))])
    invoke("--config", str(config), "db", "upgrade")

    # First poll: three new entries, two pages extracted, one from the entry summary.
    output = invoke("run", "--config", str(config), "--once")
    assert "valley: ok; 3 new entries, 3 articles (1 from entry text)" in output
    articles, events, feed = stored(tmp_path)
    by_url = {a.url: a for a in articles}
    page = by_url[outlet.server.url("/reports/convoy-mayadin")]
    assert page.origin_kind is ArticleOrigin.FEED
    assert page.title == "Convoy reaches the city"
    assert "Reader comment" not in page.text and "Home" not in page.text
    assert page.published == REPORTS[0].published
    fallback = by_url[outlet.server.url("/reports/dhiban-checkpoint")]
    assert fallback.origin_kind is ArticleOrigin.ENTRY_FALLBACK
    assert fallback.text.startswith("SDF fighters took over a checkpoint")
    assert events >= 3
    assert (feed.etag, feed.last_status, feed.consecutive_errors) == ('"v1"', 200, 0)
    assert (feed.entries_seen, feed.events_count) == (3, events)

    # Second poll: the conditional GET is answered 304; nothing new.
    output = invoke("run", "--config", str(config), "--once")
    assert "valley: not_modified" in output
    assert outlet.server.requests[-1].headers["if-none-match"] == '"v1"'
    again, events_again, feed = stored(tmp_path)
    assert (len(again), events_again) == (3, events)
    assert feed.last_status == 304

    # New entries appear: only they are fetched and stored.
    outlet.publish(*LATER)
    pages_before = sum(r.path.startswith("/reports/") for r in outlet.server.requests)
    output = invoke("run", "--config", str(config), "--once")
    assert "valley: ok; 1 new entries, 1 articles (0 from entry text)" in output
    pages_after = sum(r.path.startswith("/reports/") for r in outlet.server.requests)
    assert pages_after - pages_before == 1
    final, events_final, feed = stored(tmp_path)
    assert len(final) == 4 and events_final > events
    assert feed.etag == '"v2"'

    shown = invoke("--config", str(config), "feeds")
    assert "valley" in shown and "200" in shown


def test_daemon_survives_unreachable_feed_and_stops_on_sigterm(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/feed.xml"
    config = write_config(tmp_path, [("unreachable", dead)], tick=1)
    invoke("--config", str(config), "db", "upgrade")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        feed = None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            assert process.poll() is None, process.communicate()
            try:
                _, _, feed = stored(tmp_path)
            except Exception:  # the daemon has not created the row yet
                continue
            if feed.consecutive_errors >= 1:
                break
        assert feed is not None and feed.consecutive_errors >= 1
        assert feed.last_error and feed.last_error.startswith("network:")
        shown = invoke("--config", str(config), "feeds")
        assert "unreachable" in shown and "network" in shown
        assert process.poll() is None  # still running after the failure

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Feed polled" in stderr and "Daemon stopped" in stderr
