"""Undo a call (spec section 9): each field still holding the value that call wrote goes back to
the value before it; a field changed since is kept, and the answer says by which request.

A revert is a bulk write like any other (``plan.BulkWrite``): the leads found by id within the
caller's reach now, each field written back under the precondition that it still holds what the
reverted call wrote, so a change that lands between reading and writing fails that lead instead
of being undone unseen. Its changes go into the history under its own request id, so a revert
can itself be reverted.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy import Connection

from leadstore.auth.principal import Principal, Role
from leadstore.catalog import CatalogSnapshot
from leadstore.errors import InvalidRequest, shown
from leadstore.fields.model import Field
from leadstore.fields.validation import InvalidValue, normalize
from leadstore.leads import bulk
from leadstore.leads import repository as repo
from leadstore.leads.outcomes import NOT_FOUND_REASON, Answer, Failure, Item, ReasonCode
from leadstore.leads.plan import BulkWrite, IdempotencyRecord, LeadWrite, wire

# How far back along a lead's history the request that last changed a kept field is looked for.
HISTORY_DEPTH = 1000


@dataclass(frozen=True)
class RevertRequest:
    request_id: str
    dry_run: bool = False


def parse_request(body: Any) -> RevertRequest:
    """Check the request's shape; ``InvalidRequest`` says what is wrong."""
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object such as {"RequestId": "..."}')
    request_id = body.get("RequestId")
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidRequest("RequestId must be the X-Request-Id of an earlier call that changed leads")
    options = body.get("Options") or {}
    if not isinstance(options, dict):
        raise InvalidRequest('Options must be an object, e.g. {"DryRun": true}')
    if options.get("DryRun") is not None and not isinstance(options["DryRun"], bool):
        raise InvalidRequest("Options.DryRun must be true or false")
    return RevertRequest(request_id.strip(), bool(options.get("DryRun")))


class Revert:
    def __init__(self, catalog: CatalogSnapshot, principal: Principal, request: RevertRequest, request_id: str) -> None:
        self.catalog = catalog
        self.registry = catalog.fields
        self.principal = principal
        self.request = request
        self.request_id = request_id

    async def run(self, idempotency: IdempotencyRecord | None = None) -> dict[str, Any]:
        """Revert the call; with ``idempotency`` the answer is stored in the same transaction."""
        answer, write = await anyio.to_thread.run_sync(self.plan)
        if idempotency is not None:
            write.idempotency, write.answer = idempotency, answer
        return answer.render(await self.catalog.db.write_bulk(write))

    def plan(self) -> tuple[Answer, BulkWrite]:
        """The answer but for what the database says, and the write that asks it: read the call's
        changes and what its leads hold now."""
        own = None if self.principal.role == Role.ADMINISTRATOR else self.principal.user_id
        with self.catalog.db.read() as conn:
            call = repo.call_to_revert(conn, self.request.request_id, own)
            if call is None:
                # One answer for an unknown id and another user's, so neither can be probed.
                raise InvalidRequest(
                    f"RequestId {shown(self.request.request_id)} names no call of yours that changed leads; "
                    "send the X-Request-Id of such a call"
                )
            positions: list[list[int]] = json.loads(call["leads"])
            written: dict[int, dict[str, tuple[Any, Any]]] = {lead_id: {} for lead_id, _ in positions}
            for change in repo.call_changes(conn, call):
                if change["lead_id"] in written:
                    written[change["lead_id"]][change["field"]] = (change["old_value"], change["new_value"])
            rows = repo.leads_by_id(conn, self.registry.table, written)
            kept_by = {
                lead_id: self._changed_since(conn, rows[lead_id], fields)
                for lead_id, fields in written.items()
                if lead_id in rows
            }
        items: list[Item] = []
        leads: list[LeadWrite] = []
        columns: dict[Field, int] = {}
        owners = self.principal.lead_owners
        for lead_id, index in positions:
            row = rows.get(lead_id)
            if row is None:
                continue  # not expected: leads are not deleted
            if owners is not None and row["owner_id"] not in owners:
                # Answered exactly as a lead that does not exist, before anything else about it.
                items.append(Item(index, row["prospect_id"], (ReasonCode.LEAD_NOT_FOUND, NOT_FOUND_REASON)))
                continue
            kept = kept_by[lead_id]
            back, failure = self._values_back(written[lead_id], row, kept)
            extra = {"Kept": [{"Attribute": name, "ChangedBy": by} for name, by in kept.items()]}
            items.append(Item(index, row["prospect_id"], failure, extra))
            if failure is None:
                values = {columns.setdefault(f, len(columns)): old for f, (old, _) in back.items()}
                expect = {columns.setdefault(f, len(columns)): now for f, (_, now) in back.items()}
                leads.append(LeadWrite(index, lead_id, values, expect=expect or None))
        answer = Answer("ProspectId", items, changed_as="Reverted")
        id_field = self.registry.system("ProspectAutoId")
        write = bulk.write_of(self.registry, self.principal, id_field, list(columns), leads, self.request_id)
        write.dry_run = self.request.dry_run
        return answer, write

    def _changed_since(
        self, conn: Connection, row: Mapping[Any, Any], fields: Mapping[str, tuple[Any, Any]]
    ) -> dict[str, str]:
        """The fields of ``fields`` that no longer hold what the call wrote, each with the request
        id of its latest change."""
        moved = {
            name
            for name, (_, new) in fields.items()
            if (field_ := self.registry.get(name)) is None or wire(row[field_.column]) != new
        }
        kept: dict[str, str] = {}
        if moved:
            for change in repo.history(conn, row["last_change_id"], HISTORY_DEPTH):
                if change["field"] in moved and change["field"] not in kept:
                    kept[change["field"]] = change["request_id"]
        return kept

    def _values_back(
        self, fields: Mapping[str, tuple[Any, Any]], row: Mapping[Any, Any], kept: Mapping[str, str]
    ) -> tuple[dict[Field, tuple[Any, Any]], Failure | None]:
        """Each field to write back: its value before the call (stored form) and what it holds
        now; or the rule the caller's permissions or the field's rules now put in the way."""
        back: dict[Field, tuple[Any, Any]] = {}
        for name, (old, _) in fields.items():
            if name in kept:
                continue
            field_ = self.registry.get(name)
            if field_ is None or not self.principal.can_read(field_):
                return {}, (ReasonCode.UNKNOWN_ATTRIBUTE, f"{name} is not a lead field you can see")
            if not self.principal.can_write(field_):
                return {}, (ReasonCode.FIELD_READ_ONLY, f"{name} is read-only for you (permission template)")
            try:
                value = normalize(field_, old, self.catalog.account.phone_rules)
            except InvalidValue as exc:
                return {}, (ReasonCode(exc.code), exc.message)
            back[field_] = (value, row[field_.column])
        return back, None
