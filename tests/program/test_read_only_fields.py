"""A refresh during an AKS operation never makes the next deploy fight it.

The cluster is a generic resource whose `properties` is untyped, so azure-native's refresh copies every value
AKS answers into the inputs in state (provider.go `Read`, diff.go `applyDiff`; tests/pulumi_engine_model.py
`refreshed_inputs`), read-only status values included. While AKS upgrades the cluster it answers
`provisioningState: Upgrading` (ManagedClusterProperties.provisioningState, read-only in the API's type data),
and a PUT then is refused ("another operation is in progress"). With the read-only paths ignored
(components/kubernetes_cluster.py READ_ONLY_CLUSTER_PATHS) the engine sends the stored values back and sees no
change (step_generator.go processIgnoreChanges), so `pulumi up --refresh` plans no cluster update.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from components.kubernetes_cluster import (
    CLUSTER_API_VERSION,
    CLUSTER_PROVIDER_NAMESPACE,
    CLUSTER_RESOURCE_TYPE,
    READ_ONLY_CLUSTER_PATHS,
)
from offline.captured import CapturingMocks
from offline.engine import OfflinePlan, PlannedResource, RecordingMonitor, run_stack
from stack.environments import ENVIRONMENTS
from tests.pulumi_engine_model import changed_paths, ignored_inputs, refreshed_inputs
from verify.arm_types import load, read_only_paths

CLUSTER = "azure-native:resources:Resource"
ARM_TYPE = f"{CLUSTER_PROVIDER_NAMESPACE}/{CLUSTER_RESOURCE_TYPE}"


def _cluster(plan: OfflinePlan) -> PlannedResource:
    [cluster] = [r for r in plan.of_type(CLUSTER) if r.get("resourceType") == CLUSTER_RESOURCE_TYPE]
    return cluster


@cache
def _program(stack: str) -> PlannedResource:
    return _cluster(run_stack(stack))


@cache
def _cluster_outputs_of(stack: str, answers: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return _cluster_outputs(stack, **dict(answers))


def _cluster_outputs(stack: str, **answers: Any) -> dict[str, Any]:
    """The cluster's outputs (ARM's GET) as the offline engine answers them, projected onto the generic
    resource's inputs (its untyped `properties` whole)."""
    mocks = CapturingMocks(stack, **answers)
    plan = run_stack(stack, monitor=RecordingMonitor(mocks))
    outputs = mocks.outputs[(CLUSTER, _cluster(plan).name)]
    return {**_cluster(plan).properties, "properties": outputs["properties"]}


def test_the_ignored_read_only_paths_are_the_type_datas(plan: OfflinePlan) -> None:
    types = load(ARM_TYPE, CLUSTER_API_VERSION)
    derived = set(read_only_paths(types, _cluster(plan).properties, "properties"))
    # currentKubernetesVersion is read-only too; it is listed with the channel-owned inputs.
    assert derived == {*READ_ONLY_CLUSTER_PATHS, "properties.currentKubernetesVersion"}
    assert derived <= set(_cluster(plan).ignore_changes)


def _next_up_after_refresh(
    stack: str, ignore: tuple[str, ...], **during: Any
) -> tuple[dict[str, tuple[Any, Any]], list[str]]:
    """Create, then refresh while AKS reports `during`, then `pulumi up` with the same program: the input
    paths the update would change (state -> sent) and the ignore paths the engine could not reset."""
    program = _program(stack).properties
    created = _cluster_outputs_of(stack, ())
    now = _cluster_outputs_of(stack, tuple(sorted(during.items())))
    state = refreshed_inputs(program, created, now)
    sent, invalid = ignored_inputs(program, state, ignore)
    return changed_paths(state, sent), invalid


@pytest.mark.slow  # program runs
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_a_refresh_that_reads_upgrading_plans_no_cluster_update(stack: str) -> None:
    ignore = _program(stack).ignore_changes
    assert _next_up_after_refresh(stack, ignore, cluster_provisioning_state="Upgrading") == ({}, [])
    assert _next_up_after_refresh(stack, ignore, cluster_power_state="Stopped") == ({}, [])
    # Nor does a refresh while all is well (the addon identities, FQDNs and issuer AKS fills in).
    assert _next_up_after_refresh(stack, ignore) == ({}, [])


@pytest.mark.slow  # program runs
def test_negative_control_without_the_read_only_ignores_the_update_fights_aks() -> None:
    ignore = tuple(p for p in _program("prod").ignore_changes if p not in READ_ONLY_CLUSTER_PATHS)
    changes, _ = _next_up_after_refresh("prod", ignore, cluster_provisioning_state="Upgrading")
    # The update would remove the stored status: a cluster PUT while AKS's upgrade runs.
    assert changes["properties.provisioningState"] == ("Upgrading", None)
    stopped, _ = _next_up_after_refresh("prod", ignore, cluster_power_state="Stopped")
    assert stopped["properties.powerState"] == ({"code": "Stopped"}, None)
