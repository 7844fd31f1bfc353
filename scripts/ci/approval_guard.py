#!/usr/bin/env python3
"""Stop deploy-prod unless the prod approval it runs under was given in this attempt, by someone else.

    scripts/ci/approval_guard.py --environment prod     # first step of deploy-prod, before any credential

A re-run passes an earlier attempt's approval automatically, so only attempt 1 may deploy, and the run's
review history must hold an `approved` review by someone other than the run's actors. Needs `actions: read`.
Standard library only. Why: docs/architecture/ci-cd.md#the-approval-guard."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pr_comment import GitHub
from workflow_files import append

WORKFLOW = "main.yml"


def new_run_hint(repository: str, commit: str) -> str:
    """How to deploy the same commit again under a fresh approval (main.yml's workflow_dispatch input)."""
    return (
        f"start a new run instead: `gh workflow run {WORKFLOW} --repo {repository} --ref main "
        f"-f commit={commit}` "
        "(Actions > main > Run workflow, commit = this SHA); its preview-prod shows the current diff, and "
        "prod waits for a new approval"
    )


def attempt_problem(attempt: str, repository: str, commit: str) -> str | None:
    if attempt in ("", "1"):
        return None
    return (
        f"this is attempt {attempt} of the run: GitHub passes the prod approval of an earlier attempt again "
        "in a re-run, for a change set nobody approved now. Not deploying; "
        + new_run_hint(repository, commit)
    )


def approval_problem(reviews: list[dict[str, Any]], environment: str, actors: set[str]) -> str | None:
    """Why the review history holds no approval of `environment` by someone outside `actors`, or None."""
    approvers = [
        str((review.get("user") or {}).get("login", ""))
        for review in reviews
        if review.get("state") == "approved"
        and any(e.get("name") == environment for e in review.get("environments") or [])
    ]
    if not approvers:
        return (
            f"the run has no approval of the {environment} environment (its required reviewers are missing?)"
        )
    if not set(approvers) - actors:
        return (
            f"the {environment} approval came from {', '.join(sorted(set(approvers)))}, who started the run; "
            "a deploy needs a second person (turn on prevent_self_review, docs/github-setup.md)"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environment", required=True)
    parser.add_argument("--commit", default=os.environ.get("GITHUB_SHA", ""))
    args = parser.parse_args(argv)
    env = os.environ.get
    repository = env("GITHUB_REPOSITORY", "")
    problem = attempt_problem(env("GITHUB_RUN_ATTEMPT", ""), repository, args.commit)
    if problem is None:
        github = GitHub(env("GITHUB_API_URL", "https://api.github.com"), env("GITHUB_TOKEN", ""), repository)
        url = f"{github.api_url}/repos/{repository}/actions/runs/{env('GITHUB_RUN_ID', '')}/approvals"
        try:
            reviews, _ = github.request("GET", url)
        except (OSError, ValueError) as error:
            problem = f"could not read the run's review history ({error})"
        else:
            actors = {a for a in (env("GITHUB_ACTOR", ""), env("GITHUB_TRIGGERING_ACTOR", "")) if a}
            problem = approval_problem(list(reviews or []), args.environment, actors)
    # The commit in every message: the approver and whoever reads the run later see what was released.
    if problem is None:
        message = (
            f"{args.environment}: commit {args.commit} approved in this attempt by someone other than the "
            "run's actor"
        )
        print(message)
        append(
            "GITHUB_STEP_SUMMARY", f"### Deploy {args.environment} of commit `{args.commit}`\n\n{message}\n"
        )
        return 0
    append(
        "GITHUB_STEP_SUMMARY",
        f"### Deploy {args.environment} of commit `{args.commit}`: refused\n\n{problem}\n",
    )
    print(f"::error title=Deploy {args.environment} refused (commit {args.commit})::{problem}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
