"""Run many hand-written regexes over a report without scanning it once per regex.

Each pattern is parsed once (``re._parser``) for a set of literals one of which
every match must contain: ``\\bIranian\\s+(?:forces|troops)`` needs "iranian",
``(?:militias?|forces)\\s+loyal\\s+to`` needs "loyal".  At match time the literals
are found with plain substring search, and a pattern only runs in a window around
the places its literals occur.  A pattern without such a literal (or one the
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

_sre: Any
_sre_parse: Any
try:  # CPython's own regex parser (3.11+); elsewhere there is simply no prefilter
    _sre = importlib.import_module("re._constants")
    _sre_parse = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - other interpreters
    _sre = _sre_parse = None

K = TypeVar("K")

WINDOW = 160  # characters searched before and after a literal occurrence
_MIN_LITERAL = 2


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-case literals one of which every match of ``pattern`` contains, or None."""
    if _sre_parse is None or not pattern.flags & re.IGNORECASE:
        # Case-sensitive patterns could match text the lower-case literal search misses.
        return None
    try:
        found = _literals(_sre_parse.parse(pattern.pattern, pattern.flags))
    except Exception:  # an unknown parser shape: run the pattern everywhere
        return None
    return frozenset(found) if found else None


def _literals(items: Any) -> set[str] | None:
    """The best required-literal set of a parsed sequence, or None when it has none."""
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
    usable = [c for c in candidates if min(map(len, c)) >= _MIN_LITERAL]
    if not usable:
        return None
    # Longer literals are rarer; fewer of them are cheaper to look for.
    return max(usable, key=lambda c: (min(map(len, c)), -len(c)))


class PatternSet(Generic[K]):
    """Regexes with a key each, matched over one text; see the module docstring."""

    def __init__(self, patterns: Sequence[tuple[re.Pattern[str], K]]) -> None:
        self._patterns = list(patterns)
        self._literals = [required_literals(p) for p, _ in self._patterns]

    def finditer(
        self, text: str, lowered: str | None = None
    ) -> Iterator[tuple[re.Match[str], K]]:
        """Every match of every pattern in ``text``.

        The literals are looked for in ``lowered``, ``text`` in lower case with the same
        offsets (by default ``text`` itself, which is then lower case already, as the
        match form is).  A pattern's own matches do not overlap; different patterns' may.
        """
        haystack = text if lowered is None else lowered
        positions: dict[str, list[int]] = {}
        for (pattern, key), literals in zip(self._patterns, self._literals, strict=True):
            if literals is None:
                for m in pattern.finditer(text):
                    yield m, key
                continue
            windows = sorted(
                _window(text, at, len(literal))
                for literal in literals
                for at in _occurrences(haystack, literal, positions)
            )
            last_end = -1
            for start, end in _merge(windows):
                for m in pattern.finditer(text, start, end):
                    if m.start() >= last_end and m.end() > m.start():
                        last_end = m.end()
                        yield m, key


def _window(text: str, at: int, length: int) -> tuple[int, int]:
    """The span searched around a literal at ``at``; it ends at a space or the text's end,
    so an assertion at the window's end ("\\b", "(?!\\w)") sees what really follows."""
    end = at + length + WINDOW
    if end >= len(text):
        return max(0, at - WINDOW), len(text)
    space = text.find(" ", end)
    return max(0, at - WINDOW), len(text) if space == -1 else space


def _occurrences(text: str, literal: str, cache: dict[str, list[int]]) -> list[int]:
    found = cache.get(literal)
    if found is None:
        found = []
        at = text.find(literal)
        while at != -1:
            found.append(at)
            at = text.find(literal, at + 1)
        cache[literal] = found
    return found


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
