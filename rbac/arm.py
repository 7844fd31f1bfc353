"""Azure Resource Manager names: resource types and the operations (actions) on them, each spelled once.

The program's building blocks, its offline engine, the verification models and the exporters all name them
(a role's actions, a Bicep resource's type, a mock's resource id, the permission model's checks), so they
live at the lowest layer, which every other one may import; tests/test_one_home.py checks that no other
module spells one. Types: learn.microsoft.com/azure/templates; operations:
learn.microsoft.com/azure/role-based-access-control/resource-provider-operations.
"""

# Resource types.
MANAGED_CLUSTERS = "Microsoft.ContainerService/managedClusters"
MAINTENANCE_CONFIGURATIONS = "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
REGISTRIES = "Microsoft.ContainerRegistry/registries"
KEY_VAULTS = "Microsoft.KeyVault/vaults"
KEY_VAULT_SECRETS = "Microsoft.KeyVault/vaults/secrets"
USER_ASSIGNED_IDENTITIES = "Microsoft.ManagedIdentity/userAssignedIdentities"
FEDERATED_IDENTITY_CREDENTIALS = (
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
)
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"
RESOURCE_GROUPS = "Microsoft.Resources/resourceGroups"
STORAGE_ACCOUNTS = "Microsoft.Storage/storageAccounts"
STORAGE_BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
LOG_ANALYTICS_WORKSPACES = "Microsoft.OperationalInsights/workspaces"
MONITOR_ACCOUNTS = "Microsoft.Monitor/accounts"
ACTION_GROUPS = "Microsoft.Insights/actionGroups"
APP_INSIGHTS_COMPONENTS = "Microsoft.Insights/components"
DATA_COLLECTION_ENDPOINTS = "Microsoft.Insights/dataCollectionEndpoints"
DATA_COLLECTION_RULES = "Microsoft.Insights/dataCollectionRules"
DATA_COLLECTION_RULE_ASSOCIATIONS = "Microsoft.Insights/dataCollectionRuleAssociations"
METRIC_ALERT_RULES = "Microsoft.Insights/metricAlerts"
SCHEDULED_QUERY_RULES = "Microsoft.Insights/scheduledQueryRules"
WEB_TESTS = "Microsoft.Insights/webtests"
WORKBOOKS = "Microsoft.Insights/workbooks"
PROMETHEUS_RULE_GROUPS = "Microsoft.AlertsManagement/prometheusRuleGroups"
ACTION_RULES = "Microsoft.AlertsManagement/actionRules"

# Operations.
ROLE_ASSIGNMENTS_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENTS_DELETE = "Microsoft.Authorization/roleAssignments/delete"
KEY_DECRYPT = "Microsoft.KeyVault/vaults/keys/decrypt/action"
ASSIGN_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
LIST_CLUSTER_USER_CREDENTIAL = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
RESOURCE_GROUPS_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"  # noqa: S105 (an operation, no secret)
MONITOR_METRICS_READ = "Microsoft.Monitor/accounts/data/metrics/read"
CUSTOM_RESOURCES_READ = "Microsoft.ContainerService/managedClusters/customresources/read"

# Request and resource attributes of ABAC conditions (`@Request[<attribute>]`, `@Resource[<attribute>]`):
# learn.microsoft.com/azure/role-based-access-control/conditions-authorization-actions-attributes and
# learn.microsoft.com/azure/aks/entra-id-authorization (custom resources, a preview).
ASSIGNED_ROLE = "Microsoft.Authorization/roleAssignments:RoleDefinitionId"
ASSIGNED_PRINCIPAL = "Microsoft.Authorization/roleAssignments:PrincipalId"
ASSIGNED_PRINCIPAL_TYPE = "Microsoft.Authorization/roleAssignments:PrincipalType"
CUSTOM_RESOURCE_GROUP = "Microsoft.ContainerService/managedClusters/customResources:group"
CUSTOM_RESOURCE_KIND = "Microsoft.ContainerService/managedClusters/customResources:kind"
