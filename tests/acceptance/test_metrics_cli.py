"""/metrics and /healthz scraped from a running ``service run`` process on 127.0.0.1.

The daemon polls a loopback outlet (three reports, one page missing) and an
unreachable feed, and sends the alerts to a receiver; the counters it exposes
match what it stored and sent.  /healthz says ok with the age of the last good
poll (its 503 cases: tests/unit/test_health.py, tests/integration/test_health_server.py).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import store
from tests.acceptance.test_alerts_cli import SECRET, start_daemon
from tests.acceptance.test_run import REPORTS, Outlet, invoke, write_config
from tests.receiver import Receiver
from tests.servers import LoopbackServer, free_port


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    with LoopbackServer() as server:
        yield Outlet(server)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_and_healthz_of_a_running_daemon(tmp_path: Path, outlet: Outlet) -> None:
    outlet.publish(*reversed(REPORTS))
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}/feed.xml"
    with Receiver([SECRET]) as receiver:
        config = write_config(
            tmp_path, [("valley", outlet.server.url("/feed.xml")), ("gone", dead)], tick=1
        )
        with config.open("a") as handle:
            handle.write(
                f"\n[http_server]\nenabled = true\nport = {port}\n\n"
                f'[[webhooks]]\nname = "analysts"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
            )
        invoke("--config", str(config), "db", "upgrade")
        process = start_daemon(config)
        base = f"http://127.0.0.1:{port}"
        try:
            engine = store.create_engine(f"sqlite:///{tmp_path / 'service.db'}")
            factory = store.session_factory(engine)

            def everything_sent() -> bool:
                with store.session_scope(factory) as session:
                    states = store.list_deliveries(session)
                    stored = store.count_articles(session)
                return stored == 3 and bool(states) and len(receiver.delivered()) == len(states)

            assert receiver.wait_for(everything_sent, 30)
            with store.session_scope(factory) as session:
                articles = store.count_articles(session)
                events = store.count_events(session)
                deliveries = len(store.list_deliveries(session))
            engine.dispose()
            time.sleep(0.5)  # the last attempt's outcome is counted after it is recorded

            metrics = samples(httpx.get(f"{base}/metrics").text)
            assert metrics[("service_polls_total", (("outcome", "ok"),))] >= 1
            assert metrics[("service_polls_total", (("outcome", "failed"),))] >= 1
            assert metrics[("service_fetch_errors_total", (("kind", "network"),))] >= 1
            assert metrics[("service_articles_total", (("origin", "feed"),))] == 2
            assert metrics[("service_articles_total", (("origin", "entry_fallback"),))] == 1
            assert articles == 3
            assert metrics[("service_events_total", ())] == events
            assert metrics[("service_deliveries_total", (("outcome", "delivered"),))] == deliveries
            assert metrics[("service_poll_duration_seconds_count", ())] >= 2
            assert metrics[("service_delivery_duration_seconds_count", ())] == deliveries
            assert metrics[("service_last_successful_poll_timestamp_seconds", ())] > 0

            health = httpx.get(f"{base}/healthz")
            assert health.status_code == 200, health.text
            body = health.json()
            assert (body["status"], body["database"], body["scheduler"]) == ("ok", "ok", "alive")
            assert 0 <= body["last_successful_poll_age_seconds"] < 30

            assert httpx.get(f"{base}/nothing").status_code == 404

            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, stderr
