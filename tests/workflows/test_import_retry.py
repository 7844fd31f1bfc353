"""The image import waits out role propagation: the deploy job's import step (as main.yml's call of deploy.yml
runs it for the last environment) against a stand-in `az` that answers AuthorizationFailed to the first
calls, as ARM does until a new role assignment applies - up to 10 minutes (learn.microsoft.com/azure/
role-based-access-control/troubleshooting#symptom---role-assignment-changes-are-not-being-detected). The
stand-in's message is the Azure CLI's for an ARM 403 (`(AuthorizationFailed) The client ... does not have
authorization to perform action ...`). `sleep` is a stand-in that records its argument."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stack.environments import ENVIRONMENTS, image_source
from tests.workflows.expansion import expanded_main

DIGEST = "sha256:" + "a" * 64
SOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/source"
DENIED = (
    "ERROR: (AuthorizationFailed) The client 'deploy' with object id '00000000-0000-4000-8000-000000000001' "
    "does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/read' over scope "
    f"'{SOURCE}' or the scope is invalid. If access was recently granted, please refresh your credentials."
)
AZ = """#!/usr/bin/env bash
case "$*" in
  "acr import "*)
    n="$(cat "$STATE/imports" 2>/dev/null || echo 0)"; echo $((n + 1)) > "$STATE/imports"
    if (( n < DENY )); then echo "$DENIED_MESSAGE" >&2; exit 1; fi ;;
  "acr repository show "*) echo "$DIGEST" ;;
  *) echo "unexpected az $*" >&2; exit 2 ;;
esac
"""
PULUMI = "#!/usr/bin/env bash\necho acrmusetarget\n"
SLEEP = '#!/usr/bin/env bash\necho "$1" >> "$STATE/sleeps"\n'


def import_script(environment: str) -> str:
    job = expanded_main().jobs[f"deploy-{environment}.deploy"]
    [step] = [s for s in job.steps if (s.name or "").startswith("Copy the same digest")]
    return str(step.run)


def run_import(tmp_path: Path, script: str, deny: int, message: str = DENIED) -> tuple[int, str, list[str]]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    for name, text in (("az", AZ), ("pulumi", PULUMI), ("sleep", SLEEP)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STATE": str(state),
        "DENY": str(deny),
        "DENIED_MESSAGE": message,
        "DIGEST": DIGEST,
        "IMAGE_DIGEST": DIGEST,
        "IMAGE_REPOSITORY": "muse",
        "RELEASE_COMMIT": "0" * 40,
        "STACK": ENVIRONMENTS[-1],
        "SOURCE_ENVIRONMENT": image_source(ENVIRONMENTS[-1]) or "",
        "SOURCE_REGISTRY_ID": SOURCE,
    }
    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    sleeps = (state / "sleeps").read_text().split() if (state / "sleeps").exists() else []
    return result.returncode, result.stdout + result.stderr, sleeps


def test_the_import_retries_until_the_grant_applies(tmp_path: Path) -> None:
    code, output, sleeps = run_import(tmp_path, import_script(ENVIRONMENTS[-1]), deny=3)
    assert code == 0, output
    assert sleeps == ["30"] * 3
    assert output.count("AuthorizationFailed on attempt") == 3
    assert "attempt 3 of 20" in output


def test_the_retries_are_bounded_by_ten_minutes(tmp_path: Path) -> None:
    code, output, sleeps = run_import(tmp_path, import_script(ENVIRONMENTS[-1]), deny=1000)
    assert code == 1
    assert (tmp_path / "state" / "imports").read_text().strip() == "20"
    assert sum(int(s) for s in sleeps) <= 600  # Azure's documented propagation bound
    assert "failed (attempt 20 of 20)" in output and "(AuthorizationFailed)" in output


@pytest.mark.parametrize("message", ["ERROR: (ResourceNotFound) The Resource 'source' was not found."])
def test_another_error_fails_at_once(tmp_path: Path, message: str) -> None:
    code, output, sleeps = run_import(tmp_path, import_script(ENVIRONMENTS[-1]), deny=1, message=message)
    assert code == 1 and sleeps == [] and "ResourceNotFound" in output


def test_negative_control_a_single_import_fails_on_the_first_denial(tmp_path: Path) -> None:
    script = import_script(ENVIRONMENTS[-1])
    start, end = script.index("for attempt in"), script.index("done\n", script.index("for attempt in")) + 5
    single = (
        'az acr import --name "$registry" --registry "$SOURCE_REGISTRY_ID" '
        '--source "$IMAGE_REPOSITORY@$IMAGE_DIGEST" --image "$IMAGE_REPOSITORY:$RELEASE_COMMIT" --force\n'
    )
    code, output, _ = run_import(tmp_path, script[:start] + single + script[end:], deny=1)
    assert code == 1 and "(AuthorizationFailed)" in output
