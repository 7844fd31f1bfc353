#!/usr/bin/env bash
# Sign the Azure CLI in again with the current token from the refreshed federated-token file. Needed before
# az commands late in a job: `az login --federated-token` cannot renew itself once GitHub's ~5-minute
# assertion has expired (Azure/azure-cli#28708).
#   scripts/ci/az-login-federated.sh
#
# The token goes in as `@<file>`, not as its text, so it never shows in the process list (/proc/<pid>/cmdline
# is readable by every process of the runner user). The Azure CLI replaces every argument that starts with `@`
# by the content of that file, trailing newline stripped, before it parses the command (Azure/azure-cli
# src/azure-cli-core/azure/cli/core/commands/__init__.py: _expand_file_prefixed_files, called for all argv by
# AzCliCommandInvoker.execute through _pre_command_table_create). When the file cannot be read it passes the
# literal `@<file>` on (IOError -> "assume not a file"), so the file is checked here first.
set -euo pipefail

: "${AZURE_FEDERATED_TOKEN_FILE:?start scripts/ci/start-token-refresher.sh first}"
if [[ ! -s "$AZURE_FEDERATED_TOKEN_FILE" || ! -r "$AZURE_FEDERATED_TOKEN_FILE" ]]; then
  echo "::error title=Azure sign-in::the federated-token file $AZURE_FEDERATED_TOKEN_FILE is missing, empty or unreadable (is scripts/ci/start-token-refresher.sh running?)"
  exit 1
fi
az login --service-principal --username "${AZURE_CLIENT_ID:?}" --tenant "${AZURE_TENANT_ID:?}" \
  --federated-token "@$AZURE_FEDERATED_TOKEN_FILE" --allow-no-subscriptions --output none
az account set --subscription "${ARM_SUBSCRIPTION_ID:?}"
