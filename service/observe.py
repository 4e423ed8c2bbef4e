"""The daemon's observability endpoint (``[http_server]``): ``/metrics`` and ``/healthz``.

``/metrics`` is prometheus-client's text exposition of ``service.metrics``.
``/healthz`` answers 200 or 503 with a JSON body::

    {"status": "ok", "database": "ok", "scheduler": "alive",
     "last_successful_poll": "2024-05-01T12:00:03+00:00", "last_successful_poll_age_seconds": 41.2}

503 when the database does not answer, the scheduler is not running its poll job,
or (with ``http_server.max_poll_age_seconds``) the last successful poll is older
than that.  The server is stdlib ``ThreadingHTTPServer`` in a daemon thread; it
serves nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthInputs:
    """What ``/healthz`` judges, gathered at request time."""

    database_error: str | None  # None: the database answered
    scheduler_alive: bool
    last_success: datetime | None
    now: datetime
    max_poll_age_seconds: float  # 0: the age is reported, never judged


def health(inputs: HealthInputs) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of ``/healthz``."""
    age = (
        (inputs.now - inputs.last_success).total_seconds()
        if inputs.last_success is not None
        else None
    )
    problems: list[str] = []
    if inputs.database_error is not None:
        problems.append(f"database: {inputs.database_error}")
    if not inputs.scheduler_alive:
        problems.append("scheduler: not running")
    if inputs.max_poll_age_seconds > 0 and (age is None or age > inputs.max_poll_age_seconds):
        shown = "none yet" if age is None else f"{age:.0f}s ago"
        problems.append(f"last successful poll: {shown} (limit {inputs.max_poll_age_seconds:g}s)")
    body: dict[str, Any] = {
        "status": "unhealthy" if problems else "ok",
        "database": "ok" if inputs.database_error is None else "unreachable",
        "scheduler": "alive" if inputs.scheduler_alive else "stopped",
        "last_successful_poll": (
            inputs.last_success.isoformat() if inputs.last_success is not None else None
        ),
        "last_successful_poll_age_seconds": round(age, 3) if age is not None else None,
    }
    if problems:
        body["problems"] = problems
    return (503 if problems else 200), body


class ObservabilityServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` in a thread; ``stop()`` when done."""

    def __init__(self, host: str, port: int, health_inputs: Callable[[], HealthInputs]) -> None:
        self._health_inputs = health_inputs
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # the daemon's own log says enough
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
                elif path == "/healthz":
                    status, body = owner.healthz()
                    self._send(status, "application/json", json.dumps(body).encode())
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-server", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def healthz(self) -> tuple[int, dict[str, Any]]:
        try:
            inputs = self._health_inputs()
        except Exception as exc:  # never let a health probe take the server down
            log.error("Health check failed", exc_info=True)
            return 503, {"status": "unhealthy", "problems": [f"internal: {exc}"]}
        return health(inputs)

    def start(self) -> ObservabilityServer:
        self._thread.start()
        host, port = self.address
        log.info("HTTP server listening", extra={"host": host, "port": port})
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
