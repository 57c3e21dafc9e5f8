"""Structured logs: one JSON object per line, with the request id, and secrets scrubbed.

The access log already leaves query strings out (clients send the secret key there);
``RedactSecrets`` is the second line of defence, on the handler, so it sees every record that
reaches the output, whichever logger (ours, uvicorn's, a library's) wrote it.
"""

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

# Set for the duration of a request by the request-context middleware.
request_id_var: ContextVar[str | None] = ContextVar("leadstore_request_id", default=None)

# secretKey=..., accessKey%3D..., x-LSQ-SecretKey: ..., 'x-lsq-secretkey': b'...', "secret_key": "..."
_SECRET = re.compile(
    r"""(?i)((?:x-lsq-)?(?:secret|access)[_-]?key)(["']?\s*(?:=|%3D|:|,)\s*b?["']?)([^\s"'&,;}\])]+)"""
)
REDACTED = "[REDACTED]"

# Extra fields that access lines (and others) may carry, in output order.
_FIELDS = ("method", "path", "status", "duration_ms")
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "taskName"}


def redact(text: str) -> str:
    if "key" not in text.lower():  # every secret the pattern finds is named ...key (any case)
        return text
    return _SECRET.sub(rf"\1\2{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Scrub access and secret keys from a record's message, arguments, extras and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the template, drop the arguments
            message, record.args = str(record.msg), None
        scrubbed = redact(message)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id; method, path, status, duration_ms when given;
    exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        try:
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # orjson refuses what json writes, e.g. a lone surrogate in a message
            return json.dumps(line, ensure_ascii=False, default=str)
