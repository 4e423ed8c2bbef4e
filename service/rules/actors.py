"""The actor dictionary (config/rules/actors.yaml): armed groups, aliases, affiliation.

Closed families are aliases (whole words, case- and accent-insensitive); open
families ("Iranian-backed militias", "militias loyal to Iran") are ``patterns``,
Python regexes run over the match form of the text (lower case, hyphens read as
spaces, apostrophes dropped). ``ignore`` phrases ("al-Mayadeen TV") are masked
before places and actors are looked up, so they never count as either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from service.errors import RuleConfigError
from service.events import Actor, Affiliation
from service.rules.lexicon import PhraseIndex
from service.rules.loading import Checker, load_yaml
from service.rules.prefilter import PatternSet
from service.rules.text import MatchText, normalise

_ALLOWED = {"name", "affiliation", "kind", "aliases", "patterns", "note", "notes"}
GENERIC_NAMES = {
    Affiliation.IRAN_BACKED: "Iranian-backed militias",
    Affiliation.RUSSIA: "Russian forces",
    Affiliation.REGIME: "Syrian regime forces",
    Affiliation.SDF: "Syrian Democratic Forces",
    Affiliation.COALITION: "US-led coalition",
    Affiliation.ISIS: "ISIS",
    Affiliation.ISRAEL: "Israel",
    Affiliation.TURKEY: "Turkey",
    Affiliation.UNKNOWN: "unidentified forces",
}


@dataclass(frozen=True, slots=True)
class ActorEntry:
    name: str
    affiliation: Affiliation
    kind: str  # group | state | generic

    def actor(self) -> Actor:
        return Actor(self.name, self.affiliation)


@dataclass(frozen=True, slots=True)
class ActorMention:
    start: int  # match-form offsets
    end: int
    entry: ActorEntry


class ActorDictionary:
    def __init__(
        self,
        entries: list[ActorEntry],
        index: PhraseIndex[int],
        patterns: list[tuple[re.Pattern[str], int]],
        ignore: list[str],
    ) -> None:
        self.entries = entries
        self.index = index
        self.patterns = patterns
        self._pattern_set = PatternSet(patterns)
        phrases = sorted({normalise(p) for p in ignore if normalise(p)}, key=len, reverse=True)
        body = "|".join(re.escape(p) for p in phrases) or r"(?!x)x"
        self._ignore = re.compile(rf"(?<!\w)(?:{body})(?!\w)")

    @classmethod
    def load(cls, path: Path) -> ActorDictionary:
        data = load_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("actors"), list):
            raise RuleConfigError(str(path), "expected a top-level 'actors' list")
        unknown = set(data) - {"actors", "ignore"}
        if unknown:
            raise RuleConfigError(
                str(path), f"unknown top-level key(s) {', '.join(sorted(unknown))}"
            )
        entries: list[ActorEntry] = []
        index: PhraseIndex[int] = PhraseIndex()
        patterns: list[tuple[re.Pattern[str], int]] = []
        names: set[str] = set()
        for i, raw in enumerate(data["actors"]):
            label = raw.get("name", "?") if isinstance(raw, dict) else "?"
            c = Checker(path, f"actors[{i}] ({label})", raw, _ALLOWED)
            name = c.req_str("name")
            if name in names:
                c.fail(f"duplicate name {name!r}")
            names.add(name)
            aff = c.req_str("affiliation", choices={a.value for a in Affiliation})
            kind = (
                c.string("kind", required=False, choices={"group", "state", "generic"}) or "group"
            )
            entries.append(ActorEntry(name, Affiliation(aff), kind))
            for alias in (name, *c.str_list("aliases")):
                index.add(alias, i)
            for pattern in c.str_list("patterns"):
                try:
                    patterns.append((re.compile(pattern, re.IGNORECASE), i))
                except re.error as exc:
                    c.fail(f"pattern {pattern!r} does not compile: {exc}")
        ignore = data.get("ignore") or []
        if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
            raise RuleConfigError(str(path), "'ignore' must be a list of strings")
        return cls(entries, index, patterns, ignore)

    def ignored_spans(self, mt: MatchText) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in self._ignore.finditer(mt.text)]

    def find(self, mt: MatchText, blocked: list[tuple[int, int]]) -> list[ActorMention]:
        """Actor mentions, longest first where they overlap (a named group beats a generic)."""
        found: list[ActorMention] = []
        for hit in self.index.find(mt, blocked):
            found.append(ActorMention(hit.start, hit.end, self.entries[hit.keys[0]]))
        for m, i in self._pattern_set.finditer(mt.text):
            if not any(a <= m.start() < b for a, b in blocked):
                found.append(ActorMention(m.start(), m.end(), self.entries[i]))
        found.sort(key=lambda a: (a.start, -(a.end - a.start)))
        kept: list[ActorMention] = []
        for a in found:
            if kept and a.start < kept[-1].end:
                prev = kept[-1]
                # A named group inside a generic phrase ("Iranian-backed Liwa Fatemiyoun") wins.
                if prev.entry.kind == "generic" and a.entry.kind != "generic":
                    kept[-1] = a
                continue
            kept.append(a)
        return kept

    def generic(self, affiliation: Affiliation) -> Actor:
        for e in self.entries:
            if e.name == GENERIC_NAMES[affiliation] and e.affiliation is affiliation:
                return e.actor()
        for e in self.entries:
            if e.affiliation is affiliation and e.kind == "generic":
                return e.actor()
        return Actor(GENERIC_NAMES[affiliation], affiliation)
