"""`python -m cli.quota <list-usage.json> <list-skus.json> <stack>...`: the vCPU quota the stacks' node
pools lack (stack/quota.py), one line each on stderr and exit 1, or nothing and exit 0. scripts/bootstrap.sh
runs it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stack.config import load_stack_config
from stack.files import read_stack
from stack.quota import pools, shortfalls


def main(argv: Sequence[str]) -> int:
    usage = json.loads(Path(argv[0]).read_text())
    skus = json.loads(Path(argv[1]).read_text())
    stack_pools = [p for name in argv[2:] for p in pools(load_stack_config(name, read_stack(name).config))]
    problems = shortfalls(stack_pools, usage, skus)
    for problem in problems:
        print(f"bootstrap: {problem}: request a quota increase first", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
