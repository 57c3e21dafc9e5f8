"""Reliability tests send many calls in a short time: lift the rate limit (others test it)."""

import pytest

from leadstore.catalog import save_setting
from leadstore.db import Database


@pytest.fixture(autouse=True)
def _no_rate_limit(db: Database) -> None:
    with db.write() as conn:
        save_setting(conn, "rate_limit_calls", "1000000")
