"""The tags every taggable Azure resource carries, defined once."""

from __future__ import annotations

from collections.abc import Mapping

from stack.config import StackConfig

REQUIRED_TAG_KEYS = ("env", "owner", "app")


def standard_tags(config: StackConfig) -> Mapping[str, str]:
    """`env`, `owner`, `app=muse` (the epic's required tags) plus `managed-by=pulumi`, so an operator in the
    portal knows not to edit the resource by hand."""
    return {"env": config.environment, "owner": config.owner, "app": "muse", "managed-by": "pulumi"}
