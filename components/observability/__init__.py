"""Observability for Muse: Log Analytics, Container Insights, alerts to an action group, and a workbook.

Two steps, because the cluster needs the workspace and the cluster-level monitoring needs the cluster:

1. `Observability(...)` creates the Log Analytics workspace (retention per stack, shared-key access off) and
   the action group (one email receiver per `alertEmails` entry; valid with none).
2. `watch_cluster(cluster, namespace)` creates everything that needs the cluster: the Container Insights
   data collection rule and its association with the cluster, the alerts, and the workbook.

Container Insights is the add-on with Entra ID auth *and* an explicit data collection rule, two halves of
one mechanism. Alerts are declared in `alerts.py`, their KQL in `queries.py`.
Why: docs/architecture/observability.md#the-observability-component."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import alertsmanagement, applicationinsights, monitor, operationalinsights

from components.deletion_protection import protection
from components.kubernetes_cluster import KubernetesCluster
from components.observability import slo
from components.observability.alerts import (
    LOG_ALERTS,
    METRIC_ALERTS,
    PROBE_ALERT,
    RUNBOOK,
    URGENCY_KIND,
    AlertSeverities,
    LogAlert,
    MetricAlert,
)
from components.observability.availability import AvailabilityTest, Probe, probe
from components.observability.prometheus import ManagedPrometheus, managed_prometheus
from components.observability.queries import (
    ARRIVAL_WINDOW_MINUTES,
    LOOKBACK_MINUTES,
    MUSE_CONTAINER,
    MuseQueries,
)
from components.observability.recommended_rules import recommended_groups
from rbac.arm import LOG_ANALYTICS_WORKSPACES, MANAGED_CLUSTERS, MONITOR_ACCOUNTS

# Log search alerts: how often they run and the window they judge (ISO 8601 durations).
LOG_ALERT_FREQUENCY = f"PT{ARRIVAL_WINDOW_MINUTES}M"
LOG_ALERT_WINDOW = f"PT{ARRIVAL_WINDOW_MINUTES}M"
# Event-time range the error and restart queries see: wider than the window so late-arriving rows (error
# lines) and a restart counted between two snapshots (restart-count deltas) are not lost at the boundary.
LOG_ALERT_LOOKBACK = f"PT{LOOKBACK_MINUTES}M"
METRIC_ALERT_FREQUENCY = "PT1M"
METRIC_ALERT_WINDOW = "PT5M"
CLUSTER_METRIC_NAMESPACE = MANAGED_CLUSTERS
# The association name the Container Insights agent looks for.
CONTAINER_INSIGHTS_ASSOCIATION = "ContainerInsightsExtension"
# What the DCR streams to the workspace: the tables the queries read (ContainerLogV2, KubePodInventory, Perf)
# plus what the portal's Container Insights views need.
CONTAINER_INSIGHTS_STREAMS = (
    "Microsoft-ContainerLogV2",
    "Microsoft-KubePodInventory",
    "Microsoft-KubeEvents",
    "Microsoft-KubeNodeInventory",
    "Microsoft-KubeServices",
    "Microsoft-KubePVInventory",
    "Microsoft-ContainerInventory",
    "Microsoft-ContainerNodeInventory",
    "Microsoft-Perf",
    "Microsoft-InsightsMetrics",
)
_WORKBOOK_NAMESPACE = uuid.UUID("0d3c4e57-9f5b-4a55-8e35-1f0f6b8e2c41")


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    """Inputs of `Observability`, field by field (what it is; default, and why that default).

    resource_group_name: group for every monitoring resource. Required.
    location: Azure region of the workspace, data collection rule, log alerts and workbook (the action group
        and the metric alerts are global resources). Required.
    workspace_name: Azure name of the Log Analytics workspace; it also seeds the workbook's stable GUID.
        Required.
    action_group_name: Azure name of the action group. Required.
    action_group_short_name: the action group's short name (at most 12 characters), shown as the sender of
        its notifications. Required.
    data_collection_rule_name: Azure name of the Container Insights data collection rule. Required.
    alert_rule_prefix: every alert rule is named `<alert_rule_prefix>-<what>`. Required.
    severities: alert severities, one for failures and one for capacity. Required: how loud an alert is
        depends on the environment it watches, which only the caller knows.
    retention_in_days: Log Analytics retention, 30-730. Default 30: the retention every workspace includes
        without a retention charge; longer is a cost decision.
    alert_emails: addresses the action group emails. Default () = alerts fire and show in Azure Monitor,
        nobody is mailed (the component warns at deploy time).
    alert_webhooks: https URLs the action group posts the common alert schema to (Teams/Slack/PagerDuty
        integrations). Always handled as Pulumi secrets: such URLs embed their credential. Default ().
    slo: the SLO knobs of the Prometheus recording and burn-rate alert rules. Default: SloSettings()
        (99.9 % available, 99 % within 250 ms, 30 days, 14.4x / 6x).
    monitor_workspace_name: Azure Monitor workspace (managed Prometheus) name. Default "" = no managed
        Prometheus (and no SLO rules).
    app_insights_name: Application Insights component of the availability test. Required with
        `availability_test`.
    availability_test: the external probe of the public URL. Default None = no probe.
    maintenance_suppression: the planned-maintenance alert processing rule is enabled (notifications are
        dropped; alerts still fire and are listed). Default False.
    protect: Pulumi `protect` on the workspace, whose logs cannot be recreated
        (components/deletion_protection.py: why no CanNotDelete lock). Default False.
    tags: tags for every taggable resource. Default: none.
    """

    resource_group_name: pulumi.Input[str]
    location: str
    workspace_name: str
    action_group_name: str
    action_group_short_name: str
    data_collection_rule_name: str
    alert_rule_prefix: str
    severities: AlertSeverities
    retention_in_days: int = 30
    alert_emails: Sequence[str] = ()
    alert_webhooks: Sequence[str] = ()
    slo: slo.SloSettings = field(default_factory=slo.SloSettings)
    monitor_workspace_name: str = ""
    app_insights_name: str = ""
    availability_test: AvailabilityTest | None = None
    maintenance_suppression: bool = False
    protect: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterWatch:
    """What `Observability.watch_cluster` created."""

    data_collection_rule: monitor.DataCollectionRule
    association: monitor.DataCollectionRuleAssociation
    log_alerts: Mapping[str, monitor.ScheduledQueryRule]
    metric_alerts: Mapping[str, monitor.MetricAlert]
    workbook: applicationinsights.Workbook
    prometheus: ManagedPrometheus | None
    probe: Probe | None


# Workbook query types: 0 = Logs (KQL) against a Log Analytics workspace; 16 = Prometheus (PromQL) against an
# Azure Monitor workspace (the workbook data source "Prometheus").
_KQL, _PROMQL = 0, 16


def slo_tiles(namespace: str, settings: slo.SloSettings, monitor_workspace_id: str) -> list[dict[str, Any]]:
    """The SLO tiles: error budget left, burn rate of both alert windows, and per-version 5xx ratio and p95,
    in PromQL on the recording rules (components/observability/slo.py)."""
    selector = f'{{namespace="{namespace}"}}'
    availability, latency = slo.objectives(settings, namespace)

    def tile(key: str, title: str, query: str, visualization: str = "timechart") -> dict[str, Any]:
        return {
            "type": 3,
            "name": key,
            "customWidth": "50",
            "content": {
                "version": "KqlItem/1.0",
                "title": title,
                "query": query,
                "size": 0,
                "queryType": _PROMQL,
                "resourceType": MONITOR_ACCOUNTS.lower(),
                "crossComponentResources": [monitor_workspace_id],
                "timeContextFromParameter": "TimeRange",
                "visualization": visualization,
            },
        }

    burn = " or ".join(
        f'label_replace({objective.ratio(window)}{selector} / {objective.budget:g}, "burn", '
        f'"{objective.slug} {window}", "", "")'
        for objective in (availability, latency)
        for window in (*slo.PAGE_WINDOWS, *slo.TICKET_WINDOWS)
    )
    return [
        tile(
            "error-budget",
            f"Error budget remaining ({settings.window_days} d; 1 = untouched, < 0 = SLO missed)",
            f"{availability.budget_remaining}{selector} or {latency.budget_remaining}{selector}",
        ),
        tile(
            "burn-rate",
            f"Burn rate (x budget; page > {settings.page_burn_rate:g} over 1h and 5m, ticket > "
            f"{settings.ticket_burn_rate:g} over 6h and 30m)",
            burn,
        ),
        tile("version-p95", "p95 latency (s) per version", f"{slo.VERSION_P95_SECONDS}{selector}"),
        tile("version-errors", "5xx ratio per version", f"{slo.VERSION_ERROR_RATIO}{selector}"),
    ]


PROBE_RESULTS = """AppAvailabilityResults
| summarize availability_percent = 100.0 * countif(Success == true) / count() by bin(TimeGenerated, 5m),
Location
| order by TimeGenerated asc"""


def workbook_content(
    queries: MuseQueries,
    workspace_id: str,
    title: str,
    *,
    monitor_workspace_id: str = "",
    slo_settings: slo.SloSettings | None = None,
) -> dict[str, Any]:
    """The workbook (Azure Monitor workbook JSON, `Notebook/1.0`): a time-range parameter and one tile per
    query, against the workspace; with managed Prometheus the SLO tiles first, with the probe its results.
    Tiles reuse the alert queries where they overlap."""

    def tile(name: str, title: str, query: str, visualization: str, width: int = 50) -> dict[str, Any]:
        return {
            "type": 3,
            "name": name,
            "customWidth": str(width),
            "content": {
                "version": "KqlItem/1.0",
                "title": title,
                "query": query,
                "size": 0,
                "queryType": _KQL,
                "resourceType": LOG_ANALYTICS_WORKSPACES.lower(),
                "crossComponentResources": [workspace_id],
                "timeContextFromParameter": "TimeRange",
                "visualization": visualization,
            },
        }

    return {
        "version": "Notebook/1.0",
        "items": [
            {
                "type": 1,
                "name": "title",
                "content": {
                    "json": f"## {title}\nContainer logs and inventory of namespace `{queries.namespace}`, "
                    f"container `{queries.container}`. What to do when an alert fires: `{RUNBOOK}`."
                },
            },
            {
                "type": 9,
                "name": "parameters",
                "content": {
                    "version": "KqlParameterItem/1.0",
                    "parameters": [
                        {
                            "id": "time-range",
                            "version": "KqlParameterItem/1.0",
                            "name": "TimeRange",
                            "label": "Time range",
                            "type": 4,
                            "isRequired": True,
                            "value": {"durationMs": 3_600_000},
                            "typeSettings": {
                                "selectableValues": [
                                    {"durationMs": ms}
                                    for ms in (900_000, 3_600_000, 14_400_000, 86_400_000, 604_800_000)
                                ]
                            },
                        }
                    ],
                },
            },
            *(
                slo_tiles(queries.namespace, slo_settings, monitor_workspace_id)
                if monitor_workspace_id and slo_settings is not None
                else []
            ),
            # Always there, so every stack's workbook has the same tiles; empty where muse:availabilityTest
            # is off.
            tile(
                "probe",
                "External probe: availability % per location (muse:availabilityTest)",
                PROBE_RESULTS,
                "timechart",
                100,
            ),
            tile("request-rate", "Requests per minute by route", queries.request_rate, "timechart"),
            tile("error-rate", "5xx responses (% of requests)", queries.error_rate, "timechart"),
            tile("latency-p95", "p95 latency (ms) by route", queries.latency_p95, "timechart"),
            tile("restarts", "Restarts and CrashLoopBackOff (alerted)", queries.restarts, "table"),
            tile("pods-not-ready", "Pods not ready (alerted)", queries.pods_not_ready, "table"),
            tile("pod-cpu", "CPU per pod (millicores)", queries.pod_cpu, "timechart"),
            tile("pod-memory", "Memory per pod (MiB)", queries.pod_memory, "timechart"),
            tile("recent-errors", "Recent ERROR lines (alerted)", queries.recent_errors, "table", 100),
        ],
        "fallbackResourceIds": [workspace_id],
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    }


def _resource_group_id(resource_id: str) -> str:
    """`/subscriptions/<s>/resourceGroups/<g>` of a resource id in that group."""
    return resource_id.split("/providers/", 1)[0]


class Observability(pulumi.ComponentResource):
    """`muse:azure:Observability`.

    Exposes `workspace_id` (for the cluster's `omsagent` add-on), `workspace_name`, `workspace_customer_id`
    (the id `az monitor log-analytics query -w` takes) and `action_group_id`; `watch_cluster` adds the
    cluster-level monitoring.
    """

    TYPE = "muse:azure:Observability"  # the type token of its URN

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self._name = name
        self._args = args
        self.workspace = operationalinsights.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.retention_in_days,
            features=operationalinsights.WorkspaceFeaturesArgs(
                # Agents authenticate with Entra ID (omsagent useAADAuth); no shared key can ingest or read.
                disable_local_auth=True,
                enable_log_access_using_only_resource_permissions=True,
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), protection(args.protect)),
        )
        if not args.alert_emails and not args.alert_webhooks:
            pulumi.log.warn(
                "muse:alertEmails and muse:alertWebhooks are empty: alerts fire and show in Azure "
                "Monitor, but "
                "nobody is notified. Set `pulumi config set --path 'muse:alertEmails[0]' <team address>` or "
                "`pulumi config set --secret muse:alertWebhooks '[\"https://...\"]'`.",
                resource=self,
            )
        self.action_group = monitor.ActionGroup(
            f"{name}-action-group",
            action_group_name=args.action_group_name,
            group_short_name=args.action_group_short_name,
            resource_group_name=args.resource_group_name,
            location="global",
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{index}", email_address=address, use_common_alert_schema=True
                )
                for index, address in enumerate(args.alert_emails, start=1)
            ],
            # A webhook URL carries its integration's token: a secret in the state and the plan.
            webhook_receivers=[
                monitor.WebhookReceiverArgs(
                    name=f"webhook-{index}",
                    service_uri=pulumi.Output.secret(url),
                    use_common_alert_schema=True,
                )
                for index, url in enumerate(args.alert_webhooks, start=1)
            ],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Planned maintenance: while enabled, notifications of every alert in the group are dropped (alerts
        # still fire and are listed), so a maintenance does not page. Disabled unless the config says so.
        self.maintenance_rule = alertsmanagement.AlertProcessingRuleByName(
            f"{name}-maintenance",
            alert_processing_rule_name=f"{args.alert_rule_prefix}-maintenance",
            resource_group_name=args.resource_group_name,
            location="global",
            properties=alertsmanagement.AlertProcessingRulePropertiesArgs(
                scopes=[self.workspace.id.apply(_resource_group_id)],
                actions=[alertsmanagement.RemoveAllActionGroupsArgs(action_type="RemoveAllActionGroups")],
                enabled=args.maintenance_suppression,
                description="Planned maintenance: drops alert notifications of the stack while enabled.",
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.workspace_id: pulumi.Output[str] = self.workspace.id
        self.workspace_name: pulumi.Output[str] = self.workspace.name
        self.workspace_customer_id: pulumi.Output[str] = self.workspace.customer_id
        self.action_group_id: pulumi.Output[str] = self.action_group.id
        self.register_outputs(
            {
                "workspaceId": self.workspace_id,
                "workspaceName": self.workspace_name,
                "workspaceCustomerId": self.workspace_customer_id,
                "actionGroupId": self.action_group_id,
            }
        )

    def watch_cluster(
        self, cluster: KubernetesCluster, namespace: str, container: str = MUSE_CONTAINER
    ) -> ClusterWatch:
        """Container Insights for `cluster` into this workspace, alerts for Muse in `namespace` and for the
        cluster's nodes, and the Muse workbook. The cluster must have been created with this workspace's id
        (`KubernetesClusterArgs.log_analytics_workspace_id`), which enables the `omsagent` add-on."""
        name, args = self._name, self._args
        queries = MuseQueries(namespace=namespace, container=container)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        destination = "workspace"
        rule = monitor.DataCollectionRule(
            f"{name}-container-insights",
            data_collection_rule_name=args.data_collection_rule_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            description="Container Insights for the Muse AKS cluster (ContainerLogV2, inventory, perf).",
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                extensions=[
                    monitor.ExtensionDataSourceArgs(
                        name=CONTAINER_INSIGHTS_ASSOCIATION,
                        extension_name="ContainerInsights",
                        streams=list(CONTAINER_INSIGHTS_STREAMS),
                        extension_settings={
                            "dataCollectionSettings": {
                                "interval": "1m",
                                "namespaceFilteringMode": "Off",
                                "enableContainerLogV2": True,
                            }
                        },
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(
                        name=destination, workspace_resource_id=self.workspace.id
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(streams=list(CONTAINER_INSIGHTS_STREAMS), destinations=[destination])
            ],
            tags=tags,
            opts=child,
        )
        association = monitor.DataCollectionRuleAssociation(
            f"{name}-container-insights",
            association_name=CONTAINER_INSIGHTS_ASSOCIATION,
            resource_uri=cluster.id,
            data_collection_rule_id=rule.id,
            description="Container Insights of the Muse cluster; deleting it stops log collection.",
            opts=child,
        )

        def log_alert(alert: LogAlert) -> monitor.ScheduledQueryRule:
            return monitor.ScheduledQueryRule(
                f"{name}-{alert.key}",
                rule_name=f"{args.alert_rule_prefix}-{alert.key}",
                resource_group_name=args.resource_group_name,
                location=args.location,
                kind="LogAlert",
                display_name=f"{alert.title} ({namespace})",
                description=alert.description,
                enabled=True,
                severity=args.severities.of(alert.kind),
                evaluation_frequency=LOG_ALERT_FREQUENCY,
                window_size=LOG_ALERT_WINDOW,
                override_query_time_range=LOG_ALERT_LOOKBACK if alert.looks_back else None,
                scopes=[self.workspace.id],
                criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                    all_of=[
                        monitor.ConditionArgs(
                            query=alert.query(queries),
                            time_aggregation="Count",
                            operator="GreaterThan",
                            threshold=0,
                            failing_periods=monitor.ConditionFailingPeriodsArgs(
                                number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                            ),
                        )
                    ]
                ),
                # Stateful: one notification when it fires, one when a window is clean again.
                auto_mitigate=True,
                actions=monitor.ActionsArgs(
                    action_groups=[self.action_group.id],
                    custom_properties={"runbook": f"{RUNBOOK}-{alert.key}", "namespace": namespace},
                ),
                tags=tags,
                opts=child,
            )

        log_alerts = {alert.key: log_alert(alert) for alert in LOG_ALERTS}

        def metric_alert(alert: MetricAlert) -> monitor.MetricAlert:
            return monitor.MetricAlert(
                f"{name}-{alert.key}",
                rule_name=f"{args.alert_rule_prefix}-{alert.key}",
                resource_group_name=args.resource_group_name,
                location="global",
                description=(
                    f"{alert.title} above {alert.threshold}% (5-minute average) on a node of the Muse "
                    "cluster."
                ),
                enabled=True,
                severity=args.severities.of(alert.kind),
                evaluation_frequency=METRIC_ALERT_FREQUENCY,
                window_size=METRIC_ALERT_WINDOW,
                scopes=[cluster.id],
                target_resource_type=CLUSTER_METRIC_NAMESPACE,
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    all_of=[
                        monitor.MetricCriteriaArgs(
                            criterion_type="StaticThresholdCriterion",
                            name=alert.key,
                            metric_name=alert.metric,
                            metric_namespace=CLUSTER_METRIC_NAMESPACE,
                            operator="GreaterThan",
                            threshold=alert.threshold,
                            time_aggregation="Average",
                            # One time series per node, so the alert names the hot node.
                            dimensions=[
                                monitor.MetricDimensionArgs(name="node", operator="Include", values=["*"])
                            ],
                        )
                    ],
                ),
                auto_mitigate=True,
                actions=[
                    monitor.MetricAlertActionArgs(
                        action_group_id=self.action_group.id,
                        web_hook_properties={"runbook": f"{RUNBOOK}-{alert.key}"},
                    )
                ],
                tags=tags,
                opts=child,
            )

        metric_alerts = {alert.key: metric_alert(alert) for alert in METRIC_ALERTS}

        prometheus = None
        if args.monitor_workspace_name:
            urgency = {urgency: args.severities.of(kind) for urgency, kind in URGENCY_KIND.items()}
            prometheus = managed_prometheus(
                name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                workspace_name=args.monitor_workspace_name,
                cluster_id=cluster.id,
                cluster_name=cluster.azure_name,
                groups=[
                    *recommended_groups(),
                    slo.recording_rules(args.slo, namespace),
                    slo.alert_rules(args.slo, namespace, RUNBOOK),
                ],
                action_group_id=self.action_group.id,
                severities=urgency,
                tags=tags,
                opts=child,
            )
        availability = None
        if args.availability_test is not None:
            availability = probe(
                name,
                args.availability_test,
                resource_group_name=args.resource_group_name,
                location=args.location,
                component_name=args.app_insights_name,
                workspace_id=self.workspace.id,
                alert_rule_prefix=args.alert_rule_prefix,
                action_group_id=self.action_group.id,
                severity=args.severities.of(PROBE_ALERT.kind),
                runbook=RUNBOOK,
                tags=tags,
                opts=child,
            )

        title = f"Muse ({namespace})"
        monitor_workspace_id = prometheus.workspace.id if prometheus else pulumi.Output.from_input("")
        workbook = applicationinsights.Workbook(
            f"{name}-workbook",
            # Workbook names must be GUIDs; derived from the workspace and namespace, so stable per stack.
            resource_name_=str(uuid.uuid5(_WORKBOOK_NAMESPACE, f"{args.workspace_name}/{namespace}")),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="shared",
            category="workbook",
            display_name=title,
            source_id=self.workspace.id,
            serialized_data=pulumi.Output.all(self.workspace.id, monitor_workspace_id).apply(
                lambda ids: json.dumps(
                    workbook_content(
                        queries,
                        ids[0],
                        title,
                        monitor_workspace_id=ids[1],
                        slo_settings=args.slo,
                    ),
                    sort_keys=True,
                )
            ),
            tags=tags,
            opts=child,
        )
        return ClusterWatch(
            data_collection_rule=rule,
            association=association,
            log_alerts=log_alerts,
            metric_alerts=metric_alerts,
            workbook=workbook,
            prometheus=prometheus,
            probe=availability,
        )
