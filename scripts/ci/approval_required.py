#!/usr/bin/env python3
"""Stop a deploy whose stack's tier asks for an approval its call does not ask for.

    scripts/ci/approval_required.py --environment "$STACK" --approval "$APPROVAL"   # deploy.yml, deploy job

deploy.yml trusts its caller's `approval` input for the preview to approve, the approval guard and the
change-set check; a production-tier call written with `approval: false` (or without it: the default is false)
would deploy at once, as the environment's reviewers would not be asked... unless the GitHub environment has
them, which a new environment may not have yet. So the deploy job asks the stack itself, from main's head
(the job's tools checkout, PYTHONPATH=.ci-tools: stack.environments.requires_approval reads `muse:tier` of
the stack file, never the name), before any credential, and fails when the two disagree that way.
"""

from __future__ import annotations

import argparse
import sys

from stack.environments import ENVIRONMENTS, requires_approval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--environment", required=True)
    parser.add_argument("--approval", required=True, choices=["true", "false"], help="the call's input")
    args = parser.parse_args(argv)
    if args.environment not in ENVIRONMENTS:
        # Fail closed: a name main's head does not list (renamed, removed) has no tier to check against.
        print(
            f"::error title=Approval::{args.environment} is not in stack/environments.txt on main's head "
            f"({', '.join(ENVIRONMENTS)}): add it there with its stack file, or call deploy.yml with a "
            "listed one."
        )
        return 1
    needed = requires_approval(args.environment)
    if needed and args.approval != "true":
        print(
            f"::error title=Approval::{args.environment}'s stack file declares the production tier "
            "(muse:tier), which deploys only after an approved preview, but its call of deploy.yml passes "
            f"approval: false. Set `approval: true` on main.yml's deploy-{args.environment} call and run "
            "main.yml again."
        )
        return 1
    said = "asked for, as its tier requires" if needed else "not required by its tier"
    print(f"{args.environment}: approval {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
