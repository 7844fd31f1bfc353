"""Reading the ABAC conditions rbac/roles.py writes, for summaries (the plan, the governance docs).

Plain strings only, no Pulumi: the governance document renders plain data and imports this without the SDK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def delegation_limits(condition: str) -> tuple[list[str], list[str]]:
    """(role definition ids, excluded principal ids) an `only_assigning` condition names, for summaries
    (the assignable roles, `only_to` ones included: `exclusive_roles` says which those are)."""
    guid = r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}"
    roles = re.search(
        r"@Request\[Microsoft.Authorization/roleAssignments:RoleDefinitionId\] "
        r"ForAnyOfAnyValues:GuidEquals \{([^}]*)\}",
        condition,
    )
    excluded = re.search(
        r"!\(@Request\[Microsoft.Authorization/roleAssignments:PrincipalId\] "
        r"ForAnyOfAnyValues:GuidEquals \{([^}]*)\}\)",
        condition,
    )
    return (
        re.findall(guid, roles.group(1)) if roles else [],
        re.findall(guid, excluded.group(1)) if excluded else [],
    )  # fmt: skip


def exclusive_roles(condition: str) -> list[str]:
    """The role definition ids an `only_assigning` condition lets go to named principals only (`only_to`)."""
    return re.findall(
        r"\(!\(@Request\[Microsoft.Authorization/roleAssignments:RoleDefinitionId\] "
        r"ForAnyOfAnyValues:GuidEquals \{([0-9a-fA-F-]{36})\}\)\) OR",
        condition,
    )


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
