"""Commands for custom lead fields and account settings; running servers pick changes up
within a second."""

import json
from dataclasses import asdict
from typing import Annotated

import typer

from leadstore.catalog import Catalog, parse_setting, save_setting
from leadstore.cli.common import JsonOption, database, fail, in_transaction, with_catalog
from leadstore.fields import service as field_service

field_app = typer.Typer(help="Custom lead fields (mx_...).", no_args_is_help=True)
settings_app = typer.Typer(
    help="Account settings; running servers pick changes up within a second.", no_args_is_help=True
)


@field_app.command("add")
def field_add(
    schema_name: Annotated[str, typer.Argument(help="mx_ followed by a name, e.g. mx_City.")],
    type_: Annotated[
        str,
        typer.Option("--type", help="Text, Number, Email, Phone, Website, Date, DateTime, Time, Select or Boolean."),
    ],
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    unique: Annotated[bool, typer.Option("--unique", help="No two leads may hold the same value.")] = False,
    mandatory: Annotated[bool, typer.Option("--mandatory", help="Cannot be emptied; required on create.")] = False,
    max_length: Annotated[int | None, typer.Option("--max-length", help="Text default 200, at most 4000.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="An option of a Select field (repeatable).")
    ] = None,
) -> None:
    """Add a custom lead field; running servers accept it within a second."""
    field_ = with_catalog(
        lambda conn, cat: field_service.add(
            conn, cat.fields, schema_name, type_, display_name, unique, mandatory, max_length, option or []
        )
    )
    typer.echo(f"added {field_.schema_name} ({field_.data_type.value})")


@field_app.command("list")
def field_list() -> None:
    """List every lead field with its type and flags."""
    with database() as db:
        catalog = Catalog(db)
        catalog.refresh()
    for f in catalog.fields.fields:
        flags = [
            n
            for n, on in (
                ("unique", f.is_unique),
                ("mandatory", f.is_mandatory),
                ("read-only", f.server_managed),
            )
            if on
        ]
        typer.echo(f"{f.schema_name:<24} {f.data_type.value:<9} {' '.join(flags)}")


@settings_app.command("set")
def settings_set(key: str, value: str) -> None:
    """Set an account setting: phone_country_code_mandatory, default_country_code,
    rate_limit_calls, rate_limit_window_seconds or bulk_max_leads."""
    try:
        parsed = parse_setting(key, value)
    except ValueError as exc:
        fail(str(exc))
    in_transaction(lambda conn: save_setting(conn, key, value.strip()))
    typer.echo(f"{key} = {parsed}")


@settings_app.command("list")
def settings_list(as_json: JsonOption = False) -> None:
    """Show every account setting."""
    with database() as db:
        catalog = Catalog(db)
        catalog.refresh()
    values = asdict(catalog.account)
    if as_json:
        typer.echo(json.dumps(values))
        return
    for key, value in values.items():
        typer.echo(f"{key} = {value}")
