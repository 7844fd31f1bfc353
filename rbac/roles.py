"""Built-in Azure role definitions and the one function that assigns them.

Components expose intent-level methods (`registry.grant_pull(...)`) that call `assign_role`; no role GUID
appears anywhere else. The IDs are the same in every tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

import pulumi
from pulumi_azure_native import authorization


@dataclass(frozen=True)
class BuiltInRole:
    name: str
    id: str


class Role(Enum):
    ACR_PULL = BuiltInRole("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d")
    ACR_PUSH = BuiltInRole("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec")
    KEY_VAULT_SECRETS_USER = BuiltInRole("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6")
    KEY_VAULT_SECRETS_OFFICER = BuiltInRole(
        "Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
    )
    AKS_RBAC_WRITER = BuiltInRole(
        "Azure Kubernetes Service RBAC Writer", "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb"
    )
    AKS_CLUSTER_USER = BuiltInRole(
        "Azure Kubernetes Service Cluster User Role", "4abbcc35-e782-43d8-92c5-2d3f1bd2253f"
    )
    MANAGED_IDENTITY_OPERATOR = BuiltInRole(
        "Managed Identity Operator", "f1a07417-d97a-45cb-824c-7a7467783830"
    )
    READER = BuiltInRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7")
    CONTRIBUTOR = BuiltInRole("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c")
    RBAC_ADMINISTRATOR = BuiltInRole(
        "Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
    )
    AKS_RBAC_CLUSTER_ADMIN = BuiltInRole(
        "Azure Kubernetes Service RBAC Cluster Admin", "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
    )
    AKS_RBAC_READER = BuiltInRole(
        "Azure Kubernetes Service RBAC Reader", "7f6c6a51-bcf8-42ba-9220-52d62157d7db"
    )
    STORAGE_BLOB_DATA_CONTRIBUTOR = BuiltInRole(
        "Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    )
    KEY_VAULT_CRYPTO_USER = BuiltInRole("Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424")

    @property
    def definition_id(self) -> str:
        return self.value.id


# The roles the deploy identities may hand out (to service principals, on their own resource group): what
# the stacks wire (AcrPull for the kubelet, AcrPush for CI, Secrets User for Muse, Managed Identity Operator
# for the control plane). A stack that assigns anything else fails in CI with 403; a test checks the plans.
DELEGABLE_BY_CI: tuple[Role, ...] = (
    Role.ACR_PULL,
    Role.ACR_PUSH,
    Role.KEY_VAULT_SECRETS_USER,
    Role.MANAGED_IDENTITY_OPERATOR,
)


class PrincipalType(StrEnum):
    """Always given: without it a freshly created identity fails with PrincipalNotFound while Entra ID
    replicates it."""

    SERVICE_PRINCIPAL = "ServicePrincipal"
    GROUP = "Group"
    USER = "User"


def role_definition_resource_id(subscription_id: str, role: Role) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{role.definition_id}"
    )


def only_assigning(roles: list[Role], principal_type: PrincipalType) -> str:
    """An ABAC condition (version 2.0) for a Role Based Access Control Administrator assignment: the holder
    may create and delete assignments of exactly `roles`, to principals of `principal_type` only. This is
    what lets CI wire AcrPull or Key Vault Secrets User without being able to make itself Owner."""
    ids = "{" + ", ".join(sorted(role.definition_id for role in roles)) + "}"
    write = "Microsoft.Authorization/roleAssignments/write"
    delete = "Microsoft.Authorization/roleAssignments/delete"
    request_role = "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
    request_type = "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]"
    existing_role = "@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
    return (
        f"((!(ActionMatches{{'{write}'}})) OR ({request_role} ForAnyOfAnyValues:GuidEquals {ids} "
        f"AND {request_type} ForAnyOfAnyValues:StringEqualsIgnoreCase {{'{principal_type.value}'}})) AND "
        f"((!(ActionMatches{{'{delete}'}})) OR ({existing_role} ForAnyOfAnyValues:GuidEquals {ids}))"
    )


def assign_role(
    resource_name: str,
    *,
    role: Role,
    scope: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    principal_type: PrincipalType,
    parent: pulumi.Resource,
    condition: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> authorization.RoleAssignment:
    """Assign `role` to `principal_id` at `scope` (a resource or resource group, never a subscription).

    `condition` is an ABAC condition (see `only_assigning`)."""
    client = authorization.get_client_config_output()
    return authorization.RoleAssignment(
        resource_name,
        scope=scope,
        principal_id=principal_id,
        principal_type=principal_type.value,
        role_definition_id=client.subscription_id.apply(lambda sub: role_definition_resource_id(sub, role)),
        description=f"{role.value.name} for Muse, managed by Pulumi",
        condition=condition,
        condition_version="2.0" if condition else None,
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=parent), opts),
    )
