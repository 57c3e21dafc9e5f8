"""The application for ASGI servers: ``uvicorn leadstore.asgi:app``."""

from leadstore.app import create_app
from leadstore.config import get_settings

app = create_app(get_settings())
