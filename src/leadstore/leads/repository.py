"""SQL for leads and their change history. Column names come only from the field registry."""

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Dialect, RowMapping, Table, false, insert, literal, select, update
from sqlalchemy.sql.elements import ColumnElement

from leadstore.auth.principal import Principal
from leadstore.fields.model import DataType, Field
from leadstore.fields.validation import to_wire
from leadstore.keyed_write import KeyedWrite
from leadstore.models import Lead, LeadChange


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


@dataclass(slots=True)  # not frozen: one per lead on the hot path, and a frozen __init__ is slow
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
    """Write the changes and one history row per changed field, set-based: one UPDATE per set
    of changed columns and one INSERT for all history rows, whatever the number of leads.

    This is the hot path of the bulk update, so the statements go to the driver as SQL text,
    skipping SQLAlchemy's per-row parameter processing (a fifth of a call's CPU). SQLite takes
    them as executemany (a C loop); PostgreSQL gets them all as one statement over arrays, which
    saves psycopg's per-row pipeline work, the server a parse per row and round trips. Column
    names come from the field registry, quoted by the dialect.

    Each lead is in ``updates`` at most once: its new changes chain on from its newest."""
    if not updates:
        return
    # Grouped by the fields in the order given: leads of one call almost always name their
    # fields in the same order, and another order only costs another statement.
    by_fields: dict[tuple[Field, ...], list[LeadUpdate]] = {}
    for item in updates:
        by_fields.setdefault(tuple(item.new), []).append(item)
    # Each lead's history goes on from its newest change, read under the row's lock.
    history = [
        (item.lead_id, item.old.get("last_change_id"), f.schema_name, to_wire(f, item.old.get(f.column)), to_wire(f, v))
        for item in updates
        for f, v in item.new.items()
    ]
    sql = _driver_sql(conn.dialect)
    write = _write_arrays if conn.dialect.name == "postgresql" else _write_rows
    write(conn, sql, table.name, by_fields, history, _Stamp.of(sql, request_id, user_id, now))


def _reserve_change_ids(conn: Connection, count: int) -> list[int]:
    """Ids for ``count`` new history rows, known before they are written so that the chain can
    point at them. SQLite: past the largest id (the write lock keeps anyone else from taking
    them); PostgreSQL: from the id's sequence (the bulk write takes them in its statement)."""
    if conn.dialect.name == "postgresql":
        reserved = conn.exec_driver_sql(f"SELECT {_NEXT_CHANGE_ID} FROM generate_series(1, %s)", (count,))
        return [int(row[0]) for row in reserved.cursor.fetchall()]
    largest = conn.exec_driver_sql("SELECT max(id) FROM lead_changes").scalar() or 0
    return list(range(largest + 1, largest + 1 + count))


# The history id's sequence, looked up once per statement (a subquery PostgreSQL runs once)
# rather than once per row, which cost a quarter of the bulk write's time.
_NEXT_CHANGE_ID = "nextval((SELECT pg_get_serial_sequence('lead_changes', 'id')::regclass))"


@dataclass(frozen=True, slots=True)
class _Stamp:
    """Who wrote a call's changes, and when, as the driver takes them."""

    request_id: str
    user_id: str
    changed_at: Any
    modified_on: Any

    @classmethod
    def of(cls, sql: "_DriverSql", request_id: str, user_id: str, now: datetime) -> "_Stamp":
        # ModifiedOn reads back to the second (so a lookup by the value read matches); the
        # history keeps microseconds.
        return cls(request_id, user_id, sql.datetime(now), sql.datetime(now.replace(microsecond=0)))


# In the order of ``apply_updates``'s history rows, then the call's stamp.
_HISTORY_COLUMNS = "id, previous_id, lead_id, field, old_value, new_value, request_id, changed_by, changed_at"


def _write_rows(
    conn: Connection,
    sql: "_DriverSql",
    table: str,
    by_fields: dict[tuple[Field, ...], list[LeadUpdate]],
    history: list[tuple[Any, ...]],
    stamp: _Stamp,
) -> None:
    ids = iter(_reserve_change_ids(conn, len(history)))
    rows: list[tuple[Any, ...]] = []
    newest: dict[int, int] = {}
    call = (stamp.request_id, stamp.user_id, stamp.changed_at)
    for lead, head, *change in history:
        change_id = next(ids)
        rows.append((change_id, newest.get(lead, head), lead, *change, *call))
        newest[lead] = change_id
    for fields, items in by_fields.items():
        columns = [*(f.column for f in fields), "modified_on", "modified_by", "last_change_id"]
        assignments = ", ".join(f"{sql.quote(c)} = {sql.mark}" for c in columns)
        updates = [
            (*(item.new[f] for f in fields), stamp.modified_on, stamp.user_id, newest[item.lead_id], item.lead_id)
            for item in items
        ]
        conn.exec_driver_sql(f"UPDATE {sql.quote(table)} SET {assignments} WHERE auto_id = {sql.mark}", updates)
    conn.exec_driver_sql(f"INSERT INTO lead_changes ({_HISTORY_COLUMNS}) VALUES ({', '.join([sql.mark] * 9)})", rows)


def _write_arrays(
    conn: Connection,
    sql: "_DriverSql",
    table: str,
    by_fields: dict[tuple[Field, ...], list[LeadUpdate]],
    history: list[tuple[Any, ...]],
    stamp: _Stamp,
) -> None:
    # One statement: the history rows take their ids from the sequence and chain on from each
    # lead's newest change (h, c); each UPDATE is a data-modifying WITH query (PostgreSQL runs
    # each exactly once) that points the lead at its new newest change; the history INSERT is
    # the main query. One round trip and one plan for the whole write. The arrays go in binary
    # (%b): psycopg writes a text array element by element in Python, escaping each.
    leads, heads, fields_, olds, news = (list(column) for column in zip(*history, strict=True))
    params: list[Any] = [leads, heads, fields_, olds, news]
    chain = (
        f"h AS (SELECT {_NEXT_CHANGE_ID} AS id, h.* "
        "FROM unnest(%b::integer[], %b::bigint[], %b::text[], %b::text[], %b::text[]) "
        f"WITH ORDINALITY AS h(l, head, f, o, n, ord)), {_chain('ord')}"
    )
    updates: list[str] = []
    for n, (fields, items) in enumerate(by_fields.items()):
        assignments = ", ".join(f"{sql.quote(f.column)} = v.v{i}" for i, f in enumerate(fields))
        arrays = ", ".join(f"%b::{_PG_ARRAY[f.data_type == DataType.NUMBER]}" for f in fields)
        names = ", ".join(f"v{i}" for i in range(len(fields)))
        updates.append(
            f"u{n} AS (UPDATE {sql.quote(table)} SET {assignments}, modified_on = %s, modified_by = %s, "
            f"last_change_id = c.id FROM unnest(%b::integer[], {arrays}) AS v(lead_id, {names}) "
            "JOIN c ON c.l = v.lead_id AND c.newest WHERE auto_id = v.lead_id)"
        )
        params += [stamp.modified_on, stamp.user_id, [item.lead_id for item in items]]
        params += [[item.new[f] for item in items] for f in fields]
    params += [stamp.request_id, stamp.user_id, stamp.changed_at]
    conn.exec_driver_sql(f"WITH {chain}, {', '.join(updates)} {_INSERT_CHAIN}", tuple(params))


_PG_ARRAY = {False: "text[]", True: "float8[]"}


def _chain(order: str) -> str:
    """The CTE ``c``: the history rows of ``h`` (lead ``l``, its newest stored change ``head``),
    each pointing at the change before it of the same lead, in ``order``, the first at ``head``;
    the last of each lead is marked ``newest``."""
    return (
        "c AS (SELECT id, l, f, o, n, CASE WHEN lag(l) OVER w = l THEN lag(id) OVER w ELSE head END AS previous_id, "
        f"lead(l) OVER w IS DISTINCT FROM l AS newest FROM h WINDOW w AS (ORDER BY {order}))"
    )


# The history rows of ``c``, then the call's stamp: request id, user, time.
_INSERT_CHAIN = f"INSERT INTO lead_changes ({_HISTORY_COLUMNS}) SELECT id, previous_id, l, f, o, n, %s, %s, %s FROM c"


@dataclass(frozen=True, slots=True)
class EverydayWrite:
    """The write of an everyday bulk call (``BulkUpdate._everyday``): leads that all write the
    same text fields, none unique. Each of ``leads`` is (key value, new values in ``fields``'
    order); ``owners`` is the caller's scope (None: any lead)."""

    table: Table
    key: Field
    fields: Sequence[Field]
    leads: Sequence[tuple[Any, Sequence[Any]]]
    owners: frozenset[str] | None
    user_id: str
    request_id: str
    now: datetime


def update_in_one_statement(conn: Connection, write: EverydayWrite) -> dict[Any, int]:
    """PostgreSQL: the whole everyday write as one statement; returns the leads found (within
    the caller's scope), their ids by key value.

    The statement locks the leads in id order (m), keeps the fields whose values differ (h) and
    chains them on from each lead's newest change (c), then updates the leads that change (u)
    and writes their history (i); leads that change nothing are found but not written. Made in
    autocommit mode it is its own transaction: one round trip, where the general path takes four
    (BEGIN, lookup, write, COMMIT). Old values are the stored text as it is, which is what
    ``to_wire`` makes of a text value, hence text fields only."""
    table, key, fields, leads, owners = write.table, write.key, write.fields, write.leads, write.owners
    sql = _driver_sql(conn.dialect)
    q = sql.quote
    n = range(len(fields))
    scope = " AND owner_id = ANY(%b::text[])" if owners is not None else ""
    olds = ", ".join(f"{q(f.column)} AS o{i}" for i, f in enumerate(fields))
    pairs = ", ".join(f"({i}, %s::text, m.o{i}, v.n{i})" for i in n)
    sets = ", ".join(f"{q(f.column)} = v.n{i}" for i, f in enumerate(fields))
    statement = (
        f"WITH v AS (SELECT * FROM unnest(%b::text[], {', '.join(['%b::text[]'] * len(fields))}) "
        f"WITH ORDINALITY AS v(k, {', '.join(f'n{i}' for i in n)}, ord)), "
        f"m AS (SELECT auto_id, {q(key.column)} AS k, last_change_id AS head, {olds} FROM {q(table.name)} "
        f"WHERE {q(key.column)} = ANY(%b::text[]){scope} ORDER BY auto_id FOR UPDATE), "
        f"h AS (SELECT {_NEXT_CHANGE_ID} AS id, x.* FROM (SELECT m.auto_id AS l, m.head, f.name AS f, f.o, f.n, "
        f"v.ord, f.pos FROM m JOIN v ON v.k = m.k CROSS JOIN LATERAL (VALUES {pairs}) AS f(pos, name, o, n) "
        f"WHERE f.o IS DISTINCT FROM f.n) x), {_chain('ord, pos')}, "
        f"u AS (UPDATE {q(table.name)} SET {sets}, modified_on = %s, modified_by = %s, last_change_id = c.id "
        f"FROM c JOIN m ON m.auto_id = c.l JOIN v ON v.k = m.k WHERE c.newest AND {q(table.name)}.auto_id = c.l), "
        f"i AS ({_INSERT_CHAIN}) SELECT k, auto_id FROM m"
    )
    keys = [k for k, _ in leads]
    params: list[Any] = [keys, *([values[i] for _, values in leads] for i in n), keys]
    if owners is not None:
        params.append(sorted(owners))
    params += [f.schema_name for f in fields]
    stamp = _Stamp.of(sql, write.request_id, write.user_id, write.now)
    params += [stamp.modified_on, stamp.user_id, stamp.request_id, stamp.user_id, stamp.changed_at]
    result = conn.exec_driver_sql(statement, tuple(params))
    found = dict(result.cursor.fetchall())
    result.close()
    return found


def keyed_write(dialect: Dialect, write: EverydayWrite) -> KeyedWrite:
    """SQLite: ``write`` as a job for the writer process (``leadstore.keyed_write``), which does
    what ``update_in_one_statement`` does."""
    stamp = _Stamp.of(_driver_sql(dialect), write.request_id, write.user_id, write.now)
    return KeyedWrite(
        table=write.table.name,
        key_column=write.key.column,
        columns=tuple(f.column for f in write.fields),
        field_names=tuple(f.schema_name for f in write.fields),
        leads=[(k, list(values)) for k, values in write.leads],
        owners=None if write.owners is None else sorted(write.owners),
        user_id=write.user_id,
        request_id=write.request_id,
        changed_at=stamp.changed_at,
        modified_on=stamp.modified_on,
    )


class _DriverSql:
    """The dialect's spelling of what raw statements need: a parameter mark, a quoted column
    name, a row lock, a datetime parameter."""

    def __init__(self, dialect: Dialect) -> None:
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.quote = dialect.identifier_preparer.quote
        # SQLite has no row locks (and needs none: it has one writer).
        self.for_update = "" if dialect.name == "sqlite" else " FOR UPDATE"
        self._datetime = DateTime().dialect_impl(dialect).bind_processor(dialect)

    def datetime(self, moment: datetime) -> Any:
        return moment if self._datetime is None else self._datetime(moment)


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


@functools.cache
def _driver_sql(dialect: Dialect) -> _DriverSql:
    return _DriverSql(dialect)
