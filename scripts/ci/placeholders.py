"""Refuse a stack whose config still carries a committed placeholder, before anything real is done with it.

    .venv/bin/python scripts/ci/placeholders.py --stack prod

Exit 0 when the stack has none; 1 with one message naming every placeholder key and how to set it.
Pulumi.prod.yaml ships `muse:ingressHost`, `muse:operatorsGroupObjectId` and `muse:alertEmails` as
placeholders. Run it with the project's .venv. Which placeholders, and who runs it:
docs/architecture/ci-cd.md#placeholder-check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reserved_host import reserved

from stack.config import PLACEHOLDER_OBJECT_ID, ConfigError, StackConfig, load_stack_config
from stack.files import REPO_ROOT, read_stack


def placeholders(config: StackConfig) -> list[tuple[str, str]]:
    """(key, what to do) for each placeholder `config` carries, in key order."""
    found = []
    if config.alert_emails and any(reserved(address.rpartition("@")[2]) for address in config.alert_emails):
        bad = ", ".join(a for a in config.alert_emails if reserved(a.rpartition("@")[2]))
        found.append(
            (
                "alertEmails",
                f"{bad} is a placeholder under a domain reserved for examples (RFC 2606), so prod's "
                "alerts would mail nobody: set the on-call address "
                "(config set --path 'muse:alertEmails[0]' <address>)",
            )
        )
    if config.ingress_host and reserved(config.ingress_host):
        found.append(
            (
                "ingressHost",
                f"{reserved(config.ingress_host)}, a placeholder no client can reach and no CA certifies: "
                "set the organisation's DNS name (config set muse:ingressHost <name>), then put its "
                "certificate into the stack's Key Vault "
                "(scripts/tls-certificate.sh; docs/runbook.md, 'TLS certificate')",
            )
        )
    if config.operators_group_object_id == PLACEHOLDER_OBJECT_ID:
        found.append(
            (
                "operatorsGroupObjectId",
                "is the Nil UUID placeholder, so no person could reach the cluster: set the object id of the "
                "operators' Entra ID group (az ad group show --group <name> --query id -o tsv), then run "
                "scripts/bootstrap.sh again so it grants the group its roles",
            )
        )
    return found


def problem(stack: str, root: Path = REPO_ROOT) -> str | None:
    """The message that stops a real deploy of `stack`, or None. A config the program would refuse anyway is
    left to the program (its own message lists every problem)."""
    try:
        config = load_stack_config(stack, read_stack(stack, root).config)
    except ConfigError:
        return None
    found = placeholders(config)
    if not found:
        return None
    lines = "\n".join(f"  - muse:{key}: {what}" for key, what in found)
    return (
        f"stack {stack} still carries {len(found)} committed placeholder(s); nothing was deployed:\n{lines}\n"
        f"Set each with `scripts/stack {stack} config ...` (or edit Pulumi.{stack}.yaml), "
        "commit the stack file and run again."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    message = problem(args.stack, Path.cwd())
    if message:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
