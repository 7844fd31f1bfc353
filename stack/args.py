"""The one place that turns this application's stack config into each component's typed args.

Components take plain typed parameters and know nothing of `StackConfig`; each function here maps the
validated config, the stack's Azure names (`naming.ResourceNames`) and its tags onto one component's args.
`__main__.py` (the composition root) calls them for every component, bootstrap/__main__.py for the resource
groups, and `export/deploy_manifests.py` calls `stack_workload_spec`, so the Pulumi program and the generated
deploy/ files read the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.container_registry import ContainerRegistryArgs
from components.kubernetes_cluster import (
    ContainerLogRotation,
    KubernetesClusterArgs,
    MaintenanceWindow,
    NodePoolSize,
)
from components.muse_workload import MuseWorkloadArgs, manifests
from components.observability import AlertSeverities, AvailabilityTest, ObservabilityArgs
from components.observability.slo import SloSettings
from components.resource_group import ResourceGroupArgs
from components.secret_vault import SecretVaultArgs
from components.workload_identity import ServiceAccountRef, WorkloadIdentityArgs
from stack.config import StackConfig, load_stack_config
from stack.files import read_stack
from stack.naming import ResourceNames


def _zone_redundant(config: StackConfig) -> bool:
    # Zone redundancy and a hard zone spread need at least two zones to spread across.
    return len(config.availability_zones) > 1


def resource_group_args(
    config: StackConfig, names: ResourceNames, tags: Mapping[str, str]
) -> ResourceGroupArgs:
    """The environment's resource group, which the bootstrap project creates for the stack to deploy into."""
    return ResourceGroupArgs(name=names.resource_group, location=config.location, tags=tags)


def registry_args(
    config: StackConfig, names: ResourceNames, resource_group_name: pulumi.Input[str], tags: Mapping[str, str]
) -> ContainerRegistryArgs:
    return ContainerRegistryArgs(
        resource_group_name=resource_group_name,
        location=config.location,
        registry_name=names.registry,
        sku=config.registry_sku,
        zone_redundant=_zone_redundant(config),
        protect=config.protect_stateful_resources,
        tags=tags,
    )


# How loud this application's alerts are, by tier: production pages as Sev 1 Error (failures) and Sev 2
# Warning (capacity); development reports the same conditions as Sev 3 Informational, visible without
# looking like incidents (Azure Monitor severities: 0 Critical, 1 Error, 2 Warning, 3 Informational,
# 4 Verbose). The Bicep export writes the same table as conditions on its `tier` parameter.
PRODUCTION_SEVERITIES = AlertSeverities(failure=1, capacity=2)
DEVELOPMENT_SEVERITIES = AlertSeverities(failure=3, capacity=3)


def alert_severities(config: StackConfig) -> AlertSeverities:
    return PRODUCTION_SEVERITIES if config.production else DEVELOPMENT_SEVERITIES


def slo_settings(config: StackConfig) -> SloSettings:
    return SloSettings(
        availability_percent=config.slo_availability_percent,
        latency_percent=config.slo_latency_percent,
        latency_threshold_ms=config.slo_latency_threshold_ms,
        window_days=config.slo_window_days,
        page_burn_rate=config.slo_page_burn_rate,
        ticket_burn_rate=config.slo_ticket_burn_rate,
    )


def availability_test(config: StackConfig) -> AvailabilityTest | None:
    """The external probe of the stack's public URL (the Gateway's readiness passthrough `/readyz`), or
    None."""
    if not (config.availability_test and config.ingress_host):
        return None
    return AvailabilityTest(
        url=f"https://{config.ingress_host}{manifests.READINESS_PATH}",
        locations=config.availability_test_locations,
    )


def observability_args(
    config: StackConfig, names: ResourceNames, resource_group_name: pulumi.Input[str], tags: Mapping[str, str]
) -> ObservabilityArgs:
    return ObservabilityArgs(
        resource_group_name=resource_group_name,
        location=config.location,
        workspace_name=names.log_analytics,
        action_group_name=names.action_group,
        action_group_short_name=names.action_group_short,
        data_collection_rule_name=names.data_collection_rule,
        alert_rule_prefix=names.alert_prefix,
        severities=alert_severities(config),
        retention_in_days=config.log_retention_days,
        alert_emails=config.alert_emails,
        alert_webhooks=config.alert_webhooks,
        slo=slo_settings(config),
        monitor_workspace_name=names.monitor_workspace,
        app_insights_name=names.app_insights,
        availability_test=availability_test(config),
        maintenance_suppression=config.maintenance_suppress_alerts,
        protect=config.protect_stateful_resources,
        tags=tags,
    )


def cluster_args(
    config: StackConfig,
    names: ResourceNames,
    resource_group_name: pulumi.Input[str],
    tags: Mapping[str, str],
    log_analytics_workspace_id: pulumi.Input[str] | None = None,
) -> KubernetesClusterArgs:
    return KubernetesClusterArgs(
        resource_group_name=resource_group_name,
        location=config.location,
        cluster_name=names.cluster,
        dns_prefix=names.cluster_dns_prefix,
        node_resource_group=names.node_resource_group,
        control_plane_identity_name=names.control_plane_identity,
        kubelet_identity_name=names.kubelet_identity,
        kubernetes_version=config.kubernetes_version,
        system_pool=NodePoolSize(vm_size=config.system_node_vm_size, count=config.system_node_count),
        user_pool=NodePoolSize(
            vm_size=config.user_node_vm_size,
            count=config.user_node_count,
            min_count=config.user_node_min_count,
            max_count=config.user_node_max_count,
            autoscale=config.user_node_autoscale,
        ),
        # The label the Muse Deployment's nodeSelector asks for, so Muse runs on the user pools only.
        user_pool_labels=manifests.USER_POOL_LABEL,
        # The rotation the Muse container's ephemeral-storage limit is sized from (manifests.RESOURCES).
        user_pool_log_rotation=ContainerLogRotation(
            max_size_mb=manifests.CONTAINER_LOG_MAX_SIZE_MB, max_files=manifests.CONTAINER_LOG_MAX_FILES
        ),
        tier=config.cluster_tier,
        upgrade_channel=config.upgrade_channel,
        availability_zones=config.availability_zones,
        authorized_ip_ranges=config.api_server_authorized_ip_ranges,
        admin_group_object_ids=config.cluster_admin_group_object_ids,
        tags=tags,
        log_analytics_workspace_id=log_analytics_workspace_id,
        prometheus_metrics=True,
        auto_upgrade_window=MaintenanceWindow(
            day_of_week=config.auto_upgrade_window_day,
            start_time=config.auto_upgrade_window_start_time,
            duration_hours=config.auto_upgrade_window_duration_hours,
            utc_offset=config.maintenance_utc_offset,
        ),
        node_os_upgrade_window=MaintenanceWindow(
            day_of_week=config.node_os_upgrade_window_day,
            start_time=config.node_os_upgrade_window_start_time,
            duration_hours=config.node_os_upgrade_window_duration_hours,
            utc_offset=config.maintenance_utc_offset,
        ),
    )


def vault_args(
    config: StackConfig,
    names: ResourceNames,
    resource_group_name: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    tags: Mapping[str, str],
) -> SecretVaultArgs:
    return SecretVaultArgs(
        resource_group_name=resource_group_name,
        location=config.location,
        vault_name=names.key_vault,
        tenant_id=tenant_id,
        purge_protection=config.key_vault_purge_protection,
        retention_days=config.key_vault_retention_days,
        protect=config.protect_stateful_resources,
        tags=tags,
    )


def workload_identity_args(
    config: StackConfig,
    names: ResourceNames,
    resource_group_name: pulumi.Input[str],
    oidc_issuer_url: pulumi.Input[str],
    tags: Mapping[str, str],
) -> WorkloadIdentityArgs:
    """The Muse workload identity, federated with the one service account the Muse pods run as."""
    return WorkloadIdentityArgs(
        resource_group_name=resource_group_name,
        location=config.location,
        identity_name=names.workload_identity,
        oidc_issuer_url=oidc_issuer_url,
        service_accounts=[ServiceAccountRef(namespace=names.namespace, name=names.service_account)],
        tags=tags,
    )


def workload_spec(
    config: StackConfig, names: ResourceNames, azure: manifests.AzureRefs = manifests.PLACEHOLDERS
) -> manifests.WorkloadSpec:
    """The plain inputs of the Muse manifests for this stack (`azure` stays PLACEHOLDERS unless given)."""
    return manifests.WorkloadSpec(
        environment=config.environment,
        namespace=names.namespace,
        gateway_namespace=names.gateway_namespace,
        service_account=names.service_account,
        image_tag=config.image_tag,
        replicas=config.replicas,
        max_replicas=config.max_replicas,
        ingress_host=config.ingress_host,
        tls_certificate=config.ingress_tls_certificate,
        zone_spread=_zone_redundant(config),
        azure=azure,
        # With zones (prod) one Gateway proxy per zone at least, so a zone outage leaves proxies in the
        # others; without (dev) the add-on's class defaults (2-5 proxies) keep it cheap.
        gateway_min_replicas=len(config.availability_zones) if _zone_redundant(config) else None,
        candidate_image_tag=config.canary_image_tag,
        candidate_weight=config.canary_weight,
        canary_step_seconds=config.canary_step_seconds,
    )


def workload_args(
    config: StackConfig,
    names: ResourceNames,
    *,
    provider: k8s.Provider,
    registry_login_server: pulumi.Input[str],
    workload_client_id: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    key_vault_name: pulumi.Input[str],
    gateway_tls_client_id: pulumi.Input[str] | None = None,
    prerequisites: Sequence[pulumi.Resource] = (),
    gateway_prerequisites: Sequence[pulumi.Resource] = (),
) -> MuseWorkloadArgs:
    return MuseWorkloadArgs(
        provider=provider,
        spec=workload_spec(config, names),
        registry_login_server=registry_login_server,
        workload_client_id=workload_client_id,
        tenant_id=tenant_id,
        key_vault_name=key_vault_name,
        gateway_tls_client_id=gateway_tls_client_id,
        rollout_timeout_minutes=config.rollout_timeout_minutes,
        prerequisites=tuple(prerequisites),
        gateway_prerequisites=tuple(gateway_prerequisites),
    )


def gateway_tls_identity_args(
    config: StackConfig,
    names: ResourceNames,
    resource_group_name: pulumi.Input[str],
    oidc_issuer_url: pulumi.Input[str],
    tags: Mapping[str, str],
) -> WorkloadIdentityArgs:
    """The identity the application routing operator reads the ingress certificate with: federated with the
    one service account its certificate sync runs as, in the Gateway's namespace."""
    return WorkloadIdentityArgs(
        resource_group_name=resource_group_name,
        location=config.location,
        identity_name=names.gateway_tls_identity,
        oidc_issuer_url=oidc_issuer_url,
        service_accounts=[
            ServiceAccountRef(namespace=names.gateway_namespace, name=manifests.GATEWAY_TLS_SERVICE_ACCOUNT)
        ],
        tags=tags,
    )


def stack_workload_spec(stack: str) -> manifests.WorkloadSpec:
    """The spec `MuseWorkload` gets for `stack`, read from its stack files (Azure values as PLACEHOLDERS):
    what deploy/overlays/<stack> is rendered from."""
    config = load_stack_config(stack, read_stack(stack).config)
    return workload_spec(config, ResourceNames.for_stack(config.environment, config.name_suffix))
