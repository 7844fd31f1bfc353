"""Muse on Azure: stack config -> components -> stack outputs.

resource group (made by bootstrap/) holds:
  container registry ◄── AcrPull ─── AKS kubelet identity
                     ◄── AcrPush ─── GitHub deploy identity (bootstrap output)
  AKS cluster (Entra ID only, workload identity, CNI overlay + Cilium)
  Key Vault: muse-api-token ◄── Secrets User ─── Muse workload identity ◄── federated: muse service account
  Log Analytics ◄── Container Insights (omsagent + ContainerLogV2) ─ AKS; alerts ─► action group; workbook
in the cluster (its Kubernetes provider): namespace muse-<env>, Deployment muse (token via the CSI driver),
  Service, Ingress (app routing) ─► museUrl; the same objects as deploy/ for `kubectl apply -k`
"""

import os

import pulumi
from pulumi_azure_native import authorization, resources

from components import config as stack_config
from components.container_registry import ContainerRegistry, ContainerRegistryArgs
from components.kubernetes_cluster import KubernetesCluster, KubernetesClusterArgs
from components.muse_manifests import KEY_VAULT_SECRET
from components.muse_workload import MuseWorkload, MuseWorkloadArgs
from components.naming import ResourceNames
from components.observability import Observability, ObservabilityArgs
from components.secret_vault import SecretVault, SecretVaultArgs
from components.tags import standard_tags
from components.workload_identity import ServiceAccountRef, WorkloadIdentity, WorkloadIdentityArgs

try:
    config = stack_config.from_pulumi()
except stack_config.ConfigError as error:
    # Raised before any resource is registered; RunError prints the message without a Python traceback.
    raise pulumi.RunError(str(error)) from None

REGISTRY_STAGE_ENV = "MUSE_BOOTSTRAP_STAGE"

names = ResourceNames.for_stack(config.environment, config.name_suffix)
tags = standard_tags(config)
client = authorization.get_client_config_output()

# The group is created by the bootstrap project with the deploy identity's roles on it, so CI needs no
# subscription-wide rights; looking it up fails early, naming the group, when bootstrap has not run.
group = resources.get_resource_group_output(resource_group_name=names.resource_group)

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

if config.deploy_principal_id:
    registry.grant_push("github-deploy", config.deploy_principal_id)
pulumi.export("resourceGroupName", group.name)
pulumi.export("registryName", registry.name)
pulumi.export("registryLoginServer", registry.login_server)


def platform_and_workload() -> None:
    """Everything but the registry: observability, AKS, Key Vault, identities and the Muse workload."""
    # Observability first: the cluster ships Container Insights to its workspace; then it watches the cluster.
    observability = Observability(
        "observability", ObservabilityArgs.from_config(config, names, group.name, tags)
    )
    cluster = KubernetesCluster(
        "cluster",
        KubernetesClusterArgs.from_config(
            config, names, group.name, tags, log_analytics_workspace_id=observability.workspace_id
        ),
    )
    observability.watch_cluster(cluster, namespace=names.namespace)
    kubelet_pull = registry.grant_pull("aks-kubelet", cluster.kubelet_principal_id)

    vault = SecretVault(
        "vault",
        SecretVaultArgs(
            resource_group_name=group.name,
            location=config.location,
            vault_name=names.key_vault,
            tenant_id=client.tenant_id,
            purge_protection=config.key_vault_purge_protection,
            retention_days=config.key_vault_retention_days,
            tags=tags,
        ),
    )
    # A secret's name, not its value (the value is generated and never leaves Pulumi state and the vault).
    api_token = vault.add_generated_secret(KEY_VAULT_SECRET, secret_name=KEY_VAULT_SECRET, length=48)

    muse_identity = WorkloadIdentity(
        "muse-workload",
        WorkloadIdentityArgs(
            resource_group_name=group.name,
            location=config.location,
            identity_name=names.workload_identity,
            oidc_issuer_url=cluster.oidc_issuer_url,
            service_accounts=[ServiceAccountRef(namespace=names.namespace, name=names.service_account)],
            tags=tags,
        ),
    )
    token_read = vault.grant_secret_read("muse-workload", muse_identity.principal_id, secret=api_token)

    # The workload, through the cluster's provider: the service account federated with muse_identity reads the
    # token from the vault via the Secrets Store CSI driver. `pulumi up` awaits the rollout
    # (rolloutTimeoutMinutes).
    workload = MuseWorkload(
        "muse",
        MuseWorkloadArgs.from_config(
            config,
            names,
            provider=cluster.provider,
            registry_login_server=registry.login_server,
            workload_client_id=muse_identity.client_id,
            tenant_id=client.tenant_id,
            key_vault_name=vault.name,
            # Pods can pull, federate and read the token before the first one starts.
            prerequisites=[kubelet_pull, token_read, *muse_identity.federated_credentials],
        ),
    )

    pulumi.export("clusterName", cluster.name)
    pulumi.export("oidcIssuerUrl", cluster.oidc_issuer_url)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("logAnalyticsWorkspaceName", observability.workspace_name)
    pulumi.export("logAnalyticsWorkspaceId", observability.workspace_id)
    pulumi.export("keyVaultName", vault.name)
    pulumi.export("keyVaultUri", vault.uri)
    pulumi.export("tenantId", client.tenant_id)
    pulumi.export("museWorkloadClientId", muse_identity.client_id)
    pulumi.export("museNamespace", workload.namespace)
    pulumi.export("museDeployment", workload.deployment_name)
    pulumi.export("museImage", workload.image)
    pulumi.export("museUrl", workload.url)


# scripts/bootstrap.sh creates only the registries, before the first image exists, with
# MUSE_BOOTSTRAP_STAGE=registry. `pulumi up --target` cannot: the engine refuses to create a target whose
# parent or provider is an untargeted create, and the cluster's Kubernetes provider is always targeted
# (pulumi/pulumi step_generator.go validateSteps; replayed in tests/bootstrap/engine_targeting.py).
if os.environ.get(REGISTRY_STAGE_ENV) != "registry":
    platform_and_workload()
