"""`gh api repos/OWNER/REPO/actions/oidc/customization/sub | python -m cli.github_subjects prefix OWNER/REPO
['[configured]'] [--org-template JSON]`: the repository's OIDC subject prefix (rbac/github_subjects.py), exit
0, or why it cannot be used, exit 1. scripts/bootstrap.sh runs it."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from rbac.github_subjects import NOT_READ, check_configured, prefix_from_customization


def main(argv: list[str]) -> int:
    organisation: Mapping[str, Any] | None = NOT_READ
    if len(argv) >= 2 and argv[-2] == "--org-template":
        organisation = json.loads(argv[-1]) if argv[-1].strip() else None
        argv = argv[:-2]
    if len(argv) not in (2, 3) or argv[0] != "prefix":
        print(
            "usage: python -m cli.github_subjects prefix OWNER/REPO ['[configured prefixes, JSON]'] "
            "[--org-template 'JSON, or empty for 404'] < customization.json",
            file=sys.stderr,
        )
        return 2
    try:
        current = prefix_from_customization(argv[1], json.loads(sys.stdin.read() or "{}"), organisation)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    if len(argv) == 3:
        problem = check_configured(current, json.loads(argv[2]))
        if problem:
            print(problem, file=sys.stderr)
            return 1
    print(current)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
