"""Around every request: a request id, the body-size limit, a deadline for reading the body,
rate-limit headers, a last-resort error envelope, and the access log.

A client that hangs up before its answer is not an error: its access line says so, with status
499 (nginx's "client closed request"); what the call wrote is what the database committed, whole
or not at all, since a write is never stopped half-way.

The access log records the path without the query string: LeadSquared clients send the secret
key there, and a secret must never reach a log line.
"""

import asyncio
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadstore.errors import LeadstoreError, PayloadTooLarge, RequestTimeout, envelope, unexpected_error
from leadstore.ops.logs import request_id_var

MAX_BODY_BYTES = 1024 * 1024
BODY_TIMEOUT_SECONDS = 30.0
# A body we stop reading leaves the connection mid-request: close it rather than drain the rest.
_CLOSE = {"Connection": "close"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CLIENT_CLOSED_REQUEST = 499

access_log = logging.getLogger("leadstore.access")
error_log = logging.getLogger("leadstore.errors")


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {MAX_BODY_BYTES} bytes (1 MiB); send fewer leads per call",
        headers=_CLOSE,
    )


def _too_slow(seconds: float) -> RequestTimeout:
    return RequestTimeout(
        f"The request body did not arrive within {seconds:g} seconds; send the whole body at once, "
        "with a Content-Length that matches it",
        headers=_CLOSE,
    )


def redact_query(query: bytes) -> bytes:
    """The query string with the value of every ``secretKey`` parameter (any letter case) hidden."""
    if b"secret" not in query.lower():
        return query
    parts = query.split(b"&")
    for i, part in enumerate(parts):
        name, sep, _ = part.partition(b"=")
        if sep and unquote_to_bytes(name.replace(b"+", b" ")).strip().lower() == b"secretkey":
            parts[i] = name + b"=[REDACTED]"
    return b"&".join(parts)


class RequestContext:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, body_timeout: float = BODY_TIMEOUT_SECONDS
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        client_gone = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                # The route the application matched, for the metrics outside (the application
                # works on its own copy of the scope, below).
                if "route" in app_scope:
                    scope["route"] = app_scope["route"]
                response_started = True
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                decision = state.get("rate_limit")
                if decision is not None:
                    extra += [
                        (k.lower().encode(), v.encode())
                        for k, v in decision.headers().items()
                        if k != "Retry-After" or status == 429
                    ]
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in present]
            await send(message)

        # The application reads the keys from its own copy of the scope; the server's copy, which
        # its access log prints (uvicorn's does, when run as `uvicorn leadstore.asgi:app`), loses
        # the secret key.
        app_scope = dict(scope)
        scope["query_string"] = redact_query(scope.get("query_string", b""))
        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await self._answer(send_with_headers, _too_large())
                return
            await self.app(app_scope, self._limited(receive), send_with_headers)
        except ClientDisconnect:
            client_gone = True
            if not response_started:
                # The server drops it (the connection is closed); the metrics outside count it.
                await send_with_headers({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST})
                await send_with_headers({"type": "http.response.body", "body": b""})
        except Exception as exc:
            if isinstance(exc, OperationalError):
                # The database is unreachable: one line per call, not a traceback each.
                error_log.warning("database unavailable: %s", type(exc.orig).__name__, extra={"request_id": request_id})
            elif not isinstance(exc, LeadstoreError):
                error_log.exception("unexpected error", extra={"request_id": request_id})
            if not response_started:
                known = exc if isinstance(exc, LeadstoreError) else unexpected_error(exc, request_id)
                await self._answer(send_with_headers, known)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            access_log.info(
                "%s %s %s %.1fms: the client went away before the answer" if client_gone else "%s %s %s %.1fms",
                scope["method"],
                scope["path"],
                status,
                duration_ms,
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )

    def _limited(self, receive: Receive) -> Receive:
        """A ``receive`` that stops a body at the size limit, without reading the rest of it, and
        at a deadline, so a client that trickles its body (or promises more than it sends)
        cannot hold a connection forever."""
        seen = 0
        deadline: float | None = None
        complete = False

        async def limited() -> Message:
            nonlocal seen, deadline, complete
            if complete:  # after the body, receive() only waits for a disconnect: no deadline
                return await receive()
            if deadline is None:  # the clock starts when the app first asks for the body
                deadline = asyncio.get_running_loop().time() + self.body_timeout
            try:
                # asyncio.timeout, not wait_for: wait_for wraps every receive() in a task of its own.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _too_slow(self.body_timeout) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _too_large()
                complete = not message.get("more_body", False)
            return message

        return limited

    @staticmethod
    async def _answer(send: Send, exc: LeadstoreError) -> None:
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        body = envelope(exc.exception_type, exc.message, **exc.extra)
        await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
