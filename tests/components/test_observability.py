"""Observability component in isolation (with the cluster it watches), under the offline mocks, with the
config of each stack."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import uuid
from pathlib import Path

import pytest

from components.kubernetes_cluster import KubernetesCluster
from components.observability import (
    CONTAINER_INSIGHTS_ASSOCIATION,
    AlertSeverities,
    Observability,
)
from components.observability.alerts import LOG_ALERTS, METRIC_ALERTS, PROBE_ALERT, alert_kind
from components.observability.queries import MuseQueries
from offline.engine import OfflinePlan, PlannedResource, run_offline
from offline.mocks import SUBSCRIPTION_ID
from stack.args import alert_severities, cluster_args, observability_args
from stack.config import StackConfig, load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from stack.naming import ResourceNames
from stack.tags import standard_tags

WORKSPACE = "azure-native:operationalinsights:Workspace"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
DCR = "azure-native:monitor:DataCollectionRule"
DCRA = "azure-native:monitor:DataCollectionRuleAssociation"
WORKBOOK = "azure-native:applicationinsights:Workbook"
CLUSTER = "azure-native:resources:Resource"  # the AKS cluster (components/kubernetes_cluster.py)
MONITOR_WORKSPACE = "azure-native:monitor:AzureMonitorWorkspace"
DCE = "azure-native:monitor:DataCollectionEndpoint"
RULE_GROUP = "azure-native:alertsmanagement:PrometheusRuleGroup"
PROCESSING_RULE = "azure-native:alertsmanagement:AlertProcessingRuleByName"
COMPONENT = "azure-native:applicationinsights:Component"
WEB_TEST = "azure-native:applicationinsights:WebTest"
CI_RULE = (
    "obs-container-insights"  # the Container Insights DCR and association (the others: managed Prometheus)
)
GROUP = "rg-test"
EMAILS = ("oncall@example.com", "platform-team@example.org")


def _config(stack: str, emails: tuple[str, ...] | None = None) -> StackConfig:
    """The stack's config; with `emails`, those receivers instead of the stack file's (prod needs one)."""
    values = dict(read_stack(stack).config)
    if emails is not None:
        values["muse:alertEmails"] = json.dumps(list(emails))
    return load_stack_config(stack, values)


def _plan(stack: str, emails: tuple[str, ...] | None = None) -> OfflinePlan:
    config = _config(stack, emails)
    names = ResourceNames.for_stack(config.environment, config.name_suffix)
    tags = standard_tags(config)

    def program() -> None:
        observability = Observability("obs", observability_args(config, names, GROUP, tags))
        cluster = KubernetesCluster(
            "cluster",
            cluster_args(config, names, GROUP, tags, log_analytics_workspace_id=observability.workspace_id),
        )
        observability.watch_cluster(cluster, namespace=names.namespace)

    return run_offline(program, project="muse", stack=stack)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def plan(stack: str) -> OfflinePlan:
    return _plan(stack, EMAILS)


def _names(stack: str) -> ResourceNames:
    return ResourceNames.for_stack(stack, read_stack(stack).config["muse:nameSuffix"])


def _minutes(duration: str) -> int:
    """ISO 8601 durations as Azure Monitor writes them (PT1M, PT5M, PT1H)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", duration)
    assert match, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def _arm_id(provider_path: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{GROUP}/providers/{provider_path}"


def _alerts(plan: OfflinePlan) -> list[PlannedResource]:
    return plan.of_type(LOG_ALERT) + plan.of_type(METRIC_ALERT)


def _node_alerts(plan: OfflinePlan) -> list[PlannedResource]:
    """The cluster's platform-metric alerts (the availability test's alert is a metric alert too)."""
    keys = {f"obs-{a.key}" for a in METRIC_ALERTS}
    return [a for a in plan.of_type(METRIC_ALERT) if a.name in keys]


def _declared(stack: str) -> set[str]:
    """Logical names of the alerts components/observability/alerts.py declares for this stack (the probe's
    only where muse:availabilityTest is on)."""
    probe = (PROBE_ALERT,) if _config(stack).availability_test else ()
    return {f"obs-{a.key}" for a in (*LOG_ALERTS, *METRIC_ALERTS, *probe)}


@pytest.mark.slow  # a program run per stack
def test_workspace_retention_follows_the_stack_and_shared_keys_are_off(stack: str, plan: OfflinePlan) -> None:
    workspace = plan.one(WORKSPACE)
    assert workspace.get("workspaceName") == _names(stack).log_analytics
    assert workspace.get("retentionInDays") == {"dev": 30, "prod": 90}[stack]
    assert workspace.get("sku.name") == "PerGB2018"
    assert workspace.get("features.disableLocalAuth") is True


def test_retention_is_read_from_config() -> None:
    config = _config("dev").model_copy(update={"log_retention_days": 365})
    args = observability_args(config, _names("dev"), GROUP, standard_tags(config))
    assert args.retention_in_days == 365


def test_cluster_ships_container_insights_to_this_workspace(stack: str, plan: OfflinePlan) -> None:
    names = _names(stack)
    workspace_id = _arm_id(f"Microsoft.OperationalInsights/workspaces/{names.log_analytics}")
    cluster_id = _arm_id(f"Microsoft.ContainerService/managedClusters/{names.cluster}")
    assert plan.one(WORKSPACE).get("workspaceName") == names.log_analytics
    omsagent = plan.one(CLUSTER).get("properties.addonProfiles.omsagent")
    assert omsagent == {
        "enabled": True,
        "config": {"logAnalyticsWorkspaceResourceID": workspace_id, "useAADAuth": "true"},
    }
    rule = plan.one(DCR, CI_RULE)
    [destination] = rule.get("destinations.logAnalytics")
    assert destination["workspaceResourceId"] == workspace_id
    assert rule.get("dataFlows") == [
        {"streams": rule.get("dataSources.extensions.0.streams"), "destinations": [destination["name"]]}
    ]
    assert rule.get("dataSources.extensions.0.extensionName") == "ContainerInsights"
    assert rule.get("dataSources.extensions.0.extensionSettings.dataCollectionSettings.enableContainerLogV2")
    association = plan.one(DCRA, CI_RULE)
    assert (
        association.get("associationName") == CONTAINER_INSIGHTS_ASSOCIATION == "ContainerInsightsExtension"
    )
    assert association.get("resourceUri") == cluster_id
    assert association.get("dataCollectionRuleId") == _arm_id(
        f"Microsoft.Insights/dataCollectionRules/{names.data_collection_rule}"
    )


def test_the_rule_streams_every_table_the_queries_read(plan: OfflinePlan) -> None:
    streams = set(plan.one(DCR, CI_RULE).get("dataFlows.0.streams"))
    tables = set()
    for query in MuseQueries("muse-dev").all().values():
        # A table starts a pipeline: alone on its line, or as the value of a `let`.
        tables |= set(re.findall(r"(?m)^(?:let \w+ = )?([A-Z]\w+)$", query))
    assert tables == {"ContainerLogV2", "KubePodInventory", "Perf"}
    assert {f"Microsoft-{table}" for table in tables} <= streams


def test_every_alert_runs_at_least_every_5_minutes_over_at_most_5(plan: OfflinePlan) -> None:
    alerts = _alerts(plan)
    # The declared log and node alerts, and where availabilityTest is on (prod) the probe's alert.
    assert {a.name for a in alerts} == _declared(plan.stack)
    assert bool(_config("prod").availability_test) and not _config("dev").availability_test
    for alert in alerts:
        assert _minutes(alert.get("evaluationFrequency")) <= 5, alert.name
        assert _minutes(alert.get("windowSize")) <= 5, alert.name
        assert alert.get("enabled") is True
    errors = plan.one(LOG_ALERT, "obs-muse-errors")
    assert (errors.get("evaluationFrequency"), errors.get("windowSize")) == ("PT5M", "PT5M")
    # The error query counts lines by arrival over the last 5 minutes; the 10-minute event-time range only
    # lets a line that arrived late still be seen.
    assert _minutes(errors.get("overrideQueryTimeRange")) == 10
    assert "| where ingestion_time() > ago(5m)" in errors.get("criteria.allOf.0.query")


def test_every_alert_notifies_the_action_group(stack: str, plan: OfflinePlan) -> None:
    group_id = _arm_id(f"Microsoft.Insights/actionGroups/{_names(stack).action_group}")
    assert plan.one(ACTION_GROUP).get("actionGroupName") == _names(stack).action_group
    for alert in plan.of_type(LOG_ALERT):
        assert alert.get("actions.actionGroups") == [group_id], alert.name
        assert alert.get("actions.customProperties.runbook").startswith("docs/runbook.md#")
    for alert in plan.of_type(METRIC_ALERT):
        assert [a["actionGroupId"] for a in alert.get("actions")] == [group_id], alert.name


def test_log_alerts_query_the_workspace_for_this_stacks_namespace_only(stack: str, plan: OfflinePlan) -> None:
    names = _names(stack)
    other = _names("prod" if stack == "dev" else "dev").namespace
    queries = MuseQueries(names.namespace)
    expected = {f"obs-{a.key}": a.query(queries) for a in LOG_ALERTS}
    assert set(expected.values()) <= set(queries.all().values()) | {queries.error_lines_alert}
    workspace_id = _arm_id(f"Microsoft.OperationalInsights/workspaces/{names.log_analytics}")
    for alert in plan.of_type(LOG_ALERT):
        query = alert.get("criteria.allOf.0.query")
        assert query == expected[alert.name]  # the KQL of observability_queries, not a copy
        assert f'"{names.namespace}"' in query and other not in query
        assert re.search(rf'\b(PodNamespace|Namespace) == "{names.namespace}"', query)
        assert alert.get("scopes") == [workspace_id]
        assert alert.get("kind") == "LogAlert"
        condition = alert.get("criteria.allOf.0")
        assert (condition["timeAggregation"], condition["operator"], condition["threshold"]) == (
            "Count",
            "GreaterThan",
            0,
        )


def test_metric_alerts_watch_node_cpu_and_memory_on_the_cluster(stack: str, plan: OfflinePlan) -> None:
    cluster_id = _arm_id(f"Microsoft.ContainerService/managedClusters/{_names(stack).cluster}")
    metrics = {}
    for alert in _node_alerts(plan):
        assert alert.get("scopes") == [cluster_id]
        [criterion] = alert.get("criteria.allOf")
        assert criterion["metricNamespace"] == "Microsoft.ContainerService/managedClusters"
        assert criterion["dimensions"] == [{"name": "node", "operator": "Include", "values": ["*"]}]
        metrics[criterion["metricName"]] = (criterion["operator"], criterion["threshold"])
    assert metrics == {a.metric: ("GreaterThan", a.threshold) for a in METRIC_ALERTS}


def test_severities_per_environment(stack: str, plan: OfflinePlan) -> None:
    expected = {"dev": (3, 3), "prod": (1, 2)}[stack]
    severities = AlertSeverities(*expected)
    # Each alert as loud as its kind in alerts.py says (the public URL failing is a failure, not capacity).
    for alert in _alerts(plan):
        assert alert.get("severity") == severities.of(alert_kind(alert.name)), alert.name
    assert alert_severities(_config(stack)) == severities
    dev, prod = alert_severities(_config("dev")), alert_severities(_config("prod"))
    assert prod.failure < dev.failure and prod.capacity < dev.capacity  # lower is more severe


def test_action_group_emails_every_configured_address(stack: str, plan: OfflinePlan) -> None:
    group = plan.one(ACTION_GROUP)
    receivers = group.get("emailReceivers")
    assert [r["emailAddress"] for r in receivers] == list(EMAILS)
    assert len({r["name"] for r in receivers}) == len(EMAILS)
    assert all(r["useCommonAlertSchema"] is True for r in receivers)
    assert group.get("groupShortName") == f"muse-{stack}" and len(group.get("groupShortName")) <= 12
    assert group.get("location") == "global"


@pytest.mark.slow  # a program run
def test_action_group_is_valid_without_addresses() -> None:
    plan = _plan("dev", emails=())
    assert plan.one(ACTION_GROUP).get("emailReceivers") == []
    assert plan.one(ACTION_GROUP).get("enabled") is True
    assert all(len(a.get("actions.actionGroups") or a.get("actions")) == 1 for a in _alerts(plan))


def test_no_address_is_hard_coded() -> None:
    source = inspect.getsource(importlib.import_module("components.observability"))
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", source)


def test_workbook_tiles_use_the_alert_kql(stack: str, plan: OfflinePlan) -> None:
    names = _names(stack)
    workbook = plan.one(WORKBOOK)
    workspace_id = _arm_id(f"Microsoft.OperationalInsights/workspaces/{names.log_analytics}")
    assert workbook.get("sourceId") == workspace_id
    assert uuid.UUID(workbook.get("resourceName"))  # Azure requires a GUID name
    content = json.loads(workbook.get("serializedData"))
    tiles = {item["name"]: item["content"] for item in content["items"] if item["type"] == 3}
    queries = MuseQueries(names.namespace)
    monitor_workspace_id = _arm_id(f"Microsoft.Monitor/accounts/{names.monitor_workspace}")
    # The SLO tiles read the Prometheus recording rules from the Azure Monitor workspace.
    slo_tiles = {"error-budget", "burn-rate", "version-p95", "version-errors"}
    for name in slo_tiles:
        tile = tiles.pop(name)
        assert tile["queryType"] == 16 and tile["crossComponentResources"] == [monitor_workspace_id], name
        assert f'namespace="{names.namespace}"' in tile["query"], name
    assert tiles.pop("probe")["query"].startswith("AppAvailabilityResults")
    assert {name: tile["query"] for name, tile in tiles.items()} == {
        "request-rate": queries.request_rate,
        "error-rate": queries.error_rate,
        "latency-p95": queries.latency_p95,
        "restarts": queries.restarts,
        "pods-not-ready": queries.pods_not_ready,
        "pod-cpu": queries.pod_cpu,
        "pod-memory": queries.pod_memory,
        "recent-errors": queries.recent_errors,
    }
    alerts = {a.name: a.get("criteria.allOf.0.query") for a in plan.of_type(LOG_ALERT)}
    assert tiles["restarts"]["query"] == alerts["obs-muse-restarts"]
    assert tiles["pods-not-ready"]["query"] == alerts["obs-muse-pods-not-ready"]
    # The recent-errors tile and the error alert share the same filter, line for line.
    assert alerts["obs-muse-errors"].startswith(queries.error_lines)
    assert tiles["recent-errors"]["query"].startswith(queries.error_lines)
    for tile in tiles.values():
        assert tile["crossComponentResources"] == [workspace_id]
        assert tile["timeContextFromParameter"] == "TimeRange"
        assert tile["queryType"] == 0


@pytest.mark.slow  # two program runs per stack
def test_workbook_name_is_stable_and_per_stack(plan: OfflinePlan) -> None:
    again = _plan(plan.stack, EMAILS)
    assert again.one(WORKBOOK).get("resourceName") == plan.one(WORKBOOK).get("resourceName")
    other = _plan("prod" if plan.stack == "dev" else "dev", EMAILS)
    assert other.one(WORKBOOK).get("resourceName") != plan.one(WORKBOOK).get("resourceName")


def test_every_taggable_resource_is_tagged(stack: str, plan: OfflinePlan) -> None:
    config = _config(stack)
    observability = plan.one("muse:azure:Observability")
    children = [r for r in plan.resources if r.parent == observability.urn]
    assert {r.type for r in children} == {
        WORKSPACE,
        ACTION_GROUP,
        LOG_ALERT,
        METRIC_ALERT,
        DCR,
        DCRA,
        WORKBOOK,
        MONITOR_WORKSPACE,
        DCE,
        RULE_GROUP,
        PROCESSING_RULE,
        *((COMPONENT, WEB_TEST) if stack == "prod" else ()),
    }
    for resource in children:
        _, module, name = resource.type.split(":")
        sdk = importlib.import_module(f"pulumi_azure_native.{module}")
        args_class = getattr(sdk, f"{name}InitArgs", None) or getattr(sdk, f"{name}Args")
        if resource.type == WEB_TEST:
            # Plus the link to its Application Insights component, which Azure requires.
            component_id = _arm_id(f"Microsoft.Insights/components/{_names(stack).app_insights}")
            assert resource.get("tags") == {
                **standard_tags(config),
                f"hidden-link:{component_id}": "Resource",
            }
        elif "tags" in inspect.signature(args_class.__init__).parameters:
            assert resource.get("tags") == dict(standard_tags(config)), resource.urn
        else:
            assert resource.type == DCRA  # an extension resource: ARM gives it no tags


def test_bad_namespace_is_rejected_before_it_reaches_kql() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes name"):
        MuseQueries('muse-dev" or true or "')


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_a_runbook_section_that_exists(plan: OfflinePlan) -> None:
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    anchors = {_slug(h) for h in re.findall(r"(?m)^#{2,4} (.+)$", runbook)}
    links = [a.get("actions.customProperties.runbook") for a in plan.of_type(LOG_ALERT)]
    links += [a.get("actions.0.webHookProperties.runbook") for a in plan.of_type(METRIC_ALERT)]
    links += [
        rule["annotations"]["runbook"]
        for group in plan.of_type(RULE_GROUP)
        for rule in group.get("rules")
        if "alert" in rule and rule["annotations"]["runbook"].startswith("docs/")
    ]
    # Every declared alert has its section, whichever stack creates it (the probe's only in prod).
    assert {f"when-an-alert-fires-{a.key}" for a in (*LOG_ALERTS, *METRIC_ALERTS, PROBE_ALERT)} <= anchors
    assert len(links) >= len(_alerts(plan))
    for link in links:
        path, anchor = link.split("#")
        assert path == "docs/runbook.md"
        assert anchor in anchors, link
