"""CLI behaviour: exit codes, formats, thresholds. One real subprocess proves `python -m muse` exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from muse.__main__ import main

TAGS = {"env": "dev", "owner": "platform-team", "app": "muse"}


def _inventory(registry_props: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "project": "muse",
        "stack": "dev",
        "environment": "dev",
        "tier": "development",
        "resources": [
            {
                "urn": "urn:pulumi:dev::muse::azure-native:containerregistry:Registry::muse-registry",
                "type": "azure-native:containerregistry:Registry",
                "name": "muse-registry",
                "properties": registry_props,
            }
        ],
    }


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    path = tmp_path / "clean.json"
    path.write_text(json.dumps(_inventory({"adminUserEnabled": False, "tags": TAGS})))
    return path


@pytest.fixture
def medium_only(tmp_path: Path) -> Path:
    """One medium violation (env tag differs from the environment)."""
    path = tmp_path / "medium.json"
    path.write_text(json.dumps(_inventory({"adminUserEnabled": False, "tags": {**TAGS, "env": "prod"}})))
    return path


@pytest.fixture
def high(tmp_path: Path) -> Path:
    path = tmp_path / "high.json"
    path.write_text(json.dumps(_inventory({"adminUserEnabled": True, "tags": TAGS})))
    return path


def test_evaluate_clean_exits_0_with_json(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(clean)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["passed"] is True and out["violations"] == []


def test_evaluate_high_violation_exits_1(high: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(high)]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [v["policyId"] for v in out["violations"]] == ["MUSE-ACR-001"]
    assert "1 violation(s) at or above 'high'" in captured.err


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 0), ("high", 0), ("medium", 1), ("low", 1)])
def test_fail_on_threshold(medium_only: Path, fail_on: str, code: int) -> None:
    assert main(["evaluate", str(medium_only), "--fail-on", fail_on]) == code


def test_evaluate_markdown_format(high: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(high), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("# Muse governance report: muse/dev")
    assert "| high | MUSE-ACR-001 | `muse-registry`" in out
    assert "Result: **FAILED**" in out


def test_report_prints_markdown_and_exits_0_even_with_violations(
    high: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(high)]) == 0
    out = capsys.readouterr().out
    assert "## Remediation" in out and "Set adminUserEnabled: false" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{oops", "malformed JSON"),
        ('{"schemaVersion": 1}', "project: Field required"),
        ('{"schemaVersion": 9, "resources": []}', "unsupported schemaVersion 9"),
    ],
)
def test_invalid_input_exits_2_with_clear_message(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    for command in ("evaluate", "report"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and str(path) in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "nope.json")]) == 2
    assert "cannot read inventory" in capsys.readouterr().err


def test_policies_lists_every_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policies", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"MUSE-TAG-001", "MUSE-SEC-001", "MUSE-K8S-002"} <= {p["id"] for p in listed}
    assert all(p["severity"] in {"critical", "high", "medium", "low"} for p in listed)
    assert main(["policies"]) == 0
    assert re.search(r"^MUSE-ACR-001 +high +Container registry admin user", capsys.readouterr().out, re.M)


@pytest.mark.slow  # the CLI as a process
def test_real_process_exit_codes_and_stdin(clean: Path, high: Path) -> None:
    run = [sys.executable, "-m", "muse", "evaluate"]
    assert subprocess.run([*run, str(clean)], capture_output=True, check=False).returncode == 0
    assert subprocess.run([*run, str(high)], capture_output=True, check=False).returncode == 1
    piped = subprocess.run([*run, "-"], input=high.read_bytes(), capture_output=True, check=False)
    assert piped.returncode == 1 and b"MUSE-ACR-001" in piped.stdout
    usage = subprocess.run([sys.executable, "-m", "muse", "evaluate"], capture_output=True, check=False)
    assert usage.returncode == 2
