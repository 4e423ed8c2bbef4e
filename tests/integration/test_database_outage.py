"""A PostgreSQL outage under a running daemon (issue 16, item 4).

The daemon's database connection goes through a loopback TCP relay that the test
cuts and restores.  During the outage both of the daemon's loops (due feeds every
second, due webhook deliveries five times a second) fail on every tick; the log
must say so once, with no traceback, and once more when the database is back.
Before the fix each failure was a CRITICAL line and a full traceback.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable
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


def test_outage_is_logged_once_and_its_end_once(
    tmp_path: Path, postgres_databases, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    direct = postgres_databases.create()
    store.upgrade(direct)
    server = LoopbackServer().start()
    server.static("/feed.xml", RSS)
    server.route("/hook", lambda _req: Response(204))
    upstream = make_url(direct)
    proxy = TcpProxy((upstream.host or "127.0.0.1", upstream.port or 5432)).start()
    relayed = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "service.toml").write_text(
        f'[database]\nurl = "{relayed}"\n'
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
    daemon.start()

    def said(message: str) -> int:
        return sum(r.getMessage() == message for r in caplog.records)

    try:
        assert wait_for(lambda: said("Feed polled") >= 1, 30), "the daemon never polled"
        proxy.cut()
        time.sleep(4)  # about 4 feed ticks and 20 delivery ticks, each failing
        proxy.restore()
        assert wait_for(lambda: said("Database available again") == 1, 15), [
            r.getMessage() for r in caplog.records
        ]
    finally:
        stop.set()
        daemon.join(timeout=60)
        proxy.stop()
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
    # Everything the outage put in the log: two lines (no reminder within 4 s).
    outage_lines = [r for r in caplog.records if r.name == "service.database"]
    assert len(outage_lines) == 2
