"""The canary bench's own logic on synthetic counts, not timed: the goal verdict (bench/canary.py `judge`),
the managed Prometheus timing model it puts between the access log and the release's real gate (scrape grid,
ingestion lag, the gate's PromQL answered through canary_gate.sample_from), and the stack config it runs.

The model follows Prometheus's documented behaviour: a range selector reads the samples stamped inside the
window and `irate()` of fewer than two samples is empty
(prometheus.io/docs/prometheus/latest/querying/functions/#irate); a sample is queryable only the ingestion
lag after its scrape (canary_gate.Thresholds: 30 s scrape, up to 120 s of lag; the bench models 60 s). Each
check has a negative control: the defect it guards against, shown to change the answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.canary import THRESHOLDS as GATE
from bench.canary import (
    AccessLog,
    Entry,
    Gate,  # the release's gate, as the bench imports it
    Timing,
    Workspace,
    first_step_rps,
    judge,
    parse_log_line,
    visible_scrapes,
    window_counts,
)

CANDIDATE, STABLE = 41001, 41002


def failing_traffic(start: float, end: float, per_second: int = 10, every: int = 4) -> list[Entry]:
    """The candidate answering `per_second` requests, one in `every` a 500 (the broken evaluate)."""
    entries = []
    for i in range(int((end - start) * per_second)):
        at = start + (i + 0.5) / per_second
        entries.append(Entry(at, CANDIDATE, 500 if i % every == 0 else 200, 0.01, "/api/v1/policies"))
    return entries


class FixedLog(AccessLog):
    def __init__(self, entries: list[Entry]) -> None:
        super().__init__(Path("/nonexistent/access.log"))
        self.entries = list(entries)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the goal verdict -------------------------------------------------------------------------------------


def test_the_failed_bound_is_the_first_steps_share_of_one_steps_traffic() -> None:
    verdict = judge(
        "evaluate-fails", first_share=10, step_seconds=12, rps=500, failed=600,
        first_bad_check_at=100.0, abort_at=103.0, promoted=False,
    )  # fmt: skip
    assert verdict["failed_bound"] == 600  # 10 % x 500 rps x 12 s
    assert verdict["goals"]["failed_within_first_step_share"] is True
    assert verdict["goals"]["abort_within_one_step_of_first_bad_check"] is True
    assert verdict["all_met"]


def test_negative_control_one_failed_request_over_the_bound_fails_the_goal() -> None:
    verdict = judge(
        "evaluate-fails", first_share=10, step_seconds=12, rps=500, failed=601,
        first_bad_check_at=100.0, abort_at=103.0, promoted=False,
    )  # fmt: skip
    assert verdict["goals"]["failed_within_first_step_share"] is False and not verdict["all_met"]


def test_negative_control_an_abort_later_than_one_step_after_the_first_bad_check_fails() -> None:
    verdict = judge(
        "evaluate-fails", first_share=10, step_seconds=12, rps=500, failed=0,
        first_bad_check_at=100.0, abort_at=112.5, promoted=False,
    )  # fmt: skip
    assert verdict["goals"]["abort_within_one_step_of_first_bad_check"] is False and not verdict["all_met"]


def test_negative_control_a_promoted_bad_candidate_never_meets_the_abort_goal() -> None:
    verdict = judge(
        "evaluate-fails", first_share=10, step_seconds=12, rps=500, failed=0,
        first_bad_check_at=None, abort_at=None, promoted=True,
    )  # fmt: skip
    assert verdict["goals"]["abort_within_one_step_of_first_bad_check"] is False and not verdict["all_met"]


def test_an_abort_before_any_traffic_needs_no_abort_timing() -> None:
    verdict = judge(
        "evaluate-fails", first_share=10, step_seconds=12, rps=500, failed=0,
        first_bad_check_at=None, abort_at=None, promoted=False,
    )  # fmt: skip
    assert verdict["goals"]["abort_within_one_step_of_first_bad_check"] is None and verdict["all_met"]


@pytest.mark.parametrize(("failed", "met"), [(0, True), (1, False)])
def test_never_ready_allows_no_failed_request(failed: int, met: bool) -> None:
    verdict = judge(
        "never-ready", first_share=10, step_seconds=12, rps=500, failed=failed,
        first_bad_check_at=None, abort_at=None, promoted=None,
    )  # fmt: skip
    assert verdict["goals"]["never_ready_no_failed"] is met and verdict["all_met"] is met


@pytest.mark.parametrize(
    ("promoted", "failed", "met"), [(True, 0, True), (False, 0, False), (True, 3, False)]
)
def test_the_good_candidate_control_is_promoted_without_failures(
    promoted: bool, failed: int, met: bool
) -> None:
    verdict = judge(
        "good", first_share=10, step_seconds=12, rps=500, failed=failed,
        first_bad_check_at=None, abort_at=None, promoted=promoted,
    )  # fmt: skip
    assert verdict["all_met"] is met


def test_the_bound_takes_the_rate_of_the_first_step_not_the_runs_mean() -> None:
    # The candidate failing every request it got while at 10 % for a whole 21 s step, at the step's own 1,900
    # rps, plus 14 in flight during the reload back: over one step's 10 % share at that rate.
    steps = [
        {"weight": 10, "seconds": 21.0, "requests": 39_900, "candidate_requests": 3_990},
        {"weight": 0, "seconds": 3.0, "requests": 7_200, "candidate_requests": 14},
    ]
    rate = first_step_rps(steps, run_rps=2_100.0)
    assert rate == 1_900.0

    def verdict(rps: float) -> bool:
        return judge(
            "fails-all", first_share=10, step_seconds=21, rps=rps, failed=4_004,
            first_bad_check_at=18.0, abort_at=21.0, promoted=False,
        )["goals"]["failed_within_first_step_share"]  # fmt: skip

    assert verdict(rate) is False  # 4,004 > 10 % x 1,900 x 21 = 3,990
    # Negative control: the run's mean rate (higher before the release and after the abort) inflates the
    # bound (4,410) and lets the same run pass.
    assert verdict(2_100.0) is True


def test_without_a_weight_move_the_runs_mean_rate_is_the_only_rate() -> None:
    assert first_step_rps([], run_rps=2_100.0) == 2_100.0
    assert first_step_rps([{"weight": 0, "seconds": 3.0, "requests": 10}], run_rps=5.0) == 5.0


# --- the timing model ---------------------------------------------------------------------------------------


def test_a_sample_is_read_only_after_its_scrape_and_the_lag() -> None:
    # Scrapes at ..., 0, 30, 60; lag 60: the scrape at 30 is queryable from 90 on, not at 89.
    assert visible_scrapes(anchor=0, scrape=30, lag=60, now=89, window=210)[-1] == 0
    assert visible_scrapes(anchor=0, scrape=30, lag=60, now=90, window=210)[-1] == 30
    # The range selector's lower edge: only samples stamped within [now - window, now].
    assert visible_scrapes(anchor=0, scrape=30, lag=60, now=90, window=60) == [30]


def test_the_candidates_failures_reach_the_query_a_scrape_and_the_lag_late() -> None:
    entries = failing_traffic(0.5, 200)
    # At 89 the newest queryable sample is the scrape at 0: the series exist (at 0) but show no request yet.
    assert window_counts(entries, CANDIDATE, 89, 210, 30, 60, anchor=0) == (0.0, 0.0, None)
    # A window holding a single sample has no irate() at all: no data.
    assert window_counts(entries, CANDIDATE, 89, 30, 30, 60, anchor=0) is None
    requests, errors, _ = window_counts(entries, CANDIDATE, 90, 210, 30, 60, anchor=0) or (0, 0, None)
    assert requests == 295 and errors == pytest.approx(requests / 4, abs=1)  # (0, 30] only


def test_negative_control_without_scrape_and_lag_the_same_failures_show_at_once() -> None:
    entries = failing_traffic(0.5, 200)
    requests, errors, _ = window_counts(entries, CANDIDATE, 10, 210, 0, 0, anchor=0, check=30) or (0, 0, None)
    assert requests > 0 and errors > 0


def test_other_upstreams_and_probe_routes_are_not_the_candidates_traffic() -> None:
    entries = [
        *failing_traffic(0.5, 60),
        Entry(10, STABLE, 500, 0.01, "/api/v1/evaluate"),
        Entry(11, CANDIDATE, 500, 0.01, "/readyz"),
    ]
    requests, _, _ = window_counts(entries, CANDIDATE, 100, 210, 0, 0, anchor=0, check=100) or (0, 0, None)
    assert requests == len(failing_traffic(0.5, 60))


def test_the_log_line_parser_takes_the_upstream_that_answered_after_a_retry() -> None:
    retried = f"12.5 127.0.0.1:{STABLE}, 127.0.0.1:{CANDIDATE} 500 0.000, 0.020 POST /api/v1/evaluate"
    entry = parse_log_line(retried)
    assert entry == Entry(12.5, CANDIDATE, 500, 0.02, "/api/v1/evaluate")
    assert parse_log_line("12.5 - 400 - GET /") is None  # nginx answered itself


def checks_until_abort(timing: Timing, signal: str, entries: list[Entry], anchor: float = 0.0) -> list[float]:
    """The release's gate fed every check interval from the workspace model; its bad checks to the abort."""
    thresholds = timing.thresholds(signal)
    plan = timing.plan(signal)
    clock = Clock()
    lag = timing.workspace_lag(signal)
    workspace = Workspace(FixedLog(entries), CANDIDATE, thresholds, lag=lag, anchor=anchor, clock=clock)
    gate, bad = Gate(thresholds), []
    for check in range(1, 40):
        clock.now = check * plan.check_seconds
        sample = workspace.sample()
        before = gate.bad_in_a_row
        gate.observe(sample)
        if gate.bad_in_a_row > before or gate.abort:  # "no signal" is not a bad check (canary_gate)
            bad.append(clock.now)
        if gate.abort:
            return bad
    raise AssertionError("the gate never aborted")


def test_through_the_real_gate_the_lag_delays_the_first_bad_check_by_scrape_and_lag() -> None:
    timing = Timing.of_stack("prod", scale=1)  # the workspace's lag 60 s
    entries = failing_traffic(0.5, 400)  # checks at 30, 60, ... from the step's start at 0
    # A scrape at 0, the next at 30: the gate reads the newest interval there, so (0, 30], queryable from 90,
    # at 90 and (30, 60] at 120.
    assert checks_until_abort(timing, "azure", entries) == [90, 120]
    # The slow alignment: the first bad request just missed a scrape (0.4 < 0.5), so its interval
    # (0.4, 30.4] is queryable just after the check at 90: bad at 120 and 150.
    assert checks_until_abort(timing, "azure", entries, anchor=0.4) == [120, 150]
    assert checks_until_abort(timing, "immediate", entries) == [30, 60]  # negative control: no lag
    # At the longest lag the gate waits for (120 s), the slow alignment takes scrape + lag + 2 checks here
    # (checks on the grid, instant queries); the gate's detection time adds a first interval too short to
    # count and the checks' own time: the shortest step stack/config.py accepts.
    slowest = Timing.of_stack("prod", scale=1, lag_seconds=GATE.max_ingestion_lag_seconds)
    assert checks_until_abort(slowest, "azure", entries) == [150, 180]
    assert checks_until_abort(slowest, "azure", entries, anchor=0.4)[-1] == 210 <= GATE.detection_seconds


def test_the_bench_runs_the_stacks_canary_config_and_a_config_edit_changes_it() -> None:
    timing = Timing.of_stack("prod")
    assert (timing.steps, timing.step_seconds) == ((10, 100), 240)  # Pulumi.yaml defaults, prod sets none
    assert (timing.scrape_seconds, timing.gate_lag_seconds) == (
        GATE.scrape_seconds,
        GATE.max_ingestion_lag_seconds,
    )
    plan = timing.plan()
    assert (plan.step_seconds, plan.check_seconds, plan.settle_seconds) == (24, 3, 21)  # / 10
    edited = Timing.of_stack("prod", overrides={"muse:canarySteps": [5, 100], "muse:canaryStepSeconds": 240})
    assert edited.plan().steps == (5, 100) and edited.plan().step_seconds == 24


def test_a_scale_that_does_not_divide_the_durations_is_refused() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        Timing.of_stack("prod", scale=7).plan()
