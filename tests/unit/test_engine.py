"""Behaviour of the extraction rules, one case per rule, on short reports written for the tests."""

from __future__ import annotations

from datetime import date

import pytest

from service.events import Event
from service.rules import PROJECT_RULES, Document, RuleSet, load_rules

PUB = date(2023, 6, 15)  # a Thursday


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


def run(
    rules: RuleSet, text: str, *, estimate: bool = False, title: str | None = None
) -> list[Event]:
    return rules.extract(
        Document(text, PUB, "Test Outlet", published_is_estimate=estimate, title=title)
    )


def brief(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.type.value, e.actor.affiliation.value, e.location.name) for e in events]


CASES = [
    (
        "a-place-before-the-trigger-qualified-by-its-container",
        "On Monday, from the vicinity of Hatla village in the Deir Ezzor countryside, Hezbollah fighters withdrew.",
        [("withdrawal", "iran-backed", "Hatla")],
    ),
    (
        "shot-dead-is-an-attack",
        "Unknown gunmen shot dead a member of the Zainebiyoun militia near Albukamal on Tuesday evening.",
        [("attack", "unknown", "Albukamal")],
    ),
    (
        "the-funder-is-not-the-agent",
        "On Monday, about 40 fighters of Liwa al-Baqir, a tribal militia funded by the Revolutionary Guards, arrived in al-Mayadin.",
        [("deployment", "iran-backed", "al-Mayadin")],
    ),
    (
        "opposite-to-the-city-of-is-a-reference",
        "On Monday, the DMC set up two new military points on the bank of the Euphrates opposite to the city of al-Mayadin, near the town of Dhiban.",
        [("establishment", "sdf", "Dhiban")],
    ),
    (
        "only-the-target-named-means-an-unknown-attacker",
        "Regime forces sent reinforcements to Hatla on Sunday. On Monday, gunmen attacked a checkpoint of regime forces in al-Mayadin.",
        [("deployment", "regime", "Hatla"), ("attack", "unknown", "al-Mayadin")],
    ),
    (
        "a-repelled-attack-named-by-its-modifier",
        "Army units repelled an ISIS attack on the outskirts of al-Quriyah on Saturday.",
        [("attack", "isis", "al-Quriyah")],
    ),
    (
        "strikes-in-the-desert-south-of-a-town",
        "Russian Aerospace Forces aircraft on Monday struck hideouts of terrorists in the desert area south of al-Mayadin.",
        [("strike", "russia", "al-Mayadin")],
    ),
    (
        "a-repelled-attack-has-an-unnamed-attacker",
        "Army units and the allied NDF repelled an attack on a military post on the outskirts of al-Quriyah on Saturday.",
        [("attack", "unknown", "al-Quriyah")],
    ),
    (
        "deploying-a-post-is-an-establishment",
        "On Tuesday, units of the Russian military police deployed an observation post near al-Salihiyah.",
        [("establishment", "russia", "al-Salihiyah")],
    ),
    (
        "arriving-at-a-base-is-a-deployment",
        "A convoy of Russian forces arrived yesterday at the Russian base in the Deir Ezzor military airport.",
        [("deployment", "russia", "Deir ez-Zor military airport")],
    ),
    (
        "a-plane-delivering-servicemen",
        "An Il-76 transport plane on Monday delivered 30 Russian military police servicemen to the Deir Ezzor military airport.",
        [("deployment", "russia", "Deir ez-Zor military airport")],
    ),
    (
        "shelling-with-mortars-is-an-attack",
        "Government forces stationed in al-Mayadin targeted with mortar shells the houses of al-Hawaij on Monday.",
        [("attack", "regime", "al-Hawaij")],
    ),
    (
        "a-wave-of-strikes-is-the-circumstance",
        "A senior IRGC officer visited Albukamal on Monday. The visit came days after a wave of airstrikes on the Syrian-Iraqi border.",
        [("visit", "iran-backed", "Albukamal")],
    ),
    (
        "militia-members-are-the-militias-named-before",
        "Israeli jets struck positions of Iran-backed militias near Albukamal on Monday. Following the strikes, dozens of militia members left their positions in al-Hizam.",
        [("strike", "israel", "Albukamal"), ("withdrawal", "iran-backed", "al-Hizam (Albukamal)")],
    ),
    (
        "the-reinforcements-point-back-to-the-last-movement",
        "The Syrian army sent reinforcements to al-Mayadin on Saturday. On Friday, ISIS cells attacked a post near al-Shoula. The reinforcements arrived on Sunday in al-Quriyah.",
        [
            ("deployment", "regime", "al-Mayadin"),
            ("attack", "isis", "al-Shoula"),
            ("deployment", "regime", "al-Quriyah"),
        ],
    ),
    (
        "pro-government-army-units",
        "Army units repelled an attack by ISIS cells on a military post near al-Shoula on Friday.",
        [("attack", "isis", "al-Shoula")],
    ),
    (
        "us-occupation-forces-are-us-forces",
        "The US occupation forces brought on Sunday a new convoy of 28 trucks to the Conoco gas field.",
        [("deployment", "coalition", "Conoco gas field")],
    ),
    (
        "a-drone-nobody-is-named-for",
        "Russian forces deployed in Hatla on Monday. On Tuesday, a drone targeted a car in al-Mayadin, killing two militiamen.",
        [("deployment", "russia", "Hatla"), ("strike", "unknown", "al-Mayadin")],
    ),
    (
        "capturing-a-leader-is-an-arrest",
        "The operation in al-Shuhayl on Monday resulted in the capture of the cell's leader and two of his aides.",
        [],
    ),
    (
        "a-group-that-enlists-is-the-actor",
        "Last week, Liwa al-Quds enlisted around 150 young men from the al-Joura neighbourhood of Deir Ezzor city.",
        [("recruitment", "russia", "al-Joura")],
    ),
    (
        "called-absolutely-false",
        "Sokolov called absolutely false the reports about the withdrawal of Russian forces from al-Salihiyah.",
        [],
    ),
    (
        # The annotation guideline: a reference point is not the place when a finer
        # place is named, even one the gazetteer lacks.
        "an-unknown-village-is-not-its-compass-reference",
        "Iranian-backed militias installed rocket launchers on Monday in the farms of Buqrus village, north-west of al-Mayadin.",
        [],
    ),
    (
        "a-compass-reference-alone-is-not-the-place",
        "Regime forces deployed on Monday 10 km north of Hatla.",
        [],
    ),
    (
        "an-unnamed-agent-after-by",
        "SOHR documented an attack by gunmen on an SDF checkpoint near al-Busayrah on Monday.",
        [("attack", "unknown", "al-Busayrah")],
    ),
    (
        "a-tagged-post-is-placed-by-its-tag-not-the-previous-post",
        "📍 #AlMayadin | Hezbollah fighters arrived at the T2 pumping station on Monday.\n\n📍 #AlBukamal | An unidentified drone targeted a truck on Tuesday near Al-Abbas village, south of the city.",
        [("deployment", "iran-backed", "T2 pumping station"), ("strike", "unknown", "Albukamal")],
    ),
    (
        "groups-of-two-sides-acting-together",
        "Fighters of Kataib Hezbollah and members of the regime's Military Security took over the grain silos in al-Sukkariyah on Monday.",
        [("takeover", "regime", "al-Sukkariyah"), ("takeover", "iran-backed", "al-Sukkariyah")],
    ),
    (
        "joint-raid-with-an-abbreviation",
        "Forces of the US-led International Coalition and the Syrian Democratic Forces (SDF) carried out a joint raid on a house in Jadid Ekaidat on Monday.",
        [("attack", "sdf", "Jadid Ekaidat"), ("attack", "coalition", "Jadid Ekaidat")],
    ),
    (
        "a-supporting-group-is-no-partner",
        "Russian forces, with NDF support, entered Hatla on Monday.",
        [("deployment", "russia", "Hatla")],
    ),
    (
        "a-wire-dateline-is-where-the-report-was-filed",
        "Beirut (AFP) - Iran-backed militias have moved fighters out of a neighbourhood of the eastern Syrian town of Albukamal on Monday.",
        [("relocation", "iran-backed", "Albukamal")],
    ),
    (
        "a-post-tag-places-its-events",
        "📍 #AlBukamal | An unidentified drone targeted, on Tuesday night, a truck near Al-Abbas village, south of the city.",
        [("strike", "unknown", "Albukamal")],
    ),
    (
        "before-doing-is-a-circumstance",
        "ISIS militants attacked an army position near al-Shoula on Sunday, killing three soldiers before withdrawing towards the desert.",
        [("attack", "isis", "al-Shoula")],
    ),
    (
        "since-a-year-does-not-open-a-clause",
        "Russian military police pulled out on Monday of the post they had kept since 2018 at the northern entrance of Mayadin.",
        [("withdrawal", "russia", "al-Mayadin")],
    ),
    (
        "the-target-owner-is-not-the-attacker",
        "On Monday, gunmen attacked a checkpoint of regime forces in the town of Mayadeen, killing one soldier.",
        [("attack", "unknown", "al-Mayadin")],
    ),
    (
        "an-attacked-checkpoint-belongs-to-the-target",
        "Gunmen attacked an SDF checkpoint near al-Busayrah on Monday.",
        [("attack", "unknown", "al-Busayrah")],
    ),
    (
        "old-pictures-are-no-news",
        "Activists circulated pictures of a convoy of Iranian militias entering al-Mayadin; Furat Post confirms that the pictures are old.",
        [],
    ),
    (
        "the-militias-are-the-militias-named-before",
        "Israeli jets struck positions of Iran-backed militias near Albukamal on Monday. Earlier this month, the militias moved dozens of fighters from their positions inside Abu Kamal to new positions in the desert.",
        [("strike", "israel", "Albukamal"), ("relocation", "iran-backed", "Albukamal")],
    ),
    (
        "an-abbreviation-in-brackets-is-not-a-subject",
        "A coalition convoy arrived at the Conoco gas field on Monday. It was escorted by fighters of the Syrian Democratic Forces (SDF).\n\nOn June 14, a convoy of 18 trucks arrived at the same base.",
        [
            ("deployment", "coalition", "Conoco gas field"),
            ("deployment", "coalition", "Conoco gas field"),
        ],
    ),
    (
        "dispersal-after-an-arrival-is-a-detail",
        "Kataib Hezbollah brought more than 200 of its fighters to the town of Muhasan on Monday and distributed them on the houses of displaced people.",
        [("deployment", "iran-backed", "Muhasan")],
    ),
    (
        "purpose-phrase-is-no-act",
        "The Russian forces sent a convoy to al-Salihiyah on Monday, in an attempt to benefit from the withdrawal of Hezbollah.",
        [("deployment", "russia", "al-Salihiyah")],
    ),
    (
        "a-dismissed-report-in-the-same-sentence",
        "Reports about the withdrawal of Zainebiyoun militia from its positions near the Conoco gas field turned out to be fake.",
        [],
    ),
    (
        "a-habit-is-not-an-event",
        "Most of their attacks target supply convoys on the highways linking Deir Ezzor with Palmyra.",
        [],
    ),
    (
        "rather-than-negates",
        "Each round of strikes has been followed by a reshuffle rather than a retreat from Albukamal.",
        [],
    ),
    (
        "distance-in-brackets-is-a-reference",
        "Albukamal, which lies about 10 kilometres (six miles) from the al-Qaim border crossing, was captured by regime forces on Monday.",
        [("takeover", "regime", "Albukamal")],
    ),
    (
        "the-road-connecting-it-with-is-a-reference",
        "Hezbollah fighters were redeployed in Mazlum on Monday, on the road connecting it with Deir Ezzor.",
        [("relocation", "iran-backed", "Mazlum")],
    ),
    (
        "evacuate-and-disperse-is-a-relocation",
        "The IRGC evacuated its headquarters in Albukamal last Thursday and distributed its members among civilian houses.",
        [("relocation", "iran-backed", "Albukamal")],
    ),
    (
        "the-strikes-refine-a-vague-place",
        "Airstrikes hit positions of Iran-backed militias near the border with Iraq early Monday. The strikes targeted weapons depots in the town of Abu Kamal.",
        [("strike", "unknown", "Albukamal")],
    ),
    (
        "non-restrictive-where-clause-reports-the-event",
        "Iran's militias opened enlistment centres in the eastern countryside, where about 120 young men from the town of al-Quriyah joined the Local Defence militia last month.",
        [("recruitment", "iran-backed", "al-Quriyah")],
    ),
    (
        "quoted-group-name",
        'On Monday, 40 young men from al-Quriyah joined the "Local Defence" militia.',
        [("recruitment", "iran-backed", "al-Quriyah")],
    ),
    (
        "a-topic-noun-is-not-an-act",
        "As for the withdrawal, the sources gave no details about Hatla.",
        [],
    ),
    (
        "handing-over-what-was-evacuated-is-a-handover",
        "Liwa Fatemiyoun evacuated three houses in Albukamal on Monday and handed them to Hezbollah members.",
        [("handover", "iran-backed", "Albukamal")],
    ),
    (
        "supporting-group-is-not-the-agent",
        "On Monday, U.S. forces, with SDF support, carried out a raid on a house in the town of al-Busayrah.",
        [("attack", "coalition", "al-Busayrah")],
    ),
    (
        "attribution-names-the-unidentified-author",
        "An unidentified drone, believed to be Israeli, targeted a Liwa Fatemiyoun position near Albukamal on Monday.",
        [("strike", "israel", "Albukamal")],
    ),
    (
        "attribution-after-a-nominal-trigger",
        "Airstrikes believed to have been carried out by Israel hit militia positions near al-Mayadin on Monday.",
        [("strike", "israel", "al-Mayadin")],
    ),
    (
        "after-opens-another-clause",
        "U.S. jets struck a depot near al-Mayadin on Thursday, two days after a drone attack on a base at the al-Omar oil field.",
        [("strike", "coalition", "al-Mayadin")],
    ),
    (
        "a-route-is-not-the-destination",
        "Iranian-backed militias brought in a convoy of trucks on Tuesday through the al-Sikak crossing near Albukamal.",
        [("deployment", "iran-backed", "Albukamal")],
    ),
    (
        "a-second-predicate-has-its-own-place",
        "A convoy of the Nujaba militia entered Albukamal on Sunday through the al-Qaim crossing, and unloaded in warehouses near the al-Hizam neighbourhood.",
        [("deployment", "iran-backed", "Albukamal")],
    ),
    (
        "arrival",
        "A convoy of Liwa Fatemiyoun fighters arrived in al-Mayadeen on Monday, local sources said.",
        [("deployment", "iran-backed", "al-Mayadin")],
    ),
    (
        "sent-to",
        "Russian forces sent reinforcements to the town of Khasham on Tuesday.",
        [("deployment", "russia", "Khasham")],
    ),
    (
        "withdrawal",
        "Regime forces withdrew from the village of Hatla yesterday after heavy clashes.",
        [("withdrawal", "regime", "Hatla")],
    ),
    (
        "withdrawal-to-new-positions-is-relocation",
        "Iranian-backed militias withdrew from their headquarters in Abu Kamal to new positions in the desert on Sunday.",
        [("relocation", "iran-backed", "Albukamal")],
    ),
    (
        "redeployed-in-positions",
        "Hezbollah fighters were redeployed in positions in the village of Mazlum last week.",
        [("relocation", "iran-backed", "Mazlum")],
    ),
    (
        "handover",
        "The Fourth Division handed over three checkpoints in al-Mayadin to Iranian-backed militias on Saturday.",
        [("handover", "regime", "al-Mayadin")],
    ),
    (
        "expelled-takeover",
        "On June 2, Russian military police expelled NDF members from the al-Omar oil field.",
        [("takeover", "russia", "al-Omar oil field")],
    ),
    (
        "visit",
        "A senior IRGC commander visited Albukamal on Wednesday and met local militia leaders.",
        [("visit", "iran-backed", "Albukamal")],
    ),
    (
        "establishment",
        "The SDF established a new military point near the town of Dhiban on Friday.",
        [("establishment", "sdf", "Dhiban")],
    ),
    (
        "recruitment-actor-is-the-group-joined",
        "On Monday, 40 young men from al-Quriyah joined the Local Defence Forces in exchange for salaries.",
        [("recruitment", "iran-backed", "al-Quriyah")],
    ),
    (
        "strike-by-unidentified-aircraft",
        "On Tuesday, unidentified aircraft struck a weapons depot of Kataib Hezbollah near Albukamal.",
        [("strike", "unknown", "Albukamal")],
    ),
    ("denial", "The SDF denied reports that its forces had withdrawn from Dhiban.", []),
    ("plan", "Russia plans to deploy additional troops to Deir Ezzor airport next month.", []),
    ("hypothetical-should", "They should move the Afghan fighters out of al-Mayadin.", []),
    (
        "stative-presence",
        "Several Iranian-backed groups are currently deployed in southern Deir Ezzor.",
        [],
    ),
    ("negated", "Russian forces have not withdrawn from the al-Ward oil field.", []),
    (
        "relative-clause-background",
        "Hezbollah held a meeting at the school where its fighters were deployed in al-Mayadin.",
        [],
    ),
    (
        "undated-out-of-region-background",
        "Russia has also taken control of the Khmeimim air base in Latakia.",
        [],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_case(rules: RuleSet, text: str, expected: list[tuple[str, str, str]]) -> None:
    assert brief(run(rules, text)) == expected


def test_origin_quantities_and_anaphora_enrich_one_event(rules: RuleSet) -> None:
    events = run(
        rules,
        "On June 10, a convoy of Iranian-backed militias arrived in al-Mayadin.\n\n"
        "The convoy, which came from Albukamal, consisted of about 25 vehicles and 60 fighters.",
    )
    assert brief(events) == [("deployment", "iran-backed", "al-Mayadin")]
    (event,) = events
    assert event.origin is not None and event.origin.name == "Albukamal"
    assert event.quantities == {"vehicles": 25, "fighters": 60}
    assert (event.date, event.date_precision.value) == ("2023-06-10", "day")


def test_headline_body_and_quote_are_one_event(rules: RuleSet) -> None:
    text = (
        "Russian Forces Deploy Reinforcements In Deir Ezzor\n\n"
        "Russian forces deployed reinforcements to the town of al-Mayadin on Monday, according to local sources. "
        "“The Russian convoy arrived in al-Mayadin in the afternoon,” a resident said."
    )
    assert brief(run(rules, text)) == [("deployment", "russia", "al-Mayadin")]


def test_two_convoys_on_different_dates_stay_two_events(rules: RuleSet) -> None:
    text = (
        "On June 3, a convoy of Iranian-backed militias arrived in al-Mayadin from Albukamal. "
        "This followed the arrival of another convoy on May 28."
    )
    events = run(rules, text)
    assert sorted(e.date or "" for e in events) == ["2023-05-28", "2023-06-03"]
    assert {e.type.value for e in events} == {"deployment"}


def test_hedged_report(rules: RuleSet) -> None:
    (event,) = run(
        rules, "Iranian-backed militias reportedly sent reinforcements to Hatla on Sunday."
    )
    assert event.hedged


def test_dismissed_claims_are_hedged(rules: RuleSet) -> None:
    text = (
        "Activists reported Israeli airstrikes on Iranian-backed militias near al-Mayadin on Monday. "
        "These claims turned out to be fake news."
    )
    assert [e.hedged for e in run(rules, text)] == [True]


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Al-Mayadeen TV reported that Russian forces arrived in Hajin on Monday.", "Hajin"),
        ("According to Al Mayadeen channel, regime forces entered al-Susah on Monday.", "al-Susah"),
    ],
    ids=["al-mayadeen-tv", "al-mayadeen-channel"],
)
def test_channel_name_is_not_a_place(rules: RuleSet, text: str, place: str) -> None:
    assert [e.location.name for e in run(rules, text)] == [place]


def test_liwa_al_quds_is_russia_backed_and_quds_force_is_iranian(rules: RuleSet) -> None:
    quds = run(rules, "On Monday, Liwa al-Quds fighters arrived in Deir ez-Zor military airport.")
    force = run(rules, "On Monday, a Quds Force commander visited al-Mayadin.")
    assert [e.actor.affiliation.value for e in quds] == ["russia"]
    assert [e.actor.affiliation.value for e in force] == ["iran-backed"]


def test_syrian_heri_is_in_region_iraqi_hari_is_not(rules: RuleSet) -> None:
    syria = run(rules, "On Monday, Iranian-backed militias sent a convoy to al-Heri.")
    iraq = run(rules, "On Monday, Kataib Hezbollah sent a convoy to al-Hari in Iraq.")
    assert [e.in_region for e in syria] == [True]
    assert [e.in_region for e in iraq] == [False]


def test_distances_and_unit_names_are_not_quantities(rules: RuleSet) -> None:
    (event,) = run(
        rules,
        "On Monday, the 7th Artillery Battalion of the regime arrived in Muhasan, 30 km east of Deir Ezzor.",
    )
    assert event.quantities == {}


def test_reader_comments_never_produce_events(rules: RuleSet) -> None:
    text = (
        "Russian forces sent a convoy of 20 vehicles to the town of Khasham on Monday, according to local "
        "sources who spoke to the outlet about the deployment and the positions it took up near the river.\n\n"
        "  • Freedom Lover\n\n"
        "    Iran withdrew from al-Mayadin last week, I saw it myself and you all know it.\n\n"
        "  • observer22\n\n"
        "    Hezbollah arrived in Albukamal yesterday lol.\n"
    )
    assert brief(run(rules, text)) == [("deployment", "russia", "Khasham")]


def test_undated_events_take_the_publication_week_or_month(
    rules: RuleSet,
) -> None:
    """An undated move is news of the days before publication: the publication day to
    the week when the day is known, the (estimated) month otherwise; with no
    publication date at all the event has none."""
    text = "Iranian-backed militias have handed over checkpoints in al-Mayadin to the regime."
    (known,) = run(rules, text)
    (estimated,) = run(rules, text, estimate=True)
    (unknown,) = rules.extract(Document(text, None, "Test Outlet"))
    assert (known.date, known.date_precision.value) == (PUB.isoformat(), "week")
    assert (estimated.date, estimated.date_precision.value) == ("2023-06", "month")
    assert (unknown.date, unknown.date_precision.value) == (None, "unknown")


def test_evidence_offsets_point_into_the_text(rules: RuleSet) -> None:
    text = "Intro line.\n\nOn Monday, Russian forces arrived in Marrat, a village east of the Euphrates."
    (event,) = run(rules, text)
    assert text[event.evidence.start : event.evidence.end] == event.evidence.text
    assert event.evidence.text.startswith("On Monday")


def test_a_nearby_town_standing_for_an_unnamed_spot_is_a_district_point(
    rules: RuleSet,
) -> None:
    near, exact = run(
        rules,
        "Iranian-backed militias installed rocket launchers on Monday in a village north-west of "
        "al-Mayadin. On Tuesday, Hezbollah fighters arrived in Albukamal.",
    )
    assert near.location.name == "al-Mayadin" and near.location.precision.value == "district"
    assert exact.location.name == "Albukamal" and exact.location.precision.value == "town"


def test_our_forces_in_a_statement_are_the_outlet_s_group(rules: RuleSet) -> None:
    [event] = rules.extract(
        Document(
            "On Monday, our forces attacked ISIS cells in al-Shuhayl.",
            PUB,
            "SDF Press Center",
        )
    )
    assert (event.type.value, event.actor.affiliation.value) == ("attack", "sdf")


def test_posts_under_a_date_heading_take_its_day(rules: RuleSet) -> None:
    page = (
        "━━━━━━━━━━\nWednesday, 17 May 2023\n━━━━━━━━━━\n\n"
        "🔴 #al-Mayadin | A convoy of Liwa Fatemiyoun with 14 vehicles entered the city.\n\n"
        "🔴 #Albukamal | A drone of unknown identity targeted a car near the city.\n"
    )
    events = rules.extract(Document(page, date(2023, 5, 18), "Sada al-Sharqiya"))
    assert [(e.type.value, e.date, e.date_precision.value) for e in events] == [
        ("deployment", "2023-05-17", "day"),
        ("strike", "2023-05-17", "day"),
    ]
    # An article's own date line is not a heading: an undated event is of the week up to
    # the publication day, not of the heading's day.
    article = "June 05, 2023\n\nA convoy of Liwa Fatemiyoun entered al-Mayadin, sources said."
    [event] = rules.extract(Document(article, date(2023, 6, 5), "Outlet"))
    assert (event.date, event.date_precision.value) == ("2023-06-05", "week")


def test_could_not_confirm_hedges_rather_than_blocks(rules: RuleSet) -> None:
    [event] = run(
        rules,
        "According to information which Furat Post could not confirm, the Fatemiyoun militia "
        "brought three trucks of ammunition to its positions in Hatla on Monday night.",
    )
    assert (event.type.value, event.location.name, event.hedged) == ("deployment", "Hatla", True)


def test_a_report_naming_no_known_place_has_no_events(rules: RuleSet) -> None:
    assert (
        run(
            rules,
            "Army units shelled rebel positions on Monday and Russian jets struck a convoy. "
            "Hezbollah fighters withdrew from two villages the next day.",
        )
        == []
    )


def test_a_body_without_places_takes_the_title_s_place(rules: RuleSet) -> None:
    [event] = run(
        rules,
        "The SDF sent reinforcements with armoured vehicles on Monday.",
        title="SDF reinforcements reach al-Busayrah",
    )
    assert (event.type.value, event.location.name) == ("deployment", "al-Busayrah")


def test_the_no_place_shortcut_changes_no_report_s_events(
    rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every corpus report gives the same events with the shortcut as without it."""
    from service.cli import read_manifest_doc
    from service.corpus import read_manifest
    from service.rules import engine

    root = PROJECT_RULES.parents[1]
    manifests = [
        root / "corpus" / "seeds" / "MANIFEST.json",
        *sorted((root / "tests" / "data").glob("*/MANIFEST.json")),
    ]
    docs = [read_manifest_doc(doc) for m in manifests for doc in read_manifest(m)]
    docs += [Document(text, PUB, title=title) for text, title in _PLACELESS_PAGES]
    with_shortcut = [rules.extract(doc) for doc in docs]
    monkeypatch.setattr(engine._Extraction, "_names_a_place", lambda self: True)
    without = [rules.extract(doc) for doc in docs]
    assert with_shortcut == without
    assert sum(map(len, without)) > 200  # the corpora do produce events


_PLACELESS_PAGES = [
    ("Markets rallied on Monday after the central bank held rates. Analysts expect a cut.", None),
    ("Police arrested two men after clashes near the stadium.", "Derby ends in violence"),
]
