"""The client against the live server, sync and async alike, and its exceptions."""

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from leadstore import catalog as catalog_module
from leadstore.app import create_app
from leadstore.client import (
    AsyncClient,
    BulkResult,
    Client,
    FieldMetadata,
    InvalidInput,
    LeadstoreAPIError,
    NotFound,
    Outcome,
    RateLimited,
    ServerError,
    ServiceUnreachable,
    Unauthorized,
    User,
)
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.helpers import LiveServer

NOT_FOUND = "Lead does not exist in the system or You do not have permission to update the lead"


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def scenario(lsq: Client | AsyncClient) -> None:
    """Every endpoint once, written for either client."""

    async def call(method: str, *args: Any, **kwargs: Any) -> Any:
        return await _maybe(getattr(lsq, method)(*args, **kwargs))

    lead_id = await call("create_lead", {"FirstName": "Ravi", "LastName": "Berg", "EmailAddress": "ravi@example.com"})
    assert await call("update_lead", lead_id, {"JobTitle": "CTO", "Phone": "+91-9876543210"}) == 1
    same = await call("create_or_update_lead", {"EmailAddress": "RAVI@example.com", "Company": "Acme"})
    assert same == lead_id

    lead = await call("get_lead_by_id", lead_id)
    assert lead["ProspectID"] == lead_id
    assert (lead["JobTitle"], lead["Company"], lead["Phone"]) == ("CTO", "Acme", "+91-9876543210")
    assert await call("get_lead_by_id", "00000000-0000-0000-0000-000000000000") is None
    assert [x["ProspectID"] for x in await call("get_leads_by_email", "ravi@example.com")] == [lead_id]
    assert await call("get_leads_by_email", "nobody@example.com") == []
    assert [x["ProspectID"] for x in await call("get_leads_by_phone", "+91 98765 43210")] == [lead_id]
    assert [x["ProspectID"] for x in await call("quick_search", "Rav")] == [lead_id]
    found = await call("get_leads", "Company", "Ac%", "LIKE", columns=["FirstName"], page_size=10)
    assert found[0]["FirstName"] == "Ravi"

    result = await call(
        "bulk_update",
        [{"EmailAddress": "ravi@example.com", "Score": "12"}, {"EmailAddress": "nobody@example.com", "Score": "1"}],
        search_by="EmailAddress",
    )
    assert isinstance(result, BulkResult)
    assert (result.status.total_count, result.status.success_count, result.status.failure_count) == (2, 1, 1)
    assert [(o, i.index, i.reason) for o, i in result.outcomes()] == [
        (Outcome.SUCCESSFUL, 0, None),
        (Outcome.FAILED, 1, NOT_FOUND),
    ]
    assert result.failed[0].reason_code == "LEAD_NOT_FOUND"

    pushed = await call(
        "bulk_update", [{"EmailAddress": "nobody@example.com"}], search_by="EmailAddress",
        push_non_existent_to_unprocessed=True,
    )  # fmt: skip
    assert pushed.status.unprocessed_count == 1
    assert pushed.unprocessed[0].identifier_value == "nobody@example.com"

    dry = await call("bulk_update", [{"EmailAddress": "ravi@example.com", "Score": "99"}],
                     search_by="EmailAddress", dry_run=True)  # fmt: skip
    assert dry.status.success_count == 1
    assert (await call("get_lead_by_id", lead_id))["Score"] == "12"

    history = await call("get_change_history", lead_id)
    assert {c.field for c in history} >= {"JobTitle", "Company", "Score"}
    assert next(c for c in history if c.field == "Score").new_value == "12"

    fields = await call("get_metadata")
    assert all(isinstance(f, FieldMetadata) for f in fields)
    email = next(f for f in fields if f.schema_name == "EmailAddress")
    assert email.is_unique
    assert email.data_type == "Email"
    stage = await call("get_metadata", "ProspectStage")
    assert [f.schema_name for f in stage] == ["ProspectStage"]
    assert "Customer" in stage[0].options

    me = await call("whoami")
    assert isinstance(me, User)
    assert (me.email_address, me.role) == ("admin@example.com", "Administrator")

    assert lsq.rate_limit is not None
    assert lsq.rate_limit.limit == 25


def test_sync_client_covers_every_endpoint(client: Client) -> None:
    asyncio.run(scenario(client))


def test_async_client_covers_every_endpoint(server: LiveServer, admin: Credentials) -> None:
    async def main() -> None:
        async with AsyncClient(server.base_url, admin.access_key, admin.secret_key) as lsq:
            await scenario(lsq)

    asyncio.run(main())


def test_async_client_runs_in_process_over_asgi(settings: Settings, admin: Credentials) -> None:
    app = create_app(settings)

    async def main() -> None:
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
            lsq = AsyncClient("http://testserver", admin.access_key, admin.secret_key, http=http)
            assert (await lsq.whoami()).role == "Administrator"
            await lsq.aclose()  # not ours to close
            assert await lsq.get_leads_by_email("a@example.com") == []

    asyncio.run(main())


def test_client_uses_a_ready_http_client(server: LiveServer, admin: Credentials) -> None:
    with httpx.Client(timeout=5) as http:
        with Client(server.base_url, admin.access_key, admin.secret_key, http=http) as lsq:
            assert lsq.whoami().role == "Administrator"
        assert not http.is_closed


def test_regional_base_url_with_v2_suffix(server: LiveServer, admin: Credentials) -> None:
    with Client(server.base_url + "/v2/", admin.access_key, admin.secret_key) as lsq:
        assert lsq.base_url == server.base_url
        assert lsq.whoami().email_address == "admin@example.com"


def test_keys_travel_in_headers_not_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with Client("https://api-in21.leadsquared.com/v2/", "AK", "SECRET", transport=httpx.MockTransport(handler)) as lsq:
        lsq.get_leads_by_email("a@example.com")
    request = seen[0]
    assert str(request.url) == (
        "https://api-in21.leadsquared.com/v2/LeadManagement.svc/Leads.GetByEmailaddress?emailaddress=a%40example.com"
    )
    assert (request.headers["x-LSQ-AccessKey"], request.headers["x-LSQ-SecretKey"]) == ("AK", "SECRET")


class TestErrors:
    def test_bad_keys_are_unauthorized(self, server: LiveServer, admin: Credentials) -> None:
        secret = "not-the-secret-" + admin.secret_key[:6]
        with Client(server.base_url, admin.access_key, secret) as lsq, pytest.raises(Unauthorized) as caught:
            lsq.whoami()
        error = caught.value
        assert (error.status_code, error.exception_type) == (401, "MXUnAuthorizedAccessException")
        assert error.request_id
        assert secret not in str(error)
        assert secret not in repr(error)
        assert secret not in repr(lsq)

    def test_unknown_lead_is_not_found(self, client: Client) -> None:
        with pytest.raises(NotFound) as caught:
            client.update_lead("00000000-0000-0000-0000-000000000000", {"FirstName": "X"})
        assert (caught.value.status_code, caught.value.exception_type) == (500, "MXInvalidEntityException")
        assert "does not exist" in caught.value.message

    def test_unknown_api_is_not_found(self, server: LiveServer, admin: Credentials) -> None:
        lsq = Client(server.base_url + "/nowhere", admin.access_key, admin.secret_key)
        with lsq, pytest.raises(NotFound) as caught:
            lsq.whoami()
        assert caught.value.status_code == 404

    def test_lsq_validation_500s_and_400s_are_invalid_input(self, client: Client) -> None:
        client.create_lead({"EmailAddress": "twice@example.com"})
        with pytest.raises(InvalidInput) as duplicate:
            client.create_lead({"EmailAddress": "twice@example.com"})
        assert (duplicate.value.status_code, duplicate.value.exception_type) == (500, "MXDuplicateEntryException")
        with pytest.raises(InvalidInput) as unknown:
            client.create_lead({"mx_Nope": "x"})
        assert unknown.value.exception_type == "MXUnknownAttributeException"
        with pytest.raises(InvalidInput) as too_many:
            client.bulk_update([{"EmailAddress": f"{n}@example.com"} for n in range(26)], search_by="EmailAddress")
        assert (too_many.value.status_code, too_many.value.exception_type) == (400, "MXInvalidInputException")
        assert "at most 25" in too_many.value.message

    def test_rate_limited_carries_retry_after(self, client: Client, db: Database) -> None:
        with db.write() as conn:
            catalog_module.save_setting(conn, "rate_limit_calls", "2")
        time.sleep(0.5)  # running servers pick settings up within a second (0.1 s in tests)
        for _ in range(2):
            client.whoami()
        with pytest.raises(RateLimited) as caught:
            client.whoami()
        error = caught.value
        assert error.status_code == 429
        assert error.exception_type == "MXAPIRateLimitExceededException"
        assert 1 <= error.retry_after <= 5

    def test_unreachable_service(self) -> None:
        with Client("http://127.0.0.1:9", "AK", "SECRET", timeout=2) as lsq, pytest.raises(ServiceUnreachable) as e:
            lsq.whoami()
        assert e.value.status_code is None
        assert isinstance(e.value, LeadstoreAPIError)

    @pytest.mark.parametrize(
        ("response", "expected"),
        [
            (
                httpx.Response(
                    503,
                    json={
                        "Status": "Error",
                        "ExceptionType": "MXServiceUnavailableException",
                        "ExceptionMessage": "The database is unavailable",
                    },
                ),
                ServerError,
            ),
            (httpx.Response(502, text="<html>Bad gateway</html>"), ServerError),
            (httpx.Response(200, text="not json"), ServerError),
            (
                httpx.Response(
                    413,
                    json={
                        "Status": "Error",
                        "ExceptionType": "MXRequestEntityTooLargeException",
                        "ExceptionMessage": "too large",
                    },
                ),
                InvalidInput,
            ),
            (httpx.Response(429, headers={"Retry-After": "3"}, json={}), RateLimited),
        ],
    )
    def test_answers_map_to_the_tree(self, response: httpx.Response, expected: type[LeadstoreAPIError]) -> None:
        lsq = Client("http://x", "AK", "SECRET", transport=httpx.MockTransport(lambda _: response))
        with lsq, pytest.raises(expected) as caught:
            lsq.whoami()
        assert caught.value.status_code == response.status_code
        if isinstance(caught.value, RateLimited):
            assert caught.value.retry_after == 3

    def test_an_echoed_secret_is_scrubbed(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            message = f"bad key {request.headers['x-LSQ-SecretKey']}"
            return httpx.Response(401, json={"Status": "Error", "ExceptionType": "X", "ExceptionMessage": message})

        lsq = Client("http://x", "AK", "S3CRET-VALUE", transport=httpx.MockTransport(handler))
        with lsq, pytest.raises(Unauthorized) as caught:
            lsq.whoami()
        assert "S3CRET-VALUE" not in str(caught.value)
        assert "***" in caught.value.message


def test_secret_never_reaches_the_logs(client: Client, admin: Credentials, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.whoami()
        client.get_leads_by_email("a@example.com")
        with pytest.raises(NotFound):
            client.update_lead("nope", {"FirstName": "X"})
    assert caplog.records
    assert admin.secret_key not in caplog.text


def _idempotent_call(client: Client) -> Callable[[], BulkResult]:
    return lambda: client.bulk_update(
        [{"EmailAddress": "once@example.com", "Score": "7"}], search_by="EmailAddress", idempotency_key="k-1"
    )


def test_same_idempotency_key_answers_again_without_writing(client: Client) -> None:
    lead_id = client.create_lead({"EmailAddress": "once@example.com"})
    first = _idempotent_call(client)()
    client.update_lead(lead_id, {"Score": "8"})
    again = _idempotent_call(client)()
    assert again.status == first.status
    assert again.successful == first.successful
    assert client.get_lead_by_id(lead_id)["Score"] == "8"  # type: ignore[index]
    with pytest.raises(InvalidInput) as caught:
        client.bulk_update([{"EmailAddress": "once@example.com"}], search_by="EmailAddress", idempotency_key="k-1")
    assert caught.value.status_code == 409


def test_a_conditional_bulk_update_reports_what_changed_and_what_failed(client: Client) -> None:
    client.create_lead({"EmailAddress": "ann@example.com", "JobTitle": "CEO"})
    client.create_lead({"EmailAddress": "bob@example.com", "JobTitle": "CEO"})
    result = client.bulk_update(
        [{"EmailAddress": "ann@example.com", "JobTitle": "CTO"}, {"EmailAddress": "bob@example.com", "JobTitle": "X"}],
        search_by="EmailAddress",
        expect=[{"JobTitle": "CEO"}, {"JobTitle": "CFO"}],
    )
    assert [item.changed_fields for item in result.successful] == [["JobTitle"]]
    assert [(item.index, item.reason_code) for item in result.failed] == [(1, "PRECONDITION_FAILED")]


def test_a_call_named_by_its_request_id_is_reverted(client: Client) -> None:
    lead = client.create_lead({"EmailAddress": "ann@example.com", "JobTitle": "CEO"})
    result = client.bulk_update(
        [{"EmailAddress": "ann@example.com", "JobTitle": "CTO"}], search_by="EmailAddress", request_id="run-1-call-1"
    )
    assert result.request_id == "run-1-call-1"
    undone = client.revert("run-1-call-1", own_request_id="undo-1")
    assert [(item.identifier_value, item.reverted, item.kept) for item in undone.successful] == [
        (lead, ["JobTitle"], [])
    ]
    assert client.get_lead_by_id(lead)["JobTitle"] == "CEO"  # type: ignore[index]
    assert [c.request_id for c in client.get_change_history(lead)][:1] == ["undo-1"]
