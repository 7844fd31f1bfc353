"""`python -m export write` (make export) and `python -m export check` (make drift)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.artifacts import check, write
from export.bicep import ExportError
from stack.files import REPO_ROOT

HINT = {
    "stale": "differs from what `make export` writes",
    "missing": "is not committed",
    "extra": "is in a generated directory but nothing generates it (delete it)",
}


def main(argv: list[str] | None = None) -> int:
    # The program's own warnings (e.g. "alertEmails is empty") belong to `make plan`, not to the export;
    # restored afterwards, because tests call main() in the same process as everything else.
    logging.disable(logging.WARNING)
    try:
        return _run(argv)
    finally:
        logging.disable(logging.NOTSET)


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this one)")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            written = write(args.root)
            for path in written:
                print(f"wrote {path}")
            print(f"{len(written)} file(s) written" if written else "every generated file is up to date")
            return 0
        findings = check(args.root)
    except ExportError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 2
    if not findings:
        print("no drift: every generated file matches the program")
        return 0
    for finding in findings:
        print(f"DRIFT {finding.path}: {HINT[finding.problem]}", file=sys.stderr)
        if finding.diff:
            print(finding.diff, file=sys.stderr)
    print(
        f"{len(findings)} generated file(s) out of date: run `make export` and commit the result",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
