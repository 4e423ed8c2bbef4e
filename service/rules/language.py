"""Is a report in English? The rules read English; other languages get a warning.

A cheap test, no model: the share of words that are English function words
("the", "of", "and", "in", ...). English prose runs at 35–50 %; a report in
French, Spanish or German in Latin letters, or in Arabic script, at a few per cent.
Short texts (a headline, a caption) are given the benefit of the doubt.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+")
_FUNCTION_WORDS = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "an",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "was",
        "were",
        "is",
        "are",
        "has",
        "have",
        "had",
        "that",
        "which",
        "who",
        "this",
        "these",
        "those",
        "it",
        "its",
        "their",
        "they",
        "he",
        "she",
        "his",
        "her",
        "as",
        "after",
        "before",
        "into",
        "near",
        "than",
        "be",
        "been",
        "but",
        "or",
        "not",
        "also",
        "said",
        "says",
        "more",
        "over",
    ]
)
MIN_WORDS = 25  # below this, no verdict
ENGLISH_SHARE = 0.15
# The opening of a report tells its language; reading more only costs time.
SAMPLE_CHARS = 2000


def english_share(text: str) -> float:
    """The share of the words of ``text``'s opening that are English function words."""
    words = [w.lower() for w in _WORD.findall(text, 0, SAMPLE_CHARS)]
    if not words:
        return 0.0
    return sum(w in _FUNCTION_WORDS for w in words) / len(words)


def looks_english(text: str) -> bool:
    """False only for a text long enough to judge whose words are not English."""
    words = _WORD.findall(text, 0, SAMPLE_CHARS)
    if len(words) < MIN_WORDS:
        return True
    return english_share(text) >= ENGLISH_SHARE


__all__ = ["ENGLISH_SHARE", "english_share", "looks_english"]
