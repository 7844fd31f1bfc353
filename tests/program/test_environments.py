"""A new environment is data: its stack file (with its tier), its line in stack/environments.txt, its
bootstrap entry (the same list) and one workflow call. A production-like `staging`, made by copying prod's
stack file, gets prod's rules because it declares the production tier, not because of its name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

import stack.config as stack_config
import stack.environments as environments
from muse.governance.inventory import parse_inventory
from muse.governance.policies import evaluate
from offline.engine import OfflinePlan, run_stack
from stack.files import REPO_ROOT

STAGING = ("dev", "staging", "prod")


def _staging_root(tmp_path: Path, **changes: Any) -> Path:
    """A checkout with Pulumi.staging.yaml = prod's stack file, renamed, with `changes` (None removes)."""
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    data = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    config = {**data["config"], "muse:environment": "staging", **changes}
    data["config"] = {k: v for k, v in config.items() if v is not None}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


@pytest.fixture
def with_staging(monkeypatch: pytest.MonkeyPatch) -> None:
    """stack/environments.txt with staging between dev and prod."""
    monkeypatch.setattr(environments, "ENVIRONMENTS", STAGING)


def _plan(root: Path) -> OfflinePlan:
    return run_stack("staging", root=root)


def _failing_production_rules(plan: OfflinePlan, tier: str) -> set[str]:
    inventory = parse_inventory(plan.to_inventory("staging", tier))
    return {v.policyId for v in evaluate(inventory).failing}


@pytest.mark.slow  # program runs
def test_a_staging_copy_of_prod_plans_with_prods_rules(tmp_path: Path, with_staging: None) -> None:
    plan = _plan(_staging_root(tmp_path))
    [vault] = plan.of_type("azure-native:keyvault:Vault")
    assert vault.get("properties.enablePurgeProtection") is True
    assert vault.protect  # protected from deletion, like prod's
    pools = plan.of_type("azure-native:containerservice:AgentPool")
    assert sorted(p.get("availabilityZones")[0] for p in pools) == ["1", "2", "3"]  # one pool per zone
    [gateway] = plan.of_type("kubernetes:gateway.networking.k8s.io/v1:Gateway")
    assert any(listener["protocol"] == "HTTPS" for listener in gateway.get("spec.listeners"))
    # The governance rules of the production tier hold for it.
    assert _failing_production_rules(plan, "production") == set()


@pytest.mark.slow  # program runs
@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"muse:keyVaultPurgeProtection": False}, "keyVaultPurgeProtection"),
        ({"muse:availabilityZones": None}, "availabilityZones"),
        ({"muse:ingressHost": None}, "ingressHost"),
        ({"muse:protectStatefulResources": False}, "protectStatefulResources"),
    ],
)
def test_a_production_tier_staging_is_refused_what_prod_is_refused(
    tmp_path: Path, with_staging: None, change: dict[str, Any], key: str
) -> None:
    with pytest.raises(pulumi.RunError, match=f"muse:{key}: "):
        _plan(_staging_root(tmp_path, **change))


@pytest.mark.slow  # program runs
def test_negative_control_rules_by_name_give_staging_devs_rules(
    tmp_path: Path, with_staging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The defect: "production" decided by the environment's name. Staging then loses purge protection
    # without a word, exactly what the tier prevents.
    monkeypatch.setattr(stack_config, "is_production", lambda c: c["environment"] == "prod")
    plan = _plan(_staging_root(tmp_path, **{"muse:keyVaultPurgeProtection": False}))
    [vault] = plan.of_type("azure-native:keyvault:Vault")
    assert not vault.get("properties.enablePurgeProtection")  # off (not sent): the quiet weakening


@pytest.mark.slow  # program runs
def test_an_environment_not_in_the_list_is_refused(tmp_path: Path) -> None:
    # Without its line in stack/environments.txt the staging stack does not deploy (and the bootstrap,
    # the Makefile and the workflows would not know it).
    with pytest.raises(pulumi.RunError, match=r"'staging' is not in stack/environments\.txt"):
        _plan(_staging_root(tmp_path))


def test_each_environment_imports_from_the_one_before() -> None:
    assert environments.image_source("prod", STAGING) == "staging"
    assert environments.image_source("staging", STAGING) == "dev"
    assert environments.image_source("dev", STAGING) is None
    assert environments.image_importer("dev", STAGING) == "staging"
    assert environments.image_importer("prod", STAGING) is None


def test_the_list_is_the_stack_files() -> None:
    from stack.files import stack_names

    assert sorted(environments.ENVIRONMENTS) == stack_names()
    for name in environments.ENVIRONMENTS:
        tier = yaml.safe_load((REPO_ROOT / f"Pulumi.{name}.yaml").read_text())["config"]["muse:tier"]
        assert tier in ("production", "development")
