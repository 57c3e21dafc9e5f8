"""LeadSquared's Lead Management URLs (spec sections 4 and 5)."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from leadstore.auth.dependencies import CurrentPrincipal, current_principal, query_param
from leadstore.auth.principal import Principal
from leadstore.errors import InvalidRequest, cut
from leadstore.leads import bulk, capture, revert, search, service
from leadstore.leads.changes import parse_pairs
from leadstore.leads.idempotency import IdempotencyGuard
from leadstore.leads.outcomes import REASON_CODE_MEANINGS
from leadstore.leads.plan import IdempotencyRecord, KeyTaken
from leadstore.leads.schemas import (
    AttributeValue,
    BulkAnswer,
    BulkFieldUpdate,
    BulkUpdateRequest,
    ByIdsRequest,
    ErrorEnvelope,
    LeadsGetRequest,
    RevertRequestBody,
)
from leadstore.state import app_state

router = APIRouter(prefix="/v2/LeadManagement.svc", tags=["Lead Management"])


def json_response(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON ({exc}); send a JSON body") from None


# Request bodies the document names: routes read them by hand (for speed and exact error
# positions), so the app's OpenAPI document adds them to its components (``app.openapi``).
DOCUMENTED_BODIES: list[type[BaseModel]] = []


Model = TypeVar("Model", bound=BaseModel)


async def _read_model(request: Request, model: type[Model], operation: str) -> Model:
    """A JSON body of ``model``'s shape; a 400 naming the first position that is not."""
    try:
        return model.model_validate(await read_json(request))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = cut(".".join(str(p) for p in first["loc"]))
        raise InvalidRequest(f"{operation} body: {where}: {first['msg']}") from None


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    DOCUMENTED_BODIES.append(model)
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "The body or the query is not as the API specifies"),
        (401, "Missing or invalid keys"),
        (409, "The Idempotency-Key was used for another body"),
        (413, "The body is over 1 MiB"),
        (429, "Over the rate limit (Retry-After says when to retry)"),
        (500, "An unexpected failure (the message gives a request id)"),
        (503, "The database is unavailable"),
    )
}
BULK_ANSWERS: dict[int | str, dict[str, Any]] = {200: {"model": BulkAnswer, "description": "Processed"}, **_ERRORS}


_PAIRS = {"type": "array", "items": AttributeValue.model_json_schema()}
_REASON_CODES = "\n".join(f"- `{code.value}`: {meaning}" for code, meaning in REASON_CODE_MEANINGS.items())


BULK_DESCRIPTION = f"""Update up to 25 leads, each found by `SearchByKey` (a unique field) or by its ProspectId.

Every lead ends in SuccessfulLeads, FailedLeads or UnProcessedLeads, and is written whole or
not at all. Items carry `Index` (the lead's position in LeadPropertiesList) and, when not
successful, a stable `ReasonCode`:

{_REASON_CODES}

Each SuccessfulLeads item carries `ChangedFields`, the fields the call changed on that lead
(`[]` when it held every value already). A lead sent with `Expect` (Attribute/Value pairs, as
in Fields) is written only if its fields hold those values now, checked in the write's own
transaction. `Options.DryRun` checks and reports everything without writing. An `Idempotency-Key` header
makes a retry within 24 hours answer the first response again without writing; the same key
with another body gets 409."""


@router.post(
    "/Lead/Bulk/UpdateV2",
    openapi_extra=_body_schema(BulkUpdateRequest),
    summary="Update Leads in Bulk v2",
    description=BULK_DESCRIPTION,
    responses=BULK_ANSWERS,
)
async def bulk_update(request: Request) -> Response:
    # The hot path authenticates without FastAPI's dependency solving (~5 % of a call's CPU).
    principal = await current_principal(request)
    state = app_state(request)
    body = await read_json(request)
    parsed = bulk.parse_request(body, state.catalog.account.bulk_max_leads)
    work = bulk.BulkUpdate(state.db, state.catalog.snapshot(), principal, parsed, request.state.request_id)
    return await _answer(request, principal, work.run, dry_run=parsed.dry_run)


async def _answer(
    request: Request,
    principal: Principal,
    run: Callable[[IdempotencyRecord | None], Awaitable[dict[str, Any]]],
    *,
    dry_run: bool,
) -> Response:
    """Run a bulk write, with its Idempotency-Key when the call has one. A dry run writes
    nothing, so it leaves the key alone: it neither replays an answer nor takes the key from the
    real call it previews (whose body differs only in DryRun)."""
    key = request.headers.get("idempotency-key")
    metrics = request.app.state.metrics
    if not key or dry_run:
        answer = await run(None)
        if not dry_run:
            metrics.bulk_answer(answer)
        return json_response(answer)
    # The call is written straight away: its write finds the key taken, and writes nothing, when
    # an earlier call with that key committed (a retry; rare), which saves every other call a
    # lookup first.
    guard = IdempotencyGuard(app_state(request).db, principal.user_id, key, await request.body())
    try:
        answer = await run(guard.record())
    except KeyTaken:
        return Response(await run_in_threadpool(guard.answer_of_winner), media_type="application/json")
    metrics.bulk_answer(answer)  # a replayed answer is not counted again
    return json_response(answer)


REVERT_DESCRIPTION = """(leadstore) Undo an earlier call that changed leads, named by its X-Request-Id.

Each field still holding the value that call wrote goes back to the value before it, per lead
atomically; a field changed since is kept, and `Kept` names the request that changed it. The
caller's permissions apply as they are now. A user reverts its own calls, an Administrator
anyone's; any other request id gets 400. The answer has the shape of the bulk update's, one item
per lead the call changed, `Index` being the lead's position in that call. `Options.DryRun` and
an `Idempotency-Key` work as for the bulk update, and a revert can itself be reverted."""


@router.post(
    "/Lead/Bulk/Revert",
    openapi_extra=_body_schema(RevertRequestBody),
    summary="Undo a call (leadstore)",
    description=REVERT_DESCRIPTION,
    responses=BULK_ANSWERS,
)
async def bulk_revert(request: Request, principal: CurrentPrincipal) -> Response:
    state = app_state(request)
    parsed = revert.parse_request(await read_json(request))
    work = revert.Revert(state.catalog.snapshot(), principal, parsed, request.state.request_id)
    return await _answer(request, principal, work.run, dry_run=parsed.dry_run)


async def _pairs(request: Request) -> list[tuple[str, Any]]:
    return parse_pairs(await read_json(request), "body")


@router.post("/Lead.Create", openapi_extra={"requestBody": {"content": {"application/json": {"schema": _PAIRS}}}})
async def create_lead(request: Request, principal: CurrentPrincipal) -> Response:
    """Create a lead from Attribute/Value pairs."""
    state, pairs = app_state(request), await _pairs(request)
    lead_id = await service.create(state.catalog.snapshot(), principal, pairs, request.state.request_id)
    return json_response({"Status": "Success", "Message": {"Id": lead_id}})


@router.post("/Lead.Update", openapi_extra={"requestBody": {"content": {"application/json": {"schema": _PAIRS}}}})
async def update_lead(request: Request, principal: CurrentPrincipal) -> Response:
    """Update the lead `leadId` with Attribute/Value pairs."""
    state, pairs = app_state(request), await _pairs(request)
    lead_id = query_param(request, "leadId")
    rows = await service.update(state.catalog.snapshot(), principal, lead_id, pairs, request.state.request_id)
    return json_response({"Status": "Success", "Message": {"AffectedRows": rows}})


@router.post(
    "/Lead.CreateOrUpdate",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _PAIRS}}}},
)
async def create_or_update_lead(request: Request, principal: CurrentPrincipal) -> Response:
    """Update the lead found by the `SearchBy` attribute (default EmailAddress, then Phone), or create it."""
    state, pairs = app_state(request), await _pairs(request)
    lead_id = await service.create_or_update(state.catalog.snapshot(), principal, pairs, request.state.request_id)
    return json_response({"Status": "Success", "Message": {"Id": lead_id, "AffectedRows": 1}})


@router.post("/Lead.Capture", openapi_extra={"requestBody": {"content": {"application/json": {"schema": _PAIRS}}}})
async def capture_lead(request: Request, principal: CurrentPrincipal) -> Response:
    """Update the lead found by `SearchBy`, else by ProspectId, EmailAddress, then Phone, as
    `LeadUpdateBehavior` says (DoNotUpdate, UpdateOnlyEmptyFields, DoNotUpdateUniqueFields), or
    create it."""
    state, pairs = app_state(request), await _pairs(request)
    behavior = capture.behavior_of(query_param(request, "LeadUpdateBehavior"))
    lead_id, created = await capture.capture(
        state.catalog.snapshot(), principal, pairs, behavior, request.state.request_id
    )
    return json_response({"Status": "Success", "Message": {"Id": lead_id, "RelatedId": lead_id, "IsCreated": created}})


@router.post("/Lead/Bulk/CreateOrUpdate")
async def bulk_create_or_update(request: Request, principal: CurrentPrincipal) -> Response:
    """Update or create up to 25 leads, each an array of Attribute/Value pairs with an optional
    `SearchBy` (default EmailAddress, then Phone): one answer per lead, in order, with
    `RowNumber`, `LeadId`, `LeadCreated`, `LeadUpdated` and `AffectedRows` (and, for a lead that
    failed, `ExceptionType` and `ExceptionMessage`)."""
    state = app_state(request)
    catalog = state.catalog.snapshot()
    answers = await capture.create_or_update_many(
        catalog, principal, await read_json(request), catalog.account.bulk_max_leads, request.state.request_id
    )
    return json_response(answers)


@router.post("/Lead/Bulk/Update", openapi_extra=_body_schema(BulkFieldUpdate))
async def bulk_update_field(request: Request, principal: CurrentPrincipal) -> Response:
    """Set one field to one value on up to 50 leads by ProspectId (`LeadIds`, `LeadFields`)."""
    state, body = app_state(request), await read_json(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("LeadIds"), list)
        or not isinstance(body.get("LeadFields"), dict)
    ):
        raise InvalidRequest('The body must be {"LeadIds": [...], "LeadFields": {"Attribute": ..., "Value": ...}}')
    pair = parse_pairs([body["LeadFields"]], "LeadFields")
    affected = await capture.update_field(
        state.catalog.snapshot(), principal, body["LeadIds"], pair, request.state.request_id
    )
    return json_response({"Status": "Success", "Message": {"AffectedRows": affected}})


@router.post("/Leads/Retrieve/ByIds", openapi_extra=_body_schema(ByIdsRequest))
async def leads_by_ids(request: Request, principal: CurrentPrincipal) -> Response:
    """The leads with these ProspectIds (at most 10,000), with the columns asked: `RecordCount`
    and `Leads`."""
    state = app_state(request)
    body = await _read_model(request, ByIdsRequest, "Leads/Retrieve/ByIds")
    paging = body.Paging
    answer = await run_in_threadpool(
        search.by_ids,
        state.catalog.snapshot(),
        principal,
        body.SearchParameters.LeadIds,
        body.Columns.Include_CSV if body.Columns else None,
        paging.PageIndex if paging else 1,
        paging.PageSize if paging else search.MAX_PAGE_SIZE,
    )
    return json_response(answer)


@router.get("/Leads.GetById")
async def get_by_id(request: Request, principal: CurrentPrincipal) -> Response:
    """The lead with ProspectId `id`: an array of 0 or 1 lead."""
    state = app_state(request)
    return json_response(
        await run_in_threadpool(search.get_by_id, state.catalog.snapshot(), principal, query_param(request, "id"))
    )


@router.get("/Leads.GetByEmailaddress")
async def get_by_email(request: Request, principal: CurrentPrincipal) -> Response:
    """The lead with email address `emailaddress` (case-insensitive)."""
    state, email = app_state(request), query_param(request, "emailaddress")
    return json_response(await run_in_threadpool(search.get_by_email, state.catalog.snapshot(), principal, email))


@router.get("/RetrieveLeadByPhoneNumber")
async def get_by_phone(request: Request, principal: CurrentPrincipal) -> Response:
    """Leads whose Phone or Mobile is `phone`."""
    state, phone = app_state(request), query_param(request, "phone")
    return json_response(await run_in_threadpool(search.get_by_phone, state.catalog.snapshot(), principal, phone))


@router.get("/Leads.GetByQuickSearch")
async def quick_search(request: Request, principal: CurrentPrincipal) -> Response:
    """Leads whose first or last name, email, phone or company starts with `key` (at most 100)."""
    state, key = app_state(request), query_param(request, "key")
    return json_response(await run_in_threadpool(search.quick_search, state.catalog.snapshot(), principal, key))


@router.post("/Leads.Get", openapi_extra=_body_schema(LeadsGetRequest))
async def get_leads(request: Request, principal: CurrentPrincipal) -> Response:
    """Leads matching one condition, with optional columns, sorting and paging (PageSize ≤ 1000)."""
    state = app_state(request)
    body = await _read_model(request, LeadsGetRequest, "Leads.Get")
    query = search.LeadQuery(
        lookup_name=body.Parameter.LookupName,
        lookup_value=body.Parameter.LookupValue,
        operator=body.Parameter.SqlOperator,
        columns=body.Columns.Include_CSV if body.Columns else None,
        sort_column=body.Sorting.ColumnName if body.Sorting else None,
        descending=bool(body.Sorting and body.Sorting.Direction == "1"),
        page_index=body.Paging.PageIndex if body.Paging else 1,
        page_size=body.Paging.PageSize if body.Paging else 100,
    )
    return json_response(await run_in_threadpool(search.search, state.catalog.snapshot(), principal, query))


@router.get("/LeadsMetaData.Get")
async def metadata(request: Request, principal: CurrentPrincipal) -> Response:
    """The lead fields the caller may read, with type, flags, max length and options."""
    state = app_state(request)
    return json_response(search.metadata(state.catalog.snapshot(), principal, query_param(request, "schemaName")))


@router.get("/Lead.ChangeHistory")
async def change_history(request: Request, principal: CurrentPrincipal) -> Response:
    """(leadstore) The recorded changes of lead `leadId`, newest first in the order they were
    written: field, old and new value, who, when (UTC) and the request id."""
    state, lead_id = app_state(request), query_param(request, "leadId")
    return json_response(await run_in_threadpool(search.change_history, state.catalog.snapshot(), principal, lead_id))
