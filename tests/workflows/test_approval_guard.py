"""scripts/ci/approval_guard.py, deploy-prod's first step, run for real against a fake GitHub on 127.0.0.1.

GitHub as documented: a re-run passes an environment protection rule that passed in an earlier attempt
("Re-running workflows and jobs"; tests/github_model.py Run), GITHUB_RUN_ATTEMPT counts attempts ("Variables
reference"), and "Get the review history for a workflow run" (GET /repos/{owner}/{repo}/actions/runs/{run_id}/
approvals) answers a list of `{state, comment, environments: [{id, name, ...}], user: {login, ...}}` and
needs the token (401 without it)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import loopback
from tests.github_model import Environment, Run
from tests.workflows.expansion import deploy_text, expanded_main
from verify.workflows import RELEASE_CHECKS_PATH

# main.yml's prod jobs, as GitHub runs its call of the reusable deploy.yml (verify.workflows.expand_calls).
PREVIEW_PROD, DEPLOY_PROD = "deploy-prod.preview", "deploy-prod.deploy"

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "scripts" / "ci" / "approval_guard.py"
REPOSITORY = "muse-platform/muse"
RUN_ID = 4242
TOKEN = "ghs_fake-job-token"
COMMIT = "c0ffee" + "0" * 34


def review(login: str, environment: str = "prod", state: str = "approved") -> dict[str, Any]:
    return {
        "state": state,
        "comment": "diff looks right",
        "environments": [{"id": 161088068, "name": environment, "url": "..."}],
        "user": {"login": login, "type": "User"},
    }


@pytest.fixture
def api() -> Iterator[tuple[list[dict[str, Any]], list[str], str]]:
    reviews: list[dict[str, Any]] = []
    requests: list[str] = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, payload = 401, {"message": "Bad credentials"}
            elif self.path == f"/repos/{REPOSITORY}/actions/runs/{RUN_ID}/approvals":
                status, payload = 200, reviews
            else:
                status, payload = 404, {"message": "Not Found"}
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    loopback.start(server)
    yield reviews, requests, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def guard(url: str, tmp_path: Path, attempt: int, actor: str = "alice") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GITHUB_API_URL": url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_RUN_ID": str(RUN_ID),
        "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_ACTOR": actor,
        "GITHUB_TRIGGERING_ACTOR": actor,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    return subprocess.run(
        [str(GUARD), "--environment", "prod", "--commit", COMMIT],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_first_attempt_approved_by_a_reviewer_deploys(api: Any, tmp_path: Path) -> None:
    reviews, requests, url = api
    reviews.append(review("bob"))
    result = guard(url, tmp_path, attempt=1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert requests == [f"/repos/{REPOSITORY}/actions/runs/{RUN_ID}/approvals"]
    # The approver and whoever reads the run later see which commit was released.
    assert f"commit {COMMIT} approved" in result.stdout
    assert f"### Deploy prod of commit `{COMMIT}`" in (tmp_path / "summary.md").read_text()


def test_a_rerun_is_refused_with_how_to_start_a_new_run(api: Any, tmp_path: Path) -> None:
    reviews, requests, url = api
    reviews.append(review("bob"))  # attempt 1's approval, still in the history
    # GitHub itself lets the re-run's job start on that approval (row 4 of the reference):
    run = Run(Environment(reviewers=("bob",), can_admins_bypass=False))
    run.approve("bob", actor="alice")
    run.rerun()
    assert run.job_may_start()
    result = guard(url, tmp_path, attempt=2)
    assert result.returncode == 1
    summary = (tmp_path / "summary.md").read_text()
    assert "attempt 2" in summary and "start a new run" in summary
    assert f"gh workflow run main.yml --repo {REPOSITORY} --ref main -f commit={COMMIT}" in summary
    assert f"::error title=Deploy prod refused (commit {COMMIT})::" in result.stdout
    assert f"of commit `{COMMIT}`: refused" in summary
    assert requests == []  # refused before any request


@pytest.mark.parametrize(
    ("reviews", "message"),
    [
        ([], "no approval of the prod environment"),
        ([review("alice")], "who started the run"),
        ([review("bob", state="rejected")], "no approval of the prod environment"),
        ([review("bob", environment="dev")], "no approval of the prod environment"),
    ],
)
def test_the_approval_must_be_of_prod_by_someone_else(
    api: Any, tmp_path: Path, reviews: list[dict[str, Any]], message: str
) -> None:
    history, _, url = api
    history.extend(reviews)
    result = guard(url, tmp_path, attempt=1, actor="alice")
    assert result.returncode == 1 and message in (tmp_path / "summary.md").read_text()


def test_an_unreadable_history_refuses(api: Any, tmp_path: Path) -> None:
    _, _, url = api
    result = guard(url + "/nowhere", tmp_path, attempt=1)
    assert result.returncode == 1 and "could not read the run's review history" in result.stdout


def test_the_workflow_runs_the_guard_first_in_deploy_prod() -> None:
    """Before any credential or change: the guard is deploy-prod's first step after the checkout (and after
    the job's clock, which only records the time: deploy.py's deadlines)."""
    job = expanded_main().jobs[DEPLOY_PROD]
    assert job.steps[0].action is None and "JOB_STARTED_AT" in (job.steps[0].run or "")
    assert [step.action for step in job.steps[1:3]] == ["actions/checkout", "actions/checkout"]
    assert (job.steps[3].run or "").startswith(
        '.ci-tools/scripts/ci/approval_guard.py --environment "$STACK"'
    )
    assert job.env["STACK"] == "prod" and job.steps[3].condition is None
    assert isinstance(job.permissions, dict) and job.permissions.get("actions") == "read"
    # The guard belongs to every approval call and to none other: dev's deploy has no guard (it would fail
    # for want of an approval) and no `actions: read`.
    dev = expanded_main().jobs["deploy-dev.deploy"]
    assert not any("approval_guard.py" in (s.run or "") for s in dev.steps)
    assert isinstance(dev.permissions, dict) and "actions" not in dev.permissions


# --- the new run that replaces a re-run: workflow_dispatch of a commit on main ------------------------------


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"},
    ).stdout.strip()  # fmt: skip


def test_a_dispatch_deploys_only_a_commit_of_main(tmp_path: Path) -> None:
    """The build job's check, run as the runner runs it, in a clone whose origin/main is main (actions/
    checkout with fetch-depth 0 fetches every branch)."""
    from verify.workflows import load

    workflow = load(ROOT / ".github" / "workflows" / "main.yml")
    assert workflow.env["RELEASE_COMMIT"] == "${{ inputs.commit || github.sha }}"
    build = workflow.jobs["build"]
    assert build.steps[0].inputs == {
        "persist-credentials": False, "ref": "${{ env.RELEASE_COMMIT }}", "fetch-depth": 0
    }  # fmt: skip
    check = build.steps[1].run or ""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    older = _git(repo, "rev-parse", "HEAD")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "update-ref", "refs/remotes/origin/main", head)
    _git(repo, "checkout", "-q", "-b", "unreviewed", older)
    _git(repo, "commit", "-q", "--allow-empty", "-m", "pushed to a branch, never merged")
    side = _git(repo, "rev-parse", "HEAD")

    def verdict(commit: str) -> int:
        return subprocess.run(
            ["bash", "-e", "-c", check], cwd=repo, env={**os.environ, "RELEASE_COMMIT": commit},
            capture_output=True, text=True, timeout=30, check=False,
        ).returncode  # fmt: skip

    assert verdict(head) == 0 and verdict(older) == 0
    # Negative controls: a commit that never reached main, a short SHA, an injected string.
    assert verdict(side) == 1
    assert verdict(older[:12]) == 1
    assert verdict("main; echo pwned") == 1
    # Every job releases the same commit (the program's checkout; the prod jobs' checks are main's head). A
    # called workflow does not see the caller's `env` ("Reusable workflows reference", Limitations): each call
    # passes the same expression as its `commit` input, which deploy.yml makes its RELEASE_COMMIT.
    expanded = expanded_main()
    for job_id in ("build", "deploy-dev.deploy", PREVIEW_PROD, DEPLOY_PROD):
        job = expanded.jobs[job_id]
        [checkout] = [s for s in job.steps_of("actions/checkout") if "path" not in s.inputs]
        assert checkout.inputs["ref"] == "${{ env.RELEASE_COMMIT }}", job_id
        assert {**expanded.env, **job.env}["RELEASE_COMMIT"] == workflow.env["RELEASE_COMMIT"], job_id
    assert "$GITHUB_SHA" not in workflow.text and "$GITHUB_SHA" not in deploy_text()


# --- a dispatch of an older commit runs today's checks, and every message names the commit ------------------

CHECKS = ("approval_guard.py", "placeholders.py", "preview.py")


def release_check_problems(workflow: Any) -> list[str]:
    """Which prod check would run from the released commit's own scripts. A workflow_dispatch of an older
    commit (RELEASE_COMMIT) checks that commit out; its scripts are the ones from before a check existed or
    was fixed (approval_guard.py and placeholders.py came later than the first commits of main). The checks
    must come from a checkout of github.sha, the head of main when the run was started ("Events that
    trigger workflows", workflow_dispatch: GITHUB_SHA is the last commit on the ref)."""
    problems = []
    for job_id in (PREVIEW_PROD, DEPLOY_PROD):
        job = workflow.jobs[job_id]
        tools = [s for s in job.steps_of("actions/checkout") if s.inputs.get("ref") == "${{ github.sha }}"]
        if [s.inputs.get("path") for s in tools] != [RELEASE_CHECKS_PATH]:
            problems.append(f"{job_id}: no checkout of github.sha into .ci-tools")
        for step in job.steps:
            for check in CHECKS:
                if check in (step.run or "") and f"{RELEASE_CHECKS_PATH}/scripts/ci/{check}" not in (
                    step.run or ""
                ):
                    problems.append(f"{job_id}: {check} runs from the released commit")
    return problems


def test_the_prod_checks_run_from_main_s_head_and_the_program_at_the_release_commit() -> None:
    workflow = expanded_main()
    assert release_check_problems(workflow) == []
    placeholders = next(s for s in workflow.jobs[PREVIEW_PROD].steps if "placeholders.py" in (s.run or ""))
    assert placeholders.env == {"PYTHONPATH": RELEASE_CHECKS_PATH}  # main's stack.config, not the release's
    # Negative control: the workflow as merged ran every check from the released commit's checkout.
    text = deploy_text().replace(f"{RELEASE_CHECKS_PATH}/scripts/ci/", "scripts/ci/")
    former = expanded_main(deploy=text.replace("ref: ${{ github.sha }}", "ref: ${{ env.RELEASE_COMMIT }}"))
    problems = release_check_problems(former)
    assert f"{DEPLOY_PROD}: approval_guard.py runs from the released commit" in problems
    assert f"{PREVIEW_PROD}: placeholders.py runs from the released commit" in problems
    assert f"{DEPLOY_PROD}: no checkout of github.sha into .ci-tools" in problems


def test_the_run_and_the_diff_to_approve_name_the_commit() -> None:
    """The approver sees which commit a run releases: in the run's title (`run-name`, which may use the
    github and inputs contexts: "Workflow syntax", run-name) and in preview-prod's summary heading."""
    from verify.workflows import load

    workflow = load(ROOT / ".github" / "workflows" / "main.yml")
    run_name = yaml.safe_load(workflow.text)["run-name"]
    assert workflow.env["RELEASE_COMMIT"] in run_name  # the same expression every job releases
    job = expanded_main().jobs[PREVIEW_PROD]
    [preview] = [s for s in job.steps if "preview.py" in (s.run or "")]
    assert '--title "Diff of $STACK to approve, commit $RELEASE_COMMIT"' in " ".join(
        (preview.run or "").split()
    )
    assert job.env["STACK"] == "prod"
