"""`python -m cli.config schema`: the `config:` block of Pulumi.yaml, derived from StackConfig
(stack/config.py `pulumi_schema`)."""

from __future__ import annotations

import sys

import yaml

from stack.config import pulumi_schema


def main(argv: list[str]) -> int:
    if argv != ["schema"]:
        sys.exit("usage: python -m cli.config schema")
    print(yaml.safe_dump({"config": pulumi_schema()}, sort_keys=False, width=200), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
