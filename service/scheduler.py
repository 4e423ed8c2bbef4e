"""The daemon: two thin APScheduler 3 jobs, polling and webhook delivery.

Each tick (``scheduler.tick_seconds``) calls ``pipeline.poll_due(now=clock.now())``;
which feeds are due is the database's business (``feeds.next_due``), so the schedule
survives restarts and is shared by replicas.  Beside it, every ``alerts.tick_seconds``,
``deliverer.drain()`` sends the webhook deliveries that are due (the outbox
``deliveries``), in its own job and threads so that a slow or dead receiver never
holds up polling.  Neither job overlaps itself (``max_instances=1``) and missed
ticks collapse into one (``coalesce``).

SIGTERM/SIGINT: the pipeline and the deliverer are asked to stop (the entry in hand
is finished and its poll recorded; webhook attempts in flight finish and are
recorded; nothing new starts), the scheduler shuts down waiting for the running
ticks, the worker processes are stopped, and ``run`` returns (exit 0).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from sqlalchemy.engine import Engine

from service import clock, store
from service.alerts.delivery import Deliverer
from service.config import Settings
from service.fetch import IPNetwork
from service.pipeline import Pipeline, PollOutcome, Rules
from service.rules import load_rules

log = logging.getLogger(__name__)

_SOURCE_RULES = Path(__file__).resolve().parent.parent / "config" / "rules"


def rules_directory(settings: Settings) -> Path:
    """``rules/`` beside service.toml, else the project's ``config/rules``."""
    for candidate in (settings.config_path.parent / "rules", _SOURCE_RULES, Path("config/rules")):
        if candidate.is_dir():
            return candidate
    return settings.config_path.parent / "rules"


def build_pipeline(
    settings: Settings,
    engine: Engine,
    *,
    rules: Rules | None = None,
    allowed_networks: tuple[IPNetwork, ...] = (),
) -> Pipeline:
    return Pipeline(
        settings,
        session_factory=store.session_factory(engine),
        rules=rules if rules is not None else load_rules(rules_directory(settings)),
        allowed_networks=allowed_networks,
    )


def build_deliverer(settings: Settings, pipeline: Pipeline) -> Deliverer:
    """The webhook worker, sharing the pipeline's guarded fetcher and SQLite turn-taking."""
    return Deliverer(
        settings,
        session_factory=pipeline.session_factory,
        fetcher=pipeline.fetcher,
        db_lock=pipeline.db_lock,
    )


class Daemon:
    """Runs ``pipeline.poll_due`` every ``tick_seconds`` (and ``deliverer.drain``
    every ``delivery_tick_seconds``) until ``stop`` is set."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        tick_seconds: float,
        deliverer: Deliverer | None = None,
        delivery_tick_seconds: float = 5.0,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.deliverer = deliverer
        self.delivery_tick_seconds = delivery_tick_seconds
        self._now = now

    def deliver(self) -> None:
        if self.deliverer is None:
            return
        try:
            self.deliverer.drain()
        except Exception:  # the deliverer records per-delivery failures; a last guard
            log.critical("Delivery tick failed", exc_info=True)

    def tick(self) -> None:
        try:
            self.pipeline.poll_due(now=self._now())
        except Exception:  # the pipeline records per-feed failures; this is a last guard
            log.critical("Poll tick failed", exc_info=True)

    def run_until(self, stop: threading.Event) -> None:
        # APScheduler logs two INFO lines per tick; the pipeline's poll line says it all.
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_seconds,
            next_run_time=self._now(),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="poll-due",
        )
        if self.deliverer is not None:
            scheduler.add_job(
                self.deliver,
                "interval",
                seconds=self.delivery_tick_seconds,
                next_run_time=self._now(),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id="deliver-due",
            )
        scheduler.start()
        log.info(
            "Daemon started",
            extra={"feeds": len(self.pipeline.settings.feeds), "tick_seconds": self.tick_seconds},
        )
        stop.wait()
        log.info("Daemon stopping; finishing work in hand")
        self.pipeline.request_stop()
        if self.deliverer is not None:
            self.deliverer.request_stop()
        scheduler.shutdown(wait=True)
        log.info("Daemon stopped")


def _install_stop_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("Signal received", extra={"signal": signal.Signals(signum).name})
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def run(
    settings: Settings,
    engine: Engine,
    *,
    once: bool,
    stop: threading.Event | None = None,
    rules: Rules | None = None,
) -> list[PollOutcome]:
    """``service run``: poll every feed once and send the alerts due (``once``), or run
    the daemon until a stop signal."""
    pipeline = build_pipeline(settings, engine, rules=rules)
    deliverer = build_deliverer(settings, pipeline)
    try:
        pipeline.sync_feeds()
        if once:
            outcomes = pipeline.poll_all(now=clock.now())
            deliverer.drain()
            return outcomes
        if stop is None:
            stop = threading.Event()
            _install_stop_signals(stop)
        Daemon(
            pipeline,
            tick_seconds=settings.scheduler.tick_seconds,
            deliverer=deliverer,
            delivery_tick_seconds=settings.alerts.tick_seconds,
        ).run_until(stop)
        return []
    finally:
        deliverer.close()
        pipeline.close()
