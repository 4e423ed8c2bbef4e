"""Storage: engines, migrations, and the repository functions over ``models.py``.

The only module that maps between rows and the service's frozen values. Callers
hold a :class:`~sqlalchemy.orm.Session` from :func:`session_scope` (one
transaction, committed on success) and pass it in; repository functions flush
but never commit, so a caller can group several of them in one transaction.
Database errors come out as :class:`~service.errors.StoreError`.

Time is a parameter (``now``): only ``clock.py`` reads the wall clock.
"""

from __future__ import annotations

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
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service import corroboration, models
from service.config import DedupSettings, FeedSettings
from service.dedup import Signature
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
    and drop tables, which must not cascade). pysqlite's own transaction handling
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


# ---------------------------------------------------------------------------
# Feeds


def sync_feeds(session: Session, feeds: Sequence[FeedSettings]) -> tuple[int, int]:
    """Insert configured feeds and update changed ones; return (added, updated).

    Feeds no longer configured keep their rows (and history). A changed URL drops
    the conditional-GET validators, which belonged to the old URL.
    """
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
            states.append(_feed_state(row, configured=True, settings=feed))
    for name in sorted(rows):
        states.append(_feed_state(rows[name], configured=False, settings=None))
    return states


def _feed_state(row: models.Feed, *, configured: bool, settings: FeedSettings | None) -> FeedState:
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
    )


# ---------------------------------------------------------------------------
# Articles


def add_article(session: Session, article: NewArticle) -> int:
    """Insert an article and return its id."""
    row = models.Article(
        url=article.url,
        canonical_url=article.canonical_url,
        outlet=article.outlet,
        title=article.title,
        published=article.published,
        published_is_estimate=article.published_is_estimate,
        fetched=article.fetched,
        text=article.text,
        content_hash=article.content_hash,
        is_seed=article.is_seed,
        origin_kind=article.origin_kind,
        guid=article.guid,
        feed_id=article.feed_id,
        alternate_url=article.alternate_url,
        duplicate_of=article.duplicate_of,
        similarity=article.similarity,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot store article {article.url or article.title!r}: {exc}") from exc
    return row.id


def find_seed_by_hash(session: Session, content_hash: str) -> int | None:
    """The id of a seed article with this content hash, if one is stored."""
    return session.scalar(
        sa.select(models.Article.id)
        .where(models.Article.is_seed.is_(True), models.Article.content_hash == content_hash)
        .limit(1)
    )


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
    """An article with one of the canonical ``urls`` (or this ``raw_url``) or this text.

    A match that is itself a duplicate resolves to the article it duplicates.
    """
    target = sa.func.coalesce(models.Article.duplicate_of, models.Article.id)
    if raw_url is not None:
        found = session.scalar(sa.select(target).where(models.Article.url == raw_url))
        if found is not None:
            return ExactMatch(found, "url", same_url=True)
    wanted = [url for url in urls if url]
    if wanted:
        found = session.scalar(
            sa.select(target)
            .where(
                sa.or_(
                    models.Article.canonical_url.in_(wanted),
                    models.Article.alternate_url.in_(wanted),
                )
            )
            .order_by(models.Article.id)
            .limit(1)
        )
        if found is not None:
            return ExactMatch(found, "url", same_url=False)
    found = session.scalar(
        sa.select(target)
        .where(models.Article.content_hash == content_hash)
        .order_by(models.Article.id)
        .limit(1)
    )
    if found is not None:
        return ExactMatch(found, "text", same_url=False)
    return None


def add_signature(session: Session, article_id: int, signature: Signature) -> None:
    num_perm = len(signature.lead) // 4
    try:
        with session.begin_nested():
            session.add(
                models.ArticleSignature(
                    article_id=article_id,
                    num_perm=num_perm,
                    words=signature.words,
                    shingles=signature.shingles,
                    lead=signature.lead,
                    whole=signature.whole,
                )
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
        sa.delete(models.ArticleSignature).where(
            models.ArticleSignature.article_id == article_id
        )
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
        session.scalars(
            sa.select(models.ArticleSignature.article_id)
            .where(models.ArticleSignature.article_id > after_id)
            .order_by(models.ArticleSignature.article_id)
        )
    )


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
) -> list[EventWrite]:
    """Store ``events`` found in article ``article_id``, all or none.

    Each event either corroborates a stored event that is the same real event
    (``service.corroboration``: the article is linked, ``sources_count`` goes up and
    the event is enriched; ``created=False``) or becomes a new row (``created=True``).
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
                    row = _event_row(event, now)
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
        )
        for row in rows
    ]


def count_events(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(models.Event)) or 0


def _event_row(event: Event, now: datetime) -> models.Event:
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
        evidence=Evidence(
            text=row.evidence_text, start=row.evidence_start, end=row.evidence_end
        ),
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


@dataclass(frozen=True, slots=True)
class PollRecord:
    """The outcome of one poll, written back to the feed row."""

    polled: datetime
    status: int | None
    error: str | None
    next_due: datetime
    consecutive_errors: int
    # Validators are replaced only when the poll handled every new entry, so that
    # entries left over by a per-poll cap are seen again on the next (full) GET.
    update_validators: bool = False
    etag: str | None = None
    last_modified: str | None = None
    new_entries: int = 0
    new_events: int = 0


def _poll_target(row: models.Feed) -> PollTarget:
    return PollTarget(
        id=row.id,
        name=row.name,
        url=row.url,
        outlet=row.outlet,
        interval_seconds=row.interval_seconds,
        etag=row.etag,
        last_modified=row.last_modified,
        consecutive_errors=row.consecutive_errors,
    )


def claim_due_feeds(
    session: Session,
    *,
    now: datetime,
    names: Sequence[str],
    lease_seconds: float,
    limit: int | None = None,
) -> list[PollTarget]:
    """Feeds among ``names`` due at ``now`` (never polled first), claimed for this poll.

    Claiming pushes ``next_due`` by ``lease_seconds`` in the same transaction, and on
    PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED``: replicas sharing one
    database each get different feeds, and a poll that dies is retried after the
    lease. (SQLite has no row locks; one daemon per SQLite file.)
    """
    if not names:
        return []
    query = (
        sa.select(models.Feed)
        .where(
            models.Feed.name.in_(list(names)),
            sa.or_(models.Feed.next_due.is_(None), models.Feed.next_due <= now),
        )
        .order_by(
            sa.case((models.Feed.next_due.is_(None), 0), else_=1),
            models.Feed.next_due,
            models.Feed.id,
        )
        .with_for_update(skip_locked=True)
    )
    if limit is not None:
        query = query.limit(limit)
    try:
        rows = list(session.scalars(query))
        lease = now + timedelta(seconds=lease_seconds)
        for row in rows:
            row.next_due = lease
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot claim due feeds: {exc}") from exc
    return [_poll_target(row) for row in rows]


def poll_targets(session: Session, names: Sequence[str]) -> list[PollTarget]:
    """The feeds named, due or not, in the order given (``service run --once``)."""
    rows = {row.name: row for row in session.scalars(sa.select(models.Feed))}
    return [_poll_target(rows[name]) for name in names if name in rows]


def known_entries(
    session: Session, *, feed_id: int, guids: Sequence[str], urls: Sequence[str]
) -> tuple[set[str], set[str]]:
    """Which of ``guids`` (of this feed) and ``urls`` (of any article) are stored."""
    known_guids: set[str] = set()
    known_urls: set[str] = set()
    if guids:
        known_guids.update(
            guid
            for guid in session.scalars(
                sa.select(models.Article.guid).where(
                    models.Article.feed_id == feed_id, models.Article.guid.in_(list(guids))
                )
            )
            if guid is not None
        )
    if urls:
        wanted = list(urls)
        for url, canonical in session.execute(
            sa.select(models.Article.url, models.Article.canonical_url).where(
                sa.or_(models.Article.url.in_(wanted), models.Article.canonical_url.in_(wanted))
            )
        ):
            known_urls.update(u for u in (url, canonical) if u is not None and u in urls)
    return known_guids, known_urls


def record_poll(session: Session, feed_id: int, record: PollRecord) -> None:
    """Write one poll's outcome to the feed row."""
    row = session.get(models.Feed, feed_id)
    if row is None:
        raise StoreError(f"cannot record poll: no feed with id {feed_id}")
    row.last_polled = record.polled
    row.last_status = record.status
    row.last_error = record.error
    row.next_due = record.next_due
    row.consecutive_errors = record.consecutive_errors
    if record.update_validators:
        row.etag = record.etag
        row.last_modified = record.last_modified
    row.entries_seen += record.new_entries
    row.events_count += record.new_events
    try:
        session.flush()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record poll of feed {feed_id}: {exc}") from exc


def release_claim(session: Session, feed_id: int, *, due: datetime) -> None:
    """Give back a claimed feed that will not be polled now (the daemon is stopping)."""
    try:
        session.execute(
            sa.update(models.Feed).where(models.Feed.id == feed_id).values(next_due=due)
        )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot release feed {feed_id}: {exc}") from exc
