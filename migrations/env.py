"""Alembic environment: migrates the database the service settings name.

The URL comes from, in order: ``config.attributes["connection"]`` (an open
connection, used by tests), ``config.attributes["database_url"]`` (set by
``service db upgrade`` through ``store.upgrade``), ``sqlalchemy.url`` (``alembic
-x``-style overrides in alembic.ini), ``SERVICE_DATABASE_URL``, and finally the
service settings (``SERVICE_CONFIG`` or config/service.toml).
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from service import store
from service.config import ENV_DATABASE_URL, load_settings
from service.models import target_metadata

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    return os.environ.get(ENV_DATABASE_URL) or load_settings().database_url


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = store.normalise_url(database_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several replicas may start at once: only one migrates, the others wait.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('alembic'))")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = store.create_engine(database_url(), foreign_keys=False)
    try:
        with engine.connect() as connection:
            run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
