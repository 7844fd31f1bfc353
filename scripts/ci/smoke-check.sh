#!/usr/bin/env bash
# Post-deploy smoke check: GET <museUrl>/healthz through the ingress, with retries, and fail the job when the
# service does not answer 2xx. Used by .github/workflows/main.yml after `pulumi up` of each stack.
#   scripts/ci/smoke-check.sh https://muse-dev.example.com
# A host name must be https (and verify). Plain http is accepted only for a bare IPv4 address: a stack
# without muse:ingressHost has no DNS name, so no certificate can match it; the job warns about it.
# For an https URL, plain http to the same host must answer a redirect to https (the Gateway's HTTP listener
# carries only that redirect); SMOKE_HTTP_URL overrides where plain http is asked (default http://<host>).
set -euo pipefail

base_url="${1:-}"
ipv4='[0-9]{1,3}(\.[0-9]{1,3}){3}'
if [[ "$base_url" =~ ^http://${ipv4}(:[0-9]+)?/?$ ]]; then
  echo "::warning title=Smoke check::museUrl '${base_url}' is plain http on an IP: set muse:ingressHost (and its certificate) to serve HTTPS"
elif [[ ! "$base_url" =~ ^https://[^[:space:]/]+ ]]; then
  echo "::error title=Smoke check::museUrl is '${base_url}', expected an https:// URL, or http:// on a bare IP (stack output museUrl)"
  exit 1
fi
url="${base_url%/}/healthz"

retries="${SMOKE_RETRIES:-12}"
delay="${SMOKE_RETRY_DELAY:-5}"

# --retry-all-errors also retries connection refusals and 5xx while the ingress picks up the new pods;
# --fail turns a 4xx/5xx answer into a failure once the retries are used up.
if body="$(curl --fail --silent --show-error --location \
  --retry "$retries" --retry-delay "$delay" --retry-all-errors --retry-max-time 120 \
  --connect-timeout 5 --max-time 10 "$url")"; then
  echo "Smoke check passed: $url"
  { echo "#### Smoke check"; echo "\`GET $url\` answered: \`${body:0:200}\`"; } >> "${GITHUB_STEP_SUMMARY:-/dev/null}"
else
  echo "::error title=Smoke check failed::$url did not answer 2xx after retries"
  exit 1
fi

if [[ "$base_url" == https://* ]]; then
  host="${base_url#https://}"
  plain="${SMOKE_HTTP_URL:-http://${host%%/*}}"
  answer="$(curl --silent --show-error --output /dev/null --write-out '%{http_code} %{redirect_url}' \
    --connect-timeout 5 --max-time 10 "${plain%/}/healthz" || true)"
  if [[ ! "$answer" =~ ^30[178]\ https://${host%%/*}/healthz$ ]]; then
    echo "::error title=Smoke check failed::plain http ${plain%/}/healthz answered '${answer}', expected a redirect to https://${host%%/*}/healthz"
    exit 1
  fi
  echo "Plain http redirects to https: ${plain%/}/healthz -> ${answer#* }"
fi
