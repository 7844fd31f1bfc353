"""Protection of a stateful Azure resource from accidental deletion: Pulumi `protect`.

A destroy, a removal, a rename or a replacement stops with an error; removing the protection is a
deliberate `pulumi state unprotect` (docs/runbook.md). No CanNotDelete lock from this program: Contributor
cannot write locks, and a deploy identity that could would also remove them.
Why: docs/architecture/azure.md#protect-not-locks."""

from __future__ import annotations

import pulumi


def protection(enabled: bool) -> pulumi.ResourceOptions:
    """Resource options that make Pulumi refuse to delete or replace the resource when `enabled`."""
    return pulumi.ResourceOptions(protect=enabled)
