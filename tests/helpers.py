"""Test helpers: a live server in a thread, an HTTP client that signs calls with a user's
keys, and small factories with keyword overrides."""

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from leadstore.app import create_app
from leadstore.catalog import Catalog
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.fields import service as field_service
from leadstore.users import service as user_service
from leadstore.users.service import Credentials

LM = "/v2/LeadManagement.svc"


class LiveServer:
    """The service under a real uvicorn server, on a free loopback port, in a thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
        self.server, self.thread, self.port = server, thread, port
        self.base_url = f"http://127.0.0.1:{port}"

    @classmethod
    @contextmanager
    def start(cls, settings: Settings, **uvicorn_options: Any) -> Iterator["LiveServer"]:
        """``uvicorn_options`` go to ``uvicorn.Config`` (e.g. ``ssl_certfile`` for HTTPS)."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings), log_config=None, access_log=False, lifespan="on", **uvicorn_options
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        try:
            yield cls(server, thread, port)
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()


class Api:
    """An httpx client for the live server that puts a user's keys in the query string."""

    def __init__(self, base_url: str, user: Credentials) -> None:
        self.user = user
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, as_: Credentials | None = None, **kwargs: Any) -> httpx.Response:
        user = as_ or self.user
        params = {"accessKey": user.access_key, "secretKey": user.secret_key, **kwargs.pop("params", {})}
        url = path if path.startswith("/v2/") else LM + path
        return self.http.request(method, url, params=params, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def create_lead(self, *, as_: Credentials | None = None, **fields: str) -> str:
        """Create a lead through Lead.Create; returns its ProspectId."""
        body = [{"Attribute": k, "Value": v} for k, v in fields.items()]
        response = self.post("/Lead.Create", json=body, as_=as_)
        assert response.status_code == 200, response.text
        return str(response.json()["Message"]["Id"])

    def lead(self, prospect_id: str, *, as_: Credentials | None = None) -> dict[str, Any]:
        response = self.get("/Leads.GetById", params={"id": prospect_id}, as_=as_)
        assert response.status_code == 200, response.text
        leads = response.json()
        assert len(leads) == 1, leads
        return dict(leads[0])

    def bulk(
        self,
        leads: list[dict[str, str]],
        *,
        search_by: str | None = "EmailAddress",
        options: dict[str, Any] | None = None,
        as_: Credentials | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Update Leads in Bulk v2 with each lead given as {schema name: value}."""
        body: dict[str, Any] = {
            "LeadPropertiesList": [
                {"Fields": [{"Attribute": k, "Value": v} for k, v in lead.items()]} for lead in leads
            ]
        }
        if search_by is not None:
            body["SearchByKey"] = search_by
        if options is not None:
            body["Options"] = options
        return self.post("/Lead/Bulk/UpdateV2", json=body, as_=as_, headers=headers)


def make_user(
    db: Database,
    role: str = "SalesUser",
    *,
    email: str | None = None,
    groups: list[str] | None = None,
    template: str | None = None,
) -> Credentials:
    with db.write() as conn:
        return user_service.add_user(
            conn,
            email or f"user-{uuid.uuid4().hex[:8]}@example.com",
            role,
            "Test",
            role,
            groups or [],
            template,
        )


def add_field(db: Database, schema_name: str, data_type: str = "Text", **options: Any) -> None:
    catalog = Catalog(db)
    catalog.refresh()
    with db.write() as conn:
        field_service.add(conn, catalog.fields, schema_name, data_type, **options)


def wait_until(condition: Any, timeout: float = 3.0) -> None:
    """Poll ``condition`` until it is true (changes reach a running server within a second)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def add_live_field(api: Api, db: Database, schema_name: str, data_type: str = "Text", **options: Any) -> None:
    """Add a field and wait until the running server knows it (it polls for changes)."""
    add_field(db, schema_name, data_type, **options)
    wait_until(lambda: api.get("/LeadsMetaData.Get", params={"schemaName": schema_name}).json() != [])
