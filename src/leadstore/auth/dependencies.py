"""The FastAPI side of authentication: where LeadSquared clients put their keys, and the rate
limit that every authenticated call counts against."""

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from leadstore.auth.principal import Principal
from leadstore.errors import RateLimited
from leadstore.state import app_state


def query_param(request: Request, name: str) -> str | None:
    """A query parameter by case-insensitive name (clients send accesskey, leadId, ...)."""
    wanted = name.lower()
    for key, value in request.query_params.multi_items():
        if key.lower() == wanted:
            return value
    return None


async def current_principal(request: Request) -> Principal:
    state = app_state(request)
    access_key = query_param(request, "accessKey") or request.headers.get("x-lsq-accesskey")
    secret_key = query_param(request, "secretKey") or request.headers.get("x-lsq-secretkey")
    authenticator = state.authenticator
    if authenticator.cached(access_key):
        principal = authenticator.authenticate(access_key, secret_key)
    else:
        principal = await run_in_threadpool(authenticator.authenticate, access_key, secret_key)
    account = state.catalog.account
    decision = await state.limiter.hit(str(access_key), account.rate_limit_calls, account.rate_limit_window_seconds)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(
            f"API calls exceeded the limit of {account.rate_limit_calls} in "
            f"{account.rate_limit_window_seconds} second(s)",
            headers=decision.headers(),
            RetryAfterSeconds=decision.retry_after,
        )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
