"""A trigger's arguments from the dependency parse: roles of places, doer, modality."""

from __future__ import annotations

from datetime import date

import pytest

from service.rules import PROJECT_RULES, RuleSet, load_rules
from service.rules.engine import Document
from service.rules.syntax import Parser, Role

PARSER = Parser()


def roles(sentence: str, trigger: str, *places: str) -> list[Role | None]:
    (parse,) = PARSER.parse([sentence])
    at = sentence.index(trigger)
    token = parse.trigger(at, at + len(trigger))
    assert token is not None
    out: list[Role | None] = []
    for place in places:
        start = sentence.index(place)
        out.append(parse.place_role(token, start, start + len(place)))
    return out


@pytest.mark.parametrize(
    ("sentence", "trigger", "places", "expected"),
    [
        pytest.param(
            "Fighters of the militia were moved from Hajin to the village of Gharanij.",
            "moved",
            ("Hajin", "Gharanij"),
            [Role.ORIGIN, Role.DESTINATION],
            id="from-and-to",
        ),
        pytest.param(
            "Army units entered the town of Hatla, north of Deir Ezzor, on Friday.",
            "entered",
            ("Hatla", "Deir Ezzor"),
            [Role.PLACE, Role.REFERENCE],
            id="object-and-compass-reference",
        ),
        pytest.param(
            "The convoy drove through the Sikak crossing into Syria and on to Palmyra.",
            "drove",
            ("Sikak",),
            [Role.ROUTE],
            id="route",
        ),
        pytest.param(
            "The militia sent trucks to Mayadin and Ashara.",
            "sent",
            ("Mayadin", "Ashara"),
            [Role.DESTINATION, Role.DESTINATION],
            id="conjoined-destinations",
        ),
        pytest.param(
            "The troops arrived in Khasham and later opened fire near Tabiya.",
            "arrived",
            ("Khasham", "Tabiya"),
            [Role.PLACE, None],
            id="second-verb-keeps-its-own-place",
        ),
        pytest.param(
            "A unit set up a post at a farm 5 km from Jadid Ekaidat.",
            "set",
            ("Jadid Ekaidat",),
            [Role.REFERENCE],
            id="measured-distance-is-a-reference",
        ),
    ],
)
def test_place_roles(
    sentence: str, trigger: str, places: tuple[str, ...], expected: list[Role | None]
) -> None:
    assert roles(sentence, trigger, *places) == expected


@pytest.mark.parametrize(
    ("sentence", "trigger", "reason"),
    [
        ("The SDF has not withdrawn from Busayrah.", "withdrawn", "negated"),
        ("Iran plans to send more fighters to Mayadin.", "send", "complement of plans"),
        ("The regiment may deploy to Hajin next week.", "deploy", "modal may"),
        ("The militia denied sending fighters to Quriyah.", "sending", "complement of denied"),
        ("Hezbollah sent fighters to Quriyah on Monday.", "sent", None),
    ],
)
def test_modality(sentence: str, trigger: str, reason: str | None) -> None:
    (parse,) = PARSER.parse([sentence])
    at = sentence.index(trigger)
    token = parse.trigger(at, at + len(trigger))
    assert token is not None
    assert parse.arguments(token).not_an_act == reason


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


def brief(rules: RuleSet, text: str) -> list[tuple[str, str, str]]:
    events = rules.extract(Document(text, date(2023, 6, 14), "Test Outlet"))
    return [(e.type.value, e.actor.affiliation.value, e.location.name) for e in events]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Members of the National Defence Forces entered the town of Dhiban, east of "
            "Deir Ezzor, on Sunday.",
            [("deployment", "regime", "Dhiban")],
            id="the-named-town-not-its-reference-point",
        ),
        pytest.param(
            "On Tuesday the IRGC transported rocket launchers from al-Mayadin to Hatla.",
            [("relocation", "iran-backed", "Hatla")],
            id="destination-not-origin",
        ),
        pytest.param(
            "Russian forces sent fighters of Liwa al-Quds to al-Mayadin on Monday.",
            [("deployment", "russia", "al-Mayadin")],
            id="the-force-moved-by-another",
        ),
        pytest.param(
            "The Syrian army redeployed units of its Republican Guard from Hajin to "
            "al-Mayadin on Monday.",
            [("relocation", "regime", "al-Mayadin")],
            id="its-own-units-stay-the-subject's",
        ),
        pytest.param(
            "Government troops liberated the strategic town of al-Quriyah on Sunday.",
            [("takeover", "regime", "al-Quriyah")],
            id="liberated-is-a-takeover",
        ),
        pytest.param(
            "Arab tribes managed to seize control of the village of Dhiban on Monday.",
            [("takeover", "unknown", "Dhiban")],
            id="managed-to-reports-the-act",
        ),
        pytest.param(
            "Tribal fighters were able to take control of the village of Dhiban on Monday.",
            [("takeover", "unknown", "Dhiban")],
            id="take-control-of",
        ),
        pytest.param(
            "A senior Hezbollah commander arrived in al-Mayadin on Monday.",
            [("visit", "iran-backed", "al-Mayadin")],
            id="a-commander-arriving-visits",
        ),
        pytest.param(
            "Three vehicles carrying IRGC officers entered Iraq through the al-Qaim crossing "
            "on Monday.",
            [("withdrawal", "iran-backed", "Albukamal–al-Qaim border crossing")],
            id="entering-a-neighbouring-country-leaves-syria",
        ),
        pytest.param(
            "Fighters of the SDF, backed by the coalition and the regime, launched attacks on "
            "ISIS cells near Hajin on Monday.",
            [("attack", "sdf", "Hajin")],
            id="the-light-verb-s-subject-attacks",
        ),
        pytest.param(
            "The militia has not withdrawn from al-Quriyah despite the strikes.",
            [],
            id="negated",
        ),
        pytest.param(
            "Iranian-backed militias are preparing to redeploy to al-Bukamal.",
            [],
            id="a-plan-is-not-an-act",
        ),
    ],
)
def test_events_take_arguments_from_the_parse(
    rules: RuleSet, text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert brief(rules, text) == expected


@pytest.mark.parametrize(
    ("sentence", "known", "expected"),
    [
        ("Army units sent reinforcements to the Zawiya Hills on Monday.", (), True),
        ("Army units sent reinforcements to the front on Monday.", (), False),
        ("Army units sent reinforcements to al-Quriyah on Monday.", ("al-Quriyah",), False),
        ("Army units captured the Mazar Mountains on Monday.", (), True),
    ],
)
def test_a_place_argument_the_gazetteer_lacks(
    sentence: str, known: tuple[str, ...], expected: bool
) -> None:
    """Such a move is not placed at the title's place instead."""
    (parse,) = PARSER.parse([sentence])
    at = next(sentence.index(w) for w in ("sent", "captured") if w in sentence)
    token = parse.trigger(at, at + 4)
    assert token is not None
    spans = [(sentence.index(k), sentence.index(k) + len(k)) for k in known]
    assert parse.names_other_place(token, spans) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Russian troops deployed in al-Mayadin on Monday, for the first time since the "
            "army regained control of Hatla.",
            [("deployment", "russia", "al-Mayadin")],
            id="the-since-clause-is-background",
        ),
        pytest.param(
            "Government forces fought their way to the Deir Ezzor military airport on Monday.",
            [("deployment", "regime", "Deir ez-Zor military airport")],
            id="a-site-gone-to-is-not-a-site-built",
        ),
        pytest.param(
            "The regime captured two villages on the Euphrates River on Monday.",
            [],
            id="a-river-is-not-a-place",
        ),
        pytest.param(
            "Over 100 regime fighters were transported from Hasakah to al-Mayadin on Monday "
            "to reinforce the garrison.",
            [("deployment", "regime", "al-Mayadin")],
            id="fighters-moved-to-reinforce-are-sent",
        ),
        pytest.param(
            "A convoy of Liwa al-Quds entered the al-Talaia camp on Monday.",
            [("deployment", "russia", "al-Talaia camp")],
            id="a-named-camp-entered-is-not-set-up",
        ),
        pytest.param(
            "The tribal army announced a general mobilisation in Dhiban on Monday.",
            [],
            id="an-announced-mobilisation-is-not-a-move",
        ),
        pytest.param(
            "A source revealed to our correspondent that Russian forces sent reinforcements "
            "to Hatla on Monday.",
            [("deployment", "russia", "Hatla")],
            id="what-a-source-revealed-is-news",
        ),
        pytest.param(
            "The coalition currently has about 900 troops deployed in the al-Omar oil field.",
            [],
            id="troops-deployed-in-describes",
        ),
        pytest.param(
            "The fighters of the Deir Ezzor Military Council, affiliated to the SDF, "
            "established on Tuesday two new points in Dhiban.",
            [("establishment", "sdf", "Dhiban")],
            id="a-participle-with-an-object-reports",
        ),
        pytest.param(
            "Residents fled the positions that the militia set up in Hatla last year.",
            [],
            id="a-relative-clause-is-background",
        ),
        pytest.param(
            "Tribal fighters clashed with the SDF in Dhiban on Monday, demanding its "
            "withdrawal from al-Busayrah.",
            [("attack", "unknown", "Dhiban")],
            id="a-demanded-withdrawal-is-not-one",
        ),
        pytest.param(
            "The agreement mandates the handover of al-Mayadin to the army by Monday.",
            [],
            id="a-handover-an-agreement-mandates-is-not-one",
        ),
        pytest.param(
            "The SDF accused the government of sending fighters to Dhiban on Monday.",
            [],
            id="an-accusation-is-not-an-act",
        ),
    ],
)
def test_background_rivers_and_purposes(
    rules: RuleSet, text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert brief(rules, text) == expected


def test_a_lede_and_a_body_sentence_of_one_capture_are_one_event(rules: RuleSet) -> None:
    """The lede's wide place and day, the body's field and month: one takeover."""
    text = (
        "US-backed fighters said they captured a major oil field in Deir Ezzor province on "
        "Sunday.\n\nThe Syrian Democratic Forces said they gained control of the al-Omar oil "
        "field, one of the country's largest."
    )
    (event,) = rules.extract(Document(text, date(2017, 10, 22), "Test Outlet"))
    assert (event.type.value, event.location.name, event.date) == (
        "takeover",
        "al-Omar oil field",
        "2017-10-22",
    )


def test_a_move_dated_long_before_the_report_is_background(rules: RuleSet) -> None:
    text = (
        "Russian military police entered Hatla at the beginning of 2022, residents said.\n\n"
        "Russian military police entered al-Salihiyah on Monday, residents said."
    )
    events = rules.extract(Document(text, date(2023, 7, 20), "Test Outlet"))
    assert [(e.location.name, e.date) for e in events] == [("al-Salihiyah", "2023-07-17")]


def test_reinforcements_to_the_scene_of_a_dated_attack_elsewhere(rules: RuleSet) -> None:
    text = (
        "On Monday, ISIS militants attacked an army bus near al-Sukhnah. After the attack, "
        "government forces brought in reinforcements to the scene of the incident."
    )
    events = rules.extract(Document(text, date(2023, 6, 14), "Test Outlet"))
    assert [(e.type.value, e.actor.affiliation.value, e.location.name) for e in events] == [
        ("attack", "isis", "al-Sukhnah"),
        ("deployment", "regime", "al-Sukhnah"),
    ]


def test_a_headline_move_the_body_does_not_support_is_dropped(rules: RuleSet) -> None:
    title = "Iranian-backed militias withdraw from al-Mayadin"
    body = "Russian forces arrived in Hatla on Monday, local sources said."

    def told(text: str) -> list[tuple[str, str]]:
        events = rules.extract(Document(text, date(2023, 6, 14), "Test Outlet", title=title))
        return [(e.type.value, e.location.name) for e in events]

    assert told(f"{title}\n\n{body}") == [("deployment", "Hatla")]
    # A brief whose body tells nothing: its headline is the report.
    assert told(f"{title}\n\nMore to follow.") == [("withdrawal", "al-Mayadin")]
