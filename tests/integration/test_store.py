"""Store round-trips on SQLite and PostgreSQL (each test rolled back)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import models, store
from service.config import FeedSettings
from service.corpus import read_manifest
from service.enums import ArticleOrigin
from service.errors import StoreError
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
from service.hashing import content_hash
from service.rules import PROJECT_RULES, RuleSet, load_rules
from service.seeding import import_seeds

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
SEEDS = Path(__file__).resolve().parents[2] / "corpus" / "seeds" / "MANIFEST.json"

EVENT = Event(
    type=EventType.RELOCATION,
    actor=Actor("Iranian-backed militias", Affiliation.IRAN_BACKED),
    location=Location("Al-Mayadin", 35.0196, 40.4519, "Al-Mayadin", Precision.TOWN),
    origin=Location("al-Tmuo", None, None, None, Precision.SITE),
    date="2020-01-22",
    date_precision=DatePrecision.DAY,
    hedged=False,
    in_region=True,
    evidence=Evidence("Iranian-backed forces withdrew from al-Tmuo.", 120, 165),
    source=Source("SOHR", "SouthFront", "https://southfront.press/report"),
    quantities={"vehicles": 30, "fighters": 50},
    equipment=("rocket launchers", "anti-aircraft"),
)


def article(**changes: object) -> store.NewArticle:
    base = store.NewArticle(
        text="Iranian-backed forces withdrew from al-Tmuo.",
        content_hash=content_hash("Iranian-backed forces withdrew from al-Tmuo."),
        origin_kind=ArticleOrigin.FEED,
        fetched=NOW,
        url="https://southfront.press/report",
        outlet="SouthFront",
        title="Report",
        published=datetime(2020, 1, 23, 10, 0, tzinfo=UTC),
        guid="sf-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_article_round_trip(session: Session) -> None:
    article_id = store.add_article(session, article())
    stored = store.get_article(session, article_id)
    assert stored is not None
    assert stored.url == "https://southfront.press/report"
    assert stored.fetched == NOW and stored.fetched.tzinfo is not None
    assert stored.published == datetime(2020, 1, 23, 10, 0, tzinfo=UTC)
    assert stored.origin_kind is ArticleOrigin.FEED
    assert stored.is_seed is False and stored.duplicate_of is None


def test_datetimes_are_stored_in_utc(session: Session) -> None:
    plus_three = timezone(timedelta(hours=3))
    article_id = store.add_article(
        session, article(fetched=datetime(2024, 5, 6, 10, 8, 9, tzinfo=plus_three))
    )
    session.expire_all()
    stored = store.get_article(session, article_id)
    assert stored is not None
    assert stored.fetched == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert stored.fetched.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(session: Session) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.add_article(session, article(fetched=datetime(2024, 5, 6)))
    # The session is still usable: the failure was confined to a savepoint.
    assert store.count_articles(session) == 0


def test_duplicate_url_is_a_store_error_and_session_survives(session: Session) -> None:
    store.add_article(session, article())
    with pytest.raises(StoreError):
        store.add_article(session, article(guid="sf-2"))
    assert store.count_articles(session) == 1


def test_enums_are_stored_by_value(session: Session) -> None:
    article_id = store.add_article(session, article())
    store.store_events(session, article_id, [EVENT], now=NOW)
    raw = session.execute(
        sa.text("SELECT type, actor_affiliation, location_precision FROM events")
    ).one()
    assert tuple(raw) == ("relocation", "iran-backed", "town")
    origin = session.execute(sa.text("SELECT origin_kind FROM articles")).scalar_one()
    assert origin == "feed"


def test_events_round_trip(session: Session) -> None:
    article_id = store.add_article(session, article())
    minimal = replace(
        EVENT,
        type=EventType.STRIKE,
        origin=None,
        date=None,
        date_precision=DatePrecision.UNKNOWN,
        hedged=True,
        in_region=False,
        source=Source(None),
        quantities={},
        equipment=(),
    )
    writes = store.store_events(session, article_id, [EVENT, minimal], now=NOW)
    assert [w.created for w in writes] == [True, True]
    ids = [w.event_id for w in writes]

    stored = store.list_events(session)
    assert [item.id for item in stored] == list(reversed(ids))  # newest first
    assert [item.event for item in stored] == [minimal, EVENT]
    assert [item.event.to_dict() for item in stored] == [minimal.to_dict(), EVENT.to_dict()]
    assert all(item.article_ids == (article_id,) for item in stored)
    assert all(item.sources_count == 1 and item.created_at == NOW for item in stored)
    assert store.list_events(session, limit=1)[0].id == ids[1]

    link = session.scalars(
        sa.select(models.EventArticle).where(models.EventArticle.event_id == ids[0])
    ).one()
    assert (link.evidence_start, link.evidence_end) == (120, 165)


def test_store_events_is_all_or_nothing(session: Session) -> None:
    article_id = store.add_article(session, article())
    broken = replace(EVENT, actor=Actor("X", "not-an-affiliation"))  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.store_events(session, article_id, [EVENT, broken], now=NOW)
    assert store.count_events(session) == 0
    assert store.store_events(session, article_id, [EVENT], now=NOW)
    assert store.count_events(session) == 1


def test_store_events_needs_the_article(session: Session) -> None:
    with pytest.raises(StoreError, match="no article with id 999"):
        store.store_events(session, 999, [EVENT], now=NOW)
    assert store.store_events(session, 999, [], now=NOW) == []


def test_deleting_an_article_removes_its_links(session: Session) -> None:
    article_id = store.add_article(session, article())
    ((event_id, _),) = (
        (w.event_id, w.created) for w in store.store_events(session, article_id, [EVENT], now=NOW)
    )
    session.execute(sa.delete(models.Article).where(models.Article.id == article_id))
    links = session.scalars(
        sa.select(models.EventArticle).where(models.EventArticle.event_id == event_id)
    ).all()
    assert links == []  # foreign keys are enforced (ON DELETE CASCADE), on SQLite too


FEEDS = (
    FeedSettings("sohr", "https://www.syriahr.com/en/feed/", "SOHR", 600),
    FeedSettings("southfront", "https://southfront.press/feed/", "SouthFront", 900),
)


def test_feeds_with_state(session: Session) -> None:
    states = store.list_feeds(session, FEEDS)
    assert [(s.name, s.configured, s.last_polled) for s in states] == [
        ("sohr", True, None),
        ("southfront", True, None),
    ]
    assert store.sync_feeds(session, FEEDS) == (2, 0)
    assert store.sync_feeds(session, FEEDS) == (0, 0)

    row = session.scalars(sa.select(models.Feed).where(models.Feed.name == "sohr")).one()
    row.etag, row.last_polled, row.last_status = '"abc"', NOW, 304
    row.consecutive_errors, row.last_error = 2, "timeout"
    session.flush()

    moved = (replace(FEEDS[0], url="https://www.syriahr.com/en/feed/atom/"),)
    assert store.sync_feeds(session, moved) == (0, 1)
    states = store.list_feeds(session, moved)
    sohr, dropped = states
    assert sohr.url.endswith("/atom/") and sohr.etag is None  # validators belonged to old URL
    assert sohr.last_polled == NOW and sohr.last_status == 304
    assert (sohr.consecutive_errors, sohr.last_error) == (2, "timeout")
    assert dropped.name == "southfront" and dropped.configured is False


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(PROJECT_RULES)


def test_seed_import_is_idempotent(session: Session, rules: RuleSet) -> None:
    docs = read_manifest(SEEDS)
    first = import_seeds(session, docs, now=NOW, rules=rules)
    assert (first.added, first.skipped) == (5, 0)
    assert store.count_articles(session) == 5
    events = store.count_events(session)
    assert first.events > 0 and events > 0  # the seeds' events
    second = import_seeds(session, docs, now=NOW + timedelta(hours=1), rules=rules)
    assert (second.added, second.skipped, second.events) == (0, 5, 0)
    assert store.count_articles(session) == 5
    assert store.count_events(session) == events

    articles = store.list_articles(session, seeds_only=True)
    assert len(articles) == 5
    for doc, stored in zip(docs, articles, strict=True):
        text = doc.path.read_text(encoding="utf-8")
        assert stored.text == text
        assert stored.content_hash == content_hash(text)
        assert stored.is_seed and stored.origin_kind is ArticleOrigin.SEED
        assert stored.outlet == doc.outlet and stored.title == doc.title
        assert stored.published == datetime.combine(doc.published, datetime.min.time(), UTC)
        assert stored.published_is_estimate == doc.published_is_estimate
        assert stored.url is None and stored.fetched == NOW
