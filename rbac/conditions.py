"""Reading the ABAC conditions rbac/roles.py writes, for summaries (the plan, the governance docs).

Plain strings only, no Pulumi: the governance document renders plain data and imports this without the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from rbac.abac import And, Compare, Condition, Not, Or, parse, request
from rbac.arm import ASSIGNED_PRINCIPAL, ASSIGNED_ROLE

_ROLE = request(ASSIGNED_ROLE)
_PRINCIPAL = request(ASSIGNED_PRINCIPAL)
_GUID_IN = "ForAnyOfAnyValues:GuidEquals"


def _nodes(
    condition: Condition, parent: Condition | None = None
) -> Iterator[tuple[Condition, Condition | None]]:
    """Each node with its parent, in the order the condition is written."""
    yield condition, parent
    if isinstance(condition, Not):
        yield from _nodes(condition.operand, condition)
    elif isinstance(condition, And | Or):
        for operand in condition.operands:
            yield from _nodes(operand, condition)


def _guids(condition: Condition | None, attribute: str) -> tuple[str, ...] | None:
    """The ids of `<attribute> ForAnyOfAnyValues:GuidEquals {...}`, None for any other node."""
    if isinstance(condition, Compare) and condition.attribute == attribute and condition.operator == _GUID_IN:
        return condition.values
    return None


def _negated(condition: Condition, attribute: str) -> tuple[str, ...] | None:
    """The ids of `!(<attribute> ForAnyOfAnyValues:GuidEquals {...})`, None for any other node."""
    return _guids(condition.operand, attribute) if isinstance(condition, Not) else None


def delegation_limits(condition: str) -> tuple[list[str], list[str]]:
    """(role definition ids, excluded principal ids) an `only_assigning` condition names for a write, for
    summaries (the assignable roles, `only_to` ones included: `exclusive_roles` says which those are)."""
    in_and = [node for node, parent in _nodes(parse(condition)) if isinstance(parent, And)]
    roles = next((ids for node in in_and if (ids := _guids(node, _ROLE)) is not None), ())
    never_to = next((ids for node in in_and if (ids := _negated(node, _PRINCIPAL)) is not None), ())
    return list(roles), list(never_to)


def exclusive_roles(condition: str) -> list[str]:
    """The role definition ids an `only_assigning` condition lets go to named principals only (`only_to`):
    each `(!(<role> {one id})) OR ...` of its limits."""
    found = []
    for node, _ in _nodes(parse(condition)):
        if isinstance(node, Or) and (ids := _negated(node.operands[0], _ROLE)) and len(ids) == 1:
            found.append(ids[0])
    return found


def delegation_summary(condition: str, role_names: Mapping[str, str]) -> str:
    """What an `only_assigning` condition lets its holder assign, in words ("" when it is not one): the
    roles by name, those only named principals may get marked, and whether CI identities are excluded."""
    role_ids, never_to = delegation_limits(condition)
    if not role_ids:
        return ""
    exclusive = set(exclusive_roles(condition))
    roles = sorted(
        role_names.get(g, g) + (" (to named principals only)" if g in exclusive else "")
        for g in set(role_ids)
    )
    excluded = (
        (
            " (CI identities excluded, but for one role each: the build AcrPush, the importing"
            " deployer Reader)"
            if exclusive
            else " (CI identities excluded, the build's AcrPush aside)"
        )
        if never_to
        else ""
    )
    return ", ".join(roles) + excluded
