"""The Azure resource providers a fresh subscription must have registered before CI can deploy Muse.

Registering a provider is a subscription-wide action (`<namespace>/register/action`), which no CI identity has
(every role is scoped to a resource group or a resource), and ARM refuses a resource whose provider is not
registered (`MissingSubscriptionRegistration`). So step 1 of scripts/bootstrap.sh registers these, as the
administrator (`az provider register --namespace <ns> --wait`, idempotent). A test checks that every ARM type
the stacks and the bootstrap manage belongs to a namespace listed here.
"""

from __future__ import annotations

from components.kubernetes_cluster import CLUSTER_PROVIDER_NAMESPACE

# namespace -> why Muse needs it
RESOURCE_PROVIDERS: dict[str, str] = {
    "Microsoft.ContainerRegistry": "the registries",
    CLUSTER_PROVIDER_NAMESPACE: "the AKS clusters and their node pools",
    "Microsoft.Compute": "the node VM scale sets AKS creates in the node resource group",
    "Microsoft.Network": "the load balancer, public IPs and network of the node resource group",
    "Microsoft.KeyVault": "the stacks' vaults and the state key vault",
    "Microsoft.ManagedIdentity": "the kubelet, control-plane and workload identities",
    "Microsoft.OperationalInsights": "the Log Analytics workspaces",
    "Microsoft.OperationsManagement": "Container Insights (the monitoring add-on's solution)",
    "Microsoft.Insights": (
        "alerts, action groups, data collection endpoints and rules, workbooks, Application Insights and "
        "its availability tests"
    ),
    "Microsoft.Monitor": "the Azure Monitor workspaces (managed Prometheus)",
    "Microsoft.AlertsManagement": "Prometheus rule groups and alert processing rules",
    "Microsoft.Storage": "the Pulumi state account",
}
