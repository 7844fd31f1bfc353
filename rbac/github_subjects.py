"""The OIDC subject GitHub puts in a workflow's token, and the federated-credential subjects built from it.

The subject prefix (`repo:OWNER/REPO`, or the immutable `repo:OWNER@OWNER_ID/REPO@REPO_ID`) is read from
GitHub's OIDC customization API, never assembled, because Entra ID compares subjects exactly; a template
customised with other claim keys is refused, with what to do.

    gh api repos/OWNER/REPO/actions/oidc/customization/sub |
      python -m cli.github_subjects prefix OWNER/REPO ['[configured]'] [--org-template JSON]

Why, with GitHub's and Entra's rules: docs/architecture/ci-cd.md#oidc-subject-prefixes."""

from __future__ import annotations

import json
import re
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
    repo_id: str | None = None  # kept across a rename or transfer (the name and, on a transfer, owner change)

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
    return SubjectPrefix(
        prefix, match["owner"], match["name"], match["owner_id"] is not None, match["repo_id"]
    )


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
        # During a migration across a rename or transfer, the other name is fine when the repository id says
        # it is the same repository: both prefixes immutable, the same REPO_ID (GitHub keeps a repository's
        # id when it is renamed or transferred; the prefix format carries it).
        same_repository = any(
            other.repository.lower() == repository.lower()
            and other.immutable
            and other.repo_id == prefix.repo_id
            for other in parsed
        )
        if (
            repository
            and prefix.repository.lower() != repository.lower()
            and not (prefix.immutable and same_repository)
        ):
            problems.append(f"{prefix.text!r} names {prefix.repository}, not githubRepository {repository}")
    if len(set(prefixes)) != len(prefixes):
        problems.append("lists a prefix twice")
    if len(prefixes) > 2:
        problems.append(
            "lists more than two prefixes: keep the current one, and the previous one only while moving "
            "between formats (docs/github-setup.md, 'Subject format')"
        )
    return problems


# The organisation's template was not read (the bootstrap could not): distinct from None, "no template".
NOT_READ: Mapping[str, Any] = {"not read": True}


def _refuse_keys(where: str, keys: Sequence[str], reset: str) -> ValueError:
    return ValueError(
        f"{where} uses a customised OIDC subject template (include_claim_keys {list(keys)}); Muse's "
        f"federated credentials need GitHub's default template (repo and context). {reset}, then run the "
        "bootstrap again"
    )


def prefix_from_customization(
    repository: str, answer: Mapping[str, Any], organisation: Mapping[str, Any] | None = NOT_READ
) -> str:
    """The prefix of `repository`'s tokens from GitHub's answer to GET .../actions/oidc/customization/sub,
    or ValueError when GitHub issues subjects this project cannot build credentials for. `organisation` is the
    answer to GET /orgs/{owner}/actions/oidc/customization/sub (None: 404, the organisation has no template),
    read only when the repository follows the organisation's template."""
    keys = list(answer.get("include_claim_keys") or [])
    owner = repository.split("/")[0]
    if answer.get("use_default") is False and keys and tuple(keys) != DEFAULT_CLAIM_KEYS:
        raise _refuse_keys(
            repository, keys,
            f"Reset it with `gh api --method PUT repos/{repository}/actions/oidc/customization/sub -F "
            "use_default=true` (or ask the organisation owner to exempt the repository)",
        )  # fmt: skip
    if answer.get("use_default") is False and not keys:
        if organisation is NOT_READ:
            raise ValueError(
                f"{repository} follows its organisation's OIDC subject template, which could not be read: "
                f"check it with `gh api orgs/{owner}/actions/oidc/customization/sub` (needs the read:org "
                "scope: `gh auth refresh -s read:org`), then run the bootstrap again"
            )
        org_keys = list((organisation or {}).get("include_claim_keys") or [])
        if org_keys and tuple(org_keys) != DEFAULT_CLAIM_KEYS:
            raise _refuse_keys(
                f"{repository} follows the organisation {owner}, which", org_keys,
                "Make the repository use GitHub's default with `gh api --method PUT "
                f"repos/{repository}/actions/oidc/customization/sub -F use_default=true`",
            )  # fmt: skip
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
