#!/usr/bin/env bash
# Verifies, before an environment imports it, that an image digest carries a build-provenance attestation signed by this
# repository's main.yml running on refs/heads/main on a GitHub-hosted runner (main.yml's build job attests every
# pushed digest with actions/attest). Fails - and so stops deploy-prod before `az acr import` - when it does not.
#   scripts/ci/verify-provenance.sh LOGIN_SERVER/REPOSITORY DIGEST
# `gh attestation verify oci://...` reads the image from the registry (the caller must be logged in to it:
# az acr login, with the deployer's Reader on the source registry that the import needs anyway) and the
# attestations from GitHub's API (GH_TOKEN); flags as in cli.github.com/manual/gh_attestation_verify.
set -euo pipefail
image="${1:?LOGIN_SERVER/REPOSITORY}"
digest="${2:?DIGEST}"
repository="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}"
summary="${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}"

if [[ ! "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "::error title=Provenance::digest '$digest' is not sha256:<64 hex>"
  exit 1
fi
login_server="${image%%/*}"
if [[ ! "$login_server" =~ ^[a-z0-9]+\.azurecr\.io$ || "$image" != "$login_server"/* ]]; then
  echo "::error title=Provenance::'$image' is not <registry>.azurecr.io/<repository>"
  exit 1
fi
az acr login --name "${login_server%%.*}"
signer="$repository/.github/workflows/main.yml"
if ! gh attestation verify "oci://$image@$digest" --repo "$repository" --signer-workflow "$signer" \
  --source-ref refs/heads/main --deny-self-hosted-runners; then
  echo "::error title=Provenance::$image@$digest has no valid build-provenance attestation from $signer on refs/heads/main: not importing it into ${STACK:-this environment}"
  echo "- **provenance: verification FAILED** for \`$image@$digest\` (expected: signed by \`$signer\` on \`refs/heads/main\`); the import did not run" >> "$summary"
  exit 1
fi
echo "- provenance: verified - \`$image@$digest\` was built by \`$signer\` on \`refs/heads/main\` (gh attestation verify)" >> "$summary"
