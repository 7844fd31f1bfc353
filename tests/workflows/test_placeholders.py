"""scripts/ci/placeholders.py: prod's committed placeholders (operators' group, alert receivers, example host)
are refused before the approval (main.yml preview-prod) and before any real deploy, naming every key; the
offline plan keeps working with them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline.engine import OfflinePlan
from stack.files import REPO_ROOT
from tests.workflows.expansion import expanded_main

CI = REPO_ROOT / "scripts" / "ci"
sys.path.insert(0, str(CI))
import placeholders  # noqa: E402  (scripts/ci is not a package; deploy.py runs it the same way)

# Processes and the offline plan of prod.
pytestmark = pytest.mark.slow

REAL = {
    "muse:ingressHost": "muse.contoso.com",
    "muse:operatorsGroupObjectId": "3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c",
    "muse:alertEmails": ["oncall@contoso.com"],
}


def _repo_with(tmp_path: Path, changes: dict[str, object]) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    stack_file = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    stack_file["config"].update(changes)
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack_file))
    return tmp_path


def test_the_committed_prod_file_is_refused_naming_every_placeholder_key() -> None:
    message = placeholders.problem("prod", REPO_ROOT)
    assert message is not None
    keys = [line.split(":")[1] for line in message.splitlines() if line.startswith("  - muse:")]
    assert keys == ["alertEmails", "ingressHost", "operatorsGroupObjectId"]
    assert "nothing was deployed" in message


def test_negative_control_real_values_pass(tmp_path: Path) -> None:
    assert placeholders.problem("prod", _repo_with(tmp_path, REAL)) is None


def test_each_placeholder_alone_is_refused(tmp_path: Path) -> None:
    committed = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    for key in REAL:
        root = tmp_path / key.replace(":", "-")
        root.mkdir()
        message = placeholders.problem("prod", _repo_with(root, {**REAL, key: committed[key]}))
        assert message is not None and f"  - {key}:" in message, (key, message)
        assert message.count("\n  - muse:") == 1


def test_negative_control_dev_has_no_placeholders() -> None:
    assert placeholders.problem("dev", REPO_ROOT) is None


def test_the_cli_exits_1_with_the_message_and_0_without(tmp_path: Path) -> None:
    script = str(CI / "placeholders.py")
    refused = subprocess.run(
        [sys.executable, script, "--stack", "prod"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1 and "muse:operatorsGroupObjectId" in refused.stderr
    passed = subprocess.run(
        [sys.executable, script, "--stack", "prod"],
        cwd=_repo_with(tmp_path, REAL),
        capture_output=True,
        text=True,
        check=False,
    )
    assert passed.returncode == 0, passed.stderr


def test_preview_prod_refuses_them_before_the_preview_and_the_approval() -> None:
    # The preview job of each approval call of the reusable deploy.yml (main.yml's prod call).
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    steps = [step.get("run", "") or step.get("uses", "") for step in workflow["jobs"]["preview"]["steps"]]
    check = next(i for i, run in enumerate(steps) if "scripts/ci/placeholders.py --stack" in run)
    venv = next(i for i, run in enumerate(steps) if run.strip() == "make ci-venv")
    preview = next(i for i, run in enumerate(steps) if "scripts/ci/preview.py" in run)
    login = next(i for i, run in enumerate(steps) if run.startswith("azure/login@"))
    assert venv < check < login < preview
    # The approval is the deploy job's environment; it waits for the preview, so a refusal comes first.
    assert "preview" in workflow["jobs"]["deploy"]["needs"]
    assert expanded_main().jobs["deploy-prod.deploy"].needs[-1] == "deploy-prod.preview"


def test_make_plan_of_prod_still_works_with_the_placeholders(plans: dict[str, OfflinePlan]) -> None:
    plan = plans["prod"]
    assert plan.resources
