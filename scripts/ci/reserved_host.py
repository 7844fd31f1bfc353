#!/usr/bin/env python3
"""Refuse a stack whose `muse:ingressHost` is a reserved example name, before anything real is done with it.

    scripts/ci/reserved_host.py --stack prod     # the host in Pulumi.prod.yaml
    scripts/ci/reserved_host.py --host <name>    # a host given directly (scripts/tls-certificate.sh)

Exit 0 when the stack has no host or a host outside the reserved names; 1 with the reason otherwise.
Standard library only. The reserved names (RFC 2606, RFC 6761) and who runs it:
docs/architecture/ci-cd.md#reserved-host-names."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

RESERVED_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606 section 3
RESERVED_TOP_LEVEL = ("test", "example", "invalid", "localhost")  # RFC 2606 section 2
# `  muse:ingressHost: <value>` directly under `config:`, the form Pulumi writes (`pulumi config set`).
_HOST_LINE = re.compile(r"""^  muse:ingressHost:[ \t]*(?P<value>"[^"]*"|'[^']*'|[^\s#]+)?[ \t]*(#.*)?$""")


def reserved(host: str) -> str | None:
    """Why `host` is a reserved name, or None."""
    name = host.strip().rstrip(".").lower()
    for domain in (*RESERVED_DOMAINS, *RESERVED_TOP_LEVEL):
        if name == domain or name.endswith(f".{domain}"):
            section = "3" if domain in RESERVED_DOMAINS else "2"
            return f"{host} is under {domain}, reserved for examples (RFC 2606 section {section})"
    return None


def stack_ingress_host(stack: str, root: Path) -> str | None:
    """`muse:ingressHost` of Pulumi.<stack>.yaml in `root`, or None when the stack sets none."""
    for line in (root / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8").splitlines():
        match = _HOST_LINE.match(line)
        if match:
            value = (match.group("value") or "").strip("\"'")
            return value or None
    return None


def problem(stack: str, root: Path) -> str | None:
    """The message that stops a real deploy of `stack`, or None."""
    host = stack_ingress_host(stack, root)
    why = reserved(host) if host else None
    if why is None:
        return None
    return (
        f"stack {stack}: muse:ingressHost {why}, a placeholder no client can reach and no CA certifies. "
        f"Set the organisation's DNS name (pulumi config set --stack {stack} muse:ingressHost <name>, commit "
        f"Pulumi.{stack}.yaml), put its certificate into the stack's Key Vault (scripts/tls-certificate.sh) "
        "and deploy again (docs/runbook.md, 'TLS certificate')"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack")
    which.add_argument("--host")
    args = parser.parse_args(argv)
    message = reserved(args.host) if args.host is not None else problem(args.stack, Path.cwd())
    if message:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
