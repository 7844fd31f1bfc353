"""The secrets block of .env.example, rendered from muse/contract.py SECRETS: a newcomer copies the file, so
it documents every secret the service requires, and a secret added to the list appears here by itself."""

from __future__ import annotations

from muse.config import MIN_TOKEN_LENGTH
from muse.contract import SECRETS

SECTION = "secrets"
PATH = ".env.example"
# Obviously a placeholder (tests/service/test_service_config.py), long enough for the service to start.
PLACEHOLDER = "local-dev-token-change-me-0123456789"


def render() -> str:
    lines = []
    for secret in SECRETS:
        lines += [
            f"# {secret.use} Required, at least {MIN_TOKEN_LENGTH} characters, no whitespace.",
            f"# At runtime: Key Vault secret {secret.name}. This value is a placeholder for local use.",
            f"{secret.env}={PLACEHOLDER}",
        ]
    return "\n".join(lines)
