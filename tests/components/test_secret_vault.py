"""SecretVault in isolation: RBAC, soft delete, purge protection, secrets and least-privilege grants."""

from __future__ import annotations

import pytest

from components.secret_vault import SecretVault, SecretVaultArgs
from offline.engine import SECRET, OfflinePlan, run_offline
from rbac.roles import Role

VAULT = "azure-native:keyvault:Vault"
SECRET_TYPE = "azure-native:keyvault:Secret"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
TAGS = {"env": "prod", "owner": "team", "app": "muse", "managed-by": "pulumi"}


def _plan(purge_protection: bool, whole_vault_reader: bool = False) -> OfflinePlan:
    def program() -> None:
        vault = SecretVault(
            "vault",
            SecretVaultArgs(
                resource_group_name="rg-test",
                location="westeurope",
                vault_name="kv-muse-test",
                tenant_id="00000000-0000-0000-0000-00000000a1d0",
                purge_protection=purge_protection,
                retention_days=90,
                tags=TAGS,
            ),
        )
        token = vault.add_generated_secret("api-token", secret_name="muse-api-token", length=48)
        vault.add_secret("given", secret_name="given-secret", value="from-pulumi-config-secret")
        vault.grant_secret_read("reader", "33333333-3333-3333-3333-333333333333", secret=token)
        if whole_vault_reader:
            vault.grant_secret_read("all", "44444444-4444-4444-4444-444444444444")

    return run_offline(program, project="muse", stack="unit")


@pytest.mark.parametrize("purge_protection", [True, False])
def test_vault_uses_rbac_and_soft_delete(purge_protection: bool) -> None:
    vault = _plan(purge_protection).one(VAULT)
    assert vault.get("properties.enableRbacAuthorization") is True
    assert vault.get("properties.enableSoftDelete") is True
    assert vault.get("properties.softDeleteRetentionInDays") == 90
    assert vault.get("properties.accessPolicies") is None
    assert vault.get("properties.enabledForTemplateDeployment") is False
    assert vault.get("tags") == TAGS


def test_purge_protection_is_true_or_absent_never_false() -> None:
    # Azure rejects an explicit `false`; "off" is expressed by leaving the property out.
    assert _plan(True).one(VAULT).get("properties.enablePurgeProtection") is True
    assert "enablePurgeProtection" not in _plan(False).one(VAULT).get("properties")


def test_secret_values_are_secret_in_pulumi_and_never_in_the_plan() -> None:
    plan = _plan(True)
    for secret in plan.of_type(SECRET_TYPE):
        assert secret.get("properties") == SECRET
        assert "properties" in secret.secret_paths
        assert secret.get("tags") == TAGS
    password = plan.one("random:index/randomPassword:RandomPassword")
    assert (password.get("length"), password.get("special")) == (48, False)


def test_reader_is_scoped_to_the_one_secret() -> None:
    plan = _plan(True, whole_vault_reader=True)
    by_principal = {r.get("principalId"): r for r in plan.of_type(ROLE_ASSIGNMENT)}
    one_secret = by_principal["33333333-3333-3333-3333-333333333333"]
    whole_vault = by_principal["44444444-4444-4444-4444-444444444444"]
    assert one_secret.get("scope").endswith("/vaults/kv-muse-test/secrets/muse-api-token")
    assert whole_vault.get("scope").endswith("/vaults/kv-muse-test")
    for assignment in (one_secret, whole_vault):
        assert assignment.get("roleDefinitionId").endswith(Role.KEY_VAULT_SECRETS_USER.definition_id)
        assert assignment.get("principalType") == "ServicePrincipal"
