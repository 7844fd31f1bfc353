"""Azure Policy definitions the bootstrap assigns: what no role assignment can bound.

Contributor may write federated identity credentials, so one deploy run could federate an identity to an
issuer it controls; the policy allows a federated credential only when its issuer is an AKS OIDC issuer of
this tenant in the environment's region (`like` with one wildcard: the cluster's guid).
verify/access/policy.py evaluates this subset of the policy language. Why, and the built-in policies it
follows: docs/architecture/azure.md#federated-credential-policy."""

from __future__ import annotations

import uuid
from typing import Any

from rbac.arm import FEDERATED_IDENTITY_CREDENTIALS

FEDERATED_CREDENTIAL_TYPE = FEDERATED_IDENTITY_CREDENTIALS
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
