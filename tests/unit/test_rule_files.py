"""Rule files: the loader refuses broken data with a precise error, and the real data is sound.

Validation cases copy config/rules into a temporary directory, alter one file and
load the whole rule set, as the service does at start. The data-quality tests
read the real config/rules and check what analysts rely on: enough places and
actors, every spelling the issue lists, and the traps (al-Heri/al-Hari, Liwa
al-Quds/Quds Force, al-Mayadeen TV).
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.errors import RuleConfigError
from service.events import Affiliation
from service.rules import Document, RuleSet, load_rules
from service.rules.actions import load_actions
from service.rules.actors import ActorDictionary
from service.rules.gazetteer import Gazetteer, Place
from service.rules.loading import load_yaml
from service.rules.text import to_match_text

RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
FILES = ("gazetteer.yaml", "actors.yaml", "actions.yaml")
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@pytest.fixture(scope="module")
def real_data() -> dict[str, Any]:
    """The parsed rule files, read once; each case alters a deep copy."""
    return {name: load_yaml(RULES / name) for name in FILES}


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(RULES)


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def dump(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    return text


# ------------------------------------------------------------------ validation
# Each alteration changes the data in place and returns the label of the entry the
# error must name.


def unknown_place_key(d: dict[str, Any]) -> str:
    d["places"][0]["population"] = 5000
    return str(d["places"][0]["id"])


def duplicate_place_id(d: dict[str, Any]) -> str:
    twin = copy.deepcopy(d["places"][1])
    d["places"].append(twin)
    return str(twin["id"])


def bad_precision(d: dict[str, Any]) -> str:
    d["places"][0]["precision"] = "exact"
    return str(d["places"][0]["id"])


def bad_kind(d: dict[str, Any]) -> str:
    d["places"][0]["kind"] = "castle"
    return str(d["places"][0]["id"])


def lat_out_of_range(d: dict[str, Any]) -> str:
    d["places"][0]["lat"] = 95.0
    return str(d["places"][0]["id"])


def lat_not_a_number(d: dict[str, Any]) -> str:
    d["places"][0]["lat"] = "35.1N"
    return str(d["places"][0]["id"])


def unknown_parent(d: dict[str, Any]) -> str:
    d["places"][0]["parent"] = "atlantis"
    return str(d["places"][0]["id"])


def bad_affiliation(d: dict[str, Any]) -> str:
    d["actors"][0]["affiliation"] = "neutral"
    return str(d["actors"][0]["name"])


def pattern_does_not_compile(d: dict[str, Any]) -> str:
    d["actors"][0]["patterns"] = ["iranian (backed"]
    return str(d["actors"][0]["name"])


def duplicate_actor_name(d: dict[str, Any]) -> str:
    twin = copy.deepcopy(d["actors"][1])
    d["actors"].append(twin)
    return str(twin["name"])


def unknown_frame_type(d: dict[str, Any]) -> str:
    d["frames"][0]["type"] = "parade"
    return "frames[0]"


def unknown_preposition(d: dict[str, Any]) -> str:
    d["frames"][0]["location"] = [*d["frames"][0].get("location", []), "beneath"]
    return "frames[0]"


def requires_for_non_trigger(d: dict[str, Any]) -> str:
    d["frames"][0]["requires_for"] = {"marched": "force"}
    return "frames[0]"


def unknown_class(d: dict[str, Any]) -> str:
    d["frames"][0]["requires"] = "boats"
    return "frames[0]"


def unknown_union_class(d: dict[str, Any]) -> str:
    d["frames"][0]["requires"] = "force_or_boats"
    return "frames[0]"


def missing_context_list(d: dict[str, Any]) -> str:
    del d["context"]["hedges"]
    return "context"


def unknown_context_list(d: dict[str, Any]) -> str:
    d["context"]["rumours"] = ["people say"]
    return "context"


def missing_needed_class(d: dict[str, Any]) -> str:
    del d["classes"]["non_combatants"]
    return "classes"


@dataclass(frozen=True)
class Broken:
    id: str
    file: str
    alter: Callable[[dict[str, Any]], str]
    message: str  # a fragment the error message must contain


BROKEN = [
    Broken("unknown-place-key", "gazetteer.yaml", unknown_place_key, "unknown key(s) population"),
    Broken("duplicate-place-id", "gazetteer.yaml", duplicate_place_id, "duplicate id"),
    Broken("bad-precision", "gazetteer.yaml", bad_precision, "'precision' is 'exact'"),
    Broken("bad-kind", "gazetteer.yaml", bad_kind, "'kind' is 'castle'"),
    Broken("lat-out-of-range", "gazetteer.yaml", lat_out_of_range, "'lat' = 95.0 is outside"),
    Broken("lat-not-a-number", "gazetteer.yaml", lat_not_a_number, "'lat' must be a number"),
    Broken("unknown-parent", "gazetteer.yaml", unknown_parent, "parent 'atlantis'"),
    Broken("bad-affiliation", "actors.yaml", bad_affiliation, "'affiliation' is 'neutral'"),
    Broken("bad-pattern", "actors.yaml", pattern_does_not_compile, "does not compile"),
    Broken("duplicate-actor", "actors.yaml", duplicate_actor_name, "duplicate name"),
    Broken("unknown-frame-type", "actions.yaml", unknown_frame_type, "'type' is 'parade'"),
    Broken("unknown-preposition", "actions.yaml", unknown_preposition, "'beneath'"),
    Broken("requires-for-non-trigger", "actions.yaml", requires_for_non_trigger, "'marched'"),
    Broken("unknown-class", "actions.yaml", unknown_class, "unknown class 'boats'"),
    Broken("unknown-union-class", "actions.yaml", unknown_union_class, "unknown class"),
    Broken("missing-context-list", "actions.yaml", missing_context_list, "hedges"),
    Broken("unknown-context-list", "actions.yaml", unknown_context_list, "'rumours'"),
    Broken("missing-needed-class", "actions.yaml", missing_needed_class, "'non_combatants'"),
]


LOADERS: dict[str, Callable[[Path], object]] = {
    "gazetteer.yaml": Gazetteer.load,
    "actors.yaml": ActorDictionary.load,
    "actions.yaml": load_actions,
}


@pytest.mark.parametrize("case", BROKEN, ids=[c.id for c in BROKEN])
def test_broken_rule_file_is_refused(
    case: Broken, real_data: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(real_data[case.file])
    entry = case.alter(data)
    path = copy_rules(tmp_path) / case.file
    path.write_text(dump(data), encoding="utf-8")
    # The file's own loader, as RuleSet.load calls it (the other files need not be read).
    with pytest.raises(RuleConfigError) as raised:
        LOADERS[case.file](path)
    message = str(raised.value)
    assert raised.value.path == str(path)
    assert case.file in message
    assert entry in message
    assert case.message in message


def test_the_rule_set_refuses_a_broken_file(real_data: dict[str, Any], tmp_path: Path) -> None:
    """Loading the whole directory surfaces the file loader's error."""
    directory = copy_rules(tmp_path)
    data = copy.deepcopy(real_data["gazetteer.yaml"])
    entry = unknown_parent(data)
    (directory / "gazetteer.yaml").write_text(dump(data), encoding="utf-8")
    with pytest.raises(
        RuleConfigError, match=rf"gazetteer\.yaml: place {re.escape(entry)}: parent"
    ):
        load_rules(directory)


@pytest.mark.parametrize("name", FILES, ids=[f.removesuffix(".yaml") for f in FILES])
def test_yaml_syntax_error_names_the_file_and_line(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text("a: b: c\n" + (RULES / name).read_text(encoding="utf-8"), "utf-8")
    with pytest.raises(RuleConfigError) as raised:
        LOADERS[name](path)
    assert raised.value.path == str(path)
    assert "not valid YAML" in str(raised.value) and "line 1" in str(raised.value)


def test_repeated_key_in_an_entry_is_refused(real_data: dict[str, Any], tmp_path: Path) -> None:
    path = copy_rules(tmp_path) / "gazetteer.yaml"
    text = dump(real_data["gazetteer.yaml"])
    first_lat = re.search(r"^(\s+)lat: .*$", text, flags=re.MULTILINE)
    assert first_lat is not None
    repeated = f"{first_lat.group(1)}lat: 0.0\n"
    path.write_text(text[: first_lat.start()] + repeated + text[first_lat.start() :], "utf-8")
    with pytest.raises(RuleConfigError, match="lat"):
        Gazetteer.load(path)


def test_missing_rule_file_is_refused(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "gazetteer.yaml").unlink()
    with pytest.raises(RuleConfigError, match=r"gazetteer\.yaml: file not found"):
        load_rules(directory)


def test_word_lists_read_on_and_no_as_words(real_data: dict[str, Any], tmp_path: Path) -> None:
    """Regression: YAML 1.1 reads bare on/off/yes/no as booleans; rule lists are words."""
    data = copy.deepcopy(real_data["actions.yaml"])
    data["frames"][0]["location"] = ["in", "on"]
    data["context"]["negations"] = ["not", "no"]
    data["classes"]["switches"] = ["on", "off", "yes", "no"]
    # The dumper quotes these words; write them bare, as analysts do.
    text = re.sub(r"^(\s*-\s+)'(on|off|yes|no)'$", r"\1\2", dump(data), flags=re.MULTILINE)
    path = tmp_path / "actions.yaml"
    path.write_text(text, encoding="utf-8")
    assert yaml.safe_load(text)["classes"]["switches"] == [True, False, True, False]

    actions = load_actions(path)
    assert "on" in actions.frames[0].location
    assert "no" in actions.context["negations"].words
    assert set(actions.classes["switches"].words) == {"on", "off", "yes", "no"}


def test_real_word_lists_keep_on_and_no(rules: RuleSet) -> None:
    assert any("on" in frame.location for frame in rules.actions.frames)
    assert "no" in rules.actions.context["negations"].words


# ---------------------------------------------------------------- gazetteer data


def resolve(rules: RuleSet, name: str) -> Place:
    """The place a bare mention of ``name`` in a report sentence resolves to."""
    text = f"Fighters arrived in {name} on Monday."
    mt = to_match_text(text)
    hits = list(rules.gazetteer.index.find(mt, rules.actors.ignored_spans(mt)))
    assert len(hits) == 1, f"{name!r}: {hits}"
    start, end = mt.span(hits[0].start, hits[0].end)
    assert text[start:end] == name
    return rules.gazetteer.resolve(hits[0], mt)


def test_at_least_80_places(rules: RuleSet) -> None:
    assert len(rules.gazetteer.places) >= 80


def test_every_place_has_coordinates_or_is_marked_approximate(rules: RuleSet) -> None:
    missing = [
        p.id
        for p in rules.gazetteer.places.values()
        if (p.lat is None or p.lon is None) and not (p.approximate and p.coord_source)
    ]
    assert missing == []


def test_every_place_says_where_its_coordinates_came_from(rules: RuleSet) -> None:
    assert [p.id for p in rules.gazetteer.places.values() if not p.coord_source] == []


def test_places_in_the_province_lie_in_the_province(rules: RuleSet) -> None:
    """Catches swapped or mistyped coordinates: Deir ez-Zor lies within this box."""
    outside = [
        (p.id, p.lat, p.lon)
        for p in rules.gazetteer.places.values()
        if p.in_region
        and p.lat is not None
        and p.lon is not None
        and not (33.8 <= p.lat <= 36.3 and 38.5 <= p.lon <= 41.5)
    ]
    assert outside == []


def test_places_in_the_province_name_their_district(rules: RuleSet) -> None:
    """admin2 is one of the three OCHA districts; every settlement has one."""
    districts = {"Deir ez-Zor", "Mayadin", "Abu Kamal"}
    settlements = {"city", "town", "village", "neighbourhood"}
    wrong = [
        (p.id, p.admin2)
        for p in rules.gazetteer.places.values()
        if p.in_region
        and p.admin2 not in (districts if p.kind in settlements else {*districts, None})
    ]
    assert wrong == []


def test_no_alias_is_both_a_place_and_an_actor(rules: RuleSet) -> None:
    shared = set(rules.gazetteer.index.phrases()) & set(rules.actors.index.phrases())
    assert shared == set()


SPELLINGS = [
    ("albukamal", ["Albukamal", "Abu Kamal", "Al-Bokamal", "al-Boukamal", "البوكمال"], "town"),
    ("al-mayadin", ["al-Mayadeen", "Mayadin", "al-Mayadin", "Al Mayadeen"], "town"),
    ("deir-ez-zor", ["Deir Ezzor", "Deir ez-Zor", "Deir Al-Zour", "Dayr az-Zawr"], "city"),
]


@pytest.mark.parametrize(
    ("names", "kind"), [(n, k) for _, n, k in SPELLINGS], ids=[i for i, _, _ in SPELLINGS]
)
def test_spellings_resolve_to_the_same_place(rules: RuleSet, names: list[str], kind: str) -> None:
    places = [resolve(rules, name) for name in names]
    assert len({p.id for p in places}) == 1, [(n, p.id) for n, p in zip(names, places, strict=True)]
    assert places[0].kind == kind
    assert places[0].in_region


def test_al_heri_in_syria_and_al_hari_in_iraq_differ(rules: RuleSet) -> None:
    heri, hari = resolve(rules, "al-Heri"), resolve(rules, "al-Hari")
    assert heri.id != hari.id
    assert (heri.country, heri.in_region) == ("SY", True)
    assert (hari.country, hari.in_region) == ("IQ", False)


@pytest.mark.parametrize(
    ("name", "country"),
    [("Damascus", "SY"), ("Raqqa", "SY"), ("al-Qaim", "IQ")],
    ids=["damascus", "raqqa", "al-qaim"],
)
def test_places_outside_the_province_are_known(rules: RuleSet, name: str, country: str) -> None:
    place = resolve(rules, name)
    assert place.country == country
    assert not place.in_region


# ------------------------------------------------------------------- actor data


def test_at_least_40_actors(rules: RuleSet) -> None:
    assert len(rules.actors.entries) >= 40


def test_every_affiliation_has_an_actor(rules: RuleSet) -> None:
    assert {e.affiliation for e in rules.actors.entries} == set(Affiliation)


ACTORS = [
    ("liwa-al-quds", "Liwa al-Quds", Affiliation.RUSSIA),
    ("jerusalem-brigade", "Jerusalem Brigade", Affiliation.RUSSIA),
    ("liwa-al-quds-apostrophe", "Liwa' Al-Quds", Affiliation.RUSSIA),
    ("quds-force", "Quds Force", Affiliation.IRAN_BACKED),
    ("irgc-quds-force", "IRGC Quds Force", Affiliation.IRAN_BACKED),
    ("fatemiyoun", "Liwa Fatemiyoun", Affiliation.IRAN_BACKED),
    ("zainebiyoun", "Zainebiyoun", Affiliation.IRAN_BACKED),
    ("lebanese-hezbollah", "Lebanese Hezbollah", Affiliation.IRAN_BACKED),
    ("iraqi-hezbollah", "Iraqi Hezbollah", Affiliation.IRAN_BACKED),
    ("kataib-hezbollah", "Kataib Hezbollah", Affiliation.IRAN_BACKED),
    ("nujaba", "Nujaba", Affiliation.IRAN_BACKED),
    ("liwa-al-baqir", "Liwa al-Baqir", Affiliation.IRAN_BACKED),
    ("haydariyoun", "Haydariyoun", Affiliation.IRAN_BACKED),
    ("abu-al-fadl-al-abbas", "Abu al-Fadl al-Abbas", Affiliation.IRAN_BACKED),
    ("313-battalion", "313 Battalion", Affiliation.IRAN_BACKED),
    ("irgc", "IRGC", Affiliation.IRAN_BACKED),
    ("local-defence-forces", "Local Defence Forces", Affiliation.IRAN_BACKED),
    ("fifth-corps", "Fifth Corps", Affiliation.RUSSIA),
    ("wagner", "Wagner", Affiliation.RUSSIA),
    ("4th-division", "4th Division", Affiliation.REGIME),
    ("ndf", "NDF", Affiliation.REGIME),
    ("military-security", "Military Security", Affiliation.REGIME),
    ("sdf", "SDF", Affiliation.SDF),
    ("coalition", "Coalition", Affiliation.COALITION),
    ("isis", "ISIS", Affiliation.ISIS),
    ("generic-iranian-backed", "Iranian-backed militias", Affiliation.IRAN_BACKED),
    ("generic-pro-iranian", "pro-Iranian militias", Affiliation.IRAN_BACKED),
    ("generic-russian", "Russian forces", Affiliation.RUSSIA),
]


@pytest.mark.parametrize(
    ("name", "affiliation"), [(n, a) for _, n, a in ACTORS], ids=[i for i, _, _ in ACTORS]
)
def test_actor_affiliation(rules: RuleSet, name: str, affiliation: Affiliation) -> None:
    text = f"Fighters of the {name} arrived in the town."
    mt = to_match_text(text)
    found = rules.actors.find(mt, rules.actors.ignored_spans(mt))
    assert len(found) == 1, found
    start, end = mt.span(found[0].start, found[0].end)
    assert text[start:end] == name
    assert found[0].entry.affiliation is affiliation


CHANNELS = ["Al-Mayadeen TV", "Al Mayadeen TV", "al-Mayadeen channel"]


@pytest.mark.parametrize("channel", CHANNELS, ids=["hyphen", "space", "channel"])
def test_al_mayadeen_tv_is_neither_place_nor_actor(rules: RuleSet, channel: str) -> None:
    text = f"{channel} reported that the convoy arrived."
    mt = to_match_text(text)
    blocked = rules.actors.ignored_spans(mt)
    assert blocked and min(a for a, _ in blocked) == 0
    assert list(rules.gazetteer.index.find(mt, blocked)) == []
    assert rules.actors.find(mt, blocked) == []


@pytest.mark.parametrize("channel", CHANNELS, ids=["hyphen", "space", "channel"])
def test_al_mayadeen_tv_never_locates_an_event(rules: RuleSet, channel: str) -> None:
    mayadin = resolve(rules, "al-Mayadeen").name
    text = f"{channel} reported that Russian forces sent reinforcements to Albukamal yesterday."
    events = rules.extract(Document(text, published=date(2020, 7, 21)))
    assert [e.location.name for e in events] == [resolve(rules, "Albukamal").name]
    assert all(e.location.name != mayadin for e in events)


def test_the_town_of_al_mayadeen_still_locates_an_event(rules: RuleSet) -> None:
    """The control for the channel cases: without 'TV' the name is the town."""
    text = "Russian forces sent reinforcements to al-Mayadeen yesterday."
    events = rules.extract(Document(text, published=date(2020, 7, 21)))
    assert [e.location.name for e in events] == [resolve(rules, "al-Mayadeen").name]
