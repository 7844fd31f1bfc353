"""The message every `pulumi up` from main.yml records in the stack's history, and how to read it back.

`pulumi stack history --json` keeps each update's `message` (pulumi/pulumi
pkg/cmd/pulumi/stack/stack_history.go, updateInfoJSON; the DIY backend stores it with the update,
pkg/backend/diy/backend.go). scripts/ci/deploy.py writes it; scripts/ci/deployed_commit.py reads it to find
the commit whose program runs in a stack, so drift is checked against what was deployed, not today's `main`.

    main <40-hex commit>                                a release of that commit
    main <40-hex commit> rollback to <image tag>        that commit's program with the previous image

A rollback applies the failed commit's program (only the image goes back), so its commit is the one deployed.
Standard library only: it runs on the runner before any virtualenv exists.
"""

from __future__ import annotations

import re

COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Also read back: a person's rollback from the runbook (docs/runbook.md, Manual rollback), recorded as
#     manual <40-hex commit> rollback to <image tag>
# Not read back (commit_of: None): a canary's intermediate updates (release_canary.py), recorded as
#     canary <40-hex commit> <step>       (the candidate up, each weight move)
# so the stack's "previously deployed commit" is one that was promoted or rolled back to, never a candidate.
MESSAGE = re.compile(r"^(?:main|manual) (?P<commit>[0-9a-f]{40})(?: rollback to (?P<image>\S+))?$")


def deploy_message(commit: str) -> str:
    if not COMMIT.match(commit):
        raise ValueError(f"{commit!r} is not a full 40-hex commit SHA")
    return f"main {commit}"


def canary_message(commit: str, step: str) -> str:
    """An update of a canary that is not (yet) the release: `canary <commit> <step>`."""
    if not COMMIT.match(commit):
        raise ValueError(f"{commit!r} is not a full 40-hex commit SHA")
    return f"canary {commit} {step}"


def rollback_message(commit: str, image: str) -> str:
    return f"{deploy_message(commit)} rollback to {image}"


def rolled_back_to(message: str) -> str | None:
    """The image a rollback update went back to, or None for a release or any other message."""
    match = MESSAGE.match(message.strip())
    return match.group("image") if match else None


def commit_of(message: str) -> str | None:
    """The commit a main.yml update recorded, or None for any other message (a person's `pulumi up`)."""
    match = MESSAGE.match(message.strip())
    return match.group("commit") if match else None
