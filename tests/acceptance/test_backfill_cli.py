"""``service backfill`` as users run it: a URL list on stdin with a failure (listed,
exit 1), a run killed with SIGKILL and started again, and ``--reextract`` after an
edit of the rule files beside service.toml."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import store
from service.cli import main
from service.rules import PROJECT_RULES
from tests.integration.test_backfill import STORIES, Outlet, page_html
from tests.servers import REPO_ROOT, LoopbackServer, Request, Response


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    with LoopbackServer() as server:
        yield Outlet(server)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "service.db"
    path = tmp_path / "service.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[http]\nallow_private_networks = true\n',
        encoding="utf-8",
    )
    (tmp_path / "feeds.toml").write_text("", encoding="utf-8")
    store.upgrade(f"sqlite:///{db}")
    return path


def stored_urls(config: Path) -> list[str]:
    with sqlite3.connect(config.parent / "service.db") as db:
        return [row[0] for row in db.execute("SELECT url FROM articles ORDER BY url")]


def test_url_list_on_stdin_lists_failures_and_exits_1(config: Path, outlet: Outlet) -> None:
    outlet.missing.add(STORIES[1].slug)
    urls = "\n".join(outlet.page_url(s) for s in STORIES[:3]) + "\n"
    runner = CliRunner()
    args = ["--config", str(config), "backfill", "--urls", "-", "--since", "2024-04-01"]
    result = runner.invoke(main, args, input=urls)
    assert result.exit_code == 1, result.output
    assert f"failed: {outlet.page_url(STORIES[1])}: " in result.stderr
    assert "HTTP 404" in result.stderr
    assert "stored" in result.stdout and "failed" in result.stdout
    assert len(stored_urls(config)) == 2

    outlet.missing.clear()
    again = runner.invoke(main, args, input=urls)
    assert again.exit_code == 0, again.output
    assert "Resumed" in again.stdout
    assert stored_urls(config) == sorted(outlet.page_url(s) for s in STORIES[:3])


def test_bad_url_list_line_is_named(config: Path, tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text("https://o.example/a\nnot a url\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "backfill", "--urls", str(listing)])
    assert result.exit_code == 2
    assert f"{listing}: line 2: not an http(s) URL: 'not a url'" in result.stderr


def test_one_source_required(config: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "backfill"])
    assert result.exit_code == 2
    assert "exactly one of --feed, --sitemap, --urls, --dir, --reextract" in result.output


def test_killed_run_continues_where_it_stopped(
    config: Path, outlet: Outlet, tmp_path: Path
) -> None:
    def slow(story: object) -> object:
        def handler(_request: Request) -> Response:
            time.sleep(0.4)
            return Response(200, {"Content-Type": "text/html"}, page_html(story))  # type: ignore[arg-type]

        return handler

    for story in STORIES:
        outlet.server.route(f"/r/{story.slug}", slow(story))
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(outlet.page_url(s) for s in STORIES), encoding="utf-8")
    command = [
        sys.executable, "-m", "service", "--config", str(config),
        "backfill", "--urls", str(listing), "--concurrency", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while len(stored_urls(config)) < 2:
            assert process.poll() is None, "backfill ended before it could be killed"
            assert time.monotonic() < deadline, "backfill stored nothing in 60 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    stored_before = len(stored_urls(config))
    assert 2 <= stored_before < len(STORIES)

    outlet.server.requests.clear()
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert stored_urls(config) == sorted(outlet.page_url(s) for s in STORIES)
    fetched = [r.path for r in outlet.server.requests]
    # Items recorded before the kill are not fetched again (at most the one in hand).
    assert len(fetched) <= len(STORIES) - stored_before + 1

    third = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert third.returncode == 0
    assert stored_urls(config) == sorted(outlet.page_url(s) for s in STORIES)


def test_reextract_after_a_rule_edit(config: Path, outlet: Outlet) -> None:
    runner = CliRunner()
    urls = "\n".join(outlet.page_url(s) for s in STORIES)
    first = runner.invoke(main, ["--config", str(config), "backfill", "--urls", "-"], input=urls)
    assert first.exit_code == 0, first.output

    rules = config.parent / "rules"  # rules/ beside service.toml win over config/rules
    shutil.copytree(PROJECT_RULES, rules)
    gazetteer = rules / "gazetteer.yaml"
    gazetteer.write_text(
        gazetteer.read_text("utf-8").replace("    lat: 35.01982\n", "    lat: 35.0301\n"), "utf-8"
    )
    shown = runner.invoke(main, ["--config", str(config), "backfill", "--reextract"])
    assert shown.exit_code == 0, shown.output
    assert "~ deployment" in shown.stdout and "[location]" in shown.stdout
    assert "would change (run again with --apply to store)" in shown.stdout

    applied = runner.invoke(main, ["--config", str(config), "backfill", "--reextract", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "changed." in applied.stdout
    with sqlite3.connect(config.parent / "service.db") as db:
        query = "SELECT location_lat FROM events WHERE location_name = 'al-Mayadin'"
        lats = {row[0] for row in db.execute(query)}
    assert lats == {35.0301}

    after = runner.invoke(main, ["--config", str(config), "backfill", "--reextract"])
    assert f"Re-extracted {len(STORIES)} articles; 0 would change" in after.stdout
