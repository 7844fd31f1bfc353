"""scripts/ci/deployed-venv.sh: the drift job's install for the deployed commit's worktree, run for real with
GNU make against two worktrees (one whose Makefile has `ci-venv`, one older without it) and a recording
stand-in for the Python that creates the venv and runs pip (no package is installed here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ci" / "deployed-venv.sh"

# `python -m venv DIR` makes DIR/bin/python (this same recorder); every other call is logged.
RECORDING_PYTHON = """#!/usr/bin/env bash
if [[ "$1 $2" == "-m venv" ]]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0; fi
echo "$0 $*" >> "$CALLS"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    python = tmp_path / "python3"
    python.write_text(RECORDING_PYTHON)
    python.chmod(0o755)
    return {
        **os.environ,
        "PYTHON": str(python),
        "CALLS": str(tmp_path / "calls.log"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def _worktree(tmp_path: Path, makefile: str) -> Path:
    worktree = tmp_path / "deployed"
    worktree.mkdir()
    (worktree / "Makefile").write_text(makefile)
    (worktree / "pyproject.toml").write_text("[project]\nname = 'muse'\n")
    return worktree


def _calls(env: dict[str, str]) -> list[str]:
    path = Path(env["CALLS"])
    return path.read_text().splitlines() if path.exists() else []


def test_a_commit_with_ci_venv_installs_its_own_lock(tmp_path: Path, env: dict[str, str]) -> None:
    worktree = _worktree(tmp_path, "ci-venv:\n\t@echo own-lock >> $(CALLS)\n")
    subprocess.run([SCRIPT, worktree], env=env, check=True, capture_output=True, text=True)
    assert _calls(env) == ["own-lock"]


def test_a_commit_older_than_ci_venv_gets_the_current_hash_locked_wheels(
    tmp_path: Path, env: dict[str, str]
) -> None:
    worktree = _worktree(tmp_path, "venv:\n\t@echo floating >> $(CALLS)\n")
    result = subprocess.run([SCRIPT, worktree], env=env, check=True, capture_output=True, text=True)
    python = f"{worktree}/.venv/bin/python"
    assert _calls(env) == [
        f"{python} -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: "
        f"-r {ROOT}/requirements-ci.txt",
        f"{python} -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation "
        f"--config-settings editable_mode=compat -e {worktree}",
    ]
    assert "::notice title=Deployed commit::" in result.stdout
    assert "no `make ci-venv`" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_negative_control_the_plain_make_ci_venv_fails_on_an_older_commit(
    tmp_path: Path, env: dict[str, str]
) -> None:
    worktree = _worktree(tmp_path, "venv:\n\t@echo floating >> $(CALLS)\n")
    result = subprocess.run(["make", "-C", worktree, "ci-venv"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "No rule to make target 'ci-venv'" in result.stderr
