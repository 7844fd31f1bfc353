"""`python -m cli.queries muse-prod [name]`: the KQL behind Muse's log alerts and workbook
(components/observability/queries.py), to paste into Logs."""

from __future__ import annotations

import argparse
import sys

from components.observability.queries import MuseQueries


def main(argv: list[str] | None = None) -> int:
    """`python -m cli.queries muse-prod [name]`: print the KQL to paste into Logs."""
    queries_help = "one of: " + ", ".join(MuseQueries("muse-dev").all())
    parser = argparse.ArgumentParser(prog="python -m cli.queries", description=main.__doc__)
    parser.add_argument("namespace", help="the stack's namespace, e.g. muse-prod")
    parser.add_argument("name", nargs="?", help=f"{queries_help}; default: all")
    args = parser.parse_args(argv)
    found = MuseQueries(args.namespace).all()
    if args.name and args.name not in found:
        parser.error(f"unknown query {args.name!r}; {queries_help}")
    for name, query in found.items():
        if args.name in (None, name):
            print(f"// {name}\n{query}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
