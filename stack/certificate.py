"""The ingress certificate of a stack: the Key Vault certificate policy its config implies.

Where the certificate lives: the stack's Key Vault, under `muse:ingressTlsCertificate`. The Gateway's HTTPS
listener reads it through the application routing operator, as the gateway TLS identity, which holds Key Vault
Secrets User on that certificate's secret only (__main__.py, SecretVault.grant_certificate_read).

How it gets there and how it renews follows `muse:ingressTlsCertificateIssuer`, the Key Vault issuer name:
- `Unknown`: a certificate from a CA outside Key Vault, imported (`az keyvault certificate import`). Key Vault
  cannot renew it; 30 days before it expires Key Vault emails the vault's certificate contacts (the stack's
  `muse:alertEmails`), and a person imports the renewed one as a new version.
- the name of an issuer configured in the vault (DigiCert or GlobalSign, Key Vault's integrated CAs): Key
  Vault requests the certificate and renews it by itself 30 days before expiry.
- `Self`: self-signed, renewed by Key Vault; no client trusts it (refused in prod by stack/config.py).
Either way a renewal is a new version of the same certificate; the Gateway's listener names the unversioned
URI, so the operator's Secrets Store CSI sync (rotation poll 2 min) picks it up without a deploy.

Key Vault's certificate policy format: learn.microsoft.com/azure/key-vault/certificates/about-certificates
(policy, lifetime actions, exportable keys) and `az keyvault certificate get-default-policy`.
`scripts/tls-certificate.sh` applies the policy (`python -m cli.certificate policy <stack>` prints it).
"""

from __future__ import annotations

from typing import Any

from stack.config import SELF_SIGNED_ISSUER, StackConfig

IMPORTED_ISSUER = "Unknown"  # Key Vault's issuer name for a certificate from a CA outside Key Vault
RENEW_DAYS_BEFORE_EXPIRY = 30
# CA/Browser Forum ballot SC-081: publicly trusted TLS certificates issued from 15 March 2026 are valid for at
# most 200 days (100 from 15 March 2027, 47 from 15 March 2029). Six months stays under the current cap.
VALIDITY_IN_MONTHS = 6
SERVER_AUTH_EKU = "1.3.6.1.5.5.7.3.1"  # TLS Web Server Authentication


class CertificateError(ValueError):
    """The stack serves no certificate (no ingress host)."""


def certificate_policy(config: StackConfig) -> dict[str, Any]:
    """The Key Vault certificate policy of `config`'s ingress certificate (the JSON `--policy` takes)."""
    if not config.ingress_host:
        raise CertificateError(f"stack {config.environment} has no muse:ingressHost, so no certificate")
    issuer = config.ingress_tls_certificate_issuer
    renews_itself = issuer != IMPORTED_ISSUER
    return {
        "issuerParameters": {"name": issuer},
        # Exportable: the Gateway needs the private key, which is in the certificate's secret only if the key
        # is exportable. A new key at every renewal. Key type and size only when Key Vault makes the key (an
        # issuer): an imported certificate brings its own key (the CA's certificate may be RSA 3072 or EC), so
        # its policy names none rather than one the PFX may not match.
        "keyProperties": {
            "exportable": True,
            "reuseKey": False,
            **({} if issuer == IMPORTED_ISSUER else {"keyType": "RSA", "keySize": 2048}),
        },
        "secretProperties": {"contentType": "application/x-pkcs12"},
        # What Key Vault asks its issuer for. An imported certificate's subject, names, validity and key usage
        # are the CA's and come with the PFX; naming them would at best repeat them and at worst contradict
        # them: `keyEncipherment` maps to the key operations wrapKey/unwrapKey, which Key Vault refuses for an
        # EC key ("Unsupported key operation(s): wrapKey, unwrapKey", Azure/AzureKeyVault issue 22). So an
        # import's policy has none (every field of the REST CertificatePolicy is optional: Key Vault REST API,
        # "Import Certificate").
        **(
            {}
            if issuer == IMPORTED_ISSUER
            else {
                "x509CertificateProperties": {
                    "subject": f"CN={config.ingress_host}",
                    "subjectAlternativeNames": {"dnsNames": [config.ingress_host]},
                    "validityInMonths": VALIDITY_IN_MONTHS,
                    "keyUsage": ["digitalSignature", "keyEncipherment"],
                    "ekus": [SERVER_AUTH_EKU],
                }
            }
        ),
        "lifetimeActions": [
            {
                "trigger": {"daysBeforeExpiry": RENEW_DAYS_BEFORE_EXPIRY},
                "action": {"actionType": "AutoRenew" if renews_itself else "EmailContacts"},
            }
        ],
        "attributes": {"enabled": True},
    }


def summary(config: StackConfig) -> dict[str, str]:
    """What scripts/tls-certificate.sh needs, as KEY=VALUE lines."""
    certificate_policy(config)  # refuses a stack without a host
    return {
        "host": config.ingress_host,
        "name": config.ingress_tls_certificate,
        "issuer": config.ingress_tls_certificate_issuer,
        "self_signed": "yes" if config.ingress_tls_certificate_issuer == SELF_SIGNED_ISSUER else "no",
        "imported": "yes" if config.ingress_tls_certificate_issuer == IMPORTED_ISSUER else "no",
        "contacts": " ".join(config.alert_emails),
    }
