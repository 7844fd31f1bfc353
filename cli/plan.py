"""`make plan`: print what a stack would deploy, offline.

python -m cli.plan --stack dev [--format text|json]
"""

from __future__ import annotations

import argparse
import json
import sys

import pulumi

from offline.engine import run_stack
from offline.plan import render_text
from stack.files import REPO_ROOT, read_stack, stack_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.plan", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--project", default=".", help="project directory: . (muse) or bootstrap")
    parser.add_argument("--format", default="text", choices=["text", "json"])
    args = parser.parse_args(argv)
    root = (REPO_ROOT / args.project).resolve()
    if args.stack not in stack_names(root):
        parser.error(
            f"no stack {args.stack!r} in {args.project}; stacks there: {', '.join(stack_names(root))}"
        )
    try:
        plan = run_stack(args.stack, root=root)
    except pulumi.RunError as error:
        print(error, file=sys.stderr)
        return 1
    if args.format == "json":
        environment = next((r.get("tags.env") for r in plan.resources if r.get("tags.env")), args.stack)
        tier = read_stack(args.stack, root).config.get(f"{plan.project}:tier", "production")
        print(json.dumps(plan.to_inventory(environment, tier), indent=2, sort_keys=True))
    else:
        print(render_text(plan), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
