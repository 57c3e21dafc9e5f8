"""SQL for leads and their change history. Column names come only from the field registry."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, bindparam, false, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from leadstore.auth.principal import Principal
from leadstore.fields.model import Field
from leadstore.fields.validation import to_wire
from leadstore.models import LeadChange


def scope_filter(table: Table, principal: Principal) -> ColumnElement[bool] | None:
    """Restricts a query to the leads ``principal`` may see and change; None when all."""
    owners = principal.lead_owners
    if owners is None:
        return None
    if not owners:
        return false()
    return table.c.owner_id.in_(sorted(owners))


def find(
    conn: Connection,
    table: Table,
    column: str,
    values: Iterable[Any],
    principal: Principal,
    *,
    lock: bool = False,
) -> list[Mapping[str, Any]]:
    """The leads whose ``column`` holds one of ``values``, within the caller's scope.

    With ``lock`` the rows stay locked until the transaction ends (PostgreSQL; SQLite has one
    writer anyway), in id order so that two calls over the same leads cannot deadlock.
    """
    query = select(table).where(table.c[column].in_(sorted(set(values), key=str))).order_by(table.c.auto_id)
    scope = scope_filter(table, principal)
    if scope is not None:
        query = query.where(scope)
    if lock:
        query = query.with_for_update()
    return [dict(row) for row in conn.execute(query).mappings()]


def insert_lead(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    result = conn.execute(insert(table).values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class LeadUpdate:
    lead_id: int
    old: Mapping[str, Any]  # the lead's row before the change
    new: Mapping[Field, Any]  # only the fields that change


def apply_updates(
    conn: Connection,
    table: Table,
    updates: Sequence[LeadUpdate],
    user_id: str,
    request_id: str,
    now: datetime,
) -> None:
    """Write the changes and one history row per changed field: one UPDATE statement per set
    of changed columns (executemany) and one INSERT for all history rows."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    history: list[dict[str, Any]] = []
    for item in updates:
        columns = tuple(sorted(f.column for f in item.new))
        params = {f"v_{f.column}": v for f, v in item.new.items()}
        params["v_lead_id"] = item.lead_id
        by_columns.setdefault(columns, []).append(params)
        history.extend(
            {
                "lead_id": item.lead_id,
                "request_id": request_id,
                "field": f.schema_name,
                "old_value": to_wire(f, item.old.get(f.column)),
                "new_value": to_wire(f, v),
                "changed_by": user_id,
                "changed_at": now,
            }
            for f, v in item.new.items()
        )
    for columns, rows in by_columns.items():
        statement = (
            update(table)
            .where(table.c.auto_id == bindparam("v_lead_id"))
            .values({**{c: bindparam(f"v_{c}") for c in columns}, "modified_on": now, "modified_by": user_id})
        )
        conn.execute(statement, rows)
    if history:
        conn.execute(insert(LeadChange), history)


def record_creation(
    conn: Connection, lead_id: int, values: Mapping[Field, Any], user_id: str, request_id: str, now: datetime
) -> None:
    rows = [
        {
            "lead_id": lead_id,
            "request_id": request_id,
            "field": f.schema_name,
            "old_value": None,
            "new_value": to_wire(f, v),
            "changed_by": user_id,
            "changed_at": now,
        }
        for f, v in values.items()
        if v is not None
    ]
    if rows:
        conn.execute(insert(LeadChange), rows)


def history(conn: Connection, lead_id: int, limit: int) -> Sequence[RowMapping]:
    query = (
        select(LeadChange.__table__)
        .where(LeadChange.lead_id == lead_id)
        .order_by(LeadChange.changed_at.desc(), LeadChange.field)
        .limit(limit)
    )
    return conn.execute(query).mappings().all()
