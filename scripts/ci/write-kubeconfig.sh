#!/usr/bin/env bash
# Writes an Entra ID kubeconfig for one AKS cluster (local accounts are disabled) to <file>, converted for
# kubelogin. In CI (AZURE_FEDERATED_TOKEN_FILE set by scripts/ci/start-token-refresher.sh) kubelogin uses
# workloadidentity mode, which on a GitHub runner asks the job's OIDC endpoint for a fresh token itself
# (ACTIONS_ID_TOKEN_REQUEST_*; Azure/kubelogin v0.2.17 pkg/internal/token/provider.go), and the az CLI signs
# in again from the refreshed file first: the azure/login session cannot renew itself once GitHub's ~5-minute
# assertion has expired (Azure/azure-cli#28708). Elsewhere (a laptop) it uses the az login session.
#   scripts/ci/write-kubeconfig.sh <resource group> <cluster> <file>
# The caller owns <file> and removes it: verify-rollout.sh after its check, deploy.py's canary release (its
# own file) when the release ends.
set -euo pipefail

resource_group="${1:?usage: write-kubeconfig.sh <resource group> <cluster> <file>}"
cluster="${2:?usage: write-kubeconfig.sh <resource group> <cluster> <file>}"
file="${3:?usage: write-kubeconfig.sh <resource group> <cluster> <file>}"

login=azurecli
if [[ -n "${AZURE_FEDERATED_TOKEN_FILE:-}" ]]; then
  "$(dirname "$0")/az-login-federated.sh"
  login=workloadidentity
fi

az aks get-credentials --resource-group "$resource_group" --name "$cluster" --file "$file" --overwrite-existing
kubelogin convert-kubeconfig --login "$login" --kubeconfig "$file"
