"""Dedup end to end: ``service seed`` then ``service run --once`` against a loopback outlet.

On SQLite and PostgreSQL.  The outlet's feed carries a repost of a seed (its article
without the reader comments), a new report, and the same event rewritten by another
correspondent.  The repost is stored as a duplicate of the seed with no events; the
rewrite's event corroborates the new report's; ``service articles --duplicates`` and
``service events`` show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import store
from service.corpus import read_manifest
from tests.acceptance.test_run import Outlet, Report, write_config
from tests.backends import BACKENDS
from tests.servers import LoopbackServer

SEEDS = Path(__file__).resolve().parents[2] / "corpus" / "seeds" / "MANIFEST.json"
SEED = read_manifest(SEEDS)[1]  # SouthFront, with reader comments
SEED_ARTICLE = SEED.path.read_text(encoding="utf-8").split("These guys need")[0]

REPOST = Report(
    "repost-fatemiyoun-convoy",
    "Iranian-Backed Forces Deploy Reinforcements In Syria’s Deir Ezzor",
    tuple(p.strip() for p in SEED_ARTICLE.split("\n") if p.strip())[1:],
    datetime(2020, 6, 5, 9, 0, tzinfo=UTC),
)
NEW = Report(
    "quriyah-convoy",
    "Convoy reaches al-Quriyah",
    (
        "On April 28, Iranian-backed militias sent a convoy of reinforcements to "
        "al-Quriyah in the eastern Deir Ezzor countryside, local sources said.",
        "Residents said the fighters took over two houses near the river bank and "
        "set up a checkpoint on the road to the bridge.",
    ),
    datetime(2024, 4, 29, 9, 0, tzinfo=UTC),
)
REWRITE = Report(
    "quriyah-fighters",
    "Militia fighters in al-Quriyah",
    (
        "Fighters of pro-Iranian groups arrived in al-Quriyah from al-Mayadin on April 28 "
        "in 12 vehicles, according to a correspondent in the area.",
        "The men moved into farmland east of the town, where they unloaded weapons "
        "and ammunition crates.",
    ),
    datetime(2024, 4, 29, 15, 0, tzinfo=UTC),
)


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    with LoopbackServer() as server:
        yield Outlet(server)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return postgres_databases.create()  # type: ignore[attr-defined,no-any-return]


def invoke(env: dict[str, str], *args: str) -> str:
    from service.cli import main

    result = CliRunner().invoke(
        main, list(args), catch_exceptions=False, env={"COLUMNS": "250", **env}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_seed_repost_is_a_duplicate_and_a_rewrite_corroborates(
    tmp_path: Path, outlet: Outlet, database_url: str
) -> None:
    config = write_config(tmp_path, [("valley", outlet.server.url("/feed.xml"))])
    env = {"SERVICE_DATABASE_URL": database_url}
    invoke(env, "--config", str(config), "db", "upgrade")
    invoke(env, "--config", str(config), "seed", "--manifest", str(SEEDS))

    outlet.publish(REWRITE, NEW, REPOST)  # the feed lists the last published first
    output = invoke(env, "run", "--config", str(config), "--once")
    assert "valley: ok; 3 new entries, 2 articles (0 from entry text), 1 duplicates" in output

    engine = store.create_engine(database_url)
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            seed_id = next(
                a.id for a in store.list_articles(session, seeds_only=True) if a.title == SEED.title
            )
            (dup,) = store.list_articles(session, duplicates_only=True)
            events = store.list_events(session)
            by_url = {a.url: a for a in store.list_articles(session)}
    finally:
        engine.dispose()
    assert dup.url == outlet.server.url(f"/reports/{REPOST.slug}")
    assert dup.duplicate_of == seed_id and dup.similarity is not None
    assert dup.id not in {a for e in events for a in e.article_ids}  # no events

    new_id = by_url[outlet.server.url(f"/reports/{NEW.slug}")].id
    rewrite_id = by_url[outlet.server.url(f"/reports/{REWRITE.slug}")].id
    (convoy,) = [e for e in events if e.event.location.name.casefold() == "al-quriyah"]
    assert convoy.sources_count == 2 and set(convoy.article_ids) == {new_id, rewrite_id}
    # The rewrite, read second, adds what the first report lacked.
    assert convoy.event.source.url == outlet.server.url(f"/reports/{NEW.slug}")
    assert convoy.event.quantities.get("vehicles") == 12
    assert convoy.event.origin is not None and convoy.event.origin.name == "al-Mayadin"

    shown = invoke(env, "--config", str(config), "articles", "--duplicates")
    assert f"#{seed_id}" in shown and REPOST.slug in shown
    table = invoke(env, "--config", str(config), "events")
    assert f"2 (#{new_id}, #{rewrite_id})" in table
