"""One real event in several reports: when two events are the same, and what merging adds.

Pure.  Two events are one when all of these hold:

- same ``type`` and same actor ``affiliation`` (the actor's name may differ: one report
  says "Iranian-backed militias", another names Liwa Fatemiyoun);
- same place: equal names, or both points known and at most ``merge_distance_km``
  apart (haversine);
- compatible dates: each date stands for an interval by its precision (day ±
  ``date_tolerance_days``; week: six days either side of the date, ± the tolerance; month;
  year) and the intervals overlap.  An unknown date matches nothing: without a date,
  two convoys to one town cannot be told apart, so they stay apart.

Look-alikes therefore stay distinct: two convoys to al-Mayadin on June 3 and June 10
(dates), a withdrawal and a later redeployment (types).

Merging (``enrich``) keeps what the event has and adds what the new report brings:
quantities it lacked, an origin, equipment, a more precise place or date, and
``hedged`` only while every report hedges.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import replace
from datetime import date, timedelta

from service.config import DedupSettings
from service.events import DatePrecision, Event, Location, Precision

_PLACE_RANK = {Precision.SITE: 0, Precision.TOWN: 1, Precision.DISTRICT: 2, Precision.PROVINCE: 3}
_DATE_RANK = {
    DatePrecision.DAY: 0,
    DatePrecision.WEEK: 1,
    DatePrecision.MONTH: 2,
    DatePrecision.YEAR: 3,
    DatePrecision.UNKNOWN: 4,
}
EARTH_RADIUS_KM = 6371.0


def distance_km(a: Location, b: Location) -> float | None:
    """Great-circle distance, or None when a point is unknown."""
    if a.lat is None or a.lon is None or b.lat is None or b.lon is None:
        return None
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def same_place(a: Location, b: Location, max_km: float) -> bool:
    if a.name.casefold() == b.name.casefold():
        return True
    km = distance_km(a, b)
    return km is not None and km <= max_km


def date_interval(
    value: str | None, precision: DatePrecision, tolerance_days: int = 0
) -> tuple[date, date] | None:
    """The days an event date may stand for; None when unknown or unreadable."""
    if not value or precision is DatePrecision.UNKNOWN:
        return None
    slack = timedelta(days=tolerance_days)
    try:
        if precision is DatePrecision.YEAR:
            year = int(value[:4])
            return date(year, 1, 1), date(year, 12, 31)
        if precision is DatePrecision.MONTH:
            year, month = int(value[:4]), int(value[5:7])
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    if precision is DatePrecision.WEEK:
        # A week-precise date is either the start of a week ("last week") or the day
        # of a report that dated nothing (the week up to it): six days either side.
        week = timedelta(days=6)
        return day - week - slack, day + week + slack
    return day - slack, day + slack


def dates_compatible(a: Event, b: Event, tolerance_days: int) -> bool:
    # The tolerance is split between the two dates so that day-precise dates may
    # differ by at most ``tolerance_days`` in total.
    ia = date_interval(a.date, a.date_precision, 0)
    ib = date_interval(b.date, b.date_precision, tolerance_days)
    if ia is None or ib is None:
        return False
    return ia[0] <= ib[1] and ib[0] <= ia[1]


def same_event(a: Event, b: Event, settings: DedupSettings) -> bool:
    return (
        a.type is b.type
        and a.actor.affiliation is b.actor.affiliation
        and same_place(a.location, b.location, settings.merge_distance_km)
        and dates_compatible(a, b, settings.date_tolerance_days)
    )


def closeness(a: Event, b: Event) -> tuple[float, float]:
    """Sort key among several matches: nearest date, then nearest place."""
    ia, ib = date_interval(a.date, a.date_precision), date_interval(b.date, b.date_precision)
    days = abs((ia[0] - ib[0]).days) if ia and ib else math.inf
    km = distance_km(a.location, b.location)
    return float(days), km if km is not None else math.inf


def search_window(event: Event, settings: DedupSettings) -> tuple[str, str] | None:
    """ISO date bounds (inclusive, as strings) a matching stored event's date falls within.

    For a query on the stored ``date`` column: any compatible date, whatever its
    precision, starts within a year before the interval and ends after its start.
    """
    interval = date_interval(event.date, event.date_precision, settings.date_tolerance_days)
    if interval is None:
        return None
    low = date(interval[0].year - 1, 1, 1)
    return low.isoformat()[:4], interval[1].isoformat() + "~"


def enrich(existing: Event, new: Event) -> Event:
    """``existing`` with what ``new`` adds; the evidence and source stay the first report's."""
    quantities = dict(existing.quantities)
    for key, value in new.quantities.items():
        quantities.setdefault(key, value)
    equipment = tuple(dict.fromkeys((*existing.equipment, *new.equipment)))
    location = existing.location
    if _PLACE_RANK[new.location.precision] < _PLACE_RANK[location.precision] or (
        location.lat is None and new.location.lat is not None
    ):
        location = new.location
    date_value, date_precision = existing.date, existing.date_precision
    if new.date is not None and _DATE_RANK[new.date_precision] < _DATE_RANK[date_precision]:
        date_value, date_precision = new.date, new.date_precision
    return replace(
        existing,
        quantities=quantities,
        equipment=equipment,
        origin=existing.origin or new.origin,
        location=location,
        in_region=existing.in_region or new.in_region,
        date=date_value,
        date_precision=date_precision,
        hedged=existing.hedged and new.hedged,
    )
