"""`python -m cli.quota <list-usage.json> <list-skus.json> <stack>...`: the vCPU quota the stacks' node
pools lack (stack/quota.py), one line each on stderr and exit 1, or nothing and exit 0, with a note per stack
of what a later shape change of its user pools needs on top. scripts/bootstrap.sh runs it.

`python -m cli.quota --shape-change <list-usage.json> <list-skus.json> <stack>`: before a deploy that changes
a deployed stack's user pools' shape (with the edited stack file), whether the new generation of pools fits
on top of what runs (stack/quota.py `shape_change_pools`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stack.config import load_stack_config
from stack.files import read_stack
from stack.quota import pools, shape_change_note, shape_change_pools, shortfalls


def main(argv: Sequence[str]) -> int:
    shape_change = bool(argv) and argv[0] == "--shape-change"
    argv = argv[1:] if shape_change else argv
    usage = json.loads(Path(argv[0]).read_text())
    skus = json.loads(Path(argv[1]).read_text())
    configs = {name: load_stack_config(name, read_stack(name).config) for name in argv[2:]}
    if shape_change:
        # A deployed stack: its old pools are in currentValue; the new generation comes on top.
        new = [p for config in configs.values() for p in shape_change_pools(config)]
        problems = shortfalls(new, usage, skus, surge=False)
        for problem in problems:
            print(f"shape change: {problem.replace('the pools', 'the new user pools')}", file=sys.stderr)
        return 1 if problems else 0
    stack_pools = [p for config in configs.values() for p in pools(config)]
    problems = shortfalls(stack_pools, usage, skus)
    for problem in problems:
        print(f"bootstrap: {problem}: request a quota increase first", file=sys.stderr)
    if not problems:
        for name, config in configs.items():
            print(f"bootstrap: note: {shape_change_note(name, config, skus)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
