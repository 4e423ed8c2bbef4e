"""A database outage in the daemon's log: one line when it starts, a reminder at a slow
rate while it lasts, one line when it ends.

Every loop of the daemon (due feeds, due webhook deliveries) touches the database on
every tick; while the database is down each tick fails the same way, and logging
each failure with its traceback wrote about 1 MB of stderr a minute.  The loops
report their database failures to one ``OutageLog`` (the pipeline's, shared with the
deliverer) and their successes too; it decides what reaches the log:

* the first failure: one ERROR line, ``Database unavailable``, with the error's
  first line (the traceback only at DEBUG);
* while it lasts: ``Database still unavailable`` every ``remind_seconds`` (default
  five minutes), with how long and how many failed attempts;
* the first success after it: one WARNING line, ``Database available again``.

``/healthz`` answers 503 during the outage (``store.ping``), whatever the log says.
A failure that is not the database being unreachable (a bug, a constraint) is not
an outage: callers keep logging those in full.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

log = logging.getLogger("service.database")

REMIND_SECONDS = 300.0


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or an exception it was raised from) says the database
    cannot be reached or the connection was lost, rather than refusing a statement."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.DisconnectionError
            | sa_exc.InvalidatePoolError,
        ):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def _first_line(error: BaseException) -> str:
    """The driver's words (its first line, without SQLAlchemy's trailers) when the
    chain holds a driver error, else the error's own first line."""
    shown: BaseException = error
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, BaseException):
            shown = current.orig
            break
        current = current.__cause__ or current.__context__
    text = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


class OutageLog:
    """Turns a stream of database failures and successes into three kinds of line; thread-safe."""

    def __init__(
        self,
        *,
        remind_seconds: float = REMIND_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.remind_seconds = remind_seconds
        self._monotonic = monotonic
        self._log = logger
        self._lock = threading.Lock()
        self._since: float | None = None  # when the outage began (monotonic)
        self._last_line = 0.0
        self._failures = 0

    @property
    def down(self) -> bool:
        """True between the first failure of an outage and the next success."""
        return self._since is not None

    def failed(self, error: BaseException, *, during: str) -> bool:
        """Report a failure; True when it was the database being unavailable (handled
        here), False for any other error (the caller logs it in full)."""
        if not database_unavailable(error):
            return False
        now = self._monotonic()
        with self._lock:
            self._failures += 1
            if self._since is None:
                self._since = self._last_line = now
                first = True
            elif now - self._last_line >= self.remind_seconds:
                self._last_line = now
                first = False
            else:
                return True
            since, failures = self._since, self._failures
        if first:
            self._log.error(
                "Database unavailable; polls and deliveries wait for it",
                extra={
                    "during": during,
                    "error": _first_line(error),
                    "remind_seconds": round(self.remind_seconds),
                },
            )
            self._log.debug("Database failure", exc_info=error)
        else:
            self._log.error(
                "Database still unavailable",
                extra={
                    "down_seconds": round(now - since),
                    "failures": failures,
                    "error": _first_line(error),
                },
            )
        return True

    def succeeded(self) -> None:
        """Report a database round trip that worked: ends an outage, if there was one."""
        if self._since is None:  # the common case, without the lock
            return
        now = self._monotonic()
        with self._lock:
            if self._since is None:
                return
            since, failures = self._since, self._failures
            self._since = None
            self._failures = 0
        self._log.warning(
            "Database available again",
            extra={"down_seconds": round(now - since), "failures": failures},
        )
