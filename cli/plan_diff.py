"""`make plan-diff BASE=<git ref>`: what a change does to each stack, offline and without credentials
(offline/plan_diff.py).

    python -m cli.plan_diff --base origin/main [--head <ref>] [--stack dev ...] [--repo <path>]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from offline import plan_diff as library
from offline.plan_diff import REPO_ROOT, PlanDiffError, plan_diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.plan_diff", description=library.__doc__)
    parser.add_argument("--base", required=True, help="git ref of the base (e.g. origin/main)")
    parser.add_argument("--head", default=None, help="git ref of the head (default: the working tree)")
    parser.add_argument("--stack", action="append", dest="stacks", help="only this stack (repeatable)")
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="repository (default: this one)")
    args = parser.parse_args(argv)
    try:
        print(plan_diff(args.repo.resolve(), args.base, args.head, args.stacks), end="")
    except PlanDiffError as error:
        print(f"plan-diff: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
