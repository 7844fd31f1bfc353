"""What the image receives from this checkout: the build context (.dockerignore) and the Dockerfile's COPYs.

Both are read with the builders' own code rather than a copy of it:
- .dockerignore with docker-py (PyPI `docker`, pinned in requirements-dev.txt; its `docker.utils.build`
  reads files only, no daemon): `exclude_paths` lists what the client sends as the context, `PatternMatcher`
  answers whether a pattern list ignores one path. Its matcher is the Python port of moby's that the docker
  client library maintains (docker/utils/build.py cites moby pkg/fileutils), with the documented rules
  (https://docs.docker.com/build/concepts/context/#dockerignore-files): `*` and `?` stop at `/`, `**` spans
  directories, a pattern also matches every parent directory of a path, the last matching pattern wins and
  `!` re-includes. podman/buildah read .dockerignore with the same rules (containers/buildah uses
  fileutils.NewPatternMatcher, a copy of the moby matcher). Two differences, neither of which the checks
  meet: docker-py compares case-insensitively, and it keeps `Dockerfile` and `.dockerignore` in the context
  even when ignored, as the docker client does for the classic builder, which reads them from the context
  (BuildKit and buildah read the Dockerfile on its own); no COPY names either.
- The Dockerfile with `dockerfile` (PyPI, pinned in requirements-dev.txt), which wraps BuildKit's own parser
  (moby/buildkit frontend/dockerfile/parser): continuations, flags and the JSON form parse as the builder
  parses them.

This is a model of the builder, so the container test (tests/container/test_image.py) checks it against the
files of the really built image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import dockerfile
from docker.utils.build import PatternMatcher, exclude_paths

ROOT = Path(__file__).resolve().parents[2]
# What the docker client sends whatever .dockerignore says (docker-py `exclude_paths` and `PatternMatcher`).
ALWAYS_SENT = frozenset({"Dockerfile", ".dockerignore"})


def read_dockerignore(text: str) -> list[str]:
    """The patterns of a .dockerignore, as docker-py's `APIClient.build` reads the file (docker/api/build.py):
    each line stripped, blank lines and `#` comments dropped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the patterns leave this path (`/`-separated, relative to the context) out of the context."""
    return bool(PatternMatcher(patterns).matches(path))


def build_context(root: Path = ROOT, dockerignore: str | None = None) -> set[str]:
    """Every file of the directory that the builder sends (paths relative to the context, `/`-separated)."""
    text = (root / ".dockerignore").read_text() if dockerignore is None else dockerignore
    # exclude_paths lists the directories it keeps as well as the files.
    sent = exclude_paths(str(root), read_dockerignore(text), dockerfile="Dockerfile")
    return {Path(path).as_posix() for path in sent if (root / path).is_file()}


@dataclass(frozen=True)
class Copy:
    stage: str
    sources: tuple[str, ...]
    destination: str
    workdir: str  # a relative destination is relative to the stage's WORKDIR


def context_copies(dockerfile_text: str) -> list[Copy]:
    """The COPY/ADD instructions that read the build context (not `--from=<stage>`), with their stage."""
    copies = []
    stage, workdir = "", "/"
    for command in dockerfile.parse_string(dockerfile_text):
        instruction = command.cmd.upper()
        if instruction == "FROM":
            # `FROM image [AS name]`: a stage without a name is known by its image.
            words = command.value
            stage = words[2] if len(words) == 3 and words[1].upper() == "AS" else words[0]
            workdir = "/"
        elif instruction == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / command.value[0])
        elif instruction in ("COPY", "ADD"):
            if any(flag.startswith("--from") for flag in command.flags):
                continue
            *sources, destination = command.value
            copies.append(Copy(stage, tuple(sources), destination, workdir))
    return copies


def copied_files(context: set[str], copy: Copy) -> dict[str, str]:
    """Context file -> image path for one COPY (a directory source copies its contents; no glob sources)."""
    destination = copy.destination
    if not destination.startswith("/"):
        destination = str(PurePosixPath(copy.workdir) / destination) + (
            "/" if destination.endswith("/") else ""
        )
    placed = {}
    for source in copy.sources:
        prefix = source.rstrip("/")
        for file in context:
            if file == prefix:
                target = destination + PurePosixPath(file).name if destination.endswith("/") else destination
                placed[file] = target
            elif file.startswith(prefix + "/"):
                placed[file] = destination.rstrip("/") + "/" + file[len(prefix) + 1 :]
    return placed
