"""What Azure would answer, offline: realistic IDs and computed outputs for the resources and invokes the
program uses. Values are deterministic (derived from the stack and resource names), so plans, exports and
generated docs are byte-identical run after run.

An invoke or resource this module does not know still works (resources echo their inputs), except invokes,
which fail with a message saying what to teach this module: a silent empty answer would hide a bug.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pulumi
import yaml

from components.kubernetes_cluster import AKS_AAD_SERVER_APP_ID
from muse.resource_types import (
    ACTION_GROUP,
    AGENT_POOL,
    ALERT_PROCESSING_RULE,
    APP_INSIGHTS,
    DATA_COLLECTION_ENDPOINT,
    DATA_COLLECTION_RULE,
    DATA_COLLECTION_RULE_ASSOCIATION,
    ENTRA_APPLICATION,
    ENTRA_SERVICE_PRINCIPAL,
    FEDERATED_IDENTITY_CREDENTIAL,
    GENERIC_RESOURCE,
    K8S_GATEWAY,
    K8S_HTTP_ROUTE,
    KEY_VAULT,
    KEY_VAULT_SECRET,
    LOG_ANALYTICS_WORKSPACE,
    MAINTENANCE_CONFIGURATION,
    METRIC_ALERT,
    MONITOR_WORKSPACE,
    PROMETHEUS_RULE_GROUP,
    REGISTRY,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    ROLE_DEFINITION,
    SCHEDULED_QUERY_RULE,
    USER_ASSIGNED_IDENTITY,
    WEB_TEST,
    WORKBOOK,
)
from rbac.arm import (
    ACTION_GROUPS,
    ACTION_RULES,
    APP_INSIGHTS_COMPONENTS,
    DATA_COLLECTION_ENDPOINTS,
    DATA_COLLECTION_RULE_ASSOCIATIONS,
    DATA_COLLECTION_RULES,
    KEY_VAULTS,
    LOG_ANALYTICS_WORKSPACES,
    MAINTENANCE_CONFIGURATIONS,
    MANAGED_CLUSTERS,
    METRIC_ALERT_RULES,
    MONITOR_ACCOUNTS,
    PROMETHEUS_RULE_GROUPS,
    REGISTRIES,
    RESOURCE_GROUPS,
    ROLE_ASSIGNMENTS,
    ROLE_DEFINITIONS,
    SCHEDULED_QUERY_RULES,
    USER_ASSIGNED_IDENTITIES,
    WEB_TESTS,
    WORKBOOKS,
)
from stack.deployed import READ_STACK_OUTPUTS

# Obviously-fake, fixed identities of the offline "subscription".
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
TENANT_ID = "00000000-0000-0000-0000-00000000a1d0"
DEPLOYER_OBJECT_ID = "00000000-0000-0000-0000-00000000de91"
_NAMESPACE = uuid.UUID("6f1c1f50-3c1a-4f0e-9a53-6d1d1f3a0b7e")

# type token -> (ARM resource type, input holding the Azure name)
ARM_TYPES: dict[str, tuple[str, str]] = {
    RESOURCE_GROUP: (RESOURCE_GROUPS, "resourceGroupName"),
    REGISTRY: (REGISTRIES, "registryName"),
    USER_ASSIGNED_IDENTITY: (
        USER_ASSIGNED_IDENTITIES,
        "resourceName",
    ),
    KEY_VAULT: (KEY_VAULTS, "vaultName"),
    LOG_ANALYTICS_WORKSPACE: (
        LOG_ANALYTICS_WORKSPACES,
        "workspaceName",
    ),
    ACTION_GROUP: (ACTION_GROUPS, "actionGroupName"),
    SCHEDULED_QUERY_RULE: (SCHEDULED_QUERY_RULES, "ruleName"),
    METRIC_ALERT: (METRIC_ALERT_RULES, "ruleName"),
    DATA_COLLECTION_RULE: (
        DATA_COLLECTION_RULES,
        "dataCollectionRuleName",
    ),
    WORKBOOK: (WORKBOOKS, "resourceName"),
    MONITOR_WORKSPACE: (MONITOR_ACCOUNTS, "azureMonitorWorkspaceName"),
    DATA_COLLECTION_ENDPOINT: (
        DATA_COLLECTION_ENDPOINTS,
        "dataCollectionEndpointName",
    ),
    PROMETHEUS_RULE_GROUP: (
        PROMETHEUS_RULE_GROUPS,
        "ruleGroupName",
    ),
    ALERT_PROCESSING_RULE: (
        ACTION_RULES,
        "alertProcessingRuleName",
    ),
    APP_INSIGHTS: (APP_INSIGHTS_COMPONENTS, "resourceName"),
    WEB_TEST: (WEB_TESTS, "webTestName"),
}


# Read-only properties AKS answers for a managed cluster (Microsoft.ContainerService/managedClusters,
# REST API 2026-05-01: the `flags: 2` (ReadOnly) properties of ManagedClusterProperties in the Bicep type
# data, verify/arm_types/), with values of the shape AKS returns.
MAX_AGENT_POOLS = 100


def deterministic_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def generic_arm_type(inputs: dict[str, Any]) -> str:
    """`Microsoft.ContainerService/managedClusters` of a generic resource's inputs (parent path included)."""
    parent = str(inputs.get("parentResourcePath") or "").strip("/")
    parts = [inputs["resourceProviderNamespace"], *([parent] if parent else []), inputs["resourceType"]]
    return "/".join(parts)


def _arm_id(resource_type: str, inputs: dict[str, Any], logical_name: str) -> str:
    arm_type, name_key = ARM_TYPES.get(resource_type, ("", ""))
    group = inputs.get("resourceGroupName", "rg-offline")
    if resource_type == GENERIC_RESOURCE:
        name = inputs.get("resourceName", logical_name)
        providers = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers"
        return f"{providers}/{generic_arm_type(inputs)}/{name}"
    if resource_type == RESOURCE_GROUP:
        return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}"
    if resource_type == AGENT_POOL:
        return (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/"
            f"{MANAGED_CLUSTERS}/{inputs['resourceName']}/agentPools/"
            f"{inputs['agentPoolName']}"
        )
    if resource_type == MAINTENANCE_CONFIGURATION:
        return (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/"
            f"{MANAGED_CLUSTERS}/{inputs['resourceName']}/maintenanceConfigurations/"
            f"{inputs['configName']}"
        )
    if resource_type == ROLE_ASSIGNMENT:
        return f"{inputs['scope']}/providers/{ROLE_ASSIGNMENTS}/{inputs['_name']}"
    if resource_type == ROLE_DEFINITION:
        # A custom role's id hangs off the scope it is defined at (the subscription).
        definitions = f"{inputs['scope']}/providers/{ROLE_DEFINITIONS}"
        return f"{definitions}/{inputs['roleDefinitionId']}"
    if resource_type == KEY_VAULT_SECRET:
        vault = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{KEY_VAULTS}"
        return f"{vault}/{inputs['vaultName']}/secrets/{inputs['secretName']}"
    if resource_type == FEDERATED_IDENTITY_CREDENTIAL:
        identities = (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{USER_ASSIGNED_IDENTITIES}"
        )
        return (
            f"{identities}/{inputs['resourceName']}/federatedIdentityCredentials/"
            f"{inputs['federatedIdentityCredentialResourceName']}"
        )
    if resource_type.startswith("azuread:"):
        return deterministic_uuid("azuread", resource_type, logical_name)
    if resource_type == DATA_COLLECTION_RULE_ASSOCIATION:
        # An extension resource: its id hangs off the resource it is associated with (here the cluster).
        return (
            f"{inputs['resourceUri']}/providers/{DATA_COLLECTION_RULE_ASSOCIATIONS}/"
            f"{inputs['associationName']}"
        )
    if arm_type:
        name = inputs.get(name_key, logical_name)
        return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{arm_type}/{name}"
    return f"{logical_name}-offline-id"


def fake_kubeconfig(cluster_name: str, fqdn: str) -> str:
    """The shape `az aks get-credentials` returns for an Entra ID cluster (exec plugin, kubelogin)."""
    ca = base64.b64encode(f"offline CA of {cluster_name}".encode()).decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": f"https://{fqdn}:443", "certificate-authority-data": ca},
                }
            ],
            "contexts": [
                {
                    "name": cluster_name,
                    "context": {"cluster": cluster_name, "user": f"clusterUser_{cluster_name}"},
                }
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": f"clusterUser_{cluster_name}",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "kubelogin",
                            "args": [
                                "get-token",
                                "--login",
                                "devicecode",
                                "--server-id",
                                AKS_AAD_SERVER_APP_ID,
                                "--client-id",
                                "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
                                "--tenant-id",
                                TENANT_ID,
                                "--environment",
                                "AzurePublicCloud",
                            ],
                            "interactiveMode": "IfAvailable",
                            "provideClusterInfo": False,
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def _cluster_fqdn(inputs: dict[str, Any]) -> str:
    label = deterministic_uuid("fqdn", inputs["resourceName"])[:8]
    return f"{inputs['dnsPrefix']}-{label}.hcp.{inputs['location']}.azmk8s.io"


class OfflineMocks(pulumi.runtime.Mocks):
    """`deployed_outputs`: what the stack's last update exported, answered to the program's
    `pulumi:pulumi:readStackOutputs` of itself (stack/deployed.py); default {} = a stack never deployed.
    `cluster_provisioning_state` / `cluster_power_state`: what AKS reports for the cluster, e.g. `Upgrading`
    while an upgrade runs (the `ManagedClusterProperties.provisioningState` AKS sets during an operation).
    `live_agent_pools`: pool name -> what AKS's GET of an existing pool answers (`getAgentPool`)."""

    def __init__(
        self,
        stack: str,
        *,
        deployed_outputs: dict[str, Any] | None = None,
        cluster_provisioning_state: str = "Succeeded",
        cluster_power_state: str = "Running",
        live_agent_pools: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.stack = stack
        self.deployed_outputs = dict(deployed_outputs or {})
        self.cluster_provisioning_state = cluster_provisioning_state
        self.cluster_power_state = cluster_power_state
        self.live_agent_pools = dict(live_agent_pools or {})
        self._cluster_fqdns: dict[str, str] = {}  # cluster name -> FQDN, so credentials match the cluster

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs: dict[str, Any] = dict(inputs)
        resource_type = args.typ
        if resource_type == ROLE_ASSIGNMENT:
            inputs["_name"] = deterministic_uuid(self.stack, args.name)
            outputs["name"] = inputs["_name"]
        resource_id = _arm_id(resource_type, inputs, args.name)
        outputs["id"] = resource_id
        _, name_key = ARM_TYPES.get(resource_type, ("", ""))
        if name_key and name_key in inputs:
            outputs["name"] = inputs[name_key]
        if resource_type == GENERIC_RESOURCE:
            outputs.update(self._generic(inputs, resource_id))
        outputs.update(self._computed(resource_type, args.name, inputs))
        return resource_id, outputs

    def _computed(self, resource_type: str, logical_name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if resource_type == REGISTRY:
            return {
                "loginServer": f"{inputs['registryName'].lower()}.azurecr.io",
                "provisioningState": "Succeeded",
            }
        if resource_type == KEY_VAULT:
            properties = dict(inputs.get("properties") or {})
            properties["vaultUri"] = f"https://{inputs['vaultName']}.vault.azure.net/"
            return {"properties": properties}
        if resource_type == KEY_VAULT_SECRET:
            uri = f"https://{inputs['vaultName']}.vault.azure.net/secrets/{inputs['secretName']}"
            return {"properties": {"secretUri": uri, "secretUriWithVersion": f"{uri}/0a1b2c3d"}}
        if resource_type == MAINTENANCE_CONFIGURATION:
            return _maintenance_configuration(inputs)
        if resource_type == "random:index/randomPassword:RandomPassword":
            # Deterministic, and obviously not a real credential.
            digest = hashlib.sha256(f"offline/{self.stack}/{logical_name}".encode()).hexdigest()
            return {"result": ("offline" + digest)[: int(inputs["length"])]}
        if resource_type == ENTRA_APPLICATION:
            return {
                "clientId": deterministic_uuid(self.stack, logical_name, "client"),
                "objectId": deterministic_uuid(self.stack, logical_name, "object"),
            }
        if resource_type == ENTRA_SERVICE_PRINCIPAL:
            return {"objectId": deterministic_uuid(self.stack, logical_name, "service-principal")}
        if resource_type == K8S_GATEWAY:
            return {"status": self._gateway_status(inputs)}
        if resource_type == K8S_HTTP_ROUTE:
            return {"status": _route_status(inputs)}
        monitoring = self._monitoring(resource_type, inputs)
        if monitoring is not None:
            return monitoring
        if resource_type == USER_ASSIGNED_IDENTITY:
            return {
                "principalId": deterministic_uuid(self.stack, logical_name, "principal"),
                "clientId": deterministic_uuid(self.stack, logical_name, "client"),
                "tenantId": TENANT_ID,
            }
        return {}

    def _gateway_status(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """A Programmed Gateway's status (Gateway API v1 GatewayStatus): the address of its load balancer (a
        documentation-range IP, RFC 5737, one per stack), Accepted and Programmed, and per listener the
        routes attached (one each here) and the kinds it supports."""
        octet = int(hashlib.sha256(self.stack.encode()).hexdigest()[:2], 16) % 254 + 1
        generation = (inputs.get("metadata") or {}).get("generation", 1)
        return {
            "addresses": [{"type": "IPAddress", "value": f"203.0.113.{octet}"}],
            "conditions": _conditions(generation, "Accepted", "Programmed"),
            "listeners": [
                {
                    "name": listener["name"],
                    "attachedRoutes": 1,
                    "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                    "conditions": _conditions(generation, "Accepted", "Programmed", "ResolvedRefs"),
                }
                for listener in (inputs.get("spec") or {}).get("listeners") or []
            ],
        }

    def _generic(self, inputs: dict[str, Any], resource_id: str) -> dict[str, Any]:
        """A generic resource's outputs: ARM's GET response (name, type, the API version, `properties`)."""
        arm_type = generic_arm_type(inputs)
        outputs: dict[str, Any] = {
            "name": inputs.get("resourceName"),
            "type": arm_type,
            "azureApiVersion": inputs["apiVersion"],
        }
        if arm_type == MANAGED_CLUSTERS:
            outputs.update(self._managed_cluster(inputs, resource_id))
        return outputs

    def _managed_cluster(self, inputs: dict[str, Any], resource_id: str) -> dict[str, Any]:
        """What AKS answers for a managed cluster PUT/GET at 2026-05-01: the body sent, plus the identities
        AKS creates for the add-ons, the API server's FQDN, the OIDC issuer URL and the provisioning state."""
        name = inputs["resourceName"]
        properties = dict(inputs.get("properties") or {})
        fqdn = _cluster_fqdn(
            {"resourceName": name, "dnsPrefix": properties["dnsPrefix"], "location": inputs["location"]}
        )
        self._cluster_fqdns[name] = fqdn

        def addon_identity(key: str) -> dict[str, str]:
            return {
                "clientId": deterministic_uuid(self.stack, key, "client"),
                "objectId": deterministic_uuid(self.stack, key, "object"),
                "resourceId": (
                    f"/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{properties['nodeResourceGroup']}"
                    f"/providers/{USER_ASSIGNED_IDENTITIES}/{key.lower()}-{name}"
                ),
            }

        properties["addonProfiles"] = {
            key: {**value, "identity": addon_identity(key)}
            for key, value in (properties.get("addonProfiles") or {}).items()
        }
        ingress = dict(properties.get("ingressProfile") or {})
        if (ingress.get("webAppRouting") or {}).get("enabled"):
            routing = {**ingress["webAppRouting"], "identity": addon_identity("webapprouting")}
            ingress["webAppRouting"] = routing
            properties["ingressProfile"] = ingress
        issuer = deterministic_uuid(self.stack, "oidc")
        properties["oidcIssuerProfile"] = {
            **(properties.get("oidcIssuerProfile") or {}),
            "issuerURL": f"https://{inputs['location']}.oic.prod-aks.azure.com/{TENANT_ID}/{issuer}/",
        }
        version = properties.get("kubernetesVersion", "1.34")
        properties.update(
            {
                "provisioningState": self.cluster_provisioning_state,
                "powerState": {"code": self.cluster_power_state},
                "maxAgentPools": MAX_AGENT_POOLS,
                "currentKubernetesVersion": version if version.count(".") == 2 else f"{version}.3",
                "fqdn": fqdn,
                "azurePortalFQDN": fqdn.replace(".hcp.", ".portal.hcp."),
                "resourceUID": deterministic_uuid(self.stack, resource_id).replace("-", "")[:24],
            }
        )
        identity = dict(inputs.get("identity") or {})
        # ARM answers user-assigned identities as a map keyed by resource id, not the input list.
        identity["userAssignedIdentities"] = {
            identity_id: {
                "principalId": deterministic_uuid(self.stack, identity_id, "principal"),
                "clientId": deterministic_uuid(self.stack, identity_id, "client"),
            }
            for identity_id in identity.get("userAssignedIdentities") or []
        }
        return {"properties": properties, "identity": identity}

    def _monitoring(self, resource_type: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Log Analytics, Container Insights, alerts and the workbook, as ARM answers them."""
        if resource_type == LOG_ANALYTICS_WORKSPACE:
            return {
                "customerId": deterministic_uuid(self.stack, inputs["workspaceName"], "customer"),
                "retentionInDays": inputs.get("retentionInDays", 30),
                "publicNetworkAccessForIngestion": inputs.get("publicNetworkAccessForIngestion", "Enabled"),
                "publicNetworkAccessForQuery": inputs.get("publicNetworkAccessForQuery", "Enabled"),
                "provisioningState": "Succeeded",
            }
        if resource_type == ACTION_GROUP:
            receivers = [{**r, "status": "Enabled"} for r in inputs.get("emailReceivers") or []]
            return {
                "emailReceivers": receivers,
                "webhookReceivers": list(inputs.get("webhookReceivers") or []),
            }
        if resource_type == SCHEDULED_QUERY_RULE:
            return {"isWorkspaceAlertsStorageConfigured": False, "isLegacyLogAnalyticsRule": False}
        if resource_type == METRIC_ALERT:
            return {"isMigrated": False}
        if resource_type == DATA_COLLECTION_RULE:
            immutable = deterministic_uuid(self.stack, inputs["dataCollectionRuleName"]).replace("-", "")
            return {"immutableId": f"dcr-{immutable}", "provisioningState": "Succeeded"}
        if resource_type == DATA_COLLECTION_RULE_ASSOCIATION:
            return {"name": inputs["associationName"], "provisioningState": "Succeeded"}
        if resource_type == WORKBOOK:
            revision = deterministic_uuid(self.stack, inputs["resourceName"], "revision")
            return {"revision": revision.replace("-", "")}
        return self._metrics_and_probe(resource_type, inputs)

    def _metrics_and_probe(self, resource_type: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Managed Prometheus and the availability test, with the read-only properties of their API versions
        (Microsoft.Monitor/accounts@2023-04-03, dataCollectionEndpoints@2022-06-01, components@2020-02-02 in
        verify/arm_types/), shaped like Azure's: an Azure Monitor workspace gets a managed resource group
        `MA_<name>_<region>_managed` holding its default DCE/DCR and a regional query endpoint."""
        location = inputs.get("location", "westeurope")
        if resource_type == MONITOR_WORKSPACE:
            name = inputs["azureMonitorWorkspaceName"]
            managed = (
                f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/MA_{name}_{location}_managed/providers"
            )
            label = deterministic_uuid(self.stack, name, "query")[:8]
            return {
                "accountId": deterministic_uuid(self.stack, name, "account"),
                "metrics": {
                    "prometheusQueryEndpoint": f"https://{name}-{label}.{location}.prometheus.monitor.azure.com",
                    "internalId": f"mac_{deterministic_uuid(self.stack, name, 'internal')}",
                },
                "defaultIngestionSettings": {
                    "dataCollectionEndpointResourceId": f"{managed}/{DATA_COLLECTION_ENDPOINTS}/{name}",
                    "dataCollectionRuleResourceId": f"{managed}/{DATA_COLLECTION_RULES}/{name}",
                },
                "publicNetworkAccess": "Enabled",
                "provisioningState": "Succeeded",
            }
        if resource_type == DATA_COLLECTION_ENDPOINT:
            name = inputs["dataCollectionEndpointName"]
            label = deterministic_uuid(self.stack, name, "dce")[:4]
            host = f"{name.lower()}-{label}.{location}-1"
            return {
                "configurationAccess": {"endpoint": f"https://{host}.handler.control.monitor.azure.com"},
                "logsIngestion": {"endpoint": f"https://{host}.ingest.monitor.azure.com"},
                "metricsIngestion": {"endpoint": f"https://{host}.metrics.ingest.monitor.azure.com"},
                "immutableId": "dce-" + deterministic_uuid(self.stack, name).replace("-", ""),
                "provisioningState": "Succeeded",
            }
        if resource_type == APP_INSIGHTS:
            name = inputs["resourceName"]
            key = deterministic_uuid(self.stack, name, "instrumentation-key")
            app_id = deterministic_uuid(self.stack, name, "app")
            return {
                "appId": app_id,
                "applicationId": name,
                "instrumentationKey": key,
                "connectionString": (
                    f"InstrumentationKey={key};IngestionEndpoint=https://{location}-5.in.applicationinsights."
                    f"azure.com/;LiveEndpoint=https://{location}.livediagnostics.monitor.azure.com/;"
                    f"ApplicationId={app_id}"
                ),
                "tenantId": SUBSCRIPTION_ID,
                "provisioningState": "Succeeded",
            }
        if resource_type == WEB_TEST:
            return {"provisioningState": "Succeeded"}
        return None

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        answer = {
            "azure-native:authorization:getClientConfig": _client_config,
            "azure-native:resources:getResourceGroup": _resource_group,
            "azure-native:containerservice:listManagedClusterUserCredentials": self._user_credentials,
            READ_STACK_OUTPUTS: self._stack_outputs,
            "azure-native:containerservice:getAgentPool": self._agent_pool,
        }.get(args.token)
        if answer is None:
            raise NotImplementedError(
                f"The offline engine cannot answer the invoke {args.token!r}. Teach offline/mocks.py what "
                "Azure returns for it (a realistic, deterministic value) so `make plan` and the tests keep "
                "working."
            )
        return answer(args.args)

    def _stack_outputs(self, args: dict[str, Any]) -> dict[str, Any]:
        """The engine's builtin readStackOutputs (pulumi/pulumi pkg/resource/deploy/builtins.go
        readStackReference): the named stack's outputs and which of them are secret."""
        return {"name": args["name"], "outputs": dict(self.deployed_outputs), "secretOutputNames": []}

    def _agent_pool(self, args: dict[str, Any]) -> dict[str, Any]:
        """AKS's GET of an existing pool; a pool it does not have is a 404, as in Azure."""
        pool = self.live_agent_pools.get(args["agentPoolName"])
        if pool is None:
            raise LookupError(
                f"(404) agent pool {args['agentPoolName']!r} of {args['resourceName']} not found"
            )
        return {"name": args["agentPoolName"], "provisioningState": "Succeeded", **pool}

    def _user_credentials(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args["resourceName"]
        kubeconfig = fake_kubeconfig(name, self._cluster_fqdns[name])
        return {
            "kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(kubeconfig.encode()).decode()}]
        }


def _maintenance_configuration(inputs: dict[str, Any]) -> dict[str, Any]:
    """What AKS answers for a maintenance configuration (`az aks maintenanceconfiguration show` in
    learn.microsoft.com/azure/aks/planned-maintenance): the name is the configuration's, the window comes back
    with AKS's default offset filled in and the schedule kinds not used as null. `startDate` ("the current
    date at creation time") is left out, so plans stay the same run after run."""
    window = dict(inputs.get("maintenanceWindow") or {})
    window.setdefault("utcOffset", "+00:00")
    window["schedule"] = {
        kind: (window.get("schedule") or {}).get(kind)
        for kind in ("absoluteMonthly", "daily", "relativeMonthly", "weekly")
    }
    return {
        "name": inputs["configName"],
        "type": MAINTENANCE_CONFIGURATIONS,
        "maintenanceWindow": window,
        "notAllowedTime": None,
        "timeInWeek": None,
    }


def _conditions(generation: int, *types: str) -> list[dict[str, Any]]:
    return [
        {
            "type": kind,
            "status": "True",
            "reason": kind,
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        for kind in types
    ]


def _route_status(inputs: dict[str, Any]) -> dict[str, Any]:
    """An accepted HTTPRoute's status: per parent, Accepted and ResolvedRefs, by the app routing controller
    (the GatewayClass `approuting-istio`'s controller name, istio.io/gateway-controller)."""
    return {
        "parents": [
            {
                "parentRef": parent,
                "controllerName": "istio.io/gateway-controller",
                "conditions": _conditions(1, "Accepted", "ResolvedRefs"),
            }
            for parent in (inputs.get("spec") or {}).get("parentRefs") or []
        ]
    }


def _client_config(_: dict[str, Any]) -> dict[str, Any]:
    return {
        "clientId": deterministic_uuid("deployer", "client"),
        "objectId": DEPLOYER_OBJECT_ID,
        "subscriptionId": SUBSCRIPTION_ID,
        "tenantId": TENANT_ID,
    }


def _resource_group(args: dict[str, Any]) -> dict[str, Any]:
    """The group bootstrap/ created (the offline engine assumes bootstrap has run)."""
    name = args["resourceGroupName"]
    location = pulumi.Config("muse").get("location") or "westeurope"
    return {
        "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{name}",
        "name": name,
        "location": location,
        "properties": {"provisioningState": "Succeeded"},
        "type": RESOURCE_GROUPS,
    }
