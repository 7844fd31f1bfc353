"""The permission model of the bootstrap and both stacks, built once for every access test (each test derives
its variants with Model.without / with_assignment / without_policies, which copy)."""

from __future__ import annotations

import pytest

from verify.access.model import Model, Result, build, evaluate


@pytest.fixture(scope="session")
def model() -> Model:
    return build()


@pytest.fixture(scope="session")
def result(model: Model) -> Result:
    return evaluate(model)
