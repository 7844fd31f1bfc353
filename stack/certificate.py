"""The ingress certificate of a stack: the Key Vault certificate policy its config implies.

The certificate lives in the stack's Key Vault under `muse:ingressTlsCertificate`; how it gets there and
renews follows `muse:ingressTlsCertificateIssuer` (`Unknown`: imported; an integrated CA; `Self`).
`scripts/tls-certificate.sh` applies the policy (`python -m cli.certificate policy <stack>` prints it).
Why: docs/architecture/azure.md#the-ingress-certificate-policy."""

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
