"""`make test` (and so .ci/run) enforces what `make lint` checks for Python: ruff and mypy."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from stack.files import REPO_ROOT


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ruff", "check", "."], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", "."], id="ruff-format"),
        pytest.param(["mypy"], id="mypy", marks=pytest.mark.slow),  # mypy over every package
    ],
)
def test_python_code_is_clean(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# Comments and docs say why and cite sources; tracker numbers ("issue #3", "story 5.1", "EPIC-002") decay.
TRACKER_REFERENCE = re.compile(r"EPIC-\d|\b[Ss]tor(?:y|ies) \d|\b[Ii]ssue #\d|\banother issue\b")


def tracker_references(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if TRACKER_REFERENCE.search(line)]


def test_no_tracker_numbers_in_tracked_files() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    found = {}
    for name in filter(None, files):
        path = REPO_ROOT / name
        if name == "tests/test_code_quality.py" or not path.is_file() or path.suffix in {".json", ".lock"}:
            continue
        lines = tracker_references(path.read_text(errors="replace"))
        if lines:
            found[name] = lines
    assert found == {}


def test_tracker_reference_pattern_catches_the_forms_it_guards() -> None:
    """Negative control; upstream citations such as 'pulumi-kubernetes #1148' are sources and stay."""
    text = (
        "# Release (EPIC-002 stories 3.2, 4.1)\n# (issue #3, point 7)\nstory 5.1\n# pulumi-kubernetes #1148\n"
    )
    assert tracker_references(text) == [
        "# Release (EPIC-002 stories 3.2, 4.1)",
        "# (issue #3, point 7)",
        "story 5.1",
    ]
