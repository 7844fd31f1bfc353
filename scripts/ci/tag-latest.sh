#!/usr/bin/env bash
# Move the registry's `latest` tag to the digest a stack now runs, after its deploy succeeded (main.yml calls it
# only then), so `latest` never names an image that failed or was rolled back.
#   scripts/ci/tag-latest.sh <stack> <sha256:digest>
# A server-side retag within the stack's own registry: `az acr import` with the registry itself as the source,
# named by its resource id (stack output registryId) in --registry, and --force to move an existing tag.
# Azure/azure-cli acr/import.py passes a resource id to ARM as is (ImportSource(resource_id=...)); a login
# server in --source would first be looked up by listing registries and, if not found, be pulled anonymously. It needs Microsoft.ContainerRegistry/registries/importImage/action on the registry: in the
# deploy identity's Contributor today; the narrowest built-in role with it is "Container Registry Data Importer
# and Data Reader" (577a9874-89fd-4f24-9dbd-b5034d0ad23a). AcrPush alone cannot (pull/read and push/write only).
set -euo pipefail

stack="${1:?usage: tag-latest.sh <stack> <sha256:digest>}"
digest="${2:?usage: tag-latest.sh <stack> <sha256:digest>}"
repository="${IMAGE_REPOSITORY:-muse}"
if [[ ! "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "::error title=latest::'$digest' is not sha256:<64 hex>"
  exit 1
fi
# Late in a long job: sign the az CLI in again from the refreshed federated token (Azure/azure-cli#28708).
if [[ -n "${AZURE_FEDERATED_TOKEN_FILE:-}" ]]; then
  "$(dirname "$0")/az-login-federated.sh"
fi

registry="$(pulumi stack output registryName --stack "$stack")"
registry_id="$(pulumi stack output registryId --stack "$stack")"
login_server="$(pulumi stack output registryLoginServer --stack "$stack")"
if [[ ! "$registry_id" =~ ^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/"$registry"$ ]]; then
  echo "::error title=latest::stack output registryId '$registry_id' is not the id of registry '$registry'"
  exit 1
fi
az acr import --name "$registry" --registry "$registry_id" --source "$repository@$digest" \
  --image "$repository:latest" --force
latest="$(az acr repository show --name "$registry" --image "$repository:latest" --query digest --output tsv)"
if [[ "$latest" != "$digest" ]]; then
  echo "::error title=latest::$login_server/$repository:latest is '$latest', expected $digest"
  exit 1
fi
echo "$login_server/$repository:latest -> $digest"
echo "- \`$login_server/$repository:latest\` now names \`$digest\` (the image $stack runs)" >> "${GITHUB_STEP_SUMMARY:-/dev/null}"
