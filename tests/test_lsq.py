"""A third-party LeadSquared client, ``lsq`` from PyPI, used as its README-less module intends,
against a live leadstore.

lsq hard-codes ``https://api.leadsquared.com`` for its first call (UserByAccessKey.Get) and then
calls ``https://`` + the host that answer names in ``LSQCommonServiceURLs.api``. So, as a
customer would who points the client at leadstore by host name, the test serves leadstore over
HTTPS (uvicorn with a certificate for api.leadsquared.com from a test CA) and sends the client's
traffic there through an ordinary HTTPS proxy (``HTTPS_PROXY``) that connects every tunnel to
the test server, while ``REQUESTS_CA_BUNDLE`` makes the client trust the test CA. Nothing in the
client is patched.
"""

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import lsq
import pytest
import trustme
from lsq.leadapi import CreateLead, RetriveLead, UpdateLead

from leadstore.config import Settings
from leadstore.users.service import Credentials
from tests.helpers import LiveServer

LSQ_HOST = "api.leadsquared.com"


class TunnelProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy that sends every tunnel to one local port, whatever host is asked."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.asked: list[str] = []
        super().__init__(("127.0.0.1", 0), _Tunnel)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Tunnel(socketserver.BaseRequestHandler):
    server: TunnelProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        self.server.asked.append(target)
        with socket.create_connection(("127.0.0.1", self.server.target_port)) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True)
            back.start()
            _pipe(self.request, upstream)
            back.join(10)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TunnelProxy]:
    ca = trustme.CA()
    server_pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert(LSQ_HOST).private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    with LiveServer.start(settings, ssl_certfile=str(server_pem)) as server:
        tunnel = TunnelProxy(server.port)
        threading.Thread(target=tunnel.serve_forever, daemon=True).start()
        for name in ("HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, tunnel.url)
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_pem))
        try:
            yield tunnel
        finally:
            tunnel.shutdown()
            tunnel.server_close()


@pytest.fixture
def lsq_keys(admin: Credentials, monkeypatch: pytest.MonkeyPatch) -> Credentials:
    """lsq reads the keys from its module, where its users put them."""
    monkeypatch.setattr(lsq, "accessKey", admin.access_key)
    monkeypatch.setattr(lsq, "secretKey", admin.secret_key)
    return admin


def test_lsq_creates_reads_and_updates_a_lead(proxy: TunnelProxy, lsq_keys: Credentials) -> None:
    created = CreateLead().create(
        [
            {"Attribute": "EmailAddress", "Value": "Lsq.Client@Example.com"},
            {"Attribute": "FirstName", "Value": "Lsq"},
            {"Attribute": "Phone", "Value": "+91-1234554321"},
        ]
    )
    assert isinstance(created, dict), created  # lsq returns an error text instead of raising
    assert created["Status"] == "Success"
    prospect_id = created["Message"]["Id"]

    reader = RetriveLead()
    [lead] = reader.leadid(prospect_id)
    assert (lead["ProspectID"], lead["FirstName"], lead["EmailAddress"]) == (
        prospect_id,
        "Lsq",
        "lsq.client@example.com",
    )

    updated = UpdateLead().leadid(prospect_id, [{"Attribute": "FirstName", "Value": "Updated"}])
    assert updated == {"Status": "Success", "Message": {"AffectedRows": 1}}

    assert [lead["FirstName"] for lead in RetriveLead().leademail("LSQ.client@example.com")] == ["Updated"]
    assert [lead["ProspectID"] for lead in RetriveLead().leadphone("+911234554321")] == [prospect_id]
    assert [lead["ProspectID"] for lead in RetriveLead().quicksearch("Upd")] == [prospect_id]
    schema = {field["SchemaName"] for field in RetriveLead().metadata()}
    assert {"EmailAddress", "Phone", "FirstName"} <= schema
    assert all(target == f"{LSQ_HOST}:443" for target in proxy.asked)
    assert proxy.asked


def test_lsq_sees_leadsquared_errors(proxy: TunnelProxy, lsq_keys: Credentials) -> None:
    CreateLead().create([{"Attribute": "EmailAddress", "Value": "twice@example.com"}])
    answer = CreateLead().create([{"Attribute": "EmailAddress", "Value": "twice@example.com"}])
    assert isinstance(answer, str)  # lsq turns a non-200 answer into a message with the body
    assert "MXDuplicateEntryException" in answer
    assert "A Lead with same Email already exists." in answer


def test_lsq_captures_creates_or_updates_in_bulk_and_reads_by_ids(proxy: TunnelProxy, lsq_keys: Credentials) -> None:
    captured = CreateLead().capture(
        [
            {"Attribute": "FirstName", "Value": "Bret"},
            {"Attribute": "EmailAddress", "Value": "bret.lee@australia.com"},
            {"Attribute": "SearchBy", "Value": "EmailAddress"},
        ]
    )
    assert isinstance(captured, dict), captured
    assert captured["Message"]["IsCreated"] is True
    bret = captured["Message"]["RelatedId"]
    again = CreateLead().capture(
        [{"Attribute": "EmailAddress", "Value": "bret.lee@australia.com"}, {"Attribute": "LastName", "Value": "Lee"}]
    )
    assert (again["Message"]["RelatedId"], again["Message"]["IsCreated"]) == (bret, False)

    rows = CreateLead().createorupdatebulk(
        [
            [{"Attribute": "EmailAddress", "Value": "bret.lee@australia.com"}, {"Attribute": "Company", "Value": "A"}],
            [
                {"Attribute": "EmailAddress", "Value": "new@australia.com"},
                {"Attribute": "SearchBy", "Value": "EmailAddress"},
            ],
        ]
    )
    assert isinstance(rows, list), rows
    assert [(r["RowNumber"], r["LeadCreated"], r["LeadUpdated"]) for r in rows] == [(1, False, True), (2, True, False)]
    assert rows[0]["LeadId"] == bret

    found = RetriveLead().leadidbulk(
        {"SearchParameters": {"LeadIds": [bret, rows[1]["LeadId"]]}, "Columns": {"Include_CSV": "FirstName, LastName"}}
    )
    assert found["RecordCount"] == 2
    assert found["Leads"][0] == {"ProspectID": bret, "FirstName": "Bret", "LastName": "Lee"}
