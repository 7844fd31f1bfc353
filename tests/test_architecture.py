"""The import contract (pyproject.toml [tool.importlinter], docs/architecture/code.md) holds and is enforced.

import-linter reads the real import statements of every module (grimp builds the graph from the source), so a
new arrow the wrong way fails `make test`, naming the importing line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from stack.files import REPO_ROOT

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
    (tmp_path / "components" / "__init__.py").write_text("import stack\n")  # a component reading app config
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "muse is not allowed to import export" in result.stdout
    assert "components is not allowed to import stack" in result.stdout
    assert "Contracts: 1 kept, 2 broken" in result.stdout  # the policy pack's contract still holds
