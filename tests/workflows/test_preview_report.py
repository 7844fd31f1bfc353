"""scripts/ci/preview.py and pr_comment.py run for real: the preview's output reaches the job summary and the
stack's pull-request comment whether the preview succeeds or fails, against the `pulumi` stand-in
(release_tools.py) and a fake GitHub REST API on 127.0.0.1.

The fake answers as GitHub documents its issue-comment endpoints ("Issue comments": list, create, update) and
pagination ("Using pagination in the REST API": `per_page` (default 30, at most 100) and `page` query
parameters, a `Link` header with rel="next" while more pages follow), and requires the bearer token.
It refuses a create or an edit whose body is longer than 65,536 characters with the 422 GitHub answers
("Validation Failed", field `body`, "body is too long (maximum is 65536 characters)": the REST API's error for
"Create an issue comment" and "Update an issue comment", whose docs list 422 "Validation failed" for both;
quoted in e.g. danger/danger#424 and suzuki-shunsuke/github-comment#124). GitHub counts characters (Ruby
String#length: code points), as Python's len does."""

from __future__ import annotations

import html
import importlib
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.environments import ENVIRONMENTS
from tests.preview_digest_model import Meta, preview_digest, provider_of, replacement
from tests.workflows.fake_api import JsonHandler, serving

ROOT = Path(__file__).resolve().parents[2]
PREVIEW = ROOT / "scripts" / "ci" / "preview.py"
PR_COMMENT = ROOT / "scripts" / "ci" / "pr_comment.py"
TOOLS = Path(__file__).with_name("release_tools.py")
TOKEN = "ghs_fake-job-token"
REPOSITORY = "muse-platform/muse"
NUMBER = 42
HEADING = {stack: f"#### :tropical_drink: `preview` on muse/{stack}" for stack in ENVIRONMENTS}
MARKER = "<summary>Pulumi report</summary>"
BOT = "github-actions[bot]"  # the author of what the job's GITHUB_TOKEN writes
GITHUB_COMMENT_LIMIT = 65_536
POLICY_FAILURE = (
    "Previewing update (dev):\n    ~ azure-native:containerregistry:Registry registry update [diff: ~sku]\n"
    "Policies:\n    muse-policies@v1 (local: policy)\n        - [mandatory]  MUSE-ACR-001 (registry)\n"
    "          The registry allows anonymous pull <b>bold</b>\n"
    "error: preview failed: 1 mandatory policy violation\n"
)


class FakeGitHub:
    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.next_id = 1000
        self.fail_with: int | None = None

    def add(self, body: str, author: str = "someone") -> int:
        # Each comment carries its author as `user` (REST "Issue comments"); GitHub Apps' bot users, such as
        # github-actions[bot] for what GITHUB_TOKEN writes, have type Bot.
        self.next_id += 1
        kind = "Bot" if author.endswith("[bot]") else "User"
        self.comments.append({"id": self.next_id, "body": body, "user": {"login": author, "type": kind}})
        return self.next_id


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    prefix = f"/repos/{REPOSITORY}/issues"

    class Api(JsonHandler):
        def _authorised(self) -> bool:
            fake.requests.append((self.command, self.path))
            if fake.fail_with:
                self._send(fake.fail_with, {"message": "Server Error"})
                return False
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Bad credentials"})
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorised():
                return
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            if parts.path != f"{prefix}/{NUMBER}/comments":
                self._send(404, {"message": "Not Found"})
                return
            per_page = min(int(query.get("per_page", ["30"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            items = fake.comments[(page - 1) * per_page : page * per_page]
            last = max(1, -(-len(fake.comments) // per_page))
            base = f"http://{self.headers['Host']}{parts.path}?per_page={per_page}"
            link = (
                f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
                if page < last
                else ""
            )
            self._send(200, items, link)

        def _too_long(self, body: str) -> bool:
            if len(body) <= GITHUB_COMMENT_LIMIT:
                return False
            error = {"resource": "IssueComment", "code": "custom", "field": "body"}
            error["message"] = f"body is too long (maximum is {GITHUB_COMMENT_LIMIT} characters)"
            self._send(422, {"message": "Validation Failed", "errors": [error]})
            return True

        def do_POST(self) -> None:
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            if self._too_long(payload["body"]):
                return
            if self.path != f"{prefix}/{NUMBER}/comments":
                self._send(404, {"message": "Not Found"})
                return
            comment_id = fake.add(payload["body"], author=BOT)
            self._send(201, {"id": comment_id, "body": payload["body"]})

        def do_PATCH(self) -> None:
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            if self._too_long(payload["body"]):
                return
            comment_id = int(self.path.rsplit("/", 1)[1])
            for comment in fake.comments:
                if comment["id"] == comment_id and self.path == f"{prefix}/comments/{comment_id}":
                    comment["body"] = payload["body"]
                    self._send(200, comment)
                    return
            self._send(404, {"message": "Not Found"})

    with serving(Api) as url:
        yield fake, url


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text("name: muse\nruntime: python\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TOOLS}" pulumi "$@"\n')
    (bin_dir / "pulumi").chmod(0o755)
    world = {"stack": "dev", "config": {}, "history": [], "calls": [], "images": {}, "outputs": {}}
    (tmp_path / "world.json").write_text(json.dumps(world))
    return directory


def set_preview(project: Path, exit_code: int, output: str) -> None:
    world_file = project.parent / "world.json"
    world = json.loads(world_file.read_text())
    world["preview"] = {"exit": exit_code, "output": output}
    world_file.write_text(json.dumps(world))


def run_preview(
    project: Path, api: str, *args: str, token: str = TOKEN, script: Path = PREVIEW
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{project.parent / 'bin'}:{os.environ['PATH']}",
        "RELEASE_WORLD": str(project.parent / "world.json"),
        "GITHUB_STEP_SUMMARY": str(project.parent / "summary.md"),
        "GITHUB_API_URL": api,
        "GITHUB_TOKEN": token,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "777",
        "GITHUB_SHA": "feedfacecafe" + "0" * 28,
        "PR_NUMBER": str(NUMBER),
    }
    return subprocess.run(
        [str(script), "--cwd", str(project), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_failed_preview_creates_the_comment_and_writes_the_summary(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, api = github
    set_preview(project, 1, POLICY_FAILURE)
    result = run_preview(project, api, "--stack", "dev", "--policy-pack", "policy", "--comment-on-pr")
    assert result.returncode == 1, result.stdout + result.stderr
    [comment] = fake.comments
    body = comment["body"]
    assert body.startswith(HEADING["dev"]) and MARKER in body
    assert "**FAILED (exit 1: a mandatory policy violation)**" in body
    assert "MUSE-ACR-001" in body and "&lt;b&gt;bold&lt;/b&gt;" in body  # escaped inside <pre>
    assert "<details open>" in body and "https://github.com/muse-platform/muse/actions/runs/777" in body
    summary = (project.parent / "summary.md").read_text()
    assert "### pulumi preview: `muse/dev` FAILED (exit 1: a mandatory policy violation)" in summary
    assert "error: preview failed: 1 mandatory policy violation" in summary
    world = json.loads((project.parent / "world.json").read_text())
    [preview_args] = world["preview_args"]
    assert preview_args[:3] == ["preview", "--stack", "dev"] and "--policy-pack" in preview_args
    assert "--diff" in preview_args


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_the_next_push_edits_the_same_comment(project: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, api = github
    fake.add("LGTM")
    # The comment pulumi/actions made on an earlier push (its format, src/libs/pr.ts).
    earlier = fake.add(f"{HEADING['dev']}\n\n<details>\n{MARKER}\n\n<pre>\nold diff\n</pre>\n</details>", BOT)
    other_stack = fake.add(f"{HEADING['prod']}\n\n<details>\n{MARKER}\n<pre>prod</pre></details>", BOT)
    set_preview(project, 1, POLICY_FAILURE)
    assert run_preview(project, api, "--stack", "dev", "--comment-on-pr").returncode == 1
    set_preview(project, 0, "Previewing update (dev):\nResources:\n    42 unchanged\n")
    result = run_preview(project, api, "--stack", "dev", "--comment-on-pr")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c["id"] for c in fake.comments] == [1001, earlier, other_stack]  # nothing created
    assert fake.comments[1]["body"].startswith(HEADING["dev"])
    assert (
        "Succeeded at `feedfacecafe`" in fake.comments[1]["body"]
        and "42 unchanged" in fake.comments[1]["body"]
    )
    assert "prod" in fake.comments[2]["body"] and "old diff" not in fake.comments[1]["body"]
    assert ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{earlier}") in fake.requests


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_the_comment_is_found_beyond_the_first_page(project: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, api = github
    for index in range(230):
        fake.add(f"review comment {index}")
    earlier = fake.add(f"{HEADING['dev']}\n\n<details>\n{MARKER}\n<pre>old</pre></details>", BOT)
    for index in range(20):
        fake.add(f"later comment {index}")
    set_preview(project, 1, POLICY_FAILURE)
    result = run_preview(project, api, "--stack", "dev", "--comment-on-pr")
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(fake.comments) == 251
    assert "FAILED" in next(c for c in fake.comments if c["id"] == earlier)["body"]
    gets = [path for method, path in fake.requests if method == "GET"]
    assert len(gets) == 3 and "page=3" in gets[-1] and "per_page=100" in gets[0]


def test_reading_only_the_first_page_duplicates_the_comment(github: tuple[FakeGitHub, str]) -> None:
    """Negative control: what pulumi/actions' first-page search does on the same pull request."""
    fake, api = github
    sys.path.insert(0, str(ROOT / "scripts" / "ci"))
    try:
        pr_comment = importlib.import_module("pr_comment")
    finally:
        sys.path.remove(str(ROOT / "scripts" / "ci"))
    for index in range(150):
        fake.add(f"review comment {index}")
    fake.add(f"{HEADING['dev']}\n{MARKER}", BOT)
    client = pr_comment.GitHub(api, TOKEN, REPOSITORY)
    body = f"{HEADING['dev']}\n{MARKER}\nnew"
    assert pr_comment.upsert(client, NUMBER, HEADING["dev"], body, max_pages=1)[0] == "created"
    assert sum(c["body"].startswith(HEADING["dev"]) for c in fake.comments) == 2
    # Paging through every comment finds (and edits) the first one instead.
    assert pr_comment.upsert(client, NUMBER, HEADING["dev"], body)[0] == "edited"


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_a_comment_the_api_refuses_fails_the_step(project: Path, github: tuple[FakeGitHub, str]) -> None:
    _, api = github
    set_preview(project, 0, "Resources:\n    42 unchanged\n")
    result = run_preview(project, api, "--stack", "dev", "--comment-on-pr", token="wrong")
    assert result.returncode == 1
    assert (
        "::error title=PR comment (dev)::could not write the preview comment: HTTP Error 401" in result.stdout
    )
    # The summary was written before the comment was attempted.
    assert "`muse/dev` succeeded" in (project.parent / "summary.md").read_text()


def quote_heavy_diff(lines: int) -> str:
    """A large `pulumi preview --diff` of manifests and policies: every line full of quotes and ampersands,
    which html.escape lengthens (`"` -> `&quot;`, `&` -> `&amp;`)."""
    line = '      + annotations: {"a": "b&c", "checksum/config": "x&y&z", "<name>": "\'v\'"}\n'
    return "Previewing update (dev):\n" + line * lines + "error: preview failed: the end is kept\n"


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_a_large_quote_heavy_preview_fits_in_one_comment(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, api = github
    output = quote_heavy_diff(2_000)  # ~170,000 characters, well over the limit before and after escaping
    set_preview(project, 0, output)
    result = run_preview(project, api, "--stack", "dev", "--comment-on-pr")
    assert result.returncode == 0, result.stdout + result.stderr
    [comment] = fake.comments
    body = comment["body"]
    assert GITHUB_COMMENT_LIMIT - 200 < len(body) <= GITHUB_COMMENT_LIMIT  # the room is used, not exceeded
    assert "[... trimmed from the front ...]\n      + annotations" in body  # cut at a line start
    assert "error: preview failed: the end is kept\n</pre>\n</details>" in body
    assert '"checksum/config": "x&amp;y&amp;z", "&lt;name&gt;"' in body  # quotes stay, <, >, & escaped
    assert "&quot;" not in body


def test_trimming_before_escaping_exceeds_the_limit(github: tuple[FakeGitHub, str]) -> None:
    """Negative control: the old order (trim to 60,000 characters, then html.escape with quotes) on the same
    output makes a body GitHub refuses, and the fake refuses it as GitHub does."""
    fake, api = github
    output = quote_heavy_diff(2_000)
    escaped_after_trim = html.escape(output[-60_000:])
    assert len(escaped_after_trim) > GITHUB_COMMENT_LIMIT
    sys.path.insert(0, str(ROOT / "scripts" / "ci"))
    try:
        pr_comment = importlib.import_module("pr_comment")
    finally:
        sys.path.remove(str(ROOT / "scripts" / "ci"))
    client = pr_comment.GitHub(api, TOKEN, REPOSITORY)
    body = f"{HEADING['dev']}\n{MARKER}\n<pre>\n{escaped_after_trim}\n</pre>"
    with pytest.raises(OSError, match="HTTP Error 422"):
        pr_comment.upsert(client, NUMBER, HEADING["dev"], body)
    assert fake.comments == []


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_prod_preview_goes_to_the_summary_only(project: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, api = github
    set_preview(project, 0, "Previewing update (prod):\n    ~ kubernetes:apps/v1:Deployment muse update\n")
    result = run_preview(project, api, "--stack", "prod", "--policy-pack", "policy", "--title", "Prod diff")
    assert result.returncode == 0, result.stdout + result.stderr
    assert fake.requests == []
    summary = (project.parent / "summary.md").read_text()
    assert "### Prod diff: `muse/prod` succeeded" in summary
    assert (
        "```diff\nPreviewing update (prod):\n    ~ kubernetes:apps/v1:Deployment muse update\n```" in summary
    )


@pytest.mark.slow  # runs scripts/ci/preview.py
@pytest.mark.parametrize(
    ("exit_code", "words", "absent"),
    [
        (7, "DRIFT: Azure differs from the code", "FAILED"),
        (0, "no drift", "DRIFT"),
        (3, "FAILED (exit 3: authentication or authorization error)", "DRIFT"),
    ],
)
def test_drift_summary_shows_the_diff_and_tells_drift_from_a_failed_check(
    project: Path, github: tuple[FakeGitHub, str], exit_code: int, words: str, absent: str
) -> None:
    _, api = github
    note = project.parent / "compared.md"
    note.write_text("Compared `prod` with `0123456789ab`, the commit of its last deploy from main.yml.\n")
    diff = (
        "    ~ azure-native:keyvault:Vault vault update [diff: ~properties]\n"
        "      ~ enablePurgeProtection: true => false\n"
    )
    set_preview(project, exit_code, diff)
    result = run_preview(project, api, "--stack", "prod", "--drift", "--note", str(note))
    assert result.returncode == exit_code
    summary = (project.parent / "summary.md").read_text()
    assert f"### Drift check: `muse/prod` {words}" in summary
    assert absent not in summary.splitlines()[0]
    assert "Compared `prod` with `0123456789ab`" in summary
    assert "enablePurgeProtection: true => false" in summary  # the diff itself, not a pointer to the log
    world = json.loads((project.parent / "world.json").read_text())
    [args] = world["preview_args"]
    assert "--refresh" in args and "--expect-no-changes" in args and "--diff" in args


# What pulumi-kubernetes prints when the API server refuses the read of the Gateway: the Kubernetes Forbidden
# message (k8s.io/apiserver responsewriters/errors.go) with AKS's Azure RBAC reason.
FORBIDDEN_GATEWAY = (
    "kubernetes:gateway.networking.k8s.io/v1:Gateway (muse-gateway):\n"
    '    error: Preview failed: gateways.gateway.networking.k8s.io "muse" is forbidden: '
    'User "5f0c..." cannot get resource "gateways" in API group "gateway.networking.k8s.io" '
    'in the namespace "muse-prod-gateway": '
    "User does not have access to the resource in Azure. Update role assignment to allow access.\n"
)


@pytest.mark.slow  # runs scripts/ci/preview.py
@pytest.mark.parametrize(
    ("output", "heading"),
    [
        (POLICY_FAILURE, "FAILED (exit 1: a mandatory policy violation)"),
        ("error: an unhandled error occurred: program failed\n", "FAILED (exit 1)"),
        (
            FORBIDDEN_GATEWAY,
            "FAILED (exit 1: 403 on a custom resource: the bootstrap is outdated; re-run "
            "scripts/bootstrap.sh as Owner (docs/runbook.md, Moving an existing stack))",
        ),
        # Negative control: a 403 on a built-in kind is not the custom-resource reader's condition.
        (
            FORBIDDEN_GATEWAY.replace(
                '"gateways" in API group "gateway.networking.k8s.io"', '"pods" in API group ""'
            ),
            "FAILED (exit 1)",
        ),
    ],
)
def test_a_failure_is_described_from_the_output_not_the_exit_code(
    project: Path, github: tuple[FakeGitHub, str], output: str, heading: str
) -> None:
    """pulumi's ExitCodeFor (pkg/cmd/pulumi/cmd/exit_codes.go) returns 1 for a policy violation and for any
    other failed preview: the reason comes from the output. Negative control: the same exit code without the
    policy text is not called a policy violation."""
    _, api = github
    set_preview(project, 1, output)
    result = run_preview(project, api, "--stack", "dev")
    assert result.returncode == 1
    first = (project.parent / "summary.md").read_text().splitlines()[0]
    assert first == f"### pulumi preview: `muse/dev` {heading}"


# --- a failure before the preview (pull-request.yml's reporting step runs pr_comment.py) -------------------


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_a_failure_before_the_preview_edits_the_green_comment_of_an_earlier_push(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, api = github
    set_preview(project, 0, "Previewing update (dev):\nResources:\n    42 unchanged\n")
    assert run_preview(project, api, "--stack", "dev", "--comment-on-pr").returncode == 0
    [green] = fake.comments
    assert "Succeeded" in green["body"]
    # The next push: azure/login fails, so the preview step is skipped and the reporting step runs.
    result = run_preview(
        project, api, "--stack", "dev", "--step", "make ci-venv=success", "--step", "azure/login=failure",
        "--step", "pin-deployed-image.sh=skipped", script=PR_COMMENT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [comment] = fake.comments  # the same comment, edited
    assert comment["id"] == green["id"]
    body = comment["body"]
    assert body.startswith(HEADING["dev"]) and MARKER in body
    assert "**FAILED before the preview ran: azure/login failed** at `feedfacecafe`" in body
    assert "Succeeded" not in body and "42 unchanged" not in body
    assert ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{green['id']}") in fake.requests
    summary = (project.parent / "summary.md").read_text()
    assert "### pulumi preview: `muse/dev` **FAILED before the preview ran: azure/login failed**" in summary
    assert "::error title=pulumi preview (dev)::azure/login failed before the preview ran" in result.stdout


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_without_the_failure_report_the_earlier_green_comment_stays(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    """Negative control: a failure before the preview that nothing reports leaves the green comment of the
    earlier push in place, the defect the reporting step fixes."""
    fake, api = github
    set_preview(project, 0, "Previewing update (dev):\nResources:\n    42 unchanged\n")
    assert run_preview(project, api, "--stack", "dev", "--comment-on-pr").returncode == 0
    # The next push fails at make ci-venv; preview.py is skipped and no report step runs.
    [comment] = fake.comments
    assert "Succeeded" in comment["body"] and "FAILED" not in comment["body"]


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_the_failure_report_creates_the_comment_when_none_exists_and_fails_when_the_api_refuses(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, api = github
    result = run_preview(project, api, "--stack", "dev", "--step", "make ci-venv=failure", script=PR_COMMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    [comment] = fake.comments
    assert "FAILED before the preview ran: make ci-venv failed" in comment["body"]
    fake.fail_with = 500
    result = run_preview(project, api, "--stack", "dev", "--step", "make ci-venv=failure", script=PR_COMMENT)
    assert result.returncode == 1
    assert "::error title=PR comment (dev)::could not write the failure comment" in result.stdout


# --- the prod change set: recorded before the approval, checked again before `pulumi up` ------------------

PROD_STEPS = [
    {"op": "same", "urn": "urn:pulumi:prod::muse::azure-native:resources:ResourceGroup::rg"},
    {"op": "update", "urn": "urn:pulumi:prod::muse::muse:app:Muse$kubernetes:apps/v1:Deployment::muse"},
    {"op": "create", "urn": "urn:pulumi:prod::muse::azure-native:authorization:RoleAssignment::reader"},
]


def set_steps(project: Path, steps: list[dict[str, str]]) -> None:
    world_file = project.parent / "world.json"
    world = json.loads(world_file.read_text())
    world["preview"] = {
        **world.get("preview", {"exit": 0, "output": "Resources:\n    1 to update"}),
        "steps": steps,
    }
    world_file.write_text(json.dumps(world))


def recorded_change_set(project: Path, api: str) -> str:
    output = project.parent / "output.txt"
    result = subprocess.run(
        [str(PREVIEW), "--cwd", str(project), "--stack", "prod", "--policy-pack", "policy", "--change-set"],
        env={**os.environ, "PATH": f"{project.parent / 'bin'}:{os.environ['PATH']}",
             "RELEASE_WORLD": str(project.parent / "world.json"), "GITHUB_OUTPUT": str(output),
             "GITHUB_STEP_SUMMARY": str(project.parent / "summary.md")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = output.read_text().splitlines()
    assert line.startswith("change_set=sha256:")
    return line.removeprefix("change_set=")


def expect_change_set(project: Path, digest: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PREVIEW), "--cwd", str(project), "--stack", "prod", "--policy-pack", "policy",
         "--expect-change-set", digest],
        env={**os.environ, "PATH": f"{project.parent / 'bin'}:{os.environ['PATH']}",
             "RELEASE_WORLD": str(project.parent / "world.json"),
             "GITHUB_STEP_SUMMARY": str(project.parent / "deploy-summary.md")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_deploy_goes_ahead_when_the_change_set_is_the_approved_one(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    _, api = github
    set_steps(project, PROD_STEPS)
    approved = recorded_change_set(project, api)
    summary = (project.parent / "summary.md").read_text()
    assert f"Change set `{approved}` (2 step(s)" in summary
    assert "Secret values are blinded (`[secret]`)" in summary and "its new value is not" in summary
    assert "update urn:pulumi:prod::muse::muse:app:Muse$kubernetes:apps/v1:Deployment::muse" in summary
    # The engine emits steps in completion order: the same change set in another order is the same digest.
    set_steps(project, list(reversed(PROD_STEPS)))
    result = expect_change_set(project, approved)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches the approved preview" in (project.parent / "deploy-summary.md").read_text()
    world = json.loads((project.parent / "world.json").read_text())
    assert all("--json" in a and "--policy-pack" in a for a in world["preview_args"][1:])
    assert not any(a[0] == "up" for a in world["preview_args"])


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_a_change_set_that_differs_from_the_approved_one_fails_the_deploy(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    """Negative control: prod changed between the approval and the deploy (here a replacement appeared)."""
    _, api = github
    set_steps(project, PROD_STEPS)
    approved = recorded_change_set(project, api)
    replaced = {
        "op": "replace",
        "urn": "urn:pulumi:prod::muse::azure-native:containerservice:ManagedCluster::aks",
    }
    set_steps(project, [*PROD_STEPS, replaced])
    result = expect_change_set(project, approved)
    assert result.returncode == 1
    summary = (project.parent / "deploy-summary.md").read_text()
    assert "DIFFERS from the approved preview: not deploying" in summary
    assert approved in summary and f"replace {replaced['urn']}" in summary
    assert "::error title=Change set (prod)::" in result.stdout


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_a_failed_change_set_preview_fails_the_check(project: Path, github: tuple[FakeGitHub, str]) -> None:
    set_preview(project, 1, "error: preview failed: 1 mandatory policy violation")
    result = expect_change_set(project, "sha256:" + "0" * 64)
    assert result.returncode == 1
    assert "FAILED (exit 1)" in (project.parent / "deploy-summary.md").read_text()


def test_the_forbidden_groups_are_the_workloads_custom_resource_groups() -> None:
    # preview.py is standard library only, so it names the groups itself; they must stay the ones the
    # bootstrap's condition is built from.
    from components.muse_workload.manifests import CUSTOM_RESOURCES

    sys.path.insert(0, str(ROOT / "scripts" / "ci"))
    try:
        preview = importlib.import_module("preview")
    finally:
        sys.path.remove(str(ROOT / "scripts" / "ci"))
    assert set(preview.CUSTOM_RESOURCE_GROUPS) == {group for group, _ in CUSTOM_RESOURCES}


# --- what is approved is what is applied -------------------------------------------------------------------
# No Pulumi CLI here: these preview documents are built from the engine's documented JSON schema (not
# recorded).
# `pulumi preview --json` prints a PreviewDigest (pulumi/pulumi pkg/display/json.go at 1b594989: `steps`, each
# a PreviewStep `{op, urn, provider, oldState, newState, diffReasons, replaceReasons, detailedDiff}`, with
# detailedDiff path -> PropertyDiff `{kind, inputDiff}` and old/newState an apitype.ResourceV3 `{urn, custom,
# type, inputs, outputs, ...}`). Documents with several steps per URN (refreshes, replacements) come from
# tests/preview_digest_model.py, which builds them from engine events as ShowPreviewDigest does.
DEPLOYMENT = "urn:pulumi:prod::muse::muse:app:Muse$kubernetes:apps/v1:Deployment::muse"
VAULT = "urn:pulumi:prod::muse::azure-native:keyvault:Vault::vault"
REGISTRY = "urn:pulumi:prod::muse::azure-native:containerregistry:Registry::acr"
IMAGE = "acrmuseprod.azurecr.io/muse@sha256:" + "a" * 64


def _resource(urn: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"urn": urn, "custom": True, "type": urn.split("::")[2].split("$")[-1], "inputs": inputs,
            "outputs": inputs}  # fmt: skip


def _step(
    op: str, urn: str, old: dict[str, Any], new: dict[str, Any], paths: dict[str, str]
) -> dict[str, Any]:
    return {
        "op": op,
        "urn": urn,
        "provider": provider_of(urn),
        "oldState": _resource(urn, old),
        "newState": _resource(urn, new),
        "diffReasons": sorted({path.split(".")[0] for path in paths}),
        "detailedDiff": {path: {"kind": kind, "inputDiff": True} for path, kind in paths.items()},
    }


def _deployment(image: str, replicas: int = 2) -> dict[str, Any]:
    return {"spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}}}


def _release(image: str, replicas: int = 2) -> list[dict[str, Any]]:
    return [
        {"op": "same", "urn": PROD_STEPS[0]["urn"]},
        _step("update", DEPLOYMENT, _deployment("old"), _deployment(image, replicas),
              {"spec.template.spec.containers[0].image": "update"}),
    ]  # fmt: skip


def _preview_module() -> Any:
    sys.path.insert(0, str(ROOT / "scripts" / "ci"))
    try:
        return importlib.import_module("preview")
    finally:
        sys.path.remove(str(ROOT / "scripts" / "ci"))


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_a_property_value_that_moved_after_the_approval_fails_the_check(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    """The same step on the same URN with another new value: another image than the one approved."""
    _, api = github
    set_steps(project, _release(IMAGE))
    approved = recorded_change_set(project, api)
    assert "[spec.template.spec.containers[0].image (update)]" in (project.parent / "summary.md").read_text()
    set_steps(project, _release(IMAGE.replace("a" * 64, "b" * 64)))
    result = expect_change_set(project, approved)
    assert result.returncode == 1
    assert "DIFFERS from the approved preview" in (project.parent / "deploy-summary.md").read_text()
    # A value under a changed top-level property that no path names still counts (replicas beside the image).
    set_steps(project, _release(IMAGE, replicas=5))
    assert expect_change_set(project, approved).returncode == 1
    set_steps(project, _release(IMAGE))
    assert expect_change_set(project, approved).returncode == 0


def test_negative_control_the_former_op_and_urn_digest_misses_the_moved_value() -> None:
    def former(document: list[dict[str, Any]]) -> list[str]:
        return sorted(f"{s['op']} {s['urn']}" for s in document if s["op"] != "same")

    approved, now = _release(IMAGE), _release(IMAGE.replace("a" * 64, "b" * 64))
    assert former(approved) == former(now)  # what the approval used to bind: the change slips through
    preview = _preview_module()
    assert (
        preview.change_set(json.dumps({"steps": approved}))[0]
        != preview.change_set(json.dumps({"steps": now}))[0]
    )


def test_refresh_only_steps_are_left_out_of_the_change_set() -> None:
    preview = _preview_module()
    program = _release(IMAGE)
    # `pulumi preview --refresh --json`: a refresh step per existing resource before the program's step, the
    # outputs event saying `refresh` (previewActions), a `same` program step hidden (shouldShow).
    events = [
        ("pre", Meta("refresh", DEPLOYMENT)), ("outputs", Meta("refresh", DEPLOYMENT)),
        ("pre", Meta("refresh", VAULT)), ("outputs", Meta("refresh", VAULT)),
        ("pre", Meta("same", VAULT)),
    ]  # fmt: skip
    refreshed = [*preview_digest(events)["steps"], *program]
    assert [s["op"] for s in refreshed][:2] == ["refresh", "refresh"]
    bare = preview.change_set(json.dumps({"steps": program}))
    assert preview.change_set(json.dumps({"steps": refreshed})) == bare
    # Negative control: when the program's step for the URN changes it, that step is bound.
    back = _step(
        "update", VAULT, {"tags": {"env": "edited"}}, {"tags": {"env": "prod"}}, {"tags.env": "update"}
    )
    digest, lines = preview.change_set(json.dumps({"steps": [*refreshed, back]}))
    assert digest != bare[0]
    assert f"update {VAULT} [tags.env (update)]" in lines


def test_a_refresh_rewritten_as_an_update_is_bound_and_so_is_the_programs_step_after_it() -> None:
    """ShowPreviewDigest rewrites a refresh step in place when the URN's last pre-event (its `seen` map) was
    the refresh and the outputs event is an update with a detailed diff: the document then holds that update
    and, after it, the program's own step for the URN. The program's replacement must stay bound whatever
    came before it; the drift is bound as well (it cannot be told from a program update)."""
    preview = _preview_module()
    drift = {"tags.env": "update"}

    def document(sku: str, drifted_to: str) -> str:
        events = [
            ("pre", Meta("refresh", REGISTRY)),
            ("outputs", Meta("update", REGISTRY, old={"tags": {"env": "prod"}},
                             new={"tags": {"env": drifted_to}}, diffs=["tags"], detailed_diff=drift)),
            *replacement(REGISTRY, {"sku": {"name": "Standard"}}, {"sku": {"name": sku}}, "sku"),
        ]  # fmt: skip
        return json.dumps(preview_digest(events))

    steps = json.loads(document("Premium", "edited"))["steps"]
    assert [s["op"] for s in steps] == ["update", "replace"]  # the rewrite happened, replacement steps hidden
    approved = preview.change_set(document("Premium", "edited"))[0]
    assert approved != preview.change_set(document("Basic", "edited"))[0]
    assert approved != preview.change_set(document("Premium", "x"))[0]
    # Negative control: had the outputs event come after the program's pre-event, `seen` holds the program's
    # step, and nothing is rewritten.
    late = [
        ("pre", Meta("refresh", REGISTRY)),
        *replacement(REGISTRY, {"sku": {"name": "Standard"}}, {"sku": {"name": "Premium"}}, "sku")[:3],
        ("outputs", Meta("update", REGISTRY, old={}, new={}, diffs=["tags"], detailed_diff=drift)),
    ]
    assert [s["op"] for s in preview_digest(late)["steps"]] == ["refresh", "replace"]


def _former_change_set_steps(document: str) -> list[dict[str, Any]]:
    """The change set before the fix: the last step per URN, no new values for a delete op."""
    last = {str(s["urn"]): s for s in json.loads(document)["steps"]}
    return [
        {"op": s["op"], "urn": urn,
         "new": {} if "delete" in s["op"] else (s.get("newState") or {}).get("inputs")}
        for urn, s in sorted(last.items()) if s["op"] not in {"same", "refresh", "read"}
    ]  # fmt: skip


@pytest.mark.parametrize("show_replacement_steps", [False, True])
def test_two_replacements_to_different_skus_are_two_change_sets(show_replacement_steps: bool) -> None:
    """A replacement's new values are bound whichever of its steps the document lists and in which order:
    `--show-replacement-steps` lists create-replacement, replace, delete-replaced for one URN."""
    preview = _preview_module()

    def document(sku: str) -> str:
        events = replacement(REGISTRY, {"sku": {"name": "Standard"}}, {"sku": {"name": sku}}, "sku")
        return json.dumps(preview_digest(events, show_replacement_steps=show_replacement_steps))

    ops = [s["op"] for s in json.loads(document("Premium"))["steps"]]
    shown = ["create-replacement", "replace", "delete-replaced"] if show_replacement_steps else ["replace"]
    assert ops == shown
    premium, basic = preview.change_set(document("Premium")), preview.change_set(document("Basic"))
    assert premium[0] != basic[0]
    assert f"replace {REGISTRY} [sku (update-replace)]" in premium[1]
    if show_replacement_steps:
        # Negative control: the last step per URN (delete-replaced, no new values) made them one digest.
        assert _former_change_set_steps(document("Premium")) == _former_change_set_steps(document("Basic"))


@pytest.mark.slow  # runs scripts/ci/preview.py
def test_the_diff_to_approve_the_check_and_the_update_all_refresh(
    project: Path, github: tuple[FakeGitHub, str]
) -> None:
    _, api = github
    set_steps(project, _release(IMAGE))
    approved = recorded_change_set(project, api)
    assert expect_change_set(project, approved).returncode == 0
    world = json.loads((project.parent / "world.json").read_text())
    # The readable diff, the change set it records, and deploy-prod's check.
    assert len(world["preview_args"]) == 3
    assert all("--refresh" in args for args in world["preview_args"]), world["preview_args"]
    deploy = (ROOT / "scripts" / "ci" / "deploy.py").read_text()
    assert '"up", "--stack", stack, "--yes", "--refresh"' in deploy
    # Negative control: a pull request's preview (no change set to bind) does not refresh.
    run_preview(project, api, "--stack", "dev", "--comment-on-pr")
    world = json.loads((project.parent / "world.json").read_text())
    assert "--refresh" not in world["preview_args"][-1]


# --- only our own comments are edited -----------------------------------------------------------------------


@pytest.mark.slow  # runs scripts/ci/preview.py
@pytest.mark.parametrize("author", ["mallory", "dependabot[bot]"])
def test_a_look_alike_comment_by_anyone_else_is_left_alone(
    project: Path, github: tuple[FakeGitHub, str], author: str
) -> None:
    """Anyone can post the heading and the marker: a person, or another app's bot. Theirs stays theirs; the
    preview gets a comment of its own, which the next push edits."""
    fake, api = github
    look_alike = f"{HEADING['dev']}\n\n<details>\n{MARKER}\n<pre>All good, merge it</pre></details>"
    planted = fake.add(look_alike, author)
    set_preview(project, 0, "Previewing update (dev):\nResources:\n    + 1 to create\n")
    assert run_preview(project, api, "--stack", "dev", "--comment-on-pr").returncode == 0
    assert run_preview(project, api, "--stack", "dev", "--comment-on-pr").returncode == 0
    theirs, *ours = fake.comments
    assert theirs["id"] == planted and theirs["body"] == look_alike
    assert len(ours) == 1 and ours[0]["user"] == {"login": BOT, "type": "Bot"}
    assert ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{planted}") not in fake.requests
    # Negative control: the former match (heading and marker, whoever wrote it) picks the planted comment.
    former = next(c for c in fake.comments if c["body"].startswith(HEADING["dev"]) and MARKER in c["body"])
    assert former["id"] == planted
