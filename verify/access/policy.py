"""Azure Policy deny assignments in the permission model: a request RBAC allows may still be refused.

A `deny` rule is evaluated on create and update requests (`.../write`) in its scope, as Azure documents it.
Only the operators Muse's definitions use are known (`equals`, `notEquals`, `like`, `notLike`, `in`,
`notIn`); anything else, and any other template expression, is refused so a new form cannot be silently
misread. Why: docs/architecture/code.md#azure-policy-in-the-permission-model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verify.access.rbac import in_scope

_PARAMETER = re.compile(r"^\[parameters\('([^']+)'\)\]$")
_OPERATORS = ("equals", "notEquals", "like", "notLike", "in", "notIn")


@dataclass(frozen=True)
class PolicyAssignment:
    """One policy assignment of a plan, with its definition's rule and the assignment's parameter values."""

    name: str
    scope: str
    rule: Mapping[str, Any]
    parameters: Mapping[str, Any]
    display_name: str = ""

    @property
    def effect(self) -> str:
        return str(self.rule.get("then", {}).get("effect", "")).lower()

    def denies(self, action: str, data: bool, resource_id: str, fields: Mapping[str, Any]) -> bool:
        """Would this assignment refuse the request `action` on `resource_id` with these request fields?"""
        if self.effect != "deny" or data or not action.lower().endswith("/write"):
            return False
        if not in_scope(self.scope, resource_id):
            return False
        return _condition(self.rule["if"], fields, self.parameters)


def _value(raw: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(raw, str) and raw.startswith("["):
        match = _PARAMETER.match(raw)
        if not match:
            raise ValueError(f"unsupported policy expression {raw!r}")
        return parameters[match.group(1)]
    return raw


def _like(value: str, pattern: str) -> bool:
    if pattern.count("*") > 1:
        raise ValueError(f"a like pattern takes one wildcard: {pattern!r}")
    head, star, tail = pattern.lower().partition("*")
    value = value.lower()
    if not star:
        return value == head
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _condition(node: Mapping[str, Any], fields: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    if "allOf" in node:
        return all(_condition(n, fields, parameters) for n in node["allOf"])
    if "anyOf" in node:
        return any(_condition(n, fields, parameters) for n in node["anyOf"])
    if "not" in node:
        return not _condition(node["not"], fields, parameters)
    if "field" not in node:
        raise ValueError(f"unsupported policy condition {dict(node)!r}")
    operators = [key for key in node if key != "field"]
    if len(operators) != 1 or operators[0] not in _OPERATORS:
        raise ValueError(f"unsupported policy operator in {dict(node)!r}")
    operator = operators[0]
    present = str(fields.get(str(node["field"])) or "").lower()
    wanted = _value(node[operator], parameters)
    if operator in ("in", "notIn"):
        found = present in {str(v).lower() for v in wanted}
        return found if operator == "in" else not found
    if operator in ("equals", "notEquals"):
        same = present == str(wanted).lower()
        return same if operator == "equals" else not same
    matched = _like(present, str(wanted))
    return matched if operator == "like" else not matched


def denying(
    assignments: list[PolicyAssignment], action: str, data: bool, resource_id: str, fields: Mapping[str, Any]
) -> list[PolicyAssignment]:
    return [a for a in assignments if a.denies(action, data, resource_id, fields)]
