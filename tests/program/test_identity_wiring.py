"""How identities, secrets and grants connect across the program, for both stacks."""

from __future__ import annotations

import pytest

from offline.engine import OfflinePlan, run_stack
from offline.mocks import deterministic_uuid
from rbac.roles import DELEGABLE_BY_CI, Role
from stack.files import read_stack
from stack.naming import ResourceNames


def _names(plan: OfflinePlan) -> ResourceNames:
    return ResourceNames.for_stack(plan.stack, read_stack(plan.stack).config["muse:nameSuffix"])


def _role(assignment_role_id: str) -> Role:
    return next(role for role in Role if assignment_role_id.endswith(role.definition_id))


def test_muse_service_account_is_federated_with_the_clusters_issuer(plan: OfflinePlan) -> None:
    names = _names(plan)
    [credential] = [
        c
        for c in plan.of_type("azure-native:managedidentity:FederatedIdentityCredential")
        if c.get("resourceName") == names.workload_identity
    ]
    assert credential.get("subject") == f"system:serviceaccount:{names.namespace}:{names.service_account}"
    assert credential.get("issuer") == plan.outputs["oidcIssuerUrl"].value
    assert credential.get("resourceName") == names.workload_identity
    assert plan.outputs["museNamespace"].value == names.namespace


def test_only_the_muse_identity_reads_the_api_token(plan: OfflinePlan) -> None:
    names = _names(plan)
    readers = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if _role(r.get("roleDefinitionId")) is Role.KEY_VAULT_SECRETS_USER
        and r.get("scope").endswith("/secrets/muse-api-token")
    ]
    assert len(readers) == 1
    assert readers[0].get("scope").endswith(f"/vaults/{names.key_vault}/secrets/muse-api-token")
    assert readers[0].get("principalId") == deterministic_uuid(plan.stack, "muse-workload", "principal")
    assert plan.outputs["museWorkloadClientId"].value == deterministic_uuid(
        plan.stack, "muse-workload", "client"
    )


def test_key_vault_follows_the_stack(plans: dict[str, OfflinePlan]) -> None:
    dev = plans["dev"].one("azure-native:keyvault:Vault")
    prod = plans["prod"].one("azure-native:keyvault:Vault")
    assert prod.get("properties.enablePurgeProtection") is True
    assert dev.get("properties.enablePurgeProtection") is None
    assert (
        dev.get("properties.softDeleteRetentionInDays"),
        prod.get("properties.softDeleteRetentionInDays"),
    ) == (7, 90)
    for vault in (dev, prod):
        assert vault.get("properties.enableRbacAuthorization") is True
        assert vault.get("properties.tenantId") == plans["dev"].outputs["tenantId"].value


@pytest.mark.slow  # two more program runs
def test_image_push_identity_gets_acr_push_on_its_registry_only_when_configured(
    plans: dict[str, OfflinePlan],
) -> None:
    principal = "5f1c0e5e-0000-4000-8000-000000000001"
    plan = run_stack("dev", overrides={"muse:imagePushPrincipalId": principal})
    [push] = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("principalId") == principal
    ]
    assert _role(push.get("roleDefinitionId")) is Role.ACR_PUSH
    assert push.get("scope").endswith(f"/registries/{_names(plan).registry}")
    unconfigured = plans["dev"]
    assert not [
        r
        for r in unconfigured.of_type("azure-native:authorization:RoleAssignment")
        if _role(r.get("roleDefinitionId")) is Role.ACR_PUSH
    ]


def test_image_import_identity_gets_reader_on_its_registry_only_when_configured(
    plans: dict[str, OfflinePlan],
) -> None:
    principal = "5f1c0e5e-0000-4000-8000-000000000002"
    plan = run_stack("dev", overrides={"muse:imageImportPrincipalId": principal})
    [grant] = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("principalId") == principal
    ]
    # Reader at the registry's scope: `registries/read` and `registries/pull/read` of this registry only
    # (the import's source side, container-registry-import-images.md), not the group's other resources.
    assert _role(grant.get("roleDefinitionId")) is Role.READER
    assert grant.get("scope").endswith(f"/registries/{_names(plan).registry}")
    assert grant.get("principalType") == "ServicePrincipal"
    unconfigured = plans["dev"]
    assert not [
        r
        for r in unconfigured.of_type("azure-native:authorization:RoleAssignment")
        if _role(r.get("roleDefinitionId")) is Role.READER
    ]


def test_ci_may_create_every_role_assignment_the_stack_declares(plan: OfflinePlan) -> None:
    # The deploy identity's RBAC Administrator role is constrained to DELEGABLE_BY_CI: a stack that assigns
    # anything else would fail in CI with 403, so it fails here first.
    declared = {
        _role(r.get("roleDefinitionId")) for r in plan.of_type("azure-native:authorization:RoleAssignment")
    }
    assert declared <= set(DELEGABLE_BY_CI), declared - set(DELEGABLE_BY_CI)


def test_bootstrap_constrains_deployers_to_exactly_the_delegable_roles(bootstrap_plan: OfflinePlan) -> None:
    bootstrap = bootstrap_plan
    conditions = [
        r.get("condition")
        for r in bootstrap.of_type("azure-native:authorization:RoleAssignment")
        if r.get("condition") and "roleAssignments/write" in r.get("condition")
    ]
    assert len(conditions) == 2  # one per environment's deployer
    delegable = [{role for role in Role if role.definition_id in condition} for condition in conditions]
    # dev's deployer may also give Reader, to prod's deployer only (tests/bootstrap, tests/access).
    assert sorted(delegable, key=len) == [set(DELEGABLE_BY_CI), {*DELEGABLE_BY_CI, Role.READER}]


def test_main_stacks_deploy_into_the_groups_bootstrap_creates(
    plans: dict[str, OfflinePlan], bootstrap_plan: OfflinePlan
) -> None:
    bootstrap = bootstrap_plan
    created = {r.get("resourceGroupName") for r in bootstrap.of_type("azure-native:resources:ResourceGroup")}
    assert {plan.outputs["resourceGroupName"].value for plan in plans.values()} == created
