"""The environments, in promotion order, from their one home `stack/environments.txt`.

`python -m cli.environments` prints them one a line (for shell scripts), `--json` as a JSON array (for a
workflow's matrix); `--before <env>` prints the environment an environment imports its image from.
"""

from __future__ import annotations

from pathlib import Path

LIST_PATH = Path(__file__).with_name("environments.txt")
PRODUCTION = "production"  # the `muse:tier` whose rules are prod's (stack/config.py is_production)


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


def requires_approval(
    environment: str, environments: tuple[str, ...] | None = None, root: Path | None = None
) -> bool:
    """Whether deploys to the GitHub environment `environment` wait for a reviewer: it is one of the list
    whose stack file declares the production tier (`muse:tier`, never the name). A `preview-<name>` twin or a
    name outside the list does not. Read by the bootstrap's GitHub environment set-up
    (scripts/github_environment.py), the governance documents and the workflow tests."""
    from stack.files import REPO_ROOT, read_stack  # the stack files' one reader (PyYAML, not stdlib)

    if environment not in (ENVIRONMENTS if environments is None else environments):
        return False
    config = read_stack(environment, REPO_ROOT if root is None else root).config
    return config.get("muse:tier") == PRODUCTION
