"""A webhook receiver on 127.0.0.1 for tests: verifies every POST like a real subscriber.

Each request is verified with the ``standardwebhooks`` reference library (a receiver
independent of the service's own ``verify``) against the secrets the receiver holds,
recorded, then answered by ``behaviour``: an HTTP status, a status with headers, or
``HANG`` (read the request, say nothing for ``hang_seconds``). ``delivered()`` counts
only the answers that reached the sender: 2xx written without error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

HANG = -1


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: str
    verified: bool
    error: str | None = None
    answered: int | None = None  # the status written back, None if none reached the sender

    @property
    def document(self) -> Any:
        return json.loads(self.body)


Behaviour = Callable[[Received], int | tuple[int, dict[str, str]]]


@dataclass
class Receiver:
    secrets: Sequence[str]
    behaviour: Behaviour = lambda _r: 204
    hang_seconds: float = 10.0
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                headers = {k.lower(): v for k, v in self.headers.items()}
                item = Received(headers.get("webhook-id", ""), headers, body, verified=False)
                for secret in owner.secrets:
                    try:
                        Webhook(secret).verify(body, headers)
                        item.verified = True
                        break
                    except WebhookVerificationError as exc:
                        item.error = str(exc)
                with owner._lock:
                    owner.received.append(item)
                owner.arrived.set()
                answer = owner.behaviour(item)
                status, extra = answer if isinstance(answer, tuple) else (answer, {})
                if status == HANG:
                    time.sleep(owner.hang_seconds)
                    return
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                except OSError:
                    return
                item.answered = status

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def delivered(self) -> dict[str, int]:
        """webhook-id -> how many times a 2xx answer for it reached the sender."""
        counts: dict[str, int] = {}
        with self._lock:
            for item in self.received:
                if item.answered is not None and 200 <= item.answered < 300:
                    counts[item.webhook_id] = counts.get(item.webhook_id, 0) + 1
        return counts

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()
