"""Workflow test fixtures: the repository policy script (scripts/workflow_policy.py) and the workflows, parsed
by the project's one workflow parser (verify/workflows.py)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from stack.files import REPO_ROOT
from verify.workflows import WORKFLOWS, Workflow, load_all


def _load_policy() -> ModuleType:
    # A script, not a package module: loaded from its path, as lint-workflows.sh runs it.
    spec = importlib.util.spec_from_file_location(
        "workflow_policy", REPO_ROOT / "scripts" / "workflow_policy.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workflow_policy"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def policy() -> ModuleType:
    return _load_policy()


@pytest.fixture(scope="session")
def workflows() -> dict[str, Workflow]:
    """Every workflow by file name, each call of a local reusable workflow read as the jobs it runs
    (`deploy-prod.deploy`, `deploy-prod.preview`: verify.workflows.expand_calls)."""
    return {workflow.file_name: workflow for workflow in load_all(WORKFLOWS)}


@pytest.fixture(scope="session")
def pr(workflows: dict[str, Workflow]) -> Workflow:
    return workflows["pull-request.yml"]


@pytest.fixture(scope="session")
def main(workflows: dict[str, Workflow]) -> Workflow:
    return workflows["main.yml"]


@pytest.fixture(scope="session")
def drift(workflows: dict[str, Workflow]) -> Workflow:
    return workflows["drift.yml"]
