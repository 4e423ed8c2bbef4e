"""Webhook delivery end to end: the real rules, a SQLite outbox, and a receiver on
127.0.0.1 that verifies every signature with the reference library.

A new in-region movement event is delivered once; out-of-region and hedged ones are
not (default filters); a receiver failing with 500 then recovering gets the alert with
the same webhook-id; 410 disables the subscriber; a hanging receiver times out and
never holds up polling; SIGTERM lets an attempt in flight finish and be recorded.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service import clock, store
from service.alerts.delivery import Deliverer
from service.config import Settings, load_settings
from service.enums import AlertKind, ArticleOrigin, DeliveryStatus
from service.fetch import Fetcher, FetchLimits
from service.pipeline import Pipeline, Report, build_client
from service.rules import PROJECT_RULES, RuleSet, load_rules
from service.scheduler import Daemon
from service.scheduler import run as run_service
from tests.receiver import HANG, Received, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)

IN_REGION = (
    "Iranian-backed militias sent reinforcements to al-Mayadin on Monday, local sources "
    "said. A convoy of 15 vehicles carrying fighters and rocket launchers arrived in the "
    "city from al-Bukamal."
)
IN_REGION_2 = "Regime forces sent reinforcements to al-Mayadin on Tuesday, local sources said."
HEDGED = (
    "Russian forces reportedly deployed to al-Mayadin on Monday, according to unconfirmed claims."
)
OUT_OF_REGION = (
    "Iranian-backed militias sent reinforcements to Palmyra on Monday, local sources said."
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


class World:
    """A pipeline and a deliverer on one SQLite database, sending to ``receiver``."""

    def __init__(self, tmp_path: Path, rules: RuleSet, receiver: Receiver, alerts: str) -> None:
        url = f"sqlite:///{tmp_path / 'service.db'}"
        (tmp_path / "service.toml").write_text(
            f'[database]\nurl = "{url}"\n[alerts]\n{alerts}\n'
            f'[[webhooks]]\nname = "analysts"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
        )
        (tmp_path / "feeds.toml").write_text("")
        self.settings: Settings = load_settings(tmp_path / "service.toml", environ={})
        store.upgrade(url)
        self.engine = store.create_engine(url)
        self.factory: sessionmaker[Session] = store.session_factory(self.engine)
        self.client = build_client()
        fetcher = Fetcher(self.client, FetchLimits(allowed_networks=LOOPBACK))
        self.pipeline = Pipeline(
            self.settings, session_factory=self.factory, rules=rules, fetcher=fetcher
        )
        self.deliverer = Deliverer(
            self.settings,
            session_factory=self.factory,
            fetcher=fetcher,
            db_lock=self.pipeline.db_lock,
        )
        self.reports = 0

    def ingest(self, text: str) -> int:
        self.reports += 1
        result = self.pipeline.ingest(
            Report(
                text=text,
                title=f"Report {self.reports}",
                url=f"https://valley.example/reports/{self.reports}",
                outlet="Valley Monitor",
                published=datetime(2024, 4, 30, 9, 0, tzinfo=UTC),
                published_is_estimate=False,
                origin_kind=ArticleOrigin.FEED,
            ),
            now=clock.now(),
        )
        assert result.stored
        return result.alerts

    def deliveries(self) -> list[store.DeliveryState]:
        with store.session_scope(self.factory) as session:
            return store.list_deliveries(session)

    def deliver_until(self, done: object, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.deliverer.deliver_due()
            if callable(done) and done():
                return
            time.sleep(0.05)
        raise AssertionError("deliveries did not settle in time")

    def close(self) -> None:
        self.deliverer.close()
        self.pipeline.close()
        self.client.close()
        self.engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([SECRET], hang_seconds=5.0) as server:
        yield server


def world_for(tmp_path: Path, rules: RuleSet, receiver: Receiver, alerts: str = "") -> World:
    return World(
        tmp_path,
        rules,
        receiver,
        alerts or "timeout_seconds = 2\nlease_seconds = 4\nretry_base_seconds = 0.1\n",
    )


def test_in_region_movement_event_delivered_once_others_not(
    tmp_path: Path, rules: RuleSet, receiver: Receiver
) -> None:
    world = world_for(tmp_path, rules, receiver)
    try:
        assert world.ingest(OUT_OF_REGION) == 0
        assert world.ingest(HEDGED) == 0
        assert world.ingest(IN_REGION) == 1
        world.deliver_until(lambda: len(receiver.delivered()) == 1)
        for _ in range(3):  # nothing more is due
            world.deliverer.deliver_due()
    finally:
        world.close()

    (item,) = receiver.received
    assert item.verified, item.error
    assert receiver.delivered() == {item.webhook_id: 1}
    document = item.document
    assert document["type"] == "event.created"
    data = document["data"]
    assert (data["type"], data["location"]["name"]) == ("deployment", "al-Mayadin")
    assert data["actor"]["affiliation"] == "iran-backed" and data["in_region"] is True
    assert data["sources"] == [
        {
            "url": "https://valley.example/reports/3",
            "outlet": "Valley Monitor",
            "title": "Report 3",
            "published": "2024-04-30T09:00:00+00:00",
        }
    ]
    assert data["map_url"].startswith("https://www.openstreetmap.org/?mlat=35.")
    (row,) = world.deliveries()
    assert (row.status, row.attempts, row.last_status) == (DeliveryStatus.DELIVERED, 1, 204)
    assert row.webhook_id == item.webhook_id and row.kind is AlertKind.CREATED


def test_failing_receiver_then_recovering_gets_the_same_id(
    tmp_path: Path, rules: RuleSet, receiver: Receiver
) -> None:
    answers = iter([500, (503, {"Retry-After": "0"}), 502])
    receiver.behaviour = lambda _r: next(answers, 200)
    world = world_for(tmp_path, rules, receiver)
    try:
        world.ingest(IN_REGION)
        world.deliver_until(lambda: len(receiver.delivered()) == 1)
        (row,) = world.deliveries()
    finally:
        world.close()

    assert [r.answered for r in receiver.received] == [500, 503, 502, 200]
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert all(r.verified for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1  # the same body every time
    assert (row.status, row.attempts, row.last_status) == (DeliveryStatus.DELIVERED, 4, 200)


def test_gone_disables_the_subscriber(tmp_path: Path, rules: RuleSet, receiver: Receiver) -> None:
    receiver.behaviour = lambda _r: 410
    world = world_for(tmp_path, rules, receiver)
    try:
        world.ingest(IN_REGION)
        world.deliver_until(lambda: world.deliveries()[0].status is DeliveryStatus.DEAD)
        # A later event is not even queued for the disabled subscriber.
        assert world.ingest(IN_REGION_2) == 0
        for _ in range(3):
            world.deliverer.deliver_due()
        (row,) = world.deliveries()
        with store.session_scope(world.factory) as session:
            (sub,) = store.list_subscriptions(session)
    finally:
        world.close()
    assert len(receiver.received) == 1
    assert row.last_status == 410 and "disabled" in (row.last_error or "")
    assert sub.name == "analysts" and sub.disabled_at is not None and sub.url == receiver.url


def test_client_error_goes_to_the_dead_letter_without_retry(
    tmp_path: Path, rules: RuleSet, receiver: Receiver
) -> None:
    receiver.behaviour = lambda _r: 400
    world = world_for(tmp_path, rules, receiver)
    try:
        world.ingest(IN_REGION)
        world.deliver_until(lambda: world.deliveries()[0].status is DeliveryStatus.DEAD)
        time.sleep(0.3)
        world.deliverer.deliver_due()
        (row,) = world.deliveries()
    finally:
        world.close()
    assert len(receiver.received) == 1 and row.attempts == 1


def test_hanging_receiver_times_out(tmp_path: Path, rules: RuleSet, receiver: Receiver) -> None:
    receiver.behaviour = lambda _r: HANG
    world = world_for(
        tmp_path,
        rules,
        receiver,
        "timeout_seconds = 1\nlease_seconds = 30\nretry_base_seconds = 60\n",
    )
    try:
        world.ingest(IN_REGION)
        started = time.monotonic()
        (outcome,) = world.deliverer.deliver_due()
        took = time.monotonic() - started
        (row,) = world.deliveries()
    finally:
        world.close()
    assert took < 3.0
    assert outcome.result.status is None
    assert row.status is DeliveryStatus.FAILED and row.attempts == 1
    assert (row.last_error or "").startswith("timeout")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > clock.now()  # scheduled about a minute on


def test_hanging_receiver_never_stalls_polling_and_stop_finishes_attempts(
    tmp_path: Path, rules: RuleSet, receiver: Receiver
) -> None:
    first = threading.Event()

    def behaviour(_r: Received) -> int:
        if not first.is_set():
            first.set()
            return HANG
        time.sleep(1.0)  # slow, but answers: in flight when the stop comes
        return 204

    receiver.behaviour = behaviour
    world = world_for(
        tmp_path,
        rules,
        receiver,
        "tick_seconds = 0.2\ntimeout_seconds = 3\nlease_seconds = 10\nretry_base_seconds = 0.1\n",
    )
    polls: list[float] = []
    original = world.pipeline.poll_due

    def counting_poll_due(*, now: datetime) -> list[object]:
        polls.append(time.monotonic())
        return original(now=now)  # type: ignore[return-value]

    world.pipeline.poll_due = counting_poll_due  # type: ignore[method-assign]
    daemon = Daemon(
        world.pipeline, tick_seconds=0.2, deliverer=world.deliverer, delivery_tick_seconds=0.2
    )
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run_until, args=(stop,))
    try:
        world.ingest(IN_REGION)
        runner.start()
        assert first.wait(10)
        hung_at = time.monotonic()
        time.sleep(2.0)  # the receiver is hanging all this time
        during = [t for t in polls if t > hung_at]
        assert len(during) >= 5, polls
        # The retry: answered after a second; stop while it is in flight.
        assert receiver.wait_for(lambda: len(receiver.received) == 2, timeout=10)
        stop.set()
        runner.join(timeout=20)
        assert not runner.is_alive()
        (row,) = world.deliveries()
    finally:
        stop.set()
        world.close()
    assert row.status is DeliveryStatus.DELIVERED and row.attempts == 2
    assert receiver.received[0].webhook_id == receiver.received[1].webhook_id


THIRD = (
    "SDF fighters took over a checkpoint in Dhiban after clashes with tribal gunmen on "
    "Sunday, residents said."
)


def test_run_once_sends_every_due_alert_not_one_batch(
    tmp_path: Path, rules: RuleSet, receiver: Receiver
) -> None:
    # Two workers claim two deliveries per round; `service run --once` must still send
    # all three alerts its pass (or earlier ones) left due.
    alerts = "workers = 2\ntimeout_seconds = 2\n[http]\nallow_private_networks = true\n"
    world = world_for(tmp_path, rules, receiver, alerts)
    try:
        assert [world.ingest(text) for text in (IN_REGION, IN_REGION_2, THIRD)] == [1, 1, 1]
        assert run_service(world.settings, world.engine, once=True, rules=rules) == []
    finally:
        world.close()
    assert len(receiver.delivered()) == 3
    assert all(item.verified for item in receiver.received)
    assert {row.status for row in world.deliveries()} == {DeliveryStatus.DELIVERED}
