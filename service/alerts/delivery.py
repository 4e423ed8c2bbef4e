"""The delivery worker: sends due outbox rows, one signed POST each, and records the outcome.

Each call of :meth:`Deliverer.deliver_due` claims up to ``alerts.workers`` due
deliveries (a lease; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) in one short
transaction, sends them in parallel, and records each outcome in its own
transaction. It runs as its own daemon job beside polling, so a slow or dead
receiver costs at most ``alerts.timeout_seconds`` of one worker thread, never a
poll. Send failures are logged and recorded, never raised.

Exactly once per (event, subscriber, kind): the row's ``webhook_id`` goes out on
every attempt. A process killed after sending but before recording sends again
after the lease, with the same ``webhook-id``, and the receiver drops the repeat.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import clock, metrics, store
from service.alerts import payload, retry, signing
from service.alerts.retry import AttemptResult, RetryPolicy
from service.config import Settings, WebhookSettings
from service.enums import DeliveryStatus
from service.errors import FetchError, IngestError
from service.fetch import Fetcher
from service.outage import OutageLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    delivery_id: int
    webhook_id: str
    subscriber: str
    attempt: int
    result: AttemptResult
    status: DeliveryStatus


def send(
    fetcher: Fetcher,
    hook: WebhookSettings,
    *,
    webhook_id: str,
    body: str,
    timeout: float,
    timestamp: int,
) -> AttemptResult:
    """One signed POST of ``body`` to ``hook``; never raises for a failed exchange."""
    headers = signing.headers(hook.secrets, webhook_id=webhook_id, timestamp=timestamp, body=body)
    try:
        answer = fetcher.post(hook.url, body=body.encode("utf-8"), headers=headers, timeout=timeout)
    except FetchError as exc:
        message = str(exc).removeprefix(f"{exc.url}: ")
        return AttemptResult(status=None, error=f"{exc.kind}: {message}")
    return AttemptResult(
        status=answer.status, retry_after=answer.retry_after, duration_ms=answer.duration_ms
    )


def send_test(
    fetcher: Fetcher, hook: WebhookSettings, *, timeout: float, now: datetime
) -> tuple[str, AttemptResult]:
    """Send a sample alert (``type: webhook.test``) outside the outbox; (webhook-id, result)."""
    webhook_id = store.new_webhook_id()
    body = payload.build_body(payload.sample_subject(now), None, hook.format, now=now)
    result = send(
        fetcher,
        hook,
        webhook_id=webhook_id,
        body=body,
        timeout=timeout,
        timestamp=int(now.timestamp()),
    )
    return webhook_id, result


class Deliverer:
    """Sends due webhook deliveries; thread-safe; ``close()`` when done."""

    def __init__(
        self,
        settings: Settings,
        *,
        session_factory: sessionmaker[Session],
        fetcher: Fetcher,
        db_lock: threading.Lock | None = None,
        outage: OutageLog | None = None,
        policy: RetryPolicy | None = None,
        now: Callable[[], datetime] = clock.now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.fetcher = fetcher
        self.policy = policy or RetryPolicy.from_settings(settings.alerts)
        self._hooks = {hook.name: hook for hook in settings.webhooks}
        if db_lock is None:
            # SQLite: this process's transactions take turns (see Pipeline); share the
            # pipeline's lock when there is one.
            bind = session_factory.kw.get("bind")
            dialect = getattr(getattr(bind, "dialect", None), "name", "")
            db_lock = threading.Lock() if dialect == "sqlite" else None
        self._db_lock = db_lock
        # A database outage: logged once, reminded, and its end (shared with the pipeline).
        self.database_outage = outage if outage is not None else OutageLog()
        self._now = now
        self._rand = rand
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=settings.alerts.workers, thread_name_prefix="deliver"
        )

    def _transaction(self) -> AbstractContextManager[Session]:
        return store.locked_scope(self.session_factory, self._db_lock)

    def request_stop(self) -> None:
        """Finish the attempts in hand and record them; claim nothing new."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Deliveries were queued: have ``run_until`` look now rather than at its next tick."""
        self._wake.set()

    def run_until(self, stop: threading.Event, *, tick_seconds: float) -> None:
        """The daemon's delivery loop: look every ``tick_seconds`` or when woken, and
        keep claiming while whole batches come back (a backlog is not left for later
        ticks)."""
        while not stop.is_set() and not self._stop.is_set():
            self._wake.wait(tick_seconds)
            self._wake.clear()
            try:
                self.drain()
            except Exception as exc:  # deliver_due records per-delivery failures; a last guard
                if not self.database_outage.failed(exc, during="delivery tick"):
                    log.critical("Delivery tick failed", exc_info=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def drain(self, max_rounds: int = 1000) -> list[DeliveryOutcome]:
        """``deliver_due`` again while it claims full batches: everything due now is sent.

        One round claims at most ``alerts.workers`` deliveries; a backlog (a busy
        poll, ``backfill --alert``) must not wait one tick per handful of alerts.
        """
        outcomes: list[DeliveryOutcome] = []
        for _ in range(max_rounds):
            claimed, batch = self._deliver_batch()
            outcomes.extend(batch)
            if claimed < self.settings.alerts.workers or self._stop.is_set():
                break
        return outcomes

    def deliver_due(self) -> list[DeliveryOutcome]:
        """Claim the deliveries due now, attempt them in parallel, record each outcome."""
        return self._deliver_batch()[1]

    def _deliver_batch(self) -> tuple[int, list[DeliveryOutcome]]:
        """One round of ``deliver_due``: (deliveries claimed, outcomes recorded)."""
        if self._stop.is_set() or not self._hooks:
            return 0, []
        try:
            with self._transaction() as session:
                targets = store.claim_due_deliveries(
                    session,
                    now=self._now(),
                    subscriptions=self.settings.webhooks,
                    lease_seconds=self.settings.alerts.lease_seconds,
                    limit=self.settings.alerts.workers,
                )
        except IngestError as exc:
            if not self.database_outage.failed(exc, during="claim due deliveries"):
                log.critical("Cannot claim due deliveries", exc_info=True)
            return 0, []
        self.database_outage.succeeded()
        futures = [self._pool.submit(self._attempt_guarded, target) for target in targets]
        outcomes = [future.result() for future in futures]
        return len(targets), [outcome for outcome in outcomes if outcome is not None]

    def _attempt_guarded(self, target: store.DeliveryTarget) -> DeliveryOutcome | None:
        try:
            if self._stop.is_set():
                with self._transaction() as session:
                    store.release_delivery(session, target.id, due=self._now())
                return None
            return self.attempt(target)
        except Exception as exc:  # recording failed (database down): the lease brings it back
            if not self.database_outage.failed(exc, during="record a delivery attempt"):
                log.critical(
                    "Delivery attempt could not be recorded",
                    exc_info=True,
                    extra={"delivery_id": target.id, "subscriber": target.subscriber},
                )
            return None

    def attempt(self, target: store.DeliveryTarget) -> DeliveryOutcome:
        """Send one claimed delivery and record what came of it."""
        hook = self._hooks[target.subscriber]
        begun = time.monotonic()
        started = self._now()
        result = send(
            self.fetcher,
            hook,
            webhook_id=target.webhook_id,
            body=target.payload,
            timeout=self.settings.alerts.timeout_seconds,
            timestamp=int(started.timestamp()),
        )
        now = self._now()
        decision = retry.decide(
            result, attempts=target.attempts, policy=self.policy, now=now, rand=self._rand()
        )
        with self._transaction() as session:
            store.record_attempt(
                session,
                target.id,
                status=decision.status,
                http_status=result.status,
                error=decision.error,
                next_attempt_at=decision.next_attempt_at,
                now=now,
            )
            if decision.disable:
                store.disable_subscription(
                    session, hook.name, url=hook.url, reason=decision.error or "410", now=now
                )
        metrics.DELIVERY_SECONDS.observe(time.monotonic() - begun)
        metrics.DELIVERIES.labels(decision.status.value).inc()
        level = logging.INFO if decision.status is not DeliveryStatus.FAILED else logging.WARNING
        if decision.status is DeliveryStatus.DEAD:
            level = logging.ERROR
        log.log(
            level,
            "Webhook attempt",
            extra={
                "subscriber": hook.name,
                "webhook_id": target.webhook_id,
                "kind": target.kind.value,
                "event_id": target.event_id,
                "attempt": target.attempts,
                "status": result.status if result.status is not None else "-",
                "outcome": decision.status.value,
                "error": decision.error or "-",
                "next_attempt_at": (
                    decision.next_attempt_at.isoformat() if decision.next_attempt_at else "-"
                ),
                "duration_ms": result.duration_ms,
            },
        )
        return DeliveryOutcome(
            delivery_id=target.id,
            webhook_id=target.webhook_id,
            subscriber=hook.name,
            attempt=target.attempts,
            result=result,
            status=decision.status,
        )
