"""Phrase lookup: the quick "does any phrase occur" check agrees with the full lookup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.rules.lexicon import PhraseIndex
from service.rules.text import fold, to_match_text

PHRASES = ["Deir Ezzor", "al-Mayadin", "Hajin", "Abu Kamal", "Der Ezzor city", "as-Sur"]
WORDS = ["deir", "ezzor", "al", "mayadin", "hajin", "abu", "kamal", "der", "city", "as", "sur"]


def index() -> PhraseIndex[str]:
    built: PhraseIndex[str] = PhraseIndex()
    for phrase in PHRASES:
        built.add(phrase, phrase)
    return built


@given(
    st.lists(st.sampled_from([*WORDS, "the", "x", "ezzoria", "al_", "Hajin's"]), max_size=12),
    st.lists(st.sampled_from([" ", "  ", ", ", "-", "(", ")", ".", "_", "\n", "’", ""])),
)
def test_occurs_in_says_what_find_finds(words: list[str], gaps: list[str]) -> None:
    text = "".join(w + (gaps[i % len(gaps)] if gaps else " ") for i, w in enumerate(words))
    lookup = index()
    assert lookup.occurs_in(fold(text)) == any(True for _ in lookup.find(to_match_text(text)))


def test_a_phrase_occurs_only_as_whole_words_one_space_apart() -> None:
    lookup = index()
    for text in ["(Deir Ezzor)", "deir ezzor,", "Abu-Kamal", "in Hajin's west", "Hajin"]:
        assert lookup.occurs_in(fold(text)), text
    for text in ["Deir.Ezzor", "deir, ezzor", "deir ezzoria", "xhajin", "hajin2", "kamal abu"]:
        assert not lookup.occurs_in(fold(text)), text


def test_first_words_alone_are_not_a_phrase() -> None:
    lookup = index()
    assert not lookup.occurs_in(fold("der Stadt, as well as the abu of a city"))
    assert lookup.occurs_in(fold("fighting in Abu Kamal"))
    assert lookup.occurs_in(fold("near Hajin."))
