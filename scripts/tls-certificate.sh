#!/usr/bin/env bash
# Put a stack's ingress certificate into its Key Vault, as its config says (stack/certificate.py):
#   muse:ingressTlsCertificateIssuer Unknown   a CA's certificate you import (and import again to renew):
#       scripts/tls-certificate.sh prod --import muse.pfx [--password-file <file>]
#   an issuer configured in the vault (DigiCert/GlobalSign) or Self: Key Vault issues it and renews it:
#       scripts/tls-certificate.sh prod
# Run by a person with Key Vault Certificates Officer on the stack's vault (CI's deploy identity has no
# certificate rights), after the vault exists (scripts/bootstrap.sh step 4 creates prod's) and before the
# first deploy that serves the host. Sets the vault's certificate contacts to muse:alertEmails: Key Vault emails
# them 30 days before expiry (the renewal reminder of an imported certificate). docs/runbook.md, "TLS
# certificate", has the whole procedure.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 <stack> [--import <certificate.pfx> [--password-file <file>]]" >&2; exit 2; }
stack="${1:-}"
[[ -n "$stack" ]] || usage
shift
pfx="" password_file=""
while (($#)); do
  case "$1" in
    --import) pfx="${2:-}"; [[ -n "$pfx" ]] || usage; shift 2 ;;
    --password-file) password_file="${2:-}"; [[ -n "$password_file" ]] || usage; shift 2 ;;
    *) usage ;;
  esac
done

python=".venv/bin/python"
[[ -x "$python" ]] || make venv >/dev/null
declare -A cert
# The stack's config, validated (an invalid one stops here with the program's own message).
shown="$("$python" -m cli.certificate show "$stack")" || exit 2
while IFS='=' read -r key value; do cert[$key]="$value"; done <<<"$shown"
# A reserved example name (Pulumi.prod.yaml's placeholder muse.example.com) gets no certificate, and a
# placeholder contact is reminded of nothing: set the real values first (scripts/ci/placeholders.py, RFC 2606).
scripts/ci/reserved_host.py --host "${cert[host]}" || {
  echo "set muse:ingressHost of stack $stack to the organisation's DNS name first (docs/runbook.md, TLS certificate)" >&2
  exit 2
}
"$python" scripts/ci/placeholders.py --stack "$stack" || exit 2
policy="$(mktemp)"
trap 'rm -f "$policy"' EXIT
"$python" -m cli.certificate policy "$stack" > "$policy"

if [[ "${cert[imported]}" == yes ]]; then
  [[ -n "$pfx" ]] || { echo "issuer Unknown: import the CA's certificate for ${cert[host]}: $0 $stack --import <file.pfx>" >&2; exit 2; }
  [[ -n "${cert[contacts]}" ]] || {
    echo "an imported certificate is renewed by a person whom Key Vault emails before it expires: set muse:alertEmails" >&2
    exit 2
  }
elif [[ -n "$pfx" ]]; then
  echo "issuer ${cert[issuer]} issues and renews the certificate itself; --import is for issuer Unknown" >&2
  exit 2
fi

# Through scripts/stack: the stack's own state container (state-<env>), not whatever `pulumi login` holds.
vault="$(scripts/stack "$stack" stack output keyVaultName)"
echo "== ${cert[name]} for ${cert[host]} in Key Vault $vault (issuer ${cert[issuer]})"

for email in ${cert[contacts]}; do
  az keyvault certificate contact add --vault-name "$vault" --email "$email" >/dev/null
done

if [[ "${cert[imported]}" == yes ]]; then
  password=()
  [[ -z "$password_file" ]] || password=(--password "$(<"$password_file")")
  az keyvault certificate import --vault-name "$vault" --name "${cert[name]}" --file "$pfx" \
    --policy "@$policy" "${password[@]}" >/dev/null
else
  if [[ "${cert[self_signed]}" != yes ]] &&
    ! az keyvault certificate issuer show --vault-name "$vault" --issuer-name "${cert[issuer]}" >/dev/null; then
    echo "Key Vault $vault has no issuer ${cert[issuer]}: create it once with your CA account, e.g." >&2
    echo "  az keyvault certificate issuer create --vault-name $vault --issuer-name ${cert[issuer]} --provider-name DigiCert --account-id <id> --password <api key>" >&2
    exit 3
  fi
  az keyvault certificate create --vault-name "$vault" --name "${cert[name]}" --policy "@$policy" >/dev/null
fi

# What the Gateway will serve: the certificate for the host, and when it expires. A CA issuer answers later: the
# request stays pending until the CA has issued it (hours for an OV certificate).
if [[ "${cert[imported]}" == no && "${cert[self_signed]}" == no ]]; then
  az keyvault certificate pending show --vault-name "$vault" --name "${cert[name]}" --query status -o tsv
else
  az keyvault certificate show --vault-name "$vault" --name "${cert[name]}" \
    --query "{subject: policy.x509CertificateProperties.subject, expires: attributes.expires}" -o tsv
fi
echo "Done. The Gateway reads it as https://$vault.vault.azure.net/certificates/${cert[name]} (every new version too)."
