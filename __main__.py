"""Muse on Azure: stack config -> components -> stack outputs.

resource group ── container registry ◄── AcrPull ── AKS kubelet identity
               └─ AKS cluster (Entra ID, workload identity, CNI overlay + Cilium)
"""

import pulumi

from components import config as stack_config
from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.kubernetes_cluster import KubernetesCluster, KubernetesClusterArgs
from components.naming import ResourceNames
from components.observability import Observability, ObservabilityArgs
from components.resource_group import ResourceGroup, ResourceGroupArgs
from components.tags import standard_tags

try:
    config = stack_config.from_pulumi()
except stack_config.ConfigError as error:
    # Raised before any resource is registered; RunError prints the message without a Python traceback.
    raise pulumi.RunError(str(error)) from None

names = ResourceNames.for_stack(config.environment, config.name_suffix)
tags = standard_tags(config)

group = ResourceGroup(
    "muse", ResourceGroupArgs(name=names.resource_group, location=config.location, tags=tags)
)

registry = ContainerRegistry(
    "registry",
    ContainerRegistryArgs(
        resource_group_name=group.name,
        location=config.location,
        registry_name=names.registry,
        sku=config.registry_sku,
        zone_redundant=len(config.availability_zones) > 1,
        tags=tags,
    ),
)

# Observability first: the cluster ships Container Insights to its workspace; then it watches the cluster.
observability = Observability("observability", ObservabilityArgs.from_config(config, names, group.name, tags))
cluster = KubernetesCluster(
    "cluster",
    KubernetesClusterArgs.from_config(
        config, names, group.name, tags, log_analytics_workspace_id=observability.workspace_id
    ),
)
observability.watch_cluster(cluster, namespace=names.namespace)
registry.grant_pull("aks-kubelet", cluster.kubelet_principal_id)

pulumi.export("resourceGroupName", group.name)
pulumi.export("registryName", registry.name)
pulumi.export("registryLoginServer", registry.login_server)
pulumi.export("clusterName", cluster.name)
pulumi.export("oidcIssuerUrl", cluster.oidc_issuer_url)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("logAnalyticsWorkspaceName", observability.workspace_name)
pulumi.export("logAnalyticsWorkspaceId", observability.workspace_id)
