"""A typed client for LeadSquared's Lead Management API, against leadstore or LeadSquared::

    from leadstore.client import Client

    with Client("http://127.0.0.1:8080", access_key, secret_key) as lsq:
        result = lsq.bulk_update([{"EmailAddress": "ravi.berg.7@example.com", "JobTitle": "CTO"}],
                                 search_by="EmailAddress")
        print(result.status.success_count)

Errors are ``LeadstoreAPIError`` subclasses; see ``leadstore.client._exceptions`` for the tree.
"""

from leadstore.client._client import AsyncClient, Client
from leadstore.client._exceptions import (
    InvalidInput,
    LeadstoreAPIError,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnreachable,
    Unauthorized,
)
from leadstore.client._models import (
    BulkItem,
    BulkResult,
    BulkStatus,
    Change,
    FieldMetadata,
    KeptField,
    Lead,
    Outcome,
    RateLimit,
    User,
)

__all__ = [
    "AsyncClient",
    "BulkItem",
    "BulkResult",
    "BulkStatus",
    "Change",
    "Client",
    "FieldMetadata",
    "InvalidInput",
    "KeptField",
    "Lead",
    "LeadstoreAPIError",
    "NotFound",
    "Outcome",
    "RateLimit",
    "RateLimited",
    "ServerError",
    "ServiceUnreachable",
    "Unauthorized",
    "User",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("leadstore.client._"):
        _obj.__module__ = __name__
del _name, _obj
