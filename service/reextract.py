"""What the current rules would change in an article's stored events (pure).

The stored events of one article are paired with the events the rules find now:

1. identical ones (same contract fields, evidence span as this article reports it)
   are left alone;
2. the rest pair up on the same type, actor affiliation and location and, where
   possible, the same evidence start: such a pair is *changed* (the fields that
   differ are named);
3. what is left is *removed* (stored, no longer found) or *added* (found, not stored).

Of ``source`` only the name found in the text is compared: an event merged from
several reports keeps the first report's URL and outlet.

An event other articles report too (merged) carries what they added (a quantity,
an origin, a more precise date), so it is compared with what merging this
article's fresh event into it would give: when that is the same real event and
adds nothing, it is unchanged (step 1), as ``--apply`` would leave it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service import corroboration
from service.config import DedupSettings
from service.events import Event, Evidence


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A stored event as one article reports it."""

    event_id: int
    event: Event
    shared: bool = False  # other articles report it too (a merged event)


@dataclass(frozen=True, slots=True)
class EventChange:
    event_id: int
    old: Event
    new: Event
    fields: tuple[str, ...]  # contract fields that differ


@dataclass(frozen=True, slots=True)
class ArticleDiff:
    article_id: int
    label: str  # the article's URL or title, for people
    added: tuple[Event, ...] = ()
    removed: tuple[StoredVersion, ...] = ()
    changed: tuple[EventChange, ...] = ()
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


_COMPARED = tuple(f.name for f in dataclasses.fields(Event) if f.name not in ("source", "evidence"))


def _view(event: Event) -> dict[str, Any]:
    view = {name: getattr(event, name) for name in _COMPARED}
    view["source"] = event.source.name
    view["evidence"] = (event.evidence.start, event.evidence.end)
    return view


def _key(event: Event) -> tuple[str, str, str]:
    return (event.type.value, event.actor.affiliation.value, event.location.name)


def differing_fields(old: Event, new: Event) -> tuple[str, ...]:
    a, b = _view(old), _view(new)
    return tuple(name for name in a if a[name] != b[name])


def _unchanged(stored: StoredVersion, new: Event, settings: DedupSettings) -> bool:
    if not differing_fields(stored.event, new):
        return True
    return (
        stored.shared
        and corroboration.same_event(stored.event, new, settings)
        and not differing_fields(stored.event, corroboration.enrich(stored.event, new))
    )


def diff_events(
    article_id: int,
    label: str,
    stored: Sequence[StoredVersion],
    fresh: Sequence[Event],
    settings: DedupSettings | None = None,
) -> ArticleDiff:
    """Pair ``stored`` with ``fresh`` as the module docstring says."""
    rules = settings or DedupSettings()
    left = list(stored)
    right = list(fresh)
    unchanged = 0
    for new in list(right):
        match = next((s for s in left if _unchanged(s, new, rules)), None)
        if match is not None:
            left.remove(match)
            right.remove(new)
            unchanged += 1
    changed: list[EventChange] = []
    for same_start in (True, False):
        for new in list(right):
            match = next(
                (
                    s
                    for s in left
                    if _key(s.event) == _key(new)
                    and (not same_start or s.event.evidence.start == new.evidence.start)
                ),
                None,
            )
            if match is not None:
                left.remove(match)
                right.remove(new)
                fields = differing_fields(match.event, new)
                changed.append(EventChange(match.event_id, match.event, new, fields))
    return ArticleDiff(
        article_id=article_id,
        label=label,
        added=tuple(right),
        removed=tuple(left),
        changed=tuple(changed),
        unchanged=unchanged,
    )


def with_evidence_span(event: Event, start: int, end: int, text: str) -> Event:
    """``event`` with the evidence span one article gives it (merged events differ)."""
    if (event.evidence.start, event.evidence.end) == (start, end):
        return event
    snippet = text[start:end] if 0 <= start <= end <= len(text) else event.evidence.text
    return dataclasses.replace(event, evidence=Evidence(text=snippet, start=start, end=end))


def describe(event: Event) -> str:
    """One line for people: type, actor, place, date."""
    origin = f" from {event.origin.name}" if event.origin else ""
    return (
        f"{event.type.value} {event.actor.name} ({event.actor.affiliation.value}) "
        f"at {event.location.name}{origin}, {event.date or 'no date'}"
    )
