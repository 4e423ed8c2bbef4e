"""The `service` command line, end to end, through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from service import dedup, store
from service.cli import main
from service.config import DedupSettings
from service.enums import ArticleOrigin
from service.events import (
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
from service.export import CSV_COLUMNS
from tests.backends import BACKENDS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEEDS = PROJECT_ROOT / "corpus" / "seeds" / "MANIFEST.json"

FEEDS_TOML = """
[[feeds]]
name = "sohr"
url = "https://www.syriahr.com/en/feed/"
outlet = "SOHR"
interval_seconds = 600

[[feeds]]
name = "north-press"
url = "https://npasyria.com/en/feed/"
outlet = "North Press"
"""

Invoke = Callable[..., Result]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "service.toml").write_text("", encoding="utf-8")
    (directory / "feeds.toml").write_text(FEEDS_TOML, encoding="utf-8")
    return directory


@pytest.fixture
def invoke(config_dir: Path) -> Invoke:
    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            main, ["--config", str(config_dir / "service.toml"), *args], env=env
        )

    return run


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'service.db'}"
    return postgres_databases.create()  # type: ignore[attr-defined, no-any-return]


def single_error_line(result: Result) -> str:
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "seed", "feeds", "events"):
        assert f"  {command} " in result.output
    db_help = CliRunner().invoke(main, ["db", "--help"])
    assert "upgrade" in db_help.output


def test_python_dash_m_service() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def test_malformed_feeds_file_is_one_line_and_exit_2(invoke: Invoke, config_dir: Path) -> None:
    (config_dir / "feeds.toml").write_text('[[feeds]\nname = "x"\n', encoding="utf-8")
    result = invoke("feeds")
    assert result.exit_code == 2
    line = single_error_line(result)
    assert line.startswith(f"error: {config_dir / 'feeds.toml'}: not valid TOML")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        pytest.param(
            "service.toml",
            b"[http]\n# the caf\xe9 on the corner\nmax_redirects = 3\n",
            "byte 0xe9 at line 2, column 10",
            id="service-comment",
        ),
        pytest.param(
            "feeds.toml",
            b'[[feeds]]\nname = "caf\xc3\xa9 \xe9"\nurl = "https://a.org/f"\noutlet = "A"\n',
            "byte 0xe9 at line 2, column 14",
            id="feeds-value",
        ),
    ],
)
def test_config_in_invalid_utf8_is_one_line_and_exit_2(
    invoke: Invoke, config_dir: Path, name: str, content: bytes, where: str
) -> None:
    """Issue 16, item 7: a Latin-1 byte in a config file crashed with a traceback, exit 1."""
    (config_dir / name).write_bytes(content)
    for command in (["feeds"], ["db", "upgrade"], ["run", "--once"]):
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output, result.exception)
        assert single_error_line(result) == (
            f"error: {config_dir / name}: not valid UTF-8 (TOML files are UTF-8): {where}"
        )


def test_rule_file_in_invalid_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "config" / "rules", rules)
    actors = rules / "actors.yaml"
    lines = actors.read_bytes().count(b"\n")
    with actors.open("ab") as handle:
        handle.write(b"# Dayr az-Zawr \xe0 l'est\n")
    report = tmp_path / "report.txt"
    report.write_text("A convoy arrived in al-Mayadin.", encoding="utf-8")
    result = CliRunner().invoke(main, ["extract", "--rules", str(rules), str(report)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert single_error_line(result) == (
        f"error: {actors}: not valid UTF-8 (rule files are UTF-8): "
        f"byte 0xe0 at line {lines + 1}, column 16"
    )


@pytest.mark.parametrize(
    ("feeds", "expected"),
    [
        pytest.param(
            '[[feeds]]\nname = "a"\nurl = "notaurl"\noutlet = "A"\n',
            "feeds[0].url: invalid URL (expected http:// or https:// and a host), got 'notaurl'",
            id="bad-url",
        ),
        pytest.param(
            '[[feeds]]\nname = "a"\nurl = "https://a.org/f"\noutlet = "A"\ninterval = 60\n',
            "feeds[0].interval: unknown key (value 60); did you mean 'interval_seconds'?",
            id="unknown-key",
        ),
        pytest.param(
            '[[feeds]]\nname = "a"\nurl = "https://a.org/f"\noutlet = 7\n',
            "feeds[0].outlet: expected string, got integer 7",
            id="wrong-type",
        ),
    ],
)
def test_invalid_feeds_file(invoke: Invoke, config_dir: Path, feeds: str, expected: str) -> None:
    (config_dir / "feeds.toml").write_text(feeds, encoding="utf-8")
    for command in (["feeds"], ["db", "upgrade"], ["seed"], ["events"]):
        result = invoke(*command)
        assert result.exit_code == 2, command
        assert single_error_line(result) == f"error: {config_dir / 'feeds.toml'}: {expected}"


def test_missing_config_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "feeds"])
    assert result.exit_code == 2
    assert single_error_line(result) == f"error: {tmp_path / 'nope.toml'}: file not found"


def test_config_from_environment(config_dir: Path) -> None:
    (config_dir / "service.toml").write_text("[http]\nmax_redirects = 99\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["feeds"], env={"SERVICE_CONFIG": str(config_dir / "service.toml")}
    )
    assert result.exit_code == 2
    assert "http.max_redirects" in single_error_line(result)


def test_bad_database_url_in_environment(invoke: Invoke) -> None:
    result = invoke("db", "upgrade", env={"SERVICE_DATABASE_URL": "nonsense"})
    assert result.exit_code == 2
    assert single_error_line(result).startswith("error: environment: SERVICE_DATABASE_URL:")


def test_commands_refuse_an_unmigrated_database(invoke: Invoke, tmp_path: Path) -> None:
    env = {"SERVICE_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    for command in (["feeds"], ["seed", "--manifest", str(SEEDS)], ["events"]):
        result = invoke(*command, env=env)
        assert result.exit_code == 1, command
        assert "not migrated; run `service db upgrade`" in single_error_line(result)


def test_upgrade_signs_the_articles_a_migration_left_unsigned(
    invoke: Invoke, database_url: str
) -> None:
    """Revision 0005 drops the signatures of the previous shingle hash: ``db upgrade``
    signs the stored articles again itself, as the current code signs them."""
    env = {"SERVICE_DATABASE_URL": database_url}
    result = invoke("db", "upgrade", "--revision", "0004_dedup", env=env)
    assert result.exit_code == 0 and "is at revision 0004_dedup." in result.output
    text = "Fighters of the Deir Ezzor Military Council moved from al-Busayrah to Dhiban. " * 4
    engine = store.create_engine(database_url)
    try:
        with engine.begin() as connection:
            for n in (1, 2):
                connection.execute(
                    sa.text(
                        "INSERT INTO articles (text, content_hash, origin_kind, fetched, "
                        "published_is_estimate) VALUES (:text, :hash, 'feed', :now, false)"
                    ),
                    {"text": f"{text}{n}", "hash": str(n), "now": datetime.now(UTC)},
                )
        result = invoke("db", "upgrade", env=env)
        assert result.exit_code == 0, result.output + result.stderr
        assert "Signed 2 stored articles for near-duplicate detection." in result.output
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT a.text, s.whole FROM articles a "
                    "JOIN article_signatures s ON s.article_id = a.id"
                )
            ).all()
        assert sorted(bytes(whole) for _, whole in rows) == sorted(
            dedup.signature(stored, DedupSettings()).whole for stored, _ in rows
        )
        assert len(rows) == 2
        again = invoke("db", "upgrade", env=env)
        assert "Signed" not in again.output  # nothing left to sign
    finally:
        engine.dispose()


def test_upgrade_seed_feeds_events(invoke: Invoke, database_url: str) -> None:
    env = {"SERVICE_DATABASE_URL": database_url}

    for _ in range(2):  # repeatable
        result = invoke("db", "upgrade", env=env)
        assert result.exit_code == 0, result.output + result.stderr
        assert f"is at revision {store.head_revision()}." in result.output

    result = invoke("events", env=env)
    assert result.exit_code == 0 and "No events stored yet." in result.output
    assert invoke("events", "--format", "jsonl", env=env).output == ""

    result = invoke("seed", "--manifest", str(SEEDS), env=env)
    assert result.exit_code == 0, result.stderr
    assert "5 added, 0 already stored (5 seed articles" in result.output
    result = invoke("seed", "--manifest", str(SEEDS), env=env)
    assert "0 added, 5 already stored (5 seed articles" in result.output

    result = invoke("feeds", env={**env, "COLUMNS": "200"})  # wide enough not to wrap
    assert result.exit_code == 0, result.stderr
    for text in ("sohr", "north-press", "never", "10m", "15m"):
        assert text in result.output

    seed_events = invoke("events", "--format", "jsonl", "--limit", "0", env=env).output
    seed_lines = seed_events.splitlines()
    assert seed_lines  # the seed corpus's events (tests/acceptance/test_seen_run.py)

    event = store_one_event(database_url)
    lines = invoke("events", "--format", "jsonl", "--limit", "0", env=env).output.splitlines()
    assert [json.loads(line) for line in lines] == [event.to_dict()] + [
        json.loads(line) for line in seed_lines
    ]

    csv_output = invoke("events", "--format", "csv", "--limit", "1", env=env).output
    rows = list(csv.DictReader(io.StringIO(csv_output)))
    assert len(rows) == 1
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["actor_affiliation"] == "iran-backed"
    assert rows[0]["evidence_text"] == event.evidence.text

    result = invoke("events", "--limit", "5", env={**env, "COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Fatemiyoun" in result.output and "deployment" in result.output


def store_one_event(url: str) -> Event:
    event = Event(
        type=EventType.DEPLOYMENT,
        actor=Actor("Liwa Fatemiyoun", Affiliation.IRAN_BACKED),
        location=Location("Al-Bukamal", 34.45, 40.92, "Al-Bukamal", Precision.TOWN),
        origin=Location("Al-Mayadin", 35.02, 40.45, "Al-Mayadin", Precision.TOWN),
        date="2020-06-03",
        date_precision=DatePrecision.DAY,
        hedged=True,
        in_region=True,
        evidence=Evidence('Reinforcements "arrived", with 30 vehicles.', 0, 44),
        source=Source("SOHR", "SouthFront", None),
        quantities={"vehicles": 30},
        equipment=("artillery",),
    )
    engine = store.create_engine(url)
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            article_id = store.add_article(
                session,
                store.NewArticle(
                    text=event.evidence.text,
                    content_hash="0" * 64,
                    origin_kind=ArticleOrigin.FILE,
                    fetched=datetime(2024, 1, 1, tzinfo=UTC),
                ),
            )
            store.store_events(session, article_id, [event], now=datetime(2024, 1, 1, tzinfo=UTC))
    finally:
        engine.dispose()
    return event


def test_seed_with_a_broken_manifest(invoke: Invoke, tmp_path: Path) -> None:
    manifest = tmp_path / "MANIFEST.json"
    manifest.write_text('{"documents": [{"file": "missing.txt"}]}', encoding="utf-8")
    result = invoke("seed", "--manifest", str(manifest))
    assert result.exit_code == 2
    line = single_error_line(result)
    assert line.startswith(f"error: {manifest}: documents[0].")
