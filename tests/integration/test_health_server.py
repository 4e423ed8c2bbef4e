"""/healthz on a live daemon object: the database check and the scheduler check."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from service import store
from service.config import load_settings
from service.observe import ObservabilityServer
from service.pipeline import Pipeline
from service.rules import PROJECT_RULES, load_rules
from service.scheduler import Daemon
from tests.servers import free_port


def test_ping_names_the_problem_when_the_database_does_not_answer(tmp_path: Path) -> None:
    good = store.create_engine(f"sqlite:///{tmp_path / 'ok.db'}")
    assert store.ping(store.session_factory(good)) is None
    good.dispose()
    closed = store.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    problem = store.ping(store.session_factory(closed))
    assert problem is not None and "127.0.0.1" in problem
    closed.dispose()


def test_healthz_503_when_the_scheduler_has_stopped(tmp_path: Path) -> None:
    (tmp_path / "feeds.toml").write_text("")
    config = tmp_path / "service.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    settings = load_settings(config, environ={})
    store.upgrade(settings.database_url)
    engine = store.create_engine(settings.database_url)
    pipeline = Pipeline(
        settings, session_factory=store.session_factory(engine), rules=load_rules(PROJECT_RULES)
    )
    daemon = Daemon(pipeline, tick_seconds=1)
    server = ObservabilityServer("127.0.0.1", 0, daemon.health_inputs).start()
    url = f"http://127.0.0.1:{server.address[1]}/healthz"
    try:
        # Not started yet: no scheduler.
        answer = httpx.get(url)
        assert answer.status_code == 503
        assert answer.json()["problems"] == ["scheduler: not running"]
        stop = threading.Event()
        runner = threading.Thread(target=daemon.run_until, args=(stop,))
        runner.start()
        try:
            deadline = time.monotonic() + 10
            ok = httpx.get(url)
            while ok.status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                ok = httpx.get(url)
            assert ok.status_code == 200, ok.text
            assert ok.json()["database"] == "ok" and ok.json()["scheduler"] == "alive"
        finally:
            stop.set()
            runner.join(timeout=20)
        assert httpx.get(url).status_code == 503
    finally:
        server.stop()
        pipeline.close()
        engine.dispose()
