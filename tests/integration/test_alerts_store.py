"""The webhook outbox on SQLite and PostgreSQL: what is queued for whom, claims with a
lease (``SKIP LOCKED`` between replicas), attempts recorded, replays, disabling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import models, store
from service.config import WebhookFilters, WebhookFormat, WebhookSettings
from service.enums import AlertKind, ArticleOrigin, DeliveryStatus
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
from service.hashing import content_hash
from tests.backends import BACKENDS

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

EVENT = Event(
    type=EventType.DEPLOYMENT,
    actor=Actor("Liwa Fatemiyoun", Affiliation.IRAN_BACKED),
    location=Location("al-Mayadin", 35.0194, 40.4514, "Al Mayadin", Precision.TOWN),
    origin=None,
    date="2024-04-30",
    date_precision=DatePrecision.DAY,
    hedged=False,
    in_region=True,
    evidence=Evidence("a convoy", 0, 8),
    source=Source("SOHR", "SOHR", "https://outlet.example/1"),
)


def hook(name: str, **changes: object) -> WebhookSettings:
    base = WebhookSettings(name=name, url=f"https://{name}.example/hook", secrets=(SECRET,))
    return replace(base, **changes)  # type: ignore[arg-type]


def add_event(session: Session, event: Event = EVENT, n: int = 1) -> int:
    """Store report ``n`` and its event; report n's event falls n-1 weeks after ``event``'s
    date, so reports of different numbers are different real events (not merged)."""
    if event.date is not None and n != 1:
        later = date.fromisoformat(event.date) + timedelta(weeks=n - 1)
        event = replace(event, date=later.isoformat())
    article_id = store.add_article(
        session,
        store.NewArticle(
            text=f"report {n} about a convoy",
            content_hash=content_hash(f"report {n}"),
            origin_kind=ArticleOrigin.FEED,
            fetched=NOW,
            url=f"https://outlet.example/{n}",
            outlet="Outlet",
            title=f"Report {n}",
        ),
    )
    (write,) = store.store_events(session, article_id, [event], now=NOW)
    event_id = write.event_id
    return event_id


def corroborate(session: Session, event_id: int, n: int) -> None:
    """What merging a duplicate does to the event: one more report carrying it."""
    article_id = store.add_article(
        session,
        store.NewArticle(
            text=f"report {n}",
            content_hash=content_hash(f"report {n}"),
            origin_kind=ArticleOrigin.FEED,
            fetched=NOW,
            url=f"https://other.example/{n}",
            outlet=f"Other {n}",
        ),
    )
    session.add(
        models.EventArticle(
            event_id=event_id, article_id=article_id, evidence_start=0, evidence_end=6
        )
    )
    row = session.get(models.Event, event_id)
    assert row is not None
    row.sources_count += 1
    session.flush()


def queued(session: Session) -> list[tuple[str, AlertKind, int]]:
    return [
        (d.subscriber, d.kind, d.event_id)
        for d in sorted(store.list_deliveries(session), key=lambda d: d.id)
    ]


pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def test_new_event_queued_for_matching_subscribers_only(session: Session) -> None:
    subs = [
        hook("all"),
        hook("russia", filters=WebhookFilters(affiliations=(Affiliation.RUSSIA,))),
        hook("slack", format=WebhookFormat.SLACK),
    ]
    out = add_event(session, replace(EVENT, in_region=False), n=2)
    hedged = add_event(session, replace(EVENT, hedged=True), n=3)
    event_id = add_event(session, n=1)
    items = [(out, AlertKind.CREATED), (hedged, AlertKind.CREATED), (event_id, AlertKind.CREATED)]
    assert store.enqueue_deliveries(session, items, subs, now=NOW) == 2
    assert queued(session) == [
        ("all", AlertKind.CREATED, event_id),
        ("slack", AlertKind.CREATED, event_id),
    ]
    rows = {row.subscriber: row for row in session.scalars(sa.select(models.Delivery))}
    assert rows["all"].payload is not None and rows["all"].payload.startswith(
        '{"type":"event.created"'
    )
    assert rows["slack"].payload is not None and rows["slack"].payload.startswith('{"text":')
    assert rows["all"].webhook_id != rows["slack"].webhook_id
    assert all(
        r.status is DeliveryStatus.PENDING and r.next_attempt_at == NOW for r in rows.values()
    )
    # The same event announced again queues nothing twice.
    assert store.enqueue_deliveries(session, [(event_id, AlertKind.CREATED)], subs, now=NOW) == 0


def test_corroboration_goes_to_opted_in_subscribers_that_had_the_event(session: Session) -> None:
    subs = [
        hook("plain"),
        hook("opted", corroborated=True),
        hook("two-sources", corroborated=True, filters=WebhookFilters(min_sources=2)),
    ]
    event_id = add_event(session)
    store.enqueue_deliveries(session, [(event_id, AlertKind.CREATED)], subs, now=NOW)
    assert queued(session) == [
        ("plain", AlertKind.CREATED, event_id),
        ("opted", AlertKind.CREATED, event_id),
    ]
    corroborate(session, event_id, 2)
    later = NOW + timedelta(hours=1)
    assert (
        store.enqueue_deliveries(session, [(event_id, AlertKind.CORROBORATED)], subs, now=later)
        == 2
    )
    assert queued(session)[2:] == [
        ("opted", AlertKind.CORROBORATED, event_id),
        # Now it passes min_sources: its first alert is event.created.
        ("two-sources", AlertKind.CREATED, event_id),
    ]
    subject_sources = store.alert_subject(session, event_id)
    assert subject_sources is not None and subject_sources.sources_count == 2
    assert [s.outlet for s in subject_sources.sources] == ["Outlet", "Other 2"]
    # A third report: one more corroboration each for the opted-in subscribers.
    corroborate(session, event_id, 3)
    assert (
        store.enqueue_deliveries(session, [(event_id, AlertKind.CORROBORATED)], subs, now=later)
        == 2
    )
    kinds = [k for s, k, _ in queued(session) if s == "two-sources"]
    assert kinds == [AlertKind.CREATED, AlertKind.CORROBORATED]


def test_claim_lease_record_and_retry_keep_the_webhook_id(session: Session) -> None:
    subs = [hook("a")]
    event_id = add_event(session)
    store.enqueue_deliveries(session, [(event_id, AlertKind.CREATED)], subs, now=NOW)
    (claimed,) = store.claim_due_deliveries(
        session, now=NOW, subscriptions=subs, lease_seconds=60, limit=10
    )
    assert claimed.attempts == 1 and claimed.payload.startswith("{")
    # Leased: not claimed again before the lease ends (a crashed sender), then it is.
    assert (
        store.claim_due_deliveries(
            session, now=NOW + timedelta(seconds=59), subscriptions=subs, lease_seconds=60, limit=10
        )
        == []
    )
    (again,) = store.claim_due_deliveries(
        session, now=NOW + timedelta(seconds=61), subscriptions=subs, lease_seconds=60, limit=10
    )
    assert again.webhook_id == claimed.webhook_id and again.attempts == 2
    store.record_attempt(
        session,
        again.id,
        status=DeliveryStatus.FAILED,
        http_status=500,
        error="HTTP 500",
        next_attempt_at=NOW + timedelta(minutes=5),
        now=NOW,
    )
    assert (
        store.claim_due_deliveries(
            session, now=NOW + timedelta(minutes=4), subscriptions=subs, lease_seconds=60, limit=10
        )
        == []
    )
    (third,) = store.claim_due_deliveries(
        session, now=NOW + timedelta(minutes=5), subscriptions=subs, lease_seconds=60, limit=10
    )
    store.record_attempt(
        session,
        third.id,
        status=DeliveryStatus.DELIVERED,
        http_status=200,
        error=None,
        next_attempt_at=None,
        now=NOW + timedelta(minutes=5),
    )
    (state,) = store.list_deliveries(session)
    assert (state.status, state.attempts, state.last_status) == (DeliveryStatus.DELIVERED, 3, 200)
    assert state.delivered_at == NOW + timedelta(minutes=5)
    assert store.list_deliveries(session, failed_only=True) == []
    # Subscribers no longer configured are not claimed.
    assert (
        store.claim_due_deliveries(
            session,
            now=NOW + timedelta(days=1),
            subscriptions=[hook("b")],
            lease_seconds=60,
            limit=10,
        )
        == []
    )


def test_disabled_subscriber_gets_nothing_until_its_url_changes(session: Session) -> None:
    sub = hook("a")
    first = add_event(session, n=1)
    store.enqueue_deliveries(session, [(first, AlertKind.CREATED)], [sub], now=NOW)
    store.disable_subscription(session, "a", url=sub.url, reason="HTTP 410", now=NOW)
    assert (
        store.claim_due_deliveries(
            session, now=NOW, subscriptions=[sub], lease_seconds=60, limit=10
        )
        == []
    )
    second = add_event(session, n=2)
    assert store.enqueue_deliveries(session, [(second, AlertKind.CREATED)], [sub], now=NOW) == 0
    moved = replace(sub, url="https://a.example/new-hook")
    assert store.disabled_subscribers(session, [moved]) == set()
    (claimed,) = store.claim_due_deliveries(
        session, now=NOW, subscriptions=[moved], lease_seconds=60, limit=10
    )
    assert claimed.event_id == first
    assert store.enable_subscription(session, "a") is True
    assert store.disabled_subscribers(session, [sub]) == set()


def test_replay_by_id_and_since(session: Session) -> None:
    subs = [hook("a")]
    ids = [add_event(session, n=n) for n in (1, 2)]
    store.enqueue_deliveries(session, [(ids[0], AlertKind.CREATED)], subs, now=NOW)
    later = NOW + timedelta(days=2)
    store.enqueue_deliveries(session, [(ids[1], AlertKind.CREATED)], subs, now=later)
    for target in store.claim_due_deliveries(
        session, now=later, subscriptions=subs, lease_seconds=60, limit=10
    ):
        store.record_attempt(
            session,
            target.id,
            status=DeliveryStatus.DEAD,
            http_status=400,
            error="HTTP 400",
            next_attempt_at=None,
            now=later,
        )
    newest, oldest = store.list_deliveries(session)
    assert store.replay_deliveries(session, now=later, since=later - timedelta(hours=1)) == 1
    # Already pending: not counted again.
    assert store.replay_deliveries(session, now=later, delivery_id=newest.id) == 0
    assert store.replay_deliveries(session, now=later, delivery_id=oldest.id) == 1
    states = store.list_deliveries(session)
    assert all(s.status is DeliveryStatus.PENDING and s.attempts == 0 for s in states)
    assert {s.webhook_id for s in states} == {newest.webhook_id, oldest.webhook_id}
