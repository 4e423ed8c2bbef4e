"""Quantities ("30 vehicles", "more than 60 military vehicles", "ten artillery pieces")
and equipment words, read from one sentence.

A number counts only when a counted noun follows it within a few modifiers. That
leaves out distances ("30 km"), money, years, percentages and unit names: an
ordinal ("7th Artillery Battalion") is not a count, and a number after its noun
("Brigade 113", "Division 17") is a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "a dozen": 12,
    "dozen": 12,
}


@dataclass(frozen=True, slots=True)
class QuantityRules:
    """Counted nouns by category and equipment terms (from config/rules/actions.yaml)."""

    nouns: dict[str, str]  # noun phrase (lower case) -> category ("vehicles", "fighters", …)
    equipment: dict[str, str]  # surface term (lower case) -> canonical equipment name


_NUMBER = (
    r"(?P<num>\d{1,3}(?:,\d{3})+|\d+|"
    + "|".join(sorted(WORD_NUMBERS, key=len, reverse=True))
    + r")(?:[\s-](?P<num2>one|two|three|four|five|six|seven|eight|nine))?"
)
# Up to five modifier words ("50 Jerusalem Brigade (Liwa' Al-Quds) militia members").
_MODIFIERS = r"(?:[^\W\d_][\w'’()-]*\s+|\([^)]{0,40}\)\s+){0,5}?"
# A number right after one of these is a name ("Brigade 113", "Division 17", "T2 station").
_UNIT_BEFORE = re.compile(
    r"(?i)\b(?:brigade|division|battalion|regiment|corps|squadron|unit|base|station|route|highway|"
    r"road|camp|point|checkpoint|no\.?|number)\s*$"
)


def _value(num: str, num2: str | None) -> int | None:
    num = num.lower().replace(",", "")
    value = int(num) if num.isdigit() else WORD_NUMBERS.get(num)
    if value is None:
        return None
    if num2:
        value += WORD_NUMBERS[num2.lower()]
    return value


class QuantityReader:
    def __init__(self, rules: QuantityRules) -> None:
        nouns = "|".join(re.escape(n) for n in sorted(rules.nouns, key=len, reverse=True))
        self._nouns = rules.nouns
        self._pattern = re.compile(
            rf"(?<![\w.$€£])(?:(?:more than|over|at least|about|around|nearly|almost|some|"
            rf"up to|approximately|roughly)\s+)?"
            rf"{_NUMBER}\s+(?!km\b|kilomet|mile|meter|metre|percent|per cent|%|years?\b"
            rf"|months?\b|days?\b|hours?\b|dollars?\b)"
            rf"{_MODIFIERS}(?P<noun>{nouns})\b",
            re.IGNORECASE,
        )
        terms = "|".join(
            r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", t))
            for t in sorted(rules.equipment, key=len, reverse=True)
        )
        self._equipment_map = rules.equipment
        self._equipment = re.compile(rf"\b(?:{terms})\b", re.IGNORECASE)

    def quantities(self, sentence: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self._pattern.finditer(sentence):
            if _UNIT_BEFORE.search(sentence[: m.start()]):
                continue
            value = _value(m.group("num"), m.group("num2"))
            if value is None or value == 0:
                continue
            if re.match(r"(19|20)\d\d$", m.group("num")) and value > 1900:
                continue
            category = self._nouns[m.group("noun").lower()]
            out[category] = max(out.get(category, 0), value)
        return out

    def equipment(self, sentence: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for m in self._equipment.finditer(sentence):
            key = re.sub(r"[\s-]+", " ", m.group(0).lower())
            canonical = self._equipment_map.get(key) or self._equipment_map.get(m.group(0).lower())
            if canonical is None:
                canonical = next(
                    v for k, v in self._equipment_map.items() if re.sub(r"[\s-]+", " ", k) == key
                )
            seen[canonical] = None
        return tuple(seen)
