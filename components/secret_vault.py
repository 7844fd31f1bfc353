"""Azure Key Vault for Muse's secrets, with RBAC authorization and intent-level grants.

Secrets never pass through git or the image: Pulumi writes them here (generated, or from `pulumi config set
--secret`), and pods read them through the Secrets Store CSI driver with their workload identity, which holds
Key Vault Secrets User on exactly the secrets it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, keyvault

from components.deletion_protection import protection
from rbac.roles import PrincipalType, Role, assign_role


@dataclass(frozen=True, kw_only=True)
class SecretVaultArgs:
    """Inputs of `SecretVault`, field by field (what it is; default, and why that default).

    resource_group_name: group the vault lives in. Required.
    location: Azure region. Required.
    vault_name: globally unique, 3-24 characters. Required.
    tenant_id: Entra ID tenant whose identities may use the vault. Required.
    purge_protection: deleted secrets and the vault cannot be purged before the retention ends (irreversible;
        the vault name stays taken after a delete until then). Default True: a stolen or mistaken delete
        cannot destroy the secrets; turn it off only for throwaway vaults.
    retention_days: soft-delete retention, 7-90 days. Default 90: the longest recovery window, which is
        also what Azure sets when none is given.
    protect: Pulumi `protect` on the vault (components/deletion_protection.py: why no CanNotDelete lock), on
        top of soft delete and purge protection, which only make a deleted vault recoverable. Default False.
    tags: tags for the vault. Default: none.
    """

    resource_group_name: pulumi.Input[str]
    location: str
    vault_name: str
    tenant_id: pulumi.Input[str]
    purge_protection: bool = True
    retention_days: int = 90
    protect: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


class SecretVault(pulumi.ComponentResource):
    """`muse:azure:SecretVault`.

    Secure by default: RBAC authorization (no access policies), soft delete, purge protection when asked,
    Standard SKU, Azure Resource Manager deployments cannot read secrets (`enabledForTemplateDeployment`
    off). The public endpoint stays on with `defaultAction: Allow` because the AKS nodes and GitHub's
    runners reach it over the internet; every request still needs an Entra ID token with a data-plane role
    (docs/architecture/azure.md, "Secrets", says how to move to a private endpoint).
    """

    TYPE = "muse:azure:SecretVault"  # the type token of its URN

    def __init__(self, name: str, args: SecretVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self._resource_group_name = args.resource_group_name
        self._tags = dict(args.tags)
        self.vault = keyvault.Vault(
            name,
            vault_name=args.vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.retention_days,
                # Azure accepts only `true` here; leaving it unset is how "off" is spelled.
                enable_purge_protection=True if args.purge_protection else None,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
                public_network_access="Enabled",
                network_acls=keyvault.NetworkRuleSetArgs(default_action="Allow", bypass="AzureServices"),
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), protection(args.protect)),
        )
        self.id: pulumi.Output[str] = self.vault.id
        self.name: pulumi.Output[str] = self.vault.name
        self.uri: pulumi.Output[str] = self.vault.properties.apply(lambda p: p.vault_uri or "")
        self.register_outputs({"id": self.id, "name": self.name, "uri": self.uri})

    def add_secret(self, name: str, secret_name: str, value: pulumi.Input[str]) -> keyvault.Secret:
        """Store `value` (kept secret in Pulumi state) as `secret_name`."""
        return keyvault.Secret(
            name,
            secret_name=secret_name,
            vault_name=self.vault.name,
            resource_group_name=self._resource_group_name,
            properties=keyvault.SecretPropertiesArgs(
                value=pulumi.Output.secret(value), content_type="text/plain"
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def add_generated_secret(self, name: str, secret_name: str, length: int) -> keyvault.Secret:
        """A random letters-and-digits secret made by Pulumi (kept encrypted in the state) and stored as
        `secret_name`. `pulumi up --replace` on the `<name>` RandomPassword rotates it."""
        value = random.RandomPassword(
            name, length=length, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        return self.add_secret(name, secret_name, value.result)

    def grant_secret_read(
        self,
        name: str,
        principal_id: pulumi.Input[str],
        secret: keyvault.Secret | None = None,
        principal_type: PrincipalType = PrincipalType.SERVICE_PRINCIPAL,
    ) -> authorization.RoleAssignment:
        """Key Vault Secrets User for `principal_id`, on one `secret` when given (least privilege), else on
        every secret of this vault."""
        scope = self.vault.id if secret is None else secret.id
        return assign_role(
            f"{name}-secrets-user",
            role=Role.KEY_VAULT_SECRETS_USER,
            scope=scope,
            principal_id=principal_id,
            principal_type=principal_type,
            parent=self,
        )

    def grant_certificate_read(
        self,
        name: str,
        principal_id: pulumi.Input[str],
        certificate_name: str,
        principal_type: PrincipalType = PrincipalType.SERVICE_PRINCIPAL,
    ) -> authorization.RoleAssignment:
        """Key Vault Secrets User for `principal_id` on the secret of the certificate `certificate_name` only.

        A Key Vault certificate's private key and chain are read as the secret of the same name (`GET
        /secrets/<name>`; what the Secrets Store CSI driver reads for `objectType: secret`), and a
        certificate's secret is managed by Key Vault, not by this program: the scope is that secret's id,
        which exists once the certificate does (scripts/tls-certificate.sh puts it there first). Reading the
        certificate object itself (`certificates/read`) is not needed, so not Key Vault Certificate User."""
        scope = self.vault.id.apply(lambda vault_id: f"{vault_id}/secrets/{certificate_name}")
        return assign_role(
            f"{name}-certificate-secrets-user",
            role=Role.KEY_VAULT_SECRETS_USER,
            scope=scope,
            principal_id=principal_id,
            principal_type=principal_type,
            parent=self,
        )
