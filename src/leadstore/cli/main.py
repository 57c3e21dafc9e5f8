"""The ``leadstore`` command line (spec section 7): set up, administer and serve.

Every command reads the database from LEADSTORE_DATABASE_URL (default: leadstore.db in the
working directory) and exits non-zero with a one-line message on bad input.
"""

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from leadstore import migrate
from leadstore.cli.access import group_app, template_app, user_app
from leadstore.cli.bulk_revert import bulk_revert
from leadstore.cli.bulk_update import bulk_update
from leadstore.cli.catalog import field_app, settings_app
from leadstore.cli.common import JsonOption, database, fail, print_credentials
from leadstore.cli.history import history_app
from leadstore.config import get_settings
from leadstore.users import repository as user_repo
from leadstore.users import service as user_service


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
app.add_typer(user_app, name="user")
app.add_typer(field_app, name="field")
app.add_typer(settings_app, name="settings")
app.add_typer(group_app, name="group")
app.add_typer(template_app, name="template")
app.add_typer(history_app, name="history")
app.command("bulk-update")(bulk_update)
app.command("bulk-revert")(bulk_revert)

ADMIN_EMAIL = "admin@example.com"


@app.command()
def init(
    as_json: JsonOption = False,
    admin_email: Annotated[str, typer.Option(help="The first Administrator's email address.")] = ADMIN_EMAIL,
) -> None:
    """Create or upgrade the database. The first run creates an Administrator and prints its keys."""
    with database() as db:
        migrate.upgrade(db)
        with db.write() as conn:
            admins = [u for u in user_repo.list_users(conn) if u["role"] == "Administrator"]
            if admins:
                admin = admins[0]
                data = {"user_id": admin["id"], "email": admin["email"], "access_key": admin["access_key"]}
                print_credentials(data, as_json, "The database is up to date; secret keys are shown only once.")
                return
            credentials = user_service.add_user(conn, admin_email, "Administrator", "Admin", None)
    print_credentials(credentials, as_json, "Keep the secret key: it is shown only this once.")


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
