"""The ``service`` command line: a click group, one sub-command per task.

Adding a command: decorate a function with ``@main.command()`` (or ``@db.command()``)
and take the shared :class:`App` with ``@pass_app``; ``app.settings`` loads and
validates the configuration on first use, ``app.engine`` opens the database.
Errors the service raises on purpose become one line on stderr: exit code 2 for
configuration errors (service.toml, the feeds file, the rule files), 1 for the rest;
no traceback.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service import __version__, clock, log, store
from service.config import ENV_CONFIG, Settings, load_settings
from service.corpus import read_manifest
from service.documents import read_manifest_doc, read_report
from service.enums import EntryStatus
from service.errors import ConfigError, IngestError, RuleConfigError
from service.evaluate import Prediction, read_gold, score
from service.export import CSV_COLUMNS, csv_row
from service.rules import PROJECT_RULES, Document, RuleSet, load_rules
from service.rules.language import english_share, looks_english
from service.seeding import DEFAULT_MANIFEST, import_seeds


class ServiceGroup(click.Group):
    """A click group that reports the service's errors as one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, RuleConfigError) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except IngestError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@dataclass
class App:
    """What every command shares: the config path, then lazily the settings and engine."""

    config_path: Path | None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        """The database engine, after checking the schema is migrated to head."""
        if self._engine is None:
            engine = store.create_engine(self.settings.database_url)
            try:
                store.require_current_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction on the service database."""
        with store.session_scope(store.session_factory(self.engine)) as session:
            yield session

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


pass_app = click.make_pass_decorator(App)


@click.group(cls=ServiceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENV_CONFIG,
    help="service.toml to use [env SERVICE_CONFIG; default config/service.toml].",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    envvar="SERVICE_LOG_LEVEL",
    show_default=True,
    help="Logging threshold (logs go to stderr).",
)
@click.version_option(__version__, prog_name="service")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str) -> None:
    """Ingest conflict-monitor reports into structured Deir Ezzor movement events."""
    log.setup(log_level)
    app = App(config_path=config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


@main.group(cls=ServiceGroup)
def db() -> None:
    """Database administration."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_app
def db_upgrade(app: App, revision: str) -> None:
    """Create or migrate the database schema (safe to repeat)."""
    url = app.settings.database_url
    reached = store.upgrade(url, revision)
    click.echo(f"Database {store.display_url(url)} is at revision {reached or 'base'}.")
    if reached == store.head_revision():
        from service.pipeline import hash_stored_articles, sign_stored_articles

        # Articles a previous release stored during a rolling upgrade get their URL
        # hashes, and a migration may drop the dedup signatures: made here, not on
        # the daemon's first ingest.
        hash_stored_articles(store.session_factory(app.engine))
        signed = sign_stored_articles(store.session_factory(app.engine), app.settings.dedup)
        if signed:
            click.echo(f"Signed {signed} stored articles for near-duplicate detection.")


@main.command()
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="Corpus manifest (MANIFEST.json) listing the seed texts.",
)
@pass_app
def seed(app: App, manifest: Path) -> None:
    """Import the seed corpus as articles and events (already seen: never alerted);
    a second run adds nothing."""
    from service.scheduler import rules_directory

    docs = read_manifest(manifest)
    rules = load_rules(rules_directory(app.settings))
    with app.session() as session:
        result = import_seeds(
            session, docs, now=clock.now(), rules=rules, settings=app.settings.dedup
        )
        total = store.count_articles(session, seeds_only=True)
    extracted = f" {result.events} events extracted." if result.events else ""
    click.echo(
        f"Seed corpus: {result.added} added, {result.skipped} already stored "
        f"({total} seed articles in the database).{extracted}"
    )


@main.command()
@pass_app
def feeds(app: App) -> None:
    """Show the configured feeds and their poll state."""
    configured = app.settings.feeds
    with app.session() as session:
        states = store.list_feeds(session, configured)
    table = Table(title=f"Feeds ({app.settings.feeds_path})", show_lines=False)
    columns = ("Name", "Outlet", "Every", "Last polled", "Status", "Errors", "Next due")
    for column in (*columns, "Entries", "Not stored", "Events"):
        table.add_column(column, overflow="fold", no_wrap=column in ("Name", "Every", "Errors"))
    table.add_column("URL", overflow="fold")
    for state in states:
        status = "" if state.last_status is None else str(state.last_status)
        if state.last_error:
            status = f"{status} {state.last_error}".strip()
        due = _when(state.next_due, "now")
        if state.claimed_by:
            due = f"polling ({state.claimed_by}, alive {_when(state.heartbeat_at, '-')})"
        failing = [
            f"{count} {what}"
            for count, what in (
                (state.entries_retrying, "retrying"),
                (state.entries_given_up, "gave up"),
            )
            if count
        ]
        table.add_row(
            state.name if state.configured else f"{state.name} (not configured)",
            state.outlet,
            _duration(state.interval_seconds),
            _when(state.last_polled, "never"),
            status or "-",
            str(state.consecutive_errors),
            due,
            str(state.entries_seen),
            ", ".join(failing) or "-",
            str(state.events_count),
            state.url,
        )
    Console().print(table)


@main.command()
@click.option(
    "--config",
    "run_config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="service.toml to use (same as the group's --config).",
)
@click.option("--once", is_flag=True, help="Poll every configured feed once, then exit.")
@pass_app
def run(app: App, run_config: Path | None, once: bool) -> None:
    """Poll the configured feeds on their intervals until SIGTERM/SIGINT."""
    from service import scheduler  # the daemon's imports are not needed by other commands
    from service.pipeline import PollStatus

    if run_config is not None:
        app.config_path = run_config
    outcomes = scheduler.run(app.settings, app.engine, once=once)
    for outcome in outcomes:
        counts = (
            f"{outcome.new_entries} new entries, {outcome.articles} articles "
            f"({outcome.fallbacks} from entry text), {outcome.duplicates} duplicates, "
            f"{outcome.events} events"
        )
        if outcome.pending_entries:
            counts += f", {outcome.pending_entries} left for the next polls"
        if outcome.status is PollStatus.PARTIAL:
            detail = f"{counts}; {outcome.error}"
        else:
            detail = outcome.error or counts
        if outcome.warning:
            detail += f"; warning: {outcome.warning}"
        click.echo(f"{outcome.feed_name}: {outcome.status.value}; {detail}")


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="table for reading, jsonl (one contract object per line) or csv for tools.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Newest N events; 0 for all.",
)
@pass_app
def events(app: App, fmt: str, limit: int) -> None:
    """Show stored events, newest first."""
    with app.session() as session:
        stored = store.list_events(session, limit=limit or None)
    if fmt == "jsonl":
        for item in stored:
            click.echo(json.dumps(item.event.to_dict(), ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for item in stored:
            writer.writerow(csv_row(item.event))
    else:
        _events_table(stored)


def _events_table(stored: Sequence[store.StoredEvent]) -> None:
    console = Console()
    if not stored:
        console.print("No events stored yet.")
        return
    table = Table(title="Events (newest first)")
    columns = ("ID", "Date", "Type", "Actor", "Location", "From", "Flags", "Source", "Sources")
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in stored:
        event = item.event
        flags = [
            name for name, on in (("hedged", event.hedged), ("in-region", event.in_region)) if on
        ]
        if not item.provenance.alerts:  # seed, history: already seen, never alerted
            flags.append(item.provenance.value)
        table.add_row(
            str(item.id),
            event.date or "?",
            event.type.value,
            f"{event.actor.name} ({event.actor.affiliation.value})",
            event.location.name,
            event.origin.name if event.origin else "",
            ", ".join(flags),
            " / ".join(s for s in (event.source.name, event.source.outlet) if s),
            f"{item.sources_count} ({', '.join(f'#{a}' for a in item.article_ids)})",
        )
    console.print(table)


@main.command()
@click.option("--duplicates", is_flag=True, help="Only articles stored as duplicates.")
@click.option(
    "--failed",
    is_flag=True,
    help="Feed entries not stored: retrying (with the next attempt) or given up.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Newest N articles; 0 for all.",
)
@pass_app
def articles(app: App, duplicates: bool, failed: bool, limit: int) -> None:
    """Show stored articles, newest first, with what each duplicates and how closely."""
    if failed:
        _failed_entries(app, limit)
        return
    with app.session() as session:
        stored = store.list_articles(
            session, duplicates_only=duplicates, limit=limit or None, newest_first=True
        )
        not_stored = sum(sum(pair) for pair in store.entry_failure_counts(session).values())
    console = Console()
    note = (
        f"{not_stored} feed entries not stored (retrying or given up): "
        "`service articles --failed` lists them."
        if not_stored
        else None
    )
    if not stored:
        console.print("No duplicates stored." if duplicates else "No articles stored yet.")
        if note:
            console.print(note)
        return
    table = Table(title="Duplicates (newest first)" if duplicates else "Articles (newest first)")
    for column in ("ID", "Origin", "Outlet", "Title", "URL", "Duplicate of", "Similarity"):
        table.add_column(column, overflow="fold")
    for article in stored:
        table.add_row(
            str(article.id),
            article.origin_kind.value,
            article.outlet or "",
            article.title or "",
            article.url or "",
            "" if article.duplicate_of is None else f"#{article.duplicate_of}",
            "" if article.similarity is None else f"{article.similarity:.2f}",
        )
    console.print(table)
    if note:
        console.print(note)


def _failed_entries(app: App, limit: int) -> None:
    with app.session() as session:
        failures = store.list_entry_failures(session, limit=limit or None)
    console = Console()
    if not failures:
        console.print("No feed entries waiting: every entry taken so far is stored.")
        return
    table = Table(title="Feed entries not stored (most recently tried first)")
    for column in ("Feed", "Entry", "Title", "Status", "Attempts", "Last error", "URL"):
        table.add_column(column, overflow="fold")
    for failure in failures:
        status = (
            f"retrying {_when(failure.next_attempt_at, 'now')}"
            if failure.status is EntryStatus.RETRYING
            else f"gave up {_when(failure.last_attempt_at, '-')}"
        )
        entry = "(its URL)" if failure.entry_id == failure.url else _cut(failure.entry_id, 120)
        table.add_row(
            failure.feed_name or str(failure.feed_id),
            entry,
            failure.title or "",
            status,
            str(failure.attempts),
            failure.last_error,
            _cut(failure.url or "", 400),
        )
    console.print(table)


def _cut(text: str, limit: int) -> str:
    """A long URL or id cut for a table cell (tracking URLs run to kilobytes)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _when(moment: datetime | None, missing: str) -> str:
    return missing if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# --------------------------------------------------------------------------- alerts


@main.group(cls=ServiceGroup)
def alerts() -> None:
    """Webhook alerts: the delivery outbox, replays, a test message."""


@alerts.command("list")
@click.option("--failed", is_flag=True, help="Only failed (retrying) and dead deliveries.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Newest N deliveries; 0 for all.",
)
@pass_app
def alerts_list(app: App, failed: bool, limit: int) -> None:
    """Show webhook deliveries, newest first, and any subscriber disabled by a 410."""
    with app.session() as session:
        deliveries = store.list_deliveries(session, failed_only=failed, limit=limit or None)
        subscriptions = store.list_subscriptions(session)
    console = Console()
    for sub in subscriptions:
        if sub.disabled_at is not None:
            console.print(
                f"Subscriber {sub.name} disabled since {_when(sub.disabled_at, '?')} "
                f"({sub.disabled_reason}); URL {sub.url}",
                markup=False,
                highlight=False,
            )
    if not deliveries:
        console.print("No failed deliveries." if failed else "No deliveries yet.")
        return
    table = Table(title="Webhook deliveries (newest first)")
    columns = ("ID", "Subscriber", "Alert", "Event", "Status", "Attempts", "Last", "Next attempt")
    for column in (*columns, "Webhook id", "Created"):
        table.add_column(column, overflow="fold")
    for item in deliveries:
        last = "" if item.last_status is None else str(item.last_status)
        if item.last_error:
            last = f"{last} {item.last_error}".strip()
        pending = item.status.value in ("pending", "failed")
        table.add_row(
            str(item.id),
            item.subscriber,
            f"event.{item.kind.value}",
            str(item.event_id),
            item.status.value,
            str(item.attempts),
            last or "-",
            _when(item.next_attempt_at, "-") if pending else "-",
            item.webhook_id,
            _when(item.created_at, "?"),
        )
    console.print(table)


@alerts.command("replay")
@click.argument("delivery_id", required=False, type=int)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
    help="Every delivery created since this date (UTC).",
)
@pass_app
def alerts_replay(app: App, delivery_id: int | None, since: datetime | None) -> None:
    """Send deliveries again: one by ID (from `alerts list`), or all since a date.

    The daemon sends them on its next delivery tick, with the same body and
    webhook-id as before, so receivers that already have them drop the repeat.
    """
    if (delivery_id is None) == (since is None):
        raise click.UsageError("give a delivery ID or --since DATE (one of them)")
    since_utc = since.replace(tzinfo=UTC) if since is not None else None
    with app.session() as session:
        if delivery_id is not None and not store.delivery_exists(session, delivery_id):
            raise click.UsageError(f"no delivery with ID {delivery_id} (see `alerts list`)")
        count = store.replay_deliveries(
            session, now=clock.now(), delivery_id=delivery_id, since=since_utc
        )
    click.echo(f"{count} deliveries queued again; the daemon sends them on its next tick.")


@alerts.command("enable")
@click.argument("name")
@pass_app
def alerts_enable(app: App, name: str) -> None:
    """Send to subscriber NAME again after a 410 Gone disabled it."""
    if name not in {hook.name for hook in app.settings.webhooks}:
        raise click.UsageError(f"no [[webhooks]] subscriber named {name!r}")
    with app.session() as session:
        enabled = store.enable_subscription(session, name)
    click.echo(f"{name}: enabled." if enabled else f"{name}: was not disabled.")


@alerts.command("test")
@click.argument("name")
@pass_app
def alerts_test(app: App, name: str) -> None:
    """Send a sample signed alert (type webhook.test) to subscriber NAME now."""
    from service.alerts.delivery import send_test
    from service.fetch import Fetcher
    from service.pipeline import build_client, fetch_limits

    settings = app.settings
    hooks = {hook.name: hook for hook in settings.webhooks}
    if name not in hooks:
        known = ", ".join(hooks) or "none configured"
        raise click.UsageError(f"no [[webhooks]] subscriber named {name!r} ({known})")
    hook = hooks[name]
    with build_client() as client:
        fetcher = Fetcher(client, fetch_limits(settings.http))
        webhook_id, result = send_test(
            fetcher, hook, timeout=settings.alerts.timeout_seconds, now=clock.now()
        )
    if result.ok:
        click.echo(
            f"{name}: HTTP {result.status} in {result.duration_ms} ms; webhook-id {webhook_id}"
        )
        return
    problem = result.error or f"HTTP {result.status}"
    click.echo(f"error: {name}: {hook.url}: {problem}; webhook-id {webhook_id}", err=True)
    sys.exit(1)


# --------------------------------------------------------------------------- rules
_RULES_OPTION = click.option(
    "--rules",
    "rules_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Rule directory (gazetteer.yaml, actors.yaml, actions.yaml); "
    "default: the project's config/rules.",
)


def _load_rules(rules_dir: Path | None) -> RuleSet:
    return load_rules(rules_dir or PROJECT_RULES)


@main.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--manifest", type=click.Path(dir_okay=False, path_type=Path), help="A corpus MANIFEST.json."
)
@click.option(
    "--published", type=click.DateTime(formats=["%Y-%m-%d"]), help="Publication date (YYYY-MM-DD)."
)
@click.option("--outlet", help="Outlet that published the files.")
@_RULES_OPTION
def extract(
    files: tuple[Path, ...],
    manifest: Path | None,
    published: datetime | None,
    outlet: str | None,
    rules_dir: Path | None,
) -> None:
    """Print the events in report files, one JSON object per line (no database, no network).

    .txt files are read as text; .html/.htm pages go through the same article
    extraction as feed articles. Each line carries ``file``: the path as given,
    or as listed in the manifest.
    """
    if not files and manifest is None:
        raise click.UsageError("give report FILES or --manifest PATH")
    rules = _load_rules(rules_dir)
    jobs: list[tuple[str, Document]] = []
    for path in files:
        jobs.append(
            (
                str(path),
                read_report(path, published=published.date() if published else None, outlet=outlet),
            )
        )
    if manifest is not None:
        for doc in read_manifest(manifest):
            jobs.append((doc.file, read_manifest_doc(doc)))
    for name, document in jobs:
        _warn_if_not_english(name, document.text)
        for event in rules.extract(document):
            click.echo(json.dumps({"file": name, **event.to_dict()}, ensure_ascii=False))


def _warn_if_not_english(name: str, text: str) -> None:
    """One line on stderr: the rules read English, and this report is not."""
    if not looks_english(text):
        click.echo(
            f"Warning: {name}: the text does not look like English "
            f"({english_share(text):.0%} English function words); the rules read English "
            "and may find nothing in it.",
            err=True,
        )


@main.command("eval")
@click.option(
    "--gold",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Gold events (JSON lines).",
)
@click.option(
    "--manifest",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The corpus MANIFEST.json.",
)
@_RULES_OPTION
def evaluate_command(gold: Path, manifest: Path, rules_dir: Path | None) -> None:
    """Score the rules on a hand-annotated corpus: misses, false positives, then P/R/F1."""
    rules = _load_rules(rules_dir)
    predictions: list[Prediction] = []
    for doc in read_manifest(manifest):
        document = read_manifest_doc(doc)
        _warn_if_not_english(doc.file, document.text)
        predictions.extend(Prediction(doc.file, event) for event in rules.extract(document))
    result = score(read_gold(gold), predictions, rules.gazetteer)
    for g in result.misses:
        click.echo(
            f"miss {g.id} {g.doc}: {g.type} {g.affiliation} "
            f"at {' / '.join(g.locations)} | {g.evidence}"
        )
    for p in result.false_positives:
        e = p.event
        click.echo(
            f"false positive {p.doc}: {e.type.value} {e.actor.affiliation.value} "
            f"at {e.location.name}"
            f" ({e.date or 'no date'}) | {e.evidence.text}"
        )
    for g, p in result.wrong_dates:
        click.echo(f"wrong date {g.id} {g.doc}: gold {g.date}, extracted {p.event.date or 'none'}")
    click.echo(result.summary())


# --------------------------------------------------------------------------- backfill


@main.command()
@click.option("--feed", "feed_name", metavar="NAME", help="Walk a configured feed's archive.")
@click.option("--sitemap", metavar="URL", help="Every page a sitemap (or sitemap index) lists.")
@click.option(
    "--urls", "urls_file", metavar="FILE|-", help="A list of URLs, one a line (- for stdin)."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A directory of .html/.txt reports, with an optional MANIFEST.json.",
)
@click.option(
    "--reextract", is_flag=True, help="Run the current rules over stored articles; show changes."
)
@click.option("--apply", is_flag=True, help="With --reextract: store the changes.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only reports published on or after this day.",
)
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only reports published on or before this day.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be stored; store nothing.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    help="Items handled at once (requests to one host stay within http.per_host_concurrency).",
)
@click.option("--alert", is_flag=True, help="Alert on the events found (off: old news).")
@click.option("--outlet", help="Outlet stored with items whose source names none.")
@click.option(
    "--max-pages",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    help="Archive pages walked at most (--feed).",
)
@pass_app
def backfill(
    app: App,
    feed_name: str | None,
    sitemap: str | None,
    urls_file: str | None,
    directory: Path | None,
    reextract: bool,
    apply: bool,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    concurrency: int,
    alert: bool,
    outlet: str | None,
    max_pages: int,
) -> None:
    """Fill in history through the daemon's pipeline; resumable, and a rerun stores nothing new.

    One source: --feed NAME (the feed's paged archive, ?paged=N, back to --since),
    --sitemap URL, --urls FILE|-, --dir PATH; or --reextract [--apply].
    """
    from service import backfill as bf  # the pipeline's imports are not needed elsewhere
    from service.sources import DateWindow, parse_url_list

    chosen = [
        name
        for name, value in (
            ("--feed", feed_name),
            ("--sitemap", sitemap),
            ("--urls", urls_file),
            ("--dir", directory),
            ("--reextract", reextract or None),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --feed, --sitemap, --urls, --dir, --reextract"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    if apply and not reextract:
        raise click.UsageError("--apply goes with --reextract")
    if reextract and dry_run:
        raise click.UsageError("--reextract only shows changes unless --apply is given")
    window = DateWindow(
        since=since.date() if since else None, until=until.date() if until else None
    )
    if window.since and window.until and window.since > window.until:
        raise click.UsageError("--since is after --until")

    source: bf.BackfillSource | None = None
    if feed_name is not None:
        source = bf.BackfillSource(bf.SourceKind.FEED, feed_name)
    elif sitemap is not None:
        source = bf.BackfillSource(bf.SourceKind.SITEMAP, sitemap)
    elif urls_file is not None:
        shown = "<stdin>" if urls_file == "-" else urls_file
        try:
            text = sys.stdin.read() if urls_file == "-" else Path(urls_file).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(shown, None, f"cannot read the URL list: {exc}") from exc
        source = bf.BackfillSource(
            bf.SourceKind.URLS, shown, urls=tuple(parse_url_list(text, shown))
        )
    elif directory is not None:
        source = bf.BackfillSource(bf.SourceKind.DIR, str(directory))

    stop = threading.Event()
    with _stop_on_signals(stop), _backfill_pipeline(app, concurrency) as pipeline:
        if source is None:
            _run_reextract(pipeline, window, apply, stop)
            return
        options = bf.BackfillOptions(
            window=window,
            dry_run=dry_run,
            concurrency=concurrency,
            alert=alert,
            outlet=outlet,
            max_pages=max_pages,
        )
        console = Console(stderr=True)
        with _BackfillProgress(console) as progress:
            result = bf.Backfill(pipeline, progress=progress, stop=stop).run(source, options)
    _backfill_report(result, dry_run=dry_run)
    if result.interrupted:
        click.echo(
            f"interrupted: {result.left} items not handled; run the same command again to continue",
            err=True,
        )
        sys.exit(130)
    if result.failures:
        for failure in result.failures:
            click.echo(f"failed: {failure.item}: {failure.error}", err=True)
        sys.exit(1)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C / SIGTERM: finish the items in hand, record them, start nothing new."""
    import signal

    def handler(_signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: give up at once
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def extraction_workers(concurrency: int, cpus: int | None) -> int:
    """Sandbox processes for a backfill: one per item in flight, at most one per CPU.

    Extraction is CPU work (and a worker may take up to its memory cap); items
    beyond the CPUs still overlap their fetch and storage with others' extraction.
    """
    return max(1, min(concurrency, cpus or 1))


@contextmanager
def _backfill_pipeline(app: App, concurrency: int) -> Iterator[Any]:
    from service.pipeline import Pipeline, PollLimits
    from service.sandbox import Sandbox
    from service.scheduler import rules_directory

    settings = app.settings
    rules = load_rules(rules_directory(settings))
    limits = PollLimits()
    sandbox = Sandbox(
        workers=extraction_workers(concurrency, os.cpu_count()),
        timeout=limits.sandbox_timeout,
        memory_bytes=limits.sandbox_memory_bytes,
    )
    pipeline = Pipeline(
        settings,
        session_factory=store.session_factory(app.engine),
        rules=rules,
        sandbox=sandbox,
        limits=limits,
    )
    try:
        yield pipeline
    finally:
        pipeline.close()
        sandbox.close()


class _BackfillProgress:
    """A rich progress bar with live counts (drawn on a terminal only)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("listing", total=None, counts="")

    def __enter__(self) -> _BackfillProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def listing(self, message: str) -> None:
        self._progress.update(self._task, description=f"listing: {message}")

    def listed(self, total: int) -> None:
        self._progress.update(self._task, description="backfill", total=total, completed=0)

    def advanced(self, outcome: Any, counts: Any) -> None:
        self._progress.update(
            self._task,
            advance=1,
            counts=(
                f"fetched {counts.fetched}  duplicates {counts.duplicates}  "
                f"extracted {counts.extracted}  events {counts.events}  failed {counts.failed}"
            ),
        )


def _backfill_report(result: Any, *, dry_run: bool) -> None:
    console = Console()
    if dry_run:
        table = Table(title="Would be stored (dry run)")
        for column in ("Item", "Title", "Published", "Events"):
            table.add_column(column, overflow="fold")
        for outcome in result.outcomes:
            if outcome.status is not None and outcome.status.value == "stored":
                table.add_row(
                    outcome.item.label,
                    outcome.title or "",
                    _when(outcome.published, "unknown"),
                    str(outcome.events),
                )
        console.print(table)
    counts = result.counts
    summary = Table(title="Backfill" + (" (dry run: nothing stored)" if dry_run else ""))
    summary.add_column("Count")
    summary.add_column("Items", justify="right")
    rows = (
        ("listed", counts.items),
        ("fetched", counts.fetched),
        ("extracted", counts.extracted),
        ("would be stored" if dry_run else "stored", counts.stored),
        ("duplicates", counts.duplicates),
        ("events", counts.events),
        ("skipped (dates, no text)", counts.skipped),
        ("done in an earlier run", counts.settled),
        ("failed", counts.failed),
    )
    for name, value in rows:
        summary.add_row(name, str(value))
    console.print(summary)
    if result.resumed:
        click.echo("Resumed an earlier run of this source: settled items were not redone.")


def _run_reextract(pipeline: Any, window: Any, apply: bool, stop: threading.Event) -> None:
    from service.backfill import reextract
    from service.reextract import describe

    def show(diff: Any) -> None:
        click.echo(
            f"article {diff.article_id} {diff.label}: {len(diff.added)} added, "
            f"{len(diff.removed)} removed, {len(diff.changed)} changed"
        )
        for event in diff.added:
            click.echo(f"  + {describe(event)}")
        for version in diff.removed:
            click.echo(f"  - {describe(version.event)}")
        for change in diff.changed:
            click.echo(
                f"  ~ {describe(change.old)} -> {describe(change.new)} [{', '.join(change.fields)}]"
            )

    result = reextract(
        pipeline, window=window, apply=apply, now=clock.now(), stop=stop, on_article=show
    )
    verb = "changed" if apply else "would change (run again with --apply to store)"
    click.echo(f"Re-extracted {result.articles} articles; {len(result.diffs)} {verb}.")
