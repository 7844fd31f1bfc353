"""The stack's resource group: one per environment, holding every Azure resource of that stack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import resources


@dataclass(frozen=True, kw_only=True)
class ResourceGroupArgs:
    """Inputs of `ResourceGroup`, field by field (what it is; default, and why that default).

    name: Azure name of the group. Required.
    location: Azure region of the group and, by convention, of everything in it. Required.
    tags: tags for the group. Default: none.
    """

    name: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)


class ResourceGroup(pulumi.ComponentResource):
    """`muse:azure:ResourceGroup`. Exposes `name`, `id` and `location` for the components placed in it."""

    TYPE = "muse:azure:ResourceGroup"  # the type token of its URN

    def __init__(
        self, name: str, args: ResourceGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.group = resources.ResourceGroup(
            name,
            resource_group_name=args.name,
            location=args.location,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name: pulumi.Output[str] = self.group.name
        self.id: pulumi.Output[str] = self.group.id
        self.location = args.location
        self.register_outputs({"name": self.name, "id": self.id})
