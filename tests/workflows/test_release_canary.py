"""scripts/ci/release_canary.py: the canary release and its abort, against a model of the stack and cluster
(which image each track runs, the route's weights, which commit's program is applied, what the users get).

The model follows the program: the candidate up creates the candidate Deployment (awaited: a candidate that
never becomes ready fails the up, components/muse_workload/__init__.py) with the route at weight 0; a targeted
up moves only the route's weights (Pulumi --target: only the targeted resource is updated, pulumi/pulumi
pkg/resource/deploy/step_generator.go); the promotion puts the new image on the stable Deployment and removes
the candidate; the previous commit's program has no candidate at all."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

import release_canary
from canary_gate import Sample
from engine import Supervisor

OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64
OLD_COMMIT, NEW_COMMIT = "1" * 40, "2" * 40
ROUTE = (
    "urn:pulumi:prod::muse::muse:kubernetes:MuseWorkload$kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
    "::muse-httproute"
)


@dataclass
class Step:
    what: str
    ok: bool = True
    output: str = ""

    def describe(self) -> str:
        return f"{self.what}: {'passed' if self.ok else 'failed'}"


def job(image: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


def load_job(image: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "muse", "labels": {"muse.load": "canary"}}, **job(image)}


@dataclass
class World:
    """The stack and cluster, and what each image does."""

    broken_evaluate: set[str] = field(default_factory=set)  # images whose evaluate answers 500
    never_ready: set[str] = field(default_factory=set)
    error_ratio: dict[str, float] = field(default_factory=dict)  # live 5xx ratio per image
    config: dict[str, str] = field(default_factory=lambda: {"muse:imageTag": OLD})
    program: str = OLD_COMMIT
    stable: str = OLD
    candidate: str | None = None
    weight: int = 0
    log: list[str] = field(default_factory=list)
    exposure: list[tuple[int, str]] = field(default_factory=list)  # (weight, candidate) at each check
    not_converged: bool = False
    load_output: bool = True  # the candidate up exports museCanaryLoad
    load_create_fails: bool = False
    loads: list[str] = field(default_factory=list)  # load Jobs in the cluster (kubectl create / delete -l)
    signal_at_check: int = 0  # the job gets SIGINT during this gate check (1-based; 0: never)
    supervisor: Supervisor | None = None

    def serving(self) -> dict[str, int]:
        shares = {self.stable: 100 - self.weight}
        if self.candidate:
            shares[self.candidate] = shares.get(self.candidate, 0) + self.weight
        return {image: share for image, share in shares.items() if share}


class Tools:
    def __init__(self, world: World) -> None:
        self.w = world

    def start_load(self, job: dict[str, Any], weight: int) -> None:
        assert job == load_job(self.w.candidate or "")
        self.w.log.append(f"load start {weight}")
        if self.w.load_create_fails:  # kubectl create refused (e.g. the identity lost its Job rights)
            raise RuntimeError("kubectl create of the load Job failed: forbidden")
        self.w.loads.append(f"muse-canary-load-{len(self.w.log)}")

    def stop_load(self, job: dict[str, Any]) -> None:
        self.w.log.append("load stop")  # delete -l muse.load=canary: every load Job, --ignore-not-found
        self.w.loads.clear()

    def config_set(self, values: dict[str, str], cwd: str | None = None) -> Step:
        self.w.log.append(f"config {values}{' in ' + cwd if cwd else ''}")
        if cwd is None:
            self.w.config.update(values)
        else:
            self.w.config = {"muse:imageTag": OLD, **values}  # the previous commit's own stack file
        return Step("pulumi config set")

    def up(self, message: str, *, target: str | None = None, cwd: str | None = None) -> Step:
        self.w.log.append(f"up {message}{' --target route' if target else ''}{' in ' + cwd if cwd else ''}")
        c = self.w.config
        if target == ROUTE:
            self.w.weight = int(c.get("muse:canaryWeight", "0"))
            return Step("pulumi up --target")
        self.w.program = OLD_COMMIT if cwd else NEW_COMMIT
        candidate = c.get("muse:canaryImageTag") if not cwd else None
        if candidate and candidate in self.w.never_ready:
            self.w.candidate = candidate  # created, never ready; the route stays at its weight (0)
            return Step("pulumi up", ok=False, output="failed to fully initialize or become live")
        self.w.stable = c["muse:imageTag"]
        self.w.candidate = candidate or None
        self.w.weight = int(c.get("muse:canaryWeight", "0")) if candidate else 0
        return Step("pulumi up")

    def outputs(self) -> dict[str, Any]:
        checks = {"muse": job(self.w.stable)}
        if self.w.candidate:
            checks["muse-candidate"] = job(self.w.candidate)
        load = load_job(self.w.candidate) if self.w.candidate and self.w.load_output else {}
        return {
            "museRouteUrn": ROUTE,
            "museCanary": {"steps": [10, 50, 100], "stepSeconds": 60},
            "museEvaluateChecks": checks,
            "museCanaryLoad": load,
        }

    def end_to_end(self, check: dict[str, Any]) -> tuple[bool, str]:
        image = check["spec"]["template"]["spec"]["containers"][0]["image"]
        self.w.log.append(f"end-to-end {image[:9]}")
        return (False, "answered 500") if image in self.w.broken_evaluate else (True, "200")

    def verify(self, checks: dict[str, Any], track: str) -> list[Step]:
        steps = [Step("rollout check"), Step("smoke check")]
        if track in checks:
            ok, _ = self.end_to_end(checks[track])
            steps.append(Step("end-to-end check", ok))
        return steps

    def sample(self, version: str, window_seconds: int) -> Sample:
        assert version == self.w.candidate
        # The look-back covers a 60 s step plus a scrape (30 s) and the ingestion lag (60 s).
        assert window_seconds == 150
        self.w.exposure.append((self.w.weight, version))
        self.w.log.append(f"check {self.w.weight}")
        if len(self.w.exposure) == self.w.signal_at_check and self.w.supervisor is not None:
            self.w.supervisor._on_signal(signal.SIGINT, None)  # what the runner's cancel delivers
        requests = 1200 * self.w.weight / 100
        return Sample(requests, requests * self.w.error_ratio.get(version, 0.0), 0.05)

    def converged(self, cwd: str | None = None) -> Step:
        return Step("convergence check", ok=not self.w.not_converged)

    def route_to_stable(self) -> Step:
        self.w.log.append("patch route 0")  # kubectl patch: the candidate's weight to 0, no pulumi
        self.w.weight = 0
        return Step("kubectl patch httproute")

    def checkout(self, commit: str) -> str:
        self.w.log.append(f"checkout {commit[:7]}")
        return f"/tmp/previous-{commit[:12]}"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(world: World, previous_commit: str | None = OLD_COMMIT) -> tuple[str, list[str]]:
    clock = Clock()
    world.supervisor = Supervisor(deadline=10_000, clock=clock)
    ctx = release_canary.Context(
        stack="prod", image=NEW, previous=OLD, commit=NEW_COMMIT, previous_commit=previous_commit,
        supervisor=world.supervisor, hard_deadline=20_000,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    return release_canary.release(ctx, Tools(world))


def test_a_good_release_is_promoted_and_the_candidate_removed() -> None:
    world = World()
    result, lines = run(world)
    assert result == release_canary.PROMOTED, lines
    assert (world.stable, world.candidate, world.weight, world.program) == (NEW, None, 0, NEW_COMMIT)
    weights = [entry for entry in world.log if "--target route" in entry]
    assert len(weights) == 3  # 10, 50, 100
    assert world.config["muse:canaryImageTag"] == "" and world.config["muse:imageTag"] == NEW
    # the stable track was checked end to end with the new image after the promotion
    assert world.log[-1] == f"end-to-end {NEW[:9]}"


def test_a_broken_evaluate_is_aborted_before_any_user_traffic_and_the_previous_program_restored() -> None:
    world = World(broken_evaluate={NEW}, error_ratio={NEW: 0.4})
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    assert world.exposure == []  # never a check with traffic: no weight was ever above 0
    assert (world.stable, world.candidate, world.weight, world.program) == (OLD, None, 0, OLD_COMMIT)
    # weight back to stable at once (targeted), then the previous commit's program and image
    abort = world.log.index(next(e for e in world.log if "--target route" in e))
    assert world.log[abort + 1] == f"checkout {OLD_COMMIT[:7]}"
    assert (
        world.log[abort + 3] == f"up main {OLD_COMMIT} rollback to {OLD} in /tmp/previous-{OLD_COMMIT[:12]}"
    )


def test_a_candidate_failing_under_live_traffic_is_aborted_in_its_first_step() -> None:
    world = World(error_ratio={NEW: 0.3})  # passes the end-to-end check, fails users
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    assert {w for w, _ in world.exposure} == {10}
    assert (world.stable, world.candidate, world.program) == (OLD, None, OLD_COMMIT)


def test_a_never_ready_candidate_gets_no_traffic_and_is_undone() -> None:
    world = World(never_ready={NEW})
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    assert world.exposure == [] and not any(
        "--target route" in e and "canaryWeight': '1" in e for e in world.log
    )
    assert (world.stable, world.candidate, world.program) == (OLD, None, OLD_COMMIT)


def test_negative_control_the_previous_image_only_rollback_leaves_the_new_program() -> None:
    """Without a recorded previous commit the abort can only put the image back (the former rollback): the
    failed commit's program (config, routes, probes) stays. The summary says so."""
    world = World(error_ratio={NEW: 0.3})
    result, lines = run(world, previous_commit=None)
    assert result == release_canary.ABORTED
    assert (world.stable, world.program) == (OLD, NEW_COMMIT)
    assert any("no previously deployed commit" in line for line in lines)


def test_a_perpetual_diff_after_the_promotion_fails_without_undoing() -> None:
    world = World(not_converged=True)
    result, _ = run(world)
    assert result == release_canary.NOT_CONVERGED
    assert world.stable == NEW


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_cancelled_job_starts_no_rollback(signal_name: str) -> None:
    world = World(error_ratio={NEW: 0.3})
    clock = Clock()
    supervisor = Supervisor(deadline=10_000, clock=clock)
    supervisor.signalled = signal_name
    ctx = release_canary.Context(
        stack="prod", image=NEW, previous=OLD, commit=NEW_COMMIT, previous_commit=OLD_COMMIT,
        supervisor=supervisor, hard_deadline=20_000, clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    result, lines = release_canary.release(ctx, Tools(world))
    assert result == release_canary.ABORTED and world.log == []
    assert any("stopped" in line for line in lines)


# --- the canary's load (components/muse_workload/canary_load.py) -------------------------------------------


def load_problems(log: list[str]) -> list[str]:
    """What is wrong with the load in a release's log: a gate check without this step's load running, a
    weight move or a rollback with the previous step's load still running, a load left at the end."""
    found, running, weight = [], False, None
    for index, entry in enumerate(log):
        if entry.startswith("load start"):
            running, weight = True, int(entry.split()[-1])
        elif entry == "load stop":
            running = False
        elif entry.startswith("check ") and (not running or int(entry.split()[-1]) != weight):
            found.append(f"{index}: {entry} without its step's load")
        elif running and ("--target route" in entry or entry.startswith(("checkout", "up main"))):
            found.append(f"{index}: {entry} while a step's load still runs")
    if running:
        found.append("the load outlived the release")
    return found


def test_each_step_runs_its_own_load_during_its_checks_and_nothing_is_left() -> None:
    world = World()
    result, lines = run(world)
    assert result == release_canary.PROMOTED, lines
    assert [e for e in world.log if e.startswith("load start")] == [
        "load start 10", "load start 50", "load start 100",
    ]  # fmt: skip
    assert load_problems(world.log) == [] and world.loads == []
    # started right after its weight moved, before the step's end-to-end check
    first = world.log.index("load start 10")
    assert "--target route" in world.log[first - 1] and world.log[first + 1].startswith("end-to-end")


@pytest.mark.parametrize(
    "world",
    [
        World(error_ratio={NEW: 0.3}),  # the gate aborts in the first step
        World(broken_evaluate={NEW}),  # the end-to-end check fails before any load
        World(load_create_fails=True),  # the load cannot be created: the canary itself failed
    ],
    ids=["gate-abort", "end-to-end", "load-create-fails"],
)
def test_an_aborted_canary_deletes_its_load_before_the_rollback(world: World) -> None:
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    assert load_problems(world.log) == [] and world.loads == []
    if world.load_create_fails:
        assert any("load Job failed" in line for line in lines)


@pytest.mark.parametrize("check", [1, 4])  # in the first step, in the second
def test_sigint_mid_step_deletes_the_load_and_starts_nothing_else(check: int) -> None:
    world = World(signal_at_check=check)
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    # The load goes last, apart from the route's patches (the signal's own test below).
    assert [e for e in world.log if e != "patch route 0"][-1] == "load stop" and world.loads == []
    assert not any(e.startswith(("checkout", "up main 1")) for e in world.log)  # no rollback started
    assert any("cancelled" in line for line in lines)


def test_without_a_load_output_the_canary_runs_on_user_traffic_and_says_so() -> None:
    world = World(load_output=False)
    result, lines = run(world)
    assert result == release_canary.PROMOTED
    assert not any(e.startswith("load") for e in world.log)
    assert any("no load Job" in line for line in lines)


def test_negative_control_a_release_that_never_deletes_its_load_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the deletes gone, the load of the aborted step runs on through the rollback and after it."""
    monkeypatch.setattr(release_canary.Load, "stop", lambda self: None)
    world = World(error_ratio={NEW: 0.3})
    run(world)
    found = load_problems(world.log)
    assert (
        any("while a step's load still runs" in f for f in found) and "the load outlived the release" in found
    )
    assert world.loads


def test_negative_control_a_release_that_starts_no_load_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release_canary.Load, "start", lambda self, weight: None)
    world = World()
    run(world)
    assert any("without its step's load" in f for f in load_problems(world.log))


@pytest.mark.parametrize("check", [1, 4])  # in the first step, in the second
def test_a_signal_mid_canary_sends_the_traffic_back_first(check: int) -> None:
    world = World(signal_at_check=check)
    run(world)
    signalled = [i for i, e in enumerate(world.log) if e.startswith("check")][check - 1]
    # The patch is the very next thing after the signal, before the load is deleted or anything else.
    assert world.log[signalled + 1] == "patch route 0", world.log
    assert world.weight == 0 and world.serving() == {OLD: 100}
    assert not any(e.startswith(("checkout", "up main 1")) for e in world.log)  # still no rollback


def test_negative_control_without_the_patch_a_cancelled_canary_leaves_the_candidate_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(release_canary, "route_back", lambda ctx, tools, when: None)
    world = World(signal_at_check=4)
    run(world)
    assert world.weight == 50 and NEW in world.serving()
