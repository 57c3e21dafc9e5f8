"""A bulk write as every database engine takes it (``Database.write_bulk``): the leads to find
by key, the values to give them, who writes and when, and what else the write's transaction
must hold (the answer stored with an Idempotency-Key). The engines differ in how they do it;
what a write means is said here once: which leads change, which values they may take, what the
history records. No SQLAlchemy: SQLite's writer process runs it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadstore.leads.outcomes import Answer, Failure, LeadResult, ReasonCode, duplicate_message

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class KeyTaken(Exception):
    """A concurrent call with the same Idempotency-Key committed first: nothing was written."""


@dataclass(frozen=True, slots=True)
class Column:
    """A field as the lead table holds it. Names come from the field registry."""

    name: str  # the column
    field: str  # the schema name, as the history records it
    display_name: str  # as a duplicate's Reason names it
    kind: str = "text"  # "text", "number" (a float), "integer" or "datetime" (server-set, never written)
    unique: bool = False
    owner: bool = False  # OwnerId: must name a user


@dataclass(slots=True)
class NewLead:
    """A lead to create when none is found by the key: its server-set columns (ProspectId,
    CreatedOn ...) and its fields, by position in ``BulkWrite.columns``."""

    columns: dict[str, Any]
    values: dict[int, Any]


@dataclass(slots=True)
class LeadWrite:
    """One lead to write: found by ``key``; ``values`` by position in ``BulkWrite.columns``; with
    ``create``, created when none is found."""

    index: int
    key: Any
    values: dict[int, Any]
    create: NewLead | None = None
    # Preconditions: the values (stored form) the lead's fields must hold now to be written.
    expect: dict[int, Any] | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    user_id: str
    key: str
    body_hash: str
    created_at: datetime
    expired_before: datetime  # a record of the key older than this is replaced


@dataclass(slots=True)
class BulkWrite:
    table: str
    key: Column
    columns: Sequence[Column]
    leads: Sequence[LeadWrite]  # in request order, each lead once
    owners: Sequence[str] | None  # the caller's scope: owner ids, or None for every lead
    user_id: str
    request_id: str
    now: datetime
    dry_run: bool = False
    # With an Idempotency-Key: the record, and the answer to store with it.
    idempotency: IdempotencyRecord | None = None
    answer: Answer | None = None

    @property
    def needs_checks(self) -> bool:
        """Whether a value this write gives must be checked against other leads or users first
        (a lead it may create is checked too), or its preconditions read."""
        columns = any(c.unique or c.owner for c in self.columns)
        return columns or any(lead.create is not None or lead.expect is not None for lead in self.leads)

    @property
    def modified_on(self) -> datetime:
        return self.now.replace(microsecond=0)  # ModifiedOn reads back to the second

    def stored_answer(self, results: Mapping[int, LeadResult]) -> str:
        assert self.answer is not None
        return self.answer.render_json(results).decode()


@dataclass(slots=True)
class Found:
    """A lead as the engine found it: its id, its newest change, its values in ``columns``' order."""

    lead_id: int
    head: int | None
    values: Sequence[Any]
    prospect_id: str | None = None


@dataclass(slots=True)
class Update:
    """A lead to write: the changed values by column position, and what they were."""

    index: int
    lead_id: int
    head: int | None
    new: dict[int, Any]
    old: dict[int, Any]


def given(write: BulkWrite, position: int) -> list[Any]:
    """The values ``write`` gives the column at ``position`` (for leads it updates or creates),
    none of them null, each once."""
    values = set()
    for lead in write.leads:
        for source in (lead.values, lead.create.values if lead.create is not None else {}):
            if source.get(position) is not None:
                values.add(source[position])
    return sorted(values, key=str)


def with_new_leads(write: BulkWrite, found: Mapping[Any, Found]) -> dict[Any, Found]:
    """``found``, and the leads to create where none was found, each under a stand-in id (below
    zero) until it is inserted, holding no values yet."""
    blank = [None] * len(write.columns)
    new = {
        lead.key: Found(-1 - lead.index, None, blank)
        for lead in write.leads
        if lead.create is not None and lead.key not in found
    }
    return {**found, **new}


def decide(
    write: BulkWrite,
    found: Mapping[Any, Found],
    holders: Mapping[tuple[int, Any], int] | None = None,
    users: Iterable[str] | None = None,
) -> tuple[dict[int, LeadResult], list[Update]]:
    """Each lead's result and the updates to make, given the leads found by key and, when the
    write ``needs_checks``, who holds the unique values it gives (``holders``: column position
    and value to lead id) and which of its owner ids are users.

    Leads claim unique values in request order, so the later of two leads asking for one value
    fails as a duplicate, as would two calls made one after the other; a lead that gives a value
    up frees it for a later lead."""
    results: dict[int, LeadResult] = {}
    updates: list[Update] = []
    claims = dict(holders or {})
    known = set(users or ())
    unique = [i for i, c in enumerate(write.columns) if c.unique]
    owner = next((i for i, c in enumerate(write.columns) if c.owner), None)
    for lead in write.leads:
        row = found.get(lead.key)
        if row is None:
            continue
        created = row.lead_id < 0 and lead.create is not None
        values = lead.create.values if created and lead.create is not None else lead.values
        new = {i: v for i, v in values.items() if row.values[i] != v}
        failure = _unmet(write, lead, row)
        if failure is None and owner is not None and new.get(owner) is not None and new[owner] not in known:
            failure = (ReasonCode.INVALID_VALUE, f"OwnerId {new[owner]} is not a user")
        elif failure is None:
            for i in unique:
                value = new.get(i)
                if value is not None and claims.get((i, value), row.lead_id) != row.lead_id:
                    failure = (ReasonCode.DUPLICATE_VALUE, duplicate_message(write.columns[i].display_name))
                    break
        if failure is not None:
            results[lead.index] = LeadResult(True, failure=failure)
            continue
        for i in unique:
            if i in new:
                if claims.get((i, row.values[i])) == row.lead_id:
                    del claims[(i, row.values[i])]
                if new[i] is not None:
                    claims[(i, new[i])] = row.lead_id
        changed = [write.columns[i].field for i in new]
        results[lead.index] = LeadResult(True, changed, created=created, prospect_id=row.prospect_id)
        if new:
            updates.append(Update(lead.index, row.lead_id, row.head, new, {i: row.values[i] for i in new}))
    return results, updates


def _unmet(write: BulkWrite, lead: LeadWrite, row: Found) -> Failure | None:
    """The lead's first precondition its stored values do not meet, if any."""
    for i, value in (lead.expect or {}).items():
        column, now = write.columns[i], _comparable(write.columns[i], row.values[i])
        if now != _comparable(column, value):
            shown = "empty" if now is None else repr(_cut(now))
            return (ReasonCode.PRECONDITION_FAILED, f"{column.field} is {shown} now, not the value in Expect")
    return None


def _comparable(column: Column, value: Any) -> str | None:
    text = wire(value)
    # A stored date-time may carry fractions of a second (SQLite's text); reads show seconds.
    return text[:19] if column.kind == "datetime" and text is not None else text


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def wire(value: Any) -> str | None:
    """A stored value as reads and the history spell it: a string, or null."""
    if type(value) is str or value is None:
        return value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.strftime(DATETIME_FORMAT)
    return str(value)
