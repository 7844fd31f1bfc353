"""Azure Policy definitions the bootstrap assigns: what no role assignment can bound.

A deployer holds Contributor on its environment's resource group, and Contributor's `*` includes
`Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write`. A role assignment
condition (rbac/roles.py `only_assigning`) bounds only role assignments, so without this policy one deploy run
could federate the workload identity (Key Vault Secrets User on the API token) to GitHub's issuer with a
`pull_request` subject, or federate a new identity to an issuer outside AKS it controls: a lasting path to
the secret. Not covered: an AKS cluster a deploy run itself creates in the group (same tenant and region),
whose issuer it would control; a run already administers its environment (docs/architecture/azure.md).

The rule allows a federated credential only when its issuer is an AKS OIDC issuer of this tenant in the
environment's region. AKS issuer URLs have the form
`https://<region>.oic.prod-aks.azure.com/<tenant id>/<guid>/`, where the region "matches the location to which
the AKS cluster is deployed" and the guid is per cluster (https://learn.microsoft.com/azure/aks/
workload-identity-deploy-cluster, "Retrieve the OIDC issuer URL"); the host pattern and the tenant segment are
what Azure's built-in "Managed Identity Federated Credentials from Azure Kubernetes should be from trusted
sources" reads (Azure/azure-policy built-in-policies/policyDefinitions/Managed Identity/
ManagedIdentity_FIC_LimitToAzureKubernetesIssuer.json, commit 7e7e3142ab7cd82848bcfbe1de4daad062eb1c21).
The field alias `<federated credential type>/issuer` is the one that built-in and "Managed Identity
Federated Credentials should be from allowed issuer types" (ManagedIdentity_FIC_LimitToWellknownIssuers.json,
same commit) use. A federated credential is always its own child resource: the identity's PUT body has no
credential property (bicep-types microsoft.managedidentity 2023-01-31, 2024-11-30 and 2025-05-31-preview,
`UserAssignedIdentityProperties`), so no inline credential escapes the rule.

Written without template functions: `like` with one `*` (Azure Policy definition structure, "Conditions":
"the value shouldn't have more than one wildcard"), so the pattern pins region and tenant and leaves only the
cluster's guid open; verify/access/policy.py evaluates this subset of the policy language.
"""

from __future__ import annotations

import uuid
from typing import Any

FEDERATED_CREDENTIAL_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
ISSUER_ALIAS = f"{FEDERATED_CREDENTIAL_TYPE}/issuer"
ALLOWED_ISSUER_PARAMETER = "allowedIssuerPattern"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

_POLICY_NAMESPACE = uuid.UUID("3f0d6b1e-2c55-4d7e-9a0b-8b6f1c2d4e51")


def aks_issuer_pattern(location: str, tenant_id: str) -> str:
    """The issuers of every AKS cluster of `tenant_id` in `location` (one `like` wildcard: the cluster)."""
    return f"https://{location}.oic.prod-aks.azure.com/{tenant_id}/*"


def federation_definition_name(suffix: str) -> str:
    """Stable per installation: a re-run updates the definition instead of creating a second one."""
    return str(uuid.uuid5(_POLICY_NAMESPACE, f"aks-issuers-only/{suffix}"))


FEDERATION_DISPLAY_NAME = "Muse: federated credentials only from this tenant's AKS issuers"
FEDERATION_DESCRIPTION = (
    "Denies a federated identity credential on a user-assigned identity unless its issuer matches the "
    "assignment's AKS issuer pattern (region and tenant). CI deployers hold Contributor, which can write "
    "federated credentials; this keeps GitHub's issuer and foreign issuers out."
)


def federation_policy_rule() -> dict[str, Any]:
    return {
        "if": {
            "allOf": [
                {"field": "type", "equals": FEDERATED_CREDENTIAL_TYPE},
                {"field": ISSUER_ALIAS, "notLike": f"[parameters('{ALLOWED_ISSUER_PARAMETER}')]"},
            ]
        },
        "then": {"effect": "deny"},
    }


def federation_policy_parameters() -> dict[str, dict[str, Any]]:
    return {
        ALLOWED_ISSUER_PARAMETER: {
            "type": "String",
            "metadata": {
                "displayName": "Allowed issuer pattern",
                "description": "https://<region>.oic.prod-aks.azure.com/<tenant id>/* (one wildcard).",
            },
        }
    }
