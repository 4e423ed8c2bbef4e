"""Logging set-up: constant messages, data in fields.

Call sites log a fixed message and pass data through ``extra`` with the shared
field names (``feed_url``, ``entry_id``, ``action``, ``status``, ``duration_ms``)::

    logger.info("Feed polled", extra={"feed_url": url, "status": 200, "duration_ms": 84})

The formatter appends every such field as ``key=value`` after the message.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

FIELDS = ("feed_url", "entry_id", "action", "status", "duration_ms")

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class KeyValueFormatter(logging.Formatter):
    """``2024-01-01T12:00:00Z INFO service.x: Message key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        ordered = [k for k in FIELDS if k in extras] + sorted(k for k in extras if k not in FIELDS)
        if ordered:
            line += " " + " ".join(f"{key}={_value(extras[key])}" for key in ordered)
        return line


def _value(value: object) -> str:
    text = str(value)
    return repr(text) if (not text or any(ch.isspace() for ch in text)) else text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send the service's logs to ``stream`` (default: stderr) at ``level``; idempotent."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_service_handler", False):
            root.removeHandler(old)
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(KeyValueFormatter())
    handler._service_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # SQLAlchemy and Alembic are chatty at INFO; their warnings still come through.
    for name in ("sqlalchemy", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
