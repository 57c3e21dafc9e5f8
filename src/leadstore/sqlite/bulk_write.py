"""SQLite: a bulk write (``leadstore.leads.plan``) on a ``sqlite3`` connection, inside the
caller's transaction, which holds SQLite's one write lock: one lookup of the leads by key, one
query per unique field written and one of the owners named (only when the call writes them),
one UPDATE per set of changed columns, one INSERT of history rows, and the answer stored with
its Idempotency-Key. Every lead write and every history row on SQLite is made here.

Standard library only (and the plan), so that the writer process starts at once.
"""

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from leadstore.leads.outcomes import LeadResult
from leadstore.leads.plan import BulkWrite, Found, KeyTaken, Update, decide, given, wire, with_new_leads

# As SQLAlchemy stores a DateTime on SQLite, so that both read it back alike.
_STORED_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stored_datetime(moment: datetime) -> str:
    return moment.strftime(_STORED_DATETIME)


def write_bulk(conn: sqlite3.Connection, write: BulkWrite) -> dict[int, LeadResult]:
    """Each lead's result; nothing of a lead that fails is written."""
    found = with_new_leads(write, _find(conn, write))
    holders = _holders(conn, write) if found and write.needs_checks else None
    users = _users(conn, write) if found and write.needs_checks else None
    results, updates = decide(write, found, holders, users)
    new_ids = _insert_new(conn, write, results)
    for update in updates:
        update.lead_id = new_ids.get(update.lead_id, update.lead_id)
    if updates:
        _apply(conn, write, updates, [u for u in updates if not results[u.index].created])
    if write.idempotency is not None:
        _store_answer(conn, write, results)
    return results


def _find(conn: sqlite3.Connection, write: BulkWrite) -> dict[Any, Found]:
    keys = sorted({lead.key for lead in write.leads}, key=str)
    if not keys or (write.owners is not None and not write.owners):
        return {}
    names = [write.key.name, "auto_id", "last_change_id", "prospect_id", *(c.name for c in write.columns)]
    where = f"{quote(write.key.name)} IN ({', '.join('?' * len(keys))})"
    params: list[Any] = list(keys)
    if write.owners is not None:
        where += f" AND owner_id IN ({', '.join('?' * len(write.owners))})"
        params.extend(write.owners)
    rows = conn.execute(
        f"SELECT {', '.join(map(quote, names))} FROM {quote(write.table)} WHERE {where} ORDER BY auto_id", params
    )
    return {row[0]: Found(row[1], row[2], row[4:], row[3]) for row in rows}


def _insert_new(conn: sqlite3.Connection, write: BulkWrite, results: dict[int, LeadResult]) -> dict[int, int]:
    """Insert the leads to create, with their server-set columns only (``_apply`` writes their
    fields and history as for any lead); their ids by stand-in id."""
    ids: dict[int, int] = {}
    for lead in write.leads:
        result = results.get(lead.index)
        if lead.create is None or result is None or not result.created or result.failure is not None:
            continue
        names = list(lead.create.columns)
        values = [_stored(v) for v in lead.create.columns.values()]
        cursor = conn.execute(
            f"INSERT INTO {quote(write.table)} ({', '.join(map(quote, names))}) VALUES ({', '.join('?' * len(names))})",
            values,
        )
        assert cursor.lastrowid is not None
        ids[-1 - lead.index] = cursor.lastrowid
    return ids


def _stored(value: Any) -> Any:
    return stored_datetime(value) if isinstance(value, datetime) else value


def _holders(conn: sqlite3.Connection, write: BulkWrite) -> dict[tuple[int, Any], int]:
    holders: dict[tuple[int, Any], int] = {}
    for i, column in enumerate(write.columns):
        if not column.unique:
            continue
        values = given(write, i)
        if values:
            rows = conn.execute(
                f"SELECT {quote(column.name)}, auto_id FROM {quote(write.table)} "
                f"WHERE {quote(column.name)} IN ({', '.join('?' * len(values))})",
                values,
            )
            holders.update(((i, value), lead_id) for value, lead_id in rows)
    return holders


def _users(conn: sqlite3.Connection, write: BulkWrite) -> set[str]:
    owner = next((i for i, c in enumerate(write.columns) if c.owner), None)
    ids = [] if owner is None else given(write, owner)
    if not ids:
        return set()
    rows = conn.execute(f"SELECT id FROM users WHERE id IN ({', '.join('?' * len(ids))})", ids)
    return {user_id for (user_id,) in rows}


def _apply(conn: sqlite3.Connection, write: BulkWrite, updates: Sequence[Update], changed: Sequence[Update]) -> None:
    """Write ``updates``, their history, and the call's record of the existing leads it ``changed``."""
    # Ids past the largest: the caller's transaction holds SQLite's write lock.
    first_id = (conn.execute("SELECT max(id) FROM lead_changes").fetchone()[0] or 0) + 1
    stamp = (write.request_id, write.user_id, stored_datetime(write.now))
    history, newest = _history(write, updates, first_id)
    insert_history(conn, [(*row, *stamp) for row in history])
    if changed:
        conn.execute(
            "INSERT INTO lead_calls (request_id, user_id, at, lead_count, leads, first_change_id, last_change_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                *stamp,
                len(changed),
                json.dumps([[u.lead_id, u.index] for u in changed]),
                first_id,
                first_id + len(history) - 1,
            ),
        )
    modified_on = stored_datetime(write.modified_on)
    # One UPDATE per set of changed columns: leads of a call mostly change the same ones.
    by_columns: dict[tuple[int, ...], list[Update]] = {}
    for update in updates:
        by_columns.setdefault(tuple(update.new), []).append(update)
    for positions, group in by_columns.items():
        names = [*(write.columns[i].name for i in positions), "modified_on", "modified_by", "last_change_id"]
        assignments = ", ".join(f"{quote(name)} = ?" for name in names)
        conn.executemany(
            f"UPDATE {quote(write.table)} SET {assignments} WHERE auto_id = ?",
            [(*(u.new[i] for i in positions), modified_on, write.user_id, newest[u.lead_id], u.lead_id) for u in group],
        )


def _history(
    write: BulkWrite, updates: Sequence[Update], first_id: int
) -> tuple[list[tuple[Any, ...]], dict[int, int]]:
    """One history row per changed field, each pointing at the lead's change before it:
    (id, previous id, lead id, field, old, new); and each lead's newest change."""
    rows: list[tuple[Any, ...]] = []
    newest: dict[int, int] = {}
    next_id = first_id
    for update in updates:
        previous = update.head
        for i, value in update.new.items():
            rows.append((next_id, previous, update.lead_id, write.columns[i].field, wire(update.old[i]), wire(value)))
            previous, next_id = next_id, next_id + 1
        newest[update.lead_id] = next_id - 1
    return rows, newest


def insert_history(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """History rows: (id, previous id, lead id, field, old, new, request id, user, time)."""
    conn.executemany(
        "INSERT INTO lead_changes (id, previous_id, lead_id, field, old_value, new_value, request_id, "
        "changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _store_answer(conn: sqlite3.Connection, write: BulkWrite, results: dict[int, LeadResult]) -> None:
    """Store the answer with its key, in place of an expired record of that key; ``KeyTaken``
    when a live record holds it (a call that committed first)."""
    record = write.idempotency
    assert record is not None
    stored = conn.execute(
        "INSERT INTO idempotent_responses (user_id, key, body_hash, response, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, key) DO UPDATE SET body_hash = excluded.body_hash, response = excluded.response, "
        "created_at = excluded.created_at WHERE idempotent_responses.created_at < ? RETURNING 1",
        (
            record.user_id,
            record.key,
            record.body_hash,
            write.stored_answer(results),
            stored_datetime(record.created_at),
            stored_datetime(record.expired_before),
        ),
    ).fetchone()
    if stored is None:
        raise KeyTaken
