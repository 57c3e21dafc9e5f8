"""Fixtures for the access-control tests: the ``leadstore`` command line against the test
database, and a raised rate limit for tests that make many calls as one user."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from leadstore import catalog
from leadstore.cli.main import app
from leadstore.config import get_settings
from leadstore.db import Database

Cli = Callable[..., Result]


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Run ``leadstore ARGS...`` in-process against the test database; returns click's Result."""
    monkeypatch.setenv("LEADSTORE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    yield run
    get_settings.cache_clear()


def cli_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def many_calls(db: Database) -> None:
    """Lift the per-key rate limit (running servers pick it up within a second)."""
    with db.write() as conn:
        catalog.save_setting(conn, "rate_limit_calls", "1000000")
