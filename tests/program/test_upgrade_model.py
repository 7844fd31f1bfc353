"""The auto-upgrade channel and the program never fight, in both stacks' plans.

What `pulumi up --refresh` sends after AKS upgraded a cluster is decided by two real mechanisms, modelled in
tests/pulumi_engine_model.py as their sources state them:
1. azure-native's refresh (pulumi/pulumi-azure-native provider/pkg/provider/provider.go `Read`, diff.go
   `applyDiff`): what changed between the old and the new outputs is copied into the inputs in state, key
   by key. The cluster is the generic `azure-native:resources:Resource`, whose ARM body `properties` is
   untyped, so read-only values AKS changes (`currentKubernetesVersion`) are copied too.
2. the engine's ignoreChanges (pulumi/pulumi pkg/resource/deploy/step_generator.go `processIgnoreChanges`
   with sdk/go/common/resource/properties_path.go `ParsePropertyPath`/`Reset`): each ignored *path* of the
   inputs is reset to its value in state. For the generic cluster those paths start with `properties.`.
After an upgrade AKS reports the new version in the cluster's `kubernetesVersion`, with the patch even when
a minor was asked for (Azure/AKS#3573: "1.25" became "1.25.6" after a patch-channel upgrade), in
`currentKubernetesVersion`, and in each pool's `orchestratorVersion` / `currentOrchestratorVersion`, because
auto-upgrade "always upgrades the control plane and the node pools together"
(learn.microsoft.com/azure/aks/auto-upgrade-cluster). AKS cannot downgrade.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.kubernetes_cluster import CLUSTER_API_VERSION, CLUSTER_RESOURCE_TYPE, READ_ONLY_CLUSTER_PATHS
from offline.engine import OfflinePlan, PlannedResource
from stack.config import StackConfig, load_stack_config
from stack.files import read_stack
from tests.pulumi_engine_model import changed_paths, ignored_inputs, refreshed_inputs

CLUSTER = "azure-native:resources:Resource"  # the cluster as a generic ARM resource
POOL = "azure-native:containerservice:AgentPool"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"


def _config(plan: OfflinePlan) -> StackConfig:
    return load_stack_config(plan.stack, read_stack(plan.stack).config)


def _cluster(plan: OfflinePlan) -> PlannedResource:
    [cluster] = [r for r in plan.of_type(CLUSTER) if r.get("resourceType") == CLUSTER_RESOURCE_TYPE]
    assert cluster.get("apiVersion") == CLUSTER_API_VERSION
    return cluster


def _upgraded(version: str) -> str:
    """What the stack's channel leaves after one upgrade: the next minor's patch (stable, rapid)."""
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}.2"


def _patch(version: str) -> str:
    return version if version.count(".") == 2 else f"{version}.1"


def _cluster_answer(program: dict[str, Any], version: str, set_version: str) -> dict[str, Any]:
    """AKS's GET of the cluster running `version` (created with `set_version`): the body sent plus what AKS
    sets, for the version and every pool (bicep-types managedClusters@2026-05-01: currentKubernetesVersion,
    currentOrchestratorVersion are read-only)."""
    answer = copy.deepcopy(program)
    properties = answer["properties"]
    properties["kubernetesVersion"] = set_version
    properties["currentKubernetesVersion"] = _patch(version)
    properties["provisioningState"] = "Succeeded"
    for pool in properties["agentPoolProfiles"]:
        pool["orchestratorVersion"] = set_version
        pool["currentOrchestratorVersion"] = _patch(version)
    return answer


def _pool_answer(program: dict[str, Any], version: str, set_version: str) -> dict[str, Any]:
    """A typed AgentPool's outputs projected onto its inputs (provider.go Read, SdkOutputsToSdkInputs):
    the read-only `currentOrchestratorVersion` is no input of the typed resource, never reaching state."""
    return {**program, "orchestratorVersion": set_version}


def _after_upgrade(
    resource: PlannedResource, answer: Any, created: str, ignore_changes: tuple[str, ...]
) -> tuple[dict[str, tuple[Any, Any]], list[str]]:
    """Create with the plan's inputs, let the channel upgrade, `pulumi up --refresh` with the same program:
    which input paths would the update change (state -> sent), and which ignore paths failed?"""
    program = copy.deepcopy(resource.properties)
    upgraded = _upgraded(created)
    state = refreshed_inputs(program, answer(program, created, created), answer(program, upgraded, upgraded))
    sent, invalid = ignored_inputs(program, state, ignore_changes)
    return changed_paths(state, sent), invalid


def test_the_channel_owns_the_version_in_both_stacks(plan: OfflinePlan) -> None:
    config = _config(plan)
    cluster = _cluster(plan)
    assert config.upgrade_channel in ("patch", "stable", "rapid")
    assert cluster.get("properties.autoUpgradeProfile.upgradeChannel") == config.upgrade_channel
    assert cluster.get("properties.autoUpgradeProfile.nodeOSUpgradeChannel") == "NodeImage"
    assert cluster.get("properties.kubernetesVersion") == config.kubernetes_version  # the creation version
    assert {"properties.kubernetesVersion", "properties.agentPoolProfiles"} <= set(cluster.ignore_changes)
    # No pool names a version: each starts at the control plane's and the channel moves them together.
    assert all("orchestratorVersion" not in p for p in cluster.get("properties.agentPoolProfiles"))
    pools = plan.of_type(POOL)
    # dev: one regional user pool; prod: one per zone. Each is checked, not just the first.
    assert len(pools) == (len(config.availability_zones) or 1)
    for pool in pools:
        assert pool.get("orchestratorVersion") is None
        assert "orchestratorVersion" in pool.ignore_changes


def test_after_an_upgrade_pulumi_up_sends_no_version_and_shows_no_drift(plan: OfflinePlan) -> None:
    created = _config(plan).kubernetes_version
    cluster = _cluster(plan)
    assert _after_upgrade(cluster, _cluster_answer, created, cluster.ignore_changes) == ({}, [])
    for pool in plan.of_type(POOL):
        assert _after_upgrade(pool, _pool_answer, created, pool.ignore_changes) == ({}, []), pool.name


def test_the_ignore_paths_name_inputs_the_generic_cluster_has(plan: OfflinePlan) -> None:
    # A path that names no input is silently a no-op in the engine (Reset of an absent path succeeds), so
    # `kubernetesVersion` without `properties.` would ignore nothing on the generic resource: each path must
    # reach an input of the program or a value AKS writes into state on refresh.
    cluster = _cluster(plan)
    created = _config(plan).kubernetes_version
    refreshed = refreshed_inputs(
        cluster.properties,
        _cluster_answer(cluster.properties, created, created),
        _cluster_answer(cluster.properties, _upgraded(created), _upgraded(created)),
    )
    for path in (p for p in cluster.ignore_changes if p not in READ_ONLY_CLUSTER_PATHS):
        assert path.startswith("properties."), path
        key = path.removeprefix("properties.")
        assert key in refreshed["properties"], path
    # The read-only paths come from the API's type data (tests/program/test_read_only_fields.py).


def test_negative_control_without_ignore_changes_up_would_downgrade_and_drift(plan: OfflinePlan) -> None:
    created = _config(plan).kubernetes_version
    upgraded = _upgraded(created)
    cluster = _cluster(plan)
    without = tuple(p for p in cluster.ignore_changes if p != "properties.kubernetesVersion")
    # The program's creation minor sent back over the upgraded version: a downgrade AKS refuses.
    changes, _ = _after_upgrade(cluster, _cluster_answer, created, without)
    assert changes == {"properties.kubernetesVersion": (upgraded, created)}
    # The typed resource's path on the generic one ignores nothing: the same downgrade.
    typed_path = (*without, "kubernetesVersion")
    assert _after_upgrade(cluster, _cluster_answer, created, typed_path)[0] == changes
    # The read-only version the refresh copied into state would be removed: a diff on every drift check.
    without_current = tuple(p for p in cluster.ignore_changes if p != "properties.currentKubernetesVersion")
    assert _after_upgrade(cluster, _cluster_answer, created, without_current)[0] == {
        "properties.currentKubernetesVersion": (_patch(upgraded), None)
    }
    # Without the inline pools ignored, the system pool's version would be removed (and sent) every time.
    without_pools = tuple(p for p in cluster.ignore_changes if p != "properties.agentPoolProfiles")
    pool_changes, _ = _after_upgrade(cluster, _cluster_answer, created, without_pools)
    assert pool_changes["properties.agentPoolProfiles[0].orchestratorVersion"] == (upgraded, None)
    for pool in plan.of_type(POOL):
        pool_without = tuple(p for p in pool.ignore_changes if p != "orchestratorVersion")
        # The refreshed version would be removed from the pool's inputs: a diff on every drift check.
        assert _after_upgrade(pool, _pool_answer, created, pool_without)[0] == {
            "orchestratorVersion": (upgraded, None)
        }


def test_a_patch_upgrade_of_a_minor_alias_is_not_drift_either(plan: OfflinePlan) -> None:
    # The patch channel's case of Azure/AKS#3573: "1.36" comes back as "1.36.4".
    cluster = _cluster(plan)
    program = copy.deepcopy(cluster.properties)
    minor = program["properties"]["kubernetesVersion"]
    state = refreshed_inputs(
        program, _cluster_answer(program, minor, minor), _cluster_answer(program, f"{minor}.4", f"{minor}.4")
    )
    sent, invalid = ignored_inputs(program, state, cluster.ignore_changes)
    assert (changed_paths(state, sent), invalid) == ({}, [])
    sent, _ = ignored_inputs(program, state, ())
    assert changed_paths(state, sent)["properties.kubernetesVersion"] == (f"{minor}.4", minor)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("properties.kubernetesVersion", ["properties", "kubernetesVersion"]),
        ('properties["kubernetesVersion"]', ["properties", "kubernetesVersion"]),
        (
            "properties.agentPoolProfiles[*].orchestratorVersion",
            ["properties", "agentPoolProfiles", "*", "orchestratorVersion"],
        ),
        ("properties.agentPoolProfiles[0]", ["properties", "agentPoolProfiles", 0]),
        ('tags["a.b"]', ["tags", "a.b"]),
    ],
)
def test_the_path_model_parses_as_pulumi_does(path: str, expected: list[Any]) -> None:
    # Cases from the examples in pulumi/pulumi sdk/go/common/resource/properties_path.go.
    from tests.pulumi_engine_model import parse_property_path

    assert parse_property_path(path) == expected


def test_a_wildcard_path_resets_every_pool_of_the_inline_list(plan: OfflinePlan) -> None:
    # `properties.agentPoolProfiles[*].orchestratorVersion` is the narrower form; both must leave no diff.
    cluster = _cluster(plan)
    created = _config(plan).kubernetes_version
    narrower = (
        *(p for p in cluster.ignore_changes if p != "properties.agentPoolProfiles"),
        "properties.agentPoolProfiles[*].orchestratorVersion",
        "properties.agentPoolProfiles[*].currentOrchestratorVersion",
    )
    assert _after_upgrade(cluster, _cluster_answer, created, narrower) == ({}, [])


def test_both_maintenance_windows_come_from_the_stack_config(plan: OfflinePlan) -> None:
    config = _config(plan)
    windows = {r.get("configName"): r.properties["maintenanceWindow"] for r in plan.of_type(MAINTENANCE)}
    assert windows == {
        "aksManagedAutoUpgradeSchedule": {
            "schedule": {"weekly": {"dayOfWeek": config.auto_upgrade_window_day, "intervalWeeks": 1}},
            "startTime": config.auto_upgrade_window_start_time,
            "durationHours": config.auto_upgrade_window_duration_hours,
            "utcOffset": config.maintenance_utc_offset,
        },
        "aksManagedNodeOSUpgradeSchedule": {
            "schedule": {"weekly": {"dayOfWeek": config.node_os_upgrade_window_day, "intervalWeeks": 1}},
            "startTime": config.node_os_upgrade_window_start_time,
            "durationHours": config.node_os_upgrade_window_duration_hours,
            "utcOffset": config.maintenance_utc_offset,
        },
    }
    cluster = _cluster(plan)
    assert all(r.get("resourceName") == cluster.get("resourceName") for r in plan.of_type(MAINTENANCE))
