"""Users, their keys, sales groups and permission templates."""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection

from leadstore import catalog
from leadstore.auth import keys
from leadstore.auth.principal import ROLE_DEFAULT_ACCESS, LeadAccess, Principal, Role
from leadstore.db import Database
from leadstore.errors import AdminInputError
from leadstore.fields.registry import FieldRegistry
from leadstore.users import repository as repo


@dataclass(frozen=True)
class Credentials:
    user_id: str
    email: str
    access_key: str
    secret_key: str


def _role(value: str) -> Role:
    for role in Role:
        if role.value.lower() == value.strip().lower():
            return role
    raise AdminInputError(f"unknown role {value!r}; roles are: {', '.join(r.value for r in Role)}")


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise AdminInputError(f"{value!r} is not a valid email address") from None
    return value.strip().lower()


def _user(conn: Connection, email: str) -> str:
    row = repo.get_by_email(conn, email)
    if row is None:
        raise AdminInputError(f"no user has the email address {email!r}")
    return str(row["id"])


def add_user(
    conn: Connection,
    email: str,
    role: str,
    first_name: str | None = None,
    last_name: str | None = None,
    groups: list[str] | None = None,
    template: str | None = None,
) -> Credentials:
    email = _email(email)
    if repo.get_by_email(conn, email) is not None:
        raise AdminInputError(f"a user with the email address {email!r} already exists")
    template_id = _template_id(conn, template) if template else None
    group_ids = [_group_id(conn, name) for name in groups or []]
    user_id = str(uuid.uuid4())
    access_key, secret_key = keys.new_access_key(), keys.new_secret_key()
    repo.add(
        conn,
        id=user_id,
        email=email,
        first_name=first_name,
        last_name=last_name,
        role=_role(role).value,
        access_key=access_key,
        secret_hash=keys.hash_secret(secret_key),
        is_active=True,
        template_id=template_id,
        created_at=datetime.now(UTC).replace(tzinfo=None),
    )
    for group_id in group_ids:
        repo.add_member(conn, group_id, user_id)
    catalog.bump_revision(conn)
    return Credentials(user_id, email, access_key, secret_key)


def deactivate(conn: Connection, email: str) -> None:
    repo.set_values(conn, _user(conn, email), is_active=False)
    catalog.bump_revision(conn)


def rotate_keys(conn: Connection, email: str) -> Credentials:
    user_id = _user(conn, email)
    access_key, secret_key = keys.new_access_key(), keys.new_secret_key()
    repo.set_values(conn, user_id, access_key=access_key, secret_hash=keys.hash_secret(secret_key))
    catalog.bump_revision(conn)
    return Credentials(user_id, email.strip().lower(), access_key, secret_key)


def set_template(conn: Connection, email: str, template: str | None) -> None:
    template_id = _template_id(conn, template) if template else None
    repo.set_values(conn, _user(conn, email), template_id=template_id)
    catalog.bump_revision(conn)


def _group_id(conn: Connection, name: str) -> int:
    row = repo.get_group(conn, name.strip())
    if row is None:
        raise AdminInputError(f"no sales group is named {name!r}; create it with: leadstore group add {name}")
    return int(row["id"])


def _template_id(conn: Connection, name: str) -> int:
    row = repo.get_template(conn, name.strip())
    if row is None:
        raise AdminInputError(f"no permission template is named {name!r}; create it with: leadstore template add")
    return int(row["id"])


def add_group(conn: Connection, name: str) -> None:
    name = name.strip()
    if not name:
        raise AdminInputError("a sales group needs a name")
    if repo.get_group(conn, name) is not None:
        raise AdminInputError(f"a sales group named {name!r} already exists")
    repo.add_group(conn, name)
    catalog.bump_revision(conn)


def add_member(conn: Connection, group: str, email: str) -> None:
    repo.add_member(conn, _group_id(conn, group), _user(conn, email))
    catalog.bump_revision(conn)


def remove_member(conn: Connection, group: str, email: str) -> None:
    if repo.remove_member(conn, _group_id(conn, group), _user(conn, email)) == 0:
        raise AdminInputError(f"{email} is not a member of the sales group {group!r}")
    catalog.bump_revision(conn)


def save_template(
    conn: Connection,
    fields: FieldRegistry,
    name: str,
    lead_access: str,
    read_only: list[str],
    hidden: list[str],
    *,
    create: bool,
) -> None:
    """Create a template (``create``) or replace an existing one's rules."""
    name = name.strip()
    if not name:
        raise AdminInputError("a permission template needs a name")
    exists = repo.get_template(conn, name) is not None
    if create and exists:
        raise AdminInputError(f"a permission template named {name!r} already exists")
    if not create and not exists:
        raise AdminInputError(f"no permission template is named {name!r}")
    try:
        access = LeadAccess(lead_access.strip().lower())
    except ValueError:
        choices = ", ".join(a.value for a in LeadAccess)
        raise AdminInputError(f"unknown lead access {lead_access!r}; choose one of: {choices}") from None
    read_only_names, hidden_names = _field_names(fields, read_only), _field_names(fields, hidden)
    both = [n for n in read_only_names if n in hidden_names]
    if both:
        raise AdminInputError(f"{both[0]} cannot be both read-only and hidden; hidden already forbids writing")
    if "ProspectId" in hidden_names:
        raise AdminInputError("ProspectId identifies leads and cannot be hidden")
    repo.save_template(conn, name, access.value, read_only_names, hidden_names)
    catalog.bump_revision(conn)


def _field_names(fields: FieldRegistry, names: list[str]) -> list[str]:
    """Canonical schema names, each once, in the order given."""
    canonical: list[str] = []
    for name in names:
        field_ = fields.get(name.strip())
        if field_ is None:
            raise AdminInputError(f"no lead field is named {name!r}; see leadstore field list")
        if field_.schema_name not in canonical:
            canonical.append(field_.schema_name)
    return canonical


def load_principal(conn: Connection, user: dict[str, object]) -> Principal:
    """What the user behind a key may do: role, lead scope and field rules."""
    user_id = str(user["id"])
    role = Role(str(user["role"]))
    access, read_only, hidden = ROLE_DEFAULT_ACCESS[role], frozenset[str](), frozenset[str]()
    template = repo.get_template_by_id(conn, int(str(user["template_id"]))) if user["template_id"] else None
    if template is not None and role != Role.ADMINISTRATOR:
        access = LeadAccess(template["lead_access"])
        read_only = frozenset(n.lower() for n in json.loads(template["read_only_fields"]))
        hidden = frozenset(n.lower() for n in json.loads(template["hidden_fields"]))
    name = " ".join(str(p) for p in (user["first_name"], user["last_name"]) if p) or str(user["email"])
    return Principal(
        user_id=user_id,
        email=str(user["email"]),
        name=name,
        role=role,
        lead_access=access,
        group_user_ids=frozenset(repo.group_user_ids(conn, user_id) | {user_id}),
        read_only=read_only,
        hidden=hidden,
    )


def _may_see(principal: Principal, user_id: str) -> bool:
    """Administrators see every user; others themselves and whom they share a sales group with."""
    return principal.role == Role.ADMINISTRATOR or user_id in principal.group_user_ids


def _lsq_role(role: str) -> str:
    return {"SalesUser": "Sales_User", "SalesManager": "Sales_Manager", "MarketingUser": "Marketing_User"}.get(
        role, role
    )


def visible_user(
    db: Database, principal: Principal, *, user_id: str | None = None, email: str | None = None
) -> list[dict[str, Any]]:
    """LeadSquared's user detail: [] for an unknown or inactive user, or one the caller may not see."""
    with db.read() as conn:
        if user_id:
            row = repo.get_by_id(conn, user_id.strip())
        elif email:
            row = repo.get_by_email(conn, email.strip().lower())
        else:
            row = None
        if row is None or not row["is_active"] or not _may_see(principal, str(row["id"])):
            return []
        groups = repo.group_names_of(conn, str(row["id"]))
    return [
        {
            "UserId": row["id"],
            "FirstName": row["first_name"],
            "LastName": row["last_name"],
            "EmailAddress": row["email"],
            "Role": _lsq_role(str(row["role"])),
            "IsPhoneCallAgent": False,
            "Groups": [{"Id": name, "Name": name} for name in groups],
        }
    ]


def visible_users(db: Database, principal: Principal) -> list[dict[str, Any]]:
    """LeadSquared's user list: every user the caller may see, with its status (0 active)."""
    with db.read() as conn:
        rows = [row for row in repo.list_users(conn) if _may_see(principal, str(row["id"]))]
        groups = {str(row["id"]): repo.group_names_of(conn, str(row["id"])) for row in rows}
    return [
        {
            "ID": row["id"],
            "FirstName": row["first_name"],
            "LastName": row["last_name"],
            "EmailAddress": row["email"],
            "Role": _lsq_role(str(row["role"])),
            "StatusCode": 0 if row["is_active"] else 1,
            "MemberOfGroups": groups[str(row["id"])],
            "Tag": None,
            "IsPhoneCallAgent": False,
        }
        for row in rows
    ]
