"""The governance engine's list of untaggable Azure types agrees with the azure-native SDK.

The Muse image cannot import the SDK, so muse/ keeps its own list; this test keeps it honest."""

from __future__ import annotations

import importlib
import inspect

import pytest

from muse.governance.policies import UNTAGGABLE_AZURE_TYPES
from offline.engine import OfflinePlan


def _args_class(type_token: str) -> type:
    _, module, name = type_token.split(":")
    sdk = importlib.import_module(f"pulumi_azure_native.{module}")
    # Some SDK classes clash with helper types and are published as `<Name>InitArgs`.
    found = getattr(sdk, f"{name}InitArgs", None) or getattr(sdk, f"{name}Args", None)
    assert found is not None, f"{type_token} does not exist in pulumi-azure-native"
    return found


def _takes_tags(type_token: str) -> bool:
    return "tags" in inspect.signature(_args_class(type_token).__init__).parameters


@pytest.mark.parametrize("type_token", sorted(UNTAGGABLE_AZURE_TYPES))
def test_every_listed_type_exists_and_really_takes_no_tags(type_token: str) -> None:
    assert not _takes_tags(type_token)


def test_every_untaggable_type_the_program_deploys_is_listed(plans: dict[str, OfflinePlan]) -> None:
    deployed = {
        r.type for plan in plans.values() for r in plan.resources if r.type.startswith("azure-native:")
    }
    untaggable = {t for t in deployed if not _takes_tags(t)}
    assert untaggable <= UNTAGGABLE_AZURE_TYPES, untaggable - UNTAGGABLE_AZURE_TYPES
