"""`python -m cli.certificate policy|show <stack>`: the Key Vault policy of a stack's ingress certificate as
JSON, or a `key=value` summary of it (stack/certificate.py), for scripts/tls-certificate.sh."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stack.certificate import CertificateError, certificate_policy, summary
from stack.config import StackConfig, load_stack_config
from stack.files import read_stack


def _config(stack: str) -> StackConfig:
    # The stack files of the working directory: scripts/tls-certificate.sh runs from the repository's root.
    return load_stack_config(stack, read_stack(stack, Path.cwd()).config)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("policy", "show"):
        print("usage: python -m cli.certificate policy|show <stack>", file=sys.stderr)
        return 2
    command, stack = argv
    try:
        config = _config(stack)
        if command == "policy":
            print(json.dumps(certificate_policy(config), indent=2, sort_keys=True))
        else:
            print("\n".join(f"{key}={value}" for key, value in summary(config).items()))
    except (CertificateError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
