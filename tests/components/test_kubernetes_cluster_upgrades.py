"""KubernetesCluster: the upgrade channel owns the version."""

from __future__ import annotations

from typing import Any

import pytest

from components.kubernetes_cluster import (
    KubernetesCluster,
    KubernetesClusterArgs,
    NodePoolSize,
)
from offline.engine import OfflinePlan, run_offline
from stack.naming import ResourceNames

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
NAMES = ResourceNames.for_stack("prod", "t1")


def _args(**changes: Any) -> KubernetesClusterArgs:
    values: dict[str, Any] = {
        "resource_group_name": "rg-test",
        "location": "westeurope",
        "cluster_name": NAMES.cluster,
        "dns_prefix": NAMES.cluster_dns_prefix,
        "node_resource_group": NAMES.node_resource_group,
        "control_plane_identity_name": NAMES.control_plane_identity,
        "kubelet_identity_name": NAMES.kubelet_identity,
        "kubernetes_version": "1.36",
        "system_pool": NodePoolSize(vm_size="Standard_D4ds_v5", count=3),
        "user_pool": NodePoolSize(vm_size="Standard_D4ds_v5", count=2),
        **changes,
    }
    return KubernetesClusterArgs(**values)


def _plan(args: KubernetesClusterArgs) -> OfflinePlan:
    return run_offline(lambda: KubernetesCluster("cluster", args), project="muse", stack="unit")


@pytest.fixture(scope="module")
def plan() -> OfflinePlan:
    return _plan(_args())


def test_the_version_is_the_creation_version_and_the_channel_owns_it_afterwards(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    assert cluster.get("kubernetesVersion") == "1.36"
    assert cluster.get("autoUpgradeProfile.upgradeChannel") == "stable"  # the component's default
    assert "kubernetesVersion" in cluster.ignore_changes
    pool = plan.one(POOL)
    # No orchestratorVersion: a (re)created pool starts at the control plane's version, never an older one.
    assert pool.get("orchestratorVersion") is None
    assert "orchestratorVersion" in pool.ignore_changes


@pytest.mark.parametrize("channel", ["none", "node-image", "Stable"])
def test_a_channel_that_does_not_move_the_version_is_refused(channel: str) -> None:
    with pytest.raises(Exception, match="upgrade_channel") as raised:
        _plan(_args(upgrade_channel=channel))
    assert "patch, stable, rapid" in str(raised.value)
