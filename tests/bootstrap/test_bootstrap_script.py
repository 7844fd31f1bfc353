"""scripts/bootstrap.sh run for real against recording stand-ins for az, pulumi and gh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from offline.engine import OfflinePlan, run_stack
from stack.files import REPO_ROOT
from stack.naming import StateBackendNames
from stack.providers import RESOURCE_PROVIDERS

SCRIPT = REPO_ROOT / "scripts" / "bootstrap.sh"
STATE = StateBackendNames.for_bootstrap("m7k2")
ENV_STATE = {env: StateBackendNames.for_environment(env, "m7k2") for env in ("dev", "prod")}

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  "az account show"*) echo 11111111-2222-3333-4444-555555555555 ;;
  "az ad signed-in-user show"*) echo aaaaaaaa-0000-0000-0000-000000000001 ;;
  "az "*" show "*|"az group show"*) [ "$EXISTING" = yes ] || exit 3 ;;
  "pulumi stack output --stack main --json "*) cat "$OUTPUTS/${@: -1}.json" ;;
  "pulumi stack output"*) echo "value-of-${@: -1}" ;;
esac
exit 0
"""


@pytest.fixture(scope="module")
def bootstrap_outputs() -> dict[str, object]:
    """What `pulumi stack output --json` of the bootstrap stack answers: its offline plan's outputs."""
    plan = run_stack("main", root=REPO_ROOT / "bootstrap")
    return {name: output.value for name, output in plan.outputs.items()}


def _run(
    tmp_path: Path, outputs: dict[str, object], *args: str, existing: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("az", "pulumi", "gh"):
        stub = bin_dir / tool
        stub.write_text(STUB)
        stub.chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    answers = tmp_path / "outputs"
    answers.mkdir(exist_ok=True)
    for name, value in outputs.items():
        (answers / f"{name}.json").write_text(json.dumps(value))
    env = {
        "OUTPUTS": str(answers),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "EXISTING": "yes" if existing else "no",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    return result, calls.read_text().splitlines()


def _index(calls: list[str], prefix: str) -> int:
    return next(i for i, call in enumerate(calls) if call.startswith(prefix))


def test_fresh_subscription_gets_a_locked_down_state_backend_then_the_stacks(
    tmp_path: Path, bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs)
    assert result.returncode == 0, result.stderr
    [account] = [c for c in calls if c.startswith("az storage account create")]
    for flag in (
        "--allow-shared-key-access false",
        "--allow-blob-public-access false",
        "--min-tls-version TLS1_2",
    ):
        assert flag in account
    assert f"--name {STATE.storage_account}" in account
    [vault] = [c for c in calls if c.startswith("az keyvault create")]
    assert "--enable-rbac-authorization true" in vault and "--enable-purge-protection true" in vault
    # One container and one key per environment, besides the bootstrap's own.
    for names in (STATE, *ENV_STATE.values()):
        assert any(
            c.startswith(f"az keyvault key create --vault-name {names.key_vault} --name {names.key} ")
            for c in calls
        )
        assert any(c.startswith(f"az storage container create --name {names.container} ") for c in calls)
    # Providers first: CI has no subscription-wide right to register one.
    registered = [c.split()[4] for c in calls if c.startswith("az provider register")]
    assert registered == list(RESOURCE_PROVIDERS)
    assert _index(calls, "az provider register") < _index(calls, "az storage account create")
    # Order: backend, then login to it, then the bootstrap stack, then the environments.
    assert _index(calls, "az keyvault key create") < _index(calls, f"pulumi login {STATE.backend_url}")
    assert (
        _index(calls, "pulumi login")
        < _index(calls, "pulumi up --stack main")
        < _index(calls, "pulumi stack select dev")
    )
    for env, names in ENV_STATE.items():
        assert f"pulumi stack select {env} --create --secrets-provider {names.secrets_provider}" in calls
    build = bootstrap_outputs["stackConfig"]["dev"]["muse:imagePushPrincipalId"]  # type: ignore[index]
    assert [c for c in calls if c.startswith("pulumi config set")] == [
        f"pulumi config set --stack dev muse:imagePushPrincipalId {build}"
    ]
    assert not [c for c in calls if c.startswith("gh ")]
    prod_deployer = bootstrap_outputs["githubVariables"]["environments"]["prod"]["AZURE_CLIENT_ID"]  # type: ignore[index]
    assert f"  prod  AZURE_CLIENT_ID={prod_deployer}" in result.stdout.splitlines()


def test_rerun_creates_nothing_that_exists(tmp_path: Path, bootstrap_outputs: dict[str, object]) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, existing=True)
    assert result.returncode == 0, result.stderr
    creates = [
        c for c in calls if c.startswith("az ") and " create " in f"{c} " and "role assignment" not in c
    ]
    # Only the idempotent container creates remain (they report created: false when it exists).
    assert creates == [c for c in calls if c.startswith("az storage container create")]
    assert len(creates) == 3


def test_github_environments_and_variables_are_set_when_asked(
    tmp_path: Path, bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, "--github")
    assert result.returncode == 0, result.stderr
    variables = bootstrap_outputs["githubVariables"]
    gh = [c for c in calls if c.startswith("gh variable set")]
    expected = [
        f"gh variable set {name} --repo muse-platform/muse --body {value}"
        for name, value in sorted(variables["repository"].items())  # type: ignore[index]
    ] + [
        f"gh variable set {name} --repo muse-platform/muse --env {environment} --body {value}"
        for environment, values in sorted(variables["environments"].items())  # type: ignore[index]
        for name, value in sorted(values.items())
    ]
    assert gh == expected
    created = [c.split()[4] for c in calls if c.startswith("gh api --method PUT")]
    environments = sorted(variables["environments"])  # type: ignore[index]
    assert created == [f"repos/muse-platform/muse/environments/{e}" for e in environments]


def test_first_deploy_targets_exactly_the_registry_of_each_stack(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    _, calls = _run(tmp_path, bootstrap_outputs)
    for stack, plan in plans.items():
        registry = plan.one("azure-native:containerregistry:Registry")
        assert f"pulumi up --stack {stack} --yes --target {registry.urn}" in calls


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by make system-deps")
def test_script_is_shellcheck_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
