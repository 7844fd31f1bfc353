#!/usr/bin/env bash
# Explicit rollout check after `pulumi up` (which already awaits the Deployment and fails when it never
# becomes ready). Writes an Entra ID kubeconfig for the stack's AKS cluster (write-kubeconfig.sh: kubelogin,
# workloadidentity in CI), waits for the rollout and removes that kubeconfig. Its file only: the canary
# release (deploy.py --canary) keeps its own for the whole release.
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

export KUBECONFIG="${RUNNER_TEMP:-/tmp}/kubeconfig-$stack"
"$(dirname "$0")/write-kubeconfig.sh" "$resource_group" "$cluster" "$KUBECONFIG"

if ! kubectl rollout status "deployment/$deployment" --namespace "$namespace" --timeout=5m; then
  echo "::error title=Rollout failed::deployment/$deployment in $namespace did not become ready; the previous ReplicaSet keeps serving"
  kubectl get pods --namespace "$namespace" -o wide || true
  exit 1
fi
kubectl get "deployment/$deployment" --namespace "$namespace" \
  -o jsonpath='{.spec.template.spec.containers[*].image}{"\n"}'
rm -f "$KUBECONFIG"
