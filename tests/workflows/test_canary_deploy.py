"""scripts/ci/deploy.py canary_deploy's decisions before the canary: the plain release's fallback (first
deploy, the same image) gets the convergence check too; a stack without the Prometheus output releases
plainly with a warning instead of refusing every release."""

from __future__ import annotations

import email.message
import os
import subprocess
import sys
import urllib.error
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
    monkeypatch.setattr(deploy.CommandTools, "metrics_access", lambda self, version="": None)
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
    monkeypatch.setattr(deploy, "stack_outputs", lambda stack: dict(outputs))
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
        deploy.CommandTools, "metrics_access", lambda self, version="": self._prometheus().query("vector(1)")
    )
    with pytest.raises(RuntimeError, match="no output prometheusQueryEndpoint"):
        deploy.CommandTools("prod", [], "prometheusQueryEndpoint").metrics_access()
    assert plain["deploy"] == []


# --- deadlines from the job's start ------------------------------------------------------------------------


def test_deadlines_count_from_the_jobs_start_not_deploy_pys() -> None:
    now = 1_800_000_000.0
    fresh = deploy.deadlines(60, None, now)
    assert fresh == ((60 - 5 - 20) * 60, (60 - 5) * 60)  # a run by hand: the job starts now
    late = deploy.deadlines(60, now - 20 * 60, now)  # checkout, venv, Pulumi, preview took 20 minutes
    assert late == (fresh[0] - 20 * 60, fresh[1] - 20 * 60)
    # The flags only shorten them.
    assert deploy.deadlines(60, now - 20 * 60, now, deadline_minutes=3, hard_deadline_minutes=99) == (
        3 * 60,
        fresh[1] - 20 * 60,
    )
    # negative control: counted from deploy.py's own start, the hard deadline lies past the job's timeout
    assert fresh[1] + 20 * 60 > (60 - 20) * 60


def test_a_job_with_no_time_left_starts_nothing(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import time

    started: list[str] = []
    monkeypatch.setenv("JOB_STARTED_AT", str(int(time.time()) - (deploy.JOB_TIMEOUT_MINUTES - 20) * 60))
    monkeypatch.setattr(deploy, "placeholder_problem", lambda stack: None)
    monkeypatch.setattr(deploy, "recover", lambda *a: started.append("recover") or "")
    code = deploy.main(["--stack", "dev", "--image-tag", NEW, "--commit", COMMIT])
    assert code == 1 and started == []
    assert "left no time for a release" in capsys.readouterr().out
    monkeypatch.setenv("JOB_STARTED_AT", "yesterday")
    assert deploy.main(["--stack", "dev", "--image-tag", NEW, "--commit", COMMIT]) == 64


def test_an_interrupted_convergence_preview_is_not_a_perpetual_diff(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", None))
    stopped = deploy.Step(
        "convergence check (preview --expect-no-changes)", 255, "^C", interrupted="deadline"
    )
    monkeypatch.setattr(deploy, "converged", lambda *a: stopped)
    result, text = deploy.canary_deploy("dev", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    assert result == deploy.CONVERGENCE_UNKNOWN and "interrupted (deadline)" in text
    assert "does NOT converge" not in text
    # negative control: the same exit without the supervisor's record reads as a perpetual diff
    monkeypatch.setattr(deploy, "converged", lambda *a: deploy.Step(stopped.what, 255, "^C"))
    assert (
        deploy.canary_deploy("dev", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)[0]
        == deploy.NOT_CONVERGED
    )


def test_run_records_that_the_supervisor_stopped_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(deploy, "SUPERVISOR", Supervisor(time.monotonic() + 0.3, grace=5.0))
    step = deploy.run("convergence check (preview --expect-no-changes)", ["sleep", "10"])
    assert step.interrupted == "deadline" and "interrupted (deadline)" in step.describe()
    # negative control: a command that fails on its own is not "interrupted"
    monkeypatch.setattr(deploy, "SUPERVISOR", Supervisor(time.monotonic() + 60))
    failed = deploy.run("convergence check (preview --expect-no-changes)", ["false"])
    assert failed.interrupted == "" and failed.describe().endswith("failed (exit 1)")


# --- whatever escapes the release, main() writes the job summary --------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        subprocess.TimeoutExpired(["kubectl"], 60),
        urllib.error.HTTPError(
            "https://ws.prometheus.monitor.azure.com/api/v1/query", 400, "Bad Request",
            email.message.Message(), None,
        ),  # metrics_access: a 4xx other than 401/403 is raised as it is (canary_gate.PrometheusSource)
    ],
    ids=["kubectl-timeout", "http-400"],
)  # fmt: skip
def test_main_writes_the_summary_whatever_escapes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("JOB_STARTED_AT", raising=False)
    monkeypatch.setattr(deploy, "placeholder_problem", lambda stack: None)
    monkeypatch.setattr(deploy, "recover", lambda *a: "")
    monkeypatch.setattr(deploy.Supervisor, "install", lambda self: None)  # no handlers in pytest's process

    def raises(*args: Any) -> Any:
        raise error

    monkeypatch.setattr(deploy, "canary_deploy", raises)
    code = deploy.main(["--stack", "prod", "--image-tag", NEW, "--commit", COMMIT, "--canary"])
    assert code == 1
    text = summary.read_text()
    assert "### Deploy `prod`: FAILED, stopped by an unexpected error" in text
    assert type(error).__name__ in text
    # negative control: before, only RuntimeError/ValueError were caught, and neither is this error
    assert not isinstance(error, RuntimeError | ValueError)


# --- the no-canary fallback reads the outputs strictly -----------------------------------------------------


def failing_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, code: int = 255) -> None:
    """A `pulumi` on PATH that fails the way a backend outage does: a message on stderr, a non-zero exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {code}\n")
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_a_failing_output_read_fails_the_job_instead_of_releasing_without_a_canary(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failing_pulumi(
        tmp_path, monkeypatch, "error: could not read the checkpoint: blob: 503 Service Unavailable"
    )
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", OLD))
    with pytest.raises(RuntimeError, match="stack output --stack prod --json failed"):
        deploy.canary_deploy("prod", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    assert plain["deploy"] == [] and plain["canary"] == []  # nothing released, gated or not
    # negative control: the former read turned the same failure into "no such output" (the ungated path)
    assert deploy.stack_output("prod", "prometheusQueryEndpoint") == ""


def test_outputs_without_the_key_take_the_plain_path(
    plain: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text('#!/bin/sh\necho \'{"museUrl": "https://muse.example"}\'\n')
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(deploy, "recorded_deployment", lambda stack: ("urn", OLD))
    deploy.canary_deploy("prod", NEW, COMMIT, [], "prometheusQueryEndpoint", 0.0)
    assert len(plain["deploy"]) == 1 and plain["canary"] == []
