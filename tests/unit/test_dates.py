"""Date expressions resolve against the reference (publication or report) date.

The case table covers each row of the ``service.rules.dates`` docstring; the
properties check the resolution arithmetic over a wide range of reference dates,
and the laws of ``contains``/``compatible`` that event merging relies on.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from service.events import DatePrecision
from service.rules.dates import compatible, contains, find_dates, resolve_all, scan

DAY = DatePrecision.DAY
WEEK = DatePrecision.WEEK
MONTH = DatePrecision.MONTH
YEAR = DatePrecision.YEAR
UNKNOWN = DatePrecision.UNKNOWN

TUESDAY = date(2020, 7, 21)  # a Tuesday in July
JANUARY = date(2021, 1, 5)  # a Tuesday in January: "last month" is in the previous year


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    ref: date | None
    # (matched text, value, precision, report) for every mention, in order
    expected: tuple[tuple[str, str | None, DatePrecision, bool], ...]
    bug: str | None = None  # an engine bug: the case is expected to fail until it is fixed


CASES = [
    # Explicit days
    Case(
        "day-no-year",
        "On June 3 the convoy arrived.",
        TUESDAY,
        (("June 3", "2020-06-03", DAY, False),),
    ),
    Case(
        "day-with-year",
        "On June 3, 2019, the convoy arrived.",
        TUESDAY,
        (("June 3, 2019", "2019-06-03", DAY, False),),
    ),
    Case(
        "day-first",
        "On 3 June the convoy arrived.",
        TUESDAY,
        (("3 June", "2020-06-03", DAY, False),),
    ),
    Case(
        "day-ordinal",
        "On June 3rd the convoy arrived.",
        TUESDAY,
        (("June 3rd", "2020-06-03", DAY, False),),
    ),
    Case(
        "day-is-reference",
        "On July 21 the convoy arrived.",
        TUESDAY,
        (("July 21", "2020-07-21", DAY, False),),
    ),
    Case(
        "day-after-reference-is-last-year",
        "On August 3 the convoy arrived.",
        TUESDAY,
        (("August 3", "2019-08-03", DAY, False),),
    ),
    Case(
        "day-after-reference-in-january",
        "On December 30 the convoy arrived.",
        JANUARY,
        (("December 30", "2020-12-30", DAY, False),),
    ),
    Case(
        "iso-day",
        "The convoy arrived on 2019-11-02.",
        TUESDAY,
        (("2019-11-02", "2019-11-02", DAY, False),),
    ),
    # Days relative to the reference
    Case(
        "yesterday",
        "The convoy arrived yesterday.",
        TUESDAY,
        (("yesterday", "2020-07-20", DAY, False),),
    ),
    Case(
        "last-night",
        "The convoy arrived last night.",
        TUESDAY,
        (("last night", "2020-07-20", DAY, False),),
    ),
    Case(
        "day-before-yesterday",
        "The convoy arrived the day before yesterday.",
        TUESDAY,
        (("the day before yesterday", "2020-07-19", DAY, False),),
    ),
    Case(
        "two-days-ago",
        "The convoy arrived two days ago.",
        TUESDAY,
        (("two days ago", "2020-07-19", DAY, False),),
    ),
    Case(
        "yesterday-across-year",
        "The convoy arrived yesterday.",
        date(2021, 1, 1),
        (("yesterday", "2020-12-31", DAY, False),),
    ),
    # Weekdays: the latest such day; "last" never means the reference day itself
    Case(
        "last-weekday",
        "The convoy arrived last Sunday.",
        TUESDAY,
        (("last Sunday", "2020-07-19", DAY, False),),
    ),
    Case(
        "last-weekday-same-as-reference",
        "The convoy arrived last Tuesday.",
        TUESDAY,
        (("last Tuesday", "2020-07-14", DAY, False),),
    ),
    Case(
        "on-weekday-same-as-reference",
        "The convoy arrived on Tuesday.",
        TUESDAY,
        (("on Tuesday", "2020-07-21", DAY, False),),
    ),
    Case(
        "on-weekday",
        "The convoy arrived on Wednesday.",
        TUESDAY,
        (("on Wednesday", "2020-07-15", DAY, False),),
    ),
    # Weeks
    Case(
        "last-week",
        "The convoy arrived last week.",
        TUESDAY,
        (("last week", "2020-07-14", WEEK, False),),
    ),
    Case(
        "two-weeks-ago",
        "The convoy arrived two weeks ago.",
        TUESDAY,
        (("two weeks ago", "2020-07-07", WEEK, False),),
    ),
    Case(
        "a-week-ago",
        "The convoy arrived a week ago.",
        TUESDAY,
        (("a week ago", "2020-07-14", WEEK, False),),
    ),
    # Months
    Case(
        "last-month",
        "The convoy arrived last month.",
        TUESDAY,
        (("last month", "2020-06", MONTH, False),),
    ),
    Case(
        "last-month-across-year",
        "The convoy arrived last month.",
        JANUARY,
        (("last month", "2020-12", MONTH, False),),
    ),
    Case(
        "earlier-this-month",
        "Earlier this month, the convoy arrived.",
        TUESDAY,
        (("Earlier this month", "2020-07", MONTH, False),),
    ),
    Case(
        "earlier-this-month-january",
        "Earlier this month, the convoy arrived.",
        JANUARY,
        (("Earlier this month", "2021-01", MONTH, False),),
    ),
    Case(
        "mid-month",
        "The convoy arrived in mid-July.",
        TUESDAY,
        (("in mid-July", "2020-07", MONTH, False),),
    ),
    Case(
        "middle-of-month",
        "The convoy arrived in the middle of July.",
        TUESDAY,
        (("in the middle of July", "2020-07", MONTH, False),),
    ),
    Case(
        "late-month-after-reference",
        "The convoy arrived in late August.",
        TUESDAY,
        (("in late August", "2019-08", MONTH, False),),
    ),
    Case(
        "late-month",
        "The convoy arrived in late June.",
        TUESDAY,
        (("in late June", "2020-06", MONTH, False),),
    ),
    Case(
        "month-of-this-year",
        "The convoy arrived in July of this year.",
        TUESDAY,
        (("in July of this year", "2020-07", MONTH, False),),
    ),
    Case(
        "month-last-year",
        "The convoy arrived in July last year.",
        TUESDAY,
        (("in July last year", "2019-07", MONTH, False),),
    ),
    Case(
        "since-month-year",
        "The militias have held the town since October 2017.",
        TUESDAY,
        (("since October 2017", "2017-10", MONTH, False),),
    ),
    Case(
        "month-year",
        "The convoy arrived in May 2018.",
        TUESDAY,
        (("in May 2018", "2018-05", MONTH, False),),
    ),
    # Years
    Case(
        "in-year",
        "The militias took the town in 2019.",
        TUESDAY,
        (("in 2019", "2019", YEAR, False),),
    ),
    Case(
        "last-year",
        "The militias took the town last year.",
        TUESDAY,
        (("last year", "2019", YEAR, False),),
    ),
    # "May" the modal verb is not a month
    Case("may-modal", "They may deploy more fighters to the town.", TUESDAY, ()),
    Case("may-modal-capitalised", "Reinforcements May arrive soon.", TUESDAY, ()),
    Case(
        "may-month",
        "In May, the militias left the town.",
        TUESDAY,
        (("In May", "2020-05", MONTH, False),),
    ),
    Case(
        "may-day", "The convoy arrived on May 3.", TUESDAY, (("May 3", "2020-05-03", DAY, False),)
    ),
    # A date right after a reporting verb dates the report, not the event
    Case(
        "report-date",
        "SOHR reported on January 22 that the militias left.",
        date(2020, 1, 23),
        (("January 22", "2020-01-22", DAY, True),),
    ),
    Case(
        "report-date-and-event-date",
        "SOHR reported on January 22 that the militias left yesterday.",
        date(2020, 1, 23),
        (("January 22", "2020-01-22", DAY, True), ("yesterday", "2020-01-22", DAY, False)),
    ),
    Case(
        "report-weekday",
        "The Observatory said on Monday that the militias left.",
        TUESDAY,
        (("on Monday", "2020-07-20", DAY, True),),
    ),
    Case(
        "told-outlet-on-weekday",
        "A commander told IranWire on Sunday that they left.",
        TUESDAY,
        (("on Sunday", "2020-07-19", DAY, True),),
    ),
    Case(
        "event-date-before-reporter",
        "The militias left on Monday, SOHR said.",
        TUESDAY,
        (("on Monday", "2020-07-20", DAY, False),),
    ),
    # Unknown reference: relative expressions stay unresolved, absolute ones resolve
    Case(
        "unknown-ref-yesterday",
        "The convoy arrived yesterday.",
        None,
        (("yesterday", None, UNKNOWN, False),),
    ),
    Case(
        "unknown-ref-last-month",
        "The convoy arrived last month.",
        None,
        (("last month", None, UNKNOWN, False),),
    ),
    Case(
        "unknown-ref-day-no-year",
        "On June 3 the convoy arrived.",
        None,
        (("June 3", None, UNKNOWN, False),),
    ),
    Case(
        "unknown-ref-mid-month",
        "The convoy arrived in mid-July.",
        None,
        (("in mid-July", None, UNKNOWN, False),),
    ),
    Case(
        "unknown-ref-day-with-year",
        "On June 3, 2019, the convoy arrived.",
        None,
        (("June 3, 2019", "2019-06-03", DAY, False),),
    ),
    Case(
        "unknown-ref-year",
        "The militias took the town in 2019.",
        None,
        (("in 2019", "2019", YEAR, False),),
    ),
    Case(
        "unknown-ref-since-month-year",
        "The militias have held it since October 2017.",
        None,
        (("since October 2017", "2017-10", MONTH, False),),
    ),
    Case(
        "unknown-ref-in-month-year",
        "The convoy arrived in May 2018.",
        None,
        (("in May 2018", "2018-05", MONTH, False),),
    ),
    Case(
        "unknown-ref-bare-month-year",
        "The convoy arrived May 2018.",
        None,
        (("May 2018", "2018-05", MONTH, False),),
    ),
    # No date at all
    Case("no-date", "The convoy arrived in the town.", TUESDAY, ()),
]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.bug)) if c.bug else c
        for c in CASES
    ],
    ids=[c.id for c in CASES],
)
def test_find_dates(case: Case) -> None:
    found = find_dates(case.text, case.ref)
    got = tuple((case.text[m.start : m.end], m.value, m.precision, m.report) for m in found)
    assert got == case.expected


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("On June 3", date(2020, 6, 3)),
        ("last week", date(2020, 7, 14)),
        ("last month", None),
        ("last year", None),
    ],
    ids=["day", "week", "month", "year"],
)
def test_mention_day(text: str, day: date | None) -> None:
    """``day()`` is a date only at day and week precision (what may date a report)."""
    (mention,) = find_dates(text, TUESDAY)
    assert mention.day() == day


# ---------------------------------------------------------------- properties

refs = st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31))
MONTH_NAMES = list(calendar.month_name)[1:]


def only(text: str, ref: date) -> tuple[str, str | None, DatePrecision]:
    found = find_dates(text, ref)
    assert len(found) == 1, found
    (m,) = found
    return text[m.start : m.end], m.value, m.precision


@given(refs)
def test_yesterday_is_the_day_before(ref: date) -> None:
    assert only("The convoy arrived yesterday.", ref) == (
        "yesterday",
        (ref - timedelta(days=1)).isoformat(),
        DAY,
    )


@given(refs)
def test_last_month_is_the_calendar_month_before(ref: date) -> None:
    before = ref.replace(day=1) - timedelta(days=1)
    assert only("The convoy arrived last month.", ref) == (
        "last month",
        f"{before.year:04d}-{before.month:02d}",
        MONTH,
    )


@given(refs, st.integers(min_value=1, max_value=9))
def test_n_days_ago(ref: date, n: int) -> None:
    phrase = f"{n} day ago" if n == 1 else f"{n} days ago"
    assert only(f"The convoy arrived {phrase}.", ref) == (
        phrase,
        (ref - timedelta(days=n)).isoformat(),
        DAY,
    )


@given(
    refs,
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=31),
    st.sampled_from(["On {month} {day}", "On {day} {month}", "On {month} {ordinal}"]),
)
def test_day_without_year_is_never_after_the_reference(
    ref: date, month: int, day: int, template: str
) -> None:
    assume(day <= calendar.monthrange(2000, month)[1])  # 2000 is a leap year: Feb 29 is kept
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    phrase = template.format(month=MONTH_NAMES[month - 1], day=day, ordinal=f"{day}{suffix}")
    text, value, precision = only(f"{phrase}, the convoy arrived.", ref)
    assert text == phrase.removeprefix("On ")
    if value is None:
        # Only a February 29 whose latest candidate year is not a leap year may stay open.
        assert (month, day) == (2, 29)
        return
    resolved = date.fromisoformat(value)
    assert precision is DAY
    assert (resolved.month, resolved.day) == (month, day)
    assert ref - timedelta(days=366) <= resolved <= ref


# Periods as the engine writes them: "YYYY", "YYYY-MM", "YYYY-MM-DD".
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31))
periods = st.one_of(
    days.map(lambda d: d.isoformat()),
    days.map(lambda d: d.isoformat()[:7]),
    days.map(lambda d: d.isoformat()[:4]),
)


@given(periods)
def test_a_period_contains_itself(p: str) -> None:
    assert contains(p, p)


@given(days)
def test_a_month_and_a_year_contain_each_of_their_days(d: date) -> None:
    day, month, year = d.isoformat(), d.isoformat()[:7], d.isoformat()[:4]
    assert contains(month, day) and contains(year, day) and contains(year, month)
    # and not the other way round
    assert not contains(day, month) and not contains(month, year)


@given(days, days)
def test_distinct_days_do_not_contain_each_other(a: date, b: date) -> None:
    if a != b:
        assert not contains(a.isoformat(), b.isoformat())
        assert not compatible(a.isoformat(), b.isoformat())


@given(periods, periods)
def test_compatible_is_symmetric(a: str, b: str) -> None:
    assert compatible(a, b) == compatible(b, a)


@given(periods)
def test_none_is_compatible_with_anything_and_contains_nothing(p: str) -> None:
    assert compatible(None, p) and compatible(p, None) and compatible(None, None)
    assert not contains(None, p) and not contains(p, None)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2020-07", "2020-07-21", True),
        ("2020", "2020-07", True),
        ("2020-07", "2020-08-01", False),
        ("2020-07", "2020-06", False),
        ("2019", "2020-01-01", False),
        ("2020-07-21", "2020-07-21", True),
    ],
    ids=["month-day", "year-month", "other-month-day", "other-month", "other-year", "same-day"],
)
def test_compatible_table(a: str, b: str, expected: bool) -> None:
    assert compatible(a, b) is expected


# ------------------------------------------- a reference known to the month or year


@pytest.mark.parametrize(
    ("text", "precision", "value", "got"),
    [
        ("The convoy arrived yesterday.", DatePrecision.MONTH, "2020-07", DatePrecision.MONTH),
        ("They left on Tuesday.", DatePrecision.MONTH, "2020-07", DatePrecision.MONTH),
        ("It happened two weeks ago.", DatePrecision.MONTH, "2020-07", DatePrecision.MONTH),
        ("The convoy arrived yesterday.", DatePrecision.YEAR, "2020", DatePrecision.YEAR),
        ("They moved last month.", DatePrecision.MONTH, "2020-06", DatePrecision.MONTH),
        ("They moved last month.", DatePrecision.YEAR, "2020", DatePrecision.YEAR),
        # The year of a day or month comes from the end of the known period.
        ("They arrived on July 28.", DatePrecision.MONTH, "2020-07-28", DatePrecision.DAY),
        ("They arrived in mid-November.", DatePrecision.YEAR, "2020-11", DatePrecision.MONTH),
        ("They arrived on July 28.", DatePrecision.UNKNOWN, None, DatePrecision.UNKNOWN),
        ("The convoy arrived yesterday.", DatePrecision.UNKNOWN, None, DatePrecision.UNKNOWN),
        ("They arrived on 3 May 2019.", DatePrecision.UNKNOWN, "2019-05-03", DatePrecision.DAY),
    ],
)
def test_relative_words_resolve_no_finer_than_the_reference(
    text: str, precision: DatePrecision, value: str | None, got: DatePrecision
) -> None:
    first = date(2020, 7, 1) if precision is not DatePrecision.YEAR else date(2020, 1, 1)
    (mention,) = resolve_all(scan(text), first, precision)
    assert (mention.value, mention.precision) == (value, got)


@pytest.mark.parametrize("text", ["Hours ago the army entered the town.", "Moments ago it fell."])
def test_hours_ago_is_the_reference_day(text: str) -> None:
    (mention,) = find_dates(text, date(2020, 7, 21))
    assert (mention.value, mention.precision) == ("2020-07-21", DatePrecision.DAY)
