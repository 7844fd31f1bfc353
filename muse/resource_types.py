"""Pulumi type tokens that the service's governance rules and the program's tooling both name.

A leaf: it imports nothing, so the program and its tooling may import it from the service package (the one
exception to "the programs do not reach into the service", pyproject.toml [tool.importlinter]) without
loading the service. tests/test_architecture.py checks that it stays a leaf.
"""

# The typed AKS cluster resource of azure-native, which the program used before the generic resource.
TYPED_CLUSTER = "azure-native:containerservice:ManagedCluster"
# A generic `azure-native:resources:Resource`: its ARM type comes from its inputs, not from the type token.
GENERIC_RESOURCE = "azure-native:resources:Resource"
