"""Muse on Azure: stack config -> stack/args.py -> components -> stack outputs. The resource group (made by
bootstrap/) holds:
  container registry ◄── AcrPull ─── AKS kubelet identity
                     ◄── AcrPush ─── GitHub build identity (bootstrap output, dev only)
                     ◄── Reader ──── prod's GitHub deploy identity: az acr import (bootstrap output, dev only)
  AKS cluster (Entra ID only, workload identity, CNI overlay + Cilium)
  Key Vault: SECRETS ◄── Secrets User ─── Muse workload identity ◄── federated: muse service account
  Log Analytics ◄── Container Insights (omsagent + ContainerLogV2) ─ AKS; alerts ─► action group; workbook
  Key Vault: ingress certificate ◄── Secrets User ─── gateway TLS identity ◄── federated: its service account
in the cluster (its Kubernetes provider): namespace muse-<env>, Deployment muse (token via the CSI driver),
  Service, HTTPRoute ─► Gateway (application routing Gateway API, namespace muse-<env>-gateway) ─► museUrl;
  the same objects as deploy/ for `kubectl apply -k`
"""

import os

import pulumi
from pulumi_azure_native import authorization, resources

from components.container_registry import ContainerRegistry
from components.kubernetes_cluster import KubernetesCluster
from components.muse_workload import MuseWorkload
from components.muse_workload.manifests import SECRETS
from components.observability import Observability
from components.secret_vault import SecretVault
from components.workload_identity import WorkloadIdentity
from stack import args as stack_args
from stack import deployed as deployed_state
from stack.config import ConfigError, from_pulumi
from stack.naming import ResourceNames
from stack.tags import standard_tags

# What the stack holds already (its last update's outputs, stack/deployed.py): an existing cluster is not
# refused for a Kubernetes minor past support, a partial stage never runs on a fuller stack, and the system
# pool's settings are compared with the ones the cluster was created with. Read before anything is registered.
deployed = deployed_state.read()
try:
    config = from_pulumi(cluster_exists=deployed.has_cluster)
except ConfigError as error:
    # Raised before any resource is registered; RunError prints the message without a Python traceback.
    raise pulumi.RunError(str(error)) from None

# scripts/bootstrap.sh creates only the registries, before the first image exists, with
# MUSE_BOOTSTRAP_STAGE=registry; before prod's first full deploy its Key Vault is created with
# MUSE_BOOTSTRAP_STAGE=vault (the registry stage plus the vault), so the ingress certificate can be put there
# first (docs/runbook.md, "Prod's first deploy"). `pulumi up --target` cannot do either: the engine refuses to
# create a target whose parent or provider is an untargeted create, and the cluster's Kubernetes provider is
# always targeted (pulumi/pulumi step_generator.go validateSteps; tests/bootstrap/engine_targeting.py).
FORMER_IMAGE_PUSH_GRANT = "github-deploy-acr-push"
REGISTRY_STAGE_ENV = "MUSE_BOOTSTRAP_STAGE"
STAGES = ("registry", "vault")
stage = os.environ.get(REGISTRY_STAGE_ENV, "")
if stage not in ("", *STAGES):
    raise pulumi.RunError(
        f"{REGISTRY_STAGE_ENV}={stage!r} is not a stage: set it to 'registry' (scripts/bootstrap.sh's first "
        "deploy), 'vault' (prod's Key Vault before its first deploy) or unset it for the whole stack"
    )
# A stage registers part of the program, and the engine deletes whatever the stack holds that the program did
# not register: a stage on a stack that holds more would delete the rest. Refused before anything exists.
if stage and deployed.holds_more_than(stage):
    raise pulumi.RunError(
        f"{REGISTRY_STAGE_ENV}={stage} on stack {pulumi.get_stack()}, which already holds the "
        f"{deployed.stage!r} stage: this run would delete everything of it outside the {stage!r} stage. "
        f"Unset {REGISTRY_STAGE_ENV} and run `pulumi up --refresh` for the whole stack."
    )

problem = deployed_state.system_pool_problem(
    deployed_state.live_system_pool(deployed),
    vm_size=config.system_node_vm_size,
    count=config.system_node_count,
)
if problem:
    raise pulumi.RunError(problem)

names = ResourceNames.for_stack(config.environment, config.name_suffix)
tags = standard_tags(config)
client = authorization.get_client_config_output()

# The group is created by the bootstrap project with the deploy identity's roles on it, so CI needs no
# subscription-wide rights; looking it up fails early, naming the group, when bootstrap has not run.
group = resources.get_resource_group_output(resource_group_name=names.resource_group)

registry = ContainerRegistry("registry", stack_args.registry_args(config, names, group.name, tags))
if config.image_push_principal_id:
    # Installations bootstrapped before per-environment identities registered this grant as
    # `github-deploy-acr-push` (config muse:deployPrincipalId); the alias keeps their state's resource under
    # its new name (Pulumi aliases: unset fields default to the resource's own; docs/bootstrap.md, migration).
    registry.grant_push(
        "image-push",
        config.image_push_principal_id,
        opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name=FORMER_IMAGE_PUSH_GRANT)]),
    )
if config.image_import_principal_id:
    # Prod's deployer imports the digest dev tested from this registry. Part of the registry stage, like the
    # push grant: it exists (and has propagated) long before prod's first import, whatever dev's first full
    # deploy does.
    registry.grant_import_source("image-import", config.image_import_principal_id)
pulumi.export("resourceGroupName", group.name)
pulumi.export("registryName", registry.name)
# The registry by resource id: main.yml's prod import and tag-latest.sh pass it to `az acr import --registry`.
pulumi.export("registryId", registry.id)
pulumi.export("registryLoginServer", registry.login_server)


def key_vault() -> SecretVault:
    """The stack's Key Vault (the vault stage registers it exactly as the whole program does)."""
    vault = SecretVault("vault", stack_args.vault_args(config, names, group.name, client.tenant_id, tags))
    pulumi.export("keyVaultName", vault.name)
    pulumi.export("keyVaultUri", vault.uri)
    return vault


def platform_and_workload(vault: SecretVault) -> None:
    """Everything but the registry and the vault: observability, AKS, identities and the Muse workload."""
    # Observability first: the cluster ships Container Insights to its workspace; then it watches the cluster.
    observability = Observability(
        "observability", stack_args.observability_args(config, names, group.name, tags)
    )
    cluster = KubernetesCluster(
        "cluster",
        stack_args.cluster_args(
            config, names, group.name, tags, log_analytics_workspace_id=observability.workspace_id
        ),
    )
    watch = observability.watch_cluster(cluster, namespace=names.namespace)
    kubelet_pull = registry.grant_pull("aks-kubelet", cluster.kubelet_principal_id)

    # Secrets by name, not value (each value is generated and never leaves Pulumi state and the vault).
    secrets = [
        vault.add_generated_secret(secret.name, secret_name=secret.name, length=secret.length)
        for secret in SECRETS
    ]

    muse_identity = WorkloadIdentity(
        "muse-workload",
        stack_args.workload_identity_args(config, names, group.name, cluster.oidc_issuer_url, tags),
    )
    # Each secret alone, to the workload identity alone (least privilege).
    secret_reads = [
        vault.grant_secret_read(secret.grant, muse_identity.principal_id, secret=created)
        for secret, created in zip(SECRETS, secrets, strict=True)
    ]

    # With an ingress host, the Gateway serves the Key Vault certificate `ingressTlsCertificate`: the
    # application routing operator reads it as this identity (federated with its service account in the
    # Gateway's namespace), which may read that certificate's secret and nothing else.
    gateway_tls_client_id = None
    gateway_prerequisites: list[pulumi.Resource] = []
    if config.ingress_host:
        gateway_tls_identity = WorkloadIdentity(
            "gateway-tls",
            stack_args.gateway_tls_identity_args(config, names, group.name, cluster.oidc_issuer_url, tags),
        )
        certificate_read = vault.grant_certificate_read(
            "gateway-tls", gateway_tls_identity.principal_id, certificate_name=config.ingress_tls_certificate
        )
        gateway_tls_client_id = gateway_tls_identity.client_id
        gateway_prerequisites = [certificate_read, *gateway_tls_identity.federated_credentials]

    # The workload, through the cluster's provider: the service account federated with muse_identity reads the
    # token from the vault via the Secrets Store CSI driver. `pulumi up` awaits the rollout
    # (rolloutTimeoutMinutes).
    workload = MuseWorkload(
        "muse",
        stack_args.workload_args(
            config,
            names,
            provider=cluster.provider,
            registry_login_server=registry.login_server,
            workload_client_id=muse_identity.client_id,
            tenant_id=client.tenant_id,
            key_vault_name=vault.name,
            gateway_tls_client_id=gateway_tls_client_id,
            # Pods can pull, federate and read the secrets before the first one starts.
            prerequisites=[kubelet_pull, *secret_reads, *muse_identity.federated_credentials],
            gateway_prerequisites=gateway_prerequisites,
        ),
    )

    pulumi.export("clusterName", cluster.name)
    pulumi.export("userPoolNames", sorted(cluster.user_pools))
    surge = deployed_state.pool_change_warning(
        deployed,
        list(cluster.user_pools),
        vm_size=config.user_node_vm_size,
        nodes_per_pool=config.user_node_max_count if config.user_node_autoscale else config.user_node_count,
        location=config.location,
    )
    if surge:
        pulumi.log.warn(surge)
    pulumi.export("oidcIssuerUrl", cluster.oidc_issuer_url)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("logAnalyticsWorkspaceName", observability.workspace_name)
    pulumi.export("logAnalyticsWorkspaceId", observability.workspace_id)
    pulumi.export("tenantId", client.tenant_id)
    pulumi.export("museWorkloadClientId", muse_identity.client_id)
    pulumi.export("museNamespace", workload.namespace)
    pulumi.export("museDeployment", workload.deployment_name)
    pulumi.export("museImage", workload.image)
    pulumi.export("museUrl", workload.url)
    # The release's canary (scripts/ci/deploy.py): its plan, the route whose weights it moves, the checks.
    pulumi.export(
        "museCanary", {"steps": list(config.canary_steps), "stepSeconds": config.canary_step_seconds}
    )
    pulumi.export("museRouteUrn", workload.route_urn)
    # Where the canary gate reads the candidate's live metrics (scripts/ci/canary_gate.py, deploy.py
    # --prometheus-output): the Azure Monitor workspace's Prometheus query endpoint.
    if watch.prometheus is not None:
        pulumi.export("prometheusQueryEndpoint", watch.prometheus.query_endpoint)
    pulumi.export("museEvaluateChecks", workload.evaluate_checks)
    # The Gateway's public IP: the address the DNS record of muse:ingressHost points at (docs/runbook.md).
    pulumi.export("museGatewayAddress", workload.gateway_address)
    if gateway_tls_client_id is not None:
        pulumi.export("gatewayTlsClientId", gateway_tls_client_id)


if stage != "registry":
    stack_vault = key_vault()
    if stage != "vault":
        platform_and_workload(stack_vault)
