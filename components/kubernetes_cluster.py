"""AKS cluster for Muse with the AKS baseline's secure defaults: Entra ID only (no local accounts), workload
identity, CNI overlay + Cilium, a tainted inline system pool and separate user pools (one per zone with
zones), Gateway API ingress, optional planned-maintenance windows.

The cluster is a generic `azure-native:resources:Resource` at CLUSTER_API_VERSION, not the typed
`ManagedCluster` (the pinned SDK lacks the Gateway API fields), so verify/arm_types.py checks its body and
every `pulumi up` runs with `--refresh`. Kubernetes versions belong to the auto-upgrade channel (AKS cannot
downgrade). Why: docs/architecture/azure.md#the-aks-cluster-component; the API version's trade-offs:
docs/architecture/azure.md#the-clusters-api-version."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import containerservice, managedidentity, resources

from muse import resource_types
from rbac.roles import PrincipalType, Role, assign_role

# The Entra ID application that represents every AKS API server (the same in every tenant).
AKS_AAD_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
SYSTEM_POOL = "system"
# User pools: one regional pool when the cluster has no zones, else one per zone (user_pool_names).
USER_POOL_PREFIX = "muse"
REGIONAL_USER_POOL = "museregional"  # AKS: Linux pool names are 1-12 lowercase letters and digits
CRITICAL_ADDONS_ONLY = "CriticalAddonsOnly=true:NoSchedule"
OS_SKU = "AzureLinux"
# Channels that move the cluster's Kubernetes version (learn.microsoft.com/azure/aks/auto-upgrade-cluster):
# patch (latest patch of the current minor), stable (latest patch of minor N-1), rapid (of minor N). `none`
# and the legacy `node-image` leave the version where it is, which this model (the channel owns the version)
# cannot use: the program does not move a version after creation.
UpgradeChannel = Literal["patch", "stable", "rapid"]
UPGRADE_CHANNELS: tuple[str, ...] = ("patch", "stable", "rapid")
# Inputs the upgrade channel changes after creation, so Pulumi must not send the program's values again: the
# cluster's version, and each pool's (auto-upgrade "always upgrades the control plane and the node pools
# together"). The inline system pool is covered by the whole `agentPoolProfiles` being ignored. The cluster is
# a generic resource whose ARM body sits under `properties`, so its paths start there (pulumi/pulumi
# properties_path.go: `properties.kubernetesVersion` is the nested key; a bare `kubernetesVersion` would name
# a top-level input the generic resource does not have and ignore nothing). `currentKubernetesVersion` is
# read-only, but the generic resource's `properties` is untyped, so azure-native's refresh copies its change
# into the inputs in state (provider.go Read, diff.go applyDiff); ignoring it keeps the program from
# removing it again on every `pulumi up --refresh` and drift check (tests/program/test_upgrade_model.py).
CHANNEL_OWNED_CLUSTER_INPUTS = ("properties.kubernetesVersion", "properties.currentKubernetesVersion")
CHANNEL_OWNED_POOL_INPUTS = ("orchestratorVersion",)
# The values AKS writes into the cluster's ARM body and the refresh copies into state (the generic resource's
# untyped `properties`, as for currentKubernetesVersion above): without them ignored, the next `pulumi up`
# would plan an update that removes them; with `provisioningState: Upgrading` stored by a refresh during an
# AKS operation, that update is a PUT AKS refuses while the operation runs (OperationNotAllowed, "another
# operation is in progress"). Derived from the API's type data, not by hand: the read-only (`flags: 2`)
# properties of ManagedClusterProperties@CLUSTER_API_VERSION and of the objects the program sends, and the
# objects it does not send that hold such values (verify.arm_types.read_only_paths;
# tests/program/test_read_only_fields.py keeps this list equal to it).
READ_ONLY_CLUSTER_PATHS = (
    "properties.addonProfiles[*].identity",
    "properties.azurePortalFQDN",
    "properties.fqdn",
    "properties.ingressProfile.webAppRouting.identity",
    "properties.maxAgentPools",
    "properties.networkProfile.loadBalancerProfile",
    "properties.networkProfile.natGatewayProfile",
    "properties.oidcIssuerProfile.issuerURL",
    "properties.powerState",
    "properties.privateFQDN",
    "properties.provisioningState",
    "properties.resourceUID",
    "properties.status",
)
# The two planned-maintenance configurations AKS reads, by their fixed names
# (learn.microsoft.com/azure/aks/planned-maintenance, "Schedule configuration types").
AUTO_UPGRADE_SCHEDULE = "aksManagedAutoUpgradeSchedule"
NODE_OS_UPGRADE_SCHEDULE = "aksManagedNodeOSUpgradeSchedule"

# The managed cluster as a generic ARM resource (module docstring: why not the typed SDK resource).
CLUSTER_PROVIDER_NAMESPACE = resource_types.CLUSTER_PROVIDER_NAMESPACE
CLUSTER_RESOURCE_TYPE = resource_types.CLUSTER_RESOURCE_TYPE
CLUSTER_API_VERSION = "2026-05-01"
# The type the cluster had before. Deliberately no alias to it: an alias makes the type change a replacement
# (the generic resource's path inputs are new to the old state), and azure-native replaces delete-first
# (provider.go Diff: `deleteBeforeReplace := len(replaces) > 0`), so it would delete the live cluster. Without
# the alias an un-migrated stack plans a create, which azure-native refuses for an existing resource
# (CanCreate), and stops before any delete; stack/migrations.py moves its state (docs/architecture/azure.md,
# "The cluster's API version"). Both tokens live in the service's leaf module, which its rules also read.
TYPED_CLUSTER = resource_types.TYPED_CLUSTER
GENERIC_RESOURCE = resource_types.GENERIC_RESOURCE

# The application routing add-on's Gateway API implementation (an Istio control plane without sidecars that
# serves GatewayClass `approuting-istio`) on AKS's managed Gateway API CRDs (standard channel), and the
# add-on's own NGINX controller off: `webAppRouting.enabled` runs the application routing operator, which
# reconciles a Gateway listener's Key Vault TLS options (azure-aks-docs app-routing-gateway-api-dns-tls.md);
# `defaultIngressControllerType: None` keeps it from creating the default NginxIngressController.
INGRESS_PROFILE: Mapping[str, Any] = {
    "gatewayAPI": {"installation": "Standard"},
    "webAppRouting": {
        "enabled": True,
        "gatewayAPIImplementations": {"appRoutingIstio": {"mode": "Enabled"}},
        "nginx": {"defaultIngressControllerType": "None"},
    },
}
# With one user pool per zone the autoscaler keeps the zones' pools the same size (AKS cluster autoscaler
# profile, azure-aks-docs cluster-autoscaler.md: `balance-similar-node-groups`, default false). Harmless with
# a single pool, so every cluster gets it. Values of this profile are strings in ARM.
AUTOSCALER_PROFILE: Mapping[str, str] = {"balance-similar-node-groups": "true"}


@dataclass(frozen=True, kw_only=True)
class NodePoolSize:
    """How many nodes of which size a pool has.

    vm_size: Azure VM size, e.g. Standard_D4ds_v5. Required: the right size is the workload's call.
    count: node count; with `autoscale` the initial count, which the autoscaler then owns. Required.
    min_count / max_count: autoscaler bounds, used only when `autoscale`. Default 0 (unused).
    autoscale: let the cluster autoscaler own the node count. Default False: the count is what you set.
    """

    vm_size: str
    count: int
    min_count: int = 0
    max_count: int = 0
    autoscale: bool = False


@dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    """A weekly planned-maintenance window: when AKS may start an automatic upgrade
    (`Microsoft.ContainerService/managedClusters/maintenanceConfigurations`, `maintenanceWindow` with a
    `weekly` schedule; learn.microsoft.com/azure/aks/planned-maintenance).

    day_of_week: Monday ... Sunday, at `utc_offset`. Required.
    start_time: HH:MM (00:00-23:59) the window opens, at `utc_offset`. Required.
    duration_hours: how long it stays open, 4-24 (the API's range; AKS asks for at least four hours when
        auto-upgrade uses the window). Upgrades AKS started inside the window may finish after it. Required.
    utc_offset: +HH:MM or -HH:MM that day and time are in; a fixed offset, no daylight saving. Default
        "+00:00", AKS's own default.
    interval_weeks: weeks between windows (1-4). Default 1: AKS ships a node image every week, and a longer
        interval only delays patches.
    """

    day_of_week: str
    start_time: str
    duration_hours: int
    utc_offset: str = "+00:00"
    interval_weeks: int = 1


@dataclass(frozen=True, kw_only=True)
class ContainerLogRotation:
    """The kubelet's container log rotation on a pool (`kubeletConfig.containerLogMaxSizeMB` and
    `containerLogMaxFiles`, azure-aks-docs custom-node-configuration-reference.md).

    max_size_mb: size of a log file before the kubelet rotates it (MiB). Required.
    max_files: log files kept per container, the current one included (at least 2). Required.
    """

    max_size_mb: int
    max_files: int


# Extra nodes a pool adds while it upgrades: a percentage of the pool's node count, rounded up (AKS,
# "Customize node surge upgrade": https://learn.microsoft.com/azure/aks/upgrade-aks-cluster). stack/quota.py
# counts them in the vCPU quota the bootstrap asks for.
MAX_SURGE = "33%"
# Settings of a pool that AKS cannot change on an existing pool, by their ARM names: azure-native marks
# `vmSize` (with `gpuInstanceProfile` and `nodePublicIPTags`) force-new for AgentPool
# (pulumi/pulumi-azure-native provider/pkg/gen/replacement.go `forceNewMap`, commit
# 1b7112af33c62b247daed1028686bf279f4d5e69), and AKS documents the others as set at creation only
# (MicrosoftDocs/azure-aks-docs articles/aks/manage-node-pools.md "Limitations": the VM size; use-multiple-
# node-pools / availability-zones: a pool's zones; custom-node-configuration.md: kubelet config; the OS SKU,
# OS type and pool type). The program sets exactly these (`pool_shape`); max pods and the OS disk are AKS's
# defaults, the same for every generation.
FORCE_NEW_POOL_SETTINGS = ("vmSize", "availabilityZones", "osType", "osSKU", "type", "kubeletConfig")
# How many hex digits of the shape's SHA-256 a pool name carries: 16^6 shapes, and the name fits AKS's limit.
POOL_FINGERPRINT_LENGTH = 6
MAX_POOL_NAME_LENGTH = (
    12  # AKS: Linux pool names are 1-12 lowercase letters and digits, starting with a letter
)
# The user pools created before pool names carried their shape, by name, with the shape (fingerprint) they
# were created with: dev's regional Standard_D2ds_v5 pool and prod's Standard_D4ds_v5 zone pools, both with
# the workload's log rotation (Pulumi.dev.yaml, Pulumi.prod.yaml and manifests.CONTAINER_LOG_* when names
# changed). A pool of exactly that name's shape keeps its name, so the upgrade to shape-named pools replaces
# none of today's pools; any other shape gets a new name, hence a new pool beside the old one
# (tests/components/test_pool_generations.py).
LEGACY_POOL_SHAPES: Mapping[str, str] = {
    "museregional": "7d01c7",
    "musez1": "a8964f",
    "musez2": "a8964f",
    "musez3": "a8964f",
}


def pool_shape(
    pool: NodePoolSize, zones: Sequence[str], log_rotation: ContainerLogRotation | None
) -> dict[str, Any]:
    """The settings of one user pool that AKS cannot change in place, as ARM names them (what the pool's
    name is derived from)."""
    return {
        "vmSize": pool.vm_size,
        "availabilityZones": list(zones),
        "osType": "Linux",
        "osSKU": OS_SKU,
        "type": "VirtualMachineScaleSets",
        "kubeletConfig": (
            {
                "containerLogMaxSizeMB": log_rotation.max_size_mb,
                "containerLogMaxFiles": log_rotation.max_files,
            }
            if log_rotation
            else None
        ),
    }


def shape_fingerprint(shape: Mapping[str, Any]) -> str:
    """A short, stable digest of a pool's force-new settings, zones left out (the zone is in the name)."""
    settings = {key: shape[key] for key in FORCE_NEW_POOL_SETTINGS if key != "availabilityZones"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return digest[:POOL_FINGERPRINT_LENGTH]


def user_pool_names(
    availability_zones: Sequence[str], fingerprint: str | None = None
) -> dict[str, tuple[str, ...]]:
    """AKS name of each user pool -> its zones: one pool per zone (`musez1<fingerprint>`, ...), or one
    regional pool (`muser<fingerprint>`), each at most MAX_POOL_NAME_LENGTH characters. A pool whose legacy
    name (`musez1`, `museregional`) was created with this very shape (LEGACY_POOL_SHAPES) keeps that name;
    no fingerprint gives the legacy names (the Bicep export's fixed names)."""
    layout: dict[str, tuple[str, ...]] = (
        {f"{USER_POOL_PREFIX}z{zone}": (zone,) for zone in availability_zones}
        if availability_zones
        else {REGIONAL_USER_POOL: ()}
    )
    if fingerprint is None:
        return layout
    names: dict[str, tuple[str, ...]] = {}
    for legacy, zones in layout.items():
        if LEGACY_POOL_SHAPES.get(legacy) == fingerprint:
            names[legacy] = zones
        else:
            tag = f"z{zones[0]}" if zones else "r"
            names[f"{USER_POOL_PREFIX}{tag}{fingerprint}"] = zones
    return names


@dataclass(frozen=True, kw_only=True)
class KubernetesClusterArgs:
    """Inputs of `KubernetesCluster`, field by field (what it is; default, and why that default).

    resource_group_name: group for the cluster and its two identities. Required.
    location: Azure region. Required.
    cluster_name: Azure name of the managed cluster (1-63 letters, digits, - _). Required.
    dns_prefix: prefix of the API server's FQDN (1-54 letters, digits, -). Required.
    node_resource_group: name of the group AKS creates for the nodes, load balancer and disks; named so it
        is recognisable instead of AKS's generated `MC_...`. Required.
    control_plane_identity_name: Azure name of the user-assigned identity the control plane runs as.
        Required.
    kubelet_identity_name: Azure name of the user-assigned identity the nodes pull images with. Required.
    kubernetes_version: Kubernetes minor (e.g. 1.36) the cluster is created with; AKS must still support
        it on that day. After creation the upgrade channel owns the version and changes here are ignored.
        Required: which minor AKS still creates is a date-dependent fact the caller checks.
    system_pool: size of the inline system pool (tainted CriticalAddonsOnly). Required.
    user_pool: size of each user pool the workloads run on: the regional pool, or each zone's pool when
        `availability_zones` is set (prod: min 1 per zone = 3 nodes). Required.
    user_pool_labels: Kubernetes labels on the user pools' nodes, which workloads select with a
        nodeSelector. Default: none.
    user_pool_log_rotation: the kubelet's container log rotation on the user pools, which a pod's
        ephemeral-storage limit must cover (container logs count towards it). Default None = AKS's
        defaults, which azure-aks-docs custom-node-configuration.md warns "often change with new operating
        system versions"; set it so a limit derived from it stays true. AKS sets a pool's kubelet config
        when the pool is created (changing it is not an in-place update).
    tier: pricing tier Free | Standard | Premium. Default Standard: the tier with the uptime SLA, which AKS
        recommends for production; Free has none (learn.microsoft.com/azure/aks/free-standard-pricing-tiers).
    upgrade_channel: AKS auto-upgrade channel, patch | stable | rapid; it owns the cluster's version.
        Default stable (latest patch of minor N-1): it keeps the cluster inside AKS's N-2 support window
        without anyone acting, one minor behind the newest
        (learn.microsoft.com/azure/aks/auto-upgrade-cluster).
    availability_zones: zones for both pools. Default () = regional (zones are not available in every
        region and cost a node per zone).
    authorized_ip_ranges: CIDRs that may reach the API server. Default () = any address; every request
        still needs an Entra ID token (local accounts are off), so set it to narrow exposure further.
    admin_group_object_ids: Entra ID groups that get cluster-admin. Default () = nobody holds
        cluster-admin; access is granted through Azure RBAC roles on the cluster (least privilege).
    tags: tags for every Azure resource of the cluster. Default: none.
    log_analytics_workspace_id: Log Analytics workspace for Container Insights; when set, the `omsagent`
        add-on runs with Entra ID auth (`useAADAuth`) and ships to it (what it collects is the data
        collection rule `Observability.watch_cluster` associates). Default None = no Container Insights.
    auto_upgrade_window: when the upgrade channel may upgrade the control plane and the pools
        (`aksManagedAutoUpgradeSchedule`). Default None = whenever AKS chooses.
    node_os_upgrade_window: when the node OS channel (NodeImage) may roll new node images onto the pools
        (`aksManagedNodeOSUpgradeSchedule`). Default None = whenever AKS chooses.
    prometheus_metrics: the Azure Monitor metrics add-on (`azureMonitorProfile.metrics`: ama-metrics and
        kube-state-metrics pods) scrapes the cluster for managed Prometheus; where it sends them is the data
        collection rule `Observability.watch_cluster` associates. Default False = no managed Prometheus.
    """

    resource_group_name: pulumi.Input[str]
    location: str
    cluster_name: str
    dns_prefix: str
    node_resource_group: str
    control_plane_identity_name: str
    kubelet_identity_name: str
    kubernetes_version: str
    system_pool: NodePoolSize
    user_pool: NodePoolSize
    user_pool_labels: Mapping[str, str] = field(default_factory=dict)
    user_pool_log_rotation: ContainerLogRotation | None = None
    tier: str = "Standard"
    upgrade_channel: UpgradeChannel = "stable"
    availability_zones: Sequence[str] = ()
    authorized_ip_ranges: Sequence[str] = ()
    admin_group_object_ids: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    log_analytics_workspace_id: pulumi.Input[str] | None = None
    auto_upgrade_window: MaintenanceWindow | None = None
    node_os_upgrade_window: MaintenanceWindow | None = None
    prometheus_metrics: bool = False


def kubelogin_kubeconfig(user_kubeconfig: str) -> str:
    """The kubeconfig the Pulumi Kubernetes provider uses: the cluster's server and CA, and a user that gets
    its token from `kubelogin` with the Azure CLI session (`azure/login` in CI, `az login` on a laptop).

    It holds no token and is built from stable fields only, so rotating credentials does not change it;
    a changed kubeconfig would replace the provider and every Kubernetes object it manages
    (pulumi-kubernetes #1148).
    """
    source = yaml.safe_load(user_kubeconfig)
    cluster = source["clusters"][0]
    context_name = cluster["name"]
    user_name = f"{context_name}-kubelogin"
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context_name,
                "cluster": {
                    "server": cluster["cluster"]["server"],
                    "certificate-authority-data": cluster["cluster"]["certificate-authority-data"],
                },
            }
        ],
        "users": [
            {
                "name": user_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                        "args": ["get-token", "--login", "azurecli", "--server-id", AKS_AAD_SERVER_APP_ID],
                        "interactiveMode": "Never",
                        "provideClusterInfo": False,
                    }
                },
            }
        ],
        "contexts": [{"name": context_name, "context": {"cluster": context_name, "user": user_name}}],
        "current-context": context_name,
    }
    return yaml.safe_dump(config, sort_keys=True)


def _decode_kubeconfig(result: containerservice.ListManagedClusterUserCredentialsResult) -> str:
    return base64.b64decode(result.kubeconfigs[0].value).decode("utf-8")


class KubernetesCluster(pulumi.ComponentResource):
    """`muse:azure:KubernetesCluster`.

    Exposes `name`, `id`, `oidc_issuer_url` (for federated credentials), `kubelet_principal_id` (for AcrPull),
    `kubeconfig` (secret; what `az aks get-credentials` gives), `provider` (the Kubernetes provider that
    later components deploy through) and `user_pools` (AKS pool name -> `AgentPool`).
    """

    TYPE = "muse:azure:KubernetesCluster"  # the type token of its URN

    def __init__(
        self, name: str, args: KubernetesClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        if args.upgrade_channel not in UPGRADE_CHANNELS:
            raise ValueError(
                f"upgrade_channel {args.upgrade_channel!r}: one of {', '.join(UPGRADE_CHANNELS)} "
                "(the channel owns the version; see CHANNEL_OWNED_CLUSTER_INPUTS)"
            )
        child = pulumi.ResourceOptions(parent=self)
        zones = list(args.availability_zones) or None
        addons: dict[str, Any] = {
            # Keys are case-sensitive for Pulumi's diff (trap 11 in docs/architecture/azure.md).
            "azureKeyvaultSecretsProvider": {
                "enabled": True,
                "config": {"enableSecretRotation": "true", "rotationPollInterval": "2m"},
            },
        }
        if args.log_analytics_workspace_id is not None:
            addons["omsagent"] = {
                "enabled": True,
                "config": {
                    "logAnalyticsWorkspaceResourceID": args.log_analytics_workspace_id,
                    "useAADAuth": "true",
                },
            }

        self.control_plane_identity = managedidentity.UserAssignedIdentity(
            f"{name}-control-plane",
            resource_name_=args.control_plane_identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=child,
        )
        self.kubelet_identity = managedidentity.UserAssignedIdentity(
            f"{name}-kubelet",
            resource_name_=args.kubelet_identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=child,
        )
        # AKS requires the control plane to be able to assign the custom kubelet identity to the nodes.
        kubelet_operator = assign_role(
            f"{name}-control-plane-operates-kubelet",
            role=Role.MANAGED_IDENTITY_OPERATOR,
            scope=self.kubelet_identity.id,
            principal_id=self.control_plane_identity.principal_id,
            principal_type=PrincipalType.SERVICE_PRINCIPAL,
            parent=self,
        )

        system_pool: dict[str, Any] = {
            "name": SYSTEM_POOL,
            "mode": "System",
            "vmSize": args.system_pool.vm_size,
            "count": args.system_pool.count,
            "osType": "Linux",
            "osSKU": OS_SKU,
            "type": "VirtualMachineScaleSets",
            "nodeTaints": [CRITICAL_ADDONS_ONLY],
            "upgradeSettings": {"maxSurge": MAX_SURGE},
        }
        if zones:
            system_pool["availabilityZones"] = zones
        # The ARM body of Microsoft.ContainerService/managedClusters@CLUSTER_API_VERSION (names and shapes
        # as in its REST API; verify/arm_types.py checks them against that version's type data).
        properties: dict[str, Any] = {
            "dnsPrefix": args.dns_prefix,
            "nodeResourceGroup": args.node_resource_group,
            "kubernetesVersion": args.kubernetes_version,
            "identityProfile": {
                "kubeletidentity": {
                    "resourceId": self.kubelet_identity.id,
                    "clientId": self.kubelet_identity.client_id,
                    "objectId": self.kubelet_identity.principal_id,
                }
            },
            "enableRBAC": True,
            "disableLocalAccounts": True,
            "aadProfile": {
                "managed": True,
                "enableAzureRBAC": True,
                "adminGroupObjectIDs": list(args.admin_group_object_ids),
            },
            "apiServerAccessProfile": {
                "authorizedIPRanges": list(args.authorized_ip_ranges),
                "disableRunCommand": True,
            },
            "oidcIssuerProfile": {"enabled": True},
            "securityProfile": {
                "workloadIdentity": {"enabled": True},
                "imageCleaner": {"enabled": True, "intervalHours": 168},
            },
            "autoUpgradeProfile": {
                "upgradeChannel": args.upgrade_channel,
                "nodeOSUpgradeChannel": "NodeImage",
            },
            "networkProfile": {
                "networkPlugin": "azure",
                "networkPluginMode": "overlay",
                "networkDataplane": "cilium",
                "networkPolicy": "cilium",
                "podCidr": "10.244.0.0/16",
                "serviceCidr": "10.0.0.0/16",
                "dnsServiceIP": "10.0.0.10",
                "loadBalancerSku": "standard",
                "outboundType": "loadBalancer",
            },
            "addonProfiles": addons,
            # The metrics add-on, as Azure/prometheus-collector AddonBicepTemplate/
            # nested_azuremonitormetrics_profile_clusterResourceId.bicep sets it (no extra kube-state labels).
            "azureMonitorProfile": {"metrics": {"enabled": args.prometheus_metrics}},
            "ingressProfile": INGRESS_PROFILE,
            "autoScalerProfile": AUTOSCALER_PROFILE,
            "agentPoolProfiles": [system_pool],
        }
        self.cluster = resources.Resource(
            name,
            resource_provider_namespace=CLUSTER_PROVIDER_NAMESPACE,
            resource_type=CLUSTER_RESOURCE_TYPE,
            # A top-level resource: no parent path (the form pulumi-azure-native's own test programs use,
            # provider/pkg/provider/test-programs/generic-resource-cognitive-services/Pulumi.yaml).
            parent_resource_path="",
            api_version=CLUSTER_API_VERSION,
            resource_name_=args.cluster_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=resources.SkuArgs(name="Base", tier=args.tier),
            identity=resources.IdentityArgs(
                type=resources.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[self.control_plane_identity.id],
            ),
            properties=properties,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[kubelet_operator],
                ignore_changes=[
                    "properties.agentPoolProfiles",
                    *CHANNEL_OWNED_CLUSTER_INPUTS,
                    *READ_ONLY_CLUSTER_PATHS,
                ],
            ),
        )
        cluster_name: pulumi.Output[str] = self.cluster.name

        # Each user pool is named after its force-new settings (`pool_shape`): changing one of them (the VM
        # size, the log rotation, ...) gives new logical and AKS names, so the engine creates the new pools
        # during the update and deletes the old ones, no longer registered, only at its end (pulumi/pulumi
        # pkg/resource/deploy/deployment_executor.go: deletes of resources the program did not register are
        # generated after the program exits; step_generator.go GenerateDeletes). AKS drains a deleted pool's
        # nodes honouring PodDisruptionBudgets (azure-aks-docs articles/aks/delete-node-pool.md, "Ignore
        # PodDisruptionBudgets": PDBs can hold a deletion back unless --ignore-pod-disruption-budget), so Muse
        # moves onto the new pools one pod at a time. A replace of the same name would be delete-first
        # (azure-native provider.go Diff: deleteBeforeReplace), an outage (docs/architecture/azure.md).
        pool = args.user_pool
        self.user_pool_shape = pool_shape(pool, (), args.user_pool_log_rotation)
        self.user_pool_fingerprint = shape_fingerprint(self.user_pool_shape)
        self.user_pools: dict[str, containerservice.AgentPool] = {}
        for pool_name, pool_zones in user_pool_names(
            args.availability_zones, self.user_pool_fingerprint
        ).items():
            shape = pool_shape(pool, pool_zones, args.user_pool_log_rotation)
            kubelet = shape["kubeletConfig"]
            self.user_pools[pool_name] = containerservice.AgentPool(
                f"{name}-{pool_name}",
                agent_pool_name=pool_name,
                resource_name_=cluster_name,
                resource_group_name=args.resource_group_name,
                mode="User",
                vm_size=shape["vmSize"],
                count=pool.count,
                enable_auto_scaling=pool.autoscale,
                min_count=pool.min_count if pool.autoscale else None,
                max_count=pool.max_count if pool.autoscale else None,
                os_type=shape["osType"],
                os_sku=shape["osSKU"],
                type=shape["type"],
                availability_zones=shape["availabilityZones"] or None,
                node_labels=dict(args.user_pool_labels),
                kubelet_config=(
                    containerservice.KubeletConfigArgs(
                        container_log_max_size_mb=kubelet["containerLogMaxSizeMB"],
                        container_log_max_files=kubelet["containerLogMaxFiles"],
                    )
                    if kubelet
                    else None
                ),
                upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge=MAX_SURGE),
                tags=dict(args.tags),
                # The channel owns the pool's version (no orchestratorVersion is set, so the pool starts at
                # the control plane's); the autoscaler owns the node count. Without these every `pulumi up`
                # would fight them.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    ignore_changes=[*CHANNEL_OWNED_POOL_INPUTS, *(["count"] if pool.autoscale else [])],
                ),
            )
        self.maintenance_configurations = [
            self._maintenance_configuration(f"{name}-{suffix}", config_name, window, args)
            for suffix, config_name, window in (
                ("auto-upgrade-window", AUTO_UPGRADE_SCHEDULE, args.auto_upgrade_window),
                ("node-os-upgrade-window", NODE_OS_UPGRADE_SCHEDULE, args.node_os_upgrade_window),
            )
            if window is not None
        ]

        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name,
            resource_name=cluster_name,
            format="exec",
        )
        # Secret from the moment it is decoded, so no derived value can leak it in plain text.
        user_kubeconfig: pulumi.Output[str] = credentials.apply(
            lambda result: pulumi.Output.secret(_decode_kubeconfig(result))
        )

        self.id: pulumi.Output[str] = self.cluster.id
        self.name: pulumi.Output[str] = cluster_name
        # The same name as plain text, for names derived from it (managed Prometheus' `MSProm-...`).
        self.azure_name: str = args.cluster_name
        self.fqdn: pulumi.Output[str] = self.cluster.properties.apply(lambda p: (p or {}).get("fqdn") or "")
        self.oidc_issuer_url: pulumi.Output[str] = self.cluster.properties.apply(_issuer_url)
        self.kubelet_principal_id: pulumi.Output[str] = self.kubelet_identity.principal_id
        self.kubeconfig = user_kubeconfig
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=user_kubeconfig.apply(kubelogin_kubeconfig),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "kubeletPrincipalId": self.kubelet_principal_id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _maintenance_configuration(
        self, name: str, config_name: str, window: MaintenanceWindow, args: KubernetesClusterArgs
    ) -> containerservice.MaintenanceConfiguration:
        return containerservice.MaintenanceConfiguration(
            name,
            config_name=config_name,
            resource_name_=self.cluster.name,
            resource_group_name=args.resource_group_name,
            maintenance_window=containerservice.MaintenanceWindowArgs(
                schedule=containerservice.ScheduleArgs(
                    weekly=containerservice.WeeklyScheduleArgs(
                        day_of_week=window.day_of_week, interval_weeks=window.interval_weeks
                    )
                ),
                start_time=window.start_time,
                duration_hours=window.duration_hours,
                utc_offset=window.utc_offset,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _issuer_url(properties: Mapping[str, Any] | None) -> str:
    """`properties.oidcIssuerProfile.issuerURL` of the cluster's ARM response (empty until it exists)."""
    profile = (properties or {}).get("oidcIssuerProfile") or {}
    return str(profile.get("issuerURL") or "")
