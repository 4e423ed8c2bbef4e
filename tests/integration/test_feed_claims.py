"""A feed claimed by a process that died is taken over promptly (issue 16, item 5).

A claim names its process and is renewed (a heartbeat) while the poll runs; one not
renewed for three heartbeats is claimed by a restarted daemon or another replica at
once, not after ``scheduler.lease_seconds``.  A live poll, however slow, keeps its
claim.  On SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service import models, store
from service.config import Settings, load_settings
from service.errors import StoreError
from service.events import Event
from service.pipeline import Pipeline, PollOutcome, PollStatus
from service.rules import Document
from service.sandbox import Sandbox
from tests.backends import BACKENDS
from tests.servers import LoopbackServer, Request, Response

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = 900
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet</title>'
    b'<item><guid isPermaLink="false">a</guid><title>A</title>'
    b"<description>A convoy of trucks reached the town on Monday, residents said.</description>"
    b"</item></channel></rss>"
)


class NoRules:
    def extract(self, doc: Document) -> list[Event]:
        return []


@pytest.fixture
def database(empty_database_url: str) -> Iterator[Engine]:
    store.upgrade(empty_database_url)
    engine = store.create_engine(empty_database_url)
    yield engine
    engine.dispose()


def settings_for(tmp_path: Path, engine: Engine, feed_url: str, heartbeat: float) -> Settings:
    config = tmp_path / "service.toml"
    url = engine.url.render_as_string(hide_password=False)
    config.write_text(
        f'[database]\nurl = "{url}"\n\n'
        f"[scheduler]\nlease_seconds = {LEASE}\nheartbeat_seconds = {heartbeat}\n"
    )
    (tmp_path / "feeds.toml").write_text(
        f'[[feeds]]\nname = "outlet"\nurl = "{feed_url}"\noutlet = "Outlet"\n'
        "interval_seconds = 600\n"
    )
    return load_settings(config, environ={})


def claim(engine: Engine, now: datetime, owner: str, stale: float = 30) -> list[store.PollTarget]:
    with store.session_scope(store.session_factory(engine)) as session:
        return store.claim_due_feeds(
            session,
            now=now,
            names=["outlet"],
            lease_seconds=LEASE,
            owner=owner,
            stale_seconds=stale,
        )


def feed_row(engine: Engine) -> models.Feed:
    with store.session_scope(store.session_factory(engine)) as session:
        row = session.scalars(sa.select(models.Feed)).one()
        session.expunge(row)
        return row


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_a_claim_without_heartbeat_is_taken_over_before_its_lease(
    tmp_path: Path, database: Engine
) -> None:
    settings = settings_for(tmp_path, database, "https://outlet.example/feed.xml", 10)
    with store.session_scope(store.session_factory(database)) as session:
        store.sync_feeds(session, settings.feeds)

    (first,) = claim(database, NOW, "host-a:1")
    assert first.claimed_until == NOW + timedelta(seconds=LEASE)
    row = feed_row(database)
    assert (row.claimed_by, row.heartbeat_at) == ("host-a:1", NOW)
    # Renewed at +20 s: alive until +50 s.
    with store.session_scope(store.session_factory(database)) as session:
        assert store.heartbeat(session, [row.id], owner="host-a:1", now=NOW + timedelta(seconds=20))
    assert claim(database, NOW + timedelta(seconds=49), "host-b:2") == []
    # No heartbeat since: host-a died. Taken over long before the 900 s lease.
    (taken,) = claim(database, NOW + timedelta(seconds=51), "host-b:2")
    assert taken.taken_over_from == "host-a:1"
    assert feed_row(database).claimed_by == "host-b:2"
    # The dead process's late heartbeat and record change nothing.
    record = store.PollRecord(
        polled=NOW, status=200, error=None, next_due=NOW, consecutive_errors=0
    )
    with store.session_scope(store.session_factory(database)) as session:
        assert store.heartbeat(session, [row.id], owner="host-a:1", now=NOW) == 0
        assert not store.record_poll(session, row.id, record, claimed_until=first.claimed_until)
    # The new owner's record ends the claim.
    with store.session_scope(store.session_factory(database)) as session:
        later = dataclasses.replace(record, next_due=NOW + timedelta(minutes=10))
        assert store.record_poll(session, row.id, later, claimed_until=taken.claimed_until)
    row = feed_row(database)
    assert (row.claimed_by, row.heartbeat_at) == (None, None)
    assert claim(database, NOW + timedelta(minutes=5), "host-c:3") == []


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout=20) as box:
        yield box


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_a_slow_poll_keeps_its_claim_and_a_dead_ones_feed_is_polled_by_another(
    tmp_path: Path, database: Engine, sandbox: Sandbox
) -> None:
    slow = threading.Event()

    def feed(_request: Request) -> Response:
        if slow.is_set():
            time.sleep(3.0)
        return Response(200, {"Content-Type": "application/rss+xml"}, FEED)

    with LoopbackServer(max_handler_seconds=10) as server:
        server.route("/feed.xml", feed)
        settings = settings_for(tmp_path, database, server.url("/feed.xml"), heartbeat=0.5)

        def pipeline() -> Pipeline:
            return Pipeline(
                settings,
                session_factory=store.session_factory(database),
                rules=NoRules(),
                sandbox=sandbox,
                allowed_networks=LOOPBACK,
            )

        one, two = pipeline(), pipeline()
        try:
            one.sync_feeds()
            # A daemon that died mid-poll left its claim, with a lease of 900 s.
            claim(database, NOW, "crashed-host:99", stale=one.stale_seconds)
            assert two.poll_due(now=NOW + timedelta(seconds=0.5)) == []  # still fresh
            (outcome,) = two.poll_due(now=NOW + timedelta(seconds=1.6))
            assert outcome.status is PollStatus.OK and outcome.articles == 1
            polled = feed_row(database).last_polled
            assert polled is not None and polled - NOW < timedelta(seconds=3)

            # A live poll slower than three heartbeats keeps its claim: renewed meanwhile.
            slow.set()
            due = feed_row(database).next_due
            assert due is not None
            results: list[list[PollOutcome]] = []
            worker = threading.Thread(target=lambda: results.append(one.poll_due(now=due)))
            begun = time.monotonic()
            worker.start()
            time.sleep(2.0)  # four heartbeats into a three-second poll
            assert feed_row(database).claimed_by == one.owner
            elapsed = timedelta(seconds=time.monotonic() - begun)
            assert two.poll_due(now=due + elapsed) == []
            worker.join(timeout=20)
            ((slow_outcome,),) = results
            assert slow_outcome.status is PollStatus.OK
            row = feed_row(database)
            assert row.claimed_by is None and row.last_polled is not None
            assert row.last_polled - due < timedelta(seconds=2)
            assert len([r for r in server.requests if r.path == "/feed.xml"]) == 2
        finally:
            one.close()
            two.close()


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_heartbeats_during_a_database_outage_are_logged_as_the_outage(
    tmp_path: Path,
    empty_database_url: str,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A heartbeat every few seconds while the database is down says so once (the
    # outage), not once per heartbeat; the first one that goes through ends it.
    store.upgrade(empty_database_url)
    engine = store.create_engine(empty_database_url)
    settings = settings_for(tmp_path, engine, "https://outlet.example/feed.xml", 10)
    clock = [0.0]
    worker = Pipeline(
        settings,
        session_factory=store.session_factory(engine),
        rules=NoRules(),
        sandbox=sandbox,
        monotonic=lambda: clock[0],
    )
    try:
        worker.sync_feeds()
        (target,) = claim(engine, NOW, worker.owner)
        running: dict[Future[PollOutcome | None], store.PollTarget] = {Future(): target}

        def unreachable(*_args: object, **_kwargs: object) -> int:
            cause = sa.exc.OperationalError("UPDATE feeds", {}, ConnectionRefusedError("refused"))
            raise StoreError(f"cannot renew feed claims: {cause}") from cause

        caplog.set_level(logging.INFO)
        with monkeypatch.context() as patched:
            patched.setattr(store, "heartbeat", unreachable)
            for beat in range(1, 6):
                clock[0] = beat * 10.0
                worker._heartbeat(running, lambda: NOW, 0.0)
        assert worker.database_outage.down
        clock[0] = 60.0
        worker._heartbeat(running, lambda: NOW, 0.0)
        assert not worker.database_outage.down
        messages = [r.getMessage() for r in caplog.records]
        assert messages.count("Database unavailable; polls and deliveries wait for it") == 1
        assert messages.count("Database available again") == 1
        assert "Cannot renew feed claims" not in messages
    finally:
        worker.close()
        engine.dispose()
