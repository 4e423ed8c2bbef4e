"""Phrase lookup over match-form text: longest alias wins, leftmost first.

Aliases are compared token by token (a dict keyed by first token), which keeps the
cost proportional to the text length whatever the size of the dictionaries: a
regex alternation of a thousand aliases would be tried at every character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ahocorasick  # type: ignore[import-not-found]

from service.rules.text import MatchText, normalise

K = TypeVar("K")
_TOKEN = re.compile(r"[^\W_]+")  # the same words as MatchText.tokens


@dataclass(frozen=True, slots=True)
class Hit(Generic[K]):
    start: int  # match-form offsets
    end: int
    keys: tuple[K, ...]  # every entry that owns this alias (ambiguity is resolved by the caller)


class _Node(Generic[K]):
    """A trie node: the next words, and the entries owning the phrase that ends here."""

    __slots__ = ("next", "owners")

    def __init__(self) -> None:
        self.next: dict[str, _Node[K]] = {}
        self.owners: list[K] | None = None


class PhraseIndex(Generic[K]):
    def __init__(self) -> None:
        self._root: _Node[K] = _Node()
        self._entries: dict[tuple[str, ...], list[K]] = {}
        self._automaton: Any = None  # built on the first ``occurs_in``

    def add(self, phrase: str, key: K) -> None:
        tokens = tuple(_TOKEN.findall(normalise(phrase)))
        if not tokens:
            return
        self._automaton = None
        owners = self._entries.get(tokens)
        if owners is None:
            node = self._root
            for token in tokens:
                node = node.next.setdefault(token, _Node())
            owners = node.owners = self._entries[tokens] = []
        if key not in owners:
            owners.append(key)

    def lookup(self, phrase: str) -> tuple[K, ...]:
        return tuple(self._entries.get(tuple(_TOKEN.findall(normalise(phrase))), ()))

    def phrases(self) -> Iterable[tuple[str, ...]]:
        return self._entries.keys()

    def occurs_in(self, text: str) -> bool:
        """Whether ``find`` would find anything in the match-form ``text`` (``fold``).

        One Aho-Corasick pass in C, no tokenising: a phrase's words are one space
        apart in it exactly where ``find`` reads the phrase, and only its ends need
        a look ("deir ezzor," is the phrase, "deir ezzoria" is not).
        """
        if not self._entries:
            return False
        if self._automaton is None:
            automaton = ahocorasick.Automaton()
            for phrase in self._entries:
                spaced = " ".join(phrase)
                automaton.add_word(spaced, len(spaced))
            automaton.make_automaton()
            self._automaton = automaton
        last = len(text) - 1
        for end, length in self._automaton.iter(text):
            start = end - length + 1
            # A word character is what _TOKEN reads: str.isalnum() (``\w`` less "_").
            if (start == 0 or not text[start - 1].isalnum()) and (
                end == last or not text[end + 1].isalnum()
            ):
                return True
        return False

    def find(self, mt: MatchText, blocked: Iterable[tuple[int, int]] = ()) -> Iterator[Hit[K]]:
        """Non-overlapping hits, longest first; match-form spans in ``blocked`` are never
        matched.  A phrase's words must follow each other one space apart: "al-omar"
        reads "al omar", "al, omar" does not."""
        text = mt.text
        toks = mt.tokens
        words, starts, ends = toks.words, toks.starts, toks.ends
        first = self._root.next
        n = len(words)
        spans = sorted(blocked)
        b = 0  # hits move forward, so one pointer walks the sorted blocked spans
        resume = 0  # the first token after the last hit
        candidates = sorted(i for word in first.keys() & toks.at.keys() for i in toks.at[word])
        for i in candidates:
            if i < resume:
                continue
            start = starts[i]
            while b < len(spans) and spans[b][1] <= start:
                b += 1
            if b < len(spans) and spans[b][0] <= start:
                continue
            node = first[words[i]]
            last, owners = i, node.owners
            j = i + 1
            while j < n and words[j] in node.next:
                gap = ends[j - 1]
                if starts[j] - gap != 1 or text[gap] != " ":
                    break
                node = node.next[words[j]]
                if node.owners is not None:
                    last, owners = j, node.owners
                j += 1
            if owners:
                yield Hit(start, ends[last], tuple(owners))
                resume = last + 1
