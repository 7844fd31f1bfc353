"""Azure role assignment conditions (ABAC, version 2.0): parse and evaluate the forms Muse writes.

Grammar, from https://learn.microsoft.com/azure/role-based-access-control/conditions-format (MicrosoftDocs/
azure-docs articles/role-based-access-control/conditions-format.md): expressions joined by `AND` / `OR` (AND
binds tighter), negated with `!`, grouped with parentheses; an expression is `ActionMatches{'<action>'}` (the
request's action matches the pattern, `*` wildcards allowed) or `<attribute> <operator> <value>`, where the
attribute is `@Request[...]` or `@Resource[...]` and the value a quoted string or a `{...}` set. Operators:
`StringEquals`, `StringEqualsIgnoreCase`, `GuidEquals`, their `NotEquals` negations, and their
`ForAnyOfAnyValues:` forms (true when at least one value of the attribute satisfies the comparison with at
least one value of the set, "Cross product comparison": so `ForAnyOfAnyValues:GuidNotEquals {a, b}` holds for
every value when a != b). An attribute the request does not carry makes its
expression false. Anything else is refused with the position, so a new form cannot be silently misread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rbac.abac import ActionMatches, And, Condition, Not, Or, parse


@dataclass(frozen=True)
class Request:
    """What a condition sees: the action and the request's attributes (`@Request[...]`/`@Resource[...]`
    written out as keys, each a string or a list of strings)."""

    action: str
    attributes: dict[str, Any] = field(default_factory=dict)


@cache
def _pattern(wildcard: str) -> re.Pattern[str]:
    # ASSUMPTION, labelled: a `*` between two slashes may also stand for no segment at all. The wildcard
    # semantics of role-definitions.md ("Actions": `*` "extends a permission to everything that matches the
    # action string") do not say whether `/*/` needs a segment. It is inferred from documented effects of
    # built-in roles: Managed Identity Operator grants only
    # `Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action`, and the one assign action the
    # provider defines is `.../userAssignedIdentities/assign/action` (resource-provider-operations.md), which
    # learn.microsoft.com/azure/aks/use-managed-identity documents that role as sufficient for (the kubelet
    # identity's assignment); Key Vault Reader ("Read metadata of key vaults") reads through
    # `Microsoft.KeyVault/vaults/*/read`, which must then cover `vaults/read`. Only Azure can confirm it
    # (docs/architecture/azure.md, "what only Azure can verify"); tests/access/test_rbac_semantics.py shows
    # which operations rest on it.
    pieces = wildcard.split("/*/")
    regex = "/(?:.*/)?".join(".*".join(re.escape(part) for part in piece.split("*")) for piece in pieces)
    return re.compile(regex, re.IGNORECASE)


def matches(pattern: str, action: str) -> bool:
    """Does the action string `pattern` (wildcards allowed) cover `action`? Case-insensitive."""
    return _pattern(pattern).fullmatch(action) is not None


def _compare(operator: str, values: Sequence[str], wanted: Sequence[str]) -> bool:
    base = operator.split(":")[-1].lower()
    fold = base.endswith("ignorecase") or base.startswith("guid")
    left = {v.lower() if fold else v for v in values}
    right = {v.lower() if fold else v for v in wanted}
    if "notequals" in base:
        # "If at least one value on the left-hand side satisfies the comparison to at least one value on the
        # right-hand side" (ForAnyOfAnyValues): some left value differs from some right value. The plain form
        # compares one value with one value, the same rule.
        return any(a != b for a in left for b in right)
    return bool(left & right)


def holds(condition: Condition, request: Request) -> bool:
    """Does `condition` hold for `request`, as Azure evaluates it (module docstring)."""
    if isinstance(condition, Not):
        return not holds(condition.operand, request)
    if isinstance(condition, And):
        return all(holds(operand, request) for operand in condition.operands)
    if isinstance(condition, Or):
        return any(holds(operand, request) for operand in condition.operands)
    if isinstance(condition, ActionMatches):
        return matches(condition.pattern, request.action)
    present = request.attributes.get(condition.attribute)
    if present is None:
        return False
    values = [present] if isinstance(present, str) else [str(v) for v in present]
    return _compare(condition.operator, values, condition.values)


def evaluate(condition: str, request: Request) -> bool:
    """Does the condition string hold for `request`? Raises ValueError on syntax it does not know."""
    return holds(parse(condition), request)


def parse_check(condition: str) -> None:
    """Raise ValueError when `condition` is outside the grammar above."""
    parse(condition)
