"""Phrase lookup over match-form text: longest alias wins, leftmost first.

Aliases are compared token by token (a dict keyed by first token), which keeps the
cost proportional to the text length whatever the size of the dictionaries: a
regex alternation of a thousand aliases would be tried at every character.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from service.rules.text import MatchText, normalise

K = TypeVar("K")
_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Hit(Generic[K]):
    start: int  # match-form offsets
    end: int
    keys: tuple[K, ...]  # every entry that owns this alias (ambiguity is resolved by the caller)


class PhraseIndex(Generic[K]):
    def __init__(self) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], list[K]]]] = defaultdict(list)
        self._entries: dict[tuple[str, ...], list[K]] = {}

    def add(self, phrase: str, key: K) -> None:
        tokens = tuple(_TOKEN.findall(normalise(phrase)))
        if not tokens:
            return
        owners = self._entries.get(tokens)
        if owners is None:
            owners = []
            self._entries[tokens] = owners
            self._by_first[tokens[0]].append((tokens, owners))
            self._by_first[tokens[0]].sort(key=lambda e: -len(e[0]))
        if key not in owners:
            owners.append(key)

    def lookup(self, phrase: str) -> tuple[K, ...]:
        return tuple(self._entries.get(tuple(_TOKEN.findall(normalise(phrase))), ()))

    def phrases(self) -> Iterable[tuple[str, ...]]:
        return self._entries.keys()

    def find(self, mt: MatchText, blocked: Iterable[tuple[int, int]] = ()) -> Iterator[Hit[K]]:
        """Non-overlapping hits; match-form spans in ``blocked`` are never matched."""
        text = mt.text
        toks = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
        spans = sorted(blocked)
        b = 0  # tokens move forward, so one pointer walks the sorted blocked spans
        i = 0
        n = len(toks)
        while i < n:
            start = toks[i][0]
            while b < len(spans) and spans[b][1] <= start:
                b += 1
            if b < len(spans) and spans[b][0] <= start:
                i += 1
                continue
            found = None
            for tokens, owners in self._by_first.get(toks[i][2], ()):
                k = len(tokens)
                if i + k > n:
                    continue
                ok = True
                for j in range(1, k):
                    prev_end, (s, _e, word) = toks[i + j - 1][1], toks[i + j]
                    if word != tokens[j] or s - prev_end != 1 or text[prev_end] != " ":
                        ok = False
                        break
                if ok:
                    found = (k, owners)
                    break
            if found:
                k, owners = found
                yield Hit(start, toks[i + k - 1][1], tuple(owners))
                i += k
            else:
                i += 1
