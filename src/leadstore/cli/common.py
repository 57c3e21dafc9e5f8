"""What every administrative command shares: the database from LEADSTORE_DATABASE_URL, a
transaction, one-line errors, and the way keys are printed."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from leadstore.catalog import Catalog
from leadstore.config import get_settings
from leadstore.db import Database
from leadstore.errors import AdminInputError
from leadstore.users.service import Credentials

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object and nothing else.")]
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def database() -> Iterator[Database]:
    db = Database(get_settings())
    try:
        yield db
    except AdminInputError as exc:
        fail(exc.message)
    except Exception as exc:  # a database we cannot reach or open
        if type(exc).__module__.startswith("sqlalchemy"):
            fail(f"the database at LEADSTORE_DATABASE_URL failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        raise
    finally:
        db.dispose()


def in_transaction(work: Callable[[Any], T]) -> T:
    with database() as db, db.write() as conn:
        return work(conn)


def with_catalog(work: Callable[[Any, Catalog], T]) -> T:
    with database() as db:
        catalog = Catalog(db)
        catalog.refresh()
        with db.write() as conn:
            return work(conn, catalog)


def print_credentials(credentials: Credentials | dict[str, Any], as_json: bool, note: str = "") -> None:
    data = asdict(credentials) if isinstance(credentials, Credentials) else credentials
    out = {
        "UserId": data["user_id"],
        "EmailAddress": data["email"],
        "AccessKey": data["access_key"],
    }
    if data.get("secret_key"):
        out["SecretKey"] = data["secret_key"]
    if as_json:
        typer.echo(json.dumps(out))
        return
    for key, value in out.items():
        typer.echo(f"{key:>13}: {value}")
    if "SecretKey" in out:
        # The bulk-update tool and the README's examples read these variables.
        typer.echo(f"export LEADSTORE_ACCESS_KEY={out['AccessKey']} LEADSTORE_SECRET_KEY={out['SecretKey']}")
    if note:
        typer.echo(note)
