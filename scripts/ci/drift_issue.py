#!/usr/bin/env python3
"""Open, or update, the one issue of a stack whose drift check failed, so someone hears about it.

    scripts/ci/drift_issue.py --stack prod --report "$RUNNER_TEMP/drift.md"   # drift.yml, if: failure()

A failed scheduled run notifies only the person who last edited the cron line ("Notifications for workflow
runs" in GitHub's docs), so the check writes to an issue instead: one per stack, found again by its marker
`<!-- muse-drift-check: <stack> -->` among the open issues the job token's bot wrote (REST "List repository
issues" with `creator` and `state=open`, paged; that list also holds pull requests, which carry
`pull_request`, and are skipped). A new failure creates the issue (watchers of the repository are notified);
a repeated one replaces its body with the latest report and adds a comment (so participants are notified
again). An issue someone else wrote with the same marker is never edited (scripts/ci/pr_comment.py `ours`).

The body is preview.py's drift summary (`--report`; it says when the stack's last deploy was a rollback whose
commit left changes unapplied, scripts/ci/deployed_commit.py), or, when the check failed before the preview
ran, a pointer to the run; trimmed to GitHub's 65,536 characters. Needs `issues: write`. Standard library
only.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from pr_comment import BOT_LOGIN, GitHub, by_our_bot
from preview import COMMENT_CHARACTERS, run_link, trim_front


def marker(stack: str) -> str:
    return f"<!-- muse-drift-check: {stack} -->"


def title(stack: str) -> str:
    return f"Drift check failed: {stack}"


def issue_body(stack: str, report: str, link: str) -> str:
    head = "\n".join([
        marker(stack),
        f"The scheduled drift check of `{stack}` failed{f' ([run]({link}))' if link else ''}: Azure differs "
        "from the deployed code, or the check itself could not run. docs/runbook.md ('Drift') says what to "
        "do; close this issue once it is resolved (the next failure opens a new one).",
        "",
    ])  # fmt: skip
    text = report.strip() or "The check failed before the preview ran: the failed step's log is in the run."
    return head + "\n" + trim_front(text, COMMENT_CHARACTERS - len(head) - 1)


def existing(github: GitHub, stack: str) -> dict[str, Any] | None:
    issues = github.pages(f"/issues?state=open&creator={urllib.parse.quote(BOT_LOGIN)}&per_page=100")
    for issue in issues:
        if "pull_request" not in issue and by_our_bot(issue) and marker(stack) in (issue.get("body") or ""):
            return issue
    return None


def report_drift(github: GitHub, stack: str, report: str, link: str) -> tuple[str, int]:
    """("created"|"updated", issue number)."""
    body = issue_body(stack, report, link)
    base = f"{github.api_url}/repos/{github.repository}/issues"
    found = existing(github, stack)
    if found is None:
        created, _ = github.request("POST", base, {"title": title(stack), "body": body})
        return "created", int(created["number"])
    number = int(found["number"])
    github.request("PATCH", f"{base}/{number}", {"body": body})
    github.request(
        "POST", f"{base}/{number}/comments", {"body": f"Failed again{f': {link}' if link else ''}."}
    )
    return "updated", number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument(
        "--report", type=Path, required=True, help="preview.py --report's file (may be absent)"
    )
    args = parser.parse_args(argv)
    report = args.report.read_text(encoding="utf-8") if args.report.exists() else ""
    github = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"),
                    os.environ.get("GITHUB_TOKEN", ""), os.environ.get("GITHUB_REPOSITORY", ""))  # fmt: skip
    try:
        action, number = report_drift(github, args.stack, report, run_link())
    except (OSError, ValueError, KeyError) as error:
        print(f"::error title=Drift issue ({args.stack})::could not write the issue: {error}", flush=True)
        return 1
    print(f"::warning title=Drift ({args.stack})::issue #{number} {action}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
