"""The exporter refuses to write Bicep that would not follow the program: each safeguard, shown failing."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from export.bicep import ExportError, build_template
from export.mapping import TypeMapping
from export.resource_types import CONDITIONS, MAPPINGS
from offline.captured import StackPlan

REGISTRY = "azure-native:containerregistry:Registry"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
CLUSTER = "azure-native:resources:Resource"  # the AKS cluster, a generic resource


def _without_binding(type_token: str, path: str) -> dict[str, TypeMapping]:
    """The real mappings, with one explicit binding of one type removed."""
    mapping = MAPPINGS[type_token]
    assert isinstance(mapping.bindings, Mapping) and path in mapping.bindings
    bindings = {k: v for k, v in mapping.bindings.items() if k != path}
    return {**MAPPINGS, type_token: dataclasses.replace(mapping, bindings=bindings)}


@pytest.mark.slow  # plans and Bicep of both stacks
def test_the_real_mappings_export(plans: tuple[StackPlan, ...]) -> None:
    template = build_template(plans, MAPPINGS, CONDITIONS)
    assert {r.symbol for r in template.resources} >= {"registry", "cluster", "userPool", "kubeletIdentity"}


def test_a_value_that_differs_between_stacks_must_be_bound_to_a_parameter(
    plans: tuple[StackPlan, ...],
) -> None:
    # The system pool's node count (an int, so no literal check) is 1 in dev and 3 in prod.
    path = "properties.agentPoolProfiles.0.count"
    with pytest.raises(ExportError, match="resources:Resource cluster differs between dev and prod") as error:
        build_template(plans, _without_binding(CLUSTER, path), CONDITIONS)
    assert "-        count: 1" in str(error.value) and "+        count: 3" in str(error.value)


def test_a_config_value_pasted_as_a_literal_is_refused(plans: tuple[StackPlan, ...]) -> None:
    with pytest.raises(
        ExportError, match=r"literal 'Basic' \(the value of registrySku\) looks config-derived"
    ):
        build_template(plans, _without_binding(REGISTRY, "sku.name"), CONDITIONS)

    # location is westeurope in every stack, so only the leak check can notice it is not bound.
    with pytest.raises(
        ExportError, match=r"literal 'westeurope' \(the value of location\) looks config-derived"
    ):
        build_template(plans, _without_binding(IDENTITY, "location"), CONDITIONS)


@pytest.mark.slow  # more program runs
def test_a_resource_only_some_plans_have_gets_the_condition_of_its_optional_parameter(
    plans: tuple[StackPlan, ...],
) -> None:
    template = build_template(plans, MAPPINGS, CONDITIONS)
    conditional = {r.symbol: r.condition for r in template.resources if r.condition}
    # Derived from the optional parameter it references:
    assert conditional.pop("imagePushAcrPush") == "!empty(imagePushPrincipalId)"
    assert conditional.pop("imageImportAcrImportSource") == "!empty(imageImportPrincipalId)"
    # Written down in CONDITIONS (tests/export/test_equivalence.py evaluates each against every plan), and
    # the `existing` certificate secret under the condition of the grant scoped to it:
    assert conditional == {
        "userPool": "empty(availabilityZones)",
        "userPoolZone1": "contains(availabilityZones, '1')",
        "userPoolZone2": "contains(availabilityZones, '2')",
        "userPoolZone3": "contains(availabilityZones, '3')",
        "gatewayTlsIdentity": "!empty(ingressHost)",
        "gatewayTlsServiceAccountCredential": "!empty(ingressHost)",
        "gatewayTlsCertificateSecretsUser": "!empty(ingressHost)",
        "vaultIngressTlsCertificate": "!empty(ingressHost)",
        # The external probe, its component and its alert (muse:availabilityTest).
        "appInsights": "availabilityTest",
        "availabilityWebTest": "availabilityTest",
        "availabilityAlert": "availabilityTest",
    }


def test_a_resource_only_some_plans_have_without_a_condition_is_refused(plans: tuple[StackPlan, ...]) -> None:
    # Negative control: without its written condition the prod-only identity cannot be exported.
    conditions = {k: v for k, v in CONDITIONS.items() if k != "gateway-tls"}
    with pytest.raises(ExportError, match="UserAssignedIdentity gateway-tls is only in the plans of prod"):
        build_template(plans, MAPPINGS, conditions)


def test_a_generic_resource_whose_body_its_api_version_does_not_define_is_refused(
    plans: tuple[StackPlan, ...],
) -> None:
    # Nothing in the SDK types a generic resource's body: the export checks it against the ARM type data
    # (verify/arm_types.py). Negative control: the cluster's body read against 2025-09-01-like data, i.e. with
    # the Gateway API settings misspelled, is refused with the path named.
    plan = plans[0]
    [cluster] = [r for r in plan.plan.resources if r.type == CLUSTER]
    broken = dataclasses.replace(
        cluster,
        properties={
            **cluster.properties,
            "properties": {
                **cluster.properties["properties"],
                "ingressProfile": {"gatewayApi": {"installation": "Standard"}},
            },
        },
    )
    broken_plan = dataclasses.replace(
        plan,
        plan=dataclasses.replace(
            plan.plan, resources=[broken if r is cluster else r for r in plan.plan.resources]
        ),
    )
    with pytest.raises(
        ExportError, match=r"properties.ingressProfile.gatewayApi: not a property.*did you mean gatewayAPI"
    ):
        build_template([broken_plan], MAPPINGS, CONDITIONS)
