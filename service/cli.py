"""The ``service`` command line: a click group, one sub-command per task.

Adding a command: decorate a function with ``@main.command()`` (or ``@db.command()``)
and take the shared :class:`App` with ``@pass_app``; ``app.settings`` loads and
validates the configuration on first use, ``app.engine`` opens the database.
Errors the service raises on purpose become one line on stderr: exit code 2 for
configuration errors, 1 for the rest; no traceback.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
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
from service.errors import ConfigError, IngestError
from service.evaluate import Prediction, read_gold, score
from service.export import CSV_COLUMNS, csv_row
from service.rules import PROJECT_RULES, Document, RuleSet, load_rules
from service.seeding import DEFAULT_MANIFEST, import_seeds


class ServiceGroup(click.Group):
    """A click group that reports the service's errors as one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
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
    """Import the seed corpus as articles; a second run adds nothing."""
    docs = read_manifest(manifest)
    with app.session() as session:
        result = import_seeds(session, docs, now=clock.now(), settings=app.settings.dedup)
        total = store.count_articles(session, seeds_only=True)
    click.echo(
        f"Seed corpus: {result.added} added, {result.skipped} already stored "
        f"({total} seed articles in the database)."
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
    for column in (*columns, "Entries", "Events"):
        table.add_column(column, overflow="fold", no_wrap=column in ("Name", "Every", "Errors"))
    table.add_column("URL", overflow="fold")
    for state in states:
        status = "" if state.last_status is None else str(state.last_status)
        if state.last_error:
            status = f"{status} {state.last_error}".strip()
        table.add_row(
            state.name if state.configured else f"{state.name} (not configured)",
            state.outlet,
            _duration(state.interval_seconds),
            _when(state.last_polled, "never"),
            status or "-",
            str(state.consecutive_errors),
            _when(state.next_due, "now"),
            str(state.entries_seen),
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

    if run_config is not None:
        app.config_path = run_config
    outcomes = scheduler.run(app.settings, app.engine, once=once)
    for outcome in outcomes:
        detail = outcome.error or (
            f"{outcome.new_entries} new entries, {outcome.articles} articles "
            f"({outcome.fallbacks} from entry text), {outcome.duplicates} duplicates, "
            f"{outcome.events} events"
        )
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
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Newest N articles; 0 for all.",
)
@pass_app
def articles(app: App, duplicates: bool, limit: int) -> None:
    """Show stored articles, newest first, with what each duplicates and how closely."""
    with app.session() as session:
        stored = store.list_articles(
            session, duplicates_only=duplicates, limit=limit or None, newest_first=True
        )
    console = Console()
    if not stored:
        console.print("No duplicates stored." if duplicates else "No articles stored yet.")
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


def _when(moment: datetime | None, missing: str) -> str:
    return missing if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


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
        for event in rules.extract(document):
            click.echo(json.dumps({"file": name, **event.to_dict()}, ensure_ascii=False))


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
    predictions = [
        Prediction(doc.file, event)
        for doc in read_manifest(manifest)
        for event in rules.extract(read_manifest_doc(doc))
    ]
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
