"""The federated-credential deny policy: Azure Policy evaluated as documented, and what it proves.

Contributor (a deployer's role on its group) allows
`Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write`, and no role assignment
condition can bound it. The bootstrap assigns a deny policy at each environment group (rbac/policies.py); the
model (verify/access/policy.py) applies it to every create/update request. Sources: Azure Policy definition
structure (learn.microsoft.com/azure/governance/policy/concepts/definition-structure-policy-rule: one `*` per
`like` value, string conditions case-insensitive except `match`), the deny effect (.../effect-deny), and the
issuer alias of Azure's built-in definitions (Azure/azure-policy built-in-policies/policyDefinitions/Managed
Identity/ManagedIdentity_FIC_LimitToWellknownIssuers.json, commit 7e7e3142ab7cd82848bcfbe1de4daad062eb1c21).
"""

from __future__ import annotations

import pytest

from offline.mocks import TENANT_ID
from rbac.policies import (
    ALLOWED_ISSUER_PARAMETER,
    FEDERATED_CREDENTIAL_TYPE,
    GITHUB_ISSUER,
    ISSUER_ALIAS,
    aks_issuer_pattern,
    federation_policy_rule,
)
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT, read_stack
from verify.access.model import Model, Result, bootstrap_plan, evaluate
from verify.access.policy import PolicyAssignment
from verify.access.rbac import Assignment, builtin_role

GROUP = "/subscriptions/s/resourceGroups/rg-muse-prod-m7k2"
WORKLOAD = f"{GROUP}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-muse-prod-m7k2-workload"
CREDENTIAL = f"{WORKLOAD}/federatedIdentityCredentials/muse-prod-muse"
WRITE = f"{FEDERATED_CREDENTIAL_TYPE}/write"
OUR_CLUSTER = f"https://westeurope.oic.prod-aks.azure.com/{TENANT_ID}/4342b974-c66f-5817-a9c3-d0fa8f539173/"


def policy(scope: str = GROUP) -> PolicyAssignment:
    return PolicyAssignment(
        "test",
        scope,
        federation_policy_rule(),
        {ALLOWED_ISSUER_PARAMETER: aks_issuer_pattern("westeurope", TENANT_ID)},
    )


def fields(issuer: str) -> dict[str, str]:
    return {"type": FEDERATED_CREDENTIAL_TYPE, ISSUER_ALIAS: issuer}


def test_the_clusters_issuer_is_allowed_and_every_other_issuer_denied() -> None:
    deny = policy()
    assert not deny.denies(WRITE, False, CREDENTIAL, fields(OUR_CLUSTER))
    assert not deny.denies(WRITE, False, CREDENTIAL, fields(OUR_CLUSTER.upper().replace("HTTPS", "https")))
    for issuer in (
        GITHUB_ISSUER,
        "https://issuer.attacker.example/",
        OUR_CLUSTER.replace(TENANT_ID, "11111111-1111-1111-1111-111111111111"),  # another tenant
        OUR_CLUSTER.replace("westeurope", "eastus"),  # another region
        f"https://westeurope.oic.prod-aks.azure.com.attacker.example/{TENANT_ID}/x/",  # a look-alike host
        "",  # no issuer in the request: compares as empty
    ):
        assert deny.denies(WRITE, False, CREDENTIAL, fields(issuer)), issuer


def test_deny_applies_to_writes_in_its_scope_only() -> None:
    deny = policy()
    github = fields(GITHUB_ISSUER)
    assert not deny.denies(f"{FEDERATED_CREDENTIAL_TYPE}/read", False, CREDENTIAL, github)
    assert not deny.denies(f"{FEDERATED_CREDENTIAL_TYPE}/delete", False, CREDENTIAL, github)
    assert not deny.denies(WRITE, False, CREDENTIAL.replace("prod", "dev"), github)  # another group
    # Any other resource type passes: the rule's first condition is the type.
    identity = {"type": "Microsoft.ManagedIdentity/userAssignedIdentities"}
    assert not deny.denies(
        "Microsoft.ManagedIdentity/userAssignedIdentities/write", False, WORKLOAD, identity
    )


def test_unknown_policy_language_is_refused_not_misread() -> None:
    rule = {"if": {"field": ISSUER_ALIAS, "match": "https://##"}, "then": {"effect": "deny"}}
    with pytest.raises(ValueError, match="operator"):
        PolicyAssignment("x", GROUP, rule, {}).denies(WRITE, False, CREDENTIAL, fields(GITHUB_ISSUER))
    two_wildcards = {ALLOWED_ISSUER_PARAMETER: "https://*.oic.prod-aks.azure.com/*"}
    with pytest.raises(ValueError, match="one wildcard"):
        PolicyAssignment("x", GROUP, federation_policy_rule(), two_wildcards).denies(
            WRITE, False, CREDENTIAL, fields(GITHUB_ISSUER)
        )


def test_the_bootstrap_assigns_the_policy_to_every_environment_group_with_its_region_and_tenant(
    model: Model,
) -> None:
    plan, _ = bootstrap_plan()
    assignments = {p.scope: p for p in model.policies}
    assert set(assignments) == {facts.group_id for facts in model.stacks.values()}
    for stack, facts in model.stacks.items():
        config = load_stack_config(stack, read_stack(stack, REPO_ROOT).config)
        assigned = assignments[facts.group_id]
        assert assigned.effect == "deny"
        assert assigned.parameters == {
            ALLOWED_ISSUER_PARAMETER: aks_issuer_pattern(config.location, TENANT_ID)
        }
    [definition] = plan.of_type("azure-native:authorization:PolicyDefinition")
    assert definition.get("mode") == "All"  # not Indexed: credentials carry no location or tags


def test_the_stacks_federated_credentials_stay_allowed(model: Model, result: Result) -> None:
    writes = [o for o in model.operations if o.need.action == WRITE]
    assert {o.identity for o in writes} == {"deploy-dev", "deploy-prod"}
    for operation in writes:
        assert result.allowed[operation], operation.where
        assert operation not in result.refused_by_policy
    assert not result.denied


def test_no_ci_identity_can_federate_an_identity_to_a_foreign_issuer(model: Model, result: Result) -> None:
    whys = {p.why for p in model.prohibitions if p.action == WRITE}
    for stack in ENVIRONMENTS:
        for target in ("muse-workload", "a new identity"):
            assert f"federate {target} ({stack}) to GitHub's issuer" in whys
            assert f"federate {target} ({stack}) to an issuer it controls" in whys
    assert result.violations == []


def test_negative_control_without_the_policy_a_deployer_federates_the_workload_to_github(
    model: Model,
) -> None:
    violations = evaluate(model.without_policies()).violations
    found = {(key, p.why) for p, key, _ in violations}
    for stack in ENVIRONMENTS:
        assert (f"deploy-{stack}", f"federate muse-workload ({stack}) to GitHub's issuer") in found
        assert (f"deploy-{stack}", f"federate a new identity ({stack}) to an issuer it controls") in found
    assert {a.role.name for _, _, a in violations} == {"Contributor"}


def test_negative_control_a_policy_pinned_to_the_wrong_region_refuses_the_stacks_own_credentials(
    model: Model,
) -> None:
    wrong = [
        PolicyAssignment(
            p.name, p.scope, p.rule, {ALLOWED_ISSUER_PARAMETER: aks_issuer_pattern("eastus", TENANT_ID)}
        )
        for p in model.policies
    ]
    broken = evaluate(Model(**{**model.__dict__, "policies": wrong}))
    refused = {o.identity for o in broken.refused_by_policy}
    assert refused == {"deploy-dev", "deploy-prod"}
    assert {o.identity for o in broken.denied} >= refused


def test_no_ci_identity_can_remove_the_policy(model: Model, result: Result) -> None:
    whys = {p.why for p in model.prohibitions}
    for stack in ENVIRONMENTS:
        assert f"delete a policy assignment on {stack}'s group" in whys
        assert f"exempt {stack}'s group from a policy" in whys
    assert result.violations == []


def test_negative_control_owner_would_let_a_deployer_lift_the_policy(model: Model) -> None:
    facts = model.stacks["prod"]
    principal = model.identities["deploy-prod"].principal
    writer = Assignment("extra", principal, builtin_role("Owner"), facts.group_id)
    whys = {p.why for p, _, _ in evaluate(model.with_assignment(writer)).violations}
    assert "delete a policy assignment on prod's group" in whys
    assert "exempt prod's group from a policy" in whys


def test_the_policy_not_the_roles_holds_the_deployers_back(result: Result) -> None:
    held = {(p.why, key) for (p, key) in result.held_by_policy}
    for stack in ENVIRONMENTS:
        assert (f"federate muse-workload ({stack}) to GitHub's issuer", f"deploy-{stack}") in held
    # Read-only identities are refused by RBAC already: the policy is not what holds them.
    assert not {key for _, key in held} & {"preview-dev", "preview-prod"}
