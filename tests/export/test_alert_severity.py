"""The Bicep mapping gives each alert the severity of its declared kind (components/observability/alerts.py),
per tier, instead of guessing it from the resource's name."""

from __future__ import annotations

import dataclasses

import pytest

from components.observability import alerts
from components.observability.alerts import (
    LOG_ALERTS,
    METRIC_ALERTS,
    PROBE_ALERT,
    alert_kind,
    prometheus_alert_kinds,
)
from export.resource_types import MAPPINGS, SEVERITY
from offline.captured import StackPlan

LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
RULE_GROUP = "azure-native:alertsmanagement:PrometheusRuleGroup"


def _bicep_severities(plans: tuple[StackPlan, ...]) -> dict[str, object]:
    """The severity the Bicep mapping binds for every alert of every plan, by logical name."""
    found: dict[str, object] = {}
    for stack_plan in plans:
        for token in (LOG_ALERT, METRIC_ALERT):
            for resource in stack_plan.plan.of_type(token):
                found[resource.name] = MAPPINGS[token].bindings_for(resource)["properties.severity"]
    return found


def test_the_bicep_severity_is_the_declared_kind(
    plans: tuple[StackPlan, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    severities = _bicep_severities(plans)
    assert severities == {name: SEVERITY[alert_kind(name)] for name in severities}
    assert {f"observability-{a.key}" for a in (*LOG_ALERTS, *METRIC_ALERTS, PROBE_ALERT)} == set(severities)
    # Negative control: re-class one alert in its definition and the Bicep follows (no name is guessed).
    flipped = dataclasses.replace(LOG_ALERTS[0], kind="capacity")
    monkeypatch.setattr(alerts, "LOG_ALERTS", (flipped, *LOG_ALERTS[1:]))
    assert SEVERITY["capacity"] != SEVERITY["failure"]
    assert _bicep_severities(plans)[f"observability-{flipped.key}"] == SEVERITY["capacity"]


def test_prometheus_alert_severities_follow_their_urgency(plans: tuple[StackPlan, ...]) -> None:
    kinds = prometheus_alert_kinds()
    assert kinds["MuseAvailabilityBurnPage"] == "failure" and kinds["MuseLatencyBurnTicket"] == "capacity"
    groups = [g for p in plans for g in p.plan.of_type(RULE_GROUP)]
    assert groups
    for group in groups:
        bindings = MAPPINGS[RULE_GROUP].bindings_for(group)
        for i, rule in enumerate(group.get("rules")):
            if "alert" in rule:
                assert bindings[f"properties.rules.{i}.severity"] == SEVERITY[kinds[rule["alert"]]]
