"""Every policy has at least one compliant and one violating case; the last test enforces that."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from muse.governance.inventory import Inventory, Resource
from muse.governance.policies import (
    POLICIES,
    POLICIES_BY_ID,
    UNTAGGABLE_AZURE_TYPES,
    Policy,
    Severity,
    enforcement,
    evaluate,
    is_secret_like,
)

InventoryFactory = Callable[..., Inventory]

TAGS = {"env": "dev", "owner": "platform-team", "app": "muse", "managed-by": "pulumi"}


def resource(
    rtype: str, name: str = "r", properties: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:dev::muse::{rtype}::{name}",
        "type": rtype,
        "name": name,
        "parent": None,
        "custom": True,
        "properties": copy.deepcopy(properties) if properties is not None else {},
        "secretPaths": [],
        "options": {"ignoreChanges": [], "protect": False},
        **extra,
    }


ACR = "azure-native:containerregistry:Registry"
KV = "azure-native:keyvault:Vault"
AKS = "azure-native:containerservice:ManagedCluster"
ROLE = "azure-native:authorization:RoleAssignment"
DEPLOY = "kubernetes:apps/v1:Deployment"
GENERIC = "azure-native:resources:Resource"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
LAW = "azure-native:operationalinsights:Workspace"

GOOD_ACR = {"registryName": "acrmuse", "adminUserEnabled": False, "anonymousPullEnabled": False, "tags": TAGS}
GOOD_KV = {
    "tags": TAGS,
    "properties": {"enableRbacAuthorization": True, "enableSoftDelete": True, "enablePurgeProtection": True},
}
GOOD_AKS = {
    "tags": TAGS,
    "identity": {"type": "UserAssigned"},
    "oidcIssuerProfile": {"enabled": True},
    "securityProfile": {"workloadIdentity": {"enabled": True}},
    "networkProfile": {"networkPlugin": "azure", "networkPolicy": "cilium"},
    "disableLocalAccounts": True,
    "aadProfile": {"managed": True, "enableAzureRBAC": True},
    "addonProfiles": {"azureKeyvaultSecretsProvider": {"config": {"enableSecretRotation": "true"}}},
    "linuxProfile": {"ssh": {"publicKeys": [{"keyData": "ssh-ed25519 AAAA..."}]}},
}
# The same cluster as a generic ARM resource (components/kubernetes_cluster.py): ARM body under `properties`.
GOOD_GENERIC_AKS = {
    "resourceProviderNamespace": "Microsoft.ContainerService",
    "resourceType": "managedClusters",
    "parentResourcePath": "",
    "apiVersion": "2026-05-01",
    "tags": TAGS,
    "identity": GOOD_AKS["identity"],
    "properties": {
        **{k: v for k, v in GOOD_AKS.items() if k not in ("tags", "identity")},
        "ingressProfile": {
            "gatewayAPI": {"installation": "Standard"},
            "webAppRouting": {
                "enabled": True,
                "gatewayAPIImplementations": {"appRoutingIstio": {"mode": "Enabled"}},
                "nginx": {"defaultIngressControllerType": "None"},
            },
        },
    },
}
OTHER_GENERIC = {
    "resourceProviderNamespace": "Microsoft.Storage",
    "resourceType": "storageAccounts",
    "tags": TAGS,
}
GOOD_GATEWAY = {
    "metadata": {"name": "muse", "namespace": "muse-prod-gateway"},
    "spec": {
        "gatewayClassName": "approuting-istio",
        "listeners": [
            {
                "name": "https",
                "port": 443,
                "protocol": "HTTPS",
                "tls": {"mode": "Terminate", "options": {"a": "b"}},
            },
            {
                "name": "http",
                "port": 80,
                "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            },
        ],
    },
}
GOOD_INGRESS = {"metadata": {"name": "other"}, "spec": {"ingressClassName": "azure-alb-external"}}
GOOD_ROLE = {
    "principalId": "00000000-0000-0000-0000-000000000001",
    "principalType": "ServicePrincipal",
    "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/7f951dda",
    "scope": "/subscriptions/x",
}
CONTAINER = {
    "name": "muse",
    "image": "acrmuse.azurecr.io/muse:abc",
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
    "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
    "env": [
        {"name": "MUSE_ENV", "value": "dev"},
        {"name": "MUSE_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "muse", "key": "api-token"}}},
    ],
}
GOOD_DEPLOY = {
    "metadata": {"name": "muse"},
    "spec": {
        "replicas": 2,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                "containers": [CONTAINER],
            }
        },
    },
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted ``path`` set (list indexes allowed) or deleted (value=DELETE)."""
    out = copy.deepcopy(base)
    *parents, last = path.split(".")
    cur: Any = out
    for part in parents:
        cur = cur[int(part)] if isinstance(cur, list) else cur.setdefault(part, {})
    if value is DELETE:
        del cur[int(last) if isinstance(cur, list) else last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


DELETE = object()


@dataclass
class Case:
    policy: str
    rtype: str
    properties: dict[str, Any]
    expect: str | None  # None: compliant; otherwise a fragment of the expected message
    environment: str = "dev"
    secret_paths: tuple[str, ...] = ()
    protect: bool = False

    def __str__(self) -> str:
        return f"{self.policy}-{'pass' if self.expect is None else 'fail'}"


C = Case
CASES = [
    # Tags
    C("MUSE-TAG-001", ACR, GOOD_ACR, None),
    C("MUSE-TAG-001", ROLE, GOOD_ROLE, None),  # untaggable type: exempt
    C("MUSE-TAG-001", ACR, changed(GOOD_ACR, "tags", DELETE), "no tags; required: env, owner, app"),
    C("MUSE-TAG-001", ACR, changed(GOOD_ACR, "tags.owner", ""), "tag 'owner' is missing or empty"),
    C("MUSE-TAG-001", ACR, changed(GOOD_ACR, "tags.app", "other"), "tag 'app' is 'other', expected 'muse'"),
    C("MUSE-TAG-001", AKS, changed(GOOD_AKS, "tags", ["env"]), "no tags"),
    C("MUSE-TAG-002", ACR, GOOD_ACR, None),
    C("MUSE-TAG-002", ACR, changed(GOOD_ACR, "tags.env", "prod"), "tag 'env' is 'prod' but the stack's"),
    # ACR
    C("MUSE-ACR-001", ACR, GOOD_ACR, None),
    C(
        "MUSE-ACR-001",
        ACR,
        changed(GOOD_ACR, "adminUserEnabled", True),
        "adminUserEnabled must be set to false",
    ),
    C("MUSE-ACR-001", ACR, changed(GOOD_ACR, "adminUserEnabled", DELETE), "adminUserEnabled must be set"),
    C("MUSE-ACR-002", ACR, GOOD_ACR, None),
    C("MUSE-ACR-002", ACR, changed(GOOD_ACR, "anonymousPullEnabled", DELETE), None),  # ARM default false
    C("MUSE-ACR-002", ACR, changed(GOOD_ACR, "anonymousPullEnabled", True), "anonymousPullEnabled is true"),
    # Key Vault
    C("MUSE-KV-001", KV, GOOD_KV, None),
    C(
        "MUSE-KV-001",
        KV,
        changed(GOOD_KV, "properties.enableRbacAuthorization", False),
        "enableRbacAuthorization",
    ),
    C("MUSE-KV-002", KV, GOOD_KV, None),
    C(
        "MUSE-KV-002",
        KV,
        changed(GOOD_KV, "properties.enableSoftDelete", False),
        "enableSoftDelete is not true",
    ),
    C("MUSE-KV-003", KV, GOOD_KV, None, environment="prod"),
    C("MUSE-KV-003", KV, changed(GOOD_KV, "properties.enablePurgeProtection", DELETE), None),  # dev: exempt
    C(
        "MUSE-KV-003",
        KV,
        changed(changed(GOOD_KV, "properties.enablePurgeProtection", False), "tags.env", "prod"),
        "enablePurgeProtection is not true in the production tier",
        environment="prod",
    ),
    # AKS
    C("MUSE-AKS-001", AKS, GOOD_AKS, None),
    C("MUSE-AKS-001", AKS, changed(GOOD_AKS, "identity", DELETE), "identity.type is None"),
    C(
        "MUSE-AKS-001",
        AKS,
        changed(changed(GOOD_AKS, "identity", DELETE), "servicePrincipalProfile", {"clientId": "x"}),
        "uses a service principal",
    ),
    C("MUSE-AKS-002", AKS, GOOD_AKS, None),
    C(
        "MUSE-AKS-002",
        AKS,
        changed(GOOD_AKS, "oidcIssuerProfile.enabled", False),
        "oidcIssuerProfile.enabled",
    ),
    C("MUSE-AKS-003", AKS, GOOD_AKS, None),
    C(
        "MUSE-AKS-003",
        AKS,
        changed(GOOD_AKS, "securityProfile", DELETE),
        "workloadIdentity.enabled is not true",
    ),
    C("MUSE-AKS-004", AKS, GOOD_AKS, None),
    C(
        "MUSE-AKS-004",
        AKS,
        changed(GOOD_AKS, "networkProfile.networkPolicy", "none"),
        "networkPolicy is 'none'",
    ),
    C("MUSE-AKS-005", AKS, GOOD_AKS, None),
    C(
        "MUSE-AKS-005",
        AKS,
        changed(GOOD_AKS, "disableLocalAccounts", False),
        "disableLocalAccounts is not true",
    ),
    C("MUSE-AKS-006", AKS, GOOD_AKS, None),
    C("MUSE-AKS-006", AKS, changed(GOOD_AKS, "aadProfile", DELETE), "aadProfile is not configured"),
    C(
        "MUSE-AKS-006",
        AKS,
        changed(GOOD_AKS, "aadProfile.enableAzureRBAC", False),
        "enableAzureRBAC is not true",
    ),
    # The cluster as a generic ARM resource: the same AKS policies read its `properties`.
    C("MUSE-AKS-002", GENERIC, GOOD_GENERIC_AKS, None),
    C(
        "MUSE-AKS-002",
        GENERIC,
        changed(GOOD_GENERIC_AKS, "properties.oidcIssuerProfile.enabled", False),
        "oidcIssuerProfile.enabled is not true",
    ),
    C("MUSE-AKS-001", GENERIC, changed(GOOD_GENERIC_AKS, "identity", DELETE), "identity.type is None"),
    C(
        "MUSE-AKS-005",
        GENERIC,
        changed(GOOD_GENERIC_AKS, "properties.disableLocalAccounts", False),
        "not true",
    ),
    C("MUSE-AKS-004", GENERIC, OTHER_GENERIC, None),  # a generic resource of another type is no cluster
    # Ingress on a supported data plane
    C("MUSE-AKS-007", GENERIC, GOOD_GENERIC_AKS, None),
    C("MUSE-AKS-007", AKS, GOOD_AKS, None),  # application routing not enabled at all
    C(
        "MUSE-AKS-007",
        GENERIC,
        changed(GOOD_GENERIC_AKS, "properties.ingressProfile.webAppRouting.nginx", DELETE),
        "runs its default NGINX controller",
    ),
    C(
        "MUSE-AKS-007",
        AKS,
        {**GOOD_AKS, "ingressProfile": {"webAppRouting": {"enabled": True}}},
        "support ends in November 2026",
    ),
    C("MUSE-NET-001", INGRESS, GOOD_INGRESS, None),
    C(
        "MUSE-NET-001",
        INGRESS,
        changed(GOOD_INGRESS, "spec.ingressClassName", "webapprouting.kubernetes.azure.com"),
        "application routing add-on's NGINX",
    ),
    C("MUSE-NET-002", GATEWAY, GOOD_GATEWAY, None, environment="prod"),
    C(
        "MUSE-NET-002",
        GATEWAY,
        changed(GOOD_GATEWAY, "spec.listeners", GOOD_GATEWAY["spec"]["listeners"][1:]),
        "no HTTPS listener terminates TLS",
        environment="prod",
    ),
    C(
        "MUSE-NET-002",
        GATEWAY,
        changed(GOOD_GATEWAY, "spec.listeners.1.allowedRoutes.namespaces.from", "All"),
        "admits routes from other namespaces",
        environment="prod",
    ),
    C("MUSE-NET-002", GATEWAY, changed(GOOD_GATEWAY, "spec.listeners", []), None),  # dev may serve HTTP
    # Protection of stateful resources
    C("MUSE-PROT-001", KV, GOOD_KV, None, environment="prod", protect=True),
    C("MUSE-PROT-001", LAW, {"tags": TAGS}, "not protected", environment="prod"),
    C("MUSE-PROT-001", ACR, GOOD_ACR, None),  # dev may be torn down
    # Secrets
    C("MUSE-SEC-001", AKS, GOOD_AKS, None),
    C("MUSE-SEC-001", DEPLOY, GOOD_DEPLOY, None),
    C(
        "MUSE-SEC-001",
        "pulumi:providers:kubernetes",
        {"kubeconfig": "[secret]"},
        None,
        secret_paths=("kubeconfig",),
    ),
    C(
        "MUSE-SEC-001",
        "pulumi:providers:kubernetes",
        {"kubeconfig": "apiVersion: v1..."},
        "'kubeconfig' looks like",
    ),
    C(
        "MUSE-SEC-001",
        "azure-native:web:WebApp",
        {"siteConfig": {"connectionStrings": [{"connectionString": "Server=x;Password=y"}]}},
        "'siteConfig.connectionStrings.0.connectionString' looks like a secret",
    ),
    C(
        "MUSE-SEC-001",
        "azure-native:web:WebApp",
        {"siteConfig": {"connectionStrings": [{"connectionString": "Server=x;Password=y"}]}},
        None,
        secret_paths=("siteConfig.connectionStrings[0]",),  # a covering prefix, in bracket notation
    ),
    C(
        "MUSE-SEC-001",
        DEPLOY,
        changed(
            GOOD_DEPLOY, "spec.template.spec.containers.0.env.1", {"name": "MUSE_API_TOKEN", "value": "abc"}
        ),
        "sets MUSE_API_TOKEN as a literal value; use valueFrom.secretKeyRef",
    ),
    C(
        "MUSE-SEC-001",
        "kubernetes:core/v1:Secret",
        {"stringData": {"token": "abc"}},
        "Secret 'stringData.token'",
    ),
    C(
        "MUSE-SEC-001",
        "kubernetes:core/v1:Secret",
        {"stringData": {"token": "[secret]"}},
        None,
        secret_paths=("stringData.token",),
    ),
    # Kubernetes names that merely mention keys and secrets (topologyKey, selector keys, the key a
    # SecretProviderClass syncs into, the class a CSI volume mounts) are not secret material ...
    C(
        "MUSE-SEC-001",
        "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass",
        {
            "spec": {
                "secretObjects": [
                    {"secretName": "muse", "data": [{"key": "MUSE_API_TOKEN", "objectName": "t"}]}
                ]
            }
        },
        None,
    ),
    C(
        "MUSE-SEC-001",
        DEPLOY,
        changed(
            GOOD_DEPLOY,
            "spec.template.spec.topologySpreadConstraints",
            [
                {
                    "topologyKey": "topology.kubernetes.io/zone",
                    "labelSelector": {"matchExpressions": [{"key": "app"}]},
                }
            ],
        ),
        None,
    ),
    C(
        "MUSE-SEC-001",
        DEPLOY,
        changed(
            GOOD_DEPLOY,
            "spec.template.spec.volumes",
            [{"name": "s", "csi": {"driver": "d", "volumeAttributes": {"secretProviderClass": "muse"}}}],
        ),
        None,
    ),
    # ... but a bare key outside Kubernetes is key material.
    C(
        "MUSE-SEC-001",
        "azure-native:x:Y",
        {"tags": TAGS, "key": "c2VjcmV0LWtleS1tYXRlcmlhbA=="},
        "'key' looks like",
    ),
    # Role assignments
    C("MUSE-RBAC-001", ROLE, GOOD_ROLE, None),
    C("MUSE-RBAC-001", ROLE, changed(GOOD_ROLE, "principalType", DELETE), "principalType is None"),
    # Kubernetes
    C("MUSE-K8S-001", DEPLOY, GOOD_DEPLOY, None),
    C(
        "MUSE-K8S-001",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.template.spec.containers.0.readinessProbe", DELETE),
        "containers[0] (muse) has no readinessProbe",
    ),
    C(
        "MUSE-K8S-001",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.template.spec.containers.0.livenessProbe", DELETE),
        "has no livenessProbe",
    ),
    C("MUSE-K8S-001", DEPLOY, changed(GOOD_DEPLOY, "spec.template", DELETE), "no pod template"),
    C("MUSE-K8S-002", DEPLOY, GOOD_DEPLOY, None),
    C("MUSE-K8S-002", DEPLOY, changed(GOOD_DEPLOY, "spec.strategy.rollingUpdate.maxUnavailable", "0%"), None),
    C(
        "MUSE-K8S-002",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.strategy", DELETE),
        "unset (Kubernetes default 25%)",
    ),
    C("MUSE-K8S-002", DEPLOY, changed(GOOD_DEPLOY, "spec.strategy.rollingUpdate.maxUnavailable", 1), "is 1"),
    C("MUSE-K8S-002", DEPLOY, changed(GOOD_DEPLOY, "spec.strategy", {"type": "Recreate"}), "Recreate"),
    C("MUSE-K8S-003", DEPLOY, GOOD_DEPLOY, None),
    C(
        "MUSE-K8S-003",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.template.spec.securityContext", DELETE),
        "containers[0] (muse): runAsNonRoot is not true",
    ),
    C(
        "MUSE-K8S-003",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.template.spec.containers.0.securityContext.runAsNonRoot", False),
        "runAsNonRoot is not true",  # the container overrides the pod
    ),
    C(
        "MUSE-K8S-003",
        DEPLOY,
        changed(
            GOOD_DEPLOY,
            "spec.template.spec.initContainers",
            [{"name": "init", "securityContext": {"runAsUser": 0}}],
        ),
        "initContainers[0] (init): runAsUser is 0",
    ),
    C("MUSE-K8S-004", DEPLOY, GOOD_DEPLOY, None),
    C(
        "MUSE-K8S-004",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", False),
        "readOnlyRootFilesystem is not true",
    ),
    C(
        "MUSE-K8S-004",
        "kubernetes:batch/v1:CronJob",
        {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}}}},
        "containers[0] (job): securityContext.readOnlyRootFilesystem",
    ),
    C("MUSE-K8S-005", DEPLOY, GOOD_DEPLOY, None),
    C(
        "MUSE-K8S-005",
        DEPLOY,
        changed(GOOD_DEPLOY, "spec.template.spec.containers.0.securityContext.privileged", True),
        "privileged is true",
    ),
    C(
        "MUSE-K8S-005",
        DEPLOY,
        changed(
            GOOD_DEPLOY, "spec.template.spec.containers.0.securityContext.allowPrivilegeEscalation", DELETE
        ),
        "allowPrivilegeEscalation is not false",
    ),
]


def _run(case: Case, make_inventory: InventoryFactory) -> list[str]:
    res = resource(
        case.rtype,
        "subject",
        case.properties,
        secretPaths=list(case.secret_paths),
        options={"ignoreChanges": [], "protect": case.protect},
    )
    evaluation = evaluate(make_inventory(res, environment=case.environment), fail_on=Severity.LOW)
    return [v.message for v in evaluation.violations if v.policyId == case.policy]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_policy_case(case: Case, make_inventory: InventoryFactory) -> None:
    messages = _run(case, make_inventory)
    if case.expect is None:
        assert messages == []
    else:
        assert any(case.expect in m for m in messages), messages


def test_every_policy_has_a_passing_and_a_violating_case() -> None:
    passing = {c.policy for c in CASES if c.expect is None}
    failing = {c.policy for c in CASES if c.expect is not None}
    ids = {p.id for p in POLICIES}
    assert ids - passing == set()
    assert ids - failing == set()


def test_policy_metadata_is_complete_and_ids_unique() -> None:
    assert len(POLICIES_BY_ID) == len(POLICIES)
    for policy in POLICIES:
        assert policy.id.startswith("MUSE-")
        assert policy.title and policy.rationale and policy.remediation and policy.applies_to
        assert isinstance(policy.severity, Severity)


def test_untaggable_types_are_explicit_and_exempt_from_tags(make_inventory: InventoryFactory) -> None:
    assert "azure-native:authorization:RoleAssignment" in UNTAGGABLE_AZURE_TYPES
    assert "azure-native:managedidentity:FederatedIdentityCredential" in UNTAGGABLE_AZURE_TYPES
    resources = [resource(t, f"r{i}") for i, t in enumerate(sorted(UNTAGGABLE_AZURE_TYPES))]
    evaluation = evaluate(make_inventory(*resources))
    assert not [v for v in evaluation.violations if v.policyId.startswith("MUSE-TAG")]


def test_tags_only_apply_to_azure_native_resources(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(
        resource("muse:azure:ContainerRegistry", "component", custom=False),
        resource("pulumi:providers:azure-native", "provider"),
        resource("random:index/randomString:RandomString", "suffix"),
        resource("azure-native:resources:ResourceGroup", "rg"),
    )
    tagged = {v.resourceName for v in evaluate(inventory).violations if v.policyId == "MUSE-TAG-001"}
    assert tagged == {"rg"}


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "adminPassword",
        "clientSecret",
        "kubeconfig",
        "connectionString",
        "primaryConnectionString",
        "token",
        "apiKey",
        "key",
        "primaryKey",
        "private_key",
        "client-secret",
        "sasToken",
    ],
)
def test_secret_like_names(name: str) -> None:
    assert is_secret_like(name)


@pytest.mark.parametrize(
    "name",
    [
        "secretName",
        "keyVaultId",
        "keyVaultName",
        "publicKey",
        "keyData",
        "keySize",
        "tokenEndpoint",
        "enableSecretRotation",
        "rotationPollInterval",
        "passwordProfile",
        "sshKey",
        "adminUserEnabled",
        "registryName",
        "secretPaths",
    ],
)
def test_not_secret_like_names(name: str) -> None:
    assert not is_secret_like(name)


def test_masked_and_empty_values_are_not_plaintext(make_inventory: InventoryFactory) -> None:
    res = resource(
        "azure-native:x:Y", "y", {"password": "[secret]", "clientSecret": "", "token": None, "tags": TAGS}
    )
    assert not [v for v in evaluate(make_inventory(res)).violations if v.policyId == "MUSE-SEC-001"]


def test_hostile_nesting_does_not_crash(make_inventory: InventoryFactory) -> None:
    deep: dict[str, Any] = {"password": "plain"}
    for _ in range(200):
        deep = {"nested": deep}
    res = resource("azure-native:x:Y", "y", {"deep": deep, "tags": TAGS})
    evaluate(make_inventory(res))  # the depth cap stops the walk; no RecursionError


def test_a_crashing_check_fails_closed(make_inventory: InventoryFactory) -> None:
    def boom(resource: Resource, inventory: Inventory) -> list[str]:
        raise KeyError("unexpected")

    policy = Policy("MUSE-T-1", "t", Severity.HIGH, "r", "fix", ("*",), boom)
    evaluation = evaluate(make_inventory(resource("a:b:C")), policies=(policy,))
    assert [v.message for v in evaluation.violations] == [
        "could not be evaluated (unexpected property shape)"
    ]
    assert not evaluation.passed


def test_threshold_and_ordering(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(
        resource(ACR, "acr", changed(GOOD_ACR, "tags.env", "prod")),  # medium: MUSE-TAG-002
        resource("pulumi:providers:kubernetes", "k8s", {"kubeconfig": "plain"}),  # critical
    )
    evaluation = evaluate(inventory, fail_on=Severity.CRITICAL)
    assert [v.severity for v in evaluation.violations] == [Severity.CRITICAL, Severity.MEDIUM]
    assert not evaluation.passed and len(evaluation.failing) == 1
    only_medium = make_inventory(resource(ACR, "acr", changed(GOOD_ACR, "tags.env", "prod")))
    assert evaluate(only_medium, fail_on=Severity.HIGH).passed
    assert not evaluate(only_medium, fail_on=Severity.MEDIUM).passed
    summary = evaluation.to_json()["summary"]
    assert summary["bySeverity"] == {"critical": 1, "high": 0, "medium": 1, "low": 0}
    assert summary["passed"] is False and summary["failing"] == 1


def test_the_pulumi_program_inventories_pass_at_high(plans: dict[str, Any]) -> None:
    """Contract with the offline engine: its inventory parses, and the program meets the policy bar."""
    from muse.governance.inventory import parse_inventory

    for stack, plan in plans.items():
        from stack.files import read_stack

        inventory = parse_inventory(plan.to_inventory(stack, read_stack(stack).config["muse:tier"]))
        evaluation = evaluate(inventory, fail_on=Severity.HIGH)
        assert evaluation.failing == [], [(v.policyId, v.urn, v.message) for v in evaluation.failing]


def test_enforcement_blocks_critical_and_high_and_warns_on_the_rest() -> None:
    # The one rule the CrossGuard pack (policy/muse_pack.py) and the governance documents share.
    assert {severity: enforcement(severity) for severity in Severity} == {
        Severity.CRITICAL: "mandatory",
        Severity.HIGH: "mandatory",
        Severity.MEDIUM: "advisory",
        Severity.LOW: "advisory",
    }
