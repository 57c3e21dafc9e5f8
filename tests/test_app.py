"""Conventions every endpoint follows (spec section 1): where keys go, the error envelope, body
rules, request ids, and the API docs."""

import httpx
import pytest

from leadstore.app import create_app
from leadstore.config import Settings
from leadstore.leads.outcomes import ReasonCode
from leadstore.users.service import Credentials
from tests.helpers import LM, Api, LiveServer

WHO_AM_I = "/v2/Authentication.svc/UserByAccessKey.Get"


def assert_error(response: httpx.Response, status: int, exception_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"Status", "ExceptionType", "ExceptionMessage"}, body
    assert body["Status"] == "Error"
    assert body["ExceptionType"] == exception_type
    assert body["ExceptionMessage"]
    return str(body["ExceptionMessage"])


@pytest.fixture
def http(server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


class TestAuthentication:
    def test_keys_in_query_parameters_are_accepted(self, http: httpx.Client, admin: Credentials) -> None:
        response = http.get(WHO_AM_I, params={"accessKey": admin.access_key, "secretKey": admin.secret_key})
        assert response.status_code == 200
        assert response.json()["EmailAddress"] == admin.email

    @pytest.mark.parametrize(("access", "secret"), [("accesskey", "secretkey"), ("ACCESSKEY", "SecretKey")])
    def test_query_parameter_names_match_case_insensitively(
        self, http: httpx.Client, admin: Credentials, access: str, secret: str
    ) -> None:
        response = http.get(WHO_AM_I, params={access: admin.access_key, secret: admin.secret_key})
        assert response.status_code == 200, response.text
        assert response.json()["Id"] == admin.user_id

    def test_keys_in_headers_are_accepted(self, http: httpx.Client, admin: Credentials) -> None:
        headers = {"x-LSQ-AccessKey": admin.access_key, "x-LSQ-SecretKey": admin.secret_key}
        response = http.get(WHO_AM_I, headers=headers)
        assert response.status_code == 200
        assert response.json()["Id"] == admin.user_id

    def test_missing_keys_get_401_envelope(self, http: httpx.Client) -> None:
        message = assert_error(
            http.get(LM + "/Leads.GetById", params={"id": "x"}), 401, "MXUnAuthorizedAccessException"
        )
        assert "accessKey" in message

    def test_only_an_access_key_gets_401(self, http: httpx.Client, admin: Credentials) -> None:
        response = http.get(WHO_AM_I, params={"accessKey": admin.access_key})
        assert_error(response, 401, "MXUnAuthorizedAccessException")

    def test_wrong_secret_key_gets_401(self, http: httpx.Client, admin: Credentials) -> None:
        response = http.get(WHO_AM_I, params={"accessKey": admin.access_key, "secretKey": admin.secret_key[:-1] + "x"})
        assert_error(response, 401, "MXUnAuthorizedAccessException")

    def test_unknown_access_key_gets_401(self, http: httpx.Client, admin: Credentials) -> None:
        response = http.get(WHO_AM_I, params={"accessKey": "ak-nobody", "secretKey": admin.secret_key})
        assert_error(response, 401, "MXUnAuthorizedAccessException")

    def test_a_write_with_bad_keys_writes_nothing(self, http: httpx.Client, api: Api) -> None:
        body = [{"Attribute": "EmailAddress", "Value": "sneaky@example.com"}]
        response = http.post(LM + "/Lead.Create", params={"accessKey": "ak-nobody", "secretKey": "x"}, json=body)
        assert_error(response, 401, "MXUnAuthorizedAccessException")
        assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "sneaky@example.com"}).json() == []

    def test_unknown_query_parameters_are_ignored(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="a@example.com")
        response = api.get("/Leads.GetById", params={"id": prospect_id, "postUpdatedLead": "true", "stale": "1"})
        assert response.status_code == 200
        assert [lead["ProspectID"] for lead in response.json()] == [prospect_id]


class TestUnknownPaths:
    @pytest.mark.parametrize("path", ["/v2/LeadManagement.svc/Lead.Nope", "/v2/Nothing.svc/Here", "/favicon.ico"])
    def test_unknown_path_gets_json_404(self, api: Api, path: str) -> None:
        assert_error(api.get(path), 404, "MXAPINotFoundException")

    def test_root_gets_json_404(self, http: httpx.Client) -> None:
        assert_error(http.get("/"), 404, "MXAPINotFoundException")

    def test_unknown_path_without_keys_gets_json_404(self, http: httpx.Client) -> None:
        assert_error(http.post("/v2/LeadManagement.svc/NoSuchThing", json=[]), 404, "MXAPINotFoundException")

    def test_wrong_method_gets_json_error(self, api: Api) -> None:
        response = api.get("/Lead.Create")
        assert response.status_code in (404, 405)
        assert response.json()["Status"] == "Error"


class TestBodies:
    def test_body_over_one_mib_gets_413(self, api: Api) -> None:
        body = b'[{"Attribute": "Notes", "Value": "' + b"x" * (1024 * 1024) + b'"}]'
        response = api.post("/Lead.Create", content=body, headers={"content-type": "application/json"})
        assert_error(response, 413, "MXRequestEntityTooLargeException")

    def test_chunked_body_over_one_mib_gets_413(self, api: Api) -> None:
        def chunks():  # no Content-Length: the limit must hold while reading
            yield b'[{"Attribute": "Notes", "Value": "'
            for _ in range(17):
                yield b"x" * 65536
            yield b'"}]'

        response = api.post("/Lead.Create", content=chunks(), headers={"content-type": "application/json"})
        assert_error(response, 413, "MXRequestEntityTooLargeException")

    def test_body_just_under_one_mib_is_read(self, api: Api) -> None:
        # 1 MiB exactly is allowed; the lead itself is refused for its field, not for its size.
        prefix, suffix = b'[{"Attribute": "Notes", "Value": "', b'"}]'
        body = prefix + b"x" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
        response = api.post("/Lead.Create", content=body, headers={"content-type": "application/json"})
        assert_error(response, 500, "MXInvalidInputException")

    @pytest.mark.parametrize("body", [b"not json", b"", b'[{"Attribute": "FirstName", "Value": "A"}', b"\xff\xfe"])
    def test_body_that_is_not_json_gets_400(self, api: Api, body: bytes) -> None:
        response = api.post("/Lead.Create", content=body, headers={"content-type": "application/json"})
        assert_error(response, 400, "MXInvalidInputException")

    @pytest.mark.parametrize(
        "body",
        [{"Attribute": "FirstName", "Value": "A"}, [["FirstName", "A"]], [{"Attribute": "FirstName"}], "text", 7],
    )
    def test_json_of_the_wrong_shape_gets_400(self, api: Api, body: object) -> None:
        assert_error(api.post("/Lead.Create", json=body), 400, "MXInvalidInputException")

    def test_json_body_is_accepted_whatever_the_content_type(self, api: Api) -> None:
        body = b'[{"Attribute": "EmailAddress", "Value": "plain@example.com"}]'
        response = api.post("/Lead.Create", content=body, headers={"content-type": "text/plain"})
        assert response.status_code == 200, response.text
        found = api.get("/Leads.GetByEmailaddress", params={"emailaddress": "plain@example.com"}).json()
        assert [lead["ProspectID"] for lead in found] == [response.json()["Message"]["Id"]]

    def test_get_with_a_null_body_is_answered(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="null-body@example.com")
        response = api.request(
            "GET",
            "/Leads.GetById",
            params={"id": prospect_id},
            content=b"null",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        assert response.json()[0]["ProspectID"] == prospect_id


class TestRequestId:
    def test_every_answer_carries_a_request_id(self, api: Api, http: httpx.Client) -> None:
        answers = [
            api.get(WHO_AM_I),
            http.get(WHO_AM_I),
            api.get("/v2/Nowhere.svc/x"),
            api.post("/Lead.Create", content=b"{"),
            api.post("/Lead.Create", content=b"x" * (1024 * 1024 + 1)),
        ]
        ids = [a.headers.get("x-request-id") for a in answers]
        assert all(ids), [(a.status_code, a.headers) for a in answers]
        assert len(set(ids)) == len(ids)

    def test_given_request_id_is_echoed(self, api: Api, http: httpx.Client) -> None:
        assert api.get(WHO_AM_I, headers={"X-Request-Id": "trace-42"}).headers["x-request-id"] == "trace-42"
        assert http.get("/v2/Nowhere.svc/x", headers={"X-Request-Id": "t-43"}).headers["x-request-id"] == "t-43"

    def test_request_id_names_the_change_it_made(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="rid@example.com")
        body = [{"Attribute": "FirstName", "Value": "Rid"}]
        api.post("/Lead.Update", params={"leadId": prospect_id}, json=body, headers={"X-Request-Id": "change-1"})
        history = api.get("/Lead.ChangeHistory", params={"leadId": prospect_id}).json()
        assert {"Field": "FirstName", "NewValue": "Rid", "RequestId": "change-1"}.items() <= history[0].items()


class TestDocs:
    def test_openapi_lists_the_lead_management_paths(self, http: httpx.Client) -> None:
        response = http.get("/openapi.json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        for operation in (
            "Lead.Create",
            "Lead.Update",
            "Lead.CreateOrUpdate",
            "Leads.GetById",
            "Leads.GetByEmailaddress",
            "RetrieveLeadByPhoneNumber",
            "Leads.GetByQuickSearch",
            "Leads.Get",
            "LeadsMetaData.Get",
            "Lead/Bulk/UpdateV2",
        ):
            assert f"{LM}/{operation}" in paths
        assert WHO_AM_I in paths

    def test_docs_page_is_served(self, http: httpx.Client) -> None:
        response = http.get("/docs")
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]
        assert "/openapi.json" in response.text


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        return {node["$ref"]} if "$ref" in node else set().union(*(_refs(v) for v in node.values()), set())
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node), set())
    return set()


def test_every_reference_of_the_api_document_resolves_and_the_bulk_answers_have_schemas(settings: Settings) -> None:
    document = create_app(settings).openapi()
    schemas = document["components"]["schemas"]
    assert {ref for ref in _refs(document) if ref.removeprefix("#/components/schemas/") not in schemas} == set()
    for path in ("/Lead/Bulk/UpdateV2", "/Lead/Bulk/Revert"):
        answers = document["paths"][f"/v2/LeadManagement.svc{path}"]["post"]["responses"]
        assert answers["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/BulkAnswer"}
        assert {"400", "401", "429"} <= set(answers)
    assert set(schemas["ReasonCode"]["enum"]) == {code.value for code in ReasonCode}
    assert "Expect" in schemas["BulkLead"]["properties"]
