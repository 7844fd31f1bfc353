#!/usr/bin/env bash
# Once per subscription, by an administrator (Owner on the subscription + Application Administrator in
# Entra ID), before CI can work. Re-runnable: every step checks what exists first. docs/bootstrap.md.
#
#   1. Pulumi state backend: storage account (no shared keys, no public blobs, versioning) + Key Vault key
#      that encrypts stack secrets. Made with az: Pulumi state cannot live in a stack that does not exist.
#   2. bootstrap/ stack: per-environment resource groups + GitHub OIDC identities and their roles.
#   3. dev and prod stacks: created with the Key Vault secrets provider; deployPrincipalId set.
#   4. The registries of dev and prod, so the first main.yml run has somewhere to push, and the protected
#      stateful resources with their CanNotDelete locks (prod), which CI's deploy identity cannot write.
#   5. GitHub variables (with --github and an authenticated gh), else printed for a person to set.
#
# Usage: scripts/bootstrap.sh [--github]
set -euo pipefail
cd "$(dirname "$0")/.."

set_github=false
[[ "${1:-}" == "--github" ]] && set_github=true
python=".venv/bin/python"
[[ -x "$python" ]] || make venv >/dev/null

stack_value() { # stack_value <stack> <key>: a value from Pulumi.<stack>.yaml (defaults from Pulumi.yaml)
  "$python" -c 'import sys; from stack.files import read_stack; print(read_stack(sys.argv[1]).config[sys.argv[2]])' "$1" "$2"
}

suffix="$(stack_value dev muse:nameSuffix)"
location="$(stack_value dev muse:location)"
owner="$(stack_value dev muse:owner)"
declare -A state
while IFS='=' read -r key value; do state[$key]="$value"; done < <("$python" -m stack.naming state "$suffix")
backend_url="azblob://${state[container]}?storage_account=${state[storage_account]}"
secrets_provider="azurekeyvault://${state[key_vault]}.vault.azure.net/keys/${state[key]}"
tags=(app=muse "owner=$owner" env=shared managed-by=bootstrap-script)

echo "== 1/5 state backend in ${state[resource_group]} ($location)"
subscription="$(az account show --query id --output tsv)"
admin="$(az ad signed-in-user show --query id --output tsv)"
group_id="/subscriptions/$subscription/resourceGroups/${state[resource_group]}"
account_id="$group_id/providers/Microsoft.Storage/storageAccounts/${state[storage_account]}"
vault_id="$group_id/providers/Microsoft.KeyVault/vaults/${state[key_vault]}"

az group show --name "${state[resource_group]}" --output none 2>/dev/null ||
  az group create --name "${state[resource_group]}" --location "$location" --tags "${tags[@]}" --output none
az storage account show --name "${state[storage_account]}" --resource-group "${state[resource_group]}" --output none 2>/dev/null ||
  az storage account create --name "${state[storage_account]}" --resource-group "${state[resource_group]}" \
    --location "$location" --sku Standard_ZRS --kind StorageV2 --min-tls-version TLS1_2 --https-only true \
    --allow-blob-public-access false --allow-shared-key-access false --tags "${tags[@]}" --output none
az storage account blob-service-properties update --account-name "${state[storage_account]}" \
  --resource-group "${state[resource_group]}" --enable-versioning true \
  --enable-delete-retention true --delete-retention-days 30 --output none
az role assignment create --assignee-object-id "$admin" --assignee-principal-type User \
  --role "Storage Blob Data Contributor" --scope "$account_id" --output none
az storage container create --name "${state[container]}" --account-name "${state[storage_account]}" \
  --auth-mode login --output none
az keyvault show --name "${state[key_vault]}" --output none 2>/dev/null ||
  az keyvault create --name "${state[key_vault]}" --resource-group "${state[resource_group]}" \
    --location "$location" --enable-rbac-authorization true --enable-purge-protection true \
    --retention-days 90 --tags "${tags[@]}" --output none
az role assignment create --assignee-object-id "$admin" --assignee-principal-type User \
  --role "Key Vault Crypto Officer" --scope "$vault_id" --output none
az keyvault key show --vault-name "${state[key_vault]}" --name "${state[key]}" --output none 2>/dev/null ||
  az keyvault key create --vault-name "${state[key_vault]}" --name "${state[key]}" --kty RSA --size 3072 --output none

echo "== 2/5 bootstrap stack (resource groups, GitHub identities)"
export AZURE_KEYVAULT_AUTH_VIA_CLI=true # the secrets provider uses the az login session
pulumi login "$backend_url"
(
  cd bootstrap
  pulumi stack select main --create --secrets-provider "$secrets_provider"
  pulumi up --stack main --yes
)
bootstrap_output() { (cd bootstrap && pulumi stack output --stack main "$1"); }

echo "== 3/5 environment stacks"
for env in dev prod; do
  pulumi stack select "$env" --create --secrets-provider "$secrets_provider"
  pulumi config set --stack "$env" muse:deployPrincipalId "$(bootstrap_output "${env}DeployPrincipalId")"
done

echo "== 4/5 registries, and protected resources with their delete locks (CI cannot write locks)"
for env in dev prod; do
  targets=()
  while IFS= read -r urn; do targets+=(--target "$urn"); done \
    < <("$python" -m offline.plan --stack "$env" --format first-deploy-targets)
  pulumi up --stack "$env" --yes "${targets[@]}"
done

echo "== 5/5 GitHub variables"
declare -A repository_variables=(
  [AZURE_PREVIEW_CLIENT_ID]="$(bootstrap_output AZURE_PREVIEW_CLIENT_ID)"
  [AZURE_CLIENT_ID]="$(bootstrap_output devDeployClientId)"
  [AZURE_TENANT_ID]="$(bootstrap_output AZURE_TENANT_ID)"
  [AZURE_SUBSCRIPTION_ID]="$(bootstrap_output AZURE_SUBSCRIPTION_ID)"
  [PULUMI_BACKEND_URL]="$backend_url"
)
prod_client_id="$(bootstrap_output prodDeployClientId)"
repository="$(stack_value dev muse:githubRepository)"
if $set_github; then
  for name in "${!repository_variables[@]}"; do
    gh variable set "$name" --repo "$repository" --body "${repository_variables[$name]}"
  done
  gh variable set AZURE_CLIENT_ID --repo "$repository" --env prod --body "$prod_client_id"
else
  echo "Set these GitHub Actions variables on $repository (docs/github-setup.md):"
  for name in "${!repository_variables[@]}"; do echo "  repository  $name=${repository_variables[$name]}"; done
  echo "  environment prod  AZURE_CLIENT_ID=$prod_client_id"
fi

cat <<EOF
Done. Commit Pulumi.dev.yaml and Pulumi.prod.yaml (secretsprovider, encryptedkey, muse:deployPrincipalId:
none of them is a secret), create the GitHub environment 'prod' with required reviewers, protect main,
then merge to main: main.yml builds, pushes and deploys dev, and waits for approval before prod.
EOF
