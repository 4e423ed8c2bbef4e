"""Flat renderings of events for exports (CSV); pure functions over the contract."""

from __future__ import annotations

import json
from typing import Any

from service.events import Event, Location

CSV_COLUMNS = (
    "type",
    "movement",
    "actor_name",
    "actor_affiliation",
    "location_name",
    "location_lat",
    "location_lon",
    "location_admin2",
    "location_precision",
    "origin_name",
    "origin_lat",
    "origin_lon",
    "origin_admin2",
    "origin_precision",
    "date",
    "date_precision",
    "quantities",
    "equipment",
    "hedged",
    "in_region",
    "source_name",
    "source_outlet",
    "source_url",
    "evidence_text",
    "evidence_start",
    "evidence_end",
)


def _location(prefix: str, location: Location | None) -> dict[str, Any]:
    if location is None:
        return {f"{prefix}_{key}": "" for key in ("name", "lat", "lon", "admin2", "precision")}
    return {
        f"{prefix}_{key}": "" if value is None else value
        for key, value in location.to_dict().items()
    }


def csv_row(event: Event) -> dict[str, Any]:
    """One CSV row: nested fields flattened, quantities as JSON, equipment joined by '; '."""
    row: dict[str, Any] = {
        "type": event.type.value,
        "movement": str(event.movement).lower(),
        "actor_name": event.actor.name,
        "actor_affiliation": event.actor.affiliation.value,
        **_location("location", event.location),
        **_location("origin", event.origin),
        "date": event.date or "",
        "date_precision": event.date_precision.value,
        "quantities": json.dumps(dict(event.quantities), sort_keys=True),
        "equipment": "; ".join(event.equipment),
        "hedged": str(event.hedged).lower(),
        "in_region": str(event.in_region).lower(),
        "source_name": event.source.name or "",
        "source_outlet": event.source.outlet or "",
        "source_url": event.source.url or "",
        "evidence_text": event.evidence.text,
        "evidence_start": event.evidence.start,
        "evidence_end": event.evidence.end,
    }
    return {column: row[column] for column in CSV_COLUMNS}
