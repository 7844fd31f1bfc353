#!/usr/bin/env bash
# Post-deploy smoke check: GET <museUrl>/healthz through the ingress, with retries, and fail the job when the
# service does not answer 2xx. Used by scripts/ci/deploy.py after `pulumi up` of each stack.
#   scripts/ci/smoke-check.sh https://muse.contoso.com <the Gateway's address: stack output museGatewayAddress>
#   scripts/ci/smoke-check.sh http://20.0.0.1          (a stack without muse:ingressHost: the Gateway's IP)
# A host name must be https (and verify). Plain http is accepted only for a bare IPv4 address: a stack
# without muse:ingressHost has no DNS name, so no certificate can match it; the job warns about it.
# For an https URL, plain http to the same host must answer a redirect to https (the Gateway's HTTP listener
# carries only that redirect); SMOKE_HTTP_URL overrides where plain http is asked (default http://<host>).
#
# An https URL is checked against the Gateway itself, not through public DNS: the DNS record can only point
# at the Gateway once it is Programmed and has its address, i.e. after the deploy (docs/runbook.md), so a
# first deploy, a move to a new Gateway and a rollback would otherwise fail here. Both requests are pinned
# with `curl --resolve <host>:<port>:<address>`, as AKS's own articles test a Gateway before DNS points at it
# (MicrosoftDocs/azure-aks-docs@fb060abe articles/aks/app-routing-gateway-api-tls.md l.304 and
# app-routing-gateway-api-dns-tls.md l.448-454: "bypass local DNS resolution and direct the request to the
# gateway's external IP"), so the TLS handshake still sends the host as SNI and curl verifies the certificate
# against the host name. Whether public DNS already points at
# that address is reported by scripts/ci/dns_check.py, which never fails the deploy.
set -euo pipefail

base_url="${1:-}"
gateway_address="${2:-}"
ipv4='[0-9]{1,3}(\.[0-9]{1,3}){3}'
resolve_https=()
resolve_http=()
if [[ "$base_url" =~ ^http://${ipv4}(:[0-9]+)?/?$ ]]; then
  echo "::warning title=Smoke check::museUrl '${base_url}' is plain http on an IP: set muse:ingressHost (and its certificate) to serve HTTPS"
elif [[ ! "$base_url" =~ ^https://[^[:space:]/:]+(:[0-9]+)?(/.*)?$ ]]; then
  echo "::error title=Smoke check::museUrl is '${base_url}', expected an https:// URL, or http:// on a bare IP (stack output museUrl)"
  exit 1
elif [[ ! "$gateway_address" =~ ^${ipv4}$ ]]; then
  echo "::error title=Smoke check::the Gateway's address is '${gateway_address}', expected an IPv4 address (stack output museGatewayAddress; empty while the Gateway is not Programmed: kubectl describe gateway)"
  exit 1
fi

if [[ "$base_url" == https://* ]]; then
  authority="${base_url#https://}"
  authority="${authority%%/*}"
  host="${authority%%:*}"
  https_port=443
  [[ "$authority" == *:* ]] && https_port="${authority##*:}"
  resolve_https=(--resolve "${host}:${https_port}:${gateway_address}")
  plain="${SMOKE_HTTP_URL:-http://${host}}"
  plain_authority="${plain#http://}"
  plain_authority="${plain_authority%%/*}"
  plain_port=80
  [[ "$plain_authority" == *:* ]] && plain_port="${plain_authority##*:}"
  resolve_http=(--resolve "${plain_authority%%:*}:${plain_port}:${gateway_address}")
  echo "Checking ${host} against the Gateway at ${gateway_address} (curl --resolve), not through public DNS"
fi
url="${base_url%/}/healthz"

retries="${SMOKE_RETRIES:-12}"
delay="${SMOKE_RETRY_DELAY:-5}"

# --retry-all-errors also retries connection refusals and 5xx while the ingress picks up the new pods;
# --fail turns a 4xx/5xx answer into a failure once the retries are used up.
if body="$(curl --fail --silent --show-error --location "${resolve_https[@]}" \
  --retry "$retries" --retry-delay "$delay" --retry-all-errors --retry-max-time 120 \
  --connect-timeout 5 --max-time 10 "$url")"; then
  echo "Smoke check passed: $url${gateway_address:+ (at $gateway_address)}"
  { echo "#### Smoke check"; echo "\`GET $url\`${gateway_address:+ at the Gateway address \`$gateway_address\`} answered: \`${body:0:200}\`"; } >> "${GITHUB_STEP_SUMMARY:-/dev/null}"
else
  echo "::error title=Smoke check failed::$url did not answer 2xx after retries${gateway_address:+ (asked at the Gateway address $gateway_address)}"
  exit 1
fi

if [[ "$base_url" == https://* ]]; then
  answer="$(curl --silent --show-error --output /dev/null --write-out '%{http_code} %{redirect_url}' \
    "${resolve_http[@]}" --connect-timeout 5 --max-time 10 "${plain%/}/healthz" || true)"
  if [[ ! "$answer" =~ ^30[178]\ https://${authority}/healthz$ ]]; then
    echo "::error title=Smoke check failed::plain http ${plain%/}/healthz answered '${answer}', expected a redirect to https://${authority}/healthz"
    exit 1
  fi
  echo "Plain http redirects to https: ${plain%/}/healthz -> ${answer#* }"
fi
