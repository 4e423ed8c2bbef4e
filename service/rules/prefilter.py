"""Run many hand-written regexes over a report without scanning it once per regex.

Each pattern is parsed once (``re._parser``) for a set of literals one of which
every match must contain: ``\\bIranian\\s+(?:forces|troops)`` needs "iranian",
``(?:militias?|forces)\\s+loyal\\s+to`` needs "loyal".  At match time the literals
are found with plain substring search, and a pattern only runs in a window around
the places its literals occur (all literals of all patterns are found in one pass,
with an Aho-Corasick automaton).  A pattern without such a literal (or one the
parser cannot read) runs over the whole text, so the prefilter never loses a match
shorter than ``WINDOW`` characters on either side of its literal.

This is the "required factor" prefilter of RE2 and Hyperscan, cut down to the
patterns found in rule files: literal runs, groups, alternations and repeats.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import ahocorasick  # type: ignore[import-not-found]

_sre: Any
_sre_parse: Any
try:  # CPython's own regex parser (3.11+); elsewhere there is simply no prefilter
    _sre = importlib.import_module("re._constants")
    _sre_parse = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - other interpreters
    _sre = _sre_parse = None

K = TypeVar("K")
_GROUPS = (_sre.SUBPATTERN, _sre.BRANCH) if _sre is not None else ()

WINDOW = 160  # characters searched before and after a literal occurrence
_MIN_LITERAL = 2


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-case literals one of which every match of ``pattern`` contains, or None."""
    sets = required_literal_sets(pattern)
    return sets[0] if sets else None


def required_literal_sets(pattern: re.Pattern[str]) -> tuple[frozenset[str], ...]:
    """Every top-level set of literals a match must contain one of, best first.

    ``\\b(?:Iran|Tehran)[- ]backed\\s+(?:militias?|forces)`` gives {"backed"},
    {"iran", "tehran"} and {"militia", "forces"}: a text lacking any one set cannot match.
    """
    if _sre_parse is None or not pattern.flags & re.IGNORECASE:
        # Case-sensitive patterns could match text the lower-case literal search misses.
        return ()
    try:
        found = _candidates(_sre_parse.parse(pattern.pattern, pattern.flags))
    except Exception:  # an unknown parser shape: run the pattern everywhere
        return ()
    return tuple(frozenset(c) for c in sorted(found, key=_rank, reverse=True))


def leading_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-case literals every match of ``pattern`` starts with, or None.

    ``\\b(?:Iranian|Iran)\\s+forces`` starts with "iran" or "iranian": the pattern
    need only be tried where one of them occurs, and only there.
    """
    if _sre_parse is None or not pattern.flags & re.IGNORECASE:
        return None
    try:
        found = _leading(_sre_parse.parse(pattern.pattern, pattern.flags))
    except Exception:
        return None
    if not found or min(map(len, found)) < _MIN_LITERAL:
        return None
    return frozenset(found)


def _leading(items: Any) -> set[str] | None:
    """The literals a parsed sequence's matches start with (after zero-width tests)."""
    return _leading_from(list(items), 0)


def _leading_from(items: list[Any], i: int) -> set[str] | None:
    while i < len(items) and items[i][0] is _sre.AT:  # \b, ^: zero width
        i += 1
    if i == len(items):
        return None
    op, av = items[i]
    if op is _sre.LITERAL:
        j = i
        while j < len(items) and items[j][0] is _sre.LITERAL:
            j += 1
        prefix = "".join(chr(code).lower() for _op, code in items[i:j])
        following = _leading_from(items, j) if j < len(items) and items[j][0] in _GROUPS else None
        return {prefix + rest for rest in following} if following else {prefix}
    if op is _sre.SUBPATTERN:
        return _leading(av[-1])
    if op is _sre.BRANCH:
        branches = [_leading(branch) for branch in av[1]]
        return set().union(*branches) if all(branches) else None  # type: ignore[arg-type]
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        body = _leading(av[2])
        if body is None:
            return None
        if av[0] >= 1:
            return body
        rest = _leading_from(items, i + 1)  # an optional part: it or what follows
        return body | rest if rest else None
    return None


def _rank(literals: set[str]) -> tuple[int, int]:
    # Longer literals are rarer; fewer of them are cheaper to look for.
    return min(map(len, literals)), -len(literals)


def _literals(items: Any) -> set[str] | None:
    """The best required-literal set of a parsed sequence, or None when it has none."""
    usable = _candidates(items)
    return max(usable, key=_rank) if usable else None


def _candidates(items: Any) -> list[set[str]]:
    """The required-literal sets of a parsed sequence's elements."""
    candidates: list[set[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append({"".join(run)})
            run.clear()

    for op, av in items:
        if op is _sre.LITERAL:
            run.append(chr(av).lower())
            continue
        close_run()
        found: set[str] | None = None
        if op is _sre.SUBPATTERN:
            found = _literals(av[-1])
        elif op is _sre.BRANCH:
            branches = [_literals(branch) for branch in av[1]]
            if all(branches):
                found = set().union(*(b for b in branches if b))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1:
            found = _literals(av[2])
        if found:
            candidates.append(found)
    close_run()
    return [c for c in candidates if min(map(len, c)) >= _MIN_LITERAL]


class PatternSet(Generic[K]):
    """Regexes with a key each, matched over one text; see the module docstring."""

    def __init__(self, patterns: Sequence[tuple[re.Pattern[str], K]]) -> None:
        self._patterns = list(patterns)
        self._literal_sets = [required_literal_sets(p) for p, _ in self._patterns]
        self._leading = [leading_literals(p) for p, _ in self._patterns]
        literals = {literal for sets in self._literal_sets for s in sets for literal in s}
        literals.update(literal for lead in self._leading if lead for literal in lead)
        # Aho-Corasick finds every occurrence of every literal in one pass over the text.
        self._automaton: Any = None
        if literals:
            self._automaton = ahocorasick.Automaton()
            for literal in literals:
                self._automaton.add_word(literal, literal)
            self._automaton.make_automaton()

    def _occurrences(self, haystack: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        if self._automaton is not None:
            for end, literal in self._automaton.iter(haystack):
                found.setdefault(literal, []).append(end - len(literal) + 1)
        return found

    def finditer(self, text: str, lowered: str | None = None) -> Iterator[tuple[re.Match[str], K]]:
        """Every match of every pattern in ``text``.

        The literals are looked for in ``lowered``, ``text`` in lower case with the same
        offsets (by default ``text`` itself, which is then lower case already, as the
        match form is).  A pattern's own matches do not overlap; different patterns' may.
        """
        positions = self._occurrences(text if lowered is None else lowered)
        for (pattern, key), sets, lead in zip(
            self._patterns, self._literal_sets, self._leading, strict=True
        ):
            if lead is not None:
                # Every match starts at an occurrence of a leading literal: try just there.
                last_end = -1
                for at in sorted({at for literal in lead for at in positions.get(literal, ())}):
                    if at >= last_end and (hit := pattern.match(text, at)) and hit.end() > at:
                        last_end = hit.end()
                        yield hit, key
                continue
            if not sets:
                for m in pattern.finditer(text):
                    yield m, key
                continue
            # Windows around the set of literals that occurs least often in this text;
            # a set that does not occur at all rules the pattern out.
            best: list[tuple[int, int]] | None = None
            for literals in sets:
                found = [
                    (at, len(literal)) for literal in literals for at in positions.get(literal, ())
                ]
                if best is None or len(found) < len(best):
                    best = found
                if len(best) <= 1:
                    break
            if not best:
                continue
            last_end = -1
            for first, last, end in _windows(text, best):
                # A match holds one of these occurrences, so it starts at most WINDOW
                # before the first and no later than the last.
                pos = first
                hit = pattern.search(text, pos, end)
                while hit is not None and hit.start() <= last:
                    if hit.end() > hit.start() and hit.start() >= last_end:
                        last_end = hit.end()
                        yield hit, key
                    pos = max(hit.end(), hit.start() + 1)
                    hit = pattern.search(text, pos, end)


def _windows(text: str, occurrences: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(first start, last start, end) of the search windows around literal occurrences.

    A window ends at a space or the text's end, so an assertion at its end ("\\b",
    "(?!\\w)") sees what really follows.
    """
    merged: list[tuple[int, int, int]] = []
    for at, length in sorted(occurrences):
        first, end = max(0, at - WINDOW), at + length + WINDOW
        if end >= len(text):
            end = len(text)
        else:
            space = text.find(" ", end)
            end = len(text) if space == -1 else space
        if merged and first <= merged[-1][2]:
            merged[-1] = (merged[-1][0], at, max(merged[-1][2], end))
        else:
            merged.append((first, at, end))
    return merged
