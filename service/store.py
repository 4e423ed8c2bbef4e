"""Storage: engines, migrations, and the repository functions over ``models.py``.

The only module that maps between rows and the service's frozen values. Callers
hold a :class:`~sqlalchemy.orm.Session` from :func:`session_scope` (one
transaction, committed on success) and pass it in; repository functions flush
but never commit, so a caller can group several of them in one transaction.
Database errors come out as :class:`~service.errors.StoreError`.

Time is a parameter (``now``): only ``clock.py`` reads the wall clock.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service import corroboration, models
from service.alerts import filters, payload
from service.alerts.payload import AlertSubject, SourceReport
from service.config import DedupSettings, FeedSettings, WebhookSettings
from service.dedup import Signature
from service.enums import (
    AlertKind,
    ArticleOrigin,
    BackfillItemStatus,
    DeliveryStatus,
    EntryStatus,
    EventProvenance,
)
from service.errors import AlreadyStoredError, StoreError
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

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# Engines and sessions


def normalise_url(url: str) -> URL:
    """Parse a database URL; a bare ``postgresql://`` means the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    return normalise_url(url).render_as_string(hide_password=True)


def create_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    """An engine for ``url``.

    SQLite: the database directory is created, connections use WAL and enforce
    foreign keys (migrations pass ``foreign_keys=False``: batch migrations copy
    and drop tables, which must not cascade).  With WAL, ``synchronous=NORMAL``
    syncs at checkpoints instead of at every commit: the database stays consistent
    whatever happens, and a commit survives the process being killed; only a power
    cut or OS crash can take back the last commits (feeds are polled again, articles
    re-stored; SQLite's documented WAL setting, and fsync per article was 15 % of
    backfill time). pysqlite's own transaction handling
    is switched off so SQLAlchemy's BEGIN/SAVEPOINT work as written (see the
    SQLAlchemy SQLite dialect notes on savepoints and transactional DDL).
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)

    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    with factory() as session:
        try:
            with session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc.__class__.__name__}: {exc}") from exc


# ---------------------------------------------------------------------------
# Migrations


def ping(factory: sessionmaker[Session]) -> str | None:
    """None when the database answers a trivial query, else what went wrong (``/healthz``)."""
    try:
        with factory() as session:
            session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        return str(exc.__cause__ or exc).splitlines()[0][:200]
    return None


@contextmanager
def locked_scope(factory: sessionmaker[Session], lock: threading.Lock | None) -> Iterator[Session]:
    """``session_scope``, taking ``lock`` first when one is given: on SQLite a process's
    transactions take turns (a deferred transaction that has read cannot wait for the
    write lock), on PostgreSQL there is no lock."""
    if lock is None:
        with session_scope(factory) as session:
            yield session
        return
    with lock, session_scope(factory) as session:
        yield session


def migrations_dir() -> Path:
    """The Alembic script directory.

    In a source checkout (or an editable install) it sits next to the package;
    an installed package (the Docker image) finds it in the working directory.
    """
    candidates = [
        Path(__file__).resolve().parent.parent / "migrations",
        Path.cwd() / "migrations",
    ]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise StoreError(
        "migrations directory not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); run from the project directory"
    )


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic config for ``url`` (or an open ``connection``), without alembic.ini.

    ``env.py`` reads ``database_url``/``connection`` from ``config.attributes``;
    leaving alembic.ini out also leaves the service's logging set-up alone.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        config.attributes["database_url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` to ``revision``; return the revision reached."""
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"{display_url(url)}: migration failed: {exc}") from exc
    engine = create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise StoreError unless the database is migrated to the head revision."""
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"{display_url(str(engine.url))}: cannot connect: {exc}") from exc
    head = head_revision()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, not {head}"
        raise StoreError(
            f"database {engine.url.render_as_string(hide_password=True)} is {state}; "
            "run `service db upgrade`"
        )


# ---------------------------------------------------------------------------
# Values exchanged with callers


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed with its poll state; ``configured`` is false for feeds dropped from the file."""

    name: str
    url: str
    outlet: str
    interval_seconds: int
    configured: bool
    etag: str | None = None
    last_modified: str | None = None
    next_due: datetime | None = None
    last_polled: datetime | None = None
    last_status: int | None = None
    consecutive_errors: int = 0
    last_error: str | None = None
    entries_seen: int = 0
    events_count: int = 0
    claimed_by: str | None = None  # the process polling it now
    heartbeat_at: datetime | None = None
    entries_retrying: int = 0  # entries not stored yet, tried again after a backoff
    entries_given_up: int = 0  # entries not stored, attempts exhausted


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article to store; ``content_hash`` is computed by the caller (``hashing.py``)."""

    text: str
    content_hash: str
    origin_kind: ArticleOrigin
    fetched: datetime
    url: str | None = None
    canonical_url: str | None = None
    outlet: str | None = None
    title: str | None = None
    published: datetime | None = None
    published_is_estimate: bool = False
    is_seed: bool = False
    guid: str | None = None
    feed_id: int | None = None
    alternate_url: str | None = None
    duplicate_of: int | None = None
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class StoredArticle:
    id: int
    url: str | None
    outlet: str | None
    title: str | None
    published: datetime | None
    published_is_estimate: bool
    fetched: datetime
    text: str
    content_hash: str
    is_seed: bool
    origin_kind: ArticleOrigin
    duplicate_of: int | None
    canonical_url: str | None = None
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class EventWrite:
    """One event written for an article: a new row (``created``) or one corroborated."""

    event_id: int
    created: bool


@dataclass(frozen=True, slots=True)
class ExactMatch:
    """A stored article with the same canonical URL or the same normalised text."""

    article_id: int
    reason: str  # "url" or "text"
    same_url: bool  # the very URL is stored: a second row cannot take it


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: the contract value plus its row id and reports."""

    id: int
    event: Event
    created_at: datetime
    sources_count: int
    article_ids: tuple[int, ...]
    provenance: EventProvenance = EventProvenance.NEWS


# ---------------------------------------------------------------------------
# Feeds


# pg_advisory_xact_lock key of sync_feeds (any constant the application owns).
_SYNC_FEEDS_LOCK = 0x6465_7A5F_6665_6564  # "dez_feed"


def sync_feeds(session: Session, feeds: Sequence[FeedSettings]) -> tuple[int, int]:
    """Insert configured feeds and update changed ones; return (added, updated).

    Feeds no longer configured keep their rows (and history). A changed URL drops
    the conditional-GET validators, which belonged to the old URL.  On PostgreSQL the
    transaction first takes an advisory lock, so replicas starting together take turns
    (each inserting the same new feeds made all but one fail on ``uq_feeds_name``).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_SYNC_FEEDS_LOCK)))
    rows = {row.name: row for row in session.scalars(sa.select(models.Feed))}
    added = updated = 0
    for feed in feeds:
        row = rows.get(feed.name)
        if row is None:
            session.add(
                models.Feed(
                    name=feed.name,
                    url=feed.url,
                    outlet=feed.outlet,
                    interval_seconds=feed.interval_seconds,
                )
            )
            added += 1
            continue
        changed = (row.url, row.outlet, row.interval_seconds) != (
            feed.url,
            feed.outlet,
            feed.interval_seconds,
        )
        if row.url != feed.url:
            row.etag = None
            row.last_modified = None
        row.url, row.outlet, row.interval_seconds = feed.url, feed.outlet, feed.interval_seconds
        updated += changed
    session.flush()
    return added, updated


def list_feeds(session: Session, configured: Sequence[FeedSettings]) -> list[FeedState]:
    """Configured feeds in file order with their stored state, then unconfigured rows."""
    rows = {row.name: row for row in session.scalars(sa.select(models.Feed))}
    failing = entry_failure_counts(session)
    states: list[FeedState] = []
    for feed in configured:
        row = rows.pop(feed.name, None)
        if row is None:
            states.append(
                FeedState(
                    name=feed.name,
                    url=feed.url,
                    outlet=feed.outlet,
                    interval_seconds=feed.interval_seconds,
                    configured=True,
                )
            )
        else:
            states.append(
                _feed_state(row, configured=True, settings=feed, failing=failing.get(row.id))
            )
    for name in sorted(rows):
        row = rows[name]
        states.append(
            _feed_state(row, configured=False, settings=None, failing=failing.get(row.id))
        )
    return states


def _feed_state(
    row: models.Feed,
    *,
    configured: bool,
    settings: FeedSettings | None,
    failing: tuple[int, int] | None = None,
) -> FeedState:
    retrying, given_up = failing or (0, 0)
    return FeedState(
        name=row.name,
        url=settings.url if settings else row.url,
        outlet=settings.outlet if settings else row.outlet,
        interval_seconds=settings.interval_seconds if settings else row.interval_seconds,
        configured=configured,
        etag=row.etag,
        last_modified=row.last_modified,
        next_due=row.next_due,
        last_polled=row.last_polled,
        last_status=row.last_status,
        consecutive_errors=row.consecutive_errors,
        last_error=row.last_error,
        entries_seen=row.entries_seen,
        events_count=row.events_count,
        claimed_by=row.claimed_by,
        heartbeat_at=row.heartbeat_at,
        entries_retrying=retrying,
        entries_given_up=given_up,
    )


# ---------------------------------------------------------------------------
# Articles


def key_hash(value: str | None) -> str | None:
    """The SHA-256 (hex) of a URL's or guid's UTF-8: how they are indexed and compared.

    URLs have no length limit and PostgreSQL's btree index entries do (2704 bytes):
    ``articles`` keeps the texts, and indexes and unique constraints on their hashes.
    """
    return None if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()


def _short(value: str | None, limit: int = 200) -> str | None:
    """A URL or title cut for messages (a tracking URL may be kilobytes long)."""
    if value is None or len(value) <= limit:
        return value
    return value[:limit] + f"... ({len(value)} characters)"


def add_article(session: Session, article: NewArticle) -> int:
    """Insert an article and return its id."""
    name = _short(article.url) or _short(article.title)
    try:
        article_id = session.connection().scalar(
            _statements(session).add_article,
            {
                "url": article.url,
                "url_hash": key_hash(article.url),
                "canonical_url": article.canonical_url,
                "canonical_url_hash": key_hash(article.canonical_url),
                "outlet": article.outlet,
                "title": article.title,
                "published": article.published,
                "published_is_estimate": article.published_is_estimate,
                "fetched": article.fetched,
                "text": article.text,
                "content_hash": article.content_hash,
                "is_seed": article.is_seed,
                "origin_kind": article.origin_kind,
                "guid": article.guid,
                "guid_hash": key_hash(article.guid),
                "feed_id": article.feed_id,
                "alternate_url": article.alternate_url,
                "alternate_url_hash": key_hash(article.alternate_url),
                "duplicate_of": article.duplicate_of,
                "similarity": article.similarity,
            },
        )
    except SQLAlchemyError as exc:
        # The driver's first line: its message may quote the whole row.
        detail = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).splitlines()[0]
        raise StoreError(
            f"cannot store article {name!r}: {type(exc).__name__}: {detail[:300]}"
        ) from exc
    if article_id is None:  # ON CONFLICT DO NOTHING: the transaction goes on
        raise AlreadyStoredError(
            f"cannot store article {name!r}: its URL or feed entry is stored already"
        )
    return int(article_id)


@dataclass(frozen=True)
class _Statements:
    """Statements run for every report, built once per dialect (building and keying
    a statement cost more than running it on SQLite)."""

    add_article: Any
    article_by_hash: Any
    find_exact: Any
    add_signature: Any
    signature_ids: Any
    signature_count: Any
    record_item: Any


@functools.cache
def _statements_for(dialect: str) -> _Statements:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    article = models.Article
    columns = [c.name for c in article.__table__.columns if c.name not in ("id", "created_at")]
    add = (
        insert(article)
        .values({name: sa.bindparam(name) for name in columns})
        .on_conflict_do_nothing()
        .returning(article.id)
    )
    target = sa.func.coalesce(article.duplicate_of, article.id).label("target")
    urls: tuple[Any, Any] = (sa.bindparam("url1"), sa.bindparam("url2"))
    asks = [  # in order of precedence; a NULL parameter matches nothing
        sa.select(sa.literal(0).label("kind"), target).where(
            article.url_hash == sa.bindparam("raw_url")
        ),
        sa.select(sa.literal(1).label("kind"), target)
        .where(sa.or_(article.canonical_url_hash.in_(urls), article.alternate_url_hash.in_(urls)))
        .order_by(article.id),
        sa.select(sa.literal(2).label("kind"), target)
        .where(article.content_hash == sa.bindparam("content_hash"))
        .order_by(article.id),
    ]
    sig = models.ArticleSignature
    kept = ["item", "status", "article_id", "events", "error", "updated_at"]
    upsert = insert(models.BackfillItem).values(
        {name: sa.bindparam(name) for name in ["run_id", "item_key", *kept]}
    )
    return _Statements(
        add_article=add,
        article_by_hash=sa.select(article.id)
        .where(article.content_hash == sa.bindparam("content_hash"))
        .order_by(article.id)
        .limit(1),
        find_exact=sa.union_all(*(ask.limit(1).subquery().select() for ask in asks)),
        add_signature=sa.insert(sig).values(
            {c.name: sa.bindparam(c.name) for c in sig.__table__.columns}
        ),
        signature_ids=sa.select(sig.article_id)
        .where(sig.article_id > sa.bindparam("after_id"))
        .order_by(sig.article_id),
        signature_count=sa.select(sa.func.count()).where(
            sig.article_id > sa.bindparam("after_id"), sig.num_perm == sa.bindparam("num_perm")
        ),
        record_item=upsert.on_conflict_do_update(
            index_elements=["run_id", "item_key"],
            set_={name: upsert.excluded[name] for name in kept},
        ),
    )


def _statements(session: Session) -> _Statements:
    return _statements_for(session.get_bind().dialect.name)


def find_seed_by_hash(session: Session, content_hash: str) -> int | None:
    """The id of a seed article with this content hash, if one is stored."""
    return session.scalar(
        sa.select(models.Article.id)
        .where(models.Article.is_seed.is_(True), models.Article.content_hash == content_hash)
        .limit(1)
    )


def find_article_by_hash(session: Session, content_hash: str) -> int | None:
    """The id of any article (seed or not) with this content hash, if one is stored."""
    found: int | None = session.connection().scalar(
        _statements(session).article_by_hash, {"content_hash": content_hash}
    )
    return found


def count_articles(session: Session, *, seeds_only: bool = False) -> int:
    query = sa.select(sa.func.count()).select_from(models.Article)
    if seeds_only:
        query = query.where(models.Article.is_seed.is_(True))
    return session.scalar(query) or 0


def get_article(session: Session, article_id: int) -> StoredArticle | None:
    row = session.get(models.Article, article_id)
    if row is None:
        return None
    return StoredArticle(
        id=row.id,
        url=row.url,
        outlet=row.outlet,
        title=row.title,
        published=row.published,
        published_is_estimate=row.published_is_estimate,
        fetched=row.fetched,
        text=row.text,
        content_hash=row.content_hash,
        is_seed=row.is_seed,
        origin_kind=row.origin_kind,
        duplicate_of=row.duplicate_of,
        canonical_url=row.canonical_url,
        similarity=row.similarity,
    )


def list_articles(
    session: Session,
    *,
    seeds_only: bool = False,
    duplicates_only: bool = False,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[StoredArticle]:
    query = sa.select(models.Article.id).order_by(
        models.Article.id.desc() if newest_first else models.Article.id
    )
    if seeds_only:
        query = query.where(models.Article.is_seed.is_(True))
    if duplicates_only:
        query = query.where(models.Article.duplicate_of.is_not(None))
    if limit is not None:
        query = query.limit(limit)
    articles = [get_article(session, article_id) for article_id in session.scalars(query)]
    return [article for article in articles if article is not None]


# ---------------------------------------------------------------------------
# Deduplication: exact matches, signatures, candidate texts


def lock_for_dedup(session: Session) -> None:
    """Serialise check-and-insert of articles across replicas, until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock, so a replica judging a report
    sees every article another replica committed before it.  SQLite has one
    writer at a time anyway (and one daemon per file).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(DEDUP_LOCK_KEY)))


DEDUP_LOCK_KEY = 0x6465647570  # "dedup"


def find_exact(
    session: Session, *, urls: Sequence[str], raw_url: str | None, content_hash: str
) -> ExactMatch | None:
    """An article with this ``raw_url``, else one of the canonical ``urls`` (at most
    two: the URL and its alias), else this text (the oldest), asked in one query.

    A match that is itself a duplicate resolves to the article it duplicates.
    """
    url1, url2, *_ = [*(key_hash(url) for url in urls if url), None, None]
    found = (
        session.connection()
        .execute(
            _statements(session).find_exact,
            {
                "raw_url": key_hash(raw_url),
                "url1": url1,
                "url2": url2,
                "content_hash": content_hash,
            },
        )
        .all()
    )
    if not found:
        return None
    kind, article_id = min(found)
    return ExactMatch(article_id, "text" if kind == 2 else "url", same_url=kind == 0)


def add_signature(session: Session, article_id: int, signature: Signature) -> None:
    try:
        session.connection().execute(
            _statements(session).add_signature,
            {
                "article_id": article_id,
                "num_perm": len(signature.lead) // 4,
                "words": signature.words,
                "shingles": signature.shingles,
                "lead": signature.lead,
                "whole": signature.whole,
            },
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot store the signature of article {article_id}: {exc}") from exc


def iter_signatures(
    session: Session, *, after_id: int = 0, num_perm: int, batch: int = 10_000
) -> Iterator[tuple[int, Signature]]:
    """Stored signatures with ``article_id > after_id`` made with ``num_perm``, by id."""
    sig = models.ArticleSignature
    query = (
        sa.select(sig.article_id, sig.lead, sig.whole, sig.words, sig.shingles)
        .where(sig.article_id > after_id, sig.num_perm == num_perm)
        .order_by(sig.article_id)
        .execution_options(yield_per=batch)
    )
    for article_id, lead, whole, words, shingles in session.execute(query):
        yield article_id, Signature(bytes(lead), bytes(whole), words, shingles)


def articles_without_signature(
    session: Session, *, num_perm: int, limit: int = 1000
) -> list[tuple[int, str]]:
    """(id, text) of articles with no signature, or one made with another ``num_perm``."""
    sig = models.ArticleSignature
    rows = session.execute(
        sa.select(models.Article.id, models.Article.text)
        .outerjoin(sig, sig.article_id == models.Article.id)
        .where(sa.or_(sig.article_id.is_(None), sig.num_perm != num_perm))
        .order_by(models.Article.id)
        .limit(limit)
    )
    return [(article_id, text) for article_id, text in rows]


def replace_signature(session: Session, article_id: int, signature: Signature) -> None:
    session.execute(
        sa.delete(models.ArticleSignature).where(models.ArticleSignature.article_id == article_id)
    )
    add_signature(session, article_id, signature)


def original_of(session: Session, article_id: int) -> int:
    """The article ``article_id`` duplicates, or itself."""
    found = session.scalar(
        sa.select(models.Article.duplicate_of).where(models.Article.id == article_id)
    )
    return found if found is not None else article_id


def signature_ids(session: Session, *, after_id: int) -> list[int]:
    return list(
        session.connection().scalars(_statements(session).signature_ids, {"after_id": after_id})
    )


def signature_count(session: Session, *, after_id: int, num_perm: int) -> int:
    """How many signatures made with ``num_perm`` belong to articles above ``after_id``."""
    count: int = session.connection().scalar(
        _statements(session).signature_count, {"after_id": after_id, "num_perm": num_perm}
    )
    return count


def signatures_of(
    session: Session, ids: Sequence[int], *, num_perm: int
) -> list[tuple[int, Signature]]:
    sig = models.ArticleSignature
    rows = session.execute(
        sa.select(sig.article_id, sig.lead, sig.whole, sig.words, sig.shingles)
        .where(sig.article_id.in_(list(ids)), sig.num_perm == num_perm)
        .order_by(sig.article_id)
    )
    return [
        (article_id, Signature(bytes(lead), bytes(whole), words, shingles))
        for article_id, lead, whole, words, shingles in rows
    ]


def article_texts(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        article_id: text
        for article_id, text in session.execute(
            sa.select(models.Article.id, models.Article.text).where(
                models.Article.id.in_(list(ids))
            )
        )
    }


# ---------------------------------------------------------------------------
# Events


def store_events(
    session: Session,
    article_id: int,
    events: Sequence[Event],
    *,
    now: datetime,
    settings: DedupSettings | None = None,
    provenance: EventProvenance = EventProvenance.NEWS,
) -> list[EventWrite]:
    """Store ``events`` found in article ``article_id``, all or none.

    Each event either corroborates a stored event that is the same real event
    (``service.corroboration``: the article is linked, ``sources_count`` goes up and
    the event is enriched; ``created=False``) or becomes a new row (``created=True``)
    with ``provenance``.  A corroborated event keeps its own provenance: a seed or
    history event stays one (never alerted) whatever reports it later.
    Two events of one article are never merged, neither with each other nor into
    one event.  Runs in a SAVEPOINT inside the caller's transaction, so a failure
    leaves nothing of this article's events behind and the session usable.
    """
    if not events:
        return []
    rules = settings or DedupSettings()
    writes: list[EventWrite] = []
    try:
        with session.begin_nested():
            if session.get(models.Article, article_id) is None:
                raise StoreError(f"cannot store events: no article with id {article_id}")
            taken: set[int] = set()  # events this article already reports
            for event in events:
                match = _matching_event(session, event, article_id, taken, rules)
                if match is None:
                    row = _event_row(event, now, provenance)
                    session.add(row)
                    session.flush()
                else:
                    row = match
                    _apply(row, corroboration.enrich(_event_value(row), event))
                    row.sources_count += 1
                taken.add(row.id)
                session.add(
                    models.EventArticle(
                        event_id=row.id,
                        article_id=article_id,
                        evidence_start=event.evidence.start,
                        evidence_end=event.evidence.end,
                        created_at=now,
                    )
                )
                session.flush()
                writes.append(EventWrite(event_id=row.id, created=match is None))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot store events of article {article_id}: {exc}") from exc
    return writes


def _matching_event(
    session: Session,
    event: Event,
    article_id: int,
    taken: set[int],
    settings: DedupSettings,
) -> models.Event | None:
    """The stored event ``event`` corroborates, if any (the nearest in date, then place)."""
    window = corroboration.search_window(event, settings)
    if window is None:
        return None
    own = sa.select(models.EventArticle.event_id).where(
        models.EventArticle.article_id == article_id
    )
    query = (
        sa.select(models.Event)
        .where(
            models.Event.type == event.type,
            models.Event.actor_affiliation == event.actor.affiliation,
            models.Event.date >= window[0],
            models.Event.date <= window[1],
            models.Event.id.not_in(own),
        )
        .order_by(models.Event.id)
    )
    matches = [
        (corroboration.closeness(value, event), row.id, row)
        for row in session.scalars(query)
        if row.id not in taken
        and corroboration.same_event(value := _event_value(row), event, settings)
    ]
    if not matches:
        return None
    return min(matches, key=lambda item: (item[0], item[1]))[2]


def _apply(row: models.Event, event: Event) -> None:
    """Write an enriched event's fields back (evidence and source stay the first report's)."""
    fresh = _event_row(event, row.created_at)
    for column in (
        "location_name",
        "location_lat",
        "location_lon",
        "location_admin2",
        "location_precision",
        "origin_name",
        "origin_lat",
        "origin_lon",
        "origin_admin2",
        "origin_precision",
        "date",
        "date_precision",
        "quantities",
        "equipment",
        "hedged",
        "in_region",
    ):
        setattr(row, column, getattr(fresh, column))


def list_events(session: Session, *, limit: int | None = None) -> list[StoredEvent]:
    """Stored events, newest first."""
    query = sa.select(models.Event).order_by(models.Event.id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = list(session.scalars(query))
    links: dict[int, list[int]] = {row.id: [] for row in rows}
    if rows:
        for event_id, article_id in session.execute(
            sa.select(models.EventArticle.event_id, models.EventArticle.article_id)
            .where(models.EventArticle.event_id.in_(links))
            .order_by(models.EventArticle.id)
        ):
            links[event_id].append(article_id)
    return [
        StoredEvent(
            id=row.id,
            event=_event_value(row),
            created_at=row.created_at,
            sources_count=row.sources_count,
            article_ids=tuple(links[row.id]),
            provenance=row.provenance,
        )
        for row in rows
    ]


def count_events(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(models.Event)) or 0


def article_has_events(session: Session, article_id: int) -> bool:
    """Whether any event is linked to the article."""
    found = session.scalar(
        sa.select(models.EventArticle.id)
        .where(models.EventArticle.article_id == article_id)
        .limit(1)
    )
    return found is not None


def _event_row(
    event: Event, now: datetime, provenance: EventProvenance = EventProvenance.NEWS
) -> models.Event:
    origin = event.origin
    return models.Event(
        type=event.type,
        movement=event.movement,
        actor_name=event.actor.name,
        actor_affiliation=event.actor.affiliation,
        location_name=event.location.name,
        location_lat=event.location.lat,
        location_lon=event.location.lon,
        location_admin2=event.location.admin2,
        location_precision=event.location.precision,
        origin_name=origin.name if origin else None,
        origin_lat=origin.lat if origin else None,
        origin_lon=origin.lon if origin else None,
        origin_admin2=origin.admin2 if origin else None,
        origin_precision=origin.precision if origin else None,
        date=event.date,
        date_precision=event.date_precision,
        quantities=dict(event.quantities),
        equipment=list(event.equipment),
        hedged=event.hedged,
        source_name=event.source.name,
        source_outlet=event.source.outlet,
        source_url=event.source.url,
        in_region=event.in_region,
        evidence_text=event.evidence.text,
        evidence_start=event.evidence.start,
        evidence_end=event.evidence.end,
        sources_count=1,
        provenance=provenance,
        created_at=now,
    )


def _event_value(row: models.Event) -> Event:
    origin = None
    if row.origin_name is not None and row.origin_precision is not None:
        origin = Location(
            name=row.origin_name,
            lat=row.origin_lat,
            lon=row.origin_lon,
            admin2=row.origin_admin2,
            precision=Precision(row.origin_precision),
        )
    return Event(
        type=EventType(row.type),
        actor=Actor(name=row.actor_name, affiliation=Affiliation(row.actor_affiliation)),
        location=Location(
            name=row.location_name,
            lat=row.location_lat,
            lon=row.location_lon,
            admin2=row.location_admin2,
            precision=Precision(row.location_precision),
        ),
        origin=origin,
        date=row.date,
        date_precision=DatePrecision(row.date_precision),
        hedged=row.hedged,
        in_region=row.in_region,
        evidence=Evidence(text=row.evidence_text, start=row.evidence_start, end=row.evidence_end),
        source=Source(name=row.source_name, outlet=row.source_outlet, url=row.source_url),
        quantities=dict(row.quantities),
        equipment=tuple(row.equipment),
    )


# ---------------------------------------------------------------------------
# Polling: the daemon claims due feeds, checks which entries it has, records polls


@dataclass(frozen=True, slots=True)
class PollTarget:
    """A feed claimed for one poll: what the pipeline needs from its row."""

    id: int
    name: str
    url: str
    outlet: str
    interval_seconds: int
    etag: str | None
    last_modified: str | None
    consecutive_errors: int
    # The lease this poll holds (``next_due`` as claimed); None: not claimed (--once).
    claimed_until: datetime | None = None
    # The process whose claim this one took over (its heartbeat had stopped), if any.
    taken_over_from: str | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """The outcome of one poll, written back to the feed row."""

    polled: datetime
    status: int | None
    error: str | None
    next_due: datetime
    consecutive_errors: int
    # Validators are replaced only when the poll left no entry for a later poll, so
    # that entries left over by a per-poll cap, or waiting for a retry, are seen again
    # on the next (full) GET.
    update_validators: bool = False
    etag: str | None = None
    last_modified: str | None = None
    new_entries: int = 0  # entries stored (or recognised as duplicates) by this poll
    new_events: int = 0


def _poll_target(
    row: models.Feed, claimed_until: datetime | None = None, taken_over_from: str | None = None
) -> PollTarget:
    return PollTarget(
        id=row.id,
        name=row.name,
        url=row.url,
        outlet=row.outlet,
        interval_seconds=row.interval_seconds,
        etag=row.etag,
        last_modified=row.last_modified,
        consecutive_errors=row.consecutive_errors,
        claimed_until=claimed_until,
        taken_over_from=taken_over_from,
    )


def claim_due_feeds(
    session: Session,
    *,
    now: datetime,
    names: Sequence[str],
    lease_seconds: float,
    limit: int | None = None,
    owner: str | None = None,
    stale_seconds: float | None = None,
) -> list[PollTarget]:
    """Feeds among ``names`` due at ``now`` (never polled first), claimed for this poll.

    Claiming pushes ``next_due`` by ``lease_seconds`` in the same transaction, and on
    PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED``: replicas sharing one
    database each get different feeds. (SQLite has no row locks; one daemon per SQLite
    file.)  Each target carries its lease (``claimed_until``): ``record_poll`` writes
    nothing once another claim replaced it.

    A claim names its ``owner`` (the polling process), which renews ``heartbeat_at``
    while it polls (``heartbeat``).  With ``stale_seconds``, a feed whose claim has had
    no heartbeat for that long is due too, lease or not: its process died (killed, a
    crashed host), and a restarted daemon or another replica takes the feed over at
    once instead of waiting for the lease.  A live process whose poll outlives the
    lease is taken over as before.
    """
    if not names:
        return []
    feed = models.Feed
    due = sa.or_(feed.next_due.is_(None), feed.next_due <= now)
    if stale_seconds is not None:
        due = sa.or_(
            due,
            sa.and_(
                feed.claimed_by.is_not(None),
                feed.heartbeat_at <= now - timedelta(seconds=stale_seconds),
            ),
        )
    query = (
        sa.select(feed)
        .where(feed.name.in_(list(names)), due)
        .order_by(sa.case((feed.next_due.is_(None), 0), else_=1), feed.next_due, feed.id)
        .with_for_update(skip_locked=True)
    )
    if limit is not None:
        query = query.limit(limit)
    try:
        rows = list(session.scalars(query))
        lease = now + timedelta(seconds=lease_seconds)
        targets: list[PollTarget] = []
        for row in rows:
            dead = row.claimed_by if row.next_due is not None and row.next_due > now else None
            row.next_due = lease
            row.claimed_by = owner
            row.heartbeat_at = now if owner is not None else None
            targets.append(_poll_target(row, lease, dead))
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot claim due feeds: {exc}") from exc
    return targets


def heartbeat(session: Session, feed_ids: Sequence[int], *, owner: str, now: datetime) -> int:
    """Renew ``owner``'s claims on ``feed_ids`` (polls in progress); return how many
    it still holds.  One UPDATE: on SQLite it waits for the write lock."""
    if not feed_ids:
        return 0
    try:
        result = session.execute(
            sa.update(models.Feed)
            .where(models.Feed.id.in_(list(feed_ids)), models.Feed.claimed_by == owner)
            .values(heartbeat_at=now)
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot renew feed claims: {exc}") from exc
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def poll_targets(session: Session, names: Sequence[str]) -> list[PollTarget]:
    """The feeds named, due or not, in the order given (``service run --once``)."""
    rows = {row.name: row for row in session.scalars(sa.select(models.Feed))}
    return [_poll_target(rows[name]) for name in names if name in rows]


KNOWN_BATCH = 500  # guids or URLs per query


def known_entries(
    session: Session, *, feed_id: int, guids: Sequence[str], urls: Sequence[str]
) -> tuple[set[str], set[str]]:
    """Which of ``guids`` (of this feed) and ``urls`` (of any article, its URL or
    canonical URL) are stored, asked by their hashes in batches."""
    article = models.Article
    known_guids: set[str] = set()
    known_urls: set[str] = set()
    by_guid = {key_hash(guid): guid for guid in guids}
    guid_keys = sorted(k for k in by_guid if k is not None)
    for start in range(0, len(guid_keys), KNOWN_BATCH):
        for found in session.scalars(
            sa.select(article.guid_hash).where(
                article.feed_id == feed_id,
                article.guid_hash.in_(guid_keys[start : start + KNOWN_BATCH]),
            )
        ):
            if found is not None:
                known_guids.add(by_guid[found])
    by_url = {key_hash(url): url for url in urls}
    url_keys = sorted(k for k in by_url if k is not None)
    for start in range(0, len(url_keys), KNOWN_BATCH):
        batch = url_keys[start : start + KNOWN_BATCH]
        for url_key, canonical_key in session.execute(
            sa.select(article.url_hash, article.canonical_url_hash).where(
                sa.or_(article.url_hash.in_(batch), article.canonical_url_hash.in_(batch))
            )
        ):
            known_urls.update(by_url[k] for k in (url_key, canonical_key) if k in by_url)
    return known_guids, known_urls


def record_poll(
    session: Session, feed_id: int, record: PollRecord, *, claimed_until: datetime | None = None
) -> bool:
    """Write one poll's outcome to the feed row; False (nothing written) if the lease is lost.

    ``claimed_until`` is the poll's lease: when the row's ``next_due`` no longer says
    so, the lease ran out (or the claim was taken over) and another replica claimed
    the feed, whose record wins (a late record would otherwise push its schedule back
    or undo its validators).  The row is read ``FOR UPDATE`` so the check and the
    write are one step.  Recording ends the claim.
    """
    try:
        row = session.get(models.Feed, feed_id, with_for_update=claimed_until is not None)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record poll of feed {feed_id}: {exc}") from exc
    if row is None:
        raise StoreError(f"cannot record poll: no feed with id {feed_id}")
    if claimed_until is not None and row.next_due != claimed_until:
        return False
    row.last_polled = record.polled
    row.last_status = record.status
    row.last_error = record.error
    row.next_due = record.next_due
    row.consecutive_errors = record.consecutive_errors
    if claimed_until is not None:
        row.claimed_by = None
        row.heartbeat_at = None
    if record.update_validators:
        row.etag = record.etag
        row.last_modified = record.last_modified
    row.entries_seen += record.new_entries
    row.events_count += record.new_events
    try:
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record poll of feed {feed_id}: {exc}") from exc
    return True


def release_claim(
    session: Session, feed_id: int, *, due: datetime, claimed_until: datetime | None = None
) -> None:
    """Give back a claimed feed that will not be polled now (the daemon is stopping).

    With ``claimed_until``, only while that lease still holds.
    """
    condition = models.Feed.id == feed_id
    if claimed_until is not None:
        condition = sa.and_(condition, models.Feed.next_due == claimed_until)
    try:
        session.execute(
            sa.update(models.Feed)
            .where(condition)
            .values(next_due=due, claimed_by=None, heartbeat_at=None)
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot release feed {feed_id}: {exc}") from exc


# ---------------------------------------------------------------------------
# Feed entries that could not be stored: retried with backoff, then given up


@dataclass(frozen=True, slots=True)
class EntryFailureState:
    """A feed entry not stored yet, as the poll loop and ``service articles --failed``
    see it."""

    feed_id: int
    entry_id: str
    url: str | None
    title: str | None
    status: EntryStatus
    attempts: int
    last_error: str
    first_failed_at: datetime
    last_attempt_at: datetime
    next_attempt_at: datetime | None  # None: given up
    feed_name: str | None = None
    published: datetime | None = None  # the feed's date of the entry


def _failure_state(row: models.EntryFailure, feed_name: str | None = None) -> EntryFailureState:
    return EntryFailureState(
        feed_id=row.feed_id,
        entry_id=row.entry_id,
        url=row.url,
        title=row.title,
        status=EntryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        first_failed_at=row.first_failed_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at,
        feed_name=feed_name,
        published=row.published,
    )


def _entry_key(entry_id: str) -> str:
    key = key_hash(entry_id)
    assert key is not None
    return key


def entry_failures(
    session: Session, feed_id: int, entry_ids: Sequence[str]
) -> dict[str, EntryFailureState]:
    """The failure state of those of ``entry_ids`` (of this feed) that have one."""
    by_key = {_entry_key(entry_id): entry_id for entry_id in entry_ids}
    keys = sorted(by_key)
    found: dict[str, EntryFailureState] = {}
    for start in range(0, len(keys), KNOWN_BATCH):
        for row in session.scalars(
            sa.select(models.EntryFailure).where(
                models.EntryFailure.feed_id == feed_id,
                models.EntryFailure.entry_key.in_(keys[start : start + KNOWN_BATCH]),
            )
        ):
            found[by_key[row.entry_key]] = _failure_state(row)
    return found


def retrying_entries(session: Session, feed_id: int) -> list[EntryFailureState]:
    """The entries of a feed waiting for a retry, the earliest due first."""
    return [
        _failure_state(row)
        for row in session.scalars(
            sa.select(models.EntryFailure)
            .where(
                models.EntryFailure.feed_id == feed_id,
                models.EntryFailure.status == EntryStatus.RETRYING,
            )
            .order_by(models.EntryFailure.next_attempt_at, models.EntryFailure.id)
        )
    ]


def record_entry_failure(
    session: Session,
    feed_id: int,
    *,
    entry_id: str,
    url: str | None,
    title: str | None,
    published: datetime | None,
    error: str,
    attempts: int,
    next_attempt_at: datetime | None,
    now: datetime,
) -> None:
    """Write that an entry could not be stored (attempt number ``attempts``); with
    ``next_attempt_at`` None it is given up."""
    key = _entry_key(entry_id)
    try:
        row = session.scalar(
            sa.select(models.EntryFailure).where(
                models.EntryFailure.feed_id == feed_id, models.EntryFailure.entry_key == key
            )
        )
        if row is None:
            row = models.EntryFailure(
                feed_id=feed_id, entry_key=key, entry_id=entry_id, first_failed_at=now
            )
            session.add(row)
        row.url = url
        row.title = title
        row.published = published
        row.status = EntryStatus.RETRYING if next_attempt_at is not None else EntryStatus.GAVE_UP
        row.attempts = attempts
        row.last_error = error
        row.last_attempt_at = now
        row.next_attempt_at = next_attempt_at
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the failure of entry {_short(entry_id)!r}: {exc}") from exc


def clear_entry_failures(session: Session, feed_id: int, entry_ids: Sequence[str]) -> int:
    """Forget the failures of entries now stored (or known); return how many."""
    keys = sorted({_entry_key(entry_id) for entry_id in entry_ids})
    cleared = 0
    try:
        for start in range(0, len(keys), KNOWN_BATCH):
            result = session.execute(
                sa.delete(models.EntryFailure).where(
                    models.EntryFailure.feed_id == feed_id,
                    models.EntryFailure.entry_key.in_(keys[start : start + KNOWN_BATCH]),
                )
            )
            cleared += int(result.rowcount or 0)  # type: ignore[attr-defined]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot clear entry failures of feed {feed_id}: {exc}") from exc
    return cleared


def list_entry_failures(session: Session, *, limit: int | None = None) -> list[EntryFailureState]:
    """Entries not stored, the most recently tried first, with their feed's name."""
    query = (
        sa.select(models.EntryFailure, models.Feed.name)
        .join(models.Feed, models.Feed.id == models.EntryFailure.feed_id)
        .order_by(models.EntryFailure.last_attempt_at.desc(), models.EntryFailure.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [_failure_state(row, name) for row, name in session.execute(query)]


def entry_failure_counts(session: Session) -> dict[int, tuple[int, int]]:
    """Feed id → (entries retrying, entries given up)."""
    counts: dict[int, list[int]] = {}
    for feed_id, status, count in session.execute(
        sa.select(
            models.EntryFailure.feed_id, models.EntryFailure.status, sa.func.count()
        ).group_by(models.EntryFailure.feed_id, models.EntryFailure.status)
    ):
        pair = counts.setdefault(feed_id, [0, 0])
        pair[0 if status == EntryStatus.RETRYING else 1] += count
    return {feed_id: (pair[0], pair[1]) for feed_id, pair in counts.items()}


def hash_unhashed_articles(session: Session, *, after_id: int = 0, limit: int = 1000) -> int:
    """Hash the URLs and guids of up to ``limit`` articles above ``after_id`` stored
    without their hashes (by a replica of the release before 0006 during a rolling
    upgrade); return the last id looked at (0: none left).

    A URL or feed guid another row holds already keeps no hash on this row (the row
    hashed first keeps the uniqueness the previous release could not enforce), and a
    warning says so.
    """
    article = models.Article
    missing = sa.or_(
        *(
            sa.and_(text.is_not(None), hashed.is_(None))
            for text, hashed in (
                (article.url, article.url_hash),
                (article.canonical_url, article.canonical_url_hash),
                (article.alternate_url, article.alternate_url_hash),
                (article.guid, article.guid_hash),
            )
        )
    )
    rows = list(
        session.scalars(
            sa.select(article)
            .where(article.id > after_id, missing)
            .order_by(article.id)
            .limit(limit)
        )
    )
    for row in rows:
        row.canonical_url_hash = key_hash(row.canonical_url)
        row.alternate_url_hash = key_hash(row.alternate_url)
        url_key, guid_key = key_hash(row.url), key_hash(row.guid)
        if url_key is not None and session.scalar(
            sa.select(article.id).where(article.url_hash == url_key, article.id != row.id)
        ):
            log.warning("Article URL stored twice", extra={"article_id": row.id})
            url_key = None
        if guid_key is not None and session.scalar(
            sa.select(article.id).where(
                article.feed_id == row.feed_id, article.guid_hash == guid_key, article.id != row.id
            )
        ):
            log.warning("Feed entry stored twice", extra={"article_id": row.id})
            guid_key = None
        row.url_hash, row.guid_hash = url_key, guid_key
        session.flush()
    return rows[-1].id if rows else 0


# ---------------------------------------------------------------------------
# Backfill: runs and their items (resumable), and re-extraction of stored articles


@dataclass(frozen=True, slots=True)
class BackfillRunState:
    """A backfill run opened for work: the item keys already settled by earlier runs."""

    id: int
    done: frozenset[str]
    resumed: bool  # an earlier run with the same source and options exists
    finished_before: datetime | None


@dataclass(frozen=True, slots=True)
class BackfillItemRecord:
    item_key: str
    item: str
    status: BackfillItemStatus
    article_id: int | None = None
    events: int = 0
    error: str | None = None


def open_backfill_run(
    session: Session,
    *,
    run_key: str,
    source_kind: str,
    source: str,
    options: dict[str, str | None],
    now: datetime,
) -> BackfillRunState:
    """The run for ``run_key`` (created on first use) and its settled items.

    Failed items are not settled: the next run tries them again.
    """
    try:
        row = session.scalar(
            sa.select(models.BackfillRun).where(models.BackfillRun.run_key == run_key)
        )
        resumed = row is not None
        if row is None:
            row = models.BackfillRun(
                run_key=run_key,
                source_kind=source_kind,
                source=source,
                options=options,
                started_at=now,
                updated_at=now,
            )
            session.add(row)
        else:
            row.updated_at = now
        session.flush()
        done = frozenset(
            session.scalars(
                sa.select(models.BackfillItem.item_key).where(
                    models.BackfillItem.run_id == row.id,
                    models.BackfillItem.status != BackfillItemStatus.FAILED,
                )
            )
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open backfill run of {source}: {exc}") from exc
    return BackfillRunState(id=row.id, done=done, resumed=resumed, finished_before=row.finished_at)


def record_backfill_item(
    session: Session, run_id: int, record: BackfillItemRecord, *, now: datetime
) -> None:
    """Write (or overwrite) what a run did with one item."""
    try:
        session.connection().execute(
            _statements(session).record_item,
            {
                "run_id": run_id,
                "item_key": record.item_key,
                "item": record.item,
                "status": record.status,
                "article_id": record.article_id,
                "events": record.events,
                "error": record.error,
                "updated_at": now,
            },
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record backfill item {record.item}: {exc}") from exc


def finish_backfill_run(session: Session, run_id: int, *, now: datetime) -> None:
    """Mark a run as having gone through every item (failures included)."""
    session.execute(
        sa.update(models.BackfillRun)
        .where(models.BackfillRun.id == run_id)
        .values(finished_at=now, updated_at=now)
    )


def backfill_item_statuses(session: Session, run_id: int) -> dict[str, BackfillItemStatus]:
    """Item (URL or file) → status, for one run."""
    return {
        item: BackfillItemStatus(status)
        for item, status in session.execute(
            sa.select(models.BackfillItem.item, models.BackfillItem.status).where(
                models.BackfillItem.run_id == run_id
            )
        )
    }


def reextract_candidates(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> list[int]:
    """Ids of stored articles the rules can be run over again: all but duplicates (the
    seeds too: their events are stored, so a rule change reaches them).

    ``since``/``until`` bound the publication time (articles without one are included).
    """
    query = sa.select(models.Article.id).where(models.Article.duplicate_of.is_(None))
    if since is not None:
        query = query.where(
            sa.or_(models.Article.published.is_(None), models.Article.published >= since)
        )
    if until is not None:
        query = query.where(
            sa.or_(models.Article.published.is_(None), models.Article.published < until)
        )
    return list(session.scalars(query.order_by(models.Article.id)))


@dataclass(frozen=True, slots=True)
class LinkedEvent:
    """A stored event as one of its articles reports it (that article's evidence span)."""

    event_id: int
    event: Event
    evidence_start: int
    evidence_end: int
    articles: int  # how many articles report it


def article_events(session: Session, article_id: int) -> list[LinkedEvent]:
    """The events linked to an article, in event order."""
    links = list(
        session.execute(
            sa.select(
                models.EventArticle.event_id,
                models.EventArticle.evidence_start,
                models.EventArticle.evidence_end,
            )
            .where(models.EventArticle.article_id == article_id)
            .order_by(models.EventArticle.event_id)
        )
    )
    if not links:
        return []
    ids = [event_id for event_id, _start, _end in links]
    rows = {
        row.id: row
        for row in session.scalars(sa.select(models.Event).where(models.Event.id.in_(ids)))
    }
    counts: dict[int, int] = {
        event_id: count
        for event_id, count in session.execute(
            sa.select(models.EventArticle.event_id, sa.func.count())
            .where(models.EventArticle.event_id.in_(ids))
            .group_by(models.EventArticle.event_id)
        )
    }
    return [
        LinkedEvent(
            event_id=event_id,
            event=_event_value(rows[event_id]),
            evidence_start=start,
            evidence_end=end,
            articles=counts.get(event_id, 1),
        )
        for event_id, start, end in links
    ]


def apply_event_diff(
    session: Session,
    article_id: int,
    *,
    removed: Sequence[int],
    changed: Sequence[tuple[int, Event]],
    added: Sequence[Event],
    now: datetime,
    settings: DedupSettings | None = None,
    provenance: EventProvenance = EventProvenance.HISTORY,
) -> None:
    """Make an article's events what the current rules say, inside the caller's transaction.

    ``removed``: the article is unlinked; the event is deleted when no article is left,
    else its ``sources_count`` drops by one.  ``changed``: an event only this article
    reports is updated in place (same id); one other articles report too is left to
    them (unlinked as above) and the new version stored as the pipeline stores
    events.  ``added``: stored as the pipeline stores events (merged into the same
    real event per ``settings``).  Events this creates get ``provenance`` (history by
    default: re-extraction revisits old reports, and what it adds is never alerted);
    an event updated in place keeps its own.
    """
    try:
        with session.begin_nested():
            extra: list[Event] = list(added)
            for event_id, event in changed:
                others = session.scalar(
                    sa.select(sa.func.count())
                    .select_from(models.EventArticle)
                    .where(
                        models.EventArticle.event_id == event_id,
                        models.EventArticle.article_id != article_id,
                    )
                )
                if others:
                    _unlink(session, event_id, article_id)
                    extra.append(event)
                    continue
                row = session.get(models.Event, event_id)
                if row is None:
                    raise StoreError(f"cannot update event {event_id}: no such event")
                fresh = _event_row(event, now)
                for column in models.Event.__table__.columns:
                    if column.key not in ("id", "created_at", "sources_count", "provenance"):
                        setattr(row, column.key, getattr(fresh, column.key))
                session.execute(
                    sa.update(models.EventArticle)
                    .where(
                        models.EventArticle.event_id == event_id,
                        models.EventArticle.article_id == article_id,
                    )
                    .values(evidence_start=event.evidence.start, evidence_end=event.evidence.end)
                )
            for event_id in removed:
                _unlink(session, event_id, article_id)
            session.flush()
            if extra:
                store_events(
                    session, article_id, extra, now=now, settings=settings, provenance=provenance
                )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot update the events of article {article_id}: {exc}") from exc


def _unlink(session: Session, event_id: int, article_id: int) -> None:
    session.execute(
        sa.delete(models.EventArticle).where(
            models.EventArticle.event_id == event_id,
            models.EventArticle.article_id == article_id,
        )
    )
    left = session.scalar(
        sa.select(sa.func.count())
        .select_from(models.EventArticle)
        .where(models.EventArticle.event_id == event_id)
    )
    if left:
        session.execute(
            sa.update(models.Event)
            .where(models.Event.id == event_id)
            .values(
                sources_count=sa.case(
                    (models.Event.sources_count > 1, models.Event.sources_count - 1), else_=1
                )
            )
        )
    else:
        session.execute(sa.delete(models.Event).where(models.Event.id == event_id))


# ---------------------------------------------------------------------------
# Webhook outbox: rows are queued in the transaction that stores the event, claimed
# by the delivery worker with a lease, and updated after each attempt.


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """A delivery claimed for one attempt: what the worker needs to send it."""

    id: int
    webhook_id: str
    subscriber: str
    kind: AlertKind
    event_id: int
    payload: str
    attempts: int  # including the one about to be made


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """A delivery as ``service alerts list`` shows it."""

    id: int
    webhook_id: str
    subscriber: str
    kind: AlertKind
    event_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    name: str
    url: str
    disabled_at: datetime | None
    disabled_reason: str | None


def new_webhook_id() -> str:
    """A ``webhook-id``: unique per alert, the same on every attempt of it."""
    return f"msg_{uuid.uuid4().hex}"


def alert_subject(session: Session, event_id: int) -> AlertSubject | None:
    """A stored event with the reports carrying it, oldest report first."""
    row = session.get(models.Event, event_id)
    if row is None:
        return None
    reports = session.execute(
        sa.select(
            models.Article.url,
            models.Article.outlet,
            models.Article.title,
            models.Article.published,
        )
        .join(models.EventArticle, models.EventArticle.article_id == models.Article.id)
        .where(models.EventArticle.event_id == event_id)
        .order_by(models.EventArticle.id)
    )
    return AlertSubject(
        event_id=row.id,
        event=_event_value(row),
        sources_count=row.sources_count,
        sources=tuple(SourceReport(*report) for report in reports),
    )


def disabled_subscribers(session: Session, subscriptions: Sequence[WebhookSettings]) -> set[str]:
    """Names of subscribers disabled (410 Gone) at the URL they are configured with now."""
    urls = {sub.name: sub.url for sub in subscriptions}
    if not urls:
        return set()
    rows = session.execute(
        sa.select(models.Subscription.name, models.Subscription.url).where(
            models.Subscription.name.in_(list(urls)), models.Subscription.disabled_at.is_not(None)
        )
    )
    return {name for name, url in rows if urls.get(name) == url}


def enqueue_deliveries(
    session: Session,
    items: Sequence[tuple[int, AlertKind]],
    subscriptions: Sequence[WebhookSettings],
    *,
    now: datetime,
) -> int:
    """Queue the alerts that ``items`` (event id, what happened) call for; return how many.

    Call it in the transaction that stores the events (the outbox). Per subscriber whose
    filters the event passes: ``event.created`` if it has had no alert for the event
    yet (a new event, or one a new report made pass ``min_sources``); otherwise, for a
    corroboration and a subscriber that opted in, ``event.corroborated`` once per new
    source count. Disabled subscribers get nothing, and neither does anyone for an
    event first found in the seed corpus or in history (``EventProvenance``): it was
    never news, and a later report of it merges into it without an alert.
    """
    if not items or not subscriptions:
        return 0
    disabled = disabled_subscribers(session, subscriptions)
    active = [sub for sub in subscriptions if sub.name not in disabled]
    queued = 0
    try:
        for event_id, kind in items:
            row = session.get(models.Event, event_id)
            if row is not None and not row.provenance.alerts:
                log.debug(
                    "Event already seen: no alert",
                    extra={"event_id": event_id, "provenance": row.provenance.value},
                )
                continue
            subject = alert_subject(session, event_id)
            if subject is None:
                raise StoreError(f"cannot queue alerts: no event with id {event_id}")
            existing: set[tuple[str, AlertKind, int]] = {
                (subscriber, sent_kind, count)
                for subscriber, sent_kind, count in session.execute(
                    sa.select(
                        models.Delivery.subscriber,
                        models.Delivery.kind,
                        models.Delivery.sources_count,
                    ).where(models.Delivery.event_id == event_id)
                )
            }
            alerted = {sub for sub, sent_kind, _ in existing if sent_kind is AlertKind.CREATED}
            for sub in active:
                reason = filters.why_not(sub.filters, subject.event, subject.sources_count)
                if reason is not None:
                    log.debug(
                        "Event filtered out",
                        extra={"subscriber": sub.name, "event_id": event_id, "reason": reason},
                    )
                    continue
                if sub.name not in alerted:
                    alert = AlertKind.CREATED
                elif kind is AlertKind.CORROBORATED and sub.corroborated:
                    alert = AlertKind.CORROBORATED
                    if (sub.name, alert, subject.sources_count) in existing:
                        continue
                else:
                    continue
                session.add(
                    models.Delivery(
                        event_id=event_id,
                        subscriber=sub.name,
                        kind=alert,
                        sources_count=subject.sources_count,
                        payload=payload.build_body(subject, alert, sub.format, now=now),
                        webhook_id=new_webhook_id(),
                        status=DeliveryStatus.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                queued += 1
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot queue alerts: {exc}") from exc
    return queued


def claim_due_deliveries(
    session: Session,
    *,
    now: datetime,
    subscriptions: Sequence[WebhookSettings],
    lease_seconds: float,
    limit: int,
) -> list[DeliveryTarget]:
    """Pending or failed deliveries due at ``now`` for enabled subscribers, claimed.

    As for feeds: claiming counts the attempt and pushes ``next_attempt_at`` by the
    lease in the same transaction, rows are taken ``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, so replicas send each delivery once; an attempt whose process dies is
    made again after the lease, with the same ``webhook-id``.
    """
    disabled = disabled_subscribers(session, subscriptions)
    names = [sub.name for sub in subscriptions if sub.name not in disabled]
    if not names or limit <= 0:
        return []
    query = (
        sa.select(models.Delivery)
        .where(
            models.Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            models.Delivery.next_attempt_at <= now,
            models.Delivery.subscriber.in_(names),
        )
        .order_by(models.Delivery.next_attempt_at, models.Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    try:
        rows = list(session.scalars(query))
        lease = now + timedelta(seconds=lease_seconds)
        for row in rows:
            row.next_attempt_at = lease
            row.attempts += 1
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot claim due deliveries: {exc}") from exc
    return [
        DeliveryTarget(
            id=row.id,
            webhook_id=row.webhook_id,
            subscriber=row.subscriber,
            kind=AlertKind(row.kind),
            event_id=row.event_id,
            payload=row.payload or "",
            attempts=row.attempts,
        )
        for row in rows
    ]


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    status: DeliveryStatus,
    http_status: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
    now: datetime,
) -> None:
    """Write one attempt's outcome to the delivery row.

    One UPDATE and no read before it: on SQLite a transaction that starts with a
    write waits for the lock (busy timeout) instead of failing on an upgrade.
    """
    values: dict[str, Any] = {
        "status": status,
        "last_status": http_status,
        "last_error": error,
        "next_attempt_at": next_attempt_at,
    }
    if status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    try:
        result = session.execute(
            sa.update(models.Delivery).where(models.Delivery.id == delivery_id).values(**values)
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record attempt of delivery {delivery_id}: {exc}") from exc
    if not result.rowcount:  # type: ignore[attr-defined]
        raise StoreError(f"cannot record attempt: no delivery with id {delivery_id}")


def release_delivery(session: Session, delivery_id: int, *, due: datetime) -> None:
    """Give back a claimed delivery that will not be attempted now (the daemon is stopping)."""
    session.execute(
        sa.update(models.Delivery)
        .where(models.Delivery.id == delivery_id)
        .values(next_attempt_at=due, attempts=models.Delivery.attempts - 1)
    )


def disable_subscription(
    session: Session, name: str, *, url: str, reason: str, now: datetime
) -> None:
    """Stop sending to ``name`` at ``url`` (it answered 410 Gone)."""
    row = session.scalar(sa.select(models.Subscription).where(models.Subscription.name == name))
    if row is None:
        row = models.Subscription(name=name, url=url, created_at=now)
        session.add(row)
    row.url = url
    row.disabled_at = now
    row.disabled_reason = reason
    session.flush()


def enable_subscription(session: Session, name: str) -> bool:
    """Send to ``name`` again; False if it was not disabled."""
    row = session.scalar(sa.select(models.Subscription).where(models.Subscription.name == name))
    if row is None or row.disabled_at is None:
        return False
    row.disabled_at = None
    row.disabled_reason = None
    session.flush()
    return True


def list_subscriptions(session: Session) -> list[SubscriptionState]:
    return [
        SubscriptionState(row.name, row.url, row.disabled_at, row.disabled_reason)
        for row in session.scalars(
            sa.select(models.Subscription).order_by(models.Subscription.name)
        )
    ]


def list_deliveries(
    session: Session, *, failed_only: bool = False, limit: int | None = None
) -> list[DeliveryState]:
    """Deliveries newest first; ``failed_only``: failed (retrying) and dead ones."""
    query = sa.select(models.Delivery).order_by(models.Delivery.id.desc())
    if failed_only:
        query = query.where(
            models.Delivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.DEAD])
        )
    if limit is not None:
        query = query.limit(limit)
    return [
        DeliveryState(
            id=row.id,
            webhook_id=row.webhook_id,
            subscriber=row.subscriber,
            kind=AlertKind(row.kind),
            event_id=row.event_id,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status=row.last_status,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )
        for row in session.scalars(query)
    ]


def replay_deliveries(
    session: Session,
    *,
    now: datetime,
    delivery_id: int | None = None,
    since: datetime | None = None,
) -> int:
    """Queue deliveries again (same body, same ``webhook-id``); return how many.

    One delivery by id, or every one created at or after ``since``; pending ones are
    left as they are. Attempts start from zero, due at once.
    """
    query = sa.update(models.Delivery).where(models.Delivery.status != DeliveryStatus.PENDING)
    if delivery_id is not None:
        query = query.where(models.Delivery.id == delivery_id)
    if since is not None:
        query = query.where(models.Delivery.created_at >= since)
    try:
        result = session.execute(
            query.values(
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                delivered_at=None,
            )
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot replay deliveries: {exc}") from exc
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delivery_exists(session: Session, delivery_id: int) -> bool:
    return session.get(models.Delivery, delivery_id) is not None
