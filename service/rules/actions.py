"""Action frames, word classes and context cues (config/rules/actions.yaml).

The file's header documents the grammar; this module validates it and compiles
every list once into lookups over match-form text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick  # type: ignore[import-not-found]

from service.errors import RuleConfigError
from service.events import EventType
from service.rules.lexicon import PhraseIndex
from service.rules.loading import Checker, load_yaml
from service.rules.quantities import QuantityRules
from service.rules.text import normalise

PREPOSITIONS = frozenset(
    {
        "in",
        "at",
        "to",
        "into",
        "towards",
        "toward",
        "near",
        "around",
        "on",
        "inside",
        "within",
        "outside",
        "across",
        "through",
        "from",
        "of",
        "against",
        "targeting",
        "direct",
    }
)
_FRAME_KEYS = {
    "type",
    "words",
    "location",
    "origin",
    "destination",
    "destination_type",
    "requires",
    "requires_for",
    "object_types",
    "actor",
}
_CONTEXT_KEYS = {
    "hedges",
    "dismissals",
    "denials",
    "intent",
    "negations",
    "stative",
    "auxiliaries",
    "inchoatives",
    "anaphora",
    "another",
    "deictic_places",
    "reference_before",
    "conditional",
    "circumstance",
}


@dataclass(frozen=True, slots=True)
class Frame:
    type: EventType
    words: tuple[str, ...]
    location: frozenset[str]
    origin: frozenset[str]
    destination: frozenset[str]
    destination_type: EventType | None
    requires: str | None
    requires_for: dict[str, str]
    object_types: dict[str, EventType]
    actor_is_object: bool

    def requirement(self, word: str) -> str | None:
        return self.requires_for.get(word, self.requires)


class WordList:
    """A closed list of words/phrases, matched whole on match-form text."""

    def __init__(self, words: list[str]) -> None:
        self.words = tuple(
            sorted({normalise(w) for w in words if normalise(w)}, key=len, reverse=True)
        )
        body = "|".join(re.escape(w) for w in self.words) or r"(?!x)x"
        self.pattern = re.compile(rf"(?<![^\W_])(?:{body})(?![^\W_])")
        self._tail = re.compile(rf"(?<![^\W_])(?:{body})\s*$")
        self._automaton: Any = None
        if self.words:
            self._automaton = ahocorasick.Automaton()
            for word in self.words:
                self._automaton.add_word(word, word)
            self._automaton.make_automaton()

    def _may_contain(self, text: str) -> bool:
        """A quick test (one Aho-Corasick pass in C) before the regex: most sentences
        hold none of a list's words, and the alternation is tried at every position."""
        if self._automaton is None:
            return False
        for _ in self._automaton.iter(text):
            return True
        return False

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self._may_contain(text) else None

    def finditer(self, text: str) -> list[re.Match[str]]:
        return list(self.pattern.finditer(text)) if self._may_contain(text) else []

    def ends(self, text: str) -> bool:
        """True when ``text`` ends with one of the words (trailing spaces ignored)."""
        return self._may_contain(text) and bool(self._tail.search(text))


@dataclass(frozen=True, slots=True)
class ActionRules:
    frames: tuple[Frame, ...]
    triggers: PhraseIndex[tuple[int, str]]  # phrase -> (frame index, phrase)
    classes: dict[str, WordList]
    context: dict[str, WordList]
    quantities: QuantityRules
    sources: PhraseIndex[str]  # alias -> the outlet or source it names

    def cls(self, name: str) -> WordList:
        return self.classes[name]


def _mapping(path: Path, where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RuleConfigError(str(path), f"{where}: expected a mapping")
    return value


def load_actions(path: Path) -> ActionRules:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise RuleConfigError(str(path), "expected a mapping at the top level")
    unknown = set(data) - {"frames", "classes", "context", "quantities", "sources"}
    if unknown:
        raise RuleConfigError(str(path), f"unknown top-level key(s) {', '.join(sorted(unknown))}")

    raw_classes = _mapping(path, "classes", data.get("classes"))
    classes: dict[str, WordList] = {}
    for name, words in raw_classes.items():
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise RuleConfigError(str(path), f"classes.{name}: expected a list of words")
        classes[str(name)] = WordList(words)

    def class_ref(where: str, name: str) -> str:
        for part in name.split("_or_"):
            if part not in raw_classes and name not in raw_classes:
                raise RuleConfigError(str(path), f"{where}: unknown class {name!r}")
        if name not in classes:
            merged: list[str] = []
            for part in name.split("_or_"):
                merged.extend(raw_classes[part])
            classes[name] = WordList(merged)
        return name

    types = {t.value for t in EventType}
    frames: list[Frame] = []
    triggers: PhraseIndex[tuple[int, str]] = PhraseIndex()
    raw_frames = data.get("frames")
    if not isinstance(raw_frames, list) or not raw_frames:
        raise RuleConfigError(str(path), "expected a non-empty 'frames' list")
    for i, raw in enumerate(raw_frames):
        label = raw.get("type", "?") if isinstance(raw, dict) else "?"
        c = Checker(path, f"frames[{i}] ({label})", raw, _FRAME_KEYS)
        ftype = EventType(c.req_str("type", choices=types))
        words = c.str_list("words")
        if not words:
            c.fail("'words' must not be empty")
        preps = {}
        for key in ("location", "origin", "destination"):
            values = [normalise(v) for v in c.str_list(key)]
            bad = [v for v in values if v not in PREPOSITIONS]
            if bad:
                c.fail(f"'{key}' has unknown preposition(s) {bad}; known: {sorted(PREPOSITIONS)}")
            preps[key] = frozenset(values)
        dest_type = c.string("destination_type", required=False, choices=types)
        requires = c.string("requires", required=False)
        requires_for = {
            normalise(str(k)): class_ref(f"frames[{i}].requires_for.{k}", str(v))
            for k, v in _mapping(path, f"frames[{i}].requires_for", raw.get("requires_for")).items()
        }
        unknown_words = set(requires_for) - {normalise(w) for w in words}
        if unknown_words:
            c.fail(f"requires_for names words that are not triggers: {sorted(unknown_words)}")
        object_types = {}
        for k, v in _mapping(path, f"frames[{i}].object_types", raw.get("object_types")).items():
            if v not in types:
                c.fail(f"object_types.{k}: unknown event type {v!r}")
            object_types[class_ref(f"frames[{i}].object_types", str(k))] = EventType(v)
        actor = c.string("actor", required=False, choices={"subject", "object"}) or "subject"
        frame = Frame(
            type=ftype,
            words=tuple(normalise(w) for w in words),
            location=preps["location"],
            origin=preps["origin"],
            destination=preps["destination"],
            destination_type=EventType(dest_type) if dest_type else None,
            requires=class_ref(f"frames[{i}].requires", requires) if requires else None,
            requires_for=requires_for,
            object_types=object_types,
            actor_is_object=actor == "object",
        )
        frames.append(frame)
        for w in frame.words:
            triggers.add(w, (i, w))

    raw_context = _mapping(path, "context", data.get("context"))
    missing = _CONTEXT_KEYS - set(raw_context)
    if missing:
        raise RuleConfigError(str(path), f"context: missing list(s) {', '.join(sorted(missing))}")
    context: dict[str, WordList] = {}
    for name, words in raw_context.items():
        if name not in _CONTEXT_KEYS:
            raise RuleConfigError(str(path), f"context: unknown list {name!r}")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise RuleConfigError(str(path), f"context.{name}: expected a list of words")
        context[name] = WordList(words)
    for needed in (
        "force",
        "site",
        "equipment",
        "new_positions",
        "non_combatants",
        "dispersal",
        "captives",
        "arrests",
    ):
        if needed not in classes:
            raise RuleConfigError(str(path), f"classes: missing class {needed!r}")

    q = _mapping(path, "quantities", data.get("quantities"))
    nouns = {
        str(k).lower(): str(v)
        for k, v in _mapping(path, "quantities.nouns", q.get("nouns")).items()
    }
    equipment = {
        str(k).lower(): str(v)
        for k, v in _mapping(path, "quantities.equipment", q.get("equipment")).items()
    }
    if not nouns or not equipment:
        raise RuleConfigError(str(path), "quantities: 'nouns' and 'equipment' must not be empty")

    sources: PhraseIndex[str] = PhraseIndex()
    for name, aliases in _mapping(path, "sources", data.get("sources")).items():
        for alias in (name, *aliases):
            sources.add(str(alias), str(name))
    return ActionRules(
        frames=tuple(frames),
        triggers=triggers,
        classes=classes,
        context=context,
        quantities=QuantityRules(nouns=nouns, equipment=equipment),
        sources=sources,
    )
