"""Workflow test fixtures: the policy module (scripts/workflow_policy.py) and the parsed workflows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _load_policy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workflow_policy", ROOT / "scripts" / "workflow_policy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workflow_policy"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def policy() -> ModuleType:
    return _load_policy()


@pytest.fixture(scope="session")
def workflows(policy: ModuleType) -> dict[str, Any]:
    """Every workflow by file name, parsed by the policy module (so `on:` is the key "on")."""
    return {path.name: policy.load(path) for path in policy.workflow_files(WORKFLOWS)}


@pytest.fixture(scope="session")
def pr(workflows: dict[str, Any]) -> Any:
    return workflows["pull-request.yml"]


@pytest.fixture(scope="session")
def main(workflows: dict[str, Any]) -> Any:
    return workflows["main.yml"]


@pytest.fixture(scope="session")
def drift(workflows: dict[str, Any]) -> Any:
    return workflows["drift.yml"]
