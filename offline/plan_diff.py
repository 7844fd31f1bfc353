"""`make plan-diff BASE=<git ref>`: what a change does to each stack, offline and without credentials.

Each side's inventory comes from that side's own code: BASE (and HEAD when given as a ref) is checked out
into a temporary `git worktree` and that tree's plan command (`python -m cli.plan --stack <s> --format json`;
`offline.plan` in a tree from before the commands moved to cli/) runs there with this virtualenv's Python;
without --head, HEAD is the working tree. The worktree is removed afterwards, also on failure. The result is
markdown: per stack, resources added / removed / changed and, for a changed resource, each property that
differs. Secrets stay masked: the inventories only ever hold `[secret]`.

    python -m cli.plan_diff --base origin/main [--head <ref>] [--stack dev ...] [--repo <path>]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_VALUE = 100
MAX_PROPERTIES = 40


class PlanDiffError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------------
# Producing inventories


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PlanDiffError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def stacks_in(root: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def plan_command(root: Path) -> str:
    """The module that prints a tree's plan: `cli.plan`, or `offline.plan` in a base older than cli/ (a
    plan-diff against an earlier release runs that release's own command)."""
    return "cli.plan" if (root / "cli" / "plan.py").is_file() else "offline.plan"


def inventory_at(root: Path, stack: str) -> dict[str, Any]:
    """Run the offline plan of `stack` with the code in `root` (its own __main__.py, components, mocks)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", plan_command(root), "--stack", stack, "--format", "json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PlanDiffError(f"offline plan of {stack} failed in {root.name}: {result.stderr.strip()[-2000:]}")
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise PlanDiffError(
            f"offline plan of {stack} in {root.name} printed no JSON inventory: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise PlanDiffError(f"offline plan of {stack} in {root.name} is not an inventory")
    return data


@contextlib.contextmanager
def worktree(repo: Path, ref: str) -> Iterator[Path]:
    """`ref` checked out (detached) in a temporary worktree of `repo`; removed on exit."""
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except PlanDiffError:
        raise PlanDiffError(
            f"unknown git ref {ref!r} in {repo} (a shallow clone? fetch the base: git fetch origin <base>)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="muse-plan-diff-") as tmp:
        path = Path(tmp) / "tree"
        _git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
        try:
            yield path
        finally:
            with contextlib.suppress(PlanDiffError):
                _git(repo, "worktree", "remove", "--force", str(path))
            with contextlib.suppress(PlanDiffError):
                _git(repo, "worktree", "prune")


def inventories(root: Path, stacks: list[str] | None) -> dict[str, dict[str, Any]]:
    chosen = stacks_in(root) if stacks is None else [s for s in stacks if s in stacks_in(root)]
    return {stack: inventory_at(root, stack) for stack in chosen}


# ------------------------------------------------------------------------------------------------------
# Diffing


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": [1]}}` -> `{"a.b.0": 1}`; empty dicts/lists stay as leaves so they can differ too."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix: value}


@dataclass
class ResourceChange:
    urn: str
    type: str
    name: str
    properties: list[tuple[str, Any, Any]] = field(default_factory=list)  # (path, base, head)


@dataclass
class StackDiff:
    stack: str
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    only_in: str = ""  # "base" or "head" when the stack exists on one side only

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.only_in)


_MISSING = object()


def _comparable(resource: dict[str, Any]) -> dict[str, Any]:
    options = resource.get("options") or {}
    return {
        "properties": resource.get("properties") or {},
        "parent": resource.get("parent"),
        "secretPaths": resource.get("secretPaths") or [],
        "options.ignoreChanges": options.get("ignoreChanges") or [],
        "options.protect": options.get("protect", False),
    }


def diff_inventories(stack: str, base: dict[str, Any] | None, head: dict[str, Any] | None) -> StackDiff:
    result = StackDiff(stack)
    if base is None or head is None:
        result.only_in = "head" if base is None else "base"
        return result
    base_by_urn = {r["urn"]: r for r in base.get("resources", [])}
    head_by_urn = {r["urn"]: r for r in head.get("resources", [])}
    result.added = [head_by_urn[u] for u in sorted(head_by_urn.keys() - base_by_urn.keys())]
    result.removed = [base_by_urn[u] for u in sorted(base_by_urn.keys() - head_by_urn.keys())]
    for urn in sorted(base_by_urn.keys() & head_by_urn.keys()):
        before = flatten(_comparable(base_by_urn[urn]))
        after = flatten(_comparable(head_by_urn[urn]))
        changes = [
            (path.removeprefix("properties."), before.get(path, _MISSING), after.get(path, _MISSING))
            for path in sorted(before.keys() | after.keys())
            if before.get(path, _MISSING) != after.get(path, _MISSING)
        ]
        if changes:
            r = head_by_urn[urn]
            result.changed.append(ResourceChange(urn, r["type"], r["name"], changes))
    return result


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n").replace("|", "\\|").replace("`", "'")
    return f"`{text[:MAX_VALUE]}{'…' if len(text) > MAX_VALUE else ''}`"


def _resource_line(resource: dict[str, Any]) -> str:
    return f"| `{resource['name']}` | `{resource['type']}` |"


def render_markdown(diffs: list[StackDiff], base_label: str, head_label: str) -> str:
    lines = [
        f"## Offline infrastructure diff: `{base_label}` → `{head_label}`",
        "",
        "Each side's own code ran under the offline mocks (`make plan-diff`): no cloud account, no "
        "credentials, so this runs for pull requests from forks too. Secrets stay masked (`[secret]`). The "
        "real `pulumi preview` against Azure is in the pull request comment.",
        "",
    ]
    for d in diffs:
        if d.only_in:
            side = "added by this change" if d.only_in == "head" else "removed by this change"
            lines += [f"### Stack `{d.stack}`: {side}", ""]
            continue
        summary = f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed"
        lines += [f"### Stack `{d.stack}`: {'no changes' if d.empty else summary}", ""]
        if d.empty:
            continue
        for title, items in (("Added", d.added), ("Removed", d.removed)):
            if items:
                lines += [f"**{title}**", "", "| Resource | Type |", "| --- | --- |"]
                lines += [_resource_line(r) for r in items]
                lines.append("")
        if d.changed:
            lines += ["**Changed**", "", "| Resource | Property | Base | Head |", "| --- | --- | --- | --- |"]
            for change in d.changed:
                shown = change.properties[:MAX_PROPERTIES]
                for path, before, after in shown:
                    lines.append(f"| `{change.name}` | `{path}` | {_show(before)} | {_show(after)} |")
                if len(change.properties) > MAX_PROPERTIES:
                    hidden = len(change.properties) - MAX_PROPERTIES
                    lines.append(f"| `{change.name}` | … {hidden} more | | |")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def plan_diff(repo: Path, base: str, head: str | None = None, stacks: list[str] | None = None) -> str:
    with contextlib.ExitStack() as stack:
        base_root = stack.enter_context(worktree(repo, base))
        head_root = repo if head is None else stack.enter_context(worktree(repo, head))
        base_inv = inventories(base_root, stacks)
        head_inv = inventories(head_root, stacks)
    names = sorted(base_inv.keys() | head_inv.keys())
    diffs = [diff_inventories(s, base_inv.get(s), head_inv.get(s)) for s in names]
    return render_markdown(diffs, base, head or "working tree")
