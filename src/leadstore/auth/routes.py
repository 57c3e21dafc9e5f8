"""LeadSquared's Authentication service: who owns the keys of a call."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadstore.auth.dependencies import CurrentPrincipal
from leadstore.leads.routes import json_response
from leadstore.state import app_state

router = APIRouter(prefix="/v2/Authentication.svc", tags=["Authentication"])

ORG_ID = "1"


@router.get("/UserByAccessKey.Get")
async def user_by_access_key(request: Request, principal: CurrentPrincipal) -> Response:
    """The user the keys belong to. `PassPhrase` is never the secret key."""
    state = app_state(request)
    host = request.headers.get("host") or f"{state.settings.host}:{state.settings.port}"
    return json_response(
        {
            "Id": principal.user_id,
            "Name": principal.name,
            "EmailAddress": principal.email,
            "Role": principal.role.value,
            "PassPhrase": "",
            "OrgId": ORG_ID,
            "DefaultCountryCode": state.catalog.account.default_country_code,
            "LSQCommonServiceURLs": {"api": host, "app": host},
        }
    )
