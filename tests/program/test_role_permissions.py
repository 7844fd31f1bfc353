"""What the built-in roles the program grants (and CI holds) allow, from their definitions
(verify/access/builtin-roles.json, the permission model's vendored copy): the ingress certificate's reader can
read that certificate's key and chain and nothing more, and CI cannot create or remove a management lock,
which is why the program protects stateful resources with Pulumi `protect` only
(components/deletion_protection.py)."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from rbac.roles import Role
from stack.files import REPO_ROOT

VENDORED = REPO_ROOT / "verify" / "access" / "builtin-roles.json"
ROLES: dict[str, dict[str, Any]] = json.loads(VENDORED.read_text())["roles"]


def allows(role: Role, operation: str, data: bool = False) -> bool:
    """Whether `role` permits `operation` (Azure RBAC: an action matches a pattern with `*` wildcards, case
    insensitive, unless a NotAction pattern also matches it)."""
    definition = ROLES[role.value.name]
    granted, denied = (
        (definition["dataActions"], definition["notDataActions"])
        if data
        else (definition["actions"], definition["notActions"])
    )

    def matches(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(operation.lower(), p.lower()) for p in patterns)

    return matches(granted) and not matches(denied)


def test_the_vendored_roles_define_every_role_in_rbac() -> None:
    # tests/access/test_vendored_roles.py checks the file against ../shared/azure-rbac/builtin-roles.json.
    assert set(ROLES) >= {role.value.name for role in Role}
    for role in Role:
        assert ROLES[role.value.name]["id"] == role.definition_id


def test_key_vault_secrets_user_reads_a_certificates_secret_and_nothing_else() -> None:
    # The application routing operator's SecretProviderClass reads the certificate with `objectType: secret`
    # (Azure/aks-app-routing-operator pkg/controller/keyvault/spc/reconcile.go): GET /secrets/<name>.
    role = Role.KEY_VAULT_SECRETS_USER
    assert allows(role, "Microsoft.KeyVault/vaults/secrets/getSecret/action", data=True)
    assert not allows(role, "Microsoft.KeyVault/vaults/secrets/setSecret/action", data=True)
    assert not allows(role, "Microsoft.KeyVault/vaults/certificates/read", data=True)
    assert not allows(role, "Microsoft.KeyVault/vaults/certificates/import/action", data=True)
    assert ROLES[role.value.name]["actions"] == []  # no management-plane rights at all


def test_ci_cannot_write_or_delete_a_lock_so_the_program_makes_none() -> None:
    # The deploy identity holds Contributor and the (conditioned) RBAC Administrator on its group.
    for role in (Role.CONTRIBUTOR, Role.RBAC_ADMINISTRATOR):
        assert not allows(role, "Microsoft.Authorization/locks/write"), role
        assert not allows(role, "Microsoft.Authorization/locks/delete"), role
    # Negative control of the matcher: Contributor does write the resources the locks protect.
    assert allows(Role.CONTRIBUTOR, "Microsoft.KeyVault/vaults/write")
    assert allows(Role.CONTRIBUTOR, "Microsoft.Authorization/locks/read")
