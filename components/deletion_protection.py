"""Protection of a stateful Azure resource from accidental deletion: Pulumi `protect`.

With `protect`, `pulumi destroy`, a resource removed or renamed in the code, or a change that would replace it
stops with an error instead of deleting it (www.pulumi.com/docs/iac/concepts/options/protect/); removing the
protection is a deliberate `pulumi state unprotect` (docs/runbook.md, "Removing a deletion protection on
purpose").

Why no Azure CanNotDelete management lock from this program: writing or deleting a lock needs
`Microsoft.Authorization/locks/write` / `delete`, which Contributor excludes
(`Microsoft.Authorization/*/Write` and `*/Delete` are among its NotActions: verify/access/builtin-roles.json),
so CI's deploy identity could not create one, and the permission model (verify/access/) would have to give the
deploy identity a right to write, and so also remove, locks, which defeats them. A first deploy by the
bootstrap's Owner cannot create them either: the bootstrap deploys only the registry stage
(scripts/bootstrap.sh, step 4) because a targeted `pulumi up` of resources whose parent component is new is
refused ("untargeted create"). A lock made outside Pulumi by an Owner (`az lock create --lock-type
CanNotDelete`) still works with this program, since CI only reads and changes the locked resources;
docs/runbook.md says how.
"""

from __future__ import annotations

import pulumi


def protection(enabled: bool) -> pulumi.ResourceOptions:
    """Resource options that make Pulumi refuse to delete or replace the resource when `enabled`."""
    return pulumi.ResourceOptions(protect=enabled)
