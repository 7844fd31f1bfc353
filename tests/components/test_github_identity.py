"""GitHubOidcIdentity in isolation: federated subjects, no secret, scoped grants."""

from __future__ import annotations

from components.github_identity import GITHUB_OIDC_ISSUER, GitHubOidcIdentity, GitHubOidcIdentityArgs
from offline.engine import OfflinePlan, run_offline
from offline.mocks import deterministic_uuid
from rbac.roles import PrincipalType, Role, only_assigning

CREDENTIAL = "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
RG = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-muse-dev-x"


def _plan() -> OfflinePlan:
    def program() -> None:
        identity = GitHubOidcIdentity(
            "deploy-dev",
            GitHubOidcIdentityArgs(
                display_name="muse-github-deploy-dev",
                repository="org/muse",
                subjects=["ref:refs/heads/main", "pull_request"],
                description="test",
            ),
        )
        identity.grant("dev", Role.CONTRIBUTOR, RG)
        identity.grant(
            "dev",
            Role.RBAC_ADMINISTRATOR,
            RG,
            condition=only_assigning([Role.ACR_PULL], PrincipalType.SERVICE_PRINCIPAL),
        )

    return run_offline(program, project="muse-bootstrap", stack="unit")


def test_subjects_are_qualified_with_the_repository_and_created_in_sequence() -> None:
    plan = _plan()
    by_subject = {c.get("subject"): c for c in plan.of_type(CREDENTIAL)}
    first = by_subject["repo:org/muse:ref:refs/heads/main"]
    second = by_subject["repo:org/muse:pull_request"]
    credentials = [first, second]
    assert second.urn not in first.depends_on
    assert first.urn in second.depends_on  # never written concurrently
    for credential in credentials:
        assert credential.get("issuer") == GITHUB_OIDC_ISSUER
        assert credential.get("audiences") == ["api://AzureADTokenExchange"]


def test_no_password_or_certificate_is_created() -> None:
    plan = _plan()
    types = {r.type for r in plan.resources}
    assert not {t for t in types if "Password" in t or "Certificate" in t}
    application = plan.one("azuread:index/application:Application")
    assert application.get("signInAudience") == "AzureADMyOrg"
    assert application.get("password") is None


def test_rbac_administrator_grant_carries_the_constraining_condition() -> None:
    plan = _plan()
    grants = {
        r.get("roleDefinitionId").rsplit("/", 1)[-1]: r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
    }
    contributor = grants[Role.CONTRIBUTOR.definition_id]
    delegate = grants[Role.RBAC_ADMINISTRATOR.definition_id]
    assert contributor.get("condition") is None
    assert Role.ACR_PULL.definition_id in delegate.get("condition")
    assert "'ServicePrincipal'" in delegate.get("condition")
    assert delegate.get("conditionVersion") == "2.0"
    for grant in (contributor, delegate):
        assert grant.get("scope") == RG
        assert grant.get("principalType") == "ServicePrincipal"
        # The service principal's object id as Entra ID returns it (offline: derived from its name).
        assert grant.get("principalId") == deterministic_uuid("unit", "deploy-dev", "service-principal")


def test_condition_allows_only_the_listed_roles() -> None:
    condition = only_assigning([Role.ACR_PULL, Role.KEY_VAULT_SECRETS_USER], PrincipalType.SERVICE_PRINCIPAL)
    assert condition.count(Role.ACR_PULL.definition_id) == 2  # on write and on delete
    assert Role.CONTRIBUTOR.definition_id not in condition
    assert "roleAssignments/write" in condition and "roleAssignments/delete" in condition
