"""Score extracted events against hand-made gold events (the DESIGN.md matching rule).

A predicted event matches a gold event when both are in the same document, have
the same ``type`` and actor affiliation, and the predicted location is one of the
gold ``locations``: the names are compared through the gazetteer, so any alias of
the same place counts (and a name the gazetteer does not know must be equal after
normalisation). Matching is one-to-one, required gold events first.

Gold events marked ``optional`` count neither way: a prediction that matches one
is not a false positive, and an unmatched optional event is not a miss.

``date_acc`` is measured over the matches whose gold event gives a date: the
prediction is right when it names a day within one day of the gold day (gold
``YYYY-MM-DD``), or a date within the gold month or year (gold ``YYYY-MM``/``YYYY``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from service.errors import ConfigError
from service.events import Event
from service.rules.gazetteer import Gazetteer
from service.rules.text import normalise


@dataclass(frozen=True, slots=True)
class GoldEvent:
    id: str
    doc: str
    type: str
    affiliation: str
    locations: tuple[str, ...]
    date: str | None
    optional: bool
    evidence: str


@dataclass(frozen=True, slots=True)
class Prediction:
    doc: str
    event: Event


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    dated: int = 0
    dated_right: int = 0
    misses: list[GoldEvent] = field(default_factory=list)
    false_positives: list[Prediction] = field(default_factory=list)
    wrong_dates: list[tuple[GoldEvent, Prediction]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def date_accuracy(self) -> float:
        return self.dated_right / self.dated if self.dated else 1.0

    def summary(self) -> str:
        return (
            f"P={self.precision:.2f} R={self.recall:.2f} F1={self.f1:.2f} "
            f"date_acc={self.date_accuracy:.2f} tp={self.tp} fp={self.fp} fn={self.fn}"
        )


_GOLD_KEYS = {"id", "doc", "type", "actor_affiliation", "locations", "date", "optional", "evidence"}


def read_gold(path: Path) -> list[GoldEvent]:
    out: list[GoldEvent] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read gold file: {exc.strerror or exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(str(path), f"line {n}", f"not valid JSON: {exc.msg}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(str(path), f"line {n}", "expected a JSON object")
        missing = {"id", "doc", "type", "actor_affiliation", "locations"} - set(raw)
        if missing:
            raise ConfigError(
                str(path), f"line {n}", f"missing key(s) {', '.join(sorted(missing))}"
            )
        locations = raw["locations"]
        if not isinstance(locations, list) or not all(isinstance(x, str) for x in locations):
            raise ConfigError(str(path), f"line {n}", "'locations' must be a list of names")
        out.append(
            GoldEvent(
                id=str(raw["id"]),
                doc=str(raw["doc"]),
                type=str(raw["type"]),
                affiliation=str(raw["actor_affiliation"]),
                locations=tuple(locations),
                date=raw.get("date"),
                optional=bool(raw.get("optional", False)),
                evidence=str(raw.get("evidence", "")),
            )
        )
    return out


def date_matches(gold: str, predicted: str | None) -> bool:
    """A day date within one day of the gold day; a date inside a gold month or year."""
    if predicted is None:
        return False
    if len(gold) == 10:
        if len(predicted) != 10:
            return False
        try:
            return abs((date.fromisoformat(predicted) - date.fromisoformat(gold)).days) <= 1
        except ValueError:
            return False
    return predicted.startswith(gold)


class Matcher:
    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self._cache: dict[str, frozenset[str]] = {}

    def _ids(self, name: str) -> frozenset[str]:
        if name not in self._cache:
            ids = {p.id for p in self.gazetteer.lookup(name)}
            self._cache[name] = frozenset(ids or {"name:" + normalise(name)})
        return self._cache[name]

    def same_place(self, gold_names: Iterable[str], predicted: str) -> bool:
        ids = self._ids(predicted)
        return any(self._ids(g) & ids for g in gold_names)

    def matches(self, gold: GoldEvent, pred: Prediction) -> bool:
        e = pred.event
        return (
            gold.doc == pred.doc
            and gold.type == e.type.value
            and gold.affiliation == e.actor.affiliation.value
            and self.same_place(gold.locations, e.location.name)
        )


def score(
    gold: Sequence[GoldEvent], predictions: Sequence[Prediction], gazetteer: Gazetteer
) -> Score:
    matcher = Matcher(gazetteer)
    result = Score()
    free = list(predictions)
    ordered = sorted(gold, key=lambda g: g.optional)
    for g in ordered:
        candidates = [p for p in free if matcher.matches(g, p)]
        if not candidates:
            if not g.optional:
                result.fn += 1
                result.misses.append(g)
            continue
        # Prefer the candidate whose date agrees, so a second convoy pairs with its own date.
        best = next(
            (p for p in candidates if g.date and date_matches(g.date, p.event.date)), candidates[0]
        )
        free.remove(best)
        if g.optional:
            continue
        result.tp += 1
        if g.date:
            result.dated += 1
            if date_matches(g.date, best.event.date):
                result.dated_right += 1
            else:
                result.wrong_dates.append((g, best))
    result.fp = len(free)
    result.false_positives = free
    return result
