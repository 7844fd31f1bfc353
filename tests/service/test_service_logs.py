"""Log lines are single JSON objects with the fields Azure Monitor queries rely on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from muse.app import ServiceState, create_app
from muse.config import Settings
from muse.logs import JsonFormatter, configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_formatter_basic_fields_and_extras() -> None:
    record = logging.LogRecord("muse.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.route = "/x"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "muse.x" and entry["message"] == "hello world"
    assert entry["route"] == "/x"
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]


def test_exception_is_one_line_with_stack() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        record = logging.LogRecord("muse.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["exception_type"] == "ValueError"
    assert "Traceback (most recent call last)" in entry["exception"] and "bad\nthing" in entry["exception"]


def test_access_log_line_has_request_fields(
    log_stream: io.StringIO,
    settings: Settings,
    auth: dict[str, str],
    inventory: Callable[..., dict[str, Any]],
) -> None:
    with TestClient(create_app(settings, ServiceState())) as client:
        client.post("/api/v1/evaluate", json=inventory(), headers={**auth, "X-Request-ID": "trace-42"})
    access = [e for e in lines(log_stream) if e["logger"] == "muse.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "trace-42"
    assert (entry["route"], entry["method"], entry["status"], entry["level"]) == (
        "/api/v1/evaluate",
        "POST",
        200,
        "INFO",
    )
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert {"time", "message"} <= set(entry)
    assert "Authorization" not in json.dumps(entry) and "Bearer" not in json.dumps(entry)


def test_probe_requests_log_at_debug(log_stream: io.StringIO, settings: Settings) -> None:
    with TestClient(create_app(settings, ServiceState())) as client:
        client.get("/healthz")
    probe = [e for e in lines(log_stream) if e["logger"] == "muse.access"]
    assert [e["level"] for e in probe] == ["DEBUG"]


def test_uvicorn_loggers_go_through_the_json_handler(log_stream: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    assert lines(log_stream)[-1]["logger"] == "uvicorn.error"
