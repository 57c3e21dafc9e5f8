"""Helpers for the reliability tests: ``leadstore serve`` as a real process, raw HTTP over a
socket (for bodies httpx will not send), a snapshot of everything a write could touch, and the
error envelope's shape."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select, text

from leadstore.db import Database
from leadstore.models import LeadChange
from leadstore.users.service import Credentials


def snapshot(db: Database) -> tuple[Any, ...]:
    """Every lead row and every history row, in a stable order."""
    with db.read() as conn:
        leads = conn.execute(text("SELECT * FROM leads ORDER BY auto_id")).all()
        changes = conn.execute(select(LeadChange.__table__).order_by(*LeadChange.__table__.primary_key)).all()
    return tuple(tuple(r) for r in leads), tuple(tuple(r) for r in changes)


def assert_envelope(response: httpx.Response, status: int, exception_type: str | None = None) -> str:
    """The response is LeadSquared's error envelope with ``status``; returns the message."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"Status", "ExceptionType", "ExceptionMessage"}, body
    assert body["Status"] == "Error"
    assert body["ExceptionType"].startswith("MX"), body
    if exception_type is not None:
        assert body["ExceptionType"] == exception_type, body
    message = str(body["ExceptionMessage"])
    assert message, body
    assert "Traceback" not in message, message
    assert "sqlalchemy" not in message.lower(), message
    return message


def keys_query(user: Credentials) -> str:
    return f"accessKey={user.access_key}&secretKey={user.secret_key}"


@dataclass
class RawAnswer:
    status: int | None
    headers: dict[str, str]
    body: bytes
    elapsed: float
    sent: int  # body bytes the server took before it stopped us
    closed: bool  # the server closed the connection after answering

    def json(self) -> Any:
        return orjson.loads(self.body)


def raw_request(
    port: int,
    head: str,
    body: Iterable[bytes] = (),
    *,
    pause: float = 0.0,
    timeout: float = 20.0,
) -> RawAnswer:
    """Send ``head`` (request line and headers, CRLF-terminated) and then the pieces of ``body``
    (``pause`` seconds apart), stopping when the server answers or hangs up; read the answer."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setblocking(True)
    sock.settimeout(timeout)
    sent = 0
    try:
        sock.sendall(head.encode("latin-1"))
        for piece in body:
            if _answer_waiting(sock):
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            if pause:
                time.sleep(pause)
        data, closed = _read_answer(sock)
    finally:
        sock.close()
    status, headers, content = _parse(data)
    return RawAnswer(status, headers, content, time.monotonic() - started, sent, closed)


def _answer_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


def _read_answer(sock: socket.socket) -> tuple[bytes, bool]:
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        except TimeoutError:
            return data, False
        if not piece:
            return data, True
        data += piece
        status, headers, content = _parse(data)
        length = headers.get("content-length")
        if status is not None and length is not None and len(content) >= int(length):
            # The whole answer is here; is the connection closed behind it?
            sock.settimeout(2.0)
            try:
                return data, sock.recv(1) == b""
            except ConnectionResetError:
                return data, True
            except TimeoutError:
                return data, False


def _parse(data: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, sep, content = data.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, content


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``leadstore serve`` as a real process, on the test database."""

    def __init__(self, database_url: str, log: Path, log_level: str = "warning") -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LEADSTORE_DATABASE_URL": database_url, "LEADSTORE_LOG_LEVEL": log_level}
        env.pop("LEADSTORE_REDIS_URL", None)
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadstore.cli.main", "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the server did not start; see {log}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()


@contextmanager
def serving(database_url: str, log: Path, log_level: str = "warning") -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, log, log_level)
    try:
        yield server
    finally:
        server.kill()
