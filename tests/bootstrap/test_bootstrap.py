"""The bootstrap project: landing zone and GitHub OIDC identities, least privilege, for every environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pulumi
import pytest

from offline.engine import OfflinePlan, PlannedResource, run_stack
from offline.mocks import deterministic_uuid
from rbac.roles import Role
from stack.files import REPO_ROOT
from stack.naming import ResourceNames, StateBackendNames

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
CREDENTIAL = "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
GROUPS = {env: ResourceNames.for_stack(env, "m7k2").resource_group for env in ("dev", "prod")}
STATE = StateBackendNames.for_suffix("m7k2")


@pytest.fixture(scope="module")
def plan() -> OfflinePlan:
    return run_stack("main", root=REPO_ROOT / "bootstrap")


def _principal(identity: str) -> str:
    return deterministic_uuid("main", identity, "service-principal")


def _grants(plan: OfflinePlan, identity: str) -> dict[tuple[str, str], PlannedResource]:
    """(role name, scope tail) -> assignment, for one identity."""
    names = {role.definition_id: role.value.name for role in Role}
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
    repo = "repo:muse-platform/muse"
    assert subjects == {
        "preview": {f"{repo}:pull_request", f"{repo}:ref:refs/heads/main"},
        "deploy-dev": {f"{repo}:ref:refs/heads/main"},
        "deploy-prod": {f"{repo}:environment:prod"},  # only a job that passed the prod approval gets it
    }


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
        "Key Vault Secrets Officer",
        "Azure Kubernetes Service RBAC Cluster Admin",
    }
    on_other_group = {role for role, scope in grants if scope == GROUPS[other]}
    assert on_other_group == ({"AcrPull"} if environment == "prod" else set())


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
        for forbidden in (Role.CONTRIBUTOR, Role.RBAC_ADMINISTRATOR, Role.KEY_VAULT_SECRETS_OFFICER):
            assert forbidden.definition_id not in condition
        assert "Owner" not in condition and "8e3af657-a8ff-443c-a75c-2fe8c4bcb635" not in condition


def test_preview_identity_only_reads(plan: OfflinePlan) -> None:
    roles = {role for role, _ in _grants(plan, "preview")}
    assert roles == {
        "Reader",
        "Azure Kubernetes Service Cluster User Role",
        "Azure Kubernetes Service RBAC Reader",
        "Storage Blob Data Contributor",  # the state lock, also taken by previews
        "Key Vault Crypto User",  # decrypts stack secrets to compute the diff
    }


def test_every_identity_reaches_the_state_and_its_key_only(plan: OfflinePlan) -> None:
    for identity in ("preview", "deploy-dev", "deploy-prod"):
        grants = _grants(plan, identity)
        state = {(role, scope) for role, scope in grants if scope.startswith(STATE.resource_group)}
        assert state == {
            (
                "Storage Blob Data Contributor",
                f"{STATE.resource_group}/providers/Microsoft.Storage/storageAccounts/{STATE.storage_account}"
                f"/blobServices/default/containers/{STATE.container}",
            ),
            (
                "Key Vault Crypto User",
                f"{STATE.resource_group}/providers/Microsoft.KeyVault/vaults/{STATE.key_vault}/keys/{STATE.key}",
            ),
        }


def test_outputs_feed_the_github_variables(plan: OfflinePlan) -> None:
    outputs = {name: output.value for name, output in plan.outputs.items()}
    assert outputs["PULUMI_BACKEND_URL"] == "azblob://state?storage_account=stmusestatem7k2"
    assert outputs["secretsProvider"] == "azurekeyvault://kv-musestate-m7k2.vault.azure.net/keys/pulumi-state"
    assert outputs["resourceGroups"] == GROUPS
    assert outputs["prodDeployPrincipalId"] == _principal("deploy-prod")
    assert (
        len({outputs["AZURE_PREVIEW_CLIENT_ID"], outputs["devDeployClientId"], outputs["prodDeployClientId"]})
        == 3
    )


def test_environments_that_disagree_are_refused_before_any_resource(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "bootstrap", tmp_path / "bootstrap")
    for stack in ("dev", "prod"):
        shutil.copy(REPO_ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    shutil.copy(REPO_ROOT / "Pulumi.yaml", tmp_path)
    prod = tmp_path / "Pulumi.prod.yaml"
    prod.write_text(
        prod.read_text().replace(
            "muse:githubRepository: muse-platform/muse", "muse:githubRepository: someone/else"
        )
    )
    with pytest.raises(pulumi.RunError, match=r"same muse:githubRepository.*someone/else"):
        run_stack("main", root=tmp_path / "bootstrap")
