"""The exceptions the client raises. Every one is a ``LeadstoreAPIError``::

    LeadstoreAPIError          any failed call; .exception_type, .message, .status_code, .request_id
    ├── RateLimited            429: too many calls; wait .retry_after seconds and call again
    ├── Unauthorized           401: keys missing, wrong, rotated, or the user is deactivated
    ├── NotFound               404 (no such API) or MXInvalidEntityException (no such lead, or not yours)
    ├── InvalidInput           400/409/413, and the 500s LeadSquared uses for validation errors
    │                          (MXDuplicateEntryException, MXUnknownAttributeException, ...)
    ├── ServerError            any other 5xx, or an answer that is not LeadSquared's JSON
    └── ServiceUnreachable     no answer at all: connection refused or reset, timeout, DNS

``exception_type`` is LeadSquared's ``ExceptionType`` (``MX...Exception``) when the service sent
one. Nothing here ever holds the secret key: the client sends it in a header, and scrubs it
from any message the service echoes back.
"""

from typing import Any


class LeadstoreAPIError(Exception):
    def __init__(
        self,
        message: str,
        *,
        exception_type: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type
        self.status_code = status_code
        self.request_id = request_id

    def __str__(self) -> str:
        where = [f"HTTP {self.status_code}"] if self.status_code is not None else []
        if self.request_id:
            where.append(f"request id {self.request_id}")
        prefix = f"{self.exception_type}: " if self.exception_type else ""
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{prefix}{self.message}{suffix}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, exception_type={self.exception_type!r}, " + (
            f"status_code={self.status_code!r}, request_id={self.request_id!r})"
        )


class RateLimited(LeadstoreAPIError):
    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unauthorized(LeadstoreAPIError):
    pass


class NotFound(LeadstoreAPIError):
    pass


class InvalidInput(LeadstoreAPIError):
    pass


class ServerError(LeadstoreAPIError):
    pass


class ServiceUnreachable(LeadstoreAPIError):
    pass
