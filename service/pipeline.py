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
import random
import threading
import time
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
from service.enums import AlertKind, ArticleOrigin
from service.errors import ExtractError, FeedError, FetchError, IngestError, StoreError
from service.events import Event
from service.extract import ExtractedArticle
from service.fetch import (
    HTML_ACCEPT,
    BackoffPolicy,
    Fetcher,
    FetchLimits,
    IPNetwork,
    next_due,
)
from service.hashing import content_hash
from service.outage import OutageLog
from service.parse import ParsedEntry, ParsedFeed
from service.rules import Document
from service.sandbox import Sandbox

log = logging.getLogger(__name__)


class Rules(Protocol):
    """What the pipeline needs of the rule set (``service.rules.RuleSet``)."""

    def extract(self, doc: Document) -> list[Event]: ...


class PollStatus(enum.StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"  # a FeedError: recorded, backoff
    CRASHED = "crashed"  # an unexpected exception: logged critical, recorded, backoff


@dataclass(frozen=True, slots=True)
class PollLimits:
    """Per-poll work caps and the boxes around hostile-input stages."""

    max_entries: int = 50  # entries read from one feed per poll
    max_articles: int = 20  # article pages fetched per poll
    sandbox_timeout: float = 30.0  # seconds for one parse or extraction
    sandbox_memory_bytes: int = 1024 * 1024 * 1024
    future_tolerance: timedelta = timedelta(days=1)  # later "published" dates are not trusted
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


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
    # An ok poll's oddities (loose parsing, a charset contradiction, unreadable
    # entries), also recorded on the feed as its last_error "warning: ...".
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
    NOT_STORED = "not_stored"  # the store refused it (same URL stored meanwhile)


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

    @property
    def stored(self) -> bool:
        return self.status is IngestStatus.STORED


@dataclass(frozen=True, slots=True)
class _EntryResult:
    stored: bool
    fallback: bool = False
    events: int = 0
    duplicate: bool = False


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
        # When the last poll that ended ok or not_modified finished (``/healthz``).
        self.last_success: datetime | None = None
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
        """
        if self.stopping:
            return []
        names = [feed.name for feed in self.settings.feeds]
        started = self._monotonic()
        workers = self.settings.scheduler.workers
        running: set[Future[PollOutcome | None]] = set()
        outcomes: list[PollOutcome] = []
        while not self.stopping:
            free = workers - len(running)
            targets: list[store.PollTarget] = []
            claimed_at = now + timedelta(seconds=self._monotonic() - started)
            if free > 0:
                try:
                    with self._transaction() as session:
                        targets = store.claim_due_feeds(
                            session,
                            now=claimed_at,
                            names=names,
                            lease_seconds=self.settings.scheduler.lease_seconds,
                            limit=free,
                        )
                    self.database_outage.succeeded()
                except IngestError as exc:
                    if not self.database_outage.failed(exc, during="claim due feeds"):
                        log.critical("Cannot claim due feeds", exc_info=True)
            for target in targets:
                running.add(self._pool.submit(self._poll_guarded, target, claimed_at))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            outcomes.extend(o for o in (f.result() for f in done) if o is not None)
        for future in running:
            outcome = future.result()
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

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
        if outcome.status in (PollStatus.OK, PollStatus.NOT_MODIFIED):
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
            self._record(
                target,
                store.PollRecord(
                    polled=now,
                    status=result.status,
                    error=None,
                    next_due=healthy_due,
                    consecutive_errors=0,
                    update_validators=True,
                    etag=result.etag,
                    last_modified=result.last_modified,
                ),
            )
            return self._outcome(
                target, PollStatus.NOT_MODIFIED, result.status, started, healthy_due
            )

        feed: ParsedFeed = self.sandbox.parse_feed(
            result.body,
            target.url,
            headers=result.headers,
            max_entries=self.limits.max_entries,
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
        new = self._new_entries(target, feed.entries)
        articles = fallbacks = events = duplicates = 0
        handled = 0
        for entry in new:
            if self.stopping or handled >= self.limits.max_articles:
                break
            handled += 1
            done = self._process_entry(target, entry, now)
            articles += done.stored
            fallbacks += done.fallback
            events += done.events
            duplicates += done.duplicate
        complete = handled == len(new) and feed.capped_entries == 0
        self._record(
            target,
            store.PollRecord(
                polled=now,
                status=result.status,
                # Shown with the feed (``service feeds``) until a poll without oddities.
                error=f"warning: {warning}" if warning else None,
                next_due=healthy_due,
                consecutive_errors=0,
                # Left-over entries: keep the old validators so the next poll is a full GET.
                # So too with a warning: a 304 would clear it while the feed still has it.
                update_validators=complete and not warning,
                etag=result.etag,
                last_modified=result.last_modified,
                new_entries=handled,
                new_events=events,
            ),
        )
        return self._outcome(
            target,
            PollStatus.OK,
            result.status,
            started,
            healthy_due,
            new_entries=handled,
            articles=articles,
            fallbacks=fallbacks,
            events=events,
            duplicates=duplicates,
            warning=warning,
        )

    def _new_entries(
        self, target: store.PollTarget, entries: Sequence[ParsedEntry]
    ) -> list[ParsedEntry]:
        guids = [e.entry_id for e in entries]
        urls = [e.link for e in entries if e.link]
        with self._transaction() as session:
            known_guids, known_urls = store.known_entries(
                session, feed_id=target.id, guids=guids, urls=urls
            )
        fresh: list[ParsedEntry] = []
        seen_urls: set[str] = set()
        for entry in entries:
            if entry.entry_id in known_guids or (entry.link and entry.link in known_urls):
                metrics.DUPLICATES.labels("entry").inc()
                continue
            if entry.link:
                if entry.link in seen_urls:
                    continue
                seen_urls.add(entry.link)
            fresh.append(entry)
        return fresh

    # -- one entry ----------------------------------------------------------------------

    def _process_entry(
        self, target: store.PollTarget, entry: ParsedEntry, now: datetime
    ) -> _EntryResult:
        extra = {"feed_url": target.url, "entry_id": entry.entry_id}
        article = self._article(entry, extra)
        if article is not None:
            text, title, origin = article.text, article.title or entry.title, ArticleOrigin.FEED
            page_date = article.published
        else:
            text, title, origin = entry.text, entry.title, ArticleOrigin.ENTRY_FALLBACK
            page_date = None
        published, estimated = self.publication(entry.published, page_date, now)
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
        )
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
        ``--alert``: history is not news).  ``also`` writes what the caller keeps of
        the result in the same transaction (a backfill run's record of the item).
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
                            session, article_id, events, now=now, settings=self.settings.dedup
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
        except StoreError:
            # Typically the same URL stored meanwhile by another feed or replica.
            log.warning("Article not stored", exc_info=True, extra=extra)
            metrics.DUPLICATES.labels("store").inc()
            return IngestResult(status=IngestStatus.NOT_STORED)
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
        """First use: sign what is stored unsigned (``sign_stored_articles``), then
        load the index."""
        if self._index_ready:
            return
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

    def _article(self, entry: ParsedEntry, extra: dict[str, str]) -> ExtractedArticle | None:
        if not entry.link:
            return None
        try:
            article = self.fetch_article(entry.link)
        except (FetchError, ExtractError) as exc:
            log.info(
                "Article page unusable; using the entry text",
                extra={
                    **extra,
                    "reason": _error_text(exc) if isinstance(exc, FeedError) else str(exc),
                },
            )
            return None
        if article is None:
            log.info("Article page has no article text; using the entry text", extra=extra)
        return article

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
            warning=warning,
        )


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
