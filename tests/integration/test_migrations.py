"""Migrations on SQLite and PostgreSQL: one head, up from empty, models match, down and up."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service import store
from service.errors import StoreError
from service.models import target_metadata
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
}


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
