"""Property-based fuzzing of every operation in /openapi.json (schemathesis): generated bodies and
parameters, valid and invalid, never get a server error or an answer that breaks the schema.

Bounded to a few dozen examples per operation so the run takes about a minute on both databases;
keys go in the query string, as LeadSquared clients send them.
"""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, response_schema_conformance

from leadstore.app import create_app
from leadstore.config import Settings
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer

EXAMPLES = 50
# LeadSquared answers a bad field on a single-lead endpoint with HTTP 500 and one of these types
# (spec section 1); any other 500 is a failure of the server.
DOCUMENTED_500 = {
    "MXDuplicateEntryException",
    "MXInvalidEntityException",
    "MXUnknownAttributeException",
    "MXMandatoryAttributeMissingException",
    "MXInvalidInputException",
    "MXAccessDeniedException",
}


def no_server_failure(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """No 5xx except the documented single-lead validation errors, and every 4xx/5xx in the envelope."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert body["Status"] == "Error", body
    assert body["ExceptionType"].startswith("MX"), body
    assert body["ExceptionMessage"], body
    if response.status_code >= 500:
        assert response.status_code == 500, body
        assert body["ExceptionType"] in DOCUMENTED_500, body
    return None


# The document the server publishes at /openapi.json; building the app connects to nothing.
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="sqlite://", _env_file=None)).openapi())  # type: ignore[call-arg]


@pytest.fixture
def served(server: LiveServer, api: Api) -> LiveServer:
    """The live server with a lead to find, and the document it serves equal to the one fuzzed."""
    api.create_lead(EmailAddress="fuzz@example.com", FirstName="Fuzz", Phone="+91-1234554321")
    assert api.http.get("/openapi.json").json() == schema.raw_schema
    return server


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_schema_violation(
    case: schemathesis.Case, served: LiveServer, admin: Credentials
) -> None:
    case.query = {**(case.query or {}), "accessKey": admin.access_key, "secretKey": admin.secret_key}
    case.call_and_validate(
        base_url=served.base_url,
        checks=[no_server_failure, response_schema_conformance, content_type_conformance],
    )
