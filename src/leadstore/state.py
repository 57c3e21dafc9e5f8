"""What one worker process holds while it serves: built by the app's lifespan, read by routes."""

from dataclasses import dataclass

from fastapi import Request

from leadstore.auth.service import Authenticator
from leadstore.catalog import Catalog
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.ratelimit import RateLimiter


@dataclass
class AppState:
    settings: Settings
    db: Database
    catalog: Catalog
    authenticator: Authenticator
    limiter: RateLimiter


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.leadstore
    return state
