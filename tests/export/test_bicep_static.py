"""The generated Bicep as a file: pycep parses it, checkov passes, it reads like hand-written Bicep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.kubernetes_cluster import CLUSTER_API_VERSION
from export.api_versions import api_version, resource_api_version
from export.bicep import NOT_PARAMETERS
from export.resource_types import MAPPINGS
from offline.captured import StackPlan
from stack.config import StackConfig
from stack.files import REPO_ROOT

BICEP = REPO_ROOT / "infra" / "bicep" / "main.bicep"


def test_parses_with_pycep_at_resource_group_scope(bicep_ast: dict[str, Any]) -> None:
    assert bicep_ast["globals"]["scope"]["value"] == "resourceGroup"
    assert len(bicep_ast["resources"]) >= 17


def test_parameters_carry_the_config_descriptions_and_bounds(bicep_ast: dict[str, Any]) -> None:
    params = bicep_ast["parameters"]
    for name, spec in StackConfig.model_fields.items():
        alias = spec.alias or name
        if alias in NOT_PARAMETERS:
            continue
        decorators = {d["type"]: d["argument"] for d in params[alias]["decorators"]}
        assert decorators["description"].replace("\\'", "'") == spec.description, alias  # pycep keeps escapes
    sku = {d["type"]: d["argument"] for d in params["registrySku"]["decorators"]}
    assert sku["allowed"] == ["Basic", "Standard", "Premium"]
    days = {d["type"]: d["argument"] for d in params["keyVaultRetentionDays"]["decorators"]}
    assert (days["min_value"], days["max_value"]) == (7, 90)
    assert params["registrySku"]["default"] == "Basic"  # Pulumi.yaml's default
    assert params["environment"]["default"] is None  # required, as in Pulumi.yaml


def test_every_resource_uses_the_api_version_pulumi_deploys_it_with(
    bicep_ast: dict[str, Any], plans: tuple[StackPlan, ...]
) -> None:
    # The SDK's version for a typed resource; a generic resource's own `apiVersion` input (the AKS cluster).
    versions = {m.arm_type: api_version(t) for t, m in MAPPINGS.items() if not m.api_version_input}
    for plan in plans:
        for resource in plan.plan.resources:
            mapping = MAPPINGS.get(resource.type)
            if mapping and mapping.api_version_input:
                versions[mapping.arm_type] = resource_api_version(resource.type, resource.properties)
    assert versions["Microsoft.ContainerService/managedClusters"] == CLUSTER_API_VERSION
    for symbol, resource in bicep_ast["resources"].items():
        assert resource["api_version"] == versions[resource["type"]], symbol


@pytest.mark.slow  # checkov
def test_checkov_bicep_checks_pass_with_no_parsing_errors(checkov: Callable[..., dict[str, Any]]) -> None:
    report = checkov("-f", str(BICEP), framework="bicep")
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert (summary["failed"], summary["parsing_errors"], failed) == (0, 0, [])
    assert summary["passed"] > 0 and summary["resource_count"] >= 17
    # Every skip is one written inline, with its reason.
    text = BICEP.read_text()
    for skipped in report["results"]["skipped_checks"]:
        assert f"checkov:skip={skipped['check_id']}: " in text
