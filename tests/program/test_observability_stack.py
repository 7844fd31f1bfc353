"""Observability in the whole program, for both stacks: what `pulumi up` would create around the cluster."""

from __future__ import annotations

import re

import pytest

from components.observability.alerts import LOG_ALERTS, METRIC_ALERTS, PROBE_ALERT, alert_kind
from offline.engine import OfflinePlan, run_stack
from offline.mocks import SUBSCRIPTION_ID
from offline.plan import render_text
from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from stack.naming import ResourceNames

LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"
METRIC_ALERT = "azure-native:monitor:MetricAlert"


def _names(stack: str) -> ResourceNames:
    return ResourceNames.for_stack(stack, read_stack(stack).config["muse:nameSuffix"])


def _id(names: ResourceNames, provider_path: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{names.resource_group}/providers/{provider_path}"


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"PT(\d+)M", duration)
    assert match, duration
    return int(match.group(1))


def test_the_cluster_and_its_collection_rule_point_at_this_stacks_workspace(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    workspace_id = _id(names, f"Microsoft.OperationalInsights/workspaces/{names.log_analytics}")
    cluster = plan.one("azure-native:resources:Resource")
    assert cluster.get("properties.addonProfiles.omsagent.config") == {
        "logAnalyticsWorkspaceResourceID": workspace_id,
        "useAADAuth": "true",
    }
    assert (
        plan.one("azure-native:monitor:DataCollectionRule", "observability-container-insights").get(
            "destinations.logAnalytics.0.workspaceResourceId"
        )
        == workspace_id
    )
    association = plan.one(
        "azure-native:monitor:DataCollectionRuleAssociation", "observability-container-insights"
    )
    assert association.get("resourceUri") == _id(
        names, f"Microsoft.ContainerService/managedClusters/{names.cluster}"
    )
    assert plan.outputs["logAnalyticsWorkspaceName"].value == names.log_analytics
    assert plan.outputs["logAnalyticsWorkspaceId"].value == workspace_id


def test_retention_per_stack(plans: dict[str, OfflinePlan]) -> None:
    retention = {
        stack: plan.one("azure-native:operationalinsights:Workspace").get("retentionInDays")
        for stack, plan in plans.items()
    }
    assert (
        retention
        == {stack: int(read_stack(stack).config["muse:logRetentionDays"]) for stack in plans}
        == {"dev": 30, "prod": 90}
    )


def test_every_alert_is_fast_scoped_and_notifies_the_action_group(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    group_id = _id(names, f"Microsoft.Insights/actionGroups/{names.action_group}")
    other_namespace = _names("prod" if plan.stack == "dev" else "dev").namespace
    log_alerts, metric_alerts = plan.of_type(LOG_ALERT), plan.of_type(METRIC_ALERT)
    # The declared alerts, and in prod the external probe's alert (muse:availabilityTest).
    probe = [PROBE_ALERT] if plan.stack == "prod" else []
    assert {a.name for a in log_alerts} == {f"observability-{a.key}" for a in LOG_ALERTS}
    assert {a.name for a in metric_alerts} == {f"observability-{a.key}" for a in (*METRIC_ALERTS, *probe)}
    for alert in log_alerts + metric_alerts:
        assert _minutes(alert.get("evaluationFrequency")) <= 5 and _minutes(alert.get("windowSize")) <= 5
    for alert in log_alerts:
        query = alert.get("criteria.allOf.0.query")
        assert f'"{names.namespace}"' in query and other_namespace not in query, alert.name
        assert alert.get("actions.actionGroups") == [group_id]
    for alert in metric_alerts:
        assert [a["actionGroupId"] for a in alert.get("actions")] == [group_id]


def test_prod_alerts_are_more_severe_than_dev(plans: dict[str, OfflinePlan]) -> None:
    def severities(stack: str) -> dict[str, int]:
        plan = plans[stack]
        alerts = plan.of_type(LOG_ALERT) + plan.of_type(METRIC_ALERT)
        return {a.name: a.get("severity") for a in alerts}

    # Prod: a failure (Muse, or the public URL down: the probe) 1, node pressure 2; dev 3 for both.
    loudness = {"prod": {"failure": 1, "capacity": 2}, "dev": {"failure": 3, "capacity": 3}}
    for stack in ENVIRONMENTS:
        for name, severity in severities(stack).items():
            assert severity == loudness[stack][alert_kind(name)], (stack, name)
    assert set(severities("prod").values()) == {1, 2}


@pytest.mark.slow  # a program run per stack
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_alert_emails_from_config_reach_the_action_group(stack: str) -> None:
    plan = run_stack(stack, overrides={"muse:alertEmails": '["oncall@example.com"]'})
    receivers = plan.one("azure-native:monitor:ActionGroup").get("emailReceivers")
    assert [r["emailAddress"] for r in receivers] == ["oncall@example.com"]


def test_plan_shows_what_a_reviewer_checks(plans: dict[str, OfflinePlan]) -> None:
    text = render_text(plans["prod"])
    for row in (
        r"retentionInDays +90",
        r"evaluationFrequency +PT5M",
        r"windowSize +PT5M",
        r"severity +1",
        r"namespace +muse-prod",
        r"actionGroups +ag-muse-prod-m7k2",
        r"receivers +email oncall@example\.com",  # the committed placeholder (scripts/ci/placeholders.py)
        r"managed Prometheus +true",
        r"ruleGroupName +muse-slo-alerts-aks-muse-prod-m7k2",
        r"rules +0 recording, 4 alerting: MuseAvailabilityBurnPage, MuseAvailabilityBurnTicket, ",
        r"requestUrl +https://muse.example.com/readyz",
        r"sSLCertRemainingLifetimeCheck +30",
        r"locations +5: ",
        r"alertProcessingRuleName +alert-muse-prod-m7k2-maintenance",
        r"containerLogV2 +true",
        r"addons +azureKeyvaultSecretsProvider, omsagent",
    ):
        assert re.search(row, text), row
    assert text.index("muse:azure:Observability") < text.index("muse:azure:KubernetesCluster")
