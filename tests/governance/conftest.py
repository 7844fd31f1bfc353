"""A builder for small inventories, so each policy test states only the resources it is about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from muse.governance.inventory import Inventory, parse_inventory


@pytest.fixture
def make_inventory() -> Callable[..., Inventory]:
    def build(*resources: dict[str, Any], environment: str = "dev") -> Inventory:
        return parse_inventory(
            {
                "schemaVersion": 1,
                "project": "muse",
                "stack": environment,
                "environment": environment,
                "resources": list(resources),
            }
        )

    return build
