#!/usr/bin/env bash
# Once per subscription, by an administrator (Owner on the subscription + Application Administrator in
# Entra ID), before CI can work. Re-runnable: every step checks what exists first. docs/bootstrap.md.
#
#   1. Resource providers (subscription-wide, which CI cannot do) and the Pulumi state backend: storage account
#      (no shared keys, no public blobs, versioning) with a container per environment plus the bootstrap's,
#      and a Key Vault with one key per environment (plus the bootstrap's) that encrypts that stack's secrets.
#      Made with az: Pulumi state cannot live in a stack that does not exist.
#   2. bootstrap/ stack: per-environment resource groups + GitHub OIDC identities and their roles.
#   3. The environments' stacks (stack/environments.txt: dev, prod), each in its own container with its own
#      key; the stack config bootstrap outputs (muse:imagePushPrincipalId on the first, and on each one the
#      next environment's muse:imageImportPrincipalId) set.
#   4. Only the environments' registries, so the first main.yml run has somewhere to push.
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

mapfile -t environments < <("$python" -m cli.environments)  # stack/environments.txt, in promotion order
first="${environments[0]}"
suffix="$(stack_value "$first" muse:nameSuffix)"
location="$(stack_value "$first" muse:location)"
owner="$(stack_value "$first" muse:owner)"
declare -A state
while IFS='=' read -r key value; do state[$key]="$value"; done < <("$python" -m cli.naming state "$suffix")
backend_url="${state[backend_url]}"
secrets_provider="${state[secrets_provider]}"
env_state() { # env_state <environment> <field>: e.g. env_state prod backend_url
  "$python" -m cli.naming state "$suffix" "$1" | sed -n "s/^$2=//p"
}
tags=(app=muse "owner=$owner" env=shared managed-by=bootstrap-script)
repository="$(stack_value "$first" muse:githubRepository)"

echo "== 0/5 the OIDC subject prefix GitHub issues for $repository (muse:githubSubjectPrefixes)"
# Entra matches federated subjects exactly, and GitHub writes repo:OWNER@OWNER_ID/REPO@REPO_ID for
# repositories created or renamed after 2026-07-15 (rbac/github_subjects.py cites both). GitHub's own answer
# wins over the stack files: a prefix they do not list, or a customised subject template, stops here, before
# anything is created. Without gh (or not logged in) the configured prefixes are used as they are, and said
# so; GitHub refusing (403, 404) stops here unless MUSE_GITHUB_OFFLINE=1.
configured_prefixes="$("$python" -c 'import json; from stack.files import read_stack; from stack.config import load_stack_config
print(json.dumps(list(load_stack_config("dev", read_stack("dev").config).github_subject_prefixes)))')"
gh_read() { # gh_read <api path>: GitHub's answer on stdout; status 4 when gh is missing or not logged in
  # (`gh help exit-codes`: 4 = authentication required), 44 for an HTTP 404, 1 for any other failure. gh api
  # prints `gh: <message> (HTTP <status>)` on stderr and exits 1 on an HTTP error (cli/cli pkg/cmd/api/api.go).
  command -v gh >/dev/null || return 4
  local err status=0
  err="$(mktemp)"
  gh api "$1" 2>"$err" || status=$?
  if [[ $status != 0 ]] && grep -q "(HTTP 404)" "$err"; then status=44; fi
  [[ $status == 0 || $status == 4 || $status == 44 ]] || cat "$err" >&2
  rm -f "$err"
  return "$status"
}
status=0
customization="$(gh_read "repos/$repository/actions/oidc/customization/sub")" || status=$?
if [[ $status == 0 ]]; then
  # A repository that follows its organisation's template says so only by use_default false without keys:
  # the organisation's answer (404: it has none) goes along; the check refuses one it could not read.
  org_status=0
  org_answer="$(gh_read "orgs/${repository%%/*}/actions/oidc/customization/sub")" || org_status=$?
  case $org_status in
    0) org_template=(--org-template "$org_answer") ;;
    44) org_template=(--org-template "") ;;
    *) org_template=() ;;
  esac
  prefix="$("$python" -m cli.github_subjects prefix "$repository" "$configured_prefixes" "${org_template[@]}" \
    <<<"$customization")"
  echo "   GitHub issues $prefix:<context>; configured: $configured_prefixes"
elif [[ $status == 4 || "${MUSE_GITHUB_OFFLINE:-}" == 1 ]]; then
  echo "   could not ask GitHub ($([[ $status == 4 ]] && echo "gh missing or not logged in" || echo \
    "MUSE_GITHUB_OFFLINE=1")): using $configured_prefixes as configured. Check it: gh api" \
    "repos/$repository/actions/oidc/customization/sub"
else
  echo "bootstrap: GitHub refused to say which OIDC subject prefix $repository uses ($([[ $status == 44 ]] &&
    echo "HTTP 404: no such repository, or no access" || echo "see gh's message above")). Log in as an" \
    "administrator of the repository (gh auth login), or set MUSE_GITHUB_OFFLINE=1 to use the configured" \
    "prefixes $configured_prefixes unchecked" >&2
  exit 1
fi

# Azure RBAC: a new role assignment can take up to 10 minutes to take effect (learn.microsoft.com/azure/
# role-based-access-control/troubleshooting, "Symptom - Role assignment changes are not being detected"), so
# the data-plane calls right after a self-grant may be refused with 403 for a while. After each self-grant a
# harmless read that needs the new role is retried until it passes, bounded (MUSE_GRANT_WAIT_SECONDS, 10
# minutes) with progress printed; then the real calls run.
grant_wait_seconds="${MUSE_GRANT_WAIT_SECONDS:-600}"
grant_poll_seconds="${MUSE_GRANT_POLL_SECONDS:-15}"
wait_for_grant() { # wait_for_grant <what> <command...>: retry a harmless read until the new grant works
  local what="$1" started=$SECONDS waited
  shift
  until "$@" >/dev/null 2>&1; do
    waited=$((SECONDS - started))
    if ((waited >= grant_wait_seconds)); then
      echo "   $what: still refused after ${waited}s (Azure documents up to 10 minutes of propagation);" \
        "re-run scripts/bootstrap.sh, which repeats only what is missing" >&2
      return 1
    fi
    echo "   $what: not effective yet (${waited}s of at most ${grant_wait_seconds}s), retrying in ${grant_poll_seconds}s"
    sleep "$grant_poll_seconds"
  done
  echo "   $what: effective after $((SECONDS - started))s"
}
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
    *) echo "bootstrap: the $what name is taken elsewhere in Azure: set another muse:nameSuffix in Pulumi.dev.yaml and Pulumi.prod.yaml (one of your own: .venv/bin/python -m cli.naming derive <owner/name>)" >&2 ;;
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
# `[currentValue, limit]` read an empty limit. A stack whose cluster exists is already in currentValue. It
# also prints what a later shape change of each new stack's user pools needs on top (a second generation of
# pools, not a surge node each): `python -m cli.quota --shape-change` checks that before such a deploy.
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
  "$python" -m cli.quota "$quota_dir/usage.json" "$quota_dir/skus.json" "${new_clusters[@]}" || exit 1
fi

echo "== 1/5 resource providers, state backend in ${state[resource_group]} ($location)"
# CI's roles are scoped to resource groups: it cannot register a provider (stack/providers.py says why each).
while read -r namespace; do
  az provider register --namespace "$namespace" --wait --output none
done < <("$python" -m cli.providers)
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
wait_for_grant "Storage Blob Data Contributor on ${state[storage_account]}" \
  az storage container list --account-name "${state[storage_account]}" --auth-mode login --num-results 1 --output none
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
wait_for_grant "Key Vault Crypto Officer on ${state[key_vault]}" \
  az keyvault key list --vault-name "${state[key_vault]}" --maxresults 1 --output none
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

echo "== 4/5 registries only (the first main.yml run pushes to $first, each later environment imports)"
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
# the detection. GET /orgs/{org} returns `plan` only to the organization's owners (docs.github.com REST "Get an
# organization"), and a user-owned repository has no organization: a plan that cannot be read stops here and
# asks, rather than recording `unavailable` for an Enterprise Cloud organization.
attestations="${MUSE_ARTIFACT_ATTESTATIONS:-}"
if [[ -z "$attestations" ]] && $set_github; then
  if [[ "$(gh api "repos/$repository" --jq .visibility)" == public ]]; then
    attestations=enabled
  else
    plan="$(gh api "orgs/${repository%%/*}" --jq '.plan.name // ""' 2>/dev/null || true)"
    case "$plan" in
      enterprise) attestations=enabled ;;
      "")
        echo "bootstrap: cannot read the GitHub plan of ${repository%%/*} (shown to organization owners only)." >&2
        echo "  Re-run with MUSE_ARTIFACT_ATTESTATIONS=enabled (GitHub Enterprise Cloud) or =unavailable" >&2
        echo "  (any other plan of a private repository); a re-run changes nothing that exists." >&2
        exit 2 ;;
      *) attestations=unavailable ;;
    esac
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
  echo "Create the GitHub environments $(printf '%s ' "${environments[@]}")and their preview-<name> twins"
  echo "(deployment branches: main only; production-tier ones with required reviewers) and set these Actions"
  echo "variables on $repository"
  echo "(docs/github-setup.md):"
  for line in "${variables[@]}"; do
    IFS=$'\t' read -r level name value <<<"$line"
    echo "  $level  $name=$value"
  done
fi

# The credentialed jobs install the Pulumi CLI only against a committed checksum (scripts/ci/install_pulumi.py):
# without a line for the workflows' PULUMI_VERSION every one of them stops at its Pulumi install.
pulumi_version="$(sed -n 's/^  PULUMI_VERSION: "\([0-9.]*\)".*/\1/p' .github/workflows/main.yml)"
if ! grep -q "  pulumi-v${pulumi_version}-linux-x64\.tar\.gz$" scripts/ci/pulumi-binaries.sha256; then
  echo "WARNING: scripts/ci/pulumi-binaries.sha256 has no checksum for Pulumi ${pulumi_version}: every credentialed"
  echo "  job will stop at its Pulumi install. Before the first push to main, run \`make pulumi-checksums\` where"
  echo "  get.pulumi.com and GitHub are reachable, review the diff and commit it (docs/github-setup.md)."
fi

# The GitHub environments whose deploys wait for a reviewer: those of production-tier stacks (muse:tier).
approval_environments="$("$python" -c 'from stack.environments import ENVIRONMENTS as E, requires_approval as r; print(" ".join(e for e in E if r(e)))')"
cat <<EOF
Done. Commit Pulumi.dev.yaml and Pulumi.prod.yaml (secretsprovider, encryptedkey, muse:imagePushPrincipalId,
muse:imageImportPrincipalId: none of them is a secret), add required reviewers to the GitHub environment(s) ${approval_environments}, protect main,
then merge to main: main.yml builds, pushes and deploys dev, and waits for approval before prod.
EOF
