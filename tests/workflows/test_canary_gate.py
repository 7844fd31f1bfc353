"""The canary's gate and stepper (scripts/ci/canary_gate.py, canary.py) on synthetic metric series: the gate
fires on a bad candidate and holds on a good one, and each gate has a negative control (the same broken
candidate is promoted when that gate is left out)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

from canary import Outcome, Plan, run_canary
from canary_gate import ACCESS_QUERY, THRESHOLDS, Gate, Sample, Thresholds, queries, sample_from, scalar

PLAN = Plan.of([10, 50, 100], step_seconds=60, check_seconds=30)
VERSION = "sha256:" + "c" * 64


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Candidate:
    """A candidate behind the stepper: per check, the traffic its share of `rps` brings in a 60 s window,
    the fraction of it that fails (evaluate's share of the traffic when only evaluate fails) and its p95."""

    clock: Clock
    failing_fraction: Callable[[float], float] = lambda t: 0.0
    p95: Callable[[float], float] = lambda t: 0.05
    evaluate_works: bool = True
    rps: float = 20.0
    weight: int = 0
    weights: list[tuple[float, int]] = field(default_factory=list)

    def set_weight(self, weight: int) -> None:
        self.weight = weight
        self.weights.append((self.clock(), weight))

    def sample(self) -> Sample:
        requests = self.rps * 60 * self.weight / 100
        now = self.clock()  # the interval that ended now: no ingestion lag here (test_canary_lag.py has it)
        return Sample(requests, requests * self.failing_fraction(now), self.p95(now), interval_end=now)

    def end_to_end(self) -> tuple[bool, str]:
        return (True, "200") if self.evaluate_works else (False, "POST /api/v1/evaluate answered 500")


def run(candidate: Candidate, gate: Gate | None = None, deadline: float = 10_000) -> Outcome:
    return run_canary(
        PLAN, candidate, gate or Gate(), clock=candidate.clock, sleep=candidate.clock.sleep,
        deadline=deadline, log=lambda _: None,
    )  # fmt: skip


class NoEndToEnd:
    """The same candidate with the end-to-end check left out (negative control)."""

    def __init__(self, candidate: Candidate) -> None:
        self.c = candidate

    def set_weight(self, weight: int) -> None:
        self.c.set_weight(weight)

    def sample(self) -> Sample:
        return self.c.sample()

    def end_to_end(self) -> tuple[bool, str]:
        return True, "not checked"


def test_a_good_candidate_is_promoted_through_every_step() -> None:
    candidate = Candidate(Clock())
    outcome = run(candidate)
    assert outcome.promoted, outcome.events
    assert [w for _, w in candidate.weights] == [10, 50, 100]
    # each step held for its full time
    assert [t for t, _ in candidate.weights] == [0, 60, 120]


def test_a_candidate_whose_evaluate_fails_gets_no_traffic_at_all() -> None:
    candidate = Candidate(Clock(), evaluate_works=False, failing_fraction=lambda t: 0.3)
    outcome = run(candidate)
    assert not outcome.promoted
    assert candidate.weights == [], "the weight was moved before the end-to-end check"
    assert "end-to-end" in outcome.reason


def test_negative_control_without_the_end_to_end_check_the_metric_gate_still_aborts_in_the_first_step() -> (
    None
):
    candidate = Candidate(Clock(), evaluate_works=False, failing_fraction=lambda t: 0.3)
    outcome = run_canary(
        PLAN, NoEndToEnd(candidate), Gate(), clock=candidate.clock, sleep=candidate.clock.sleep,
        deadline=10_000, log=lambda _: None,
    )  # fmt: skip
    assert not outcome.promoted
    assert [w for _, w in candidate.weights] == [10]
    # abort <= one step after the first bad check: here at the second check of the first step
    assert outcome.first_bad_check_at == 30
    assert (
        outcome.decided_at is not None
        and outcome.decided_at - outcome.first_bad_check_at <= PLAN.step_seconds
    )


def test_negative_control_without_either_gate_the_broken_candidate_reaches_100_percent() -> None:
    candidate = Candidate(Clock(), evaluate_works=False, failing_fraction=lambda t: 0.3)
    blind = Gate(Thresholds(max_error_ratio=1.0, max_p95_seconds=float("inf")))
    outcome = run_canary(
        PLAN, NoEndToEnd(candidate), blind, clock=candidate.clock, sleep=candidate.clock.sleep,
        deadline=10_000, log=lambda _: None,
    )  # fmt: skip
    assert outcome.promoted
    assert candidate.weights[-1][1] == 100


def test_slow_candidate_aborts_on_p95_and_passes_without_that_threshold() -> None:
    slow = Candidate(Clock(), p95=lambda t: 0.8)
    assert not run(slow).promoted
    assert "p95" in run(Candidate(Clock(), p95=lambda t: 0.8)).reason
    no_latency_gate = Gate(Thresholds(max_p95_seconds=float("inf")))
    assert run(Candidate(Clock(), p95=lambda t: 0.8), no_latency_gate).promoted  # negative control


def test_one_bad_check_is_not_an_abort_two_in_a_row_are() -> None:
    # A blip in one window only (30 s < t <= 30 s): one bad check, then healthy again.
    blip = Candidate(Clock(), failing_fraction=lambda t: 0.5 if t == 30 else 0.0)
    assert run(blip).promoted
    # Bad from the 50 % step on: aborts there, at its second check.
    later = Candidate(Clock(), failing_fraction=lambda t: 0.05 if t > 60 else 0.0)
    outcome = run(later)
    assert not outcome.promoted and outcome.weight == 50
    assert outcome.decided_at == 120


def test_errors_at_exactly_the_threshold_hold_and_just_above_fire() -> None:
    at = Sample(requests=1000, errors=10, p95_seconds=0.5)
    above = Sample(requests=1000, errors=11, p95_seconds=0.5)
    gate = Gate()
    assert gate.observe(at) == []
    assert gate.observe(above) and gate.observe(above) and gate.abort


def test_no_signal_never_passes_a_step() -> None:
    """A scrape that misses the candidate (or a version label that does not match) gives empty answers: the
    release must fail, not pass unseen. Negative control: counting no-signal as healthy would promote."""
    silent = Candidate(Clock(), rps=0.0)
    outcome = run(silent)
    assert not outcome.promoted and "no signal" in outcome.reason
    assert [w for _, w in silent.weights] == [10]


def test_a_weight_move_that_fails_aborts() -> None:
    candidate = Candidate(Clock())

    def broken(weight: int) -> None:
        raise RuntimeError("pulumi up --target failed")

    candidate.set_weight = broken  # type: ignore[method-assign]
    outcome = run(candidate)
    assert not outcome.promoted and "pulumi up --target failed" in outcome.reason


def test_the_deadline_stops_before_a_step_that_cannot_finish() -> None:
    candidate = Candidate(Clock())
    outcome = run(candidate, deadline=100)  # room for the 10 % step (0-60), not for the 50 % one (60-120)
    assert not outcome.promoted and "deadline" in outcome.reason
    assert [w for _, w in candidate.weights] == [10]


@pytest.mark.parametrize(
    ("steps", "step", "check"),
    [([10, 50], 60, 30), ([50, 10, 100], 60, 30), ([0, 100], 60, 30), ([10, 100], 50, 30)],
)
def test_plans_that_cannot_gate_are_refused(steps: list[int], step: int, check: int) -> None:
    with pytest.raises(ValueError, match=r"steps|two checks"):
        Plan.of(steps, step, check)


# --- the Prometheus side: queries and answers in the Prometheus HTTP API format ---------------------------


def vector(value: str | None) -> dict[str, object]:
    result = [] if value is None else [{"metric": {}, "value": [1765000000.0, value]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_queries_select_the_candidate_version_and_leave_out_the_probes() -> None:
    q = queries(VERSION)
    for promql in q.values():
        assert f'version="{VERSION}"' in promql
        assert 'route!~"/healthz|/readyz"' in promql
    for kind in ("requests", "errors", "p95"):
        # one scrape interval (the last two samples before the time the check evaluates it at)
        assert "irate(" in q[kind] and "[90s]) * 30" in q[kind] and "offset" not in q[kind]
    # which interval that is: the newest sample's own timestamp
    assert q["interval_end"].startswith("max(timestamp(muse_http_requests_total{")
    assert q["interval_end"].endswith("}))")
    assert 'status=~"5.."' in q["errors"] and "status" not in q["requests"]
    assert q["p95"].startswith(
        "histogram_quantile(0.95, sum by (le) (irate(muse_http_request_duration_seconds_bucket"
    )


def test_a_label_value_that_could_break_out_of_the_selector_is_refused() -> None:
    with pytest.raises(ValueError):
        queries('x"} or vector(0) or {a="')


def test_answers_become_a_sample_and_empty_or_nan_means_no_data() -> None:
    answers = {"requests": vector("1200"), "errors": vector("36"), "p95": vector("NaN")}
    answers["interval_end"] = vector("1765")
    q = queries(VERSION)
    by_query = {q[k]: v for k, v in answers.items()}
    asked: list[tuple[str, float | None]] = []

    def query(promql: str, at: float | None = None) -> dict[str, object]:
        asked.append((promql, at))
        return by_query[promql]

    sample = sample_from(query, VERSION)
    assert sample == Sample(1200.0, 36.0, None, interval_end=1765.0)
    # which interval first, then its counts evaluated at its end (the API's `time`): one interval throughout
    assert asked == [(q["interval_end"], None)] + [(q[k], 1765.0) for k in ("requests", "errors", "p95")]
    assert Gate().observe(sample)  # 3 % errors
    assert scalar(vector(None)) is None
    with pytest.raises(RuntimeError, match="parse error"):
        scalar({"status": "error", "errorType": "bad_data", "error": "parse error"})


def test_a_repeat_reading_of_the_same_interval_is_no_new_signal() -> None:
    bad = Sample(600, 60, 0.05, interval_end=150.0)
    gate = Gate()
    assert gate.observe(bad) and gate.bad_in_a_row == 1
    assert "judged already" in gate.observe(bad)[0] and gate.bad_in_a_row == 1 and not gate.abort
    assert gate.observe(replace(bad, interval_end=180.0)) and gate.abort  # the next interval counts
    good = Sample(600, 0, 0.05, interval_end=150.0)
    healthy = Gate()
    healthy.observe(good)
    healthy.observe(good)
    assert healthy.good_checks == 1, "a repeat counted as evidence"
    # Negative control: without the interval's end the repeat is a second bad check, and aborts.
    blind = Gate()
    blind.observe(replace(bad, interval_end=None))
    blind.observe(replace(bad, interval_end=None))
    assert blind.abort


def test_a_rising_error_series_fires_at_its_second_check_above_the_threshold() -> None:
    """A longer synthetic series: healthy for 4 checks, then 5xx rising past 1 %: the gate fires on the
    second check above the threshold and not before."""
    ratios = [0.0, 0.002, 0.005, 0.009, 0.012, 0.02, 0.03]
    gate = Gate()
    fired: list[int] = []
    for index, ratio in enumerate(ratios):
        gate.observe(Sample(1000, 1000 * ratio, 0.1))
        if gate.abort:
            fired.append(index)
    assert fired[0] == 5


# The workspace's answer to a caller without the data action (MicrosoftDocs/azure-docs
# articles/azure-monitor/containers/integrate-keda.md@2b6a9facd8884692b227d89223de448cc919f7b5).
FORBIDDEN = (
    b'{"status":"error","errorType":"Forbidden","error":"User \'abc\' does not have access to perform any of '
    b"the following actions 'microsoft.monitor/accounts/data/metrics/read' on resource '/subscriptions/x/"
    b"resourcegroups/rg/providers/microsoft.monitor/accounts/ws'\"}"
)


def _run(ops: NoEndToEnd, clock: Clock) -> Outcome:
    return run_canary(PLAN, ops, Gate(), clock=clock, sleep=clock.sleep, deadline=10_000, log=lambda _: None)


def _refusing(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import urllib.error
    import urllib.request

    def refuse(request: object, timeout: float = 0) -> object:
        raise urllib.error.HTTPError("https://ws", 403, "Forbidden", {}, io.BytesIO(FORBIDDEN))  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_a_403_is_access_denied_with_the_fix_not_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from canary_gate import AccessDenied, PrometheusSource

    _refusing(monkeypatch)
    source = PrometheusSource("https://ws.westeurope.prometheus.monitor.azure.com", token=lambda: "t")
    with pytest.raises(AccessDenied) as denied:
        sample_from(source.query, VERSION)
    text = str(denied.value)
    assert "Monitoring Data Reader" in text and "scripts/bootstrap.sh" in text and "403" in text
    assert "microsoft.monitor/accounts/data/metrics/read" in text  # Azure's own words are kept

    clock = Clock()
    candidate = Candidate(clock)

    class Refused(NoEndToEnd):
        def sample(self) -> Sample:
            return sample_from(source.query, VERSION)

    outcome = _run(Refused(candidate), clock)
    assert not outcome.promoted and "Monitoring Data Reader" in outcome.reason
    assert "no data" not in outcome.reason and candidate.weight == 10  # stopped at the first check


def test_negative_control_a_source_that_reads_403_as_empty_hides_the_cause_as_no_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from canary_gate import AccessDenied, PrometheusSource

    _refusing(monkeypatch)
    source = PrometheusSource("https://ws.westeurope.prometheus.monitor.azure.com", token=lambda: "t")

    def swallowing(promql: str) -> dict[str, object]:
        try:
            return source.query(promql)
        except AccessDenied:
            return {"status": "success", "data": {"resultType": "vector", "result": []}}

    class Swallowed(NoEndToEnd):
        def sample(self) -> Sample:
            return sample_from(swallowing, VERSION)

    clock = Clock()
    outcome = _run(Swallowed(Candidate(clock)), clock)
    assert (
        not outcome.promoted
        and "no data" in outcome.reason
        and "Monitoring Data Reader" not in outcome.reason
    )


def test_deploy_checks_metric_access_before_the_candidate_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import release_canary

    import deploy

    _refusing(monkeypatch)
    released: list[object] = []
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", "sha256:" + "a" * 64))
    monkeypatch.setattr(deploy, "previous_commit", lambda stack: "b" * 40)
    monkeypatch.setattr(deploy, "stack_output", lambda stack, name: "https://ws.prometheus.monitor.azure.com")
    monkeypatch.setattr(
        deploy,
        "stack_outputs",
        lambda stack: {"prometheusQueryEndpoint": "https://ws.prometheus.monitor.azure.com"},
    )
    monkeypatch.setattr(deploy.CommandTools, "token", lambda self: "t")
    monkeypatch.setattr(
        release_canary, "release", lambda ctx, tools: released.append(ctx) or ("released", [])
    )
    monkeypatch.setattr(deploy, "SUPERVISOR", object())
    with pytest.raises(RuntimeError, match="Monitoring Data Reader"):
        deploy.canary_deploy("dev", VERSION, "c" * 40, [], "prometheusQueryEndpoint", 0.0)
    assert released == []  # nothing started: the previous release serves untouched

    # negative control: with access, the same call goes on to the release
    monkeypatch.setattr(deploy.CommandTools, "metrics_access", lambda self, version="": None)
    deploy.canary_deploy("dev", VERSION, "c" * 40, [], "prometheusQueryEndpoint", 0.0)
    assert len(released) == 1


# --- transient query failures: retried, then "no signal" ---------------------------------------------------


class Workspace:
    """A stand-in for urllib.request.urlopen at the workspace: `failures` answers 503 first (Prometheus's
    HTTP API answers 503 for a query that timed out or was aborted, prometheus.io/docs/prometheus/latest/
    querying/api/ "Format overview"), then healthy candidate numbers in the API's vector format."""

    def __init__(self, failures: float) -> None:
        self.failures, self.calls = failures, 0
        self.clock: Callable[[], float] = lambda: 0.0

    def __call__(self, request: object, timeout: float = 0) -> object:
        import io
        import json
        import urllib.error
        import urllib.parse

        self.calls += 1
        if self.calls <= self.failures:
            raise urllib.error.HTTPError("https://ws", 503, "Service Unavailable", {}, io.BytesIO(b"busy"))  # type: ignore[arg-type]
        promql = urllib.parse.parse_qs(request.data.decode())["query"][0]  # type: ignore[attr-defined]
        value = "0.05" if "histogram_quantile" in promql else "0" if 'status=~"5.."' in promql else "1200"
        if "timestamp(" in promql:  # interval_end: the interval that ended at this check
            value = str(self.clock())
        answer = {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, value]}]},
        }

        class Response(io.BytesIO):
            def __enter__(self) -> Response:
                return self

        return Response(json.dumps(answer).encode())


def _source(monkeypatch: pytest.MonkeyPatch, workspace: Workspace, clock: Clock) -> object:
    import urllib.request

    from canary_gate import PrometheusSource

    monkeypatch.setattr(urllib.request, "urlopen", workspace)
    workspace.clock = clock
    return PrometheusSource(
        "https://ws.westeurope.prometheus.monitor.azure.com", token=lambda: "t", sleep=clock.sleep
    )


def test_one_503_is_tried_again_and_a_healthy_candidate_is_promoted(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    workspace = Workspace(failures=1)
    source = _source(monkeypatch, workspace, clock)

    class Ops(NoEndToEnd):
        def sample(self) -> Sample:
            return sample_from(source.query, VERSION)  # type: ignore[attr-defined]

    outcome = _run(Ops(Candidate(clock)), clock)
    assert outcome.promoted, outcome.events
    assert workspace.calls > 3 * 6  # every check's three queries, plus the one tried again


def test_negative_control_without_the_retry_one_503_aborts_a_healthy_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    source = _source(monkeypatch, Workspace(failures=1), clock)

    class OneShot(NoEndToEnd):
        def sample(self) -> Sample:
            return sample_from(source._query, VERSION)  # type: ignore[attr-defined]  # one try, raises

    outcome = _run(OneShot(Candidate(clock)), clock)
    assert not outcome.promoted and "canary itself failed" in outcome.reason


def test_a_workspace_that_always_answers_503_holds_the_step_then_aborts_no_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    workspace = Workspace(failures=float("inf"))
    source = _source(monkeypatch, workspace, clock)
    gate = Gate()

    class Ops(NoEndToEnd):
        def sample(self) -> Sample:
            return sample_from(source.query, VERSION)  # type: ignore[attr-defined]

    plan = Plan.of([10, 50, 100], step_seconds=60, check_seconds=30, settle_seconds=THRESHOLDS.settle_seconds)
    candidate = Candidate(clock)
    outcome = run_canary(
        plan, Ops(candidate), gate, clock=clock, sleep=clock.sleep, deadline=10_000, log=lambda _: None
    )
    assert not outcome.promoted and "no data" in outcome.reason
    assert candidate.weight == 10 and gate.good_checks == 0 and gate.bad_in_a_row == 0
    assert clock() >= plan.step_seconds  # it held past the step's time before giving up
    assert all("could not be read (no signal): 3 tries failed: HTTP 503" in f[0] for _, f in gate.history)
    assert workspace.calls == 3 * len(gate.history)  # the first query of each check, tried 3 times


def test_401_and_403_are_never_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    from canary_gate import AccessDenied, PrometheusSource

    _refusing(monkeypatch)
    slept: list[float] = []
    source = PrometheusSource(
        "https://ws.westeurope.prometheus.monitor.azure.com", token=lambda: "t", sleep=slept.append
    )
    with pytest.raises(AccessDenied):
        source.query("vector(1)")
    assert slept == []


def test_a_token_failure_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from canary_gate import PrometheusSource, QueryUnavailable

    def no_token() -> str:
        raise RuntimeError("no token for https://prometheus.monitor.azure.com: AADSTS700024")

    slept: list[float] = []
    source = PrometheusSource(
        "https://ws.westeurope.prometheus.monitor.azure.com", token=no_token, sleep=slept.append
    )
    with pytest.raises(QueryUnavailable, match="AADSTS700024"):
        source.query("vector(1)")
    assert slept == [2.0, 4.0]


# --- every query names one metric the service exports (Azure Monitor's query API refuses any other) ---------

METRIC_NAME = re.compile(r"\b(muse_[a-z_]+)\b")


def _exported_metric_names() -> set[str]:
    """The names the service's own registry exposes (muse/app.py Metrics), with the counter and histogram
    suffixes of the exposition format."""
    from muse.app import Metrics
    from muse.config import Settings

    registry = Metrics(Settings.model_construct(version="v", git_revision="r", env="dev")).registry
    return {sample.name for family in registry.collect() for sample in family.samples}


def metric_matchers(promql: str) -> list[str]:
    """The metric names a PromQL expression selects (`__name__` matchers), PromQL's own words left out."""
    return METRIC_NAME.findall(promql)


def test_the_access_query_and_every_gate_query_name_exactly_one_exported_metric() -> None:
    """learn.microsoft.com/azure/azure-monitor/metrics/prometheus-api-promql, "API limitations": each query
    must contain a __name__ label matcher, and only one."""
    from canary_gate import ACCESS_QUERY

    exported = _exported_metric_names()
    for promql in [ACCESS_QUERY, *queries("sha256:" + "a" * 64).values()]:
        names = metric_matchers(promql)
        assert len(names) == 1 and names[0] in exported, (promql, names)


def test_negative_control_the_former_access_query_names_no_metric() -> None:
    assert metric_matchers("vector(1)") == []


def test_the_gates_role_and_data_action_are_the_access_models() -> None:
    """canary_gate (standard library only, it cannot import rbac/) names the role and the data action in its
    403 message; they must be the ones the bootstrap grants (rbac/roles.py) and the access model checks
    (rbac/arm.py): a renamed copy would send the person at 3 a.m. after the wrong role."""
    import canary_gate

    from rbac.arm import MONITOR_METRICS_READ
    from rbac.roles import Role

    assert Role.MONITORING_DATA_READER.value.name == canary_gate.MONITORING_DATA_READER
    assert canary_gate.METRICS_READ == MONITOR_METRICS_READ


def test_a_check_with_most_requests_failing_aborts_at_once_and_half_does_not() -> None:
    """canary_gate Thresholds.severe_error_ratio: more than half of the requests 5xx (at least 10) is one
    check's abort; exactly half, or a handful of requests, still needs the second bad check."""
    most = Gate()
    most.observe(Sample(60, 31, 0.05, interval_end=30.0))
    assert most.abort and "more than 50%" in most.verdict
    for sample in (Sample(60, 30, 0.05, interval_end=30.0), Sample(9, 9, 0.05, interval_end=30.0)):
        gate = Gate()
        assert gate.observe(sample) and not gate.abort  # bad, not yet an abort
        assert gate.observe(replace(sample, interval_end=60.0)) and gate.abort
        assert gate.verdict == "2 bad checks in a row"


def test_negative_control_without_the_one_check_abort_most_requests_failing_wait_a_second_check() -> None:
    gate = Gate(Thresholds(severe_error_ratio=1.0))
    gate.observe(Sample(60, 60, 0.05, interval_end=30.0))
    assert not gate.abort


def test_the_workspace_is_asked_for_the_counts_at_the_intervals_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP API's instant query takes the evaluation time as `time` (Unix seconds; prometheus.io/docs/
    prometheus/latest/querying/api/, "Instant queries"): the counts go out with the interval's end."""
    import urllib.parse
    import urllib.request

    clock = Clock()
    clock.now = 1765000000.0
    workspace = Workspace(failures=0)
    forms: list[dict[str, list[str]]] = []

    def recording(request: object, timeout: float = 0) -> object:
        forms.append(urllib.parse.parse_qs(request.data.decode()))  # type: ignore[attr-defined]
        return workspace(request, timeout)

    source = _source(monkeypatch, workspace, clock)
    monkeypatch.setattr(urllib.request, "urlopen", recording)
    sample = sample_from(source.query, VERSION)  # type: ignore[attr-defined]
    assert sample.interval_end == 1765000000.0
    assert [f.get("time") for f in forms] == [None, *[["1765000000.000"]] * 3]


class HidesPending(Gate):
    """Negative control: the stepper does not see a bad check that awaits the next one."""

    pending: int = 0

    def observe(self, sample: Sample) -> list[str]:
        self.bad_in_a_row = self.pending
        found = super().observe(sample)
        self.pending = self.bad_in_a_row
        if not self.abort:
            self.bad_in_a_row = 0
        return found


def test_a_bad_check_at_a_steps_end_holds_the_step_for_the_next_one() -> None:
    """The last step's last check is bad (the candidate turns bad at 180 s): the step holds for one more
    check, which confirms it, rather than promote on a doubt."""
    turns_bad = Candidate(Clock(), failing_fraction=lambda t: 0.3 if t >= 180 else 0.0)
    outcome = run(turns_bad)
    assert not outcome.promoted and "2 bad checks in a row at 100 %" in outcome.reason, outcome.events
    recovers = Candidate(Clock(), failing_fraction=lambda t: 0.3 if t == 180 else 0.0)
    assert run(recovers).promoted  # one bad interval, cleared by the next


def test_negative_control_a_step_that_ends_with_a_bad_check_pending_promotes() -> None:
    turns_bad = Candidate(Clock(), failing_fraction=lambda t: 0.3 if t >= 180 else 0.0)
    assert run(turns_bad, HidesPending()).promoted


def test_the_gates_own_queries_are_tried_before_anything_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy.py metrics_access(version) sends the gate's queries (counts at a `time`) before the candidate
    up: a workspace that refuses one of them (an HTTP 400) fails the job with the query named, nothing
    changed.
    Negative control: the access query alone does not notice."""
    import io
    import urllib.error

    import deploy

    asked: list[tuple[str, float | None]] = []

    class Refuses:
        def query(self, promql: str, at: float | None = None) -> dict[str, object]:
            asked.append((promql, at))
            if "timestamp(" in promql:
                body = io.BytesIO(b'{"status":"error","errorType":"bad_data","error":"unknown function"}')
                raise urllib.error.HTTPError("https://ws", 400, "Bad Request", {}, body)  # type: ignore[arg-type]
            return vector("1")

    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    monkeypatch.setattr(tools, "_prometheus", Refuses)
    tools.metrics_access()  # negative control: the access query alone passes
    with pytest.raises(RuntimeError, match="refused the canary gate's interval_end query"):
        tools.metrics_access(VERSION)
    monkeypatch.setattr(
        Refuses, "query", lambda self, promql, at=None: asked.append((promql, at)) or vector("1")
    )
    checked_time: list[object] = []  # then whether `time` is honoured (its own test below)
    monkeypatch.setattr(deploy, "evaluates_at_time", checked_time.append)
    asked.clear()
    tools.metrics_access(VERSION)
    assert len(checked_time) == 1
    assert {promql for promql, _ in asked} == {ACCESS_QUERY, *queries(VERSION).values()}
    assert all((at is None) == ("timestamp(" in p or p == ACCESS_QUERY) for p, at in asked)


@dataclass
class DataStops(Candidate):
    """A candidate whose metrics stop at 180 s (no newer interval after it): every later check reads the
    interval that ended at 180 s again. `last_good`: that interval was healthy."""

    last_good: bool = False

    def sample(self) -> Sample:
        ended = min(self.clock(), 180.0)
        requests = self.rps * 60 * self.weight / 100
        errors = 0.0 if self.last_good or ended < 180 else requests * 0.3
        return Sample(requests, errors, 0.05, interval_end=ended)


def test_a_bad_check_no_newer_interval_confirms_or_clears_aborts_on_the_doubt() -> None:
    outcome = run(DataStops(Clock()))
    assert not outcome.promoted and "not passed on a doubt" in outcome.reason, outcome.events


def test_negative_control_the_same_end_of_data_after_a_healthy_check_promotes() -> None:
    """What the abort above turns on is the pending bad check, not the data stopping: a healthy last interval
    ends the step as usual."""
    assert run(DataStops(Clock(), last_good=True)).promoted


class BuildInfo:
    """A workspace's build-info series scraped every 30 s at .250 past the second; `honours`: how it treats
    the `time` it is given (exactly / ignored, evaluating now / cut to whole seconds / `timestamp()` giving
    the evaluation time, as some PromQL engines did: thanos-io/promql-engine#204)."""

    def __init__(self, honours: str, now: float = 1_765_000_100.0) -> None:
        self.honours, self.now = honours, now

    def query(self, promql: str, at: float | None = None) -> dict[str, object]:
        when = self.now if at is None or self.honours == "ignored" else at
        if at is not None and self.honours == "seconds":
            when = float(int(at))
        newest = (when - 0.25) // 30 * 30 + 0.25  # the newest scrape at or before `when`
        if self.honours == "evaluation-time" and at is not None:
            newest = at
        return vector(f"{newest:.3f}")


class TwoPods(BuildInfo):
    """Build info from two pods scraped 0.3 s apart, the second pod's newest sample ingested only after the
    first read: a workspace that honours `time` exactly."""

    def __init__(self) -> None:
        super().__init__("exactly")
        self.reads = 0

    def query(self, promql: str, at: float | None = None) -> dict[str, object]:
        self.reads += 1
        a = (self.now - 0.25) // 30 * 30 + 0.25  # pod A's newest sample
        when = self.now if at is None else at
        samples = [a, a - 30, *([a + 0.3, a - 29.7] if self.reads > 1 else [a - 29.7])]
        return vector(f"{max(t for t in samples if t <= when):.3f}")


def test_a_second_pods_sample_ingested_between_the_reads_is_not_a_wrong_time() -> None:
    import deploy

    deploy.evaluates_at_time(TwoPods())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("honours", "fails"),
    [("exactly", False), ("ignored", True), ("seconds", True), ("evaluation-time", True)],
)
def test_deploy_checks_the_workspace_evaluates_at_the_time_it_is_given(honours: str, fails: bool) -> None:
    """deploy.py evaluates_at_time, before anything changes: the gate's counts are read at their interval's
    end; a workspace that ignored `time`, or cut it to whole seconds, would read another interval silently.
    The exact workspace is the negative control: the check itself passes there."""
    import deploy

    if fails:
        with pytest.raises(RuntimeError, match="does not evaluate a query at the `time`"):
            deploy.evaluates_at_time(BuildInfo(honours))  # type: ignore[arg-type]
    else:
        deploy.evaluates_at_time(BuildInfo(honours))  # type: ignore[arg-type]
