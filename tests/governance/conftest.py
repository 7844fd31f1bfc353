"""A builder for small inventories, so each policy test states only the resources it is about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from muse.governance.inventory import Inventory, parse_inventory
from stack.environments import ENVIRONMENTS
from stack.files import read_stack


@pytest.fixture
def make_inventory() -> Callable[..., Inventory]:
    def build(*resources: dict[str, Any], environment: str = "dev", tier: str | None = None) -> Inventory:
        # The tier the repository's stack of that name declares (its muse:tier), unless the test says.
        stack_tier = read_stack(environment).config.get("muse:tier") if environment in ENVIRONMENTS else None
        return parse_inventory(
            {
                "schemaVersion": 1,
                "project": "muse",
                "stack": environment,
                "environment": environment,
                "tier": tier or stack_tier or "development",
                "resources": list(resources),
            }
        )

    return build
