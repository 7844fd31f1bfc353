"""Azure RBAC as Azure evaluates it: role definitions, scopes, and which assignment allows an action.

Actions minus NotActions (control plane) and DataActions minus NotDataActions (data) per role; `*` matches
across `/` and letter case is ignored; an assignment covers its scope and everything below it; a condition
(ABAC, verify/access/conditions.py) narrows it. Built-in definitions from builtin-roles.json beside this file
(builtin-roles.SOURCE.md), Muse's custom roles from the bootstrap plan.
Why: docs/architecture/code.md#azure-rbac-in-the-permission-model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

# `matches` lives with the condition parser (ActionMatches uses it): one direction, no import circle.
from verify.access.conditions import Request, evaluate, matches

BUILTIN_ROLES_FILE = Path(__file__).with_name("builtin-roles.json")


@dataclass(frozen=True)
class Permissions:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows(self, action: str, data: bool) -> bool:
        allowed, excluded = (
            (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        )
        return any(matches(p, action) for p in allowed) and not any(matches(p, action) for p in excluded)

    @classmethod
    def from_definition(cls, block: Mapping[str, Any]) -> Permissions:
        def get(*keys: str) -> tuple[str, ...]:
            for key in keys:
                if block.get(key):
                    return tuple(str(a) for a in block[key])
            return ()

        return cls(
            actions=get("actions"),
            not_actions=get("notActions"),
            data_actions=get("dataActions"),
            not_data_actions=get("notDataActions"),
        )


@dataclass(frozen=True)
class RoleDefinition:
    id: str  # the role definition GUID
    name: str
    permissions: Permissions
    custom: bool = False


@cache
def builtin_roles() -> dict[str, RoleDefinition]:
    """Built-in role definitions by GUID, from the vendored builtin-roles.json."""
    data = json.loads(BUILTIN_ROLES_FILE.read_text(encoding="utf-8"))
    return {
        role["id"]: RoleDefinition(role["id"], name, Permissions.from_definition(role))
        for name, role in data["roles"].items()
    }


def builtin_role(name: str) -> RoleDefinition:
    return next(role for role in builtin_roles().values() if role.name == name)


def _segments(resource_id: str) -> list[str]:
    return [part.lower() for part in resource_id.split("/") if part]


def in_scope(scope: str, resource_id: str) -> bool:
    """Does an assignment at `scope` apply to `resource_id` (the same resource, or one below it)?"""
    outer, inner = _segments(scope), _segments(resource_id)
    return inner[: len(outer)] == outer


@dataclass(frozen=True)
class Assignment:
    """One role assignment as a plan declares it."""

    name: str  # the RoleAssignment's logical name in its plan
    principal: str  # the principal id it is assigned to
    role: RoleDefinition
    scope: str
    condition: str | None = None
    source: str = ""  # which plan declares it: "bootstrap", "dev", "prod"
    # Why it does not exist yet, "" when it does: a grant the bootstrap makes only once a config key is set
    # (an operators' group left unset). The docs show it as conditional, never as held.
    pending: str = ""

    def allows(self, action: str, data: bool, resource_id: str, attributes: Mapping[str, Any]) -> bool:
        if not in_scope(self.scope, resource_id) or not self.role.permissions.allows(action, data):
            return False
        if self.condition:
            return evaluate(self.condition, Request(action=action, attributes=dict(attributes)))
        return True

    @property
    def label(self) -> str:
        label = f"{self.role.name} on {short_scope(self.scope)}" + (
            " (conditioned)" if self.condition else ""
        )
        return f"{label} ({self.pending})" if self.pending else label


def short_scope(scope: str) -> str:
    """`/subscriptions/<id>/resourceGroups/rg/providers/NS/type/name/...` -> `rg/type/name/...`."""
    parts = [p for p in scope.split("/") if p]
    out: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i].lower() == "subscriptions":
            i += 2
        elif parts[i].lower() == "resourcegroups" and i + 1 < len(parts):
            out.append(parts[i + 1])
            i += 2
        elif parts[i].lower() == "providers" and i + 1 < len(parts):
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return "/".join(out) or "subscription"


@dataclass
class Decision:
    allowed: bool
    by: list[Assignment] = field(default_factory=list)  # every assignment that allows it
