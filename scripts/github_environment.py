#!/usr/bin/env python3
"""The body of GitHub's "Create or update an environment" (PUT /repos/{owner}/{repo}/environments/{name}) that
scripts/bootstrap.sh sends: deployments from `main` only, keeping the protection rules a person set in the UI.

    gh api --paginate "repos/$repository/environments" | scripts/github_environment.py "$environment" |
      gh api --method PUT "repos/$repository/environments/$environment" --input -

A PUT replaces the protection rules, so the current ones are merged in; a field the environment does not use
is left out. Run it with the project's .venv. Why: docs/bootstrap.md#the-github-environment-body."""

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
