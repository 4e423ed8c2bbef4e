"""``service backfill``: history on demand through the daemon's own pipeline.

    list items (archive pages / sitemap / URL list / directory)
      ─► skip items an earlier run of the same source settled
      ─► skip URLs / texts already stored ─► fetch + extract (the pipeline's guarded
      fetcher and sandbox) ─► --since/--until on the publication date
      ─► ``Pipeline.ingest`` (rules, dedup, storage; alerts only with --alert)
      ─► record the item on the run

Resumable: every item's outcome is written to ``backfill_items`` as soon as it is
known, under a run keyed by the source and its options, so a run stopped by Ctrl-C
or a kill continues where it stopped when started again (failed items are tried
again).  Idempotent: an item whose URL (or, for files, whose text) is already stored
is not stored again, so a second run over the same source stores nothing new.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from service import clock, store
from service.config import FeedSettings
from service.documents import HTML_SUFFIXES
from service.enums import ArticleOrigin, BackfillItemStatus, EventProvenance
from service.errors import ConfigError, ExtractError, FetchError, IngestError, ParseError
from service.extract import ExtractedArticle, clean_text
from service.hashing import content_hash
from service.pipeline import IngestResult, IngestStatus, Pipeline, Report
from service.reextract import (
    ArticleDiff,
    StoredVersion,
    diff_events,
    with_evidence_span,
)
from service.sources import (
    DateWindow,
    archive_page_url,
    parse_sitemap,
    report_files,
)

log = logging.getLogger(__name__)

MAX_ARCHIVE_ENTRIES = 1000  # entries read from one archive page


class SourceKind(enum.StrEnum):
    FEED = "feed"  # a configured feed's paged archive
    SITEMAP = "sitemap"
    URLS = "urls"  # a list of URLs
    DIR = "dir"  # a directory of report files


@dataclass(frozen=True, slots=True)
class BackfillSource:
    kind: SourceKind
    location: str  # feed name, sitemap URL, list file (or "-"), directory
    urls: tuple[str, ...] = ()  # SourceKind.URLS: the list, already read


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    window: DateWindow = field(default_factory=DateWindow)
    dry_run: bool = False
    concurrency: int = 4
    alert: bool = False  # enqueue alerts for the new events (old news: off by default)
    outlet: str | None = None  # for items whose source names none
    max_pages: int = 500  # archive pages walked at most
    max_sitemaps: int = 200  # sitemaps read at most (an index and its children)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to backfill: a URL (with what its listing said) or a report file."""

    key: str  # sha256 of the item's identity: its state row in the run
    label: str  # the URL or the file name, for people
    url: str | None = None
    path: Path | None = None
    published: datetime | None = None  # from the listing
    published_is_publication: bool = True  # False: a sitemap lastmod, a hint only
    published_is_estimate: bool = False
    title: str | None = None
    outlet: str | None = None
    entry_text: str | None = None  # a feed entry's own text, if its page has none
    guid: str | None = None
    feed_id: int | None = None


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    item: Item
    status: BackfillItemStatus | None  # None: settled by an earlier run, not redone
    fetched: bool = False
    extracted: bool = False
    events: int = 0
    error: str | None = None
    title: str | None = None
    published: datetime | None = None
    recorded: bool = False  # the run's record of it was written with the article


# Writes, in the transaction that stores the item's article, the run's record of it.
Recorder = Callable[[Session, IngestResult], None]


@dataclass
class Counts:
    """Live counts of a backfill run."""

    items: int = 0  # listed
    fetched: int = 0  # pages fetched or files read
    extracted: int = 0  # with article text
    stored: int = 0
    duplicates: int = 0  # already stored, or not stored by the pipeline (duplicate)
    events: int = 0
    failed: int = 0
    skipped: int = 0  # outside --since/--until, or no article text
    settled: int = 0  # settled by an earlier run of the same source: not redone

    def add(self, outcome: ItemOutcome) -> None:
        self.fetched += outcome.fetched
        self.extracted += outcome.extracted
        self.events += outcome.events
        status = outcome.status
        if status is None:
            self.settled += 1
        elif status is BackfillItemStatus.STORED:
            self.stored += 1
        elif status in (BackfillItemStatus.DUPLICATE, BackfillItemStatus.KNOWN):
            self.duplicates += 1
        elif status is BackfillItemStatus.FAILED:
            self.failed += 1
        else:
            self.skipped += 1

    def snapshot(self) -> Counts:
        return replace(self)


@dataclass(frozen=True, slots=True)
class Failure:
    item: str
    error: str


@dataclass(frozen=True, slots=True)
class BackfillResult:
    counts: Counts
    failures: tuple[Failure, ...]
    outcomes: tuple[ItemOutcome, ...]  # of the items handled in this run
    interrupted: bool  # stopped before every item was handled
    resumed: bool  # an earlier run of the same source and options existed
    left: int  # items not handled (interrupted)


class Progress(Protocol):
    """What a backfill reports as it goes (the CLI draws a progress bar)."""

    def listing(self, message: str) -> None: ...

    def listed(self, total: int) -> None: ...

    def advanced(self, outcome: ItemOutcome, counts: Counts) -> None: ...


class _Quiet:
    def listing(self, message: str) -> None:
        pass

    def listed(self, total: int) -> None:
        pass

    def advanced(self, outcome: ItemOutcome, counts: Counts) -> None:
        pass


@dataclass
class _Known:
    """Items of a run found stored before it started: URLs, and (feed id, guid) pairs."""

    urls: set[str] = field(default_factory=set)
    guids: set[tuple[int, str]] = field(default_factory=set)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class Backfill:
    """Lists a source's items and sends each through ``pipeline``; ``stop`` ends it early."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.pipeline = pipeline
        self.progress = progress or _Quiet()
        self.stop = stop or threading.Event()
        self._now = now
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._known = _Known()

    # -- the run --------------------------------------------------------------------

    def run(self, source: BackfillSource, options: BackfillOptions) -> BackfillResult:
        """List, then handle every item (``options.concurrency`` at a time)."""
        self._failures = []
        items = self.list_items(source, options)
        self.progress.listed(len(items))
        counts = Counts(items=len(items))
        state: store.BackfillRunState | None = None
        if not options.dry_run:
            with self.pipeline.transaction() as session:
                state = store.open_backfill_run(
                    session,
                    run_key=self._run_key(source, options),
                    source_kind=source.kind.value,
                    source=source.location,
                    options=self._options_record(options),
                    now=self._now(),
                )
        done = state.done if state is not None else frozenset()
        self._known = self._known_entries([item for item in items if item.key not in done])

        outcomes: list[ItemOutcome] = []

        def handle(item: Item) -> ItemOutcome | None:
            if self.stop.is_set():
                return None
            if item.key in done:
                outcome = ItemOutcome(item, None)
            else:
                outcome = self._handle(item, options, state)
            with self._lock:
                counts.add(outcome)
                outcomes.append(outcome)
                if outcome.status is BackfillItemStatus.FAILED:
                    self._failures.append(Failure(item.label, outcome.error or "failed"))
                snapshot = counts.snapshot()
            self.progress.advanced(outcome, snapshot)
            return outcome

        with ThreadPoolExecutor(
            max_workers=max(1, options.concurrency), thread_name_prefix="backfill"
        ) as pool:
            handled = [result for result in pool.map(handle, items) if result is not None]
        left = len(items) - len(handled)
        if state is not None and left == 0:
            with self.pipeline.transaction() as session:
                store.finish_backfill_run(session, state.id, now=self._now())
        return BackfillResult(
            counts=counts,
            failures=tuple(self._failures),
            outcomes=tuple(outcomes),
            interrupted=left > 0,
            resumed=state.resumed if state is not None else False,
            left=left,
        )

    @staticmethod
    def _options_record(options: BackfillOptions) -> dict[str, str | None]:
        window = options.window
        return {
            "since": window.since.isoformat() if window.since else None,
            "until": window.until.isoformat() if window.until else None,
            "outlet": options.outlet,
        }

    def _run_key(self, source: BackfillSource, options: BackfillOptions) -> str:
        identity = source.location
        if source.kind is SourceKind.URLS:
            identity += "\n" + _digest(*source.urls)
        elif source.kind is SourceKind.DIR:
            identity = str(Path(source.location).resolve())
        return _digest(
            source.kind.value, identity, json.dumps(self._options_record(options), sort_keys=True)
        )

    # -- listing --------------------------------------------------------------------

    def list_items(self, source: BackfillSource, options: BackfillOptions) -> list[Item]:
        if source.kind is SourceKind.FEED:
            return self._archive_items(self._feed(source.location), options)
        if source.kind is SourceKind.SITEMAP:
            return self._sitemap_items(source.location, options)
        if source.kind is SourceKind.URLS:
            return [
                Item(key=_digest("url", url), label=url, url=url, outlet=options.outlet)
                for url in source.urls
            ]
        return self._file_items(Path(source.location), options)

    def _feed(self, name: str) -> FeedSettings:
        for feed in self.pipeline.settings.feeds:
            if feed.name == name:
                return feed
        known = ", ".join(feed.name for feed in self.pipeline.settings.feeds) or "none"
        raise ConfigError(
            str(self.pipeline.settings.feeds_path), None, f"no feed named {name!r} (feeds: {known})"
        )

    def _feed_id(self, feed: FeedSettings, options: BackfillOptions) -> int | None:
        if not options.dry_run:
            self.pipeline.sync_feeds()
        with self.pipeline.transaction() as session:
            targets = store.poll_targets(session, [feed.name])
        return targets[0].id if targets else None

    def _archive_items(self, feed: FeedSettings, options: BackfillOptions) -> list[Item]:
        """Walk ``?paged=N`` back until a page is empty, missing, repeats, or predates --since."""
        feed_id = self._feed_id(feed, options)
        items: list[Item] = []
        seen: set[str] = set()
        for page in range(1, options.max_pages + 1):
            if self.stop.is_set():
                break
            url = archive_page_url(feed.url, page)
            self.progress.listing(f"archive page {page}")
            try:
                result = self.pipeline.fetcher.fetch(url)
                parsed = self.pipeline.sandbox.parse_feed(
                    result.body, url, headers=result.headers, max_entries=MAX_ARCHIVE_ENTRIES
                )
            except FetchError as exc:
                if page > 1 and exc.status in (404, 410):
                    break  # past the last page
                if page == 1:
                    raise
                self._failures.append(Failure(url, str(exc)))
                break
            except ParseError as exc:
                if page == 1:
                    raise
                self._failures.append(Failure(url, str(exc)))
                break
            fresh = 0
            all_older = bool(parsed.entries)
            for entry in parsed.entries:
                identity = entry.link or entry.entry_id
                if identity in seen:
                    continue
                seen.add(identity)
                fresh += 1
                if not options.window.is_before(entry.published):
                    all_older = False
                items.append(
                    Item(
                        key=_digest("url", entry.link) if entry.link else _digest("guid", identity),
                        label=entry.link or entry.entry_id,
                        url=entry.link,
                        published=entry.published,
                        title=entry.title,
                        outlet=feed.outlet,
                        entry_text=entry.text or None,
                        guid=entry.entry_id,
                        feed_id=feed_id,
                    )
                )
            if fresh == 0 or all_older:
                break  # an empty page, the same page again (paged= ignored), or all too old
        return items

    def _sitemap_items(self, root: str, options: BackfillOptions) -> list[Item]:
        items: list[Item] = []
        seen_urls: set[str] = set()
        queue = [root]
        visited: set[str] = set()
        while queue and len(visited) < options.max_sitemaps and not self.stop.is_set():
            url = queue.pop(0)
            if url in visited:
                continue
            visited.add(url)
            self.progress.listing(f"sitemap {len(visited)}")
            try:
                result = self.pipeline.fetcher.fetch(url, accept="application/xml, text/xml, */*")
                sitemap = parse_sitemap(result.body, url)
            except (FetchError, ParseError) as exc:
                if url == root:
                    raise
                self._failures.append(Failure(url, str(exc)))
                continue
            if sitemap.capped:
                log.warning("Sitemap truncated", extra={"url": url})
            queue.extend(child.url for child in sitemap.sitemaps)
            for entry in sitemap.urls:
                if entry.url in seen_urls:
                    continue
                seen_urls.add(entry.url)
                items.append(
                    Item(
                        key=_digest("url", entry.url),
                        label=entry.url,
                        url=entry.url,
                        published=_midnight(entry.published) if entry.published else None,
                        published_is_publication=False,
                        outlet=options.outlet,
                    )
                )
        return items

    def _file_items(self, directory: Path, options: BackfillOptions) -> list[Item]:
        items: list[Item] = []
        for report in report_files(directory):
            # A file is the same item while its path, size and modification time are:
            # listing reads no file (hashing each one cost 5 % of a run's own CPU).
            try:
                info = report.path.stat()
            except OSError as exc:
                raise ConfigError(str(report.path), None, f"cannot read: {exc}") from exc
            items.append(
                Item(
                    key=_digest("file", report.name, str(info.st_size), str(info.st_mtime_ns)),
                    label=report.name,
                    path=report.path,
                    published=_midnight(report.published) if report.published else None,
                    published_is_estimate=report.published_is_estimate,
                    title=report.title,
                    outlet=report.outlet or options.outlet,
                )
            )
        return items

    # -- one item -------------------------------------------------------------------

    def _handle(
        self, item: Item, options: BackfillOptions, state: store.BackfillRunState | None
    ) -> ItemOutcome:
        recorder: Recorder | None = None
        if state is not None:
            run_id = state.id

            def recorder(session: Session, result: IngestResult) -> None:
                record = store.BackfillItemRecord(
                    item.key, item.label, _item_status(result), events=result.events
                )
                store.record_backfill_item(session, run_id, record, now=self._now())

        try:
            outcome = self._process(item, options, recorder)
        except IngestError as exc:  # e.g. the database refused: recorded, run goes on
            outcome = ItemOutcome(item, BackfillItemStatus.FAILED, error=str(exc))
        except Exception as exc:
            log.critical("Backfill item crashed", exc_info=True, extra={"url": item.label})
            outcome = ItemOutcome(
                item, BackfillItemStatus.FAILED, error=f"internal: {type(exc).__name__}: {exc}"
            )
        if state is not None and outcome.status is not None and not outcome.recorded:
            record = store.BackfillItemRecord(
                item_key=item.key,
                item=item.label,
                status=outcome.status,
                events=outcome.events,
                error=outcome.error,
            )
            try:
                with self.pipeline.transaction() as session:
                    store.record_backfill_item(session, state.id, record, now=self._now())
            except IngestError:
                log.error("Backfill item not recorded", exc_info=True, extra={"url": item.label})
        return outcome

    def _process(
        self, item: Item, options: BackfillOptions, recorder: Recorder | None
    ) -> ItemOutcome:
        now = self._now()
        if item.path is not None:
            return self._process_file(item, item.path, options, now, recorder)
        # A sitemap's lastmod is not the publication date, but nothing is published
        # after it was last modified: before --since is out either way.
        if item.published_is_publication:
            out = not options.window.contains(item.published)
        else:
            out = options.window.is_before(item.published)
        if out:
            return ItemOutcome(item, BackfillItemStatus.OUT_OF_RANGE)
        if self._url_known(item):
            return ItemOutcome(item, BackfillItemStatus.KNOWN)
        article: ExtractedArticle | None = None
        fetched = False
        if item.url is not None:
            try:
                article = self.pipeline.fetch_article(item.url)
                fetched = True
            except FetchError as exc:
                return ItemOutcome(item, BackfillItemStatus.FAILED, error=str(exc))
            except ExtractError as exc:
                return ItemOutcome(item, BackfillItemStatus.FAILED, fetched=True, error=str(exc))
        if article is not None:
            text, title, origin = article.text, article.title or item.title, ArticleOrigin.BACKFILL
            page_date = article.published
        elif item.entry_text:
            text, title, origin = item.entry_text, item.title, ArticleOrigin.ENTRY_FALLBACK
            page_date = None
        else:
            return ItemOutcome(item, BackfillItemStatus.EMPTY, fetched=fetched)
        if item.published_is_publication:
            published, estimated = self.pipeline.publication(item.published, page_date, now)
        else:
            hint = item.published.date() if item.published else None
            published, estimated = self.pipeline.publication(None, page_date or hint, now)
        report = Report(
            text=text,
            title=title,
            url=item.url,
            outlet=item.outlet,
            published=published,
            published_is_estimate=estimated,
            origin_kind=origin,
            guid=item.guid,
            feed_id=item.feed_id,
        )
        return self._store(item, report, options, now, recorder, fetched=fetched)

    def _process_file(
        self,
        item: Item,
        path: Path,
        options: BackfillOptions,
        now: datetime,
        recorder: Recorder | None,
    ) -> ItemOutcome:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return ItemOutcome(item, BackfillItemStatus.FAILED, error=f"{path}: {exc}")
        title = item.title
        published = item.published
        if path.suffix.lower() in HTML_SUFFIXES:
            try:
                article = self.pipeline.extract_page(raw, None)
            except ExtractError as exc:
                return ItemOutcome(item, BackfillItemStatus.FAILED, fetched=True, error=str(exc))
            if article is None:
                return ItemOutcome(item, BackfillItemStatus.EMPTY, fetched=True)
            text = article.text
            title = title or article.title
            if published is None and article.published is not None:
                published = _midnight(article.published)
        else:
            text = clean_text(raw.decode("utf-8", errors="replace"))
        if not text.strip():
            return ItemOutcome(item, BackfillItemStatus.EMPTY, fetched=True)
        if not options.window.contains(published):
            return ItemOutcome(item, BackfillItemStatus.OUT_OF_RANGE, fetched=True)
        if options.dry_run:  # else ingest tells, in the transaction that would store it
            with self.pipeline.transaction() as session:
                known = store.find_article_by_hash(session, content_hash(text))
            if known is not None:
                return ItemOutcome(item, BackfillItemStatus.KNOWN, fetched=True, extracted=True)
        report = Report(
            text=text,
            title=title,
            url=None,
            outlet=item.outlet,
            published=published,
            # No date: relative dates resolve against now, flagged (as for feed entries).
            published_is_estimate=item.published_is_estimate or published is None,
            origin_kind=ArticleOrigin.FILE,
        )
        return self._store(item, report, options, now, recorder, fetched=True)

    def _url_known(self, item: Item) -> bool:
        if item.url is not None and item.url in self._known.urls:
            return True
        return (
            item.guid is not None
            and item.feed_id is not None
            and (item.feed_id, item.guid) in self._known.guids
        )

    KNOWN_BATCH = 500  # URLs or guids per query

    def _known_entries(self, items: list[Item]) -> _Known:
        """Which items' URLs (or feed guids) are stored already, asked in batches.

        Asked once before the items are handled, not once per item (a transaction
        per item took 5 % of the backfill's own CPU).  A URL stored meanwhile by
        another process is still caught by ``Pipeline.ingest`` (same URL: not stored
        again), after a fetch this check would have spared.
        """
        urls = sorted({item.url for item in items if item.url is not None})
        by_feed: dict[int, set[str]] = {}
        for item in items:
            if item.guid and item.feed_id is not None:
                by_feed.setdefault(item.feed_id, set()).add(item.guid)
        known = _Known()
        step = self.KNOWN_BATCH
        with self.pipeline.transaction() as session:
            for start in range(0, len(urls), step):
                _, found = store.known_entries(
                    session, feed_id=-1, guids=[], urls=urls[start : start + step]
                )
                known.urls.update(found)
            for feed_id, feed_guids in by_feed.items():
                ordered = sorted(feed_guids)
                for start in range(0, len(ordered), step):
                    found, _ = store.known_entries(
                        session, feed_id=feed_id, guids=ordered[start : start + step], urls=[]
                    )
                    known.guids.update((feed_id, guid) for guid in found)
        return known

    def _store(
        self,
        item: Item,
        report: Report,
        options: BackfillOptions,
        now: datetime,
        recorder: Recorder | None,
        *,
        fetched: bool,
    ) -> ItemOutcome:
        if not options.window.contains(report.published):
            return ItemOutcome(item, BackfillItemStatus.OUT_OF_RANGE, fetched=fetched)
        if options.dry_run:
            events = self.pipeline.events_for(report, now=now)
            return ItemOutcome(
                item,
                BackfillItemStatus.STORED,
                fetched=fetched,
                extracted=True,
                events=len(events),
                title=report.title,
                published=report.published,
            )
        result = self.pipeline.ingest(
            report,
            now=now,
            log_extra={"url": item.label},
            alert=options.alert,
            also=recorder,
            keep_same_text=report.origin_kind is not ArticleOrigin.FILE,  # known: imported before
        )
        return ItemOutcome(
            item,
            _item_status(result),
            fetched=fetched,
            extracted=True,
            events=result.events,
            error=result.error,
            title=report.title,
            published=report.published,
            # Not when the transaction that wrote it failed or never ran.
            recorded=recorder is not None
            and result.status in (IngestStatus.STORED, IngestStatus.DUPLICATE),
        )


def _item_status(result: IngestResult) -> BackfillItemStatus:
    if result.status is IngestStatus.EMPTY:
        return BackfillItemStatus.EMPTY
    if result.status is IngestStatus.FAILED:
        return BackfillItemStatus.FAILED  # the store failed: tried again on the next run
    if result.stored:
        return BackfillItemStatus.STORED
    if result.status is IngestStatus.DUPLICATE and result.article_id is None:
        return BackfillItemStatus.KNOWN  # the very URL or file text was stored already
    return BackfillItemStatus.DUPLICATE


# ---------------------------------------------------------------------------- reextract


@dataclass(frozen=True, slots=True)
class ReextractResult:
    diffs: tuple[ArticleDiff, ...]  # articles whose events would change
    articles: int  # articles looked at
    applied: bool


def reextract(
    pipeline: Pipeline,
    *,
    window: DateWindow,
    apply: bool,
    now: datetime,
    stop: threading.Event | None = None,
    on_article: Callable[[ArticleDiff], None] | None = None,
) -> ReextractResult:
    """Run the current rules over stored articles and report (``apply``: store) the changes.

    Articles stored as duplicates are left out (they have no events).  With ``apply``, each
    article's events change in one transaction of their own.
    """
    since = _midnight(window.since) if window.since else None
    until = _midnight(window.until + timedelta(days=1)) if window.until else None
    with pipeline.transaction() as session:
        ids = store.reextract_candidates(session, since=since, until=until)
    diffs: list[ArticleDiff] = []
    looked = 0
    for article_id in ids:
        if stop is not None and stop.is_set():
            break
        looked += 1
        diff = _article_diff(pipeline, article_id, apply=apply, now=now)
        if diff is None or diff.empty:
            continue
        diffs.append(diff)
        if on_article is not None:
            on_article(diff)
    return ReextractResult(diffs=tuple(diffs), articles=looked, applied=apply)


def _article_diff(
    pipeline: Pipeline, article_id: int, *, apply: bool, now: datetime
) -> ArticleDiff | None:
    with pipeline.transaction() as session:
        article = store.get_article(session, article_id)
        if article is None:
            return None
        report = Report(
            text=article.text,
            title=article.title,
            url=article.url,
            outlet=article.outlet,
            published=article.published,
            # As at ingest: no publication date means relative dates were resolved
            # against the fetch time, flagged as an estimate.
            published_is_estimate=article.published_is_estimate or article.published is None,
            origin_kind=article.origin_kind,
        )
        fresh = pipeline.events_for(report, now=article.fetched)
        stored = [
            StoredVersion(
                linked.event_id,
                with_evidence_span(
                    linked.event, linked.evidence_start, linked.evidence_end, article.text
                ),
                shared=linked.articles > 1,
            )
            for linked in store.article_events(session, article_id)
        ]
        label = article.url or article.title or f"article {article_id}"
        diff = diff_events(article_id, label, stored, fresh, pipeline.settings.dedup)
        if apply and not diff.empty:
            store.apply_event_diff(
                session,
                article_id,
                removed=[version.event_id for version in diff.removed],
                changed=[(change.event_id, change.new) for change in diff.changed],
                added=list(diff.added),
                now=now,
                settings=pipeline.settings.dedup,
                # What re-extraction adds was never news: a seed's events stay seed events.
                provenance=EventProvenance.SEED if article.is_seed else EventProvenance.HISTORY,
            )
    return diff
