#!/usr/bin/env python3
"""Report whether public DNS sends the stack's host to its Gateway; never fails the deploy.

    scripts/ci/dns_check.py <host> <the Gateway's address>     # always exit 0

The smoke check (smoke-check.sh) asks the Gateway at its address directly (`curl --resolve`), because the DNS
record can only be pointed at the Gateway once the Gateway has its address, after the deploy. Whether users
reach Muse is a separate question, answered here for the step summary: a GitHub `::notice` when the host's A
records include the address, a `::warning` naming the record to set when they do not (a first deploy, a move
of the ingress, or a Gateway whose public IP changed: the add-on's LoadBalancer IP is dynamic, so recreating
the Gateway or its Service gives it a new one; docs/runbook.md, "DNS for the Gateway").

The runner's resolver (socket.getaddrinfo) shows what the public sees, modulo TTLs. Standard library only.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

Resolver = Callable[..., list[tuple[Any, ...]]]


def public_addresses(host: str, resolver: Resolver = socket.getaddrinfo) -> tuple[list[str], str]:
    """(IPv4 addresses `host` resolves to, the resolver's error or '')."""
    try:
        answers = resolver(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        return [], str(error)
    return sorted({str(answer[4][0]) for answer in answers}), ""


def report(host: str, address: str, resolver: Resolver = socket.getaddrinfo) -> tuple[str, str]:
    """(GitHub annotation level `notice` | `warning`, the message)."""
    addresses, error = public_addresses(host, resolver)
    if address and address in addresses:
        return "notice", f"public DNS resolves {host} to the Gateway's address {address}"
    found = (
        f"resolves to {', '.join(addresses)}" if addresses else f"does not resolve ({error or 'no A record'})"
    )
    return (
        "warning",
        f"public DNS for {host} {found}, not to the Gateway's address {address or '(none)'}: "
        f"users do not reach this deploy until the A record of {host} is {address or 'the Gateway address'} "
        "(docs/runbook.md, DNS for the Gateway)",
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: dns_check.py <host> <gateway address>", file=sys.stderr)
        return 0  # a report, never a gate
    level, message = report(argv[0], argv[1])
    print(f"::{level} title=Public DNS::{message}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
