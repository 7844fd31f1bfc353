"""scripts/ci/deploy.py canary_deploy's decisions before the canary: the plain release's fallback (first
deploy, the same image) gets the convergence check too; a stack without the Prometheus output releases
plainly with a warning instead of refusing every release."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

import release_canary
from engine import Supervisor

import deploy

OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64
COMMIT = "c" * 40


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """deploy() releases; the convergence preview finds a perpetual diff; the canary is recorded, not run."""
    seen: dict[str, list[Any]] = {"deploy": [], "converged": [], "canary": []}
    monkeypatch.setattr(
        deploy, "deploy", lambda *a: seen["deploy"].append(a) or (deploy.RELEASED, "### released\n")
    )
    monkeypatch.setattr(
        deploy,
        "converged",
        lambda stack, *_: (
            seen["converged"].append(stack)
            or deploy.Step("convergence check (preview --expect-no-changes)", 1, "~ 1 to update")
        ),
    )
    monkeypatch.setattr(
        release_canary, "release", lambda ctx, tools: seen["canary"].append(ctx) or (deploy.RELEASED, [])
    )
    monkeypatch.setattr(deploy, "previous_commit", lambda stack: "1" * 40)
    monkeypatch.setattr(deploy.CommandTools, "metrics_access", lambda self: None)
    monkeypatch.setattr(deploy, "SUPERVISOR", Supervisor(float("inf")))
    return seen


@pytest.mark.parametrize("previous", [None, NEW], ids=["first-deploy", "same-image"])
def test_the_canarys_plain_fallback_runs_the_convergence_check(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, previous: str | None
) -> None:
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", previous))
    result, text = deploy.canary_deploy("dev", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    assert plain["converged"] == ["dev"] and plain["canary"] == []
    assert result == deploy.NOT_CONVERGED and deploy.EXIT_CODES[result] == 4
    assert "convergence check (preview --expect-no-changes): failed" in text


def test_negative_control_the_old_fallback_released_without_a_convergence_check(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", None))
    monkeypatch.setattr(deploy, "plain_release", deploy.deploy)  # the old `return deploy(...)`
    result, _ = deploy.canary_deploy("dev", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    assert deploy.EXIT_CODES[result] == 0 and plain["converged"] == []


def test_a_stack_without_the_prometheus_output_releases_plainly_and_the_next_release_canaries(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs: dict[str, str] = {}  # a stack deployed before the program exported prometheusQueryEndpoint
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", OLD))
    monkeypatch.setattr(deploy, "stack_output", lambda stack, name: outputs.get(name, ""))
    result, text = deploy.canary_deploy("prod", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    warning = capsys.readouterr().out
    assert "::warning title=No canary (prod)::the stack has no output prometheusQueryEndpoint" in warning
    assert len(plain["deploy"]) == 1 and plain["canary"] == [] and plain["converged"] == ["prod"]
    assert deploy.EXIT_CODES[result] != 64 and "no canary" in text
    # That release's `pulumi up` exported the output: the next one goes through the canary.
    outputs["prometheusQueryEndpoint"] = "https://ws.prometheus.monitor.azure.com"
    deploy.canary_deploy("prod", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    assert len(plain["canary"]) == 1 and len(plain["deploy"]) == 1


def test_negative_control_without_the_fallback_the_missing_output_refuses_the_release(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old order: the canary tools asked for the endpoint first and raised (main(): exit 64)."""
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", OLD))
    monkeypatch.setattr(deploy, "stack_output", lambda stack, name: "")
    monkeypatch.setattr(
        deploy.CommandTools, "metrics_access", lambda self: self._prometheus().query("vector(1)")
    )
    with pytest.raises(RuntimeError, match="no output prometheusQueryEndpoint"):
        deploy.CommandTools("prod", [], "prometheusQueryEndpoint").metrics_access()
    assert plain["deploy"] == []
