"""canary_gate.PrometheusSource honours Retry-After on 429 and 503 (RFC 9110 §10.2.3: delay-seconds or an
HTTP-date), within the release's deadline, against the HTTPS Prometheus API stand-in on 127.0.0.1
(tests/workflows/prometheus_api.py). Sleeps are recorded, not slept."""

from __future__ import annotations

import email.utils
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.prometheus_api import PrometheusApi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

import canary_gate
from canary_gate import PrometheusSource, QueryUnavailable, retry_after_seconds

NOW = 1_800_000_000.0
BUSY = {"status": "error", "errorType": "unavailable", "error": "too many requests"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusApi]:
    with PrometheusApi(tmp_path_factory.mktemp("prometheus"), lambda query, at: 1.0) as server:
        yield server


@pytest.fixture
def source(
    api: PrometheusApi, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PrometheusSource, list[float]]]:
    monkeypatch.setenv("SSL_CERT_FILE", str(api.ca_file))  # Python's default context trusts the stand-in
    api.script.clear()
    api.seen.clear()
    slept: list[float] = []
    yield PrometheusSource(api.url, token=lambda: "t", sleep=slept.append, now=lambda: NOW), slept


def answered(source: PrometheusSource) -> bool:
    return source.query("vector(1)")["status"] == "success"


@pytest.mark.parametrize("status", [429, 503])
def test_delay_seconds_are_waited_for_before_the_next_try(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]], status: int
) -> None:
    client, slept = source
    api.script.append((status, {"Retry-After": "7"}, BUSY))
    assert answered(client)
    assert slept == [7.0] and [s for _, s in api.seen] == [status, 200]


def test_an_http_date_is_waited_for_until_then(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]]
) -> None:
    client, slept = source
    api.script.append((503, {"Retry-After": email.utils.formatdate(NOW + 45, usegmt=True)}, BUSY))
    assert answered(client)
    assert slept == [45.0]


def test_negative_control_the_old_retry_tried_again_after_its_own_backoff(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry-After ignored (what the source did before): the second try comes 2 s later, long before the
    server said it would answer, and the 3rd 4 s after that: three tries spent in 6 s of a 60 s throttle."""
    client, slept = source
    monkeypatch.setattr(canary_gate, "RETRY_AFTER_STATUSES", frozenset())
    api.script.extend([(429, {"Retry-After": "60"}, BUSY)] * 3)
    with pytest.raises(QueryUnavailable, match="3 tries failed: HTTP 429"):
        client.query("vector(1)")
    assert slept == [2.0, 4.0]


def test_a_retry_after_past_the_deadline_gives_up_now_instead_of_waiting(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]]
) -> None:
    client, slept = source
    client.remaining = lambda: 30.0  # the release's deadline is 30 s away
    api.script.append((429, {"Retry-After": "120"}, BUSY))
    with pytest.raises(QueryUnavailable, match=r"1 try failed: HTTP 429; not tried again: Retry-After 120 s"):
        client.query("vector(1)")
    assert slept == [] and len(api.seen) == 1
    # negative control: without the deadline's bound the wait outlasts the release's time
    api.script.append((429, {"Retry-After": "120"}, BUSY))
    client.remaining = None
    assert answered(client) and slept == [120.0]


def test_a_malformed_retry_after_falls_back_to_the_backoff(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]]
) -> None:
    client, slept = source
    api.script.append((503, {"Retry-After": "soon"}, BUSY))
    assert answered(client) and slept == [2.0]


def test_retry_after_is_read_only_on_429_and_503(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]]
) -> None:
    client, slept = source
    api.script.append((502, {"Retry-After": "90"}, BUSY))  # a proxy's 502: the backoff, not its header
    assert answered(client) and slept == [2.0]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 30.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", 30.0),  # obsolete RFC 850 form, which recipients must accept
        ("Sun Nov  6 08:49:37 1994", 30.0),  # obsolete asctime form (GMT without saying so)
        ("Sun, 06 Nov 1994 08:48:00 GMT", 0.0),  # in the past: now
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    now = 784111777.0 - 30  # 1994-11-06 08:49:07 GMT
    assert retry_after_seconds(value, now) == seconds


def test_deploys_metrics_access_waits_only_within_the_release_deadline(
    api: PrometheusApi, source: tuple[PrometheusSource, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy.py's first query (metrics_access, before anything changes) gets the supervisor's deadline."""
    import time

    from engine import Supervisor

    import deploy

    monkeypatch.setattr(deploy, "stack_output", lambda stack, name: api.url)
    monkeypatch.setattr(deploy, "SUPERVISOR", Supervisor(time.monotonic() + 60))
    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    tools._token = (time.monotonic(), "t")
    slept: list[float] = []
    tools._prometheus().sleep = slept.append
    api.script.append((503, {"Retry-After": "30"}, BUSY))
    tools.metrics_access()  # 30 s fit in the 60 s left: waited for, then answered
    assert slept == [30.0]
    api.script.append((503, {"Retry-After": "600"}, BUSY))
    with pytest.raises(RuntimeError, match=r"Retry-After 600 s >= the 6.*nothing was changed; re-run"):
        tools.metrics_access()
    assert slept == [30.0]
    # negative control: without the supervisor (no deadline) the same answer is waited out
    monkeypatch.setattr(deploy, "SUPERVISOR", None)
    api.script.append((503, {"Retry-After": "600"}, BUSY))
    tools.metrics_access()
    assert slept == [30.0, 600.0]
