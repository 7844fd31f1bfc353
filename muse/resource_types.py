"""Pulumi type tokens: each spelled once, here, and imported by the service's governance rules, the offline
engine, the verification models, the exporters and the benchmarks.

A leaf: it imports nothing, so the program and its tooling may import it from the service package (the one
exception to "the programs do not reach into the service", pyproject.toml [tool.importlinter]) without
loading the service. tests/test_architecture.py checks that it stays a leaf; tests/test_one_home.py that no
other module spells a token it names. Tokens: the providers' schemas (pulumi/pulumi-azure-native,
pulumi/pulumi-azuread, pulumi/pulumi-kubernetes).
"""

# azure-native. The typed AKS cluster resource, which the program used before the generic resource.
TYPED_CLUSTER = "azure-native:containerservice:ManagedCluster"
# A generic `azure-native:resources:Resource`: its ARM type comes from its inputs, not from the type token.
GENERIC_RESOURCE = "azure-native:resources:Resource"
# The ARM namespace and type the cluster is declared with as a generic resource (its inputs
# `resourceProviderNamespace` and `resourceType`), which the service's rules and the access model recognise.
CLUSTER_PROVIDER_NAMESPACE = "Microsoft.ContainerService"
CLUSTER_RESOURCE_TYPE = "managedClusters"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
AGENT_POOL = "azure-native:containerservice:AgentPool"
MAINTENANCE_CONFIGURATION = "azure-native:containerservice:MaintenanceConfiguration"
REGISTRY = "azure-native:containerregistry:Registry"
KEY_VAULT = "azure-native:keyvault:Vault"
KEY_VAULT_SECRET = "azure-native:keyvault:Secret"  # noqa: S105 (a type token, no secret)
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED_IDENTITY_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
SUBNET = "azure-native:network:Subnet"
LOG_ANALYTICS_WORKSPACE = "azure-native:operationalinsights:Workspace"
MONITOR_WORKSPACE = "azure-native:monitor:AzureMonitorWorkspace"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
DATA_COLLECTION_ENDPOINT = "azure-native:monitor:DataCollectionEndpoint"
DATA_COLLECTION_RULE = "azure-native:monitor:DataCollectionRule"
DATA_COLLECTION_RULE_ASSOCIATION = "azure-native:monitor:DataCollectionRuleAssociation"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
SCHEDULED_QUERY_RULE = "azure-native:monitor:ScheduledQueryRule"
PROMETHEUS_RULE_GROUP = "azure-native:alertsmanagement:PrometheusRuleGroup"
ALERT_PROCESSING_RULE = "azure-native:alertsmanagement:AlertProcessingRuleByName"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
WEB_TEST = "azure-native:applicationinsights:WebTest"
WORKBOOK = "azure-native:applicationinsights:Workbook"

# azuread (Microsoft Entra ID).
ENTRA_APPLICATION = "azuread:index/application:Application"
ENTRA_APPLICATION_FEDERATED_CREDENTIAL = (
    "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
)
ENTRA_SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"

# kubernetes.
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
K8S_SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"
K8S_GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
K8S_HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"

# The root resource of every Pulumi stack.
PULUMI_STACK = "pulumi:pulumi:Stack"
