"""Webhook alerts through the command line and the real daemon process.

``service run`` (a subprocess) polls a loopback outlet, stores an in-region event and
sends its alert to a receiver on 127.0.0.1 that verifies signatures. The receiver
holds the first attempt open; the daemon is killed with SIGKILL mid-delivery,
restarted, and the alert arrives: one 2xx per webhook-id, the same id as before.
Then ``alerts list``, ``alerts replay`` and ``alerts test``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import store
from service.cli import main
from service.enums import DeliveryStatus
from tests.acceptance.test_run import REPORTS, Outlet, invoke, write_config
from tests.receiver import HANG, Received, Receiver
from tests.servers import REPO_ROOT, LoopbackServer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    with LoopbackServer() as server:
        yield Outlet(server)


def configure(tmp_path: Path, outlet: Outlet, receiver: Receiver, alerts: str) -> Path:
    config = write_config(tmp_path, [("valley", outlet.server.url("/feed.xml"))], tick=1)
    with config.open("a") as handle:
        handle.write(
            f"\n[alerts]\n{alerts}\n"
            f'[[webhooks]]\nname = "analysts"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
            f'previous_secrets = ["{OLD_SECRET}"]\n'
        )
    invoke("--config", str(config), "db", "upgrade")
    return config


def deliveries(tmp_path: Path) -> list[store.DeliveryState]:
    engine = store.create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            return store.list_deliveries(session)
    finally:
        engine.dispose()


def start_daemon(config: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "service", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_mid_delivery_then_restart_delivers_once_per_id(
    tmp_path: Path, outlet: Outlet
) -> None:
    hung = threading.Event()

    def behaviour(_r: Received) -> int:
        if not hung.is_set():
            hung.set()
            return HANG  # the first attempt never gets an answer
        return 204

    outlet.publish(REPORTS[0])
    with Receiver([OLD_SECRET], behaviour=behaviour, hang_seconds=30) as receiver:
        config = configure(
            tmp_path,
            outlet,
            receiver,
            "tick_seconds = 0.2\ntimeout_seconds = 3\nlease_seconds = 4\n"
            "retry_base_seconds = 0.2\n",
        )
        process = start_daemon(config)
        try:
            assert receiver.arrived.wait(30), process.stderr
            process.kill()  # SIGKILL while the attempt is in flight
            process.wait(timeout=10)
            first = receiver.received[0]
            (row,) = [d for d in deliveries(tmp_path) if d.webhook_id == first.webhook_id]
            assert row.status is DeliveryStatus.PENDING and row.attempts == 1

            process = start_daemon(config)
            assert receiver.wait_for(lambda: first.webhook_id in receiver.delivered(), 30)
            states = deliveries(tmp_path)
            assert receiver.wait_for(lambda: len(receiver.delivered()) == len(states), 20), (
                receiver.delivered()
            )
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, stderr
    # Every request verified with the old secret: the rotation signs with both.
    assert all(item.verified for item in receiver.received)
    delivered = receiver.delivered()
    assert delivered == {state.webhook_id: 1 for state in states}
    assert [item.webhook_id for item in receiver.received].count(first.webhook_id) == 2
    final = {d.webhook_id: d for d in deliveries(tmp_path)}
    assert final[first.webhook_id].status is DeliveryStatus.DELIVERED
    assert final[first.webhook_id].attempts == 2
    assert all(d.status is DeliveryStatus.DELIVERED for d in final.values())
    assert first.document["type"] == "event.created"
    assert first.document["data"]["sources"][0]["url"] == outlet.server.url(
        "/reports/convoy-mayadin"
    )


def test_alerts_list_replay_and_test(tmp_path: Path, outlet: Outlet) -> None:
    answers: list[int] = [400]
    outlet.publish(REPORTS[0])
    with Receiver([SECRET], behaviour=lambda _r: answers[0]) as receiver:
        config = configure(tmp_path, outlet, receiver, "retry_base_seconds = 0.2\n")
        # One pass: the alert is refused with 400 and goes to the dead letter.
        invoke("run", "--config", str(config), "--once")
        states = deliveries(tmp_path)
        assert states and all(s.status is DeliveryStatus.DEAD for s in states)
        shown = invoke("--config", str(config), "alerts", "list", "--failed")
        assert "dead" in shown and "400" in shown and states[0].webhook_id in shown

        answers[0] = 204
        out = invoke("--config", str(config), "alerts", "replay", str(states[0].id))
        assert "1 deliveries queued again" in out
        out = invoke("--config", str(config), "alerts", "replay", "--since", "2000-01-01")
        assert f"{len(states) - 1} deliveries queued again" in out
        invoke("run", "--config", str(config), "--once")
        assert {s.status for s in deliveries(tmp_path)} == {DeliveryStatus.DELIVERED}
        assert set(receiver.delivered()) == {s.webhook_id for s in states}
        assert invoke("--config", str(config), "alerts", "list", "--failed").strip() == (
            "No failed deliveries."
        )
        assert "delivered" in invoke("--config", str(config), "alerts", "list")

        before = len(receiver.received)
        out = invoke("--config", str(config), "alerts", "test", "analysts")
        assert "analysts: HTTP 204" in out
        sample = receiver.received[before]
        assert sample.verified and sample.document["type"] == "webhook.test"
        assert sample.webhook_id in out

        answers[0] = 500
        result = CliRunner().invoke(main, ["--config", str(config), "alerts", "test", "analysts"])
        assert result.exit_code == 1 and "HTTP 500" in result.output
        result = CliRunner().invoke(main, ["--config", str(config), "alerts", "test", "nobody"])
        assert result.exit_code == 2 and "analysts" in result.output
        result = CliRunner().invoke(main, ["--config", str(config), "alerts", "replay"])
        assert result.exit_code == 2

        # A 410 disables the subscriber; `alerts enable` brings it back.
        answers[0] = 410
        invoke("--config", str(config), "alerts", "replay", str(states[0].id))
        invoke("run", "--config", str(config), "--once")
        assert "Subscriber analysts disabled" in invoke("--config", str(config), "alerts", "list")
        answers[0] = 204
        invoke("--config", str(config), "alerts", "replay", str(states[0].id))
        invoke("run", "--config", str(config), "--once")
        replayed = {d.id: d for d in deliveries(tmp_path)}[states[0].id]
        assert replayed.status is DeliveryStatus.PENDING  # not sent: disabled
        assert "analysts: enabled." in invoke(
            "--config", str(config), "alerts", "enable", "analysts"
        )
        invoke("run", "--config", str(config), "--once")
        assert {s.status for s in deliveries(tmp_path)} == {DeliveryStatus.DELIVERED}
