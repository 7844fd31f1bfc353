#!/usr/bin/env bash
# Whether this repository can attest images (main.yml's build) and verify them (deploy-prod), from the repository
# variable ARTIFACT_ATTESTATIONS that scripts/bootstrap.sh records (docs/github-setup.md):
#   enabled      public repository, or private/internal on GitHub Enterprise Cloud: attest and verify
#   unavailable  a private/internal repository without GitHub Enterprise Cloud, which GitHub does not let
#                attest (docs.github.com "Using artifact attestations to establish provenance for builds")
# Anything else - the variable missing, a typo - stops the job: provenance is never skipped because nobody
# said whether it can exist.
#   scripts/ci/attestation-mode.sh MODE WHAT    (WHAT: the job's words for the summary)
# Writes enabled=true|false to $GITHUB_OUTPUT and one "provenance: ..." line to the job summary.
set -euo pipefail
mode="${1-}"
what="${2:?what this job does with provenance}"
output="${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
summary="${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}"

case "$mode" in
  enabled)
    echo "enabled=true" >> "$output"
    echo "- provenance: $what" >> "$summary"
    ;;
  unavailable)
    echo "enabled=false" >> "$output"
    echo "- **provenance: not verifiable** - this repository's plan cannot create artifact attestations (repository variable ARTIFACT_ATTESTATIONS=unavailable, recorded by the bootstrap); nothing proves this digest was built by main.yml" >> "$summary"
    echo "::warning title=Provenance::provenance: not verifiable (ARTIFACT_ATTESTATIONS=unavailable): the image digest carries no attestation"
    ;;
  *)
    echo "::error title=Provenance::repository variable ARTIFACT_ATTESTATIONS is '${mode}', expected 'enabled' or 'unavailable'. scripts/bootstrap.sh records it (docs/github-setup.md); set it by hand with: gh variable set ARTIFACT_ATTESTATIONS --body enabled|unavailable"
    exit 1
    ;;
esac
