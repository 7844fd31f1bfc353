"""In-process HTTP behaviour: endpoints, auth, bad input, size limits, negotiation, metrics, request ids."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from muse.app import ServiceState, create_app, negotiate
from muse.config import Settings


def test_root_describes_the_service(client: TestClient) -> None:
    body = client.get("/").json()
    assert body == {"service": "muse", "version": "unknown", "gitRevision": "abc1234", "environment": "dev"}


def test_healthz_and_readyz_when_started(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_readyz_is_503_before_startup(settings: Settings) -> None:
    # Without the context manager the lifespan never runs: the app is "starting".
    response = TestClient(create_app(settings)).get("/readyz")
    assert (response.status_code, response.json()) == (503, {"status": "starting"})


def test_draining_turns_readiness_off_but_keeps_serving(
    client: TestClient, state: ServiceState, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    state.draining = True
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
    assert ready.headers["connection"] == "close"  # keep-alive clients move to another pod
    assert client.get("/healthz").status_code == 200  # liveness must not restart a draining pod
    assert client.post("/api/v1/evaluate", json=inventory(), headers=auth).status_code == 200


# ----------------------------------------------------------------------------------------------------------
# Auth


@pytest.mark.parametrize(
    ("headers", "detail", "challenge"),
    [
        ({}, "missing bearer token", 'Bearer realm="muse"'),
        ({"Authorization": "Basic {token}"}, "missing bearer token", 'Bearer realm="muse"'),
        ({"Authorization": "Bearer "}, "missing bearer token", 'Bearer realm="muse"'),
        ({"Authorization": "Bearer wrong-token"}, "invalid bearer token", 'error="invalid_token"'),
        ({"Authorization": "Bearer {token}x"}, "invalid bearer token", 'error="invalid_token"'),
        ({"Authorization": "Bearer {token_minus_last}"}, "invalid bearer token", 'error="invalid_token"'),
    ],
)
def test_api_requires_the_bearer_token(
    client: TestClient,
    headers: dict[str, str],
    detail: str,
    challenge: str,
    token: str,
    inventory: Callable[..., dict[str, Any]],
) -> None:
    for method, path in (("GET", "/api/v1/policies"), ("POST", "/api/v1/evaluate"), ("GET", "/api/v1/nope")):
        sent = {k: v.format(token=token, token_minus_last=token[:-1]) for k, v in headers.items()}
        response = client.request(method, path, headers=sent, json=inventory())
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized", "detail": detail}
        assert challenge in response.headers["www-authenticate"]


def test_bearer_scheme_is_case_insensitive(client: TestClient, token: str) -> None:
    assert client.get("/api/v1/policies", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_non_api_routes_need_no_token(client: TestClient) -> None:
    for path in ("/", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200


def test_metrics_are_not_served_on_the_api_port(client: TestClient) -> None:
    # The API port is the one the Gateway routes; the metrics have their own (muse/server.py).
    response = client.get("/metrics")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


def test_policies_endpoint(client: TestClient, auth: dict[str, str]) -> None:
    policies = client.get("/api/v1/policies", headers=auth).json()["policies"]
    ids = [p["id"] for p in policies]
    assert "MUSE-ACR-001" in ids and len(ids) == len(set(ids))
    assert set(policies[0]) == {"id", "title", "severity", "rationale", "remediation", "appliesTo"}


# ----------------------------------------------------------------------------------------------------------
# Evaluate


def test_evaluate_returns_violations_as_json(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    response = client.post("/api/v1/evaluate", json=inventory(admin_user=True), headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert [v["policyId"] for v in body["violations"]] == ["MUSE-ACR-001"]
    assert body["summary"]["passed"] is False and body["summary"]["failOn"] == "high"


def test_evaluate_fail_on_query_parameter(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    medium = inventory(env_tag="prod")
    high = client.post("/api/v1/evaluate", json=medium, headers=auth).json()["summary"]
    low = client.post("/api/v1/evaluate?failOn=low", json=medium, headers=auth).json()["summary"]
    assert (high["passed"], low["passed"]) == (True, False)
    bad = client.post("/api/v1/evaluate?failOn=urgent", json=medium, headers=auth)
    assert (
        bad.status_code == 400 and "failOn must be one of critical, high, medium, low" in bad.json()["detail"]
    )


def test_evaluate_markdown_by_accept(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    headers = {**auth, "Accept": "text/markdown"}
    response = client.post("/api/v1/evaluate", json=inventory(admin_user=True), headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith("# Muse governance report: muse/dev")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "json"),
        ("*/*", "json"),
        ("application/json", "json"),
        ("text/markdown", "markdown"),
        ("text/markdown;q=0.5, application/json", "json"),
        ("application/json;q=0.2, text/markdown;q=0.9", "markdown"),
        ("text/*", "markdown"),
        ("image/png", None),
        ("text/markdown;q=0", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_unacceptable_accept_is_406(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    response = client.post("/api/v1/evaluate", json=inventory(), headers={**auth, "Accept": "image/png"})
    assert response.status_code == 406


@pytest.mark.parametrize(
    ("body", "status", "error", "detail"),
    [
        (b"{not json", 400, "malformed_json", "malformed JSON: key must be a string at line 1 column 2"),
        (b"\xff\xfe\x00", 400, "malformed_json", "malformed JSON"),
        (b"[" * 3000, 400, "malformed_json", "malformed JSON"),
        (b"", 400, "bad_request", "empty body"),
        (b"[1]", 422, "invalid_inventory", "invalid inventory: expected a JSON object, got list"),
        (b'{"schemaVersion": 2}', 422, "invalid_inventory", "invalid inventory: unsupported schemaVersion 2"),
        (b'{"schemaVersion": 1, "project": "m"}', 422, "invalid_inventory", "invalid inventory:"),
    ],
)
def test_bad_input_is_4xx_with_a_clear_message(
    client: TestClient, body: bytes, status: int, error: str, detail: str, auth: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/evaluate", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["detail"].startswith(detail)


def test_wrong_shape_lists_each_problem(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    doc = inventory()
    del doc["resources"][0]["type"]
    doc["environment"] = 7
    response = client.post("/api/v1/evaluate", json=doc, headers=auth)
    assert response.status_code == 422
    assert response.json()["problems"] == [
        "environment: Input should be a valid string",
        "resources[0].type: Field required",
    ]


def test_wrong_content_type_is_415(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    response = client.post(
        "/api/v1/evaluate", content=json.dumps(inventory()), headers={**auth, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_oversized_body_by_content_length_is_413(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    doc = inventory()
    doc["padding"] = "x" * 5000  # MUSE_MAX_BODY_BYTES=4096 in the fixture
    response = client.post("/api/v1/evaluate", json=doc, headers=auth)
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "request body exceeds 4096 bytes, the limit for a 256 MiB memory limit, 2 at once "
        "(MUSE_MEMORY_LIMIT_BYTES, MUSE_MAX_BODY_BYTES)"
    )


def test_oversized_chunked_body_is_413(client: TestClient, auth: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"schemaVersion": 1, "padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    # A generator body is sent with Transfer-Encoding: chunked and no Content-Length.
    response = client.post(
        "/api/v1/evaluate", content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_body_just_under_the_limit_is_accepted(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    doc = inventory()
    doc["padding"] = ""
    size = len(json.dumps(doc).encode())
    doc["padding"] = "x" * (4096 - size)
    body = json.dumps(doc).encode()
    assert len(body) == 4096
    response = client.post(
        "/api/v1/evaluate", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200


def test_not_found_and_method_not_allowed_are_json(client: TestClient, auth: dict[str, str]) -> None:
    missing = client.get("/nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    wrong = client.get("/api/v1/evaluate", headers=auth)
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


def test_unexpected_error_is_a_json_500_with_request_id(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    auth: dict[str, str],
    inventory: Callable[..., dict[str, Any]],
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("muse.app.evaluate", boom)
    response = client.post("/api/v1/evaluate", json=inventory(), headers={**auth, "X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "unexpected error; request id req-500"}
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "muse.app"]
    assert errors and errors[0].exc_info is not None and "engine exploded" in str(errors[0].exc_info[1])


# ----------------------------------------------------------------------------------------------------------
# Request ids and metrics


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/").headers["x-request-id"]
    assert len(generated) == 32
    # A hostile id (log injection, unbounded size) is replaced, not echoed.
    for hostile in ("a\nb", "x" * 200, "<script>"):
        assert client.get("/", headers={"X-Request-ID": hostile}).headers["x-request-id"] != hostile


def test_the_series_the_canary_gate_reads_exist_at_zero_before_any_request(client: TestClient) -> None:
    """irate() needs two samples: a series born at its first request hides that request from the gate
    until the next scrape (scripts/ci/canary_gate.py): the 5xx evaluate answers itself - 500 on an error,
    503 when busy - exist from the start. Negative control: a route left out has no series."""
    text = generate_latest(client.app.state.metrics.registry).decode()  # type: ignore[attr-defined]
    v = 'version="unknown"'
    for status in ("200", "500", "503"):
        line = f'muse_http_requests_total{{method="POST",route="/api/v1/evaluate",status="{status}",{v}}} 0.0'
        assert line in text
    assert (
        f'muse_http_request_duration_seconds_count{{method="POST",route="/api/v1/evaluate",{v}}} 0.0' in text
    )
    assert 'route="/api/v1/governance"' not in text


def test_metrics_count_requests_by_route_template(
    client: TestClient, auth: dict[str, str], inventory: Callable[..., dict[str, Any]]
) -> None:
    client.get("/")
    client.get("/api/v1/policies")  # 401
    client.get("/api/v1/policies", headers=auth)
    client.get("/no/such/path/123")
    client.post("/api/v1/evaluate", json=inventory(admin_user=True), headers=auth)
    text = generate_latest(client.app.state.metrics.registry).decode()  # type: ignore[attr-defined]
    v = 'version="unknown"'
    assert f'muse_http_requests_total{{method="GET",route="/",status="200",{v}}} 1.0' in text
    assert f'muse_http_requests_total{{method="GET",route="/api/v1/policies",status="401",{v}}} 1.0' in text
    assert f'muse_http_requests_total{{method="GET",route="/api/v1/policies",status="200",{v}}} 1.0' in text
    assert f'muse_http_requests_total{{method="GET",route="<unmatched>",status="404",{v}}} 1.0' in text
    assert (
        f'muse_http_request_duration_seconds_bucket{{le="0.005",method="POST",route="/api/v1/evaluate",{v}}}'
        in text
    )
    assert 'muse_build_info{environment="dev",revision="abc1234",version="unknown"} 1.0' in text
    assert 'muse_evaluation_violations_total{severity="high"} 1.0' in text
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text
