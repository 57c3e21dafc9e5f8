"""More of LeadSquared's lead writes (spec 12): ``Lead.Capture``, ``Lead/Bulk/CreateOrUpdate`` and
``Lead/Bulk/Update`` (one field on many leads). Each is a bulk write on the one write path, with
the same checks, permissions and history as every other write."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread

from leadstore.auth.principal import Principal
from leadstore.catalog import CatalogSnapshot
from leadstore.errors import DuplicateEntry, InvalidRequest, LeadstoreError, shown
from leadstore.fields.model import Field
from leadstore.leads import bulk, search, service
from leadstore.leads.changes import Pairs, parse_pairs, split_pseudo
from leadstore.leads.outcomes import ReasonCode
from leadstore.leads.plan import LeadWrite, NewLead

BEHAVIORS = ("None", "DoNotUpdate", "UpdateOnlyEmptyFields", "DoNotUpdateUniqueFields")
MAX_FIELD_UPDATE_LEADS = 50  # Lead/Bulk/Update, as LeadSquared documents it


def behavior_of(raw: str | None) -> str:
    for behavior in BEHAVIORS:
        if (raw or "None").strip().lower() == behavior.lower():
            return behavior
    raise InvalidRequest(f"LeadUpdateBehavior {shown(raw)} is not one of: {', '.join(BEHAVIORS)}")


async def capture(
    catalog: CatalogSnapshot, principal: Principal, pairs: Pairs, behavior: str, request_id: str
) -> tuple[str, bool]:
    """Lead.Capture: find the lead by ``SearchBy``, else by ProspectId, EmailAddress, then Phone
    (SearchBy is ignored when all three are sent), and update it as ``behavior`` says; create it
    when none is found. The lead's ProspectId and whether it was created."""
    rest, pseudo = split_pseudo(pairs, "SearchBy", "ProspectId")
    values = service.values_of(catalog, principal, rest)
    prospect = search.lead_key(catalog, pseudo.get("ProspectId"))
    search_by = pseudo.get("SearchBy") or None
    email_and_phone = all(values.get(catalog.fields.system(name)) is not None for name in ("EmailAddress", "Phone"))
    key: Field | None
    key_value: Any
    if prospect is not None and (search_by is None or email_and_phone):
        key, key_value = catalog.fields.system("ProspectId"), prospect
    else:
        key = service.search_key(catalog, principal, search_by, values)
        key_value = None if key is None else values.get(key)
    update, expect = await _update_for(catalog, principal, behavior, key, key_value, values)
    return await service.create_or_update_one(
        catalog, principal, key, key_value, values, request_id, update=update, expect=expect
    )


async def _update_for(
    catalog: CatalogSnapshot,
    principal: Principal,
    behavior: str,
    key: Field | None,
    key_value: Any,
    values: Mapping[Field, Any],
) -> tuple[dict[Field, Any], dict[Field, Any] | None]:
    """What an existing lead gets under ``behavior``, and the preconditions that keep it so."""
    if key is None or key_value is None:  # no lead to find: a new one gets every value
        return dict(values), None
    if behavior == "DoNotUpdate":
        return {}, None
    if behavior == "DoNotUpdateUniqueFields":
        return {f: v for f, v in values.items() if not f.is_unique or f is key}, None
    if behavior == "UpdateOnlyEmptyFields":
        row = await anyio.to_thread.run_sync(search.find_row, catalog, principal, key, key_value)
        if row is None:
            return dict(values), None
        empty = {f: v for f, v in values.items() if row[f.column] is None}
        return empty, dict.fromkeys(empty)  # still empty when written
    return dict(values), None


async def update_field(
    catalog: CatalogSnapshot, principal: Principal, lead_ids: Sequence[Any], pair: Pairs, request_id: str
) -> int:
    """Lead/Bulk/Update: one field set to one value on up to 50 leads by ProspectId; the number
    of leads in reach it updated. A unique field cannot take one value on several leads."""
    if not lead_ids or len(lead_ids) > MAX_FIELD_UPDATE_LEADS:
        raise InvalidRequest(f"LeadIds must hold 1 to {MAX_FIELD_UPDATE_LEADS} ProspectIds; it holds {len(lead_ids)}")
    values = service.values_of(catalog, principal, pair)
    keys = list(dict.fromkeys(k for raw in lead_ids if isinstance(raw, str) and (k := search.lead_key(catalog, raw))))
    if any(f.is_unique for f in values) and len(keys) > 1:
        raise InvalidRequest("A unique field cannot take one value on several leads; send one LeadId")
    id_field = catalog.fields.system("ProspectId")
    fields = list(values)
    leads = [
        LeadWrite(i, key, {position: values[f] for position, f in enumerate(fields)}) for i, key in enumerate(keys)
    ]
    results = await catalog.db.write_bulk(bulk.write_of(catalog.fields, principal, id_field, fields, leads, request_id))
    failures = [r.failure for r in results.values() if r.failure is not None]
    if failures and len(failures) == len(results):
        raise service.error_of(failures[0])
    return sum(1 for r in results.values() if r.found and r.failure is None)


async def create_or_update_many(
    catalog: CatalogSnapshot, principal: Principal, body: Any, max_leads: int, request_id: str
) -> list[dict[str, Any]]:
    """Lead/Bulk/CreateOrUpdate: each lead (its Attribute/Value pairs, SearchBy among them) found
    by SearchBy, else EmailAddress, then Phone, and updated, or created; one answer per lead, in
    order. Leads found by the same field are written together, each whole or not at all."""
    if not isinstance(body, list) or not body:
        raise InvalidRequest(f"The body must be an array of 1 to {max_leads} leads, each an array of Attribute/Value")
    if len(body) > max_leads:
        raise InvalidRequest(f"The body holds {len(body)} leads; at most {max_leads} may be sent in one call")
    parsed = [parse_pairs(lead, f"body[{i}]") for i, lead in enumerate(body)]
    answers: list[dict[str, Any]] = [{} for _ in parsed]
    groups: dict[Field, list[tuple[int, Any, dict[Field, Any], service.Creation]]] = defaultdict(list)
    seen: dict[tuple[Field, Any], int] = {}
    for i, pairs in enumerate(parsed):
        try:
            rest, pseudo = split_pseudo(pairs, "SearchBy")
            values = service.values_of(catalog, principal, rest)
            new = service.creation(catalog, principal, values)
            key = service.search_key(catalog, principal, pseudo.get("SearchBy"), values)
            key_value = values.get(key) if key is not None else None
            if key is None or key_value is None:  # nothing to find a lead by: found by its new id, never
                key, key_value = catalog.fields.system("ProspectId"), new.prospect_id
            if (key, key_value) in seen:
                raise DuplicateEntry(f"The same lead is already at row {seen[(key, key_value)] + 1}")
            seen[(key, key_value)] = i
            groups[key].append((i, key_value, values, new))
        except LeadstoreError as exc:
            answers[i] = _row(i, failure=exc)
    for key, leads in groups.items():
        await _write_group(catalog, principal, key, leads, answers, request_id)
    return answers


async def _write_group(
    catalog: CatalogSnapshot,
    principal: Principal,
    key: Field,
    leads: list[tuple[int, Any, dict[Field, Any], "service.Creation"]],
    answers: list[dict[str, Any]],
    request_id: str,
) -> None:
    fields = list(dict.fromkeys(f for _, _, values, new in leads for f in (*values, *new.values)))
    position = {f: p for p, f in enumerate(fields)}
    writes = []
    for i, key_value, values, new in leads:
        create = None if new.refusal else NewLead(new.server_set, {position[f]: v for f, v in new.values.items()})
        writes.append(LeadWrite(i, key_value, {position[f]: v for f, v in values.items()}, create))
    results = await catalog.db.write_bulk(bulk.write_of(catalog.fields, principal, key, fields, writes, request_id))
    for i, _, _, new in leads:
        result = results.get(i)
        if result is None or not result.found:
            answers[i] = _row(i, failure=new.refusal or service.error_of((ReasonCode.LEAD_NOT_FOUND, "")))
        elif result.failure is not None:
            answers[i] = _row(i, failure=service.error_of(result.failure))
        elif result.created:
            answers[i] = _row(i, new.prospect_id, created=True)
        else:
            answers[i] = _row(i, result.prospect_id, updated=True, affected=1 if result.changed else 0)


def _row(
    i: int,
    lead_id: str | None = None,
    *,
    created: bool = False,
    updated: bool = False,
    affected: int = 1,
    failure: LeadstoreError | None = None,
) -> dict[str, Any]:
    """One lead's answer as LeadSquared's clients read it; a failed lead (leadstore) also says why."""
    row: dict[str, Any] = {
        "RowNumber": i + 1,
        "LeadId": lead_id,
        "LeadCreated": created,
        "LeadUpdated": updated,
        "AffectedRows": 0 if failure else affected,
    }
    if failure is not None:
        row.update(ExceptionType=failure.exception_type, ExceptionMessage=failure.message)
    return row
