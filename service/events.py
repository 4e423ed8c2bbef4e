"""The event record: the public output contract of DESIGN.md.

Field names here are the names in CLI JSON lines, exports and webhook payloads.
These are frozen values produced by the rules and consumed by storage and alerts;
neither side passes dicts or ORM rows across.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class EventType(enum.StrEnum):
    DEPLOYMENT = "deployment"
    WITHDRAWAL = "withdrawal"
    RELOCATION = "relocation"
    ESTABLISHMENT = "establishment"
    TAKEOVER = "takeover"
    HANDOVER = "handover"
    VISIT = "visit"
    RECRUITMENT = "recruitment"
    STRIKE = "strike"
    ATTACK = "attack"

    @property
    def is_movement(self) -> bool:
        return self in MOVEMENT_TYPES


MOVEMENT_TYPES = frozenset(
    {
        EventType.DEPLOYMENT,
        EventType.WITHDRAWAL,
        EventType.RELOCATION,
        EventType.ESTABLISHMENT,
        EventType.TAKEOVER,
        EventType.HANDOVER,
        EventType.VISIT,
    }
)


class Affiliation(enum.StrEnum):
    IRAN_BACKED = "iran-backed"
    RUSSIA = "russia"
    REGIME = "regime"
    SDF = "sdf"
    COALITION = "coalition"
    ISIS = "isis"
    ISRAEL = "israel"
    TURKEY = "turkey"
    UNKNOWN = "unknown"


class Precision(enum.StrEnum):
    """How exactly a location's point stands for the place named in the text."""

    SITE = "site"
    TOWN = "town"
    DISTRICT = "district"
    PROVINCE = "province"


class DatePrecision(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    affiliation: Affiliation

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "affiliation": self.affiliation.value}


@dataclass(frozen=True, slots=True)
class Location:
    name: str
    lat: float | None
    lon: float | None
    admin2: str | None
    precision: Precision

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lat": self.lat,
            "lon": self.lon,
            "admin2": self.admin2,
            "precision": self.precision.value,
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """The sentence an event came from; offsets index the stored article text."""

    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Source:
    """Who reported it: the source named in the text, and the outlet/URL carrying it."""

    name: str | None
    outlet: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "outlet": self.outlet, "url": self.url}


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    actor: Actor
    location: Location
    origin: Location | None
    date: str | None
    date_precision: DatePrecision
    hedged: bool
    in_region: bool
    evidence: Evidence
    source: Source
    quantities: dict[str, int] = field(default_factory=dict)
    equipment: tuple[str, ...] = ()

    @property
    def movement(self) -> bool:
        return self.type.is_movement

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "movement": self.movement,
            "actor": self.actor.to_dict(),
            "location": self.location.to_dict(),
            "origin": self.origin.to_dict() if self.origin else None,
            "date": self.date,
            "date_precision": self.date_precision.value,
            "quantities": dict(self.quantities),
            "equipment": list(self.equipment),
            "hedged": self.hedged,
            "source": self.source.to_dict(),
            "in_region": self.in_region,
            "evidence": self.evidence.to_dict(),
        }
