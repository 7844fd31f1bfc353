"""Commit subjects are at most 72 characters (scripts/commit_subjects.py). Three places check them: the hook
scripts/git-hooks/commit-msg before a commit exists, CI on a pull request's own commits (pull-request.yml),
and the test here on the commits this clone has that its upstream does not. History already on main is never
checked again: a subject GitHub's merge, squash or revert buttons wrote there cannot fail every later clone.
These tests run it through real git and run the workflow's step as the runner would."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stack.files import REPO_ROOT
from verify import workflows

_spec = importlib.util.spec_from_file_location("commit_subjects", REPO_ROOT / "scripts/commit_subjects.py")
assert _spec is not None and _spec.loader is not None
commit_subjects = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(commit_subjects)
MAX_SUBJECT, long_subjects, subject_of = (
    commit_subjects.MAX_SUBJECT,
    commit_subjects.long_subjects,
    commit_subjects.subject_of,
)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=False)


def unpushed_range(cwd: Path) -> str | None:
    """`<upstream>..HEAD`: the commits not yet on the upstream (the branch's, else origin/main, else a local
    main), or None when there is none to compare with (a tarball, a clone without remotes)."""
    for upstream in ("@{upstream}", "origin/main", "main"):
        if _git(cwd, "rev-parse", "--verify", "-q", f"{upstream}^{{commit}}").returncode == 0:
            return f"{upstream}..HEAD"
    return None


def test_commit_subjects_not_yet_upstream_fit() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: no history to check")
    if (revisions := unpushed_range(REPO_ROOT)) is None:
        pytest.skip("no upstream, origin/main or main here: nothing tells which commits are new")
    assert long_subjects(commit_subjects.commits_in(revisions, cwd=REPO_ROOT)) == [], (
        f"commit subjects over {MAX_SUBJECT} characters in {revisions}: reword them (git rebase -i, "
        "'reword') and put the detail in the body"
    )


def test_history_already_upstream_is_not_checked_again(tmp_path: Path) -> None:
    """Negative control of the range: a long subject landed on main (as GitHub's buttons can write one) is
    outside a clone's new commits; a long one of the clone's own is inside."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "commit", "-q", "--allow-empty", "-m", "Merge pull request #1 from x/" + "y" * 80)
    clone = tmp_path / "clone"
    assert _git(tmp_path, "clone", "-q", str(tmp_path), str(clone)).returncode == 0
    assert unpushed_range(clone) == "@{upstream}..HEAD"
    assert commit_subjects.commits_in("@{upstream}..HEAD", cwd=clone) == []
    _git(clone, "commit", "-q", "--allow-empty", "-m", "z" * 73)
    assert len(long_subjects(commit_subjects.commits_in(unpushed_range(clone) or "", cwd=clone))) == 1
    bare = tmp_path / "bare"
    _git(tmp_path, "init", "-q", "-b", "topic", str(bare))
    assert unpushed_range(bare) is None


# ------------------------------------------------------------------------------------------------------
# On GitHub: pull-request.yml checks the pull request's own commits. For `pull_request`, GITHUB_SHA is "the
# last merge commit of the pull request merge branch" (docs.github.com/en/actions/reference/workflows-and-
# actions/events-that-trigger-workflows#pull_request), and actions/checkout checks out that merge ref by
# default (actions/checkout README, "Checkout pull request HEAD commit instead of merge commit"): HEAD is
# GitHub's test merge "Merge <head> into <base>", its first parent the base branch's tip, its second the pull
# request's head. So the range is HEAD^1..HEAD^2, merges skipped. Not base.sha..head.sha of the payload:
# base.sha can stay main's tip from when the pull request was opened (github.com/github/docs/issues/431), and
# once main is merged into the branch, main's newer commits would be in that range.

PULL_REQUEST = REPO_ROOT / ".github" / "workflows" / "pull-request.yml"
OWN_COMMITS = ["python3", "scripts/commit_subjects.py", "--range", "HEAD^1..HEAD^2"]


def subject_steps(workflow: workflows.Workflow) -> list[tuple[workflows.Job, workflows.Step]]:
    return [
        (job, step)
        for job in workflow.jobs.values()
        for step in job.steps
        if "scripts/commit_subjects.py" in (step.run or "")
    ]


def subject_check_problems(workflow: workflows.Workflow) -> list[str]:
    """What keeps the workflow from checking exactly the pull request's commits on every pull request."""
    problems = [] if "pull_request" in workflow.triggers else ["not run on pull_request"]
    steps = subject_steps(workflow)
    if len(steps) != 1:
        return [*problems, f"{len(steps)} steps run scripts/commit_subjects.py, expected one"]
    job, step = steps[0]
    checkouts = [s for s in job.steps_of("actions/checkout") if job.steps.index(s) < job.steps.index(step)]
    if not checkouts or str(checkouts[0].inputs.get("fetch-depth")) != "0":
        problems.append(f"job {job.id}: no checkout with fetch-depth: 0 before the step")
    elif "ref" in checkouts[0].inputs:
        problems.append(f"job {job.id}: the checkout sets ref:, so HEAD is not GitHub's test merge commit")
    if job.condition or step.condition:
        problems.append(f"job {job.id}: the check is conditional ({job.condition or step.condition})")
    if job.permissions != {"contents": "read"}:
        problems.append(f"job {job.id}: permissions {job.permissions}, expected contents: read only")
    if "${{" in (step.run or ""):
        problems.append("an expression is inlined in run: (template injection): pass it through env:")
    if shlex.split(step.run or "") != OWN_COMMITS:
        problems.append(f"runs {step.run!r}, expected {shlex.join(OWN_COMMITS)}")
    return problems


def test_pull_requests_check_their_own_commit_subjects() -> None:
    assert subject_check_problems(workflows.load(PULL_REQUEST)) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("--range HEAD^1..HEAD^2", '--range "$BASE_SHA..$HEAD_SHA"', "expected python3"),
        ("--range HEAD^1..HEAD^2", "--range HEAD^1..HEAD", "expected python3"),
        ("--range HEAD^1..HEAD^2", "--range ${{ github.event.pull_request.base.sha }}..HEAD^2", "inlined"),
        ("          fetch-depth: 0\n", "", "fetch-depth: 0"),
        (
            "          fetch-depth: 0\n",
            "          fetch-depth: 0\n          ref: ${{ github.event.pull_request.head.sha }}\n",
            "sets ref:",
        ),
    ],
)
def test_a_wrong_subject_check_is_caught(old: str, new: str, problem: str) -> None:
    """Negative controls: the payload's base.sha..head.sha, HEAD (the test merge commit) in the range, an
    inlined expression, a shallow checkout, a checkout of the head instead of the merge."""
    text = PULL_REQUEST.read_text()
    assert old in text
    problems = subject_check_problems(workflows.parse(text.replace(old, new, 1), PULL_REQUEST))
    assert any(problem in p for p in problems), problems


def run_step(
    run: str, event: dict[str, Any], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A step's run: in bash as the runner runs it, its env: expressions taken from the event payload."""

    def value(expression: str) -> str:
        found = re.fullmatch(r"\$\{\{\s*github\.event\.([\w.]+)\s*\}\}", expression)
        assert found, expression
        node: Any = event
        for part in found.group(1).split("."):
            node = node[part]
        return str(node)

    environment = {**os.environ, **{name: value(v) for name, v in (env or {}).items()}}
    shutil.copytree(REPO_ROOT / "scripts", cwd / "scripts", dirs_exist_ok=True)
    return subprocess.run(
        ["bash", "-e", "-c", run], cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )


# The step as it was: the payload's base.sha..head.sha, through env:.
PAYLOAD_RANGE = 'python3 scripts/commit_subjects.py --range "$BASE_SHA..$HEAD_SHA"'
PAYLOAD_ENV = {
    "BASE_SHA": "${{ github.event.pull_request.base.sha }}",
    "HEAD_SHA": "${{ github.event.pull_request.head.sha }}",
}


class Checkout:
    """A repository shaped as GitHub's: main, a pull request branch `topic`, and HEAD detached on GitHub's
    test merge commit of topic into main's tip."""

    def __init__(self, tmp_path: Path) -> None:
        if shutil.which("git") is None or shutil.which("bash") is None:
            pytest.skip("git and bash are needed")
        self.repo = tmp_path / "checkout"
        _git(tmp_path, "init", "-q", "-b", "main", str(self.repo))
        self.commit("Revert " + '"' + "x" * 80 + '"')  # a long subject a button landed on main
        self.opened_on = self.sha("main")
        _git(self.repo, "checkout", "-q", "-b", "topic")
        self.commit("A subject that fits\n\nThe detail.")

    def sha(self, revision: str) -> str:
        return _git(self.repo, "rev-parse", revision).stdout.strip()

    def commit(self, message: str) -> None:
        _git(self.repo, "commit", "-q", "--allow-empty", "-m", message)

    def github_merge(self) -> dict[str, Any]:
        """Detach HEAD on "Merge <head> into <base>" (longer than 72 characters); the event payload, whose
        base.sha stays where main was when the pull request was opened."""
        head, base = self.sha("topic"), self.sha("main")
        _git(self.repo, "checkout", "-q", "--detach", base)
        _git(self.repo, "merge", "-q", "--no-ff", "-m", f"Merge {head} into {base}", head)
        assert len(_git(self.repo, "log", "-1", "--format=%s").stdout.strip()) > MAX_SUBJECT
        return {"pull_request": {"base": {"sha": self.opened_on}, "head": {"sha": head}}}


def test_the_step_passes_a_pull_request_on_top_of_a_long_subject_and_github_merge(tmp_path: Path) -> None:
    """The step itself, run on a checkout shaped as GitHub's: main holds a long subject (landed by a button),
    the pull request's commits fit, and HEAD is the test merge commit. It passes; with one long subject of
    the pull request's own it fails, naming that commit."""
    ((_, step),) = subject_steps(workflows.load(PULL_REQUEST))
    checkout = Checkout(tmp_path)
    passed = run_step(step.run or "", checkout.github_merge(), checkout.repo)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    _git(checkout.repo, "checkout", "-q", "topic")
    checkout.commit("w" * 73)
    failed = run_step(step.run or "", checkout.github_merge(), checkout.repo)
    assert failed.returncode == 1 and "73 > 72 characters" in failed.stdout
    assert "x" * 40 not in failed.stdout and "Merge" not in failed.stdout


def test_main_merged_into_the_branch_after_a_stale_base_sha(tmp_path: Path) -> None:
    """Main moves on after the pull request opened (a long "Merge pull request #N from org/..." subject of
    GitHub's button), the author merges main into the branch, and the payload's base.sha is still main's old
    tip. The payload's range then holds main's commits and fails the pull request for them; HEAD^1..HEAD^2
    passes. A long subject of the pull request's own still fails."""
    ((_, step),) = subject_steps(workflows.load(PULL_REQUEST))
    checkout = Checkout(tmp_path)
    _git(checkout.repo, "checkout", "-q", "main")
    checkout.commit("Merge pull request #7 from example-org/" + "a-long-branch-name-" * 3)
    _git(checkout.repo, "checkout", "-q", "topic")
    _git(checkout.repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'main' into " + "topic-" * 12, "main")
    event = checkout.github_merge()

    old = run_step(PAYLOAD_RANGE, event, checkout.repo, PAYLOAD_ENV)
    assert old.returncode == 1 and "Merge pull request #7" in old.stdout, old.stdout + old.stderr
    new = run_step(step.run or "", event, checkout.repo)
    assert new.returncode == 0, new.stdout + new.stderr

    _git(checkout.repo, "checkout", "-q", "topic")
    checkout.commit("v" * 73)
    failed = run_step(step.run or "", checkout.github_merge(), checkout.repo)
    assert failed.returncode == 1 and "73 > 72 characters" in failed.stdout
    assert "Merge" not in failed.stdout


def test_negative_control_a_73_character_subject_fails_and_72_passes() -> None:
    assert long_subjects([("a" * 40, "x" * 73), ("b" * 40, "y" * 72)]) == [
        f"{'a' * 12}: 73 > 72 characters: {'x' * 73}..."
    ]


def test_the_hook_reads_the_subject_git_records(tmp_path: Path) -> None:
    """git's %s is the first paragraph with its lines joined; the hook sees comment lines git strips later."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    message = "# Please enter the message\n\nFirst half of a title\nwrapped onto a second line\n\nBody.\n"
    _git(tmp_path, "init", "-q")
    assert _git(tmp_path, "commit", "-q", "--allow-empty", "--cleanup=strip", "-m", message).returncode == 0
    recorded = _git(tmp_path, "log", "-1", "--format=%s").stdout.strip()
    assert recorded == "First half of a title wrapped onto a second line"
    assert subject_of(message) == recorded


@pytest.fixture
def clone_with_hook(tmp_path: Path) -> Path:
    """A repository set up as `make hooks` sets up a clone: the hook and its script at their paths."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for name in ("scripts/commit_subjects.py", "scripts/git-hooks/commit-msg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "core.hooksPath", "scripts/git-hooks")
    return tmp_path


def test_the_hook_accepts_a_72_character_subject(clone_with_hook: Path) -> None:
    done = _git(clone_with_hook, "commit", "-q", "--allow-empty", "-m", "s" * 72 + "\n\nThe detail.")
    assert done.returncode == 0, done.stdout + done.stderr


def test_negative_control_the_hook_refuses_a_73_character_subject(clone_with_hook: Path) -> None:
    refused = _git(clone_with_hook, "commit", "-q", "--allow-empty", "-m", "s" * 73 + "\n\nThe detail.")
    assert refused.returncode != 0
    assert "73 > 72 characters" in refused.stdout + refused.stderr
    assert _git(clone_with_hook, "rev-parse", "--verify", "-q", "HEAD").returncode != 0  # nothing committed
