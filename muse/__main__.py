"""Command line: ``python -m muse evaluate|report|policies|serve``.

Exit codes: 0 success (no violation at or above --fail-on), 1 violations at or above the threshold,
2 unusable input or configuration (unreadable file, invalid JSON or shape, bad environment variable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from muse import __version__
from muse.governance.inventory import Inventory, InventoryError, load_inventory
from muse.governance.policies import POLICIES, Severity, evaluate
from muse.governance.report import render_markdown, render_policies_markdown

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muse", description="Infrastructure governance for Muse.")
    parser.add_argument("--version", action="version", version=f"muse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="evaluate an inventory; exit 1 on violations at/above --fail-on")
    ev.add_argument("inventory", help="inventory JSON file ('-' for stdin)")
    ev.add_argument(
        "--fail-on",
        choices=[s.value for s in Severity],
        default=Severity.HIGH.value,
        help="lowest severity that fails the run (default: high)",
    )
    ev.add_argument("--format", choices=["json", "markdown"], default="json")

    rep = sub.add_parser("report", help="print the markdown governance report (exit 0 on valid input)")
    rep.add_argument("inventory", help="inventory JSON file ('-' for stdin)")
    rep.add_argument("--fail-on", choices=[s.value for s in Severity], default=Severity.HIGH.value)

    pol = sub.add_parser("policies", help="list the policies")
    pol.add_argument("--format", choices=["text", "json", "markdown"], default="text")

    sub.add_parser("serve", help="run the HTTP service (configuration from environment variables)")
    return parser


def _load(path: str) -> Inventory:
    return load_inventory("/dev/stdin" if path == "-" else path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    if args.command == "serve":
        from muse.server import main as serve_main  # the CLI paths do not need uvicorn/starlette

        return serve_main()

    if args.command == "policies":
        if args.format == "json":
            print(json.dumps([p.describe() for p in POLICIES], indent=2))
        elif args.format == "markdown":
            print(render_policies_markdown(), end="")
        else:
            for p in POLICIES:
                print(f"{p.id:14} {p.severity.value:8} {p.title}")
        return EXIT_OK

    try:
        inventory = _load(args.inventory)
    except InventoryError as exc:
        print(f"muse: {exc}", file=sys.stderr)
        return EXIT_USAGE
    evaluation = evaluate(inventory, fail_on=Severity(args.fail_on))

    if args.command == "report":
        print(render_markdown(evaluation), end="")
        return EXIT_OK

    if args.format == "markdown":
        print(render_markdown(evaluation), end="")
    else:
        print(json.dumps(evaluation.to_json(), indent=2))
    if not evaluation.passed:
        print(
            f"muse: {len(evaluation.failing)} violation(s) at or above '{evaluation.failOn.value}'",
            file=sys.stderr,
        )
        return EXIT_VIOLATIONS
    return EXIT_OK


def run() -> int:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`muse evaluate ... | head`): no traceback, and no second error when Python
        # flushes stdout at exit (the recipe from the signal module's documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_VIOLATIONS
    return code


if __name__ == "__main__":
    sys.exit(run())
