"""What the image receives from this checkout: the build context (.dockerignore) and the Dockerfile's COPYs.

.dockerignore, as documented (https://docs.docker.com/build/concepts/context/#dockerignore-files) and
implemented by moby/patternmatcher (patternmatcher.go: `NewPattern` cleans each pattern with filepath.Clean,
so `muse/` is `muse`; `compile` turns it into a regular expression where `*` and `?` stop at `/` and `**`
spans directories; `MatchesOrParentMatches` also matches every parent directory of a path; the last matching
pattern wins and `!` re-includes). podman/buildah read .dockerignore with the same rules (containers/buildah
uses fileutils.NewPatternMatcher, a copy of the moby matcher).

This is a model of the builder, so the container test (tests/container/test_image.py) checks it against the
files of the really built image.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class IgnorePattern:
    text: str  # cleaned, without the `!`
    regex: re.Pattern[str]
    exclusion: bool  # `!pattern`: re-include what an earlier pattern excluded


def _compile(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher `Pattern.compile` for a `/`-separated pattern."""
    regex = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                # `**` at the end matches everything; elsewhere `**/` matches zero or more directories.
                regex += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                regex += "[^/]*"
        elif ch == "?":
            regex += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i)
            regex += pattern[i : end + 1]
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(ch)
        i += 1
    return re.compile(f"^{regex}$")


def read_dockerignore(text: str) -> list[IgnorePattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        # filepath.Clean, and a leading `/` means the context root (moby/buildkit dockerignore.ReadAll).
        cleaned = str(PurePosixPath("/" + line)).lstrip("/") or "."
        patterns.append(IgnorePattern(cleaned, _compile(cleaned), exclusion))
    return patterns


def ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """moby/patternmatcher `MatchesOrParentMatches`: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    matched = False
    for pattern in patterns:
        if any(pattern.regex.match(candidate) for candidate in candidates):
            matched = not pattern.exclusion
    return matched


def _may_reinclude_below(directory: str, patterns: list[IgnorePattern]) -> bool:
    """Could a `!` pattern re-include something inside this (ignored) directory? Wildcards: assume so."""
    return any(
        p.exclusion and (p.text.startswith(directory + "/") or p.text[:1] in "*?[\\") for p in patterns
    )


def build_context(root: Path = ROOT, dockerignore: str | None = None) -> set[str]:
    """Every file of the directory that the builder sends (paths relative to the context, `/`-separated)."""
    text = (root / ".dockerignore").read_text() if dockerignore is None else dockerignore
    patterns = read_dockerignore(text)
    files = set()
    for directory, subdirectories, names in os.walk(root):
        base = Path(directory).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        # Skipping a directory nothing can re-include is only a speed-up (.venv, node_modules, .git).
        subdirectories[:] = [
            d
            for d in subdirectories
            if not ignored(prefix + d, patterns) or _may_reinclude_below(prefix + d, patterns)
        ]
        files.update(prefix + name for name in names if not ignored(prefix + name, patterns))
    return files


@dataclass(frozen=True)
class Copy:
    stage: str
    sources: tuple[str, ...]
    destination: str
    workdir: str  # a relative destination is relative to the stage's WORKDIR


def context_copies(dockerfile: str) -> list[Copy]:
    """The COPY/ADD instructions that read the build context (not `--from=<stage>`), with their stage."""
    logical = re.sub(r"\\\n", " ", dockerfile)
    copies = []
    stage, workdir = "", "/"
    for line in logical.splitlines():
        instruction = line.split(maxsplit=1)[0].upper() if line.strip() else ""
        if instruction not in ("FROM", "WORKDIR", "COPY", "ADD"):
            continue
        words = shlex.split(line)
        if instruction == "FROM":
            stage = words[3] if len(words) >= 4 and words[2].upper() == "AS" else words[1]
            workdir = "/"
        elif instruction == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / words[1])
        else:
            if any(w.startswith("--from") for w in words[1:]):
                continue
            *sources, destination = [w for w in words[1:] if not w.startswith("--")]
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
