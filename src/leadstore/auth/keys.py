"""Access keys and secret keys: random, shown once, stored as a SHA-256 hash."""

import hashlib
import hmac
import secrets


def new_access_key() -> str:
    return "ak" + secrets.token_hex(18)


def new_secret_key() -> str:
    return secrets.token_hex(24)


def hash_secret(secret: str) -> str:
    # The secret has 192 random bits, so a fast hash resists guessing as well as a slow one would.
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
