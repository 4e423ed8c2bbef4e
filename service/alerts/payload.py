"""The body of one webhook alert, built once when the alert is queued (pure).

JSON format (Standard Webhooks' recommended envelope)::

    {"type": "event.created" | "event.corroborated", "timestamp": "<ISO 8601 UTC>",
     "data": {<the event per DESIGN.md>, "id": 42, "sources_count": 2,
              "sources": [{"url", "outlet", "title", "published"}...],
              "map_url": "https://www.openstreetmap.org/?mlat=...&mlon=...#map=12/.../..."}}

Slack format: ``{"text": "<one line>"}`` (what Slack's incoming webhooks and most
chat tools accept): type, actor, place, date and the sources as links.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.config import WebhookFormat
from service.enums import AlertKind
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

TEST_TYPE = "webhook.test"


@dataclass(frozen=True, slots=True)
class SourceReport:
    """A report carrying the event: where analysts can read it."""

    url: str | None
    outlet: str | None
    title: str | None
    published: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "outlet": self.outlet,
            "title": self.title,
            "published": self.published.isoformat() if self.published else None,
        }


@dataclass(frozen=True, slots=True)
class AlertSubject:
    """What an alert is about: a stored event and the reports carrying it."""

    event_id: int
    event: Event
    sources_count: int
    sources: tuple[SourceReport, ...]


def map_url(location: Location) -> str | None:
    if location.lat is None or location.lon is None:
        return None
    lat, lon = f"{location.lat:.5f}", f"{location.lon:.5f}"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=12/{lat}/{lon}"


def event_data(subject: AlertSubject) -> dict[str, Any]:
    return {
        "id": subject.event_id,
        **subject.event.to_dict(),
        "sources_count": subject.sources_count,
        "sources": [source.to_dict() for source in subject.sources],
        "map_url": map_url(subject.event.location),
    }


def summary(subject: AlertSubject, kind: AlertKind | None) -> str:
    """One line: what, who, where, when, and the sources (Slack ``<url|label>`` links)."""
    event = subject.event
    prefix = {AlertKind.CREATED: "", AlertKind.CORROBORATED: "Corroborated: ", None: "Test: "}
    what = event.type.value.capitalize()
    origin = f" from {event.origin.name}" if event.origin else ""
    when = f" on {event.date}" if event.date else " (date unknown)"
    hedged = " (hedged)" if event.hedged else ""
    links = [
        f"<{s.url}|{_slack_escape(s.outlet or s.url)}>" if s.url else _slack_escape(s.outlet or "?")
        for s in subject.sources
    ]
    sources = f" | sources: {', '.join(links)}" if links else ""
    return (
        _slack_escape(
            f"{prefix[kind]}{what}: {event.actor.name} ({event.actor.affiliation.value}) "
            f"at {event.location.name}{origin}{when}{hedged}"
        )
        + sources
    )


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_body(
    subject: AlertSubject, kind: AlertKind | None, fmt: WebhookFormat, *, now: datetime
) -> str:
    """The exact body sent on every attempt (``kind`` None: a ``webhook.test``)."""
    if fmt is WebhookFormat.SLACK:
        document: dict[str, Any] = {"text": summary(subject, kind)}
    else:
        document = {
            "type": kind.payload_type if kind is not None else TEST_TYPE,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": event_data(subject),
        }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def sample_subject(now: datetime) -> AlertSubject:
    """The made-up event ``service alerts test`` sends (id 0: no stored event has it)."""
    text = "A convoy of Iranian-backed militias arrived in al-Mayadin (sample alert)."
    return AlertSubject(
        event_id=0,
        event=Event(
            type=EventType.DEPLOYMENT,
            actor=Actor("Iranian-backed militias", Affiliation.IRAN_BACKED),
            location=Location("al-Mayadin", 35.0194, 40.4514, "Al Mayadin", Precision.TOWN),
            origin=Location("al-Bukamal", 34.4539, 40.9381, "Abu Kamal", Precision.TOWN),
            date=now.date().isoformat(),
            date_precision=DatePrecision.DAY,
            hedged=False,
            in_region=True,
            evidence=Evidence(text, 0, len(text)),
            source=Source("sample", "Sample Outlet", "https://example.org/sample-report"),
            quantities={"vehicles": 15},
            equipment=("rocket launchers",),
        ),
        sources_count=1,
        sources=(
            SourceReport("https://example.org/sample-report", "Sample Outlet", "Sample", now),
        ),
    )
