"""The whole program, for both stacks, under the offline engine."""

from __future__ import annotations

import importlib
import inspect
from functools import cache

import pytest

from offline.engine import OfflinePlan, run_stack
from offline.mocks import SUBSCRIPTION_ID
from rbac.roles import Role
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from stack.naming import ResourceNames

REQUIRED_TAGS = {"app": "muse", "managed-by": "pulumi"}


@cache
def sdk_accepts_tags(type_token: str) -> bool:
    """Whether the azure-native SDK's args for this resource type take `tags` (the source of truth)."""
    _, module, name = type_token.split(":")
    sdk = importlib.import_module(f"pulumi_azure_native.{module}")
    # `<Name>InitArgs` when `<Name>Args` is taken by an input type (monitor.ActionGroupArgs is a reference to
    # an action group; the resource's args are monitor.ActionGroupInitArgs).
    args_class = getattr(sdk, f"{name}InitArgs", None) or getattr(sdk, f"{name}Args")
    return "tags" in inspect.signature(args_class.__init__).parameters


def test_every_taggable_azure_resource_carries_the_required_tags(plan: OfflinePlan) -> None:
    config = load_stack_config(plan.stack, read_stack(plan.stack).config)
    azure = [r for r in plan.resources if r.type.startswith("azure-native:")]
    taggable = [r for r in azure if sdk_accepts_tags(r.type)]
    assert len(taggable) >= 6
    for resource in taggable:
        tags = dict(resource.get("tags"))
        if resource.type == "azure-native:applicationinsights:WebTest":
            # Azure ties a web test to its Application Insights component by this extra tag.
            assert [k for k in tags if k.startswith("hidden-link:")], resource.urn
            tags = {k: v for k, v in tags.items() if not k.startswith("hidden-link:")}
        assert tags == {**REQUIRED_TAGS, "env": plan.stack, "owner": config.owner}, resource.urn


def test_untaggable_resources_are_only_those_azure_cannot_tag(plan: OfflinePlan) -> None:
    untaggable = {
        r.type for r in plan.resources if r.type.startswith("azure-native:") and not sdk_accepts_tags(r.type)
    }
    assert untaggable == {
        "azure-native:authorization:RoleAssignment",
        "azure-native:containerservice:MaintenanceConfiguration",
        "azure-native:managedidentity:FederatedIdentityCredential",
        "azure-native:monitor:DataCollectionRuleAssociation",
    }


def test_kubelet_identity_gets_acr_pull_on_the_registry_only(plan: OfflinePlan) -> None:
    names = ResourceNames.for_stack(plan.stack, read_stack(plan.stack).config["muse:nameSuffix"])
    registry = plan.one("azure-native:containerregistry:Registry")
    [kubelet] = [
        r
        for r in plan.of_type("azure-native:managedidentity:UserAssignedIdentity")
        if r.get("resourceName") == names.kubelet_identity
    ]
    pulls = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("roleDefinitionId").endswith(f"/roleDefinitions/{Role.ACR_PULL.definition_id}")
    ]
    assert len(pulls) == 1
    [pull] = pulls
    registry_id = (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{names.resource_group}"
        f"/providers/Microsoft.ContainerRegistry/registries/{names.registry}"
    )
    assert pull.get("scope") == registry_id
    assert registry.get("registryName") == names.registry
    # The kubelet identity (not the control plane) pulls images: its principal id is the one in the plan.
    cluster = plan.one("azure-native:resources:Resource")
    assert pull.get("principalId") == cluster.get("properties.identityProfile.kubeletidentity.objectId")
    kubelet_id = cluster.get("properties.identityProfile.kubeletidentity.resourceId")
    assert kubelet_id.endswith(names.kubelet_identity)
    assert kubelet.parent == cluster.parent


def test_role_assignments_are_resource_scoped_with_principal_type(plan: OfflinePlan) -> None:
    for assignment in plan.of_type("azure-native:authorization:RoleAssignment"):
        scope = assignment.get("scope")
        assert "/providers/" in scope, f"{assignment.name} is scoped to a subscription or group: {scope}"
        assert assignment.get("principalType") == "ServicePrincipal"
        role_id = assignment.get("roleDefinitionId").rsplit("/", 1)[-1]
        assert role_id in {role.definition_id for role in Role}


def test_every_resource_belongs_to_a_component(plan: OfflinePlan) -> None:
    for resource in plan.resources:
        if resource.custom:
            assert resource.parent, f"{resource.urn} is not inside a component"
            assert plan.by_urn(resource.parent).type.startswith(("muse:azure:", "muse:kubernetes:"))
        else:
            assert resource.type.startswith(("muse:azure:", "muse:kubernetes:"))


def test_stack_outputs(plan: OfflinePlan) -> None:
    names = ResourceNames.for_stack(plan.stack, read_stack(plan.stack).config["muse:nameSuffix"])
    outputs = plan.outputs
    assert set(outputs) == {
        "resourceGroupName",
        "registryName",
        "registryId",
        "registryLoginServer",
        "clusterName",
        "oidcIssuerUrl",
        "kubeconfig",
        "logAnalyticsWorkspaceName",
        "logAnalyticsWorkspaceId",
        "keyVaultName",
        "keyVaultUri",
        "tenantId",
        "museWorkloadClientId",
        "museNamespace",
        "museDeployment",
        "museImage",
        "museUrl",
        "museGatewayAddress",
        "userPoolNames",
        "museCanary",
        "museRouteUrn",
        "museEvaluateChecks",
        "museCanaryLoad",
        "prometheusQueryEndpoint",
        *(("gatewayTlsClientId",) if plan.stack == "prod" else ()),
    }
    assert outputs["registryLoginServer"].value == f"{names.registry}.azurecr.io"
    assert outputs["registryId"].value.endswith(
        f"/resourceGroups/{names.resource_group}/providers/Microsoft.ContainerRegistry/registries/{names.registry}"
    )
    assert outputs["clusterName"].value == names.cluster
    assert outputs["resourceGroupName"].value == names.resource_group
    assert outputs["oidcIssuerUrl"].value.startswith("https://")
    assert outputs["kubeconfig"].secret and not outputs["clusterName"].secret
    assert "kubelogin" in outputs["kubeconfig"].value
    # What scripts/ci/deploy.py --canary reads: the plan from the stack config, the route, the checks.
    config = load_stack_config(plan.stack, read_stack(plan.stack).config)
    assert outputs["museCanary"].value == {
        "steps": list(config.canary_steps),
        "stepSeconds": config.canary_step_seconds,
    }
    assert outputs["museRouteUrn"].value.endswith("::muse-httproute")
    assert plan.by_urn(outputs["museRouteUrn"].value).type.endswith(":HTTPRoute")
    checks = outputs["museEvaluateChecks"].value
    assert set(checks) == {"muse"}  # no candidate configured: only the stable track's check
    assert outputs["museCanaryLoad"].value == {}  # no candidate, nothing to load
    image = checks["muse"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == outputs["museImage"].value  # the registry placeholder filled in


def test_stacks_follow_their_config(plans: dict[str, OfflinePlan]) -> None:
    # dev: one fixed regional pool (cheap); prod: one autoscaled pool per zone, 1-2 nodes each (3-6 in all).
    [dev_pool] = plans["dev"].of_type("azure-native:containerservice:AgentPool")
    prod_pools = plans["prod"].of_type("azure-native:containerservice:AgentPool")
    assert (dev_pool.get("enableAutoScaling"), dev_pool.get("count")) == (False, 1)
    assert dev_pool.get("availabilityZones") is None
    assert sorted(tuple(p.get("availabilityZones")) for p in prod_pools) == [("1",), ("2",), ("3",)]
    for prod_pool in prod_pools:
        assert (
            prod_pool.get("enableAutoScaling"),
            prod_pool.get("minCount"),
            prod_pool.get("maxCount"),
        ) == (True, 1, 2)
    assert sum(p.get("minCount") for p in prod_pools) == 3 and sum(p.get("maxCount") for p in prod_pools) == 6
    assert plans["prod"].one("azure-native:resources:Resource").get("sku.tier") == "Standard"
    assert plans["dev"].one("azure-native:resources:Resource").get("sku.tier") == "Free"
    assert plans["prod"].one("azure-native:containerregistry:Registry").get("sku.name") == "Premium"


@pytest.mark.slow  # the program run again
def test_plans_are_deterministic(plans: dict[str, OfflinePlan]) -> None:
    again = run_stack("prod")
    assert again.to_inventory("prod") == plans["prod"].to_inventory("prod")


@pytest.mark.slow  # a program run per stack
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_config_change_reaches_the_resource(stack: str) -> None:
    plan = run_stack(
        stack, overrides={"muse:userNodeVmSize": "Standard_E8ds_v5", "muse:location": "swedencentral"}
    )
    pools = plan.of_type("azure-native:containerservice:AgentPool")
    assert pools and {p.get("vmSize") for p in pools} == {"Standard_E8ds_v5"}
    # Action groups and metric alerts are global Azure resources; everything else follows the config.
    locations = {r.get("location") for r in plan.resources if r.get("location")}
    assert locations - {"global"} == {"swedencentral"}
