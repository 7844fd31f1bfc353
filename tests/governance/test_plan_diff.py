"""`make plan-diff`: the offline inventories of two commits, each produced by that commit's own code.

The repository under test is a throwaway git repository in tmp_path holding copies of this program (the
PR workflow's checkout may be shallow, so the test does not depend on this repository's history): commit 1 is
the program as it is, commit 2 changes the dev stack's config in ways with known effects.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cli.plan_diff import main
from offline.plan_diff import (
    PlanDiffError,
    diff_inventories,
    flatten,
    inventory_at,
    plan_command,
    plan_diff,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = (
    "__main__.py",
    "Pulumi.yaml",
    "Pulumi.dev.yaml",
    "Pulumi.prod.yaml",
    "components",
    "rbac",
    "stack",
    "offline",
    "cli",
)
DEPLOY_PRINCIPAL = "11111111-2222-4333-8444-555555555555"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    repo = tmp_path_factory.mktemp("plan-diff") / "repo"
    repo.mkdir()
    for name in PROGRAM:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "program as it is")
    base = git(repo, "rev-parse", "HEAD")
    stack_file = repo / "Pulumi.dev.yaml"
    text = stack_file.read_text()
    assert "muse:logRetentionDays: 30" in text
    text = text.replace("muse:logRetentionDays: 30", "muse:logRetentionDays: 60")
    text += f"  muse:imagePushPrincipalId: {DEPLOY_PRINCIPAL}\n"
    stack_file.write_text(text)
    git(repo, "commit", "--quiet", "-am", "dev: longer log retention, CI deploy principal")
    head = git(repo, "rev-parse", "HEAD")
    return repo, base, head


@pytest.mark.slow  # plans of two git worktrees
def test_diff_between_two_commits_shows_the_known_changes(repo: tuple[Path, str, str]) -> None:
    path, base, head = repo
    markdown = plan_diff(path, base, head, ["dev"])
    assert markdown.startswith(f"## Offline infrastructure diff: `{base}` → `{head}`")
    assert "### Stack `dev`: 1 added, 0 removed, 1 changed" in markdown
    # imagePushPrincipalId grants the CI principal AcrPush on the registry: one new role assignment.
    assert "| `image-push-acr-push` | `azure-native:authorization:RoleAssignment` |" in markdown
    assert "| `observability-workspace` | `retentionInDays` | `30` | `60` |" in markdown
    # Both worktrees are gone again.
    assert git(path, "worktree", "list").count("\n") == 0


@pytest.mark.slow  # plans of a git worktree
def test_working_tree_against_a_commit(repo: tuple[Path, str, str]) -> None:
    path, _, head = repo
    assert "### Stack `dev`: no changes" in plan_diff(path, head, None, ["dev"])
    stack_file = path / "Pulumi.dev.yaml"
    committed = stack_file.read_text()
    try:
        stack_file.write_text(committed.replace("muse:replicas: 1", "muse:replicas: 2"))
        markdown = plan_diff(path, head, None, ["dev"])
    finally:
        stack_file.write_text(committed)
    assert "→ `working tree`" in markdown
    assert "| `muse-deployment` | `spec.replicas` | `1` | `2` |" in markdown


@pytest.mark.slow  # plans of a git worktree
def test_cli_prints_markdown_and_rejects_unknown_refs(
    repo: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, base, head = repo
    assert main(["--repo", str(path), "--base", base, "--head", head, "--stack", "prod"]) == 0
    assert "### Stack `prod`: no changes" in capsys.readouterr().out
    assert main(["--repo", str(path), "--base", "no-such-ref"]) == 2
    assert "unknown git ref 'no-such-ref'" in capsys.readouterr().err


def _inventory(*resources: dict[str, object]) -> dict[str, object]:
    return {
        "schemaVersion": 1,
        "project": "muse",
        "stack": "dev",
        "environment": "dev",
        "tier": "development",
        "resources": list(resources),
    }


def test_secrets_stay_masked_and_secretness_changes_show() -> None:
    before = {"urn": "u1", "type": "t", "name": "n", "properties": {"password": "[secret]", "size": 1}}
    after = {
        "urn": "u1",
        "type": "t",
        "name": "n",
        "properties": {"password": "[secret]", "size": 2},
        "secretPaths": ["password"],
    }
    diff = diff_inventories("dev", _inventory(before), _inventory(after))
    assert [(p, b, a) for p, b, a in diff.changed[0].properties if p == "size"] == [("size", 1, 2)]
    assert all(p != "password" for p, _, _ in diff.changed[0].properties)
    markdown = render_markdown([diff], "base", "head")
    assert "| `n` | `secretPaths.0` | (absent) | `password` |" in markdown


def test_added_removed_and_stacks_on_one_side() -> None:
    a = {"urn": "a", "type": "t", "name": "a", "properties": {}}
    b = {"urn": "b", "type": "t", "name": "b", "properties": {}}
    diff = diff_inventories("dev", _inventory(a), _inventory(b))
    assert [r["urn"] for r in diff.added] == ["b"] and [r["urn"] for r in diff.removed] == ["a"]
    assert diff_inventories("qa", None, _inventory()).only_in == "head"
    assert "### Stack `qa`: added by this change" in render_markdown(
        [diff_inventories("qa", None, _inventory())], "x", "y"
    )


def test_flatten_keeps_empty_containers_as_leaves() -> None:
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": {}, "e": []}) == {
        "a.b.0": 1,
        "a.b.1.c": 2,
        "d": {},
        "e": [],
    }


def _tree(root: Path, module: str, stack: str) -> Path:
    """A tree whose plan command `module` prints a one-resource inventory naming the module and the stack."""
    package, name = module.split(".")
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / f"{name}.py").write_text(
        "import json, sys\n"
        f"assert sys.argv[1:] == ['--stack', {stack!r}, '--format', 'json'], sys.argv\n"
        f"print(json.dumps({{'resources': [{{'name': {module!r}}}]}}))\n"
    )
    return root


def test_each_side_runs_its_own_plan_command(tmp_path: Path) -> None:
    """A base from before the commands moved to cli/ has only `offline.plan`; a newer one has `cli.plan`
    (and an `offline/plan.py` that is no command). Negative control: a tree with a cli/plan.py runs that one,
    so a failing cli/plan.py fails the diff even beside a working offline/plan.py."""
    assert plan_command(ROOT) == "cli.plan"
    old = _tree(tmp_path / "old", "offline.plan", "dev")
    new = _tree(tmp_path / "new", "cli.plan", "dev")
    (new / "offline").mkdir()
    (new / "offline" / "plan.py").write_text("raise SystemExit('offline.plan is a library module now')\n")
    assert inventory_at(old, "dev") == {"resources": [{"name": "offline.plan"}]}
    assert inventory_at(new, "dev") == {"resources": [{"name": "cli.plan"}]}
    (old / "cli").mkdir()
    (old / "cli" / "plan.py").write_text("raise SystemExit(3)\n")
    with pytest.raises(PlanDiffError, match="offline plan of dev failed"):
        inventory_at(old, "dev")
