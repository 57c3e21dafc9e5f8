"""Commands for users and their keys, sales groups and permission templates (spec sections 6
and 7). Every change reaches running servers within a second."""

import json
from typing import Annotated, Any

import typer

from leadstore.cli.common import JsonOption, in_transaction, print_credentials, with_catalog
from leadstore.users import repository as user_repo
from leadstore.users import service as user_service

user_app = typer.Typer(help="Users and their access keys.", no_args_is_help=True)
group_app = typer.Typer(help="Sales groups: a lead belongs to the groups of its owner.", no_args_is_help=True)
template_app = typer.Typer(help="Permission templates: lead access and field rules for users.", no_args_is_help=True)


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
