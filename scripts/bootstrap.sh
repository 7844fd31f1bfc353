#!/usr/bin/env bash
# Once per subscription, by an administrator (Owner on the subscription + Application Administrator in
# Entra ID), before CI can work. Re-runnable: every step checks what exists first. docs/bootstrap.md.
#
#   1. Resource providers (subscription-wide, which CI cannot do) and the Pulumi state backend: storage account
#      (no shared keys, no public blobs, versioning) with a container per environment plus the bootstrap's,
#      and a Key Vault with one key per environment (plus the bootstrap's) that encrypts that stack's secrets.
#      Made with az: Pulumi state cannot live in a stack that does not exist.
#   2. bootstrap/ stack: per-environment resource groups + GitHub OIDC identities and their roles.
#   3. dev and prod stacks, each in its own container with its own key; the stack config bootstrap outputs
#      (muse:imagePushPrincipalId and muse:imageImportPrincipalId for dev) set.
#   4. Only the registries of dev and prod, so the first main.yml run has somewhere to push.
#   5. GitHub environments and variables (with --github and an authenticated gh), else printed for a person.
#
# Usage: scripts/bootstrap.sh [--github]
set -euo pipefail
cd "$(dirname "$0")/.."

set_github=false
[[ "${1:-}" == "--github" ]] && set_github=true
case "${MUSE_ARTIFACT_ATTESTATIONS:-}" in
  "" | enabled | unavailable) ;;
  *) echo "MUSE_ARTIFACT_ATTESTATIONS must be 'enabled' or 'unavailable', not '$MUSE_ARTIFACT_ATTESTATIONS'" >&2; exit 2 ;;
esac
python=".venv/bin/python"
# Always: idempotent, and a .venv made before this project was installed editable (or by the Pulumi CLI
# from requirements.txt) would not import the bootstrap program's packages.
make venv >/dev/null

stack_value() { # stack_value <stack> <key>: a value from Pulumi.<stack>.yaml (defaults from Pulumi.yaml)
  "$python" -c 'import sys; from stack.files import read_stack; print(read_stack(sys.argv[1]).config[sys.argv[2]])' "$1" "$2"
}

suffix="$(stack_value dev muse:nameSuffix)"
location="$(stack_value dev muse:location)"
owner="$(stack_value dev muse:owner)"
environments=(dev prod)
declare -A state
while IFS='=' read -r key value; do state[$key]="$value"; done < <("$python" -m stack.naming state "$suffix")
backend_url="${state[backend_url]}"
secrets_provider="${state[secrets_provider]}"
env_state() { # env_state <environment> <field>: e.g. env_state prod backend_url
  "$python" -m stack.naming state "$suffix" "$1" | sed -n "s/^$2=//p"
}
tags=(app=muse "owner=$owner" env=shared managed-by=bootstrap-script)
repository="$(stack_value dev muse:githubRepository)"

echo "== 0/5 the OIDC subject prefix GitHub issues for $repository (muse:githubSubjectPrefixes)"
# Entra matches federated subjects exactly, and GitHub writes repo:OWNER@OWNER_ID/REPO@REPO_ID for
# repositories created or renamed after 2026-07-15 (rbac/github_subjects.py cites both). GitHub's own answer
# wins over the stack files: a prefix they do not list, or a customised subject template, stops here, before
# anything is created. Without gh access the configured prefixes are used as they are.
configured_prefixes="$("$python" -c 'import json; from stack.files import read_stack; from stack.config import load_stack_config
print(json.dumps(list(load_stack_config("dev", read_stack("dev").config).github_subject_prefixes)))')"
if command -v gh >/dev/null && customization="$(gh api "repos/$repository/actions/oidc/customization/sub" 2>/dev/null)" &&
  [[ -n "$customization" ]]; then
  prefix="$("$python" -m rbac.github_subjects prefix "$repository" "$configured_prefixes" <<<"$customization")"
  echo "   GitHub issues $prefix:<context>; configured: $configured_prefixes"
else
  echo "   could not ask GitHub (gh missing, not logged in, or no admin access to $repository): using" \
    "$configured_prefixes as configured. Check it: gh api repos/$repository/actions/oidc/customization/sub"
fi

echo "== 0/5 preflight: the global names are free and the vCPU quota covers the pools (nothing is created yet)"
# Registry and storage names are global across Azure: one taken by someone else fails only mid-deploy. A name
# that exists in this subscription is ours from an earlier run. `check-name` answers nameAvailable
# (Azure/azure-cli acr/custom.py acr_check_name; storage account check-name), without creating anything.
name_free() { # name_free <what> <show command...> -- <check-name command...>
  local what="$1"; shift
  local show=() check=()
  while [[ "$1" != -- ]]; do show+=("$1"); shift; done; shift; check=("$@")
  "${show[@]}" --output none 2>/dev/null && return 0
  local answer verdict
  # {nameAvailable, reason, message}: reason AlreadyExists, or Invalid / AccountNameInvalid for a name Azure
  # refuses whoever holds it (storage and Key Vault CheckNameAvailabilityResult; ACR RegistryNameStatus).
  answer="$("${check[@]}" --output json)" || {
    echo "bootstrap: could not check the $what name (${check[*]} failed): nothing was created" >&2
    exit 1
  }
  verdict="$("$python" -c 'import json, sys; a = json.load(sys.stdin) or {}
print("free" if a.get("nameAvailable") is True else "invalid" if "invalid" in str(a.get("reason") or "").lower() else "taken", a.get("message") or "", sep=": ")' <<<"$answer")"
  case "$verdict" in
    free:*) return 0 ;;
    invalid:*) echo "bootstrap: Azure refuses the $what name (${verdict#invalid: }): fix muse:nameSuffix in Pulumi.dev.yaml and Pulumi.prod.yaml" >&2 ;;
    *) echo "bootstrap: the $what name is taken elsewhere in Azure: set another muse:nameSuffix in Pulumi.dev.yaml and Pulumi.prod.yaml" >&2 ;;
  esac
  exit 1
}
name_free "state storage account ${state[storage_account]}" az storage account show --name "${state[storage_account]}" \
  -- az storage account check-name --name "${state[storage_account]}"
# Key Vault names stay taken while a deleted vault is soft-deleted (purge protection: 90 days in prod), and
# `az keyvault check-name` says so too.
name_free "state Key Vault ${state[key_vault]}" az keyvault show --name "${state[key_vault]}" \
  -- az keyvault check-name --name "${state[key_vault]}"
for env in "${environments[@]}"; do
  read -r registry vault < <("$python" -c 'import sys; from stack.naming import ResourceNames as R; n = R.for_stack(sys.argv[1], sys.argv[2]); print(n.registry, n.key_vault)' "$env" "$(stack_value "$env" muse:nameSuffix)")
  name_free "registry $registry" az acr show --name "$registry" -- az acr check-name --name "$registry"
  name_free "Key Vault $vault" az keyvault show --name "$vault" -- az keyvault check-name --name "$vault"
done
# vCPU quota per VM family and for the region (`cores`) against the pools at their maximum plus an upgrade's
# surge (stack/quota.py says how it counts). The JSON is parsed in Python: `--output tsv` prints a flat
# list one value per line (microsoft/knack knack/output.py _TsvOutput), so `read used limit` of
# `[currentValue, limit]` read an empty limit. A stack whose cluster exists is already in currentValue.
quota_dir="$(mktemp -d)"
trap 'rm -rf "$quota_dir"' EXIT
new_clusters=()
for env in "${environments[@]}"; do
  read -r cluster cluster_group < <("$python" -c 'import sys; from stack.naming import ResourceNames as R; n = R.for_stack(sys.argv[1], sys.argv[2]); print(n.cluster, n.resource_group)' "$env" "$(stack_value "$env" muse:nameSuffix)")
  az aks show --name "$cluster" --resource-group "$cluster_group" --output none 2>/dev/null || new_clusters+=("$env")
done
if ((${#new_clusters[@]})); then
  az vm list-usage --location "$location" --output json >"$quota_dir/usage.json"
  az vm list-skus --location "$location" --resource-type virtualMachines --output json >"$quota_dir/skus.json"
  "$python" -m stack.quota "$quota_dir/usage.json" "$quota_dir/skus.json" "${new_clusters[@]}" || exit 1
fi

echo "== 1/5 resource providers, state backend in ${state[resource_group]} ($location)"
# CI's roles are scoped to resource groups: it cannot register a provider (stack/providers.py says why each).
while read -r namespace; do
  az provider register --namespace "$namespace" --wait --output none
done < <("$python" -m stack.providers)
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
for container in "${state[container]}" $(for env in "${environments[@]}"; do env_state "$env" container; done); do
  az storage container create --name "$container" --account-name "${state[storage_account]}" \
    --auth-mode login --output none
done
az keyvault show --name "${state[key_vault]}" --output none 2>/dev/null ||
  az keyvault create --name "${state[key_vault]}" --resource-group "${state[resource_group]}" \
    --location "$location" --enable-rbac-authorization true --enable-purge-protection true \
    --retention-days 90 --tags "${tags[@]}" --output none
az role assignment create --assignee-object-id "$admin" --assignee-principal-type User \
  --role "Key Vault Crypto Officer" --scope "$vault_id" --output none
for key in "${state[key]}" $(for env in "${environments[@]}"; do env_state "$env" key; done); do
  az keyvault key show --vault-name "${state[key_vault]}" --name "$key" --output none 2>/dev/null ||
    az keyvault key create --vault-name "${state[key_vault]}" --name "$key" --kty RSA --size 3072 --output none
done

echo "== 2/5 bootstrap stack (resource groups, GitHub identities)"
# The state backend and the Key Vault secrets provider use azidentity's DefaultAzureCredential, which falls
# through to the az login session here (AZURE_KEYVAULT_AUTH_VIA_CLI is ignored by the gocloud.dev Pulumi pins).
# No `pulumi login`: it is per machine and would leave the CLI pointed at the bootstrap's container, where a
# later `pulumi preview --stack prod` finds no stack. Each command gets its backend (scripts/stack does the same).
(
  cd bootstrap
  export PULUMI_BACKEND_URL="$backend_url"
  pulumi stack select main --create --secrets-provider "$secrets_provider"
  pulumi up --stack main --yes
)
bootstrap_json() { # bootstrap_json <output> <python over `o`>: what it prints, from the bootstrap stack's output
  (cd bootstrap && PULUMI_BACKEND_URL="$backend_url" pulumi stack output --stack main --json "$1") |
    "$python" -c "import json,sys; o=json.load(sys.stdin); $2"
}

# People: the bootstrap stack above granted each environment's operators' group (muse:operatorsGroupObjectId)
# its cluster roles (bootstrap/__main__.py, rbac/roles.py OPERATOR_ROLES); say where there is none.
for env in "${environments[@]}"; do
  group="$(stack_value "$env" muse:operatorsGroupObjectId)"
  if [[ -z "$group" || "$group" == 00000000-0000-0000-0000-000000000000 ]]; then
    echo "   $env: no operators' group (muse:operatorsGroupObjectId unset or the placeholder): nobody gets kubectl"
  fi
done

echo "== 3/5 environment stacks, each in its own container with its own key"
for env in "${environments[@]}"; do
  PULUMI_BACKEND_URL="$(env_state "$env" backend_url)"
  export PULUMI_BACKEND_URL
  pulumi stack select "$env" --create --secrets-provider "$(env_state "$env" secrets_provider)"
  while IFS=$'\t' read -r key value; do
    pulumi config set --stack "$env" "$key" "$value"
  done < <(bootstrap_json stackConfig "[print(k, v, sep='\\t') for k, v in o.get('$env', {}).items()]")
done

echo "== 4/5 registries only (the first main.yml run pushes to dev and imports into prod)"
# Not `pulumi up --target <Registry URN>`: on a fresh stack the engine refuses a targeted create whose
# parent (the new ContainerRegistry component) or provider is an untargeted create ("untargeted create",
# pulumi/pulumi pkg/resource/deploy/step_generator.go validateSteps, regression test
# TestTargetUntargetedParent), and the cluster's Kubernetes provider is always targeted. The program has
# a registry stage instead (__main__.py): the registry, its component and the build identity's AcrPush.
# Only on a stack that has never been deployed: on one that holds the cluster, the stage is a program without
# everything else, so `pulumi up` would DELETE all of it (the engine deletes what the program no longer
# registers: pulumi/pulumi step_generator.go GenerateDeletes). The preview of the stage says what it would do
# (`pulumi preview --json`, pkg/display/json.go PreviewDigest); anything but create/same means the stack is
# already deployed, and CI owns it.
stage_steps() { # stage_steps <stack>: "<op> <urn>" per step of the registry stage's preview
  MUSE_BOOTSTRAP_STAGE=registry pulumi preview --stack "$1" --json |
    "$python" -c 'import json,sys; [print(s["op"], s["urn"]) for s in json.load(sys.stdin).get("steps") or []]'
}
for env in "${environments[@]}"; do
  PULUMI_BACKEND_URL="$(env_state "$env" backend_url)"  # each environment's own state container
  export PULUMI_BACKEND_URL
  steps="$(stage_steps "$env")"
  if grep -qvE '^(create|same) ' <<<"$steps"; then
    echo "   $env: skipped, the stack is already deployed (the registry stage would change or delete" \
      "$(grep -cvE '^(create|same) ' <<<"$steps") resource(s) it does not register); deploys go through main.yml"
    continue
  fi
  MUSE_BOOTSTRAP_STAGE=registry pulumi up --stack "$env" --yes
done

unset PULUMI_BACKEND_URL

echo "== 5/5 GitHub environments and variables (bootstrap output githubVariables)"
# level<TAB>name<TAB>value; level is "repository" or an environment's name.
mapfile -t variables < <(bootstrap_json githubVariables "
for k, v in sorted(o['repository'].items()): print('repository', k, v, sep='\t')
for e, vs in sorted(o['environments'].items()):
    for k, v in sorted(vs.items()): print(e, k, v, sep='\t')")
# Artifact attestations (main.yml attests each pushed digest, deploy-prod verifies it before the prod import)
# exist for public repositories, and for private or internal ones only on GitHub Enterprise Cloud
# (docs.github.com "Using artifact attestations to establish provenance for builds"; actions/attest README).
# Recorded once, explicitly, as ARTIFACT_ATTESTATIONS=enabled|unavailable: the workflows stop when it is
# missing and print "provenance: not verifiable" when it is unavailable. MUSE_ARTIFACT_ATTESTATIONS overrides
# the detection (an organization's plan is readable by its owners only).
attestations="${MUSE_ARTIFACT_ATTESTATIONS:-}"
if [[ -z "$attestations" ]] && $set_github; then
  if [[ "$(gh api "repos/$repository" --jq .visibility)" == public ]]; then
    attestations=enabled
  elif [[ "$(gh api "orgs/${repository%%/*}" --jq '.plan.name // ""' 2>/dev/null || true)" == enterprise ]]; then
    attestations=enabled
  else
    attestations=unavailable
  fi
fi
case "${attestations:-unknown}" in
  enabled | unavailable) variables+=("repository"$'\t'"ARTIFACT_ATTESTATIONS"$'\t'"$attestations") ;;
  *) echo "ARTIFACT_ATTESTATIONS: set it to 'enabled' (public repository or GitHub Enterprise Cloud) or 'unavailable'" ;;
esac
if $set_github; then
  # The environments as they are now (reviewers a person set in the UI, timers): every PUT keeps them.
  current_environments="$(gh api --paginate "repos/$repository/environments")"
  for environment in $(printf '%s\n' "${variables[@]}" | cut -f1 | sort -u | grep -vx repository); do
    # Only main may enter an environment (a pull request's job cannot); prod's reviewers are set by a person,
    # and a PUT without them would remove them: the body keeps the current rules (scripts/github_environment.py).
    "$python" scripts/github_environment.py "$environment" <<<"$current_environments" |
      gh api --method PUT "repos/$repository/environments/$environment" --silent --input -
    gh api --method POST "repos/$repository/environments/$environment/deployment-branch-policies" \
      --silent -f name=main -f type=branch || true # already there on a re-run
  done
  for line in "${variables[@]}"; do
    IFS=$'\t' read -r level name value <<<"$line"
    if [[ "$level" == repository ]]; then
      gh variable set "$name" --repo "$repository" --body "$value"
    else
      gh variable set "$name" --repo "$repository" --env "$level" --body "$value"
    fi
  done
else
  echo "Create the GitHub environments dev, prod, preview-dev, preview-prod (deployment branches: main"
  echo "only; prod with required reviewers) and set these Actions variables on $repository"
  echo "(docs/github-setup.md):"
  for line in "${variables[@]}"; do
    IFS=$'\t' read -r level name value <<<"$line"
    echo "  $level  $name=$value"
  done
fi

cat <<EOF
Done. Commit Pulumi.dev.yaml and Pulumi.prod.yaml (secretsprovider, encryptedkey, muse:imagePushPrincipalId,
muse:imageImportPrincipalId: none of them is a secret), add required reviewers to the GitHub environment 'prod', protect main,
then merge to main: main.yml builds, pushes and deploys dev, and waits for approval before prod.
EOF
