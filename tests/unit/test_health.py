"""/healthz's verdict: database, scheduler and the age of the last successful poll."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.observe import HealthInputs, health

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def inputs(**changes: object) -> HealthInputs:
    base: dict[str, object] = {
        "database_error": None,
        "scheduler_alive": True,
        "last_success": NOW - timedelta(seconds=30),
        "now": NOW,
        "max_poll_age_seconds": 0.0,
    }
    base.update(changes)
    return HealthInputs(**base)  # type: ignore[arg-type]


def test_healthy_reports_the_age_of_the_last_successful_poll() -> None:
    status, body = health(inputs())
    assert status == 200
    assert body == {
        "status": "ok",
        "database": "ok",
        "scheduler": "alive",
        "last_successful_poll": "2024-05-01T11:59:30+00:00",
        "last_successful_poll_age_seconds": 30.0,
    }


def test_no_poll_yet_is_healthy_unless_an_age_limit_is_set() -> None:
    assert health(inputs(last_success=None))[0] == 200
    status, body = health(inputs(last_success=None, max_poll_age_seconds=600))
    assert status == 503
    assert body["problems"] == ["last successful poll: none yet (limit 600s)"]


def test_database_down_or_scheduler_stopped_is_503_naming_the_problem() -> None:
    status, body = health(inputs(database_error="connection refused"))
    assert (status, body["database"]) == (503, "unreachable")
    assert body["problems"] == ["database: connection refused"]
    status, body = health(inputs(scheduler_alive=False))
    assert (status, body["scheduler"], body["status"]) == (503, "stopped", "unhealthy")


def test_stale_poll_is_503_past_the_limit_only() -> None:
    assert health(inputs(max_poll_age_seconds=60))[0] == 200
    status, body = health(inputs(last_success=NOW - timedelta(hours=2), max_poll_age_seconds=60))
    assert status == 503 and body["problems"] == ["last successful poll: 7200s ago (limit 60s)"]
