"""The stack's resource group: one per environment, holding every Azure resource of that stack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import resources


@dataclass(frozen=True)
class ResourceGroupArgs:
    """
    name: Azure name of the group (from `naming.ResourceNames`).
    location: Azure region of the group and, by convention, of everything in it.
    tags: tags for the group (`tags.standard_tags`).
    """

    name: str
    location: str
    tags: Mapping[str, str]


class ResourceGroup(pulumi.ComponentResource):
    """`muse:azure:ResourceGroup`. Exposes `name`, `id` and `location` for the components placed in it."""

    def __init__(
        self, name: str, args: ResourceGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("muse:azure:ResourceGroup", name, None, opts)
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
