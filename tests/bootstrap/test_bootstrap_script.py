"""scripts/bootstrap.sh run for real against recording stand-ins for az, pulumi and gh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from offline.engine import OfflinePlan
from stack.files import REPO_ROOT
from stack.naming import StateBackendNames

SCRIPT = REPO_ROOT / "scripts" / "bootstrap.sh"
STATE = StateBackendNames.for_suffix("m7k2")

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  "az account show"*) echo 11111111-2222-3333-4444-555555555555 ;;
  "az ad signed-in-user show"*) echo aaaaaaaa-0000-0000-0000-000000000001 ;;
  "az "*" show "*|"az group show"*) [ "$EXISTING" = yes ] || exit 3 ;;
  "pulumi stack output"*) echo "value-of-${@: -1}" ;;
esac
exit 0
"""


def _run(
    tmp_path: Path, *args: str, existing: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("az", "pulumi", "gh"):
        stub = bin_dir / tool
        stub.write_text(STUB)
        stub.chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    env = {
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


def test_fresh_subscription_gets_a_locked_down_state_backend_then_the_stacks(tmp_path: Path) -> None:
    result, calls = _run(tmp_path)
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
    assert any(
        c.startswith(f"az keyvault key create --vault-name {STATE.key_vault} --name {STATE.key}")
        for c in calls
    )
    # Order: backend, then login to it, then the bootstrap stack, then the environments.
    assert _index(calls, "az keyvault key create") < _index(calls, f"pulumi login {STATE.backend_url}")
    assert (
        _index(calls, "pulumi login")
        < _index(calls, "pulumi up --stack main")
        < _index(calls, "pulumi stack select dev")
    )
    for env in ("dev", "prod"):
        assert f"pulumi stack select {env} --create --secrets-provider {STATE.secrets_provider}" in calls
        assert (
            f"pulumi config set --stack {env} muse:deployPrincipalId value-of-{env}DeployPrincipalId" in calls
        )
    assert not [c for c in calls if c.startswith("gh ")]
    assert "environment prod  AZURE_CLIENT_ID=value-of-prodDeployClientId" in result.stdout


def test_rerun_creates_nothing_that_exists(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, existing=True)
    assert result.returncode == 0, result.stderr
    creates = [
        c for c in calls if c.startswith("az ") and " create " in f"{c} " and "role assignment" not in c
    ]
    # Only the idempotent container create remains (it reports created: false when it exists).
    assert creates == [next(c for c in calls if c.startswith("az storage container create"))]


def test_github_variables_are_set_when_asked(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, "--github")
    assert result.returncode == 0, result.stderr
    gh = [c for c in calls if c.startswith("gh variable set")]
    names = {c.split()[3] for c in gh}
    assert names == {
        "AZURE_PREVIEW_CLIENT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "PULUMI_BACKEND_URL",
    }
    assert (
        "gh variable set AZURE_CLIENT_ID --repo muse-platform/muse --env prod"
        " --body value-of-prodDeployClientId" in gh
    )
    assert "gh variable set AZURE_CLIENT_ID --repo muse-platform/muse --body value-of-devDeployClientId" in gh


def test_first_deploy_targets_the_registry_and_the_protected_resources_with_their_locks(
    tmp_path: Path, plans: dict[str, OfflinePlan]
) -> None:
    _, calls = _run(tmp_path)
    for stack, plan in plans.items():
        registry = plan.one("azure-native:containerregistry:Registry")
        protected = sorted(r.urn for r in plan.resources if r.custom and r.protect)
        expected = sorted({registry.urn, *protected})
        targets = " ".join(f"--target {urn}" for urn in expected)
        assert f"pulumi up --stack {stack} --yes {targets}" in calls
        locks = [r for r in plan.resources if r.type == "azure-native:authorization:ManagementLockByScope"]
        if stack == "prod":  # the vault, the registry and the workspace, each with its lock
            assert len(locks) == 3 and len(protected) == 6
            assert {lock.urn for lock in locks} <= set(expected)
        else:
            assert expected == [registry.urn] and not locks


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by make system-deps")
def test_script_is_shellcheck_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
