"""Pairing stored events with what the current rules find (``--reextract``)."""

from __future__ import annotations

import dataclasses

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
from service.reextract import StoredVersion, diff_events, with_evidence_span

MAYADIN = Location("al-Mayadin", 35.02, 40.45, "Mayadin", Precision.TOWN)
QURIYAH = Location("al-Quriyah", 35.0, 40.51, "Mayadin", Precision.TOWN)


def event(
    location: Location = MAYADIN,
    *,
    type_: EventType = EventType.DEPLOYMENT,
    start: int = 0,
    date: str | None = "2024-04-29",
    url: str = "https://o.example/a",
) -> Event:
    return Event(
        type=type_,
        actor=Actor("Iranian-backed militias", Affiliation.IRAN_BACKED),
        location=location,
        origin=None,
        date=date,
        date_precision=DatePrecision.DAY,
        hedged=False,
        in_region=True,
        evidence=Evidence("A convoy arrived.", start, start + 17),
        source=Source("SOHR", "Outlet", url),
    )


def test_same_events_no_diff() -> None:
    diff = diff_events(1, "a", [StoredVersion(7, event())], [event(url="https://other/")])
    assert diff.empty
    assert diff.unchanged == 1


def test_added_removed_changed() -> None:
    stored = [
        StoredVersion(1, event(start=0)),
        StoredVersion(2, event(QURIYAH, type_=EventType.ESTABLISHMENT, start=40)),
    ]
    fresh = [
        event(start=0, date="2024-04-28"),  # date changed
        event(type_=EventType.WITHDRAWAL, start=80),  # new
    ]
    diff = diff_events(5, "a", stored, fresh)
    assert [(c.event_id, c.fields) for c in diff.changed] == [(1, ("date",))]
    assert [v.event_id for v in diff.removed] == [2]
    assert [e.type for e in diff.added] == [EventType.WITHDRAWAL]
    assert not diff.empty


def test_changed_pairs_on_evidence_start_first() -> None:
    a, b = event(start=0), event(start=50)
    fresh = [dataclasses.replace(b, hedged=True), dataclasses.replace(a, hedged=True)]
    diff = diff_events(1, "a", [StoredVersion(1, a), StoredVersion(2, b)], fresh)
    assert sorted((c.event_id, c.new.evidence.start) for c in diff.changed) == [(1, 0), (2, 50)]


def test_location_change_is_removed_and_added() -> None:
    diff = diff_events(1, "a", [StoredVersion(1, event())], [event(QURIYAH)])
    assert [v.event_id for v in diff.removed] == [1]
    assert [e.location.name for e in diff.added] == ["al-Quriyah"]


def test_evidence_span_of_another_report() -> None:
    text = "Intro. Fighters came to al-Mayadin."
    moved = with_evidence_span(event(), 7, 35, text)
    assert moved.evidence == Evidence("Fighters came to al-Mayadin.", 7, 35)
    assert with_evidence_span(event(), 0, 17, text) == event()


def test_merged_event_unchanged_when_this_report_adds_nothing() -> None:
    # The stored event was enriched by another report (fighters, an origin); this
    # article's own version lacks them but is the same real event: nothing to do.
    merged = dataclasses.replace(
        event(), quantities={"vehicles": 30, "fighters": 50}, origin=QURIYAH
    )
    fresh = dataclasses.replace(event(), quantities={"vehicles": 30})
    diff = diff_events(1, "a", [StoredVersion(7, merged, shared=True)], [fresh])
    assert diff.empty and diff.unchanged == 1


def test_merged_event_changed_when_the_rules_now_add_or_move_something() -> None:
    merged = dataclasses.replace(event(), quantities={"vehicles": 30})
    adds = dataclasses.replace(event(), quantities={"vehicles": 30, "artillery": 4})
    diff = diff_events(1, "a", [StoredVersion(7, merged, shared=True)], [adds])
    assert [(c.event_id, c.fields) for c in diff.changed] == [(7, ("quantities",))]
    later = event(date="2024-05-20")  # no longer the same real event
    diff = diff_events(1, "a", [StoredVersion(7, merged, shared=True)], [later])
    assert [c.event_id for c in diff.changed] == [7]


def test_unshared_event_compared_field_by_field() -> None:
    stored = dataclasses.replace(event(), quantities={"vehicles": 30, "fighters": 50})
    fresh = dataclasses.replace(event(), quantities={"vehicles": 30})
    diff = diff_events(1, "a", [StoredVersion(7, stored)], [fresh])
    assert [(c.event_id, c.fields) for c in diff.changed] == [(7, ("quantities",))]
