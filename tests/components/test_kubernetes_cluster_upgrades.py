"""KubernetesCluster: the upgrade channel owns the version, and the planned-maintenance windows.

The property names and enums are checked against the API's own type definitions (Azure/bicep-types-az,
vendored in ../shared/bicep-types) at the REST API version the installed SDK uses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.kubernetes_cluster import (
    AUTO_UPGRADE_SCHEDULE,
    NODE_OS_UPGRADE_SCHEDULE,
    KubernetesCluster,
    KubernetesClusterArgs,
    MaintenanceWindow,
    NodePoolSize,
)
from export.api_versions import api_version
from offline.engine import OfflinePlan, run_offline
from offline.mocks import SUBSCRIPTION_ID
from stack.files import REPO_ROOT
from stack.naming import ResourceNames

CLUSTER = "azure-native:resources:Resource"  # the cluster as a generic ARM resource at CLUSTER_API_VERSION
POOL = "azure-native:containerservice:AgentPool"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"
NAMES = ResourceNames.for_stack("prod", "t1")
NIGHTLY = MaintenanceWindow(day_of_week="Tuesday", start_time="22:00", duration_hours=6, utc_offset="+01:00")
NODE_IMAGES = MaintenanceWindow(day_of_week="Thursday", start_time="23:30", duration_hours=4)
BICEP_TYPES = REPO_ROOT.parent / "shared" / "bicep-types"


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
    return _plan(_args(auto_upgrade_window=NIGHTLY, node_os_upgrade_window=NODE_IMAGES))


def test_the_version_is_the_creation_version_and_the_channel_owns_it_afterwards(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    assert cluster.get("properties.kubernetesVersion") == "1.36"
    assert cluster.get("properties.autoUpgradeProfile.upgradeChannel") == "stable"  # the component's default
    # Paths inside the generic resource's ARM body (tests/program/test_upgrade_model.py models what the
    # engine does with them).
    assert "properties.kubernetesVersion" in cluster.ignore_changes
    assert "kubernetesVersion" not in cluster.ignore_changes  # the typed resource's path ignores nothing here
    assert "properties.agentPoolProfiles" in cluster.ignore_changes  # the inline pool, its version included
    for pool in plan.of_type(POOL):
        # No orchestratorVersion: a (re)created pool starts at the control plane's version, never older.
        assert pool.get("orchestratorVersion") is None
        assert "orchestratorVersion" in pool.ignore_changes


def test_every_zone_pool_leaves_its_version_to_the_channel() -> None:
    zonal = _plan(_args(availability_zones=("1", "2", "3")))
    pools = zonal.of_type(POOL)
    assert sorted(p.get("agentPoolName")[: len("musez1")] for p in pools) == ["musez1", "musez2", "musez3"]
    for pool in pools:
        assert pool.get("orchestratorVersion") is None
        assert "orchestratorVersion" in pool.ignore_changes


@pytest.mark.parametrize("channel", ["none", "node-image", "Stable"])
def test_a_channel_that_does_not_move_the_version_is_refused(channel: str) -> None:
    with pytest.raises(Exception, match="upgrade_channel") as raised:
        _plan(_args(upgrade_channel=channel))
    assert "patch, stable, rapid" in str(raised.value)


def _window(plan: OfflinePlan, config_name: str) -> Any:
    [found] = [r for r in plan.of_type(MAINTENANCE) if r.get("configName") == config_name]
    return found


def test_both_maintenance_configurations_are_weekly_windows_of_the_cluster(plan: OfflinePlan) -> None:
    component = plan.one("muse:azure:KubernetesCluster")
    upgrades = _window(plan, AUTO_UPGRADE_SCHEDULE)
    assert upgrades.parent == component.urn
    assert upgrades.get("resourceName") == NAMES.cluster
    assert upgrades.get("resourceGroupName") == "rg-test"
    assert upgrades.properties["maintenanceWindow"] == {
        "schedule": {"weekly": {"dayOfWeek": "Tuesday", "intervalWeeks": 1}},
        "startTime": "22:00",
        "durationHours": 6,
        "utcOffset": "+01:00",
    }
    node_images = _window(plan, NODE_OS_UPGRADE_SCHEDULE)
    assert node_images.properties["maintenanceWindow"] == {
        "schedule": {"weekly": {"dayOfWeek": "Thursday", "intervalWeeks": 1}},
        "startTime": "23:30",
        "durationHours": 4,
        "utcOffset": "+00:00",  # AKS's default, stated instead of left implicit
    }
    # The deprecated `default`-configuration properties are not used.
    for window in (upgrades, node_images):
        assert window.get("timeInWeek") is None and window.get("notAllowedTime") is None


def test_without_windows_there_are_no_maintenance_configurations() -> None:
    assert _plan(_args()).of_type(MAINTENANCE) == []
    only_upgrades = _plan(_args(auto_upgrade_window=NIGHTLY)).of_type(MAINTENANCE)
    assert [r.get("configName") for r in only_upgrades] == [AUTO_UPGRADE_SCHEDULE]


def test_the_mocks_answer_like_aks(plan: OfflinePlan) -> None:
    from offline.captured import CapturingMocks
    from offline.engine import RecordingMonitor

    mocks = CapturingMocks("unit")
    run_offline(
        lambda: KubernetesCluster("cluster", _args(node_os_upgrade_window=NODE_IMAGES)),
        project="muse",
        stack="unit",
        monitor=RecordingMonitor(mocks),
    )
    outputs = mocks.outputs[(MAINTENANCE, "cluster-node-os-upgrade-window")]
    assert outputs["id"] == (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-test/providers/Microsoft.ContainerService/"
        f"managedClusters/{NAMES.cluster}/maintenanceConfigurations/{NODE_OS_UPGRADE_SCHEDULE}"
    )
    assert outputs["name"] == NODE_OS_UPGRADE_SCHEDULE
    assert outputs["type"] == "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
    # `az aks maintenanceconfiguration show` (learn.microsoft.com/azure/aks/planned-maintenance): the
    # schedule kinds not used come back null.
    assert outputs["maintenanceWindow"]["schedule"] == {
        "absoluteMonthly": None,
        "daily": None,
        "relativeMonthly": None,
        "weekly": {"dayOfWeek": "Thursday", "intervalWeeks": 1},
    }


# --- the API's own definition of the resource --------------------------------------------------------------


def _bicep_type(resource_type: str, version: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    path = BICEP_TYPES / "microsoft.containerservice" / version / "types.json"
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared holds the API type definitions only on the dev host)")
    types: list[dict[str, Any]] = json.loads(path.read_text())
    wanted = f"{resource_type}@{version}".lower()
    [resource] = [t for t in types if t.get("$type") == "ResourceType" and t["name"].lower() == wanted]
    return types, resource


def _resolve(types: list[dict[str, Any]], ref: dict[str, str]) -> dict[str, Any]:
    return types[int(ref["$ref"].split("/")[-1])]


def _check_against_type(
    types: list[dict[str, Any]], value: Any, type_: dict[str, Any], path: str
) -> list[str]:
    """Every property of `value` exists in the API's type, enums are allowed values, integers in range."""
    kind = type_["$type"]
    if kind == "ObjectType":
        properties = type_.get("properties", {})
        problems = []
        for key, item in value.items():
            if key not in properties:
                problems.append(f"{path}.{key}: not a property of {type_.get('name')}")
                continue
            problems += _check_against_type(
                types, item, _resolve(types, properties[key]["type"]), f"{path}.{key}"
            )
        required = {k for k, p in properties.items() if p.get("flags", 0) & 1}
        problems += [f"{path}.{k}: required by the API but missing" for k in sorted(required - set(value))]
        return problems
    if kind == "UnionType":
        literals = [_resolve(types, e) for e in type_["elements"]]
        allowed = [t["value"] for t in literals if t["$type"] == "StringLiteralType"]
        return [] if value in allowed else [f"{path}: {value!r} is not one of {allowed}"]
    if kind == "IntegerType":
        low, high = type_.get("minValue", value), type_.get("maxValue", value)
        return [] if low <= value <= high else [f"{path}: {value} outside {low}..{high}"]
    if kind == "StringType":
        import re

        pattern = type_.get("pattern")
        return [] if pattern is None or re.match(pattern, value) else [f"{path}: {value!r} !~ {pattern}"]
    return []


def test_the_windows_are_valid_maintenance_configurations_at_the_sdks_api_version(plan: OfflinePlan) -> None:
    version = api_version(MAINTENANCE)
    types, resource = _bicep_type(
        "Microsoft.ContainerService/managedClusters/maintenanceConfigurations", version
    )
    body = _resolve(types, resource["body"])
    properties_type = _resolve(types, body["properties"]["properties"]["type"])
    for config_name in (AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE):
        window = _window(plan, config_name)
        arm_properties = {"maintenanceWindow": window.properties["maintenanceWindow"]}
        assert _check_against_type(types, arm_properties, properties_type, "properties") == []


def test_the_type_check_catches_a_wrong_name_enum_and_range(plan: OfflinePlan) -> None:
    # Negative control: the check above would see a misspelt property, a day AKS does not know and a window
    # shorter than the API's four hours.
    version = api_version(MAINTENANCE)
    types, resource = _bicep_type(
        "Microsoft.ContainerService/managedClusters/maintenanceConfigurations", version
    )
    properties_type = _resolve(types, _resolve(types, resource["body"])["properties"]["properties"]["type"])
    broken = {
        "maintenanceWindow": {
            "schedule": {"weekly": {"dayOfWeek": "Funday", "intervalWeeks": 1}},
            "startTime": "22:00",
            "durationHours": 3,
            "utcOfset": "+00:00",
        }
    }
    problems = _check_against_type(types, broken, properties_type, "properties")
    assert len(problems) == 3, problems
    assert any("Funday" in p for p in problems)
    assert any("durationHours: 3 outside 4..24" in p for p in problems)
    assert any("utcOfset: not a property" in p for p in problems)


def test_bicep_types_folder_is_where_the_test_expects_it() -> None:
    # The skips above may only happen where ../shared is absent, never because the path is wrong.
    if not (REPO_ROOT.parent / "shared").exists():
        pytest.skip("../shared is not here (GitHub's runners)")
    assert (BICEP_TYPES / "SOURCE.md").exists()
