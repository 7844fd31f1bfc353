"""KubernetesCluster component in isolation, under the offline mocks."""

from __future__ import annotations

import pytest
import yaml

from components.kubernetes_cluster import (
    AKS_AAD_SERVER_APP_ID,
    CRITICAL_ADDONS_ONLY,
    KubernetesCluster,
    KubernetesClusterArgs,
    NodePoolSize,
    kubelogin_kubeconfig,
)
from offline.engine import OfflinePlan, run_offline
from offline.mocks import SUBSCRIPTION_ID, fake_kubeconfig
from rbac.roles import Role
from stack.naming import ResourceNames

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
TAGS = {"env": "prod", "owner": "team", "app": "muse", "managed-by": "pulumi"}
NAMES = ResourceNames.for_stack("prod", "t1")


def _plan(
    user_pool: NodePoolSize, zones: tuple[str, ...] = ("1", "2", "3"), workspace_id: str | None = None
) -> OfflinePlan:
    def program() -> None:
        KubernetesCluster(
            "cluster",
            KubernetesClusterArgs(
                resource_group_name="rg-test",
                location="westeurope",
                cluster_name=NAMES.cluster,
                dns_prefix=NAMES.cluster_dns_prefix,
                node_resource_group=NAMES.node_resource_group,
                control_plane_identity_name=NAMES.control_plane_identity,
                kubelet_identity_name=NAMES.kubelet_identity,
                kubernetes_version="1.34",
                tier="Standard",
                upgrade_channel="stable",
                system_pool=NodePoolSize(vm_size="Standard_D4ds_v5", count=3),
                user_pool=user_pool,
                availability_zones=zones,
                authorized_ip_ranges=("203.0.113.0/24",),
                admin_group_object_ids=("0b1c2d3e-0000-4000-8000-000000000001",),
                tags=TAGS,
                log_analytics_workspace_id=workspace_id,
            ),
        )

    return run_offline(program, project="muse", stack="unit")


AUTOSCALED = NodePoolSize(vm_size="Standard_D8ds_v5", count=3, min_count=3, max_count=9, autoscale=True)
FIXED = NodePoolSize(vm_size="Standard_D2ds_v5", count=2)


@pytest.fixture(scope="module")
def plan() -> OfflinePlan:
    return _plan(AUTOSCALED)


def test_uses_user_assigned_control_plane_and_kubelet_identities(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    identities = {r.get("resourceName"): r for r in plan.of_type(IDENTITY)}
    control_plane = identities[NAMES.control_plane_identity]
    kubelet = identities[NAMES.kubelet_identity]
    assert cluster.get("identity.type") == "UserAssigned"
    assert cluster.get("identity.userAssignedIdentities") == [
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-test"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{NAMES.control_plane_identity}"
    ]
    kubelet_profile = cluster.get("identityProfile.kubeletidentity")
    assert kubelet_profile["resourceId"].endswith(f"/userAssignedIdentities/{NAMES.kubelet_identity}")
    assert control_plane.get("tags") == kubelet.get("tags") == TAGS


def test_control_plane_may_assign_the_kubelet_identity_and_cluster_waits_for_it(plan: OfflinePlan) -> None:
    [operator] = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("roleDefinitionId").endswith(Role.MANAGED_IDENTITY_OPERATOR.definition_id)
    ]
    assert operator.get("scope").endswith(f"/userAssignedIdentities/{NAMES.kubelet_identity}")
    assert operator.get("principalType") == "ServicePrincipal"
    assert operator.urn in plan.one(CLUSTER).depends_on


def test_entra_id_only_access(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    assert cluster.get("disableLocalAccounts") is True
    assert cluster.get("enableRBAC") is True
    assert cluster.get("aadProfile.managed") is True
    assert cluster.get("aadProfile.enableAzureRBAC") is True
    assert cluster.get("aadProfile.adminGroupObjectIDs") == ["0b1c2d3e-0000-4000-8000-000000000001"]
    assert cluster.get("apiServerAccessProfile.authorizedIPRanges") == ["203.0.113.0/24"]
    assert cluster.get("apiServerAccessProfile.disableRunCommand") is True


def test_workload_identity_network_and_addons(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    assert cluster.get("oidcIssuerProfile.enabled") is True
    assert cluster.get("securityProfile.workloadIdentity.enabled") is True
    assert cluster.get("networkProfile.networkPluginMode") == "overlay"
    assert cluster.get("networkProfile.networkPolicy") == "cilium"
    secrets_provider = cluster.get("addonProfiles.azureKeyvaultSecretsProvider")
    assert secrets_provider["enabled"] is True
    assert secrets_provider["config"]["enableSecretRotation"] == "true"
    assert cluster.get("ingressProfile.webAppRouting.enabled") is True
    assert cluster.get("sku.tier") == "Standard"
    assert cluster.get("autoUpgradeProfile.upgradeChannel") == "stable"
    assert cluster.get("nodeResourceGroup") == NAMES.node_resource_group
    assert cluster.get("dnsPrefix") == NAMES.cluster_dns_prefix


def test_container_insights_addon_only_with_a_workspace(plan: OfflinePlan) -> None:
    assert "omsagent" not in plan.one(CLUSTER).get("addonProfiles")
    workspace_id = (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-test"
        "/providers/Microsoft.OperationalInsights/workspaces/log-muse-prod-t1"
    )
    addons = _plan(FIXED, workspace_id=workspace_id).one(CLUSTER).get("addonProfiles")
    # The exact, case-sensitive key AKS reports back (trap 11); anything else diffs on every run.
    assert set(addons) == {"azureKeyvaultSecretsProvider", "omsagent"}
    assert addons["omsagent"] == {
        "enabled": True,
        "config": {"logAnalyticsWorkspaceResourceID": workspace_id, "useAADAuth": "true"},
    }


def test_system_pool_is_inline_tainted_and_its_drift_ignored(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    [system] = cluster.get("agentPoolProfiles")
    assert system["mode"] == "System"
    assert system["nodeTaints"] == [CRITICAL_ADDONS_ONLY]
    assert system["vmSize"] == "Standard_D4ds_v5"
    assert system["count"] == 3
    assert system["availabilityZones"] == ["1", "2", "3"]
    assert cluster.ignore_changes == ("agentPoolProfiles", "kubernetesVersion")


def test_autoscaled_user_pool_lets_the_autoscaler_own_the_count(plan: OfflinePlan) -> None:
    pool = plan.one(POOL)
    assert pool.get("mode") == "User"
    assert pool.get("vmSize") == "Standard_D8ds_v5"
    assert (pool.get("enableAutoScaling"), pool.get("minCount"), pool.get("count"), pool.get("maxCount")) == (
        True,
        3,
        3,
        9,
    )
    assert pool.get("resourceName") == NAMES.cluster
    assert pool.ignore_changes == ("orchestratorVersion", "count")
    assert pool.get("tags") == TAGS


def test_fixed_user_pool_is_managed_by_pulumi() -> None:
    pool = _plan(FIXED, zones=()).one(POOL)
    assert pool.get("enableAutoScaling") is False
    assert pool.get("count") == 2
    assert pool.get("minCount") is None and pool.get("maxCount") is None
    assert pool.get("availabilityZones") is None
    assert pool.ignore_changes == ("orchestratorVersion",)  # the channel still owns its version


def test_kubernetes_provider_uses_kubelogin_with_no_token(plan: OfflinePlan) -> None:
    provider = plan.one("pulumi:providers:kubernetes")
    assert provider.secret_paths == ("kubeconfig",)
    assert provider.parent == plan.one("muse:azure:KubernetesCluster").urn


def test_provider_kubeconfig_is_stable_and_non_interactive() -> None:
    source = fake_kubeconfig("aks-muse-prod-t1", "muse-prod-t1-abc.hcp.westeurope.azmk8s.io")
    converted = yaml.safe_load(kubelogin_kubeconfig(source))
    exec_config = converted["users"][0]["user"]["exec"]
    assert exec_config["command"] == "kubelogin"
    assert exec_config["args"] == ["get-token", "--login", "azurecli", "--server-id", AKS_AAD_SERVER_APP_ID]
    assert exec_config["interactiveMode"] == "Never"
    assert (
        converted["clusters"][0]["cluster"]["server"]
        == "https://muse-prod-t1-abc.hcp.westeurope.azmk8s.io:443"
    )
    assert set(converted["users"][0]["user"]) == {"exec"}  # no token, client key or certificate


def test_rotated_user_credentials_give_the_same_provider_kubeconfig() -> None:
    # A changed provider kubeconfig would replace the provider and every Kubernetes object it manages.
    source = fake_kubeconfig("aks-muse-prod-t1", "muse-prod-t1-abc.hcp.westeurope.azmk8s.io")
    rotated = yaml.safe_load(source)
    rotated["users"][0] = {"name": "clusterUser_rotated", "user": {"token": "eyJhbGciOi-rotated"}}
    rotated["contexts"][0]["context"]["user"] = "clusterUser_rotated"
    assert kubelogin_kubeconfig(yaml.safe_dump(rotated)) == kubelogin_kubeconfig(source)
    moved = yaml.safe_load(source)
    moved["clusters"][0]["cluster"]["server"] = "https://elsewhere.hcp.westeurope.azmk8s.io:443"
    assert kubelogin_kubeconfig(yaml.safe_dump(moved)) != kubelogin_kubeconfig(source)


def test_every_child_is_parented_to_the_component(plan: OfflinePlan) -> None:
    component = plan.one("muse:azure:KubernetesCluster")
    children = [r for r in plan.resources if r.custom]
    assert children and all(r.parent == component.urn for r in children)
