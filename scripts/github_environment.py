#!/usr/bin/env python3
"""The body of GitHub's "Create or update an environment" (PUT /repos/{owner}/{repo}/environments/{name}) that
scripts/bootstrap.sh sends: deployments from `main` only, keeping the protection rules a person set in the UI.

    gh api --paginate "repos/$repository/environments" | scripts/github_environment.py "$environment" | \
      gh api --method PUT "repos/$repository/environments/$environment" --input -

The PUT body's fields are `wait_timer`, `prevent_self_review`, `reviewers` (`[{"type": "User"|"Team", "id":
<int>}]`, nullable), `can_admins_bypass` and `deployment_branch_policy` (https://docs.github.com/en/rest/deployments/environments
#create-or-update-an-environment). The environment ends up with the protection rules the body gives: a PUT
without `reviewers` leaves it without required reviewers (a script that PUT only its branch policy removed
reviewers set in the UI: ministryofjustice/modernisation-platform issue 4516). So the current environment
(from "List environments" on stdin, `{"environments": [...]}` per page, pages back to back as `gh api
--paginate` prints them: its `protection_rules` of type `required_reviewers` with `reviewers[].{type,
reviewer.id}` and `prevent_self_review`, and of type `wait_timer`; none when it does not exist yet) is merged
in. Listing rather than getting the one environment: a missing one is an empty answer, not an error that
could hide a failed request. A field the environment does not use is left out, not sent as a default: on a
private repository without GitHub Enterprise the reviewer and timer rules are unavailable and GitHub refuses
a body that carries them at all (422; alchemy-run/alchemy pull request 1373 describes it;
docs/github-setup.md). Which environments wait for a reviewer is read from the stacks' tiers
(stack.environments.requires_approval): run it with the project's .venv, as scripts/bootstrap.sh does.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from stack.environments import requires_approval

# Only main may enter an environment (a pull request's job cannot): a custom policy naming `main`, created by
# the deployment-branch-policies call after this PUT.
BRANCH_POLICY = {"protected_branches": False, "custom_branch_policies": True}
# The environments whose deployments wait for a reviewer: those of production-tier stacks, whatever their name
# (requires_approval; deploy.yml's deploy job runs in the environment named after its stack). By default
# repository administrators can bypass an environment's protection rules; `can_admins_bypass: false` in the
# PUT body turns that off (docs.github.com "Managing environments for deployment", "Allow administrators to
# bypass configured protection rules"; REST "Create or update an environment", field can_admins_bypass,
# default true): no unapproved production-tier deploy.


def put_body(current: dict[str, Any], name: str = "", *, approval: bool | None = None) -> dict[str, Any]:
    """The PUT body: the branch policy, `current`'s reviewers, self-review rule and timer, and for an
    environment that needs approval (`approval`, by default read from its stack's tier) no administrator
    bypass."""
    body: dict[str, Any] = {"deployment_branch_policy": BRANCH_POLICY}
    if requires_approval(name) if approval is None else approval:
        body["can_admins_bypass"] = False
    for rule in current.get("protection_rules") or []:
        if rule.get("type") == "required_reviewers":
            reviewers = [{"type": r["type"], "id": r["reviewer"]["id"]} for r in rule.get("reviewers") or []]
            if reviewers:
                body["reviewers"] = reviewers
                if "prevent_self_review" in rule:
                    body["prevent_self_review"] = bool(rule["prevent_self_review"])
        elif rule.get("type") == "wait_timer" and rule.get("wait_timer"):
            body["wait_timer"] = int(rule["wait_timer"])
    return body


def environment_named(pages: str, name: str) -> dict[str, Any]:
    """The environment `name` from the concatenated pages of "List environments" (`{}` when absent)."""
    decoder, position, found = json.JSONDecoder(), 0, {}
    while position < len(pages.rstrip()):
        while pages[position].isspace():
            position += 1
        page, position = decoder.raw_decode(pages, position)
        for environment in page.get("environments") or []:
            if environment.get("name") == name:
                found = environment
    return found


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: github_environment.py <environment> < list-environments.json", file=sys.stderr)
        return 2
    current = environment_named(sys.stdin.read(), sys.argv[1])
    approval = requires_approval(sys.argv[1])
    body = put_body(current, sys.argv[1], approval=approval)
    if approval and "reviewers" not in body:
        print(
            f"::warning::environment {sys.argv[1]} has no required reviewers yet: add them "
            "(docs/github-setup.md)",
            file=sys.stderr,
        )
    json.dump(body, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
