"""The one code path from a feed to stored events; the only module that knows the stage order.

    claim due feed ─► fetch feed (conditional GET) ─► parse (boxed) ─► new entries
      (exact guid/URL dedup) ─► fetch article page ─► extract text (boxed)
      ─► fall back to the entry's own content/summary ─► ``ingest``: seen before?
      (canonical URL, text hash, near-duplicate: ``service.dedup``) ─► rules ─► store
      the article (or the duplicate) and its events, merged into the events they
      corroborate, in one transaction ─► record the poll (validators, status, backoff)

Failure policy, per feed (reader's ``_update``): a ``FeedError`` is logged, recorded on
the feed (``last_error``, ``consecutive_errors``, ``next_due`` with backoff) and the
loop moves on; anything else is logged CRITICAL and recorded the same way, and never
reaches the scheduler.  One INFO line per poll, DEBUG per entry, never bodies.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy.orm import Session, sessionmaker

from service import dedup, metrics, store
from service.config import DedupSettings, HttpSettings, Settings
from service.enums import AlertKind, ArticleOrigin, EntryStatus, EventProvenance
from service.errors import (
    AlreadyStoredError,
    ExtractError,
    FeedError,
    FetchError,
    IngestError,
    StoreError,
)
from service.events import Event
from service.extract import ExtractedArticle
from service.fetch import (
    HTML_ACCEPT,
    BackoffPolicy,
    Fetcher,
    FetchLimits,
    FetchResult,
    IPNetwork,
    backoff_seconds,
    next_due,
)
from service.hashing import content_hash
from service.outage import OutageLog
from service.parse import EntryIdSource, ParsedEntry, ParsedFeed
from service.rules import Document
from service.rules.language import english_share, looks_english
from service.sandbox import Sandbox

log = logging.getLogger(__name__)


class Rules(Protocol):
    """What the pipeline needs of the rule set (``service.rules.RuleSet``)."""

    def extract(self, doc: Document) -> list[Event]: ...


class PollStatus(enum.StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    # The feed was read, but some entries taken by the poll could not be stored (their
    # page failed and they carry no text, or the store refused them): each is retried
    # by a later poll after a backoff of its own, until stored or given up.
    PARTIAL = "partial"
    FAILED = "failed"  # a FeedError: recorded, backoff
    CRASHED = "crashed"  # an unexpected exception: logged critical, recorded, backoff


@dataclass(frozen=True, slots=True)
class PollLimits:
    """Per-poll work caps, the retry schedule of entries, and the boxes around
    hostile-input stages.

    A poll reads every entry of the feed (up to ``max_feed_entries``), skips those
    stored before and those waiting for a retry, and takes the rest in the feed's
    order, new entries first, then entries due for a retry, up to ``max_entries``
    entries and ``max_articles`` article pages; what is left is taken by the next
    polls (the feed's validators are kept until nothing is left, so they read it in
    full).
    """

    max_entries: int = 50  # entries taken (stored or tried) per poll
    max_articles: int = 20  # article pages fetched per poll
    max_feed_entries: int = 5000  # entries read from one feed document
    sandbox_timeout: float = 30.0  # seconds for one parse or extraction
    sandbox_memory_bytes: int = 1024 * 1024 * 1024
    future_tolerance: timedelta = timedelta(days=1)  # later "published" dates are not trusted
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    # An entry that could not be stored is tried again after 15 to 30 minutes, then
    # twice as long each time up to 12 hours, and given up after this many attempts
    # (about two days).
    entry_backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base=1800.0, ceiling=12 * 3600.0)
    )
    entry_max_attempts: int = 8


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed_name: str
    feed_url: str
    status: PollStatus
    http_status: int | None
    new_entries: int
    articles: int  # articles stored
    fallbacks: int  # of which stored from the entry's own text
    events: int
    duplicates: int  # reports seen before (stored as duplicates, no events)
    error: str | None
    next_due: datetime
    duration_ms: int
    failed_entries: int = 0  # entries taken but not stored: retried later, or given up
    pending_entries: int = 0  # entries left for later polls by the caps
    # The oddities of a poll that read its feed (loose parsing, a charset
    # contradiction, unreadable entries), also recorded on the feed as its
    # last_error "warning: ...".
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A report on its way in, whichever way it came (feed entry, backfill)."""

    text: str
    title: str | None
    url: str | None
    outlet: str | None
    published: datetime | None
    published_is_estimate: bool  # no trustworthy date: relative dates resolve against now
    origin_kind: ArticleOrigin
    guid: str | None = None
    feed_id: int | None = None


class IngestStatus(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # seen before: stored as a duplicate (or not at all), no events
    EMPTY = "empty"  # no text
    NOT_STORED = "not_stored"  # its URL or feed entry was stored meanwhile (nothing lost)
    FAILED = "failed"  # the store failed (``error``): nothing stored


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one report.

    DUPLICATE: ``duplicate_of`` is the stored original and ``similarity`` how alike
    the texts are (1.0 for the same URL or text); ``article_id`` is the duplicate's
    own row, None when the very URL was already stored.  ``writes`` tells, per
    event, whether it created an event or corroborated a stored one.
    """

    status: IngestStatus
    article_id: int | None = None
    events: int = 0
    alerts: int = 0  # webhook deliveries queued with the events
    duplicate_of: int | None = None
    similarity: float | None = None
    writes: tuple[store.EventWrite, ...] = ()
    error: str | None = None  # FAILED: what the store said

    @property
    def stored(self) -> bool:
        return self.status is IngestStatus.STORED


@dataclass(frozen=True, slots=True)
class _EntryResult:
    stored: bool
    fallback: bool = False
    events: int = 0
    duplicate: bool = False
    error: str | None = None  # not stored: why (the entry is retried later)
    retry: bool = True  # False: trying again cannot help (no link and no text)


@dataclass(slots=True)
class _Taken:
    """What one poll did with its feed's entries."""

    waiting: int = 0  # listed entries waiting for a retry (not due)
    handled: int = 0  # entries taken: stored, recognised, or failed
    articles: int = 0
    fallbacks: int = 0
    events: int = 0
    duplicates: int = 0
    failed: int = 0
    failed_listed: int = 0  # of which listed by the feed
    pending: int = 0  # left for later polls by the caps (or a stop)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Work:
    """The entries a poll may take, in order, and how many wait for a later retry."""

    queue: list[tuple[ParsedEntry, store.EntryFailureState | None]]
    waiting: int


@dataclass(frozen=True, slots=True)
class _Seen:
    """A report recognised as seen before."""

    original: int
    similarity: float
    reason: str  # "url", "text" or "near"
    same_url: bool = False


def feed_warning(feed: ParsedFeed) -> str | None:
    """What a user should see about a feed that parsed: the parser's warning (loose
    parsing, a charset contradiction, a JSON Feed's content type) and unreadable entries."""
    parts = [feed.warning] if feed.warning else []
    if feed.skipped_entries:
        parts.append(f"{feed.skipped_entries} entries could not be read")
    return "; ".join(parts)[:1000] or None


def fetch_limits(http: HttpSettings, allowed_networks: tuple[IPNetwork, ...] = ()) -> FetchLimits:
    """The fetch guards from the ``[http]`` settings."""
    return FetchLimits(
        connect_timeout=http.connect_timeout_seconds,
        read_timeout=http.timeout_seconds,
        total_timeout=http.timeout_seconds,
        max_bytes=http.max_body_bytes,
        max_redirects=http.max_redirects,
        per_host_concurrency=http.per_host_concurrency,
        allow_private_networks=http.allow_private_networks,
        allowed_networks=allowed_networks,
        user_agent=http.user_agent,
    )


def build_client() -> httpx.Client:
    """The one HTTP client: redirects are followed by the fetcher, never by httpx.

    ``trust_env=False``: a proxy from the environment would bypass the address pinning.
    """
    return httpx.Client(follow_redirects=False, trust_env=False)


def _short_id(value: str, limit: int = 200) -> str:
    """A guid or URL cut for log lines (a tracking URL may be kilobytes long)."""
    return value if len(value) <= limit else value[:limit] + "..."


def _entry_of(failure: store.EntryFailureState) -> ParsedEntry:
    """An entry the feed no longer lists, as its failure row keeps it (no text)."""
    return ParsedEntry(
        entry_id=failure.entry_id,
        id_source=EntryIdSource.GUID,
        link=failure.url,
        title=failure.title,
        published=failure.published,
        published_raw=None,
        summary=None,
        content=None,
    )


def _entries_error(failed: int, errors: Sequence[str]) -> str:
    """The poll's error when entries were not stored: how many, and the first reason."""
    noun = "entry" if failed == 1 else "entries"
    return f"{failed} {noun} not stored: {errors[0]}"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, FetchError):
        return f"{exc.kind}: {str(exc).removeprefix(f'{exc.url}: ')}"
    if isinstance(exc, FeedError):
        return f"parse: {str(exc).removeprefix(f'{exc.url}: ')}"
    return f"internal: {type(exc).__name__}: {exc}"


class Pipeline:
    """Polls feeds through every stage; thread-safe; ``close()`` when done."""

    def __init__(
        self,
        settings: Settings,
        *,
        session_factory: sessionmaker[Session],
        rules: Rules,
        client: httpx.Client | None = None,
        fetcher: Fetcher | None = None,
        sandbox: Sandbox | None = None,
        limits: PollLimits | None = None,
        allowed_networks: tuple[IPNetwork, ...] = (),
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.rules = rules
        self.limits = limits or PollLimits()
        self._own_client = client is None and fetcher is None
        if fetcher is None:
            fetcher = Fetcher(
                client or build_client(), fetch_limits(settings.http, allowed_networks)
            )
        self.fetcher = fetcher
        self._own_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox(
            workers=settings.scheduler.workers,
            timeout=self.limits.sandbox_timeout,
            memory_bytes=self.limits.sandbox_memory_bytes,
        )
        self._rand = rand
        self._monotonic = monotonic
        self._stop = threading.Event()
        # SQLite: one writer at a time, and a deferred transaction that has read cannot
        # wait for the lock (SQLITE_BUSY at once), so this process's transactions take
        # turns.  PostgreSQL needs no such thing.
        bind = session_factory.kw.get("bind")
        dialect = getattr(getattr(bind, "dialect", None), "name", "")
        self._db_lock: threading.Lock | None = threading.Lock() if dialect == "sqlite" else None
        self._pool = ThreadPoolExecutor(
            max_workers=settings.scheduler.workers, thread_name_prefix="poll"
        )
        # Check-and-insert of articles: one at a time in this process (and across
        # replicas, store.lock_for_dedup); the index is filled lazily on first use.
        self.index = dedup.DedupIndex(settings.dedup)
        self._dedup_lock = threading.Lock()
        self._index_ready = False
        # Called after a transaction that queued webhook deliveries (the daemon wakes
        # its delivery worker: an alert need not wait for the next delivery tick).
        self.on_alerts_queued: Callable[[], None] | None = None
        # When the last poll that read its feed (ok, partial, not_modified) finished
        # (``/healthz``).
        self.last_success: datetime | None = None
        # Who this process is on the feeds it claims; the claims of polls in progress
        # are renewed every ``heartbeat_seconds``, and a claim not renewed for three
        # times that is taken over (its process died).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-255:]
        self.heartbeat_seconds = settings.scheduler.heartbeat_seconds
        self.stale_seconds = 3 * self.heartbeat_seconds
        # A database outage is logged once, then reminded, then its end (the daemon's
        # deliverer reports to the same one).
        self.database_outage = OutageLog(monotonic=monotonic)

    # -- lifecycle ----------------------------------------------------------------

    @property
    def db_lock(self) -> threading.Lock | None:
        """The lock this process's SQLite transactions take turns on (None: PostgreSQL)."""
        return self._db_lock

    def _transaction(self) -> AbstractContextManager[Session]:
        return store.locked_scope(self.session_factory, self._db_lock)

    def sync_feeds(self) -> None:
        """Make the feeds table match the configured feeds (new rows, changed URLs)."""
        with self._transaction() as session:
            added, updated = store.sync_feeds(session, self.settings.feeds)
        log.info("Feeds synchronised", extra={"added": added, "updated": updated})

    def request_stop(self) -> None:
        """Finish the entry in hand, record the poll, start nothing new."""
        self._stop.set()

    def transaction(self) -> AbstractContextManager[Session]:
        """One transaction that takes turns with the pipeline's own (on SQLite)."""
        return self._transaction()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._own_sandbox:
            self.sandbox.close()
        if self._own_client:
            self.fetcher.client.close()

    # -- entry points -------------------------------------------------------------

    def poll_due(self, *, now: datetime) -> list[PollOutcome]:
        """Poll every configured feed due at ``now``, ``scheduler.workers`` at a time.

        Feeds are claimed as workers free up, never more than there are free workers:
        a replica holds leases only on the feeds it is polling, so the others share
        the rest, and a lease has to cover one poll, not a whole backlog (claiming
        every due feed at once let leases run out before their turn came, and another
        replica polled them too).  Claim times advance with the monotonic clock.

        While polls run, their claims are renewed every ``heartbeat_seconds``; a feed
        whose claim has not been renewed for three times that is claimed even though
        its lease has not run out: the process that claimed it died.
        """
        if self.stopping:
            return []
        names = [feed.name for feed in self.settings.feeds]
        started = self._monotonic()

        def at() -> datetime:
            return now + timedelta(seconds=self._monotonic() - started)

        workers = self.settings.scheduler.workers
        running: dict[Future[PollOutcome | None], store.PollTarget] = {}
        outcomes: list[PollOutcome] = []
        last_beat = started
        while not self.stopping:
            free = workers - len(running)
            targets: list[store.PollTarget] = []
            claimed_at = at()
            if free > 0:
                try:
                    with self._transaction() as session:
                        targets = store.claim_due_feeds(
                            session,
                            now=claimed_at,
                            names=names,
                            lease_seconds=self.settings.scheduler.lease_seconds,
                            limit=free,
                            owner=self.owner,
                            stale_seconds=self.stale_seconds,
                        )
                    self.database_outage.succeeded()
                except IngestError as exc:
                    if not self.database_outage.failed(exc, during="claim due feeds"):
                        log.critical("Cannot claim due feeds", exc_info=True)
            for target in targets:
                if target.taken_over_from is not None:
                    log.warning(
                        "Feed claim taken over: the process polling it stopped renewing it",
                        extra={"feed_url": target.url, "previous_owner": target.taken_over_from},
                    )
                running[self._pool.submit(self._poll_guarded, target, claimed_at)] = target
            if not running:
                break
            done, _ = wait(running, timeout=self.heartbeat_seconds, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                outcome = future.result()
                if outcome is not None:
                    outcomes.append(outcome)
            last_beat = self._heartbeat(running, at, last_beat)
        while running:  # stopping: the polls in hand finish, their claims kept alive
            done, _ = wait(running, timeout=self.heartbeat_seconds, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                outcome = future.result()
                if outcome is not None:
                    outcomes.append(outcome)
            last_beat = self._heartbeat(running, at, last_beat)
        return outcomes

    def _heartbeat(
        self,
        running: dict[Future[PollOutcome | None], store.PollTarget],
        at: Callable[[], datetime],
        last_beat: float,
    ) -> float:
        """Renew the claims of the polls in progress if a heartbeat is due; return
        when the last one was sent."""
        moment = self._monotonic()
        if not running or moment - last_beat < self.heartbeat_seconds:
            return last_beat
        try:
            with self._transaction() as session:
                store.heartbeat(
                    session, [t.id for t in running.values()], owner=self.owner, now=at()
                )
        except IngestError as exc:
            if not self.database_outage.failed(exc, during="renew feed claims"):
                log.warning("Cannot renew feed claims", extra={"error": str(exc).splitlines()[0]})
        else:
            self.database_outage.succeeded()
        return moment

    def poll_all(self, *, now: datetime) -> list[PollOutcome]:
        """Poll every configured feed once, due or not (``service run --once``)."""
        names = [feed.name for feed in self.settings.feeds]
        with self._transaction() as session:
            targets = store.poll_targets(session, names)
        return self._poll_many(targets, now)

    def _poll_many(self, targets: Sequence[store.PollTarget], now: datetime) -> list[PollOutcome]:
        futures = [self._pool.submit(self._poll_guarded, target, now) for target in targets]
        outcomes = [future.result() for future in futures]
        return [outcome for outcome in outcomes if outcome is not None]

    def _poll_guarded(self, target: store.PollTarget, now: datetime) -> PollOutcome | None:
        try:
            if self.stopping:
                # Not started before the stop request: due again as soon as we restart.
                with self._transaction() as session:
                    store.release_claim(
                        session, target.id, due=now, claimed_until=target.claimed_until
                    )
                return None
            return self.poll_feed(target, now=now)
        except Exception as exc:  # recording failed too (database down): keep the daemon alive
            if not self.database_outage.failed(exc, during="record a poll"):
                log.critical(
                    "Poll could not be recorded", exc_info=True, extra={"feed_url": target.url}
                )
            return None

    # -- one feed ---------------------------------------------------------------------

    def poll_feed(self, target: store.PollTarget, *, now: datetime) -> PollOutcome:
        """Poll one feed through every stage and record the outcome on its row."""
        started = self._monotonic()
        try:
            outcome = self._poll(target, now, started)
        except FeedError as exc:
            metrics.FETCH_ERRORS.labels(exc.kind if isinstance(exc, FetchError) else "parse").inc()
            outcome = self._record_failure(target, now, started, exc, PollStatus.FAILED)
        except Exception as exc:
            if not self.database_outage.failed(exc, during="poll a feed"):
                log.critical("Poll crashed", exc_info=True, extra={"feed_url": target.url})
            metrics.FETCH_ERRORS.labels("internal").inc()
            outcome = self._record_failure(target, now, started, exc, PollStatus.CRASHED)
        metrics.POLLS.labels(outcome.status.value).inc()
        metrics.POLL_SECONDS.observe(outcome.duration_ms / 1000)
        if outcome.status in (PollStatus.OK, PollStatus.PARTIAL, PollStatus.NOT_MODIFIED):
            finished = now + timedelta(milliseconds=outcome.duration_ms)
            self.last_success = finished
            metrics.LAST_SUCCESS.set(finished.timestamp())
        log.info(
            "Feed polled",
            extra={
                "feed_url": target.url,
                "status": outcome.http_status if outcome.http_status is not None else "-",
                "duration_ms": outcome.duration_ms,
                "feed": target.name,
                "outcome": outcome.status.value,
                "new_entries": outcome.new_entries,
                "articles": outcome.articles,
                "duplicates": outcome.duplicates,
                "fallbacks": outcome.fallbacks,
                "events": outcome.events,
                "failed_entries": outcome.failed_entries,
                "pending_entries": outcome.pending_entries,
                "error": outcome.error or "-",
                **({"warning": outcome.warning} if outcome.warning else {}),
            },
        )
        return outcome

    def _poll(self, target: store.PollTarget, now: datetime, started: float) -> PollOutcome:
        result = self.fetcher.fetch(
            target.url, etag=target.etag, last_modified=target.last_modified
        )
        healthy_due = self._next_due(target, now, errors=0, retry_after=None)
        if result.not_modified:
            # Nothing new; entries the feed no longer lists may be due for a retry.
            taken = self._take(target, (), now)
            return self._healthy_poll(
                target,
                result,
                now,
                started,
                healthy_due,
                taken,
                PollStatus.NOT_MODIFIED,
                update_validators=True,
            )

        feed: ParsedFeed = self.sandbox.parse_feed(
            result.body,
            target.url,
            headers=result.headers,
            max_entries=self.limits.max_feed_entries,
        )
        warning = feed_warning(feed)
        if warning:
            log.warning(
                "Feed read with a warning; usable parts kept",
                extra={
                    "feed_url": target.url,
                    "reason": feed.warning or "-",
                    "skipped_entries": feed.skipped_entries,
                },
            )
        if feed.capped_entries:
            log.warning(
                "Feed lists more entries than are read; the last ones are never seen",
                extra={
                    "feed_url": target.url,
                    "read": self.limits.max_feed_entries,
                    "not_read": feed.capped_entries,
                },
            )
        taken = self._take(target, feed.entries, now)
        # Entries left over, or listed and waiting for a retry: keep the old validators
        # so that the next poll is a full GET that sees them again.
        complete = (
            taken.pending == 0
            and taken.waiting == 0
            and taken.failed_listed == 0
            and not feed.capped_entries
        )
        return self._healthy_poll(
            target,
            result,
            now,
            started,
            healthy_due,
            taken,
            PollStatus.OK,
            # So too with a warning: a 304 would clear it while the feed still has it.
            update_validators=complete and not warning,
            warning=warning,
        )

    def _healthy_poll(
        self,
        target: store.PollTarget,
        result: FetchResult,
        now: datetime,
        started: float,
        healthy_due: datetime,
        taken: _Taken,
        status: PollStatus,
        *,
        update_validators: bool,
        warning: str | None = None,
    ) -> PollOutcome:
        """Record a poll that reached the feed (200 or 304) and its outcome: ``status``,
        or partial when an entry could not be stored."""
        self._record(
            target,
            store.PollRecord(
                polled=now,
                status=result.status,
                # The feed's own oddities, shown with the feed (``service feeds``) until a
                # poll without them; its entries' failures are not the feed's error: they
                # are in entry_failures (``service feeds``: Not stored; ``service articles
                # --failed``).
                error=f"warning: {warning}" if warning else None,
                next_due=healthy_due,
                consecutive_errors=0,
                update_validators=update_validators,
                etag=result.etag,
                last_modified=result.last_modified,
                new_entries=taken.handled - taken.failed,
                new_events=taken.events,
            ),
        )
        return self._taken_outcome(
            target,
            PollStatus.PARTIAL if taken.failed else status,
            result.status,
            started,
            healthy_due,
            taken,
            warning=warning,
        )

    def _take(
        self, target: store.PollTarget, entries: Sequence[ParsedEntry], now: datetime
    ) -> _Taken:
        """Store the entries this poll may take (``_work``), within the per-poll caps."""
        work = self._work(target, entries, now)
        listed = {e.entry_id for e in entries}
        taken = _Taken(waiting=work.waiting)
        pages = 0
        for entry, failure in work.queue:
            if self.stopping or taken.handled >= self.limits.max_entries:
                break
            if entry.link and pages >= self.limits.max_articles:
                break
            taken.handled += 1
            pages += bool(entry.link)
            done = self._process_entry(target, entry, now, failure)
            if done.error is not None:
                taken.failed += 1
                taken.failed_listed += entry.entry_id in listed
                taken.errors.append(done.error)
                self._entry_failed(target, entry, failure, done, now)
                continue
            taken.articles += done.stored
            taken.fallbacks += done.fallback
            taken.events += done.events
            taken.duplicates += done.duplicate
        taken.pending = len(work.queue) - taken.handled
        return taken

    def _taken_outcome(
        self,
        target: store.PollTarget,
        status: PollStatus,
        http_status: int | None,
        started: float,
        due: datetime,
        taken: _Taken,
        warning: str | None = None,
    ) -> PollOutcome:
        return self._outcome(
            target,
            status,
            http_status,
            started,
            due,
            new_entries=taken.handled,
            articles=taken.articles,
            fallbacks=taken.fallbacks,
            events=taken.events,
            duplicates=taken.duplicates,
            error=_entries_error(taken.failed, taken.errors) if taken.failed else None,
            failed_entries=taken.failed,
            pending_entries=taken.pending,
            warning=warning,
        )

    def _work(
        self, target: store.PollTarget, entries: Sequence[ParsedEntry], now: datetime
    ) -> _Work:
        """The entries this poll may take, in order: the feed's entries never tried, in
        the feed's order; then those whose retry is due, the feed's first, then those
        the feed no longer lists (retried from their stored URL).  Not those stored
        before, waiting for their retry, or given up.  Failures of entries stored
        meanwhile (by another feed, say) are forgotten."""
        listed = {e.entry_id for e in entries}
        with self._transaction() as session:
            failures = store.entry_failures(session, target.id, list(listed))
            unlisted = [
                f for f in store.retrying_entries(session, target.id) if f.entry_id not in listed
            ]
            failures.update((f.entry_id, f) for f in unlisted)
            candidates = [*entries, *(_entry_of(f) for f in unlisted)]
            known_guids, known_urls = store.known_entries(
                session,
                feed_id=target.id,
                guids=[e.entry_id for e in candidates],
                urls=[e.link for e in candidates if e.link],
            )

            def known(entry: ParsedEntry) -> bool:
                return entry.entry_id in known_guids or bool(
                    entry.link and entry.link in known_urls
                )

            settled = [e.entry_id for e in candidates if e.entry_id in failures and known(e)]
            if settled:
                store.clear_entry_failures(session, target.id, settled)
        fresh: list[tuple[ParsedEntry, store.EntryFailureState | None]] = []
        retries: list[tuple[ParsedEntry, store.EntryFailureState | None]] = []
        waiting = 0
        seen_urls: set[str] = set()
        for entry in candidates:
            if known(entry):
                if entry.entry_id in listed:
                    metrics.DUPLICATES.labels("entry").inc()
                continue
            if entry.link:
                if entry.link in seen_urls:
                    continue
                seen_urls.add(entry.link)
            failure = failures.get(entry.entry_id)
            if failure is None:
                fresh.append((entry, None))
            elif failure.status is EntryStatus.RETRYING:
                if failure.next_attempt_at is not None and failure.next_attempt_at <= now:
                    retries.append((entry, failure))
                elif entry.entry_id in listed:
                    waiting += 1  # the next polls must read the feed in full to retry it
        return _Work(queue=fresh + retries, waiting=waiting)

    def _entry_failed(
        self,
        target: store.PollTarget,
        entry: ParsedEntry,
        failure: store.EntryFailureState | None,
        result: _EntryResult,
        now: datetime,
    ) -> None:
        """Record that an entry was not stored: when it is tried again, or given up."""
        attempts = (failure.attempts if failure is not None else 0) + 1
        policy = self.limits.entry_backoff
        retry_at: datetime | None = None
        if result.retry and attempts < self.limits.entry_max_attempts:
            delay = backoff_seconds(
                attempts, base=policy.base, ceiling=policy.ceiling, rand=self._rand()
            )
            retry_at = now + timedelta(seconds=delay)
        error = result.error or "not stored"
        with self._transaction() as session:
            store.record_entry_failure(
                session,
                target.id,
                entry_id=entry.entry_id,
                url=entry.link,
                title=entry.title,
                published=entry.published,
                error=error,
                attempts=attempts,
                next_attempt_at=retry_at,
                now=now,
            )
        log.warning(
            "Feed entry not stored; retried later"
            if retry_at
            else "Feed entry not stored; given up",
            extra={
                "feed_url": target.url,
                "entry_id": _short_id(entry.entry_id),
                "attempts": attempts,
                "reason": error,
                "retry_at": retry_at.isoformat() if retry_at else "-",
            },
        )

    # -- one entry ----------------------------------------------------------------------

    def _process_entry(
        self,
        target: store.PollTarget,
        entry: ParsedEntry,
        now: datetime,
        failure: store.EntryFailureState | None = None,
    ) -> _EntryResult:
        extra = {"feed_url": target.url, "entry_id": _short_id(entry.entry_id)}
        article, problem = self._article(entry)
        if article is not None:
            text, title, origin = article.text, article.title or entry.title, ArticleOrigin.FEED
            page_date = article.published
        else:
            text, title, origin = entry.text, entry.title, ArticleOrigin.ENTRY_FALLBACK
            page_date = None
            if not text.strip():
                # Nothing to store: the entry waits for a retry of its page.
                if not entry.link:
                    return _EntryResult(
                        stored=False,
                        error="no text: the entry has no link and no text",
                        retry=False,
                    )
                return _EntryResult(stored=False, error=problem)
            if problem is not None:
                log.info(
                    "Article page unusable; using the entry text",
                    extra={**extra, "reason": problem},
                )
        published, estimated = self.publication(entry.published, page_date, now)
        feed_id = target.id

        def settle(session: Session, result: IngestResult) -> None:
            # A retried entry's failure is forgotten with the article that settles it.
            store.clear_entry_failures(session, feed_id, [entry.entry_id])

        result = self.ingest(
            Report(
                text=text,
                title=title,
                url=entry.link,
                outlet=target.outlet,
                published=published,
                published_is_estimate=estimated,
                origin_kind=origin,
                guid=entry.entry_id,
                feed_id=target.id,
            ),
            now=now,
            log_extra=extra,
            also=settle if failure is not None else None,
        )
        if result.status is IngestStatus.FAILED:
            return _EntryResult(stored=False, error=f"store: {result.error}")
        if result.status is IngestStatus.NOT_STORED and failure is not None:
            # Stored meanwhile by another feed or replica: nothing left to retry.
            with self._transaction() as session:
                store.clear_entry_failures(session, feed_id, [entry.entry_id])
        return _EntryResult(
            stored=result.stored,
            fallback=result.stored and origin is ArticleOrigin.ENTRY_FALLBACK,
            events=result.events,
            duplicate=result.status is IngestStatus.DUPLICATE,
        )

    def ingest(
        self,
        report: Report,
        *,
        now: datetime,
        log_extra: dict[str, str] | None = None,
        alert: bool = True,
        also: Callable[[Session, IngestResult], None] | None = None,
        keep_same_text: bool = True,
    ) -> IngestResult:
        """Dedup, rules, then the article, its events and their alerts in one transaction.

        Every way in (feed entries, ``service backfill``) ends here, so a report is
        treated the same whichever way it came.  A report seen before (same canonical
        URL, same normalised text, or a near-duplicate of a stored article) is stored
        as a duplicate of it, with no events and no alerts.  ``alert=False`` stores
        without queueing any webhook delivery (``service backfill`` passes it unless
        ``--alert``: history is not news), and the events it creates are history: a
        later report of one of them merges into it and alerts nobody.  ``also`` writes
        what the caller keeps of the result in the same transaction (a backfill run's
        record of the item).
        ``keep_same_text=False`` stores nothing for a report whose very text is stored
        already (``article_id`` None, as for the very URL): a file imported before.
        """
        extra = log_extra if log_extra is not None else {"url": report.url or "-"}
        if not report.text.strip():
            log.warning("Report has no text to store", extra=extra)
            return IngestResult(status=IngestStatus.EMPTY)
        canonical, alias = dedup.urls_for(report.url, report.guid, self.settings.dedup)
        digest = content_hash(report.text)
        signature = dedup.signature(report.text, self.settings.dedup)
        new_article = store.NewArticle(
            text=report.text,
            content_hash=digest,
            origin_kind=report.origin_kind,
            fetched=now,
            url=report.url,
            canonical_url=canonical,
            alternate_url=alias,
            outlet=report.outlet,
            title=report.title,
            published=report.published,
            published_is_estimate=report.published_is_estimate and report.published is not None,
            guid=report.guid,
            feed_id=report.feed_id,
        )
        # The rules run before the locks: the dedup lock serialises every replica's
        # ingest, and the rules are pure (their events are dropped if the report
        # turns out to be a duplicate).
        events = self.events_for(report, now=now, log_extra=extra)
        writes: list[store.EventWrite] = []
        seen: _Seen | None = None
        alerts = 0
        try:
            with self._dedup_lock:
                self._prepare_index()
                with self._transaction() as session:
                    store.lock_for_dedup(session)
                    self._refresh_index(session)
                    seen = self._seen(session, report, canonical, alias, digest, signature)
                    if seen is not None and (
                        seen.same_url or (seen.reason == "text" and not keep_same_text)
                    ):
                        article_id = None
                    elif seen is not None:
                        article_id = store.add_article(
                            session,
                            dataclasses.replace(
                                new_article, duplicate_of=seen.original, similarity=seen.similarity
                            ),
                        )
                        store.add_signature(session, article_id, signature)
                    else:
                        article_id = store.add_article(session, new_article)
                        store.add_signature(session, article_id, signature)
                        writes = store.store_events(
                            session,
                            article_id,
                            events,
                            now=now,
                            settings=self.settings.dedup,
                            provenance=EventProvenance.NEWS if alert else EventProvenance.HISTORY,
                        )
                        if alert:
                            # The outbox: queued in the transaction that stores the events.
                            alerts = store.enqueue_deliveries(
                                session,
                                [
                                    (
                                        w.event_id,
                                        AlertKind.CREATED if w.created else AlertKind.CORROBORATED,
                                    )
                                    for w in writes
                                ],
                                self.settings.webhooks,
                                now=now,
                            )
                    if seen is not None:
                        result = IngestResult(
                            status=IngestStatus.DUPLICATE,
                            article_id=article_id,
                            duplicate_of=seen.original,
                            similarity=seen.similarity,
                        )
                    else:
                        result = IngestResult(
                            status=IngestStatus.STORED,
                            article_id=article_id,
                            events=len(events),
                            writes=tuple(writes),
                            alerts=alerts,
                        )
                    if also is not None:
                        also(session, result)
                if article_id is not None:
                    self.index.add(article_id, signature)
        except AlreadyStoredError:
            # The same URL or feed entry stored meanwhile by another feed or replica.
            log.info("Article stored meanwhile", extra=extra)
            metrics.DUPLICATES.labels("store").inc()
            return IngestResult(status=IngestStatus.NOT_STORED)
        except StoreError as exc:
            error = str(exc).splitlines()[0]
            log.warning("Article not stored", extra={**extra, "reason": error})
            return IngestResult(status=IngestStatus.FAILED, error=error)
        if seen is not None:
            metrics.DUPLICATES.labels("near" if seen.reason == "near" else "exact").inc()
            log.info(
                "Duplicate report",
                extra={
                    **extra,
                    "action": "duplicate",
                    "duplicate_of": seen.original,
                    "similarity": round(seen.similarity, 3),
                    "reason": seen.reason,
                    "article_id": article_id if article_id is not None else "-",
                },
            )
            return result
        count = len(events)
        metrics.ARTICLES.labels(report.origin_kind.value).inc()
        metrics.EVENTS.inc(count)
        if alerts and self.on_alerts_queued is not None:
            self.on_alerts_queued()
        log.debug(
            "Report stored",
            extra={
                **extra,
                "action": report.origin_kind.value,
                "events": count,
                "corroborated": sum(not w.created for w in writes),
                "alerts": alerts,
            },
        )
        return result

    def events_for(
        self, report: Report, *, now: datetime, log_extra: dict[str, str] | None = None
    ) -> list[Event]:
        """The rules' events for a report, as ``ingest`` stores them (a rule bug: none)."""
        doc = Document(
            text=report.text,
            published=(report.published or now).date(),
            outlet=report.outlet,
            url=report.url,
            published_is_estimate=report.published_is_estimate,
            title=report.title,
        )
        if not looks_english(report.text):
            extra = log_extra if log_extra is not None else {"url": report.url or "-"}
            log.warning(
                "Article is not in English; the rules read English",
                extra={**extra, "english_share": f"{english_share(report.text):.2f}"},
            )
        try:
            return self.rules.extract(doc)
        except Exception:  # a rule bug must not lose the article
            extra = log_extra if log_extra is not None else {"url": report.url or "-"}
            log.error("Rules failed on an article", exc_info=True, extra=extra)
            return []

    def fetch_article(self, url: str) -> ExtractedArticle | None:
        """Fetch an article page through the guards and extract it in the sandbox.

        None when the page has no article text; ``FetchError``/``ExtractError`` otherwise.
        """
        page = self.fetcher.fetch(url, accept=HTML_ACCEPT)
        return self.extract_page(page.body, page.final_url)

    def extract_page(self, body: bytes, url: str | None) -> ExtractedArticle | None:
        """Article text of an HTML page, extracted in the sandbox (``ExtractError``)."""
        article: ExtractedArticle | None = self.sandbox.call("extract", body, url)
        return article

    # -- deduplication ---------------------------------------------------------------

    # Article ids are taken at insert and seen at commit; inserts are serialised by
    # store.lock_for_dedup, but seeds or a migration may still commit out of order,
    # so each refresh looks this far below the highest id it has.
    REFRESH_OVERLAP = 100

    def _prepare_index(self) -> None:
        """First use: hash the URLs a previous release stored unhashed
        (``hash_stored_articles``), sign what is stored unsigned
        (``sign_stored_articles``), then load the index."""
        if self._index_ready:
            return
        hash_stored_articles(self.session_factory, lock=self._db_lock)
        sign_stored_articles(self.session_factory, self.settings.dedup, lock=self._db_lock)
        self.rebuild_index()

    def rebuild_index(self) -> int:
        """Load every stored signature into a fresh index (start-up); return the count."""
        started = self._monotonic()
        index = dedup.DedupIndex(self.settings.dedup)
        with self._transaction() as session:
            index.add_many(store.iter_signatures(session, num_perm=self.settings.dedup.num_perm))
        self.index = index
        self._index_ready = True
        log.info(
            "Dedup index built",
            extra={
                "articles": len(index),
                "duration_ms": int((self._monotonic() - started) * 1000),
            },
        )
        return len(index)

    def _refresh_index(self, session: Session) -> None:
        """Fold in signatures stored since the index last looked (other replicas too)."""
        low = max(0, self.index.last_id - self.REFRESH_OVERLAP)
        num_perm = self.settings.dedup.num_perm
        # Indexed signatures are stored ones, so equal counts mean nothing is new:
        # one number asked instead of the overlap's ids.
        if store.signature_count(session, after_id=low, num_perm=num_perm) == (
            self.index.count_above(low)
        ):
            return
        unseen = [i for i in store.signature_ids(session, after_id=low) if i not in self.index]
        if unseen:
            self.index.add_many(store.signatures_of(session, unseen, num_perm=num_perm))

    def _seen(
        self,
        session: Session,
        report: Report,
        canonical: str | None,
        alias: str | None,
        digest: str,
        signature: dedup.Signature,
    ) -> _Seen | None:
        exact = store.find_exact(
            session,
            urls=[u for u in (canonical, alias) if u],
            raw_url=report.url,
            content_hash=digest,
        )
        if exact is not None:
            return _Seen(exact.article_id, 1.0, exact.reason, same_url=exact.same_url)
        candidates = self.index.candidates(signature)
        if not candidates:
            return None
        verdict = dedup.judge(
            report.text, store.article_texts(session, candidates), self.settings.dedup
        )
        if verdict is None:
            return None
        return _Seen(
            store.original_of(session, verdict.article_id), verdict.similarity.score, "near"
        )

    def _article(self, entry: ParsedEntry) -> tuple[ExtractedArticle | None, str | None]:
        """The entry's article page, extracted; else None and what went wrong (None:
        the entry has no link)."""
        if not entry.link:
            return None, None
        try:
            article = self.fetch_article(entry.link)
        except (FetchError, ExtractError) as exc:
            return None, _error_text(exc) if isinstance(exc, FeedError) else f"extract: {exc}"
        if article is None:
            return None, "no text: the article page has no article text"
        return article, None

    def publication(
        self, feed_date: datetime | None, page_date: date | None, now: datetime
    ) -> tuple[datetime | None, bool]:
        """The publication time and whether it is an estimate.

        The feed's date first, then the page's; a date more than a day ahead is not
        believed.  With none, the rules resolve relative dates against ``now``, flagged.
        """
        candidates: list[datetime] = []
        if feed_date is not None:
            candidates.append(feed_date)
        if page_date is not None:
            candidates.append(datetime(page_date.year, page_date.month, page_date.day, tzinfo=UTC))
        for moment in candidates:
            if moment <= now + self.limits.future_tolerance:
                return moment, False
        return None, True

    # -- recording ------------------------------------------------------------------------

    def _next_due(
        self, target: store.PollTarget, now: datetime, *, errors: int, retry_after: float | None
    ) -> datetime:
        return next_due(
            now,
            interval=target.interval_seconds,
            consecutive_errors=errors,
            retry_after=retry_after,
            policy=self.limits.backoff,
            rand=self._rand(),
        )

    def _record(self, target: store.PollTarget, record: store.PollRecord) -> None:
        with self._transaction() as session:
            recorded = store.record_poll(
                session, target.id, record, claimed_until=target.claimed_until
            )
        if not recorded:
            log.warning(
                "Lease lost: the feed was claimed again before this poll ended; "
                "poll not recorded (scheduler.lease_seconds too short?)",
                extra={"feed_url": target.url},
            )

    def _record_failure(
        self,
        target: store.PollTarget,
        now: datetime,
        started: float,
        exc: Exception,
        status: PollStatus,
    ) -> PollOutcome:
        errors = target.consecutive_errors + 1
        retry_after = exc.retry_after if isinstance(exc, FetchError) else None
        http_status = exc.status if isinstance(exc, FetchError) else None
        due = self._next_due(target, now, errors=errors, retry_after=retry_after)
        error = _error_text(exc)
        self._record(
            target,
            store.PollRecord(
                polled=now,
                status=http_status,
                error=error,
                next_due=due,
                consecutive_errors=errors,
            ),
        )
        return self._outcome(target, status, http_status, started, due, error=error)

    def _outcome(
        self,
        target: store.PollTarget,
        status: PollStatus,
        http_status: int | None,
        started: float,
        due: datetime,
        *,
        new_entries: int = 0,
        articles: int = 0,
        fallbacks: int = 0,
        events: int = 0,
        duplicates: int = 0,
        error: str | None = None,
        failed_entries: int = 0,
        pending_entries: int = 0,
        warning: str | None = None,
    ) -> PollOutcome:
        return PollOutcome(
            feed_name=target.name,
            feed_url=target.url,
            status=status,
            http_status=http_status,
            new_entries=new_entries,
            articles=articles,
            fallbacks=fallbacks,
            events=events,
            duplicates=duplicates,
            error=error,
            next_due=due,
            duration_ms=int((self._monotonic() - started) * 1000),
            failed_entries=failed_entries,
            pending_entries=pending_entries,
            warning=warning,
        )


def hash_stored_articles(
    factory: sessionmaker[Session], *, lock: threading.Lock | None = None
) -> None:
    """Hash the URLs and guids of articles stored without their hashes (by a replica of
    the release before migration 0006, during a rolling upgrade), 1,000 to a
    transaction.  ``service db upgrade`` does it once migrated; a pipeline does what
    is left on first use."""
    after = 0
    while True:
        with store.locked_scope(factory, lock) as session:
            store.lock_for_dedup(session)  # replicas starting together: in turn
            after = store.hash_unhashed_articles(session, after_id=after)
        if not after:
            return


def sign_stored_articles(
    factory: sessionmaker[Session], settings: DedupSettings, *, lock: threading.Lock | None = None
) -> int:
    """Sign the articles stored without a dedup signature, or with one of another
    ``num_perm`` (all of them after a migration that drops signatures made another
    way), 1,000 to a transaction; return how many.  ``service db upgrade`` does it
    once migrated; a pipeline does what is left on first use."""
    signed = 0
    while True:
        with store.locked_scope(factory, lock) as session:
            # Replicas starting together after an upgrade sign in turn, not twice.
            store.lock_for_dedup(session)
            missing = store.articles_without_signature(session, num_perm=settings.num_perm)
            for article_id, text in missing:
                store.replace_signature(session, article_id, dedup.signature(text, settings))
        if not missing:
            return signed
        signed += len(missing)
        log.info("Signed stored articles", extra={"articles": len(missing)})


def poll_feed(
    feed: store.PollTarget,
    *,
    client: httpx.Client,
    session_factory: sessionmaker[Session],
    rules: Rules,
    settings: Settings,
    now: datetime,
) -> PollOutcome:
    """Poll one feed with a pipeline built for the call (scripts and tests)."""
    pipeline = Pipeline(settings, session_factory=session_factory, rules=rules, client=client)
    try:
        return pipeline.poll_feed(feed, now=now)
    finally:
        pipeline.close()
