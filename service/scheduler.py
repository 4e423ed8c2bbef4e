"""The daemon: a thin APScheduler 3 poll job, the webhook delivery loop, /metrics.

Each tick (``scheduler.tick_seconds``) calls ``pipeline.poll_due(now=clock.now())``;
which feeds are due is the database's business (``feeds.next_due``), so the schedule
survives restarts and is shared by replicas.  The job never overlaps itself
(``max_instances=1``) and missed ticks collapse into one (``coalesce``).  Beside it,
the deliverer's loop (``Deliverer.run_until``, a thread of its own, so a slow or dead
receiver never holds up polling) sends the webhook deliveries that are due every
``alerts.tick_seconds``, and at once when the pipeline has just queued some (the
pipeline's ``on_alerts_queued`` wakes it): an alert leaves within moments of the
poll that found its report, not at the next delivery tick.  With
``[http_server] enabled``, ``service.observe`` serves /metrics and /healthz.

SIGTERM/SIGINT: the pipeline and the deliverer are asked to stop (the entry in hand
is finished and its poll recorded; webhook attempts in flight finish and are
recorded; nothing new starts), the scheduler shuts down waiting for the running
ticks, the worker processes are stopped, and ``run`` returns (exit 0).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from sqlalchemy.engine import Engine

from service import clock, store
from service.alerts.delivery import Deliverer
from service.config import HttpServerSettings, Settings
from service.fetch import IPNetwork
from service.observe import HealthInputs, ObservabilityServer
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
        outage=pipeline.database_outage,
    )


class Daemon:
    """Runs ``pipeline.poll_due`` every ``tick_seconds`` and the deliverer's loop beside
    it until ``stop`` is set; with ``http_server``, serves /metrics and /healthz."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        tick_seconds: float,
        deliverer: Deliverer | None = None,
        delivery_tick_seconds: float = 5.0,
        http_server: HttpServerSettings | None = None,
        now: Callable[[], datetime] = clock.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.deliverer = deliverer
        self.delivery_tick_seconds = delivery_tick_seconds
        self.http_server = http_server
        self._now = now
        self._monotonic = monotonic
        self._scheduler: BackgroundScheduler | None = None
        self._in_tick = False
        self._last_tick_end: float | None = None
        self.server: ObservabilityServer | None = None

    def tick(self) -> None:
        self._in_tick = True
        try:
            self.pipeline.poll_due(now=self._now())
        except Exception as exc:  # the pipeline records per-feed failures; a last guard
            if not self.pipeline.database_outage.failed(exc, during="poll tick"):
                log.critical("Poll tick failed", exc_info=True)
        finally:
            self._in_tick = False
            self._last_tick_end = self._monotonic()

    def scheduler_alive(self) -> bool:
        """The poll job runs: a tick is in progress, or one ended within three ticks."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return False
        if self._in_tick or self._last_tick_end is None:
            return True
        return self._monotonic() - self._last_tick_end <= 3 * self.tick_seconds + 10

    def health_inputs(self) -> HealthInputs:
        settings = self.pipeline.settings
        return HealthInputs(
            database_error=store.ping(self.pipeline.session_factory),
            scheduler_alive=self.scheduler_alive(),
            last_success=self.pipeline.last_success,
            now=self._now(),
            max_poll_age_seconds=settings.http_server.max_poll_age_seconds,
        )

    def run_until(self, stop: threading.Event) -> None:
        # APScheduler logs two INFO lines per tick; the pipeline's poll line says it all.
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
        if self.http_server is not None and self.http_server.enabled:
            # Started first: a port already taken fails the start, not a later scrape.
            self.server = ObservabilityServer(
                self.http_server.host, self.http_server.port, self.health_inputs
            ).start()
        scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler = scheduler
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
        delivery: threading.Thread | None = None
        if self.deliverer is not None:
            deliverer = self.deliverer
            self.pipeline.on_alerts_queued = deliverer.wake
            delivery = threading.Thread(
                target=deliverer.run_until,
                args=(stop,),
                kwargs={"tick_seconds": self.delivery_tick_seconds},
                name="deliver-due",
                daemon=True,
            )
        scheduler.start()
        if delivery is not None:
            delivery.start()
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
        if delivery is not None:
            delivery.join()
        if self.server is not None:
            self.server.stop()
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
            http_server=settings.http_server,
        ).run_until(stop)
        return []
    finally:
        deliverer.close()
        pipeline.close()
