"""`python -m cli.environments [--json | --before <environment>]`: the environments in promotion order
(stack/environments.py), one a line for shell scripts, `--json` as an array for a workflow's matrix,
`--before <env>` the environment `env` imports its image from."""

from __future__ import annotations

import json
import sys

from stack.environments import ENVIRONMENTS, image_source


def main(argv: list[str]) -> int:
    if argv == ["--json"]:
        print(json.dumps(list(ENVIRONMENTS)))
    elif len(argv) == 2 and argv[0] == "--before":
        print(image_source(argv[1]) or "")
    elif not argv:
        print("\n".join(ENVIRONMENTS))
    else:
        print("usage: python -m cli.environments [--json | --before <environment>]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
