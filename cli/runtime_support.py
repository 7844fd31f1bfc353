"""`python -m cli.runtime_support [--today YYYY-MM-DD] [--dockerfile PATH] [--data PATH]`: whether the image's
base still receives security fixes (stack/runtime_support.py). The scheduled drift workflow runs it."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from stack.kubernetes_support import Support, _annotation, utc_today
from stack.runtime_support import DATA_PATH, DOCKERFILE, check, components, read_base


def main(argv: list[str] | None = None) -> int:
    """Check the Dockerfile's base: exit 1 with a GitHub `::error` annotation per component that is out of
    security support, leaves it within WARNING_DAYS, or is not recorded; exit 0 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m cli.runtime_support", description=main.__doc__)
    parser.add_argument(
        "--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD; default: UTC today"
    )
    parser.add_argument("--dockerfile", type=Path, default=DOCKERFILE)
    parser.add_argument("--data", type=Path, default=DATA_PATH)
    args = parser.parse_args(argv)
    today: date = args.today or utc_today()
    title = "Image base support"
    try:
        base = read_base(args.dockerfile.read_text())
    except ValueError as error:
        print(_annotation("error", title, str(error)))
        return 1
    data = json.loads(args.data.read_text())
    verdicts = [check(component, today) for component in components(base, data)]
    print(f"base {base.image}")
    for verdict in verdicts:
        if verdict.status is Support.SUPPORTED:
            print(verdict.message)
        else:
            print(_annotation("error", title, verdict.message))
    return 0 if all(v.status is Support.SUPPORTED for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
