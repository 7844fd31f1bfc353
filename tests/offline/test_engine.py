"""The offline engine: reads stack files like the CLI, answers like Azure, fails loudly on the unknown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
from pulumi_azure_native import keyvault

from cli.plan import main as plan_main
from offline.engine import SECRET, OfflinePlan, run_offline
from offline.plan import COMPONENT_ORDER, render_text
from stack.files import REPO_ROOT, read_stack


def test_defaults_from_pulumi_yaml_are_filled_in_as_engine_strings() -> None:
    files = read_stack("dev")
    assert files.config["muse:imageTag"] == "latest"  # only in Pulumi.yaml
    assert files.config["muse:availabilityZones"] == "[]"  # arrays as JSON text
    assert files.config["muse:replicas"] == "1"


def test_secure_values_become_marked_placeholders(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.x.yaml").write_text("config:\n  muse:apiToken:\n    secure: v1:AAAA\n")
    files = read_stack("x", root=tmp_path)
    assert files.secret_keys == ["muse:apiToken"]
    assert "AAAA" not in files.config["muse:apiToken"]


def test_unknown_stack_names_the_existing_ones() -> None:
    with pytest.raises(FileNotFoundError, match="stacks here: dev, prod"):
        read_stack("staging")


def test_unknown_invoke_fails_with_what_to_do() -> None:
    def program() -> None:
        vault = keyvault.get_vault_output(resource_group_name="rg", vault_name="kv")
        pulumi.export("uri", vault.properties.vault_uri)

    with pytest.raises(
        Exception, match=r"cannot answer the invoke 'azure-native:keyvault:getVault'.*offline/mocks.py"
    ):
        run_offline(program, project="muse", stack="unit")


def test_secret_inputs_are_masked_and_their_paths_recorded() -> None:
    def program() -> None:
        keyvault.Secret(
            "token",
            resource_group_name="rg",
            vault_name="kv",
            secret_name="muse-api-token",
            properties=keyvault.SecretPropertiesArgs(value=pulumi.Output.secret("hunter2-not-real")),
        )

    plan = run_offline(program, project="muse", stack="unit")
    secret = plan.one("azure-native:keyvault:Secret")
    # Pulumi marks the whole top-level input secret when any value inside it is.
    assert secret.get("properties") == SECRET
    assert secret.secret_paths == ("properties",)
    assert secret.get("secretName") == "muse-api-token"
    assert "hunter2" not in json.dumps(plan.to_inventory("dev"))


def test_plan_text_names_every_component_resource_and_output(plans: dict[str, OfflinePlan]) -> None:
    text = render_text(plans["prod"])
    for resource in plans["prod"].resources:
        assert f'"{resource.name}"' in text
    for row in (
        r"adminUserEnabled +false",
        r"role +AcrPull",
        r"role +Key Vault Secrets User",
        r"kubeconfig +\[secret\]",
        r"registryLoginServer +acrmuseprodm7k2\.azurecr\.io",
    ):
        assert re.search(row, text), row
    positions = [text.index(f"{token}  ") for token in COMPONENT_ORDER if f"{token}  " in text]
    assert positions == sorted(positions) and len(positions) >= 4


@pytest.mark.slow  # the plan CLI end to end
def test_plan_json_is_a_muse_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_main(["--stack", "dev", "--format", "json"]) == 0
    inventory = json.loads(capsys.readouterr().out)
    assert inventory["schemaVersion"] == 1
    assert (inventory["stack"], inventory["environment"]) == ("dev", "dev")
    types = {r["type"] for r in inventory["resources"]}
    assert "azure-native:resources:Resource" in types  # the AKS cluster, a generic ARM resource
    assert "[secret]" in json.dumps(inventory)


@pytest.mark.slow  # make plan in a new interpreter
def test_make_plan_runs_as_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.plan", "--stack", "prod"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Offline plan of stack 'prod'" in result.stdout
    assert re.search(r"sku\.tier +Standard", result.stdout)
