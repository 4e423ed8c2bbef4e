"""Date expressions, resolved against the publication (or report) date.

=======================================  ===========================  =========
expression                               resolves to                  precision
=======================================  ===========================  =========
On June 3 / 3 June / June 3rd, 2020      that day; a day after the    day
                                         reference means last year
yesterday, last night, two days ago,     reference minus n days       day
on Tuesday, last Tuesday                 the latest such weekday      day
last week, two weeks ago, this week      reference minus 7·n days     week
last month, earlier this month,          that month                   month
in mid-July, in the middle of July,
late August, in July (of this year)
last year, in 2019, since 2017           that year                    year
=======================================  ===========================  =========

An expression straight after a reporting verb ("SOHR reported on January 22")
dates the report, not the event: it is returned with ``report=True`` and the
engine uses it as the reference for the report's relative expressions.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from service.events import DatePrecision
from service.rules.prefilter import PatternSet
from service.rules.quantities import WORD_NUMBERS

MONTHS = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
WEEKDAYS = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
# Counts in "two days ago", "a few weeks ago": the number words quantities read, and approximations.
NUMBERS = {
    **WORD_NUMBERS,
    "a": 1,
    "an": 1,
    "a couple of": 2,
    "couple of": 2,
    "a few": 3,
    "few": 3,
    "several": 3,
}

_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_NUM = r"(?P<n>\d+|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_WD = r"(?P<weekday>" + "|".join(WEEKDAYS) + r")"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<m>[01]\d)-(?P<day>[0-3]\d)\b")),
    ("month_day", re.compile(rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+{_YEAR}\b)?", re.I)),
    ("day_month", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR}\b)?", re.I)),
    ("day_before_yesterday", re.compile(r"\bthe day before yesterday\b", re.I)),
    ("yesterday", re.compile(r"\b(?:yesterday|last night)\b", re.I)),
    (
        "today",
        re.compile(
            r"\b(?:today|this morning|this evening|tonight|(?:a few |several |two |three )?"
            r"(?:hours|moments|minutes) ago)\b",
            re.I,
        ),
    ),
    ("days_ago", re.compile(rf"\b{_NUM}\s+days?\s+ago\b", re.I)),
    ("weekday", re.compile(rf"\b(?:(?P<last>last|this|on|past)\s+)?{_WD}\b", re.I)),
    ("weeks_ago", re.compile(rf"\b{_NUM}\s+weeks?\s+ago\b", re.I)),
    ("last_week", re.compile(r"\b(?:last|past|previous) week\b", re.I)),
    ("this_week", re.compile(r"\b(?:earlier |later )?this week\b", re.I)),
    ("months_ago", re.compile(rf"\b{_NUM}\s+months?\s+ago\b", re.I)),
    ("last_month", re.compile(r"\b(?:last|past|previous) month\b", re.I)),
    (
        "this_month",
        re.compile(
            r"\b(?:earlier |early |later |late |at the (?:start|beginning|end) of "
            r"|in the middle of )?this month\b",
            re.I,
        ),
    ),
    (
        "month",
        re.compile(
            rf"\b(?:(?:early|mid|late|the (?:middle|beginning|start|end) of|middle of|beginning of|"
            rf"end of|earlier in|later in|in|during|since|by|until|throughout)[\s-]+)+{_MONTH}"
            rf"(?:\s+(?:of\s+)?(?:(?P<rel>this|last|the same|the current|the past) year"
            rf"|{_YEAR}))?\b",
            re.I,
        ),
    ),
    ("month_year", re.compile(rf"\b{_MONTH}\s+{_YEAR}\b", re.I)),
    ("last_year", re.compile(r"\b(?:last|past|previous) year\b", re.I)),
    ("this_year", re.compile(r"\b(?:earlier |early |late )?this year\b", re.I)),
    (
        "year",
        re.compile(
            rf"\b(?:in|since|during|early|late|mid|(?:the )?(?:beginning|start|end|middle) of)"
            rf"[\s-]+{_YEAR}\b",
            re.I,
        ),
    ),
]
_PATTERN_SET = PatternSet([(pattern, kind) for kind, pattern in _PATTERNS])
# Every expression above contains one of these: sentences without any are skipped.
_CUE = re.compile(
    r"\d|\b(?:"
    + "|".join(sorted(MONTHS, key=len, reverse=True))
    + "|"
    + "|".join(WEEKDAYS)
    + r"|yesterday|today|tonight|night|morning|evening|ago|week|month|year)",
    re.I,
)
_REPORTING = re.compile(
    r"\b(?:reported|said|announced|stated|confirmed|published|posted|added|reports|says|"
    r"wrote|told\s+\S+|tweeted|documented)\s*(?:on\s+)?(?:the\s+)?$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class DateMention:
    start: int
    end: int
    value: str | None
    precision: DatePrecision
    report: bool = False  # the date of a report ("reported on …"), not of an event

    def day(self) -> date | None:
        if self.value and self.precision in (DatePrecision.DAY, DatePrecision.WEEK):
            return date.fromisoformat(self.value)
        return None


def _num(token: str) -> int:
    token = token.lower()
    return int(token) if token.isdigit() else NUMBERS[token]


def _month_year(month: int, ref: date, explicit: str | None, rel: str | None) -> int:
    if explicit:
        return int(explicit)
    if rel == "last" or rel == "the past":
        return ref.year - 1
    if rel:
        return ref.year
    return ref.year if month <= ref.month else ref.year - 1


def _day_value(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _shift_month(d: date, months: int) -> tuple[int, int]:
    total = d.year * 12 + (d.month - 1) - months
    return total // 12, total % 12 + 1


def resolve(kind: str, m: re.Match[str], ref: date | None) -> tuple[str | None, DatePrecision]:
    """The value and precision of one matched expression (pure; ``ref`` may be unknown)."""
    g = m.groupdict()
    if kind == "iso":
        return _day_value(int(g["year"]), int(g["m"]), int(g["day"])), DatePrecision.DAY
    if kind in ("month_day", "day_month"):
        month, day = MONTHS[g["month"].lower()], int(g["day"])
        if not 1 <= day <= 31:
            return None, DatePrecision.UNKNOWN
        if g.get("year"):
            return _day_value(int(g["year"]), month, day), DatePrecision.DAY
        if ref is None:
            return None, DatePrecision.UNKNOWN
        year = ref.year if (month, day) <= (ref.month, ref.day) else ref.year - 1
        return _day_value(year, month, day), DatePrecision.DAY
    if kind == "year":
        return g["year"], DatePrecision.YEAR
    if kind == "month_year":
        return f"{int(g['year']):04d}-{MONTHS[g['month'].lower()]:02d}", DatePrecision.MONTH
    if kind == "month" and g.get("year"):
        return f"{int(g['year']):04d}-{MONTHS[g['month'].lower()]:02d}", DatePrecision.MONTH
    if ref is None:
        return None, DatePrecision.UNKNOWN
    if kind == "day_before_yesterday":
        return (ref - timedelta(days=2)).isoformat(), DatePrecision.DAY
    if kind == "yesterday":
        return (ref - timedelta(days=1)).isoformat(), DatePrecision.DAY
    if kind == "today":
        return ref.isoformat(), DatePrecision.DAY
    if kind == "days_ago":
        return (ref - timedelta(days=_num(g["n"]))).isoformat(), DatePrecision.DAY
    if kind == "weekday":
        back = (ref.weekday() - WEEKDAYS[g["weekday"].lower()]) % 7
        if back == 0 and (g.get("last") or "").lower() in ("last", "past"):
            back = 7
        return (ref - timedelta(days=back)).isoformat(), DatePrecision.DAY
    if kind == "weeks_ago":
        return (ref - timedelta(days=7 * _num(g["n"]))).isoformat(), DatePrecision.WEEK
    if kind == "last_week":
        return (ref - timedelta(days=7)).isoformat(), DatePrecision.WEEK
    if kind == "this_week":
        return ref.isoformat(), DatePrecision.WEEK
    if kind == "months_ago":
        y, mo = _shift_month(ref, _num(g["n"]))
        return f"{y:04d}-{mo:02d}", DatePrecision.MONTH
    if kind == "last_month":
        y, mo = _shift_month(ref, 1)
        return f"{y:04d}-{mo:02d}", DatePrecision.MONTH
    if kind == "this_month":
        return f"{ref.year:04d}-{ref.month:02d}", DatePrecision.MONTH
    if kind == "month":
        month = MONTHS[g["month"].lower()]
        return (
            f"{_month_year(month, ref, g.get('year'), g.get('rel')):04d}-{month:02d}",
            DatePrecision.MONTH,
        )
    if kind == "last_year":
        return str(ref.year - 1), DatePrecision.YEAR
    if kind == "this_year":
        return str(ref.year), DatePrecision.YEAR
    return None, DatePrecision.UNKNOWN


# "May" is also a modal verb: only a month when a day, year or time word frames it.
_MAY_MODAL = re.compile(r"^may$", re.I)


def find_dates(text: str, ref: date | None) -> list[DateMention]:
    """Non-overlapping date expressions in ``text``, earliest first, longest on ties."""
    return resolve_all(scan(text), ref)


Expression = tuple[int, int, str, re.Match[str], bool]  # start, end, kind, match, report


# Expressions counted back from the reference in days or weeks ("yesterday", "on
# Tuesday", "two weeks ago"): with a reference known only to the month or year, they
# give that month or year.
_NEAR_RELATIVE = frozenset(
    {
        "day_before_yesterday",
        "yesterday",
        "today",
        "days_ago",
        "weekday",
        "weeks_ago",
        "last_week",
        "this_week",
    }
)
# Expressions naming a month or day whose year comes from the reference.
_YEAR_FROM_REF = frozenset({"month_day", "day_month", "month"})


def _period_end(ref: date, precision: DatePrecision) -> date:
    """The last day of the month or year (by ``precision``) that holds ``ref``."""
    return period_end(period(ref, precision)) or ref


def _coarse(
    kind: str, m: re.Match[str], ref: date, precision: DatePrecision
) -> tuple[str | None, DatePrecision]:
    """``resolve`` against a reference known only to its month or year (``ref`` is the
    period's first day)."""
    period = (
        (f"{ref.year:04d}-{ref.month:02d}", DatePrecision.MONTH)
        if precision is DatePrecision.MONTH
        else (f"{ref.year:04d}", DatePrecision.YEAR)
    )
    if kind in _NEAR_RELATIVE:
        return period
    if kind in _YEAR_FROM_REF:
        return resolve(kind, m, _period_end(ref, precision))
    if precision is DatePrecision.YEAR and kind in ("months_ago", "last_month", "this_month"):
        return period
    return resolve(kind, m, ref)


def resolve_all(
    expressions: Sequence[Expression],
    ref: date | None,
    precision: DatePrecision = DatePrecision.DAY,
) -> list[DateMention]:
    """``scan``'s expressions resolved against ``ref``, known to ``precision``.

    With a reference known only to its month or year (``ref`` is then the period's
    first day), words counted back in days or weeks give that month or year; with no
    reference (or precision ``UNKNOWN``), only self-contained dates resolve.
    """
    if precision is DatePrecision.UNKNOWN:
        ref = None
    if ref is None or precision in (DatePrecision.DAY, DatePrecision.WEEK):
        return [
            DateMention(start, end, *resolve(kind, m, ref), report)
            for start, end, kind, m, report in expressions
        ]
    return [
        DateMention(start, end, *_coarse(kind, m, ref, precision), report)
        for start, end, kind, m, report in expressions
    ]


def scan(text: str) -> tuple[Expression, ...]:
    """The date expressions of ``text``, unresolved (the engine reads a sentence against
    more than one reference: for the report's own date, then for its events)."""
    return scan_spans(text, [(0, len(text))])[0]


def scan_spans(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[Expression, ...]]:
    """``scan(text[start:end])`` for each span, in one pass over ``text``.

    Offsets are relative to each span's start.  An expression must lie wholly inside
    a span; the text around a span still counts as context ("\\b", "reported on").
    """
    if not _CUE.search(text):
        return [() for _ in spans]
    lowered = text.lower()
    matches: Iterable[tuple[re.Match[str], str]]
    if len(lowered) == len(text):
        matches = _PATTERN_SET.finditer(text, lowered)
    else:  # a rare character whose lower case is longer: no prefilter
        matches = ((m, kind) for kind, pattern in _PATTERNS for m in pattern.finditer(text))
    found = sorted(
        ((m.start(), m.end(), kind, m) for m, kind in matches if not _modal_may(kind, m)),
        key=lambda f: (f[0], -(f[1] - f[0])),
    )
    starts = [f[0] for f in found]
    out: list[tuple[Expression, ...]] = []
    for span_start, span_end in spans:
        chosen: list[Expression] = []
        last_end = -1
        for start, end, kind, m in found[bisect.bisect_left(starts, span_start) :]:
            if start >= span_end:
                break
            if end > span_end or start < last_end:
                continue
            lead = text[max(span_start, start - 30) : start]
            report = bool(_REPORTING.search(lead))
            chosen.append((start - span_start, end - span_start, kind, m, report))
            last_end = end
        out.append(tuple(chosen))
    return out


def _modal_may(kind: str, m: re.Match[str]) -> bool:
    """ "may" read as a month though it is the modal verb: a bare lower-case "may"."""
    month = m.groupdict().get("month")
    return bool(
        month
        and _MAY_MODAL.match(month)
        and kind == "month"
        and not m.group(0)[0].isupper()
        and not re.match(r"(?i)(early|mid|late|in|during|since|the|by|until)", m.group(0))
    )


def period(day: date, precision: DatePrecision) -> str:
    """The ISO period of ``precision`` that holds ``day`` ("2020", "2020-07", "2020-07-14")."""
    if precision is DatePrecision.YEAR:
        return f"{day.year:04d}"
    if precision is DatePrecision.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    return day.isoformat()


def period_end(value: str) -> date | None:
    """The last day of an ISO date, month or year; None when unreadable."""
    try:
        if len(value) == 4:
            return date(int(value), 12, 31)
        if len(value) == 7:
            year, month = int(value[:4]), int(value[5:7])
            return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def contains(outer: str | None, inner: str | None) -> bool:
    """True when the period ``outer`` includes ``inner`` (None is unknown and contains nothing)."""
    if outer is None or inner is None:
        return False
    if len(outer) == 10 and len(inner) == 10:
        return outer == inner
    return inner.startswith(outer)


def compatible(a: str | None, b: str | None) -> bool:
    """Two dates that may denote the same time: equal, or one within the other's period."""
    return a is None or b is None or contains(a, b) or contains(b, a)
