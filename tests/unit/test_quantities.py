"""Quantities and equipment read from one sentence with the real rules (config/rules).

A number counts only when a counted noun follows it; distances, money, years,
ordinals and unit names are not counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.rules import load_rules
from service.rules.quantities import QuantityReader

RULES = Path(__file__).resolve().parents[2] / "config" / "rules"


@pytest.fixture(scope="module")
def reader() -> QuantityReader:
    return load_rules(RULES).quantities


def cases(table: list[tuple[str, str, object, str | None]]) -> list[object]:
    """Parameters from (id, sentence, expected, bug) rows; a bug row must fail until fixed."""
    return [
        pytest.param(sentence, expected, marks=pytest.mark.xfail(strict=True, reason=bug))
        if bug
        else (sentence, expected)
        for _id, sentence, expected, bug in table
    ]


QUANTITIES: list[tuple[str, str, object, str | None]] = [
    ("digits", "30 vehicles arrived in the town.", {"vehicles": 30}, None),
    ("more-than", "A convoy of more than 60 military vehicles arrived.", {"vehicles": 60}, None),
    ("word-number", "They brought ten artillery pieces to the base.", {"artillery": 10}, None),
    ("members-are-fighters", "About 50 members of the militia arrived.", {"fighters": 50}, None),
    ("a-dozen", "A dozen vehicles left the base.", {"vehicles": 12}, None),
    ("thousands-separator", "Some 1,200 fighters were sent.", {"fighters": 1200}, None),
    ("hyphenated-number", "Forty-two trucks crossed the river.", {"vehicles": 42}, None),
    ("twenty-five", "twenty-five fighters joined the group.", {"fighters": 25}, None),
    ("twenty-five-spaced", "twenty five fighters joined the group.", {"fighters": 25}, None),
    (
        "name-between-number-and-noun",
        "50 Jerusalem Brigade (Liwa' Al-Quds) militia members arrived.",
        {"fighters": 50},
        None,
    ),
    (
        "two-categories",
        "12 tanks and 4 artillery pieces arrived.",
        {"tanks": 12, "artillery": 4},
        None,
    ),
    ("dozens-is-not-a-number", "Dozens of fighters arrived in the town.", {}, None),
    ("distance-km", "Forces deployed 30 km east of the city.", {}, None),
    ("distance-kilometres", "The base lies 30 kilometres from the fighters' camp.", {}, None),
    ("ordinal-unit-name", "Members of the 7th Artillery Battalion arrived.", {}, None),
    ("brigade-113", "Brigade 113 arrived in the town.", {}, None),
    ("division-17", "Division 17 moved to the airport.", {}, None),
    ("money", "Iran spent $10 billion on the militias.", {}, None),
    ("year", "The militias took the town in 2019 with their fighters.", {}, None),
    ("zero", "0 fighters were seen.", {}, None),
    (
        "brigade-number-then-count",
        "Brigade 113 sent 20 fighters to the town.",
        {"fighters": 20},
        None,
    ),
    ("brigade-number-before-noun", "Brigade 113 fighters arrived in the town.", {}, None),
]


@pytest.mark.parametrize(
    ("sentence", "expected"), cases(QUANTITIES), ids=[c[0] for c in QUANTITIES]
)
def test_quantities(reader: QuantityReader, sentence: str, expected: dict[str, int]) -> None:
    assert reader.quantities(sentence) == expected


EQUIPMENT: list[tuple[str, str, object, str | None]] = [
    ("launchpads", "They withdrew rocket launchpads from the base.", ("rocket launchers",), None),
    ("anti-aircraft", "They installed anti-aircraft equipment.", ("anti-aircraft",), None),
    ("anti-aircraft-spaced", "They installed anti aircraft guns.", ("anti-aircraft",), None),
    (
        "several-in-order",
        "Rocket launchers, artillery and air defense systems arrived.",
        ("rocket launchers", "artillery", "air defence"),
        None,
    ),
    ("synonyms-once", "Howitzers and artillery pieces arrived.", ("artillery",), None),
    ("fortifications", "Trenches were dug around the base.", ("fortifications",), None),
    ("none", "The convoy arrived in the town.", (), None),
    (
        "air-defence-hyphenated",
        "They installed air-defence systems.",
        ("air defence",),
        None,
    ),
]


@pytest.mark.parametrize(("sentence", "expected"), cases(EQUIPMENT), ids=[c[0] for c in EQUIPMENT])
def test_equipment(reader: QuantityReader, sentence: str, expected: tuple[str, ...]) -> None:
    assert reader.equipment(sentence) == expected
