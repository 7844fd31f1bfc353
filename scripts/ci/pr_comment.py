#!/usr/bin/env python3
"""Create or edit this workflow's one comment per stack on a pull request, through GitHub's REST API.

Keeps pulumi/actions' heading and marker but pages through every comment, and edits only a comment the job
token's bot wrote. Run as a script, it reports a preview job that failed before scripts/ci/preview.py ran:

    scripts/ci/pr_comment.py --stack "$STACK" --step "make ci-venv=failure" --step "azure/login=skipped" ...

Standard library only. Why, with the REST calls: docs/architecture/ci-cd.md#pull-request-comments."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_files import append

MARKER = "<summary>Pulumi report</summary>"
# The author of everything the job's GITHUB_TOKEN writes (the GitHub Actions app's bot user).
BOT_LOGIN = "github-actions[bot]"
BOT_TYPE = "Bot"
PER_PAGE = 100
MAX_PAGES = 50  # 5,000 comments: bounded, far beyond any pull request
TIMEOUT_SECONDS = 15
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


def heading(project: str, stack: str, command: str = "preview") -> str:
    """pulumi/actions' heading for the comment of one command on one stack (src/libs/pr.ts)."""
    return f"#### :tropical_drink: `{command}` on {project}/{stack}"


@dataclass(frozen=True)
class GitHub:
    api_url: str
    token: str
    repository: str  # owner/name

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[Any, str]:
        """(decoded JSON, Link header)."""
        if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise ValueError(f"not an http(s) URL: {url}")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - GITHUB_API_URL (a loopback fake in tests)
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read() or b"null"), response.headers.get("Link", "")

    def comments(self, number: int, max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        return self.pages(f"/issues/{number}/comments?per_page={PER_PAGE}", max_pages)

    def pages(self, path: str, max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        """Every item of a paginated list under the repository (`path` after /repos/{owner}/{repo})."""
        url: str | None = f"{self.api_url}/repos/{self.repository}{path}"
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            if url is None:
                break
            page, link = self.request("GET", url)
            found.extend(page)
            match = NEXT_LINK.search(link)
            url = match.group(1) if match else None
        return found


def by_our_bot(item: dict[str, Any]) -> bool:
    """Whether a comment or issue was written by the job token's bot (its `user`)."""
    user = item.get("user") or {}
    return user.get("login") == BOT_LOGIN and user.get("type") == BOT_TYPE


def ours(comment: dict[str, Any], head: str) -> bool:
    """Whether `comment` is this workflow's report under `head`: written by the job token's bot, with the
    heading and the marker."""
    text = comment.get("body") or ""
    return by_our_bot(comment) and text.startswith(head) and MARKER in text


def upsert(github: GitHub, number: int, head: str, body: str, max_pages: int = MAX_PAGES) -> tuple[str, int]:
    """Edit the first comment of ours (`ours`) under `head`, or create one: ("edited"|"created", comment id).
    `body` must start with `head` and carry the marker, so the next run finds it again."""
    if not body.startswith(head) or MARKER not in body:
        raise ValueError("the comment body must start with its heading and carry the Pulumi report marker")
    for comment in github.comments(number, max_pages):
        if ours(comment, head):
            url = f"{github.api_url}/repos/{github.repository}/issues/comments/{comment['id']}"
            github.request("PATCH", url, {"body": body})
            return "edited", int(comment["id"])
    created, _ = github.request(
        "POST", f"{github.api_url}/repos/{github.repository}/issues/{number}/comments", {"body": body}
    )
    return "created", int(created["id"])


def project_name(cwd: Path) -> str:
    """The `name:` of the Pulumi project in `cwd` (Pulumi.yaml), as the comment heading uses it."""
    text = (cwd / "Pulumi.yaml").read_text(encoding="utf-8")
    match = re.search(r"^name:\s*['\"]?([\w.-]+)", text, re.MULTILINE)
    return match.group(1) if match else "project"


def failed_before_preview(steps: list[tuple[str, str]]) -> str:
    """The first step whose outcome is `failure` (GitHub's steps.<id>.outcome), or a generic description."""
    return next((name for name, outcome in steps if outcome == "failure"), "a step before the preview")


def failure_report(project: str, stack: str, failed: str, link: str, commit: str) -> tuple[str, str]:
    """(PR comment body, job summary markdown) for a preview that never ran."""
    where = f" at `{commit[:12]}`" if commit else ""
    log = f" ([run]({link}))" if link else ""
    state = f"**FAILED before the preview ran: {failed} failed**"
    text = (
        f"`pulumi preview` of {project}/{stack} did not run: {failed} failed first, so there is no diff for "
        "this push. An earlier push's preview is no longer current. The failed step's log is in the run."
    )
    comment = "\n".join(
        [heading(project, stack), "", f"{state}{where}{log}.", "", "<details open>", MARKER, "", "<pre>",
         text, "</pre>", "</details>", ""]
    )  # fmt: skip
    summary = "\n".join([f"### pulumi preview: `{project}/{stack}` {state}", "", text, ""])
    return comment, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report a preview job that failed before the preview ran.")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project directory")
    parser.add_argument(
        "--step", action="append", default=[], metavar="NAME=OUTCOME",
        help="a step before the preview and its steps.<id>.outcome, in order (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    steps = [(name, outcome) for name, _, outcome in (item.rpartition("=") for item in args.step)]
    failed = failed_before_preview(steps)
    server, repository, run = (
        os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    link = f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""
    project = project_name(args.cwd)
    comment, summary = failure_report(project, args.stack, failed, link, os.environ.get("GITHUB_SHA", ""))
    append("GITHUB_STEP_SUMMARY", summary)
    print(f"::error title=pulumi preview ({args.stack})::{failed} failed before the preview ran", flush=True)
    github = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"),
                    os.environ.get("GITHUB_TOKEN", ""), repository)  # fmt: skip
    try:
        number = int(os.environ.get("PR_NUMBER", ""))
        action, comment_id = upsert(github, number, heading(project, args.stack), comment)
    except (OSError, ValueError, KeyError) as error:
        print(f"::error title=PR comment ({args.stack})::could not write the failure comment: {error}")
        return 1
    print(f"PR comment {comment_id} {action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
