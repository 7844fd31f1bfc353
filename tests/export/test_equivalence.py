"""The committed Bicep, evaluated with each stack's parameter file, deploys what the Pulumi plan deploys."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from export.api_versions import resource_api_version
from export.bicep import NOT_OUTPUTS, NOT_PARAMETERS, ExportError, azure_resources
from export.mapping import TypeMapping
from export.resource_types import MAPPINGS
from offline.captured import StackPlan
from offline.engine import PlannedResource
from offline.mocks import DEPLOYER_OBJECT_ID, SUBSCRIPTION_ID, TENANT_ID
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT
from verify.evaluate import EvaluatedResource, Evaluator, Guid

# Slow (the Bicep evaluated against the plan of every stack variant): `make test-fast` leaves the module out.
pytestmark = pytest.mark.slow

SECRET_VALUE = "deployer-supplied-secret"


def parameter_file(stack: str) -> dict[str, Any]:
    document = json.loads((REPO_ROOT / "infra" / "bicep" / f"parameters.{stack}.json").read_text())
    return {k: v["value"] for k, v in document["parameters"].items()}


def deployment_parameters(plan: StackPlan, ast: dict[str, Any]) -> dict[str, Any]:
    """What a deployer passes: the stack's parameter file (a variant: its config), plus the @secure() ones."""
    if plan.label == plan.stack:
        values = parameter_file(plan.stack)
    else:
        values = {k: v for k, v in plan.stack_config.items() if k not in NOT_PARAMETERS}
    secure = {
        n: p["type"]
        for n, p in ast["parameters"].items()
        if any(d["type"] == "secure" for d in p["decorators"])
    }
    # A secure string gets a value; a secure object (the webhook URLs) none, as neither stack file sets one.
    return {**values, **{n: {} if kind == "object" else SECRET_VALUE for n, kind in secure.items()}}


def _without_nulls(value: Any) -> Any:
    """ARM treats a null property as not set."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _azure_name(mapping: TypeMapping, resource: PlannedResource) -> str | None:
    return str(resource.properties[mapping.name_input]) if mapping.name_input else None


def evaluate(plan: StackPlan, ast: dict[str, Any]) -> tuple[dict[str, EvaluatedResource], dict[str, Any]]:
    """Evaluate the Bicep with the plan's parameters; Azure-computed values come from the mocks' answers for
    the plan resource that the Bicep resource stands for (same ARM type and name)."""
    by_arm: dict[tuple[str, str], PlannedResource] = {}
    for resource in plan.plan.resources:
        mapping = MAPPINGS.get(resource.type)
        if mapping and mapping.name_input:
            by_arm[(mapping.arm_type, str(resource.properties[mapping.name_input]))] = resource

    def resolve(target: EvaluatedResource, path: str) -> Any:
        if target.existing:  # a child Azure manages (a certificate's secret): its id hangs off its parent's
            if path != "id" or target.parent is None:
                raise LookupError(f"{target.symbol}: only the id of an existing resource is known offline")
            parent = evaluator._resource(target.parent)
            assert parent is not None, target.parent
            return f"{resolve(parent, 'id')}/{target.type.rsplit('/', 1)[-1]}/{target.body['name']}"
        planned = by_arm.get((target.type, target.body["name"]))
        if planned is None:
            raise LookupError(f"{target.symbol} ({target.type} {target.body['name']}) is not in the plan")
        value: Any = plan.outputs_of(planned)
        nested = MAPPINGS[planned.type].nested_properties
        parts = path.split(".")
        if parts[0] == "properties" and not nested:
            parts = parts[1:]
        for part in parts:
            value = value[part]
        return value

    config = plan.config
    from stack.naming import ResourceNames

    evaluator = Evaluator(
        ast,
        deployment_parameters(plan, ast),
        resolve,
        subscription_id=SUBSCRIPTION_ID,
        resource_group=ResourceNames.for_stack(config.environment, config.name_suffix).resource_group,
        tenant_id=TENANT_ID,
        deployer_object_id=DEPLOYER_OBJECT_ID,
    )
    return evaluator.resources(), evaluator.outputs()


def existing_id(resources: dict[str, EvaluatedResource], plan: StackPlan, symbol: str) -> str | None:
    """The id an `existing` child resource of the Bicep stands for: its parent's plan id + its own segment."""
    target = resources[symbol]
    if not target.existing or target.parent is None:
        return None
    parent = resources[target.parent]
    for planned in plan.plan.resources:
        mapping = MAPPINGS.get(planned.type)
        if (
            mapping
            and mapping.arm_type == parent.type
            and _azure_name(mapping, planned) == parent.body["name"]
        ):
            return f"{plan.outputs_of(planned)['id']}/{target.type.rsplit('/', 1)[-1]}/{target.body['name']}"
    return None


def mismatches(plan: StackPlan, ast: dict[str, Any]) -> list[str]:
    """Every way the Bicep (with this plan's parameters) differs from the plan; empty when equivalent."""
    resources, _ = evaluate(plan, ast)
    problems: list[str] = []
    matched: set[str] = set()

    def resource_id(symbol: str | None) -> Any:
        if symbol is None:
            return None
        target = resources[symbol]
        if target.existing:
            return existing_id(resources, plan, symbol)
        for planned in plan.plan.resources:
            mapping = MAPPINGS.get(planned.type)
            if (
                mapping
                and mapping.arm_type == target.type
                and _azure_name(mapping, planned) == target.body["name"]
            ):
                return plan.outputs_of(planned)["id"]
        return None

    for planned in plan.plan.resources:
        if not planned.custom or not planned.type.startswith("azure-native:"):
            continue
        mapping = MAPPINGS.get(planned.type)
        if mapping is None:
            problems.append(f"{planned.type} {planned.name}: no Bicep mapping, so no counterpart")
            continue
        expected = _without_nulls(mapping.to_arm(planned))
        candidates = [r for r in resources.values() if r.type == mapping.arm_type and r.symbol not in matched]
        name = _azure_name(mapping, planned)
        if name is not None:
            candidates = [
                r for r in candidates if r.body.get("name") == name or isinstance(r.body.get("name"), Guid)
            ]
        if mapping.scope_input:
            scope = planned.properties[mapping.scope_input]
            candidates = [r for r in candidates if resource_id(r.scope) == scope]
        if len(candidates) > 1:
            candidates = [
                r
                for r in candidates
                if _without_nulls(r.body).get("properties") == expected.get("properties")
            ]
        if len(candidates) != 1:
            problems.append(
                f"{planned.type} {planned.name}: {len(candidates)} Bicep counterparts (expected 1)"
            )
            continue
        counterpart = candidates[0]
        matched.add(counterpart.symbol)
        version = resource_api_version(planned.type, planned.properties)
        if f"{mapping.arm_type}" != counterpart.type or version != counterpart.api_version:
            problems.append(f"{counterpart.symbol}: type/API version differ from the SDK's")
        actual = _without_nulls({k: v for k, v in counterpart.body.items() if k != "name"})
        if planned.secret_paths:
            for secret in planned.secret_paths:  # masked in the plan: the Bicep takes a @secure() parameter
                expected.pop(secret, None)
                actual.pop(secret, None)
        if actual != expected:
            problems.append(f"{counterpart.symbol}: body differs\n  bicep: {actual}\n  plan:  {expected}")
        if mapping.parent:
            parent = resources[counterpart.parent or ""]
            if parent.body["name"] != planned.properties[mapping.parent[0]]:
                problems.append(f"{counterpart.symbol}: parent {parent.body['name']} differs")
        if planned.type == "azure-native:authorization:RoleAssignment":
            guid = counterpart.body["name"]
            principal = planned.properties["principalId"]
            principal_ids = {principal} | {
                plan.outputs_of(r)["id"]
                for r in plan.plan.resources
                if r.custom and plan.outputs_of(r).get("principalId") == principal
            }
            if not (
                isinstance(guid, Guid)
                and guid.args[0] == planned.properties["scope"]
                and guid.args[1] in principal_ids
                and guid.args[2] == planned.properties["roleDefinitionId"]
            ):
                problems.append(f"{counterpart.symbol}: name is not guid(scope, principal, role): {guid}")
    for symbol in sorted(set(resources) - matched):
        if resources[symbol].existing:  # referenced, not deployed: checked through the scopes above
            continue
        problems.append(f"{symbol}: in the Bicep but not in the plan of {plan.label}")
    return problems


def test_every_azure_resource_of_every_plan_has_an_equivalent_bicep_resource(
    plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]
) -> None:
    for plan in plans:
        assert mismatches(plan, bicep_ast) == [], plan.label


def test_a_plan_resource_missing_from_the_bicep_is_reported(
    plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]
) -> None:
    ast = copy.deepcopy(bicep_ast)
    del ast["resources"]["userPool"]
    assert any("AgentPool" in p and "0 Bicep counterparts" in p for p in mismatches(plans[0], ast))


def test_a_changed_value_in_the_bicep_is_reported(
    plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]
) -> None:
    ast = copy.deepcopy(bicep_ast)
    ast["resources"]["registry"]["config"]["properties"]["adminUserEnabled"] = True
    assert any(p.startswith("registry: body differs") for p in mismatches(plans[0], ast))


def test_a_wrong_condition_in_the_bicep_is_reported(
    plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]
) -> None:
    # Negative control for CONDITIONS: the zone-1 pool under the regional pool's condition is missing from
    # prod's Bicep and extra in dev's.
    ast = copy.deepcopy(bicep_ast)
    ast["resources"]["userPoolZone1"]["config"]["condition"] = ast["resources"]["userPool"]["config"][
        "condition"
    ]
    by_label = {p.label: mismatches(p, ast) for p in plans}
    assert any("0 Bicep counterparts" in m for m in by_label["prod"])
    assert "userPoolZone1: in the Bicep but not in the plan of dev" in by_label["dev"]


def test_an_unmapped_azure_type_stops_the_export(plans: tuple[StackPlan, ...]) -> None:
    without_registry = {k: v for k, v in MAPPINGS.items() if k != "azure-native:containerregistry:Registry"}
    with pytest.raises(
        ExportError,
        match=r"containerregistry:Registry \(registry\) is in the plan of dev but has no Bicep mapping",
    ):
        azure_resources(plans[0], without_registry)


def test_key_properties_follow_each_stack(plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]) -> None:
    """Spelled out for the properties that branch on config (the full comparison above covers the rest)."""
    by_stack = {p.label: evaluate(p, bicep_ast)[0] for p in plans}
    dev, prod = by_stack["dev"], by_stack["prod"]
    assert prod["registry"].body["sku"] == {"name": "Premium"}
    assert prod["registry"].body["properties"]["policies"] == {
        "retentionPolicy": {"days": 30, "status": "enabled"}
    }
    assert prod["registry"].body["properties"]["zoneRedundancy"] == "Enabled"
    assert dev["registry"].body["properties"]["policies"] is None
    for stack in (dev, prod):
        assert stack["registry"].body["properties"]["adminUserEnabled"] is False
        assert stack["registry"].body["properties"]["anonymousPullEnabled"] is False
        assert stack["cluster"].body["properties"]["aadProfile"]["enableAzureRBAC"] is True
        assert stack["cluster"].body["properties"]["disableLocalAccounts"] is True
        assert stack["cluster"].body["properties"]["oidcIssuerProfile"] == {"enabled": True}
    # prod: one autoscaled pool per zone (1-2 nodes each); dev: one fixed regional pool.
    for zone in ("1", "2", "3"):
        pool = prod[f"userPoolZone{zone}"].body["properties"]
        assert (pool["enableAutoScaling"], pool["minCount"], pool["maxCount"]) == (True, 1, 2)
        assert pool["availabilityZones"] == [zone]
        assert f"userPoolZone{zone}" not in dev
    assert "userPool" not in prod
    assert (
        dev["userPool"].body["properties"]["minCount"],
        dev["userPool"].body["properties"].get("availabilityZones"),
    ) == (None, None)
    # The Gateway API ingress at the cluster's API version, in both stacks.
    for stack in (dev, prod):
        assert stack["cluster"].api_version == "2026-05-01"
        profile = stack["cluster"].body["properties"]["ingressProfile"]
        assert profile["gatewayAPI"] == {"installation": "Standard"}
        assert profile["webAppRouting"]["gatewayAPIImplementations"] == {
            "appRoutingIstio": {"mode": "Enabled"}
        }
    # prod only: the certificate reader with its grant on the certificate's secret.
    assert prod["gatewayTlsCertificateSecretsUser"].scope == "vaultIngressTlsCertificate"
    assert (
        prod["vaultIngressTlsCertificate"].existing
        and prod["vaultIngressTlsCertificate"].body["name"] == "muse-tls"
    )
    assert "gatewayTlsIdentity" not in dev and "vaultIngressTlsCertificate" not in dev
    assert "imagePushAcrPush" not in dev and "imagePushAcrPush" in by_stack["dev+image-push-identity"]
    importing = by_stack["dev+image-import-identity"]
    assert "imageImportAcrImportSource" not in dev and "imageImportAcrImportSource" in importing
    assert (
        importing["imageImportAcrImportSource"]
        .body["properties"]["roleDefinitionId"]
        .endswith("acdd72a7-3385-48ef-bd42-f606fba81ae7")
    )  # Reader, at the registry's scope (the import source)
    # ARM's name for the SDK's `odataType`.
    criteria = dev["nodeCpuAlert"].body["properties"]["criteria"]
    assert criteria["odata.type"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    # The plan masks the secret's properties; the Bicep takes the value from the deployer, never a file.
    assert dev["museApiToken"].body["properties"] == {"contentType": "text/plain", "value": SECRET_VALUE}
    # AKS must find its control plane allowed to assign the kubelet identity: Pulumi's depends_on, in Bicep.
    assert dev["cluster"].depends_on == ["clusterControlPlaneOperatesKubelet"]


def test_outputs_equal_the_stack_outputs(plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]) -> None:
    for plan in plans:
        _, outputs = evaluate(plan, bicep_ast)
        expected = {n: o.value for n, o in plan.plan.outputs.items() if n not in NOT_OUTPUTS}
        assert outputs == expected, plan.label
        assert {n for n, o in plan.plan.outputs.items() if o.secret} <= set(NOT_OUTPUTS)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_parameter_file_sets_exactly_what_the_stack_file_sets(
    stack: str, plans: tuple[StackPlan, ...], bicep_ast: dict[str, Any]
) -> None:
    plan = next(p for p in plans if p.label == stack)
    values = parameter_file(stack)
    expected = {k: v for k, v in plan.stack_config.items() if k not in NOT_PARAMETERS}
    assert values == expected
    # Whatever the stack sets and the file leaves out is listed, with a reason, as not a Bicep parameter.
    assert set(plan.stack_config) - set(values) <= set(NOT_PARAMETERS)
    assert not set(NOT_PARAMETERS) & set(bicep_ast["parameters"])
    secure = {
        n for n, p in bicep_ast["parameters"].items() if any(d["type"] == "secure" for d in p["decorators"])
    }
    assert secure and not secure & set(values)
