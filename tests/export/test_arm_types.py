"""The AKS cluster's ARM body against the type data of its API version (verify/arm_types.py): what the typed
SDK would have checked, checked here; each kind of defect shown refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from components.kubernetes_cluster import CLUSTER_API_VERSION
from export.resource_types import MAPPINGS
from offline.captured import StackPlan
from stack.files import REPO_ROOT
from verify import arm_types

CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
GENERIC = "azure-native:resources:Resource"
SHARED = REPO_ROOT.parent / "shared" / "bicep-types" / "microsoft.containerservice"


def _shared(version: str) -> list[dict[str, Any]]:
    path = SHARED / version / "types.json"
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared exists only beside the repository on the workplace)")
    loaded: list[dict[str, Any]] = json.loads(path.read_text())
    return loaded


def _cluster_body(plan: StackPlan) -> dict[str, Any]:
    [cluster] = [r for r in plan.plan.resources if r.type == GENERIC]
    mapping = MAPPINGS[GENERIC]
    return {"name": cluster.properties["resourceName"], **mapping.to_arm(cluster)}


@pytest.fixture(scope="module")
def types() -> tuple[dict[str, Any], ...]:
    return arm_types.load(CLUSTER_TYPE, CLUSTER_API_VERSION)


def test_the_vendored_type_data_is_what_extract_takes_from_shared() -> None:
    vendored = arm_types.vendored_path(CLUSTER_TYPE, CLUSTER_API_VERSION)
    assert vendored.is_file(), vendored
    expected = arm_types.extract(_shared(CLUSTER_API_VERSION), CLUSTER_TYPE, CLUSTER_API_VERSION)
    assert json.loads(vendored.read_text()) == expected


def test_extract_keeps_exactly_the_reachable_entries() -> None:
    types = [
        {"$type": "StringType"},
        {"$type": "ResourceType", "name": "A/b@1", "body": {"$ref": "#/3"}},
        {"$type": "IntegerType"},  # unreachable: left out
        {"$type": "ObjectType", "name": "B", "properties": {"x": {"type": {"$ref": "#/0"}, "flags": 0}}},
    ]
    assert arm_types.extract(types, "A/b", "1") == [
        {"$type": "ResourceType", "name": "A/b@1", "body": {"$ref": "#/1"}},
        {"$type": "ObjectType", "name": "B", "properties": {"x": {"type": {"$ref": "#/2"}, "flags": 0}}},
        {"$type": "StringType"},
    ]


def test_both_stacks_cluster_bodies_are_valid_at_the_api_version(
    plans: tuple[StackPlan, ...], types: tuple[dict[str, Any], ...]
) -> None:
    for plan in plans:
        body = _cluster_body(plan)
        assert arm_types.validate(types, body) == [], plan.label
        assert body["properties"]["ingressProfile"]["gatewayAPI"] == {"installation": "Standard"}


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        # A misspelled property would be dropped or refused by Azure; here it is named.
        (
            ("properties", "ingressProfile", "gatewayApi"),
            {"installation": "Standard"},
            "properties.ingressProfile.gatewayApi: not a property of ManagedClusterIngressProfile "
            "(did you mean gatewayAPI?)",
        ),
        # A value outside the API's literals.
        (
            ("properties", "ingressProfile", "webAppRouting", "gatewayAPIImplementations", "appRoutingIstio"),
            {"mode": "enabled"},
            "appRoutingIstio.mode: 'enabled' is not one of ['Enabled', 'Disabled']",
        ),
        # Read-only: Azure sets it.
        (("properties", "fqdn"), "x.example", "properties.fqdn: read-only"),
        # The wrong JSON type.
        (("properties", "enableRBAC"), "true", "properties.enableRBAC: expected true or false"),
        (
            ("properties", "agentPoolProfiles"),
            {"name": "system"},
            "properties.agentPoolProfiles: expected an array",
        ),
    ],
    ids=["misspelled", "literal", "read-only", "type", "array"],
)
def test_the_type_data_refuses_a_broken_body(
    path: tuple[str, ...],
    value: Any,
    problem: str,
    plans: tuple[StackPlan, ...],
    types: tuple[dict[str, Any], ...],
) -> None:
    body = copy.deepcopy(_cluster_body(plans[0]))
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    problems = arm_types.validate(types, body)
    assert any(problem in p for p in problems), problems


def test_a_missing_required_property_is_named(types: tuple[dict[str, Any], ...]) -> None:
    # `location` is required on a managed cluster (a tracked resource).
    assert "location: required by the API, missing" in arm_types.validate(
        types, {"name": "aks", "properties": {}}
    )


def test_the_gateway_api_settings_exist_only_from_2026_04_01(plans: tuple[StackPlan, ...]) -> None:
    # Why the cluster is not the typed SDK resource: at 2025-09-01, the SDK's version, the body is refused.
    older = arm_types.extract(_shared("2025-09-01"), CLUSTER_TYPE, "2025-09-01")
    problems = arm_types.validate(older, _cluster_body(plans[0]))
    assert any(p.startswith("properties.ingressProfile.gatewayAPI: not a property") for p in problems), (
        problems
    )
    assert any("webAppRouting.gatewayAPIImplementations: not a property" in p for p in problems), problems
    newer = arm_types.extract(_shared("2026-04-01"), CLUSTER_TYPE, "2026-04-01")
    assert arm_types.validate(newer, _cluster_body(plans[0])) == []


def test_missing_type_data_names_what_to_vendor() -> None:
    with pytest.raises(LookupError, match=r"vendor it from \.\./shared/bicep-types"):
        arm_types.load(CLUSTER_TYPE, "2099-01-01")


def test_the_vendored_folder_names_its_source_and_licence() -> None:
    folder = Path(arm_types.VENDORED)
    source = (folder / "SOURCE.md").read_text()
    assert "Azure/bicep-types-az" in source and "1f896de2db966ad91e8f7d7d981e11d32e4f5d8d" in source
    assert "MIT License" in (folder / "LICENSE").read_text()


def _vendored() -> list[tuple[str, str]]:
    """(ARM type, API version) of every vendored file (verify/arm_types/<namespace>/<version>/<type>.json)."""
    found = []
    for path in sorted(arm_types.VENDORED.glob("*/*/*.json")):
        types = json.loads(path.read_text())
        arm_type, _, version = str(types[0]["name"]).partition("@")
        found.append((arm_type, version))
    return found


@pytest.mark.parametrize(("arm_type", "version"), _vendored())
def test_every_vendored_file_is_what_extract_takes_from_shared(arm_type: str, version: str) -> None:
    path = (
        REPO_ROOT.parent / "shared" / "bicep-types" / arm_type.split("/")[0].lower() / version / "types.json"
    )
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared exists only beside the repository on the workplace)")
    vendored = arm_types.vendored_path(arm_type, version)
    assert json.loads(vendored.read_text()) == arm_types.extract(
        json.loads(path.read_text()), arm_type, version
    )


def test_a_typed_body_outside_its_type_data_stops_the_export(plans: tuple[StackPlan, ...]) -> None:
    """The web test's body against Microsoft.Insights/webtests@2022-06-15, and a misspelled property refused
    (the SDK's camelCase where ARM wants PascalCase is exactly the defect this check caught)."""
    plan = next(p for p in plans if p.stack == "prod")
    mapping = MAPPINGS["azure-native:applicationinsights:WebTest"]
    [test] = [r for r in plan.plan.resources if r.type == "azure-native:applicationinsights:WebTest"]
    body = {"name": test.properties["webTestName"], **mapping.to_arm(test)}
    types = arm_types.load("Microsoft.Insights/webtests", "2022-06-15")
    assert arm_types.validate(types, body, open_unions=True) == []
    broken = copy.deepcopy(body)
    broken["properties"]["requestUrl"] = broken["properties"]["Request"].pop("RequestUrl")
    problems = arm_types.validate(types, broken, open_unions=True)
    assert any("properties.requestUrl: not a property" in p for p in problems), problems
