"""Generates a realistic resource inventory (schemaVersion 1, muse/governance/inventory.py) of N resources.

The mix resembles a Muse stack scaled up: resource groups, registries, key vaults, AKS clusters, identities,
federated credentials, role assignments, networking, diagnostics, and Kubernetes namespaces, deployments,
services, config maps and secrets. About one resource in five is non-compliant (missing tag, admin user on,
no probes, plaintext secret, ...) so the policies do real work and the response carries violations.

    python -m bench.inventory --resources 200 > inventory.json
"""

from __future__ import annotations

import random
from typing import Any

from muse.contract import (
    DEFAULT_PORT,
    ENV_API_TOKEN,
    ENV_ENVIRONMENT,
    ENV_LOG_LEVEL,
    HEALTH_PATH,
    READINESS_PATH,
)
from muse.resource_types import (
    FEDERATED_IDENTITY_CREDENTIAL,
    K8S_CONFIG_MAP,
    K8S_DEPLOYMENT,
    K8S_NAMESPACE,
    K8S_SERVICE,
    KEY_VAULT,
    KEY_VAULT_SECRET,
    PULUMI_STACK,
    REGISTRY,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    SUBNET,
    TYPED_CLUSTER,
    USER_ASSIGNED_IDENTITY,
)
from rbac.arm import ROLE_DEFINITIONS

PROJECT = "muse"


def _urn(stack: str, type_: str, name: str, parent_type: str | None = None) -> str:
    qualified = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{stack}::{PROJECT}::{qualified}::{name}"


def _tags(env: str, rng: random.Random, ok: bool) -> dict[str, str]:
    tags = {"env": env, "owner": "platform-team", "app": "muse"}
    if not ok:
        tags.pop(rng.choice(["owner", "app"]))
    return tags


def _deployment(name: str, ok: bool) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": "acrmuse.azurecr.io/muse@sha256:" + "0" * 64,
        "ports": [{"containerPort": DEFAULT_PORT}],
        "env": [
            {"name": ENV_ENVIRONMENT, "value": "dev"},
            {"name": ENV_API_TOKEN, "valueFrom": {"secretKeyRef": {"name": "muse", "key": "token"}}},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if ok:
        container["readinessProbe"] = {
            "httpGet": {"path": READINESS_PATH, "port": DEFAULT_PORT},
            "periodSeconds": 5,
        }
        container["livenessProbe"] = {
            "httpGet": {"path": HEALTH_PATH, "port": DEFAULT_PORT},
            "periodSeconds": 10,
        }
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0 if ok else 1, "maxSurge": 1},
            },
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                },
            },
        },
    }


def generate(resources: int = 200, environment: str = "dev", seed: int = 42) -> dict[str, Any]:
    rng = random.Random(seed)
    stack = environment
    out: list[dict[str, Any]] = []
    stack_type = PULUMI_STACK
    stack_urn = _urn(stack, stack_type, f"{PROJECT}-{stack}")
    out.append({"urn": stack_urn, "type": stack_type, "name": f"{PROJECT}-{stack}", "custom": False})

    def add(
        type_: str,
        name: str,
        properties: dict[str, Any],
        parent: str | None = None,
        secret_paths: list[str] | None = None,
    ) -> str:
        urn = _urn(stack, type_, name)
        out.append(
            {
                "urn": urn,
                "type": type_,
                "name": name,
                "parent": parent or stack_urn,
                "custom": True,
                "properties": properties,
                "secretPaths": secret_paths or [],
                "options": {"ignoreChanges": [], "protect": type_.endswith(("Vault", "Registry"))},
            }
        )
        return urn

    i = 0
    while len(out) < resources:
        i += 1
        ok = rng.random() > 0.2
        location = "westeurope"
        rg = add(
            RESOURCE_GROUP,
            f"rg-muse-{stack}-{i}",
            {"location": location, "tags": _tags(environment, rng, ok)},
        )
        kind = i % 4
        if kind == 0:
            add(
                REGISTRY,
                f"acrmuse{stack}{i}",
                {
                    "location": location,
                    "sku": {"name": "Premium"},
                    "adminUserEnabled": not ok,
                    "anonymousPullEnabled": False,
                    "publicNetworkAccess": "Disabled",
                    "tags": _tags(environment, rng, True),
                },
                rg,
            )
            add(
                ROLE_ASSIGNMENT,
                f"acrpull-{i}",
                {
                    "principalId": f"{i:08d}-0000-0000-0000-000000000000",
                    "principalType": "ServicePrincipal",
                    "roleDefinitionId": f"/providers/{ROLE_DEFINITIONS}/7f951dda",
                    "scope": f"/subscriptions/x/resourceGroups/rg-muse-{stack}-{i}",
                },
                rg,
            )
        elif kind == 1:
            add(
                KEY_VAULT,
                f"kv-muse-{stack}-{i}",
                {
                    "location": location,
                    "tags": _tags(environment, rng, True),
                    "properties": {
                        "tenantId": "00000000-0000-0000-0000-000000000000",
                        "sku": {"family": "A", "name": "standard"},
                        "enableRbacAuthorization": ok,
                        "enableSoftDelete": True,
                        "enablePurgeProtection": True,
                        "softDeleteRetentionInDays": 90,
                    },
                },
                rg,
            )
            add(
                KEY_VAULT_SECRET,
                f"muse-api-token-{i}",
                {
                    "properties": {"value": "[secret]" if ok else "plaintext-token-value-123"},
                    "tags": _tags(environment, rng, True),
                },
                rg,
                ["properties.value"] if ok else [],
            )
        elif kind == 2:
            aks = add(
                TYPED_CLUSTER,
                f"aks-muse-{stack}-{i}",
                {
                    "location": location,
                    "tags": _tags(environment, rng, True),
                    "identity": {"type": "SystemAssigned" if ok else "None"},
                    "oidcIssuerProfile": {"enabled": True},
                    "securityProfile": {"workloadIdentity": {"enabled": ok}},
                    "networkProfile": {"networkPlugin": "azure", "networkPolicy": "cilium"},
                    "agentPoolProfiles": [
                        {"name": "system", "count": 2, "vmSize": "Standard_D2s_v5", "mode": "System"}
                    ],
                    "aadProfile": {"managed": True, "enableAzureRBAC": True},
                },
                rg,
            )
            uami = add(
                USER_ASSIGNED_IDENTITY,
                f"id-muse-{i}",
                {"location": location, "tags": _tags(environment, rng, True)},
                rg,
            )
            add(
                FEDERATED_IDENTITY_CREDENTIAL,
                f"fic-muse-{i}",
                {
                    "issuer": "https://oidc.example/",
                    "subject": "system:serviceaccount:muse:muse",
                    "audiences": ["api://AzureADTokenExchange"],
                },
                uami,
            )
            add(SUBNET, f"snet-aks-{i}", {"addressPrefix": f"10.{i % 250}.0.0/22"}, aks)
        else:
            ns = add(K8S_NAMESPACE, f"muse-{i}", {"metadata": {"name": f"muse-{i}"}})
            add(K8S_DEPLOYMENT, f"muse-{i}", _deployment(f"muse-{i}", ok), ns)
            add(
                K8S_SERVICE,
                f"muse-svc-{i}",
                {
                    "metadata": {"name": f"muse-{i}"},
                    "spec": {
                        "selector": {"app": f"muse-{i}"},
                        "ports": [{"port": 80, "targetPort": DEFAULT_PORT}],
                    },
                },
                ns,
            )
            add(
                K8S_CONFIG_MAP,
                f"muse-cm-{i}",
                {
                    "metadata": {"name": f"muse-{i}"},
                    "data": {ENV_ENVIRONMENT: environment, ENV_LOG_LEVEL: "INFO"},
                },
                ns,
            )
            add(
                "kubernetes:core/v1:Secret",
                f"muse-secret-{i}",
                {
                    "metadata": {"name": f"muse-{i}"},
                    "stringData": {"token": "[secret]" if ok else "hunter2hunter2"},
                },
                ns,
                ["stringData.token"] if ok else [],
            )
    return {
        "schemaVersion": 1,
        "project": PROJECT,
        "stack": stack,
        "environment": environment,
        "resources": out[:resources],
    }
