"""The auto-upgrade channel and the program never fight, in both stacks' plans.

What `pulumi up` sends after AKS upgraded a cluster is decided by two real mechanisms, modelled here as their
sources state them:
1. azure-native's refresh (pulumi/pulumi-azure-native, provider/pkg/provider/provider.go, `Read`): it projects
   the old and the new outputs onto the input shape and applies their difference to the inputs in state ("if
   properties changed, we assume they aren't default values anymore, and we need to copy them to new inputs").
2. the engine's ignoreChanges (pulumi/pulumi, pkg/resource/deploy/step_generator.go, `processIgnoreChanges`):
   it "sets the value for each ignoreChanges property in inputs to the value from oldInputs".
After an upgrade AKS reports the new version in the cluster's `kubernetesVersion`, with the patch even when
a minor was asked for (Azure/AKS#3573: "1.25" became "1.25.6" after a patch-channel upgrade), and in each
pool's `orchestratorVersion`, because auto-upgrade "always upgrades the control plane and the node pools
together" (learn.microsoft.com/azure/aks/auto-upgrade-cluster). AKS cannot downgrade.
"""

from __future__ import annotations

from typing import Any

from offline.engine import OfflinePlan, PlannedResource
from stack.config import StackConfig, load_stack_config
from stack.files import read_stack

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"


def _config(plan: OfflinePlan) -> StackConfig:
    return load_stack_config(plan.stack, read_stack(plan.stack).config)


def refreshed_inputs(
    state_inputs: dict[str, Any], old_outputs: dict[str, Any], new_outputs: dict[str, Any]
) -> dict[str, Any]:
    """azure-native `Read`: the inputs in state after `pulumi refresh` (top-level properties suffice here)."""
    inputs = dict(state_inputs)
    for key in set(old_outputs) | set(new_outputs):
        if old_outputs.get(key) != new_outputs.get(key):
            if key in new_outputs:
                inputs[key] = new_outputs[key]
            else:
                inputs.pop(key, None)
    return inputs


def inputs_sent(
    program: dict[str, Any], state: dict[str, Any], ignore_changes: tuple[str, ...]
) -> dict[str, Any]:
    """The engine's processIgnoreChanges: each ignored path reset to its value in state (or removed)."""
    sent = dict(program)
    for path in ignore_changes:
        if path in state:
            sent[path] = state[path]
        else:
            sent.pop(path, None)
    return sent


def changes(sent: dict[str, Any], state: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (state.get(k), sent.get(k)) for k in set(sent) | set(state) if sent.get(k) != state.get(k)}


def _upgraded(version: str) -> str:
    """What the stack's channel leaves after one upgrade: the next minor's patch (stable, rapid)."""
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}.2"


def _after_upgrade(
    resource: PlannedResource, key: str, created: str, ignore_changes: tuple[str, ...]
) -> dict[str, tuple[Any, Any]]:
    """Create with the plan's inputs (AKS reports `created` in `key`), let the channel upgrade, refresh,
    then `pulumi up` with the same program: what changes would it send?"""
    program = dict(resource.properties)
    state = dict(program)
    old_outputs = {**program, key: created}
    new_outputs = {**program, key: _upgraded(created)}
    state = refreshed_inputs(state, old_outputs, new_outputs)
    return changes(inputs_sent(program, state, ignore_changes), state)


def test_the_channel_owns_the_version_in_both_stacks(plan: OfflinePlan) -> None:
    config = _config(plan)
    cluster = plan.one(CLUSTER)
    assert config.upgrade_channel in ("patch", "stable", "rapid")
    assert cluster.get("autoUpgradeProfile.upgradeChannel") == config.upgrade_channel
    assert cluster.get("autoUpgradeProfile.nodeOSUpgradeChannel") == "NodeImage"
    assert cluster.get("kubernetesVersion") == config.kubernetes_version  # the creation version
    assert {"kubernetesVersion", "agentPoolProfiles"} <= set(cluster.ignore_changes)
    # No pool names a version: each starts at the control plane's and the channel moves them together.
    assert all("orchestratorVersion" not in p for p in cluster.get("agentPoolProfiles"))
    pool = plan.one(POOL)
    assert pool.get("orchestratorVersion") is None
    assert "orchestratorVersion" in pool.ignore_changes


def test_after_an_upgrade_pulumi_up_sends_no_version_and_shows_no_drift(plan: OfflinePlan) -> None:
    config = _config(plan)
    cluster, pool = plan.one(CLUSTER), plan.one(POOL)
    created = config.kubernetes_version
    assert _after_upgrade(cluster, "kubernetesVersion", created, cluster.ignore_changes) == {}
    assert _after_upgrade(pool, "orchestratorVersion", created, pool.ignore_changes) == {}


def test_negative_control_without_ignore_changes_up_would_downgrade_and_drift(plan: OfflinePlan) -> None:
    config = _config(plan)
    cluster, pool = plan.one(CLUSTER), plan.one(POOL)
    created = config.kubernetes_version
    without = tuple(p for p in cluster.ignore_changes if p != "kubernetesVersion")
    # The program's creation minor sent back over the upgraded version: a downgrade AKS refuses.
    assert _after_upgrade(cluster, "kubernetesVersion", created, without) == {
        "kubernetesVersion": (_upgraded(created), created)
    }
    pool_without = tuple(p for p in pool.ignore_changes if p != "orchestratorVersion")
    # The refreshed version would be removed from the pool's inputs: a diff on every scheduled drift check.
    assert _after_upgrade(pool, "orchestratorVersion", created, pool_without) == {
        "orchestratorVersion": (_upgraded(created), None)
    }


def test_a_patch_upgrade_of_a_minor_alias_is_not_drift_either(plan: OfflinePlan) -> None:
    # The patch channel's case of Azure/AKS#3573: "1.36" comes back as "1.36.4".
    cluster = plan.one(CLUSTER)
    program = dict(cluster.properties)
    minor = program["kubernetesVersion"]
    state = refreshed_inputs(
        dict(program), {**program, "kubernetesVersion": minor}, {**program, "kubernetesVersion": f"{minor}.4"}
    )
    assert changes(inputs_sent(program, state, cluster.ignore_changes), state) == {}
    assert changes(inputs_sent(program, state, ()), state) == {"kubernetesVersion": (f"{minor}.4", minor)}


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
    cluster = plan.one(CLUSTER)
    assert all(r.get("resourceName") == cluster.get("resourceName") for r in plan.of_type(MAINTENANCE))
