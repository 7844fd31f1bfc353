"""Azure Monitor managed Prometheus for one cluster: the Azure Monitor workspace, the data collection
endpoint, rule and association the metrics add-on sends through, and the Prometheus rule groups (the
recommended Kubernetes recording rules and alerts, and Muse's SLO rules).

The shape follows the add-on's own template (Azure/prometheus-collector FullAzureMonitorMetricsProfile.bicep);
the cluster side is `azureMonitorProfile.metrics.enabled` (components/kubernetes_cluster.py).
Why: docs/architecture/observability.md#managed-prometheus-resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import alertsmanagement, monitor

from components.observability.slo import RULE_INTERVAL_MINUTES, RuleGroup

PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
PROMETHEUS_SOURCE = "PrometheusDataSource"
MONITORING_ACCOUNT = "MonitoringAccount1"
# Data collection endpoint names are at most 44 characters (the template's `take(..., 44)`).
MAX_ENDPOINT_NAME = 44
RESOLVE_AFTER = "PT10M"


def msprom_name(location: str, cluster_name: str) -> str:
    return f"MSProm-{location}-{cluster_name}"[:MAX_ENDPOINT_NAME]


def iso_minutes(minutes: int) -> str:
    return f"PT{minutes}M"


@dataclass(frozen=True)
class ManagedPrometheus:
    workspace: monitor.AzureMonitorWorkspace
    endpoint: monitor.DataCollectionEndpoint
    rule: monitor.DataCollectionRule
    association: monitor.DataCollectionRuleAssociation
    rule_groups: Mapping[str, alertsmanagement.PrometheusRuleGroup]

    @property
    def query_endpoint(self) -> pulumi.Output[str]:
        """The workspace's Prometheus query endpoint, what the release's canary gate queries
        (`https://<name>-<id>.<region>.prometheus.monitor.azure.com`): the read-only
        `properties.metrics.prometheusQueryEndpoint` of Microsoft.Monitor/accounts@2023-04-03
        (verify/arm_types/), which azure-native flattens to `metrics`."""
        return self.workspace.metrics.apply(lambda metrics: metrics.prometheus_query_endpoint)


def rule_args(
    group: RuleGroup, action_group_id: pulumi.Input[str], severities: Mapping[str, int]
) -> list[alertsmanagement.PrometheusRuleArgs]:
    """A rule group's rules as Azure Monitor Prometheus rules: alerts get the action group, a severity from
    their urgency (`page`/`ticket`), and resolve by themselves 10 minutes after the condition clears."""
    rules = []
    for rule in group.rules:
        if rule.record:
            rules.append(
                alertsmanagement.PrometheusRuleArgs(
                    record=rule.record,
                    expression=rule.expression,
                    labels=dict(rule.labels) or None,
                    enabled=True,
                )
            )
            continue
        rules.append(
            alertsmanagement.PrometheusRuleArgs(
                alert=rule.alert,
                expression=rule.expression,
                for_=iso_minutes(rule.for_minutes) if rule.for_minutes else None,
                severity=severities[rule.severity],
                labels=dict(rule.labels) or None,
                annotations=dict(rule.annotations) or None,
                enabled=True,
                actions=[alertsmanagement.PrometheusRuleGroupActionArgs(action_group_id=action_group_id)],
                resolve_configuration=alertsmanagement.PrometheusRuleResolveConfigurationArgs(
                    auto_resolved=True, time_to_resolve=RESOLVE_AFTER
                ),
            )
        )
    return rules


def managed_prometheus(
    name: str,
    *,
    resource_group_name: pulumi.Input[str],
    location: str,
    workspace_name: str,
    cluster_id: pulumi.Input[str],
    cluster_name: str,
    groups: Sequence[RuleGroup],
    action_group_id: pulumi.Input[str],
    severities: Mapping[str, int],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> ManagedPrometheus:
    workspace = monitor.AzureMonitorWorkspace(
        f"{name}-prometheus",
        azure_monitor_workspace_name=workspace_name,
        resource_group_name=resource_group_name,
        location=location,
        tags=dict(tags),
        opts=opts,
    )
    endpoint = monitor.DataCollectionEndpoint(
        f"{name}-prometheus",
        data_collection_endpoint_name=msprom_name(location, cluster_name),
        resource_group_name=resource_group_name,
        location=location,
        kind="Linux",
        description=(
            "Managed Prometheus of the Muse cluster: where the metrics add-on gets its configuration."
        ),
        tags=dict(tags),
        opts=opts,
    )
    rule = monitor.DataCollectionRule(
        f"{name}-prometheus",
        data_collection_rule_name=msprom_name(location, cluster_name),
        resource_group_name=resource_group_name,
        location=location,
        kind="Linux",
        description=(
            "Managed Prometheus of the Muse cluster: the add-on's metrics to the Azure Monitor workspace."
        ),
        data_collection_endpoint_id=endpoint.id,
        data_sources=monitor.DataCollectionRuleDataSourcesArgs(
            prometheus_forwarder=[
                monitor.PrometheusForwarderDataSourceArgs(name=PROMETHEUS_SOURCE, streams=[PROMETHEUS_STREAM])
            ]
        ),
        destinations=monitor.DataCollectionRuleDestinationsArgs(
            monitoring_accounts=[
                monitor.MonitoringAccountDestinationArgs(
                    name=MONITORING_ACCOUNT, account_resource_id=workspace.id
                )
            ]
        ),
        data_flows=[monitor.DataFlowArgs(streams=[PROMETHEUS_STREAM], destinations=[MONITORING_ACCOUNT])],
        tags=dict(tags),
        opts=opts,
    )
    association = monitor.DataCollectionRuleAssociation(
        f"{name}-prometheus",
        association_name=msprom_name(location, cluster_name),
        resource_uri=cluster_id,
        data_collection_rule_id=rule.id,
        description="Managed Prometheus of the Muse cluster; deleting it stops metrics collection.",
        opts=opts,
    )
    rule_groups = {
        group.name: alertsmanagement.PrometheusRuleGroup(
            f"{name}-{group.name}",
            rule_group_name=f"{group.name}-{cluster_name}",
            resource_group_name=resource_group_name,
            location=location,
            description=group.description,
            scopes=[workspace.id, cluster_id],
            cluster_name=cluster_name,
            enabled=True,
            interval=iso_minutes(RULE_INTERVAL_MINUTES),
            rules=rule_args(group, action_group_id, severities),
            tags=dict(tags),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[association])),
        )
        for group in groups
    }
    return ManagedPrometheus(workspace, endpoint, rule, association, rule_groups)
