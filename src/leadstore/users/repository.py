import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from leadstore.models import GroupMember, PermissionTemplate, SalesGroup, User


def get_by_email(conn: Connection, email: str) -> RowMapping | None:
    return conn.execute(select(User.__table__).where(User.email == email.strip().lower())).mappings().first()


def get_by_access_key(conn: Connection, access_key: str) -> RowMapping | None:
    return conn.execute(select(User.__table__).where(User.access_key == access_key)).mappings().first()


def get_by_id(conn: Connection, user_id: str) -> RowMapping | None:
    return conn.execute(select(User.__table__).where(User.id == user_id)).mappings().first()


def add(conn: Connection, **values: Any) -> None:
    conn.execute(insert(User).values(**values))


def set_values(conn: Connection, user_id: str, **values: Any) -> None:
    conn.execute(update(User).where(User.id == user_id).values(**values))


def list_users(conn: Connection) -> Sequence[RowMapping]:
    return conn.execute(select(User.__table__).order_by(User.email)).mappings().all()


def group_user_ids(conn: Connection, user_id: str) -> set[str]:
    """Everyone who shares a sales group with ``user_id``."""
    my_groups = select(GroupMember.group_id).where(GroupMember.user_id == user_id)
    rows = conn.execute(select(GroupMember.user_id).where(GroupMember.group_id.in_(my_groups)))
    return set(rows.scalars())


def group_names_of(conn: Connection, user_id: str) -> list[str]:
    rows = conn.execute(
        select(SalesGroup.name)
        .join(GroupMember, GroupMember.group_id == SalesGroup.id)
        .where(GroupMember.user_id == user_id)
        .order_by(SalesGroup.name)
    )
    return list(rows.scalars())


def get_group(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(SalesGroup.__table__).where(SalesGroup.name == name)).mappings().first()


def add_group(conn: Connection, name: str) -> None:
    conn.execute(insert(SalesGroup).values(name=name))


def list_groups(conn: Connection) -> list[tuple[str, list[str]]]:
    rows = conn.execute(
        select(SalesGroup.name, User.email)
        .select_from(SalesGroup)
        .outerjoin(GroupMember, GroupMember.group_id == SalesGroup.id)
        .outerjoin(User, User.id == GroupMember.user_id)
        .order_by(SalesGroup.name, User.email)
    ).all()
    groups: dict[str, list[str]] = {}
    for name, email in rows:
        groups.setdefault(name, [])
        if email:
            groups[name].append(email)
    return list(groups.items())


def add_member(conn: Connection, group_id: int, user_id: str) -> None:
    exists = conn.execute(
        select(GroupMember.user_id).where(GroupMember.group_id == group_id, GroupMember.user_id == user_id)
    ).first()
    if exists is None:
        conn.execute(insert(GroupMember).values(group_id=group_id, user_id=user_id))


def remove_member(conn: Connection, group_id: int, user_id: str) -> int:
    result = conn.execute(delete(GroupMember).where(GroupMember.group_id == group_id, GroupMember.user_id == user_id))
    return result.rowcount


def get_template(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(PermissionTemplate.__table__).where(PermissionTemplate.name == name)).mappings().first()


def get_template_by_id(conn: Connection, template_id: int) -> RowMapping | None:
    table = PermissionTemplate.__table__
    return conn.execute(select(table).where(PermissionTemplate.id == template_id)).mappings().first()


def save_template(conn: Connection, name: str, lead_access: str, read_only: list[str], hidden: list[str]) -> None:
    values = {
        "lead_access": lead_access,
        "read_only_fields": json.dumps(read_only),
        "hidden_fields": json.dumps(hidden),
    }
    if get_template(conn, name) is None:
        conn.execute(insert(PermissionTemplate).values(name=name, **values))
    else:
        conn.execute(update(PermissionTemplate).where(PermissionTemplate.name == name).values(**values))


def list_templates(conn: Connection) -> Sequence[RowMapping]:
    table = PermissionTemplate.__table__
    return conn.execute(select(table).order_by(PermissionTemplate.name)).mappings().all()
