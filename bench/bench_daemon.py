"""Daemon load: 1,000 feeds polled every 5 minutes, CPU share and peak RSS of ``service run``.

The feeds are served by a loopback server in this process; ``service run`` is a
subprocess on a fresh SQLite database.  Time is compressed honestly: the feeds'
first due times are spread evenly over one 300 s interval, so the daemon polls at
the real rate (1,000 / 300 s = 3.3 feeds a second) for ``--seconds``; every poll is
the expensive kind (a full GET with a new entry whose article page is fetched,
extracted in the sandbox, run through the rules and stored), where in steady state
most polls would be a 304.  CPU is user + system time of the daemon and its
sandbox workers over the measured window, as a share of one core; RSS is the sum
over the same processes, sampled every 0.5 s.

    .venv/bin/python bench/bench_daemon.py [--feeds 1000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.common import cpu_seconds, machine, rss_bytes, tree  # noqa: E402
from service import clock, models, store  # noqa: E402
from service.config import load_settings  # noqa: E402
from tests.servers import FeedFarm, LoopbackServer  # noqa: E402

INTERVAL = 300


def write_config(workdir: Path, farm: FeedFarm, feeds: int) -> Path:
    config = workdir / "service.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{workdir / "service.db"}"\n\n'
        "[http]\nallow_private_networks = true\ntimeout_seconds = 10\n\n"
        "[scheduler]\ntick_seconds = 1\nworkers = 4\n",
        encoding="utf-8",
    )
    (workdir / "feeds.toml").write_text(
        "".join(
            f'[[feeds]]\nname = "feed-{n}"\nurl = "{farm.url(n)}"\noutlet = "Outlet {n}"\n'
            f"interval_seconds = {INTERVAL}\n\n"
            for n in range(feeds)
        ),
        encoding="utf-8",
    )
    return config


def spread_due_times(config: Path, feeds: int) -> None:
    """Insert the feeds with first due times spread evenly over one interval."""
    settings = load_settings(config, environ={})
    store.upgrade(settings.database_url)
    engine = store.create_engine(settings.database_url)
    start = clock.now() + timedelta(seconds=5)  # the daemon's start-up
    with store.session_scope(store.session_factory(engine)) as session:
        store.sync_feeds(session, settings.feeds)
        for n in range(feeds):
            session.execute(
                sa.update(models.Feed)
                .where(models.Feed.name == f"feed-{n}")
                .values(next_due=start + timedelta(seconds=INTERVAL * n / feeds))
            )
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        workdir = Path(tmp)
        farm = FeedFarm(server, args.feeds, pages=True)
        config = write_config(workdir, farm, args.feeds)
        spread_due_times(config, args.feeds)
        log = (workdir / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "service", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            time.sleep(5)  # start-up (imports, sandbox workers) is not the steady state
            for n in range(args.feeds):
                farm.publish(n)  # every poll finds a new entry
            pids = tree(daemon.pid)
            cpu_start, wall_start = cpu_seconds(pids), time.monotonic()
            polls_start = sum(len(p) for p in farm.polls)
            peak = 0
            while time.monotonic() - wall_start < args.seconds:
                pids = tree(daemon.pid)
                peak = max(peak, rss_bytes(pids))
                time.sleep(0.5)
            pids = tree(daemon.pid)
            cpu = cpu_seconds(pids) - cpu_start
            wall = time.monotonic() - wall_start
            polls = sum(len(p) for p in farm.polls) - polls_start
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            log.close()
        stored = len(server.requests)
    share = cpu / wall
    print(f"feeds: {args.feeds}, interval {INTERVAL} s; measured window {wall:.1f} s")
    expected = args.feeds / INTERVAL
    print(f"polls in window: {polls} ({polls / wall:.2f}/s; expected {expected:.2f}/s)")
    print(f"requests served in all: {stored}")
    print(f"processes: {len(pids)} (daemon and sandbox workers)")
    print(f"CPU: {cpu:.1f} s in {wall:.1f} s = {share * 100:.1f} % of one core (goal < 25 %)")
    print(f"peak RSS: {peak / 2**20:.0f} MiB (goal < 300 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
