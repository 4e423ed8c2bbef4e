"""Webhook alerts, pure parts: signatures (Standard Webhooks vectors), filters, payloads,
the retry schedule and what each attempt outcome means."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from service.alerts import filters, payload, retry, signing
from service.alerts.payload import AlertSubject, SourceReport
from service.alerts.retry import AttemptResult, RetryPolicy
from service.config import AlertSettings, Area, WebhookFilters, WebhookFormat
from service.enums import AlertKind, DeliveryStatus
from service.errors import SignatureError
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
from tests.servers import shared_dir

VECTORS: dict[str, Any] = json.loads(
    (shared_dir() / "corpora" / "standard-webhooks" / "vectors.json").read_text(encoding="utf-8")
)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- signing


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_standard_webhooks_vectors(case: dict[str, Any]) -> None:
    secret = case.get("secret", VECTORS["secret"])
    if case["expect"] == "valid":
        signing.verify([secret], case["headers"], case["body"], now=case["now"])
    else:
        with pytest.raises(SignatureError):
            signing.verify([secret], case["headers"], case["body"], now=case["now"])


def test_sign_vector_byte_for_byte() -> None:
    (case,) = [c for c in VECTORS["cases"] if c["name"] == "sign_vector"]
    headers = case["headers"]
    made = signing.headers(
        [VECTORS["secret"]],
        webhook_id=headers["webhook-id"],
        timestamp=int(headers["webhook-timestamp"]),
        body=case["body"],
    )
    assert made["webhook-signature"] == headers["webhook-signature"]
    assert made["webhook-id"] == headers["webhook-id"]
    assert made["webhook-timestamp"] == headers["webhook-timestamp"]


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    old = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    new = VECTORS["secret"]
    # A current timestamp: the reference library's verify reads the wall clock.
    stamp = int(datetime.now(UTC).timestamp())
    body = '{"type":"event.created"}'
    made = signing.headers([new, old], webhook_id="msg_1", timestamp=stamp, body=body)
    assert len(made["webhook-signature"].split(" ")) == 2
    for held in (old, new):
        signing.verify([held], made, body, now=stamp)
        assert Webhook(held).verify(body, made) == {"type": "event.created"}
    with pytest.raises(SignatureError):
        signing.verify(["whsec_" + "A" * 32], made, body, now=stamp)


# --------------------------------------------------------------------------- filters


def event(
    *,
    type_: EventType = EventType.DEPLOYMENT,
    affiliation: Affiliation = Affiliation.IRAN_BACKED,
    place: str = "al-Mayadin",
    lat: float | None = 35.0194,
    lon: float | None = 40.4514,
    in_region: bool = True,
    hedged: bool = False,
) -> Event:
    return Event(
        type=type_,
        actor=Actor("Liwa Fatemiyoun", affiliation),
        location=Location(place, lat, lon, "Al Mayadin", Precision.TOWN),
        origin=Location("al-Bukamal", 34.45, 40.94, "Abu Kamal", Precision.TOWN),
        date="2024-04-30",
        date_precision=DatePrecision.DAY,
        hedged=hedged,
        in_region=in_region,
        evidence=Evidence("Liwa Fatemiyoun sent a convoy to al-Mayadin.", 0, 44),
        source=Source("SOHR", "SOHR", "https://www.syriahr.com/en/1"),
        quantities={"vehicles": 15},
        equipment=("rocket launchers",),
    )


FILTER_CASES = [
    ("defaults-in-region-movement", WebhookFilters(), event(), 1, None),
    ("defaults-out-of-region", WebhookFilters(), event(in_region=False), 1, "outside Deir Ezzor"),
    ("defaults-hedged", WebhookFilters(), event(hedged=True), 1, "hedged"),
    ("hedged-included", WebhookFilters(include_hedged=True), event(hedged=True), 1, None),
    ("defaults-strike", WebhookFilters(), event(type_=EventType.STRIKE), 1, "not a movement"),
    ("strike-allowed", WebhookFilters(movement_only=False), event(type_=EventType.STRIKE), 1, None),
    (
        "region-filter-off",
        WebhookFilters(in_region_only=False),
        event(in_region=False),
        1,
        None,
    ),
    (
        "type-not-followed",
        WebhookFilters(types=(EventType.WITHDRAWAL,)),
        event(),
        1,
        "type deployment",
    ),
    (
        "affiliation-not-followed",
        WebhookFilters(affiliations=(Affiliation.RUSSIA,)),
        event(),
        1,
        "affiliation iran-backed",
    ),
    (
        "place-any-case-and-dashes",
        WebhookFilters(places=("Al Mayadin",)),
        event(place="al-Mayadin"),
        1,
        None,
    ),
    ("place-elsewhere", WebhookFilters(places=("Hajin",)), event(), 1, "place al-Mayadin"),
    (
        "radius-inside",
        WebhookFilters(area=Area(35.0, 40.45, 5.0)),
        event(),
        1,
        None,
    ),
    (
        "radius-outside",
        WebhookFilters(area=Area(34.45, 40.94, 20.0)),  # al-Bukamal, ~75 km away
        event(),
        1,
        "place",
    ),
    (
        "radius-no-coordinates",
        WebhookFilters(area=Area(35.0, 40.45, 500.0)),
        event(lat=None, lon=None),
        1,
        "place",
    ),
    (
        "place-or-radius",
        WebhookFilters(places=("Hajin",), area=Area(35.0, 40.45, 5.0)),
        event(),
        1,
        None,
    ),
    ("too-few-sources", WebhookFilters(min_sources=2), event(), 1, "fewer than 2"),
    ("enough-sources", WebhookFilters(min_sources=2), event(), 2, None),
]


@pytest.mark.parametrize(
    ("rules", "subject", "sources", "refusal"),
    [case[1:] for case in FILTER_CASES],
    ids=[case[0] for case in FILTER_CASES],
)
def test_filters(rules: WebhookFilters, subject: Event, sources: int, refusal: str | None) -> None:
    reason = filters.why_not(rules, subject, sources)
    if refusal is None:
        assert reason is None
        assert filters.matches(rules, subject, sources)
    else:
        assert reason is not None and refusal in reason


def test_distance_between_known_towns() -> None:
    # al-Mayadin to al-Bukamal: about 75 km as the crow flies.
    assert 70 < filters.distance_km(35.0194, 40.4514, 34.4539, 40.9381) < 80


# --------------------------------------------------------------------------- payloads


def subject(**kwargs: Any) -> AlertSubject:
    return AlertSubject(
        event_id=7,
        event=event(**kwargs),
        sources_count=2,
        sources=(
            SourceReport("https://www.syriahr.com/en/1", "SOHR", "Convoy", NOW),
            SourceReport("https://npasyria.com/en/2", "North Press", "Convoy arrives", None),
        ),
    )


def test_json_payload_carries_event_sources_and_map_link() -> None:
    body = payload.build_body(subject(), AlertKind.CREATED, WebhookFormat.JSON, now=NOW)
    document = json.loads(body)
    assert document["type"] == "event.created"
    assert document["timestamp"] == "2024-05-01T12:00:00Z"
    data = document["data"]
    assert data["id"] == 7 and data["sources_count"] == 2
    assert data["type"] == "deployment" and data["movement"] is True
    assert data["actor"] == {"name": "Liwa Fatemiyoun", "affiliation": "iran-backed"}
    assert data["location"]["name"] == "al-Mayadin" and data["in_region"] is True
    assert data["evidence"]["text"].startswith("Liwa Fatemiyoun")
    assert [s["outlet"] for s in data["sources"]] == ["SOHR", "North Press"]
    assert data["sources"][0] == {
        "url": "https://www.syriahr.com/en/1",
        "outlet": "SOHR",
        "title": "Convoy",
        "published": "2024-05-01T12:00:00+00:00",
    }
    assert data["map_url"] == (
        "https://www.openstreetmap.org/?mlat=35.01940&mlon=40.45140#map=12/35.01940/40.45140"
    )
    corroborated = payload.build_body(
        subject(), AlertKind.CORROBORATED, WebhookFormat.JSON, now=NOW
    )
    assert json.loads(corroborated)["type"] == "event.corroborated"


def test_no_map_link_without_coordinates() -> None:
    body = payload.build_body(
        subject(lat=None, lon=None), AlertKind.CREATED, WebhookFormat.JSON, now=NOW
    )
    assert json.loads(body)["data"]["map_url"] is None


def test_slack_payload_is_one_line_with_place_actor_date_sources() -> None:
    body = payload.build_body(
        subject(hedged=True), AlertKind.CORROBORATED, WebhookFormat.SLACK, now=NOW
    )
    document = json.loads(body)
    assert list(document) == ["text"]
    text = document["text"]
    assert "\n" not in text
    assert text.startswith("Corroborated: Deployment: Liwa Fatemiyoun (iran-backed) at al-Mayadin")
    assert "from al-Bukamal on 2024-04-30 (hedged)" in text
    assert text.endswith(
        "sources: <https://www.syriahr.com/en/1|SOHR>, <https://npasyria.com/en/2|North Press>"
    )


def test_slack_text_escapes_control_characters() -> None:
    odd = AlertSubject(7, event(place="Hajin <east> & co"), 1, ())
    text = payload.summary(odd, AlertKind.CREATED)
    assert "Hajin &lt;east&gt; &amp; co" in text


# --------------------------------------------------------------------------- retries


def test_default_schedule_spans_about_a_day() -> None:
    policy = RetryPolicy.from_settings(AlertSettings())
    waits = retry.schedule(policy)
    assert waits == [60, 180, 540, 1620, 4860, 14580, 28800, 28800]
    assert 20 * 3600 < sum(waits) < 26 * 3600


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_jitter_stays_within_twenty_percent(rand: float) -> None:
    policy = RetryPolicy()
    for failed in range(1, policy.max_attempts):
        nominal = retry.nominal_delay(failed, policy)
        assert 0.8 * nominal <= retry.retry_delay(failed, policy, rand=rand) <= 1.2 * nominal


def test_retry_after_lengthens_but_is_clamped() -> None:
    policy = RetryPolicy(base=60, ceiling=3600, max_attempts=5)
    assert retry.retry_delay(1, policy, rand=0.5, retry_after=600) == 600
    assert retry.retry_delay(1, policy, rand=0.5, retry_after=10) == 60  # never shortens
    assert retry.retry_delay(1, policy, rand=0.5, retry_after=10**9) == 3600


DECISIONS = [
    ("2xx", AttemptResult(204), 1, DeliveryStatus.DELIVERED, False, False),
    ("500-retried", AttemptResult(500), 1, DeliveryStatus.FAILED, True, False),
    ("503-retried", AttemptResult(503, retry_after=120), 1, DeliveryStatus.FAILED, True, False),
    ("429-retried", AttemptResult(429), 1, DeliveryStatus.FAILED, True, False),
    ("408-retried", AttemptResult(408), 1, DeliveryStatus.FAILED, True, False),
    ("redirect-not-followed", AttemptResult(302), 1, DeliveryStatus.FAILED, True, False),
    ("timeout-retried", AttemptResult(None, "timeout: x"), 1, DeliveryStatus.FAILED, True, False),
    ("410-disables", AttemptResult(410), 1, DeliveryStatus.DEAD, False, True),
    ("400-dead-letter", AttemptResult(400), 1, DeliveryStatus.DEAD, False, False),
    ("404-dead-letter", AttemptResult(404), 1, DeliveryStatus.DEAD, False, False),
    ("exhausted", AttemptResult(500), 9, DeliveryStatus.DEAD, False, False),
]


@pytest.mark.parametrize(
    ("result", "attempts", "status", "scheduled", "disable"),
    [case[1:] for case in DECISIONS],
    ids=[case[0] for case in DECISIONS],
)
def test_decide(
    result: AttemptResult,
    attempts: int,
    status: DeliveryStatus,
    scheduled: bool,
    disable: bool,
) -> None:
    decision = retry.decide(result, attempts=attempts, policy=RetryPolicy(), now=NOW, rand=0.5)
    assert decision.status is status
    assert decision.disable is disable
    assert (decision.next_attempt_at is not None) is scheduled
    if scheduled:
        assert decision.next_attempt_at is not None
        wait = decision.next_attempt_at - NOW
        expected = max(60.0, result.retry_after or 0)
        assert wait == timedelta(seconds=expected)
    assert (decision.error is None) is (status is DeliveryStatus.DELIVERED)
