"""From an access key and a secret key to a ``Principal``.

Principals are cached per worker and dropped whenever the catalog revision moves (every user,
group or template change bumps it), so a deactivated or rotated key stops working within a
second on every worker, and a call costs no database round trip for authentication.
"""

from dataclasses import dataclass

from leadstore.auth import keys
from leadstore.auth.principal import Principal
from leadstore.catalog import Catalog
from leadstore.errors import Unauthorized
from leadstore.users import repository as user_repo
from leadstore.users import service as user_service

_CACHE_LIMIT = 10_000
# One answer for an unknown access key and a wrong secret, so neither can be probed.
_INVALID_KEYS = "Invalid access key or secret key. Check your AccessKey and SecretKey"


@dataclass(frozen=True)
class _Entry:
    revision: int
    secret_hash: str
    principal: Principal


class Authenticator:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._cache: dict[str, _Entry] = {}

    def cached(self, access_key: str | None) -> bool:
        """Whether ``authenticate`` can answer without the database (then no thread is needed)."""
        entry = self._cache.get(access_key or "")
        return entry is not None and entry.revision == self.catalog.revision

    def authenticate(self, access_key: str | None, secret_key: str | None) -> Principal:
        if not access_key or not secret_key:
            raise Unauthorized(
                "Missing access key or secret key: pass accessKey and secretKey as query parameters, "
                "or the x-LSQ-AccessKey and x-LSQ-SecretKey headers"
            )
        if not keys.looks_like_access_key(access_key):
            raise Unauthorized(_INVALID_KEYS)
        entry = self._cache.get(access_key)
        if entry is None or entry.revision != self.catalog.revision:
            entry = self._load(access_key)
        if entry is None or not keys.secret_matches(secret_key, entry.secret_hash):
            raise Unauthorized(_INVALID_KEYS)
        return entry.principal

    def _load(self, access_key: str) -> _Entry | None:
        revision = self.catalog.revision
        with self.catalog.db.read() as conn:
            user = user_repo.get_by_access_key(conn, access_key)
            if user is None or not user["is_active"]:
                self._cache.pop(access_key, None)
                return None
            principal = user_service.load_principal(conn, dict(user))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        entry = _Entry(revision, str(user["secret_hash"]), principal)
        self._cache[access_key] = entry
        return entry
