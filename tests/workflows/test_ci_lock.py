"""Jobs that hold an Azure identity install only hash-locked Python packages.

A job with `id-token: write` can mint its OIDC token in any step (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are in
every step's environment), so code that runs at install time (an sdist's build, a .pth file) runs with the
job's identity in reach. Such jobs install requirements-ci.txt with `pip --require-hashes` (`make ci-venv`),
which refuses any file whose hash is not in the lock and any dependency that is not pinned in it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from stack.files import REPO_ROOT
from verify.workflows import Job, Step, Workflow

LOCK = REPO_ROOT / "requirements-ci.txt"
# What installs Python packages in a run: block. `make ci-venv` is the one hash-locked way.
INSTALLS = re.compile(
    r"\bmake\b[^;&|\n]*?(?<![\w-])(venv|setup|test|test-fast|lint|checkov)(?![\w-])|\bpip\d?\s+install\b|"
    r"\buv\s+(pip|sync|add)\b|"
    r"\bpython3?\s+-m\s+pip\s+install\b|\bpipx\b"
)


def _pins(text: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.MULTILINE)
    }


def holds_azure_identity(job: Job) -> bool:
    return isinstance(job.permissions, dict) and job.permissions.get("id-token") == "write"


def unlocked_installs(workflow: Workflow) -> list[str]:
    """`<job>: <line>` for every install in a credentialed job that is not the hash-locked `make ci-venv`."""
    found = []
    for job in workflow.jobs.values():
        if not holds_azure_identity(job):
            continue
        for step in job.steps:
            for line in (step.run or "").splitlines():
                if INSTALLS.search(line) and "--require-hashes" not in line:
                    found.append(f"{job.id}: {line.strip()}")
            if step.action == "actions/setup-python" and step.inputs.get("cache"):
                found.append(f"{job.id}: setup-python cache {step.inputs['cache']}")
    return found


def test_credentialed_jobs_install_only_the_hash_locked_set(workflows: dict[str, Workflow]) -> None:
    jobs = [job for wf in workflows.values() for job in wf.jobs.values()]
    credentialed = [job.id for job in jobs if holds_azure_identity(job)]
    assert len(credentialed) >= 4  # build, two deploys, the PR preview, drift
    for name, workflow in workflows.items():
        assert unlocked_installs(workflow) == [], name
    for workflow in workflows.values():
        for job in workflow.jobs.values():
            if holds_azure_identity(job) and any("make" in (s.run or "") for s in job.steps):
                assert any((s.run or "").strip() == "make ci-venv" for s in job.steps), job.id


def test_negative_control_a_floating_install_in_a_credentialed_job_is_found(
    workflows: dict[str, Workflow],
) -> None:
    workflow = workflows["main.yml"]
    job = workflow.jobs["deploy-dev.deploy"]  # dev's call of deploy.yml, as GitHub runs it
    index = next(i for i, s in enumerate(job.steps) if (s.run or "").strip() == "make ci-venv")
    for bad in (
        "make venv",
        'make -C "$RUNNER_TEMP/deployed" venv',
        "pip install pulumi-azure-native",
        "python3 -m pip install -r requirements.txt",
    ):
        step: Step = replace(job.steps[index], run=bad)
        broken = replace(job, steps=(*job.steps[:index], step, *job.steps[index + 1 :]))
        found = unlocked_installs(replace(workflow, jobs={**workflow.jobs, "deploy-dev.deploy": broken}))
        assert found == [f"deploy-dev.deploy: {bad}"]
    # The same install in a job without an identity is not this check's business.
    checks = workflows["pull-request.yml"]
    assert not holds_azure_identity(checks.jobs["checks"])


def test_every_locked_requirement_is_pinned_and_hashed() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 2)[2].strip())
    requirements = [e for e in entries if not e.startswith("#")]
    assert len(requirements) >= 30
    for entry in requirements:
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\", entry), entry.splitlines()[0]
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def _ci_venv_installs(makefile: str) -> list[str]:
    """The ci-venv recipe's pip commands, with the Makefile's variables expanded."""
    variables = dict(re.findall(r"^(PIP_[A-Z]+) := (.*(?:\\\n.*)*)", makefile, re.MULTILINE))
    target = "$(CI_VENV_STAMP): $(CI_LOCK) pyproject.toml\n"
    recipe = makefile.split(target, 1)[1].split("\n\n", 1)[0]
    for name, value in variables.items():
        recipe = recipe.replace(f"$({name})", value)
    recipe = recipe.replace("\\\n", " ")
    return [" ".join(line.split()) for line in recipe.splitlines() if "pip install" in line]


def test_make_ci_venv_installs_with_require_hashes_and_no_resolution() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "\nCI_LOCK ?= requirements-ci.txt\n" in makefile
    installs = _ci_venv_installs(makefile)
    # Hash-locked and wheels only: no sdist's build code runs in a job that can mint its OIDC token.
    assert "--require-hashes --only-binary=:all: -r $(CI_LOCK)" in installs[0]
    # The project itself: no dependencies resolved, built by the locked setuptools (no build isolation).
    assert "--no-deps --no-build-isolation" in installs[1]
    assert len(installs) == 2
    assert Path(REPO_ROOT / "requirements-ci.txt").exists()


def test_negative_control_the_recipe_without_only_binary_is_refused() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text().replace("--only-binary=:all:", "")
    assert "--only-binary=:all:" not in _ci_venv_installs(makefile)[0]


# The runners the credentialed jobs use: ubuntu-24.04 (glibc 2.39, x86_64) with actions/setup-python at the
# workflows' PYTHON_VERSION. pip's own resolver picks the wheel it would install there (--platform,
# --python-version and --abi make it choose for that target: pip docs, "pip install --platform").
RUNNER_PLATFORMS = ("manylinux_2_39_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64")


def _workflow_python() -> str:
    versions = {
        m.group(1)
        for path in (REPO_ROOT / ".github/workflows").glob("*.yml")
        for m in re.finditer(r'^\s+PYTHON_VERSION: "([0-9.]+)"', path.read_text(), re.MULTILINE)
    }
    assert len(versions) == 1, versions
    return versions.pop()


def _resolve_wheels(lock: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    python = _workflow_python()
    abi = "cp" + python.replace(".", "")
    platforms = [arg for platform in RUNNER_PLATFORMS for arg in ("--platform", platform)]
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
         "--disable-pip-version-check", "--quiet", "--only-binary=:all:", *platforms,
         "--python-version", python, "--implementation", "cp", "--abi", abi,
         "--target", str(tmp_path / "target"), "--require-hashes", "-r", str(lock),
         "--report", str(tmp_path / "report.json")],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


def _lock_hashes(text: str) -> dict[str, set[str]]:
    hashes: dict[str, set[str]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", entry)
        if pin:
            name = re.sub(r"[-_.]+", "-", pin.group(1)).lower()
            hashes[name] = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
    return hashes


@pytest.mark.slow  # pip resolves the whole CI lock
def test_every_locked_package_has_a_runner_wheel_whose_hash_is_locked(tmp_path: Path) -> None:
    result = _resolve_wheels(LOCK, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    locked = _lock_hashes(LOCK.read_text())
    chosen = {}
    for item in report["install"]:
        name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
        url = item["download_info"]["url"]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        assert url.endswith(".whl"), url
        assert digest in locked[name], (name, url)
        chosen[name] = url
    assert set(chosen) == set(locked)


@pytest.mark.slow  # pip resolves the whole CI lock
def test_negative_control_a_lock_without_a_wheel_hash_fails(tmp_path: Path) -> None:
    # The wheel of one binary package leaves the lock (as if only its sdist were hashed): nothing installable.
    text = LOCK.read_text()
    entry = next(e for e in re.split(r"\n(?=[A-Za-z0-9])", text) if e.startswith("pyyaml=="))
    broken = text.replace(entry, entry.split(" \\", 1)[0] + " \\\n    --hash=sha256:" + "0" * 64 + "\n")
    lock = tmp_path / "requirements-ci.txt"
    lock.write_text(broken)
    result = _resolve_wheels(lock, tmp_path)
    assert result.returncode != 0
    assert "pyyaml" in result.stderr.lower()
