"""A database outage in the log: once, a slow reminder, one line at the end (issue 16, item 4)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from service.errors import StoreError
from service.outage import OutageLog, database_unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused() -> StoreError:
    """A StoreError raised from SQLAlchemy's wrapper of a refused connection, as store does."""
    driver = ConnectionRefusedError(
        "connection failed: connection to server at 127.0.0.1 port 5432 failed: "
        "Connection refused\n\tIs the server running on that host?"
    )
    wrapped = sa_exc.OperationalError("SELECT 1", {}, driver)
    try:
        try:
            raise wrapped from driver
        except sa_exc.OperationalError as exc:
            raise StoreError(f"cannot claim due feeds: {exc}") from exc
    except StoreError as exc:
        return exc


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "service.database" and r.levelno >= logging.INFO
    ]


def test_outage_logged_once_then_reminded_slowly_then_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="service.database")
    clock = Clock()
    outage = OutageLog(remind_seconds=300, monotonic=clock)
    # Two loops failing twice a second for ten minutes.
    for _ in range(1201):
        assert outage.failed(refused(), during="claim due feeds")
        clock.now += 0.5
    assert outage.down
    assert lines(caplog) == [
        ("ERROR", "Database unavailable; polls and deliveries wait for it"),
        ("ERROR", "Database still unavailable"),
        ("ERROR", "Database still unavailable"),
    ]
    first, reminder = caplog.records[0], [r for r in caplog.records if r.levelno > 10][1]
    # One line, with the driver's first line, no traceback.
    assert first.exc_info is None
    assert first.error == (  # type: ignore[attr-defined]
        "ConnectionRefusedError: connection failed: connection to server at 127.0.0.1 "
        "port 5432 failed: Connection refused"
    )
    assert reminder.down_seconds == 300 and reminder.failures == 601  # type: ignore[attr-defined]
    # The traceback is there for whoever runs at DEBUG, once.
    assert sum(r.exc_info is not None for r in caplog.records) == 1
    caplog.clear()
    outage.succeeded()
    outage.succeeded()
    assert lines(caplog) == [("WARNING", "Database available again")]
    assert 600 <= caplog.records[0].down_seconds <= 601  # type: ignore[attr-defined]
    assert caplog.records[0].failures == 1201  # type: ignore[attr-defined]
    assert not outage.down
    # A second outage is announced again.
    caplog.clear()
    outage.failed(refused(), during="claim due deliveries")
    assert lines(caplog) == [("ERROR", "Database unavailable; polls and deliveries wait for it")]


def test_other_errors_are_not_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(monotonic=Clock())
    assert not outage.failed(ValueError("a bug"), during="poll tick")
    integrity = sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not outage.failed(StoreError("cannot store"), during="poll tick")
    assert not database_unavailable(integrity)
    assert not outage.down
    assert lines(caplog) == []


def test_a_refused_connection_is_an_outage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")
    with pytest.raises(sa_exc.SQLAlchemyError) as caught, engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    assert database_unavailable(caught.value)
    assert database_unavailable(refused())
