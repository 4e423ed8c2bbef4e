"""The gazetteer: places, their aliases and coordinates (config/rules/gazetteer.yaml).

An alias may belong to several places ("Deir Ezzor" is the city and the
province, "Albukamal" the town and its district). ``resolve`` picks one from the
words around the mention: "city of"/"… city"/"town" mean the town-level place;
"province", "countryside", "governorate", "district", "desert", or a compass word
("southern Deir Ezzor", "the eastern countryside of …") mean the wider unit.
Without such a word the town-level place is taken, as reports mostly mean it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from service.errors import RuleConfigError
from service.events import Location, Precision
from service.rules.lexicon import Hit, PhraseIndex
from service.rules.loading import Checker, load_yaml
from service.rules.text import MatchText, normalise

KINDS = {
    "city",
    "town",
    "village",
    "neighbourhood",
    "district",
    "subdistrict",
    "province",
    "region",
    "oil_field",
    "gas_field",
    "base",
    "airport",
    "border_crossing",
    "site",
    "river",
}
# Narrow to wide: when context asks for the wide reading of an ambiguous alias.
_WIDTH = {
    "site": 0,
    "base": 0,
    "airport": 0,
    "oil_field": 0,
    "gas_field": 0,
    "border_crossing": 0,
    "neighbourhood": 1,
    "village": 2,
    "town": 2,
    "city": 3,
    "subdistrict": 4,
    "district": 5,
    "region": 5,
    "river": 5,
    "province": 6,
}
_REGION = "deir ez zor"


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    name: str
    aliases: tuple[str, ...]
    kind: str
    lat: float | None
    lon: float | None
    precision: Precision
    approximate: bool
    country: str
    admin1: str | None
    admin2: str | None
    parent: str | None
    coord_source: str | None

    @property
    def in_region(self) -> bool:
        return self.country == "SY" and normalise(self.admin1 or "") == _REGION

    @property
    def width(self) -> int:
        return _WIDTH[self.kind]

    def location(self) -> Location:
        return Location(self.name, self.lat, self.lon, self.admin2, self.precision)


_ALLOWED = {
    "id",
    "name",
    "aliases",
    "kind",
    "lat",
    "lon",
    "precision",
    "approximate",
    "country",
    "admin1",
    "admin2",
    "parent",
    "coord_source",
    "note",
    "notes",
}
_WIDE_AFTER = re.compile(
    r"^ ?(?:s )?(?:province|governorate|countryside|desert|district|subdistrict|region|"
    r"rural|badia|countrysides|hinterland|area|areas)\b"
)
_NARROW_AFTER = re.compile(r"^ ?(?:s )?(?:city|town|village|neighbourhood|neighborhood)\b")
_WIDE_BEFORE = re.compile(
    r"(?:(?:north|south|east|west)(?:ern)?(?: ?(?:north|south|east|west)(?:ern)?)?"
    r"|(?:countryside|province|governorate|desert|outskirts|districts?|region|areas?) of"
    r"|rural|greater)(?: the)?(?: syria s| syrias?| syrian)? ?$"
)
_NARROW_BEFORE = re.compile(r"(?:city|town|village|neighbourhood|neighborhood) of(?: the)? ?$")


class Gazetteer:
    def __init__(self, places: list[Place], path: Path) -> None:
        self.places = {p.id: p for p in places}
        self.index: PhraseIndex[str] = PhraseIndex()
        for p in places:
            for alias in (p.name, *p.aliases):
                self.index.add(alias, p.id)
                # Hashtags and run-together spellings: "#AlMayadin", "#DeirEzzor".
                joined = "".join(normalise(alias).split())
                if len(joined) >= 8 and joined != normalise(alias):
                    self.index.add(joined, p.id)
        for p in places:
            if p.parent and p.parent not in self.places:
                raise RuleConfigError(
                    str(path), f"place {p.id}: parent {p.parent!r} is not a place id"
                )
        self.province = next((p for p in places if p.kind == "province" and p.in_region), None)
        self._province_areas: dict[str, bool] = {}

    @classmethod
    def load(cls, path: Path) -> Gazetteer:
        data = load_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("places"), list):
            raise RuleConfigError(str(path), "expected a top-level 'places' list")
        places: list[Place] = []
        seen: set[str] = set()
        for i, raw in enumerate(data["places"]):
            label = raw.get("id", "?") if isinstance(raw, dict) else "?"
            c = Checker(path, f"places[{i}] ({label})", raw, _ALLOWED)
            pid = c.req_str("id")
            if pid in seen:
                c.fail(f"duplicate id {pid!r}")
            seen.add(pid)
            precision = c.req_str("precision", choices={p.value for p in Precision})
            places.append(
                Place(
                    id=pid,
                    name=c.req_str("name"),
                    aliases=tuple(c.str_list("aliases")),
                    kind=c.req_str("kind", choices=KINDS),
                    lat=c.number("lat", -90, 90, required=False),
                    lon=c.number("lon", -180, 180, required=False),
                    precision=Precision(precision),
                    approximate=c.flag("approximate", False),
                    country=c.req_str("country"),
                    admin1=c.string("admin1", required=False),
                    admin2=c.string("admin2", required=False),
                    parent=c.string("parent", required=False),
                    coord_source=c.string("coord_source", required=False),
                )
            )
        return cls(places, path)

    def ancestors(self, place: Place) -> list[Place]:
        out: list[Place] = []
        cur = place
        while cur.parent and cur.parent in self.places and len(out) < 10:
            cur = self.places[cur.parent]
            out.append(cur)
        return out

    def contains(self, outer: Place, inner: Place) -> bool:
        """True when ``inner`` lies within ``outer`` (or is it)."""
        if outer.id == inner.id or outer in self.ancestors(inner):
            return True
        same_admin1 = outer.country == inner.country and normalise(outer.admin1 or "") == normalise(
            inner.admin1 or ""
        )
        if outer.kind in ("province", "region"):
            return same_admin1 and inner.width < outer.width
        if outer.kind == "district":
            return (
                same_admin1
                and bool(outer.admin2)
                and inner.admin2 == outer.admin2
                and inner.width < outer.width
            )
        return False

    def town_of(self, place: Place) -> Place:
        """The town a site or neighbourhood belongs to (itself for towns and wider units)."""
        if place.width >= 2:
            return place
        for a in self.ancestors(place):
            if a.width >= 2:
                return a
        return place

    def resolve(self, hit: Hit[str], mt: MatchText) -> Place:
        """The place a mention stands for; an area of the province ("eastern Deir Ezzor
        countryside") is reported as the province, the finest unit with a boundary."""
        place = self._resolve(hit, mt)
        if place.kind == "region" and self.province is not None and self._names_province(place):
            return self.province
        return place

    def _names_province(self, region: Place) -> bool:
        """A compass area named after the province ("eastern Deir Ezzor countryside")."""
        cached = self._province_areas.get(region.id)
        if cached is None:
            cached = self._province_areas[region.id] = self._compute_names_province(region)
        return cached

    def _compute_names_province(self, region: Place) -> bool:
        assert self.province is not None
        if not self.contains(self.province, region):
            return False
        base = {normalise(a) for a in (self.province.name, *self.province.aliases)}
        stems = {b.replace(" province", "").replace(" governorate", "") for b in base}
        return all(
            any(stem in normalise(a) for stem in stems)
            for a in (region.name, *region.aliases)
            if a.isascii()
        )

    def _resolve(self, hit: Hit[str], mt: MatchText) -> Place:
        candidates = [self.places[k] for k in hit.keys]
        if len(candidates) == 1:
            return candidates[0]
        before = mt.text[max(0, hit.start - 40) : hit.start]
        after = mt.text[hit.end : hit.end + 25]
        by_width = sorted(candidates, key=lambda p: p.width)
        if _NARROW_BEFORE.search(before) or _NARROW_AFTER.match(after):
            towns = [p for p in by_width if p.width >= 2] or by_width
            return towns[0]
        if _WIDE_BEFORE.search(before) or _WIDE_AFTER.match(after):
            return by_width[-1]
        towns = [p for p in by_width if p.width >= 2 and p.width <= 3]
        return towns[0] if towns else by_width[0]

    def lookup(self, name: str) -> list[Place]:
        return [self.places[k] for k in self.index.lookup(name)]
