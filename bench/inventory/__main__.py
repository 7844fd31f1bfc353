"""`python -m bench.inventory`: the command of bench/inventory/__init__.py."""

from __future__ import annotations

import argparse
import json
import sys

import bench.inventory
from bench.inventory import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(bench.inventory.__doc__ or "").split("\n")[0])
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--environment", default="dev")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    json.dump(generate(args.resources, args.environment, args.seed), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
