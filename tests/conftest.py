"""Fixtures shared by every test: whole-program offline plans of both stacks, computed once per session."""

from __future__ import annotations

import pytest

from offline.engine import OfflinePlan, run_stack

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def plans() -> dict[str, OfflinePlan]:
    return {stack: run_stack(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, OfflinePlan]) -> OfflinePlan:
    """The offline plan of each stack in turn."""
    return plans[request.param]
