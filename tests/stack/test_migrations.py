"""The state migration of the AKS cluster from the typed resource to the generic one (stack/migrations.py):
after it, the only differences between the state and what the program sends are the changes this version
makes, so Pulumi plans an update in place and no replacement."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cli.migrations import main
from offline.engine import OfflinePlan
from stack import migrations
from stack.migrations import GENERIC, MigrationError, migrate_cluster_to_generic

TYPED = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
GENERIC_PATH_INPUTS = ("resourceProviderNamespace", "resourceType", "parentResourcePath", "apiVersion")


def _typed_inputs(generic: dict[str, Any]) -> dict[str, Any]:
    """The inputs the program before this change sent for the same cluster: the typed resource's flat shape,
    its ingress profile only the add-on's NGINX, no autoscaler profile."""
    flat = {k: v for k, v in generic.items() if k not in ("properties", *GENERIC_PATH_INPUTS)}
    properties = copy.deepcopy(generic["properties"])
    properties["ingressProfile"] = {"webAppRouting": {"enabled": True}}
    del properties["autoScalerProfile"]
    return {**flat, **properties}


def _exported_state(plan: OfflinePlan) -> tuple[dict[str, Any], str]:
    cluster = plan.one(GENERIC)
    old_urn = cluster.urn.replace(f"${GENERIC}::", f"${TYPED}::")
    typed_inputs = _typed_inputs(cluster.properties)
    group, name = typed_inputs["resourceGroupName"], typed_inputs["resourceName"]
    cluster_id = (
        f"/subscriptions/x/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
    typed_outputs = {
        **typed_inputs,
        "id": cluster_id,
        "name": typed_inputs["resourceName"],
        "type": "Microsoft.ContainerService/ManagedClusters",
        "azureApiVersion": "2025-09-01",
        "fqdn": "muse-dev-m7k2-abc.hcp.westeurope.azmk8s.io",
        "provisioningState": "Succeeded",
    }
    pool_urn = cluster.urn.replace(f"${GENERIC}::cluster", f"${POOL}::cluster-muse")
    state = {
        "version": 3,
        "deployment": {
            "manifest": {"time": "2026-11-30T00:00:00Z"},
            "resources": [
                {"urn": old_urn, "custom": True, "id": cluster_id, "type": TYPED, "inputs": typed_inputs,
                 "outputs": typed_outputs, "parent": cluster.parent, "dependencies": []},
                {"urn": pool_urn, "custom": True, "id": f"{cluster_id}/agentPools/muse", "type": POOL,
                 "inputs": {"resourceName": typed_inputs["resourceName"]}, "outputs": {},
                 "parent": cluster.parent, "dependencies": [old_urn],
                 "propertyDependencies": {"resourceName": [old_urn]}},
            ],
        },
    }  # fmt: skip
    return state, old_urn


def test_the_migrated_cluster_differs_from_the_program_only_by_this_versions_changes(
    plans: dict[str, OfflinePlan],
) -> None:
    plan = plans["dev"]
    state, old_urn = _exported_state(plan)
    migrated = migrate_cluster_to_generic(state)
    [cluster] = [r for r in migrated["deployment"]["resources"] if r["type"] == GENERIC]
    wanted = plan.one(GENERIC)
    assert cluster["urn"] == wanted.urn
    assert cluster["id"] == state["deployment"]["resources"][0]["id"]  # the same Azure resource
    # Same path inputs: nothing for the provider to replace on.
    for key in (*GENERIC_PATH_INPUTS, "resourceGroupName", "resourceName"):
        assert cluster["inputs"][key] == wanted.properties[key], key
    # The body: what this version adds and nothing else.
    before, after = cluster["inputs"]["properties"], wanted.properties["properties"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == ["autoScalerProfile", "ingressProfile"]
    assert {k: v for k, v in cluster["inputs"].items() if k != "properties"} == {
        k: v for k, v in wanted.properties.items() if k != "properties"
    }
    assert cluster["outputs"]["properties"]["fqdn"] == "muse-dev-m7k2-abc.hcp.westeurope.azmk8s.io"
    # Every reference follows the cluster's new URN.
    assert old_urn not in json.dumps(migrated)
    [pool] = [r for r in migrated["deployment"]["resources"] if r["type"] == POOL]
    assert pool["dependencies"] == [wanted.urn] and pool["propertyDependencies"] == {
        "resourceName": [wanted.urn]
    }


def test_a_migrated_state_is_not_migrated_twice(plans: dict[str, OfflinePlan]) -> None:
    state, _ = _exported_state(plans["dev"])
    migrated = migrate_cluster_to_generic(state)
    with pytest.raises(MigrationError, match="nothing to do"):
        migrate_cluster_to_generic(migrated)
    with pytest.raises(MigrationError, match="expected one"):
        migrate_cluster_to_generic({"deployment": {"resources": []}})


def test_the_command_reads_an_export_and_writes_the_migrated_state(
    plans: dict[str, OfflinePlan], tmp_path: Path
) -> None:
    state, old_urn = _exported_state(plans["dev"])
    source, target = tmp_path / "state.json", tmp_path / "migrated.json"
    source.write_text(json.dumps(state))
    assert main(["cluster-generic", str(source), str(target)]) == 0
    assert old_urn not in target.read_text() and GENERIC in target.read_text()
    assert main(["cluster-generic", str(target), str(tmp_path / "again.json")]) == 1
    assert main(["no-such-migration", str(source), str(target)]) == 2


def test_an_api_version_recorded_in_the_typed_inputs_stays_out_of_the_body(
    plans: dict[str, OfflinePlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`azureApiVersion` is azure-native's record of the API version, never an ARM property: a typed state
    whose inputs carry it migrates to the same body as one whose inputs do not."""
    plan = plans["dev"]
    state, _ = _exported_state(plan)
    state["deployment"]["resources"][0]["inputs"]["azureApiVersion"] = "2025-09-01"

    def body(migrated: dict[str, Any]) -> dict[str, Any]:
        [cluster] = [r for r in migrated["deployment"]["resources"] if r["type"] == GENERIC]
        return dict(cluster["inputs"]["properties"])

    wanted = plan.one(GENERIC).properties["properties"]
    properties = body(migrate_cluster_to_generic(state))
    assert "azureApiVersion" not in properties
    assert sorted(k for k in set(properties) | set(wanted) if properties.get(k) != wanted.get(k)) == [
        "autoScalerProfile",
        "ingressProfile",
    ]
    # Negative control: without the exclusion it lands in the body, a diff on the first preview.
    monkeypatch.setattr(migrations, "_NOT_BODY_INPUTS", ())
    assert body(migrate_cluster_to_generic(state))["azureApiVersion"] == "2025-09-01"
