"""The canary gate against a workspace that shows data late, as managed Prometheus does: the candidate's
counters scraped every 30 s, each sample queryable 60 s after its scrape (canary_gate.Thresholds says where
those figures come from). The gate reads it through its real PromQL (canary_gate.queries / sample_from); the
stand-in evaluates those three queries the way Prometheus does over the samples visible at the time
(prometheus.io/docs/prometheus/latest/querying/functions/#increase: the difference between the first and the
last sample in the range; fewer than two samples give an empty result).

What it shows: a good candidate is promoted, each step's evidence taken from data that can include the step's
own traffic; a bad one is stopped in its first step; a candidate nobody sends traffic to is never promoted
("no data" holds the step, then aborts). Negative controls: without the settle time the lag makes a good
candidate fail for lack of data; a gate that took no data as healthy would promote the silent one.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

from canary import Outcome, Plan, run_canary
from canary_gate import THRESHOLDS, Gate, Sample, queries, sample_from

VERSION = "sha256:" + "d" * 64
SCRAPE, LAG = THRESHOLDS.scrape_seconds, THRESHOLDS.ingestion_lag_seconds
STEP = 60


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LaggingWorkspace:
    """The candidate's pods and the workspace behind them. Traffic per second: `load_rps` of synthetic load
    sent to the candidate from the first weight move on (what the deploy's load Job does), plus its weight's
    share of `user_rps`; `failing` of it answers 5xx. Counters exist at 0 from the pod's start (the service
    creates its series before any request)."""

    clock: Clock
    load_rps: float = 2.0
    user_rps: float = 0.0
    failing: float = 0.0
    weight: int = 0
    started: float | None = None
    totals: list[tuple[float, float, float]] = field(default_factory=lambda: [(0.0, 0.0, 0.0)])
    weights: list[tuple[float, int]] = field(default_factory=list)

    def _advance(self) -> None:
        """Scrape every SCRAPE seconds up to now: (scrape time, requests total, 5xx total)."""
        while self.totals[-1][0] + SCRAPE <= self.clock():
            at, requests, errors = self.totals[-1]
            rps = (self.load_rps if self.started is not None else 0.0) + self.user_rps * self.weight / 100
            new = rps * SCRAPE
            self.totals.append((at + SCRAPE, requests + new, errors + new * self.failing))

    def set_weight(self, weight: int) -> None:
        self._advance()
        self.weight = weight
        self.weights.append((self.clock(), weight))
        if self.started is None:
            self.started = self.clock()

    def end_to_end(self) -> tuple[bool, str]:
        return True, "200"

    def query(self, promql: str) -> dict[str, object]:
        self._advance()
        window = int(re.search(r"\[(\d+)s\]", promql).group(1))  # type: ignore[union-attr]
        now = self.clock()
        # The range is [now - window, now] of *sample* time; a sample scraped at t shows from t + LAG.
        visible = [t for t in self.totals if now - window <= t[0] <= now and t[0] + LAG <= now]
        if len(visible) < 2:
            return {"status": "success", "data": {"resultType": "vector", "result": []}}
        requests = visible[-1][1] - visible[0][1]
        errors = visible[-1][2] - visible[0][2]
        kind = next(k for k, q in queries(VERSION, window).items() if q == promql)
        value = {"requests": requests, "errors": errors, "p95": 0.05 if requests else float("nan")}[kind]
        return {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [now, str(value)]}]},
        }

    def sample(self) -> Sample:
        return sample_from(self.query, VERSION, window_seconds=THRESHOLDS.window_for(STEP))


class BlindGate(Gate):
    """Negative control: a gate that takes a window without data as a healthy check."""

    def observe(self, sample: Sample) -> list[str]:
        if not sample.has_signal:
            self.history.append((sample, []))
            self.bad_in_a_row = 0
            self.good_checks += 1
            return []
        return super().observe(sample)


def run(workspace: LaggingWorkspace, plan: Plan, gate: Gate | None = None) -> Outcome:
    return run_canary(
        plan, workspace, gate or Gate(), clock=workspace.clock, sleep=workspace.clock.sleep,
        deadline=10_000, log=lambda _: None,
    )  # fmt: skip


LAGGED = Plan.of([10, 50, 100], STEP, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
NO_SETTLE = Plan.of([10, 50, 100], STEP, THRESHOLDS.check_seconds)


def test_the_query_window_covers_a_step_and_the_lag() -> None:
    assert THRESHOLDS.window_for(STEP) >= STEP + SCRAPE + LAG


def test_a_good_candidate_is_promoted_on_evidence_from_its_own_step() -> None:
    workspace = LaggingWorkspace(Clock())
    outcome = run(workspace, LAGGED)
    assert outcome.promoted, outcome.events
    starts = [t for t, _ in workspace.weights]
    # Each step waited until data that can include its own traffic was visible (>= settle time into it).
    assert all(later - earlier >= THRESHOLDS.settle_seconds for earlier, later in itertools.pairwise(starts))
    assert any("holding for data" in text for _, text in outcome.events)


def test_a_bad_candidate_is_stopped_in_its_first_step() -> None:
    workspace = LaggingWorkspace(Clock(), failing=0.3)
    outcome = run(workspace, LAGGED)
    assert not outcome.promoted and "bad checks in a row at 10 %" in outcome.reason
    assert [w for _, w in workspace.weights] == [10]


def test_no_traffic_is_never_promoted_the_step_holds_then_aborts() -> None:
    silent = LaggingWorkspace(Clock(), load_rps=0.0)
    outcome = run(silent, LAGGED)
    assert not outcome.promoted and "no data" in outcome.reason
    assert [w for _, w in silent.weights] == [10]
    assert outcome.decided_at == LAGGED.longest_step_seconds  # held for the data, bounded


def test_negative_control_a_gate_that_takes_no_data_as_healthy_promotes_the_silent_candidate() -> None:
    silent = LaggingWorkspace(Clock(), load_rps=0.0)
    assert run(silent, LAGGED, BlindGate()).promoted


def test_negative_control_without_the_settle_time_the_lag_fails_a_good_candidate() -> None:
    workspace = LaggingWorkspace(Clock())
    outcome = run(workspace, NO_SETTLE)
    assert not outcome.promoted and "no data" in outcome.reason


def test_negative_control_without_load_dev_has_no_signal_and_with_users_only_it_has() -> None:
    """The load is what gives dev a signal; prod's users alone would do (and the gate does not care whose
    requests they are, only that they are the candidate's)."""
    assert not run(LaggingWorkspace(Clock(), load_rps=0.0), LAGGED).promoted
    assert run(LaggingWorkspace(Clock(), load_rps=0.0, user_rps=20.0), LAGGED).promoted
