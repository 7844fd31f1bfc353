"""The canary gate against a workspace that shows data late, as managed Prometheus does: the candidate's
counters scraped every 30 s, each sample queryable `lag` s after its scrape (60 s unless a test says; the
gate waits for up to 120 s: canary_gate.Thresholds says where those figures come from). The gate reads it
through its real PromQL (canary_gate.queries / sample_from); the stand-in evaluates those queries the way
Prometheus does over the samples visible at the time: the range `[180s]` is the samples in (now - 180 s,
now] (`offset o` shifts it back by o), `irate` the rate between the last two of them (the newest alone
after a counter reset: prometheus/prometheus promql/functions.go, instantValue), fewer than two give an
empty result, `timestamp()` of a bare selector the newest sample's time within the 5-minute look-back
(prometheus.io/docs/prometheus/latest/querying/functions/#irate, querying/basics/ "offset modifier"); the
former `clamp_min(idelta(...), 0)`, their difference clamped at 0 (#idelta), is kept for the negative
control of a reset. The former look-back's `increase` over [now - window, now] (the difference between the
first and the last sample in the range, #increase) is kept for the negative control of one bad interval.

The candidate's traffic is the canary's load Job as the program renders it for dev
(components/muse_workload/canary_load.py: its rate and duration read from the Job's command, its pod ended at
activeDeadlineSeconds), started and deleted by scripts/ci/release_canary.py, plus the weight's share of any
user traffic.

What it shows: a good candidate is promoted, each step's evidence taken from data that can include the step's
own traffic; a bad one is stopped in its first step; a candidate nobody sends traffic to is never promoted
("no data" holds the step, then aborts). Negative controls: without the settle time the lag makes a good
candidate fail for lack of data; a gate that took no data as healthy would promote the silent one; the dev
release without its load aborts "no data".
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

import release_canary
from canary import Outcome, Plan, run_canary
from canary_gate import THRESHOLDS, Gate, Sample, queries, sample_from, scalar
from engine import Supervisor

import deploy
from bench.canary import TYPICAL_LAG_SECONDS
from components.muse_workload import canary_load
from stack.args import stack_workload_spec
from tests.workflows.test_release_canary import Step  # the stepper ops' step result double

VERSION = "sha256:" + "d" * 64
SCRAPE, MAX_LAG = THRESHOLDS.scrape_seconds, THRESHOLDS.max_ingestion_lag_seconds
LAG = TYPICAL_LAG_SECONDS  # the usual case here, as in bench/canary.py
STEP = 60


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def dev_load_job(step_seconds: int = STEP) -> dict[str, Any]:
    """The load Job the dev stack renders for a candidate (stack output museCanaryLoad)."""
    spec = replace(stack_workload_spec("dev"), candidate_image_tag=VERSION, canary_step_seconds=step_seconds)
    return canary_load.job(spec)


@dataclass
class LaggingWorkspace:
    """The candidate's pods and the workspace behind them. Traffic per second: the load Jobs running
    (`start_load`/`stop_load`: a Job sends its command's rate from its start until its command's duration,
    its activeDeadlineSeconds or its deletion, whichever comes first), plus the weight's share of
    `user_rps`; `failing` of it answers 5xx. Counters exist at 0 from the pod's start (the service creates its
    series before any request)."""

    clock: Clock
    user_rps: float = 0.0
    failing: float = 0.0
    failing_at: dict[int, float] = field(default_factory=dict)  # weight -> 5xx share while at it
    bad: dict[float, float] = field(default_factory=dict)  # scrape time -> 5xx share of the 30 s before it
    weight: int = 0
    totals: list[tuple[float, float, float]] = field(default_factory=lambda: [(0.0, 0.0, 0.0)])
    weights: list[tuple[float, int]] = field(default_factory=list)
    loads: list[list[float]] = field(default_factory=list)  # [start, end, requests per second]
    restart: float | None = None  # the scrape after which the candidate's counters start again from 0
    lag: float = LAG  # how long after its scrape a sample shows in the workspace
    epoch: float = 0.0  # what the workspace's timestamps add to the clock (Prometheus: Unix seconds)
    query_seconds: float = 0.0  # how long each query takes
    end_to_end_seconds: float = 0.0  # how long the end-to-end check takes (a Job's pod start and its POSTs)
    load_start_seconds: float = 0.0  # how long a load Job's pod takes to start sending

    def start_load(self, job: dict[str, Any], weight: int = 0) -> None:
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        rate, seconds = float(command[5]), float(command[6])
        begins = self.clock() + self.load_start_seconds  # the pod's start: its command runs from then
        ends = min(begins + seconds, self.clock() + float(job["spec"]["activeDeadlineSeconds"]))
        self.loads.append([begins, ends, rate])

    def stop_load(self, job: dict[str, Any] | None = None) -> None:
        self._advance()
        for load in self.loads:
            load[1] = min(load[1], self.clock())

    def _load_requests(self, start: float, end: float) -> float:
        return sum(max(0.0, min(end, e) - max(start, s)) * rps for s, e, rps in self.loads)

    def _user_requests(self, start: float, end: float) -> float:
        """The users' requests the route sent the candidate in (start, end]: its weight over time (0 before
        the first move), so an interval the weight moved in counts each weight for its part of it."""
        changes = [(t, w) for t, w in self.weights if t < end]
        shares, weight, since = 0.0, 0, start
        for t, w in changes:
            if t > since:
                shares += weight * (t - since)
                since = t
            weight = w
        shares += weight * (end - since)
        return self.user_rps * shares / 100

    def _advance(self) -> None:
        """Scrape every SCRAPE seconds up to now: (scrape time, requests total, 5xx total)."""
        while self.totals[-1][0] + SCRAPE <= self.clock():
            at, requests, errors = self.totals[-1]
            new = self._load_requests(at, at + SCRAPE) + self._user_requests(at, at + SCRAPE)
            failing = self.bad.get(at + SCRAPE, self.failing_at.get(self.weight, self.failing))
            if at == self.restart:  # the pod restarted: its counters count this interval only
                requests, errors = 0.0, 0.0
            self.totals.append((at + SCRAPE, requests + new, errors + new * failing))

    def set_weight(self, weight: int) -> None:
        self._advance()
        self.weight = weight
        self.weights.append((self.clock(), weight))

    def end_to_end(self) -> tuple[bool, str]:
        self.clock.sleep(self.end_to_end_seconds)
        return True, "200"

    def query(self, promql: str, at: float | None = None) -> dict[str, object]:
        """Evaluated at `at` (the API's `time`) or now, over the samples queryable now."""
        self.clock.sleep(self.query_seconds)
        self._advance()
        now = self.clock() if at is None else at - self.epoch
        visible = [
            t for t in self.totals if t[0] + self.lag <= self.clock()
        ]  # scraped at t, shown from t + lag
        if promql.startswith("max(timestamp("):  # the newest sample (5 min look-back), `offset` shifting it
            shift = re.search(r"offset (\d+)s", promql)
            at = now - (int(shift.group(1)) if shift else 0)
            newest = [t[0] for t in visible if at - 300 < t[0] <= at][-1:]
            stamp = [{"metric": {}, "value": [now, str(newest[0] + self.epoch)]}] if newest else []
            return {"status": "success", "data": {"resultType": "vector", "result": stamp}}
        ranged = re.search(r"\[(\d+)s\](?: offset (\d+)s)?", promql)
        assert ranged, promql
        window, offset = int(ranged.group(1)), int(ranged.group(2) or 0)
        if "irate(" in promql or "idelta(" in promql:  # the gate's: (now - offset - window, now - offset]
            at = now - offset
            samples = [t for t in visible if at - window < t[0] <= at][-2:]
        else:  # the former look-back: increase over [now - window, now]
            samples = [t for t in visible if now - window <= t[0] <= now]
        if len(samples) < 2:
            return {"status": "success", "data": {"resultType": "vector", "result": []}}

        def change(i: int) -> float:
            before, last = samples[0][i], samples[-1][i]
            if "irate(" in promql:  # a reset: the newest sample is the change; times SCRAPE / 30 s: a count
                return last if last < before else last - before
            return max(0.0, last - before)  # increase (no reset here) or clamp_min(idelta)

        requests, errors = change(1), change(2)
        kind = (
            "p95" if "histogram_quantile" in promql else "errors" if 'status=~"5.."' in promql else "requests"
        )
        value = {"requests": requests, "errors": errors, "p95": 0.05 if requests else float("nan")}[kind]
        return {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [now, str(value)]}]},
        }

    def sample(self) -> Sample:
        return sample_from(self.query, VERSION)


def idelta_queries(version: str) -> dict[str, str]:
    """The gate's queries with the former `clamp_min(idelta(...), 0)` in place of irate (negative control)."""
    return {
        kind: re.sub(rf"irate\(([^()]*)\) \* {SCRAPE}", r"clamp_min(idelta(\1), 0)", promql)
        for kind, promql in queries(version).items()
    }


def former_queries(version: str, window_seconds: int) -> dict[str, str]:
    """The gate's former PromQL (negative control): a look-back over the whole step plus the settle time."""
    selector = f'version="{version}",route!~"/healthz|/readyz"'
    window = f"[{window_seconds}s]"
    return {
        "requests": f"sum(increase(muse_http_requests_total{{{selector}}}{window}))",
        "errors": f'sum(increase(muse_http_requests_total{{{selector},status=~"5.."}}{window}))',
        "p95": f"histogram_quantile(0.95, sum by (le) (rate(muse_http_request_duration_seconds_bucket"
        f"{{{selector}}}{window})))",
    }


class FormerLookBack(LaggingWorkspace):
    """The same workspace read as the gate read it before: each check over the step plus 90 s (150 s)."""

    def sample(self) -> Sample:
        q = former_queries(VERSION, STEP + SCRAPE + LAG)
        return Sample(
            scalar(self.query(q["requests"])) or 0.0,
            scalar(self.query(q["errors"])) or 0.0,
            scalar(self.query(q["p95"])),
        )


class BlindGate(Gate):
    """Negative control: a gate that takes a window without data as a healthy check, and as evidence."""

    def healthy_since(self, started: float) -> bool:
        return bool(self.history) and not self.history[-1][1]

    def observe(self, sample: Sample) -> list[str]:
        if not sample.has_signal:
            self.history.append((sample, []))
            self.bad_in_a_row = 0
            return []
        return super().observe(sample)


@dataclass
class Stepped:
    """The stepper's operations with each step's load as release_canary runs it (test_release_canary.py):
    the previous step's load deleted, the weight moved, this step's load started. `job` {}: no load."""

    workspace: LaggingWorkspace
    job: dict[str, Any]

    def set_weight(self, weight: int) -> None:
        self.workspace.stop_load()
        self.workspace.set_weight(weight)
        if self.job:
            self.workspace.start_load(self.job)

    def sample(self) -> Sample:
        return self.workspace.sample()

    def end_to_end(self) -> tuple[bool, str]:
        return self.workspace.end_to_end()


def run(workspace: LaggingWorkspace, plan: Plan, gate: Gate | None = None, *, load: bool = True) -> Outcome:
    ops = Stepped(workspace, dev_load_job(plan.step_seconds) if load else {})
    return run_canary(
        plan, ops, gate or Gate(), clock=workspace.clock, sleep=workspace.clock.sleep,
        deadline=10_000, log=lambda _: None,
    )  # fmt: skip


LAGGED = Plan.of([10, 50, 100], STEP, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
NO_SETTLE = Plan.of([10, 50, 100], STEP, THRESHOLDS.check_seconds)


def test_a_check_reads_the_newest_scrape_interval_the_workspace_has() -> None:
    # the last two samples of each series up to the judged interval's end, one missed scrape allowed
    assert THRESHOLDS.window_seconds == 3 * SCRAPE
    assert THRESHOLDS.check_seconds == SCRAPE  # consecutive checks, consecutive intervals
    for lag in (0, LAG, MAX_LAG):
        workspace = LaggingWorkspace(Clock(), user_rps=10.0, lag=lag)
        workspace.set_weight(100)
        workspace.clock.sleep(400)
        sample = workspace.sample()
        newest = max(t for t, _, _ in workspace.totals if t + lag <= 400)
        assert (sample.interval_end, sample.requests) == (newest, 10.0 * SCRAPE), lag


# One scrape interval, (30 s, 60 s] of the 10 % step, with a fifth of its requests answered 5xx.
ONE_BAD_INTERVAL = {60.0: 0.2}
TWO_BAD_INTERVALS = {60.0: 0.2, 90.0: 0.2}


def test_one_bad_interval_is_one_bad_check_and_the_candidate_is_promoted() -> None:
    """canary_gate's claim: a single bad scrape does not abort; two bad checks in a row do."""
    gate = Gate()
    outcome = run(LaggingWorkspace(Clock(), bad=ONE_BAD_INTERVAL), LAGGED, gate)
    assert outcome.promoted, outcome.events
    assert sum(1 for _, found in gate.history if any("5xx" in f for f in found)) == 1


def test_two_bad_intervals_in_a_row_abort() -> None:
    outcome = run(LaggingWorkspace(Clock(), bad=TWO_BAD_INTERVALS), LAGGED)
    assert not outcome.promoted and "2 bad checks in a row" in outcome.reason and "5xx" in outcome.reason


@dataclass
class SlowQueries(LaggingWorkspace):
    """Each query takes 2 s, as a real one may: the check at a step's end can follow the previous one by less
    than a scrape interval (canary.py sleeps only what is left of the step), so both read the same two
    samples."""

    query_seconds: float = 2.0


# Steps where, with 2 s queries, a step's last check reads the interval the check before it read.
LONG_STEPS = Plan.of([10, 50, 100], 225, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)


def read_twice() -> dict[float, float]:
    """The scrape interval two checks in a row read (a step's last check soon after the one before it), as
    a bad one: a fifth of its requests 5xx."""
    gate = Gate()
    assert run(SlowQueries(Clock()), LONG_STEPS, gate).promoted
    [first, *_] = [s.interval_end for s, found in gate.history if any("judged already" in f for f in found)]
    assert first is not None
    return {first: 0.2}


def test_one_bad_interval_read_twice_at_a_step_end_counts_once() -> None:
    gate = Gate()
    outcome = run(SlowQueries(Clock(), bad=read_twice()), LONG_STEPS, gate)
    assert outcome.promoted, outcome.events
    assert sum(1 for _, found in gate.history if any("5xx" in f for f in found)) == 1
    assert any("judged already" in f for _, found in gate.history for f in found), "no repeat read: no test"


class ForgetfulGate(Gate):
    """Negative control: the gate without its record of the intervals judged (each read counts anew)."""

    def observe(self, sample: Sample) -> list[str]:
        self.judged_until = None
        return super().observe(sample)


def test_negative_control_without_the_interval_end_the_repeat_read_aborts() -> None:
    outcome = run(SlowQueries(Clock(), bad=read_twice()), LONG_STEPS, ForgetfulGate())
    assert not outcome.promoted and "2 bad checks in a row" in outcome.reason, outcome.events


@dataclass
class FormerIdelta(LaggingWorkspace):
    """Read through the former `clamp_min(idelta(...), 0)` (negative control)."""

    def sample(self) -> Sample:
        q = idelta_queries(VERSION)
        assert all("idelta(" in q[k] for k in ("requests", "errors", "p95"))
        return Sample(
            scalar(self.query(q["requests"])) or 0.0,
            scalar(self.query(q["errors"])) or 0.0,
            scalar(self.query(q["p95"])),
            interval_end=scalar(self.query(q["interval_end"])),
        )


# A candidate pod that restarts after the scrape at 90 s and answers a third of the interval's requests 5xx.
RESTARTED = {"restart": 90.0, "bad": {120.0: 0.34}}


def test_a_counter_reset_still_shows_the_restarted_pods_errors() -> None:
    gate = Gate()
    run(LaggingWorkspace(Clock(), **RESTARTED), LAGGED, gate)  # type: ignore[arg-type]
    bad = [(sample, found) for sample, found in gate.history if any("5xx" in f for f in found)]
    assert [sample.interval_end for sample, _ in bad] == [120.0], gate.history


def test_negative_control_idelta_clamped_at_zero_hides_the_errors_of_a_reset() -> None:
    gate = Gate()
    outcome = run(FormerIdelta(Clock(), **RESTARTED), LAGGED, gate)  # type: ignore[arg-type]
    assert not any("5xx" in f for _, found in gate.history for f in found), outcome.events


def test_one_5xx_per_check_holds_and_five_percent_fires() -> None:
    """The dev load: 2 requests/s, 60 per scrape interval. One 5xx in each (1.7 % > 1 %, but one request) is
    what a candidate with rare errors (0.1 % and less) shows at worst; 5 % is 3 in each."""
    assert run(LaggingWorkspace(Clock(), failing=0.001), LAGGED).promoted
    gate = Gate()
    assert run(LaggingWorkspace(Clock(), failing=1 / 60), LAGGED, gate).promoted, gate.history
    assert any(sample.errors == 1 and sample.requests == 60 for sample, _ in gate.history), "no 1-of-60 check"
    outcome = run(LaggingWorkspace(Clock(), failing=0.05), LAGGED)
    assert not outcome.promoted and "5xx 5.0% of 60 requests" in outcome.reason, outcome.events


def test_negative_control_without_a_minimum_count_one_5xx_per_check_aborts() -> None:
    any_5xx = Gate(replace(THRESHOLDS, min_errors=0))
    outcome = run(LaggingWorkspace(Clock(), failing=1 / 60), LAGGED, any_5xx)
    assert not outcome.promoted and "2 bad checks in a row" in outcome.reason


@pytest.mark.parametrize("lag", [0, 30, 60, 90, 119, 120])
def test_the_lag_the_gate_tolerates_a_good_candidate_is_promoted(lag: float) -> None:
    outcome = run(LaggingWorkspace(Clock(), lag=lag), LAGGED)
    assert outcome.promoted, outcome.events
    assert not run(LaggingWorkspace(Clock(), lag=lag, failing=0.3), LAGGED).promoted


@pytest.mark.parametrize("lag", [240, 270, 400])
def test_beyond_the_waited_for_lag_a_step_runs_out_of_time_and_aborts_no_data(lag: float) -> None:
    """The documented limit (docs/architecture/ci-cd.md, docs/runbook.md): a step waits for its own data up to
    its settle time (two scrapes, 120 s of lag, a check) and one check more: beyond a lag of 150 s it may run
    out (here, checks on the scrape grid, from 240 s), and beyond the 5-minute look-back there is no data."""
    outcome = run(LaggingWorkspace(Clock(), lag=lag), LAGGED)
    assert not outcome.promoted and "no data" in outcome.reason


def test_negative_control_the_former_look_back_aborts_on_one_bad_interval() -> None:
    """Over the step plus 90 s, the one bad interval stays in every check for minutes: two bad checks in a row
    from a single 30 s blip."""
    outcome = run(FormerLookBack(Clock(), bad=ONE_BAD_INTERVAL), LAGGED)
    assert not outcome.promoted and "2 bad checks in a row" in outcome.reason


@pytest.mark.parametrize("lag", [0, LAG, MAX_LAG])
def test_a_good_candidate_is_promoted_on_evidence_from_its_own_step(lag: float) -> None:
    workspace, gate = LaggingWorkspace(Clock(), lag=lag), Gate()
    outcome = run(workspace, LAGGED, gate)
    assert outcome.promoted, outcome.events
    starts = [t for t, _ in workspace.weights]
    # Each step waited until a healthy check judged an interval that began after its weight move, which
    # shows a scrape interval and the lag after it at the earliest ...
    assert all(later - earlier >= SCRAPE + lag for earlier, later in itertools.pairwise(starts))
    judged = [s.interval_end for s, found in gate.history if s.has_signal and not found]
    for start, end in itertools.pairwise([*starts, workspace.clock() + 1]):
        assert any(e is not None and start <= e - SCRAPE and e <= end for e in judged), (start, judged)
    # ... and no longer than the gate's settle time (and one check) when its time was shorter
    longest = LAGGED.longest_step_seconds
    assert all(later - earlier <= longest for earlier, later in itertools.pairwise(starts))
    assert any("holding for data" in text for _, text in outcome.events) == (lag >= LAG)


def test_a_bad_candidate_is_stopped_in_its_first_step() -> None:
    workspace = LaggingWorkspace(Clock(), failing=0.3)
    outcome = run(workspace, LAGGED)
    assert not outcome.promoted and "bad checks in a row at 10 %" in outcome.reason
    assert [w for _, w in workspace.weights] == [10]


def test_no_traffic_is_never_promoted_the_step_holds_then_aborts() -> None:
    silent = LaggingWorkspace(Clock())
    outcome = run(silent, LAGGED, load=False)
    assert not outcome.promoted and "no data" in outcome.reason
    assert [w for _, w in silent.weights] == [10]
    assert outcome.decided_at == LAGGED.longest_step_seconds  # held for the data, bounded


def test_negative_control_a_gate_that_takes_no_data_as_healthy_promotes_the_silent_candidate() -> None:
    silent = LaggingWorkspace(Clock())
    assert run(silent, LAGGED, BlindGate(), load=False).promoted


def test_negative_control_without_the_settle_time_the_longest_lag_fails_a_good_candidate() -> None:
    assert run(LaggingWorkspace(Clock(), lag=MAX_LAG), LAGGED).promoted
    outcome = run(LaggingWorkspace(Clock(), lag=MAX_LAG), NO_SETTLE)
    assert not outcome.promoted and "no data" in outcome.reason


def test_negative_control_without_load_dev_has_no_signal_and_with_users_only_it_has() -> None:
    """The load is what gives dev a signal; prod's users alone would do (and the gate does not care whose
    requests they are, only that they are the candidate's)."""
    assert not run(LaggingWorkspace(Clock()), LAGGED, load=False).promoted
    assert run(LaggingWorkspace(Clock(), user_rps=20.0), LAGGED, load=False).promoted


# --- evidence from the step's own traffic, and how long a failing candidate serves -----------------------


class AgeGate(Gate):
    """Negative control: the former evidence rule, a healthy check at least a fixed settle time (the former
    120 s: offset 90 s + one interval) into the step, whatever interval it read."""

    def __init__(self, clock: Clock, settle: float = 120.0) -> None:
        super().__init__()
        self.clock, self.settle = clock, settle

    def healthy_since(self, started: float) -> bool:
        sample, found = self.history[-1]
        return sample.has_signal and not found and self.clock() - started >= self.settle


def test_a_step_passes_only_on_its_own_traffic_whatever_the_lag() -> None:
    """A candidate that fails only under the full traffic, at the longest lag the gate waits for: the last
    step holds until an interval of its own traffic shows, and that aborts it."""
    workspace = LaggingWorkspace(Clock(), lag=MAX_LAG, failing_at={100: 0.3})
    outcome = run(workspace, LAGGED)
    assert not outcome.promoted and "bad checks in a row at 100 %" in outcome.reason, outcome.events


def test_negative_control_an_age_rule_passes_the_last_step_on_the_previous_steps_traffic() -> None:
    clock = Clock()
    outcome = run(LaggingWorkspace(clock, lag=MAX_LAG, failing_at={100: 0.3}), LAGGED, AgeGate(clock))
    assert outcome.promoted, outcome.events


DEFAULT_STEP = stack_workload_spec("prod").canary_step_seconds
PHASES = [phase / 2 for phase in range(0, 2 * SCRAPE)]  # the step's start after a scrape, every 0.5 s


# As a release in Azure may take them: each query 2 s, the end-to-end check inside the step 15-60 s (a Job's
# pod start and 20 POSTs; budgeted 60 s, release_canary), which moves the checks against the scrapes.
QUERY_SECONDS, END_TO_END_SECONDS = 2.0, (15.0, 30.0, 45.0, 60.0)


def exposure(
    step_seconds: int, lag: float, phase: float, failing: float, gate: Gate | None = None, e2e: float = 45.0
) -> float:
    """How long a candidate that fails `failing` of its requests from its first one serves its 10 % before
    the abort, the step starting `phase` s after a scrape (users' traffic only: its failed requests are
    `failing` x 10 % of the users' rate x this), with queries and the end-to-end check taking their time."""
    clock = Clock()
    clock.now = phase
    workspace = LaggingWorkspace(
        clock, user_rps=20.0, failing=failing, lag=lag, query_seconds=QUERY_SECONDS, end_to_end_seconds=e2e
    )
    plan = Plan.of([10, 100], step_seconds, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
    outcome = run(workspace, plan, gate, load=False)
    assert not outcome.promoted and "at 10 %" in outcome.reason, outcome.events
    assert outcome.decided_at is not None
    [(moved, _)] = workspace.weights  # from the weight move (after the end-to-end check before any traffic)
    return outcome.decided_at - (moved - phase)


def worst_exposure(step: int, lag: float, failing: float, gate: type[Gate] = Gate) -> float:
    """The longest exposure over every scrape phase and end-to-end check time."""
    return max(exposure(step, lag, p, failing, gate(), e2e) for p in PHASES for e2e in END_TO_END_SECONDS)


def share_of_one_step(step: int, served: float, failing: float) -> float:
    """Failed requests / the canary's share of one step's requests, the abort's route patch at its bound
    (deploy.py ROUTE_PATCH_SECONDS) served too."""
    return failing * (served + deploy.ROUTE_PATCH_SECONDS) / step


@pytest.mark.parametrize("lag", [0, LAG, MAX_LAG])
@pytest.mark.parametrize("failing", [1.0, 0.6, 0.5, 0.2, 0.1])
def test_a_failing_candidate_fails_at_most_its_share_of_one_step(lag: float, failing: float) -> None:
    """The issue's goal for any failure ratio: failed requests <= the canary's share of one step's traffic.
    The stack's step (its default, the shortest stack/config.py accepts) is the gate's detection time: it
    holds whatever the phase, the end-to-end check's time and the failure ratio (docs/architecture/ci-cd.md,
    "The detection time", quotes the worst figures)."""
    worst = worst_exposure(DEFAULT_STEP, lag, failing)
    assert share_of_one_step(DEFAULT_STEP, worst, failing) <= 1.0
    assert worst <= THRESHOLDS.detection_seconds == DEFAULT_STEP
    if failing > THRESHOLDS.severe_error_ratio:  # one check: a check sooner
        assert worst <= THRESHOLDS.severe_detection_seconds


class TwoChecksAlways(Gate):
    """Negative control: the gate without its one-check abort for a candidate failing most requests."""

    def __init__(self) -> None:
        super().__init__(replace(THRESHOLDS, severe_error_ratio=1.0))


def test_one_check_stops_a_candidate_failing_most_requests_a_check_sooner() -> None:
    one = worst_exposure(DEFAULT_STEP, MAX_LAG, 1.0)
    two = worst_exposure(DEFAULT_STEP, MAX_LAG, 1.0, TwoChecksAlways)  # negative control
    assert two > one


def test_negative_control_a_step_shorter_than_the_detection_time_lets_it_fail_more() -> None:
    """The former default step of 120 s (now refused by stack/config.py): at the longest lag the failing
    candidate serves longer than its step, so it fails more than its share of one step's requests."""
    assert share_of_one_step(120, worst_exposure(120, MAX_LAG, 1.0), 1.0) > 1.0


# --- the whole dev release, through release_canary, with the load Job the dev stack renders -----------------

ROUTE = (
    "urn:pulumi:dev::muse::muse:kubernetes:MuseWorkload$kubernetes:gateway.networking.k8s.io/v1:HTTPRoute::r"
)


@dataclass
class DevTools:
    """release_canary.Tools over the lagging workspace: the candidate up, the targeted weight moves, the
    load Jobs (`museCanaryLoad`: the dev stack's, or {} for the negative control), the gate's queries."""

    workspace: LaggingWorkspace
    load_job: dict[str, Any]
    config: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def config_set(self, values: dict[str, str], cwd: str | None = None) -> Step:
        self.config.update(values)
        return Step("pulumi config set")

    def up(self, message: str, *, target: str | None = None, cwd: str | None = None) -> Step:
        if target == ROUTE:
            self.workspace.set_weight(int(self.config.get("muse:canaryWeight", "0")))
        self.log.append("up" + (" --target" if target else "") + (" (rollback)" if cwd else ""))
        return Step("pulumi up")

    def outputs(self) -> dict[str, Any]:
        check = {"spec": {"template": {"spec": {"containers": [{"image": VERSION}]}}}}
        return {
            "museRouteUrn": ROUTE,
            "museCanary": {"steps": [10, 50, 100], "stepSeconds": STEP},
            "museEvaluateChecks": {"muse": check, "muse-candidate": check},
            "museCanaryLoad": self.load_job,
        }

    def verify(self, checks: dict[str, Any], track: str) -> list[Step]:
        return [Step("rollout check")]

    def end_to_end(self, job: dict[str, Any]) -> tuple[bool, str]:
        return self.workspace.end_to_end()

    def start_load(self, job: dict[str, Any], weight: int) -> None:
        self.log.append(f"load {weight}")
        self.workspace.start_load(job)

    def stop_load(self, job: dict[str, Any]) -> None:
        self.workspace.stop_load()

    def sample(self, version: str) -> Sample:
        assert version == VERSION
        return sample_from(self.workspace.query, VERSION)

    def converged(self, cwd: str | None = None) -> Step:
        return Step("convergence check")

    def checkout(self, commit: str) -> str:
        return "/tmp/previous"


def release(workspace: LaggingWorkspace, load_job: dict[str, Any]) -> tuple[str, list[str], DevTools]:
    clock = workspace.clock
    ctx = release_canary.Context(
        stack="dev", image=VERSION, previous="sha256:" + "a" * 64, commit="2" * 40, previous_commit="1" * 40,
        supervisor=Supervisor(deadline=10_000, clock=clock), hard_deadline=20_000, clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    tools = DevTools(workspace, load_job)
    result, lines = release_canary.release(ctx, tools)
    return result, lines, tools


def test_the_dev_release_with_its_load_promotes_a_good_candidate() -> None:
    workspace = LaggingWorkspace(Clock())  # dev: no users at all
    result, lines, tools = release(workspace, dev_load_job())
    assert result == release_canary.PROMOTED, lines
    assert [e for e in tools.log if e.startswith("load")] == ["load 10", "load 50", "load 100"]
    # every load was deleted when its step ended, none ran past the canary
    assert all(end <= workspace.clock() for _, end, _ in workspace.loads)
    assert any("holding for data" in line for line in lines)  # the evidence still waited for the lag


def test_negative_control_the_dev_release_without_its_load_aborts_no_data() -> None:
    workspace = LaggingWorkspace(Clock())
    result, lines, tools = release(workspace, {})
    assert result == release_canary.ABORTED
    assert any("no data" in line for line in lines) and "up (rollback)" in tools.log


def test_the_dev_release_with_its_load_stops_a_candidate_that_fails_its_requests() -> None:
    workspace = LaggingWorkspace(Clock(), failing=0.05)  # 5 % of every request, the load's too
    result, lines, _ = release(workspace, dev_load_job())
    assert result == release_canary.ABORTED and any("bad checks in a row at 10 %" in line for line in lines)


# --- one check, one interval: its counts and its label from the same scrape --------------------------------


def former_sample_from(query: Any, version: str) -> Sample:
    """Negative control: the former check, every query evaluated now (over `[180s]`, the range that held the
    newest two samples up to 120 s of lag) and the interval's end asked last."""
    window = f"[{THRESHOLDS.window_seconds}s]"
    q = {kind: promql.replace(window, "[180s]") for kind, promql in queries(version).items()}
    return Sample(
        scalar(query(q["requests"])) or 0.0,
        scalar(query(q["errors"])) or 0.0,
        scalar(query(q["p95"])),
        interval_end=scalar(query(q["interval_end"])),
    )


def mislabelled_checks(read: Any) -> int:
    """Checks whose 5xx count is not that of the interval their `interval_end` names, over 120 checks of a
    workspace where each query takes 2 s (so a scrape often turns queryable between a check's queries) and
    each interval fails a different share of its requests."""
    workspace = SlowQueries(Clock(), user_rps=20.0, bad={30.0 * k: (k % 7) / 10 for k in range(1, 400)})
    workspace.set_weight(100)
    wrong = judged = 0
    for _ in range(120):
        workspace.clock.sleep(23.0)
        sample = read(workspace.query, VERSION)
        ends = {at: errors for at, _, errors in workspace.totals}
        end = sample.interval_end
        if end is None or end - SCRAPE not in ends:  # no data yet (the lag), or one sample only
            continue
        judged += 1
        wrong += abs(sample.errors - (ends[end] - ends[end - SCRAPE])) > 1e-6
    assert judged > 100
    return wrong


def test_a_checks_counts_are_those_of_the_interval_it_names() -> None:
    assert mislabelled_checks(sample_from) == 0


def test_negative_control_counts_read_now_are_sometimes_another_intervals() -> None:
    assert mislabelled_checks(former_sample_from) > 0


# --- the clocks: the samples' timestamps and the stepper's wall clock --------------------------------------

EPOCH = 1_765_000_000.0  # the workspace stamps Unix seconds; the tests' clock starts at 0


def test_with_the_right_wall_clock_epoch_stamps_judge_the_step_as_before() -> None:
    clock = Clock()
    workspace = LaggingWorkspace(clock, lag=MAX_LAG, failing_at={100: 0.3}, epoch=EPOCH)
    outcome = run_canary(
        LAGGED, Stepped(workspace, dev_load_job(LAGGED.step_seconds)), Gate(), clock=clock, sleep=clock.sleep,
        deadline=10_000, log=lambda _: None, wall=lambda: clock() + EPOCH,
    )  # fmt: skip
    assert not outcome.promoted and "at 100 %" in outcome.reason, outcome.events


def test_a_wall_clock_that_is_not_the_samples_clock_aborts_and_says_so() -> None:
    """release_canary passing `clock` (time.monotonic) where `wall` (time.time) belongs: every interval would
    look as if it began after the move, the age rule again (the candidate failing at 100 % promoted below)."""
    clock = Clock()
    workspace = LaggingWorkspace(clock, lag=MAX_LAG, failing_at={100: 0.3}, epoch=EPOCH)
    outcome = run(workspace, LAGGED)  # wall defaults to the stepper's clock: seconds since 0
    assert not outcome.promoted and "not the same clock" in outcome.reason, outcome.events


def test_negative_control_without_the_clock_check_the_wrong_clock_promotes_a_failing_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import canary

    monkeypatch.setattr(canary, "clocks_disagree", lambda sample, now: "")
    workspace = LaggingWorkspace(Clock(), lag=MAX_LAG, failing_at={100: 0.3}, epoch=EPOCH)
    assert run(workspace, LAGGED).promoted


def judged_gaps(former: bool = False) -> list[float]:
    """Gaps between the consecutive scrape intervals a long step's checks judged, with 2 s queries.
    `former`: every sleep at least a whole check interval, as the former loop slept after each check's
    queries (negative control)."""
    workspace = SlowQueries(Clock(), user_rps=20.0)
    clock, gate = workspace.clock, Gate()

    def sleep(seconds: float) -> None:
        clock.sleep(max(seconds, THRESHOLDS.check_seconds) if former else seconds)

    outcome = run_canary(
        LONG_STEPS, Stepped(workspace, {}), gate, clock=clock, sleep=sleep, deadline=10_000,
        log=lambda _: None,
    )  # fmt: skip
    assert outcome.promoted, outcome.events
    ends = sorted({s.interval_end for s, _ in gate.history if s.has_signal and s.interval_end is not None})
    return [later - earlier for earlier, later in itertools.pairwise(ends) if later - earlier > SCRAPE]


def test_checks_a_check_interval_apart_judge_every_scrape_interval() -> None:
    """canary.py starts each check a check interval after the previous one STARTED: the queries' own time
    does not add up, so no scrape interval goes unjudged."""
    assert judged_gaps() == []


def test_negative_control_a_full_check_interval_after_each_checks_queries_skips_intervals() -> None:
    assert judged_gaps(former=True)


# --- too few requests to judge -------------------------------------------------------------------------


def test_a_handful_of_requests_all_failing_is_not_a_pass() -> None:
    """Without the load Job and with hardly any users (0.9 requests/s, 10 % of it the candidate's: ~3 per
    interval), a candidate failing every request shows fewer 5xx than a bad check needs (3). Such checks are
    no signal, not healthy: the 10 % step holds and aborts "no data" instead of promoting."""
    workspace = LaggingWorkspace(Clock(), user_rps=0.9, failing=1.0)
    outcome = run(workspace, LAGGED, load=False)
    assert not outcome.promoted and [w for _, w in workspace.weights] == [10], outcome.events
    assert any("too few to judge" in text for _, text in outcome.events)


def test_negative_control_without_a_minimum_count_two_failed_requests_pass_the_step() -> None:
    workspace = LaggingWorkspace(Clock(), user_rps=0.9, failing=1.0)
    run(workspace, LAGGED, Gate(replace(THRESHOLDS, min_requests=1)), load=False)
    assert 50 in [w for _, w in workspace.weights]


@pytest.mark.parametrize("lag", [LAG, MAX_LAG])
def test_a_load_pod_that_starts_late_still_gives_each_step_its_evidence(lag: float) -> None:
    """The load Job's pod may take its start-up budget (canary_load.START_SECONDS) before sending: every step
    still finds a healthy interval of its own traffic in time, at every scrape phase, with 2 s queries and a
    45 s end-to-end check (dev: no users, the load alone)."""
    plan = Plan.of([10, 100], DEFAULT_STEP, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
    for phase in PHASES[::6]:
        clock = Clock()
        clock.now = phase
        workspace = LaggingWorkspace(
            clock, lag=lag, query_seconds=QUERY_SECONDS, end_to_end_seconds=45.0,
            load_start_seconds=canary_load.START_SECONDS,
        )  # fmt: skip
        assert run(workspace, plan).promoted, (phase, lag)


def test_negative_control_a_load_pod_that_never_gets_going_in_time_aborts_no_data() -> None:
    """Started past what the step can wait for, the load gives no evidence: "no data", never a pass."""
    plan = Plan.of([10, 100], DEFAULT_STEP, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
    workspace = LaggingWorkspace(Clock(), lag=MAX_LAG, load_start_seconds=float(plan.longest_step_seconds))
    outcome = run(workspace, plan)
    assert not outcome.promoted and "no data" in outcome.reason
