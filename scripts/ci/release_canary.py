"""A release as a canary, and its abort: the whole release undone (scripts/ci/deploy.py --canary).

    result, lines = release(ctx, tools)

Candidate up next to the stable image at weight 0; canary.py moves the weights, each step with its own load
Job; promotion rolls the stable Deployment to the new image and the candidate goes. An abort first sends all
traffic to the stable Service with one `kubectl patch` (seconds), then sets weight 0 by a targeted `pulumi
up` (minutes; the fallback if the patch failed), then deploys the previously deployed commit's program and
image again from a worktree, undoing config, routes and Azure changes too. A convergence check follows
either. Standard library only. Why: docs/architecture/ci-cd.md#the-canary-release."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from canary import Plan, run_canary
from canary_gate import THRESHOLDS, Gate, Sample
from engine import LOCKED as LOCKED_TEXT
from engine import Cancelled, Supervisor, lock_hint
from update_message import canary_message, deploy_message, rollback_message

PROMOTED, ABORTED, ROLLBACK_FAILED = "released", "canary-aborted", "rollback-failed"
# The candidate up found the stack locked (a stale lock without pending operations, which recover() does not
# see, or a person's update): the backend takes the lock before the update starts (pulumi/pulumi
# pkg/backend/diy/backend.go Update -> Lock, lock.go checkForLock), so nothing changed and nothing is undone -
# an abort's rollback would only fail on the same lock.
LOCKED = "stack-locked"
NOT_CONVERGED = "released-not-converged"
CONVERGENCE_UNKNOWN = "released-convergence-interrupted"  # the preview was stopped: no answer either way
# Kept between the canary's last step and the release's deadline: the promotion's `pulumi up --refresh`
# (the stable Deployment's rollout), the rollout, smoke and end-to-end checks, the convergence preview.
PROMOTION_SECONDS = 12 * 60
# Each canary step first moves the weight, then (canary.py) runs an end-to-end check inside the step's own
# time (the step's clock starts when the weight is in place), and the canary starts with one end-to-end check
# before any traffic. stack/config.py's budget counts the move per step and the check once; the stepper's
# deadline check counts the move (Plan.overhead_seconds). Estimates, not measurements (only a real release
# times them; its log has each command's start):
# - the weight move: `pulumi config set` and `pulumi up --target <route>`: the CLI and its plugins start,
#   the whole program runs (2.0 s under the offline engine, docs/benchmarks.md "Offline plan"), the policy
#   pack, and one targeted update (untargeted resources are `same` without a diff, pulumi/pulumi
#   pkg/resource/deploy/step_generator.go) - budgeted 90 s;
# - the end-to-end check (check_job.py): a Job's pod start-up (~10-20 s in the bench, docs/benchmarks.md
#   "Canary") and 20 requests, polled every 2 s - budgeted 60 s; past its own 240 s timeout it fails the
#   step anyway;
# - the checks' own time past the step's longest (its last check starts there and sends four queries, ~2 s
#   each in tests/workflows/test_canary_lag.py; a retry after a transient failure more) - budgeted 30 s,
#   so a step that held its last check does not leave the next step without its time.
WEIGHT_MOVE_SECONDS = 90
END_TO_END_SECONDS = 60
CHECK_QUERIES_SECONDS = 30
STEP_OVERHEAD_SECONDS = WEIGHT_MOVE_SECONDS + CHECK_QUERIES_SECONDS


class Result(Protocol):
    ok: bool
    output: str

    def describe(self) -> str: ...


class Tools(Protocol):
    """The commands a canary release runs (deploy.py's real ones; a recording fake in tests)."""

    def config_set(self, values: dict[str, str], cwd: str | None = None) -> Result: ...
    def up(self, message: str, *, target: str | None = None, cwd: str | None = None) -> Result: ...
    def outputs(self) -> dict[str, Any]: ...
    def verify(self, checks: dict[str, Any], track: str) -> list[Result]: ...
    def end_to_end(self, job: dict[str, Any]) -> tuple[bool, str]: ...
    def start_load(self, job: dict[str, Any], weight: int) -> None: ...
    def stop_load(self, job: dict[str, Any]) -> None: ...
    def sample(self, version: str) -> Sample: ...
    def converged(self, cwd: str | None = None) -> Result: ...
    def checkout(self, commit: str) -> str: ...
    def route_to_stable(self) -> Result: ...


@dataclass
class Context:
    stack: str
    image: str  # the candidate
    previous: str  # the image the stack runs now
    commit: str
    previous_commit: str | None  # whose program runs now (None: unknown)
    supervisor: Supervisor  # deploy.py's: its deadline ends the release; the abort gets the hard deadline
    hard_deadline: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    # The clock of the metrics' timestamps (Prometheus's are epoch seconds: time.time); None: `clock`.
    wall: Callable[[], float] | None = None
    lines: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(
        default_factory=dict
    )  # stack output museEvaluateChecks of the candidate up

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)


def canary_config(image: str, weight: int, stable: str) -> dict[str, str]:
    return {"muse:imageTag": stable, "muse:canaryImageTag": image, "muse:canaryWeight": str(weight)}


@dataclass
class Load:
    """One canary step's load Job at a time (stack output museCanaryLoad; {}: none)."""

    tools: Tools
    job: dict[str, Any] = field(default_factory=dict)
    running: bool = False

    def start(self, weight: int) -> None:
        if self.job:
            self.running = True  # before the create: a create cut short may still have made the Job
            self.tools.start_load(self.job, weight)

    def stop(self) -> None:
        if self.running:
            self.tools.stop_load(self.job)
            self.running = False


def release(ctx: Context, tools: Tools) -> tuple[str, list[str]]:
    load = Load(tools)
    try:
        return _release(ctx, tools, load)
    finally:
        ctx.supervisor.on_signal = None
        # Whatever ended the release - promotion, abort, an exception, a signal - the load goes with it.
        load.stop()


def route_back(ctx: Context, tools: Tools, when: str) -> bool:
    """All traffic to the stable Service in seconds (`kubectl patch`, not a `pulumi up`): on SIGINT/SIGTERM
    (the runner kills the job ~10 s after its signal) and as an abort's first move (a targeted up is budgeted
    WEIGHT_MOVE_SECONDS, during which a broken candidate keeps its share). Pulumi's state still records the
    step's weight until its next apply of the route (the abort's targeted up, the next release's candidate
    up, a rollback), which takes the route back from the patch's field manager (pulumi.com/patchForce,
    manifests.py PATCH_FORCE; docs/runbook.md, Canary). Never raises: a failed patch stops nothing after it.
    True when the patch applied."""
    try:
        moved = tools.route_to_stable()
        ok, outcome = moved.ok, moved.describe() + ("" if moved.ok else f" ({_last_line(moved.output)})")
    except Exception as error:  # whatever failed, the caller's next move (a targeted up, a stop) still runs
        ok, outcome = False, f"kubectl patch httproute: failed ({type(error).__name__}: {error})"
    ctx.say(f"- {when}: all traffic back to the stable Service (kubectl patch): {outcome}")
    return ok


def _last_line(output: str) -> str:
    """A failed patch's reason for the summary: its last line (kubectl's error, or route_to_stable's own)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:300]


def _release(ctx: Context, tools: Tools, load: Load) -> tuple[str, list[str]]:
    # Only the promotion records `main <commit>` (the commit the stack then runs, update_message.commit_of);
    # the candidate up and the weight moves are `canary <commit> ...`, which a later abort does not take for
    # the previously deployed commit.
    message = deploy_message(ctx.commit)
    route = ""
    checks: dict[str, Any] = {}
    try:
        ctx.supervisor.check()
        step = tools.config_set(canary_config(ctx.image, 0, ctx.previous))
        if step.ok:
            step = tools.up(canary_message(ctx.commit, "candidate"))
        ctx.say(f"- candidate up (`{ctx.image}` next to `{ctx.previous}`, no traffic): {step.describe()}")
        outputs = tools.outputs()
        route = str(outputs.get("museRouteUrn") or "")
        checks.update(outputs.get("museEvaluateChecks") or {})
        load.job = dict(outputs.get("museCanaryLoad") or {})
        ctx.checks = checks
        if not step.ok and LOCKED_TEXT in step.output:
            ctx.say(f"- nothing changed, nothing to undo: {lock_hint(ctx.stack)}")
            return LOCKED, ctx.lines
        if not step.ok:
            return abort(ctx, tools, route, "the candidate up failed")
        plan_output = outputs.get("museCanary") or {}
        plan = Plan.of(
            plan_output["steps"],
            plan_output["stepSeconds"],
            THRESHOLDS.check_seconds,
            THRESHOLDS.settle_seconds,
            STEP_OVERHEAD_SECONDS,
        )
        if not route or "muse-candidate" not in checks:
            return abort(ctx, tools, route, "the stack outputs name no route or no candidate check")
        if not load.job:
            ctx.say("- no load Job in the stack outputs (museCanaryLoad): the gate sees user traffic only")
        # From the first weight move on, a signal sends the traffic back at once, before anything else.
        ctx.supervisor.on_signal = lambda: route_back(ctx, tools, "signal received")

        class Ops:
            def set_weight(self, weight: int) -> None:
                # The previous step's load ends with it; this step's starts once its weight is in place,
                # before its end-to-end check and its gate checks.
                load.stop()
                ctx.supervisor.check()
                moved = tools.config_set({"muse:canaryWeight": str(weight)})
                if moved.ok:
                    moved = tools.up(canary_message(ctx.commit, f"weight {weight}"), target=route)
                if not moved.ok:
                    raise RuntimeError(f"moving the weight to {weight} %: {moved.describe()}")
                load.start(weight)

            def sample(self) -> Sample:
                ctx.supervisor.check()
                return tools.sample(ctx.image)

            def end_to_end(self) -> tuple[bool, str]:
                return tools.end_to_end(checks["muse-candidate"])

        outcome = run_canary(
            plan, Ops(), Gate(), clock=ctx.clock, sleep=ctx.sleep,
            deadline=ctx.clock() + ctx.supervisor.remaining() - PROMOTION_SECONDS,
            log=lambda text: print(f"canary: {text}", flush=True), wall=ctx.wall,
        )  # fmt: skip
        ctx.lines += [f"  - {at:.0f} s: {text}" for at, text in outcome.events]
        load.stop()  # the last step's: gone before the promotion or the abort moves anything
        if not outcome.promoted:
            return abort(ctx, tools, route, outcome.reason)
        ctx.supervisor.check()
        step = tools.config_set(
            {"muse:imageTag": ctx.image, "muse:canaryImageTag": "", "muse:canaryWeight": "0"}
        )
        if step.ok:
            step = tools.up(message)
        ctx.say(f"- promote (`{ctx.image}` to the stable Deployment, candidate removed): {step.describe()}")
        if not step.ok:
            return abort(ctx, tools, route, "the promotion failed")
        stable_checks = {**checks, "muse": _with_image(checks.get("muse"), checks["muse-candidate"])}
        for result in tools.verify(stable_checks, "muse"):
            ctx.say(f"- {result.describe()}")
            if not result.ok:
                return abort(ctx, tools, route, f"after the promotion: {result.describe()}")
        # A perpetual diff fails the job but undoes nothing: the release serves and passed its checks, and the
        # previous commit's program may well have the same diff.
        step = tools.converged()
        ctx.say(f"- {step.describe()}")
        if step.ok:
            return PROMOTED, ctx.lines
        return (CONVERGENCE_UNKNOWN if getattr(step, "interrupted", "") else NOT_CONVERGED), ctx.lines
    except Cancelled as stopped:
        if ctx.supervisor.signalled:
            if route:
                # Again, now that the interrupted pulumi has ended: an operation it was finishing (a weight
                # move) may have written the route after the patch in the signal handler.
                route_back(ctx, tools, "after the interrupted command ended")
            ctx.say(f"- stopped: {stopped}; nothing more is started (the next run recovers, docs/runbook.md)")
            return ABORTED, ctx.lines
        return abort(ctx, tools, route, str(stopped))
    except Exception as error:  # a kubectl timeout, an HTTP error, a bug: undo the release
        return abort(ctx, tools, route, f"the release itself failed: {type(error).__name__}: {error}")


def _with_image(stable: dict[str, Any] | None, candidate: dict[str, Any]) -> dict[str, Any]:
    """The stable track's check after the promotion runs the new image (the candidate's)."""
    job = copy.deepcopy(stable or candidate)
    image = candidate["spec"]["template"]["spec"]["containers"][0]["image"]
    job["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return job


def abort(ctx: Context, tools: Tools, route: str, reason: str) -> tuple[str, list[str]]:
    """Traffic back to the stable Service at once (the patch, then the targeted up), then the previous
    commit's program and image."""
    ctx.say(f"- ABORT: {reason}")
    if ctx.supervisor.signalled:  # the job is being cancelled: start nothing (engine.py)
        if route:  # again, now that the interrupted command ended (see _release)
            route_back(ctx, tools, "after the interrupted command ended")
        ctx.say("- the job is being cancelled: no rollback started (the next run recovers, docs/runbook.md)")
        return ABORTED, ctx.lines
    ctx.supervisor.deadline = max(ctx.supervisor.deadline, ctx.hard_deadline)
    try:
        if route:
            # First the patch (seconds), then weight 0 through Pulumi (minutes): its config and state agree
            # with the route again, and it moves the traffic if the patch failed (no kubeconfig before the
            # first kubectl, a route its `test` ops refuse, an API error). Neither failure stops the rollback.
            patched = route_back(ctx, tools, "at once")
            moved = tools.config_set({"muse:canaryWeight": "0"})
            if moved.ok:
                moved = tools.up(canary_message(ctx.commit, "weight 0"), target=route)
            how = "so Pulumi's config and state agree" if patched else "the fallback for the failed patch"
            ctx.say(f"- route weight 0 by `pulumi up --target` ({how}): {moved.describe()}")
        if ctx.previous_commit is None:
            ctx.say(
                "- no previously deployed commit is recorded (no successful main.yml update): the stack "
                "keeps this commit's program with the previous image; docs/runbook.md, Rollback, says what "
                "to check"
            )
            step = tools.config_set(
                {"muse:imageTag": ctx.previous, "muse:canaryImageTag": "", "muse:canaryWeight": "0"}
            )
            if step.ok:
                step = tools.up(rollback_message(ctx.commit, ctx.previous))
            ctx.say(f"- rollback up: {step.describe()}")
            return (ABORTED if step.ok else ROLLBACK_FAILED), ctx.lines
        ctx.supervisor.check()
        worktree = tools.checkout(ctx.previous_commit)
        step = tools.config_set({"muse:imageTag": ctx.previous}, cwd=worktree)
        if step.ok:
            step = tools.up(rollback_message(ctx.previous_commit, ctx.previous), cwd=worktree)
        ctx.say(
            f"- rollback to `{ctx.previous_commit[:12]}`'s program with `{ctx.previous}`: {step.describe()}"
        )
        if not step.ok:
            return ROLLBACK_FAILED, ctx.lines
        # The stable track's check as the candidate up exported it: it runs the previous image.
        for result in tools.verify({"muse": ctx.checks["muse"]} if "muse" in ctx.checks else {}, "muse"):
            ctx.say(f"- rollback {result.describe()}")
            if not result.ok:
                return ROLLBACK_FAILED, ctx.lines
        step = tools.converged(cwd=worktree)
        ctx.say(f"- rollback {step.describe()}")
        return ABORTED, ctx.lines
    except Exception as error:  # whatever stopped the rollback, it did not finish
        ctx.say(f"- rollback failed: {type(error).__name__}: {error}")
        return ROLLBACK_FAILED, ctx.lines
