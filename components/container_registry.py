"""Azure Container Registry for the Muse image, with secure defaults and intent-level grants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi
from pulumi_azure_native import authorization, containerregistry

from components.deletion_protection import protection
from rbac.roles import PrincipalType, Role, assign_role

RegistrySku = Literal["Basic", "Standard", "Premium"]

# Untagged manifests (superseded builds) are deleted after this many days; Premium only.
UNTAGGED_RETENTION_DAYS = 30


@dataclass(frozen=True, kw_only=True)
class ContainerRegistryArgs:
    """Inputs of `ContainerRegistry`, field by field (what it is; default, and why that default).

    resource_group_name: group the registry lives in. Required.
    location: Azure region. Required.
    registry_name: globally unique, 5-50 letters/digits. Required.
    sku: Basic | Standard | Premium. Premium adds zone redundancy (when `zone_redundant`) and the
        retention policy for untagged manifests. Required: a cost decision.
    zone_redundant: replicate across availability zones (Premium only; ignored otherwise). Default False:
        zones are not available in every region.
    protect: Pulumi `protect` on the registry (components/deletion_protection.py: why no CanNotDelete lock).
        Default False: a throwaway registry can be deleted; a registry whose images a stack runs sets it.
    tags: tags for the registry. Default: none.

    Not parameters, because there is no safe other value: the admin user and anonymous pull are always off.
    """

    resource_group_name: pulumi.Input[str]
    location: str
    registry_name: str
    sku: RegistrySku
    zone_redundant: bool = False
    protect: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


class ContainerRegistry(pulumi.ComponentResource):
    """`muse:azure:ContainerRegistry`.

    Secure by default: the admin user (a shared static password) is disabled explicitly and anonymous pull
    is off, so every pull and push is an Entra ID identity with a role scoped to this registry. Pushing from
    GitHub uses OIDC + `grant_push`; AKS pulls with its kubelet identity + `grant_pull`; another
    environment's deployer imports from it with `grant_import_source`.
    """

    TYPE = "muse:azure:ContainerRegistry"  # the type token of its URN

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        premium = args.sku == "Premium"
        self.registry = containerregistry.Registry(
            name,
            registry_name=args.registry_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=containerregistry.SkuArgs(name=args.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            zone_redundancy="Enabled" if premium and args.zone_redundant else "Disabled",
            policies=containerregistry.PoliciesArgs(
                retention_policy=containerregistry.RetentionPolicyArgs(
                    days=UNTAGGED_RETENTION_DAYS, status="enabled"
                )
            )
            if premium
            else None,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), protection(args.protect)),
        )
        self.id: pulumi.Output[str] = self.registry.id
        self.name: pulumi.Output[str] = self.registry.name
        self.login_server: pulumi.Output[str] = self.registry.login_server
        self.register_outputs({"id": self.id, "name": self.name, "loginServer": self.login_server})

    def grant_pull(
        self,
        name: str,
        principal_id: pulumi.Input[str],
        principal_type: PrincipalType = PrincipalType.SERVICE_PRINCIPAL,
    ) -> authorization.RoleAssignment:
        """AcrPull on this registry only (e.g. for the AKS kubelet identity)."""
        return self._grant(f"{name}-acr-pull", Role.ACR_PULL, principal_id, principal_type)

    def grant_push(
        self,
        name: str,
        principal_id: pulumi.Input[str],
        principal_type: PrincipalType = PrincipalType.SERVICE_PRINCIPAL,
        opts: pulumi.ResourceOptions | None = None,
    ) -> authorization.RoleAssignment:
        """AcrPush (push and pull) on this registry only (e.g. for the GitHub build identity)."""
        return self._grant(f"{name}-acr-push", Role.ACR_PUSH, principal_id, principal_type, opts)

    def grant_import_source(
        self,
        name: str,
        principal_id: pulumi.Input[str],
        principal_type: PrincipalType = PrincipalType.SERVICE_PRINCIPAL,
        opts: pulumi.ResourceOptions | None = None,
    ) -> authorization.RoleAssignment:
        """Let `principal_id` import images from this registry into its own (`az acr import --registry
        <target> --source <this registry id>/...`; e.g. prod's deployer copying the digest dev tested).

        Reader on this registry only. ACR's import authorizes the source by `registries/read` and
        `registries/pull/read` (container-registry-import-images.md, "Import from an Azure container
        registry in the same AD tenant": "Reader role" on the source); AcrPull has only `pull/read`, so the
        CLI cannot resolve the source registry (azure-cli acr/import.py). Reader's `*/read` at this scope
        reads this registry and what is under it (its replications, webhooks, tasks), nothing else."""
        return self._grant(f"{name}-acr-import-source", Role.READER, principal_id, principal_type, opts)

    def _grant(
        self,
        resource_name: str,
        role: Role,
        principal_id: pulumi.Input[str],
        principal_type: PrincipalType,
        opts: pulumi.ResourceOptions | None = None,
    ) -> authorization.RoleAssignment:
        return assign_role(
            resource_name,
            role=role,
            scope=self.id,
            principal_id=principal_id,
            principal_type=principal_type,
            parent=self,
            opts=opts,
        )
