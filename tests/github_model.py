"""A test double of GitHub's and Entra's documented rules at the trust boundary, one function per rule.

Each rule is a line of ../shared/reference/github-behaviour.md with its source:

- OIDC `sub` of a repository (row 1): docs.github.com/en/actions/reference/security/oidc, "Immutable subject
  claims", and the GitHub changelog of 2026-04-23: repositories created, renamed or transferred after
  2026-07-15 get `repo:OWNER@OWNER_ID/REPO@REPO_ID:<context>`; older ones keep `repo:OWNER/REPO:<context>`
  until they opt in, and an opt-in cannot be undone.
- The customization endpoint (row 2): GET /repos/{owner}/{repo}/actions/oidc/customization/sub answers
  `use_default`, `include_claim_keys`, `use_immutable_subject`, `sub_claim_prefix` (the shape Azure/azure-dev
  cli/azd/pkg/tools/github/oidc.go at ae35809f decodes, and its github_provider_test.go feeds).
- Entra's token exchange (row 3): learn.microsoft.com/entra/workload-id/
  workload-identities-github-immutable-subjects: issuer, audience and subject match exactly, case-sensitive.
- Re-runs (row 4): docs.github.com "Re-running workflows and jobs": an environment protection rule that passed
  in the previous attempt passes automatically in the re-run; GITHUB_RUN_ATTEMPT counts the attempts.
- Administrator bypass (row 5): docs.github.com "Managing environments for deployment" and REST "Create or
  update an environment": administrators bypass protection rules unless `can_admins_bypass` is false
  (default true).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

IMMUTABLE_SINCE = date(2026, 7, 15)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
ENTRA_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    owner_id: int
    repo_id: int
    created: date
    opted_in: bool = False

    @property
    def immutable(self) -> bool:
        return self.opted_in or self.created > IMMUTABLE_SINCE

    @property
    def prefix(self) -> str:
        if self.immutable:
            return f"repo:{self.owner}@{self.owner_id}/{self.name}@{self.repo_id}"
        return f"repo:{self.owner}/{self.name}"

    def token_subject(self, context: str) -> str:
        """The `sub` claim GitHub issues to a job of this repository in `context` (row 1)."""
        return f"{self.prefix}:{context}"

    def customization(self, include_claim_keys: list[str] | None = None) -> dict[str, Any]:
        """GitHub's answer to GET .../actions/oidc/customization/sub (row 2); with claim keys, a customised
        template (`use_default: false`)."""
        answer: dict[str, Any] = {
            "use_default": include_claim_keys is None,
            "use_immutable_subject": self.opted_in,
            "sub_claim_prefix": self.prefix,
        }
        if include_claim_keys is not None:
            answer["include_claim_keys"] = include_claim_keys
        return answer


def entra_accepts(credentials: Iterable[Mapping[str, Any]], subject: str) -> bool:
    """Whether Entra exchanges a GitHub token with `subject` for the application holding `credentials` (row
    3): some credential's issuer, audience and subject equal the token's exactly (str ==: case-sensitive)."""
    return any(
        c.get("issuer") == GITHUB_ISSUER
        and ENTRA_AUDIENCE in (c.get("audiences") or [])
        and c.get("subject") == subject
        for c in credentials
    )


@dataclass
class Environment:
    """A deployment environment with required reviewers (row 5)."""

    reviewers: tuple[str, ...]
    can_admins_bypass: bool = True  # GitHub's default
    prevent_self_review: bool = False


@dataclass
class Run:
    """One workflow run and its attempts (row 4)."""

    environment: Environment
    approvals: dict[int, str] = field(default_factory=dict)  # attempt -> approver
    attempt: int = 1

    def approve(self, reviewer: str, actor: str) -> None:
        if reviewer not in self.environment.reviewers:
            raise PermissionError(f"{reviewer} is not a required reviewer")
        if self.environment.prevent_self_review and reviewer == actor:
            raise PermissionError("self-review is prevented")
        self.approvals[self.attempt] = reviewer

    def rerun(self) -> None:
        self.attempt += 1

    def job_may_start(self, admin_bypass: bool = False) -> bool:
        """The environment lets the job start: approved in this or an earlier attempt (a passed rule passes
        again in a re-run), or an administrator bypassed the rules where that is allowed."""
        if admin_bypass and self.environment.can_admins_bypass:
            return True
        return any(attempt <= self.attempt for attempt in self.approvals)
