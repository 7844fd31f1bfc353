"""Governance engine: inventory model, policy set and report rendering, shared by the CLI and the service."""

from muse.governance.inventory import Inventory, InventoryError, Resource, load_inventory, parse_inventory
from muse.governance.policies import (
    POLICIES,
    UNTAGGABLE_AZURE_TYPES,
    Evaluation,
    Policy,
    Severity,
    Violation,
    evaluate,
)
from muse.governance.report import render_markdown

__all__ = [
    "POLICIES",
    "UNTAGGABLE_AZURE_TYPES",
    "Evaluation",
    "Inventory",
    "InventoryError",
    "Policy",
    "Resource",
    "Severity",
    "Violation",
    "evaluate",
    "load_inventory",
    "parse_inventory",
    "render_markdown",
]
