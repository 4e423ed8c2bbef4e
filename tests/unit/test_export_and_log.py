"""CSV rows of events and the key=value log format."""

from __future__ import annotations

import io
import logging

from service import log
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
from service.export import CSV_COLUMNS, csv_row


def test_csv_row_flattens_every_contract_field() -> None:
    event = Event(
        type=EventType.DEPLOYMENT,
        actor=Actor("Liwa Fatemiyoun", Affiliation.IRAN_BACKED),
        location=Location("Al-Mayadin", 35.02, 40.45, "Al-Mayadin", Precision.TOWN),
        origin=None,
        date="2020-06-03",
        date_precision=DatePrecision.DAY,
        hedged=True,
        in_region=True,
        evidence=Evidence("A convoy arrived.", 10, 27),
        source=Source("SOHR", "SouthFront", "https://southfront.press/x"),
        quantities={"vehicles": 30},
        equipment=("artillery", "rocket launchers"),
    )
    row = csv_row(event)
    assert tuple(row) == CSV_COLUMNS
    assert row["movement"] == "true" and row["hedged"] == "true"
    assert row["origin_name"] == "" and row["location_lat"] == 35.02
    assert row["quantities"] == '{"vehicles": 30}'
    assert row["equipment"] == "artillery; rocket launchers"
    flat = {key.replace("_", "") for key in CSV_COLUMNS}
    contract = event.to_dict()
    contract["origin"] = contract["location"]  # same shape; this event has none
    for key, value in contract.items():
        if isinstance(value, dict) and key not in ("quantities",):
            for sub in value:
                assert f"{key}{sub}".replace("_", "") in flat, (key, sub)
        else:
            assert key.replace("_", "") in flat, key


def test_log_fields_follow_the_message() -> None:
    stream = io.StringIO()
    log.setup("DEBUG", stream=stream)
    try:
        logging.getLogger("service.test").info(
            "Feed polled",
            extra={"duration_ms": 12, "feed_url": "https://a.org/feed", "note": "two words"},
        )
    finally:
        log.setup("WARNING")
    line = stream.getvalue().strip()
    assert line.endswith(
        "INFO service.test: Feed polled feed_url=https://a.org/feed duration_ms=12 note='two words'"
    )
