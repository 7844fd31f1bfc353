"""The OIDC subject GitHub puts in a workflow's token, and the federated-credential subjects built from it.

GitHub writes a job's `sub` claim as `<prefix>:<context>`, where the context is `environment:<name>`,
`pull_request` or `ref:<ref>`, and the prefix is one of (docs.github.com/en/actions/reference/security/oidc,
"Immutable subject claims"; changelog 2026-04-23):

    repo:OWNER/REPO                      repositories created before 2026-07-15 that have not opted in
    repo:OWNER@OWNER_ID/REPO@REPO_ID     repositories created, renamed or transferred after 2026-07-15, and
                                         those that opted in (the ids cannot be removed again)

Microsoft Entra compares issuer, audience and subject exactly (case-sensitive): a credential in one format
never matches a token in the other (learn.microsoft.com/entra/workload-id/
workload-identities-github-immutable-subjects). So the prefix is read, not assembled:
`GET /repos/{owner}/{repo}/actions/oidc/customization/sub` answers `use_default`, `include_claim_keys`,
`use_immutable_subject` and `sub_claim_prefix`, and `sub_claim_prefix` is authoritative (Azure/azure-dev
cli/azd/pkg/tools/github/oidc.go at ae35809f, BuildOIDCSubject: "When GitHub returns SubClaimPrefix, it is the
authoritative repository prefix"; its test feeds `use_immutable_subject: false` with an immutable prefix).

A subject template customised with other claim keys (`use_default: false`, `include_claim_keys` other than
`repo` and `context`) gives tokens this project has no credentials for: refused, with what to do.

    gh api repos/OWNER/REPO/actions/oidc/customization/sub | python -m rbac.github_subjects prefix OWNER/REPO

prints the prefix (exit 0) or the reason it cannot be used (exit 1). scripts/bootstrap.sh runs it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# `repo:` + owner, optionally `@<owner id>`, `/` + name, optionally `@<repository id>`: both ids or none.
PREFIX = re.compile(
    r"^repo:(?P<owner>[A-Za-z0-9-]+)(?:@(?P<owner_id>[0-9]+))?/(?P<name>[A-Za-z0-9._-]+)(?:@(?P<repo_id>[0-9]+))?$"
)
# The claim keys of GitHub's default template: `repo:<prefix>:<context>` (azd's BuildOIDCSubject treats the
# same two as the default form).
DEFAULT_CLAIM_KEYS = ("repo", "context")


@dataclass(frozen=True)
class SubjectPrefix:
    """One parsed prefix; `immutable` when it carries the owner and repository ids."""

    text: str
    owner: str
    name: str
    immutable: bool

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.name}"

    def subject(self, context: str) -> str:
        """The exact `sub` GitHub issues for a job in `context` (e.g. `environment:prod`)."""
        return f"{self.text}:{context}"


def parse(prefix: str) -> SubjectPrefix:
    """`prefix` parsed, or ValueError saying which form is expected."""
    match = PREFIX.match(prefix)
    if match is None or (match["owner_id"] is None) != (match["repo_id"] is None):
        raise ValueError(
            f"{prefix!r} is not a GitHub OIDC subject prefix: expected repo:OWNER@OWNER_ID/REPO@REPO_ID "
            "(immutable) or repo:OWNER/REPO (legacy), as `gh api repos/OWNER/REPO/actions/oidc/customization"
            "/sub --jq .sub_claim_prefix` prints it"
        )
    return SubjectPrefix(prefix, match["owner"], match["name"], match["owner_id"] is not None)


def prefix_problems(prefixes: Sequence[str], repository: str) -> list[str]:
    """Why `prefixes` (a stack's muse:githubSubjectPrefixes) cannot be used for `repository`, if at all."""
    problems: list[str] = []
    parsed: list[SubjectPrefix] = []
    for text in prefixes:
        try:
            parsed.append(parse(text))
        except ValueError as error:
            problems.append(str(error))
    for prefix in parsed:
        # GitHub's owner and repository names are case-insensitive; the prefix keeps GitHub's spelling, which
        # is what the token carries and what Entra compares.
        if repository and prefix.repository.lower() != repository.lower():
            problems.append(f"{prefix.text!r} names {prefix.repository}, not githubRepository {repository}")
    if len(set(prefixes)) != len(prefixes):
        problems.append("lists a prefix twice")
    if len(prefixes) > 2:
        problems.append(
            "lists more than two prefixes: keep the current one, and the previous one only while moving "
            "between formats (docs/github-setup.md, 'Subject format')"
        )
    return problems


def prefix_from_customization(repository: str, answer: Mapping[str, Any]) -> str:
    """The prefix of `repository`'s tokens from GitHub's answer to GET .../actions/oidc/customization/sub,
    or ValueError when GitHub issues subjects this project cannot build credentials for."""
    keys = list(answer.get("include_claim_keys") or [])
    if answer.get("use_default") is False and keys and tuple(keys) != DEFAULT_CLAIM_KEYS:
        raise ValueError(
            f"{repository} uses a customised OIDC subject template (include_claim_keys {keys}); Muse's "
            "federated credentials need GitHub's default template (repo and context). Reset it with "
            f"`gh api --method PUT repos/{repository}/actions/oidc/customization/sub -F use_default=true` "
            "(or ask the organisation owner to exempt the repository), then run the bootstrap again"
        )
    text = answer.get("sub_claim_prefix")
    if not text:
        if answer.get("use_immutable_subject"):
            raise ValueError(
                f"GitHub says {repository} uses immutable subjects but gave no sub_claim_prefix: set "
                "muse:githubSubjectPrefixes to repo:OWNER@OWNER_ID/REPO@REPO_ID from a token's subject"
            )
        text = f"repo:{repository}"
    prefix = parse(str(text).removesuffix(":"))
    if prefix.repository.lower() != repository.lower():
        raise ValueError(f"GitHub's prefix {prefix.text!r} does not name {repository}")
    return prefix.text


def check_configured(current: str, configured: Sequence[str]) -> str | None:
    """Why the stacks' muse:githubSubjectPrefixes cannot serve a repository whose tokens carry `current`."""
    if current in configured:
        return None
    kept = ", ".join(json.dumps(p) for p in configured)
    both = ", ".join(json.dumps(p) for p in [*configured, current])
    return (
        f"GitHub issues tokens with the subject prefix {current!r}, which muse:githubSubjectPrefixes "
        f"({kept or 'empty'}) does not list, so no job could sign in. Set it in Pulumi.dev.yaml and "
        f"Pulumi.prod.yaml: muse:githubSubjectPrefixes: [{both}]"
        " (keep the old one only until a run signed in with the new one; docs/github-setup.md, 'Subject "
        "format'), then run the bootstrap again"
    )


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] != "prefix":
        print(
            "usage: python -m rbac.github_subjects prefix OWNER/REPO ['[configured prefixes, JSON]'] "
            "< customization.json",
            file=sys.stderr,
        )
        return 2
    try:
        current = prefix_from_customization(argv[1], json.loads(sys.stdin.read() or "{}"))
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    if len(argv) == 3:
        problem = check_configured(current, json.loads(argv[2]))
        if problem:
            print(problem, file=sys.stderr)
            return 1
    print(current)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
