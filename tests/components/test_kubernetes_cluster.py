"""KubernetesCluster component in isolation, under the offline mocks."""

from __future__ import annotations

import re

import pytest
import yaml

from components.kubernetes_cluster import (
    AKS_AAD_SERVER_APP_ID,
    CLUSTER_API_VERSION,
    CRITICAL_ADDONS_ONLY,
    READ_ONLY_CLUSTER_PATHS,
    TYPED_CLUSTER,
    ContainerLogRotation,
    KubernetesCluster,
    KubernetesClusterArgs,
    NodePoolSize,
    kubelogin_kubeconfig,
    user_pool_names,
)
from offline.engine import OfflinePlan, run_offline
from offline.mocks import SUBSCRIPTION_ID, fake_kubeconfig
from rbac.roles import Role
from stack.naming import ResourceNames

CLUSTER = "azure-native:resources:Resource"  # the cluster as a generic ARM resource at CLUSTER_API_VERSION
POOL = "azure-native:containerservice:AgentPool"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
TAGS = {"env": "prod", "owner": "team", "app": "muse", "managed-by": "pulumi"}
NAMES = ResourceNames.for_stack("prod", "t1")


ROTATION = ContainerLogRotation(max_size_mb=20, max_files=5)


def _plan(
    user_pool: NodePoolSize,
    zones: tuple[str, ...] = ("1", "2", "3"),
    workspace_id: str | None = None,
    rotation: ContainerLogRotation | None = ROTATION,
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
                user_pool_log_rotation=rotation,
                availability_zones=zones,
                authorized_ip_ranges=("203.0.113.0/24",),
                admin_group_object_ids=("0b1c2d3e-0000-4000-8000-000000000001",),
                tags=TAGS,
                log_analytics_workspace_id=workspace_id,
            ),
        )

    return run_offline(program, project="muse", stack="unit")


AUTOSCALED = NodePoolSize(vm_size="Standard_D8ds_v5", count=1, min_count=1, max_count=3, autoscale=True)
FIXED = NodePoolSize(vm_size="Standard_D2ds_v5", count=2)


@pytest.fixture(scope="module")
def plan() -> OfflinePlan:
    return _plan(AUTOSCALED)


def test_uses_user_assigned_control_plane_and_kubelet_identities(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    assert (cluster.get("resourceProviderNamespace"), cluster.get("resourceType")) == (
        "Microsoft.ContainerService",
        "managedClusters",
    )
    assert (cluster.get("apiVersion"), cluster.get("parentResourcePath")) == (CLUSTER_API_VERSION, "")
    identities = {r.get("resourceName"): r for r in plan.of_type(IDENTITY)}
    control_plane = identities[NAMES.control_plane_identity]
    kubelet = identities[NAMES.kubelet_identity]
    assert cluster.get("identity.type") == "UserAssigned"
    assert cluster.get("identity.userAssignedIdentities") == [
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-test"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{NAMES.control_plane_identity}"
    ]
    kubelet_profile = cluster.get("properties.identityProfile.kubeletidentity")
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
    assert cluster.get("properties.disableLocalAccounts") is True
    assert cluster.get("properties.enableRBAC") is True
    assert cluster.get("properties.aadProfile.managed") is True
    assert cluster.get("properties.aadProfile.enableAzureRBAC") is True
    admins = ["0b1c2d3e-0000-4000-8000-000000000001"]
    assert cluster.get("properties.aadProfile.adminGroupObjectIDs") == admins
    assert cluster.get("properties.apiServerAccessProfile.authorizedIPRanges") == ["203.0.113.0/24"]
    assert cluster.get("properties.apiServerAccessProfile.disableRunCommand") is True


def test_workload_identity_network_and_addons(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    assert cluster.get("properties.oidcIssuerProfile.enabled") is True
    assert cluster.get("properties.securityProfile.workloadIdentity.enabled") is True
    assert cluster.get("properties.networkProfile.networkPluginMode") == "overlay"
    assert cluster.get("properties.networkProfile.networkPolicy") == "cilium"
    secrets_provider = cluster.get("properties.addonProfiles.azureKeyvaultSecretsProvider")
    assert secrets_provider["enabled"] is True
    assert secrets_provider["config"]["enableSecretRotation"] == "true"
    assert cluster.get("sku.tier") == "Standard"
    assert cluster.get("properties.autoUpgradeProfile.upgradeChannel") == "stable"
    assert cluster.get("properties.nodeResourceGroup") == NAMES.node_resource_group
    assert cluster.get("properties.dnsPrefix") == NAMES.cluster_dns_prefix


def test_ingress_is_the_app_routing_gateway_api_implementation_without_nginx(plan: OfflinePlan) -> None:
    # azure-aks-docs app-routing-gateway-api.md (GatewayClass approuting-istio on the managed Gateway API
    # CRDs) and app-routing-gateway-api-dns-tls.md (the operator of webAppRouting reconciles listener TLS).
    profile = plan.one(CLUSTER).get("properties.ingressProfile")
    assert profile == {
        "gatewayAPI": {"installation": "Standard"},
        "webAppRouting": {
            "enabled": True,
            "gatewayAPIImplementations": {"appRoutingIstio": {"mode": "Enabled"}},
            "nginx": {"defaultIngressControllerType": "None"},
        },
    }


def test_the_typed_cluster_of_an_older_state_is_not_an_alias(plan: OfflinePlan) -> None:
    # An alias to the old type would make the state's typed cluster this resource with new path inputs: a
    # replacement, which azure-native performs delete-first (pulumi-azure-native provider/pkg/provider/
    # provider.go, Diff: deleteBeforeReplace := len(replaces) > 0), i.e. it would delete the live cluster.
    # Without it an un-migrated stack plans a create that azure-native refuses (CanCreate: the cluster exists)
    # and stops before any delete; stack/migrations.py moves the state on purpose.
    cluster = plan.one(CLUSTER)
    assert TYPED_CLUSTER not in cluster.alias_types
    # The SDK's own aliases (older generic-resource tokens) are there: the recording sees aliases at all.
    assert "azure-native:resources/v20240301:Resource" in cluster.alias_types


def test_container_insights_addon_only_with_a_workspace(plan: OfflinePlan) -> None:
    assert "omsagent" not in plan.one(CLUSTER).get("properties.addonProfiles")
    workspace_id = (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-test"
        "/providers/Microsoft.OperationalInsights/workspaces/log-muse-prod-t1"
    )
    addons = _plan(FIXED, workspace_id=workspace_id).one(CLUSTER).get("properties.addonProfiles")
    # The exact, case-sensitive key AKS reports back (trap 11); anything else diffs on every run.
    assert set(addons) == {"azureKeyvaultSecretsProvider", "omsagent"}
    assert addons["omsagent"] == {
        "enabled": True,
        "config": {"logAnalyticsWorkspaceResourceID": workspace_id, "useAADAuth": "true"},
    }


def test_system_pool_is_inline_tainted_and_its_drift_ignored(plan: OfflinePlan) -> None:
    cluster = plan.one(CLUSTER)
    [system] = cluster.get("properties.agentPoolProfiles")
    assert system["mode"] == "System"
    assert system["nodeTaints"] == [CRITICAL_ADDONS_ONLY]
    assert system["vmSize"] == "Standard_D4ds_v5"
    assert system["count"] == 3
    assert system["availabilityZones"] == ["1", "2", "3"]
    assert cluster.ignore_changes == (
        "properties.agentPoolProfiles",
        "properties.kubernetesVersion",
        "properties.currentKubernetesVersion",
        *READ_ONLY_CLUSTER_PATHS,  # tests/program/test_read_only_fields.py
    )


def test_with_zones_each_zone_has_its_own_autoscaled_user_pool(plan: OfflinePlan) -> None:
    # The cluster autoscaler is not zone-aware: one pool per zone lets it add a node in the zone a pending
    # pod needs (azure-aks-docs cluster-autoscaler-overview.md), and balance-similar-node-groups keeps the
    # zones' pools the same size.
    pools = {p.get("agentPoolName"): p for p in plan.of_type(POOL)}
    # Named by zone and by the shape's fingerprint (this shape is none of the legacy ones): tests/components/
    # test_pool_generations.py says why.
    [fingerprint] = {name[len("musez1") :] for name in pools}
    assert re.fullmatch(r"[0-9a-f]{6}", fingerprint)
    assert {name: p.get("availabilityZones") for name, p in pools.items()} == {
        f"musez1{fingerprint}": ["1"],
        f"musez2{fingerprint}": ["2"],
        f"musez3{fingerprint}": ["3"],
    }
    for pool in pools.values():
        assert pool.get("mode") == "User"
        assert pool.get("vmSize") == "Standard_D8ds_v5"
        sizes = (pool.get("enableAutoScaling"), pool.get("minCount"), pool.get("count"), pool.get("maxCount"))
        assert sizes == (
            True,
            1,
            1,
            3,
        )
        assert pool.get("resourceName") == NAMES.cluster
        assert pool.ignore_changes == ("orchestratorVersion", "count")
        assert pool.get("tags") == TAGS
    # "Similar" node groups for the autoscaler: the same size, labels and kubelet config in every zone.
    assert len({repr(_without_zone(p.properties)) for p in pools.values()}) == 1
    assert plan.one(CLUSTER).get("properties.autoScalerProfile") == {"balance-similar-node-groups": "true"}


def _without_zone(properties: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in properties.items() if k not in ("availabilityZones", "agentPoolName")}


def test_without_zones_one_regional_pool_managed_by_pulumi() -> None:
    [pool] = _plan(FIXED, zones=()).of_type(POOL)
    # dev's shape, whose pool predates shape names, so it keeps its name (tests/components/
    # test_pool_generations.py has the other shapes).
    assert pool.get("agentPoolName") == "museregional"
    assert pool.get("enableAutoScaling") is False
    assert pool.get("count") == 2
    assert pool.get("minCount") is None and pool.get("maxCount") is None
    assert pool.get("availabilityZones") is None
    assert pool.ignore_changes == ("orchestratorVersion",)  # the channel still owns its version


def test_pool_names_fit_aks_rules() -> None:
    # Linux pool names: 1-12 lowercase letters and digits, starting with a letter (AKS, az aks nodepool add).
    for zones in ((), ("1",), ("1", "2", "3")):
        for name in user_pool_names(zones):
            assert 1 <= len(name) <= 12 and name.isalnum() and name.islower() and name[0].isalpha(), name


def test_user_pools_rotate_container_logs_as_configured(plan: OfflinePlan) -> None:
    for pool in plan.of_type(POOL):
        assert pool.get("kubeletConfig") == {"containerLogMaxSizeMB": 20, "containerLogMaxFiles": 5}
    # Without a rotation the pools keep AKS's defaults (no kubeletConfig at all).
    for pool in _plan(FIXED, zones=(), rotation=None).of_type(POOL):
        assert pool.get("kubeletConfig") is None


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
