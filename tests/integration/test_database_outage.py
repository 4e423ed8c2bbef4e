"""A PostgreSQL outage under a running daemon (issue 16, item 4).

The daemon's connection goes through a loopback TCP relay that the test cuts and
restores (new connections refused, open ones dropped).  During the outage both of
the daemon's loops (due feeds every second, due webhook deliveries five times a
second) fail on every tick; the log must say so once, with no traceback, and once
more when the database is back.  Before the fix each failure was a CRITICAL line
and a full traceback (1 MB of stderr a minute).

PostgreSQL only: an SQLite database is a local file with no server to lose, and an
idle daemon only reads it, which another process's write lock does not stop (WAL).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service import scheduler, store
from service.config import load_settings
from service.events import Event
from service.rules import Document
from tests.servers import LoopbackServer, Response, TcpProxy

pytestmark = pytest.mark.postgres

RSS = b'<rss version="2.0"><channel><title>Outlet</title></channel></rss>'


class NoRules:
    def extract(self, doc: Document) -> list[Event]:
        return []


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Outage:
    """The daemon's database URL (through the relay), and a way to take it away and back."""

    def __init__(self, postgres_databases: object) -> None:
        direct = postgres_databases.create()  # type: ignore[attr-defined]
        store.upgrade(direct)
        upstream = make_url(direct)
        self._proxy = TcpProxy((upstream.host or "127.0.0.1", upstream.port or 5432)).start()
        self.url = upstream.set(port=self._proxy.port).render_as_string(hide_password=False)

    def begin(self) -> None:
        self._proxy.cut()

    def end(self) -> None:
        self._proxy.restore()

    def close(self) -> None:
        self._proxy.stop()


@pytest.fixture
def outage(postgres_databases: object) -> Iterator[Outage]:
    made = Outage(postgres_databases)
    yield made
    made.close()


def test_outage_is_logged_once_and_its_end_once(
    tmp_path: Path, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    server = LoopbackServer().start()
    server.static("/feed.xml", RSS)
    server.route("/hook", lambda _req: Response(204))
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "service.toml").write_text(
        f'[database]\nurl = "{outage.url}"\n'
        "[http]\nallow_private_networks = true\n"
        "[scheduler]\ntick_seconds = 1\n"
        "[alerts]\ntick_seconds = 0.2\n"
        f'[[webhooks]]\nname = "analysts"\nurl = "{server.url("/hook")}"\nsecret = "{secret}"\n'
    )
    (tmp_path / "feeds.toml").write_text(
        f'[[feeds]]\nname = "outlet"\nurl = "{server.url("/feed.xml")}"\n'
        'outlet = "Outlet"\ninterval_seconds = 60\n'
    )
    settings = load_settings(tmp_path / "service.toml", environ={})
    engine = store.create_engine(settings.database_url)
    caplog.set_level(logging.INFO)
    stop = threading.Event()
    daemon = threading.Thread(
        target=scheduler.run,
        args=(settings, engine),
        kwargs={"once": False, "stop": stop, "rules": NoRules()},
    )

    def said(message: str) -> int:
        return sum(r.getMessage() == message for r in caplog.records)

    daemon.start()
    try:
        assert wait_for(lambda: said("Feed polled") >= 1, 30), "the daemon never polled"
        outage.begin()
        assert wait_for(lambda: said("Database unavailable; polls and deliveries wait for it"), 15)
        time.sleep(4)  # about 4 feed ticks and 20 delivery ticks, each failing
        outage.end()
        assert wait_for(lambda: said("Database available again") == 1, 20), [
            r.getMessage() for r in caplog.records
        ]
    finally:
        stop.set()
        daemon.join(timeout=60)
        server.stop()
        engine.dispose()
    assert not daemon.is_alive()
    assert said("Database unavailable; polls and deliveries wait for it") == 1
    assert said("Database available again") == 1
    noisy = [
        f"{r.levelname} {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.CRITICAL or (r.exc_info is not None and r.levelno > logging.DEBUG)
    ]
    assert noisy == []
    # Everything the outage put in the log: two lines (no reminder within seconds).
    assert [r.levelname for r in caplog.records if r.name == "service.database"] == [
        "ERROR",
        "WARNING",
    ]
    failures = next(r for r in caplog.records if r.getMessage() == "Database available again")
    assert failures.failures >= 2  # type: ignore[attr-defined]
