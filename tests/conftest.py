"""Fixtures shared by every test: whole-program offline plans of both stacks, computed once per session."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from offline.captured import bootstrap_plan as committed_bootstrap_plan
from offline.captured import committed_plan
from offline.engine import OfflinePlan
from stack import kubernetes_support
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"

STACKS = ENVIRONMENTS


# The day the committed stacks are checked on in-process. The stack config is valid only while AKS
# supports its Kubernetes minor (stack/kubernetes_support.py), so tests that load the committed stacks
# would start failing the day a minor leaves support; they run on this pinned date instead. The support
# check's own tests pass their dates explicitly, and everything that really runs (the program under
# Pulumi, make plan/export, the drift job) uses today's UTC date, so a minor leaving support still turns
# CI red.
PINNED_TODAY = date(2026, 12, 2)


@pytest.fixture(scope="session", autouse=True)
def real_utc_today() -> Any:
    """Pins `stack.kubernetes_support.utc_today` for the session; yields the real function."""
    real = kubernetes_support.utc_today
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_support, "utc_today", lambda: PINNED_TODAY)
        yield real


@pytest.fixture(scope="session")
def plans() -> dict[str, OfflinePlan]:
    """Each stack's committed plan, shared with the export's (one whole-program run per stack and worker).
    Tests read it and never change it: a test that needs another config runs `run_stack(..., overrides=)`."""
    return {stack: committed_plan(stack).plan for stack in STACKS}


@pytest.fixture(scope="session")
def bootstrap_plan() -> OfflinePlan:
    """The bootstrap project's committed plan (bootstrap/), shared with the access model and the export (one
    run per worker); read only."""
    return committed_bootstrap_plan()[0]


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
