"""The environments, in promotion order, from their one home `stack/environments.txt`.

`python -m cli.environments` prints them one a line (for shell scripts), `--json` as a JSON array (for a
workflow's matrix); `--before <env>` prints the environment an environment imports its image from.
"""

from __future__ import annotations

from pathlib import Path

LIST_PATH = Path(__file__).with_name("environments.txt")


def read_environments(path: Path = LIST_PATH) -> tuple[str, ...]:
    names = tuple(
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name} lists an environment twice: {', '.join(names)}")
    return names


ENVIRONMENTS = read_environments()


def image_source(environment: str, environments: tuple[str, ...] = ENVIRONMENTS) -> str | None:
    """The environment `environment` imports its tested image from: the one before it (None for the first,
    which the build pushes to)."""
    position = environments.index(environment)
    return environments[position - 1] if position else None


def image_importer(environment: str, environments: tuple[str, ...] = ENVIRONMENTS) -> str | None:
    """The environment that imports from `environment`'s registry: the one after it (None for the last)."""
    position = environments.index(environment)
    return environments[position + 1] if position + 1 < len(environments) else None
