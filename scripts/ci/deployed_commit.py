#!/usr/bin/env python3
"""Which commit's program runs in a stack: the commit of its last successful update from main.yml.

    scripts/ci/deployed_commit.py --stack prod --note "$RUNNER_TEMP/compared.md"

The drift check previews that commit, not `main` (which runs ahead of prod while an approval waits). Writes
`commit=<sha>` and `source=deployed|main|none` to $GITHUB_OUTPUT (or stdout). Standard library only.
Why, and the fallbacks: docs/architecture/ci-cd.md#the-deployed-commit."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from update_message import commit_of, rolled_back_to
from workflow_files import append


def history(stack: str, page_size: int) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["pulumi", "stack", "history", "--stack", stack, "--json", "--page-size", str(page_size),
         "--non-interactive", "--color", "never"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"pulumi stack history --stack {stack} failed: {result.stderr.strip()[-2000:]}")
    updates = json.loads(result.stdout or "[]")
    return updates if isinstance(updates, list) else []


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def on_main(commit: str) -> bool:
    """The commit is in the checkout and an ancestor of (or equal to) HEAD, the tip of main."""
    return git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0


def choose(stack: str, updates: list[dict[str, Any]], head: str, page_size: int) -> tuple[str, str, str]:
    """(commit, "deployed"|"main"|"none", note); commit is "" for "none"."""
    deployed = next(
        (
            u
            for u in updates
            if u.get("kind") == "update"
            and u.get("result") == "succeeded"
            and commit_of(u.get("message", ""))
        ),
        None,
    )
    lines: list[str] = []
    latest = updates[0] if updates else None
    if latest is not None and latest is not deployed:
        what = (
            "failed"
            if latest.get("result") == "failed"
            else f"was not made by main.yml ({latest.get('message')!r})"
        )
        lines.append(f"The stack's latest update ({latest.get('startTime')}) {what}.")
    if deployed is None:
        note = (
            f"Drift check of `{stack}` skipped: no successful update from main.yml in the stack's last "
            f"{page_size} updates, so no released program to compare Azure with (comparing with `main` "
            "would report everything main.yml has not released yet as drift). The check starts after "
            "main.yml's first deploy to this stack."
        )
        return "", "none", "\n".join([note, *lines])
    commit = str(commit_of(deployed["message"]))
    if rolled_back_to(deployed["message"]):
        # deploy.py's rollback is `pulumi up --target <Deployment>` with the failed commit's program: the
        # changes of that commit which the failed `pulumi up` did not apply are still unapplied.
        lines.append(
            f"**The last deploy of `{stack}` was a rollback** (`{deployed.get('message')}`): "
            f"`{commit[:12]}`'s changes that its failed `pulumi up` did not apply are still unapplied, so "
            "the diff below may be those rather than a change made outside Pulumi. The next release applies "
            "them (docs/runbook.md, Automatic rollback)."
        )
    if not on_main(commit):
        note = (
            f"Compared `{stack}` with `main` (`{head[:12]}`): the commit of its last main.yml deploy, "
            f"`{commit[:12]}`, is not in main's history."
        )
        return head, "main", "\n".join([note, *lines])
    ahead = git("rev-list", "--count", f"{commit}..HEAD").stdout.strip() or "?"
    note = (
        f"Compared `{stack}` with `{commit[:12]}`, the commit of its last deploy from main.yml "
        f"({deployed.get('endTime') or deployed.get('startTime')}, `{deployed.get('message')}`); "
        f"`main` is {ahead} commit(s) ahead at `{head[:12]}`."
    )
    return commit, "deployed", "\n".join([note, *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--note", type=Path, required=True, help="write the markdown note here")
    parser.add_argument("--page-size", type=int, default=100, help="how many recent updates to search")
    args = parser.parse_args(argv)
    head = git("rev-parse", "HEAD").stdout.strip()
    if not head:
        print("::error title=Deployed commit::not in a git checkout", flush=True)
        return 1
    try:
        updates = history(args.stack, args.page_size)
    except (RuntimeError, ValueError) as error:
        print(f"::error title=Deployed commit ({args.stack})::{error}", flush=True)
        return 1
    commit, source, note = choose(args.stack, updates, head, args.page_size)
    args.note.write_text(note + "\n", encoding="utf-8")
    print(note, flush=True)
    if source == "none":
        print(f"::notice title=Drift check skipped ({args.stack})::{note.splitlines()[0]}", flush=True)
        append(
            "GITHUB_STEP_SUMMARY", f"### Drift check: `{args.stack}` not deployed by main.yml yet\n\n{note}\n"
        )
    outputs = f"commit={commit}\nsource={source}\n"
    if not append("GITHUB_OUTPUT", outputs):
        print(outputs, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
