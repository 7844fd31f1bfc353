"""The exporter refuses to write Bicep that would not follow the program: each safeguard, shown failing."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from export.bicep import ExportError, build_template
from export.mapping import TypeMapping
from export.plans import StackPlan
from export.resource_types import MAPPINGS

REGISTRY = "azure-native:containerregistry:Registry"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
CLUSTER = "azure-native:containerservice:ManagedCluster"


def _without_binding(type_token: str, path: str) -> dict[str, TypeMapping]:
    """The real mappings, with one explicit binding of one type removed."""
    mapping = MAPPINGS[type_token]
    assert isinstance(mapping.bindings, Mapping) and path in mapping.bindings
    bindings = {k: v for k, v in mapping.bindings.items() if k != path}
    return {**MAPPINGS, type_token: dataclasses.replace(mapping, bindings=bindings)}


def test_the_real_mappings_export(plans: tuple[StackPlan, ...]) -> None:
    template = build_template(plans, MAPPINGS)
    assert {r.symbol for r in template.resources} >= {"registry", "cluster", "userPool", "kubeletIdentity"}


def test_a_value_that_differs_between_stacks_must_be_bound_to_a_parameter(
    plans: tuple[StackPlan, ...],
) -> None:
    # The system pool's node count (an int, so no literal check) is 1 in dev and 3 in prod.
    path = "properties.agentPoolProfiles.0.count"
    with pytest.raises(ExportError, match="ManagedCluster cluster differs between dev and prod") as error:
        build_template(plans, _without_binding(CLUSTER, path))
    assert "-        count: 1" in str(error.value) and "+        count: 3" in str(error.value)


def test_a_config_value_pasted_as_a_literal_is_refused(plans: tuple[StackPlan, ...]) -> None:
    with pytest.raises(
        ExportError, match=r"literal 'Basic' \(the value of registrySku\) looks config-derived"
    ):
        build_template(plans, _without_binding(REGISTRY, "sku.name"))

    # location is westeurope in every stack, so only the leak check can notice it is not bound.
    with pytest.raises(
        ExportError, match=r"literal 'westeurope' \(the value of location\) looks config-derived"
    ):
        build_template(plans, _without_binding(IDENTITY, "location"))


def test_a_resource_only_some_plans_have_gets_the_condition_of_its_optional_parameter(
    plans: tuple[StackPlan, ...],
) -> None:
    template = build_template(plans, MAPPINGS)
    conditional = {r.symbol: r.condition for r in template.resources if r.condition}
    assert conditional == {
        "imagePushAcrPush": "!empty(imagePushPrincipalId)",
        "imageImportAcrImportSource": "!empty(imageImportPrincipalId)",
    }
