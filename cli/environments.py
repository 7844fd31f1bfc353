"""`python -m cli.environments [--json | --github-output | --before <environment>]`: the environments in
promotion order (stack/environments.py), one a line for shell scripts, `--json` as an array, `--github-output`
as the lines a workflow's setup job appends to `$GITHUB_OUTPUT` (`environments=<JSON array>`, the matrix of
every per-environment job through `fromJSON`, and `first=<name>`, where the build pushes), `--before <env>`
the environment `env` imports its image from.

Standard library only: the workflows' setup jobs run it with the runner's `python3`, before any install."""

from __future__ import annotations

import json
import sys

from stack.environments import ENVIRONMENTS, image_source


def github_outputs(environments: tuple[str, ...] = ENVIRONMENTS) -> dict[str, str]:
    """The setup job's outputs: each value one line (`name=value`, docs.github.com "Workflow commands":
    setting an output parameter). `environments` is compact JSON, read back with `fromJSON`."""
    return {"environments": json.dumps(list(environments), separators=(",", ":")), "first": environments[0]}


def main(argv: list[str]) -> int:
    if argv == ["--json"]:
        print(json.dumps(list(ENVIRONMENTS)))
    elif argv == ["--github-output"]:
        print("\n".join(f"{name}={value}" for name, value in github_outputs().items()))
    elif len(argv) == 2 and argv[0] == "--before":
        print(image_source(argv[1]) or "")
    elif not argv:
        print("\n".join(ENVIRONMENTS))
    else:
        print(
            "usage: python -m cli.environments [--json | --github-output | --before <environment>]",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
