"""Protection of a stateful Azure resource from accidental deletion, at both levels that can delete it.

- Pulumi `protect`: `pulumi destroy`, a resource removed or renamed in the code, or a change that would
  replace it stops with an error instead of deleting it (www.pulumi.com/docs/iac/concepts/options/protect/).
- An Azure management lock of level CanNotDelete on the resource: a delete from anywhere (portal, `az`, a
  script, another tool, `az group delete` of its resource group) is refused by Azure Resource Manager until
  the lock is removed, while reads and changes still work (learn.microsoft.com/azure/azure-resource-manager/
  management/lock-resources). The lock is protected too, so Pulumi never deletes it on its own.

Writing or deleting a lock needs `Microsoft.Authorization/locks/*`, which Contributor excludes
(`Microsoft.Authorization/*/Write` and `*/Delete` are its NotActions: rbac/builtin_roles.json), so CI's
deploy identity cannot create or remove one: the person who bootstraps the environment (Owner) creates
the locks (scripts/bootstrap.sh, step 4), and removing one is a person's decision (docs/runbook.md, "Removing
a deletion protection on purpose"). Locks apply to the management plane only: secrets, images and logs inside
stay writable.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

LOCK_NAME = "do-not-delete"
LOCK_LEVEL = authorization.LockLevel.CAN_NOT_DELETE
LOCK_NOTES = (
    "Muse: stateful resource of a protected stack (muse:protectStatefulResources). Remove on purpose only: "
    "docs/runbook.md, Removing a deletion protection on purpose."
)


def protection(enabled: bool) -> pulumi.ResourceOptions:
    """Resource options that make Pulumi refuse to delete or replace the resource when `enabled`."""
    return pulumi.ResourceOptions(protect=enabled)


def lock_against_deletion(
    name: str, scope: pulumi.Input[str], parent: pulumi.Resource
) -> authorization.ManagementLockByScope:
    """A CanNotDelete lock on the resource `scope` (its ARM id), itself protected from Pulumi deletes."""
    return authorization.ManagementLockByScope(
        f"{name}-{LOCK_NAME}",
        lock_name=LOCK_NAME,
        scope=scope,
        level=LOCK_LEVEL,
        notes=LOCK_NOTES,
        opts=pulumi.ResourceOptions(parent=parent, protect=True),
    )
