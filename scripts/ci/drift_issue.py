#!/usr/bin/env python3
"""Open, or update, the one issue of a stack whose drift check failed, so someone hears about it.

    scripts/ci/drift_issue.py --stack prod --report "$RUNNER_TEMP/drift.md"   # drift.yml, failed or cancelled
    scripts/ci/drift_issue.py --stack prod --resolved                        # drift.yml, after a clean check

One issue per stack, found by its marker among the issues the job token's bot wrote; `--resolved` closes it,
so an open drift issue always means drift now. Needs `issues: write`. Standard library only.
Why: docs/architecture/ci-cd.md#the-drift-issue."""

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


def resolve_drift(github: GitHub, stack: str, link: str) -> int | None:
    """Close the stack's open drift issue after a clean check; its number, or None when none was open."""
    found = existing(github, stack)
    if found is None:
        return None
    number = int(found["number"])
    base = f"{github.api_url}/repos/{github.repository}/issues/{number}"
    github.request(
        "POST", f"{base}/comments", {"body": f"The drift check is clean again{f': {link}' if link else ''}."}
    )
    github.request("PATCH", base, {"state": "closed", "state_reason": "completed"})
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--report", type=Path, help="preview.py --report's file (may be absent)")
    what.add_argument("--resolved", action="store_true", help="the check was clean: close the stack's issue")
    args = parser.parse_args(argv)
    github = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"),
                    os.environ.get("GITHUB_TOKEN", ""), os.environ.get("GITHUB_REPOSITORY", ""))  # fmt: skip
    if args.resolved:
        try:
            closed = resolve_drift(github, args.stack, run_link())
        except (OSError, ValueError, KeyError) as error:
            print(f"::error title=Drift issue ({args.stack})::could not close the issue: {error}", flush=True)
            return 1
        print(f"{args.stack}: no drift" + (f"; issue #{closed} closed" if closed else ""), flush=True)
        return 0
    report = args.report.read_text(encoding="utf-8") if args.report.exists() else ""
    try:
        action, number = report_drift(github, args.stack, report, run_link())
    except (OSError, ValueError, KeyError) as error:
        print(f"::error title=Drift issue ({args.stack})::could not write the issue: {error}", flush=True)
        return 1
    print(f"::warning title=Drift ({args.stack})::issue #{number} {action}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
