"""The per-type mappings: one entry per azure-native resource type the program deploys.

Adding a resource type to the program = adding one `TypeMapping` here (the export stops and says so until
then). Only what the Bicep cannot take from the plan is written down: where the name/parent/scope are, and
which values come from parameters. Order here is the order of the resources in main.bicep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.kubernetes_cluster import AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE
from components.muse_workload.manifests import GATEWAY_NAMESPACE_SUFFIX, READINESS_PATH
from components.observability.alerts import ALERT_KINDS, AlertKind, alert_kind, prometheus_alert_kinds
from components.observability.availability import FAILED_LOCATIONS, FREQUENCY_SECONDS
from export.bicep_syntax import Cond, Expr, For, camel
from export.mapping import Param, TypeMapping
from muse.resource_types import (
    ACTION_GROUP,
    AGENT_POOL,
    ALERT_PROCESSING_RULE,
    APP_INSIGHTS,
    DATA_COLLECTION_ENDPOINT,
    DATA_COLLECTION_RULE,
    DATA_COLLECTION_RULE_ASSOCIATION,
    FEDERATED_IDENTITY_CREDENTIAL,
    GENERIC_RESOURCE,
    KEY_VAULT,
    KEY_VAULT_SECRET,
    LOG_ANALYTICS_WORKSPACE,
    MAINTENANCE_CONFIGURATION,
    METRIC_ALERT,
    MONITOR_WORKSPACE,
    PROMETHEUS_RULE_GROUP,
    REGISTRY,
    ROLE_ASSIGNMENT,
    SCHEDULED_QUERY_RULE,
    USER_ASSIGNED_IDENTITY,
    WEB_TEST,
    WORKBOOK,
)
from offline.engine import PlannedResource
from rbac.arm import (
    ACTION_GROUPS,
    ACTION_RULES,
    APP_INSIGHTS_COMPONENTS,
    DATA_COLLECTION_ENDPOINTS,
    DATA_COLLECTION_RULE_ASSOCIATIONS,
    DATA_COLLECTION_RULES,
    FEDERATED_IDENTITY_CREDENTIALS,
    KEY_VAULT_SECRETS,
    KEY_VAULTS,
    LOG_ANALYTICS_WORKSPACES,
    MAINTENANCE_CONFIGURATIONS,
    MANAGED_CLUSTERS,
    METRIC_ALERT_RULES,
    MONITOR_ACCOUNTS,
    PROMETHEUS_RULE_GROUPS,
    REGISTRIES,
    ROLE_ASSIGNMENTS,
    SCHEDULED_QUERY_RULES,
    USER_ASSIGNED_IDENTITIES,
    WEB_TESTS,
    WORKBOOKS,
)
from stack.args import DEVELOPMENT_SEVERITIES, PRODUCTION_SEVERITIES
from stack.config import PRODUCTION
from stack.naming import APP

SERVICE_ACCOUNT = APP  # ResourceNames.service_account: the same in every stack
LOCATION_AND_TAGS: Mapping[str, Any] = {"location": Expr("location"), "tags": Expr("tags")}
ZONES_OR_NULL = Cond("empty(availabilityZones)", None, Expr("availabilityZones"))

# Symbolic names that read better than the Pulumi logical name in camelCase.
SYMBOLS: Mapping[str, str] = {
    "cluster-control-plane": "controlPlaneIdentity",
    "cluster-kubelet": "kubeletIdentity",
    "cluster-museregional": "userPool",
    "cluster-musez1": "userPoolZone1",
    "cluster-musez2": "userPoolZone2",
    "cluster-musez3": "userPoolZone3",
    "muse-workload": "museWorkloadIdentity",
    "muse-workload-namespace-muse": "museServiceAccountCredential",
    "gateway-tls": "gatewayTlsIdentity",
    "gateway-tls-gatewayNamespace-muse-gateway-tls": "gatewayTlsServiceAccountCredential",
}

# The `if` of each resource only some stacks have, by logical key (stack names replaced by `names` keys), when
# no optional string parameter it references says it. tests/export evaluate every condition with each stack's
# parameters and compare the resources that remain with that stack's plan.
CONDITIONS: Mapping[str, str] = {
    # User pools: one regional pool without zones, one per zone with them (components/kubernetes_cluster.py).
    "cluster-museregional": "empty(availabilityZones)",
    "cluster-musez1": "contains(availabilityZones, '1')",
    "cluster-musez2": "contains(availabilityZones, '2')",
    "cluster-musez3": "contains(availabilityZones, '3')",
    # The identity that reads the ingress certificate, its federation and its grant (__main__.py).
    "gateway-tls": "!empty(ingressHost)",
    "gateway-tls-gatewayNamespace-muse-gateway-tls": "!empty(ingressHost)",
    "gateway-tls-certificate-secrets-user": "!empty(ingressHost)",
    # The external probe, its component and its alert (stack/args.py `availability_test`).
    "observability-app-insights": "availabilityTest",
    "observability-availability": "availabilityTest",
}


def _symbol(logical_name: str) -> str:
    return SYMBOLS.get(logical_name, camel(logical_name))


def secret_parameter(name: str) -> str:
    """The Bicep parameter that carries the value of the Key Vault secret `name` (Pulumi generates it)."""
    return camel(name) + "Value"


def _secret_bindings(resource: PlannedResource) -> Mapping[str, Any]:
    name = str(resource.properties["secretName"])
    return {
        "tags": Expr("tags"),
        "properties.value": Param(
            name=secret_parameter(name),
            type="string",
            description=(
                f"Value of the Key Vault secret '{name}'. Pulumi generates it; with Bicep, pass it at deploy "
                f"time (never in a parameter file), e.g. -p {secret_parameter(name)}=$(openssl rand -hex 24)."
            ),
            secure=True,
        ),
    }


# The stack config keys of each planned-maintenance window (stack/config.py), by configuration name.
MAINTENANCE_WINDOW_KEYS: Mapping[str, str] = {
    AUTO_UPGRADE_SCHEDULE: "autoUpgradeWindow",
    NODE_OS_UPGRADE_SCHEDULE: "nodeOsUpgradeWindow",
}


def _maintenance_window_bindings(resource: PlannedResource) -> Mapping[str, Any]:
    key = MAINTENANCE_WINDOW_KEYS[str(resource.properties["configName"])]
    window = "properties.maintenanceWindow"
    return {
        f"{window}.schedule.weekly.dayOfWeek": Expr(f"{key}Day"),
        f"{window}.startTime": Expr(f"{key}StartTime"),
        f"{window}.durationHours": Expr(f"{key}DurationHours"),
        f"{window}.utcOffset": Expr("maintenanceUtcOffset"),
    }


def _credential_bindings(resource: PlannedResource) -> Mapping[str, Any]:
    """A federated credential's name and subject from the `names` of its service account: Muse's (namespace,
    service account) or the Gateway certificate reader's (the Gateway's namespace, a constant name)."""
    _, _, namespace, account = str(resource.properties["subject"]).split(":")
    where = "names.gatewayNamespace" if namespace.endswith(GATEWAY_NAMESPACE_SUFFIX) else "names.namespace"
    who = "${names.serviceAccount}" if account == SERVICE_ACCOUNT else account
    return {
        "name": Expr(f"'${{{where}}}-{who}'"),
        "properties.subject": Expr(f"'system:serviceaccount:${{{where}}}:{who}'"),
    }


MAPPINGS: dict[str, TypeMapping] = {
    USER_ASSIGNED_IDENTITY: TypeMapping(
        arm_type=USER_ASSIGNED_IDENTITIES,
        name_input="resourceName",
        bindings=LOCATION_AND_TAGS,
        symbol=_symbol,
    ),
    FEDERATED_IDENTITY_CREDENTIAL: TypeMapping(
        arm_type=FEDERATED_IDENTITY_CREDENTIALS,
        name_input="federatedIdentityCredentialResourceName",
        parent=("resourceName", USER_ASSIGNED_IDENTITY),
        bindings=lambda resource: _credential_bindings(resource),
        symbol=_symbol,
    ),
    REGISTRY: TypeMapping(
        arm_type=REGISTRIES,
        name_input="registryName",
        bindings={
            **LOCATION_AND_TAGS,
            "sku.name": Expr("registrySku"),
            # Premium only (components/container_registry.py): zone redundancy with 2+ zones, retention.
            "properties.zoneRedundancy": Cond(
                "(registrySku == 'Premium') && (length(availabilityZones) > 1)", "Enabled", "Disabled"
            ),
            "properties.policies": Cond(
                "registrySku == 'Premium'", {"retentionPolicy": {"days": 30, "status": "enabled"}}, None
            ),
        },
        symbol=_symbol,
        skips=(
            ("CKV_AZURE_166", "quarantine is a Premium preview workflow; CI deploys images pinned by digest"),
            (
                "CKV_AZURE_139",
                "public endpoint on purpose: GitHub-hosted runners push over the internet, Entra ID only",
            ),
            (
                "CKV_AZURE_163",
                "image scanning is Defender for Containers, enabled per subscription, not here",
            ),
        ),
    ),
    # The AKS cluster: a generic resource at the API version in its inputs (components/kubernetes_cluster.py),
    # whose body the export checks against that version's ARM type data (verify/arm_types.py).
    GENERIC_RESOURCE: TypeMapping(
        arm_type=MANAGED_CLUSTERS,
        name_input="resourceName",
        drop=("apiVersion", "resourceProviderNamespace", "resourceType", "parentResourcePath"),
        nested_properties=True,
        api_version_input="apiVersion",
        bindings={
            **LOCATION_AND_TAGS,
            "sku.tier": Expr("clusterTier"),
            "properties.kubernetesVersion": Expr("kubernetesVersion"),
            "properties.autoUpgradeProfile.upgradeChannel": Expr("upgradeChannel"),
            "properties.aadProfile.adminGroupObjectIDs": Expr("clusterAdminGroupObjectIds"),
            "properties.apiServerAccessProfile.authorizedIPRanges": Expr("apiServerAuthorizedIpRanges"),
            "properties.agentPoolProfiles.0.vmSize": Expr("systemNodeVmSize"),
            "properties.agentPoolProfiles.0.count": Expr("systemNodeCount"),
            "properties.agentPoolProfiles.0.availabilityZones": ZONES_OR_NULL,
        },
        symbol=lambda name: "cluster",
        constant_literals=(
            ("Standard", "ingressProfile.gatewayAPI.installation: the Gateway API CRDs' standard channel"),
        ),
        comment=(
            "The inline system pool cannot be changed after creation (Pulumi ignores later changes to it); "
            "Muse runs on the separate user pools below. kubernetesVersion is the version a new cluster "
            "starts on: the upgrade channel moves it afterwards and AKS cannot downgrade, so redeploying "
            "an existing cluster must pass its current version (az aks show --query kubernetesVersion)."
        ),
        skips=(
            (
                "CKV_AZURE_226",
                "ephemeral OS disks need a VM size whose cache fits the disk; sizes are parameters",
            ),
            ("CKV_AZURE_227", "host encryption must first be enabled on the subscription; not assumed"),
            ("CKV_AZURE_168", "max pods per node stays at the AKS default for CNI overlay (250)"),
            (
                "CKV_AZURE_8",
                "false positive: the Kubernetes dashboard add-on no longer exists and is not set",
            ),
            ("CKV_AZURE_172", "false positive: enableSecretRotation is the string 'true', as AKS requires"),
        ),
    ),
    AGENT_POOL: TypeMapping(
        arm_type="Microsoft.ContainerService/managedClusters/agentPools",
        name_input="agentPoolName",
        parent=("resourceName", GENERIC_RESOURCE),
        top_level=(),
        bindings={
            "properties.tags": Expr("tags"),
            "properties.vmSize": Expr("userNodeVmSize"),
            "properties.count": Expr("userNodeCount"),
            "properties.enableAutoScaling": Expr("userNodeAutoscale"),
            # Autoscaler bounds only when autoscaling (components/kubernetes_cluster.py).
            "properties.minCount": Cond("userNodeAutoscale", Expr("userNodeMinCount"), None),
            "properties.maxCount": Cond("userNodeAutoscale", Expr("userNodeMaxCount"), None),
        },
        symbol=_symbol,
        skips=(
            ("CKV_AZURE_168", "max pods per node stays at the AKS default for CNI overlay (250)"),
            ("CKV_AZURE_227", "host encryption must first be enabled on the subscription; not assumed"),
        ),
    ),
    MAINTENANCE_CONFIGURATION: TypeMapping(
        arm_type=MAINTENANCE_CONFIGURATIONS,
        name_input="configName",
        parent=("resourceName", GENERIC_RESOURCE),
        top_level=(),
        bindings=_maintenance_window_bindings,
        symbol=_symbol,
    ),
    KEY_VAULT: TypeMapping(
        arm_type=KEY_VAULTS,
        name_input="vaultName",
        nested_properties=True,
        bindings={
            **LOCATION_AND_TAGS,
            "properties.softDeleteRetentionInDays": Expr("keyVaultRetentionDays"),
            # Azure accepts only `true`; unset is how "off" is spelled (components/secret_vault.py).
            "properties.enablePurgeProtection": Cond("keyVaultPurgeProtection", True, None),
        },
        symbol=_symbol,
        skips=(
            (
                "CKV_AZURE_109",
                "public endpoint on purpose (AKS nodes, GitHub runners); every request needs Entra ID + RBAC",
            ),
            ("CKV_AZURE_189", "public endpoint on purpose, see CKV_AZURE_109"),
            (
                "CKV_AZURE_110",
                "purge protection is the keyVaultPurgeProtection parameter: on in production, off in "
                "development",
            ),
            (
                "CKV_AZURE_42",
                "purge protection is the keyVaultPurgeProtection parameter: on in production, off in "
                "development",
            ),
        ),
    ),
    KEY_VAULT_SECRET: TypeMapping(
        arm_type=KEY_VAULT_SECRETS,
        name_input="secretName",
        parent=("vaultName", KEY_VAULT),
        nested_properties=True,
        bindings=_secret_bindings,
        # The value makes Pulumi mark the whole `properties` secret, so the plan cannot show it; the content
        # type is components/secret_vault.py's, the value a @secure() parameter.
        shape=lambda inputs: {
            **{k: v for k, v in inputs.items() if k != "properties"},
            "properties": {"contentType": "text/plain"},
        },
        symbol=_symbol,
        skips=(("CKV_AZURE_41", "a generated API token has no natural expiry; rotated by redeploying it"),),
    ),
    ROLE_ASSIGNMENT: TypeMapping(
        arm_type=ROLE_ASSIGNMENTS,
        name_input=None,
        scope_input="scope",
        top_level=(),
        symbol=_symbol,
    ),
}


def _is_prometheus(logical_name: str) -> bool:
    return logical_name.endswith("-prometheus")


def _rule_group_bindings(resource: PlannedResource) -> Mapping[str, Any]:
    """Severities of a Prometheus rule group's alerts per environment, by each rule's kind (its urgency in
    components/observability/alerts.py `prometheus_alert_kinds`)."""
    bindings: dict[str, Any] = dict(LOCATION_AND_TAGS)
    kinds = prometheus_alert_kinds()
    for i, rule in enumerate(resource.properties.get("rules") or []):
        if "alert" in rule:
            bindings[f"properties.rules.{i}.severity"] = SEVERITY[kinds[str(rule["alert"])]]
    return bindings


# Azure Monitor severities per tier: the program's table (stack/args.py), as a condition on `tier`, per kind.
PRODUCTION_TIER = f"tier == '{PRODUCTION}'"
SEVERITY: Mapping[AlertKind, Cond] = {
    kind: Cond(PRODUCTION_TIER, PRODUCTION_SEVERITIES.of(kind), DEVELOPMENT_SEVERITIES.of(kind))
    for kind in ALERT_KINDS
}
MONITOR_TOP_LEVEL = ("location", "tags", "kind")


def _alert_rule(arm_type: str, top_level: tuple[str, ...], bindings: Mapping[str, Any]) -> TypeMapping:
    """A log or metric alert rule: its `bindings`, and its severity per tier by the alert's kind."""
    return TypeMapping(
        arm_type=arm_type,
        name_input="ruleName",
        top_level=top_level,
        bindings=lambda resource: {**bindings, "properties.severity": SEVERITY[alert_kind(resource.name)]},
        symbol=lambda name: camel(name.removeprefix("observability-")) + "Alert",
    )


MAPPINGS.update(
    {
        LOG_ANALYTICS_WORKSPACE: TypeMapping(
            arm_type=LOG_ANALYTICS_WORKSPACES,
            name_input="workspaceName",
            top_level=("location", "tags"),
            bindings={**LOCATION_AND_TAGS, "properties.retentionInDays": Expr("logRetentionDays")},
            symbol=lambda name: "logAnalytics",
        ),
        ACTION_GROUP: TypeMapping(
            arm_type=ACTION_GROUPS,
            name_input="actionGroupName",
            top_level=("location", "tags"),
            bindings={
                "tags": Expr("tags"),
                "properties.groupShortName": Expr("names.actionGroupShort"),
                # Webhook URLs are secrets: a @secure() object parameter, {"urls": [...]}, never a file value.
                "properties.webhookReceivers": For(
                    "url",
                    "i",
                    "contains(alertWebhookUrls, 'urls') ? alertWebhookUrls.urls : []",
                    {
                        "name": Expr("'webhook-${i + 1}'"),
                        "serviceUri": Expr("url"),
                        "useCommonAlertSchema": True,
                    },
                    declares=(
                        Param(
                            name="alertWebhookUrls",
                            type="object",
                            description=(
                                'Webhook URLs of the action group as {"urls": ["https://..."]} (the '
                                "stack key "
                                "alertWebhooks); pass at deploy time, never in a parameter file."
                            ),
                            secure=True,
                            default={},
                        ),
                    ),
                ),
                "properties.emailReceivers": For(
                    "address",
                    "i",
                    "alertEmails",
                    {
                        "name": Expr("'email-${i + 1}'"),
                        "emailAddress": Expr("address"),
                        "useCommonAlertSchema": True,
                    },
                ),
            },
            symbol=lambda name: "actionGroup",
        ),
        DATA_COLLECTION_RULE: TypeMapping(
            arm_type=DATA_COLLECTION_RULES,
            name_input="dataCollectionRuleName",
            top_level=MONITOR_TOP_LEVEL,
            bindings=lambda resource: (
                {**_msprom_name(resource), "location": Expr("location")}
                if _is_prometheus(resource.name)
                else LOCATION_AND_TAGS
            ),
            symbol=lambda name: "prometheusRule" if _is_prometheus(name) else "containerInsightsRule",
        ),
        DATA_COLLECTION_RULE_ASSOCIATION: TypeMapping(
            arm_type=DATA_COLLECTION_RULE_ASSOCIATIONS,
            name_input="associationName",
            scope_input="resourceUri",
            top_level=(),
            bindings=lambda resource: (
                {"name": Expr("take('MSProm-${location}-${names.cluster}', 44)")}
                if _is_prometheus(resource.name)
                else {}
            ),
            symbol=lambda name: (
                "prometheusAssociation" if _is_prometheus(name) else "containerInsightsAssociation"
            ),
        ),
        SCHEDULED_QUERY_RULE: _alert_rule(SCHEDULED_QUERY_RULES, MONITOR_TOP_LEVEL, LOCATION_AND_TAGS),
        METRIC_ALERT: _alert_rule(METRIC_ALERT_RULES, ("location", "tags"), {"tags": Expr("tags")}),
        WORKBOOK: TypeMapping(
            arm_type=WORKBOOKS,
            name_input="resourceName",
            top_level=MONITOR_TOP_LEVEL,
            bindings={
                **LOCATION_AND_TAGS,
                # Pulumi names it uuid5(<workspace>/<namespace>); Bicep has no uuid5, so a guid() of the same.
                "name": Expr("guid(names.logAnalytics, names.namespace)"),
            },
            symbol=lambda name: "museWorkbook",
            comment=(
                "Workbook names must be GUIDs: Pulumi uses uuid5(<workspace>/<namespace>), Bicep guid() of "
                "the same names, so a Bicep deployment creates its own workbook beside Pulumi's."
            ),
        ),
    }
)


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


# Web test properties are PascalCase in ARM (Microsoft.Insights/webtests@2022-06-15), camelCase in the
# SDK; the
# SDK's `webTestName` is both the resource name and `properties.Name`, `webTestKind` is `properties.Kind`,
# `locations[].location` is `Locations[].Id`, and the SSL checks are spelled `SSLCheck` /
# `SSLCertRemainingLifetimeCheck`.
_WEB_TEST_NAMES = {
    "webTestKind": "Kind",
    "sSLCheck": "SSLCheck",
    "sSLCertRemainingLifetimeCheck": "SSLCertRemainingLifetimeCheck",
}


def _web_test_properties(value: Any) -> Any:
    if isinstance(value, dict):
        return {_WEB_TEST_NAMES.get(k, _pascal(k)): _web_test_properties(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_web_test_properties(v) for v in value]
    return value


def _web_test_shape(inputs: dict[str, Any]) -> dict[str, Any]:
    top: dict[str, Any] = {k: inputs[k] for k in ("location", "tags", "kind") if k in inputs}
    rest = {k: v for k, v in inputs.items() if k not in top}
    properties = _web_test_properties(rest)
    properties["Locations"] = [{"Id": where["Location"]} for where in properties.get("Locations", [])]
    # `Name` is the SDK's webTestName, consumed as the resource name; the component sets the synthetic
    # monitor id to the same value (the API's "typically the same value as the Name field").
    properties["Name"] = properties["SyntheticMonitorId"]
    return {**top, "properties": properties}


# Application Insights component properties as ARM spells them (Microsoft.Insights/components@2020-02-02): the
# SDK's camelCase inputs, some with an underscore, the two public-access ones unchanged.
_COMPONENT_NAMES = {
    "applicationType": "Application_Type",
    "flowType": "Flow_Type",
    "requestSource": "Request_Source",
}


def _component_shape(inputs: dict[str, Any]) -> dict[str, Any]:
    top: dict[str, Any] = {k: inputs[k] for k in MONITOR_TOP_LEVEL if k in inputs}
    properties = {
        _COMPONENT_NAMES.get(k, k if k.startswith("publicNetworkAccess") else _pascal(k)): v
        for k, v in inputs.items()
        if k not in top
    }
    return {**top, "properties": properties}


def _msprom_name(resource: PlannedResource) -> Mapping[str, Any]:
    # MSProm-<region>-<cluster>, at most 44 characters (components/observability/prometheus.py).
    return {"name": Expr("take('MSProm-${location}-${names.cluster}', 44)"), "tags": Expr("tags")}


MAPPINGS.update(
    {
        MONITOR_WORKSPACE: TypeMapping(
            arm_type=MONITOR_ACCOUNTS,
            name_input="azureMonitorWorkspaceName",
            top_level=("location", "tags"),
            bindings=LOCATION_AND_TAGS,
            symbol=lambda name: "monitorWorkspace",
        ),
        DATA_COLLECTION_ENDPOINT: TypeMapping(
            arm_type=DATA_COLLECTION_ENDPOINTS,
            name_input="dataCollectionEndpointName",
            top_level=MONITOR_TOP_LEVEL,
            bindings=lambda resource: {**_msprom_name(resource), "location": Expr("location")},
            symbol=lambda name: "prometheusEndpoint",
        ),
        PROMETHEUS_RULE_GROUP: TypeMapping(
            arm_type=PROMETHEUS_RULE_GROUPS,
            name_input="ruleGroupName",
            top_level=("location", "tags"),
            bindings=lambda resource: _rule_group_bindings(resource),
            symbol=lambda name: camel(name.removeprefix("observability-")) + "Rules",
        ),
        ALERT_PROCESSING_RULE: TypeMapping(
            arm_type=ACTION_RULES,
            name_input="alertProcessingRuleName",
            top_level=("location", "tags"),
            nested_properties=True,
            bindings={"tags": Expr("tags"), "properties.enabled": Expr("maintenanceSuppressAlerts")},
            symbol=lambda name: "maintenanceRule",
        ),
        APP_INSIGHTS: TypeMapping(
            arm_type=APP_INSIGHTS_COMPONENTS,
            name_input="resourceName",
            shape=_component_shape,
            bindings=LOCATION_AND_TAGS,
            symbol=lambda name: "appInsights",
        ),
        WEB_TEST: TypeMapping(
            arm_type=WEB_TESTS,
            name_input="webTestName",
            shape=_web_test_shape,
            bindings={
                "location": Expr("location"),
                # The hidden-link tag ties the test to its component
                # (components/observability/availability.py).
                "tags": Expr("union(tags, {'hidden-link:${appInsights.id}': 'Resource'})"),
                "properties.Locations": For("where", "i", "availabilityTestLocations", {"Id": Expr("where")}),
                "properties.Request.RequestUrl": Expr(f"'https://${{ingressHost}}{READINESS_PATH}'"),
                "properties.Description": Expr(
                    f"'GET https://${{ingressHost}}{READINESS_PATH} every {FREQUENCY_SECONDS} s; alerts when "
                    f"{FAILED_LOCATIONS}+ locations fail.'"
                ),
            },
            symbol=lambda name: "availabilityWebTest",
        ),
    }
)

# Role assignments last: they reference the resources above.
MAPPINGS[ROLE_ASSIGNMENT] = MAPPINGS.pop(ROLE_ASSIGNMENT)
