#!/usr/bin/env bash
# Give the rest of the job a federated-token file that stays valid for its whole timeout, and point the
# Azure consumers at it (scripts/ci/federated_token_refresher.py says who reads it and why).
#   scripts/ci/start-token-refresher.sh <job timeout-minutes>
# Writes one token synchronously (fails the step when the OIDC endpoint does not answer), then keeps
# refreshing in the background; the runner ends the process with the job ("Cleaning up orphan processes").
set -euo pipefail

minutes="${1:?usage: start-token-refresher.sh <job timeout-minutes>}"
here="$(cd "$(dirname "$0")" && pwd)"
file="${RUNNER_TEMP:?}/azure-federated-token"

python3 "$here/federated_token_refresher.py" --file "$file" --once
nohup python3 "$here/federated_token_refresher.py" --file "$file" --for-seconds "$((minutes * 60))" \
  > "$RUNNER_TEMP/federated-token-refresher.log" 2>&1 &
echo "AZURE_FEDERATED_TOKEN_FILE=$file" >> "${GITHUB_ENV:?}"
echo "Federated-token refresher running (pid $!) for ${minutes} minutes: $file"
