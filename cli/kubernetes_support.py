"""`python -m cli.kubernetes_support --stack prod [--today YYYY-MM-DD]`: whether AKS still supports the
stack's Kubernetes minor (stack/kubernetes_support.py). The scheduled drift workflow runs it."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from stack.config import ConfigError, load_stack_config
from stack.files import read_stack
from stack.kubernetes_support import Support, _annotation, check, utc_today


def main(argv: list[str] | None = None) -> int:
    """Check one stack's kubernetesVersion: exit 1 with a GitHub `::error` annotation when AKS no longer
    supports it, or ends its support within WARNING_DAYS; exit 0 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m cli.kubernetes_support", description=main.__doc__)
    parser.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml is checked")
    parser.add_argument(
        "--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD; default: today in UTC"
    )
    args = parser.parse_args(argv)
    today: date = args.today or utc_today()
    title = f"Kubernetes version ({args.stack})"
    try:
        config = load_stack_config(args.stack, read_stack(args.stack).config, today=today)
    except ConfigError as error:
        for problem in error.problems:
            print(_annotation("error", title, f"{problem.key}: {problem.message}"))
        print(error, file=sys.stderr)
        return 1
    verdict = check(config.kubernetes_version, today)
    if verdict.status is Support.SUPPORTED:
        print(f"stack {args.stack}: {verdict.message}")
        return 0
    print(_annotation("error", title, f"stack {args.stack}: {verdict.message}"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
