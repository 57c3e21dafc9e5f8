"""SQL for leads and their change history. Column names come only from the field registry."""

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, RowMapping, Table, delete, false, insert, literal, select, update
from sqlalchemy.sql.elements import ColumnElement

from leadstore.auth.principal import Principal
from leadstore.fields.model import Field
from leadstore.fields.registry import FieldRegistry
from leadstore.fields.validation import to_wire
from leadstore.models import IdempotentResponse, Lead, LeadChange, User


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
    columns: Iterable[str] | None = None,
) -> list[Mapping[str, Any]]:
    """The leads whose ``column`` holds one of ``values``, within the caller's scope, as the
    driver returns them (on SQLite, date-times are the stored text): every column, or only
    ``columns`` (and auto_id).

    With ``lock`` the rows stay locked until the transaction ends (PostgreSQL; SQLite has one
    writer anyway), in id order so that two calls over the same leads cannot deadlock.
    """
    values = sorted(set(values), key=str)
    owners = principal.lead_owners
    if not values or (owners is not None and not owners):
        return []
    # Driver SQL: this lookup is on the bulk update's hot path (see apply_updates).
    sql = _driver_sql(conn.dialect)
    names = [c.name for c in table.columns] if columns is None else sorted({"auto_id", *columns})
    where = f"{sql.quote(column)} IN ({', '.join([sql.mark] * len(values))})"
    params: list[Any] = list(values)
    if owners is not None:
        where += f" AND owner_id IN ({', '.join([sql.mark] * len(owners))})"
        params.extend(sorted(owners))
    statement = (
        f"SELECT {', '.join(sql.quote(n) for n in names)} FROM {sql.quote(table.name)} "
        f"WHERE {where} ORDER BY auto_id{sql.for_update if lock else ''}"
    )
    result = conn.exec_driver_sql(statement, tuple(params))
    rows = result.cursor.fetchall()  # the driver's tuples: wrapping them in SQLAlchemy rows cost as much again
    result.close()
    return [dict(zip(names, row, strict=True)) for row in rows]


def insert_lead(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    result = conn.execute(insert(table).values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def holders(conn: Connection, registry: FieldRegistry, field_: Field, values: Iterable[Any]) -> dict[Any, int]:
    """The leads holding any of ``values`` in the unique field ``field_``, by value."""
    column = registry.column(field_)
    rows = conn.execute(select(column, registry.table.c.auto_id).where(column.in_(sorted(set(values), key=str))))
    return {value: lead_id for value, lead_id in rows}


def known_users(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that are users."""
    return set(conn.execute(select(User.id).where(User.id.in_(sorted(set(ids))))).scalars())


def idempotent_answer(conn: Connection, user_id: str, key: str, since: datetime) -> tuple[str, str] | None:
    """The body hash and the answer stored with ``key`` since ``since``."""
    table = IdempotentResponse.__table__
    row = conn.execute(
        select(table.c.body_hash, table.c.response).where(
            table.c.user_id == user_id, table.c.key == key, table.c.created_at >= since
        )
    ).first()
    return None if row is None else (str(row.body_hash), str(row.response))


def delete_idempotent_answers(conn: Connection, before: datetime) -> int:
    result = conn.execute(delete(IdempotentResponse).where(IdempotentResponse.created_at < before))
    return int(result.rowcount or 0)


def record_creation(
    conn: Connection, lead_id: int, values: Mapping[Field, Any], user_id: str, request_id: str, now: datetime
) -> None:
    """The history of a new lead: one change per field given, chained, the last the newest."""
    given = [(f.schema_name, to_wire(f, v)) for f, v in values.items() if v is not None]
    if not given:
        return
    ids = _reserve_change_ids(conn, len(given))
    rows = [
        {
            "id": change_id,
            "previous_id": previous,
            "lead_id": lead_id,
            "request_id": request_id,
            "field": field_name,
            "old_value": None,
            "new_value": value,
            "changed_by": user_id,
            "changed_at": now,
        }
        for change_id, previous, (field_name, value) in zip(ids, [None, *ids[:-1]], given, strict=True)
    ]
    conn.execute(insert(LeadChange), rows)
    conn.execute(update(Lead).where(Lead.auto_id == lead_id).values(last_change_id=ids[-1]))


def _reserve_change_ids(conn: Connection, count: int) -> list[int]:
    """Ids for ``count`` new history rows, known before they are written so that the chain can
    point at them. SQLite: past the largest id (the write lock keeps anyone else from taking
    them); PostgreSQL: from the id's sequence."""
    if conn.dialect.name == "postgresql":
        reserved = conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('lead_changes', 'id')) FROM generate_series(1, %s)", (count,)
        )
        return [int(row[0]) for row in reserved.cursor.fetchall()]
    largest = conn.exec_driver_sql("SELECT max(id) FROM lead_changes").scalar() or 0
    return list(range(largest + 1, largest + 1 + count))


def history(conn: Connection, newest_id: int | None, limit: int) -> list[RowMapping]:
    """A lead's changes, newest first: from its newest change (``last_change_id``) back along
    the chain, at most ``limit``, one primary-key lookup each."""
    if newest_id is None:
        return []
    changes = LeadChange.__table__
    chain = select(changes, literal(1).label("depth")).where(changes.c.id == newest_id).cte("chain", recursive=True)
    earlier = changes.alias("earlier")
    step = select(earlier, chain.c.depth + 1).join(chain, earlier.c.id == chain.c.previous_id)
    chain = chain.union_all(step.where(chain.c.depth < limit))
    columns = [chain.c[c.name] for c in changes.columns]
    return list(conn.execute(select(*columns).order_by(chain.c.depth)).mappings())


class _DriverSql:
    """The dialect's spelling of what raw statements need: a parameter mark, a quoted column
    name, a row lock."""

    def __init__(self, dialect: Dialect) -> None:
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.quote = dialect.identifier_preparer.quote
        # SQLite has no row locks (and needs none: it has one writer).
        self.for_update = "" if dialect.name == "sqlite" else " FOR UPDATE"


@functools.cache
def _driver_sql(dialect: Dialect) -> _DriverSql:
    return _DriverSql(dialect)
