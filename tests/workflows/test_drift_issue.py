"""A failed drift check opens or updates one issue per stack (scripts/ci/drift_issue.py), run for real against
a fake GitHub on 127.0.0.1; and prod's reserved host is refused in preview-prod, before the approval.

The fake answers as GitHub documents its issue endpoints (REST "Issues": "List repository issues" with
`state`, `creator`, `per_page`/`page` and a Link rel="next" header, and pull requests in the same list
carrying a `pull_request` key; "Create an issue" answers 201 with `number`; "Update an issue"; "Create an
issue comment"), each item with its author as `user` {login, type} (github-actions[bot], type Bot, for
what the job token writes), and refuses a body over 65,536 characters with 422
(tests/workflows/test_preview_report.py cites the limit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.expansion import expanded_main
from tests.workflows.fake_api import JsonHandler, serving
from verify.workflows import load

ROOT = Path(__file__).resolve().parents[2]
DRIFT_ISSUE = ROOT / "scripts" / "ci" / "drift_issue.py"
RESERVED_HOST = ROOT / "scripts" / "ci" / "reserved_host.py"
REPOSITORY = "muse-platform/muse"
TOKEN = "ghs_fake-job-token"
BOT = {"login": "github-actions[bot]", "type": "Bot"}
LIMIT = 65_536


class FakeIssues:
    def __init__(self) -> None:
        self.issues: list[dict[str, Any]] = []
        self.comments: dict[int, list[str]] = {}
        self.requests: list[tuple[str, str]] = []

    def add(self, body: str, user: dict[str, str], title: str = "t", **extra: Any) -> int:
        number = len(self.issues) + 1
        self.issues.append({"number": number, "title": title, "body": body, "state": "open", "user": user,
                            **extra})  # fmt: skip
        return number


@pytest.fixture
def github() -> Iterator[tuple[FakeIssues, str]]:
    fake = FakeIssues()
    base = f"/repos/{REPOSITORY}/issues"

    class Api(JsonHandler):
        def _payload(self) -> dict[str, Any] | None:
            fake.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Bad credentials"})
                return None
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            if len(payload.get("body", "")) > LIMIT:
                self._send(422, {"message": "Validation Failed"})
                return None
            return payload

        def do_GET(self) -> None:
            if self._payload() is None:
                return
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            if parts.path != base:
                self._send(404, {"message": "Not Found"})
                return
            items = [i for i in fake.issues if i["state"] == query.get("state", ["open"])[0]]
            if "creator" in query:
                items = [i for i in items if i["user"]["login"] == query["creator"][0]]
            per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
            more = len(items) > page * per_page
            query_next = {**{k: v[0] for k, v in query.items()}, "page": str(page + 1)}
            link = f'<http://{self.headers["Host"]}{base}?{urllib.parse.urlencode(query_next)}>; rel="next"'
            self._send(200, items[(page - 1) * per_page : page * per_page], link if more else "")

        def do_POST(self) -> None:
            payload = self._payload()
            if payload is None:
                return
            if self.path == base:
                number = fake.add(payload["body"], BOT, payload["title"])
                self._send(201, {"number": number, **fake.issues[number - 1]})
            elif self.path.startswith(base + "/") and self.path.endswith("/comments"):
                number = int(self.path.split("/")[-2])
                fake.comments.setdefault(number, []).append(payload["body"])
                self._send(201, {"id": 1, "body": payload["body"], "user": BOT})
            else:
                self._send(404, {"message": "Not Found"})

        def do_PATCH(self) -> None:
            payload = self._payload()
            if payload is None:
                return
            number = int(self.path.rsplit("/", 1)[1])
            fake.issues[number - 1].update(payload)
            self._send(200, fake.issues[number - 1])

    with serving(Api) as url:
        yield fake, url


def report(api: str, tmp_path: Path, stack: str, text: str | None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"drift-{stack}.md"
    if text is not None:
        path.write_text(text)
    return _drift_issue(api, "--stack", stack, "--report", str(path))


def resolved(api: str, stack: str) -> subprocess.CompletedProcess[str]:
    return _drift_issue(api, "--stack", stack, "--resolved")


def _drift_issue(api: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_API_URL": api, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPOSITORY,
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "99"}  # fmt: skip
    return subprocess.run(
        [str(DRIFT_ISSUE), *args],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


DRIFT = "### Drift check: `muse/prod` DRIFT: Azure differs from the code\n\n```diff\n~ tags.env\n```\n"


def test_one_issue_per_stack_opened_then_updated(github: tuple[FakeIssues, str], tmp_path: Path) -> None:
    fake, api = github
    assert report(api, tmp_path, "prod", DRIFT).returncode == 0
    [issue] = fake.issues
    assert issue["title"] == "Drift check failed: prod" and DRIFT.strip() in issue["body"]
    assert "https://github.com/muse-platform/muse/actions/runs/99" in issue["body"]
    # The next day's failure: the same issue, its body replaced, a comment so participants hear again.
    again = DRIFT.replace("tags.env", "sku.name")
    assert report(api, tmp_path, "prod", again).returncode == 0
    assert len(fake.issues) == 1 and "sku.name" in fake.issues[0]["body"]
    assert fake.comments[1] == ["Failed again: https://github.com/muse-platform/muse/actions/runs/99."]
    # Another stack gets its own issue.
    assert report(api, tmp_path, "dev", None).returncode == 0
    assert [i["title"] for i in fake.issues] == ["Drift check failed: prod", "Drift check failed: dev"]
    assert "failed before the preview ran" in fake.issues[1]["body"]


def test_the_issue_is_found_beyond_the_first_page_and_fits_github_s_limit(
    github: tuple[FakeIssues, str], tmp_path: Path
) -> None:
    fake, api = github
    for index in range(120):
        fake.add(f"bot issue {index}", BOT)
    assert report(api, tmp_path, "prod", DRIFT + "x" * 200_000).returncode == 0
    assert report(api, tmp_path, "prod", DRIFT).returncode == 0
    assert sum(i["title"] == "Drift check failed: prod" for i in fake.issues) == 1


def test_a_look_alike_issue_or_pull_request_is_never_edited(
    github: tuple[FakeIssues, str], tmp_path: Path
) -> None:
    fake, api = github
    marker = "<!-- muse-drift-check: prod -->"
    by_person = fake.add(f"{marker}\nnothing to see", {"login": "mallory", "type": "User"})
    pull = fake.add(f"{marker}\na pull request", BOT, pull_request={"url": "..."})
    assert report(api, tmp_path, "prod", DRIFT).returncode == 0
    assert fake.issues[by_person - 1]["body"] == f"{marker}\nnothing to see"
    assert fake.issues[pull - 1]["body"] == f"{marker}\na pull request"
    assert len(fake.issues) == 3 and DRIFT.strip() in fake.issues[2]["body"]


def test_a_clean_check_closes_the_stack_s_issue_and_only_that_one(
    github: tuple[FakeIssues, str], tmp_path: Path
) -> None:
    fake, api = github
    assert report(api, tmp_path, "prod", DRIFT).returncode == 0
    assert report(api, tmp_path, "dev", DRIFT).returncode == 0
    fake.add("<!-- muse-drift-check: prod -->\nnot ours", {"login": "mallory", "type": "User"})
    closed = resolved(api, "prod")
    number = fake.issues[0]["number"]
    assert closed.returncode == 0 and f"issue #{number} closed" in closed.stdout
    assert [i["state"] for i in fake.issues] == ["closed", "open", "open"]
    assert fake.issues[0]["state_reason"] == "completed"
    assert fake.comments[1] == [
        "The drift check is clean again: https://github.com/muse-platform/muse/actions/runs/99."
    ]
    # Nothing open: nothing to close. The next failure opens a new issue, so watchers hear of it again.
    assert resolved(api, "prod").returncode == 0
    again = report(api, tmp_path, "prod", DRIFT)
    assert "created" in again.stdout and fake.issues[-1]["state"] == "open" and len(fake.issues) == 4


def test_negative_control_without_the_close_a_new_drift_is_only_a_comment_on_a_stale_issue(
    github: tuple[FakeIssues, str], tmp_path: Path
) -> None:
    fake, api = github
    assert report(api, tmp_path, "prod", DRIFT).returncode == 0
    # (a clean run here, which used to leave the issue open) ... then new drift weeks later:
    later = report(api, tmp_path, "prod", DRIFT)
    assert "updated" in later.stdout and len(fake.issues) == 1


def test_a_refused_write_fails_the_step(github: tuple[FakeIssues, str], tmp_path: Path) -> None:
    _, api = github
    env_api = api + "/nowhere"
    result = report(env_api, tmp_path, "prod", DRIFT)
    assert result.returncode == 1 and "could not write the issue" in result.stdout


def test_the_drift_job_reports_a_failure_with_its_own_issue_permission() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "drift.yml")
    job = workflow.jobs["drift"]
    [writer] = [
        s for s in job.steps if "scripts/ci/drift_issue.py --stack" in (s.run or "") and "--report" in s.run
    ]
    [preview] = [s for s in job.steps if "scripts/ci/preview.py" in (s.run or "")]
    [closer] = [
        s for s in job.steps if "scripts/ci/drift_issue.py" in (s.run or "") and "--resolved" in s.run
    ]
    # A cancelled run (the job's timeout) is reported too; only a clean check closes the issue.
    assert writer.condition == "failure() || cancelled()"
    assert closer.condition == "success() && steps.deployed.outputs.source != 'none'"
    assert job.steps.index(writer) < job.steps.index(closer) == len(job.steps) - 1
    assert '--report "$RUNNER_TEMP/drift.md"' in (preview.run or "") and "$RUNNER_TEMP/drift.md" in (
        writer.run or ""
    )
    assert isinstance(job.permissions, dict) and job.permissions.get("issues") == "write"
    # No other job of any workflow may write issues.
    for name in ("main.yml", "pull-request.yml", "drift.yml"):
        for job_id, other in load(ROOT / ".github" / "workflows" / name).jobs.items():
            if (name, job_id) != ("drift.yml", "drift"):
                assert "issues" not in (other.permissions or {}), (name, job_id)


def test_negative_control_issues_write_without_a_writer_is_a_policy_problem(policy: Any) -> None:
    from verify.workflows import parse

    drift = load(ROOT / ".github" / "workflows" / "drift.yml")
    text = drift.text.replace('scripts/ci/drift_issue.py --stack "$STACK"', 'echo "$STACK"')
    assert "drift.yml job drift: issues: write but the job writes no issue" in policy.check(
        parse(text, "drift.yml")
    )
    assert policy.check(drift) == []


# --- prod's reserved host, before the approval ------------------------------------------------------------


def test_preview_prod_refuses_the_placeholder_host_before_anyone_approves(tmp_path: Path) -> None:
    # main.yml's call of deploy.yml for prod, as GitHub runs it (verify.workflows.expand_calls).
    job = expanded_main().jobs["deploy-prod.preview"]
    [check] = [s for s in job.steps if "scripts/ci/placeholders.py" in (s.run or "")]
    position = job.steps.index(check)
    login = next(i for i, s in enumerate(job.steps) if s.action == "azure/login")
    preview = next(i for i, s in enumerate(job.steps) if "scripts/ci/preview.py" in (s.run or ""))
    assert position < login < preview and check.condition is None
    assert job.env["STACK"] == "prod"
    command = [sys.executable, str(ROOT / "scripts/ci/placeholders.py"), "--stack", "prod"]
    # The repository's Pulumi.prod.yaml ships muse.example.com: the job fails, so deploy-prod (needs it) never
    # asks for an approval.
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and "RFC 2606" in refused.stderr and "muse:ingressHost" in refused.stderr
    # Negative control: the organisation's real values pass.
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text(
        stack.read_text()
        .replace("muse.example.com", "muse.contoso-platform.eu")
        .replace("oncall@example.com", "oncall@contoso-platform.eu")
        .replace("00000000-0000-0000-0000-000000000000", "5f1c2b7e-3d4a-4c8e-9b21-0a6f7e8d9c10")
    )
    passed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert passed.returncode == 0, passed.stderr
