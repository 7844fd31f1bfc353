"""The import contract (pyproject.toml [tool.importlinter], docs/architecture/code.md) holds and is enforced.

import-linter reads the real import statements of every module (grimp builds the graph from the source), so a
new arrow the wrong way fails `make test`, naming the importing line.
"""

from __future__ import annotations

import ast
import itertools
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

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


def test_the_contract_covers_every_package_of_ours() -> None:
    """A new top-level package outside root_packages would escape every check of this module; tests/ and the
    Pulumi projects' scripts are not packages the contract governs."""
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(CONFIG["root_packages"])


# lint-imports runs in a process of its own (about 0.5 s each): cheap enough for the inner loop.
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
    # The verification models reaching up into the export, the offline engine reaching up into them.
    (tmp_path / "verify" / "__init__.py").write_text("import export\n")
    (tmp_path / "offline" / "__init__.py").write_text("import verify\n")
    # Each allowed edge to a shared leaf (from the contract's own list), and beside them one into the rest of
    # the service: only the leaves' edges are excused.
    (tmp_path / "muse" / "app.py").write_text("")
    edges = [
        edge.split(" -> ") for contract in CONFIG["contracts"] for edge in contract.get("ignore_imports", [])
    ]
    for importer, leaf in edges:
        for module in (importer, leaf):
            *packages, name = module.split(".")
            for depth in range(2, len(packages) + 1):
                (tmp_path.joinpath(*packages[:depth])).mkdir(exist_ok=True)
                (tmp_path.joinpath(*packages[:depth], "__init__.py")).touch()
            (tmp_path.joinpath(*packages, f"{name}.py")).touch()
        with tmp_path.joinpath(*importer.split(".")).with_suffix(".py").open("a") as source:
            source.write(f"import {leaf}\n")
    (tmp_path / "components" / "observability" / "alerts.py").write_text("import muse.app\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "components.observability.alerts -> muse.app" in result.stdout
    assert edges and not any(f"{importer} -> {leaf}" in result.stdout for importer, leaf in edges)
    assert "verify is not allowed to import export" in result.stdout
    assert "offline is not allowed to import verify" in result.stdout
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


# ------------------------------------------------------------------------------------------------------
# No import circles, not even through an import inside a function: the layers contract only sees arrows
# between packages, so a circle inside one (a function-local import that dodges the import-time error) is
# checked here, module by module, on grimp's graph (the one import-linter builds; it reads every import
# statement of a module, at any depth).


def circles(*packages: str) -> set[frozenset[str]]:
    """The import circles among the modules of `packages`: each strongly connected component of the module
    import graph with more than one module, or one module importing itself (Tarjan, iteratively)."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: list[str] = []
    found: set[frozenset[str]] = set()
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = len(index)
        on_stack.append(root)
        while work:
            module, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    on_stack.append(target)
                    work.append((target, iter(sorted(imports[target]))))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = set()
                while True:
                    member = on_stack.pop()
                    component.add(member)
                    if member == module:
                        break
                if len(component) > 1 or module in imports[module]:
                    found.add(frozenset(component))
    return found


def test_the_import_graph_has_no_circles() -> None:
    assert circles(*CONFIG["root_packages"]) == set()


def test_a_circle_through_a_function_local_import_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control: a skeleton whose circle closes only inside a function (as stack/config.py and
    stack/kubernetes_support.py once did), beside a chain without one and a module importing itself."""
    package = tmp_path / "skeleton"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text("from skeleton import support\n")
    (package / "support.py").write_text("def main():\n    from skeleton.config import load\n")
    (package / "chain.py").write_text("import skeleton.config\n")
    (package / "selfish.py").write_text("def again():\n    import skeleton.selfish\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert circles("skeleton") == {
        frozenset({"skeleton.config", "skeleton.support"}),
        frozenset({"skeleton.selfish"}),
    }


# ------------------------------------------------------------------------------------------------------
# Command-line entry points live in modules of their own (cli/, or a package's __main__.py): a library
# module never runs as a script, so importing it has no second identity as `__main__` and its command's
# argument parsing and exit codes stay out of the code the programs import.

LIBRARY_PACKAGES = ("muse", "components", "rbac", "stack", "offline", "export", "verify", "policy")


def main_blocks(source: str) -> int:
    """How many `if __name__ == "__main__":` tests (either operand order, any depth) `source` has."""
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            operands = [node.left, *node.comparators]
            names = {o.id for o in operands if isinstance(o, ast.Name)}
            texts = {o.value for o in operands if isinstance(o, ast.Constant)}
            count += names == {"__name__"} and texts == {"__main__"}
    return count


def modules_with_main_blocks(root: Path, packages: tuple[str, ...]) -> list[str]:
    """The modules of `packages` under `root`, other than a package's __main__.py, with a __main__ block."""
    return sorted(
        str(path.relative_to(root))
        for package in packages
        for path in (root / package).rglob("*.py")
        if path.name != "__main__.py" and main_blocks(path.read_text())
    )


def test_no_library_module_is_a_script() -> None:
    assert modules_with_main_blocks(REPO_ROOT, LIBRARY_PACKAGES) == []


def test_the_commands_are_modules_of_their_own() -> None:
    # Every module of cli/ is one command: it runs as `python -m cli.<name>`.
    commands = sorted(p.stem for p in (REPO_ROOT / "cli").glob("*.py") if p.name != "__init__.py")
    assert commands and all(main_blocks((REPO_ROOT / "cli" / f"{c}.py").read_text()) == 1 for c in commands)


# A library module run as `python -m` now does nothing and exits 0: a caller left on an old path (a script, a
# workflow, a runbook line, another branch merged later) would read empty output as success. So no file of the
# repository may run one; the commands are `cli.<name>` and the packages that are one command.
TEXT_SUFFIXES = {".py", ".sh", ".yml", ".yaml", ".md", ".toml", ".cfg", ".txt"}
SHELL_M = re.compile(r"-m\s+['\"]?([A-Za-z_][\w.]*)")


def commands_run(path: Path, text: str) -> set[str]:
    """The modules `text` runs with `python -m`: shell-style `-m name`, and in Python also `"-m", "name"`
    as neighbouring items of a list, tuple or call (split across lines or not)."""
    found = set(SHELL_M.findall(text))
    if path.suffix == ".py" and ("'-m'" in text or '"-m"' in text):
        for node in ast.walk(ast.parse(text)):
            items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else getattr(node, "args", None)
            if not isinstance(items, list):
                continue
            for first, second in itertools.pairwise(items):
                if (
                    isinstance(first, ast.Constant)
                    and first.value == "-m"
                    and isinstance(second, ast.Constant)
                    and isinstance(second.value, str)
                ):
                    found.add(second.value)
    return found


def library_modules_run(root: Path, files: list[Path]) -> list[str]:
    """`file: module` for each library module (not a package's own command) that `files` run with -m."""
    problems = []
    for path in files:
        for module in commands_run(path, path.read_text()):
            parts = module.split(".")
            is_command_package = len(parts) == 1 and (root / parts[0] / "__main__.py").is_file()
            if parts[0] in LIBRARY_PACKAGES and not is_command_package:
                problems.append(f"{path.relative_to(root)}: {module}")
    return sorted(problems)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z"], capture_output=True, text=True, check=True
    ).stdout.split("\0")
    return [
        REPO_ROOT / name
        for name in listed
        if name
        and (Path(name).suffix in TEXT_SUFFIXES or Path(name).name == "Makefile")
        and (REPO_ROOT / name).is_file()
        and name != "tests/test_architecture.py"  # this file's negative control spells the old paths
    ]


def test_nothing_runs_a_library_module_as_a_command() -> None:
    files = tracked_text_files()
    assert len(files) > 100 and REPO_ROOT / "Makefile" in files
    assert library_modules_run(REPO_ROOT, files) == []


def test_a_caller_of_an_old_command_path_is_caught(tmp_path: Path) -> None:
    """Negative control: the old spellings in a script, a workflow and a test split over lines; the new ones
    and a package that is one command pass."""
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "__main__.py").write_text("")
    script = tmp_path / "bootstrap.sh"
    script.write_text('"$python" -m stack.naming state "$suffix"\n"$python" -m cli.naming state x\n')
    workflow = tmp_path / "drift.yml"
    workflow.write_text("run: python -m export check && python -m offline.plan --stack dev\n")
    test = tmp_path / "test_x.py"
    test.write_text(
        'ARGS = [\n    sys.executable,\n    "-m",\n    "rbac.github_subjects",\n]\nOK = ["-m", "cli.plan"]\n'
    )
    assert library_modules_run(tmp_path, [script, workflow, test]) == [
        "bootstrap.sh: stack.naming",
        "drift.yml: offline.plan",
        "test_x.py: rbac.github_subjects",
    ]


def test_a_library_module_with_a_main_block_is_caught(tmp_path: Path) -> None:
    """Negative control: both spellings of the test, one nested in a function, and a package's __main__.py
    (allowed) in a skeleton of the library packages."""
    for package in LIBRARY_PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "stack" / "naming.py").write_text('X = 1\nif __name__ == "__main__":\n    print(X)\n')
    (tmp_path / "offline" / "plan.py").write_text("def run():\n    if '__main__' == __name__:\n        ...\n")
    (tmp_path / "export" / "__main__.py").write_text('if __name__ == "__main__":\n    pass\n')
    (tmp_path / "rbac" / "roles.py").write_text('NAME = "__main__"\nprint(__name__)\n')
    assert modules_with_main_blocks(tmp_path, LIBRARY_PACKAGES) == ["offline/plan.py", "stack/naming.py"]


# bench/ is the one package of commands: each benchmark is `python -m bench.<name>` (a module with a __main__
# block, or a package with a __main__.py), and `bench/__main__.py` (make bench) runs them in-process. What two
# benchmarks share lives in a module without one (bench/common.py, bench/rollback/__init__.py, ...): a
# benchmark module is imported by nothing but `bench/__main__.py`.


def imported_commands(package: str, root: Path) -> list[str]:
    """`module <- importer` for each module of `package` with a __main__ block that another module of the
    package imports, `<package>.__main__` excepted."""
    graph = grimp.build_graph(package, cache_dir=None)
    commands = {
        path.replace("/", ".").removesuffix(".py").removesuffix(".__init__")
        for path in modules_with_main_blocks(root, (package,))
    }
    return sorted(
        f"{command} <- {importer}"
        for command in commands
        for importer in graph.find_modules_that_directly_import(command)
        if importer != f"{package}.__main__"
    )


def test_a_benchmark_is_imported_only_by_make_bench() -> None:
    assert imported_commands("bench", REPO_ROOT) == []


def test_a_benchmark_imported_by_another_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a skeleton where one benchmark imports another's classes (as bench/canary.py did
    bench/rollback.py's replicas), beside the package's __main__.py doing the same (allowed)."""
    package = tmp_path / "benchskeleton"
    package.mkdir()
    main = 'def main():\n    pass\n\n\nif __name__ == "__main__":\n    main()\n'
    (package / "__init__.py").write_text("")
    (package / "common.py").write_text("X = 1\n")
    (package / "rollback.py").write_text("from benchskeleton.common import X\n" + main)
    (package / "canary.py").write_text("from benchskeleton.rollback import main as rollback\n" + main)
    (package / "__main__.py").write_text("from benchskeleton import canary, rollback\n" + main)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert imported_commands("benchskeleton", tmp_path) == ["benchskeleton.rollback <- benchskeleton.canary"]


# The exceptions to "the programs do not reach into the service" (pyproject.toml): the leaf modules of shared
# Pulumi type tokens and of the service's contract. Importing one runs muse/__init__.py too, so all must
# import nothing.
SHARED_LEAVES = ("muse.resource_types", "muse.contract")


def imports_of(source: str) -> set[str]:
    """The modules a module's source imports, anywhere in it (`from __future__` aside)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_shared_leaf_imports_nothing() -> None:
    for path in (*(f"{leaf.replace('.', '/')}.py" for leaf in SHARED_LEAVES), "muse/__init__.py"):
        assert imports_of((REPO_ROOT / path).read_text()) == set(), path
    # Negative control: one import, even inside a function, and the leaf is no leaf.
    assert imports_of("def f():\n    from muse.governance import policies\n") == {"muse.governance"}


def test_the_only_exceptions_are_edges_to_the_shared_leaves() -> None:
    def exceptions(config: dict[str, object]) -> list[str]:
        contracts = config["contracts"]
        assert isinstance(contracts, list)
        return [edge for contract in contracts for edge in contract.get("ignore_imports", [])]

    def narrow(edges: list[str]) -> bool:
        return all(edge.split("->")[1].strip() in SHARED_LEAVES and "*" not in edge for edge in edges)

    assert exceptions(CONFIG) and narrow(exceptions(CONFIG))
    # Negative control: a wildcard edge, or one into the rest of the service, is refused.
    assert not narrow(["components.** -> muse.resource_types"])
    assert not narrow(["components.observability.slo -> muse.app"])
    assert not narrow(["components.kubernetes_cluster -> muse.governance.policies"])


# ------------------------------------------------------------------------------------------------------
# docs/architecture/code.md states which package imports which, in its table ("imports (ours)") and its
# diagram. Both are compared with the real package-level edges of grimp's graph, so neither can drift: a new
# import the docs do not show fails, and so does an arrow the code no longer has.

CODE_MD = REPO_ROOT / "docs" / "architecture" / "code.md"


def package_edges(*packages: str) -> set[tuple[str, str]]:
    """(importer, imported) for each pair of our top-level packages with at least one import between them."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    return {
        (module.split(".")[0], target.split(".")[0])
        for module in graph.modules
        for target in graph.find_modules_directly_imported_by(module)
        if target.split(".")[0] in packages and target.split(".")[0] != module.split(".")[0]
    }


def documented_edges(
    markdown: str, packages: tuple[str, ...]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(the table's edges, the diagram's edges) among `packages`. Table: the row of a package (first cell
    `pkg/` in backticks), every backticked package name in its last cell (`nothing of ours` names none).
    Diagram: the mermaid flowchart's `a --> b [--> c ...]` chains, whose node ids are the package names."""
    table: set[tuple[str, str]] = set()
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 3 and (package := cells[0].strip("`").rstrip("/")) in packages:
            named = {name for name in re.findall(r"`([\w.]+)`", cells[-1]) if name in packages}
            table |= {(package, imported) for imported in named}
    diagram: set[tuple[str, str]] = set()
    mermaid = markdown.split("```mermaid", 1)[1].split("```", 1)[0] if "```mermaid" in markdown else ""
    for line in mermaid.splitlines():
        # `a -->|label| b`: the label is not a node.
        chain = (
            [re.sub(r"^\|[^|]*\|", "", node.strip()).strip() for node in line.split("-->")]
            if "-->" in line
            else []
        )
        diagram |= {(a, b) for a, b in itertools.pairwise(chain) if a in packages and b in packages}
    return table, diagram


def test_the_documented_arrows_are_the_real_imports() -> None:
    packages = tuple(CONFIG["root_packages"])
    real = package_edges(*packages)
    table, diagram = documented_edges(CODE_MD.read_text(), packages)
    assert {"missing from the table": real - table, "not imported": table - real} == {
        "missing from the table": set(),
        "not imported": set(),
    }
    assert {"missing from the diagram": real - diagram, "not imported": diagram - real} == {
        "missing from the diagram": set(),
        "not imported": set(),
    }


def test_a_table_missing_an_edge_is_caught() -> None:
    """Negative control: the docs with one arrow gone from the table (offline -> components) and from the
    diagram, and one arrow added that the code does not have (bench -> offline)."""
    packages = tuple(CONFIG["root_packages"])
    text = CODE_MD.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `offline/` |"))
    assert "`components`" in row
    edited = text.replace(row, row.replace("`components`", "components")).replace(
        "offline --> components\n", ""
    )
    edited = edited.replace("  bench --> stack\n", "  bench --> stack\n  bench --> offline\n")
    table, diagram = documented_edges(edited, packages)
    real = package_edges(*packages)
    assert real - table == {("offline", "components")}
    assert real - diagram == {("offline", "components")}
    assert diagram - real == {("bench", "offline")}
