"""The image ships the service and nothing else, checked without building it (fast, no podman).

- What the Dockerfile copies from the build context (.dockerignore applied, tests/container/build_context.py)
  into /app is exactly muse/ and the committed governance reports the service serves.
- Every module under muse/ imports only the standard library, muse itself and the distributions pinned in
  requirements-service.txt (what the image's virtualenv holds): never the Pulumi program, the tooling, Pulumi
  or PyYAML, not even inside a function.
- Every module under muse/ is reachable from the service's entry point (`python -m muse`), so no
  export-only code is left in the package.
Each check also runs on a deliberately broken input and fails there.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from stack.environments import ENVIRONMENTS
from tests.container.build_context import (
    ALWAYS_SENT,
    ROOT,
    build_context,
    context_copies,
    copied_files,
    ignored,
    read_dockerignore,
)

SERVICE = "muse"
# Our top-level packages and the tools that must never reach the image (pyproject.toml lists ours).
NEVER_IN_THE_SERVICE = {
    "components",
    "rbac",
    "stack",
    "offline",
    "verify",
    "export",
    "policy",
    "bench",
    "cli",
    "bootstrap",
    "scripts",
    "tests",
    "pulumi",
    "pulumi_policy",
    "yaml",
}


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def service_distributions() -> set[str]:
    text = (ROOT / "requirements-service.txt").read_text()
    return {_normalise(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.MULTILINE)}


def imported_modules(source: str) -> set[str]:
    """Every absolute module an `import`/`from ... import` names, at any depth (functions included)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def foreign_imports(package_dir: Path, allowed_distributions: set[str]) -> list[str]:
    """`file: module` for each import that is neither stdlib, the package itself, nor a service dependency."""
    owners = importlib.metadata.packages_distributions()
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        for module in sorted(imported_modules(path.read_text())):
            top = module.split(".")[0]
            if top == package_dir.name or top in sys.stdlib_module_names:
                continue
            distributions = {_normalise(d) for d in owners.get(top, [])}
            if top in NEVER_IN_THE_SERVICE or not distributions & allowed_distributions:
                problems.append(f"{path.relative_to(package_dir.parent).as_posix()}: {module}")
    return sorted(set(problems))


def unreachable_modules(package_dir: Path, entry: str = "__main__") -> list[str]:
    """Modules of the package that the entry module never imports, directly or through another module."""
    package = package_dir.name

    def module_name(path: Path) -> str:
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    paths = {module_name(p): p for p in package_dir.rglob("*.py")}
    seen: set[str] = set()
    pending = [f"{package}.{entry}", package]
    while pending:
        name = pending.pop()
        if name in seen or name not in paths:
            continue
        seen.add(name)
        for module in imported_modules(paths[name].read_text()):
            # `import a.b.c` also runs a and a.b (their __init__ modules).
            parts = module.split(".")
            pending.extend(".".join(parts[: n + 1]) for n in range(len(parts)))
    return sorted(set(paths) - seen)


# --- what the Dockerfile copies -----------------------------------------------------------------------------


def test_dockerfile_copies_only_the_service_and_its_reports_into_app() -> None:
    context = build_context()
    copies = context_copies((ROOT / "Dockerfile").read_text())
    into_app = {
        file: target
        for copy in copies
        for file, target in copied_files(context, copy).items()
        if target.startswith("/app/")
    }
    service = {f for f in context if f.startswith("muse/") and f.endswith(".py")}
    reports = {
        f"docs/governance/{stack}.{kind}" for stack in ENVIRONMENTS for kind in ("md", "inventory.json")
    }
    assert len(service) >= 10
    assert set(into_app) == service | reports
    assert all(target == f"/app/{file}" for file, target in into_app.items())
    # The builder reads the lock file; nothing else of the context goes anywhere else.
    elsewhere = {
        file
        for copy in copies
        for file, target in copied_files(context, copy).items()
        if file not in into_app
    }
    assert elsewhere == {"requirements-service.txt"}
    # The runtime stage takes the virtualenv and /app from the builder, nothing from the context.
    assert {copy.stage for copy in copies} == {"builder"}


def test_build_context_is_the_allow_list() -> None:
    context = build_context()
    # The docker client sends these two whatever .dockerignore says (it leaves the Dockerfile out); no COPY
    # reads them (the test above: nothing of the context but the service, its reports and the lock file goes
    # anywhere).
    assert context >= ALWAYS_SENT
    assert {f.split("/")[0] for f in context - ALWAYS_SENT} == {"muse", "docs", "requirements-service.txt"}
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in context if f.startswith("docs/") and not f.startswith("docs/governance/")]


def test_the_dockerignore_keeps_caches_and_env_files_out_of_a_real_tree(tmp_path: Path) -> None:
    """The real .dockerignore on a tree holding what a developer's checkout may hold; negative control: the
    same tree with the cache and .env rules dropped lets those files in."""
    for file in (
        "muse/app.py",
        "muse/__pycache__/app.cpython-311.pyc",
        "muse/governance/.env",
        ".env.local",
        "docs/governance/dev.md",
        "docs/service.md",
        "export/artifacts.py",
        "requirements-service.txt",
    ):
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text("")
    dockerignore = (ROOT / ".dockerignore").read_text()
    (tmp_path / ".dockerignore").write_text(dockerignore)
    assert build_context(tmp_path) == {
        "muse/app.py",
        "docs/governance/dev.md",
        "requirements-service.txt",
        ".dockerignore",  # always sent (build_context.ALWAYS_SENT)
    }
    careless = "\n".join(
        line for line in dockerignore.splitlines() if "pyc" not in line and ".env" not in line
    )
    assert build_context(tmp_path, careless) - build_context(tmp_path) == {
        "muse/__pycache__/app.cpython-311.pyc",
        "muse/governance/.env",
    }


def test_a_copy_of_the_tooling_would_be_caught() -> None:
    """Negative control: a Dockerfile that copies export/ and a .dockerignore that lets it in."""
    dockerignore = (ROOT / ".dockerignore").read_text() + "!export/\n"
    context = build_context(dockerignore=dockerignore)
    assert "export/artifacts.py" in context
    dockerfile = (
        (ROOT / "Dockerfile")
        .read_text()
        .replace("COPY muse/ /app/muse/", "COPY muse/ /app/muse/\nCOPY export/ /app/export/")
    )
    into_app = {
        file: target
        for copy in context_copies(dockerfile)
        for file, target in copied_files(context, copy).items()
        if target.startswith("/app/")
    }
    assert into_app["export/artifacts.py"] == "/app/export/artifacts.py"
    # ... and the real .dockerignore keeps it out even if a COPY asked for it.
    assert "export/artifacts.py" not in build_context()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("muse/app.py", False),
        ("muse/governance/policies.py", False),
        ("muse/__pycache__/app.cpython-311.pyc", True),
        ("docs/governance/dev.md", False),
        ("docs/governance/dev.inventory.json", False),
        ("docs/service.md", True),
        ("export/artifacts.py", True),
        ("Dockerfile", True),
        (".env", True),
        ("muse/.env", True),
    ],
)
def test_dockerignore_rules_on_known_paths(path: str, expected: bool) -> None:
    assert ignored(path, read_dockerignore((ROOT / ".dockerignore").read_text())) is expected


# --- what the service imports ------------------------------------------------------------------------------


def test_service_imports_only_stdlib_itself_and_its_locked_dependencies() -> None:
    allowed = service_distributions()
    assert {"starlette", "uvicorn", "pydantic", "prometheus-client"} <= allowed
    assert foreign_imports(ROOT / SERVICE, allowed) == []


def test_foreign_import_scan_catches_tooling_imports(tmp_path: Path) -> None:
    """Negative control: imports hidden inside functions count too."""
    package = tmp_path / "muse"
    package.mkdir()
    (package / "__init__.py").write_text("import json\nfrom muse import app\n")
    (package / "sources.py").write_text(
        "def plans():\n    from offline.captured import all_plans\n    return all_plans()\n\n"
        "def workflows():\n    import yaml\n    return yaml\n\n"
        "import pulumi\nfrom rbac.roles import Role\nimport starlette\n"
    )
    problems = foreign_imports(package, service_distributions())
    assert problems == [
        "muse/sources.py: offline.captured",
        "muse/sources.py: offline.captured.all_plans",
        "muse/sources.py: pulumi",
        "muse/sources.py: rbac.roles",
        "muse/sources.py: rbac.roles.Role",
        "muse/sources.py: yaml",
    ]


def test_every_service_module_is_reachable_from_its_entry_point() -> None:
    assert unreachable_modules(ROOT / SERVICE) == []


def test_unreachable_module_scan_catches_export_only_code(tmp_path: Path) -> None:
    """Negative control: a module only the tooling imports is reported."""
    package = tmp_path / "muse"
    (package / "governance").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("from muse.app import serve\n")
    (package / "app.py").write_text("from muse.governance.policies import evaluate\n")
    (package / "governance" / "__init__.py").write_text("")
    (package / "governance" / "policies.py").write_text("def evaluate(): ...\n")
    (package / "governance" / "document.py").write_text("from muse.governance.policies import evaluate\n")
    assert unreachable_modules(package) == ["muse.governance.document"]
