"""Azure RBAC evaluated as Azure documents it, on the real built-in role definitions (vendored).

Sources: learn.microsoft.com/azure/role-based-access-control/role-definitions (Actions minus NotActions,
DataActions apart, wildcards), .../conditions-format (ABAC), the built-in roles pages (builtin-roles.json).
"""

from __future__ import annotations

import re

import pytest

from rbac.roles import DELEGABLE_BY_CI, PrincipalType, Role, only_assigning, only_reading_custom_resources
from verify.access.conditions import Request, evaluate, matches, parse_check
from verify.access.rbac import Assignment, builtin_role, in_scope

GROUP = "/subscriptions/s/resourceGroups/rg-muse-dev-m7k2"
REGISTRY = f"{GROUP}/providers/Microsoft.ContainerRegistry/registries/acrmusedevm7k2"
CLUSTER = f"{GROUP}/providers/Microsoft.ContainerService/managedClusters/aks-muse-dev-m7k2"


def allows(role: str, action: str, data: bool = False) -> bool:
    return builtin_role(role).permissions.allows(action, data)


def test_wildcards_match_across_segments_and_ignore_case() -> None:
    assert matches("*/read", "Microsoft.ContainerRegistry/registries/read")
    assert matches("Microsoft.Authorization/*/Write", "microsoft.authorization/roleAssignments/write")
    assert not matches(
        "Microsoft.ContainerRegistry/registries/read", "Microsoft.ContainerRegistry/registries/write"
    )
    # `/*/` may stand for no segment: Managed Identity Operator's one way to assign an identity.
    assert matches(
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    )


def test_not_actions_are_subtracted_from_actions() -> None:
    # Contributor: `*` minus Microsoft.Authorization/*/Write: it cannot create role assignments.
    assert allows("Contributor", "Microsoft.ContainerRegistry/registries/importImage/action")
    assert not allows("Contributor", "Microsoft.Authorization/roleAssignments/write")
    assert allows("Role Based Access Control Administrator", "Microsoft.Authorization/roleAssignments/write")


def test_data_actions_are_apart_from_actions() -> None:
    # Owner's `*` reaches no blob and no secret value; only dataActions do.
    assert not allows(
        "Owner", "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", data=True
    )
    assert allows(
        "Storage Blob Data Reader",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
        True,
    )
    assert not allows(
        "Storage Blob Data Reader",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        True,
    )


def test_the_defects_the_review_found_are_real_in_the_role_definitions() -> None:
    # prod's import read the source registry with AcrPull, which lacks registries/read (Reader has it).
    assert not allows("AcrPull", "Microsoft.ContainerRegistry/registries/read")
    assert allows("Reader", "Microsoft.ContainerRegistry/registries/read")
    assert allows(
        "Reader", "Microsoft.ContainerRegistry/registries/pull/read"
    )  # `*/read`, as ACR's table says
    assert not allows("Reader", "Microsoft.ContainerRegistry/registries/importImage/action")
    # AKS RBAC Reader reads no custom resource: refreshing the SecretProviderClass fails with it alone.
    spc = "Microsoft.ContainerService/managedClusters/customresources/read"
    assert not allows("Azure Kubernetes Service RBAC Reader", spc, data=True)
    assert not allows("Azure Kubernetes Service RBAC Writer", spc, data=True)
    assert allows("Azure Kubernetes Service RBAC Cluster Admin", spc, data=True)
    # Key Vault Crypto User, which every CI identity had on the one state key, can also disable the key.
    assert allows("Key Vault Crypto User", "Microsoft.KeyVault/vaults/keys/update/action", data=True)


def test_scope_covers_itself_and_below_only() -> None:
    assert in_scope(GROUP, REGISTRY)
    assert in_scope(GROUP.upper(), REGISTRY)  # ARM ids are case-insensitive
    assert not in_scope(REGISTRY, GROUP)
    assert not in_scope(GROUP, GROUP.replace("rg-muse-dev-m7k2", "rg-muse-dev-m7k22"))  # not a string prefix


def _delegation(condition: str) -> Assignment:
    return Assignment("d", "p", builtin_role("Role Based Access Control Administrator"), GROUP, condition)


@pytest.mark.parametrize(
    ("role", "principal_type", "allowed"),
    [
        (Role.ACR_PULL, "ServicePrincipal", True),
        (Role.KEY_VAULT_SECRETS_USER, "ServicePrincipal", True),
        (Role.ACR_PULL, "User", False),
        (Role.CONTRIBUTOR, "ServicePrincipal", False),
        (Role.RBAC_ADMINISTRATOR, "ServicePrincipal", False),
    ],
)
def test_constrained_delegation_condition(role: Role, principal_type: str, allowed: bool) -> None:
    delegation = _delegation(only_assigning(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL))
    request = {
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]": role.definition_id,
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]": principal_type,
    }
    action = "Microsoft.Authorization/roleAssignments/write"
    assert delegation.allows(action, False, REGISTRY, request) is allowed
    # Reads pass the condition untouched (it constrains writes and deletes only).
    assert delegation.allows("Microsoft.Authorization/roleAssignments/read", False, REGISTRY, {})
    # Deleting an existing Owner assignment is refused; deleting a service principal's AcrPull one is allowed.
    delete = "Microsoft.Authorization/roleAssignments/delete"
    existing = "@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
    existing_type = "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType]"
    service_principal = {existing_type: "ServicePrincipal"}
    owner = {existing: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", **service_principal}
    assert not delegation.allows(delete, False, REGISTRY, owner)
    assert delegation.allows(
        delete, False, REGISTRY, {existing: Role.ACR_PULL.definition_id, **service_principal}
    )


EXISTING_ROLE = "@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
EXISTING_TYPE = "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType]"
EXISTING_PRINCIPAL = "@Resource[Microsoft.Authorization/roleAssignments:PrincipalId]"
CI = "11111111-1111-1111-1111-111111111111"
BUILD = "22222222-2222-2222-2222-222222222222"
WORKLOAD = "33333333-3333-3333-3333-333333333333"


def _existing(role: Role, kind: str, principal: str) -> dict[str, str]:
    return {EXISTING_ROLE: role.definition_id, EXISTING_TYPE: kind, EXISTING_PRINCIPAL: principal}


def test_the_delete_branch_limits_principal_type_and_principal_like_the_write_branch() -> None:
    """A delete is checked on the existing assignment (@Resource): its role, principal type and principal
    (delegate-role-assignments-examples, "Constrain roles and principal types", "... specific groups")."""
    condition = only_assigning(
        list(DELEGABLE_BY_CI),
        PrincipalType.SERVICE_PRINCIPAL,
        never_to=[CI],
        only_role_to={BUILD: Role.ACR_PUSH},
    )
    delete = "Microsoft.Authorization/roleAssignments/delete"
    allowed = _delegation(condition).allows
    assert allowed(delete, False, REGISTRY, _existing(Role.ACR_PULL, "ServicePrincipal", WORKLOAD))
    assert allowed(delete, False, REGISTRY, _existing(Role.ACR_PUSH, "ServicePrincipal", BUILD))
    assert not allowed(delete, False, REGISTRY, _existing(Role.ACR_PULL, "User", WORKLOAD))  # a person's
    assert not allowed(delete, False, REGISTRY, _existing(Role.ACR_PULL, "ServicePrincipal", CI))  # CI's
    assert not allowed(
        delete, False, REGISTRY, _existing(Role.KEY_VAULT_SECRETS_USER, "ServicePrincipal", BUILD)
    )
    # Negative control: the delete branch as it was (role only) lets the holder remove a user's or CI's grant.
    role_only = condition.split(" AND ((!(ActionMatches{'" + delete)[0] + (
        f" AND ((!(ActionMatches{{'{delete}'}})) OR ({EXISTING_ROLE} ForAnyOfAnyValues:GuidEquals "
        f"{{{', '.join(sorted(r.definition_id for r in DELEGABLE_BY_CI))}}}))"
    )
    loose = _delegation(role_only).allows
    assert loose(delete, False, REGISTRY, _existing(Role.ACR_PULL, "User", WORKLOAD))
    assert loose(delete, False, REGISTRY, _existing(Role.ACR_PULL, "ServicePrincipal", CI))


def test_custom_resource_condition_allows_exactly_the_named_kinds() -> None:
    condition = only_reading_custom_resources([("secrets-store.csi.x-k8s.io", "secretproviderclasses")])
    group = "@Request[Microsoft.ContainerService/managedClusters/customResources:group]"
    kind = "@Request[Microsoft.ContainerService/managedClusters/customResources:kind]"
    read = "Microsoft.ContainerService/managedClusters/customresources/read"
    spc = {group: "secrets-store.csi.x-k8s.io", kind: "secretproviderclasses"}
    assert evaluate(condition, Request(read, spc))
    assert not evaluate(condition, Request(read, {group: "security.istio.io", kind: "authorizationpolicies"}))
    assert not evaluate(condition, Request(read, {}))  # missing attributes make the comparison false
    assert evaluate(condition, Request("Microsoft.ContainerService/managedClusters/pods/read", {}))


def test_unknown_condition_syntax_is_refused() -> None:
    parse_check(only_assigning([Role.ACR_PULL], PrincipalType.SERVICE_PRINCIPAL))
    with pytest.raises(ValueError, match="unsupported condition syntax"):
        parse_check("@Request[x] NumericLessThan 3")


CI_PRINCIPALS = ("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222")
BUILD_PRINCIPAL = "33333333-3333-3333-3333-333333333333"


@pytest.mark.parametrize(
    ("role", "principal", "allowed"),
    [
        (Role.KEY_VAULT_SECRETS_USER, "44444444-4444-4444-4444-444444444444", True),  # a workload identity
        (Role.KEY_VAULT_SECRETS_USER, CI_PRINCIPALS[0], False),
        (Role.ACR_PUSH, CI_PRINCIPALS[1].upper(), False),  # GUIDs compare without letter case
        (Role.ACR_PUSH, BUILD_PRINCIPAL, True),
        (Role.KEY_VAULT_SECRETS_USER, BUILD_PRINCIPAL, False),
    ],
)
def test_delegation_never_reaches_a_ci_identity(role: Role, principal: str, allowed: bool) -> None:
    condition = only_assigning(
        list(DELEGABLE_BY_CI),
        PrincipalType.SERVICE_PRINCIPAL,
        never_to=CI_PRINCIPALS,
        only_role_to={BUILD_PRINCIPAL: Role.ACR_PUSH},
    )
    parse_check(condition)
    request = {
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]": role.definition_id,
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]": "ServicePrincipal",
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalId]": principal,
    }
    action = "Microsoft.Authorization/roleAssignments/write"
    assert _delegation(condition).allows(action, False, REGISTRY, request) is allowed


IMPORTER = "66666666-6666-6666-6666-666666666666"
OTHER = "44444444-4444-4444-4444-444444444444"  # any other service principal


@pytest.mark.parametrize(
    ("action", "role", "principal", "allowed"),
    [
        ("write", Role.READER, IMPORTER, True),
        ("write", Role.READER, IMPORTER.upper(), True),
        ("write", Role.READER, "44444444-4444-4444-4444-444444444444", False),  # any other principal
        ("write", Role.READER, CI_PRINCIPALS[0], False),
        ("write", Role.ACR_PULL, IMPORTER, False),  # the importer gets Reader and nothing else
        ("write", Role.ACR_PULL, "44444444-4444-4444-4444-444444444444", True),
        ("delete", Role.READER, IMPORTER, True),
        ("delete", Role.READER, CI_PRINCIPALS[0], False),  # e.g. the preview identity's Reader on the group
        ("delete", Role.ACR_PULL, "44444444-4444-4444-4444-444444444444", True),
    ],
)
def test_only_to_limits_a_role_to_its_principals_for_write_and_delete(
    action: str, role: Role, principal: str, allowed: bool
) -> None:
    condition = only_assigning(
        list(DELEGABLE_BY_CI),
        PrincipalType.SERVICE_PRINCIPAL,
        never_to=CI_PRINCIPALS,
        only_role_to={IMPORTER: Role.READER},
        only_to={Role.READER: [IMPORTER]},
    )
    parse_check(condition)
    side = "@Request" if action == "write" else "@Resource"
    attributes = {
        f"{side}[Microsoft.Authorization/roleAssignments:RoleDefinitionId]": role.definition_id,
        f"{side}[Microsoft.Authorization/roleAssignments:PrincipalType]": "ServicePrincipal",
        f"{side}[Microsoft.Authorization/roleAssignments:PrincipalId]": principal,
    }
    request = f"Microsoft.Authorization/roleAssignments/{action}"
    assert _delegation(condition).allows(request, False, REGISTRY, attributes) is allowed


def test_negative_control_a_role_in_the_plain_list_goes_to_anyone() -> None:
    condition = only_assigning([*DELEGABLE_BY_CI, Role.READER], PrincipalType.SERVICE_PRINCIPAL)
    attributes = {
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]": Role.READER.definition_id,
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]": "ServicePrincipal",
        "@Request[Microsoft.Authorization/roleAssignments:PrincipalId]": OTHER,
    }
    write = "Microsoft.Authorization/roleAssignments/write"
    assert _delegation(condition).allows(write, False, REGISTRY, attributes)
    with pytest.raises(ValueError, match="delegable to anyone"):
        only_assigning([Role.READER], PrincipalType.SERVICE_PRINCIPAL, only_to={Role.READER: [IMPORTER]})


def test_negative_control_for_any_of_any_values_guid_not_equals_excludes_nobody() -> None:
    # "If at least one value on the left-hand side satisfies the comparison to at least one value on the
    # right-hand side" (conditions-format.md, cross product comparison): p != a or p != b, true for every p
    # when a != b. So this form, the obvious way to write "not one of these", would allow a CI identity.
    attribute = "@Request[Microsoft.Authorization/roleAssignments:PrincipalId]"
    naive = f"{attribute} ForAnyOfAnyValues:GuidNotEquals {{{', '.join(CI_PRINCIPALS)}}}"
    assert evaluate(naive, Request("x", {attribute: CI_PRINCIPALS[0]}))
    negated = f"!({attribute} ForAnyOfAnyValues:GuidEquals {{{', '.join(CI_PRINCIPALS)}}})"
    assert not evaluate(negated, Request("x", {attribute: CI_PRINCIPALS[0]}))
    # With one value on each side the two forms agree.
    single = f"{attribute} ForAnyOfAnyValues:GuidNotEquals {{{CI_PRINCIPALS[0]}}}"
    assert not evaluate(single, Request("x", {attribute: CI_PRINCIPALS[0]}))
    assert evaluate(single, Request("x", {attribute: BUILD_PRINCIPAL}))


def test_the_operations_that_rest_on_the_zero_segment_assumption(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which proofs depend on `/*/` matching no segment (verify/access/rbac.py `_pattern`, an assumption
    role-definitions.md does not state): with a `*` that needs at least one character there, exactly the
    deployers' assignment of the cluster's user-assigned identities (Managed Identity Operator's
    `userAssignedIdentities/*/assign/action`) is no longer proven, and nothing else."""
    from verify.access import rbac
    from verify.access.model import build, evaluate

    model = build()
    assert evaluate(model).denied == []

    def strict(pattern: str, action: str) -> bool:
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        return re.fullmatch(regex, action, re.IGNORECASE) is not None

    monkeypatch.setattr(rbac, "matches", strict)
    denied = {op.need.action for op in evaluate(model).denied}
    assert denied == {"Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"}
