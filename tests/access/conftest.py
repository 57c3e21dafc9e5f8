"""Fixtures for the access-control tests: the ``leadstore`` command line against the test
database, and a raised rate limit for tests that make many calls as one user."""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from leadstore import catalog
from leadstore.catalog import Catalog, current_revision
from leadstore.cli.main import app
from leadstore.config import get_settings
from leadstore.db import Database
from leadstore.state import AppState
from leadstore.users import service as user_service
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user, wait_until

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


def add_group(db: Database, name: str) -> None:
    with db.write() as conn:
        user_service.add_group(conn, name)


def add_template(
    db: Database, name: str, lead_access: str, read_only: Sequence[str] = (), hidden: Sequence[str] = ()
) -> None:
    fields = Catalog(db)
    fields.refresh()
    with db.write() as conn:
        user_service.save_template(conn, fields.fields, name, lead_access, list(read_only), list(hidden), create=True)


@dataclass
class Team:
    """Sales groups North (manager, rep, peer) and South (south), a MarketingUser, the
    Administrator, and one lead owned by each of admin, manager, rep, peer and south."""

    admin: Credentials
    manager: Credentials
    rep: Credentials
    peer: Credentials
    south: Credentials
    marketing: Credentials
    leads: dict[str, str]  # owner's name -> ProspectId

    def user(self, name: str) -> Credentials:
        user: Credentials = getattr(self, name)
        return user


LEAD_OWNERS = ("admin", "manager", "rep", "peer", "south")
# What each role's default lead access (spec section 6) lets each member of the team reach.
DEFAULT_REACH = {
    "admin": set(LEAD_OWNERS),
    "marketing": set(LEAD_OWNERS),
    "manager": {"manager", "rep", "peer"},
    "rep": {"rep"},
    "peer": {"peer"},
    "south": {"south"},
}


def lead_email(owner: str) -> str:
    return f"{owner}@lead.example"


def lead_phone(owner: str) -> str:
    return f"+91-98765432{LEAD_OWNERS.index(owner):02d}"


def server_state(server: LiveServer) -> AppState:
    """What the running server holds: its catalog, its database engine."""
    app = cast(FastAPI, server.server.config.app)
    return cast(AppState, app.state.leadstore)


def settled(server: LiveServer, db: Database) -> None:
    """Wait until the running server has taken in every administrative change made so far."""
    with db.read() as conn:
        revision = current_revision(conn)
    wait_until(lambda: server_state(server).catalog.revision == revision)


@pytest.fixture
def team(many_calls: None, db: Database, api: Api, server: LiveServer, admin: Credentials) -> Team:
    add_group(db, "North")
    add_group(db, "South")
    users = {
        "admin": admin,
        "manager": make_user(db, "SalesManager", email="manager@example.com", groups=["North"]),
        "rep": make_user(db, "SalesUser", email="rep@example.com", groups=["North"]),
        "peer": make_user(db, "SalesUser", email="peer@example.com", groups=["North"]),
        "south": make_user(db, "SalesUser", email="south@example.com", groups=["South"]),
        "marketing": make_user(db, "MarketingUser", email="marketing@example.com"),
    }
    leads = {
        owner: api.create_lead(
            EmailAddress=lead_email(owner),
            Phone=lead_phone(owner),
            FirstName=owner.capitalize(),
            Company=f"Acme {owner}",
            Source="team",
            OwnerId=users[owner].user_id,
        )
        for owner in LEAD_OWNERS
    }
    settled(server, db)
    return Team(**users, leads=leads)
