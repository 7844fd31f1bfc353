#!/usr/bin/env bash
# Explicit rollout check after `pulumi up` (which already awaits the Deployment and fails when it never
# becomes ready). Fetches an Entra ID kubeconfig for the stack's AKS cluster (local accounts are disabled),
# converts it for kubelogin and waits for the rollout. In CI (AZURE_FEDERATED_TOKEN_FILE set by
# scripts/ci/start-token-refresher.sh) kubelogin uses workloadidentity mode, which on a GitHub runner asks the
# job's OIDC endpoint for a fresh token itself (ACTIONS_ID_TOKEN_REQUEST_*; Azure/kubelogin v0.2.17
# pkg/internal/token/provider.go), and the az CLI signs in again from the refreshed file first: the azure/login session cannot renew itself once GitHub's ~5-minute
# assertion has expired (Azure/azure-cli#28708). Elsewhere (a laptop) it uses the az login session.
#   scripts/ci/verify-rollout.sh dev
# Reads the stack outputs resourceGroupName and clusterName; the namespace and Deployment name come from
# the optional outputs museNamespace / museDeployment and default to "muse-<stack>" (stack/naming.py)
# and "muse".
set -euo pipefail

stack="${1:?usage: verify-rollout.sh <stack>}"
outputs="$(pulumi stack output --stack "$stack" --json)"
field() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]) or sys.argv[2])' "$1" "$2" <<<"$outputs"; }

resource_group="$(field resourceGroupName '')"
cluster="$(field clusterName '')"
namespace="$(field museNamespace "muse-$stack")"
deployment="$(field museDeployment muse)"
if [[ -z "$resource_group" || -z "$cluster" ]]; then
  echo "::error title=Rollout check::stack $stack has no resourceGroupName/clusterName output"
  exit 1
fi

login=azurecli
if [[ -n "${AZURE_FEDERATED_TOKEN_FILE:-}" ]]; then
  "$(dirname "$0")/az-login-federated.sh"
  login=workloadidentity
fi

export KUBECONFIG="${RUNNER_TEMP:-/tmp}/kubeconfig-$stack"
az aks get-credentials --resource-group "$resource_group" --name "$cluster" --file "$KUBECONFIG" --overwrite-existing
kubelogin convert-kubeconfig --login "$login" --kubeconfig "$KUBECONFIG"

if ! kubectl rollout status "deployment/$deployment" --namespace "$namespace" --timeout=5m; then
  echo "::error title=Rollout failed::deployment/$deployment in $namespace did not become ready; the previous ReplicaSet keeps serving"
  kubectl get pods --namespace "$namespace" -o wide || true
  exit 1
fi
kubectl get "deployment/$deployment" --namespace "$namespace" \
  -o jsonpath='{.spec.template.spec.containers[*].image}{"\n"}'
rm -f "$KUBECONFIG"
