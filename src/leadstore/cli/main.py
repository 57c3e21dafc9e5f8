"""The ``leadstore`` command line (spec section 7): set up, administer and serve.

Every command reads the database from LEADSTORE_DATABASE_URL (default: leadstore.db in the
working directory) and exits non-zero with a one-line message on bad input.
"""

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from leadstore import migrate
from leadstore.catalog import Catalog, parse_setting
from leadstore.cli.bulk_update import bulk_update
from leadstore.config import get_settings
from leadstore.db import Database
from leadstore.errors import AdminInputError
from leadstore.users import service as user_service
from leadstore.users.service import Credentials


class OneLineErrors(TyperGroup):
    """Usage errors (a missing option, an unknown one) as one line on standard error, like every
    other error of this command line, instead of click's usage text and a boxed message."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # click's exceptions, as typer ships them
            exit_code = int(getattr(exc, "exit_code", 2))
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `leadstore user`: its help text
                exc.show()  # type: ignore[attr-defined]
                sys.exit(exit_code)
            ctx = getattr(exc, "ctx", None)
            see = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            message = exc.format_message() if hasattr(exc, "format_message") else exc.message
            typer.echo(f"error: {message}{see}", err=True)
            sys.exit(exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    help="leadstore: a self-hosted lead store that speaks LeadSquared's Lead Management API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Users and their access keys.", no_args_is_help=True)
field_app = typer.Typer(help="Custom lead fields (mx_...).", no_args_is_help=True)
settings_app = typer.Typer(
    help="Account settings; running servers pick changes up within a second.", no_args_is_help=True
)
group_app = typer.Typer(help="Sales groups: a lead belongs to the groups of its owner.", no_args_is_help=True)
template_app = typer.Typer(help="Permission templates: lead access and field rules for users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(field_app, name="field")
app.add_typer(settings_app, name="settings")
app.add_typer(group_app, name="group")
app.add_typer(template_app, name="template")
app.command("bulk-update")(bulk_update)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object and nothing else.")]
T = TypeVar("T")
ADMIN_EMAIL = "admin@example.com"


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


@app.command()
def init(
    as_json: JsonOption = False,
    admin_email: Annotated[str, typer.Option(help="The first Administrator's email address.")] = ADMIN_EMAIL,
) -> None:
    """Create or upgrade the database. The first run creates an Administrator and prints its keys."""
    with database() as db:
        migrate.upgrade(db)
        with db.write() as conn:
            from leadstore.users import repository as user_repo

            admins = [u for u in user_repo.list_users(conn) if u["role"] == "Administrator"]
            if admins:
                admin = admins[0]
                data = {"user_id": admin["id"], "email": admin["email"], "access_key": admin["access_key"]}
                print_credentials(data, as_json, "The database is up to date; secret keys are shown only once.")
                return
            credentials = user_service.add_user(conn, admin_email, "Administrator", "Admin", None)
    print_credentials(credentials, as_json, "Keep the secret key: it is shown only this once.")


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Option("--email", help="The user's email address.")],
    role: Annotated[str, typer.Option("--role", help="Administrator, SalesManager, SalesUser or MarketingUser.")],
    first_name: Annotated[str | None, typer.Option("--first-name")] = None,
    last_name: Annotated[str | None, typer.Option("--last-name")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="A sales group to join (repeatable).")] = None,
    template: Annotated[str | None, typer.Option("--template", help="A permission template to apply.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user and print its new keys (the secret key is shown only this once)."""
    credentials = in_transaction(
        lambda conn: user_service.add_user(conn, email, role, first_name, last_name, group or [], template)
    )
    print_credentials(credentials, as_json, "Keep the secret key: it is shown only this once.")


@user_app.command("deactivate")
def user_deactivate(email: str) -> None:
    """Deactivate a user: its keys stop working on running servers within a second."""
    in_transaction(lambda conn: user_service.deactivate(conn, email))
    typer.echo(f"{email} is deactivated")


@user_app.command("rotate-keys")
def user_rotate_keys(email: str, as_json: JsonOption = False) -> None:
    """Give a user new keys; the old ones stop working within a second."""
    credentials = in_transaction(lambda conn: user_service.rotate_keys(conn, email))
    print_credentials(credentials, as_json, "Keep the secret key: it is shown only this once.")


@user_app.command("set-template")
def user_set_template(
    email: str,
    template: Annotated[
        str | None, typer.Option("--template", help="The template; omit to use the role default.")
    ] = None,
) -> None:
    """Apply a permission template to a user, or remove it (role default)."""
    in_transaction(lambda conn: user_service.set_template(conn, email, template))
    typer.echo(f"{email} now uses {template or 'the default of its role'}")


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """List users (never their secrets)."""
    from leadstore.users import repository as user_repo

    def rows(conn: Any) -> list[dict[str, Any]]:
        templates = {t["id"]: t["name"] for t in user_repo.list_templates(conn)}
        return [
            {
                "UserId": u["id"],
                "EmailAddress": u["email"],
                "Role": u["role"],
                "Active": u["is_active"],
                "Template": templates.get(u["template_id"]),
                "Groups": user_repo.group_names_of(conn, u["id"]),
            }
            for u in user_repo.list_users(conn)
        ]

    users = in_transaction(rows)
    if as_json:
        typer.echo(json.dumps({"Users": users}))
        return
    for u in users:
        state = "active" if u["Active"] else "deactivated"
        groups = ",".join(u["Groups"]) or "-"
        typer.echo(f"{u['EmailAddress']}  {u['Role']}  {state}  template={u['Template'] or '-'}  groups={groups}")


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
    from leadstore.fields import service as field_service

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
    from leadstore import catalog as catalog_module

    try:
        parsed = parse_setting(key, value)
    except ValueError as exc:
        fail(str(exc))
    in_transaction(lambda conn: catalog_module.save_setting(conn, key, value.strip()))
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


@group_app.command("add")
def group_add(name: str) -> None:
    """Create a sales group."""
    in_transaction(lambda conn: user_service.add_group(conn, name))
    typer.echo(f"added sales group {name}")


@group_app.command("add-member")
def group_add_member(name: str, email: str) -> None:
    """Put a user in a sales group."""
    in_transaction(lambda conn: user_service.add_member(conn, name, email))
    typer.echo(f"{email} is in {name}")


@group_app.command("remove-member")
def group_remove_member(name: str, email: str) -> None:
    """Take a user out of a sales group."""
    in_transaction(lambda conn: user_service.remove_member(conn, name, email))
    typer.echo(f"{email} left {name}")


@group_app.command("list")
def group_list(as_json: JsonOption = False) -> None:
    """List sales groups and their members."""
    from leadstore.users import repository as user_repo

    groups = in_transaction(user_repo.list_groups)
    if as_json:
        typer.echo(json.dumps({"Groups": [{"Name": n, "Members": m} for n, m in groups]}))
        return
    for name, members in groups:
        typer.echo(f"{name}: {', '.join(members) or '(no members)'}")


LeadAccessOption = Annotated[str, typer.Option("--lead-access", help="all, group, own or none.")]
ReadOnlyOption = Annotated[
    list[str] | None, typer.Option("--read-only", help="A field users may read but not write (repeatable).")
]
HiddenOption = Annotated[
    list[str] | None, typer.Option("--hidden", help="A field users may neither read nor write (repeatable).")
]


@template_app.command("add")
def template_add(
    name: str, lead_access: LeadAccessOption, read_only: ReadOnlyOption = None, hidden: HiddenOption = None
) -> None:
    """Create a permission template."""
    with_catalog(
        lambda conn, cat: user_service.save_template(
            conn, cat.fields, name, lead_access, read_only or [], hidden or [], create=True
        )
    )
    typer.echo(f"added permission template {name}")


@template_app.command("set")
def template_set(
    name: str, lead_access: LeadAccessOption, read_only: ReadOnlyOption = None, hidden: HiddenOption = None
) -> None:
    """Replace a permission template's rules (users of it are affected within a second)."""
    with_catalog(
        lambda conn, cat: user_service.save_template(
            conn, cat.fields, name, lead_access, read_only or [], hidden or [], create=False
        )
    )
    typer.echo(f"updated permission template {name}")


@template_app.command("list")
def template_list(as_json: JsonOption = False) -> None:
    """List permission templates and their rules."""
    from leadstore.users import repository as user_repo

    templates = [
        {
            "Name": t["name"],
            "LeadAccess": t["lead_access"],
            "ReadOnly": json.loads(t["read_only_fields"]),
            "Hidden": json.loads(t["hidden_fields"]),
        }
        for t in in_transaction(user_repo.list_templates)
    ]
    if as_json:
        typer.echo(json.dumps({"Templates": templates}))
        return
    for t in templates:
        read_only, hidden = ", ".join(t["ReadOnly"]) or "-", ", ".join(t["Hidden"]) or "-"
        typer.echo(f"{t['Name']}: lead access {t['LeadAccess']}; read-only {read_only}; hidden {hidden}")


@app.command()
def demo(leads: Annotated[int, typer.Option(help="How many demo leads to create.")] = 3000) -> None:
    """Fill an empty database with demo users, groups, a custom field and leads."""
    from leadstore import demo as demo_data

    with database() as db:
        made = demo_data.seed(db, leads)
    typer.echo(made)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes; more than 1 needs PostgreSQL and Redis.")] = 1,
) -> None:
    """Serve the API (docs at /docs)."""
    from leadstore import server

    settings = get_settings()
    try:
        server.run(settings, host or settings.host, port or settings.port, workers)
    except server.ServeError as exc:
        fail(str(exc))


if __name__ == "__main__":
    app()
