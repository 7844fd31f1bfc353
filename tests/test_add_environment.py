"""Adding an environment, exactly as docs/architecture/azure.md and docs/architecture/ci-cd.md say: a copy of
the repository (its committed files) gets a production-like `staging` between dev and prod - prod's stack
file copied and renamed, its line in stack/environments.txt, its call of the reusable deploy workflow in
main.yml (and prod's call re-pointed at it: GitHub has no expression for "the call before me", see
ci-cd.md) - and nothing else. In the copy, as separate processes reading only the copy, the workflow
model and policy, the bootstrap's plan and staging's plan then give staging prod's rules: purge protection,
zonal pools, HTTPS, the approval, its own identities, every matrix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT

LAST = ENVIRONMENTS[-1]  # the production environment the copy is made from; staging goes before it
NEW = "staging"


def copy_repository(target: Path) -> Path:
    """The repository's committed files (as a checkout has them), copied into `target`."""
    names = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, names):
        source = REPO_ROOT / name
        if source.is_file():  # a file deleted in the working tree is not in the checkout either
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def add_environment(root: Path, name: str, like: str) -> list[str]:
    """The documented edits; returns the files changed."""
    stack = (root / f"Pulumi.{like}.yaml").read_text()
    assert f"muse:environment: {like}\n" in stack
    (root / f"Pulumi.{name}.yaml").write_text(
        stack.replace(f"muse:environment: {like}\n", f"muse:environment: {name}\n")
    )
    listing = root / "stack" / "environments.txt"
    lines = listing.read_text().splitlines(keepends=True)
    lines.insert(lines.index(f"{like}\n"), f"{name}\n")
    listing.write_text("".join(lines))
    main = root / ".github" / "workflows" / "main.yml"
    text = main.read_text()
    start = text.index(f"  deploy-{like}:\n")
    call = text[start:]
    # The new call is the production call, renamed: it imports from the one before it, as prod did.
    new_call = call.replace(f"deploy-{like}:", f"deploy-{name}:").replace(
        f"name: {like}\n", f"name: {name}\n"
    )
    new_call = new_call.replace(f"environment: {like}\n", f"environment: {name}\n")
    new_call = new_call.replace(f"as {like}'s own identities", f"as {name}'s own identities")
    # The one extra edit: prod's call now follows staging's (needs, import-from and its outputs).
    previous = ENVIRONMENTS[ENVIRONMENTS.index(like) - 1]
    repointed = (
        call.replace(f"needs: [build, deploy-{previous}]", f"needs: [build, deploy-{name}]")
        .replace(f"import-from: {previous}\n", f"import-from: {name}\n")
        .replace(f"needs.deploy-{previous}.outputs", f"needs.deploy-{name}.outputs")
    )
    main.write_text(text[:start] + new_call.rstrip("\n") + "\n\n" + repointed)
    return [f"Pulumi.{name}.yaml", "stack/environments.txt", ".github/workflows/main.yml"]


# Runs inside the copy (its modules first on sys.path): what the copy's tools say about the new environment.
PROBE = r"""
import json, sys
from offline.engine import run_stack
from stack.environments import ENVIRONMENTS, requires_approval
from verify.workflows import load_all

name, like = sys.argv[1], sys.argv[2]
facts = {"environments": list(ENVIRONMENTS), "approval": requires_approval(name)}
workflows = {w.file_name: w for w in load_all()}
facts["matrices"] = {
    f"{w.file_name} {j.id}": j.matrix["stack"]
    for w in workflows.values()
    for j in w.jobs.values()
    if "stack" in j.matrix
}
main = workflows["main.yml"]
facts["main jobs"] = sorted(j for j in main.jobs if name in j or like in j)
deploy = main.jobs[f"deploy-{name}.deploy"]
facts["deploy"] = {
    "environment": deploy.environment,
    "needs its preview": f"deploy-{name}.preview" in deploy.needs,
    "imports from": deploy.env.get("SOURCE_ENVIRONMENT"),
    "approval guard": any("approval_guard.py" in (s.run or "") for s in deploy.steps),
}
facts["next imports from"] = main.jobs[f"deploy-{like}.deploy"].env.get("SOURCE_ENVIRONMENT")
plan = run_stack(name)
[vault] = plan.of_type("azure-native:keyvault:Vault")
pools = plan.of_type("azure-native:containerservice:AgentPool")
[gateway] = plan.of_type("kubernetes:gateway.networking.k8s.io/v1:Gateway")
facts["plan"] = {
    "purge protection": vault.get("properties.enablePurgeProtection"),
    "vault protected": bool(vault.protect),
    "zones": sorted(z for p in pools for z in (p.get("availabilityZones") or [])),
    "https": any(l["protocol"] == "HTTPS" for l in gateway.get("spec.listeners")),
}
from stack.files import REPO_ROOT
bootstrap = run_stack("main", root=REPO_ROOT / "bootstrap")
facts["bootstrap"] = {
    e: sorted(r.name.replace(e, "<env>") for r in bootstrap.resources if e in r.name) for e in (name, like)
}
print(json.dumps(facts))
"""


def run_in(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
    }  # the copy's modules, not this checkout's (editable install)
    return subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.slow  # copies the repository, runs the program twice and the bootstrap once
def test_a_production_like_staging_is_its_stack_file_its_line_and_one_call(tmp_path: Path) -> None:
    root = copy_repository(tmp_path / "repo")
    changed = add_environment(root, NEW, LAST)
    assert len(changed) == 3
    policy = run_in(root, sys.executable, "scripts/workflow_policy.py", "check")
    assert policy.returncode == 0, policy.stderr
    probe = run_in(root, sys.executable, "-c", PROBE, NEW, LAST)
    assert probe.returncode == 0, probe.stderr[-4000:]
    facts: dict[str, Any] = json.loads(probe.stdout.splitlines()[-1])
    listed = [*ENVIRONMENTS[:-1], NEW, LAST]
    assert facts["environments"] == listed and facts["approval"] is True
    # Every stack matrix picked staging up (the pull request's preview covers the first environment only).
    for job, stacks in facts["matrices"].items():
        assert stacks == ([listed[0]] if job == "pull-request.yml preview" else listed), job
    assert facts["deploy"] == {
        "environment": NEW,
        "needs its preview": True,
        "imports from": listed[-3],
        "approval guard": True,
    }
    assert facts["next imports from"] == NEW
    assert facts["plan"] == {
        "purge protection": True,
        "vault protected": True,
        "zones": ["1", "2", "3"],
        "https": True,
    }
    # The bootstrap creates for staging what it creates for prod: its identities, grants, state, group.
    assert facts["bootstrap"][NEW] == facts["bootstrap"][LAST] != []
