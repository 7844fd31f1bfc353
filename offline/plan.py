"""What `make plan` prints of an offline plan: every component and resource with its key properties.

The command is cli/plan.py (`python -m cli.plan --stack dev [--format text|json]`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from components.container_registry import ContainerRegistry
from components.github_identity import GitHubOidcIdentity
from components.kubernetes_cluster import KubernetesCluster
from components.muse_workload import MuseWorkload
from components.observability import Observability
from components.resource_group import ResourceGroup
from components.secret_vault import SecretVault
from components.workload_identity import WorkloadIdentity
from muse.resource_types import (
    ACTION_GROUP,
    AGENT_POOL,
    ALERT_PROCESSING_RULE,
    APP_INSIGHTS,
    DATA_COLLECTION_ENDPOINT,
    DATA_COLLECTION_RULE,
    DATA_COLLECTION_RULE_ASSOCIATION,
    ENTRA_APPLICATION,
    ENTRA_APPLICATION_FEDERATED_CREDENTIAL,
    ENTRA_SERVICE_PRINCIPAL,
    FEDERATED_IDENTITY_CREDENTIAL,
    GENERIC_RESOURCE,
    K8S_CONFIG_MAP,
    K8S_DEPLOYMENT,
    K8S_GATEWAY,
    K8S_HTTP_ROUTE,
    K8S_NAMESPACE,
    K8S_SERVICE,
    K8S_SERVICE_ACCOUNT,
    KEY_VAULT,
    KEY_VAULT_SECRET,
    LOG_ANALYTICS_WORKSPACE,
    METRIC_ALERT,
    MONITOR_WORKSPACE,
    PROMETHEUS_RULE_GROUP,
    REGISTRY,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    SCHEDULED_QUERY_RULE,
    USER_ASSIGNED_IDENTITY,
    WEB_TEST,
    WORKBOOK,
)
from offline.engine import OfflinePlan, PlannedResource
from rbac.conditions import delegation_summary
from rbac.roles import Role

# The properties a reviewer wants to see per type; other types show their top-level scalar inputs.
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    RESOURCE_GROUP: ("resourceGroupName", "location"),
    REGISTRY: (
        "registryName",
        "sku.name",
        "adminUserEnabled",
        "anonymousPullEnabled",
        "publicNetworkAccess",
        "zoneRedundancy",
        "policies.retentionPolicy.days",
    ),
    # The AKS cluster, a generic resource (components/kubernetes_cluster.py): its ARM body's properties.
    GENERIC_RESOURCE: (
        "resourceName",
        "resourceProviderNamespace",
        "resourceType",
        "apiVersion",
        "properties.kubernetesVersion",
        "sku.tier",
        "identity.type",
        "properties.disableLocalAccounts",
        "properties.aadProfile.enableAzureRBAC",
        "properties.oidcIssuerProfile.enabled",
        "properties.securityProfile.workloadIdentity.enabled",
        "properties.networkProfile.networkPluginMode",
        "properties.networkProfile.networkDataplane",
        "properties.networkProfile.networkPolicy",
        "properties.autoUpgradeProfile.upgradeChannel",
        "properties.apiServerAccessProfile.authorizedIPRanges",
        "properties.apiServerAccessProfile.disableRunCommand",
        "properties.ingressProfile.gatewayAPI.installation",
        "properties.ingressProfile.webAppRouting.enabled",
        "properties.ingressProfile.webAppRouting.gatewayAPIImplementations.appRoutingIstio.mode",
        "properties.ingressProfile.webAppRouting.nginx.defaultIngressControllerType",
        "properties.autoScalerProfile",
        "properties.agentPoolProfiles.0.name",
        "properties.agentPoolProfiles.0.vmSize",
        "properties.agentPoolProfiles.0.count",
        "properties.agentPoolProfiles.0.availabilityZones",
        "properties.agentPoolProfiles.0.nodeTaints",
    ),
    AGENT_POOL: (
        "agentPoolName",
        "mode",
        "vmSize",
        "count",
        "enableAutoScaling",
        "minCount",
        "maxCount",
        "availabilityZones",
        "kubeletConfig",
    ),
    USER_ASSIGNED_IDENTITY: ("resourceName", "location"),
    KEY_VAULT: (
        "vaultName",
        "properties.sku.name",
        "properties.enableRbacAuthorization",
        "properties.enableSoftDelete",
        "properties.softDeleteRetentionInDays",
        "properties.enablePurgeProtection",
        "properties.publicNetworkAccess",
        "properties.networkAcls.defaultAction",
    ),
    KEY_VAULT_SECRET: ("secretName", "vaultName", "properties"),
    FEDERATED_IDENTITY_CREDENTIAL: (
        "resourceName",
        "issuer",
        "subject",
        "audiences",
    ),
    ENTRA_APPLICATION: ("displayName", "signInAudience"),
    ENTRA_SERVICE_PRINCIPAL: ("clientId",),
    ENTRA_APPLICATION_FEDERATED_CREDENTIAL: (
        "subject",
        "issuer",
        "audiences",
    ),
    LOG_ANALYTICS_WORKSPACE: (
        "workspaceName",
        "sku.name",
        "retentionInDays",
        "features.disableLocalAuth",
    ),
    ACTION_GROUP: ("actionGroupName", "groupShortName", "location", "enabled"),
    DATA_COLLECTION_RULE: ("dataCollectionRuleName", "kind", "dataFlows.0.streams"),
    DATA_COLLECTION_RULE_ASSOCIATION: ("associationName", "resourceUri"),
    SCHEDULED_QUERY_RULE: (
        "ruleName",
        "severity",
        "evaluationFrequency",
        "windowSize",
        "overrideQueryTimeRange",
        "autoMitigate",
    ),
    METRIC_ALERT: (
        "ruleName",
        "severity",
        "evaluationFrequency",
        "windowSize",
        "criteria.allOf.0.metricName",
        "criteria.allOf.0.operator",
        "criteria.allOf.0.threshold",
    ),
    WORKBOOK: ("displayName", "kind", "category", "resourceName"),
    # Live signals: managed Prometheus, the external probe, planned maintenance.
    MONITOR_WORKSPACE: ("azureMonitorWorkspaceName", "location"),
    DATA_COLLECTION_ENDPOINT: ("dataCollectionEndpointName", "kind"),
    PROMETHEUS_RULE_GROUP: (
        "ruleGroupName",
        "clusterName",
        "interval",
        "enabled",
    ),
    ALERT_PROCESSING_RULE: (
        "alertProcessingRuleName",
        "properties.enabled",
        "properties.actions.0.actionType",
    ),
    APP_INSIGHTS: ("resourceName", "ingestionMode", "disableLocalAuth"),
    WEB_TEST: (
        "webTestName",
        "webTestKind",
        "request.requestUrl",
        "frequency",
        "validationRules.sSLCheck",
        "validationRules.sSLCertRemainingLifetimeCheck",
    ),
    ROLE_ASSIGNMENT: ("principalType", "principalId"),
    "pulumi:providers:kubernetes": ("kubeconfig",),
    # The Muse workload (components/muse_workload/); the Deployment also gets a summary, _kubernetes_rows.
    K8S_NAMESPACE: ("metadata.name",),
    K8S_SERVICE_ACCOUNT: (
        "metadata.name",
        "automountServiceAccountToken",
    ),
    "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass": (
        "metadata.name",
        "spec.parameters.keyvaultName",
        "spec.parameters.clientID",
        "spec.parameters.tenantId",
        "spec.secretObjects.0.secretName",
    ),
    K8S_CONFIG_MAP: ("metadata.name", "data"),
    K8S_DEPLOYMENT: (
        "metadata.namespace",
        "spec.replicas",
        "spec.template.spec.containers.0.image",
        "spec.strategy.rollingUpdate",
        "spec.template.spec.terminationGracePeriodSeconds",
        "spec.template.spec.containers.0.resources",
        "spec.template.spec.nodeSelector",
    ),
    K8S_SERVICE: ("metadata.name", "spec.type", "spec.ports"),
    K8S_GATEWAY: ("metadata.namespace", "spec.gatewayClassName"),
    K8S_HTTP_ROUTE: ("metadata.namespace", "spec.hostnames"),
    "kubernetes:policy/v1:PodDisruptionBudget": ("spec.maxUnavailable",),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ("spec.minReplicas", "spec.maxReplicas"),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": ("spec.policyTypes", "spec.ingress.0.from"),
}
ROLE_NAMES = {role.definition_id: role.value.name for role in Role}
# Top-level components print in the order of the architecture diagram; unknown ones follow alphabetically.
COMPONENT_ORDER = tuple(
    component.TYPE
    for component in (
        ResourceGroup,
        Observability,
        ContainerRegistry,
        KubernetesCluster,
        SecretVault,
        WorkloadIdentity,
        GitHubOidcIdentity,
        MuseWorkload,
    )
)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_render(v)}" for k, v in value.items()) + "}"
    return str(value)


def key_properties(resource: PlannedResource) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    paths = KEY_PROPERTIES.get(resource.type)
    if paths is None:
        paths = tuple(
            k for k, v in resource.properties.items() if not isinstance(v, dict | list) and k != "tags"
        )
    for path in paths:
        value = resource.get(path)
        if value is not None:
            rows.append((path, _render(value)))
    if resource.type == ROLE_ASSIGNMENT:
        role_id = str(resource.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
        rows.insert(0, ("role", ROLE_NAMES.get(role_id, role_id)))
        rows.insert(1, ("scope", str(resource.get("scope", ""))))
        condition = resource.get("condition")
        if condition:
            rows.insert(2, ("may assign only", delegation_summary(str(condition), ROLE_NAMES)))
    if resource.type == GENERIC_RESOURCE:
        rows.append(("addons", ", ".join(sorted(resource.get("properties.addonProfiles", {}) or {}))))
        metrics = resource.get("properties.azureMonitorProfile.metrics.enabled")
        if metrics is not None:
            rows.append(("managed Prometheus", _render(metrics)))
    rows.extend(_monitoring_rows(resource))
    rows.extend(_kubernetes_rows(resource))
    tags = resource.get("tags")
    if isinstance(tags, dict):
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))))
    if resource.ignore_changes:
        rows.append(("ignoreChanges", ", ".join(resource.ignore_changes)))
    if resource.protect:
        rows.append(("protect", "true (Pulumi refuses to delete or replace it)"))
    return rows


def _last_segment(resource_id: Any) -> str:
    return str(resource_id).rstrip("/").rsplit("/", 1)[-1]


def _monitoring_rows(resource: PlannedResource) -> list[tuple[str, str]]:
    """Who an alert notifies, what it watches, and the action group's receivers, by name."""
    if resource.type == ACTION_GROUP:
        emails = [f"email {r.get('emailAddress', '')}" for r in resource.get("emailReceivers") or []]
        # A webhook URL is a secret (the engine masks it): only its receiver name is shown.
        webhooks = resource.get("webhookReceivers") or []
        hooks = (
            [f"webhook {r.get('name', '')}" for r in webhooks]
            if isinstance(webhooks, list)
            else ["webhooks (secret)"]
        )
        receivers = ", ".join(emails + hooks) or "none (muse:alertEmails and muse:alertWebhooks are empty)"
        return [("receivers", receivers)]
    if resource.type == PROMETHEUS_RULE_GROUP:
        rules = resource.get("rules") or []
        records = sum(1 for r in rules if "record" in r)
        alerts = [str(r["alert"]) for r in rules if "alert" in r]
        return [
            ("scope", ", ".join(_last_segment(s) for s in resource.get("scopes") or [])),
            (
                "rules",
                f"{records} recording, {len(alerts)} alerting" + (f": {', '.join(alerts)}" if alerts else ""),
            ),
        ]
    if resource.type == WEB_TEST:
        locations = [str(where.get("location")) for where in resource.get("locations") or []]
        return [("locations", f"{len(locations)}: {', '.join(locations)}")]
    if resource.type == SCHEDULED_QUERY_RULE:
        groups = resource.get("actions.actionGroups") or []
        return [
            ("scope", ", ".join(_last_segment(s) for s in resource.get("scopes") or [])),
            ("namespace", str(resource.get("actions.customProperties.namespace", ""))),
            ("actionGroups", ", ".join(_last_segment(g) for g in groups)),
        ]
    if resource.type == METRIC_ALERT:
        groups = [a.get("actionGroupId") for a in resource.get("actions") or []]
        return [
            ("scope", ", ".join(_last_segment(s) for s in resource.get("scopes") or [])),
            ("actionGroups", ", ".join(_last_segment(g) for g in groups)),
        ]
    if resource.type == DATA_COLLECTION_RULE and resource.get("destinations.monitoringAccounts"):
        accounts = resource.get("destinations.monitoringAccounts") or []
        return [("destination", ", ".join(_last_segment(a.get("accountResourceId")) for a in accounts))]
    if resource.type == DATA_COLLECTION_RULE:
        settings = resource.get("dataSources.extensions.0.extensionSettings.dataCollectionSettings") or {}
        destinations = resource.get("destinations.logAnalytics") or []
        return [
            ("containerLogV2", _render(settings.get("enableContainerLogV2", False))),
            ("destination", ", ".join(_last_segment(d.get("workspaceResourceId")) for d in destinations)),
        ]
    if resource.type == DATA_COLLECTION_RULE_ASSOCIATION:
        return [("dataCollectionRule", _last_segment(resource.get("dataCollectionRuleId")))]
    return []


def _kubernetes_rows(resource: PlannedResource) -> list[tuple[str, str]]:
    """Keys with dots (labels, annotations), and the Deployment's probes, security context and rollout await,
    summarised for a reviewer."""
    metadata = resource.get("metadata") or {}
    if resource.type == K8S_NAMESPACE:
        labels = metadata.get("labels") or {}
        return [(k, v) for k, v in sorted(labels.items()) if k.startswith("pod-security.kubernetes.io/")]
    if resource.type == K8S_SERVICE_ACCOUNT:
        client_id = (metadata.get("annotations") or {}).get("azure.workload.identity/client-id")
        return [("workload identity client id", str(client_id))]
    if resource.type == K8S_GATEWAY:
        return [
            (f"listener {listener.get('name')}", _listener(listener))
            for listener in resource.get("spec.listeners") or []
        ]
    if resource.type == K8S_HTTP_ROUTE:
        parents = ", ".join(
            f"{p.get('namespace', metadata.get('namespace'))}/{p.get('name')}:{p.get('sectionName')}"
            for p in resource.get("spec.parentRefs") or []
        )
        actions = []
        for rule in resource.get("spec.rules") or []:
            for backend in rule.get("backendRefs") or []:
                actions.append(
                    f"-> {backend.get('kind', 'Service')} {backend.get('name')}:{backend.get('port')}"
                )
            for filter_ in rule.get("filters") or []:
                redirect = filter_.get("requestRedirect")
                if redirect:
                    actions.append(f"redirect to {redirect.get('scheme')} ({redirect.get('statusCode')})")
        return [("parents", parents), ("rules", "; ".join(actions))]
    if resource.type != K8S_DEPLOYMENT:
        return []
    container = (resource.get("spec.template.spec.containers") or [{}])[0]
    probes = ", ".join(
        f"{kind.removesuffix('Probe')} {probe.get('httpGet', {}).get('path')} "
        f"every {probe.get('periodSeconds')}s x{probe.get('failureThreshold')}"
        for kind, probe in sorted(container.items())
        if kind.endswith("Probe") and isinstance(probe, dict)
    )
    pod = resource.get("spec.template.spec.securityContext") or {}
    ctx = container.get("securityContext") or {}
    security = (
        f"runAsNonRoot={_render(ctx.get('runAsNonRoot', pod.get('runAsNonRoot')))} "
        f"runAsUser={ctx.get('runAsUser', pod.get('runAsUser'))} "
        f"readOnlyRootFilesystem={_render(ctx.get('readOnlyRootFilesystem'))} "
        f"allowPrivilegeEscalation={_render(ctx.get('allowPrivilegeEscalation'))} "
        f"drop={_render((ctx.get('capabilities') or {}).get('drop'))} "
        f"seccomp={(ctx.get('seccompProfile') or pod.get('seccompProfile') or {}).get('type')}"
    )
    awaited = (metadata.get("annotations") or {}).get("pulumi.com/skipAwait") != "true"
    timeouts = (
        ", ".join(f"{k} {v}" for k, v in sorted(resource.custom_timeouts.items())) or "provider default"
    )
    return [
        ("probes", probes),
        ("securityContext", security),
        ("rollout await", f"{'awaited' if awaited else 'NOT awaited (skipAwait)'}, timeout {timeouts}"),
    ]


def _listener(listener: dict[str, Any]) -> str:
    text = f"{listener.get('protocol')} :{listener.get('port')} {listener.get('hostname', '(any host)')}"
    tls = listener.get("tls") or {}
    if tls:
        options = tls.get("options") or {}
        text += (
            f", TLS {tls.get('mode')} with {options.get('kubernetes.azure.com/tls-cert-keyvault-uri')} "
            f"read as service account {options.get('kubernetes.azure.com/tls-cert-service-account')}"
        )
    return text


def _ordered(resources: list[PlannedResource]) -> list[PlannedResource]:
    rank = {token: i for i, token in enumerate(COMPONENT_ORDER)}
    return sorted(resources, key=lambda r: (rank.get(r.type, len(rank)), r.type, r.name))


def _tree(plan: OfflinePlan, parent: str | None, depth: int) -> Iterator[str]:
    for resource in _ordered(plan.children(parent)):
        indent = "    " * depth
        marker = "" if depth == 0 else "+ "
        yield f'{indent}{marker}{resource.type}  "{resource.name}"'
        rows = key_properties(resource) if resource.custom else []
        width = max((len(k) for k, _ in rows), default=0)
        for key, value in rows:
            yield f"{indent}      {key.ljust(width)}  {value}"
        yield from _tree(plan, resource.urn, depth + 1)
        if depth == 0:
            yield ""


def render_text(plan: OfflinePlan) -> str:
    lines = [
        f"Offline plan of stack '{plan.stack}' (project {plan.project})",
        "No Azure account and no Pulumi CLI involved: the real program ran under offline/mocks.py, which",
        "supplies Azure's computed values (ids, principal ids, login server) deterministically.",
        "",
        *_tree(plan, None, 0),
        f"Resources by type ({len(plan.resources)} in all, components included):",
    ]
    for type_token, count in sorted(plan.counts_by_type().items()):
        lines.append(f"  {count:3d}  {type_token}")
    lines += ["", "Stack outputs:"]
    width = max((len(name) for name in plan.outputs), default=0)
    for name, output in plan.outputs.items():
        lines.append(f"  {name.ljust(width)}  {'[secret]' if output.secret else _render(output.value)}")
    return "\n".join(lines) + "\n"
