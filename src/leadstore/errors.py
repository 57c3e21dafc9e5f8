"""The errors leadstore answers with, and the one place that renders them in LeadSquared's
envelope: ``{"Status": "Error", "ExceptionType": ..., "ExceptionMessage": ...}``.

Status codes follow LeadSquared, not REST taste: its clients expect validation errors of the
single-lead endpoints as 500s with an ``MX...Exception`` type.
"""

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

ECHO_LIMIT = 60


def cut(value: object, limit: int = ECHO_LIMIT) -> str:
    """Caller input as an error message echoes it: at most ``limit`` characters, so that a huge
    value is never sent back whole."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """``cut`` in quotes, for a value whose spaces or emptiness matter."""
    return repr(cut(value, limit))


class LeadstoreError(Exception):
    status_code = 500
    exception_type = "MXException"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class InvalidRequest(LeadstoreError):
    """The body or the query is not as the API specifies."""

    status_code = 400
    exception_type = "MXInvalidInputException"


class Unauthorized(LeadstoreError):
    status_code = 401
    exception_type = "MXUnAuthorizedAccessException"


class UnknownApi(LeadstoreError):
    status_code = 404
    exception_type = "MXAPINotFoundException"


class RequestTimeout(LeadstoreError):
    status_code = 408
    exception_type = "MXRequestTimeoutException"


class IdempotencyConflict(LeadstoreError):
    status_code = 409
    exception_type = "MXIdempotencyKeyReusedException"


class PayloadTooLarge(LeadstoreError):
    status_code = 413
    exception_type = "MXRequestEntityTooLargeException"


class RateLimited(LeadstoreError):
    status_code = 429
    exception_type = "MXAPIRateLimitExceededException"


class ServiceUnavailable(LeadstoreError):
    status_code = 503
    exception_type = "MXServiceUnavailableException"


class DuplicateEntry(LeadstoreError):
    exception_type = "MXDuplicateEntryException"


class LeadNotFound(LeadstoreError):
    exception_type = "MXInvalidEntityException"


class UnknownAttribute(LeadstoreError):
    exception_type = "MXUnknownAttributeException"


class MandatoryAttributeMissing(LeadstoreError):
    exception_type = "MXMandatoryAttributeMissingException"


class InvalidFieldValue(LeadstoreError):
    """A field value breaks a rule on a single-lead endpoint (LeadSquared answers 500)."""

    exception_type = "MXInvalidInputException"


class NotPermitted(LeadstoreError):
    exception_type = "MXAccessDeniedException"


def envelope(exception_type: str, message: str, **extra: Any) -> bytes:
    return orjson.dumps({"Status": "Error", "ExceptionType": exception_type, "ExceptionMessage": message, **extra})


def error_response(exc: LeadstoreError) -> Response:
    return Response(
        envelope(exc.exception_type, exc.message, **exc.extra),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LeadstoreError)
    async def _leadstore_error(request: Request, exc: LeadstoreError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{cut('.'.join(str(p) for p in err['loc']))}: {cut(err['msg'], 200)}" for err in exc.errors()[:5]
        )
        return error_response(InvalidRequest(f"The request is not as the API specifies: {problems}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(
                UnknownApi(
                    f"No API at {cut(request.url.path, 200)}. Check the path, e.g. /v2/LeadManagement.svc/Lead.Create"
                )
            )
        if exc.status_code == 405:
            return error_response(
                UnknownApi(
                    f"{cut(request.method)} is not supported at {cut(request.url.path, 200)}; check the API signature"
                )
            )
        return error_response(LeadstoreError(str(exc.detail)))


def unexpected_error(exc: BaseException, request_id: str) -> LeadstoreError:
    """What a caller is told about a failure it did not cause: nothing internal."""
    if isinstance(exc, OperationalError):
        return ServiceUnavailable(f"The database is unavailable; retry shortly. Request id: {request_id}")
    return LeadstoreError(f"The server failed to process the call. Request id: {request_id}")


class AdminInputError(LeadstoreError):
    """An administrative command's input breaks a rule (the command line prints the message)."""

    status_code = 400
