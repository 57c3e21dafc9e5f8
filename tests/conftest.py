"""Fixtures: a fresh real database per test (SQLite by default, PostgreSQL when
LEADSTORE_TEST_DATABASE_URL is set), the service running under a real uvicorn server on a free
port, and an Administrator's keys.

Each test gets its own database, copied from one migrated at the start of the run (a file copy
on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so tests may add fields and commit
freely. A PostgreSQL or Redis that cannot be reached fails the run; nothing is skipped.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from leadstore import migrate
from leadstore.config import Settings, driver_url
from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user

POSTGRES_URL = os.environ.get("LEADSTORE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("LEADSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    server = make_url(driver_url(url)).set(database="postgres")
    return create_engine(server, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once per run; tests get copies of it."""
    if POSTGRES_URL is None:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
    else:
        name = f"leadstore_template_{uuid.uuid4().hex[:8]}"
        engine = _admin_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(driver_url(POSTGRES_URL)).set(database=name).render_as_string(hide_password=False)
    db = Database(Settings(database_url=url))
    migrate.upgrade(db)
    db.dispose()
    yield url
    if POSTGRES_URL is not None:
        with _admin_engine(POSTGRES_URL).connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    if POSTGRES_URL is None:
        path = tmp_path / "leadstore.db"
        shutil.copy(make_url(template_database).database or "", path)
        yield f"sqlite:///{path}"
        return
    name = f"leadstore_test_{uuid.uuid4().hex[:10]}"
    template = make_url(template_database).database
    engine = _admin_engine(POSTGRES_URL)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(template_database).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, catalog_refresh_seconds=0.1, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def admin(db: Database) -> Credentials:
    return make_user(db, "Administrator", email="admin@example.com")


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer.start(settings) as live:
        yield live


@pytest.fixture
def api(server: LiveServer, admin: Credentials) -> Iterator[Api]:
    with Api(server.base_url, admin) as client:
        yield client
