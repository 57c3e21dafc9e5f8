"""LeadSquared's User Management reads (spec 12): ``User/Retrieve/ByUserId``,
``User/Retrieve/ByEmailAddress`` and ``Users.Get``. A caller sees itself and the users it shares
a sales group with; an Administrator sees every user. No answer ever carries a key."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from leadstore.auth.dependencies import CurrentPrincipal, query_param
from leadstore.leads.routes import json_response
from leadstore.state import app_state
from leadstore.users import service

router = APIRouter(prefix="/v2/UserManagement.svc", tags=["User Management"])


@router.get("/User/Retrieve/ByUserId")
async def user_by_id(request: Request, principal: CurrentPrincipal) -> Response:
    """The active user with id `userId`, as an array of 0 or 1 user."""
    db, user_id = app_state(request).db, query_param(request, "userId")
    return json_response(await run_in_threadpool(service.visible_user, db, principal, user_id=user_id))


@router.get("/User/Retrieve/ByEmailAddress")
async def user_by_email(request: Request, principal: CurrentPrincipal) -> Response:
    """The active user with email address `emailAddress`, as an array of 0 or 1 user."""
    db, email = app_state(request).db, query_param(request, "emailAddress")
    return json_response(await run_in_threadpool(service.visible_user, db, principal, email=email))


@router.get("/Users.Get")
async def users(request: Request, principal: CurrentPrincipal) -> Response:
    """The users the caller may see, active (`StatusCode` 0) and inactive (1)."""
    return json_response(await run_in_threadpool(service.visible_users, app_state(request).db, principal))
