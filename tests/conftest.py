"""Shared fixtures: a clean environment, and databases on SQLite and PostgreSQL.

PostgreSQL is not optional: if it does not answer, the tests that need it fail
(``scripts/ensure-postgres``, run by ``make test``, starts it first). Each test run
works in databases of its own, created here and dropped at the end; the server is
the one at ``TEST_POSTGRES_URL`` (default: the local ``test`` database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from service import store
from tests.backends import BACKENDS, POSTGRES_ADMIN_URL


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's SERVICE_* variables."""
    for name in list(os.environ):
        if name.startswith("SERVICE_"):
            monkeypatch.delenv(name)


class PostgresDatabases:
    """Creates uniquely named databases for this run and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.run_id = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self._admin: Engine | None = None

    @property
    def admin(self) -> Engine:
        if self._admin is None:
            self._admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def create(self) -> str:
        name = f"svc_test_{self.run_id}_{len(self.created)}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self.admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES_ADMIN_URL)
    yield databases
    databases.drop_all()


@pytest.fixture
def empty_database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_databases: PostgresDatabases,
) -> str:
    """A URL of an empty database of the backend named by ``request.param``."""
    backend: str = request.param
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return postgres_databases.create()


@pytest.fixture(scope="session")
def migrated_engines(
    tmp_path_factory: pytest.TempPathFactory, postgres_databases: PostgresDatabases
) -> Iterator[Callable[[str], Engine]]:
    """One migrated database per backend for the whole run, created on first use."""
    engines: dict[str, Engine] = {}

    def get(backend: str) -> Engine:
        if backend not in engines:
            if backend == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'service.db'}"
            else:
                url = postgres_databases.create()
            store.upgrade(url)
            engines[backend] = store.create_engine(url)
        return engines[backend]

    yield get
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def engine(backend: str, migrated_engines: Callable[[str], Engine]) -> Engine:
    return migrated_engines(backend)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, commits included."""
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as db_session:
            yield db_session
        transaction.rollback()
