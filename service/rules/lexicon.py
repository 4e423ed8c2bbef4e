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
_TOKEN = re.compile(r"[^\W_]+")  # the same words as MatchText.tokens


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
        toks = mt.tokens
        words, starts, ends = toks.words, toks.starts, toks.ends
        by_first = self._by_first
        n = len(words)
        spans = sorted(blocked)
        b = 0  # hits move forward, so one pointer walks the sorted blocked spans
        resume = 0  # the first token after the last hit
        candidates = sorted(i for word in by_first.keys() & toks.at.keys() for i in toks.at[word])
        for i in candidates:
            if i < resume:
                continue
            start = starts[i]
            while b < len(spans) and spans[b][1] <= start:
                b += 1
            if b < len(spans) and spans[b][0] <= start:
                continue
            for phrase, owners in by_first[words[i]]:
                k = len(phrase)
                if k > 1:
                    if i + k > n or words[i + 1 : i + k] != list(phrase[1:]):
                        continue
                    # Words one space apart: "al-omar" reads "al omar", "al, omar" does not.
                    if any(
                        starts[j] - ends[j - 1] != 1 or text[ends[j - 1]] != " "
                        for j in range(i + 1, i + k)
                    ):
                        continue
                yield Hit(start, ends[i + k - 1], tuple(owners))
                resume = i + k
                break
