"""Live signals in the whole program, both stacks: managed Prometheus and its rules, scraping of the
Muse pods'
metrics port, the external probe, the receivers and the maintenance rule, as `pulumi up` would create them.
Each check also runs against the config or object that breaks it (the negative controls)."""

from __future__ import annotations

import json

import pytest

from components.muse_workload import manifests
from components.observability import slo
from components.observability.prometheus import PROMETHEUS_STREAM
from offline.engine import OfflinePlan, run_stack
from offline.mocks import SUBSCRIPTION_ID
from stack.args import slo_settings
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from stack.naming import ResourceNames

RULE_GROUP = "azure-native:alertsmanagement:PrometheusRuleGroup"
DCR = "azure-native:monitor:DataCollectionRule"
DCRA = "azure-native:monitor:DataCollectionRuleAssociation"
WEB_TEST = "azure-native:applicationinsights:WebTest"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
MAINTENANCE = "azure-native:alertsmanagement:AlertProcessingRuleByName"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _names(stack: str) -> ResourceNames:
    return ResourceNames.for_stack(stack, read_stack(stack).config["muse:nameSuffix"])


def _id(names: ResourceNames, provider_path: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{names.resource_group}/providers/{provider_path}"


def test_the_metrics_add_on_sends_to_this_stacks_azure_monitor_workspace(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    workspace_id = _id(names, f"Microsoft.Monitor/accounts/{names.monitor_workspace}")
    cluster_id = _id(names, f"Microsoft.ContainerService/managedClusters/{names.cluster}")
    assert plan.one("azure-native:resources:Resource").get("properties.azureMonitorProfile.metrics.enabled")
    msprom = f"MSProm-westeurope-{names.cluster}"
    rule = plan.one(DCR, "observability-prometheus")
    assert rule.get("dataCollectionRuleName") == msprom and rule.get("kind") == "Linux"
    assert rule.get("dataCollectionEndpointId") == _id(
        names, f"Microsoft.Insights/dataCollectionEndpoints/{msprom}"
    )
    assert rule.get("dataSources.prometheusForwarder.0.streams") == [PROMETHEUS_STREAM]
    [account] = rule.get("destinations.monitoringAccounts")
    assert account["accountResourceId"] == workspace_id
    assert rule.get("dataFlows") == [{"streams": [PROMETHEUS_STREAM], "destinations": [account["name"]]}]
    association = plan.one(DCRA, "observability-prometheus")
    assert association.get("resourceUri") == cluster_id
    assert association.get("dataCollectionRuleId") == _id(
        names, f"Microsoft.Insights/dataCollectionRules/{msprom}"
    )


def test_rule_groups_are_the_recommended_ones_and_the_slos_scoped_to_this_cluster(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    groups = {g.get("ruleGroupName"): g for g in plan.of_type(RULE_GROUP)}
    assert set(groups) == {
        f"{group}-{names.cluster}"
        for group in (
            "NodeRecordingRulesRuleGroup",
            "KubernetesRecordingRulesRuleGroup",
            "KubernetesAlertsRuleGroup",
            "muse-slo-records",
            "muse-slo-alerts",
        )
    }
    workspace_id = _id(names, f"Microsoft.Monitor/accounts/{names.monitor_workspace}")
    group_id = _id(names, f"Microsoft.Insights/actionGroups/{names.action_group}")
    for group in groups.values():
        assert group.get("clusterName") == names.cluster and group.get("interval") == "PT1M"
        assert group.get("scopes")[0] == workspace_id
        for rule in group.get("rules"):
            if "alert" in rule:
                assert [a["actionGroupId"] for a in rule["actions"]] == [group_id], rule["alert"]
    # The SLO rules are exactly slo.py's for this stack's namespace and config, not a copy.
    config = load_stack_config(plan.stack, read_stack(plan.stack).config)
    records = slo.recording_rules(slo_settings(config), names.namespace)
    planned = groups[f"muse-slo-records-{names.cluster}"].get("rules")
    assert [(r["record"], r["expression"]) for r in planned] == [
        (r.record, r.expression) for r in records.rules
    ]
    other = _names("prod" if plan.stack == "dev" else "dev").namespace
    raw = [r["expression"] for r in planned if "muse_http_" in r["expression"]]
    assert raw and all(f'namespace="{names.namespace}"' in e for e in raw)
    assert not any(other in r["expression"] for r in planned)


def test_a_page_is_a_failure_and_a_ticket_less(plans: dict[str, OfflinePlan]) -> None:
    def severities(stack: str) -> dict[str, int]:
        group = next(
            g
            for g in plans[stack].of_type(RULE_GROUP)
            if g.get("ruleGroupName").startswith("muse-slo-alerts")
        )
        return {r["alert"]: r["severity"] for r in group.get("rules")}

    assert severities("prod") == {
        "MuseAvailabilityBurnPage": 1,
        "MuseAvailabilityBurnTicket": 2,
        "MuseLatencyBurnPage": 1,
        "MuseLatencyBurnTicket": 2,
    }
    assert set(severities("dev").values()) == {3}


def test_muse_pods_are_scraped_on_the_metrics_port_and_only_the_scraper_may_reach_it(
    plan: OfflinePlan,
) -> None:
    names = _names(plan.stack)
    template = plan.one(DEPLOYMENT).get("spec.template")
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
    }
    [container] = template["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    settings = plan.one(CONFIGMAP, "muse-metricssettings")
    assert (settings.get("metadata.name"), settings.get("metadata.namespace")) == (
        "ama-metrics-settings-configmap",
        "kube-system",
    )
    assert (
        settings.get("data")["pod-annotation-based-scraping"]
        == f'podannotationnamespaceregex = "{names.namespace}"'
    )
    ingress = plan.one(POLICY, "muse-networkpolicy").get("spec.ingress")
    scraper = [rule for rule in ingress if rule["ports"] == [{"protocol": "TCP", "port": 9090}]]
    assert scraper and scraper[0]["from"][0]["podSelector"] == {"matchLabels": {"rsName": "ama-metrics"}}
    # Negative control: the Gateway's rule does not open the metrics port to the internet-facing proxy.
    gateway_rules = [rule for rule in ingress if rule not in scraper]
    assert all(port["port"] == manifests.PORT for rule in gateway_rules for port in rule["ports"])


def test_prod_is_probed_from_outside_with_tls_lifetime_and_dev_is_not(plans: dict[str, OfflinePlan]) -> None:
    prod = plans["prod"]
    test = prod.one(WEB_TEST)
    assert test.get("webTestKind") == "standard" and test.get("kind") == "standard"
    assert test.get("request.requestUrl") == f"https://{read_stack('prod').config['muse:ingressHost']}/readyz"
    assert test.get("frequency") == 300
    assert len({where["location"] for where in test.get("locations")}) >= 5
    assert test.get("validationRules") == {
        "expectedHttpStatusCode": 200,
        "sSLCheck": True,
        "sSLCertRemainingLifetimeCheck": 30,
    }
    alert = prod.one(METRIC_ALERT, "observability-availability")
    assert alert.get("criteria.odataType") == "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"
    assert alert.get("criteria.webTestId") in alert.get("scopes")
    assert alert.get("criteria.failedLocationCount") == 2
    assert plans["dev"].of_type(WEB_TEST) == []


@pytest.mark.slow  # a program run
def test_dev_may_turn_the_probe_on_with_a_host() -> None:
    plan = run_stack(
        "dev",
        overrides={
            "muse:availabilityTest": True,
            "muse:ingressHost": "muse-dev.example.org",
            "muse:ingressTlsCertificate": "muse-dev-tls",
            "muse:ingressTlsCertificateIssuer": "Self",
        },
    )
    assert plan.one(WEB_TEST).get("request.requestUrl") == "https://muse-dev.example.org/readyz"


@pytest.mark.slow  # a program run
def test_webhook_receivers_come_from_config_and_their_urls_stay_secret(
    plans: dict[str, OfflinePlan],
) -> None:
    plan = run_stack("prod", overrides={"muse:alertWebhooks": {"secure": "v1:AAAA"}})
    group = plan.one(ACTION_GROUP)
    # The engine masks the whole receiver list: the URL inside is a Pulumi secret, in the plan and the state.
    assert "webhookReceivers" in group.secret_paths
    assert "offline-placeholder" not in json.dumps(group.properties)
    # Negative control: without the key there is no secret and no receiver.
    plain = plans["prod"].one(ACTION_GROUP)
    assert plain.get("webhookReceivers") == [] and "webhookReceivers" not in plain.secret_paths


@pytest.mark.slow  # a program run
def test_the_maintenance_rule_is_off_unless_config_turns_it_on(plans: dict[str, OfflinePlan]) -> None:
    for plan in plans.values():
        rule = plan.one(MAINTENANCE)
        assert rule.get("properties.enabled") is False
        assert rule.get("properties.actions") == [{"actionType": "RemoveAllActionGroups"}]
        names = _names(plan.stack)
        assert rule.get("properties.scopes") == [
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{names.resource_group}"
        ]
    on = run_stack("dev", overrides={"muse:maintenanceSuppressAlerts": True})
    assert on.one(MAINTENANCE).get("properties.enabled") is True


@pytest.mark.slow  # a program run per stack
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_no_probe_or_prometheus_without_its_config(stack: str) -> None:
    """The negative control of the plan checks above: without the probe config there is no web test."""
    overrides: dict[str, object] = {"muse:availabilityTest": False}
    if stack == "prod":
        with pytest.raises(Exception, match="the production tier is watched from outside"):
            run_stack(stack, overrides=overrides)
        return
    assert run_stack(stack, overrides=overrides).of_type(WEB_TEST) == []
