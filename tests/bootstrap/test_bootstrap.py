"""The bootstrap project: landing zone and GitHub OIDC identities, least privilege, for every environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pulumi
import pytest

from offline.engine import OfflinePlan, PlannedResource, run_stack
from offline.mocks import deterministic_uuid
from rbac.roles import CustomRoles, Role
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT
from stack.naming import ResourceNames, StateBackendNames

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
CREDENTIAL = "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
GROUPS = {env: ResourceNames.for_stack(env, "m7k2").resource_group for env in ENVIRONMENTS}
STATE = {env: StateBackendNames.for_environment(env, "m7k2") for env in ENVIRONMENTS}


@pytest.fixture(scope="module")
def plan(bootstrap_plan: OfflinePlan) -> OfflinePlan:
    return bootstrap_plan


def _principal(identity: str) -> str:
    return deterministic_uuid("main", identity, "service-principal")


def _grants(plan: OfflinePlan, identity: str) -> dict[tuple[str, str], PlannedResource]:
    """(role name, scope tail) -> assignment, for one identity (custom roles by their display name)."""
    names = {role.definition_id: role.value.name for role in Role}
    names |= {custom.definition_id("m7k2"): custom.display for custom in CustomRoles.ALL}
    return {
        (names[r.get("roleDefinitionId").rsplit("/", 1)[-1]], r.get("scope").split("/resourceGroups/")[-1]): r
        for r in plan.of_type(ROLE_ASSIGNMENT)
        if r.get("principalId") == _principal(identity)
    }


def test_one_tagged_group_per_environment_named_as_the_stacks_expect(plan: OfflinePlan) -> None:
    groups = {r.get("resourceGroupName"): r for r in plan.of_type("azure-native:resources:ResourceGroup")}
    assert set(groups) == set(GROUPS.values())
    for environment, name in GROUPS.items():
        assert groups[name].get("tags") == {
            "env": environment,
            "owner": "platform-team",
            "app": "muse",
            "managed-by": "pulumi",
        }
        assert groups[name].get("location") == "westeurope"


def test_every_group_is_protected_from_deletion_but_not_locked(plan: OfflinePlan) -> None:
    # Pulumi protect: a destroy of this stack, or a group dropped from it, stops instead of deleting the
    # environment. No CanNotDelete lock on a group: it would stop the environment's stack from deleting
    # anything inside it; the stateful resources carry their own locks.
    for group in plan.of_type("azure-native:resources:ResourceGroup"):
        assert group.protect, group.urn
    assert plan.of_type("azure-native:authorization:ManagementLockByScope") == []
    # Negative control: the identities bootstrap creates are not protected (they are rotated on purpose).
    assert not any(r.protect for r in plan.resources if r.type.startswith("azuread:"))


def test_federated_subjects_per_identity(plan: OfflinePlan) -> None:
    subjects: dict[str, set[str]] = {}
    for credential in plan.of_type(CREDENTIAL):
        identity = plan.by_urn(credential.parent).name  # type: ignore[arg-type]
        subjects.setdefault(identity, set()).add(credential.get("subject"))
    # The stacks' muse:githubSubjectPrefixes: the immutable format (repositories created after 2026-07-15,
    # docs.github.com/en/actions/reference/security/oidc "Immutable subject claims").
    repo = "repo:muse-platform@184467302/muse@1021473690"
    assert subjects == {
        # Pull requests preview dev only; the scheduled drift of dev runs in the preview-dev environment.
        "preview-dev": {f"{repo}:pull_request", f"{repo}:environment:preview-dev"},
        "preview-prod": {f"{repo}:environment:preview-prod"},
        "build": {f"{repo}:ref:refs/heads/main"},
        "deploy-dev": {f"{repo}:environment:dev"},
        "deploy-prod": {f"{repo}:environment:prod"},  # only a job that passed the prod approval gets it
    }


def test_no_subject_is_trusted_by_two_identities(plan: OfflinePlan) -> None:
    # A job's OIDC token can be exchanged for any application that trusts its subject: with a shared subject,
    # the build job could sign in as the dev deployer by changing one client id.
    subjects = [credential.get("subject") for credential in plan.of_type(CREDENTIAL)]
    assert len(subjects) == len(set(subjects))


def test_no_identity_has_a_role_on_the_subscription(plan: OfflinePlan) -> None:
    for assignment in plan.of_type(ROLE_ASSIGNMENT):
        assert "/resourceGroups/" in assignment.get("scope"), assignment.name
        assert assignment.get("principalType") == "ServicePrincipal"


@pytest.mark.parametrize(("environment", "other"), [("dev", "prod"), ("prod", "dev")])
def test_deployers_act_on_their_own_group_only(plan: OfflinePlan, environment: str, other: str) -> None:
    grants = _grants(plan, f"deploy-{environment}")
    on_own_group = {role for role, scope in grants if scope == GROUPS[environment]}
    assert on_own_group == {
        "Contributor",
        "Role Based Access Control Administrator",
        "Azure Kubernetes Service RBAC Cluster Admin",
        "Monitoring Data Reader",  # the canary gate's metric query (tests/access: denied without it)
    }
    # Nothing in the other environment's group: prod's Reader on the dev registry (`az acr import`) is the dev
    # stack's grant, on that registry only (tests/access: the import is allowed, and denied without it).
    assert not [role for role, scope in grants if scope.startswith(GROUPS[other])]


def test_delegated_role_assignment_is_constrained(plan: OfflinePlan) -> None:
    for environment in GROUPS:
        delegate = _grants(plan, f"deploy-{environment}")[
            ("Role Based Access Control Administrator", GROUPS[environment])
        ]
        condition = delegate.get("condition")
        for allowed in (
            Role.ACR_PULL,
            Role.ACR_PUSH,
            Role.KEY_VAULT_SECRETS_USER,
            Role.MANAGED_IDENTITY_OPERATOR,
        ):
            assert allowed.definition_id in condition
        for forbidden in (Role.CONTRIBUTOR, Role.RBAC_ADMINISTRATOR):
            assert forbidden.definition_id not in condition
        assert "Owner" not in condition and "8e3af657-a8ff-443c-a75c-2fe8c4bcb635" not in condition
        # Reader: in dev for prod's deployer only (the import source grant); in prod for no one.
        assert (Role.READER.definition_id in condition) is (environment == "dev")


@pytest.mark.parametrize(
    ("environment", "role", "grantee", "allowed"),
    [
        ("dev", Role.READER, "deploy-prod", True),
        ("dev", Role.READER, "preview-dev", False),
        ("dev", Role.READER, "build", False),
        ("dev", Role.READER, "deploy-dev", False),
        ("dev", Role.READER, None, False),  # any other service principal
        ("dev", Role.ACR_PULL, None, True),  # the kubelet's AcrPull, for comparison
        ("dev", Role.ACR_PULL, "deploy-prod", False),  # prod's deployer gets Reader and nothing else
        ("dev", Role.ACR_PUSH, "build", True),
        ("prod", Role.READER, "deploy-prod", False),
        ("prod", Role.READER, None, False),
    ],
)
def test_the_delegation_gives_reader_to_prods_deployer_in_dev_only(
    plan: OfflinePlan, environment: str, role: Role, grantee: str | None, allowed: bool
) -> None:
    from verify.access.conditions import Request, evaluate

    condition = _grants(plan, f"deploy-{environment}")[
        ("Role Based Access Control Administrator", GROUPS[environment])
    ].get("condition")
    principal = _principal(grantee) if grantee else "00000000-0000-4000-8000-0000000000ff"
    attribute = "@{}[Microsoft.Authorization/roleAssignments:{}]"
    write = {
        attribute.format("Request", "RoleDefinitionId"): role.definition_id,
        attribute.format("Request", "PrincipalType"): "ServicePrincipal",
        attribute.format("Request", "PrincipalId"): principal,
    }
    delete = {key.replace("@Request", "@Resource"): value for key, value in write.items()}
    assert evaluate(condition, Request("Microsoft.Authorization/roleAssignments/write", write)) is allowed
    # Deleting follows the same line for Reader (the preview identity's Reader on the group stays).
    if role is Role.READER:
        assert (
            evaluate(condition, Request("Microsoft.Authorization/roleAssignments/delete", delete)) is allowed
        )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_preview_identities_only_read_their_own_environment(plan: OfflinePlan, environment: str) -> None:
    grants = _grants(plan, f"preview-{environment}")
    assert {role for role, _ in grants} == {
        "Reader",
        "Azure Kubernetes Service Cluster User Role",
        "Azure Kubernetes Service RBAC Reader",
        "Muse Kubernetes custom resource reader",  # the SecretProviderClass, by condition
        "Storage Blob Data Reader",  # a preview neither locks nor writes state (pulumi/pulumi diy backend)
        "Muse Pulumi state decrypter",
    }
    assert all(environment in scope for _, scope in grants)
    [reader] = [g for (role, _), g in grants.items() if role == "Muse Kubernetes custom resource reader"]
    assert "'secretproviderclasses'" in reader.get("condition")


@pytest.mark.parametrize("identity", ["preview-dev", "preview-prod", "build", "deploy-dev", "deploy-prod"])
def test_each_identity_reaches_one_environments_state_at_most(plan: OfflinePlan, identity: str) -> None:
    grants = _grants(plan, identity)
    state = {(role, scope) for role, scope in grants if scope.startswith(STATE["dev"].resource_group)}
    environment = "prod" if identity.endswith("prod") else "dev"
    names = STATE[environment]
    container = (
        f"{names.resource_group}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}"
        f"/blobServices/default/containers/{names.container}"
    )
    key = f"{names.resource_group}/providers/Microsoft.KeyVault/vaults/{names.key_vault}/keys/{names.key}"
    expected = {
        "build": {("Storage Blob Data Reader", container)},  # stack outputs only: no key
        "deploy-dev": {("Storage Blob Data Contributor", container), ("Muse Pulumi state decrypter", key)},
        "preview-dev": {("Storage Blob Data Reader", container), ("Muse Pulumi state decrypter", key)},
    }
    expected["deploy-prod"] = expected["deploy-dev"]
    expected["preview-prod"] = expected["preview-dev"]
    assert state == expected[identity]


def test_custom_roles_are_exact_and_assignable_where_they_are_assigned(plan: OfflinePlan) -> None:
    definitions = {d.name: d for d in plan.of_type("azure-native:authorization:RoleDefinition")}
    assert set(definitions) == {c.key for c in CustomRoles.ALL}
    for custom in CustomRoles.ALL:
        definition = definitions[custom.key]
        assert definition.get("roleDefinitionId") == custom.definition_id("m7k2")
        assert definition.get("roleName") == f"{custom.display} (m7k2)"
        [permissions] = definition.get("permissions")
        assert tuple(permissions.get("dataActions", ())) == custom.data_actions
        assert not any("*" in action for action in custom.data_actions + custom.actions)
        scopes = definition.get("assignableScopes")
        for assignment in plan.of_type(ROLE_ASSIGNMENT):
            if assignment.get("roleDefinitionId").endswith(custom.definition_id("m7k2")):
                assert any(assignment.get("scope").startswith(scope) for scope in scopes), assignment.name


def test_outputs_feed_the_github_variables_and_stack_config(plan: OfflinePlan) -> None:
    outputs = {name: output.value for name, output in plan.outputs.items()}
    assert outputs["stateBackends"] == {
        env: {"backendUrl": names.backend_url, "secretsProvider": names.secrets_provider}
        for env, names in STATE.items()
    }
    assert (
        outputs["stateBackends"]["prod"]["backendUrl"]
        == "azblob://state-prod?storage_account=stmusestatem7k2"
    )
    assert outputs["resourceGroups"] == GROUPS
    variables = outputs["githubVariables"]
    environments = variables["environments"]
    assert set(environments) == {"dev", "prod", "preview-dev", "preview-prod"}
    assert environments["prod"]["PULUMI_BACKEND_URL"] == STATE["prod"].backend_url
    assert environments["preview-prod"]["PULUMI_BACKEND_URL"] == STATE["prod"].backend_url
    # Pull requests and the build run in no environment: the repository level points at dev.
    assert variables["repository"]["PULUMI_BACKEND_URL"] == STATE["dev"].backend_url
    client_ids = [
        variables["repository"]["AZURE_BUILD_CLIENT_ID"],
        environments["dev"]["AZURE_CLIENT_ID"],
        environments["prod"]["AZURE_CLIENT_ID"],
        environments["preview-dev"]["AZURE_PREVIEW_CLIENT_ID"],
        environments["preview-prod"]["AZURE_PREVIEW_CLIENT_ID"],
    ]
    assert len(set(client_ids)) == 5
    preview_dev = environments["preview-dev"]["AZURE_PREVIEW_CLIENT_ID"]
    assert variables["repository"]["AZURE_PREVIEW_CLIENT_ID"] == preview_dev
    # The dev registry grants AcrPush to the build identity, nobody pushes to prod (it imports).
    # Prod's deployer imports from the dev registry: the dev stack grants it Reader there.
    assert outputs["stackConfig"] == {
        "dev": {
            "muse:imagePushPrincipalId": _principal("build"),
            "muse:imageImportPrincipalId": _principal("deploy-prod"),
        },
        "prod": {},
    }


def test_environments_that_disagree_are_refused_before_any_resource(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "bootstrap", tmp_path / "bootstrap")
    for stack in ENVIRONMENTS:
        shutil.copy(REPO_ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    shutil.copy(REPO_ROOT / "Pulumi.yaml", tmp_path)
    prod = tmp_path / "Pulumi.prod.yaml"
    original = prod.read_text()
    # (Another repository needs a suffix of its own: m7k2 is muse-platform/muse's, stack/naming.py.)
    prod.write_text(
        original.replace("muse:githubRepository: muse-platform/muse", "muse:githubRepository: someone/else")
        .replace("repo:muse-platform@184467302/muse@", "repo:someone@184467302/else@")
        .replace("muse:nameSuffix: m7k2", "muse:nameSuffix: zz99")
    )
    with pytest.raises(pulumi.RunError, match=r"same muse:githubRepository.*someone/else"):
        run_stack("main", root=tmp_path / "bootstrap")
    # The same repository with another subject prefix in one stack: two sets of credentials would disagree.
    prod.write_text(original.replace("/muse@1021473690", "/muse@1021473691"))
    with pytest.raises(pulumi.RunError, match=r"muse:githubSubjectPrefixes.*1021473691"):
        run_stack("main", root=tmp_path / "bootstrap")
