from __future__ import annotations

from collections.abc import Callable
from typing import Any

from muse.governance.inventory import Inventory
from muse.governance.policies import Severity, evaluate
from muse.governance.report import render_markdown, render_policies_markdown


def _registry(name: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": f"urn:x::{name}",
        "type": "azure-native:containerregistry:Registry",
        "name": name,
        "properties": props,
    }


def test_clean_report_says_passed(make_inventory: Callable[..., Inventory]) -> None:
    tags = {"env": "dev", "owner": "o", "app": "muse"}
    md = render_markdown(
        evaluate(make_inventory(_registry("acr", {"adminUserEnabled": False, "tags": tags})))
    )
    assert "Result: **PASSED**" in md
    assert "No violations." in md
    assert "| MUSE-SEC-001 | critical |" in md  # the policy catalogue is always included


def test_violation_rows_are_escaped_for_tables(make_inventory: Callable[..., Inventory]) -> None:
    evaluation = evaluate(
        make_inventory(_registry("a|b", {"adminUserEnabled": True})), fail_on=Severity.CRITICAL
    )
    md = render_markdown(evaluation)
    assert "`a\\|b`" in md  # a pipe in a name must not open a new column
    assert "Result: **PASSED** (fails on critical and above: 0 violation(s))" in md
    assert "- **MUSE-ACR-001** Container registry admin user is disabled: Set adminUserEnabled: false" in md
    rows = [line for line in md.splitlines() if line.startswith("| high | MUSE-ACR-001")]
    assert len(rows) == 1 and rows[0].count(" | ") == 3


def test_policy_catalogue_markdown() -> None:
    md = render_policies_markdown()
    assert "## MUSE-KV-003: Key Vault purge protection is enabled in the production tier" in md
    assert "- Rationale: " in md and "- Remediation: " in md
