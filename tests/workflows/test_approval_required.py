"""deploy.yml's deploy job asks the stack's tier (main's head, the tools checkout) whether its call may skip
the approval: the step as GitHub runs it for each of main.yml's calls (verify.workflows.expand_calls puts
the call's `approval` in), its script run as a real process in a checkout laid out as the job's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.environments import ENVIRONMENTS, requires_approval
from stack.files import REPO_ROOT
from tests.workflows.expansion import expanded_main, main_text
from verify.workflows import Workflow

STEP = "The stack's tier does not ask for an approval this call skips"


def run_step(main: Workflow, environment: str, workspace: Path) -> subprocess.CompletedProcess[str]:
    """The step of `deploy-<environment>.deploy`, run with bash in a workspace whose .ci-tools is this
    checkout (main's head) and whose .venv/bin/python is this interpreter."""
    job = main.jobs[f"deploy-{environment}.deploy"]
    [step] = [s for s in job.steps if s.name == STEP]
    names = [s.name for s in job.steps]
    login = next(i for i, s in enumerate(job.steps) if s.action == "azure/login")
    assert names.index(STEP) < login and step.condition is None  # always, before any credential
    (workspace / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    python = workspace / ".venv" / "bin" / "python"
    if not python.exists():
        python.symlink_to(sys.executable)
        (workspace / ".ci-tools").symlink_to(REPO_ROOT)
    env = {
        **os.environ,
        **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in step.env.items()},
    }
    env["STACK"] = str(job.env["STACK"])
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", str(step.run)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_call_passes_its_tiers_check(environment: str, tmp_path: Path) -> None:
    result = run_step(expanded_main(), environment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    said = "asked for" if requires_approval(environment) else "not required"
    assert said in result.stdout


def test_negative_control_a_production_call_without_approval_is_stopped(tmp_path: Path) -> None:
    production = [e for e in ENVIRONMENTS if requires_approval(e)]
    assert production
    environment = production[-1]
    text = main_text()
    start = text.index(f"  deploy-{environment}:\n")
    call = text[start:]
    assert "      approval: true\n" in call
    edited = text[:start] + call.replace("      approval: true\n", "      approval: false\n", 1)
    result = run_step(expanded_main(main=edited), environment, tmp_path)
    assert result.returncode == 1
    assert f"::error title=Approval::{environment}'s stack file declares the production tier" in result.stdout


def test_an_environment_main_does_not_list_is_refused_not_waved_through() -> None:
    """requires_approval says False for a name outside the list; the deploy step must not read that as
    "no approval needed" (a re-run for an environment renamed since, a typo in a call)."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts/ci/approval_required.py"),
            "--environment",
            "prod-old",
            "--approval",
            "false",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "prod-old is not in stack/environments.txt" in result.stdout
    assert "prod-old" not in ENVIRONMENTS and requires_approval("prod-old") is False  # what it guards
