"""SQL for leads and their change history. Column names come only from the field registry."""

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, RowMapping, Select, Table, delete, false, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from leadstore.auth.principal import Principal
from leadstore.fields.model import Field
from leadstore.fields.registry import FieldRegistry
from leadstore.models import IdempotentResponse, LeadCall, LeadChange


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
    columns: Iterable[str] | None = None,
) -> list[Mapping[str, Any]]:
    """The leads whose ``column`` holds one of ``values``, within the caller's scope, as the
    driver returns them (on SQLite, date-times are the stored text): every column, or only
    ``columns`` (and auto_id)."""
    values = sorted(set(values), key=str)
    owners = principal.lead_owners
    if not values or (owners is not None and not owners):
        return []
    # Driver SQL: wrapping rows and parameters in SQLAlchemy's cost as much again as the lookup.
    sql = _driver_sql(conn.dialect)
    names = [c.name for c in table.columns] if columns is None else sorted({"auto_id", *columns})
    where = f"{sql.quote(column)} IN ({', '.join([sql.mark] * len(values))})"
    params: list[Any] = list(values)
    if owners is not None:
        where += f" AND owner_id IN ({', '.join([sql.mark] * len(owners))})"
        params.extend(sorted(owners))
    statement = (
        f"SELECT {', '.join(sql.quote(n) for n in names)} FROM {sql.quote(table.name)} WHERE {where} ORDER BY auto_id"
    )
    result = conn.exec_driver_sql(statement, tuple(params))
    rows = result.cursor.fetchall()  # the driver's tuples: wrapping them in SQLAlchemy rows cost as much again
    result.close()
    return [dict(zip(names, row, strict=True)) for row in rows]


# Leads.Get's operators. LIKE is case-insensitive on both databases (SQLite's LIKE is,
# PostgreSQL's is not); % and _ are the caller's wildcards, a backslash is literal on both
# (PostgreSQL would read it as an escape).
OPERATORS: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
    "=": lambda c, v: c == v,
    "<>": lambda c, v: c != v,
    ">": lambda c, v: c > v,
    "<": lambda c, v: c < v,
    ">=": lambda c, v: c >= v,
    "<=": lambda c, v: c <= v,
    "LIKE": lambda c, v: c.ilike((v if "%" in v else f"%{v}%").replace("\\", "\\\\"), escape="\\"),
}


def _scoped(registry: FieldRegistry, principal: Principal) -> Select[Any]:
    query = select(registry.table)
    scope = scope_filter(registry.table, principal)
    return query if scope is None else query.where(scope)


def by_unique_values(
    conn: Connection, registry: FieldRegistry, principal: Principal, wanted: Sequence[tuple[Field, Any]], limit: int
) -> list[RowMapping]:
    """The leads in reach whose unique field holds the value, for any of ``wanted``, by id.

    One query per field: each is a lookup in that field's unique index, where ``a = ? OR b = ?``
    beside a scope filter may lead SQLite to walk the owner index instead."""
    found: dict[int, RowMapping] = {}
    for field_, value in wanted:
        query = _scoped(registry, principal).where(registry.column(field_) == value).limit(limit)
        found.update((row["auto_id"], row) for row in conn.execute(query).mappings())
    return [found[auto_id] for auto_id in sorted(found)][:limit]


def by_prefix(
    conn: Connection, registry: FieldRegistry, principal: Principal, prefixes: Sequence[tuple[Field, str]], limit: int
) -> list[RowMapping]:
    """The first ``limit`` leads in reach in which any of ``prefixes`` (field, text) starts its
    field, in any letter case."""
    conditions = []
    for field_, prefix in prefixes:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(registry.column(field_).ilike(pattern, escape="\\"))
    query = _scoped(registry, principal).where(or_(*conditions)).order_by(registry.table.c.auto_id).limit(limit)
    return list(conn.execute(query).mappings())


@dataclass(frozen=True)
class Page:
    offset: int
    size: int
    sort: Field | None = None
    descending: bool = False


def matching(
    conn: Connection,
    registry: FieldRegistry,
    principal: Principal,
    field_: Field,
    operator: str,
    value: Any,
    page: Page,
) -> list[RowMapping]:
    """One page of the leads in reach whose ``field_`` compares with ``value`` by ``operator``."""
    query = _scoped(registry, principal).where(OPERATORS[operator](registry.column(field_), value))
    if page.sort is not None:
        sort = registry.column(page.sort)
        query = query.order_by(sort.desc() if page.descending else sort.asc())
    query = query.order_by(registry.table.c.auto_id).offset(page.offset).limit(page.size)
    return list(conn.execute(query).mappings())


def call_to_revert(conn: Connection, request_id: str, user_id: str | None) -> RowMapping | None:
    """The newest call with ``request_id`` that changed leads, made by ``user_id`` (None: anyone)."""
    query = select(LeadCall).where(LeadCall.request_id == request_id)
    if user_id is not None:
        query = query.where(LeadCall.user_id == user_id)
    return conn.execute(query.order_by(LeadCall.id.desc()).limit(1)).mappings().first()


def call_changes(conn: Connection, call: Mapping[Any, Any]) -> list[RowMapping]:
    """The history rows of ``call``, found in its range of change ids."""
    changes = LeadChange.__table__
    query = select(changes.c.lead_id, changes.c.field, changes.c.old_value, changes.c.new_value).where(
        changes.c.id.between(call["first_change_id"], call["last_change_id"]),
        changes.c.request_id == call["request_id"],
    )
    return list(conn.execute(query.order_by(changes.c.id)).mappings())


def leads_by_id(conn: Connection, table: Table, lead_ids: Iterable[int]) -> dict[int, RowMapping]:
    rows = conn.execute(select(table).where(table.c.auto_id.in_(sorted(set(lead_ids))))).mappings()
    return {row["auto_id"]: row for row in rows}


def recent_calls(conn: Connection, since: datetime, user_id: str | None, limit: int) -> list[RowMapping]:
    """Calls that changed leads since ``since``, newest first."""
    query = select(LeadCall.request_id, LeadCall.user_id, LeadCall.at, LeadCall.lead_count).where(LeadCall.at >= since)
    if user_id is not None:
        query = query.where(LeadCall.user_id == user_id)
    return list(conn.execute(query.order_by(LeadCall.id.desc()).limit(limit)).mappings())


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
    name."""

    def __init__(self, dialect: Dialect) -> None:
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.quote = dialect.identifier_preparer.quote


@functools.cache
def _driver_sql(dialect: Dialect) -> _DriverSql:
    return _DriverSql(dialect)
