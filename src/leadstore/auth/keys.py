"""Access keys and secret keys: random, shown once, stored as a SHA-256 hash."""

import hashlib
import hmac
import re
import secrets

_ACCESS_KEY = re.compile(r"^ak[0-9a-f]{36}$")


def new_access_key() -> str:
    return "ak" + secrets.token_hex(18)


def looks_like_access_key(value: str) -> bool:
    """Whether ``value`` has the form of an access key. Anything else (a secret key sent in the
    access key's place, say) is refused before it reaches a query, and so any SQL log."""
    return bool(_ACCESS_KEY.match(value))


def new_secret_key() -> str:
    return secrets.token_hex(24)


def hash_secret(secret: str) -> str:
    # The secret has 192 random bits, so a fast hash resists guessing as well as a slow one would.
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
