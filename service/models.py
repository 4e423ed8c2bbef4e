"""Database tables as SQLAlchemy 2.0 typed models.

Only ``store.py`` (and Alembic's ``env.py``) import this module: everything else
exchanges frozen dataclasses with ``store.py``.

Conventions:

- ``MetaData`` carries a naming convention so constraint names are stable across
  SQLite and PostgreSQL and autogenerate diffs stay quiet (Alembic's naming.rst).
- Enums are stored by *value* (``"iran-backed"``, not ``"IRAN_BACKED"``) in a
  VARCHAR without a CHECK constraint: adding an event type needs no migration,
  and Python validates values on the way in.
- Datetimes are timezone-aware UTC on the way in and on the way out, on both
  databases (SQLite has no zone type: it stores UTC wall time).
- JSON is ``JSON`` on SQLite and ``JSONB`` on PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.enums import (
    AlertKind,
    ArticleOrigin,
    BackfillItemStatus,
    DeliveryStatus,
    EntryStatus,
    EventProvenance,
)
from service.events import Affiliation, DatePrecision, EventType, Precision

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive datetimes are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

# Column shapes used more than once.
intpk = Annotated[int, mapped_column(primary_key=True)]
datetime_now = Annotated[datetime, mapped_column(UTCDateTime(), server_default=sa.func.now())]
bool_false = Annotated[bool, mapped_column(server_default=sa.false())]
int_zero = Annotated[int, mapped_column(server_default=sa.text("0"))]
json_counts = Annotated[dict[str, int], mapped_column(JSONType)]
json_strings = Annotated[list[str], mapped_column(JSONType)]
short_str = Annotated[str, mapped_column(sa.String(255))]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        enum.Enum: sa.Enum(
            enum.Enum,
            native_enum=False,
            create_constraint=False,
            length=32,
            values_callable=_enum_values,
            validate_strings=True,
        ),
        datetime: UTCDateTime(),
        str: sa.Text(),
    }


class Feed(Base):
    """A configured feed and its poll state."""

    __tablename__ = "feeds"

    id: Mapped[intpk]
    name: Mapped[short_str] = mapped_column(unique=True)
    url: Mapped[str]
    outlet: Mapped[short_str]
    interval_seconds: Mapped[int]
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    next_due: Mapped[datetime | None] = mapped_column(index=True)
    last_polled: Mapped[datetime | None]
    last_status: Mapped[int | None]  # HTTP status of the last poll
    consecutive_errors: Mapped[int_zero]
    last_error: Mapped[str | None]
    entries_seen: Mapped[int_zero]
    events_count: Mapped[int_zero]
    created_at: Mapped[datetime_now]
    # The process polling the feed now (None: nobody), and when it last said it is
    # alive: a claim whose heartbeat stops is taken over before its lease runs out.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(255))
    heartbeat_at: Mapped[datetime | None]


class Article(Base):
    """One report's text, wherever it came from.

    URLs and guids have no length limit, and a btree index entry on PostgreSQL must
    stay under 2704 bytes: they are looked up and kept unique by the SHA-256 (hex) of
    their UTF-8 (``*_hash``, ``store.key_hash``), never by an index on the text.
    """

    __tablename__ = "articles"
    __table_args__ = (sa.UniqueConstraint("feed_id", "guid_hash"),)

    id: Mapped[intpk]
    url: Mapped[str | None]
    url_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    canonical_url: Mapped[str | None]
    canonical_url_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    # The article's other canonical URL (a WordPress ``?p=N`` guid of the same site).
    alternate_url: Mapped[str | None]
    alternate_url_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    outlet: Mapped[str | None] = mapped_column(sa.String(255))
    title: Mapped[str | None]
    published: Mapped[datetime | None]
    published_is_estimate: Mapped[bool_false]
    fetched: Mapped[datetime]
    text: Mapped[str]
    content_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    is_seed: Mapped[bool_false]
    origin_kind: Mapped[ArticleOrigin]
    guid: Mapped[str | None]
    guid_hash: Mapped[str | None] = mapped_column(sa.String(64))
    feed_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("feeds.id", ondelete="SET NULL"), index=True
    )
    duplicate_of: Mapped[int | None] = mapped_column(
        sa.ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    similarity: Mapped[float | None]
    created_at: Mapped[datetime_now]


class EntryFailure(Base):
    """A feed entry that could not be stored yet: its page failed and it carries no
    text of its own, or the store refused it.  Tried again by the polls after
    ``next_attempt_at`` (backoff), from the feed while it lists the entry, else from
    this row, until stored or ``gave_up``; deleted once stored."""

    __tablename__ = "entry_failures"
    __table_args__ = (sa.UniqueConstraint("feed_id", "entry_key"),)

    id: Mapped[intpk]
    feed_id: Mapped[int] = mapped_column(sa.ForeignKey("feeds.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of the entry's id
    entry_id: Mapped[str]  # the guid (or link, or content hash) as parsed
    url: Mapped[str | None]
    title: Mapped[str | None]
    published: Mapped[datetime | None]  # the feed's date, kept for a retry
    status: Mapped[EntryStatus]
    attempts: Mapped[int]
    last_error: Mapped[str]
    first_failed_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]  # None once given up


class ArticleSignature(Base):
    """An article's MinHash signatures (``service.dedup``), so a restart rebuilds the index.

    ``lead``/``whole`` hold ``num_perm`` uint32 values, little-endian: BLOB on SQLite,
    BYTEA on PostgreSQL.  ``num_perm`` is kept so a changed setting is noticed.
    """

    __tablename__ = "article_signatures"

    article_id: Mapped[int] = mapped_column(
        sa.ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    num_perm: Mapped[int]
    words: Mapped[int]
    shingles: Mapped[int]
    lead: Mapped[bytes] = mapped_column(sa.LargeBinary())
    whole: Mapped[bytes] = mapped_column(sa.LargeBinary())


class Event(Base):
    """One event of the DESIGN.md contract, flattened into columns."""

    __tablename__ = "events"

    id: Mapped[intpk]
    type: Mapped[EventType] = mapped_column(index=True)
    movement: Mapped[bool]
    actor_name: Mapped[short_str]
    actor_affiliation: Mapped[Affiliation] = mapped_column(index=True)
    location_name: Mapped[short_str]
    location_lat: Mapped[float | None]
    location_lon: Mapped[float | None]
    location_admin2: Mapped[str | None] = mapped_column(sa.String(255))
    location_precision: Mapped[Precision]
    origin_name: Mapped[str | None] = mapped_column(sa.String(255))
    origin_lat: Mapped[float | None]
    origin_lon: Mapped[float | None]
    origin_admin2: Mapped[str | None] = mapped_column(sa.String(255))
    origin_precision: Mapped[Precision | None]
    date: Mapped[str | None] = mapped_column(sa.String(32), index=True)  # ISO date
    date_precision: Mapped[DatePrecision]
    quantities: Mapped[json_counts]
    equipment: Mapped[json_strings]
    hedged: Mapped[bool]
    source_name: Mapped[str | None] = mapped_column(sa.String(255))
    source_outlet: Mapped[str | None] = mapped_column(sa.String(255))
    source_url: Mapped[str | None]
    in_region: Mapped[bool] = mapped_column(index=True)
    evidence_text: Mapped[str]
    evidence_start: Mapped[int]
    evidence_end: Mapped[int]
    sources_count: Mapped[int] = mapped_column(server_default=sa.text("1"))
    # Where the event was first found: only ``news`` alerts (service.enums).
    provenance: Mapped[EventProvenance] = mapped_column(server_default=EventProvenance.NEWS.value)
    created_at: Mapped[datetime_now]


class EventArticle(Base):
    """An article reporting an event (one event, many reports), with its evidence span."""

    __tablename__ = "event_articles"
    __table_args__ = (sa.UniqueConstraint("event_id", "article_id"),)

    id: Mapped[intpk]
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(
        sa.ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    evidence_start: Mapped[int]
    evidence_end: Mapped[int]
    created_at: Mapped[datetime_now]


class Delivery(Base):
    """The webhook outbox: one row per alert (event, subscriber, kind, source count).

    ``event.created`` goes once per (event, subscriber); ``event.corroborated`` once
    per new source count. ``payload`` is the exact body sent on every attempt, and
    ``webhook_id`` the same ``webhook-id`` header on every attempt.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "subscriber", "kind", "sources_count"),
        sa.Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[intpk]
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    subscriber: Mapped[short_str]
    kind: Mapped[AlertKind] = mapped_column(server_default=AlertKind.CREATED.value)
    sources_count: Mapped[int] = mapped_column(server_default=sa.text("1"))
    payload: Mapped[str | None]
    webhook_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    status: Mapped[DeliveryStatus] = mapped_column(server_default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int_zero]
    next_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None]  # HTTP status of the last attempt
    last_error: Mapped[str | None]
    created_at: Mapped[datetime_now]
    delivered_at: Mapped[datetime | None]


class BackfillRun(Base):
    """One ``service backfill`` source with its options; running it again resumes it."""

    __tablename__ = "backfill_runs"

    id: Mapped[intpk]
    # sha256 of the source kind, the source and the options
    run_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source_kind: Mapped[str] = mapped_column(sa.String(32))  # feed, sitemap, urls, dir
    source: Mapped[str]
    options: Mapped[dict[str, str | None]] = mapped_column(JSONType)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]  # the last run that went through every item
    created_at: Mapped[datetime_now]


class BackfillItem(Base):
    """What a backfill run did with one item; failed items are tried again on the next run."""

    __tablename__ = "backfill_items"
    __table_args__ = (sa.UniqueConstraint("run_id", "item_key"),)

    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("backfill_runs.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the item's identity
    item: Mapped[str]  # the URL or file, for people
    status: Mapped[BackfillItemStatus]
    article_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    events: Mapped[int_zero]
    error: Mapped[str | None]
    updated_at: Mapped[datetime]


class Subscription(Base):
    """Stored state of a configured webhook subscriber: disabled by a 410 Gone.

    A row exists only once something happened to the subscriber. Disabling holds
    for the URL that answered 410: configuring another URL enables it again.
    """

    __tablename__ = "subscriptions"

    id: Mapped[intpk]
    name: Mapped[short_str] = mapped_column(unique=True)
    url: Mapped[str]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None]
    created_at: Mapped[datetime_now]


target_metadata = Base.metadata

__all__ = [
    "Article",
    "ArticleSignature",
    "BackfillItem",
    "BackfillRun",
    "Base",
    "Delivery",
    "EntryFailure",
    "Event",
    "EventArticle",
    "Feed",
    "Subscription",
    "UTCDateTime",
    "target_metadata",
]
