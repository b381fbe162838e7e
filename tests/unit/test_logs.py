"""The JSON log lines: secrets never get through, whichever logger wrote them."""

from __future__ import annotations

import logging

import orjson

from chatserver.logs import REDACTED, JsonFormatter, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"


def test_query_strings_and_tokens_are_redacted() -> None:
    assert redact(f"URL('http://b:3000/ws?token={JWT}&client=c')") == (
        f"URL('http://b:3000/ws?{REDACTED}')"
    )
    assert redact(f"bad token {JWT}!") == f"bad token {REDACTED}!"
    assert redact("is that all? yes") == "is that all? yes"


def test_fields_and_tracebacks_are_redacted_too() -> None:
    record = logging.LogRecord("x", logging.WARNING, "", 0, "refused %s", (JWT,), None)
    record.url = f"/ws?token={JWT}"
    line = JsonFormatter(process="test").format(record)
    assert "c2lnbmF0dXJl" not in line
    assert orjson.loads(line)["url"] == f"/ws?{REDACTED}"
