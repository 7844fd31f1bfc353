"""The import contract (pyproject.toml [tool.importlinter], docs/architecture/code.md) holds and is enforced.

import-linter reads the real import statements of every module (grimp builds the graph from the source), so a
new arrow the wrong way fails `make test`, naming the importing line.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stack.files import REPO_ROOT

# Slow (lint-imports over every package): `make test-fast` leaves the module out.
pytestmark = pytest.mark.slow

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: grimp finds the root packages of `project`, not the editable install's.
    return subprocess.run(
        [str(LINT_IMPORTS), str(project / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_repository_keeps_its_import_contract() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


def test_a_wrong_arrow_breaks_the_contract(tmp_path: Path) -> None:
    """Negative control: the same contract over a skeleton of the packages, with two imports the wrong way."""
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in CONFIG["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "muse" / "__init__.py").write_text("import export\n")  # the service reaching into tooling
    # A component reading app config, and reaching into the tooling; RBAC reaching into the service.
    (tmp_path / "components" / "__init__.py").write_text("import stack\nimport policy\n")
    (tmp_path / "rbac" / "__init__.py").write_text("import muse\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "muse is not allowed to import export" in result.stdout
    assert "components is not allowed to import stack" in result.stdout
    assert "components is not allowed to import policy" in result.stdout
    assert "rbac is not allowed to import muse" in result.stdout
    assert "Contracts: 1 kept, 3 broken" in result.stdout  # the policy pack's own contract still holds


# The Pulumi programs are scripts (Pulumi runs them by path), so import-linter cannot see them.
PROGRAMS = (REPO_ROOT / "__main__.py", REPO_ROOT / "bootstrap" / "__main__.py")
PROGRAM_MAY_IMPORT = {"stack", "components", "rbac"}
OURS = {*CONFIG["root_packages"], "bootstrap", "scripts", "tests"}


def forbidden_program_imports(source: str) -> set[str]:
    """Top-level packages of ours a program imports beyond stack, components and rbac (any import form)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return (found & OURS) - PROGRAM_MAY_IMPORT


def test_the_pulumi_programs_import_only_the_program_packages() -> None:
    for program in PROGRAMS:
        assert forbidden_program_imports(program.read_text()) == set(), program


def test_a_program_importing_tooling_is_caught() -> None:
    """Negative control: the real entry point with a tooling import and a service import added."""
    source = PROGRAMS[0].read_text() + "\nfrom offline.engine import run_stack\nimport muse.app\n"
    assert forbidden_program_imports(source) == {"offline", "muse"}
