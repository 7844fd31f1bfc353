"""`python -m cli.migrations cluster-generic <exported.json> <out.json>`: rewrites an exported stack state
with one of the state migrations of stack/migrations.py, for `pulumi stack import`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stack.migrations import MIGRATIONS, MigrationError


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in MIGRATIONS:
        print(
            f"usage: python -m cli.migrations {{{','.join(MIGRATIONS)}}} <exported.json> <out.json>",
            file=sys.stderr,
        )
        return 2
    name, source, target = argv
    try:
        migrated = MIGRATIONS[name](json.loads(Path(source).read_text()))
    except MigrationError as error:
        print(error, file=sys.stderr)
        return 1
    Path(target).write_text(json.dumps(migrated, indent=4) + "\n")
    print(f"wrote {target}: import it with `pulumi stack import --file {target}`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
