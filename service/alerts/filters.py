"""Which events a subscriber receives: ``[[webhooks]]`` filters as a pure function.

Evaluated in this order, and the first filter that refuses names the reason (logged
at DEBUG and kept out of the outbox):

1. ``movement_only`` (default on): the event type is a movement type;
2. ``in_region_only`` (default on): the location is in Deir Ezzor province;
3. ``include_hedged`` (default off): hedged reports are left out unless set;
4. ``types`` and ``affiliations``: when not empty, the event's must be listed;
5. ``places`` and the radius (``near_lat``, ``near_lon``, ``radius_km``): when either
   is set, the location's name (or district) is one of the places, or its point
   lies within the radius;
6. ``min_sources``: at least that many reports carry the event (a later report
   confirming it can make it pass: its first alert is then ``event.created``).
"""

from __future__ import annotations

import math
import re

from service.config import Area, WebhookFilters
from service.events import Event, Location

EARTH_RADIUS_KM = 6371.0088


def why_not(filters: WebhookFilters, event: Event, sources_count: int) -> str | None:
    """The first filter refusing ``event``, or None when the subscriber receives it."""
    if filters.movement_only and not event.movement:
        return f"not a movement event ({event.type.value})"
    if filters.in_region_only and not event.in_region:
        return f"outside Deir Ezzor ({event.location.name})"
    if event.hedged and not filters.include_hedged:
        return "hedged report"
    if filters.types and event.type not in filters.types:
        return f"type {event.type.value} not followed"
    if filters.affiliations and event.actor.affiliation not in filters.affiliations:
        return f"affiliation {event.actor.affiliation.value} not followed"
    if (filters.places or filters.area) and not (
        _at_place(event.location, filters.places) or _in_area(event.location, filters.area)
    ):
        return f"place {event.location.name} not followed"
    if sources_count < filters.min_sources:
        return f"{sources_count} source(s), fewer than {filters.min_sources}"
    return None


def matches(filters: WebhookFilters, event: Event, sources_count: int) -> bool:
    return why_not(filters, event, sources_count) is None


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.casefold()).strip()


def _at_place(location: Location, places: tuple[str, ...]) -> bool:
    wanted = {_key(place) for place in places}
    names = [location.name, location.admin2 or ""]
    return any(_key(name) in wanted for name in names if name)


def _in_area(location: Location, area: Area | None) -> bool:
    if area is None or location.lat is None or location.lon is None:
        return False
    return distance_km(location.lat, location.lon, area.lat, area.lon) <= area.radius_km


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
