"""Update Leads in Bulk v2 (spec section 4): up to 25 leads a call, each atomic, each with an
outcome.

A call is checked whole in memory first (shape, fields, values), then written in one
transaction with a bounded number of statements whatever the number of leads stored: one
locked lookup of all leads, one query per unique field being changed, one UPDATE per set of
changed columns and one INSERT of history rows. Should a concurrent call take a unique value
between our check and our write, the transaction is redone with a savepoint per lead, so
exactly the lead that lost the race fails, as a duplicate.

The everyday call, whose leads all write the same text fields and no unique one, needs no
check against the database between reading and writing: on PostgreSQL it is one statement,
its own transaction (``repository.update_in_one_statement``); on SQLite a server hands it to
its writer process (``leadstore.sqlite_writer``).
"""

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError, OperationalError

from leadstore.auth.principal import Principal
from leadstore.catalog import CatalogSnapshot
from leadstore.db import Database
from leadstore.errors import InvalidRequest, shown
from leadstore.fields.model import DataType, Field
from leadstore.fields.registry import FieldRegistry
from leadstore.fields.validation import InvalidValue, normalize
from leadstore.leads import repository as repo
from leadstore.leads.changes import (
    NOT_FOUND_REASON,
    FieldPlan,
    FieldRejected,
    Pairs,
    ReasonCode,
    UniqueClaims,
    changed,
    duplicate_message,
    parse_pairs,
    unknown_owners,
)
from leadstore.sqlite_writer import WriterGone

_RETRIES = 3
AnswerHook = Callable[[Connection, dict[str, Any]], None]


@dataclass(frozen=True)
class BulkRequest:
    search_by: str | None
    leads: list[Pairs]
    push_unprocessed: bool = False
    dry_run: bool = False


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more
class _Checked:
    """A lead as far as it can be judged without the database."""

    index: int
    identifier_value: Any
    key: Any = None  # the normalised search-key value; None when the lead cannot be found
    values: Mapping[Field, Any] = field(default_factory=dict)
    failure: tuple[ReasonCode, str] | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    successful: bool
    code: ReasonCode | None = None
    reason: str | None = None


_SUCCESS = _Outcome(True)
_NOT_FOUND = _Outcome(False, ReasonCode.LEAD_NOT_FOUND, NOT_FOUND_REASON)


def parse_request(body: Any, max_leads: int) -> BulkRequest:
    """Check the request's shape; ``InvalidRequest`` names the first offending position."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with a LeadPropertiesList array")
    search_by = body.get("SearchByKey")
    if search_by is not None and not isinstance(search_by, str):
        raise InvalidRequest("SearchByKey must be a string naming a unique lead field, e.g. EmailAddress")
    options = body.get("Options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequest('Options must be an object, e.g. {"PushNonExistentLeadsToUnProcessedList": true}')
    for name in ("PushNonExistentLeadsToUnProcessedList", "DryRun"):
        if options.get(name) is not None and not isinstance(options[name], bool):
            raise InvalidRequest(f"Options.{name} must be true or false")
    items = body.get("LeadPropertiesList")
    if not isinstance(items, list):
        raise InvalidRequest('LeadPropertiesList is missing or not an array; send an array of {"Fields": [...]}')
    if not items:
        raise InvalidRequest(f"LeadPropertiesList is empty; send between 1 and {max_leads} leads")
    if len(items) > max_leads:
        raise InvalidRequest(
            f"LeadPropertiesList holds {len(items)} leads; at most {max_leads} may be sent in one call"
        )
    return BulkRequest(
        search_by=search_by,
        leads=[_parse_lead(item, i) for i, item in enumerate(items)],
        push_unprocessed=bool(options.get("PushNonExistentLeadsToUnProcessedList")),
        dry_run=bool(options.get("DryRun")),
    )


def _parse_lead(item: Any, i: int) -> Pairs:
    where = f"LeadPropertiesList[{i}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object with a Fields array")
    fields = item.get("Fields")
    return [] if fields is None else parse_pairs(fields, f"{where}.Fields")


def search_field(registry: FieldRegistry, name: str | None, principal: Principal) -> Field:
    """The unique field that finds each lead: ``SearchByKey``, else ProspectId (LeadSquared).
    A field hidden from the caller cannot find leads: it is answered as a field that does not exist."""
    field_ = registry.get(name or "ProspectId")
    if field_ is None or not principal.can_read(field_):
        raise InvalidRequest(f"SearchByKey {shown(name)} names no lead field; use a unique field such as EmailAddress")
    if not field_.is_unique:
        unique = ", ".join(f.schema_name for f in registry.unique_fields if principal.can_read(f))
        raise InvalidRequest(f"SearchByKey {field_.schema_name} is not a unique field; use one of: {unique}")
    return field_


class BulkUpdate:
    """One call's work. ``run_async`` returns the LeadSquared-shaped answer; ``on_answer`` runs inside
    the transaction before it commits (the idempotency store uses it)."""

    def __init__(
        self, db: Database, catalog: CatalogSnapshot, principal: Principal, request: BulkRequest, request_id: str
    ) -> None:
        self.db = db
        self.registry = catalog.fields
        self.phone = catalog.account.phone_rules
        self.principal = principal
        self.request = request
        self.request_id = request_id
        self.key_field = search_field(self.registry, request.search_by, principal)
        self._plans: dict[tuple[str, ...], FieldPlan] = {}  # by the attribute names a lead sends

    async def run_async(self, on_answer: AnswerHook | None = None) -> dict[str, Any]:
        """Check the call on the event loop, then write it: the everyday way where ``_everyday``
        allows, else through ``Database.transact_async``."""
        checked = self.check()
        everyday = None if on_answer is not None or self.request.dry_run else self._everyday(checked)
        for attempt in range(_RETRIES + 1):
            try:
                if everyday is not None and attempt == 0:
                    found = await self._write_everyday(*everyday)
                    return self._answer(checked, self._match(checked, found)[0])
                work = self._work(checked, attempt, on_answer)
                return await self.db.transact_async(work, dry_run=self.request.dry_run)
            except (IntegrityError, OperationalError) as exc:
                if attempt == _RETRIES or not _is_retryable(exc):
                    raise
                await asyncio.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    def check(self) -> list[_Checked]:
        """Everything that can be judged without the database."""
        return [self._check(i, pairs) for i, pairs in enumerate(self.request.leads)]

    def _work(self, checked: list[_Checked], attempt: int, on_answer: AnswerHook | None) -> Callable[[Connection], Any]:
        # A retry follows a unique value taken by a concurrent call, or a deadlock between two
        # calls: it writes with a savepoint per lead, so only the lead that lost the race fails.
        def work(conn: Connection) -> dict[str, Any]:
            answer = self._answer(checked, self._write(conn, checked, careful=attempt > 0))
            if on_answer is not None:
                on_answer(conn, answer)
            return answer

        return work

    def _check(self, index: int, pairs: Pairs) -> _Checked:
        if not pairs:
            return _Checked(index, None, failure=(ReasonCode.FIELDS_EMPTY, "Fields cannot be empty"))
        attributes = tuple([attribute for attribute, _ in pairs])
        plan = self._plans.get(attributes)
        if plan is None:
            plan = self._plans[attributes] = FieldPlan(self.registry, self.principal, attributes, self.key_field)
        name = self.key_field.schema_name
        if not plan.key_positions:
            return _Checked(
                index,
                None,
                failure=(ReasonCode.SEARCH_KEY_MISSING, f"Fields has no {name} to find the lead by"),
            )
        identifier = pairs[plan.key_positions[0]][1]
        if len(plan.key_positions) > 1:
            return _Checked(
                index, identifier, failure=(ReasonCode.DUPLICATE_ATTRIBUTE, f"{name} is given more than once")
            )
        try:
            key = normalize(self.key_field, identifier, self.phone)
        except InvalidValue:
            key = None  # no lead can hold an invalid value (the seed's FAQ: a phone without country code)
        try:
            values = plan.values([raw for _, raw in pairs], self.phone)
        except FieldRejected as exc:
            return _Checked(index, identifier, key, failure=(exc.code, exc.message))
        if key is None:
            return _Checked(index, identifier, failure=(ReasonCode.LEAD_NOT_FOUND, NOT_FOUND_REASON))
        return _Checked(index, identifier, key, values)

    def _write(self, conn: Connection, checked: list[_Checked], careful: bool) -> list[_Outcome]:
        table = self.registry.table
        column = self.key_field.column
        findable = [c for c in checked if c.failure is None]
        wanted = {c.key for c in findable}
        # Only the columns this call reads: the key, the fields it writes (old values) and the
        # newest change, which the history it writes goes on from.
        needed = {column, "last_change_id", *(f.column for c in findable for f in c.values)}
        rows = repo.find(conn, table, column, wanted, self.principal, lock=not self.db.is_sqlite, columns=needed)
        outcomes, found = self._match(checked, {row[column]: row for row in rows})
        candidates = [(c.index, row, changed(row, c.values)) for c, row in found]
        updates = self._claim(conn, candidates, outcomes)
        now = datetime.now(UTC).replace(tzinfo=None)
        user = self.principal.user_id
        if not careful:
            repo.apply_updates(conn, table, [u for _, u in updates], user, self.request_id, now)
            return outcomes
        for index, update in updates:
            try:
                with conn.begin_nested():
                    repo.apply_updates(conn, table, [update], user, self.request_id, now)
            except IntegrityError:
                taken = self._taken(conn, update)
                if taken is None:
                    raise
                outcomes[index] = _Outcome(False, ReasonCode.DUPLICATE_VALUE, duplicate_message(taken))
        return outcomes

    def _match(
        self, checked: list[_Checked], rows: Mapping[Any, Any]
    ) -> tuple[list[_Outcome], list[tuple[_Checked, Any]]]:
        """Each lead's outcome as far as finding it decides, given the leads found (``rows``, by
        key value); and the leads to write, each with what ``rows`` holds for it."""
        outcomes: list[_Outcome] = []
        found: list[tuple[_Checked, Any]] = []
        first_index: dict[Any, int] = {}
        for c in checked:
            earlier = first_index.setdefault(c.key, c.index) if c.key is not None else c.index
            if earlier != c.index:
                outcomes.append(
                    _Outcome(
                        False,
                        ReasonCode.DUPLICATE_LEAD_IN_REQUEST,
                        f"The same lead is already at LeadPropertiesList[{earlier}]",
                    )
                )
            elif c.failure is not None:
                outcomes.append(
                    _NOT_FOUND if c.failure[0] == ReasonCode.LEAD_NOT_FOUND else _Outcome(False, *c.failure)
                )
            elif (row := rows.get(c.key)) is None:
                outcomes.append(_NOT_FOUND)
            else:
                outcomes.append(_SUCCESS)
                found.append((c, row))
        return outcomes, found

    def _everyday(self, checked: list[_Checked]) -> tuple[tuple[Field, ...], list[tuple[Any, list[Any]]]] | None:
        """The fields and the leads (key value, new values) of an everyday call, which needs no
        check against the database between reading and writing: leads that all write the same
        text fields, none of them unique nor OwnerId (see ``_claim``), found by a text key. It is
        written as one statement on PostgreSQL, by the writer process on SQLite (see
        ``_write_everyday``). None for any other call, or where neither applies."""
        if (self.db.is_sqlite and self.db.writer is None) or self.key_field.data_type == DataType.NUMBER:
            return None
        owner = self.registry.get("OwnerId")
        fields: tuple[Field, ...] | None = None
        leads: list[tuple[Any, list[Any]]] = []
        first: set[Any] = set()
        for c in checked:
            if c.key is None or c.key in first:
                continue  # a later mention of a lead is answered as a duplicate (``_match``)
            first.add(c.key)
            if c.failure is not None:
                continue
            if fields is None:
                fields = tuple(c.values)
                if not fields or any(f.is_unique or f is owner or f.data_type == DataType.NUMBER for f in fields):
                    return None
            elif tuple(c.values) != fields:
                return None
            leads.append((c.key, list(c.values.values())))
        return None if fields is None else (fields, leads)

    async def _write_everyday(self, fields: tuple[Field, ...], leads: list[tuple[Any, list[Any]]]) -> dict[Any, int]:
        """Write an everyday call in a transaction of its own; the leads found, their ids by key
        value. PostgreSQL: one autocommitted statement (``repository.update_in_one_statement``).
        SQLite: a job for the writer process, which writes while this process parses the next
        calls (``leadstore.sqlite_writer``)."""
        owners = self.principal.lead_owners
        if owners is not None and not owners:
            return {}  # this user may touch no lead
        now = datetime.now(UTC).replace(tzinfo=None)
        call = repo.EverydayWrite(
            self.registry.table, self.key_field, fields, leads, owners, self.principal.user_id, self.request_id, now
        )
        if self.db.writer is not None:
            return await self.db.writer.submit(repo.keyed_write(self.db.engine.dialect, call))
        return await self.db.autocommit_async(lambda conn: repo.update_in_one_statement(conn, call))

    def _claim(
        self,
        conn: Connection,
        candidates: list[tuple[int, Mapping[str, Any], dict[Field, Any]]],
        outcomes: list[_Outcome],
    ) -> list[tuple[int, repo.LeadUpdate]]:
        """Fail the leads that would take a unique value another lead has, or name an unknown
        owner; the rest become updates (none for a lead whose values did not change)."""
        changes = [c for _, _, c in candidates]
        claims = UniqueClaims(conn, self.registry, changes)
        bad_owners = unknown_owners(conn, self.registry, changes)
        owner = self.registry.get("OwnerId")
        updates = []
        for index, row, new in candidates:
            if owner in new and new[owner] in bad_owners:
                outcomes[index] = _Outcome(False, ReasonCode.INVALID_VALUE, f"OwnerId {new[owner]} is not a user")
            elif (taken := claims.conflict(row["auto_id"], new)) is not None:
                outcomes[index] = _Outcome(False, ReasonCode.DUPLICATE_VALUE, duplicate_message(taken))
            elif new:
                claims.claim(row["auto_id"], new, row)
                updates.append((index, repo.LeadUpdate(row["auto_id"], row, new)))
        return updates

    def _taken(self, conn: Connection, update: repo.LeadUpdate) -> Field | None:
        """Which unique value of ``update`` a concurrent call took first; None when none was
        (then the write failed for another reason, which is not the caller's to hear about)."""
        table = self.registry.table
        for field_, value in update.new.items():
            if field_.is_unique and value is not None:
                column = self.registry.column(field_)
                holder = conn.execute(
                    select(table.c.auto_id).where(column == value, table.c.auto_id != update.lead_id)
                ).first()
                if holder is not None:
                    return field_
        return None

    def _answer(self, checked: list[_Checked], outcomes: list[_Outcome]) -> dict[str, Any]:
        push = self.request.push_unprocessed
        lists: dict[str, list[dict[str, Any]]] = {
            "SuccessfulLeads": [],
            "FailedLeads": [],
            "UnProcessedLeads": [],
        }
        for c, outcome in zip(checked, outcomes, strict=True):
            item: dict[str, Any] = {
                "Identifier": self.key_field.schema_name,
                "IdentifierValue": c.identifier_value,
            }
            if outcome.successful:
                lists["SuccessfulLeads"].append({**item, "Index": c.index})
                continue
            item.update(Reason=outcome.reason, Index=c.index, ReasonCode=outcome.code)
            unprocessed = push and outcome.code == ReasonCode.LEAD_NOT_FOUND
            lists["UnProcessedLeads" if unprocessed else "FailedLeads"].append(item)
        status: dict[str, Any] = {
            "TotalCount": len(checked),
            "SuccessCount": len(lists["SuccessfulLeads"]),
            "FailureCount": len(lists["FailedLeads"]),
        }
        if push:
            status["UnProcessedCount"] = len(lists["UnProcessedLeads"])
        status["Message"] = "Processed" if lists["SuccessfulLeads"] else "Error"
        return {"Status": status, "Details": {name: items for name, items in lists.items() if items}}


def _is_retryable(exc: IntegrityError | OperationalError) -> bool:
    if isinstance(exc, IntegrityError | WriterGone):
        return True
    # Deadlocks and serialisation failures (PostgreSQL SQLSTATE 40xxx), SQLite's busy database.
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return sqlstate.startswith("40") or getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
