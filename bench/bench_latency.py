"""Feed-to-webhook latency: from the poll that finds a new entry to the alert's arrival.

A loopback outlet (one feed, article pages) and a webhook receiver run in this
process; ``service run`` is a subprocess on a fresh SQLite database with the
shipped ``alerts.tick_seconds`` (5 s).  Each round publishes a new in-region
movement report; the clock starts when the daemon's GET of the feed is answered
with the new entry (the poll has started) and stops when the receiver gets the
signed alert.  The daemon's pipeline wakes the delivery worker after a
transaction that queued alerts, so the figure does not include a delivery tick.

    .venv/bin/python bench/bench_latency.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from service import store  # noqa: E402
from tests.receiver import Received, Receiver  # noqa: E402
from tests.servers import FeedFarm, LoopbackServer  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
INTERVAL = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()

    def behaviour(item: Received) -> int:
        with lock:
            arrivals.append((time.monotonic(), item.body))
        return 204

    latencies: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LoopbackServer() as server,
        Receiver([SECRET], behaviour=behaviour) as receiver,
    ):
        workdir = Path(tmp)
        farm = FeedFarm(server, 1, entries=0, pages=True)
        config = workdir / "service.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{workdir / "service.db"}"\n\n'
            "[http]\nallow_private_networks = true\n\n[scheduler]\ntick_seconds = 1\n\n"
            f'[[webhooks]]\nname = "analysts"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n',
            encoding="utf-8",
        )
        (workdir / "feeds.toml").write_text(
            f'[[feeds]]\nname = "outlet"\nurl = "{farm.url(0)}"\noutlet = "Outlet"\n'
            f"interval_seconds = {INTERVAL}\n",
            encoding="utf-8",
        )
        store.upgrade(f"sqlite:///{workdir / 'service.db'}")
        log = (workdir / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "service", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            time.sleep(4)  # start-up and the first (empty) poll
            for number in range(args.rounds):
                farm.publish(0)
                marker = f'/pages/0/{number}"'
                deadline = time.monotonic() + 4 * INTERVAL
                poll = arrival = None
                while time.monotonic() < deadline and (poll is None or arrival is None):
                    time.sleep(0.01)
                    with lock:
                        poll = next((t for t, n in farm.served[0] if n == number + 1), None)
                        arrival = next((t for t, body in arrivals if marker in body), None)
                if poll is None or arrival is None:
                    print(f"round {number}: no alert within {4 * INTERVAL} s", file=sys.stderr)
                    return 1
                latencies.append(arrival - poll)
                print(f"round {number}: {(arrival - poll) * 1000:.0f} ms")
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            log.close()
    latencies.sort()
    print(f"rounds: {len(latencies)}; poll interval {INTERVAL} s, alerts.tick_seconds 5 s")
    print(
        f"feed-to-webhook latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms (goal < 2000 ms after the poll starts)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
