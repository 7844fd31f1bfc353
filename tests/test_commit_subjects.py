"""Commit subjects are at most 72 characters (scripts/commit_subjects.py), from the commit where the rule came
in; the history before it stays as it is. The hook scripts/git-hooks/commit-msg applies the same function
before a commit exists; these tests run it through real git."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from stack.files import REPO_ROOT

# main when the rule came in: every commit after it is checked, none before.
BASE = "cae662f540c8a96d1699259e04462fa7f26e3e74"

_spec = importlib.util.spec_from_file_location("commit_subjects", REPO_ROOT / "scripts/commit_subjects.py")
assert _spec is not None and _spec.loader is not None
commit_subjects = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(commit_subjects)
MAX_SUBJECT, long_subjects, subject_of = (
    commit_subjects.MAX_SUBJECT,
    commit_subjects.long_subjects,
    commit_subjects.subject_of,
)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_commit_subjects_since_the_rule_fit() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: no history to check")
    if _git(REPO_ROOT, "cat-file", "-e", f"{BASE}^{{commit}}").returncode != 0:
        pytest.skip(f"commit {BASE[:12]} is not here (a shallow clone or a tarball): no history to check")
    assert long_subjects(commit_subjects.commits_in(f"{BASE}..HEAD", cwd=REPO_ROOT)) == [], (
        f"commit subjects over {MAX_SUBJECT} characters: reword them (git rebase -i, 'reword') and put the "
        "detail in the body"
    )


def test_negative_control_a_73_character_subject_fails_and_72_passes() -> None:
    assert long_subjects([("a" * 40, "x" * 73), ("b" * 40, "y" * 72)]) == [
        f"{'a' * 12}: 73 > 72 characters: {'x' * 73}..."
    ]


def test_the_hook_reads_the_subject_git_records(tmp_path: Path) -> None:
    """git's %s is the first paragraph with its lines joined; the hook sees comment lines git strips later."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    message = "# Please enter the message\n\nFirst half of a title\nwrapped onto a second line\n\nBody.\n"
    _git(tmp_path, "init", "-q")
    assert _git(tmp_path, "commit", "-q", "--allow-empty", "--cleanup=strip", "-m", message).returncode == 0
    recorded = _git(tmp_path, "log", "-1", "--format=%s").stdout.strip()
    assert recorded == "First half of a title wrapped onto a second line"
    assert subject_of(message) == recorded


@pytest.fixture
def clone_with_hook(tmp_path: Path) -> Path:
    """A repository set up as `make hooks` sets up a clone: the hook and its script at their paths."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for name in ("scripts/commit_subjects.py", "scripts/git-hooks/commit-msg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "core.hooksPath", "scripts/git-hooks")
    return tmp_path


def test_the_hook_accepts_a_72_character_subject(clone_with_hook: Path) -> None:
    done = _git(clone_with_hook, "commit", "-q", "--allow-empty", "-m", "s" * 72 + "\n\nThe detail.")
    assert done.returncode == 0, done.stdout + done.stderr


def test_negative_control_the_hook_refuses_a_73_character_subject(clone_with_hook: Path) -> None:
    refused = _git(clone_with_hook, "commit", "-q", "--allow-empty", "-m", "s" * 73 + "\n\nThe detail.")
    assert refused.returncode != 0
    assert "73 > 72 characters" in refused.stdout + refused.stderr
    assert _git(clone_with_hook, "rev-parse", "--verify", "-q", "HEAD").returncode != 0  # nothing committed
