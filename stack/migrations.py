"""State migrations of this application's stacks: what a person runs once when the program changes a
resource's type, so Pulumi updates the resource instead of planning to delete it.

    .venv/bin/python -m cli.migrations cluster-generic state.json migrated.json

`cluster-generic` moves the AKS cluster's state entry from the typed ManagedCluster to the generic resource
(same ARM id, its URN renamed everywhere). What it rewrites and why:
docs/architecture/azure.md#state-migrations;
the whole procedure: docs/runbook.md, "Moving an existing stack to the 2026-05-01 cluster"."""

from __future__ import annotations

import json
from typing import Any

from components.kubernetes_cluster import (
    CLUSTER_API_VERSION,
    CLUSTER_PROVIDER_NAMESPACE,
    CLUSTER_RESOURCE_TYPE,
    TYPED_CLUSTER,
)
from components.kubernetes_cluster import GENERIC_RESOURCE as GENERIC

# Inputs and outputs that stay beside `properties` in an ARM body (and in the generic resource).
_TOP_LEVEL = ("location", "tags", "sku", "identity", "extendedLocation", "kind")
# The typed resource's inputs that are parts of the ARM path, not of the body.
_PATH_INPUTS = ("resourceGroupName", "resourceName")
# Outputs of a resource that are not ARM properties.
_OUTPUT_METADATA = ("id", "name", "type", "azureApiVersion", "systemData", "eTag")


class MigrationError(ValueError):
    pass


# Keys a typed state's inputs may carry that are no ARM body property: `azureApiVersion` is the provider's
# record of the API version it used (an output beside `id`), not a field AKS knows. Moved into `properties`
# it would be a spurious diff on the first preview, and a field sent to AKS in the next PUT.
_NOT_BODY_INPUTS = ("azureApiVersion",)


def _generic_inputs(typed: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in typed.items() if k not in (*_TOP_LEVEL, *_PATH_INPUTS, *_NOT_BODY_INPUTS)}
    return {
        **{k: typed[k] for k in (*_TOP_LEVEL, *_PATH_INPUTS) if k in typed},
        "resourceProviderNamespace": CLUSTER_PROVIDER_NAMESPACE,
        "resourceType": CLUSTER_RESOURCE_TYPE,
        "parentResourcePath": "",
        "apiVersion": CLUSTER_API_VERSION,
        "properties": properties,
    }


def _generic_outputs(typed: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in typed.items() if k not in (*_TOP_LEVEL, *_PATH_INPUTS, *_OUTPUT_METADATA)}
    return {
        **{k: typed[k] for k in (*_TOP_LEVEL, "id", "name", "type") if k in typed},
        **{
            k: inputs[k]
            for k in ("resourceProviderNamespace", "resourceType", "parentResourcePath", "apiVersion")
        },
        **{k: typed[k] for k in _PATH_INPUTS if k in typed},
        "azureApiVersion": CLUSTER_API_VERSION,
        "properties": properties,
    }


def migrate_cluster_to_generic(state: dict[str, Any]) -> dict[str, Any]:
    """`pulumi stack export` output with the typed cluster rewritten as the generic resource (a new dict)."""
    deployment = state.get("deployment") or {}
    resources = deployment.get("resources") or []
    typed = [r for r in resources if r.get("type") == TYPED_CLUSTER]
    if len(typed) != 1:
        already = [r for r in resources if r.get("type") == GENERIC]
        if not typed and already:
            raise MigrationError("the state already holds the cluster as a generic resource: nothing to do")
        raise MigrationError(f"expected one {TYPED_CLUSTER} in the state, found {len(typed)}")
    [cluster] = typed
    old_urn = str(cluster["urn"])
    new_urn = old_urn.replace(f"${TYPED_CLUSTER}::", f"${GENERIC}::").replace(
        f"::{TYPED_CLUSTER}::", f"::{GENERIC}::"
    )
    if new_urn == old_urn:
        raise MigrationError(f"cannot place the type in the URN {old_urn}")
    # Every reference to the cluster's URN (dependencies, parents, property dependencies) follows it.
    text = json.dumps(state).replace(json.dumps(old_urn)[1:-1], json.dumps(new_urn)[1:-1])
    migrated: dict[str, Any] = json.loads(text)
    for resource in migrated["deployment"]["resources"]:
        if resource.get("urn") == new_urn:
            inputs = _generic_inputs(resource.get("inputs") or {})
            resource["type"] = GENERIC
            resource["inputs"] = inputs
            resource["outputs"] = _generic_outputs(resource.get("outputs") or {}, inputs)
    return migrated


MIGRATIONS = {"cluster-generic": migrate_cluster_to_generic}
