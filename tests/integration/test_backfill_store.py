"""Re-extraction's storage step on SQLite and PostgreSQL: an event several articles
report survives the loss of one of them; the last one takes it away."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import models, store
from service.enums import ArticleOrigin
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

NOW = datetime(2024, 5, 1, tzinfo=UTC)
EVENT = Event(
    type=EventType.DEPLOYMENT,
    actor=Actor("Iranian-backed militias", Affiliation.IRAN_BACKED),
    location=Location("al-Mayadin", 35.02, 40.45, "Mayadin", Precision.TOWN),
    origin=None,
    date="2024-04-29",
    date_precision=DatePrecision.DAY,
    hedged=False,
    in_region=True,
    evidence=Evidence("A convoy arrived.", 0, 17),
    source=Source("SOHR", "Outlet", "https://o.example/a"),
)


def article(session: Session, url: str) -> int:
    return store.add_article(
        session,
        store.NewArticle(
            text="A convoy arrived. More text.",
            content_hash=url,
            origin_kind=ArticleOrigin.BACKFILL,
            fetched=NOW,
            url=url,
        ),
    )


def shared_event(session: Session) -> tuple[int, int, int]:
    first, second = article(session, "https://o.example/a"), article(session, "https://o.example/b")
    store.store_events(session, first, [EVENT], now=NOW)
    event_id = session.scalar(sa.select(models.Event.id))
    assert event_id is not None
    session.add(
        models.EventArticle(
            event_id=event_id, article_id=second, evidence_start=0, evidence_end=17, created_at=NOW
        )
    )
    session.execute(sa.update(models.Event).values(sources_count=2))
    session.flush()
    return event_id, first, second


def test_removed_from_one_report_keeps_the_event(session: Session) -> None:
    event_id, first, second = shared_event(session)
    [linked] = store.article_events(session, second)
    assert (linked.event_id, linked.articles) == (event_id, 2)

    store.apply_event_diff(session, first, removed=[event_id], changed=[], added=[], now=NOW)
    session.expire_all()
    row = session.get(models.Event, event_id)
    assert row is not None and row.sources_count == 1
    assert store.article_events(session, first) == []
    assert [e.event_id for e in store.article_events(session, second)] == [event_id]

    store.apply_event_diff(session, second, removed=[event_id], changed=[], added=[], now=NOW)
    assert session.get(models.Event, event_id) is None


def test_changed_shared_event_is_left_to_the_others(session: Session) -> None:
    event_id, first, second = shared_event(session)
    # The rules now date this article's convoy a week later: another real event.
    later = dataclasses.replace(EVENT, date="2024-05-06")
    store.apply_event_diff(
        session, first, removed=[], changed=[(event_id, later)], added=[], now=NOW
    )
    session.expire_all()
    [mine] = store.article_events(session, first)
    [theirs] = store.article_events(session, second)
    assert mine.event_id != event_id and mine.event.date == "2024-05-06"
    assert theirs.event_id == event_id and theirs.event.date == "2024-04-29"


def test_changed_own_event_is_updated_in_place(session: Session) -> None:
    first = article(session, "https://o.example/only")
    store.store_events(session, first, [EVENT], now=NOW)
    [before] = store.article_events(session, first)
    moved = dataclasses.replace(EVENT, date="2024-04-28", evidence=Evidence("More text.", 18, 28))
    changed = [(before.event_id, moved)]
    store.apply_event_diff(session, first, removed=[], changed=changed, added=[], now=NOW)
    session.expire_all()
    [after] = store.article_events(session, first)
    assert after.event_id == before.event_id
    assert after.event.date == "2024-04-28"
    assert (after.evidence_start, after.evidence_end) == (18, 28)


def test_reextract_candidates_leave_out_duplicates_only(session: Session) -> None:
    """Seeds are re-extracted too: their events are stored (``service seed``)."""
    kept = article(session, "https://o.example/kept")
    dup = article(session, "https://o.example/dup")
    session.execute(
        sa.update(models.Article).where(models.Article.id == dup).values(duplicate_of=kept)
    )
    seed = store.add_article(
        session,
        store.NewArticle(
            text="seed", content_hash="s", origin_kind=ArticleOrigin.SEED, fetched=NOW, is_seed=True
        ),
    )
    ids = store.reextract_candidates(session)
    assert kept in ids and dup not in ids and seed in ids
