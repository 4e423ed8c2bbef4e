"""Already seen, through the command line (issue 16, items 10 and 11), on SQLite and PostgreSQL.

``service seed`` then ``service events``: the seed corpus's events are listed, flagged
as seed events.  Then ``service run --once`` against a loopback site whose feed
carries a mirror of every seed (page furniture included) and another outlet's rewrite
of every seed, with a webhook receiver subscribed to everything: no event is added
and no webhook is sent.  And ``service backfill`` without ``--alert`` imports
history: a later report of the same event merges into it without a webhook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import store
from service.cli import main
from tests.acceptance.test_run import write_config
from tests.backends import BACKENDS
from tests.receiver import Receiver
from tests.seed_copies import REWRITES, SEED_MANIFEST, CopySite, Rewrite, rewrite_page, seed_docs
from tests.servers import LoopbackServer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return postgres_databases.create()  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def site() -> Iterator[CopySite]:
    with LoopbackServer() as server:
        yield CopySite(server)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([SECRET]) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, site: CopySite, receiver: Receiver) -> Path:
    """A feed of the copies site, and a subscriber that takes every event."""
    path = write_config(tmp_path, [("copies", site.feed_url)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[[webhooks]]\nname = "everything"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
            "corroborated = true\n[webhooks.filters]\nmovement_only = false\n"
            "in_region_only = false\ninclude_hedged = true\n"
        )
    return path


def cli(database_url: str, config: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main,
        ["--config", str(config), *args],
        catch_exceptions=False,
        env={"COLUMNS": "250", "SERVICE_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    return result.output


def stored_events(database_url: str) -> list[store.StoredEvent]:
    engine = store.create_engine(database_url)
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            return store.list_events(session)
    finally:
        engine.dispose()


def stored_deliveries(database_url: str) -> list[store.DeliveryState]:
    engine = store.create_engine(database_url)
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            return store.list_deliveries(session)
    finally:
        engine.dispose()


def seed_article_ids(database_url: str) -> set[int]:
    engine = store.create_engine(database_url)
    try:
        with store.session_scope(store.session_factory(engine)) as session:
            return {a.id for a in store.list_articles(session, seeds_only=True)}
    finally:
        engine.dispose()


def test_seed_then_events_lists_the_seed_corpus_events(database_url: str, config: Path) -> None:
    cli(database_url, config, "db", "upgrade")
    assert "No events stored yet." in cli(database_url, config, "events")

    out = cli(database_url, config, "seed", "--manifest", str(SEED_MANIFEST))
    assert "5 added, 0 already stored (5 seed articles in the database)." in out
    assert "events extracted" in out

    table = cli(database_url, config, "events", "--limit", "0")
    assert "No events stored yet." not in table
    assert "seed" in table  # flagged: already seen, never alerted
    for article_id in seed_article_ids(database_url):  # every seed report has events
        assert f"#{article_id}" in table
    lines = cli(database_url, config, "events", "--format", "jsonl", "--limit", "0").splitlines()
    events = stored_events(database_url)
    assert len(lines) == len(events) > 0
    assert [json.loads(line) for line in lines] == [e.event.to_dict() for e in events]

    again = cli(database_url, config, "seed", "--manifest", str(SEED_MANIFEST))
    assert "0 added, 5 already stored" in again and "events extracted" not in again
    assert stored_events(database_url) == events


def test_mirrors_and_rewrites_of_the_seed_corpus_add_no_event_and_no_webhook(
    database_url: str, config: Path, site: CopySite, receiver: Receiver
) -> None:
    cli(database_url, config, "db", "upgrade")
    cli(database_url, config, "seed", "--manifest", str(SEED_MANIFEST))
    seen = stored_events(database_url)
    for doc in seed_docs():
        site.add_mirror(doc)
    for rewrite in REWRITES:
        site.add_rewrite(rewrite)

    out = cli(database_url, config, "run", "--once")

    copies = len(seed_docs()) + len(REWRITES)
    assert (
        f"copies: ok; {copies} new entries, {len(REWRITES)} articles (0 from entry text), "
        f"{len(seed_docs())} duplicates" in out
    )
    after = stored_events(database_url)
    assert [e.id for e in after] == [e.id for e in seen]  # no event added
    assert sum(e.sources_count for e in after) > sum(e.sources_count for e in seen)  # merged
    assert stored_deliveries(database_url) == []
    assert receiver.received == []
    duplicates = cli(database_url, config, "articles", "--duplicates", "--limit", "0")
    assert duplicates.count("mirror-") == len(seed_docs())


OLD = Rewrite(
    "",
    "quriyah-convoy",
    "Convoy reaches al-Quriyah",
    (
        "On April 28, 2024, Iranian-backed militias sent a convoy of reinforcements to "
        "al-Quriyah in the eastern Deir Ezzor countryside, local sources said.",
        "Residents said the fighters took over two houses near the river bank and set up a "
        "checkpoint on the road to the bridge.",
    ),
    datetime(2024, 4, 29, 9, 0, tzinfo=UTC),
)
LATER = Rewrite(
    "",
    "quriyah-fighters",
    "Militia fighters in al-Quriyah",
    (
        "Fighters of pro-Iranian groups arrived in al-Quriyah from al-Mayadin on April 28, "
        "2024 in 12 vehicles, according to a correspondent in the area.",
        "The men moved into farmland east of the town, where they unloaded weapons and "
        "ammunition crates.",
    ),
    datetime(2024, 10, 11, 15, 0, tzinfo=UTC),
)


def test_backfilled_history_then_a_later_report_sends_no_webhook(
    database_url: str, config: Path, site: CopySite, receiver: Receiver, tmp_path: Path
) -> None:
    cli(database_url, config, "db", "upgrade")
    site.server.static(
        "/archive/quriyah-convoy", rewrite_page(OLD), content_type="text/html; charset=utf-8"
    )
    urls = tmp_path / "links.txt"
    urls.write_text(site.server.url("/archive/quriyah-convoy") + "\n", encoding="utf-8")
    cli(database_url, config, "backfill", "--urls", str(urls), "--outlet", "Archive")
    (history,) = stored_events(database_url)
    assert stored_deliveries(database_url) == []

    site.add_rewrite(LATER)
    cli(database_url, config, "run", "--once")

    (merged,) = stored_events(database_url)
    assert merged.id == history.id and merged.sources_count == 2
    assert stored_deliveries(database_url) == [] and receiver.received == []
    table = cli(database_url, config, "events")
    assert "history" in table and f"2 (#{merged.article_ids[0]}, #{merged.article_ids[1]})" in table
