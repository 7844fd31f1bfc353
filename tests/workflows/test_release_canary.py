"""scripts/ci/release_canary.py: the canary release and its abort, against a model of the stack and cluster
(which image each track runs, the route's weights, which commit's program is applied, what the users get).

The model follows the program: the candidate up creates the candidate Deployment (awaited: a candidate that
never becomes ready fails the up, components/muse_workload/__init__.py) with the route at weight 0; a targeted
up moves only the route's weights (Pulumi --target: only the targeted resource is updated, pulumi/pulumi
pkg/resource/deploy/step_generator.go); the promotion puts the new image on the stable Deployment and removes
the candidate; the previous commit's program has no candidate at all.

The route holds its backendRefs as the program writes them (components/muse_workload/manifests.py
backend_refs): `muse` alone without a weight (the Gateway API default 1), or `muse` at 100 - w and
`muse-candidate` at w; an entry of weight 0 gets no traffic and a rule whose entries all weigh 0 has no
backend (gateway-api apis/v1/shared_types.go, BackendRef.Weight). Field ownership follows server-side apply:
the rules and backendRefs lists are atomic (gateway-api apis/v1/httproute_types.go, `+listType=atomic`), so
the last writer owns `spec.rules` whole; a `kubectl patch` makes its manager the owner, and Pulumi's next
apply of the route then conflicts unless the route's inputs carry `pulumi.com/patchForce: "true"`
(pulumi/pulumi-kubernetes provider/pkg/await/await.go ssaUpdate/patchForce; fixCSAFieldManagers takes over
only `kubectl`, `before-first-apply` and the provider's own former managers, never `kubectl-patch`), read
here from the program's real route manifest."""

from __future__ import annotations

import email.message
import re
import signal
import subprocess
import sys
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

import release_canary
from canary_gate import Sample
from engine import Supervisor

import deploy
from components.muse_workload import manifests
from stack.args import stack_workload_spec

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
    # The live route's backendRefs: (Service, weight); None is no weight (the Gateway API default, 1).
    route: list[tuple[str, int | None]] = field(default_factory=lambda: [("muse", None)])
    route_owner: str = "pulumi"  # the field manager that owns spec.rules (an atomic list)
    log: list[str] = field(default_factory=list)
    exposure: list[tuple[int, str]] = field(default_factory=list)  # (weight, candidate) at each check
    not_converged: bool = False
    load_output: bool = True  # the candidate up exports museCanaryLoad
    load_create_fails: bool = False
    loads: list[str] = field(default_factory=list)  # load Jobs in the cluster (kubectl create / delete -l)
    signal_at_check: int = 0  # the job gets SIGINT during this gate check (1-based; 0: never)
    signal_at_weight: int = 0  # ... during the first gate check at this weight (0: never)
    signal_in_promotion: bool = False  # ... while the promotion's `pulumi up` runs
    supervisor: Supervisor | None = None
    # `pulumi stack history --json`, newest first: the message of each successful update
    history: list[dict[str, str]] = field(
        default_factory=lambda: [{"kind": "update", "result": "succeeded", "message": f"main {OLD_COMMIT}"}]
    )
    checked_out: str = OLD_COMMIT  # the commit tools.checkout put in the rollback's worktree
    # deploy.py CommandTools writes the release's kubeconfig at its first kubectl (_kubectl: the end-to-end
    # check before any traffic, a load Job); until then route_to_stable patches nothing ("no kubeconfig yet").
    kubeconfig: bool = False
    evaluate_fails_at_call: int = 0  # this end-to-end check (1-based) of the candidate answers 500 (0: none)
    end_to_end_calls: int = 0
    silent_from_weight: int = (
        0  # from this weight on the workspace has no series for the candidate (0: never)
    )
    promotion_fails: bool = False  # the promotion's up fails before it changes anything (e.g. a policy)
    # What each Service got of the route's requests when each `pulumi up` started: (message, shares)
    ups: list[tuple[str, dict[str, int]]] = field(default_factory=list)

    @property
    def weight(self) -> int:
        """The candidate's weight on the live route (0 without a candidate entry)."""
        return next((w or 0 for name, w in self.route if name == "muse-candidate"), 0)

    def serving(self) -> dict[str, int]:
        """Each image's percent of the route's requests; {} when no entry gets any (all weights 0)."""
        weights = {name: 1 if w is None else w for name, w in self.route}
        total = sum(weights.values())
        images = {"muse": self.stable, "muse-candidate": self.candidate}
        shares: dict[str, int] = {}
        for name, w in weights.items():
            image = images[name]
            if w and total and image:
                shares[image] = shares.get(image, 0) + round(100 * w / total)
        return shares

    def service_shares(self) -> dict[str, int]:
        """Each Service's percent of the route's requests (the stable Service is `muse`, whatever it runs)."""
        weights = {name: 1 if w is None else w for name, w in self.route}
        total = sum(weights.values())
        return {name: round(100 * w / total) for name, w in weights.items() if w and total}

    def apply_route(self, weight: int | None) -> str:
        """Pulumi's server-side apply of the program's route ('' when applied, else the provider's error).
        weight None: the route without a candidate."""
        if self.route_owner != "pulumi" and not _patch_force():
            return (
                "Server-Side Apply field conflict detected. The resource managed by field manager "
                '"pulumi-kubernetes-a1b2c3" had an apply conflict: conflict with "kubectl-patch": .spec.rules'
            )
        self.route = (
            [("muse", None)] if weight is None else [("muse", 100 - weight), ("muse-candidate", weight)]
        )
        self.route_owner = "pulumi"
        return ""


def _patch_force() -> bool:
    """What the provider reads: the annotation on the route's inputs, as the program writes them."""
    spec = stack_workload_spec("prod")
    annotations = manifests.http_route(spec)["metadata"].get("annotations") or {}
    return annotations.get("pulumi.com/patchForce") == "true"


class Tools:
    def __init__(self, world: World) -> None:
        self.w = world

    def start_load(self, job: dict[str, Any], weight: int) -> None:
        assert job == load_job(self.w.candidate or "")
        self.w.kubeconfig = True
        self.w.log.append(f"load start {weight}")
        if self.w.load_create_fails:  # kubectl create refused (e.g. the identity lost its Job rights)
            raise RuntimeError("kubectl create of the load Job failed: forbidden")
        self.w.loads.append(f"muse-canary-load-{len(self.w.log)}")

    def stop_load(self, job: dict[str, Any]) -> None:
        self.w.kubeconfig = True
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
        self.w.ups.append((message, self.w.service_shares()))
        step = self._up(target, cwd)
        if step.ok:
            self.w.history.insert(0, {"kind": "update", "result": "succeeded", "message": message})
        return step

    def _up(self, target: str | None, cwd: str | None) -> Step:
        c = self.w.config
        if target == ROUTE:
            failed = self.w.apply_route(int(c.get("muse:canaryWeight", "0")))
            return Step("pulumi up --target", ok=not failed, output=failed)
        self.w.program = self.w.checked_out if cwd else NEW_COMMIT
        candidate = c.get("muse:canaryImageTag") if not cwd else None
        if candidate and candidate in self.w.never_ready:
            self.w.candidate = candidate  # created, never ready; the route stays at its weight (0)
            return Step("pulumi up", ok=False, output="failed to fully initialize or become live")
        promotion = not cwd and not candidate and self.w.candidate is not None
        if promotion and self.w.promotion_fails:  # refused before any change (a policy pack, an Azure error)
            return Step("pulumi up", ok=False, output="error: preview failed")
        self.w.stable = c["muse:imageTag"]  # the Deployments first: the route depends on them
        if promotion and self.w.signal_in_promotion and self.w.supervisor is not None:
            # The cancel arrives while the stable Deployment rolls: Pulumi lets that operation finish and
            # starts no other (the route and the candidate stay as they are).
            self.w.supervisor._on_signal(signal.SIGINT, None)
            return Step("pulumi up", ok=False, output="update canceled")
        failed = self.w.apply_route(int(c.get("muse:canaryWeight", "0")) if candidate else None)
        if failed:
            if candidate:
                self.w.candidate = candidate
            return Step("pulumi up", ok=False, output=failed)
        self.w.candidate = candidate or None
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
        self.w.kubeconfig = True
        self.w.end_to_end_calls += 1
        if image in self.w.broken_evaluate or self.w.end_to_end_calls == self.w.evaluate_fails_at_call:
            return False, "answered 500"
        return True, "200"

    def verify(self, checks: dict[str, Any], track: str) -> list[Step]:
        steps = [Step("rollout check"), Step("smoke check")]
        if track in checks:
            ok, _ = self.end_to_end(checks[track])
            steps.append(Step("end-to-end check", ok))
        return steps

    def sample(self, version: str) -> Sample:
        assert version == self.w.candidate
        self.w.exposure.append((self.w.weight, version))
        self.w.log.append(f"check {self.w.weight}")
        at_weight = self.w.signal_at_weight and self.w.weight == self.w.signal_at_weight
        if at_weight:
            self.w.signal_at_weight = 0  # once
        if (len(self.w.exposure) == self.w.signal_at_check or at_weight) and self.w.supervisor is not None:
            self.w.supervisor._on_signal(signal.SIGINT, None)  # what the runner's cancel delivers
        if self.w.silent_from_weight and self.w.weight >= self.w.silent_from_weight:
            return Sample(0, 0, None)  # an empty vector: no series (the scrape does not reach the candidate)
        requests = 1200 * self.w.weight / 100
        # The interval that ended at this check (no ingestion lag here: test_canary_lag.py models it).
        ended = self.w.supervisor.clock() if self.w.supervisor is not None else None
        return Sample(requests, requests * self.w.error_ratio.get(version, 0.0), 0.05, interval_end=ended)

    def converged(self, cwd: str | None = None) -> Step:
        return Step("convergence check", ok=not self.w.not_converged)

    def route_to_stable(self) -> Step:
        """deploy.py's TO_STABLE_PATCH applied to the live route (RFC 6902: `test` ops first, all or nothing);
        `kubectl patch` is an Update by the manager `kubectl-patch`, which then owns spec.rules."""
        self.w.log.append("patch route 0")
        if not self.w.kubeconfig:  # deploy.py CommandTools.route_to_stable, before any kubectl ran
            return Step(
                "kubectl patch httproute", ok=False, output="no kubeconfig yet: no weight was ever moved"
            )
        route = dict(self.w.route)
        for op in deploy.TO_STABLE_PATCH:
            index = str(op["path"]).removeprefix("/spec/rules/0/backendRefs/").split("/")[0]
            entries = list(route.items())
            if int(index) >= len(entries):
                return Step("kubectl patch httproute", ok=False, output=f"test of {op['path']} failed")
            name = entries[int(index)][0]
            if op["op"] == "test" and name != op["value"]:
                return Step("kubectl patch httproute", ok=False, output=f"test of {op['path']} failed")
            if op["op"] == "replace":
                route[name] = int(op["value"])  # type: ignore[call-overload]
        self.w.route = list(route.items())
        self.w.route_owner = "kubectl-patch"
        return Step("kubectl patch httproute")

    def checkout(self, commit: str) -> str:
        self.w.log.append(f"checkout {commit[:7]}")
        self.w.checked_out = commit
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


@pytest.mark.parametrize("check", [1, 3])  # in the first step (2 checks), in the second
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


@pytest.mark.parametrize("check", [1, 3])  # in the first step (2 checks), in the second
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
    world = World(signal_at_check=3)  # in the 50 % step
    run(world)
    assert world.weight == 50 and NEW in world.serving()


# --- a cancel late in the canary, and Pulumi's next apply of the route --------------------------------------

OLD_PATCH = [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0}]


@pytest.mark.parametrize(
    "world",
    [World(signal_at_weight=100), World(signal_in_promotion=True)],
    ids=["at-the-100-step", "during-the-promotion"],
)
def test_a_cancel_late_in_the_canary_leaves_the_stable_service_all_the_traffic(world: World) -> None:
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    assert world.route == [("muse", 100), ("muse-candidate", 0)], world.route
    assert sum(world.serving().values()) == 100 and world.serving() == {world.stable: 100}


@pytest.mark.parametrize(
    "world",
    [World(signal_at_weight=100), World(signal_in_promotion=True)],
    ids=["at-the-100-step", "during-the-promotion"],
)
def test_negative_control_the_candidate_only_patch_leaves_no_backend(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "TO_STABLE_PATCH", OLD_PATCH)
    run(world)
    assert world.route == [("muse", 0), ("muse-candidate", 0)] and world.serving() == {}


def test_after_a_cancelled_canary_the_next_release_takes_the_route_back_from_kubectl() -> None:
    world = World(signal_at_weight=50)
    assert run(world)[0] == release_canary.ABORTED
    assert world.route_owner == "kubectl-patch"  # the signal's patch owns spec.rules now
    result, lines = run(world)  # the next release, on the same stack and cluster
    assert result == release_canary.PROMOTED, lines
    assert world.route == [("muse", None)] and world.route_owner == "pulumi"


def test_negative_control_without_patch_force_the_next_release_and_its_rollback_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The route without pulumi.com/patchForce: Pulumi applies with force=false and `kubectl-patch` owns the
    atomic spec.rules, so every later apply of the route conflicts - the candidate up and the rollback too."""
    real = manifests.http_route

    def without_force(spec: manifests.WorkloadSpec) -> dict[str, Any]:
        route = real(spec)
        route["metadata"].pop("annotations", None)
        return route

    monkeypatch.setattr(manifests, "http_route", without_force)
    world = World(signal_at_weight=50)
    assert run(world)[0] == release_canary.ABORTED
    result, lines = run(world)
    assert result == release_canary.ROLLBACK_FAILED, lines
    assert any("candidate up" in line and "failed" in line for line in lines)
    assert world.route_owner == "kubectl-patch"


def test_the_programs_route_asks_pulumi_to_force_its_apply() -> None:
    for stack in ("dev", "prod"):
        route = manifests.http_route(stack_workload_spec(stack))
        assert route["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}


# --- failures that are not RuntimeError: a kubectl timeout, an HTTP error from the workspace ----------------


class Failing(Tools):
    """Tools whose `what` raises `error` the `at`-th time it is called."""

    def __init__(self, world: World, what: str, error: BaseException, at: int = 1) -> None:
        super().__init__(world)
        self.what, self.error, self.at, self.calls = what, error, at, 0
        real = getattr(self, what)

        def failing(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.at:
                raise self.error
            return real(*args, **kwargs)

        setattr(self, what, failing)


TIMEOUT = subprocess.TimeoutExpired(["kubectl", "create", "-f", "-"], 60)
HTTP_400 = urllib.error.HTTPError(
    "https://ws.prometheus.monitor.azure.com/api/v1/query", 400, "Bad Request", email.message.Message(), None
)


def run_with(tools: Tools, world: World) -> tuple[str, list[str]]:
    clock = Clock()
    world.supervisor = Supervisor(deadline=10_000, clock=clock)
    ctx = release_canary.Context(
        stack="prod", image=NEW, previous=OLD, commit=NEW_COMMIT, previous_commit=OLD_COMMIT,
        supervisor=world.supervisor, hard_deadline=20_000, clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    return release_canary.release(ctx, tools)


@pytest.mark.parametrize(
    ("what", "error", "at"),
    [
        ("end_to_end", TIMEOUT, 3),  # the check Job's kubectl hangs at the 50 % step
        ("start_load", TIMEOUT, 2),  # the load Job's create hangs when the weight moved to 50 %
        ("sample", HTTP_400, 4),  # the workspace answers 400 to a gate query
        ("converged", TIMEOUT, 1),  # after the promotion
    ],
    ids=["check-timeout", "load-timeout", "query-400", "after-promotion"],
)
def test_any_failure_mid_release_routes_back_and_rolls_back(what: str, error: Exception, at: int) -> None:
    world = World()
    result, lines = run_with(Failing(world, what, error, at), world)
    assert result == release_canary.ABORTED, lines
    assert any(type(error).__name__ in line for line in lines), lines
    assert world.serving() == {OLD: 100} and (world.stable, world.candidate, world.program) == (
        OLD, None, OLD_COMMIT,
    )  # fmt: skip


def test_negative_control_these_failures_are_none_of_the_types_caught_before() -> None:
    """run_canary caught (RuntimeError, OSError, ValueError) and _release only Cancelled: a TimeoutExpired
    (subprocess.SubprocessError) is none of them, so it escaped the release with the candidate up and its
    share of the traffic; an HTTPError is an OSError, which only the stepper caught (not the promotion's
    checks, not deploy.main)."""
    assert not isinstance(TIMEOUT, RuntimeError | OSError | ValueError)
    assert isinstance(HTTP_400, OSError) and not isinstance(HTTP_400, RuntimeError | ValueError)
    world = World()
    tools = Failing(world, "end_to_end", TIMEOUT, 3)
    run_with(tools, world)
    assert tools.calls >= 3  # the failure did reach the release (the positive test is not vacuous)


# --- which commit an abort returns to: only promotions and rollbacks count ---------------------------------

MANUAL_COMMIT = "3" * 40


def manual_rollback_message(commit: str, image: str) -> str:
    """The runbook's manual rollback message (docs/runbook.md, Manual rollback), with the shell's
    `$(git rev-parse HEAD)` filled in by the commit the person checked out."""
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text(encoding="utf-8")
    template = re.findall(r'--message "(manual [^"]*rollback to [^"]*)"', runbook)
    assert template and len(set(template)) == 1, template  # one form, wherever the runbook shows it
    return template[0].replace("$(git rev-parse HEAD)", commit).replace("sha256:<good digest>", image)


def test_a_cancelled_canary_then_a_manual_rollback_is_what_the_next_abort_restores() -> None:
    world = World(signal_at_weight=50)
    assert run(world, previous_commit=deploy.last_commit(world.history))[0] == release_canary.ABORTED
    # The cancelled canary's updates do not make its commit the deployed one.
    assert deploy.last_commit(world.history) == OLD_COMMIT
    # A person rolls back by hand from another commit, as the runbook says.
    world.history.insert(
        0, {"kind": "update", "result": "succeeded", "message": manual_rollback_message(MANUAL_COMMIT, OLD)}
    )
    assert deploy.last_commit(world.history) == MANUAL_COMMIT
    # The next release fails: its abort returns to the manual rollback's commit.
    world.error_ratio = {NEW: 0.3}
    result, lines = run(world, previous_commit=deploy.last_commit(world.history))
    assert result == release_canary.ABORTED, lines
    assert f"checkout {MANUAL_COMMIT[:7]}" in world.log and world.program == MANUAL_COMMIT
    # A promotion is what makes a commit the deployed one.
    world.error_ratio = {}
    assert run(world, previous_commit=deploy.last_commit(world.history))[0] == release_canary.PROMOTED
    assert deploy.last_commit(world.history) == NEW_COMMIT


def test_negative_control_with_main_messages_on_every_canary_update_the_candidate_counts_as_deployed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(release_canary, "canary_message", lambda commit, step: f"main {commit}")
    world = World(signal_at_weight=50)
    run(world, previous_commit=deploy.last_commit(world.history))
    assert deploy.last_commit(world.history) == NEW_COMMIT  # never promoted, yet the abort would re-apply it


def test_negative_control_the_former_manual_message_is_not_read() -> None:
    from update_message import commit_of

    assert commit_of("manual rollback to sha256:" + "a" * 64) is None
    assert commit_of(manual_rollback_message(MANUAL_COMMIT, OLD)) == MANUAL_COMMIT


# --- a stale lock (no pending operations): the candidate up is refused before anything changes -------------

# The DIY backend's words (pulumi/pulumi pkg/backend/diy/lock.go checkForLock).
LOCKED_OUTPUT = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
    "delete the lock file with `pulumi cancel`.\n  azblob://state-prod/.pulumi/locks/organization/muse/prod/"
    "0f1e.json: created by runner@fv-az123 (pid 4242) at 2026-12-07T05:17:00Z"
)


class Locked(Tools):
    """A stack whose lock outlived its update: every `pulumi up` is refused before it starts."""

    def up(self, message: str, *, target: str | None = None, cwd: str | None = None) -> Step:
        self.w.log.append(f"up {message}{' --target route' if target else ''}{' in ' + cwd if cwd else ''}")
        return Step("pulumi up", ok=False, output=LOCKED_OUTPUT)


def test_a_locked_stack_stops_the_release_without_an_abort() -> None:
    world = World()
    result, lines = run_with(Locked(world), world)
    assert result == release_canary.LOCKED and deploy.EXIT_CODES[result] == 5
    assert [e for e in world.log if e.startswith(("up", "checkout"))] == [f"up canary {NEW_COMMIT} candidate"]
    assert any("pulumi cancel --stack prod --yes" in line for line in lines)
    assert (world.stable, world.candidate, world.program) == (OLD, None, OLD_COMMIT)


def test_negative_control_without_the_lock_check_the_abort_runs_and_its_rollback_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(release_canary, "LOCKED_TEXT", "text no pulumi prints")
    world = World()
    result, _ = run_with(Locked(world), world)
    assert result == release_canary.ROLLBACK_FAILED and deploy.EXIT_CODES[result] == 3
    assert any(e.startswith("checkout") for e in world.log)


# --- the abort's first move: the patch (seconds), then the targeted up (minutes), then the rollback -------

WEIGHT_0 = f"canary {NEW_COMMIT} weight 0"
ROLLBACK = f"main {OLD_COMMIT} rollback to {OLD}"


def deadline_after_one_step() -> float:
    """A release deadline that leaves the stepper time for its 10 % step only: it aborts before the 50 %."""
    from canary import Plan
    from canary_gate import THRESHOLDS

    plan = Plan.of(
        [10, 50, 100], 60, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds,
        release_canary.STEP_OVERHEAD_SECONDS,
    )  # fmt: skip
    return release_canary.PROMOTION_SECONDS + plan.step_budget_seconds + 1


class PromotionFails(Tools):
    def __init__(self, world: World) -> None:
        super().__init__(world)
        world.promotion_fails = True


# Every kind of abort after a weight move, and whether the candidate still had a share when it began (the
# patch applies) or the promotion's route has `muse` alone (the patch's `test` ops refuse it).
ABORTS_AFTER_A_MOVE = {
    "gate-at-10": (lambda w: Tools(w), {"error_ratio": {NEW: 0.3}}, True),
    "end-to-end-at-50": (lambda w: Tools(w), {"evaluate_fails_at_call": 3}, True),
    "no-data-at-50": (lambda w: Tools(w), {"silent_from_weight": 50}, True),
    "load-timeout-at-50": (lambda w: Failing(w, "start_load", TIMEOUT, 2), {}, True),
    "query-400": (lambda w: Failing(w, "sample", HTTP_400, 4), {}, True),
    "deadline-before-50": (lambda w: Tools(w), {}, True),
    "promotion-fails": (lambda w: PromotionFails(w), {}, True),
    "after-promotion-check": (lambda w: Tools(w), {"evaluate_fails_at_call": 5}, False),
    "after-promotion-timeout": (lambda w: Failing(w, "converged", TIMEOUT, 1), {}, False),
}


def abort_after_a_move(kind: str) -> tuple[World, str, list[str]]:
    make, settings, _ = ABORTS_AFTER_A_MOVE[kind]
    world = World(**settings)
    clock = Clock()
    deadline = deadline_after_one_step() if kind == "deadline-before-50" else 10_000
    world.supervisor = Supervisor(deadline=deadline, clock=clock)
    ctx = release_canary.Context(
        stack="prod", image=NEW, previous=OLD, commit=NEW_COMMIT, previous_commit=OLD_COMMIT,
        supervisor=world.supervisor, hard_deadline=20_000, clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    result, lines = release_canary.release(ctx, make(world))
    return world, result, lines


def shares_at(world: World, message: str) -> dict[str, int]:
    """What each Service got when the abort's `pulumi up` with this message started."""
    return next(shares for at, shares in world.ups if at == message)


def assert_stable_first(world: World) -> None:
    """The stable Service has all the route's traffic before the abort's targeted up and before the previous
    commit's program runs, and the patch came first: before both."""
    log = world.log
    assert shares_at(world, WEIGHT_0) == {"muse": 100}, world.ups
    assert shares_at(world, ROLLBACK) == {"muse": 100}, world.ups
    patches = [i for i, e in enumerate(log) if e == "patch route 0"]
    targeted = log.index(f"up {WEIGHT_0} --target route")
    rollback = next(i for i, e in enumerate(log) if e.startswith(f"up {ROLLBACK}"))
    assert patches and patches[-1] < targeted < rollback, log


@pytest.mark.parametrize("kind", ABORTS_AFTER_A_MOVE)
def test_every_abort_after_a_weight_move_patches_the_route_before_the_targeted_up(kind: str) -> None:
    world, result, lines = abort_after_a_move(kind)
    assert result == release_canary.ABORTED, lines
    assert any("--target route" in e and "weight 10" in e for e in world.log)  # a weight did move
    assert_stable_first(world)
    assert world.serving() == {OLD: 100} and (world.stable, world.candidate, world.program) == (
        OLD, None, OLD_COMMIT,
    )  # fmt: skip
    # The summary tells the moves in the order they happened.
    patched = ABORTS_AFTER_A_MOVE[kind][2]
    said = [
        next(i for i, line in enumerate(lines) if line.startswith(start))
        for start in (
            "- ABORT: ",
            "- at once: all traffic back to the stable Service (kubectl patch): kubectl patch httproute: "
            + ("passed" if patched else "failed (test of /spec/rules/0/backendRefs/1/name failed)"),
            "- route weight 0 by `pulumi up --target` ("
            + ("so Pulumi's config and state agree" if patched else "the fallback for the failed patch"),
            f"- rollback to `{OLD_COMMIT[:12]}`'s program",
        )
    ]
    assert said == sorted(said), lines


@pytest.mark.parametrize("kind", [k for k, (_, _, patched) in ABORTS_AFTER_A_MOVE.items() if patched])
def test_negative_control_without_the_patch_the_candidate_keeps_its_share_during_the_targeted_up(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The abort as it was (weight 0 by the targeted up alone): the candidate keeps its share for the whole
    up (WEIGHT_MOVE_SECONDS budgets 90 s)."""
    monkeypatch.setattr(release_canary, "route_back", lambda ctx, tools, when: False)
    world, result, _ = abort_after_a_move(kind)
    assert result == release_canary.ABORTED
    assert shares_at(world, WEIGHT_0).get("muse-candidate", 0) > 0, world.ups
    with pytest.raises(AssertionError):
        assert_stable_first(world)


class PatchFails(Tools):
    """The patch does not apply: kubectl's request times out, or the call itself raises."""

    def __init__(self, world: World, raises: bool = False) -> None:
        super().__init__(world)
        self.raises = raises

    def route_to_stable(self) -> Step:
        self.w.log.append("patch route 0")
        if self.raises:
            raise subprocess.TimeoutExpired(["kubectl", "patch", "httproute", "muse"], 8)
        return Step(
            "kubectl patch httproute", ok=False, output="Unable to connect to the server: i/o timeout"
        )


@pytest.mark.parametrize("raises", [False, True], ids=["fails", "raises"])
def test_a_failed_patch_still_leads_to_the_targeted_up_and_the_rollback(raises: bool) -> None:
    world = World(error_ratio={NEW: 0.3})
    result, lines = run_with(PatchFails(world, raises), world)
    assert result == release_canary.ABORTED, lines
    log = world.log
    patch, targeted = log.index("patch route 0"), log.index(f"up {WEIGHT_0} --target route")
    assert patch < targeted < next(i for i, e in enumerate(log) if e.startswith(f"up {ROLLBACK}"))
    # The targeted up moved the traffic (the fallback), before the previous commit's program ran.
    assert shares_at(world, WEIGHT_0) == {"muse": 90, "muse-candidate": 10}
    assert shares_at(world, ROLLBACK) == {"muse": 100}
    assert (world.serving(), world.program) == ({OLD: 100}, OLD_COMMIT)
    why = "TimeoutExpired" if raises else "Unable to connect to the server: i/o timeout"
    assert any(line.startswith("- at once:") and "failed" in line and why in line for line in lines), lines
    assert any("(the fallback for the failed patch): pulumi up --target: passed" in line for line in lines)


@pytest.mark.parametrize("raises", [False, True], ids=["fails", "raises"])
def test_negative_control_a_failed_patch_that_stops_the_abort_is_caught(
    raises: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """route_back without its guard: a failed patch raises into the abort, which then ends as a failed
    rollback with the candidate's share and the new program left in place."""

    def unguarded(ctx: release_canary.Context, tools: Any, when: str) -> bool:
        if not tools.route_to_stable().ok:
            raise RuntimeError("kubectl patch httproute failed")
        return True

    monkeypatch.setattr(release_canary, "route_back", unguarded)
    world = World(error_ratio={NEW: 0.3})
    result, _ = run_with(PatchFails(world, raises), world)
    assert result == release_canary.ROLLBACK_FAILED
    assert not any("--target route" in e and WEIGHT_0 in e for e in world.log)
    assert NEW in world.serving() and world.program == NEW_COMMIT


def test_an_abort_before_any_kubectl_says_why_the_patch_did_nothing_and_undoes_the_release() -> None:
    """The candidate never became ready: no kubectl ran, so there is no kubeconfig to patch with (deploy.py
    route_to_stable); the candidate never had traffic, the targeted up and the rollback follow."""
    world = World(never_ready={NEW})
    result, lines = run(world)
    assert result == release_canary.ABORTED, lines
    assert world.log.index("patch route 0") < world.log.index(f"up {WEIGHT_0} --target route")
    assert any(
        line.startswith("- at once:") and "no kubeconfig yet: no weight was ever moved" in line
        for line in lines
    ), lines
    assert (world.serving(), world.program) == ({OLD: 100}, OLD_COMMIT)
