"""The ABAC conditions rbac/roles.py builds are typed trees (rbac/abac.py) rendered to Azure's condition
language; the parser beside the renderer (rbac/abac.py parse), which reads the strings that come back from
plans, must read each rendered string as the same tree, and the summaries (rbac/conditions.py) what was
built. A wrong parenthesising would change what Azure evaluates."""

from __future__ import annotations

import pytest

from rbac.abac import ActionMatches, And, Compare, Condition, Not, Or, flatten, parse
from rbac.conditions import delegation_limits, delegation_summary, exclusive_roles
from rbac.roles import (
    DELEGABLE_BY_CI,
    OPERATOR_CUSTOM_RESOURCE_VERBS,
    PrincipalType,
    Role,
    assigning_condition,
    custom_resource_condition,
    only_assigning,
    only_custom_resources,
    only_reading_custom_resources,
)
from verify.access.conditions import Request, holds

CI = "11111111-1111-1111-1111-111111111111"
BUILD = "22222222-2222-2222-2222-222222222222"
IMPORTER = "33333333-3333-3333-3333-333333333333"
KINDS = [
    ("secrets-store.csi.x-k8s.io", "secretproviderclasses"),
    ("gateway.networking.k8s.io", "httproutes"),
]

# Every builder, with every option it has (the bootstrap's three delegation shapes among them).
TREES: dict[str, Condition] = {
    "assigning": assigning_condition(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL),
    "assigning-never-to": assigning_condition(
        list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL, never_to=[CI, BUILD]
    ),
    "assigning-exceptions": assigning_condition(
        list(DELEGABLE_BY_CI),
        PrincipalType.SERVICE_PRINCIPAL,
        never_to=[CI],
        only_role_to={BUILD: Role.ACR_PUSH, IMPORTER: Role.READER},
        only_to={Role.READER: [IMPORTER]},
    ),
    "custom-resources-one-kind": custom_resource_condition(KINDS[:1], ("read",)),
    "custom-resources": custom_resource_condition(KINDS, OPERATOR_CUSTOM_RESOURCE_VERBS),
}


@pytest.mark.parametrize("name", TREES)
def test_each_rendered_condition_parses_back_to_its_tree(name: str) -> None:
    tree = TREES[name]
    assert flatten(parse(tree.render())) == flatten(tree)


def test_the_string_builders_render_the_trees() -> None:
    assert (
        only_assigning(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL) == TREES["assigning"].render()
    )
    assert only_custom_resources(KINDS, OPERATOR_CUSTOM_RESOURCE_VERBS) == TREES["custom-resources"].render()
    assert only_reading_custom_resources(KINDS[:1]) == TREES["custom-resources-one-kind"].render()


def test_the_rendered_forms_are_azures() -> None:
    # The documented shapes (conditions-format.md; delegate-role-assignments-examples.md): a set for the
    # cross-product operators, GUIDs bare, strings quoted, a negated ActionMatches in its own parentheses.
    principal = "@Request[Microsoft.Authorization/roleAssignments:PrincipalId]"
    assert Compare(principal, "ForAnyOfAnyValues:GuidEquals", (CI, BUILD)).render() == (
        f"{principal} ForAnyOfAnyValues:GuidEquals {{{CI}, {BUILD}}}"
    )
    assert Compare("@Request[x:kind]", "StringEqualsIgnoreCase", ("gateways",)).render() == (
        "@Request[x:kind] StringEqualsIgnoreCase 'gateways'"
    )
    assert Not(ActionMatches("a/write")).render() == "(!(ActionMatches{'a/write'}))"
    with pytest.raises(ValueError, match="one value"):
        Compare("@Request[x:kind]", "StringEquals", ("a", "b"))


def _misparenthesised(condition: Condition) -> str:
    """A renderer that trusts precedence it does not have: OR without its parentheses."""
    if isinstance(condition, Or):
        return " OR ".join(_misparenthesised(o) for o in condition.operands)
    if isinstance(condition, And):
        return " AND ".join(_misparenthesised(o) for o in condition.operands)
    if isinstance(condition, Not):
        return f"(!({_misparenthesised(condition.operand)}))"
    return condition.render()


def test_negative_control_wrong_parentheses_are_caught() -> None:
    tree = TREES["assigning"]
    wrong = _misparenthesised(tree)
    assert flatten(parse(wrong)) != flatten(tree)  # the round trip catches it ...
    # ... and it matters: with AND binding tighter, a delete of any role by anyone now passes the
    # write-branch's "other actions pass" clause.
    delete_owner = Request(
        action="Microsoft.Authorization/roleAssignments/delete",
        attributes={
            "@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId]": "8e3af657-owner",
            "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType]": "User",
        },
    )
    assert not holds(tree, delete_owner)
    assert holds(parse(wrong), delete_owner)


def test_flatten_only_drops_grouping() -> None:
    a, b, c = ActionMatches("a"), ActionMatches("b"), ActionMatches("c")
    assert flatten(Or((And((a,)), Or((b, c))))) == Or((a, b, c))
    assert flatten(And((Or((a, b)), c))) != flatten(Or((a, And((b, c)))))


def _ids(*roles: Role) -> list[str]:
    return sorted({role.definition_id for role in roles})


def test_the_summaries_read_what_the_builders_wrote() -> None:
    """delegation_limits/exclusive_roles read the parsed tree, for each builder's shape."""
    exceptions = TREES["assigning-exceptions"].render()
    assert delegation_limits(exceptions) == (_ids(*DELEGABLE_BY_CI, Role.READER), [CI])
    assert exclusive_roles(exceptions) == [Role.READER.definition_id]
    assert delegation_limits(TREES["assigning"].render()) == (_ids(*DELEGABLE_BY_CI), [])
    assert delegation_limits(TREES["assigning-never-to"].render()) == (
        _ids(*DELEGABLE_BY_CI),
        sorted([CI, BUILD]),
    )
    assert delegation_limits(TREES["custom-resources"].render()) == ([], [])
    names = {Role.ACR_PULL.definition_id: "AcrPull"}
    assert delegation_summary(TREES["custom-resources"].render(), names) == ""
    # A principal that may get one role only is no exclusion of CI identities; negative control: with
    # never_to beside it, the summary says they are excluded.
    build_only = assigning_condition(
        [Role.ACR_PULL], PrincipalType.SERVICE_PRINCIPAL, only_role_to={BUILD: Role.ACR_PUSH}
    ).render()
    assert delegation_summary(build_only, names) == "AcrPull"
    excluded = assigning_condition(
        [Role.ACR_PULL], PrincipalType.SERVICE_PRINCIPAL, never_to=[CI], only_role_to={BUILD: Role.ACR_PUSH}
    ).render()
    assert (
        delegation_summary(excluded, names) == "AcrPull (CI identities excluded, the build's AcrPush aside)"
    )


def test_a_condition_outside_the_grammar_is_refused_not_summarised_as_nothing() -> None:
    """Negative control: an operator the grammar does not know fails the summary (a regex would have found
    no role and said nothing)."""
    unknown = (
        TREES["assigning"].render().replace("ForAnyOfAnyValues:GuidEquals", "ForAllOfAnyValues:GuidEquals", 1)
    )
    with pytest.raises(ValueError, match="unsupported condition syntax"):
        delegation_summary(unknown, {})
