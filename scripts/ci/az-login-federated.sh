#!/usr/bin/env bash
# Sign the Azure CLI in again with the current token from the refreshed federated-token file. Needed before
# az commands late in a job: `az login --federated-token` cannot renew itself once GitHub's ~5-minute
# assertion has expired (Azure/azure-cli#28708).
#   scripts/ci/az-login-federated.sh
set -euo pipefail

: "${AZURE_FEDERATED_TOKEN_FILE:?start scripts/ci/start-token-refresher.sh first}"
az login --service-principal --username "${AZURE_CLIENT_ID:?}" --tenant "${AZURE_TENANT_ID:?}" \
  --federated-token "$(cat "$AZURE_FEDERATED_TOKEN_FILE")" --allow-no-subscriptions --output none
az account set --subscription "${ARM_SUBSCRIPTION_ID:?}"
