"""A user-assigned managed identity that Kubernetes service accounts use through workload identity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import managedidentity

# The audience of federated tokens (AKS workload identity and GitHub OIDC alike).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - an audience, not a credential


@dataclass(frozen=True)
class ServiceAccountRef:
    """A Kubernetes service account allowed to act as the identity."""

    namespace: str
    name: str

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True, kw_only=True)
class WorkloadIdentityArgs:
    """Inputs of `WorkloadIdentity`, field by field (what it is; default, and why that default).

    resource_group_name: group the identity lives in. Required.
    location: Azure region. Required.
    identity_name: Azure name of the identity. Required.
    oidc_issuer_url: the cluster's OIDC issuer (`KubernetesCluster.oidc_issuer_url`). Required.
    service_accounts: service accounts that may exchange their token for this identity's, one federated
        credential each. Required: no default, so no service account gets the identity by accident.
    tags: tags for the identity. Default: none.
    """

    resource_group_name: pulumi.Input[str]
    location: str
    identity_name: str
    oidc_issuer_url: pulumi.Input[str]
    service_accounts: Sequence[ServiceAccountRef]
    tags: Mapping[str, str] = field(default_factory=dict)


class WorkloadIdentity(pulumi.ComponentResource):
    """`muse:azure:WorkloadIdentity`. Exposes `client_id` (for the service account annotation and the
    SecretProviderClass), `principal_id` (for role grants) and `tenant_id`."""

    TYPE = "muse:azure:WorkloadIdentity"  # the type token of its URN

    def __init__(
        self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.identity = managedidentity.UserAssignedIdentity(
            name,
            resource_name_=args.identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Azure rejects concurrent writes of federated credentials on one identity (409 Conflict,
        # pulumi-azure-native #4343): each waits for the previous one.
        self.federated_credentials: list[managedidentity.FederatedIdentityCredential] = []
        for account in args.service_accounts:
            previous = self.federated_credentials[-1:] or []
            self.federated_credentials.append(
                managedidentity.FederatedIdentityCredential(
                    f"{name}-{account.namespace}-{account.name}",
                    federated_identity_credential_resource_name=f"{account.namespace}-{account.name}",
                    resource_name_=self.identity.name,
                    resource_group_name=args.resource_group_name,
                    issuer=args.oidc_issuer_url,
                    subject=account.subject,
                    audiences=[TOKEN_EXCHANGE_AUDIENCE],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(previous)),
                )
            )
        self.id: pulumi.Output[str] = self.identity.id
        self.client_id: pulumi.Output[str] = self.identity.client_id
        self.principal_id: pulumi.Output[str] = self.identity.principal_id
        self.tenant_id: pulumi.Output[str] = self.identity.tenant_id
        self.register_outputs({"clientId": self.client_id, "principalId": self.principal_id})
