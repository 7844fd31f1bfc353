from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from offline.captured import StackPlan, all_plans
from stack.files import REPO_ROOT

BICEP = REPO_ROOT / "infra" / "bicep" / "main.bicep"


@pytest.fixture(scope="session")
def plans() -> tuple[StackPlan, ...]:
    return all_plans()


@pytest.fixture(scope="session")
def bicep_ast() -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=Path(BICEP)))
