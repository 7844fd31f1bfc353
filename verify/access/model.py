"""The permission model: every operation each identity performs, the grant that allows it, and what is left.

Built from the same sources as everything else (the bootstrap and stack plans, the workflows, their
commands and scripts, what Azure itself runs), never from a hand-written list of jobs. `evaluate()` decides
each operation against the identity's assignments (verify/access/rbac.py), lists the grants no operation
needs, and checks the prohibitions (no one but prod's identities reads prod's secrets or state, no one but
prod's deployer writes it, previews write nothing). Why: docs/architecture/code.md#the-permission-model."""

from __future__ import annotations

import itertools
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from components.muse_workload import manifests
from components.muse_workload.manifests import (
    TLS_CERT_KEYVAULT_URI_OPTION,
    TLS_CERT_SERVICE_ACCOUNT_OPTION,
)
from muse.resource_types import (
    ENTRA_APPLICATION,
    ENTRA_APPLICATION_FEDERATED_CREDENTIAL,
    ENTRA_SERVICE_PRINCIPAL,
    FEDERATED_IDENTITY_CREDENTIAL,
    K8S_GATEWAY,
    KEY_VAULT,
    KEY_VAULT_SECRET,
    LOG_ANALYTICS_WORKSPACE,
    MONITOR_WORKSPACE,
    POLICY_ASSIGNMENT,
    REGISTRY,
    ROLE_ASSIGNMENT,
    ROLE_DEFINITION,
    USER_ASSIGNED_IDENTITY,
    WORKBOOK,
)
from offline.captured import CapturingMocks, StackPlan, bootstrap_plan, committed_plan, plan_stack
from offline.engine import OfflinePlan, RecordingMonitor, run_stack
from offline.mocks import SUBSCRIPTION_ID
from rbac import abac
from rbac.arm import (
    ASSIGN_IDENTITY,
    ASSIGNED_PRINCIPAL,
    ASSIGNED_PRINCIPAL_TYPE,
    ASSIGNED_ROLE,
    GET_SECRET,
    KEY_DECRYPT,
    KEY_VAULTS,
    LIST_CLUSTER_USER_CREDENTIAL,
    REGISTRIES,
    ROLE_ASSIGNMENTS,
    ROLE_ASSIGNMENTS_DELETE,
    ROLE_ASSIGNMENTS_WRITE,
    STORAGE_ACCOUNTS,
    STORAGE_BLOBS,
    USER_ASSIGNED_IDENTITIES,
)
from rbac.policies import FEDERATED_CREDENTIAL_TYPE, GITHUB_ISSUER, ISSUER_ALIAS
from rbac.roles import PrincipalType, Role
from stack.config import PLACEHOLDER_OBJECT_ID
from stack.files import REPO_ROOT, read_stack, stack_names
from stack.naming import ResourceNames, StateBackendNames
from verify.access import operations as ops
from verify.access import runbook
from verify.access.conditions import matches
from verify.access.operations import Need, StackFacts
from verify.access.policy import PolicyAssignment, denying
from verify.access.rbac import Assignment, Permissions, RoleDefinition, builtin_roles
from verify.workflows import PULUMI_ACTION, Job, Workflow, load_all

BOOTSTRAP = "bootstrap"
APPLICATION = ENTRA_APPLICATION
SERVICE_PRINCIPAL = ENTRA_SERVICE_PRINCIPAL
CREDENTIAL = ENTRA_APPLICATION_FEDERATED_CREDENTIAL
CLIENT_ID_KEYS = ("ARM_CLIENT_ID", "AZURE_CLIENT_ID")
VARIABLE = re.compile(r"\$\{\{\s*vars\.([A-Z0-9_]+)\s*\}\}")
MATRIX = re.compile(r"\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}")
SCRIPT = re.compile(r"\bscripts/[\w./-]+\.(?:sh|py)\b")


@dataclass(frozen=True)
class Identity:
    key: str  # logical name: "preview-dev", "deploy-prod", "kubelet (dev)", ...
    principal: str
    kind: str  # "github", "managed identity"
    subjects: tuple[str, ...] = ()  # GitHub OIDC subjects after `repo:<owner/name>:`
    client_id: str = ""


@dataclass(frozen=True)
class Operation:
    identity: str
    where: str  # "main.yml deploy-dev: pulumi up (dev)"
    need: Need


@dataclass(frozen=True)
class JobRun:
    """One job of one workflow, one matrix combination: who it signs in as and what it does."""

    workflow: str
    job: str
    matrix: tuple[tuple[str, str], ...]
    identity: str | None
    subject: str
    environment: str | None
    stacks: tuple[str, ...]
    backend_url: str | None
    problems: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        suffix = ",".join(v for _, v in self.matrix)
        return f"{self.workflow} {self.job}" + (f" ({suffix})" if suffix else "")


@dataclass(frozen=True)
class Prohibition:
    """Something an identity must NOT be able to do."""

    identities: tuple[str, ...]
    action: str
    data: bool
    scope: str
    why: str
    attributes: tuple[tuple[str, Any], ...] = ()
    fields: tuple[tuple[str, Any], ...] = ()  # the request's fields, for Azure Policy (policy.py)


@dataclass
class Model:
    identities: dict[str, Identity]
    assignments: list[Assignment]
    operations: list[Operation]
    jobs: list[JobRun]
    prohibitions: list[Prohibition]
    github_variables: dict[str, Any]
    stacks: dict[str, StackFacts]
    policies: list[PolicyAssignment] = field(default_factory=list)  # Azure Policy deny assignments

    def assignments_of(self, identity: str) -> list[Assignment]:
        principal = self.identities[identity].principal
        return [a for a in self.assignments if a.principal == principal]

    def without(self, assignment: Assignment) -> Model:
        return replace(self, assignments=[a for a in self.assignments if a != assignment])

    def with_assignment(self, assignment: Assignment) -> Model:
        return replace(self, assignments=[*self.assignments, assignment])

    def without_policies(self) -> Model:
        return replace(self, policies=[])


@dataclass
class Result:
    allowed: dict[Operation, list[Assignment]] = field(default_factory=dict)
    denied: list[Operation] = field(default_factory=list)  # required operations no grant allows
    unneeded: list[Assignment] = field(default_factory=list)  # grants no required operation needs
    violations: list[tuple[Prohibition, str, Assignment]] = field(default_factory=list)
    refused_by_policy: dict[Operation, list[PolicyAssignment]] = field(default_factory=dict)
    # Prohibitions RBAC alone would allow, refused by Azure Policy: (prohibition, identity) -> the policies.
    held_by_policy: dict[tuple[Prohibition, str], list[PolicyAssignment]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # sign-in and wiring problems of the jobs

    @property
    def ok(self) -> bool:
        return not (self.denied or self.unneeded or self.violations or self.problems)


# --- plans -----------------------------------------------------------------------------------------------


@cache
def stack_plans() -> dict[str, StackPlan]:
    """Each stack's plan with the config scripts/bootstrap.sh sets from the bootstrap output `stackConfig`."""
    plan, _ = bootstrap_plan()
    config = plan.outputs["stackConfig"].value
    return {
        stack: plan_stack(stack, overrides=dict(values)) if values else committed_plan(stack)
        for stack, values in config.items()
    }


def role_definitions(plan: OfflinePlan) -> dict[str, RoleDefinition]:
    roles = dict(builtin_roles())
    for definition in plan.of_type(ROLE_DEFINITION):
        [block] = definition.get("permissions")
        guid = str(definition.get("roleDefinitionId"))
        roles[guid] = RoleDefinition(
            guid, str(definition.get("roleName")), Permissions.from_definition(block), True
        )
    return roles


def assignments_of_plan(
    plan: OfflinePlan, roles: Mapping[str, RoleDefinition], source: str
) -> list[Assignment]:
    found = []
    for resource in plan.of_type(ROLE_ASSIGNMENT):
        guid = str(resource.get("roleDefinitionId")).rsplit("/", 1)[-1]
        if guid not in roles:
            raise LookupError(
                f"{source}: role assignment {resource.name} uses role {guid}, which is neither vendored "
                "(verify/access/builtin-roles.json) nor a custom role of the bootstrap"
            )
        found.append(
            Assignment(
                name=resource.name,
                principal=str(resource.get("principalId")),
                role=roles[guid],
                scope=str(resource.get("scope")),
                condition=resource.get("condition") or None,
                source=source,
            )
        )
    return found


def policies_of_plan(
    plan: OfflinePlan, outputs: Mapping[tuple[str, str], dict[str, Any]]
) -> list[PolicyAssignment]:
    """The plan's policy assignments, each with its definition's rule (matched by the definition's id)."""
    definition_type = "azure-native:authorization:PolicyDefinition"
    rules = {
        str(outputs[(definition_type, d.name)]["id"]): d.get("policyRule")
        for d in plan.of_type(definition_type)
    }
    found = []
    for resource in plan.of_type(POLICY_ASSIGNMENT):
        definition = str(resource.get("policyDefinitionId"))
        if definition not in rules:
            raise LookupError(
                f"policy assignment {resource.name} uses {definition}, not a definition of the plan"
            )
        parameters = {k: v["value"] for k, v in (resource.get("parameters") or {}).items()}
        if str(resource.get("enforcementMode") or "Default") != "Default":
            continue  # DoNotEnforce: evaluated for compliance only, never refuses a request
        found.append(
            PolicyAssignment(
                resource.name,
                str(resource.get("scope")),
                rules[definition],
                parameters,
                str(resource.get("displayName") or ""),
            )
        )
    return found


def stack_facts(stack: str, plan: StackPlan) -> StackFacts:
    names = ResourceNames.for_stack(plan.config.environment, plan.config.name_suffix)
    state = StateBackendNames.for_environment(plan.config.environment, plan.config.name_suffix)
    group = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{names.resource_group}"
    state_group = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{state.resource_group}"

    def one(type_token: str) -> str:
        found = plan.plan.of_type(type_token)
        return str(plan.outputs_of(found[0]).get("id", "")) if found else ""

    clusters = [r for r in plan.plan.resources if ops.is_cluster(r)]

    return StackFacts(
        stack=stack,
        plan=plan,
        group_id=group,
        state_container=(
            f"{state_group}/providers/{STORAGE_ACCOUNTS}/{state.storage_account}"
            f"/blobServices/default/containers/{state.container}"
        ),
        state_key=f"{state_group}/providers/{KEY_VAULTS}/{state.key_vault}/keys/{state.key}",
        registry_id=one(REGISTRY),
        cluster_id=str(plan.outputs_of(clusters[0]).get("id", "")) if clusters else "",
        vault_id=one(KEY_VAULT),
        extra={"backend_url": state.backend_url},
        workspace_id=one(MONITOR_WORKSPACE),
    )


def github_identities(
    plan: OfflinePlan, outputs: Mapping[tuple[str, str], dict[str, Any]]
) -> dict[str, Identity]:
    found = {}
    for application in plan.of_type(APPLICATION):
        client_id = outputs[(APPLICATION, application.name)]["clientId"]
        principal = outputs[(SERVICE_PRINCIPAL, application.name)]["objectId"]
        subjects = tuple(
            sorted(
                str(c.get("subject")).split(":", 2)[2]
                for c in plan.of_type(CREDENTIAL)
                if c.parent and c.parent == application.parent
            )
        )
        found[application.name] = Identity(application.name, principal, "github", subjects, client_id)
    return found


def azure_identities(stack: str, plan: StackPlan) -> dict[str, Identity]:
    found = {}
    for resource in plan.plan.of_type(USER_ASSIGNED_IDENTITY):
        principal = str(plan.outputs_of(resource).get("principalId"))
        found[f"{resource.name} ({stack})"] = Identity(
            f"{resource.name} ({stack})", principal, "managed identity"
        )
    return found


def runtime_operations(stack: str, facts: StackFacts) -> Iterator[Operation]:
    """What runs in Azure with the stack's managed identities (not CI)."""
    plan = facts.plan.plan
    if facts.registry_id:
        yield Operation(
            f"cluster-kubelet ({stack})",
            f"AKS nodes of {stack}: pull the Muse image",
            Need(
                "Microsoft.ContainerRegistry/registries/pull/read",
                False,
                facts.registry_id,
                "kubelet image pull",
                ops.ACR_ROLES,
            ),
        )
    what = {secret.name: secret.what for secret in manifests.SECRETS}
    for secret in plan.of_type(KEY_VAULT_SECRET):
        yield Operation(
            f"muse-workload ({stack})",
            f"Muse pods of {stack}: Secrets Store CSI driver mounts the {what[secret.get('secretName')]}",
            Need(
                GET_SECRET,
                True,
                facts.resource_id(secret),
                f"read secret {secret.get('secretName')}",
                ops.KEY_VAULT_CSI,
            ),
        )
    yield from _gateway_tls_operations(stack, facts)
    for cluster in (r for r in plan.resources if ops.is_cluster(r)):
        kubelet = ops.cluster_property(cluster, "identityProfile.kubeletidentity.resourceId")
        if kubelet:
            yield Operation(
                f"cluster-control-plane ({stack})",
                f"AKS control plane of {stack}: give nodes the kubelet identity",
                Need(
                    ASSIGN_IDENTITY,
                    False,
                    str(kubelet),
                    "assign the kubelet identity",
                    ops.AKS_IDENTITIES,
                ),
            )


def operators(stack: str) -> str:
    return f"operators ({stack})"


OPERATORS_KEY = "muse:operatorsGroupObjectId"


# A stand-in object id per environment whose stack file leaves OPERATORS_KEY unset or the placeholder: the
# bootstrap program is run on copies of the stack files that name it (operator_bootstrap_plan), so the grants
# the model proves are the bootstrap's own, not a copy of them (as for the CI identities, whose ids the mocks
# give). The real run grants such a group nothing until the key is set: those grants are marked pending.
STAND_IN_NAMESPACE = uuid.UUID("5d0c8a52-3f5e-4a0b-9a51-0c6f1b7e2d94")


def stand_in_group(stack: str) -> str:
    return str(uuid.uuid5(STAND_IN_NAMESPACE, f"operators/{stack}"))


def _group_set(stack: str) -> bool:
    group = read_stack(stack).config.get(OPERATORS_KEY, "")
    return bool(group) and group != PLACEHOLDER_OBJECT_ID


@cache
def operator_bootstrap_plan(bootstrap_source: str | None = None) -> OfflinePlan:
    """The bootstrap program (its text `bootstrap_source`, for tests; else bootstrap/__main__.py) run on
    copies of the project's stack files in which every environment whose group is unset or the placeholder
    names its stand_in_group. The copies live in a temporary directory; the program reads
    ../Pulumi.<env>.yaml next to itself, as it does in the repository."""
    source = bootstrap_source or (REPO_ROOT / "bootstrap" / "__main__.py").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="muse-operators-") as tmp:
        root = Path(tmp)
        (root / "bootstrap").mkdir()
        (root / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
        for stack in stack_names():
            text = (REPO_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
            if not _group_set(stack):
                data = yaml.safe_load(text)
                data["config"][OPERATORS_KEY] = stand_in_group(stack)
                text = yaml.safe_dump(data, sort_keys=False)
            (root / f"Pulumi.{stack}.yaml").write_text(text, encoding="utf-8")
        for name in ("Pulumi.yaml", "Pulumi.main.yaml"):
            (root / "bootstrap" / name).write_text(
                (REPO_ROOT / "bootstrap" / name).read_text(encoding="utf-8")
            )
        (root / "bootstrap" / "__main__.py").write_text(source, encoding="utf-8")
        return run_stack("main", root=root / "bootstrap", monitor=RecordingMonitor(CapturingMocks("main")))


def operator_grants(
    stack: str, roles: Mapping[str, RoleDefinition], pending: str, bootstrap_source: str | None = None
) -> list[Assignment]:
    """What the bootstrap grants the stack's stand-in operators' group (operator_bootstrap_plan), marked
    `pending` (why the grant does not exist yet)."""
    principal = stand_in_group(stack)
    planned = assignments_of_plan(operator_bootstrap_plan(bootstrap_source), roles, BOOTSTRAP)
    source = "bootstrap, once muse:operatorsGroupObjectId is set"
    return [replace(a, source=source, pending=pending) for a in planned if a.principal == principal]


TRIAGE_SOURCE = (
    'docs/runbook.md "When an alert fires" (verify/access/runbook.py triage_steps); action names: '
    "learn.microsoft.com/azure/role-based-access-control/resource-provider-operations"
)


def triage_targets(facts: StackFacts) -> dict[str, str]:
    """The resource each kind of triage request is checked on (verify/access/runbook.py AzureRequest)."""
    plan = facts.plan.plan

    def one(type_token: str) -> str:
        [resource] = plan.of_type(type_token)
        return facts.resource_id(resource)

    return {
        "group": facts.group_id,
        "workspace": one(LOG_ANALYTICS_WORKSPACE),
        "workbook": one(WORKBOOK),
        "cluster": facts.cluster_id,
        # A fired alert is authorized on its target resource's scope (the rules query the workspace); the
        # alert's own id is a subscription-level name, so the probe sits under the environment's group.
        "alert": f"{facts.group_id}/providers/Microsoft.AlertsManagement/alerts/alert-probe",
    }


def people(
    stack: str,
    facts: StackFacts,
    roles: Mapping[str, RoleDefinition],
    markdown: str | None = None,
    bootstrap_source: str | None = None,
) -> tuple[Identity, list[Assignment], list[Operation]]:
    """The stack's operators' group: its identity, the grants the bootstrap gives it (from its plan when the
    stack file names a real group; modelled by operator_grants, marked pending, while it is unset or the
    placeholder, as the bootstrap will grant once it is set) and what the runbook has a member do: every
    kubectl command of docs/runbook.md (`markdown`: another text, for tests), verify/access/runbook.py.
    `bootstrap_source`: another text of bootstrap/__main__.py (tests), for the pending grants."""
    group = read_stack(stack).config.get(OPERATORS_KEY, "")
    real = _group_set(stack)
    principal = group if real else stand_in_group(stack)
    identity = Identity(operators(stack), principal, "Entra ID group (people)")
    pending = (
        ""
        if real
        else f"if `{OPERATORS_KEY}` is set: "
        + (f"a placeholder in Pulumi.{stack}.yaml" if group else f"unset in Pulumi.{stack}.yaml")
    )
    assignments = [] if real else operator_grants(stack, roles, pending, bootstrap_source)
    where = f"docs/runbook.md ({stack})"
    found = [
        Operation(
            identity.key,
            f"{where}: az aks get-credentials",
            Need(
                f"{ops.CLUSTER}/listClusterUserCredential/action",
                False,
                facts.cluster_id,
                "az aks get-credentials",
                ops.AKS_CREDENTIALS,
            ),
        )
    ]
    found.append(
        Operation(
            identity.key,
            f"{where}: scripts/stack {stack} stack output",
            Need(
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                True,
                facts.state_container,
                "scripts/stack stack output (and its stack ls)",
                ops.STACK_OUTPUT,
            ),
        )
    )
    targets = triage_targets(facts)
    for step in runbook.triage_steps(markdown):
        for azure in step.requests:
            found.append(
                Operation(
                    identity.key,
                    f"{where}: {step.text}",
                    Need(azure.action, False, targets[azure.target], step.text, TRIAGE_SOURCE),
                )
            )
    for command in runbook.commands(stack, markdown):
        for request in command.requests:
            what = f"{request.verb} {request.resource}"
            found.append(
                Operation(
                    identity.key,
                    f"docs/runbook.md ({stack}): {command.text}",
                    ops.kubernetes_need(facts, request.group, request.resource, request.verb, what),
                )
            )
    return identity, assignments, list(dict.fromkeys(found))


# What no operator may do in a cluster, whatever the runbook grows into: Kubernetes RBAC (roles, bindings:
# a person granting themselves more), deleting nodes or namespaces (AKS owns the nodes, Pulumi the
# namespaces), custom resources outside the kinds Muse deploys, deleting Muse's own custom resources.
# (Kubernetes Secrets are readable through AKS RBAC Writer's `secrets/*`: kept, not prohibited.)
OPERATOR_PROHIBITED = (
    ("rbac.authorization.k8s.io", "rolebindings", "write"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "write"),
    ("rbac.authorization.k8s.io", "roles", "write"),
    ("rbac.authorization.k8s.io", "clusterroles", "write"),
    ("core", "nodes", "delete"),
    ("core", "namespaces", "delete"),
    ("security.istio.io", "authorizationpolicies", "write"),
    ("gateway.networking.k8s.io", "httproutes", "delete"),
)


# What AKS RBAC Writer at the resource group also reaches (it is assigned at the group because the cluster,
# and so its namespace scopes `<cluster id>/namespaces/<ns>`, does not exist when the bootstrap runs): every
# namespace, kube-system included. There it may write ServiceAccounts (a token request,
# `serviceaccounts/token`, is checked as `serviceaccounts/write`: guard checkaccessreqhelper.go) and pods,
# so a member can act as any ServiceAccount of the cluster, whatever Kubernetes roles that one holds. The
# role-binding prohibitions bound what a member edits, not what a ServiceAccount they borrow may do.
OPERATOR_REACH = (
    ("core", "serviceaccounts", "write", "kube-system"),
    ("core", "pods", "write", "kube-system"),
    ("core", "secrets", "read", "kube-system"),
)


def operator_reach(model: Model, stack: str) -> list[str]:
    """Which of OPERATOR_REACH the stack's operators' grants allow (namespace scope below the cluster)."""
    facts = model.stacks[stack]
    found = []
    for group, plural, verb, namespace in OPERATOR_REACH:
        need = ops.kubernetes_need(facts, group, plural, verb, "")
        scope = f"{need.scope}/namespaces/{namespace}"
        if any(
            a.allows(need.action, True, scope, need.attribute_map)
            for a in model.assignments_of(operators(stack))
        ):
            found.append(f"{plural}/{verb} in {namespace}")
    return found


def operator_prohibitions(stack: str, facts: StackFacts) -> list[Prohibition]:
    found = []
    for group, plural, verb in OPERATOR_PROHIBITED:
        need = ops.kubernetes_need(facts, group, plural, verb, "")
        found.append(
            Prohibition(
                (operators(stack),),
                need.action,
                True,
                need.scope,
                f"{verb} {plural} ({group}) in {stack}'s cluster",
                need.attributes,
            )
        )
    return found


def _gateway_tls_operations(stack: str, facts: StackFacts) -> Iterator[Operation]:
    """A Gateway listener that terminates TLS with a Key Vault certificate: the application routing operator
    reads the certificate's secret as the workload identity federated with the listener's service account."""
    plan = facts.plan.plan
    identities = {str(r.get("resourceName")): r.name for r in plan.of_type(USER_ASSIGNED_IDENTITY)}
    credentials = {
        str(c.get("subject")): identities.get(str(c.get("resourceName")), "")
        for c in plan.of_type(FEDERATED_IDENTITY_CREDENTIAL)
    }
    for gateway in plan.of_type(K8S_GATEWAY):
        namespace = gateway.get("metadata.namespace")
        for listener in gateway.get("spec.listeners") or []:
            options = (listener.get("tls") or {}).get("options") or {}
            uri = options.get(TLS_CERT_KEYVAULT_URI_OPTION)
            account = options.get(TLS_CERT_SERVICE_ACCOUNT_OPTION)
            if not uri or not account:
                continue
            vault_name, certificate = _key_vault_certificate(str(uri))
            if not facts.vault_id.lower().endswith(f"/vaults/{vault_name}".lower()):
                raise ValueError(f"{stack}: Gateway certificate {uri} is not in the stack's Key Vault")
            identity = credentials.get(f"system:serviceaccount:{namespace}:{account}")
            if not identity:
                raise ValueError(f"{stack}: no workload identity is federated with {namespace}/{account}")
            yield Operation(
                f"{identity} ({stack})",
                f"application routing operator of {stack}: the Gateway's TLS certificate",
                Need(
                    GET_SECRET,
                    True,
                    f"{facts.vault_id}/secrets/{certificate}",
                    f"read certificate {certificate} (as its secret)",
                    ops.APP_ROUTING_TLS,
                ),
            )


def _key_vault_certificate(uri: str) -> tuple[str, str]:
    """(vault name, certificate name) of `https://<vault>.vault.azure.net/certificates/<name>[/<version>]`."""
    match = re.fullmatch(r"https://([^./]+)\.vault\.azure\.net/certificates/([^/]+)(?:/[^/]+)?/?", uri)
    if not match:
        raise ValueError(f"not a Key Vault certificate URI: {uri}")
    return match.group(1), match.group(2)


# --- workflows -------------------------------------------------------------------------------------------


def _matrix_combinations(job: Job) -> list[dict[str, str]]:
    matrix = {k: v for k, v in job.matrix.items() if k not in ("include", "exclude")}
    keys = [k for k, v in matrix.items() if isinstance(v, list)]
    combos = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*(matrix[k] for k in keys))
    ]
    for extra in job.matrix.get("include") or []:
        combos.append({str(k): str(v) for k, v in dict(extra).items()})
    return [{k: str(v) for k, v in c.items()} for c in combos] or [{}]


def _substitute(value: Any, matrix: Mapping[str, str]) -> str:
    return MATRIX.sub(lambda m: matrix.get(m.group(1), m.group(0)), str(value))


def _variable(text: str, environment: str | None, variables: Mapping[str, Any]) -> str | None:
    """Resolve `${{ vars.X }}` as GitHub does: the job's environment first, then the repository."""
    match = VARIABLE.fullmatch(text.strip())
    if not match:
        return None
    name = match.group(1)
    levels = variables.get("environments", {})
    if environment and name in levels.get(environment, {}):
        return str(levels[environment][name])
    value = variables.get("repository", {}).get(name)
    return None if value is None else str(value)


def subject_of(workflow: Workflow, job: Job, environment: str | None) -> str:
    """The OIDC subject GitHub gives the job (after `repo:<owner/name>:`): environment wins, then
    pull_request, then the branch (every other trigger of these workflows runs on main). GitHub docs, "OpenID
    Connect reference", Example subject claims. The same for a job of a called reusable workflow (main.yml's
    calls of deploy.yml): its `sub` carries the caller repository's context, `environment:<name>` when the job
    names one, and the called file only in the extra `job_workflow_ref` claim (GitHub docs, "Using OpenID
    Connect with reusable workflows", How the token works with reusable workflows)."""
    if environment:
        return f"environment:{environment}"
    if "pull_request" in workflow.triggers:
        return "pull_request"
    return "ref:refs/heads/main"


def script_texts(text: str, seen: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """(path, text) of each repository script `text` calls, and of the scripts those call (same folder)."""
    seen = set() if seen is None else seen
    for path in sorted(set(SCRIPT.findall(text))):
        if path in seen or not (REPO_ROOT / path).is_file():
            continue
        seen.add(path)
        body = (REPO_ROOT / path).read_text(encoding="utf-8")
        yield path, body
        # The neighbours it runs (`"$here/x.py"`, `HERE / "x.sh"`), named on a code line: a mention in a
        # comment or docstring, or a Python import of a helper module, runs nothing.
        folder = Path(path).parent
        code = "\n".join(ops.code_lines(body))
        neighbours = {
            f"{folder.as_posix()}/{name}"
            for name in re.findall(r"\b([\w-]+\.(?:sh|py))\b", code)
            if (REPO_ROOT / folder / name).is_file()
        }
        if path.endswith(".py"):
            # A neighbour module it imports runs in its process: deploy.py's canary asks for the metric
            # query's token in canary_gate.py (az account get-access-token).
            neighbours |= {
                f"{folder.as_posix()}/{name}.py"
                for name in re.findall(r"^\s*(?:from\s+(\w+)\s+import|import\s+(\w+)\s*$)", body, re.M)
                for name in name
                if name and (REPO_ROOT / folder / f"{name}.py").is_file()
            }
        yield from script_texts(" ".join(sorted(neighbours)), seen)


def _stack_of(line: str, default: tuple[str, ...], stacks: Iterable[str]) -> tuple[str, ...]:
    match = re.search(r"--stack[\s\"',]+([A-Za-z0-9_-]+)", line)
    if match and match.group(1) in stacks:
        return (match.group(1),)
    return default


def _upstream_stack(
    job: Job, jobs: Mapping[str, Job], line: str, runs: Mapping[str, tuple[str, ...]]
) -> str | None:
    """For `az acr import --registry "$X"`: the stack of the job whose output the env var X carries. X is
    the `--registry` argument's variable; the job is a job of this workflow, or a call of a reusable one
    (`needs.<call>.outputs`: the stacks of the call's jobs, `<call>.<job>` in the expanded workflow)."""
    registry = re.search(r"--registry[\s=\"']+\$\{?([A-Z_]+)\}?", line)
    for name in [registry.group(1)] if registry else re.findall(r"\$\{?([A-Z_]+)\}?", line):
        value = str(job.env.get(name, ""))
        found = re.search(r"needs\.([\w-]+)\.outputs", value)
        if not found:
            continue
        source = found.group(1)
        stacks = runs.get(source) or tuple(
            sorted({s for job_id, ran in runs.items() if job_id.startswith(f"{source}.") for s in ran})
        )
        if stacks:
            return stacks[0]
    return None


def job_stacks(job: Job, matrix: Mapping[str, str], stacks: Iterable[str]) -> tuple[str, ...]:
    known = set(stacks)
    found = set()
    for value in (job.env.get("STACK"), *(s.inputs.get("stack-name") for s in job.steps_of(PULUMI_ACTION))):
        if value is not None:
            resolved = _substitute(value, matrix)
            if resolved in known:
                found.add(resolved)
    if not found:
        for _, script in job.run_scripts():
            for line in ops.code_lines(script):
                found.update(_stack_of(line, (), known))
    return tuple(sorted(found))


def job_operations(
    workflow: Workflow,
    job: Job,
    matrix: Mapping[str, str],
    stacks: Mapping[str, StackFacts],
    variables: Mapping[str, Any],
    client_ids: Mapping[str, str],
    upstream: Mapping[str, tuple[str, ...]],
) -> tuple[JobRun, list[Operation]]:
    environment = _substitute(job.environment, matrix) if job.environment else None
    problems: list[str] = []
    # Which identity: every client id the job names (azure/login, ARM_CLIENT_ID, AZURE_CLIENT_ID).
    expressions = [
        str(s.inputs["client-id"]) for s in job.steps_of("azure/login") if s.inputs.get("client-id")
    ]
    for env in (job.env, *(s.env for s in job.steps)):
        expressions += [str(env[k]) for k in CLIENT_ID_KEYS if k in env]
    resolved = {_variable(_substitute(e, matrix), environment, variables) for e in expressions}
    identities = {client_ids.get(str(v)) for v in resolved}
    holds_identity = isinstance(job.permissions, dict) and job.permissions.get("id-token") == "write"
    identity = None
    if holds_identity:
        known = sorted(i for i in identities if i)
        if None in identities or not identities:
            problems.append(
                f"signs in with {sorted(map(str, expressions))}, which resolve to no identity the bootstrap "
                f"creates (environment {environment or 'none'}): sign-in fails"
            )
        elif len(known) != 1:
            problems.append(f"names {len(known)} identities ({', '.join(known)}): it must name one")
        identity = known[0] if len(known) == 1 and None not in identities else None
    subject = subject_of(workflow, job, environment)
    backend_expression = job.env.get("PULUMI_BACKEND_URL")
    backend = None
    if backend_expression:
        literal = _substitute(str(backend_expression), matrix)
        backend = _variable(literal, environment, variables) if VARIABLE.search(literal) else literal
    run_stacks = job_stacks(job, matrix, stacks)
    where = f"{workflow.file_name} {job.id}" + (f" ({','.join(matrix.values())})" if matrix else "")
    run = JobRun(
        workflow.file_name,
        job.id,
        tuple(sorted(matrix.items())),
        identity,
        subject,
        environment,
        run_stacks,
        backend,
        tuple(problems),
    )
    if not identity:
        return run, []

    found: list[Operation] = []

    def add(needs: Iterable[Need], step: str) -> None:
        found.extend(Operation(identity, f"{where}: {step}", need) for need in needs)

    for step in job.steps_of(PULUMI_ACTION):
        command = step.inputs.get("command")
        if not command:
            continue
        stack = _substitute(step.inputs.get("stack-name", ""), matrix)
        if stack in stacks:
            refresh = str(step.inputs.get("refresh", "")).lower() == "true"
            add(ops.pulumi_needs(stacks[stack], str(command), refresh), f"pulumi/actions {command} ({stack})")
    texts = [(f"step {step.name or index}", step.run) for index, step in enumerate(job.steps) if step.run]
    for _, script in list(texts):
        texts += [(path, body) for path, body in script_texts(script)]
    for label, text in texts:
        python = label.endswith(".py")
        # A Python script may add flags on other lines (`command += ["--refresh", ...]`): the command's own
        # list and what its function adds to that name say if it refreshes (ops.python_refreshing_previews).
        refreshing = ops.python_refreshing_previews(text or "") if python else set()
        for line in ops.code_lines(text or ""):
            if ops.unrecognised(line, python=python):
                run = replace(run, problems=(*run.problems, f"{label}: unmodelled command: {line[:100]}"))
            for command in ops.recognise(line, python=python):
                if command.key == "pulumi preview" and line in refreshing and "--refresh" not in line:
                    line = line + " --refresh"
                line_stacks = _stack_of(line, run_stacks, stacks)
                for stack in line_stacks:
                    add(
                        command_needs(command, line, stacks[stack], job, upstream, stacks),
                        f"{command.key} ({stack})",
                    )
    return run, found


def command_needs(
    command: ops.Command,
    line: str,
    facts: StackFacts,
    job: Job,
    upstream: Mapping[str, tuple[str, ...]],
    stacks: Mapping[str, StackFacts],
) -> Iterator[Need]:
    registry = REGISTRIES
    if command.kind == "state-read":
        shows = "--show-secrets" in line or "--secret" in line.replace("--secrets-provider", "")
        yield from ops.state_needs(facts, write=False, decrypt=shows, why=command.key)
    elif command.kind == "pulumi":
        yield from ops.pulumi_needs(facts, command.detail, refresh="--refresh" in line)
    elif command.kind == "acr-login":
        yield Need(
            f"{registry}/read",
            False,
            facts.registry_id,
            "az acr login: look the registry up",
            command.detail,
            optional=True,
        )
    elif command.kind == "docker-push":
        yield Need(f"{registry}/push/write", False, facts.registry_id, "docker push", command.detail)
        yield Need(
            f"{registry}/pull/read", False, facts.registry_id, "docker push (existing layers)", command.detail
        )
    elif command.kind == "acr-show":
        yield Need(
            f"{registry}/read",
            False,
            facts.registry_id,
            "az acr repository show: look the registry up",
            command.detail,
            optional=True,
        )
        yield Need(
            f"{registry}/pull/read",
            False,
            facts.registry_id,
            "az acr repository show (metadata read)",
            ops.ACR_ROLES,
        )
    elif command.kind == "acr-import":
        yield Need(
            f"{registry}/read", False, facts.registry_id, "az acr import: the target registry", command.detail
        )
        yield Need(f"{registry}/importImage/action", False, facts.registry_id, "az acr import", ops.ACR_ROLES)
        source_stack = _upstream_stack(job, {}, line, upstream) or facts.stack
        source = stacks[source_stack].registry_id
        yield Need(
            f"{registry}/read",
            False,
            source,
            f"az acr import: source registry ({source_stack})",
            ops.ACR_ROLES,
        )
        yield Need(
            f"{registry}/pull/read",
            False,
            source,
            f"az acr import: source image ({source_stack})",
            ops.ACR_ROLES,
        )
    elif command.kind == "aks-creds":
        yield Need(
            f"{ops.CLUSTER}/listClusterUserCredential/action",
            False,
            facts.cluster_id,
            "az aks get-credentials",
            command.detail,
        )
    elif command.kind == "kubectl-job":
        # create the Job, read its status, read its pod's log (kubectl logs job/<name> finds the pod); the
        # canary's load Jobs are deleted again (`kubectl delete job -l muse.load=canary`, check_job.stop)
        yield ops.kubernetes_need(facts, "batch", "jobs", "write", command.key)
        yield ops.kubernetes_need(facts, "batch", "jobs", "read", command.key)
        yield ops.kubernetes_need(facts, "batch", "jobs", "delete", command.key)
        yield ops.kubernetes_need(facts, "core", "pods", "read", command.key)
        yield ops.kubernetes_need(facts, "core", "pods/log", "read", command.key)
    elif command.kind == "monitor-query":
        # The token's audience is the workspace's query API; the query itself is the data action.
        yield Need(
            ops.MONITOR_QUERY_ACTION, True, facts.workspace_id, "canary gate: PromQL query", command.detail
        )
    elif command.kind == "kubectl-read":
        group = "apps" if command.detail == "deployments" else "core"
        yield ops.kubernetes_need(
            facts, group, command.detail, "read", command.key, optional=command.detail == "pods"
        )


def _job_lines(job: Job) -> str:
    return "\n".join(s.run or "" for s in job.steps)


# --- the model ---------------------------------------------------------------------------------------------


GRANT_PROBE = "00000000-0000-0000-0000-000000000001"  # any role assignment name in the group

# Who may read a stack's state besides its deployer and its preview: the build reads dev's stack outputs
# (registry, group), with secrets blinded and no key (stack_output.go), so it cannot decrypt anything.
STATE_READERS = {"dev": ("build",)}
# Who a stack's deployer may give Reader (on anything in its group; a condition cannot name the scope): only
# the deployer that imports from its registry (`az acr import`), through the stack's grant_import_source.
IMPORT_READERS = {"dev": ("deploy-prod",)}
# Any other service principal of the tenant (an application a developer registers, say).
OTHER_PRINCIPAL = "00000000-0000-4000-8000-0000000000ff"


def prohibitions(
    stacks: Mapping[str, StackFacts],
    identities: Mapping[str, Identity],
    secrets: Iterable[manifests.WorkloadSecret] | None = None,
) -> list[Prohibition]:
    """What must be impossible: only a stack's deployer and preview decrypt its secrets, only its deployer
    writes its state, only they (and STATE_READERS) read it, and no CI identity reads a workload secret
    (each of `secrets`, default manifests.SECRETS) from the vault."""
    secrets = tuple(manifests.SECRETS if secrets is None else secrets)
    github = sorted(i for i, v in identities.items() if v.kind == "github")
    found = []
    for stack, facts in stacks.items():
        deployer, preview = f"deploy-{stack}", f"preview-{stack}"
        outsiders = tuple(i for i in github if i not in (deployer, preview))
        blobs = STORAGE_BLOBS
        non_readers = tuple(i for i in outsiders if i not in STATE_READERS.get(stack, ()))
        found += [
            Prohibition(non_readers, f"{blobs}/read", True, facts.state_container, f"read {stack}'s state"),
            Prohibition(
                outsiders,
                KEY_DECRYPT,
                True,
                facts.state_key,
                f"decrypt {stack}'s secrets (its state key)",
            ),
            Prohibition(
                (*outsiders, preview), f"{blobs}/write", True, facts.state_container, f"write {stack}'s state"
            ),
            Prohibition(
                (*outsiders, preview),
                f"{blobs}/delete",
                True,
                facts.state_container,
                f"delete {stack}'s state",
            ),
        ]
        # A deployer's delegation (Role Based Access Control Administrator, conditioned) must not reach a CI
        # identity: Key Vault Secrets User on the vault for a preview identity would let any pull request
        # read the stack's secrets (rbac/roles.py only_assigning, never_to).
        for grantee in github:
            found.append(
                Prohibition(
                    (deployer,),
                    ROLE_ASSIGNMENTS_WRITE,
                    False,
                    f"{facts.group_id}/providers/{ROLE_ASSIGNMENTS}/{GRANT_PROBE}",
                    f"grant Key Vault Secrets User in {stack} to {grantee}",
                    (
                        (abac.request(ASSIGNED_ROLE), Role.KEY_VAULT_SECRETS_USER.definition_id),
                        (abac.request(ASSIGNED_PRINCIPAL_TYPE), PrincipalType.SERVICE_PRINCIPAL.value),
                        (abac.request(ASSIGNED_PRINCIPAL), identities[grantee].principal),
                    ),
                )
            )
        # Reader is delegable in the source stack for one principal only: nobody else may get it from the
        # deployer (a preview identity or an app reading every resource's properties), and the deployer may
        # delete no other Reader assignment (the preview identity's Reader on the group).
        reader_grantees = {
            key: identity.principal
            for key, identity in identities.items()
            if key not in IMPORT_READERS.get(stack, ())
        } | {"another service principal": OTHER_PRINCIPAL}
        for grantee, principal in sorted(reader_grantees.items()):
            assignment = f"{facts.group_id}/providers/{ROLE_ASSIGNMENTS}/{GRANT_PROBE}"
            found += [
                Prohibition(
                    (deployer,),
                    ROLE_ASSIGNMENTS_WRITE,
                    False,
                    assignment,
                    f"grant Reader in {stack} to {grantee}",
                    (
                        (abac.request(ASSIGNED_ROLE), Role.READER.definition_id),
                        (abac.request(ASSIGNED_PRINCIPAL_TYPE), PrincipalType.SERVICE_PRINCIPAL.value),
                        (abac.request(ASSIGNED_PRINCIPAL), principal),
                    ),
                ),
                Prohibition(
                    (deployer,),
                    ROLE_ASSIGNMENTS_DELETE,
                    False,
                    assignment,
                    f"delete a Reader assignment of {grantee} in {stack}",
                    (
                        (abac.resource(ASSIGNED_ROLE), Role.READER.definition_id),
                        (abac.resource(ASSIGNED_PRINCIPAL_TYPE), PrincipalType.SERVICE_PRINCIPAL.value),
                        (abac.resource(ASSIGNED_PRINCIPAL), principal),
                    ),
                ),
            ]
        found += removal_prohibitions(stack, facts, identities, github)
        found += federation_prohibitions(stack, facts, tuple(github))
        if facts.vault_id:
            found += [
                Prohibition(
                    tuple(github),
                    GET_SECRET,
                    True,
                    f"{facts.vault_id}/secrets/{secret.name}",
                    f"read {stack}'s {secret.what} from the vault",
                )
                for secret in secrets
            ]
    return found


USER_PROBE = "00000000-0000-0000-0000-00000000beef"  # a person holding a delegable role in the group


def removal_prohibitions(
    stack: str, facts: StackFacts, identities: Mapping[str, Identity], github: list[str]
) -> list[Prohibition]:
    """A deployer's delegation removes only what it may grant: never a person's assignment, never a CI
    identity's (the delete branch of rbac/roles.py only_assigning reads the existing assignment)."""
    deployer = f"deploy-{stack}"
    holders = {
        grantee: (identities[grantee].principal, PrincipalType.SERVICE_PRINCIPAL.value) for grantee in github
    }
    holders["a user"] = (USER_PROBE, PrincipalType.USER.value)
    return [
        Prohibition(
            (deployer,),
            ROLE_ASSIGNMENTS_DELETE,
            False,
            f"{facts.group_id}/providers/{ROLE_ASSIGNMENTS}/{GRANT_PROBE}",
            f"remove AcrPull in {stack} from {holder}",
            (
                (abac.resource(ASSIGNED_ROLE), Role.ACR_PULL.definition_id),
                (abac.resource(ASSIGNED_PRINCIPAL_TYPE), kind),
                (abac.resource(ASSIGNED_PRINCIPAL), principal),
            ),
        )
        for holder, (principal, kind) in sorted(holders.items())
    ]


# Issuers no CI identity may federate an identity to: GitHub's (a workflow of any pull request, with subject
# `repo:<o>/<r>:pull_request`), one the caller controls, another tenant's AKS cluster (only the region and
# tenant segments differ from ours: https://<region>.oic.prod-aks.azure.com/<tenant>/<cluster>/).
FOREIGN_ISSUERS = {
    "GitHub's issuer": GITHUB_ISSUER,
    "an issuer it controls": "https://issuer.attacker.example/",
    "another tenant's AKS issuer": (
        "https://westeurope.oic.prod-aks.azure.com/11111111-1111-1111-1111-111111111111/"
        "22222222-2222-2222-2222-222222222222/"
    ),
}
IDENTITIES = USER_ASSIGNED_IDENTITIES


def federation_prohibitions(stack: str, facts: StackFacts, github: tuple[str, ...]) -> list[Prohibition]:
    """No CI identity can federate one of the stack's identities, or a new identity in its group, to an
    issuer outside the stack's AKS clusters: Contributor allows the write, Azure Policy must refuse it.
    Nor may it remove that policy (delete the assignment, write an exemption)."""
    targets = {
        str(facts.plan.outputs_of(r).get("id")): f"{r.name}"
        for r in facts.plan.plan.of_type(USER_ASSIGNED_IDENTITY)
    }
    targets[f"{facts.group_id}/providers/{IDENTITIES}/id-probe"] = "a new identity"
    found = []
    for identity, label in sorted(targets.items()):
        for issuer_label, issuer in FOREIGN_ISSUERS.items():
            found.append(
                Prohibition(
                    github,
                    f"{FEDERATED_CREDENTIAL_TYPE}/write",
                    False,
                    f"{identity}/federatedIdentityCredentials/fic-probe",
                    f"federate {label} ({stack}) to {issuer_label}",
                    fields=(("type", FEDERATED_CREDENTIAL_TYPE), (ISSUER_ALIAS, issuer)),
                )
            )
    policy = f"{facts.group_id}/providers/Microsoft.Authorization"
    found += [
        Prohibition(
            github,
            "Microsoft.Authorization/policyAssignments/delete",
            False,
            f"{policy}/policyAssignments/assignment-probe",
            f"delete a policy assignment on {stack}'s group",
        ),
        Prohibition(
            github,
            "Microsoft.Authorization/policyExemptions/write",
            False,
            f"{policy}/policyExemptions/exemption-probe",
            f"exempt {stack}'s group from a policy",
        ),
    ]
    return found


# Actions that change nothing although they are not `read`: decrypting with a key, fetching the Entra ID
# kubeconfig (no credential in it), a user delegation key (a SAS signed with it carries only the caller's
# read rights), and read-shaped POSTs.
NON_MUTATING = (
    KEY_DECRYPT,
    LIST_CLUSTER_USER_CREDENTIAL,
    "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
)


def writes_allowed(role: RoleDefinition) -> list[str]:
    """The patterns of a role that can match something other than a read (or a NON_MUTATING action)."""
    found = []
    for pattern in (*role.permissions.actions, *role.permissions.data_actions):
        if pattern.lower().endswith("/read") or any(
            matches(pattern, a) and "*" not in pattern for a in NON_MUTATING
        ):
            continue
        found.append(pattern)
    return found


@cache
def build() -> Model:
    """The model of this repository: its plans and its workflow files."""
    return assemble(tuple(load_all(REPO_ROOT / ".github" / "workflows")))


def assemble(workflows: tuple[Workflow, ...]) -> Model:
    """The model for these workflows (tests pass edited ones) and this repository's plans."""
    plan, outputs = bootstrap_plan()
    policies = policies_of_plan(plan, outputs)
    roles = role_definitions(plan)
    identities = github_identities(plan, outputs)
    assignments = assignments_of_plan(plan, roles, BOOTSTRAP)
    stacks = {}
    for stack, stack_plan in stack_plans().items():
        stacks[stack] = stack_facts(stack, stack_plan)
        identities |= azure_identities(stack, stack_plan)
        assignments += assignments_of_plan(stack_plan.plan, roles, stack)
    variables = plan.outputs["githubVariables"].value
    client_ids = {i.client_id: key for key, i in identities.items() if i.client_id}
    operations: list[Operation] = []
    jobs: list[JobRun] = []
    for workflow in workflows:
        if set(workflow.triggers) == {"workflow_call"}:
            # Only ever run as a caller's jobs: load_all expands it into each call, with its inputs.
            continue
        upstream: dict[str, tuple[str, ...]] = {}
        for job in workflow.jobs.values():
            for matrix in _matrix_combinations(job):
                run, found = job_operations(workflow, job, matrix, stacks, variables, client_ids, upstream)
                upstream[job.id] = tuple(sorted({*upstream.get(job.id, ()), *run.stacks}))
                jobs.append(run)
                operations += found
    for stack, facts in stacks.items():
        operations += runtime_operations(stack, facts)
        person, granted, done = people(stack, facts, roles)
        identities[person.key] = person
        assignments += granted
        operations += done
    return Model(
        identities,
        assignments,
        operations,
        jobs,
        prohibitions(stacks, identities)
        + [p for stack, facts in stacks.items() for p in operator_prohibitions(stack, facts)],
        variables,
        stacks,
        policies,
    )


def evaluate(model: Model) -> Result:
    result = Result()
    by_principal: dict[str, list[Assignment]] = {}
    for assignment in model.assignments:
        by_principal.setdefault(assignment.principal, []).append(assignment)
    for operation in model.operations:
        identity = model.identities[operation.identity]
        need = operation.need
        granting = [
            a
            for a in by_principal.get(identity.principal, [])
            if a.allows(need.action, need.data, need.scope, need.attribute_map)
        ]
        refusing = denying(model.policies, need.action, need.data, need.scope, need.field_map)
        if granting and refusing:
            result.refused_by_policy[operation] = refusing
            granting = []
        result.allowed[operation] = granting
        if not granting and not need.optional:
            result.denied.append(operation)
    for assignment in model.assignments:
        sole = [
            op for op, granting in result.allowed.items() if granting == [assignment] and not op.need.optional
        ]
        if not sole:
            result.unneeded.append(assignment)
    for prohibition in model.prohibitions:
        fields = dict(prohibition.fields)
        refusing = denying(model.policies, prohibition.action, prohibition.data, prohibition.scope, fields)
        for key in prohibition.identities:
            for assignment in by_principal.get(model.identities[key].principal, []):
                if assignment.allows(
                    prohibition.action, prohibition.data, prohibition.scope, dict(prohibition.attributes)
                ):
                    if refusing:  # RBAC allows it, Azure Policy refuses the request
                        result.held_by_policy[(prohibition, key)] = refusing
                    else:
                        result.violations.append((prohibition, key, assignment))
    for run in model.jobs:
        result.problems += [f"{run.label}: {p}" for p in run.problems]
        if run.identity is None:
            continue
        signed_in = model.identities.get(run.identity)
        if signed_in is None:
            result.problems.append(f"{run.label}: signs in with an unknown client id ({run.identity})")
            continue
        if run.subject not in signed_in.subjects:
            result.problems.append(
                f"{run.label}: its OIDC subject {run.subject} is not trusted by {run.identity} "
                f"({', '.join(signed_in.subjects)}): sign-in fails"
            )
        for stack in run.stacks:
            expected = model.stacks[stack].extra["backend_url"]
            if run.backend_url and run.backend_url != expected:
                result.problems.append(
                    f"{run.label}: PULUMI_BACKEND_URL is {run.backend_url}, {stack}'s is {expected}"
                )
    return result


def read_only_identities(model: Model) -> list[str]:
    return sorted(k for k in model.identities if k.startswith("preview-"))
