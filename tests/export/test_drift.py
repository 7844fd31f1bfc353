"""`make drift` (python -m export check) and `make export` (write), against a copy of the generated files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from export.__main__ import main
from export.artifacts import ARTIFACTS, SECTIONS, check, render_all, write
from offline import captured as export_plans
from stack.files import REPO_ROOT

# Slow (renders every generated artifact, some tests twice): `make test-fast` leaves the module out.
pytestmark = pytest.mark.slow


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for path in ARTIFACTS:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / path, tmp_path / path)
    return tmp_path


def test_the_committed_tree_has_no_drift(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert "no drift" in capsys.readouterr().out


def test_a_modified_generated_file_fails_naming_it_with_a_diff(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bicep = tree / "infra/bicep/main.bicep"
    bicep.write_text(bicep.read_text().replace("adminUserEnabled: false", "adminUserEnabled: true"))
    assert main(["check", "--root", str(tree)]) == 1
    err = capsys.readouterr().err
    assert "DRIFT infra/bicep/main.bicep: differs from what `make export` writes" in err
    assert "-    adminUserEnabled: true" in err and "+    adminUserEnabled: false" in err
    assert "parameters.dev.json" not in err


def test_missing_and_extra_files_are_reported(tree: Path) -> None:
    (tree / "infra/bicep/parameters.prod.json").unlink()
    (tree / "infra/bicep/notes.bicep").write_text("// hand-written\n")
    findings = {(f.path, f.problem) for f in check(tree)}
    assert findings == {("infra/bicep/parameters.prod.json", "missing"), ("infra/bicep/notes.bicep", "extra")}


def test_write_repairs_the_tree(tree: Path) -> None:
    (tree / "infra/bicep/parameters.dev.json").write_text("{}\n")
    assert write(tree) == ["infra/bicep/parameters.dev.json"]
    assert check(tree) == []
    assert write(tree) == []


def test_every_file_says_it_is_generated_and_how_on_its_first_line() -> None:
    for path, text in render_all().items():
        # JSON has no comments: the notice is the first property, `$comment`.
        first = text.splitlines()[1 if path.endswith(".json") else 0]
        if path in SECTIONS:  # a person's document with a generated block: the block's first line says it
            first = next(line for line in text.splitlines() if line.startswith(SECTIONS[path]))
        assert "generated" in first.lower() and "make export" in first, path


def test_output_is_byte_identical_across_fresh_renders() -> None:
    first = render_all()
    export_plans.all_plans.cache_clear()  # plan every stack again from scratch
    export_plans.committed_plan.cache_clear()
    assert render_all() == first
