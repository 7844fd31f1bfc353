"""Fixtures shared by every test: whole-program offline plans of both stacks, computed once per session."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from offline.engine import OfflinePlan, run_stack
from stack.files import REPO_ROOT
from tests import slow

# pytester runs pytest inside a test (tests/test_slow_marker.py checks the slow marker on a real collection).
pytest_plugins = ("pytester",)

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def plans() -> dict[str, OfflinePlan]:
    return {stack: run_stack(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, OfflinePlan]) -> OfflinePlan:
    """The offline plan of each stack in turn."""
    return plans[request.param]


@pytest.fixture(scope="session")
def checkov() -> Callable[..., dict[str, Any]]:
    """Run checkov (its own virtualenv, which `make test` creates) offline and return its JSON report:
    `checkov("-f", path, framework="bicep")`. Exit codes 0 and 1 (findings) give a report; others fail."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO_ROOT)} is missing: run `make checkov` (make test does)")

    def run(*target: str, framework: str, timeout: int = 600) -> dict[str, Any]:
        result = subprocess.run(
            [str(CHECKOV), *target, "--framework", framework, "--skip-download", "-o", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"},
            cwd=REPO_ROOT,
            check=False,
            timeout=timeout,
        )
        assert result.returncode in (0, 1), result.stderr[-2000:]
        report = json.loads(result.stdout)
        # One framework gives one report; checkov wraps it in a list when it ran several.
        return report[0] if isinstance(report, list) else report

    return run


def pytest_configure(config: pytest.Config) -> None:
    """The `slow` marker on the tests tests/slow.py lists (`make test-fast` leaves them out)."""
    config.pluginmanager.register(slow.SlowMarker(), "muse-slow-marker")
