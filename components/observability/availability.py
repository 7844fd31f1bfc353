"""The external probe: a standard availability test of the public URL from several Azure locations, with TLS
validity and remaining-lifetime checks, and the metric alert on it.

Standard tests need an Application Insights component; it is workspace-based (its results land in the Log
Analytics workspace's `AppAvailabilityResults`, which the workbook reads). A web test is tied to its component
by the tag `hidden-link:<component id>: Resource` (learn.microsoft.com/azure/azure-monitor/app/availability,
"Standard test"; Microsoft.Insights/webtests@2022-06-15 in ../shared/bicep-types). The alert is the documented
availability alert: fires when the test fails in at least `FAILED_LOCATIONS` locations within 5 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import applicationinsights, monitor

from components.observability.alerts import PROBE_ALERT

FREQUENCY_SECONDS = 300
TIMEOUT_SECONDS = 30
# Days of certificate lifetime under which the test fails, so the alert fires this long before expiry.
CERTIFICATE_MIN_DAYS = 30
FAILED_LOCATIONS = 2
ALERT_FREQUENCY = "PT1M"
ALERT_WINDOW = "PT5M"


@dataclass(frozen=True)
class AvailabilityTest:
    """url: the https URL the test GETs (expects 200). locations: Azure Monitor test location ids."""

    url: str
    locations: Sequence[str]


@dataclass(frozen=True)
class Probe:
    component: applicationinsights.Component
    web_test: applicationinsights.WebTest
    alert: monitor.MetricAlert


def probe(
    name: str,
    test: AvailabilityTest,
    *,
    resource_group_name: pulumi.Input[str],
    location: str,
    component_name: str,
    workspace_id: pulumi.Input[str],
    alert_rule_prefix: str,
    action_group_id: pulumi.Input[str],
    severity: int,
    runbook: str,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> Probe:
    component = applicationinsights.Component(
        f"{name}-app-insights",
        resource_name_=component_name,
        resource_group_name=resource_group_name,
        location=location,
        kind="web",
        application_type="web",
        workspace_resource_id=workspace_id,
        ingestion_mode="LogAnalytics",
        # Nothing sends telemetry with the instrumentation key; only the availability service writes here.
        disable_local_auth=True,
        tags=dict(tags),
        opts=opts,
    )
    test_name = f"{alert_rule_prefix}-availability"
    web_test = applicationinsights.WebTest(
        f"{name}-availability",
        web_test_name=test_name,
        synthetic_monitor_id=test_name,
        resource_group_name=resource_group_name,
        location=location,
        kind=applicationinsights.WebTestKind.STANDARD,
        web_test_kind=applicationinsights.WebTestKind.STANDARD,
        description=(
            f"GET {test.url} every {FREQUENCY_SECONDS} s; alerts when {FAILED_LOCATIONS}+ locations fail."
        ),
        enabled=True,
        frequency=FREQUENCY_SECONDS,
        timeout=TIMEOUT_SECONDS,
        retry_enabled=True,
        locations=[applicationinsights.WebTestGeolocationArgs(location=where) for where in test.locations],
        request=applicationinsights.WebTestPropertiesRequestArgs(
            request_url=test.url, http_verb="GET", parse_dependent_requests=False, follow_redirects=False
        ),
        validation_rules=applicationinsights.WebTestPropertiesValidationRulesArgs(
            expected_http_status_code=200,
            s_sl_check=True,
            s_sl_cert_remaining_lifetime_check=CERTIFICATE_MIN_DAYS,
        ),
        tags=component.id.apply(lambda component_id: {**tags, f"hidden-link:{component_id}": "Resource"}),
        opts=opts,
    )
    alert = monitor.MetricAlert(
        f"{name}-{PROBE_ALERT.key}",
        rule_name=f"{alert_rule_prefix}-{PROBE_ALERT.key}",
        resource_group_name=resource_group_name,
        location="global",
        description=(
            f"{test.url} failed (status, TLS, or certificate valid < {CERTIFICATE_MIN_DAYS} days) from "
            f"{FAILED_LOCATIONS}+ locations."
        ),
        enabled=True,
        severity=severity,
        evaluation_frequency=ALERT_FREQUENCY,
        window_size=ALERT_WINDOW,
        scopes=[web_test.id, component.id],
        criteria=monitor.WebtestLocationAvailabilityCriteriaArgs(
            odata_type="Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria",
            web_test_id=web_test.id,
            component_id=component.id,
            failed_location_count=FAILED_LOCATIONS,
        ),
        auto_mitigate=True,
        actions=[
            monitor.MetricAlertActionArgs(
                action_group_id=action_group_id,
                web_hook_properties={"runbook": f"{runbook}-{PROBE_ALERT.key}"},
            )
        ],
        tags=dict(tags),
        opts=opts,
    )
    return Probe(component, web_test, alert)
