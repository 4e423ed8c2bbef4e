"""The regex prefilter finds what a scan of the whole text finds, at a fraction of the cost."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.rules import load_rules
from service.rules.dates import _PATTERNS as DATE_PATTERNS
from service.rules.prefilter import WINDOW, PatternSet, leading_literals, required_literals
from service.rules.text import to_match_text

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "corpus" / "seeds").glob("*.txt")) + sorted(
    (ROOT / "tests" / "data" / "devset").glob("*.txt")
)


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        (r"\bIranian\s+(?:forces|troops)\b", ["iranian forces", "Iranian troops"]),
        (r"\b(?:militias?|forces)\s+loyal\s+to\b", ["militias loyal to", "forces loyal to"]),
        (r"\b(?:isis|daesh)\s+cells?\b", ["isis cell", "daesh cells"]),
        (r"(?<=\bthe )is\b(?= group)", ["is"]),  # lookarounds are context, not content
        (r"\b(?:Russia|Russian)[- ]backed\b", ["russia-backed", "russian backed"]),
        (r"\bunits?\b", ["unit", "units"]),
    ],
)
def test_every_match_contains_a_required_literal(pattern: str, matches: list[str]) -> None:
    compiled = re.compile(pattern, re.IGNORECASE)
    literals = required_literals(compiled)
    assert literals
    for text in matches:
        assert compiled.fullmatch(text) or compiled.search(f"the {text} group"), text
        assert any(literal in text.lower() for literal in literals), (text, literals)


@pytest.mark.parametrize(
    "pattern",
    [
        r"\b(?:a|b)?\s*\d+\b",  # nothing the match must contain
        r"\b(?:forces|)\b",  # an empty alternative
        r"\w+e\b",  # a one-letter literal is no filter
    ],
)
def test_patterns_without_a_required_literal_run_everywhere(pattern: str) -> None:
    assert required_literals(re.compile(pattern, re.IGNORECASE)) is None


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bIranian\s+forces\b", {"iranian"}),
        (r"\b(?:Iran|Tehran)[- ]backed\b", {"iran", "tehran"}),
        (r"\b(?:today|tonight)\b", {"today", "tonight"}),  # a shared "t" is factored out
        (r"\b(?:earlier |later )?this week\b", {"earlier ", "later ", "this week"}),
        (r"\b(?:a|the)?\s*week\b", None),  # may start with a space
        (r"(?<=\bthe )is\b", None),  # a lookbehind first
        (r"\b\d+\s+days\b", None),
    ],
)
def test_leading_literals(pattern: str, expected: set[str] | None) -> None:
    """Where a pattern has them, it is tried only where they occur, and only there."""
    found = leading_literals(re.compile(pattern, re.IGNORECASE))
    assert (set(found) if found is not None else None) == expected


def test_case_sensitive_patterns_are_not_prefiltered() -> None:
    assert required_literals(re.compile(r"\bIranian\b")) is None


def _full_scan(patterns: list[tuple[re.Pattern[str], str]], text: str) -> set[tuple[int, int, str]]:
    return {(m.start(), m.end(), key) for pattern, key in patterns for m in pattern.finditer(text)}


def test_actor_patterns_find_on_real_reports_what_a_full_scan_finds() -> None:
    rules = load_rules(ROOT / "config" / "rules")
    patterns = [(p, str(i)) for p, i in rules.actors.patterns]
    pattern_set = PatternSet(patterns)
    total = 0
    for path in CORPUS:
        text = to_match_text(path.read_text(encoding="utf-8")).text
        expected = _full_scan(patterns, text)
        assert {(m.start(), m.end(), k) for m, k in pattern_set.finditer(text)} == expected
        total += len(expected)
    assert total > 50  # the corpus does exercise the patterns


def test_date_patterns_find_on_real_sentences_what_a_full_scan_finds() -> None:
    pattern_set = PatternSet([(p, kind) for kind, p in DATE_PATTERNS])
    for path in CORPUS:
        text = path.read_text(encoding="utf-8")
        expected = _full_scan([(p, kind) for kind, p in DATE_PATTERNS], text)
        found = {(m.start(), m.end(), k) for m, k in pattern_set.finditer(text, text.lower())}
        assert found == expected, path.name


def test_a_match_far_from_the_text_start_and_at_its_end_is_found() -> None:
    pattern = re.compile(r"\bsent\s+(?:\w+\s+){0,3}convoys?\b", re.IGNORECASE)
    filler = "word " * (3 * WINDOW)
    text = f"{filler}the militia sent two large convoys"
    found = [m.group() for m, _ in PatternSet([(pattern, 0)]).finditer(text)]
    assert found == ["sent two large convoys"]


def test_a_window_never_ends_inside_a_word() -> None:
    # Cut at WINDOW characters after "forces", the window would end inside "arrived",
    # and "arr\b" would match there although the text has no word "arr".
    pattern = re.compile(r"\bforces\b(?:\s+\w+)*?\s+arr\b", re.IGNORECASE)
    pairs = (WINDOW - 4) // 2
    text = "forces" + " w" * pairs + " arrived"
    assert text.index("arrived") < len("forces") + WINDOW < text.index("arrived") + len("arrived")
    assert list(pattern.finditer(text)) == []
    assert list(PatternSet([(pattern, 0)]).finditer(text)) == []
