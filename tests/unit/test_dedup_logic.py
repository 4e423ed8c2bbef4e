"""Pure dedup and corroboration logic: canonical URLs, judgement, the index, event matching."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import corroboration, dedup
from service.config import DedupSettings
from service.corpus import read_text
from service.events import (
    Actor,
    Affiliation,
    DatePrecision,
    Event,
    EventType,
    Evidence,
    Location,
    Precision,
    Source,
)
from tests.seed_copies import article_text, seed_doc

SETTINGS = DedupSettings()
MIRRORS = dedup.mirror_map(SETTINGS)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://southfront.org/a-report/", "https://southfront.org/a-report"),
        ("http://www.southfront.org/a-report", "https://southfront.org/a-report"),
        ("https://southfront.press/a-report/", "https://southfront.org/a-report"),
        (
            "https://southfront.org/a-report/?utm_source=rss&utm_medium=rss&doing_wp_cron=17.2",
            "https://southfront.org/a-report",
        ),
        ("https://southfront.org/a-report/#comments", "https://southfront.org/a-report"),
        ("https://SOHR.example/en/?p=123&fbclid=x", "https://sohr.example/en?p=123"),
        ("https://news.example/item.php?id=7&b=2", "https://news.example/item.php?b=2&id=7"),
        ("ftp://files.example/a", None),
        ("not a url", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, canonical: str | None) -> None:
    assert dedup.canonical_url(url, MIRRORS, SETTINGS.drop_query_params) == canonical


def test_wordpress_guid_is_an_alias_only_on_the_same_site() -> None:
    canonical, alias = dedup.urls_for(
        "https://southfront.press/pretty-path/", "http://southfront.org/?p=99", SETTINGS
    )
    assert (canonical, alias) == (
        "https://southfront.org/pretty-path",
        "https://southfront.org/?p=99",
    )
    assert dedup.urls_for("https://a.example/x", "https://b.example/?p=9", SETTINGS)[1] is None
    assert dedup.urls_for("https://a.example/x", "urn:uuid:1234", SETTINGS)[1] is None


TEXT = " ".join(f"word{i} filler{i % 7}" for i in range(200))


def test_containment_catches_what_jaccard_misses() -> None:
    comments = " ".join(f"reader{i} says{i}" for i in range(2000))
    sim = dedup.similarity(TEXT, TEXT + " " + comments, 3)
    assert sim.jaccard < 0.2 and sim.containment == 1.0
    assert dedup.is_duplicate(sim, SETTINGS)
    other = " ".join(f"other{i} text{i}" for i in range(200))
    assert not dedup.is_duplicate(dedup.similarity(TEXT, other, 3), SETTINGS)


BULLETIN = (
    "SOHR sources reported that a convoy of Iranian-backed militias comprising {n} vehicles, "
    "including trucks loaded with weapons and ammunition, arrived in al-Mayadin city on "
    "{day}, coming from the Albukamal area near the border with Iraq, where the militias "
    "keep their main depots. The convoy unloaded its cargo in the warehouses of the "
    "militias near the cultural centre and the fighters were deployed in the positions of "
    "the Local Defence Forces in the eastern countryside of Deir Ezzor, the sources added."
)


def test_a_templated_bulletin_with_other_facts_is_not_a_duplicate() -> None:
    first = BULLETIN.format(n=17, day="June 20")
    assert dedup.judge(BULLETIN.format(n=17, day="June 25"), {1: first}, SETTINGS) is None
    assert dedup.judge(BULLETIN.format(n=23, day="June 20"), {1: first}, SETTINGS) is None


def test_a_repost_that_adds_comments_or_an_update_is_still_a_duplicate() -> None:
    original = BULLETIN.format(n=17, day="June 20")
    with_update = original + " Update: 3 fighters were killed in a clash on June 21."
    verdict = dedup.judge(original, {7: with_update}, SETTINGS)
    assert verdict is not None and verdict.article_id == 7
    trimmed = original.rsplit(" The convoy", 1)[0]
    assert dedup.judge(trimmed + " " + original[-120:], {7: original}, SETTINGS) is not None


def test_a_repost_page_with_its_own_date_line_is_still_a_duplicate() -> None:
    original = BULLETIN.format(n=17, day="June 20")
    page = "Militia convoy reaches al-Mayadin\nJune 22, 2024 - 09:15\n" + original
    assert dedup.judge(page, {7: original}, SETTINGS) is not None


def mirror_text(article: str) -> str:
    """A mirror page's text as extracted (``tests.seed_copies.mirror_page``): a date
    banner and a donation widget injected above the article, the amounts below it."""
    title, rest = article.split("\n", 1)
    return (
        f"{title}\nOCTOBER 2024 · Keep this mirror online, donate: $ 2,500 5,000 100\n"
        f"{rest}\n$ 2,500 5,000 100"
    )


def test_a_mirror_s_page_furniture_is_not_a_fact_of_the_report() -> None:
    """Issue 16, item 10: a mirror of seed 001 whose page carries a date banner and a
    donation widget is a duplicate of the seed (the scrape with reader comments)."""
    doc = seed_doc("001")
    mirror = mirror_text(article_text(doc))
    verdict = dedup.judge(mirror, {1: read_text(doc)}, SETTINGS)
    assert verdict is not None and verdict.article_id == 1
    # The report's own facts still count: the same page about another day is another report.
    other_day = mirror.replace("On June 3,", "On June 9,")
    assert other_day != mirror
    assert dedup.judge(other_day, {1: read_text(doc)}, SETTINGS) is None


def test_a_templated_bulletin_on_a_mirror_page_is_still_another_report() -> None:
    first = BULLETIN.format(n=17, day="June 20")
    page = mirror_text("Militia convoy reaches al-Mayadin\n" + first)
    assert dedup.judge(page, {1: BULLETIN.format(n=17, day="June 20") + " More."}, SETTINGS)
    assert (
        dedup.judge(
            mirror_text("Convoy\n" + BULLETIN.format(n=17, day="June 25")), {1: first}, SETTINGS
        )
        is None
    )
    assert (
        dedup.judge(
            mirror_text("Convoy\n" + BULLETIN.format(n=23, day="June 20")), {1: first}, SETTINGS
        )
        is None
    )


def test_the_report_body_is_what_the_rules_read() -> None:
    body = dedup.report_body(
        "JULY 2020\n"
        "Convoy Reaches The City\n"
        "OCTOBER 2024 · Keep this mirror online, donate: $ 2,500 5,000 100\n"
        "On June 3, a convoy of 30 vehicles arrived in al-Mayadin, local sources said. "
        "It came from al-Heri.\n"
        "$ 2,500 5,000 100\n"
        "By Staff Writer\n"
        "I think you should count again, there were 45 of them.\n"
    )
    assert "On June 3, a convoy of 30 vehicles arrived in al-Mayadin" in body
    for furniture in ("JULY", "OCTOBER", "2,500", "Staff", "45"):  # and a reader's voice
        assert furniture not in body


def test_short_texts_are_never_near_duplicates() -> None:
    assert dedup.judge("a convoy arrived", {1: "a convoy arrived today"}, SETTINGS) is None


def test_index_proposes_a_repost_and_keeps_signatures_compact() -> None:
    index = dedup.DedupIndex(SETTINGS)
    sig = dedup.signature(TEXT, SETTINGS)
    assert len(sig.lead) == len(sig.whole) == SETTINGS.num_perm * 4
    index.add(1, sig)
    index.add(2, dedup.signature(" ".join(f"x{i}" for i in range(300)), SETTINGS))
    repost = dedup.signature(TEXT + " " + " ".join(f"c{i}" for i in range(2000)), SETTINGS)
    assert index.candidates(repost) == [1]
    assert not index.add(1, sig) and len(index) == 2 and index.last_id == 2
    with pytest.raises(ValueError, match="num_perm changed"):
        index.add(3, dedup.signature(TEXT, replace(SETTINGS, num_perm=32)))


def _datasketch_values(hashes: np.ndarray, num_perm: int) -> bytes:
    """datasketch's affine32 MinHash of already hashed items, signed in one batch."""
    from datasketch import MinHash

    mh = MinHash(num_perm=num_perm, seed=dedup.SEED, scheme=dedup.SCHEME, hashfunc=int)
    mh.update_batch(sorted(set(np.asarray(hashes).tolist())))
    return np.asarray(mh.hashvalues, dtype="<u4").tobytes()


def _hashes_of(tokens: list[str], k: int) -> np.ndarray:
    return dedup.shingle_hashes(dedup.word_hashes([t.encode() for t in tokens]), k)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "one two",
        TEXT[:400],  # shorter than the lead: one MinHash for both
        TEXT,
        TEXT + " " + TEXT,  # repeated shingles
    ],
    ids=["empty", "tiny", "lead-only", "long", "repeats"],
)
@pytest.mark.parametrize("lead_words", [SETTINGS.lead_words, 2])
def test_signature_values_are_those_of_each_shingle_set_signed_alone(
    text: str, lead_words: int
) -> None:
    # The lead is MinHash(shingles of the first lead_words words), the whole
    # MinHash(all shingles), whatever shortcut signs the two together.
    settings = replace(SETTINGS, lead_words=lead_words)
    tokens = dedup.words(text)
    k = settings.shingle_words
    sig = dedup.signature(text, settings)
    assert sig.whole == _datasketch_values(_hashes_of(tokens, k), settings.num_perm)
    assert sig.lead == _datasketch_values(_hashes_of(tokens[:lead_words], k), settings.num_perm)
    assert sig.words == len(tokens)
    assert sig.shingles == len(dedup.shingles(tokens, k))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_shingles_are_every_run_of_k_words(k: int) -> None:
    tokens = [f"w{i % 4}" for i in range(9)]
    expected = {" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}
    assert dedup.shingles(tokens, k) == expected
    assert dedup.shingles(tokens[:k], k) == {" ".join(tokens[:k])}
    assert dedup.shingles([], k) == set()


MAYADIN = Location("al-Mayadin", 35.0196, 40.4519, "Al-Mayadin", Precision.TOWN)
NEAR = Location("al-Mayadin farms", 35.03, 40.47, "Al-Mayadin", Precision.SITE)
BUKAMAL = Location("al-Bukamal", 34.4536, 40.9367, "Al-Bukamal", Precision.TOWN)
HERI = Location("al-Heri", 34.40, 40.99, "Al-Bukamal", Precision.TOWN)
CONVOY = Event(
    type=EventType.DEPLOYMENT,
    actor=Actor("Liwa Fatemiyoun", Affiliation.IRAN_BACKED),
    location=MAYADIN,
    origin=None,
    date="2020-06-03",
    date_precision=DatePrecision.DAY,
    hedged=True,
    in_region=True,
    evidence=Evidence("a convoy arrived", 0, 16),
    source=Source("SOHR"),
)


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (replace(CONVOY, actor=Actor("Iranian-backed militias", Affiliation.IRAN_BACKED)), True),
        (replace(CONVOY, location=NEAR), True),
        (replace(CONVOY, date="2020-06-04"), True),
        (replace(CONVOY, date="2020-06", date_precision=DatePrecision.MONTH), True),
        (replace(CONVOY, date="2020-06-01", date_precision=DatePrecision.WEEK), True),
        (replace(CONVOY, date="2020-06-10"), False),
        # Another outlet's undated report published two days later: the week up to it.
        (replace(CONVOY, date="2020-06-05", date_precision=DatePrecision.WEEK), True),
        (replace(CONVOY, date="2020-06-20", date_precision=DatePrecision.WEEK), False),
        (replace(CONVOY, type=EventType.WITHDRAWAL), False),
        (replace(CONVOY, actor=Actor("Russian forces", Affiliation.RUSSIA)), False),
        (replace(CONVOY, location=BUKAMAL), False),
        (replace(CONVOY, date=None, date_precision=DatePrecision.UNKNOWN), False),
    ],
    ids=[
        "generic-actor",
        "nearby-site",
        "next-day",
        "same-month",
        "same-week",
        "a-week-later",
        "an-undated-report-two-days-later",
        "an-undated-report-weeks-later",
        "other-type",
        "other-affiliation",
        "other-town",
        "undated",
    ],
)
def test_same_event(other: Event, same: bool) -> None:
    assert corroboration.same_event(CONVOY, other, SETTINGS) is same
    assert corroboration.same_event(other, CONVOY, SETTINGS) is same


def test_enrich_adds_details_and_keeps_the_first_report() -> None:
    rewrite = replace(
        CONVOY,
        location=NEAR,
        origin=HERI,
        quantities={"vehicles": 30},
        equipment=("artillery",),
        hedged=False,
        evidence=Evidence("30 vehicles", 5, 16),
        source=Source("IranWire"),
    )
    first = replace(
        CONVOY, quantities={"vehicles": 25}, date="2020-06", date_precision=DatePrecision.MONTH
    )
    merged = corroboration.enrich(first, rewrite)
    assert merged.quantities == {"vehicles": 25}  # kept: the first count is not overwritten
    assert merged.origin == HERI and merged.location == NEAR  # more precise place
    assert (merged.date, merged.date_precision) == ("2020-06-03", DatePrecision.DAY)
    assert merged.equipment == ("artillery",) and merged.hedged is False
    assert merged.evidence == first.evidence and merged.source == first.source


@given(
    st.text(
        alphabet=st.one_of(st.characters(), st.sampled_from("_-'’ \t\n\x1c\u00a0\u2028ßİﬁ…ثقف٣")),
        max_size=80,
    )
)
def test_words_are_the_runs_of_word_characters_after_nfkc_and_case_folding(text: str) -> None:
    reference = re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    assert dedup.words(text) == reference
    assert dedup.word_bytes(text) == [w.encode("utf-8", "surrogatepass") for w in reference]


def _runs(tokens: list[str], k: int) -> list[str]:
    if len(tokens) <= k:
        return [" ".join(tokens)] if tokens else []
    return [" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]


@given(
    st.lists(st.sampled_from(["a", "b", "cdé", "ثقف", "a1", "1a", "ab"]), max_size=60),
    st.integers(min_value=1, max_value=5),
)
def test_a_shingle_hash_is_a_function_of_its_words_alone(tokens: list[str], k: int) -> None:
    """Equal runs of words hash equal wherever they stand; different runs differently
    (in texts this small): MinHash over the hashes is MinHash over the shingles."""
    runs = _runs(tokens, k)
    hashes = _hashes_of(tokens, k).tolist()
    assert len(hashes) == len(runs)
    assert len(set(zip(runs, hashes, strict=True))) == len(set(runs)) == len(set(hashes))


def test_estimated_jaccard_follows_the_shingle_jaccard() -> None:
    """Signatures of texts sharing a known share of their words estimate the Jaccard
    similarity of their shingle sets (256 permutations: standard error <= 0.03)."""
    import random

    settings = replace(SETTINGS, num_perm=256)
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    for kept in (0, 100, 300, 500, 700, 900, 1000):
        base = rng.choices(vocabulary, k=1000)
        other = base[:kept] + rng.choices(vocabulary, k=1000 - kept)
        a, b = " ".join(base), " ".join(other)
        exact = dedup.similarity(a, b, settings.shingle_words).jaccard
        estimate = dedup.estimated_jaccard(
            dedup.signature(a, settings).whole, dedup.signature(b, settings).whole
        )
        assert abs(estimate - exact) <= 0.12, (kept, exact, estimate)
