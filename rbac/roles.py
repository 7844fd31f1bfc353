"""Azure role definitions (built-in ids, Muse's few custom roles) and the one function that assigns them.

Components expose intent-level methods (`registry.grant_pull(...)`) that call `assign_role`; no role GUID
appears anywhere else. Built-in IDs are the same in every tenant; a custom role's ID is derived from its key
and the subscription's `nameSuffix`, so it is stable across runs and unique per installation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

import pulumi
from pulumi_azure_native import authorization

from rbac import abac
from rbac.abac import And, Compare, Condition, Not, Or, only_when
from rbac.arm import (
    ASSIGNED_PRINCIPAL,
    ASSIGNED_PRINCIPAL_TYPE,
    ASSIGNED_ROLE,
    CUSTOM_RESOURCE_GROUP,
    CUSTOM_RESOURCE_KIND,
    CUSTOM_RESOURCES_READ,
    KEY_DECRYPT,
    MANAGED_CLUSTERS,
    ROLE_ASSIGNMENTS_DELETE,
    ROLE_ASSIGNMENTS_WRITE,
    ROLE_DEFINITIONS,
)


@dataclass(frozen=True)
class BuiltInRole:
    """name and id: Azure's. can: what it lets its holder do here, in one line (the governance docs' RBAC
    matrix)."""

    name: str
    id: str
    can: str


class Role(Enum):
    ACR_PULL = BuiltInRole("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d", "pull images")
    ACR_PUSH = BuiltInRole("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec", "push and pull images")
    KEY_VAULT_SECRETS_USER = BuiltInRole(
        "Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6", "read secret values"
    )
    AKS_CLUSTER_USER = BuiltInRole(
        "Azure Kubernetes Service Cluster User Role",
        "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
        "fetch the (Entra ID) kubeconfig",
    )
    MANAGED_IDENTITY_OPERATOR = BuiltInRole(
        "Managed Identity Operator",
        "f1a07417-d97a-45cb-824c-7a7467783830",
        "assign the identity to resources",
    )
    READER = BuiltInRole(
        "Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", "read every resource (no data, no secrets)"
    )
    CONTRIBUTOR = BuiltInRole(
        "Contributor",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "create, change and delete resources (no role assignments)",
    )
    RBAC_ADMINISTRATOR = BuiltInRole(
        "Role Based Access Control Administrator",
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "assign roles (constrained by its condition)",
    )
    AKS_RBAC_CLUSTER_ADMIN = BuiltInRole(
        "Azure Kubernetes Service RBAC Cluster Admin",
        "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
        "everything inside the cluster",
    )
    AKS_RBAC_READER = BuiltInRole(
        "Azure Kubernetes Service RBAC Reader",
        "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
        "read most Kubernetes objects (no Secrets)",
    )
    AKS_RBAC_WRITER = BuiltInRole(
        "Azure Kubernetes Service RBAC Writer",
        "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
        "change most Kubernetes objects",
    )
    STORAGE_BLOB_DATA_CONTRIBUTOR = BuiltInRole(
        "Storage Blob Data Contributor",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "read and write blobs (Pulumi state)",
    )
    STORAGE_BLOB_DATA_READER = BuiltInRole(
        "Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "read blobs (Pulumi state)"
    )
    # PromQL queries of an Azure Monitor workspace (data action Microsoft.Monitor/accounts/data/metrics/read):
    # the canary gate's (scripts/ci/canary_gate.py). Source of its definition:
    # verify/access/builtin-roles.SOURCE.md.
    MONITORING_DATA_READER = BuiltInRole(
        "Monitoring Data Reader",
        "b0d8363b-8ddd-447d-831f-62ca05bff136",
        "query a workspace's Prometheus metrics (PromQL)",
    )

    @property
    def definition_id(self) -> str:
        return self.value.id


# The roles the deploy identities may hand out (to service principals, on their own resource group): what
# the stacks wire (AcrPull for the kubelet, AcrPush for CI, Secrets User for Muse, Managed Identity Operator
# for the control plane). A stack that assigns anything else fails in CI with 403; a test checks the plans.
DELEGABLE_BY_CI: tuple[Role, ...] = (
    Role.ACR_PULL,
    Role.ACR_PUSH,
    Role.KEY_VAULT_SECRETS_USER,
    Role.MANAGED_IDENTITY_OPERATOR,
)


# Custom role definition ids are uuid5(namespace, "<key>/<nameSuffix>"): the same name gives the same id, so a
# re-run of the bootstrap updates the role instead of creating a second one.
# What a member of an environment's operators' group (muse:operatorsGroupObjectId) gets on the environment's
# resource group, granted by the bootstrap: `az aks get-credentials` (the cluster user credential: local
# accounts are off, so it holds no secret, only the Entra ID login) and Kubernetes read/write in the
# namespaces through Azure RBAC, what docs/runbook.md's triage and manual rollback run (get/logs/delete
# pods, rollout history/undo). Not RBAC Admin or Cluster Admin: no person edits Kubernetes roles or role
# bindings. What Writer lacks and the runbook runs (nodes, namespaces, custom resources) is the custom role
# CustomRoles.KUBERNETES_OPERATOR, assigned beside these (verify/access/runbook.py derives the need).
# Reader: the triage of docs/runbook.md ("When an alert fires") before any kubectl: the fired alerts, the
# workbook, Container Insights and Log Analytics queries (a query is authorized per table,
# `Microsoft.OperationalInsights/workspaces/query/<table>/read`, learn.microsoft.com/azure/azure-monitor/
# logs/manage-access). Its `*/read` is exactly that; Monitoring Reader and Log Analytics Reader add
# `Microsoft.Support/*` (support tickets) and legacy search actions no step uses. Setting an alert to
# Acknowledged is CustomRoles.ALERT_RESPONDER's, not Monitoring Contributor's (which also edits alert rules,
# action groups and diagnostic settings: what Pulumi owns).
OPERATOR_ROLES = (Role.AKS_CLUSTER_USER, Role.AKS_RBAC_WRITER, Role.READER)
# The custom resource verbs its condition opens (for the kinds Muse deploys): read and write, never delete.
OPERATOR_CUSTOM_RESOURCE_VERBS = ("read", "write")
# Those kinds (API group, plural): components/muse_workload/manifests.py CUSTOM_RESOURCES, which this
# building block cannot import; tests/access/test_people.py checks the two are equal.
OPERATOR_CUSTOM_RESOURCES = (
    ("gateway.networking.k8s.io", "gateways"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("secrets-store.csi.x-k8s.io", "secretproviderclasses"),
)
# ... and on the environment's state container (state-<env>, not the group): the runbook's
# `scripts/stack <env> stack output ...` (resource group, cluster, image, URLs) and the wrapper's
# `pulumi stack ls --json` read blobs only. Outputs are read with a blinding secrets provider (pulumi/pulumi
# pkg/cmd/pulumi/stack/stack_output.go), so no key; writing the state stays with the deploy identities.
OPERATOR_STATE_ROLE = Role.STORAGE_BLOB_DATA_READER

_CUSTOM_ROLE_NAMESPACE = uuid.UUID("0b6f3c3e-9d3a-4e55-a3c1-6b2f0f1d5e27")


@dataclass(frozen=True)
class CustomRole:
    """A role Azure has no built-in for: the smallest set of actions one of Muse's steps needs.

    key: stable short name (the id derives from it). display: the role name shown in Azure, without suffix.
    can: what it lets its holder do, in one line (the governance docs' RBAC matrix).
    data_actions / actions: exactly what the role allows; never a wildcard (ACR does not honour wildcards in
    custom roles, and a wildcard would grow with every action Azure adds).
    """

    key: str
    display: str
    description: str
    can: str
    actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()

    def role_name(self, suffix: str) -> str:
        return f"{self.display} ({suffix})"

    def definition_id(self, suffix: str) -> str:
        return str(uuid.uuid5(_CUSTOM_ROLE_NAMESPACE, f"{self.key}/{suffix}"))


class CustomRoles:
    """The custom roles the bootstrap project defines (bootstrap/__main__.py)."""

    # The Key Vault secrets provider of Pulumi (gocloud.dev secrets/azurekeyvault) decrypts the stack's data
    # key with one `decrypt` call when it loads a checkpoint (pulumi/pulumi pkg/secrets/cloud/manager.go
    # newCloudSecretsManager); secret values are then encrypted locally with that data key. Key Vault Crypto
    # User would also allow encrypt, sign, backup and `keys/update/action` (disable the key: a write).
    STATE_DECRYPTER = CustomRole(
        key="state-decrypter",
        display="Muse Pulumi state decrypter",
        can="decrypt with one key (the stack's Pulumi secrets)",
        description="Decrypt the data key of one Muse stack's Pulumi secrets (Key Vault secrets provider).",
        data_actions=(KEY_DECRYPT,),
    )
    # AKS RBAC Reader reads built-in kinds only; custom resources (the SecretProviderClass) need the
    # customresources data action, narrowed by an ABAC condition on group and kind (AKS docs,
    # articles/aks/entra-id-authorization.md, "Restrict custom resource access using ABAC conditions").
    CUSTOM_RESOURCE_READER = CustomRole(
        key="custom-resource-reader",
        display="Muse Kubernetes custom resource reader",
        can="read the custom resource kinds its condition names",
        description="Read Kubernetes custom resources; each assignment's condition names groups and kinds.",
        data_actions=(CUSTOM_RESOURCES_READ,),
    )

    # What docs/runbook.md has an operator run that Azure Kubernetes Service RBAC Writer does not allow
    # (its dataActions in verify/access/builtin-roles.json name no nodes, no namespaces write and no custom
    # resources): `kubectl get|top nodes` and `cordon`/`drain` (nodes read, and write: the cordon is a patch
    # of the Node), `kubectl apply -k deploy/overlays/<env>` (creates the two namespaces on a first
    # bring-up; writes the Gateway, HTTPRoutes and SecretProviderClass), `kubectl get|wait|describe` of the
    # Gateway API kinds and `kubectl patch httproute` (the canary's weight by hand). Data action names:
    # learn.microsoft.com/azure/role-based-access-control/resource-provider-operations
    # (Microsoft.ContainerService) and learn.microsoft.com/azure/aks/manage-azure-rbac. Nothing else: no
    # delete of nodes, namespaces or custom resources, no secrets (Writer's own `secrets/*` aside), nothing
    # of rbac.authorization.k8s.io (roles, bindings: no escalation). Custom resources are narrowed by the
    # assignment's ABAC condition to the kinds Muse deploys (only_custom_resources); AKS offers condition
    # attributes for custom resources only (customResources:group and :kind, entra-id-authorization.md
    # "Available condition attributes"), so nodes and namespaces cannot carry one.
    #
    # Both forms of each custom resource action: AKS checks a request as `customresources/<verb>` (with the
    # group and kind the condition reads) only when its custom resource check is on and the API group is
    # absent from its Microsoft.ContainerService operations map; otherwise as
    # `managedClusters/<group>/<plural>/<verb>` (kubeguard/guard authz/providers/azure/rbac/
    # checkaccessreqhelper.go getDataActions, commit ccdd833f833b03a0c90f0cb7fc7095f93b0a9b53; the
    # customresources actions are a preview, learn.microsoft.com/azure/aks/entra-id-authorization). The
    # per-group actions name exactly Muse's kinds (OPERATOR_CUSTOM_RESOURCES), read and write, no delete:
    # as narrow as the condition, whichever path AKS takes.
    KUBERNETES_OPERATOR = CustomRole(
        key="kubernetes-operator",
        display="Muse Kubernetes operator",
        can="cordon and drain nodes, create namespaces, change the custom resource kinds its condition names",
        description=(
            "What Muse's runbook needs beyond AKS RBAC Writer: nodes (cordon, drain), namespace create, "
            "custom resources (each assignment's condition names groups and kinds)."
        ),
        data_actions=(
            "Microsoft.ContainerService/managedClusters/nodes/read",
            "Microsoft.ContainerService/managedClusters/nodes/write",
            "Microsoft.ContainerService/managedClusters/namespaces/write",
            CUSTOM_RESOURCES_READ,
            "Microsoft.ContainerService/managedClusters/customresources/write",
            *(
                f"{MANAGED_CLUSTERS}/{group}/{plural}/{verb}"
                for group, plural in OPERATOR_CUSTOM_RESOURCES
                for verb in OPERATOR_CUSTOM_RESOURCE_VERBS
            ),
        ),
    )

    # The runbook's first triage step: "set [the alert] to Acknowledged" (POST .../alerts/{id}/changestate,
    # learn.microsoft.com/rest/api/monitor/alertsmanagement/alerts/change-state). Reading alerts is Reader's.
    ALERT_RESPONDER = CustomRole(
        key="alert-responder",
        display="Muse alert responder",
        can="acknowledge and close fired alerts",
        description="Change the state of fired Azure Monitor alerts (acknowledge, close). Nothing else.",
        actions=("Microsoft.AlertsManagement/alerts/changestate/action",),
    )

    ALL: tuple[CustomRole, ...] = (
        STATE_DECRYPTER,
        CUSTOM_RESOURCE_READER,
        KUBERNETES_OPERATOR,
        ALERT_RESPONDER,
    )


class PrincipalType(StrEnum):
    """Always given: without it a freshly created identity fails with PrincipalNotFound while Entra ID
    replicates it."""

    SERVICE_PRINCIPAL = "ServicePrincipal"
    GROUP = "Group"
    USER = "User"


def role_definition_resource_id(subscription_id: str, role: Role) -> str:
    return f"/subscriptions/{subscription_id}/providers/{ROLE_DEFINITIONS}/{role.definition_id}"


def only_assigning(
    roles: list[Role],
    principal_type: PrincipalType,
    never_to: Sequence[str] = (),
    only_role_to: Mapping[str, Role] | None = None,
    only_to: Mapping[Role, Sequence[str]] | None = None,
) -> str:
    """`assigning_condition(...)` in Azure's condition language, for a role assignment's `condition`."""
    return assigning_condition(roles, principal_type, never_to, only_role_to, only_to).render()


def assigning_condition(
    roles: list[Role],
    principal_type: PrincipalType,
    never_to: Sequence[str] = (),
    only_role_to: Mapping[str, Role] | None = None,
    only_to: Mapping[Role, Sequence[str]] | None = None,
) -> Condition:
    """An ABAC condition (version 2.0) for a Role Based Access Control Administrator assignment: the holder
    may create and delete assignments of exactly `roles`, of principals of `principal_type` only (a delete
    is checked on the existing assignment's role, principal type and principal, a create on the request's).
    This is what lets CI wire AcrPull or Key Vault Secrets User without being able to make itself Owner.

    `never_to`: principal (object) ids it may never grant to, e.g. the CI identities themselves, so a
    deployer cannot hand a pull request's preview identity Key Vault Secrets User. Written as the negation of
    `ForAnyOfAnyValues:GuidEquals`, not as `ForAnyOfAnyValues:GuidNotEquals {a, b}`: that operator is true
    when at least one value on the left differs from at least one on the right (conditions-format.md, "Cross
    product comparison"), so against two or more ids it is always true. `only_role_to`: a principal that may
    be granted exactly one role (the build identity: AcrPush from the stack that owns its registry).
    `only_to`: a role beyond `roles` that may be assigned to these principals and no one else, and whose
    existing assignments may be deleted only when they belong to them (the other environments' deployers:
    Reader on the source registry for `az acr import`); without it, adding Reader to `roles` would let the
    holder give any service principal Reader on the whole group, or delete the preview identity's Reader.
    The condition cannot name the scope: role assignment writes carry only the role definition, principal id
    and principal type, deletes the same of the existing assignment (conditions-authorization-actions-
    attributes.md, "Authorization actions"); the bound on the scope is the delegation's own scope.
    Attributes and operators: conditions-authorization-actions-attributes.md ("Principal ID"), example forms:
    delegate-role-assignments-examples.md ("Constrain roles and specific groups")."""
    exclusive = {role: sorted(set(principals)) for role, principals in (only_to or {}).items() if principals}
    if overlap := {role.value.name for role in exclusive} & {role.value.name for role in roles}:
        raise ValueError(f"{sorted(overlap)} are delegable to anyone: they cannot also be only_to some")
    assignable = [role.definition_id for role in (*roles, *exclusive)]

    def limits(attribute: Callable[[str], str]) -> And:
        # `attribute` is abac.request (the assignment being written) or abac.resource (the one being deleted).
        def guid_in(name: str, values: Iterable[str]) -> Compare:
            return Compare(attribute(name), "ForAnyOfAnyValues:GuidEquals", tuple(sorted(set(values))))

        found: list[Condition] = [
            guid_in(ASSIGNED_ROLE, assignable),
            Compare(
                attribute(ASSIGNED_PRINCIPAL_TYPE),
                "ForAnyOfAnyValues:StringEqualsIgnoreCase",
                (principal_type.value,),
            ),
        ]
        if never_to:
            found.append(Not(guid_in(ASSIGNED_PRINCIPAL, never_to)))
        for grantee, only in sorted((only_role_to or {}).items()):
            found.append(
                Or(
                    (
                        Not(guid_in(ASSIGNED_PRINCIPAL, [grantee])),
                        guid_in(ASSIGNED_ROLE, [only.definition_id]),
                    )
                )
            )
        for exclusive_role, principals in sorted(exclusive.items(), key=lambda item: item[0].definition_id):
            found.append(
                Or(
                    (
                        Not(guid_in(ASSIGNED_ROLE, [exclusive_role.definition_id])),
                        guid_in(ASSIGNED_PRINCIPAL, principals),
                    )
                )
            )
        return And(tuple(found))

    # The delete branch reads the existing assignment (@Resource) with the same limits as the write branch
    # (@Request): otherwise the holder could remove these roles from anyone in scope, users and CI included
    # (delegate-role-assignments-examples.md, "Constrain roles and principal types" / "... specific groups").
    return And(
        (
            only_when(ROLE_ASSIGNMENTS_WRITE, limits(abac.request)),
            only_when(ROLE_ASSIGNMENTS_DELETE, limits(abac.resource)),
        )
    )


def only_reading_custom_resources(kinds: list[tuple[str, str]]) -> str:
    """An ABAC condition (version 2.0) for a custom resource reader assignment: reads of custom resources are
    allowed for exactly these (API group, plural kind) pairs; any other action passes through (the role grants
    none). The form AKS documents (articles/aks/entra-id-authorization.md), one clause per kind."""
    return only_custom_resources(kinds, ("read",))


def only_custom_resources(kinds: list[tuple[str, str]], verbs: Sequence[str]) -> str:
    """`custom_resource_condition(...)` in Azure's condition language."""
    return custom_resource_condition(kinds, verbs).render()


def custom_resource_condition(kinds: list[tuple[str, str]], verbs: Sequence[str]) -> Condition:
    """The same for each of `verbs` (read, write): the action `customresources/<verb>` is allowed for these
    (API group, plural kind) pairs only; every other action passes through (the role's own list bounds it)."""
    clauses = Or(
        tuple(
            And(
                (
                    Compare(abac.request(CUSTOM_RESOURCE_GROUP), "StringEqualsIgnoreCase", (group,)),
                    Compare(abac.request(CUSTOM_RESOURCE_KIND), "StringEqualsIgnoreCase", (kind,)),
                )
            )
            for group, kind in sorted(set(kinds))
        )
    )
    action = CUSTOM_RESOURCES_READ.rsplit("/", 1)[0]
    return And(tuple(only_when(f"{action}/{verb}", clauses) for verb in dict.fromkeys(verbs)))


def assign_role(
    resource_name: str,
    *,
    role: Role | tuple[CustomRole, pulumi.Input[str]],
    scope: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    principal_type: PrincipalType,
    parent: pulumi.Resource,
    condition: pulumi.Input[str] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> authorization.RoleAssignment:
    """Assign `role` to `principal_id` at `scope` (a resource or resource group, never a subscription).

    `role` is a built-in `Role`, or a `CustomRole` with the resource id of its definition (the
    `authorization.RoleDefinition` the bootstrap creates). `condition` is an ABAC condition (see
    `only_assigning`)."""
    if isinstance(role, Role):
        client = authorization.get_client_config_output()
        built_in = role
        definition_id: pulumi.Input[str] = client.subscription_id.apply(
            lambda sub: role_definition_resource_id(sub, built_in)
        )
        role_name = role.value.name
    else:
        custom, definition_id = role
        role_name = custom.display
    return authorization.RoleAssignment(
        resource_name,
        scope=scope,
        principal_id=principal_id,
        principal_type=principal_type.value,
        role_definition_id=definition_id,
        description=f"{role_name} for Muse, managed by Pulumi",
        condition=condition,
        condition_version="2.0" if condition else None,
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=parent), opts),
    )
