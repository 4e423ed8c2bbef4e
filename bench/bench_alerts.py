"""Webhook alerts: outbox cost per event and delivery throughput to a loopback receiver.

Stores ``--events`` events (one article each) on a fresh SQLite database and queues
their alerts for ``--subscribers`` subscribers in the same transactions, as
``Pipeline.ingest`` does; then a ``Deliverer`` (``alerts.workers`` = 4) sends them all
to an HTTP receiver on 127.0.0.1 that answers 204 at once. Prints the queueing cost
per event, deliveries per second, and the time from queueing to receipt.

DESIGN.md's goal is an alert within a minute of a report appearing; with the default
``alerts.tick_seconds`` (5 s) the worker's own cost must stay far below that.

Run from the repository root:

    .venv/bin/python bench/bench_alerts.py [--events 300] [--subscribers 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import platform
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from service import clock, store  # noqa: E402
from service.alerts.delivery import Deliverer  # noqa: E402
from service.config import load_settings  # noqa: E402
from service.enums import AlertKind, ArticleOrigin  # noqa: E402
from service.events import (  # noqa: E402
    Actor,
    Affiliation,
    DatePrecision,
    Event,
    EventType,
    Evidence,
    Location,
    Precision,
    Source,
)
from service.fetch import Fetcher, FetchLimits  # noqa: E402
from service.hashing import content_hash  # noqa: E402
from service.pipeline import build_client  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = Event(
    type=EventType.DEPLOYMENT,
    actor=Actor("Liwa Fatemiyoun", Affiliation.IRAN_BACKED),
    location=Location("al-Mayadin", 35.0194, 40.4514, "Al Mayadin", Precision.TOWN),
    origin=None,
    date="2024-04-30",
    date_precision=DatePrecision.DAY,
    hedged=False,
    in_region=True,
    evidence=Evidence("a convoy arrived", 0, 16),
    source=Source("SOHR", "SOHR", "https://outlet.example/1"),
)


def receiver(arrivals: list[float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            arrivals.append(time.monotonic())
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--subscribers", type=int, default=3)
    args = parser.parse_args()

    arrivals: list[float] = []
    server = receiver(arrivals)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        hooks = "".join(
            f'[[webhooks]]\nname = "sub{i}"\nurl = "{url}"\nsecret = "{SECRET}"\n'
            for i in range(args.subscribers)
        )
        (Path(tmp) / "service.toml").write_text(f'[database]\nurl = "{db}"\n{hooks}')
        (Path(tmp) / "feeds.toml").write_text("")
        settings = load_settings(Path(tmp) / "service.toml", environ={})
        store.upgrade(db)
        engine = store.create_engine(db)
        factory = store.session_factory(engine)

        queued_at: list[float] = []
        started = time.perf_counter()
        for n in range(args.events):
            with store.session_scope(factory) as session:
                article_id = store.add_article(
                    session,
                    store.NewArticle(
                        text=f"report {n}",
                        content_hash=content_hash(f"report {n}"),
                        origin_kind=ArticleOrigin.FEED,
                        fetched=clock.now(),
                        url=f"https://outlet.example/{n}",
                        outlet="Outlet",
                    ),
                )
                writes = store.store_events(session, article_id, [EVENT], now=clock.now())
                store.enqueue_deliveries(
                    session,
                    [(w.event_id, AlertKind.CREATED) for w in writes],
                    settings.webhooks,
                    now=clock.now(),
                )
            queued_at.append(time.monotonic())
        store_seconds = time.perf_counter() - started

        total = args.events * args.subscribers
        with build_client() as client:
            limits = FetchLimits(
                allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),), per_host_concurrency=4
            )
            deliverer = Deliverer(
                settings, session_factory=factory, fetcher=Fetcher(client, limits)
            )
            send_started = time.monotonic()
            while len(arrivals) < total:
                if not deliverer.deliver_due():
                    time.sleep(0.01)
            send_seconds = time.monotonic() - send_started
            deliverer.close()
        engine.dispose()
    server.shutdown()

    print(f"machine: {platform.platform()}, Python {platform.python_version()}")
    print(
        f"outbox: {args.events} events x {args.subscribers} subscribers, "
        f"store + queue {store_seconds / args.events * 1000:.2f} ms per event (SQLite, one "
        "transaction each)"
    )
    print(
        f"delivery: {total} signed POSTs in {send_seconds:.2f} s = "
        f"{total / send_seconds:.0f} deliveries/s (alerts.workers = 4, loopback receiver)"
    )
    waits = sorted(arrivals[i] - send_started for i in range(len(arrivals)))
    print(
        f"from the start of sending to receipt: median {statistics.median(waits) * 1000:.0f} ms, "
        f"max {waits[-1] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
