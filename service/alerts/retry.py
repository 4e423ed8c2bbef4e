"""What one attempt's outcome means for a delivery, and when the next attempt is (pure).

Outcomes:

- 2xx: delivered.
- 410 Gone: dead, and the subscription is disabled (for that URL).
- 408, 429, 3xx (redirects are not followed), 5xx, network errors and timeouts:
  retried, until ``max_attempts`` attempts have been made; then dead.
- any other 4xx: dead at once (the receiver refuses this alert; retrying will not help).

The wait after the n-th failed attempt is ``min(ceiling, base * 3**(n-1))`` with
±20 % jitter; a Retry-After header lengthens it (never shortens it), clamped to the
ceiling. With the defaults (base 60 s, ceiling 8 h, 9 attempts) the nominal waits are
1 m, 3 m, 9 m, 27 m, 81 m, 4 h 3 m, 8 h, 8 h: the last attempt comes about 22 hours
after the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service.config import AlertSettings
from service.enums import DeliveryStatus

FACTOR = 3.0
JITTER = 0.2
RETRIED_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 60.0
    ceiling: float = 8 * 3600.0
    max_attempts: int = 9

    @classmethod
    def from_settings(cls, alerts: AlertSettings) -> RetryPolicy:
        return cls(
            base=alerts.retry_base_seconds,
            ceiling=alerts.retry_ceiling_seconds,
            max_attempts=alerts.max_attempts,
        )


def nominal_delay(failed_attempts: int, policy: RetryPolicy) -> float:
    """The wait after ``failed_attempts`` failures, before jitter."""
    exponent = min(max(failed_attempts - 1, 0), 64)
    return min(policy.ceiling, policy.base * FACTOR**exponent)


def schedule(policy: RetryPolicy) -> list[float]:
    """The nominal waits between attempts 1..max_attempts (one fewer than attempts)."""
    return [nominal_delay(n, policy) for n in range(1, policy.max_attempts)]


def retry_delay(
    failed_attempts: int, policy: RetryPolicy, *, rand: float, retry_after: float | None = None
) -> float:
    """The wait after ``failed_attempts`` failures; ``rand`` is a draw from [0, 1)."""
    rand = min(max(rand, 0.0), 1.0)
    delay = nominal_delay(failed_attempts, policy) * (1 - JITTER + 2 * JITTER * rand)
    if retry_after is not None:
        delay = max(delay, min(max(retry_after, 0.0), policy.ceiling))
    return delay


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt: the HTTP status, or None with an error (network, timeout, refused)."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Decision:
    status: DeliveryStatus
    next_attempt_at: datetime | None
    error: str | None
    disable: bool = False


def describe(result: AttemptResult) -> str | None:
    if result.ok:
        return None
    if result.status is None:
        return result.error or "no answer"
    if 300 <= result.status < 400:
        return f"HTTP {result.status} (redirects are not followed)"
    return f"HTTP {result.status}"


def decide(
    result: AttemptResult, *, attempts: int, policy: RetryPolicy, now: datetime, rand: float
) -> Decision:
    """The delivery's state after its ``attempts``-th attempt ended with ``result``."""
    error = describe(result)
    if result.ok:
        return Decision(DeliveryStatus.DELIVERED, None, None)
    status = result.status
    if status == 410:
        return Decision(DeliveryStatus.DEAD, None, f"{error}: subscription disabled", disable=True)
    if status is not None and 400 <= status < 500 and status not in RETRIED_4XX:
        return Decision(DeliveryStatus.DEAD, None, f"{error}: refused, not retried")
    if attempts >= policy.max_attempts:
        return Decision(DeliveryStatus.DEAD, None, f"{error}; gave up after {attempts} attempts")
    wait = retry_delay(attempts, policy, rand=rand, retry_after=result.retry_after)
    return Decision(DeliveryStatus.FAILED, now + timedelta(seconds=wait), error)
