"""Text preparation: match form with offsets back to the original, and report zones.

Evidence offsets index the stored article text, so every sentence and every
match-form span must map back exactly. Page furniture, reader comments and
teasers must never reach the rules. The report texts below are made up.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.rules import text as text_module
from service.rules.text import Sentence, Zone, normalise, segment, to_match_text

SEEDS = Path(__file__).resolve().parents[2] / "corpus" / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))

TITLE = "Militias Move Column To New Base"
SUBTITLE = "A second line under the title"
BODY1 = (
    "Government-aligned militias moved a column of trucks from the river crossing to a new "
    "base near the old grain silos on Sunday, according to a local monitoring network that "
    "follows the convoys along the highway."
)
BODY2a = "The network said the column carried fuel and ammunition."
BODY2b = "It did not give a number."
BODY2 = f"{BODY2a} {BODY2b}"
REPORT = [BODY1, BODY2a, BODY2b]
COMMENT = "I doubt they will stay there for long, mark my words on this one."


def texts(sentences: list[Sentence]) -> list[str]:
    return [s.text for s in sentences]


def body(sentences: list[Sentence]) -> list[str]:
    return [s.text for s in sentences if s.zone is Zone.BODY]


# ------------------------------------------------------------------ offsets


def test_seed_files_exist() -> None:
    assert len(SEED_FILES) >= 5


@pytest.mark.parametrize("path", SEED_FILES, ids=[p.name for p in SEED_FILES])
def test_sentence_offsets_map_back_on_seed_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    sentences = segment(text)
    assert sentences
    for s in sentences:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
    for a, b in itertools.pairwise(sentences):
        assert a.end <= b.start
        assert a.paragraph <= b.paragraph


@pytest.mark.parametrize("path", SEED_FILES, ids=[p.name for p in SEED_FILES])
def test_match_text_offsets_on_seed_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    mt = to_match_text(text)
    assert len(mt.offsets) == len(mt.text) + 1 and mt.offsets[-1] == len(text)
    assert list(mt.offsets) == sorted(mt.offsets)
    for i, ch in enumerate(mt.text):
        if ch != " ":
            assert ch in normalise(text[mt.offsets[i]])


# Reader comments in the seed scrapes start under these commenter names.
SEED_COMMENTERS = [
    ("000_86bcaa15ba192ac0.txt", "Maybee the locals"),
    ("001_643cc20e54ec1169.txt", "Not that much."),
]


@pytest.mark.parametrize(("name", "comment"), SEED_COMMENTERS, ids=[n for n, _ in SEED_COMMENTERS])
def test_seed_comment_threads_are_cut(name: str, comment: str) -> None:
    text = (SEEDS / name).read_text(encoding="utf-8")
    cut = text.index(comment)
    sentences = segment(text)
    assert sentences and all(s.end <= cut for s in sentences)


MATCH_FORMS = [
    ("Deir Al-Zour", "deir al zour"),
    ("Liwa' Al-Quds", "liwa al quds"),
    ("Liwa\u2019 al\u2011Quds", "liwa al quds"),  # typographic apostrophe, non-breaking hyphen
    ("Ḥamdān  al\u2013Bukamal", "hamdan al bukamal"),  # accents, double space, en dash
    ("DEIR\tEZZOR\n", "deir ezzor"),
    ("al-Sūsah/al-Baghūz", "al susah al baghuz"),
]


@pytest.mark.parametrize(("text", "expected"), MATCH_FORMS, ids=[t for t, _ in MATCH_FORMS])
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_span_maps_a_match_back_to_the_original_spelling() -> None:
    text = "Forces reached Deir\u00a0Al-Zour  yesterday."
    mt = to_match_text(text)
    start = mt.text.index("deir al zour")
    a, b = mt.span(start, start + len("deir al zour"))
    assert text[a:b] == "Deir\u00a0Al-Zour"


# Hyphens and dashes, apostrophes and quotes, spaces, accents, a ligature, combining marks,
# the Arabic tatweel and letters, Unicode-only spacing, a lone surrogate.
SPECIALS = (
    "-\u2010\u2011\u2012\u2013\u2014_/"
    "'\u2019\u2018`\u02bc\u02bf\u02be\u00b4"
    " \t\n\u00a0éèüçñÅØİẞﬁß…½\x01\u0301\u0308\u0640دير\x1c\u2028\ud83d"
)
unicode_text = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIALS)), max_size=60
)


@given(unicode_text)
def test_whole_string_folding_reads_like_the_character_loop(text: str) -> None:
    """The fast path (whole-string operations) and the reference loop agree exactly."""
    possessive = {i for i in range(len(text)) if text_module._POSSESSIVE.match(text, i)}
    fast = to_match_text(text)
    slow = text_module._to_match_text_slow(text, possessive)
    assert (fast.text, fast.offsets) == (slow.text, slow.offsets)
    assert text_module.fold(text) == slow.text


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
def test_match_tokens_are_the_words_of_the_match_form(path: Path) -> None:
    mt = to_match_text(path.read_text(encoding="utf-8"))
    tokens = mt.tokens
    assert tokens.words
    previous_end = 0
    for word, start, end in zip(tokens.words, tokens.starts, tokens.ends, strict=True):
        assert mt.text[start:end] == word and word.isalnum()
        gap = mt.text[previous_end:start]
        assert not any(ch.isalnum() for ch in gap), gap
        previous_end = end
    assert not any(ch.isalnum() for ch in mt.text[previous_end:])


@given(unicode_text, st.data())
def test_span_stays_inside_the_original(text: str, data: st.DataObject) -> None:
    mt = to_match_text(text)
    n = len(mt.text)
    a = data.draw(st.integers(min_value=0, max_value=n))
    b = data.draw(st.integers(min_value=a, max_value=n))
    start, end = mt.span(a, b)
    assert 0 <= start <= end <= len(text)
    if b > a:
        # The original slice reads (at least) the match-form slice again.
        assert mt.text[a:b].strip() in to_match_text(text[start:end]).text


# -------------------------------------------------------------------- zones


def report(*top: str) -> str:
    return "\n".join([*top, "", TITLE, "", BODY1, "", BODY2, ""])


FURNITURE_AT_TOP = [
    ("close-button", "close button"),
    ("switch-to-light", "Switch to Examplewire Light?"),
    (
        "trouble-loading",
        "It looks like you're having trouble loading the content on this page. "
        "Switch to Examplewire Light instead.",
    ),
    ("reading-time", "6 min read"),
    ("banner", "JULY 2020"),
    ("dateline", "March 3, 2021"),
    ("section-label", "Features"),
    ("byline", "By Anna Example"),
    ("photo-credit", "Photo: trucks on a desert road"),
]


@pytest.mark.parametrize(
    "line", [line for _, line in FURNITURE_AT_TOP], ids=[i for i, _ in FURNITURE_AT_TOP]
)
def test_furniture_before_the_report_is_dropped(line: str) -> None:
    sentences = segment(report(line))
    assert line not in texts(sentences)
    assert texts(sentences) == [TITLE, *REPORT]


def test_all_furniture_together_is_dropped() -> None:
    sentences = segment(report(*(line for _, line in FURNITURE_AT_TOP)))
    assert texts(sentences) == [TITLE, *REPORT]


@pytest.mark.parametrize(
    "caption",
    [
        "Click to see full-size map. Source: (@examplemaps) on Twitter.",
        "Click here for the full-size image",
        "Photo: AFP",
        "Source: Example Agency",
    ],
    ids=["click-map-source", "click-image", "photo-credit", "source-credit"],
)
def test_caption_inside_the_body_is_dropped(caption: str) -> None:
    text = f"{TITLE}\n\n{BODY1}\n\n{caption}\n\n{BODY2}\n"
    assert texts(segment(text)) == [TITLE, *REPORT]


@pytest.mark.parametrize("bullet", ["•", "◦", "▪", "*"], ids=["dot", "circle", "square", "star"])
def test_bulleted_commenter_name_ends_the_body(bullet: str) -> None:
    text = (
        f"{BODY1}\n\n{BODY2}\n\n  {bullet} Karl Berg\n\n    {COMMENT}\n\n"
        f"    {bullet} Tove Lind\n\n      Maybe so.\n"
    )
    assert texts(segment(text)) == REPORT


def test_bulleted_commenter_name_without_text_ends_the_body() -> None:
    """A deleted or empty comment leaves only its bulleted name: the thread starts there."""
    text = f"{BODY1}\n\n{BODY2}\n\n  • Karl Berg\n\n\n\n\n  Tove Lind wrote a line here.\n"
    assert texts(segment(text)) == REPORT


@pytest.mark.parametrize("gap", ["\n", "\n\n"], ids=["text-on-next-line", "text-after-blank-line"])
def test_unmarked_commenter_name_after_the_body_ends_it(gap: str) -> None:
    text = f"{BODY1}\n\n{BODY2}\n\nMarta Lind{gap}{COMMENT}\nAnd a second line of it.\n"
    assert texts(segment(text)) == REPORT


@pytest.mark.parametrize(
    "marker",
    [
        "Comments",
        "3 Comments",
        "Related articles",
        "Related",
        "Leave a Reply",
        "Read more",
        "You may also like",
        "Most read",
    ],
    ids=[
        "comments",
        "n-comments",
        "related-articles",
        "related",
        "leave-reply",
        "read-more",
        "also-like",
        "most-read",
    ],
)
def test_end_marker_ends_the_body(marker: str) -> None:
    teaser = (
        "Another story about an armoured column that reached a border town after a long "
        "journey through the desert roads of the province last week."
    )
    text = f"{BODY1}\n\n{BODY2}\n\n{marker}\n\n{teaser}\n"
    assert texts(segment(text)) == REPORT


@pytest.mark.parametrize(
    "heading",
    [
        "Russia's New Move in Syria",
        "Syria's Eastern Front",
        "Russia Steps Up",
        "A Hilltop Changes Hands",
        "Moscow’s Desert Ambitions",
        "The Tribes Hold Back",
    ],
    ids=["russia-and-syria", "syria", "russia", "article", "possessive", "the"],
)
def test_section_heading_naming_the_story_does_not_end_the_body(heading: str) -> None:
    text = f"{BODY1}\n\n{heading}\n\n{BODY2}\n"
    sentences = segment(text)
    assert body(sentences) == [BODY1, heading, BODY2a, BODY2b]


def test_head_zone_is_the_short_lines_before_the_first_long_paragraph() -> None:
    short_after = "The column was seen again on Monday."
    text = f"{TITLE}\n{SUBTITLE}\n\nA caption under the photo\n\n{BODY1}\n\n{short_after}\n"
    sentences = segment(text)
    assert [(s.text, s.zone) for s in sentences] == [
        (TITLE, Zone.HEAD),
        (SUBTITLE, Zone.HEAD),
        ("A caption under the photo", Zone.HEAD),
        (BODY1, Zone.BODY),
        (short_after, Zone.BODY),
    ]
    # Each head line is its own paragraph, kept whole.
    heads = [s for s in sentences if s.zone is Zone.HEAD]
    assert len({s.paragraph for s in heads}) == len(heads)


def test_repeated_caption_lines_are_kept_once() -> None:
    caption = "Trucks on the road to the base"
    text = f"{caption}\n{caption}\n\n{BODY1}\n"
    assert texts(segment(text)) == [caption, BODY1]


SPLITS = [
    ("two-sentences", "Troops arrived. They left.", ["Troops arrived.", "They left."]),
    ("us-abbreviation", "U.S. forces arrived. They left.", ["U.S. forces arrived.", "They left."]),
    ("title-abbreviation", "Gen. Smith arrived. He left.", ["Gen. Smith arrived.", "He left."]),
    ("initial", "J. Smith arrived. He left.", ["J. Smith arrived.", "He left."]),
    (
        "quote-close",
        '"Troops arrived." They left.',
        ['"Troops arrived."', "They left."],
    ),
    (
        "curly-quote-close",
        "\u201cTroops arrived.\u201d They left.",
        ["\u201cTroops arrived.\u201d", "They left."],
    ),
    (
        "lowercase-after-period",
        "Troops arrived at 3 p.m. and left.",
        ["Troops arrived at 3 p.m. and left."],
    ),
    (
        "number-start",
        "Troops arrived. 30 trucks followed.",
        ["Troops arrived.", "30 trucks followed."],
    ),
]


@pytest.mark.parametrize(
    ("para", "expected"),
    [
        pytest.param(c[1], c[2], marks=pytest.mark.xfail(strict=True, reason=c[3]))
        if len(c) > 3
        else (c[1], c[2])
        for c in SPLITS
    ],
    ids=[c[0] for c in SPLITS],
)
def test_sentence_split(para: str, expected: list[str]) -> None:
    text = f"{BODY1}\n\n{para}\n"
    sentences = segment(text)
    assert texts(sentences)[1:] == expected
    for s in sentences:
        assert text[s.start : s.end] == s.text


def test_channel_posts_with_hashtags_and_view_counters_stay_one_body() -> None:
    text = (
        "Wednesday, 17 May 2023\n\n"
        "🔴 #al-Mayadin | A convoy of Liwa Fatemiyoun with 14 vehicles entered the city from "
        "the Palmyra road this morning and went to the headquarters near the water tower.\n"
        "#Sada_alSharqiya #Deir_Ezzor\n"
        "👁 6.3K  09:12\n\n"
        "🟢 #Muhasan | Registration session in the cultural centre: 23 young men of the town "
        "joined Liwa al-Baqir for a salary of 400,000 SYP per month.\n"
        "👁 5.1K  10:40\n\n"
        "💬 Comments are closed for this channel\n"
    )
    kept = [x.text for x in segment(text)]
    assert any(t.startswith("🟢 #Muhasan") for t in kept)
    for furniture in ("#Sada_alSharqiya", "6.3K", "Comments are closed"):
        assert not any(furniture in t for t in kept), furniture


def test_a_teaser_run_into_the_text_is_not_the_report() -> None:
    from service.rules.text import segment

    text = (
        "Gunmen attacked an SDF checkpoint near al-Busayrah on Monday, local sources said. "
        "Continue reading Militias move convoys to the border town of Albukamal"
    )
    kept = [s.text for s in segment(text)]
    assert kept == [
        "Gunmen attacked an SDF checkpoint near al-Busayrah on Monday, local sources said."
    ]
