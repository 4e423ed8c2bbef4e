"""Migrations on SQLite and PostgreSQL: one head, up from empty, models match, down and up."""

from __future__ import annotations

import pathlib
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service import store
from service.config import load_settings
from service.enums import ArticleOrigin, EventProvenance
from service.errors import StoreError
from service.models import target_metadata
from service.pipeline import IngestStatus, Pipeline, Report
from service.rules import PROJECT_RULES, load_rules
from tests.backends import BACKENDS

TABLES = {
    "feeds",
    "articles",
    "events",
    "event_articles",
    "deliveries",
    "backfill_runs",
    "backfill_items",
    "subscriptions",
    "article_signatures",
    "entry_failures",
}
NOW = datetime(2024, 6, 12, 9, 0, tzinfo=UTC)


def test_single_head() -> None:
    script = ScriptDirectory.from_config(store.alembic_config())
    assert len(script.get_heads()) == 1
    assert script.get_current_head() == store.head_revision()


def test_revisions_do_not_import_models() -> None:
    """A migration is a snapshot: it must not change when models.py does."""
    for path in (store.migrations_dir() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) service", source, re.MULTILINE), path.name


def table_names(url: str) -> set[str]:
    engine = store.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def schema_diffs(url: str) -> list[object]:
    engine = store.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, target_metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_upgrade_check_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url
    config = store.alembic_config(url)
    assert table_names(url) == set()

    assert store.upgrade(url) == store.head_revision()
    assert table_names(url) == TABLES
    assert schema_diffs(url) == []
    command.check(config)  # `alembic check`: autogenerate finds nothing to do

    command.downgrade(config, "base")
    assert table_names(url) == set()

    command.upgrade(config, "head")
    assert table_names(url) == TABLES
    command.check(config)
    assert store.upgrade(url) == store.head_revision()  # repeatable


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_require_current_schema(empty_database_url: str) -> None:
    engine = store.create_engine(empty_database_url)
    try:
        with pytest.raises(StoreError, match="not migrated"):
            store.require_current_schema(engine)
        store.upgrade(empty_database_url)
        store.require_current_schema(engine)
    finally:
        engine.dispose()


CONVOY = (
    "A convoy of the Syrian Democratic Forces moved from al-Busayrah towards the town "
    "of Dhiban in the eastern countryside of Deir Ezzor on Tuesday, local sources said, "
    "carrying fighters and heavy weapons after clashes with tribal gunmen the day before."
)


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_signatures_of_the_sha1_shingle_hash_are_dropped_and_made_again(
    empty_database_url: str, tmp_path: pathlib.Path
) -> None:
    """Upgrading drops signatures an older release stored; the articles stay, and the
    first ingest signs them with the current hash, so their reposts are still caught."""
    url = empty_database_url
    config = store.alembic_config(url)
    command.upgrade(config, "0004_dedup")
    engine = store.create_engine(url)
    try:
        with engine.begin() as connection:
            article_id = connection.execute(
                sa.text(
                    "INSERT INTO articles (text, content_hash, origin_kind, fetched, url, "
                    "published_is_estimate) VALUES (:text, 'old', 'feed', :now, "
                    "'https://old.example/a', false) RETURNING id"
                ),
                {"text": CONVOY, "now": NOW},
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO article_signatures (article_id, num_perm, words, shingles, "
                    "lead, whole) VALUES (:id, 64, 1, 1, :values, :values)"
                ),
                {"id": article_id, "values": bytes(256)},
            )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM article_signatures")) == 0
            assert connection.scalar(sa.text("SELECT count(*) FROM articles")) == 1

        settings_file = tmp_path / "service.toml"
        settings_file.write_text(f'[database]\nurl = "{url}"\n')
        (tmp_path / "feeds.toml").write_text("")
        pipe = Pipeline(
            load_settings(settings_file, environ={}),
            session_factory=store.session_factory(engine),
            rules=load_rules(PROJECT_RULES),
        )
        try:
            repost = Report(
                text=CONVOY + " Share this article.",
                title=None,
                url="https://copy.example/a",
                outlet=None,
                published=None,
                published_is_estimate=True,
                origin_kind=ArticleOrigin.FEED,
            )
            result = pipe.ingest(repost, now=NOW, alert=False)
        finally:
            pipe.close()
        assert result.status is IngestStatus.DUPLICATE
        assert result.duplicate_of == article_id
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_events_stored_before_their_provenance_are_news(empty_database_url: str) -> None:
    """``0007_event_provenance``: events an older release stored alert as before."""
    url = empty_database_url
    config = store.alembic_config(url)
    command.upgrade(config, "0005_signature_hash")
    engine = store.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO events (type, movement, actor_name, actor_affiliation, "
                    "location_name, location_precision, date_precision, quantities, equipment, "
                    "hedged, in_region, evidence_text, evidence_start, evidence_end) VALUES "
                    "('deployment', true, 'SDF', 'sdf', 'Dhiban', 'town', 'unknown', '{}', "
                    "'[]', false, true, 'A convoy moved.', 0, 15)"
                )
            )
        command.upgrade(config, "head")
        with store.session_scope(store.session_factory(engine)) as session:
            (event,) = store.list_events(session)
        assert event.provenance is EventProvenance.NEWS
        command.downgrade(config, "0005_signature_hash")  # and back: the event stays
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM events")) == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_url_hashes_are_filled_for_stored_articles_and_survive_down_and_up(
    empty_database_url: str,
) -> None:
    """0006 keeps every stored article, hashes its URLs and guid as the store does, and
    moves uniqueness to the hashes; downgrading puts the old constraints back."""
    url = empty_database_url
    config = store.alembic_config(url)
    command.upgrade(config, "0005_signature_hash")
    engine = store.create_engine(url)
    rows = [
        ("https://a.example/1", "https://a.example/1", None, "guid-1"),
        ("https://a.example/2?utm_source=x", "https://a.example/2", "https://a.example/?p=2", None),
        (None, None, None, None),  # a file import: no URL
        ("https://b.example/\u0648\u0627\u062f\u064a", "https://b.example/\u0648", None, "g"),
    ]
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO feeds (name, url, outlet, interval_seconds) "
                    "VALUES ('f', 'https://a.example/feed', 'A', 600)"
                )
            )
            for n, (link, canonical, alternate, guid) in enumerate(rows):
                connection.execute(
                    sa.text(
                        "INSERT INTO articles (text, content_hash, origin_kind, fetched, url, "
                        "canonical_url, alternate_url, guid, feed_id, published_is_estimate) "
                        "VALUES (:text, :hash, 'feed', :now, :url, :canonical, :alternate, "
                        ":guid, 1, false)"
                    ),
                    {
                        "text": f"text {n}",
                        "hash": f"h{n}",
                        "now": NOW,
                        "url": link,
                        "canonical": canonical,
                        "alternate": alternate,
                        "guid": guid,
                    },
                )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text(
                    "SELECT url, url_hash, canonical_url, canonical_url_hash, alternate_url, "
                    "alternate_url_hash, guid, guid_hash FROM articles ORDER BY id"
                )
            ).all()
        assert len(stored) == len(rows)
        for row in stored:
            for text, hashed in zip(row[0::2], row[1::2], strict=True):
                assert hashed == store.key_hash(text)
        # Uniqueness now holds on the hashes.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO articles (text, content_hash, origin_kind, fetched, url, "
                    "url_hash, published_is_estimate) VALUES ('x', 'x', 'feed', :now, "
                    ":url, :hash, false)"
                ),
                {"now": NOW, "url": rows[0][0], "hash": store.key_hash(rows[0][0])},
            )

        command.downgrade(config, "0005_signature_hash")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM articles")).scalar() == 4
        command.upgrade(config, "head")
        assert schema_diffs(url) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)
def test_articles_a_previous_release_stores_unhashed_are_hashed_on_first_use(
    empty_database_url: str,
) -> None:
    """During a rolling upgrade a replica of the release before 0006 stores articles
    without URL hashes; ``service db upgrade`` or the first ingest hashes them, and a
    URL such a replica stored twice keeps its hash on one row only."""
    from service.pipeline import hash_stored_articles

    url = empty_database_url
    store.upgrade(url)
    engine = store.create_engine(url)
    try:
        with engine.begin() as connection:
            for n, link in enumerate(["https://a.example/1", "https://a.example/1", None]):
                connection.execute(
                    sa.text(
                        "INSERT INTO articles (text, content_hash, origin_kind, fetched, url, "
                        "canonical_url, guid, published_is_estimate) VALUES (:text, :hash, "
                        "'feed', :now, :url, :url, :guid, false)"
                    ),
                    {"text": f"t{n}", "hash": f"h{n}", "now": NOW, "url": link, "guid": f"g{n}"},
                )
        hash_stored_articles(store.session_factory(engine))
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT url_hash, canonical_url_hash, guid_hash FROM articles ORDER BY id")
            ).all()
        key = store.key_hash("https://a.example/1")
        assert rows == [
            (key, key, store.key_hash("g0")),
            (None, key, store.key_hash("g1")),  # the same URL again: no second hash
            (None, None, store.key_hash("g2")),
        ]
        hash_stored_articles(store.session_factory(engine))  # nothing left: no change
    finally:
        engine.dispose()
