"""JSON logs: one object per line on stderr, with whatever `extra=` fields a call adds.

No line carries a secret: query strings (`/ws?token=<JWT>`) and anything shaped like a JWT are
redacted from every formatted line, whichever library logged it, so a token can never reach a
log through an exception's repr or a URL.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Final

import orjson
from aiohttp.http_exceptions import BadHttpMessage

# Attributes every LogRecord has; anything else came from `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

_QUERY: Final = re.compile(r"(?<=[\w/])\?[^\s\"'\\)]+")
"""A URL's query string: `/ws?token=...` keeps `/ws`, loses the rest."""
_JWT: Final = re.compile(r"eyJ[\w-]{6,}\.[\w-]+\.[\w-]*")
"""A JWT on its own (its header always starts `{"`, base64url `eyJ`)."""
REDACTED: Final = "<redacted>"


def redact(line: str) -> str:
    """`line` without query strings or JWTs."""
    return _JWT.sub(REDACTED, _QUERY.sub("?" + REDACTED, line))


class BadRequestsAreWarnings(logging.Filter):
    """aiohttp logs a malformed request (an over-long request line, a bad header) at ERROR with
    a traceback quoting the start of the offending line. It is the client's fault, answered with
    400, and the line may hold anything the client sent: a warning naming the kind of fault is
    all an operator needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "bad HTTP request from %s (400)", (remote,)
            record.exc_info = record.exc_text = None
            record.error = type(exc).__name__
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, *, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "process": self._process,
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def configure(*, process: str, level: int = logging.INFO) -> None:
    """Route every logger (aiohttp's and aiormq's too) through one JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process=process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request is noise next to long-lived WebSockets.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(BadRequestsAreWarnings())
