"""ContainerRegistry component in isolation, under the offline mocks."""

from __future__ import annotations

import pytest

from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from offline.engine import OfflinePlan, run_offline
from offline.mocks import SUBSCRIPTION_ID
from rbac.roles import PrincipalType, Role

TAGS = {"env": "dev", "owner": "team", "app": "muse", "managed-by": "pulumi"}
REGISTRY = "azure-native:containerregistry:Registry"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _plan(sku: str = "Basic", zone_redundant: bool = False, grants: bool = False) -> OfflinePlan:
    def program() -> None:
        registry = ContainerRegistry(
            "registry",
            ContainerRegistryArgs(
                resource_group_name="rg-test",
                location="westeurope",
                registry_name="acrmusetest01",
                sku=sku,  # type: ignore[arg-type]
                zone_redundant=zone_redundant,
                tags=TAGS,
            ),
        )
        if grants:
            registry.grant_pull("kubelet", "11111111-1111-1111-1111-111111111111")
            registry.grant_push("github", "22222222-2222-2222-2222-222222222222")
            registry.grant_import_source("importer", "33333333-3333-3333-3333-333333333333")

    return run_offline(program, project="muse", stack="unit")


@pytest.mark.parametrize("sku", ["Basic", "Standard", "Premium"])
def test_admin_user_and_anonymous_pull_are_off_for_every_sku(sku: str) -> None:
    registry = _plan(sku).one(REGISTRY)
    assert registry.get("adminUserEnabled") is False
    assert registry.get("anonymousPullEnabled") is False
    assert registry.get("sku.name") == sku
    assert registry.get("registryName") == "acrmusetest01"
    assert registry.get("tags") == TAGS


def test_premium_gets_retention_and_zone_redundancy() -> None:
    registry = _plan("Premium", zone_redundant=True).one(REGISTRY)
    assert registry.get("policies.retentionPolicy") == {"days": 30, "status": "enabled"}
    assert registry.get("zoneRedundancy") == "Enabled"


def test_basic_has_no_premium_only_features() -> None:
    # Azure rejects retention policies and zone redundancy below Premium.
    registry = _plan("Basic", zone_redundant=True).one(REGISTRY)
    assert registry.get("policies") is None
    assert registry.get("zoneRedundancy") == "Disabled"


def test_registry_is_a_child_of_the_component() -> None:
    plan = _plan()
    component = plan.one("muse:azure:ContainerRegistry")
    assert plan.one(REGISTRY).parent == component.urn


def test_grants_are_scoped_to_this_registry_with_principal_type() -> None:
    plan = _plan(grants=True)
    registry = plan.one(REGISTRY)
    registry_id = (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-test"
        "/providers/Microsoft.ContainerRegistry/registries/acrmusetest01"
    )
    by_principal = {r.get("principalId"): r for r in plan.of_type(ROLE_ASSIGNMENT)}
    pull = by_principal["11111111-1111-1111-1111-111111111111"]
    push = by_principal["22222222-2222-2222-2222-222222222222"]
    assert pull.get("roleDefinitionId").endswith(f"/roleDefinitions/{Role.ACR_PULL.definition_id}")
    assert push.get("roleDefinitionId").endswith(f"/roleDefinitions/{Role.ACR_PUSH.definition_id}")
    # The import source: Reader (registries/read + pull/read), on this registry only.
    source = by_principal["33333333-3333-3333-3333-333333333333"]
    assert source.get("roleDefinitionId").endswith(f"/roleDefinitions/{Role.READER.definition_id}")
    for assignment in (pull, push, source):
        assert assignment.get("scope") == registry_id
        assert assignment.get("principalType") == PrincipalType.SERVICE_PRINCIPAL.value
        assert assignment.parent == registry.parent  # grants live under the registry component
