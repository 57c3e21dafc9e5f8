"""What ``Client`` and ``AsyncClient`` share: how each call is asked and how answers are read.

A method builds a ``Call`` (method, path, query, body, how to read the answer); the sync and
async clients differ only in how they send it.
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from leadstore.client._exceptions import (
    InvalidInput,
    LeadstoreAPIError,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnreachable,
    Unauthorized,
)
from leadstore.client._models import BulkResult, Change, FieldMetadata, Lead, RateLimit, User

T = TypeVar("T")

# A value as a write may send it: a string, or a JSON number or boolean (read back as a string).
Value = str | int | float | bool | None
LM = "/v2/LeadManagement.svc"
AUTH = "/v2/Authentication.svc"

# LeadSquared answers validation errors of single-lead endpoints with HTTP 500 and these types.
_INPUT_TYPES = {
    "MXDuplicateEntryException",
    "MXUnknownAttributeException",
    "MXMandatoryAttributeMissingException",
    "MXInvalidInputException",
    "MXAccessDeniedException",
}
_NOT_FOUND_TYPES = {"MXInvalidEntityException"}


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any, str | None], T]
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def api_root(base_url: str) -> str:
    """``https://api-in21.leadsquared.com/v2/`` and ``https://api-in21.leadsquared.com`` alike."""
    root = base_url.strip().rstrip("/")
    return root[: -len("/v2")] if root.endswith("/v2") else root


def pairs(fields: Mapping[str, Value]) -> list[dict[str, Value]]:
    return [{"Attribute": name, "Value": value} for name, value in fields.items()]


def _leads(data: Any, request_id: str | None) -> list[Lead]:
    return [dict(lead) for lead in data]


def _first_lead(data: Any, request_id: str | None) -> Lead | None:
    return dict(data[0]) if data else None


def bulk_update(
    leads: Iterable[Mapping[str, Value]],
    search_by: str | None,
    options: Mapping[str, Any] | None,
    push_non_existent_to_unprocessed: bool | None,
    dry_run: bool,
    idempotency_key: str | None,
    expect: Sequence[Mapping[str, Value] | None] | None = None,
    request_id: str | None = None,
) -> Call[BulkResult]:
    items: list[dict[str, Any]] = [{"Fields": pairs(lead)} for lead in leads]
    for item, expected in zip(items, expect or (), strict=False):
        if expected is not None:
            item["Expect"] = pairs(expected)
    body: dict[str, Any] = {"LeadPropertiesList": items}
    if search_by is not None:
        body["SearchByKey"] = search_by
    merged = dict(options or {})
    if push_non_existent_to_unprocessed is not None:
        merged["PushNonExistentLeadsToUnProcessedList"] = push_non_existent_to_unprocessed
    if dry_run:
        merged["DryRun"] = True
    if merged:
        body["Options"] = merged
    return Call(
        "POST", f"{LM}/Lead/Bulk/UpdateV2", BulkResult.from_wire, json=body, headers=_ids(idempotency_key, request_id)
    )


def revert(request_id: str, dry_run: bool, idempotency_key: str | None, own_request_id: str | None) -> Call[BulkResult]:
    body: dict[str, Any] = {"RequestId": request_id}
    if dry_run:
        body["Options"] = {"DryRun": True}
    headers = _ids(idempotency_key, own_request_id)
    return Call("POST", f"{LM}/Lead/Bulk/Revert", BulkResult.from_wire, json=body, headers=headers)


def _ids(idempotency_key: str | None, request_id: str | None) -> dict[str, str]:
    """The headers that name a call: the same on every retry of it."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    if request_id:
        headers["X-Request-Id"] = request_id
    return headers


def create_lead(fields: Mapping[str, Value]) -> Call[str]:
    return Call("POST", f"{LM}/Lead.Create", lambda data, _: str(data["Message"]["Id"]), json=pairs(fields))


def update_lead(lead_id: str, fields: Mapping[str, Value]) -> Call[int]:
    read: Callable[[Any, str | None], int] = lambda data, _: int(data["Message"]["AffectedRows"])  # noqa: E731
    return Call("POST", f"{LM}/Lead.Update", read, params={"leadId": lead_id}, json=pairs(fields))


def create_or_update_lead(fields: Mapping[str, Value], search_by: str | None) -> Call[str]:
    body = pairs(fields)
    if search_by is not None:
        body.append({"Attribute": "SearchBy", "Value": search_by})
    return Call("POST", f"{LM}/Lead.CreateOrUpdate", lambda data, _: str(data["Message"]["Id"]), json=body)


def get_lead_by_id(lead_id: str) -> Call[Lead | None]:
    return Call("GET", f"{LM}/Leads.GetById", _first_lead, params={"id": lead_id})


def get_leads_by_email(email: str) -> Call[list[Lead]]:
    return Call("GET", f"{LM}/Leads.GetByEmailaddress", _leads, params={"emailaddress": email})


def get_leads_by_phone(phone: str) -> Call[list[Lead]]:
    return Call("GET", f"{LM}/RetrieveLeadByPhoneNumber", _leads, params={"phone": phone})


def quick_search(key: str) -> Call[list[Lead]]:
    return Call("GET", f"{LM}/Leads.GetByQuickSearch", _leads, params={"key": key})


def get_leads(
    lookup_name: str,
    lookup_value: str,
    operator: str,
    columns: Sequence[str] | None,
    sort_by: str | None,
    descending: bool,
    page_index: int,
    page_size: int,
) -> Call[list[Lead]]:
    body: dict[str, Any] = {
        "Parameter": {"LookupName": lookup_name, "LookupValue": lookup_value, "SqlOperator": operator},
        "Paging": {"PageIndex": page_index, "PageSize": page_size},
    }
    if columns:
        body["Columns"] = {"Include_CSV": ",".join(columns)}
    if sort_by:
        body["Sorting"] = {"ColumnName": sort_by, "Direction": "1" if descending else "0"}
    return Call("POST", f"{LM}/Leads.Get", _leads, json=body)


def get_metadata(schema_name: str | None) -> Call[list[FieldMetadata]]:
    params = {"schemaName": schema_name} if schema_name else {}
    return Call(
        "GET",
        f"{LM}/LeadsMetaData.Get",
        lambda data, _: [FieldMetadata.model_validate(f) for f in data],
        params=params,
    )


def get_change_history(lead_id: str) -> Call[list[Change]]:
    return Call(
        "GET",
        f"{LM}/Lead.ChangeHistory",
        lambda data, _: [Change.model_validate(c) for c in data],
        params={"leadId": lead_id},
    )


def whoami() -> Call[User]:
    return Call("GET", f"{AUTH}/UserByAccessKey.Get", lambda data, _: User.model_validate(data))


class Keys:
    """The access and secret key; ``repr`` never shows the secret."""

    def __init__(self, access_key: str, secret_key: str, in_query: bool) -> None:
        self.access_key = access_key
        self._secret_key = secret_key
        self.in_query = in_query

    def apply(self, params: dict[str, str], headers: dict[str, str]) -> None:
        if self.in_query:
            params.update(accessKey=self.access_key, secretKey=self._secret_key)
        else:
            headers.update({"x-LSQ-AccessKey": self.access_key, "x-LSQ-SecretKey": self._secret_key})

    def scrub(self, text: str) -> str:
        return text.replace(self._secret_key, "***") if self._secret_key else text

    def __repr__(self) -> str:
        return f"Keys(access_key={self.access_key!r}, secret_key='***')"


def request_for(http: httpx.Client | httpx.AsyncClient, root: str, keys: Keys, call: Call[Any]) -> httpx.Request:
    params, headers = dict(call.params), dict(call.headers)
    keys.apply(params, headers)
    return http.build_request(call.method, root + call.path, params=params, json=call.json, headers=headers)


def rate_limit_of(response: httpx.Response) -> RateLimit | None:
    headers = response.headers
    try:
        return RateLimit(
            int(headers["x-ratelimit-limit"]),
            int(headers["x-ratelimit-remaining"]),
            float(headers["x-ratelimit-reset"]),
        )
    except (KeyError, ValueError):
        return None


def unreachable(exc: httpx.TransportError, keys: Keys) -> ServiceUnreachable:
    reason = keys.scrub(str(exc)) or type(exc).__name__
    return ServiceUnreachable(f"The service could not be reached ({type(exc).__name__}: {reason})")


def read_answer(response: httpx.Response, keys: Keys, call: Call[T]) -> T:
    """The call's result, or the exception its answer stands for."""
    request_id = response.headers.get("x-request-id")
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 200 and data is not None:
        try:
            return call.read(data, request_id)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            message = f"The answer is not the shape this API returns ({type(exc).__name__})"
            raise ServerError(message, status_code=200, request_id=request_id) from None
    raise _error(response, data, keys, request_id)


def _error(response: httpx.Response, data: Any, keys: Keys, request_id: str | None) -> LeadstoreAPIError:
    status = response.status_code
    envelope = data if isinstance(data, dict) else {}
    exception_type = envelope.get("ExceptionType")
    message = envelope.get("ExceptionMessage") or envelope.get("Message")
    if not isinstance(message, str) or not message:
        snippet = " ".join(response.text.split())[:200]
        message = f"HTTP {status} {response.reason_phrase}" + (f": {snippet}" if snippet else "")
    kwargs: dict[str, Any] = {
        "exception_type": exception_type if isinstance(exception_type, str) else None,
        "status_code": status,
        "request_id": request_id,
    }
    message = keys.scrub(message)
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(response, envelope), **kwargs)
    if status == 401:
        return Unauthorized(message, **kwargs)
    if status == 404 or exception_type in _NOT_FOUND_TYPES:
        return NotFound(message, **kwargs)
    if 400 <= status < 500 or exception_type in _INPUT_TYPES:
        return InvalidInput(message, **kwargs)
    return ServerError(message, **kwargs)


def _retry_after(response: httpx.Response, envelope: Mapping[str, Any]) -> float:
    for raw in (response.headers.get("retry-after"), envelope.get("RetryAfterSeconds")):
        try:
            seconds = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return 1.0
