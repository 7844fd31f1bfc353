"""`scripts/ci/deploy.py --canary` run whole, as deploy.yml runs it, in its own process: the candidate up, the
weight moves, the gate on a real Prometheus query API, the promotion or the abort, a signal mid-step and the
next run's recovery.

Around it: the stand-ins of pulumi, kubectl, az and kubelogin (tests/workflows/release_tools.py, "project
mode": each commit's program and stack file on disk, `--target`, `--cwd`, the route's weights and the
candidate), a git repository with the previously deployed commit and this one (deploy.py checks the previous
one out with real git and make), the HTTPS Prometheus API stand-in on 127.0.0.1
(tests/workflows/prometheus_api.py) answering from what the route sends the candidate, and the loopback
ingress for the smoke check. Time is virtual (tests/workflows/canary_driver.py): the canary's minutes pass at
once. Each behaviour has a negative control: the same run with that guard taken out fails the assertion.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import loopback
from tests.workflows.prometheus_api import PrometheusApi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))
from canary_gate import ACCESS_QUERY, BUILD_INFO, THRESHOLDS

from tests.workflows.test_deploy_rollback import ReleaseWorkspace, ingress_handler

pytestmark = pytest.mark.slow  # deploy.py and ~60 stand-in processes per release

HERE = Path(__file__).resolve().parent
TOOLS = HERE / "release_tools.py"
DRIVER = HERE / "canary_driver.py"
OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64
USERS_RPS = 5.0  # the users' requests/s the route shares out
LOAD_RPS = 2.0  # a step's load Job (components/muse_workload/canary_load.py: ~2 requests/s)
STEPS, STEP_SECONDS = [10, 50, 100], 60


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_program(repo: Path, name: str, probe: str) -> str:
    """One commit of the project: its program's model, its stack file, a `make ci-venv` (deployed-venv.sh)."""
    (repo / "Pulumi.yaml").write_text("name: muse\nruntime: python\n")
    (repo / "Makefile").write_text("ci-venv:\n\t@echo ci-venv done\n")
    plan = {"steps": STEPS, "stepSeconds": STEP_SECONDS}
    (repo / "program.json").write_text(json.dumps({"name": name, "probe": probe, "canary": plan}))
    (repo / "Pulumi.dev.yaml").write_text(json.dumps({"config": {"muse:imageTag": OLD}}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", name)
    return git(repo, "rev-parse", "HEAD")


class Canary(ReleaseWorkspace):
    def __init__(self, tmp: Path, ingress_url: str) -> None:
        super().__init__(tmp)
        self.repo = tmp / "repo"
        self.repo.mkdir()
        git(self.repo, "init", "-q")
        self.previous_commit = commit_program(self.repo, "v1", "/readyz")
        self.commit = commit_program(self.repo, "v2", "/readyz?full=1")
        self.checks: list[tuple[str, int]] = []  # (query kind, the candidate's weight) per answered query
        self.skipped_file = tmp / "driver-skipped-seconds"
        self.api = PrometheusApi(tmp, self.answer)
        route = "urn:pulumi:dev::muse::muse:kubernetes:MuseWorkload$kubernetes:gateway.networking.k8s.io/v1"
        self.write(
            {
                "stack": "dev", "namespace": "muse-dev", "login_server": "acrmusedevm7k2.azurecr.io",
                "config": {}, "state_image": OLD, "spec_image": OLD, "serving_image": OLD,
                "candidate_image": None, "program_commit": "v1", "probe": "/readyz",
                "route": {"backendRefs": [{"name": "muse"}]}, "images": {}, "calls": [], "events": [],
                "history": [{"version": 1, "kind": "update", "result": "succeeded",
                             "message": f"main {self.previous_commit}"}],
                "outputs": {
                    "resourceGroupName": "rg-muse-dev-m7k2", "clusterName": "aks-muse-dev-m7k2",
                    "museNamespace": "muse-dev", "museDeployment": "muse", "museUrl": ingress_url,
                    "prometheusQueryEndpoint": self.api.url,
                    "museRouteUrn": f"{route}:HTTPRoute::muse-httproute",
                    "museCanary": {"steps": STEPS, "stepSeconds": STEP_SECONDS},
                },
            }
        )  # fmt: skip

    def answer(self, query: str, at: float | None = None) -> float | None:
        """The workspace's answer from what the cluster does now: the candidate's requests are its share of
        the users' traffic (the route's weight) plus a running load Job's; 5xx and p95 as its image behaves.
        It answers from the current weights with no ingestion lag (test_canary_lag.py models the lag), the
        interval being the one that ended at the last scrape on a 30 s grid of deploy.py's virtual wall clock
        (canary_driver.py writes its skipped seconds to `skipped_file`).
        No requests: no series, an empty vector (a counter series appears with its first request)."""
        if query == ACCESS_QUERY:  # count(muse_build_info): the access check before anything changes
            return 1.0
        if (
            query == f"max(timestamp({BUILD_INFO}))"
        ):  # the newest scrape at `at` (deploy.py evaluates_at_time)
            return self.scrape_at(at)
        version = re.search(r'version="([^"]+)"', query)
        if version and query.startswith("max(timestamp("):  # which interval: the newest scrape's time
            return self.scrape_at(None)
        interval = re.search(r"irate\(.*\[(\d+)s\]\)", query)
        if not version or not interval:
            raise ValueError(f"unexpected query {query!r}")
        world = self.world()
        candidate = world.get("candidate_image")
        refs = {r["name"]: r.get("weight", 1) for r in world["route"]["backendRefs"]}
        weight = refs.get("muse-candidate", 0) if candidate == version.group(1) else 0
        loaded = candidate == version.group(1) and any(
            j["labels"].get("muse.load") == "canary" for j in world.get("jobs", [])
        )
        kind = (
            "p95" if "histogram_quantile" in query else "errors" if 'status=~"5.."' in query else "requests"
        )
        self.checks.append((kind, weight))
        rate = USERS_RPS * weight / 100 + (LOAD_RPS if loaded else 0)
        if not world.get("scraped", True) or rate == 0:
            return None
        image = {"error_ratio": 0.0, "p95_seconds": 0.05, **world["images"].get(version.group(1), {})}
        # irate times the scrape interval: the last two samples of the range, one interval apart (canary_gate)
        requests = rate * THRESHOLDS.scrape_seconds
        return {"requests": requests, "errors": requests * image["error_ratio"], "p95": image["p95_seconds"]}[
            kind
        ]

    def scrape_at(self, at: float | None) -> float:
        """The newest scrape at `at` (None: now, on deploy.py's virtual wall clock)."""
        if at is None:
            skipped = float(self.skipped_file.read_text()) if self.skipped_file.exists() else 0.0
            at = time.time() + skipped
        return at - at % THRESHOLDS.scrape_seconds

    def env(self) -> dict[str, str]:
        # SSL_CERT_FILE: deploy.py trusts the workspace stand-in's certificate.
        env = self.deploy_env(SSL_CERT_FILE=str(self.api.ca_file))
        env.pop("JOB_STARTED_AT", None)
        env["CANARY_DRIVER_SKIPPED"] = str(self.skipped_file)
        return env

    def start(self, without: str | None = None) -> subprocess.Popen[str]:
        args = ["--stack", "dev", "--image-tag", NEW, "--commit", self.commit, "--policy-pack", "policy"]
        command = [
            sys.executable,
            str(DRIVER),
            *(["--without", without] if without else []),
            *args,
            "--canary",
        ]
        return subprocess.Popen(
            command,
            env=self.env(),
            cwd=self.repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, without: str | None = None) -> tuple[int, str]:
        out, _ = self.start(without).communicate(timeout=180)
        return self.process_code, out  # type: ignore[has-type]

    def events(self, what: str) -> list[dict[str, Any]]:
        return [e for e in self.world()["events"] if e["what"] == what]

    def candidate_weights(self) -> list[int]:
        """The candidate's share each time the route changed (0: there but no traffic; -1: gone)."""
        return [e["weights"].get("muse-candidate", -1) for e in self.events("route")]

    def checks_at(self, weight: int) -> int:
        return sum(1 for kind, at in self.checks if kind == "requests" and at == weight)


def finish(canary: Canary, process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    holder: dict[str, Any] = {}
    ingress = ThreadingHTTPServer(("127.0.0.1", 0), ingress_handler(holder))
    loopback.start(ingress)
    made = Canary(tmp_path, f"http://127.0.0.1:{ingress.server_address[1]}")
    holder["release"] = made
    made.served = []  # type: ignore[attr-defined]  # ingress_handler records what served each smoke check
    with made.api:
        yield made
    ingress.shutdown()
    ingress.server_close()


def release(canary: Canary, without: str | None = None) -> tuple[int, str]:
    return finish(canary, canary.start(without))


def final_stack(canary: Canary) -> dict[str, Any]:
    world = canary.world()
    return {
        "program": world["program_commit"], "probe": world["probe"], "stable": world["state_image"],
        "candidate": world["candidate_image"], "route": world["route"],
    }  # fmt: skip


V2_AT_100 = {"program": "v2", "probe": "/readyz?full=1", "stable": NEW, "candidate": None,
             "route": {"backendRefs": [{"name": "muse"}]}}  # fmt: skip
V1_RESTORED = {"program": "v1", "probe": "/readyz", "stable": OLD, "candidate": None,
               "route": {"backendRefs": [{"name": "muse"}]}}  # fmt: skip


# --- (a) a good candidate ---


def test_a_good_candidate_steps_through_every_weight_and_ends_converged_on_the_new_commit(
    canary: Canary,
) -> None:
    code, out = release(canary)
    assert code == 0, out
    # 0 (candidate up, no traffic), the plan's steps, then the promotion hands the route back to the stable
    # Service, which now runs the new image (the candidate gone).
    assert canary.candidate_weights() == [0, *STEPS, -1], canary.events("route")
    for weight in STEPS:  # each step was checked until a check old enough to see its traffic was healthy
        assert canary.checks_at(weight) >= 2, canary.checks
    assert final_stack(canary) == V2_AT_100
    # Right after the promotion: the convergence preview of this commit's program, with nothing to change.
    last = canary.world()["events"][-1]
    assert last == {"what": "preview", "program": "v2", "changes": 0}, canary.world()["events"][-3:]
    assert "Deploy `dev`: released through the canary" in canary.summary.read_text()
    assert "result=released" in canary.output.read_text()


def test_negative_control_without_the_convergence_check_no_preview_runs(canary: Canary) -> None:
    code, out = release(canary, without="convergence")
    assert code == 0, out
    assert canary.events("preview") == []  # the first test's last assertion fails


# --- (b) a candidate that fails the gate ---


def route_back_and_rollback(canary: Canary) -> tuple[int, int]:
    """(index of the route's move back to stable after the first step, index of the rollback's up) in
    `events`; -1 for what never happened."""
    events = canary.world()["events"]
    first_step = next(
        i
        for i, e in enumerate(events)
        if e["what"] == "route" and e["weights"].get("muse-candidate") == STEPS[0]
    )
    back = next(
        (i for i, e in enumerate(events[first_step:], first_step)
         if e["what"] == "route" and e["weights"].get("muse-candidate", 0) == 0),
        -1,
    )  # fmt: skip
    rollback = next((i for i, e in enumerate(events) if e["what"] == "stack" and e["program"] == "v1"), -1)
    return back, rollback


def abort_weight_up(canary: Canary) -> int:
    """Index in `events` of the abort's targeted `pulumi up` (weight 0 in Pulumi's config and state); -1."""
    by = f"pulumi up --target: canary {canary.commit} weight 0"
    return next((i for i, e in enumerate(canary.world()["events"]) if e.get("by") == by), -1)


def assert_rolled_back_after_the_route(canary: Canary) -> None:
    events = canary.world()["events"]
    back, rollback = route_back_and_rollback(canary)
    assert 0 < back < rollback, events  # traffic to stable first, then the previous commit's program
    # ...first by the `kubectl patch` (seconds), both weights, the candidate still up: not by the targeted up
    # (minutes), nor as a side effect of the rollback's up.
    assert events[back] == {
        "what": "route", "weights": {"muse": 100, "muse-candidate": 0}, "by": "kubectl patch"
    }, events  # fmt: skip
    # Then the targeted up, so that Pulumi's config and state agree with the route, before the rollback.
    assert back < abort_weight_up(canary) < rollback, events
    calls = canary.world()["calls"]
    patch = next(i for i, c in enumerate(calls) if " patch httproute " in c)
    weight_0 = f"canary {canary.commit} weight 0"
    targeted = next(i for i, c in enumerate(calls) if c.startswith("pulumi up") and weight_0 in c)
    assert patch < targeted, calls
    assert final_stack(canary) == V1_RESTORED
    # Verified the same way: the rollout and smoke checks, then the previous commit's convergence preview.
    assert events[-1] == {"what": "preview", "program": "v1", "changes": 0}, events[-3:]
    assert canary.served[-1] == OLD  # type: ignore[attr-defined]
    worktree = canary.dir / f"previous-{canary.previous_commit[:12]}"
    assert json.loads((worktree / "Pulumi.dev.yaml").read_text())["config"] == {"muse:imageTag": OLD}


def test_a_candidate_with_5xx_above_the_threshold_twice_is_aborted_and_the_release_undone(
    canary: Canary,
) -> None:
    canary.update(images={NEW: {"error_ratio": 0.05}})
    code, out = release(canary)
    assert code == 1, out
    assert max(canary.candidate_weights()) == STEPS[0]  # never past the first step
    assert canary.checks_at(STEPS[0]) == 2  # two bad checks in a row, then at once
    assert "2 bad checks in a row at 10 %: 5xx 5.0%" in out
    assert "::error title=Deploy (dev)::Deploy `dev`: FAILED, the canary aborted" in out
    assert_rolled_back_after_the_route(canary)
    assert "result=canary-aborted" in canary.output.read_text()
    # The summary tells the moves in the order they happened: the patch, the targeted up, the rollback.
    summary = canary.summary.read_text()
    said = [
        summary.index(text)
        for text in (
            "- ABORT: 2 bad checks in a row",
            "- at once: all traffic back to the stable Service (kubectl patch): kubectl patch httproute: "
            "passed",
            "- route weight 0 by `pulumi up --target` (so Pulumi's config and state agree): pulumi up "
            "--target",
            f"- rollback to `{canary.previous_commit[:12]}`'s program",
        )
    ]
    assert said == sorted(said), summary


def test_negative_control_without_the_gate_the_bad_candidate_reaches_100(canary: Canary) -> None:
    canary.update(images={NEW: {"error_ratio": 0.05}})
    code, out = release(canary, without="gate")
    assert code == 0, out
    assert max(canary.candidate_weights()) == 100 and final_stack(canary)["stable"] == NEW


def test_negative_control_an_abort_without_the_patch_leaves_the_candidate_its_share_until_the_up(
    canary: Canary,
) -> None:
    """The abort as it was: weight 0 only by the targeted up, the candidate keeping its 10 % meanwhile."""
    canary.update(images={NEW: {"error_ratio": 0.05}})
    code, out = release(canary, without="route-back")
    assert code == 1, out
    events = canary.world()["events"]
    back, rollback = route_back_and_rollback(canary)
    # The first move back is the targeted up's, the candidate at 10 % until it finished; then the rollback.
    assert back == abort_weight_up(canary) - 1 and back < rollback, events
    assert events[back]["by"] == "pulumi up --target", events
    assert not [e for e in canary.world()["calls"] if " patch httproute " in e]
    assert final_stack(canary) == V1_RESTORED  # the rollback itself still happens
    with pytest.raises(AssertionError):
        assert_rolled_back_after_the_route(canary)


def test_negative_control_an_abort_without_the_route_move_changes_the_stack_first(canary: Canary) -> None:
    canary.update(images={NEW: {"error_ratio": 0.05}})
    code, out = release(canary, without="route-first")
    assert code == 1, out
    events = canary.world()["events"]
    back, rollback = route_back_and_rollback(canary)
    # The candidate kept its 10 % until the rollback's whole-program up removed it with the route.
    assert back == rollback - 1 and events[back]["by"] == "pulumi up", events
    with pytest.raises(AssertionError):
        assert_rolled_back_after_the_route(canary)


# --- (c) no data ---


def test_no_data_from_prometheus_holds_the_step_then_aborts(canary: Canary) -> None:
    canary.update(scraped=False)  # every query answers an empty vector
    code, out = release(canary)
    assert code == 1, out
    assert max(canary.candidate_weights()) == STEPS[0]
    # Held past the step's time for data (the step is 60 s, a check every 30 s: 2 checks; it held for more).
    assert canary.checks_at(STEPS[0]) > STEP_SECONDS // 30, canary.checks
    assert "(holding for data)" in out
    assert "no signal (no data) from the candidate at 10 %" in out
    assert_rolled_back_after_the_route(canary)


def test_negative_control_counting_no_data_as_healthy_promotes_blind(canary: Canary) -> None:
    canary.update(scraped=False)
    code, out = release(canary, without="no-data-hold")
    assert code == 0, out
    assert final_stack(canary)["stable"] == NEW


# --- (d) SIGTERM mid-step, and the next run ---


def wait_for(canary: Canary, key: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if canary.world().get(key):
                return
        except json.JSONDecodeError:
            pass
        time.sleep(0.05)
    raise TimeoutError(key)


def cancel_mid_step(canary: Canary, without: str | None = None) -> tuple[int, str]:
    canary.update(slow_route_move_at=50)  # the weight move to 50 % runs until a signal
    process = canary.start(without)
    wait_for(canary, "up_running")
    process.send_signal(signal.SIGTERM)  # what the runner sends after its SIGINT (row 7)
    return finish(canary, process, timeout=60)


def test_sigterm_mid_step_sends_the_traffic_back_stops_pulumi_cleanly_and_the_next_run_recovers(
    canary: Canary,
) -> None:
    code, out = cancel_mid_step(canary)
    world = canary.world()
    assert code == 1, out
    assert "SIGTERM received" in out
    assert world["up_signals"] == ["SIGINT"], out  # Pulumi's graceful cancel, once, never a second signal
    # The cancelled move's PATCH reached the route (50 %); a `kubectl patch` after it gave the stable Service
    # all of it, both weights (the signal handler's, or the one after the interrupted pulumi ended, whichever
    # came last).
    route = canary.events("route")
    cancelled = next(i for i, e in enumerate(route) if e["by"] == "pulumi up --target (cancelled)")
    assert route[cancelled]["weights"]["muse-candidate"] == 50, route
    moved_back = {"what": "route", "weights": {"muse": 100, "muse-candidate": 0}, "by": "kubectl patch"}
    assert route[-1] == moved_back
    assert len(route) > cancelled + 1, route
    assert not [e for e in canary.events("stack") if e["program"] == "v1"]  # no rollback started
    assert world["pending_operations"][0]["resource"]["urn"].endswith("HTTPRoute::muse-httproute")
    # The next run: the pending operation is recovered before any update, then the release goes through.
    canary.update(slow_route_move_at=None, up_running=False)
    calls_before = len(canary.world()["calls"])
    code, out = release(canary)
    world = canary.world()
    assert code == 0, out
    calls = world["calls"][calls_before:]
    refresh = next(i for i, c in enumerate(calls) if c.startswith("pulumi refresh"))
    assert "--clear-pending-creates" in calls[refresh]
    assert refresh < next(i for i, c in enumerate(calls) if c.startswith("pulumi up"))
    assert not world.get("up_with_pending_operations") and world["pending_operations"] == []
    assert "Recovered an interrupted update" in canary.summary.read_text()
    assert final_stack(canary) == V2_AT_100


def test_negative_control_without_the_route_back_the_cancelled_step_keeps_its_traffic(canary: Canary) -> None:
    code, out = cancel_mid_step(canary, without="route-back")
    assert code == 1, out
    assert canary.candidate_weights()[-1] == 50


def test_negative_control_without_recovery_the_next_run_updates_over_pending_operations(
    canary: Canary,
) -> None:
    cancel_mid_step(canary)
    canary.update(slow_route_move_at=None, up_running=False)
    release(canary, without="recovery")
    assert canary.world().get("up_with_pending_operations")
