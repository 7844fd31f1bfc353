"""Each fact has one home: a type token or GUID spelled as a string literal in two modules is a copy.

The facts: Azure resource types and operations (`Microsoft.KeyVault/vaults`, `.../keys/decrypt/action`),
Pulumi type tokens (`azure-native:keyvault:Vault`, `kubernetes:apps/v1:Deployment`, `muse:azure:SecretVault`)
and GUIDs (role definition ids, application ids). Only string constants count (read with `ast`, docstrings
left out), so a comment or a docstring may name a fact; code must import it. The homes, per
docs/architecture/code.md: Pulumi type tokens in `muse/resource_types.py` (a leaf every layer that names them
may import), Azure resource types and operations in `rbac/arm.py`, built-in role ids in `rbac/roles.py`, a
component's own type token on its class (`TYPE`).
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections import defaultdict
from pathlib import Path

from stack.files import REPO_ROOT

# A whole literal that is an Azure resource type or operation, or a Pulumi type token.
TOKEN = re.compile(
    r"Microsoft\.[A-Za-z]+(?:/[A-Za-z]+)+"  # Azure: provider namespace / type [/ child types] [/ operation]
    r"|[a-z][a-z0-9-]*:[A-Za-z0-9./-]*:[A-Z][A-Za-z0-9]*"  # Pulumi: package:module:Type
)
# A GUID anywhere in a literal (a role id inside a longer string is still a copy).
GUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")

# Where a fact of each kind lives, for the failure message when no module defines it as a constant yet.
HOME_BY_KIND = (
    (re.compile(r"muse:"), "the component's class (TYPE) in components/"),
    (re.compile(r"[a-z][a-z0-9-]*:"), "muse/resource_types.py"),
    (re.compile(r"Microsoft\."), "rbac/arm.py"),
    (GUID, "rbac/roles.py (a role id) or the one module that owns the id"),
)

# Repetitions that are not copies of one fact, each with its reason. Shrink-only: an entry whose literal no
# longer repeats in exactly these modules fails test_the_allow_list_only_shrinks.
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "00000000-0000-0000-0000-000000000000": (
        frozenset({"bench/inventory.py", "offline/mocks.py", "stack/config.py"}),
        "the nil UUID, a different fact in each: the placeholder object id of stack config, the offline "
        "engine's fake subscription id, a benchmark inventory's tenant id",
    ),
    "Microsoft.Monitor/accounts/data/metrics/read": (
        frozenset({"scripts/ci/canary_gate.py", "verify/access/operations.py"}),
        "scripts/ci/ runs on the runner with the standard library only (it cannot import the project); "
        "verify/access/operations.py models the permission the script's error message names",
    ),
    "kubernetes:apps/v1:Deployment": (
        frozenset({"scripts/ci/deployed_image_tag.py", "muse/resource_types.py"}),
        "scripts/ci/ runs on the runner with the standard library only (it cannot import the project)",
    ),
}


def python_modules(root: Path) -> list[Path]:
    """The Python modules git knows (tracked, or new and not ignored) outside tests/, without generated
    ones (first line says GENERATED)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    paths = [root / name for name in listed if name and not name.startswith("tests/")]
    return [p for p in paths if p.is_file() and "GENERATED" not in p.read_text().split("\n", 1)[0]]


def facts(source: str) -> set[str]:
    """The facts spelled as string constants in `source`, docstrings left out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if TOKEN.fullmatch(node.value):
                found.add(node.value)
            found.update(guid.lower() for guid in GUID.findall(node.value))
    return found


def constants_defined(source: str) -> set[str]:
    """The facts `source` binds to a name at module or class level (`NAME = "..."`): a home to import."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if TOKEN.fullmatch(value.value):
                found.add(value.value)
            elif GUID.fullmatch(value.value):
                found.add(value.value.lower())
    return found


def repeated(root: Path, modules: list[Path]) -> dict[str, set[str]]:
    """fact -> the modules (relative paths) spelling it, for every fact in two or more modules."""
    where: dict[str, set[str]] = defaultdict(set)
    for path in modules:
        for fact in facts(path.read_text()):
            where[fact].add(str(path.relative_to(root)))
    return {fact: modules for fact, modules in where.items() if len(modules) > 1}


def home_of(fact: str, root: Path, modules: set[str]) -> str:
    defining = sorted(m for m in modules if fact in constants_defined((root / m).read_text()))
    if len(defining) == 1:
        return defining[0]
    return next(home for kind, home in HOME_BY_KIND if kind.match(fact))


def problems(root: Path, modules: list[Path], allowed: dict[str, tuple[frozenset[str], str]]) -> list[str]:
    return [
        f"{fact!r} is spelled in {len(where)} modules ({', '.join(sorted(where))}): give it one home and "
        f"import it from {home_of(fact, root, where)}"
        for fact, where in sorted(repeated(root, modules).items())
        if fact not in allowed
    ]


def test_each_fact_has_one_home() -> None:
    modules = python_modules(REPO_ROOT)
    assert len(modules) > 100 and REPO_ROOT / "offline" / "mocks.py" in modules
    assert problems(REPO_ROOT, modules, ALLOWED) == []


def test_the_allow_list_only_shrinks() -> None:
    """An allowed repetition that is gone (or has spread to another module) must leave, or be re-argued."""
    assert stale(repeated(REPO_ROOT, python_modules(REPO_ROOT)), ALLOWED) == {}


def stale(
    found: dict[str, set[str]], allowed: dict[str, tuple[frozenset[str], str]]
) -> dict[str, set[str] | None]:
    """Allowed facts that no longer repeat in exactly their listed modules: fact -> where they are now."""
    return {fact: found.get(fact) for fact, (where, _) in allowed.items() if found.get(fact) != set(where)}


def test_a_copied_fact_is_caught(tmp_path: Path) -> None:
    """Negative control: a synthetic repository where a role id, a type token and an Azure type are copied
    (one of them inside a longer string), beside a docstring and a comment that only name them, a fact in
    one module, and tests/ (out of scope)."""
    role = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    files = {
        "rbac/roles.py": f'"""Reader is {role}."""\nREADER = "{role}"\n',
        "offline/mocks.py": (
            f'# {role} is Reader\nARGS = ["--role", "x {role.upper()}"]\n'
            'TYPES = {"azure-native:keyvault:Vault": "Microsoft.KeyVault/vaults"}\n'
        ),
        "export/types.py": 'VAULT = "azure-native:keyvault:Vault"\nARM = "Microsoft.KeyVault/vaults"\n',
        "components/one.py": 'ONLY_HERE = "azure-native:monitor:MetricAlert"\n',
        "tests/test_x.py": f'ROLE = "{role}"\n',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    modules = python_modules(tmp_path)
    assert problems(tmp_path, modules, {}) == [
        "'Microsoft.KeyVault/vaults' is spelled in 2 modules (export/types.py, offline/mocks.py): give it "
        "one home and import it from export/types.py",
        f"'{role}' is spelled in 2 modules (offline/mocks.py, rbac/roles.py): give it one home and import it "
        "from rbac/roles.py",
        "'azure-native:keyvault:Vault' is spelled in 2 modules (export/types.py, offline/mocks.py): give it "
        "one home and import it from export/types.py",
    ]
    # An allow-listed repetition passes; an entry that no longer repeats as listed is stale.
    allowed = {
        role: (frozenset({"offline/mocks.py", "rbac/roles.py"}), "a reason"),
        "azure-native:monitor:MetricAlert": (frozenset({"components/one.py", "export/types.py"}), "gone"),
        "Microsoft.KeyVault/vaults": (frozenset({"offline/mocks.py"}), "spread to another module"),
    }
    assert len(problems(tmp_path, modules, allowed)) == 1
    assert stale(repeated(tmp_path, modules), allowed) == {
        "azure-native:monitor:MetricAlert": None,
        "Microsoft.KeyVault/vaults": {"export/types.py", "offline/mocks.py"},
    }
