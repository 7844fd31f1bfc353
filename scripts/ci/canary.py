"""The canary stepper: moves the candidate's share of the Gateway's traffic up in steps while the gate holds.

    outcome = run_canary(plan, ops, Gate(), clock=time.monotonic, sleep=time.sleep, deadline=...)

The end-to-end check before any traffic; then, per weight of the plan, the weight move, the end-to-end check
and gate checks until the step's time is up. The gate's abort stops it at once; a step holds (no data is
not a pass) until a healthy check of a scrape interval that began after its weight move, or aborts "no
data". The deadline is checked before each step and wait. The caller moves the weight back on any abort.
Standard library only. Why: docs/architecture/ci-cd.md#the-canary-stepper."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from canary_gate import Gate, Sample

# The newest sample a check reads lies within Prometheus's look-back (5 min by default,
# --query.lookback-delta: prometheus.io/docs/prometheus/latest/querying/basics/, "Staleness") before the
# workspace's now; this much either side of that is clock skew at most. Beyond it, the sample's clock and
# the `wall` clock the stepper compares it with are not the same clock (e.g. time.monotonic passed for
# time.time), and "an interval that began after the weight move" would mean nothing.
LOOK_BACK_SECONDS = 300
CLOCK_SKEW_SECONDS = 60


def clocks_disagree(sample: Sample, now: float) -> str:
    """Why the sample's timestamp cannot be on the `now` clock ("" when it can)."""
    end = sample.interval_end
    if end is None or now - LOOK_BACK_SECONDS - CLOCK_SKEW_SECONDS <= end <= now + CLOCK_SKEW_SECONDS:
        return ""
    return (
        f"the metrics' newest sample is stamped {end:.0f}, {end - now:+.0f} s from this runner's clock "
        f"({now:.0f}): they are not the same clock (or the workspace keeps a sample longer than "
        f"{LOOK_BACK_SECONDS} s and the candidate is no longer scraped), so no check can show the step's own "
        "traffic"
    )


@dataclass(frozen=True)
class Plan:
    steps: tuple[int, ...]  # percent of the traffic on the candidate, increasing, ending at 100
    step_seconds: int
    check_seconds: int
    # The longest until a check can judge the step's own traffic (canary_gate Thresholds.settle_seconds): the
    # step holds for its evidence up to this, and one check more. 0: the step's time alone.
    settle_seconds: int = 0
    overhead_seconds: int = 0  # each step's weight move, before its time starts (release_canary.py figure)

    def __post_init__(self) -> None:
        problems = []
        if not self.steps or list(self.steps) != sorted(set(self.steps)) or self.steps[-1] != 100:
            problems.append(f"steps {list(self.steps)} must increase strictly and end at 100")
        if any(not 0 < s <= 100 for s in self.steps):
            problems.append(f"steps {list(self.steps)} must each be 1-100")
        if self.check_seconds <= 0 or self.step_seconds < 2 * self.check_seconds:
            problems.append(
                f"a step of {self.step_seconds} s must hold at least two checks of {self.check_seconds} s"
            )
        if self.settle_seconds < 0 or self.overhead_seconds < 0:
            problems.append(
                f"settle {self.settle_seconds} s and overhead {self.overhead_seconds} s must be >= 0"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def of(
        cls,
        steps: Sequence[int],
        step_seconds: int,
        check_seconds: int,
        settle_seconds: int = 0,
        overhead_seconds: int = 0,
    ) -> Plan:
        return cls(
            tuple(int(s) for s in steps),
            int(step_seconds),
            int(check_seconds),
            int(settle_seconds),
            int(overhead_seconds),
        )

    @property
    def longest_step_seconds(self) -> int:
        """A step's time plus the hold for its evidence: what the deadline must leave for each step."""
        return max(self.step_seconds, self.settle_seconds) + self.check_seconds

    @property
    def step_budget_seconds(self) -> int:
        """What the deadline must leave before a step starts: its weight move, then its time (its end-to-end
        check runs within it) and hold; stack/config.py's rule counts the same per step."""
        return self.overhead_seconds + self.longest_step_seconds


class Ops(Protocol):
    def set_weight(self, weight: int) -> None: ...
    def sample(self) -> Sample: ...
    def end_to_end(self) -> tuple[bool, str]: ...


@dataclass
class Outcome:
    promoted: bool
    reason: str
    weight: int  # the candidate's share when the canary ended
    events: list[tuple[float, str]] = field(default_factory=list)
    first_bad_check_at: float | None = None
    decided_at: float | None = None


def run_canary(
    plan: Plan,
    ops: Ops,
    gate: Gate,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    deadline: float,
    log: Callable[[str], None] = print,
    wall: Callable[[], float] | None = None,
) -> Outcome:
    """`clock` times the steps and the deadline; `wall` is the clock of the samples' timestamps (the
    release's: time.time, Prometheus's are epoch seconds), default `clock`."""
    wall = wall or clock
    start = clock()
    outcome = Outcome(False, "", 0)

    def note(text: str) -> None:
        outcome.events.append((round(clock() - start, 2), text))
        log(f"canary: {text}")

    def stop(reason: str) -> Outcome:
        outcome.reason, outcome.decided_at = reason, clock() - start
        note(f"ABORT: {reason}")
        return outcome

    try:
        ok, detail = ops.end_to_end()
        note(f"end-to-end check before any traffic: {'passed' if ok else 'FAILED'} ({detail})")
        if not ok:
            return stop(f"the end-to-end check failed before any traffic: {detail}")
        for weight in plan.steps:
            if clock() + plan.step_budget_seconds > deadline:
                return stop(f"the deadline leaves no time for the {weight} % step")
            ops.set_weight(weight)
            outcome.weight = weight
            step_start, step_started_at = clock(), wall()
            note(f"candidate at {weight} %")
            ok, detail = ops.end_to_end()
            if not ok:
                return stop(f"the end-to-end check failed at {weight} %: {detail}")
            evidence = False  # a healthy check of an interval that began after this step's weight move
            check_at = step_start + plan.check_seconds
            # A step ends once its time is up, it has its evidence, and no bad check awaits the next one.
            while clock() - step_start < plan.step_seconds or not evidence or gate.bad_in_a_row:
                age = clock() - step_start
                if age >= plan.longest_step_seconds:
                    if evidence:  # a bad check, neither confirmed nor cleared by a newer interval
                        return stop(
                            f"a bad check at {weight} % was not followed by a newer interval within "
                            f"{plan.longest_step_seconds} s: not passed on a doubt"
                        )
                    return stop(
                        f"no signal (no data) from the candidate at {weight} % within "
                        f"{plan.longest_step_seconds} s (its time, or the scrape and the longest "
                        "ingestion lag the gate waits for): never passed blind"
                    )
                # Checks a check interval apart from one START to the next (their queries take time, which
                # would otherwise add up and skip scrape intervals), the step's end being one of them.
                due = check_at if age >= plan.step_seconds else min(check_at, step_start + plan.step_seconds)
                sleep(max(0.0, due - clock()))
                check_at = clock() + plan.check_seconds
                sample = ops.sample()
                disagree = clocks_disagree(sample, wall())
                if disagree:
                    return stop(disagree)
                bad_before = gate.bad_in_a_row
                found = gate.observe(sample)
                judged_bad = gate.bad_in_a_row > bad_before or gate.abort  # not "no signal", not "too few"
                if judged_bad and outcome.first_bad_check_at is None:
                    outcome.first_bad_check_at = clock() - start
                evidence = evidence or gate.healthy_since(step_started_at)
                held = " (holding for data)" if clock() - step_start > plan.step_seconds else ""
                note(f"check at {weight} %{held}: {'; '.join(found) or 'healthy'}")
                if gate.abort:
                    return stop(f"{gate.verdict} at {weight} %: {'; '.join(found)}")
    except Exception as error:  # any failure aborts (the caller moves the weight back)
        return stop(f"the canary itself failed: {type(error).__name__}: {error}")
    outcome.promoted, outcome.reason, outcome.decided_at = True, "every step held", clock() - start
    note("every step held: promote")
    return outcome
