"""Phrase lookup: the quick "does any phrase occur" check agrees with the full lookup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.rules.lexicon import PhraseIndex
from service.rules.text import to_match_text

PHRASES = ["Deir Ezzor", "al-Mayadin", "Hajin", "Abu Kamal", "Der Ezzor city", "as-Sur"]
WORDS = ["deir", "ezzor", "al", "mayadin", "hajin", "abu", "kamal", "der", "city", "as", "sur"]


def index() -> PhraseIndex[str]:
    built: PhraseIndex[str] = PhraseIndex()
    for phrase in PHRASES:
        built.add(phrase, phrase)
    return built


@given(st.lists(st.sampled_from([*WORDS, "the", ",", "-", "x"]), max_size=12))
def test_occurs_in_says_what_find_finds(words: list[str]) -> None:
    mt = to_match_text(" ".join(words))
    lookup = index()
    assert lookup.occurs_in(mt) == any(True for _ in lookup.find(mt))


def test_first_words_alone_are_not_a_phrase() -> None:
    lookup = index()
    assert not lookup.occurs_in(to_match_text("der Stadt, as well as the abu of a city"))
    assert lookup.occurs_in(to_match_text("fighting in Abu Kamal"))
    assert lookup.occurs_in(to_match_text("near Hajin."))
