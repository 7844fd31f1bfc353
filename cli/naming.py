"""`python -m cli.naming state <nameSuffix> [environment]`: the state backend's names (stack/naming.py), one
`key=value` a line, so shell scripts read them from their one home and never retype them. Without an
environment: the bootstrap stack's backend. `python -m cli.naming derive <owner/name>`: a fork's own
nameSuffix."""

from __future__ import annotations

import sys
from dataclasses import asdict

from stack.naming import StateBackendNames, derived_suffix


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "derive":
        print(derived_suffix(argv[1]))
        return 0
    if len(argv) not in (2, 3) or argv[0] != "state":
        sys.exit("usage: python -m cli.naming state <nameSuffix> [environment] | derive <owner/name>")
    names = (
        StateBackendNames.for_environment(argv[2], argv[1])
        if len(argv) == 3
        else StateBackendNames.for_bootstrap(argv[1])
    )
    for field, value in asdict(names).items():
        print(f"{field}={value}")
    print(f"backend_url={names.backend_url}")
    print(f"secrets_provider={names.secrets_provider}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
