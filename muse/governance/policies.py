"""The Muse policy set, written once as plain Python.

A policy is metadata (id, title, severity, rationale, remediation, resource types it applies to) plus a check:
a function from one resource (and the inventory, for context such as the environment) to a list of messages.
Every message becomes a :class:`Violation`. Checks read properties through :func:`get_path`, which returns
``None`` for any missing or oddly shaped intermediate, so an unexpected shape is "not compliant" rather than a
crash; if a check still raises, :func:`evaluate` reports that as a violation (fail closed) instead of failing.

``properties`` are Pulumi resource *inputs* (azure-native ARM shape, camelCase); Kubernetes resources carry
``metadata``/``spec`` like manifests.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from muse.governance.inventory import Inventory, Resource
from muse.resource_types import (
    CLUSTER_PROVIDER_NAMESPACE,
    CLUSTER_RESOURCE_TYPE,
    DATA_COLLECTION_RULE_ASSOCIATION,
    FEDERATED_IDENTITY_CREDENTIAL,
    GENERIC_RESOURCE,
    K8S_DEPLOYMENT,
    K8S_GATEWAY,
    KEY_VAULT,
    LOG_ANALYTICS_WORKSPACE,
    MAINTENANCE_CONFIGURATION,
    POLICY_ASSIGNMENT,
    REGISTRY,
    ROLE_ASSIGNMENT,
    ROLE_DEFINITION,
    SUBNET,
    TYPED_CLUSTER,
)

logger = logging.getLogger(__name__)


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, threshold: Severity) -> bool:
        return self.rank >= threshold.rank


# Critical and high policies block `pulumi preview`/`up` in the CrossGuard pack (policy/muse_pack.py); medium
# and low warn. One rule for the pack and for the governance documents that show each policy's enforcement.
MANDATORY_AT = Severity.HIGH


def enforcement(severity: Severity) -> str:
    """The CrossGuard enforcement level of a Muse policy of this severity: "mandatory" or "advisory"."""
    return "mandatory" if severity.at_least(MANDATORY_AT) else "advisory"


@functools.lru_cache(maxsize=4096)
def _matches(patterns: tuple[str, ...], resource_type: str) -> bool:
    # Inventories repeat a handful of types; caching keeps 200-resource evaluations in the low milliseconds.
    return any(fnmatch.fnmatchcase(resource_type, pattern) for pattern in patterns)


_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}

Check = Callable[[Resource, Inventory], list[str]]


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    # fnmatch patterns over the resource type, e.g. "azure-native:*".
    applies_to: tuple[str, ...]
    check: Check

    def applies(self, resource: Resource) -> bool:
        return _matches(self.applies_to, resource.type)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "rationale": self.rationale,
            "remediation": self.remediation,
            "appliesTo": list(self.applies_to),
        }


class Violation(BaseModel):
    model_config = ConfigDict(frozen=True)

    policyId: str
    title: str
    severity: Severity
    urn: str
    resourceType: str
    resourceName: str
    message: str
    remediation: str


class Evaluation(BaseModel):
    project: str
    stack: str
    environment: str
    resourceCount: int
    policyCount: int
    failOn: Severity
    violations: list[Violation]

    @property
    def failing(self) -> list[Violation]:
        return [v for v in self.violations if v.severity.at_least(self.failOn)]

    @property
    def passed(self) -> bool:
        return not self.failing

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for v in self.violations if v.severity is s) for s in Severity}

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "project": self.project,
            "stack": self.stack,
            "environment": self.environment,
            "summary": {
                "resources": self.resourceCount,
                "policies": self.policyCount,
                "violations": len(self.violations),
                "bySeverity": self.counts(),
                "failOn": self.failOn.value,
                "failing": len(self.failing),
                "passed": self.passed,
            },
            "violations": [v.model_dump(mode="json") for v in self.violations],
        }


# ------------------------------------------------------------------------------------------------------
# Helpers


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """``get_path(props, "a.b.0.c")``: a nested value by dotted path (list items by index), or ``default``
    when anything on the way is absent."""
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return default
    return cur


def _is_true(value: Any) -> bool:
    return value is True


# ------------------------------------------------------------------------------------------------------
# Tags

REQUIRED_TAGS: dict[str, str | None] = {"env": None, "owner": None, "app": "muse"}

# azure-native resource types that have no `tags` in ARM (extension or child resources). Everything else under
# azure-native:* must carry the required tags. Keep this list explicit: adding a type here is a reviewed
# decision, not a silent exemption.
UNTAGGABLE_AZURE_TYPES: frozenset[str] = frozenset(
    {
        ROLE_ASSIGNMENT,
        ROLE_DEFINITION,
        POLICY_ASSIGNMENT,
        "azure-native:authorization:ManagementLockAtResourceGroupLevel",
        "azure-native:authorization:ManagementLockByScope",
        FEDERATED_IDENTITY_CREDENTIAL,
        "azure-native:keyvault:AccessPolicy",
        MAINTENANCE_CONFIGURATION,
        "azure-native:containerregistry:ScopeMap",
        "azure-native:containerregistry:CacheRule",
        SUBNET,
        "azure-native:network:SecurityRule",
        "azure-native:monitor:DiagnosticSetting",
        DATA_COLLECTION_RULE_ASSOCIATION,
        "azure-native:operationalinsights:Table",
    }
)


def _tags(resource: Resource) -> dict[str, Any] | None:
    tags = resource.properties.get("tags")
    return tags if isinstance(tags, dict) else None


def _check_required_tags(resource: Resource, inventory: Inventory) -> list[str]:
    if resource.type in UNTAGGABLE_AZURE_TYPES:
        return []
    tags = _tags(resource)
    if tags is None:
        return [f"no tags; required: {', '.join(REQUIRED_TAGS)}"]
    problems = []
    for key, expected in REQUIRED_TAGS.items():
        value = tags.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"tag '{key}' is missing or empty")
        elif expected is not None and value != expected:
            problems.append(f"tag '{key}' is '{value}', expected '{expected}'")
    return problems


def _check_env_tag(resource: Resource, inventory: Inventory) -> list[str]:
    if resource.type in UNTAGGABLE_AZURE_TYPES:
        return []
    tags = _tags(resource) or {}
    value = tags.get("env")
    # A missing env tag is MUSE-TAG-001's finding; reporting it twice would only add noise.
    if isinstance(value, str) and value and value != inventory.environment:
        return [f"tag 'env' is '{value}' but the stack's environment is '{inventory.environment}'"]
    return []


# ------------------------------------------------------------------------------------------------------
# Container Registry


def _check_acr_admin(resource: Resource, inventory: Inventory) -> list[str]:
    if resource.properties.get("adminUserEnabled") is not False:
        return ["adminUserEnabled must be set to false explicitly"]
    return []


def _check_acr_anonymous(resource: Resource, inventory: Inventory) -> list[str]:
    # ARM's default is false, so absence is compliant; only an explicit true is a finding.
    if resource.properties.get("anonymousPullEnabled") is True:
        return ["anonymousPullEnabled is true"]
    return []


# ------------------------------------------------------------------------------------------------------
# Key Vault


def _check_kv_rbac(resource: Resource, inventory: Inventory) -> list[str]:
    if not _is_true(get_path(resource.properties, "properties.enableRbacAuthorization")):
        return ["properties.enableRbacAuthorization is not true (access policies are in use)"]
    return []


def _check_kv_soft_delete(resource: Resource, inventory: Inventory) -> list[str]:
    if not _is_true(get_path(resource.properties, "properties.enableSoftDelete")):
        return ["properties.enableSoftDelete is not true"]
    return []


def _check_kv_purge_protection(resource: Resource, inventory: Inventory) -> list[str]:
    if inventory.tier != "production":
        return []
    if not _is_true(get_path(resource.properties, "properties.enablePurgeProtection")):
        return ["properties.enablePurgeProtection is not true in the production tier"]
    return []


# ------------------------------------------------------------------------------------------------------
# AKS

_MANAGED_IDENTITY_TYPES = {"SystemAssigned", "UserAssigned"}
_NETWORK_POLICIES = {"azure", "calico", "cilium"}
AKS_TYPES = (TYPED_CLUSTER, GENERIC_RESOURCE)
# The application routing add-on's NGINX: its ingress class; Microsoft supports it until November 2026
# (MicrosoftDocs/azure-aks-docs articles/aks/includes/ingress-nginx-retirement.md).
RETIRED_INGRESS_CLASS = "webapprouting.kubernetes.azure.com"


def cluster_view(resource: Resource) -> dict[str, Any] | None:
    """An AKS cluster's settings as one flat mapping (ARM `properties` plus `identity` and `sku`), whether the
    program declares it as the typed SDK resource (whose inputs are already flat) or as a generic
    `azure-native:resources:Resource` of type Microsoft.ContainerService/managedClusters (whose ARM body keeps
    them under `properties`); None for a generic resource of any other type."""
    props = resource.properties
    if resource.type == TYPED_CLUSTER:
        return props
    namespace, kind = props.get("resourceProviderNamespace"), props.get("resourceType")
    if (str(namespace).lower(), str(kind).lower()) != (
        CLUSTER_PROVIDER_NAMESPACE.lower(),
        CLUSTER_RESOURCE_TYPE.lower(),
    ):
        return None
    inner = props.get("properties")
    return {
        **(inner if isinstance(inner, dict) else {}),
        "identity": props.get("identity"),
        "sku": props.get("sku"),
    }


def _aks(check: Callable[[dict[str, Any]], list[str]]) -> Check:
    """A check of a cluster's settings, applied to either declaration (cluster_view); other types pass."""

    def run(resource: Resource, inventory: Inventory) -> list[str]:
        view = cluster_view(resource)
        return [] if view is None else check(view)

    return run


@_aks
def _check_aks_identity(cluster: dict[str, Any]) -> list[str]:
    identity_type = get_path(cluster, "identity.type")
    if identity_type not in _MANAGED_IDENTITY_TYPES:
        if get_path(cluster, "servicePrincipalProfile") is not None:
            return ["uses a service principal (servicePrincipalProfile) instead of a managed identity"]
        return [f"identity.type is {identity_type!r}; expected SystemAssigned or UserAssigned"]
    return []


@_aks
def _check_aks_oidc(cluster: dict[str, Any]) -> list[str]:
    if not _is_true(get_path(cluster, "oidcIssuerProfile.enabled")):
        return ["oidcIssuerProfile.enabled is not true"]
    return []


@_aks
def _check_aks_workload_identity(cluster: dict[str, Any]) -> list[str]:
    if not _is_true(get_path(cluster, "securityProfile.workloadIdentity.enabled")):
        return ["securityProfile.workloadIdentity.enabled is not true"]
    return []


@_aks
def _check_aks_network_policy(cluster: dict[str, Any]) -> list[str]:
    policy = get_path(cluster, "networkProfile.networkPolicy")
    if policy not in _NETWORK_POLICIES:
        return [f"networkProfile.networkPolicy is {policy!r}; expected one of {sorted(_NETWORK_POLICIES)}"]
    return []


@_aks
def _check_aks_local_accounts(cluster: dict[str, Any]) -> list[str]:
    if not _is_true(cluster.get("disableLocalAccounts")):
        return ["disableLocalAccounts is not true (the static cluster-admin kubeconfig stays usable)"]
    return []


@_aks
def _check_aks_azure_rbac(cluster: dict[str, Any]) -> list[str]:
    problems = []
    if not _is_true(get_path(cluster, "aadProfile.managed")) and not _is_true(
        get_path(cluster, "aadProfile.enableAzureRBAC")
    ):
        problems.append("aadProfile is not configured (no Entra ID integration)")
    elif not _is_true(get_path(cluster, "aadProfile.enableAzureRBAC")):
        problems.append("aadProfile.enableAzureRBAC is not true")
    return problems


@_aks
def _check_aks_no_retired_nginx(cluster: dict[str, Any]) -> list[str]:
    routing = get_path(cluster, "ingressProfile.webAppRouting")
    if not isinstance(routing, dict) or not _is_true(routing.get("enabled")):
        return []
    controller = get_path(routing, "nginx.defaultIngressControllerType")
    if controller != "None":
        return [
            f"the application routing add-on runs its default NGINX controller (defaultIngressControllerType "
            f"{controller!r}); its support ends in November 2026"
        ]
    return []


# ------------------------------------------------------------------------------------------------------
# Ingress and Gateway API


def _check_ingress_class(resource: Resource, inventory: Inventory) -> list[str]:
    if get_path(resource.properties, "spec.ingressClassName") == RETIRED_INGRESS_CLASS:
        return [f"served by the application routing add-on's NGINX ({RETIRED_INGRESS_CLASS}), retired"]
    return []


def _check_gateway_https(resource: Resource, inventory: Inventory) -> list[str]:
    """Production tier: at least one HTTPS listener that terminates TLS, and every HTTP listener admits routes
    of the Gateway's own namespace only (where the HTTP -> HTTPS redirect lives), never the application's."""
    if inventory.tier != "production":
        return []
    listeners = get_path(resource.properties, "spec.listeners")
    listeners = [x for x in listeners if isinstance(x, dict)] if isinstance(listeners, list) else []
    problems = []
    https = [x for x in listeners if x.get("protocol") == "HTTPS"]
    if not any(get_path(x, "tls.mode") in (None, "Terminate") and x.get("tls") for x in https):
        problems.append("no HTTPS listener terminates TLS")
    for listener in listeners:
        if (
            listener.get("protocol") == "HTTP"
            and get_path(listener, "allowedRoutes.namespaces.from") != "Same"
        ):
            problems.append(
                f"HTTP listener {listener.get('name')!r} admits routes from other namespaces; in production "
                "it may only carry the redirect to HTTPS (allowedRoutes.namespaces.from: Same)"
            )
    return problems


# ------------------------------------------------------------------------------------------------------
# Protection of stateful resources

STATEFUL_TYPES = (
    KEY_VAULT,
    REGISTRY,
    LOG_ANALYTICS_WORKSPACE,
)


def _check_protected(resource: Resource, inventory: Inventory) -> list[str]:
    if inventory.tier != "production" or resource.options.protect:
        return []
    return ["not protected (Pulumi protect): a destroy, rename or replacement would delete it"]


# ------------------------------------------------------------------------------------------------------
# Secrets

SECRET_MARKER = "[secret]"  # noqa: S105 - the masking placeholder, not a credential
# Words (camelCase/snake/kebab split) that make a property name secret-like.
_SECRET_WORDS = {"password", "passwd", "secret", "token", "kubeconfig", "credential", "credentials"}
# Two-word phrases (joined) that name secret material.
_SECRET_PHRASES = (
    "connectionstring",
    "apikey",
    "accesskey",
    "privatekey",
    "sharedkey",
    "primarykey",
    "secondarykey",
)
# Last words that make a secret-like name a *reference* to a secret rather than the secret itself.
_REFERENCE_SUFFIXES = {
    "name",
    "names",
    "id",
    "ids",
    "uri",
    "url",
    "path",
    "paths",
    "ref",
    "enabled",
    "type",
    "source",
    "version",
    "endpoint",
    "expiry",
    "expiration",
    "profile",
    "policy",
    "policies",
    "reference",
    "store",
    "rotation",
    "interval",
    "length",
    "count",
    "size",
    "format",
    "mode",
    "provider",
    "kind",
    "usage",
    "duration",
    "ttl",
    "days",
    "scope",
    "scopes",
    "header",
    "class",
}
# First words that make a name a switch or a setting about secrets ("enableSecretRotation"), not a secret.
_FLAG_PREFIXES = {
    "enable",
    "enabled",
    "disable",
    "disabled",
    "is",
    "use",
    "allow",
    "require",
    "has",
    "rotate",
}
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_MAX_DEPTH = 64


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(name)]


# Names longer than this are classified without the cache: a cache entry keeps its key alive across requests,
# and 8,192 entries of hostile megabyte-long keys would be gigabytes.
_CACHED_NAME_CHARS = 128


def is_secret_like(name: str) -> bool:
    return _secret_like_cached(name) if len(name) <= _CACHED_NAME_CHARS else _secret_like(name)


@functools.lru_cache(maxsize=8192)
def _secret_like_cached(name: str) -> bool:
    return _secret_like(name)


def _secret_like(name: str) -> bool:
    """``adminPassword``, ``clientSecret``, ``kubeconfig``, ``connectionString``, ``key``, ``primaryKey`` yes;
    ``secretName``, ``keyVaultId``, ``publicKey``, ``keyData``, ``tokenEndpoint`` no."""
    words = _words(name)
    if not words or words[-1] in _REFERENCE_SUFFIXES or words[0] in _FLAG_PREFIXES:
        return False
    joined = "".join(words)
    if any(phrase in joined for phrase in _SECRET_PHRASES):
        return True
    if any(w in _SECRET_WORDS for w in words):
        return True
    # A bare "key" (or "...Key" other than public/ssh keys) holds key material; "keyData", "keySize" do not.
    return words[-1] in {"key", "keys"} and not {
        "public",
        "ssh",
        "partition",
        "row",
        "sort",
        "topology",
    } & set(words)


# A property path is a tuple of segments (dict keys, list indexes as text): building dotted strings per entry
# would copy every ancestor key into every descendant's path (quadratic in a hostile document's size).
Path = tuple[str, ...]
# Violation messages show at most this much of a path: the path's keys come from the client.
_SHOWN_PATH_CHARS = 200


def _split_secret_path(path: str) -> Path:
    return tuple(re.sub(r"\[(\d+)\]", r".\1", path).strip(".").split("."))


class _End:
    """Marks, inside the trie, that a secret path ends at this node."""


_END = _End()
# A walk's position in the trie: a node, COVERED once a secret path ended on the way, None once none can.
_COVERED = "covered"
Cursor = dict[Any, Any] | str | None


class _SecretPaths:
    """The resource's secretPaths as a trie of dotted segments, walked along with the properties: whether an
    entry is covered (its dotted path equals a secret path or lies inside one) costs one step per segment of
    its own key, instead of one string comparison per secret path per entry (quadratic: 8,000 keys x 8,000
    secretPaths blocked the service for 15-55 s)."""

    def __init__(self, paths: list[str]) -> None:
        self.root: dict[Any, Any] = {}
        for path in paths:
            node = self.root
            for part in _split_secret_path(path):
                node = node.setdefault(part, {})
            node[_END] = True

    @staticmethod
    def step(cursor: Cursor, key: str) -> Cursor:
        if not isinstance(cursor, dict):
            return cursor
        node: dict[Any, Any] | None = cursor
        for part in key.split("."):
            if node is None or _END in node:
                break
            node = node.get(part)
        if node is None:
            return None
        return _COVERED if _END in node else node

    def steps(self, cursor: Cursor, *keys: str) -> Cursor:
        for key in keys:
            cursor = self.step(cursor, key)
        return cursor


def _shown(path: Path) -> str:
    out = ""
    for part in path:
        out = f"{out}.{part}" if out else part
        if len(out) > _SHOWN_PATH_CHARS:
            return out[:_SHOWN_PATH_CHARS] + "..."
    return out


def _walk(
    value: Any, secrets: _SecretPaths, path: Path = (), cursor: Cursor = None, depth: int = 0
) -> Iterator[tuple[Path, str, Any, Cursor]]:
    """Yield (path, key, value, trie cursor) for every dict entry, depth-capped: hostile nesting cannot blow
    the stack."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = (*path, str(key))
            child_cursor = secrets.step(cursor, str(key))
            yield child_path, str(key), child, child_cursor
            yield from _walk(child, secrets, child_path, child_cursor, depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, secrets, (*path, str(index)), secrets.step(cursor, str(index)), depth + 1)


def _is_reference(part: str) -> bool:
    return _words(part)[-1:] in (["ref"], ["reference"])


def _inside_reference(path: Path) -> bool:
    # secretKeyRef: {name, key} and friends name a secret that lives elsewhere; that is the compliant pattern.
    return any(_is_reference(part) for part in path[:-1])


def _is_plaintext(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value != SECRET_MARKER


def _check_plaintext_secrets(resource: Resource, inventory: Inventory) -> list[str]:
    secret_paths = _SecretPaths(resource.secretPaths)
    problems = []
    # In Kubernetes objects a bare `key` always names something (a label, a selector term, a key inside a
    # Secret); secret material lives only in Secret data/stringData and env values, checked on their own.
    kubernetes = resource.type.startswith("kubernetes:")
    start: Cursor = secret_paths.root or None
    for path, key, value, cursor in _walk(resource.properties, secret_paths, (), start):
        if kubernetes and key == "key":
            continue
        if (
            is_secret_like(key)
            and _is_plaintext(value)
            and cursor != _COVERED
            and not _inside_reference(path)
        ):
            problems.append(
                f"'{_shown(path)}' looks like a secret and is a plaintext input (not marked secret)"
            )
        # Kubernetes env entries name the secret in "name" and carry it in "value": use valueFrom instead.
        if (
            key == "env"
            and isinstance(value, list)
            and resource.type.startswith("kubernetes:")
            and cursor != _COVERED
        ):
            for index, entry in enumerate(value):
                if (
                    isinstance(entry, dict)
                    and isinstance(entry.get("name"), str)
                    and is_secret_like(_env_to_camel(entry["name"]))
                    and _is_plaintext(entry.get("value"))
                    and secret_paths.steps(cursor, str(index), "value") != _COVERED
                ):
                    problems.append(
                        f"'{_shown((*path, str(index)))}' sets {entry['name'][:_SHOWN_PATH_CHARS]} "
                        "as a literal value; use valueFrom.secretKeyRef"
                    )
    if resource.type.startswith("kubernetes:") and resource.type.endswith(":Secret"):
        for field in ("data", "stringData"):
            entries = resource.properties.get(field)
            if isinstance(entries, dict):
                for key, value in entries.items():
                    covered = secret_paths.steps(secret_paths.root, field, key) == _COVERED
                    if _is_plaintext(value) and not covered:
                        problems.append(
                            f"Secret '{_shown((field, key))}' is a plaintext input (not marked secret)"
                        )
    return problems


def _env_to_camel(env_name: str) -> str:
    # "MUSE_API_TOKEN" -> "museApiToken", so environment variable names go through the same word rules.
    parts = [p for p in env_name.lower().split("_") if p]
    return parts[0] + "".join(p.capitalize() for p in parts[1:]) if parts else ""


# ------------------------------------------------------------------------------------------------------
# Role assignments

_PRINCIPAL_TYPES = {"ServicePrincipal", "User", "Group", "ForeignGroup", "Device"}


def _check_principal_type(resource: Resource, inventory: Inventory) -> list[str]:
    principal_type = resource.properties.get("principalType")
    if principal_type not in _PRINCIPAL_TYPES:
        return [f"principalType is {principal_type!r}; expected one of {sorted(_PRINCIPAL_TYPES)}"]
    return []


# ------------------------------------------------------------------------------------------------------
# Kubernetes workloads

WORKLOAD_TYPES = (
    K8S_DEPLOYMENT,
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
)


def _pod_spec(resource: Resource) -> dict[str, Any] | None:
    props = resource.properties
    if resource.type.endswith(":Pod"):
        spec = props.get("spec")
    elif resource.type.endswith(":CronJob"):
        spec = get_path(props, "spec.jobTemplate.spec.template.spec")
    else:
        spec = get_path(props, "spec.template.spec")
    return spec if isinstance(spec, dict) else None


def _containers(pod: dict[str, Any], *, init: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    fields = ("initContainers", "containers") if init else ("containers",)
    for field in fields:
        entries = pod.get(field)
        if isinstance(entries, list):
            for index, container in enumerate(entries):
                if isinstance(container, dict):
                    yield f"{field}[{index}] ({container.get('name', '?')})", container


def _check_probes(resource: Resource, inventory: Inventory) -> list[str]:
    pod = _pod_spec(resource)
    if pod is None:
        return ["no pod template (spec.template.spec) to check"]
    problems = []
    containers = list(_containers(pod, init=False))
    if not containers:
        return ["pod template has no containers"]
    for label, container in containers:
        for probe in ("readinessProbe", "livenessProbe"):
            if not isinstance(container.get(probe), dict):
                problems.append(f"{label} has no {probe}")
    return problems


def _check_max_unavailable(resource: Resource, inventory: Inventory) -> list[str]:
    strategy = get_path(resource.properties, "spec.strategy")
    strategy = strategy if isinstance(strategy, dict) else {}
    if strategy.get("type") == "Recreate":
        return ["spec.strategy.type is Recreate (every pod stops before new ones start)"]
    max_unavailable = get_path(strategy, "rollingUpdate.maxUnavailable")
    if max_unavailable not in (0, "0", "0%"):
        shown = "unset (Kubernetes default 25%)" if max_unavailable is None else repr(max_unavailable)
        return [f"spec.strategy.rollingUpdate.maxUnavailable is {shown}; expected 0"]
    return []


def _effective(container: dict[str, Any], pod: dict[str, Any], field: str) -> Any:
    # A container's securityContext overrides the pod's for the fields both define.
    value = get_path(container, f"securityContext.{field}")
    return get_path(pod, f"securityContext.{field}") if value is None else value


def _check_non_root(resource: Resource, inventory: Inventory) -> list[str]:
    pod = _pod_spec(resource)
    if pod is None:
        return ["no pod template to check"]
    problems = []
    for label, container in _containers(pod):
        if _effective(container, pod, "runAsNonRoot") is not True:
            problems.append(f"{label}: runAsNonRoot is not true (container or pod securityContext)")
        if _effective(container, pod, "runAsUser") == 0:
            problems.append(f"{label}: runAsUser is 0 (root)")
    return problems


def _check_read_only_root(resource: Resource, inventory: Inventory) -> list[str]:
    pod = _pod_spec(resource)
    if pod is None:
        return ["no pod template to check"]
    return [
        f"{label}: securityContext.readOnlyRootFilesystem is not true"
        for label, container in _containers(pod)
        if get_path(container, "securityContext.readOnlyRootFilesystem") is not True
    ]


def _check_privilege(resource: Resource, inventory: Inventory) -> list[str]:
    pod = _pod_spec(resource)
    if pod is None:
        return ["no pod template to check"]
    problems = []
    for label, container in _containers(pod):
        if get_path(container, "securityContext.privileged") is True:
            problems.append(f"{label}: securityContext.privileged is true")
        if get_path(container, "securityContext.allowPrivilegeEscalation") is not False:
            problems.append(f"{label}: securityContext.allowPrivilegeEscalation is not false")
    return problems


# ------------------------------------------------------------------------------------------------------
# The policy set

AZURE = ("azure-native:*",)

POLICIES: tuple[Policy, ...] = (
    Policy(
        id="MUSE-TAG-001",
        title="Azure resources carry the required tags env, owner and app=muse",
        severity=Severity.HIGH,
        rationale="Cost reports, ownership look-ups and Azure Policy assignments all key on these tags; an "
        "untagged resource has no owner to page and no budget to charge.",
        remediation="Add tags {env, owner, app: 'muse'} (the program's standard tag set) to the resource. "
        "Types that cannot be tagged are listed in UNTAGGABLE_AZURE_TYPES.",
        applies_to=AZURE,
        check=_check_required_tags,
    ),
    Policy(
        id="MUSE-TAG-002",
        title="Tag env equals the stack's environment",
        severity=Severity.MEDIUM,
        rationale="A dev resource tagged prod (or the reverse) defeats environment-scoped policies and cost "
        "reports, and usually means configuration leaked from another stack.",
        remediation="Derive the env tag from the stack configuration instead of hard-coding it.",
        applies_to=AZURE,
        check=_check_env_tag,
    ),
    Policy(
        id="MUSE-ACR-001",
        title="Container registry admin user is disabled",
        severity=Severity.HIGH,
        rationale="The admin user is a shared, long-lived username/password with push rights; pulls and "
        "pushes must use Entra ID identities (AcrPull for the kubelet identity, OIDC for CI).",
        remediation="Set adminUserEnabled: false on the Registry.",
        applies_to=(REGISTRY,),
        check=_check_acr_admin,
    ),
    Policy(
        id="MUSE-ACR-002",
        title="Container registry anonymous pull is disabled",
        severity=Severity.HIGH,
        rationale="Anonymous pull makes every image, and anything baked into it, public to the internet.",
        remediation="Set anonymousPullEnabled: false (or leave it unset: the ARM default is false).",
        applies_to=(REGISTRY,),
        check=_check_acr_anonymous,
    ),
    Policy(
        id="MUSE-KV-001",
        title="Key Vault uses Azure RBAC for data-plane authorization",
        severity=Severity.HIGH,
        rationale="Access policies are a second, vault-local permission system that escapes role-assignment "
        "reviews and PIM; RBAC keeps all access in one auditable place.",
        remediation="Set properties.enableRbacAuthorization: true and grant 'Key Vault Secrets User' roles.",
        applies_to=(KEY_VAULT,),
        check=_check_kv_rbac,
    ),
    Policy(
        id="MUSE-KV-002",
        title="Key Vault soft delete is enabled",
        severity=Severity.HIGH,
        rationale="Without soft delete a deleted secret (or vault) is gone at once, including the API token "
        "the service needs to start.",
        remediation="Set properties.enableSoftDelete: true (and softDeleteRetentionInDays as required).",
        applies_to=(KEY_VAULT,),
        check=_check_kv_soft_delete,
    ),
    Policy(
        id="MUSE-KV-003",
        title="Key Vault purge protection is enabled in the production tier",
        severity=Severity.HIGH,
        rationale="Purge protection stops anyone, including a compromised admin, from permanently deleting "
        "production secrets during the retention period. It cannot be turned off again, so the development "
        "tier is exempt.",
        remediation="Set properties.enablePurgeProtection: true for every production-tier stack.",
        applies_to=(KEY_VAULT,),
        check=_check_kv_purge_protection,
    ),
    Policy(
        id="MUSE-AKS-001",
        title="AKS uses a managed identity",
        severity=Severity.HIGH,
        rationale="Service-principal clusters depend on a client secret that expires and must be rotated; a "
        "managed identity has no secret at all.",
        remediation="Set identity.type: SystemAssigned (or UserAssigned) and drop servicePrincipalProfile.",
        applies_to=AKS_TYPES,
        check=_check_aks_identity,
    ),
    Policy(
        id="MUSE-AKS-002",
        title="AKS OIDC issuer is enabled",
        severity=Severity.HIGH,
        rationale="Workload identity federation needs the cluster's OIDC issuer; without it pods fall back "
        "to stored credentials.",
        remediation="Set oidcIssuerProfile.enabled: true.",
        applies_to=AKS_TYPES,
        check=_check_aks_oidc,
    ),
    Policy(
        id="MUSE-AKS-003",
        title="AKS workload identity is enabled",
        severity=Severity.HIGH,
        rationale="Muse reads its API token from Key Vault with a federated identity, not a secret in the "
        "pod.",
        remediation="Set securityProfile.workloadIdentity.enabled: true.",
        applies_to=AKS_TYPES,
        check=_check_aks_workload_identity,
    ),
    Policy(
        id="MUSE-AKS-004",
        title="AKS enforces a network policy engine",
        severity=Severity.MEDIUM,
        rationale="Without a network policy engine, NetworkPolicy objects are silently ignored and every pod "
        "can reach every other pod.",
        remediation="Set networkProfile.networkPolicy to azure, calico or cilium.",
        applies_to=AKS_TYPES,
        check=_check_aks_network_policy,
    ),
    Policy(
        id="MUSE-AKS-005",
        title="AKS local accounts are disabled",
        severity=Severity.HIGH,
        rationale="The local cluster-admin certificate bypasses Entra ID, cannot be revoked per user and is "
        "not audited by identity.",
        remediation="Set disableLocalAccounts: true (requires Entra ID integration, see MUSE-AKS-006).",
        applies_to=AKS_TYPES,
        check=_check_aks_local_accounts,
    ),
    Policy(
        id="MUSE-AKS-006",
        title="AKS uses Entra ID with Azure RBAC for Kubernetes authorization",
        severity=Severity.MEDIUM,
        rationale="Kubernetes access is then granted with Azure role assignments, reviewed like every other "
        "permission, instead of in-cluster RoleBindings nobody audits.",
        remediation="Set aadProfile: {managed: true, enableAzureRBAC: true}.",
        applies_to=AKS_TYPES,
        check=_check_aks_azure_rbac,
    ),
    Policy(
        id="MUSE-AKS-007",
        title="AKS application routing runs no NGINX controller",
        severity=Severity.HIGH,
        rationale="The application routing add-on's NGINX (Ingress API) leaves Microsoft's support in "
        "November 2026; ingress goes through its Gateway API implementation instead.",
        remediation="Set ingressProfile.webAppRouting.nginx.defaultIngressControllerType: None and serve "
        "through a Gateway of class approuting-istio.",
        applies_to=AKS_TYPES,
        check=_check_aks_no_retired_nginx,
    ),
    Policy(
        id="MUSE-NET-001",
        title="No Ingress through the retired application routing NGINX",
        severity=Severity.HIGH,
        rationale="Ingress class webapprouting.kubernetes.azure.com is the add-on's NGINX, unsupported after "
        "November 2026.",
        remediation="Replace the Ingress with a Gateway (class approuting-istio) and an HTTPRoute.",
        applies_to=("kubernetes:networking.k8s.io/v1:Ingress",),
        check=_check_ingress_class,
    ),
    Policy(
        id="MUSE-NET-002",
        title="Production-tier Gateways serve HTTPS, and plain HTTP only redirects",
        severity=Severity.HIGH,
        rationale="The Muse API takes a bearer token: over plain HTTP it crosses the internet in clear text.",
        remediation="Give the Gateway an HTTPS listener with TLS mode Terminate (the Key Vault certificate) "
        "and restrict HTTP listeners to routes of the Gateway's namespace (the redirect to HTTPS).",
        applies_to=(K8S_GATEWAY,),
        check=_check_gateway_https,
    ),
    Policy(
        id="MUSE-PROT-001",
        title="Production-tier Key Vault, registry and logs are protected from deletion",
        severity=Severity.HIGH,
        rationale="Their content (secrets, every image prod ran, the logs) cannot be recreated; a destroy or "
        "an accidental replacement must stop instead of deleting them.",
        remediation="Set muse:protectStatefulResources (Pulumi protect).",
        applies_to=STATEFUL_TYPES,
        check=_check_protected,
    ),
    Policy(
        id="MUSE-SEC-001",
        title="No plaintext secrets in resource inputs",
        severity=Severity.CRITICAL,
        rationale="A plaintext input is stored unencrypted in the Pulumi state and shown in previews and CI "
        "logs; secret-like inputs must be Pulumi secrets (or not be inputs at all).",
        remediation="Wrap the value with pulumi.Output.secret() / config.require_secret(), reference Key "
        "Vault, or mount it with valueFrom.secretKeyRef in Kubernetes.",
        applies_to=("*",),
        check=_check_plaintext_secrets,
    ),
    Policy(
        id="MUSE-RBAC-001",
        title="Role assignments set principalType",
        severity=Severity.MEDIUM,
        rationale="Without principalType, ARM looks the principal up in Entra ID, which fails with "
        "PrincipalNotFound for identities created seconds earlier (replication delay).",
        remediation="Set principalType (ServicePrincipal for managed identities).",
        applies_to=(ROLE_ASSIGNMENT,),
        check=_check_principal_type,
    ),
    Policy(
        id="MUSE-K8S-001",
        title="Deployment containers have readiness and liveness probes",
        severity=Severity.HIGH,
        rationale="Without a readiness probe, traffic reaches pods before they can serve and during shutdown;"
        " without a liveness probe a hung process is never restarted.",
        remediation="Add readinessProbe (GET /readyz) and livenessProbe (GET /healthz) to every container.",
        applies_to=(K8S_DEPLOYMENT,),
        check=_check_probes,
    ),
    Policy(
        id="MUSE-K8S-002",
        title="Deployment rolls out with maxUnavailable 0",
        severity=Severity.HIGH,
        rationale="Zero-downtime rollouts: a new pod must be ready before an old one is removed.",
        remediation="Set spec.strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, "
        "maxSurge: 1}}.",
        applies_to=(K8S_DEPLOYMENT,),
        check=_check_max_unavailable,
    ),
    Policy(
        id="MUSE-K8S-003",
        title="Containers run as non-root",
        severity=Severity.HIGH,
        rationale="A root process that escapes its container is root on the node.",
        remediation="Set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser.",
        applies_to=WORKLOAD_TYPES,
        check=_check_non_root,
    ),
    Policy(
        id="MUSE-K8S-004",
        title="Containers have a read-only root filesystem",
        severity=Severity.MEDIUM,
        rationale="A writable root filesystem lets an attacker drop tools and persist changes in the "
        "container.",
        remediation="Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where writes are "
        "needed (e.g. /tmp).",
        applies_to=WORKLOAD_TYPES,
        check=_check_read_only_root,
    ),
    Policy(
        id="MUSE-K8S-005",
        title="Containers cannot escalate privileges",
        severity=Severity.MEDIUM,
        rationale="setuid binaries and privileged mode undo non-root; the restricted Pod Security Standard "
        "requires allowPrivilegeEscalation: false.",
        remediation="Set securityContext.allowPrivilegeEscalation: false and never privileged: true.",
        applies_to=WORKLOAD_TYPES,
        check=_check_privilege,
    ),
)

POLICIES_BY_ID = {p.id: p for p in POLICIES}


class EvaluationTooLarge(Exception):
    """The evaluation would report more than the caller's limit; raised as soon as it is passed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# Per violation in the rendered JSON besides its strings: keys, quotes, severity (measured: ~170 bytes).
_VIOLATION_OVERHEAD_CHARS = 200


def evaluate(
    inventory: Inventory,
    fail_on: Severity = Severity.HIGH,
    policies: tuple[Policy, ...] = POLICIES,
    *,
    max_violations: int | None = None,
    max_output_chars: int | None = None,
) -> Evaluation:
    """Evaluate every resource. With the limits, stop with :class:`EvaluationTooLarge` as soon as the
    violations or their rendered size (estimated from their strings) pass them, before rendering anything."""
    violations: list[Violation] = []
    output_chars = 0
    failures = 0
    for resource in inventory.resources:
        for policy in policies:
            if not policy.applies(resource):
                continue
            try:
                messages = policy.check(resource, inventory)
            except Exception:
                # Fail closed: a resource the policy cannot understand is reported, not waved through. One
                # stack per evaluation: a crafted inventory could otherwise write one per resource.
                if failures == 0:
                    logger.exception("policy %s failed on %s", policy.id, resource.urn[:200])
                failures += 1
                messages = ["could not be evaluated (unexpected property shape)"]
            for message in messages:
                violations.append(
                    Violation(
                        policyId=policy.id,
                        title=policy.title,
                        severity=policy.severity,
                        urn=resource.urn,
                        resourceType=resource.type,
                        resourceName=resource.name,
                        message=message,
                        remediation=policy.remediation,
                    )
                )
                output_chars += (
                    len(resource.urn)
                    + len(resource.type)
                    + len(resource.name)
                    + len(message)
                    + len(policy.title)
                    + len(policy.remediation)
                    + _VIOLATION_OVERHEAD_CHARS
                )
                if max_violations is not None and len(violations) > max_violations:
                    raise EvaluationTooLarge(f"the evaluation reports more than {max_violations} violations")
                if max_output_chars is not None and output_chars > max_output_chars:
                    raise EvaluationTooLarge(f"the evaluation's report exceeds {max_output_chars} bytes")
    if failures > 1:
        logger.error("%d policy checks could not evaluate their resource", failures)
    violations.sort(key=lambda v: (-v.severity.rank, v.policyId, v.urn))
    return Evaluation(
        project=inventory.project,
        stack=inventory.stack,
        environment=inventory.environment,
        resourceCount=len(inventory.resources),
        policyCount=len(policies),
        failOn=fail_on,
        violations=violations,
    )
