"""PostgreSQL: a bulk write (``leadstore.leads.plan``) on a connection. Every lead write and every
history row on PostgreSQL is made by ``_statement``'s one statement.

The statement locks the leads found by key in id order (m), keeps each given value that differs
from the stored one (h) and chains those changes on from each lead's newest (c), then updates the
leads that change (u) and writes their history (i); it answers each lead found with the fields
it changed. A call that needs nothing else is that one statement in autocommit mode, its own
transaction: one round trip. A call that writes a unique field or OwnerId first locks its leads
and checks the values against other leads and the users, in the same transaction; a call with an
Idempotency-Key stores its answer in that transaction; a dry run rolls it back.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from leadstore.leads.outcomes import LeadResult
from leadstore.leads.plan import BulkWrite, Column, Found, KeyTaken, LeadWrite, decide, given, with_new_leads

_ARRAY = {"text": "text[]", "number": "float8[]", "integer": "bigint[]", "datetime": "timestamp[]"}

# The history id's sequence, looked up once per statement (a subquery PostgreSQL runs once)
# rather than once per row, which cost a quarter of the write's time.
NEXT_CHANGE_ID = "nextval((SELECT pg_get_serial_sequence('lead_changes', 'id')::regclass))"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write_bulk(conn: Connection, write: BulkWrite) -> dict[int, LeadResult]:
    """Each lead's result, once committed."""
    reachable = write.owners is None or bool(write.owners)
    leads: Sequence[LeadWrite] = write.leads if reachable else []
    if not (write.needs_checks or write.idempotency is not None or write.dry_run):
        if not leads:
            return {}
        return _statement(conn.execution_options(isolation_level="AUTOCOMMIT"), write, leads)
    with conn.begin() as transaction:
        results: dict[int, LeadResult] = {}
        new: list[LeadWrite] = []
        if write.needs_checks and leads:
            results, leads, new = _check(conn, write)
        if new:
            results.update(_create(conn, write, new))
        if leads:
            results.update(_statement(conn, write, leads))
        if write.idempotency is not None:
            _store_answer(conn, write, results)
        if write.dry_run:
            transaction.rollback()
    return results


def _rows(conn: Connection, statement: str, params: Sequence[Any]) -> list[Any]:
    """The driver's rows as tuples: wrapping them in SQLAlchemy rows cost as much again."""
    result = conn.exec_driver_sql(statement, tuple(params))
    rows = list(result.cursor.fetchall()) if result.cursor is not None else []
    result.close()
    return rows


def _check(conn: Connection, write: BulkWrite) -> tuple[dict[int, LeadResult], list[LeadWrite], list[LeadWrite]]:
    """Lock the leads, and fail those whose unique values other leads hold or whose OwnerId is
    no user; the leads left to write, and those to create."""
    keys = sorted({lead.key for lead in write.leads}, key=str)
    names = "".join(f", {quote(c.name)}" for c in write.columns)
    scope = " AND owner_id = ANY(%s)" if write.owners is not None else ""
    params: list[Any] = [keys] if write.owners is None else [keys, list(write.owners)]
    rows = _rows(
        conn,
        f"SELECT {quote(write.key.name)}, auto_id, last_change_id{names} FROM {quote(write.table)} "
        f"WHERE {quote(write.key.name)} = ANY(%s){scope} ORDER BY auto_id FOR UPDATE",
        params,
    )
    found = with_new_leads(write, {row[0]: Found(row[1], row[2], row[3:]) for row in rows})
    holders: dict[tuple[int, Any], int] = {}
    for i, column in enumerate(write.columns):
        values = given(write, i)
        if column.unique and values:
            held = _rows(
                conn,
                f"SELECT {quote(column.name)}, auto_id FROM {quote(write.table)} WHERE {quote(column.name)} = ANY(%s)",
                [values],
            )
            holders.update(((i, value), lead_id) for value, lead_id in held)
    owner = next((i for i, c in enumerate(write.columns) if c.owner), None)
    ids = [] if owner is None else given(write, owner)
    users = [user_id for (user_id,) in _rows(conn, "SELECT id FROM users WHERE id = ANY(%s)", [ids])] if ids else []
    results, _updates = decide(write, found, holders, users)
    failed = {index for index, result in results.items() if result.failure is not None}
    created = {index for index, result in results.items() if result.created and index not in failed}
    return (
        {i: r for i, r in results.items() if i in failed},
        [lead for lead in write.leads if lead.index not in failed and lead.index not in created],
        [lead for lead in write.leads if lead.index in created],
    )


def _create(conn: Connection, write: BulkWrite, leads: Sequence[LeadWrite]) -> dict[int, LeadResult]:
    """Insert the leads with their server-set columns only, then write their fields and history
    as for any lead, found by their new ids."""
    by_id: list[LeadWrite] = []
    for lead in leads:
        assert lead.create is not None
        names = list(lead.create.columns)
        (lead_id,) = _rows(
            conn,
            f"INSERT INTO {quote(write.table)} ({', '.join(map(quote, names))}) "
            f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING auto_id",
            list(lead.create.columns.values()),
        )[0]
        by_id.append(LeadWrite(lead.index, lead_id, lead.create.values))
    id_key = Column("auto_id", "ProspectAutoId", "Prospect Auto Id", kind="integer")
    results = _statement(conn, replace(write, key=id_key, owners=None), by_id, record=False)
    for result in results.values():
        result.created = True
    return results


def _statement(
    conn: Connection, write: BulkWrite, leads: Sequence[LeadWrite], *, record: bool = True
) -> dict[int, LeadResult]:
    """Write ``leads``; with ``record``, the call's record of the leads it changed (``LeadCall``)."""
    key, table, key_column = write.key, quote(write.table), quote(write.key.name)
    # The columns the leads write (a column only expected is read by ``_check``, not here).
    written = [(i, write.columns[i]) for i in sorted({i for lead in leads for i in lead.values})]
    scope = " AND owner_id = ANY(%b::text[])" if write.owners is not None else ""
    keys: list[Any] = [lead.key for lead in leads]
    if not written:  # leads sent with their key alone: found, nothing to change
        lookup = (
            f"SELECT {key_column}, prospect_id FROM {table} WHERE {key_column} = ANY(%b::{_ARRAY[key.kind]}){scope}"
        )
        held = dict(_rows(conn, lookup, [keys] if write.owners is None else [keys, list(write.owners)]))
        return {lead.index: LeadResult(True, prospect_id=held[lead.key]) for lead in leads if lead.key in held}
    # Per column: whether each lead gives it, and the value.
    arrays, names = [f"%b::{_ARRAY[key.kind]}", "%b::integer[]"], ["k", "x"]
    params: list[Any] = [keys, [lead.index for lead in leads]]
    for i, column in written:
        arrays += ["%b::bool[]", f"%b::{_ARRAY[column.kind]}"]
        names += [f"g{i}", f"n{i}"]
        params += [[i in lead.values for lead in leads], [lead.values.get(i) for lead in leads]]
    olds = ", ".join(f"{quote(c.name)} AS o{i}" for i, c in written)
    pairs = ", ".join(
        f"({i}, %s::text, {_as_text(c, f'm.o{i}')}, {_as_text(c, f'v.n{i}')}, "
        f"v.g{i} AND m.o{i} IS DISTINCT FROM v.n{i})"
        for i, c in written
    )
    sets = ", ".join(
        f"{quote(c.name)} = CASE WHEN v.g{i} THEN v.n{i} ELSE {table}.{quote(c.name)} END" for i, c in written
    )
    statement = (
        f"WITH v AS (SELECT * FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS v({', '.join(names)}, ord)), "
        f"m AS (SELECT auto_id, {key_column} AS k, prospect_id AS p, last_change_id AS head, {olds} FROM {table} "
        f"WHERE {key_column} = ANY(%b::{_ARRAY[key.kind]}){scope} ORDER BY auto_id FOR UPDATE), "
        f"h AS (SELECT {NEXT_CHANGE_ID} AS id, x.* FROM (SELECT m.auto_id AS l, m.head, f.name AS f, f.o, f.n, "
        f"v.ord, f.pos FROM m JOIN v ON v.k = m.k CROSS JOIN LATERAL (VALUES {pairs}) AS f(pos, name, o, n, d) "
        f"WHERE f.d) x), {CHAIN}, "
        f"u AS (UPDATE {table} SET {sets}, modified_on = %s, modified_by = %s, last_change_id = c.id "
        f"FROM c JOIN m ON m.auto_id = c.l JOIN v ON v.k = m.k WHERE c.newest AND {table}.auto_id = c.l), "
        f"i AS ({INSERT_CHAIN}){_RECORD if record else ''} "
        "SELECT m.k, coalesce((SELECT array_agg(h.f ORDER BY h.pos) FROM h WHERE h.l = m.auto_id), '{}'), m.p FROM m"
    )
    params.append(keys)
    if write.owners is not None:
        params.append(list(write.owners))
    params += [c.field for _, c in written]
    params += [write.modified_on, write.user_id, write.request_id, write.user_id, write.now]
    if record:
        params += [write.request_id, write.user_id, write.now]
    found = {k: (fields, prospect_id) for k, fields, prospect_id in _rows(conn, statement, params)}
    return {
        lead.index: LeadResult(True, list(found[lead.key][0]), prospect_id=found[lead.key][1])
        for lead in leads
        if lead.key in found
    }


# The call's record (``LeadCall``) of the leads it changed, each with its position in the call.
_RECORD = (
    ", r AS (INSERT INTO lead_calls (request_id, user_id, at, lead_count, leads, first_change_id, last_change_id) "
    "SELECT %s, %s, %s, count(*), json_agg(json_build_array(c.l, v.x) ORDER BY v.x)::text, "
    "(SELECT min(id) FROM c), (SELECT max(id) FROM c) "
    "FROM c JOIN m ON m.auto_id = c.l JOIN v ON v.k = m.k WHERE c.newest HAVING count(*) > 0)"
)


def _as_text(column: Column, value: str) -> str:
    """A stored value as the history spells it (``plan.wire``): a whole number without a point."""
    if column.kind == "text":
        return value
    return f"CASE WHEN {value} = trunc({value}) THEN trunc({value})::bigint::text ELSE {value}::text END"


def chain(order: str) -> str:
    """The CTE ``c``: the history rows of ``h`` (lead ``l``, its newest stored change ``head``),
    each pointing at the change before it of the same lead, in ``order``, the first at ``head``;
    the last of each lead is marked ``newest``."""
    return (
        "c AS (SELECT id, l, f, o, n, CASE WHEN lag(l) OVER w = l THEN lag(id) OVER w ELSE head END AS previous_id, "
        f"lead(l) OVER w IS DISTINCT FROM l AS newest FROM h WINDOW w AS (ORDER BY {order}))"
    )


CHAIN = chain("ord, pos")
HISTORY_COLUMNS = "id, previous_id, lead_id, field, old_value, new_value, request_id, changed_by, changed_at"
# The history rows of ``c``, then the call's stamp: request id, user, time.
INSERT_CHAIN = f"INSERT INTO lead_changes ({HISTORY_COLUMNS}) SELECT id, previous_id, l, f, o, n, %s, %s, %s FROM c"


def _store_answer(conn: Connection, write: BulkWrite, results: dict[int, LeadResult]) -> None:
    """Store the answer with its key, in place of an expired record of that key; ``KeyTaken``
    when a live record holds it. A concurrent call's record not yet committed makes the insert
    wait for that call's end, then see its record."""
    record = write.idempotency
    assert record is not None
    stored = _rows(
        conn,
        "INSERT INTO idempotent_responses (user_id, key, body_hash, response, created_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, key) DO UPDATE SET body_hash = excluded.body_hash, "
        "response = excluded.response, created_at = excluded.created_at "
        "WHERE idempotent_responses.created_at < %s RETURNING 1",
        [
            record.user_id,
            record.key,
            record.body_hash,
            write.stored_answer(results),
            record.created_at,
            record.expired_before,
        ],
    )
    if not stored:
        raise KeyTaken
