"""A daemon killed mid-poll: the restarted daemon polls its feed within seconds, not
after the 900 s lease (issue 16, item 5), on SQLite and PostgreSQL.

``service run`` claims the loopback feed and is killed with SIGKILL while the feed's
answer hangs; a second ``service run`` on the same database sees that the claim is no
longer renewed and polls the feed, storing its entry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa

from service import models, store
from tests.backends import BACKENDS
from tests.servers import REPO_ROOT, LoopbackServer, Request, Response

HEARTBEAT = 0.5  # a claim not renewed for 1.5 s is taken over
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet</title>'
    b'<item><guid isPermaLink="false">a</guid><title>A</title>'
    b"<description>A convoy of trucks reached the town on Monday, residents said.</description>"
    b"</item></channel></rss>"
)


def start(config: Path, log: IO[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "service", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_a_killed_daemons_feed_is_polled_by_the_next_one_within_seconds(
    tmp_path: Path, empty_database_url: str
) -> None:
    requests: list[float] = []
    hang = threading.Event()
    hang.set()

    def feed(_request: Request) -> Response:
        requests.append(time.monotonic())
        if hang.is_set():
            hang.clear()  # only the first request hangs: the killed daemon's
            time.sleep(30)
        return Response(200, {"Content-Type": "application/rss+xml"}, FEED)

    url = empty_database_url
    store.upgrade(url)
    with LoopbackServer(max_handler_seconds=40) as server:
        server.route("/feed.xml", feed)
        config = tmp_path / "service.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n\n'
            "[http]\nallow_private_networks = true\ntimeout_seconds = 60\n\n"
            # lease_seconds: the default, 900.
            f"[scheduler]\ntick_seconds = 1\nheartbeat_seconds = {HEARTBEAT}\n"
        )
        (tmp_path / "feeds.toml").write_text(
            f'[[feeds]]\nname = "outlet"\nurl = "{server.url("/feed.xml")}"\n'
            'outlet = "Outlet"\ninterval_seconds = 3600\n'
        )
        logs = [(tmp_path / f"daemon-{i}.log").open("w") for i in range(2)]
        first = start(config, logs[0])
        second: subprocess.Popen[str] | None = None
        try:
            assert wait_until(lambda: len(requests) >= 1, 30), "the first daemon never polled"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed = time.monotonic()
            second = start(config, logs[1])
            assert wait_until(lambda: len(requests) >= 2, 30), "the feed was not taken over"
            taken_over_after = requests[1] - killed
            engine = store.create_engine(url)
            try:

                def recorded() -> bool:
                    with engine.connect() as connection:
                        articles = connection.scalar(
                            sa.select(sa.func.count()).select_from(models.Article)
                        )
                        feed = connection.execute(sa.select(models.Feed)).one()
                    return bool(articles) and feed.last_polled is not None

                assert wait_until(recorded, 20)
                with engine.connect() as connection:
                    feed_row = connection.execute(sa.select(models.Feed)).one()
            finally:
                engine.dispose()
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
            for log in logs:
                log.close()
    # The second daemon's start-up (imports, sandbox workers) plus three heartbeats,
    # far from the 900 s lease.
    assert taken_over_after < 15, taken_over_after
    assert feed_row.last_error is None and feed_row.claimed_by is None
    second_log = (tmp_path / "daemon-1.log").read_text()
    assert "Feed claim taken over" in second_log
