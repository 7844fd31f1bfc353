"""The alert and workbook KQL against real Muse log lines.

Muse's own logging setup (`muse.logs.configure_logging`) and app (`muse.app.create_app`) write the lines: an
unhandled exception (ERROR with traceback) and access lines. Each line is then stored the way Container
Insights stores a stdout line in `ContainerLogV2` (a line that is one JSON object becomes the dynamic column
`LogMessage`), and every query is checked against those rows: each `LogMessage.<field>` it reads exists on
the rows it selects, with the type its conversion expects, and its filters select the lines they are meant to.
A renamed or retyped log field, or a query that reads a field Muse does not write, fails here.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

import muse.app
from components.observability.queries import (
    ACCESS_LOGGER,
    ARRIVAL_WINDOW_MINUTES,
    ERROR_LEVELS,
    MuseQueries,
)
from muse.app import ServiceState, create_app
from muse.config import load_settings
from muse.contract import secret_environment
from muse.logs import configure_logging
from stack.files import REPO_ROOT

NAMESPACE = "muse-dev"
TOKEN = "test-token-0123456789-abcdefghijklmnop"
# Container runtimes split a stdout line longer than 16 KiB into several log records; a split JSON object
# would no longer parse into LogMessage.
CRI_MAX_LINE_BYTES = 16 * 1024
# Columns of the ContainerLogV2 table (Azure Monitor reference, "ContainerLogV2").
CONTAINER_LOG_V2_COLUMNS = frozenset(
    {
        "TimeGenerated",
        "Computer",
        "ContainerId",
        "ContainerName",
        "PodName",
        "PodNamespace",
        "LogMessage",
        "LogSource",
        "LogLevel",
        "KubernetesMetadata",
        "_ResourceId",
        "TenantId",
        "Type",
    }
)
TYPED_FIELD = re.compile(r"\bto(string|int|real)\(LogMessage\.(\w+)\)")
# `<operand> == "literal"` or `<operand> in ("a", "b")`, where operand is a column or a typed field.
COMPARISON = re.compile(
    r"(?P<operand>to(?:string|int|real)\(LogMessage\.\w+\)|\b[A-Za-z_]\w*)\s*"
    r'(?:==\s*"(?P<value>[^"]*)"|\bin\s*\((?P<values>[^)]*)\))'
)


class _Broken:
    """A policy whose description fails: a real exception raised inside a real request."""

    def describe(self) -> dict[str, Any]:
        raise RuntimeError("policy table is corrupt")


@pytest.fixture(scope="module")
def stdout_lines() -> Iterator[list[str]]:
    """What the Muse container writes to stdout for: an evaluate (200), a request whose handler raises (500),
    and an unknown route (404). Captured with the service's own logging setup."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("INFO", stream)
    settings = load_settings({**secret_environment(TOKEN), "MUSE_ENV": "dev"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    inventory = {"schemaVersion": 1, "project": "muse", "stack": "dev", "environment": "dev", "resources": []}
    try:
        with (
            pytest.MonkeyPatch.context() as patch,
            TestClient(create_app(settings, ServiceState()), raise_server_exceptions=False) as client,
        ):
            assert client.post("/api/v1/evaluate", json=inventory, headers=auth).status_code == 200
            patch.setattr(muse.app, "POLICIES", [_Broken()])
            failed = client.get("/api/v1/policies", headers={**auth, "X-Request-ID": "req-500"})
            assert failed.status_code == 500
            assert client.get("/no/such/route").status_code == 404
        yield stream.getvalue().splitlines()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def container_log_v2(line: str, namespace: str = NAMESPACE, container: str = "muse") -> dict[str, Any]:
    """The ContainerLogV2 row Container Insights stores for one stdout line: a line that is a JSON object is
    kept as a dynamic object in LogMessage, anything else as a string."""
    try:
        message: Any = json.loads(line)
    except json.JSONDecodeError:
        message = line
    return {
        "TimeGenerated": "2026-11-26T01:00:00Z",
        "PodNamespace": namespace,
        "PodName": f"{container}-7d9f8b6c4-x2x9q",
        "ContainerName": container,
        "LogSource": "stdout",
        "LogMessage": message if isinstance(message, dict) else line,
    }


@pytest.fixture(scope="module")
def rows(stdout_lines: list[str]) -> list[dict[str, Any]]:
    return [container_log_v2(line) for line in stdout_lines]


def _has_type(value: Any, kql_type: str) -> bool:
    if isinstance(value, bool):
        return False
    return {
        "string": isinstance(value, str),
        "int": isinstance(value, int),
        "real": isinstance(value, int | float),
    }[kql_type]


def _operand(row: dict[str, Any], operand: str) -> Any:
    typed = TYPED_FIELD.fullmatch(operand)
    if typed:
        message = row["LogMessage"]
        return message.get(typed.group(2)) if isinstance(message, dict) else None
    return row.get(operand)


def selects(query: str, row: dict[str, Any]) -> bool:
    """Whether the row passes every equality / `in` filter of the query's `where` lines (other conditions,
    such as the ingestion-time window, are the service's business and not evaluated here)."""
    for line in query.splitlines():
        if not line.startswith("| where "):
            continue
        for match in COMPARISON.finditer(line):
            if match.group("value") is not None:
                allowed = {match.group("value")}
            else:
                allowed = {v.strip().strip('"') for v in match.group("values").split(",")}
            if _operand(row, match.group("operand")) not in allowed:
                return False
    return True


def problems(query: str, rows: list[dict[str, Any]]) -> list[str]:
    """Why `query` does not fit the rows: untyped LogMessage reads, unknown columns, or a field the selected
    rows lack or carry with another type. Empty when the query and the log lines agree."""
    found = []
    typed = TYPED_FIELD.findall(query)
    if query.count("LogMessage") != len(typed):
        found.append("LogMessage is read without tostring/toint/toreal")
    for column in re.findall(r"\b(PodNamespace|ContainerName|PodName|LogSource|LogLevel)\b", query):
        if column not in CONTAINER_LOG_V2_COLUMNS:
            found.append(f"{column} is not a ContainerLogV2 column")
    selected = [row for row in rows if selects(query, row)]
    if not selected:
        found.append("selects none of Muse's lines")
    for kql_type, field in sorted(set(typed)):
        for row in selected:
            value = row["LogMessage"].get(field) if isinstance(row["LogMessage"], dict) else None
            if value is None:
                found.append(f"field {field!r} missing on {row['LogMessage']}")
            elif not _has_type(value, kql_type):
                found.append(f"field {field!r} is {type(value).__name__}, the query reads it as {kql_type}")
    return found


LOG_QUERIES = {
    name: query for name, query in MuseQueries(NAMESPACE).all().items() if query.startswith("ContainerLogV2")
}


def test_the_service_writes_one_parseable_json_object_per_line(stdout_lines: list[str]) -> None:
    assert len(stdout_lines) >= 4  # started, three access lines, the error (and stopped)
    for line in stdout_lines:
        assert isinstance(json.loads(line), dict)
        assert len(line.encode()) < CRI_MAX_LINE_BYTES


def test_the_real_exception_line_is_what_the_error_queries_select(rows: list[dict[str, Any]]) -> None:
    queries = MuseQueries(NAMESPACE)
    errors = [row["LogMessage"] for row in rows if selects(queries.error_lines_alert, row)]
    assert len(errors) == 1
    [error] = errors
    assert error["level"] in ERROR_LEVELS
    assert error["exception_type"] == "RuntimeError"
    assert "policy table is corrupt" in error["exception"]
    assert (error["request_id"], error["route"], error["method"]) == ("req-500", "/api/v1/policies", "GET")
    # The recent-errors tile shows exactly the lines the alert counts.
    assert [r for r in rows if selects(queries.recent_errors, r)] == [
        r for r in rows if selects(queries.error_lines_alert, r)
    ]


def test_access_queries_select_every_request_and_only_access_lines(rows: list[dict[str, Any]]) -> None:
    access = [row["LogMessage"] for row in rows if selects(MuseQueries(NAMESPACE).request_rate, row)]
    assert {entry["logger"] for entry in access} == {ACCESS_LOGGER}
    assert sorted(entry["status"] for entry in access) == [200, 404, 500]
    # The error-rate tile counts the 500 as a server error: status is a number, not text.
    assert [e for e in access if e["status"] >= 500] == [e for e in access if e["request_id"] == "req-500"]


@pytest.mark.parametrize("name", sorted(LOG_QUERIES))
def test_every_field_the_query_reads_exists_with_its_type(name: str, rows: list[dict[str, Any]]) -> None:
    assert problems(LOG_QUERIES[name], rows) == []


@pytest.mark.parametrize("name", sorted(LOG_QUERIES))
def test_queries_ignore_other_namespaces_and_containers(name: str, stdout_lines: list[str]) -> None:
    elsewhere = [container_log_v2(line, namespace="muse-prod") for line in stdout_lines]
    sidecar = [container_log_v2(line, container="istio-proxy") for line in stdout_lines]
    assert not [row for row in elsewhere + sidecar if selects(LOG_QUERIES[name], row)]


def test_error_levels_are_python_logging_level_names() -> None:
    for level in ERROR_LEVELS:
        assert logging.getLevelName(level) >= logging.ERROR


def test_the_alert_counts_lines_by_arrival_over_its_window() -> None:
    query = MuseQueries(NAMESPACE).error_lines_alert
    assert f"| where ingestion_time() > ago({ARRIVAL_WINDOW_MINUTES}m)" in query.splitlines()


# The checks above must be able to fail: each drift below is one a refactoring could introduce.


def test_a_renamed_log_field_is_caught(rows: list[dict[str, Any]]) -> None:
    renamed = [
        {
            **row,
            "LogMessage": {
                ("latency_ms" if k == "duration_ms" else k): v for k, v in row["LogMessage"].items()
            },
        }
        for row in rows
    ]
    assert any("'duration_ms' missing" in p for p in problems(MuseQueries(NAMESPACE).latency_p95, renamed))


def test_a_retyped_log_field_is_caught(rows: list[dict[str, Any]]) -> None:
    as_text = [
        {**row, "LogMessage": {k: str(v) if k == "status" else v for k, v in row["LogMessage"].items()}}
        for row in rows
    ]
    assert any("'status' is str" in p for p in problems(MuseQueries(NAMESPACE).error_rate, as_text))


def test_a_query_reading_an_unknown_field_is_caught(rows: list[dict[str, Any]]) -> None:
    query = MuseQueries(NAMESPACE).recent_errors.replace("LogMessage.request_id", "LogMessage.requestId")
    assert any("'requestId' missing" in p for p in problems(query, rows))


def test_an_untyped_read_or_a_wrong_level_is_caught(rows: list[dict[str, Any]]) -> None:
    untyped = MuseQueries(NAMESPACE).recent_errors + "\n| extend Raw = LogMessage.path"
    assert "LogMessage is read without tostring/toint/toreal" in problems(untyped, rows)
    wrong_level = MuseQueries(NAMESPACE).error_lines_alert.replace('"ERROR", "CRITICAL"', '"error"')
    assert "selects none of Muse's lines" in problems(wrong_level, rows)


# The runbook's KQL: the operator pastes it, so it must be the queries the alerts run, scoped the same way.

RUNBOOK = REPO_ROOT / "docs" / "runbook.md"


def _runbook_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```kusto\n(.*?)```", RUNBOOK.read_text(), re.DOTALL)]


def test_runbook_kql_is_the_alert_and_workbook_kql() -> None:
    generated = {query: name for name, query in MuseQueries("muse-prod").all().items()}
    used = {generated[block] for block in _runbook_blocks() if block in generated}
    assert used == {"recent_errors", "error_rate", "restarts", "pods_not_ready", "pod_cpu", "pod_memory"}


def test_runbook_ad_hoc_kql_is_scoped_and_reads_fields_muse_writes(rows: list[dict[str, Any]]) -> None:
    generated = set(MuseQueries("muse-prod").all().values())
    written = {field for row in rows for field in row["LogMessage"]}
    ad_hoc = [block for block in _runbook_blocks() if block not in generated]
    assert ad_hoc  # the request trace and the Kubernetes events
    for block in ad_hoc:
        assert block.startswith(
            (MuseQueries("muse-prod").muse_lines, 'KubeEvents\n| where Namespace == "muse-prod"')
        ), block
        assert block.count("LogMessage") == len(TYPED_FIELD.findall(block))
        assert {field for _, field in TYPED_FIELD.findall(block)} <= written
