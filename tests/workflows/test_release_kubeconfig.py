"""scripts/ci/deploy.py CommandTools keeps its own kubeconfig for the whole canary release: the rollout check
(verify-rollout.sh) removes the one it writes, and kubectl refuses a `--kubeconfig` that does not exist
(release_tools.py's stand-in, as client-go's loader does). Run against the stand-ins of pulumi, kubectl, az
and kubelogin (tests/workflows/release_tools.py) with the real verify-rollout.sh and write-kubeconfig.sh."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "ci"))
TOOLS = Path(__file__).with_name("release_tools.py")

import deploy  # noqa: E402

CHECK = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"generateName": "muse-check-", "namespace": "muse-dev"},
    "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}},
}
LOAD = {
    **CHECK,
    "metadata": {**CHECK["metadata"], "generateName": "muse-load-", "labels": {"muse.load": "canary"}},
}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pulumi", "kubectl", "az", "kubelogin"):
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TOOLS}" {tool} "$@"\n')
        wrapper.chmod(0o755)
    path = tmp_path / "world.json"
    path.write_text(
        json.dumps(
            {
                "stack": "dev", "namespace": "muse-dev", "login_server": "acr.azurecr.io",
                "config": {}, "state_image": "sha256:" + "a" * 64, "spec_image": "sha256:" + "a" * 64,
                "images": {}, "history": [], "calls": [],
                "outputs": {
                    "resourceGroupName": "rg-muse-dev", "clusterName": "aks-muse-dev",
                    "prometheusQueryEndpoint": "https://ws.westeurope.prometheus.monitor.azure.com",
                },
            }
        )
    )  # fmt: skip
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("RELEASE_WORLD", str(path))
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    monkeypatch.setattr(deploy, "SUPERVISOR", None)
    return path


def calls(world: Path) -> list[str]:
    return list(json.loads(world.read_text())["calls"])


def release_sequence(tools: Any) -> list[tuple[bool, str]]:
    """What a canary release asks of kubectl, around the rollout checks that remove their kubeconfig."""
    results = []
    tools.verify({}, "muse")  # a rollout check first (release_canary's verify after the promotion)
    results.append(tools.end_to_end(CHECK))
    try:
        tools.start_load(LOAD, 10)
        results.append((True, "load started"))
    except RuntimeError as error:
        results.append((False, str(error)))
    tools.verify({}, "muse")  # the rollback's verify runs the same script again
    results.append(tools.end_to_end(CHECK))
    tools.stop_load(LOAD)
    return results


def test_the_release_keeps_its_kubeconfig_across_rollout_checks(world: Path) -> None:
    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    results = release_sequence(tools)
    assert [ok for ok, _ in results] == [True, True, True], results
    state = json.loads(world.read_text())
    # Both checks ran; the load Job was created and then deleted by its label.
    assert [job["name"] for job in state["jobs"]] == ["muse-check-x0000", "muse-check-x0002"]
    assert any(c.startswith("kubectl --kubeconfig") and "delete job" in c for c in calls(world))
    assert set(state["kubeconfigs"]) == {str(tools.kubeconfig)}
    # Written once, as verify-rollout.sh writes its own: get-credentials, then kubelogin's conversion.
    written = (
        f"az aks get-credentials --resource-group rg-muse-dev --name aks-muse-dev --file {tools.kubeconfig} "
        "--overwrite-existing"
    )
    assert calls(world).count(written) == 1
    assert f"kubelogin convert-kubeconfig --login azurecli --kubeconfig {tools.kubeconfig}" in calls(world)
    tools.close()
    assert not tools.kubeconfig.exists()


@pytest.mark.slow  # the real rollout script and ~30 stand-in processes (~3.5 s CPU)
def test_negative_control_the_rollout_checks_kubeconfig_is_gone_when_kubectl_needs_it(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old sequence: borrow verify-rollout.sh's kubeconfig, which it deletes on success."""
    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    borrowed = Path(str(tools.kubeconfig).removesuffix("-release"))

    def old_kubectl(self: Any) -> list[str]:
        if not borrowed.exists():
            deploy.run("kubeconfig (rollout check)", [str(deploy.HERE / "verify-rollout.sh"), self.stack])
        return ["kubectl", "--kubeconfig", str(borrowed)]

    monkeypatch.setattr(deploy.CommandTools, "_kubectl", old_kubectl)
    results = release_sequence(tools)
    assert [ok for ok, _ in results] == [False, False, False]
    assert f"stat {borrowed}: no such file or directory" in results[0][1]


def test_canary_deploy_removes_its_kubeconfig_whatever_ends_the_release(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import release_canary

    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", "sha256:" + "a" * 64))
    monkeypatch.setattr(deploy, "previous_commit", lambda stack: "b" * 40)
    monkeypatch.setattr(deploy.CommandTools, "metrics_access", lambda self, version="": None)
    from engine import Supervisor

    monkeypatch.setattr(deploy, "SUPERVISOR", Supervisor(float("inf")))
    seen: list[Path] = []

    def failing_release(ctx: Any, tools: Any) -> Any:
        assert tools.end_to_end(CHECK)[0]
        seen.append(tools.kubeconfig)
        assert tools.kubeconfig.exists()
        raise KeyboardInterrupt  # any way out of the release

    monkeypatch.setattr(release_canary, "release", failing_release)
    with pytest.raises(KeyboardInterrupt):
        deploy.canary_deploy("dev", "sha256:" + "c" * 64, "c" * 40, [], "prometheusQueryEndpoint", 0.0)
    assert seen and not seen[0].exists()


def set_route(world: Path, refs: list[dict[str, Any]]) -> None:
    state = json.loads(world.read_text())
    state["route"] = {"backendRefs": refs}
    world.write_text(json.dumps(state))


def weights(world: Path) -> list[int | None]:
    return [ref.get("weight") for ref in json.loads(world.read_text())["route"]["backendRefs"]]


@pytest.mark.parametrize("step", [10, 50, 100])
def test_route_to_stable_sends_all_traffic_to_the_stable_service_at_each_step(world: Path, step: int) -> None:
    """At 100 % the stable entry's weight is already 0 (manifests.py backend_refs); a weight of 0 gets no
    traffic (gateway-api apis/v1/shared_types.go BackendRef.Weight): both weights must be set."""
    set_route(
        world,
        [{"name": "muse", "weight": 100 - step}, {"name": "muse-candidate", "weight": step}],
    )
    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    refused = tools.route_to_stable()  # before the release wrote its kubeconfig: nothing to patch with
    assert not refused.ok and not any(c.startswith("kubectl") for c in calls(world))
    assert tools.end_to_end(CHECK)[0]  # the canary's first kubectl writes the kubeconfig
    moved = tools.route_to_stable()
    assert moved.ok, moved.output
    assert weights(world) == [100, 0]
    assert json.loads(world.read_text())["route_patches"] == [["muse-dev", "muse"]]
    tools.close()


def test_negative_control_the_candidate_only_patch_leaves_the_route_no_backend_at_100(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_route(world, [{"name": "muse", "weight": 0}, {"name": "muse-candidate", "weight": 100}])
    old = [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0}]
    monkeypatch.setattr(deploy, "TO_STABLE_PATCH", old)
    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    assert tools.end_to_end(CHECK)[0]
    assert tools.route_to_stable().ok
    assert weights(world) == [0, 0]  # every entry at 0: the Gateway has no backend for the route's requests


@pytest.mark.parametrize(
    "refs",
    [
        [{"name": "muse"}],  # the promotion already removed the candidate: nothing to move
        [{"name": "muse-candidate", "weight": 0}, {"name": "muse", "weight": 100}],  # another layout
    ],
    ids=["single-backend", "swapped"],
)
def test_route_to_stable_refuses_a_route_it_does_not_recognise(
    world: Path, refs: list[dict[str, Any]]
) -> None:
    set_route(world, refs)
    tools = deploy.CommandTools("dev", [], "prometheusQueryEndpoint")
    assert tools.end_to_end(CHECK)[0]
    moved = tools.route_to_stable()
    assert not moved.ok and ("test of" in moved.output or "does not exist" in moved.output), moved.output
    assert json.loads(world.read_text())["route"]["backendRefs"] == refs  # nothing applied


def test_the_runbooks_hurried_patch_is_the_releases() -> None:
    """docs/runbook.md, "In a hurry": the same patch a person pastes as the release sends."""
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    assert f"-p '{json.dumps(deploy.TO_STABLE_PATCH)}'" in " ".join(runbook.split())


def test_the_route_name_is_the_programs() -> None:
    from components.muse_workload.manifests import HTTP_ROUTE

    assert deploy.ROUTE_NAME == HTTP_ROUTE


def test_the_services_in_the_patch_are_the_programs() -> None:
    from components.muse_workload.manifests import CANDIDATE, SERVICE

    assert (deploy.STABLE_SERVICE, deploy.CANDIDATE_SERVICE) == (SERVICE, CANDIDATE)
