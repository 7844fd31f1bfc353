"""GitHubOidcIdentity in isolation: federated subjects, no secret, scoped grants.

Sign-in is checked against tests/github_model.py: the subjects GitHub issues (immutable format for a
repository created after 2026-07-15, docs.github.com/en/actions/reference/security/oidc "Immutable subject
claims") and Entra's exact match (learn.microsoft.com/entra/workload-id/
workload-identities-github-immutable-subjects)."""

from __future__ import annotations

from datetime import date

from components.github_identity import GITHUB_OIDC_ISSUER, GitHubOidcIdentity, GitHubOidcIdentityArgs
from offline.engine import OfflinePlan, run_offline
from offline.mocks import deterministic_uuid
from rbac.roles import PrincipalType, Role, only_assigning
from tests.github_model import Repository, entra_accepts

CREDENTIAL = "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
RG = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-muse-dev-x"
# A repository created after 2026-07-15 (immutable subjects), and one created before, not opted in.
NEW = Repository("org", "muse", owner_id=31337, repo_id=987654321, created=date(2026, 9, 1))
OLD = Repository("org", "muse", owner_id=31337, repo_id=987654321, created=date(2024, 3, 1))
CONTEXTS = ["ref:refs/heads/main", "pull_request"]


def _plan(prefixes: tuple[str, ...] = (NEW.prefix,)) -> OfflinePlan:
    def program() -> None:
        identity = GitHubOidcIdentity(
            "deploy-dev",
            GitHubOidcIdentityArgs(
                display_name="muse-github-deploy-dev",
                subject_prefixes=prefixes,
                subjects=CONTEXTS,
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
    first = by_subject["repo:org@31337/muse@987654321:ref:refs/heads/main"]
    second = by_subject["repo:org@31337/muse@987654321:pull_request"]
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


def test_a_new_repositorys_jobs_sign_in_with_the_immutable_subject() -> None:
    credentials = [c.properties for c in _plan().of_type(CREDENTIAL)]
    for context in CONTEXTS:
        assert entra_accepts(credentials, NEW.token_subject(context)), context
    assert not entra_accepts(credentials, NEW.token_subject("environment:prod"))  # no credential, no way in


def test_negative_control_legacy_credentials_never_match_an_immutable_token() -> None:
    """What the former component built (repo:<owner/name>:...) for a repository created after 2026-07-15."""
    credentials = [c.properties for c in _plan((OLD.prefix,)).of_type(CREDENTIAL)]
    assert all(c["subject"].startswith("repo:org/muse:") for c in credentials)
    for context in CONTEXTS:
        assert entra_accepts(credentials, OLD.token_subject(context))
        assert not entra_accepts(credentials, NEW.token_subject(context))
    # Exact means case-sensitive too: GitHub's spelling of the names, not a lower-cased one.
    assert not entra_accepts(credentials, "repo:Org/Muse:pull_request")


def test_a_migration_keeps_both_credentials_and_the_legacy_names() -> None:
    """Before the opt-in the old tokens sign in, after it the new ones; the legacy credentials keep the
    names (URNs) they had, so adding the immutable prefix replaces nothing."""
    before = {c.name for c in _plan((OLD.prefix,)).of_type(CREDENTIAL)}
    plan = _plan((OLD.prefix, NEW.prefix))
    credentials = [c.properties for c in plan.of_type(CREDENTIAL)]
    opted_in = Repository("org", "muse", 31337, 987654321, created=OLD.created, opted_in=True)
    for context in CONTEXTS:
        assert entra_accepts(credentials, OLD.token_subject(context))
        assert entra_accepts(credentials, opted_in.token_subject(context))
    names = [c.name for c in plan.of_type(CREDENTIAL)]
    assert before <= set(names) and len(set(names)) == len(names) == 4
    assert len({c["displayName"] for c in credentials}) == 4  # unique per application in Entra
    # Writes stay one after another across both prefixes.
    urns = {c.urn for c in plan.of_type(CREDENTIAL)}
    waits = {c.urn: set(c.depends_on) & urns for c in plan.of_type(CREDENTIAL)}
    assert sorted(len(w) for w in waits.values()) == [0, 1, 1, 1]  # a chain of four
    assert len(set().union(*waits.values())) == 3
