"""Each fact has one home: a type token or GUID spelled twice in literals, even in one module, is a copy.

The facts: Azure resource provider namespaces, resource types, operations and ABAC attributes
(`Microsoft.KeyVault`, `Microsoft.KeyVault/vaults`, `.../keys/decrypt/action`,
`Microsoft.Authorization/roleAssignments:PrincipalId`), Pulumi type tokens (`azure-native:keyvault:Vault`,
`kubernetes:apps/v1:Deployment`, `muse:azure:SecretVault`) and GUIDs (role definition ids, application ids).
They are found anywhere inside a string constant (a resource id `/providers/Microsoft.KeyVault/vaults/` names
the type), Azure's without letter case (ARM compares them case-insensitively, so `microsoft.monitor/accounts`
is the same fact), and counted per spelling, so a second spelling in the same module is a copy too. Only
string constants count (read with `ast`, docstrings left out), so a comment or a docstring may name a fact;
code must import it. The homes, per docs/architecture/code.md: Pulumi type tokens in `muse/resource_types.py`
(a leaf every layer that names them may import), Azure namespaces, types, operations and attributes in
`rbac/arm.py` (the cluster's generic-resource namespace in `muse/resource_types.py`, which the service reads),
built-in role ids in `rbac/roles.py`, a component's own type token on its class (`TYPE`).
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

from stack.files import REPO_ROOT

# An Azure namespace, type, operation or attribute, or a Pulumi type token, inside a literal. Azure's: not
# part of a longer dotted name (`learn.microsoft.com`, `Microsoft.Azure.Monitor.<odata type>`), any case;
# namespace [/ type [/ child or operation ...]] [:attribute].
TOKEN = re.compile(
    r"(?<![\w.])(?i:Microsoft\.[a-z]+(?:/[a-z]+)*(?::[a-z]+)?)(?!\.?\w)"
    r"|(?<![\w.:/-])[a-z][a-z0-9-]*:[A-Za-z0-9./-]*:[A-Z][A-Za-z0-9]*"  # Pulumi: package:module:Type
)
# A GUID anywhere in a literal (a role id inside a longer string is still a copy).
GUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


def key(fact: str) -> str:
    """One spelling per fact: Azure names and GUIDs compare without letter case, Pulumi tokens with it."""
    return fact.lower() if fact[:10].lower() == "microsoft." or GUID.fullmatch(fact) else fact


# Where a fact of each kind lives, for the failure message when no module defines it as a constant yet.
HOME_BY_KIND = (
    (re.compile(r"muse:"), "the component's class (TYPE) in components/"),
    (re.compile(r"[a-z][a-z0-9-]*:"), "muse/resource_types.py"),
    (re.compile(r"(?i)Microsoft\."), "rbac/arm.py"),
    (GUID, "rbac/roles.py (a role id) or the one module that owns the id"),
)

# Repetitions that are not copies of one fact, each with its reason (keys as `key` spells them). Shrink-only:
# an entry whose fact no longer repeats in exactly these modules fails test_the_allow_list_only_shrinks.
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "00000000-0000-0000-0000-000000000000": (
        frozenset({"bench/inventory/__init__.py", "offline/mocks.py", "stack/config.py"}),
        "the nil UUID, a different fact in each: the placeholder object id of stack config, the offline "
        "engine's fake subscription id, a benchmark inventory's tenant id",
    ),
    "microsoft.monitor/accounts/data/metrics/read": (
        frozenset({"scripts/ci/canary_gate.py", "rbac/arm.py"}),
        "scripts/ci/ runs on the runner with the standard library only (it cannot import the project); "
        "the permission model models the permission the script's error message names",
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


def facts(source: str) -> Counter[str]:
    """How often each fact is spelled in the string constants of `source` (f-string parts included),
    docstrings left out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.update(key(match) for match in TOKEN.findall(node.value))
            found.update(key(guid) for guid in GUID.findall(node.value))
    return found


def constants_defined(source: str) -> set[str]:
    """The facts `source` binds to a name at module or class level (`NAME = "..."`): a home to import."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        literal = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else ""
        if TOKEN.fullmatch(literal) or GUID.fullmatch(literal):
            found.add(key(literal))
    return found


def repeated(root: Path, modules: list[Path]) -> dict[str, Counter[str]]:
    """fact -> how often each module (relative path) spells it, for every fact spelled more than once."""
    where: dict[str, Counter[str]] = defaultdict(Counter)
    for path in modules:
        for fact, count in facts(path.read_text()).items():
            where[fact][str(path.relative_to(root))] += count
    return {fact: spelled for fact, spelled in where.items() if spelled.total() > 1}


def home_of(fact: str, root: Path, modules: set[str]) -> str:
    defining = sorted(m for m in modules if fact in constants_defined((root / m).read_text()))
    if len(defining) == 1:
        return defining[0]
    return next(home for kind, home in HOME_BY_KIND if kind.match(fact))


def problems(root: Path, modules: list[Path], allowed: dict[str, tuple[frozenset[str], str]]) -> list[str]:
    return [
        f"{fact!r} is spelled {spelled.total()} times ("
        + ", ".join(f"{m} x{n}" if n > 1 else m for m, n in sorted(spelled.items()))
        + f"): give it one home and import it from {home_of(fact, root, set(spelled))}"
        for fact, spelled in sorted(repeated(root, modules).items())
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
    found: dict[str, Counter[str]], allowed: dict[str, tuple[frozenset[str], str]]
) -> dict[str, set[str] | None]:
    """Allowed facts that no longer repeat in exactly their listed modules: fact -> where they are now."""
    now = {fact: set(spelled) for fact, spelled in found.items()}
    return {fact: now.get(fact) for fact, (where, _) in allowed.items() if now.get(fact) != set(where)}


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
    modules = synthetic_repository(tmp_path, files)
    assert problems(tmp_path, modules, {}) == [
        f"'{role}' is spelled 2 times (offline/mocks.py, rbac/roles.py): give it one home and import it "
        "from rbac/roles.py",
        "'azure-native:keyvault:Vault' is spelled 2 times (export/types.py, offline/mocks.py): give it "
        "one home and import it from export/types.py",
        "'microsoft.keyvault/vaults' is spelled 2 times (export/types.py, offline/mocks.py): give it "
        "one home and import it from export/types.py",
    ]
    # An allow-listed repetition passes; an entry that no longer repeats as listed is stale.
    allowed = {
        role: (frozenset({"offline/mocks.py", "rbac/roles.py"}), "a reason"),
        "azure-native:monitor:MetricAlert": (frozenset({"components/one.py", "export/types.py"}), "gone"),
        "microsoft.keyvault/vaults": (frozenset({"offline/mocks.py"}), "spread to another module"),
    }
    assert len(problems(tmp_path, modules, allowed)) == 1
    assert stale(repeated(tmp_path, modules), allowed) == {
        "azure-native:monitor:MetricAlert": None,
        "microsoft.keyvault/vaults": {"export/types.py", "offline/mocks.py"},
    }


def test_a_fact_inside_a_literal_in_any_case_or_in_one_module_is_caught(tmp_path: Path) -> None:
    """Negative control for the copies a whole-literal, cross-module, case-sensitive scan missed: a type in
    a resource id (an f-string part), a namespace alone, an operation spelled twice in one module, a
    lower-case copy, an ABAC attribute inside `@Request[...]`; and what is not a fact: a documentation URL,
    an odata type, a longer type that merely starts with a known one."""
    files = {
        "rbac/arm.py": (
            'KEY_VAULTS = "Microsoft.KeyVault/vaults"\n'
            'MONITOR_ACCOUNTS = "Microsoft.Monitor/accounts"\n'
            'ASSIGNED_ROLE = "Microsoft.Authorization/roleAssignments:RoleDefinitionId"\n'
        ),
        "bootstrap/main.py": (
            'def key(g, v):\n    return f"{g}/providers/Microsoft.KeyVault/vaults/{v}/keys/k"\n'
        ),
        "components/cluster.py": 'NAMESPACE = "Microsoft.ContainerService"\n',
        "stack/providers.py": 'PROVIDERS = {"Microsoft.ContainerService": "AKS"}\n',
        "verify/model.py": (
            'A = ("Microsoft.KeyVault/vaults/secrets/getSecret/action", 1)\n'
            'B = ("Microsoft.KeyVault/vaults/secrets/getSecret/action", 2)\n'
            'ROLE = "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"\n'
        ),
        "components/workbook.py": 'ITEM = {"resourceType": "microsoft.monitor/accounts"}\n',
        "components/other.py": (
            'DOCS = "https://learn.microsoft.com/azure/aks/supported-kubernetes-versions"\n'
            'ODATA = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"\n'
            'CHILD = "Microsoft.KeyVault/vaults/secrets"\n'
        ),
        "stack/docs.py": 'SEE = "learn.microsoft.com/azure/aks/supported-kubernetes-versions"\n',
    }
    modules = synthetic_repository(tmp_path, files)
    assert problems(tmp_path, modules, {}) == [
        "'microsoft.authorization/roleassignments:roledefinitionid' is spelled 2 times (rbac/arm.py, "
        "verify/model.py): give it one home and import it from rbac/arm.py",
        "'microsoft.containerservice' is spelled 2 times (components/cluster.py, stack/providers.py): give "
        "it one home and import it from components/cluster.py",
        "'microsoft.keyvault/vaults' is spelled 2 times (bootstrap/main.py, rbac/arm.py): give it one home "
        "and import it from rbac/arm.py",
        "'microsoft.keyvault/vaults/secrets/getsecret/action' is spelled 2 times (verify/model.py x2): give "
        "it one home and import it from rbac/arm.py",
        "'microsoft.monitor/accounts' is spelled 2 times (components/workbook.py, rbac/arm.py): give it one "
        "home and import it from rbac/arm.py",
    ]


def synthetic_repository(root: Path, files: dict[str, str]) -> list[Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    return python_modules(root)
