"""What each tool Muse's CI runs asks Azure for: Azure RBAC actions per Pulumi command, resource, CLI command.

Every entry names where the behaviour is written down (a doc, or a file of the tool's public source). An
operation is `required` unless the tool is written to carry on without it (`optional`: tried, and a 403 is
tolerated, e.g. the Kubernetes provider's server-side dry run in a preview).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from muse.resource_types import (
    CLUSTER_PROVIDER_NAMESPACE,
    CLUSTER_RESOURCE_TYPE,
    GENERIC_RESOURCE,
    TYPED_CLUSTER,
)
from offline.captured import StackPlan
from offline.engine import PlannedResource
from rbac import abac
from rbac.arm import (
    ASSIGN_IDENTITY,
    ASSIGNED_PRINCIPAL,
    ASSIGNED_PRINCIPAL_TYPE,
    ASSIGNED_ROLE,
    CUSTOM_RESOURCE_GROUP,
    CUSTOM_RESOURCE_KIND,
    KEY_DECRYPT,
    MANAGED_CLUSTERS,
    MONITOR_METRICS_READ,
    RESOURCE_GROUPS_READ,
    ROLE_ASSIGNMENTS,
    STORAGE_BLOBS,
)
from rbac.policies import FEDERATED_CREDENTIAL_TYPE, ISSUER_ALIAS

# --- sources (cited by the operations below) ------------------------------------------------------------
DIY_BACKEND = (
    "pulumi/pulumi pkg/backend/diy/backend.go (Preview: no Lock, no snapshot persister, no history; "
    "Update/Refresh/Destroy: Lock, checkpoint, history, backup) and lock.go"
)
CLOUD_SECRETS = (
    "pulumi/pulumi pkg/secrets/cloud/manager.go newCloudSecretsManager: one keeper.Decrypt of the data key "
    "when a checkpoint or the stack config is loaded; values are encrypted locally"
)
STACK_OUTPUT = (
    "pulumi/pulumi pkg/cmd/pulumi/stack/stack_output.go: secrets.BlindingProvider unless --show-secrets"
)
STACK_EXPORT = (
    "pulumi/pulumi pkg/cmd/pulumi/stack/stack_export.go: the checkpoint as stored unless --show-secrets"
)
CONFIG_SET = "pulumi/pulumi pkg/cmd/pulumi/config/config.go: RequireStack, GetEncrypter only for --secret"
ARM_OPERATIONS = (
    "learn.microsoft.com/azure/role-based-access-control/role-definitions, Actions format: read = GET, "
    "write = PUT/PATCH, delete = DELETE, action = POST"
)
K8S_AZURE_RBAC = (
    "learn.microsoft.com/azure/aks/manage-azure-rbac (MicrosoftDocs/azure-aks-docs "
    f"articles/aks/entra-id-authorization.md): {MANAGED_CLUSTERS}/<group>/<resource>/"
    "<verb>; custom resources: managedClusters/customresources/<verb> with @Request "
    "customResources:group/kind"
)
K8S_PROVIDER = (
    "pulumi/pulumi-kubernetes provider/pkg/provider/provider.go (Create/Update in a preview: server-side "
    "dry run, a Forbidden answer falls back to a client-side preview; Read: GET) and provider/pkg/await "
    "(deployment.go, service.go, ingress.go: the kinds each await watches)"
)
ACR_CLI = (
    "Azure/azure-cli acr/_docker_utils.py _get_credentials (ARM lookup of the registry, falling back to "
    "<name>.azurecr.io) and acr/import.py (--registry <resource id> is passed to ARM as is)"
)
ACR_ROLES = (
    "learn.microsoft.com/azure/container-registry/container-registry-roles (push: push/write; pull: "
    "pull/read) and container-registry-import-images (Reader on the source, importImage on the target)"
)
AKS_CREDENTIALS = "az aks get-credentials: POST listClusterUserCredential (Azure/azure-cli acs/custom.py)"
AKS_IDENTITIES = (
    "learn.microsoft.com/azure/aks/use-managed-identity: the creator needs assign/action on each "
    "user-assigned identity; the control-plane identity needs Managed Identity Operator on the kubelet "
    "identity"
)
MONITOR_QUERY_ACTION = MONITOR_METRICS_READ
MONITOR_QUERY = (
    "learn.microsoft.com/azure/azure-monitor/metrics/prometheus-api-promql (an Entra token for "
    "https://prometheus.monitor.azure.com, then POST <query endpoint>/api/v1/query); "
    "MicrosoftDocs/azure-docs articles/azure-monitor/containers/integrate-keda.md@2b6a9fac: without the "
    "data action the query API answers 403 naming it"
)
KEY_VAULT_CSI = (
    "learn.microsoft.com/azure/aks/csi-secrets-store-identity-access: workload identity, secrets/get"
)

# Kubernetes API groups that are not custom resources (the built-in groups AKS Azure RBAC names directly).
BUILTIN_GROUPS = {
    "core",
    "apps",
    "autoscaling",
    "batch",
    "policy",
    "extensions",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "metrics.k8s.io",
}
CLUSTER = MANAGED_CLUSTERS
# The application routing operator reads a Gateway listener's Key Vault certificate through a
# SecretProviderClass with `objectType: secret`, as the listener's `tls-cert-service-account` workload
# identity.
APP_ROUTING_TLS = (
    "Azure/aks-app-routing-operator pkg/controller/keyvault/spc/reconcile.go (objectType secret); "
    "azure-aks-docs articles/aks/app-routing-gateway-api-dns-tls.md"
)


def is_cluster(resource: PlannedResource) -> bool:
    """The AKS cluster, typed or as the generic resource components/kubernetes_cluster.py declares."""
    return resource.type == TYPED_CLUSTER or (
        resource.type == GENERIC_RESOURCE
        and resource.get("resourceProviderNamespace") == CLUSTER_PROVIDER_NAMESPACE
        and resource.get("resourceType") == CLUSTER_RESOURCE_TYPE
    )


def cluster_property(cluster: PlannedResource, path: str) -> Any:
    """A property of the cluster's ARM body: under `properties` for the generic resource."""
    return cluster.get(f"properties.{path}" if cluster.type == GENERIC_RESOURCE else path)


@dataclass(frozen=True)
class Need:
    """One authorization a step needs: `action` (a data action when `data`) on `scope` (a resource id)."""

    action: str
    data: bool
    scope: str
    why: str
    source: str
    attributes: tuple[tuple[str, Any], ...] = ()
    optional: bool = False
    # What an Azure Policy rule sees of a create/update request: `type` and the aliases Muse's rules read
    # (verify/access/policy.py). Empty for anything that is not a resource write.
    fields: tuple[tuple[str, Any], ...] = ()

    @property
    def attribute_map(self) -> dict[str, Any]:
        return dict(self.attributes)

    @property
    def field_map(self) -> dict[str, Any]:
        return dict(self.fields)


@dataclass(frozen=True)
class StackFacts:
    """What the operations of one stack need to know: its plan, resource ids, state and cluster."""

    stack: str
    plan: StackPlan
    group_id: str
    state_container: str
    state_key: str
    registry_id: str
    cluster_id: str
    vault_id: str
    extra: dict[str, Any] = field(default_factory=dict)
    workspace_id: str = ""  # the Azure Monitor workspace (managed Prometheus) the canary gate queries

    def resource_id(self, resource: PlannedResource) -> str:
        return str(self.plan.outputs_of(resource).get("id", ""))


def arm_type(resource_id: str) -> str:
    """`Microsoft.X/type[/child]` of an ARM resource id (the last provider segment's types)."""
    parts = [p for p in resource_id.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return "Microsoft.Resources/subscriptions/resourceGroups"
    start = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[start + 1 :]
    return "/".join([rest[0], *rest[1::2]])


def kubernetes_kind(resource: PlannedResource) -> tuple[str, str, str] | None:
    """(group, plural resource, kind) of a `kubernetes:<group>/<version>:<Kind>` resource, else None.

    The plural is Kubernetes' own guess from the kind (k8s.io/apimachinery pkg/api/meta/restmapper.go
    UnsafeGuessKindToResource: lower case; `s` -> `ses`, consonant + `y` -> `ies`, else `s`), which is how
    every kind Muse deploys, the SecretProviderClass CRD included, is named in the API."""
    match = re.fullmatch(r"kubernetes:([^/:]+)/[^:]+:(\w+)", resource.type)
    if not match:
        return None
    group, kind = match.groups()
    lower = kind.lower()
    if lower.endswith("s"):
        plural = lower + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        plural = lower[:-1] + "ies"
    else:
        plural = lower + "s"
    return group, plural, kind


def kubernetes_need(
    facts: StackFacts, group: str, plural: str, verb: str, why: str, optional: bool = False
) -> Need:
    if group in BUILTIN_GROUPS:
        path = plural if group == "core" else f"{group}/{plural}"
        return Need(
            f"{CLUSTER}/{path}/{verb}", True, facts.cluster_id, why, K8S_AZURE_RBAC, optional=optional
        )
    attributes = (
        (abac.request(CUSTOM_RESOURCE_GROUP), group),
        (abac.request(CUSTOM_RESOURCE_KIND), plural),
    )
    return Need(
        f"{CLUSTER}/customresources/{verb}", True, facts.cluster_id, why, K8S_AZURE_RBAC, attributes, optional
    )


def per_group_need(need: Need) -> Need:
    """A custom resource need as AKS checks it when it does not take the `customresources` path: the group's
    own data action, `managedClusters/<group>/<plural>/<verb>`, without the customResources attributes. Guard
    takes the customresources path only when its custom resource check is on and the group is absent from
    AKS's operations map (kubeguard/guard authz/providers/azure/rbac/checkaccessreqhelper.go getDataActions,
    commit ccdd833f833b03a0c90f0cb7fc7095f93b0a9b53). Any other need is returned as it is."""
    if not need.action.startswith(f"{CLUSTER}/customresources/"):
        return need
    attributes = dict(need.attributes)
    group = attributes[abac.request(CUSTOM_RESOURCE_GROUP)]
    plural = attributes[abac.request(CUSTOM_RESOURCE_KIND)]
    verb = need.action.rsplit("/", 1)[1]
    return replace(need, action=f"{CLUSTER}/{group}/{plural}/{verb}", attributes=())


# The kinds each pulumi-kubernetes await watches while it waits for an object (provider/pkg/await).
AWAIT_READS: dict[str, tuple[tuple[str, str], ...]] = {
    "Deployment": (
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("core", "pods"),
        ("core", "persistentvolumeclaims"),
    ),
    "Service": (("core", "services"), ("core", "endpoints")),
    "Ingress": (("networking.k8s.io", "ingresses"), ("core", "endpoints"), ("core", "services")),
}


def state_needs(facts: StackFacts, *, write: bool, decrypt: bool, why: str) -> Iterator[Need]:
    blobs = STORAGE_BLOBS
    yield Need(f"{blobs}/read", True, facts.state_container, f"{why}: read the checkpoint", DIY_BACKEND)
    if write:
        yield Need(
            f"{blobs}/write", True, facts.state_container, f"{why}: lock, checkpoint, history", DIY_BACKEND
        )
        yield Need(f"{blobs}/delete", True, facts.state_container, f"{why}: release the lock", DIY_BACKEND)
    if decrypt:
        yield Need(
            KEY_DECRYPT,
            True,
            facts.state_key,
            f"{why}: the data key",
            CLOUD_SECRETS,
        )


def pulumi_needs(facts: StackFacts, command: str, refresh: bool = False) -> Iterator[Need]:
    """What `pulumi <command>` (preview, up, refresh, destroy) of the stack asks Azure for."""
    label = f"pulumi {command}{' --refresh' if refresh and command == 'preview' else ''} ({facts.stack})"
    writes = command in ("up", "refresh", "destroy")
    yield from state_needs(facts, write=writes, decrypt=True, why=label)
    # The program's invokes run in every command (__main__.py, components/kubernetes_cluster.py).
    yield Need(
        RESOURCE_GROUPS_READ,
        False,
        facts.group_id,
        f"{label}: get_resource_group",
        ARM_OPERATIONS,
    )
    if facts.cluster_id:
        yield Need(
            f"{CLUSTER}/listClusterUserCredential/action",
            False,
            facts.cluster_id,
            f"{label}: list_managed_cluster_user_credentials (the provider's kubeconfig)",
            ARM_OPERATIONS,
        )
    reads = refresh or command in ("up", "refresh", "destroy")
    for resource in facts.plan.plan.resources:
        if not resource.custom:
            continue
        kube = kubernetes_kind(resource)
        what = f"{label}: {resource.type.split(':')[-1]} '{resource.name}'"
        if kube is not None:
            group, plural, kind = kube
            yield kubernetes_need(facts, group, plural, "read", f"{what} (read)")
            if command == "preview":
                yield kubernetes_need(
                    facts, group, plural, "write", f"{what} (server-side dry run)", optional=True
                )
                continue
            if command == "up":
                yield kubernetes_need(facts, group, plural, "write", f"{what} (create/update)")
                yield kubernetes_need(facts, group, plural, "delete", f"{what} (replace/delete)")
                for await_group, await_plural in AWAIT_READS.get(kind, ()):
                    yield kubernetes_need(facts, await_group, await_plural, "read", f"{what} (await)")
            elif kind == "Deployment":
                for await_group, await_plural in AWAIT_READS["Deployment"][1:]:
                    yield kubernetes_need(
                        facts, await_group, await_plural, "read", f"{what} (read: lists)", optional=True
                    )
            continue
        if not resource.type.startswith("azure-native:"):
            continue  # random, providers: no Azure call
        resource_id = facts.resource_id(resource)
        kind = arm_type(resource_id)
        if reads:
            yield Need(f"{kind}/read", False, resource_id, f"{what} (read)", ARM_OPERATIONS)
        if command != "up":
            continue
        attributes: tuple[tuple[str, Any], ...] = ()
        delete_attributes: tuple[tuple[str, Any], ...] = ()
        if kind == ROLE_ASSIGNMENTS:
            definition = str(resource.get("roleDefinitionId")).rsplit("/", 1)[-1]
            attributes = (
                (abac.request(ASSIGNED_ROLE), definition),
                (abac.request(ASSIGNED_PRINCIPAL_TYPE), str(resource.get("principalType"))),
                (abac.request(ASSIGNED_PRINCIPAL), str(resource.get("principalId"))),
            )
            # A delete is judged on the existing assignment: its role, principal and principal type
            # (conditions-authorization-actions-attributes.md, "Delete a role assignment").
            delete_attributes = tuple(
                (name.replace("@Request[", "@Resource["), value) for name, value in attributes
            )
        yield Need(
            f"{kind}/write",
            False,
            resource_id,
            f"{what} (create/update)",
            ARM_OPERATIONS,
            attributes,
            fields=policy_fields(kind, resource),
        )
        yield Need(
            f"{kind}/delete",
            False,
            resource_id,
            f"{what} (replace/delete)",
            ARM_OPERATIONS,
            delete_attributes,
        )
        if kind == CLUSTER:
            for identity in _cluster_identities(resource):
                yield Need(
                    ASSIGN_IDENTITY,
                    False,
                    identity,
                    f"{what} (uses the identity)",
                    AKS_IDENTITIES,
                )


def policy_fields(kind: str, resource: PlannedResource) -> tuple[tuple[str, Any], ...]:
    """The request fields of a resource write that Muse's policy rules read: the type, and a federated
    credential's issuer (alias `<type>/issuer`, Azure/azure-policy's built-in FIC definitions)."""
    fields: list[tuple[str, Any]] = [("type", kind)]
    if kind == FEDERATED_CREDENTIAL_TYPE:
        fields.append((ISSUER_ALIAS, str(resource.get("issuer") or "")))
    return tuple(fields)


def _cluster_identities(cluster: PlannedResource) -> list[str]:
    found = [str(i) for i in cluster.get("identity.userAssignedIdentities", []) or []]
    kubelet = cluster_property(cluster, "identityProfile.kubeletidentity.resourceId")
    return [*found, str(kubelet)] if kubelet else found


# --- commands in run: blocks and the scripts they call ------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command line the catalogue recognises; `needs(facts, text)` says what it asks for."""

    key: str
    pattern: re.Pattern[str]
    kind: str  # "state-read", "pulumi", "acr-login", "docker-push", "acr-show", "acr-import", "aks-creds",
    # "kubectl-read", "kubectl-job", "monitor-query", "none"
    detail: str = ""


def _words(*words: str) -> re.Pattern[str]:
    # The words in order, separated by blanks or by the quotes, commas and parenthesis of a Python argument
    # list (`["pulumi", "stack", "output"]`, `pulumi("config", "set", ...)`).
    return re.compile(r"\b" + r"""["',\s(]+""".join(re.escape(w) for w in words) + r"\b")


COMMANDS: tuple[Command, ...] = (
    Command("pulumi stack output", _words("pulumi", "stack", "output"), "state-read", STACK_OUTPUT),
    Command("pulumi stack export", _words("pulumi", "stack", "export"), "state-read", STACK_EXPORT),
    Command("pulumi stack history", _words("pulumi", "stack", "history"), "state-read", DIY_BACKEND),
    Command("pulumi stack select", _words("pulumi", "stack", "select"), "state-read", DIY_BACKEND),
    Command("pulumi config set", _words("pulumi", "config", "set"), "state-read", CONFIG_SET),
    Command("pulumi preview", _words("pulumi", "preview"), "pulumi", "preview"),
    Command("pulumi up", _words("pulumi", "up"), "pulumi", "up"),
    Command("pulumi refresh", _words("pulumi", "refresh"), "pulumi", "refresh"),
    Command("pulumi destroy", _words("pulumi", "destroy"), "pulumi", "destroy"),
    Command("az acr login", _words("az", "acr", "login"), "acr-login", ACR_CLI),
    Command("docker push", _words("docker", "push"), "docker-push", ACR_ROLES),
    Command("az acr repository show", _words("az", "acr", "repository", "show"), "acr-show", ACR_CLI),
    Command("az acr import", _words("az", "acr", "import"), "acr-import", ACR_CLI),
    Command("az aks get-credentials", _words("az", "aks", "get-credentials"), "aks-creds", AKS_CREDENTIALS),
    Command("kubectl rollout status", _words("kubectl", "rollout", "status"), "kubectl-read", "deployments"),
    Command("kubectl get deployment", _words("kubectl", "get", "deployment"), "kubectl-read", "deployments"),
    Command("kubectl get pods", _words("kubectl", "get", "pods"), "kubectl-read", "pods"),
    # deploy.py's kubectl prefix for the release's end-to-end check and the canary's load
    # (scripts/ci/check_job.py runs `create -f -` of the Job, `get job/<name>`, `logs job/<name>` and
    # `delete job -l muse.load=canary` with it).
    Command("kubectl --kubeconfig", _words("kubectl", "--kubeconfig"), "kubectl-job", "jobs"),
    # The canary gate's token (scripts/ci/canary_gate.py az_token): it only asks for a token; what it is for,
    # the PromQL query of the environment's workspace, is the data action.
    Command(
        "az account get-access-token",
        _words("az", "account", "get-access-token"),
        "monitor-query",
        MONITOR_QUERY,
    ),
    # No Azure authorization: local tools, the sign-in itself, or Bicep compilation.
    Command("az login", _words("az", "login"), "none"),
    Command("az account set", _words("az", "account", "set"), "none"),
    Command("az bicep", _words("az", "bicep"), "none"),
    Command("docker build/tag/inspect", re.compile(r"\bdocker\s+(build|buildx|tag|image)\b"), "none"),
    Command("kubelogin", re.compile(r"\bkubelogin\b"), "none"),
    Command("pulumi version/login", re.compile(r"\bpulumi\s+(version|login|about|whoami)\b"), "none"),
    # Downloads a provider plugin from its public release (scripts/ci/install_pulumi.py, checksum-checked).
    Command("pulumi plugin install", _words("pulumi", "plugin", "install"), "none"),
)
# A line that runs one of these tools must be recognised by COMMANDS (or be the helper that only forwards
# arguments, e.g. `["pulumi", *args]`), so a new command cannot go unmodelled. In shell the tool is a command
# word; in Python the first element of an argument list (prose in strings, e.g. argparse help, is not a run).
TOOL = re.compile(r"""(^|[;&|(`]|\$\(|\s)(az|pulumi|kubectl|docker)(?=\s|$)""")
PYTHON_TOOL = re.compile(r"""[\[(]\s*["'](az|pulumi|kubectl|docker)["']\s*,""")
FORWARDING_HELPER = re.compile(r"""["']pulumi["']\s*,\s*\*""")


def code_lines(text: str) -> Iterator[str]:
    """Lines that run something: continuation lines joined, no comments, no `echo`/`print` of prose, no Python
    docstrings (usage examples in them are not commands)."""
    text = re.sub(r'"""(?:.|\n)*?"""', "", text)
    text = re.sub(r"\\\n\s*", " ", text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "echo ", "print(", '"""', "- ", "* ")):
            continue
        yield line


@functools.cache  # built once per command: recognise() runs it for every command on every code line
def _python_form(words: tuple[str, ...]) -> re.Pattern[str]:
    # In Python a command is an argument list (`["pulumi", "stack", "output", ...]`), a helper called with
    # the rest (`pulumi("config", "set", ...)`), or a string that is exactly the command
    # (`run("pulumi up", ...)`); prose that mentions a command in a string is none of these.
    first, rest = re.escape(words[0]), [re.escape(w) for w in words[1:]]
    quoted_rest = "".join(rf"""\s*,\s*["']{w}["']""" for w in rest)
    helper = rf"""\b{first}\(\s*["']{rest[0]}["']""" + "".join(rf"""\s*,\s*["']{w}["']""" for w in rest[1:])
    # The exact command string only as a call's argument: the same words in an expression (a title, a
    # message: `... else "pulumi preview"`) run nothing.
    label = rf"""\w\(\s*["']{" ".join(re.escape(w) for w in words)}["']"""
    return re.compile(rf"""["']{first}["']{quoted_rest}|{helper}|{label}""")


def recognise(line: str, python: bool = False) -> list[Command]:
    if not python:
        return [command for command in COMMANDS if command.pattern.search(line)]
    found = []
    for command in COMMANDS:
        words = tuple(command.key.split("/")[0].split())
        if len(words) > 1 and _python_form(words).search(line):
            found.append(command)
    return found


def unrecognised(line: str, python: bool = False) -> bool:
    runs = (PYTHON_TOOL if python else TOOL).search(line)
    return bool(runs) and not recognise(line, python) and not FORWARDING_HELPER.search(line)


def python_refreshing_previews(text: str) -> set[str]:
    """The source lines (stripped) of the `["pulumi", "preview", ...]` lists in a Python script whose command
    carries `--refresh`: in the list itself, or added to the same name in the same function (`name += [...]`,
    `name.extend([...])`, `name.append(...)`), under a condition or not (a flag that may be added counts).

    Parsed with the language's own parser (`ast`), so only the strings of that command's own list and of the
    additions to it count, not a neighbouring string such as another command's flag or a help text."""
    return set(_refreshing_previews(text))


@functools.lru_cache(maxsize=256)  # each script's text is parsed once, however many jobs run it
def _refreshing_previews(text: str) -> frozenset[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return frozenset()
    lines = text.splitlines()

    def strings(node: ast.AST | None) -> list[str]:
        if isinstance(node, ast.List | ast.Tuple):
            return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        return []

    def own_nodes(scope: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
        # A scope's nodes without those of the functions defined in it (each is a scope of its own).
        pending: list[ast.AST] = list(scope.body)
        while pending:
            node = pending.pop()
            yield node
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                pending.extend(ast.iter_child_nodes(node))

    def source_lines(node: ast.AST) -> set[str]:
        # Every line the list spans: the line-based recogniser sees the one holding "pulumi", "preview".
        first, last = getattr(node, "lineno", 1), getattr(node, "end_lineno", None)
        return {line.strip() for line in lines[first - 1 : last or first]}

    def is_preview(node: ast.AST | None) -> bool:
        return strings(node)[:2] == ["pulumi", "preview"] and isinstance(node, ast.List | ast.Tuple)

    found: set[str] = set()
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))]
    for scope in scopes:
        body = list(own_nodes(scope))
        named: dict[str, list[ast.AST]] = {}
        for node in body:
            if isinstance(node, ast.Assign) and is_preview(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        named.setdefault(target.id, []).append(node.value)
        added: dict[str, list[str]] = {}
        for node in body:
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                added.setdefault(node.target.id, []).extend(strings(node.value))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.attr in ("extend", "append")
            ):
                for arg in node.args:
                    added.setdefault(node.func.value.id, []).extend(strings(arg))
        for name, literals in named.items():
            for literal in literals:
                if "--refresh" in strings(literal) + added.get(name, []):
                    found |= source_lines(literal)
        for node in body:
            if is_preview(node) and "--refresh" in strings(node):
                found |= source_lines(node)
    return frozenset(found)
