"""An Entra ID application that GitHub Actions signs in as with OIDC: no client secret exists anywhere."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azuread as azuread
from pulumi_azure_native import authorization

from components.workload_identity import TOKEN_EXCHANGE_AUDIENCE
from rbac import github_subjects
from rbac.roles import CustomRole, PrincipalType, Role, assign_role

GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True, kw_only=True)
class GitHubOidcIdentityArgs:
    """Inputs of `GitHubOidcIdentity`, field by field (all required: each one decides who may sign in).

    display_name: name of the Entra ID application (e.g. muse-github-deploy-prod). Required.
    subject_prefixes: the repository's OIDC subject prefixes, exactly as GitHub writes them
        (`repo:OWNER@OWNER_ID/REPO@REPO_ID`, or `repo:OWNER/REPO` for a legacy repository;
        rbac/github_subjects.py). Two only while the repository moves between formats: each context gets a
        credential per prefix, since Entra matches subjects exactly. Required.
    subjects: the workflow contexts that may sign in, as GitHub writes them after the prefix and `:`:
        `pull_request`, `ref:refs/heads/main`, `environment:prod`, ... Required, no default: every subject
        is a way in, so each one is named.
    description: what the identity is for (shown in the Entra ID portal). Required.
    """

    display_name: str
    subject_prefixes: Sequence[str]
    subjects: Sequence[str]
    description: str


class GitHubOidcIdentity(pulumi.ComponentResource):
    """`muse:azuread:GitHubOidcIdentity`: application + service principal + one federated credential per
    subject. Exposes `client_id` (the repository variable AZURE_CLIENT_ID) and `principal_id` (for grants)."""

    TYPE = "muse:azuread:GitHubOidcIdentity"  # the type token of its URN

    def __init__(
        self, name: str, args: GitHubOidcIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.application = azuread.Application(
            name,
            display_name=args.display_name,
            description=args.description,
            sign_in_audience="AzureADMyOrg",
            prevent_duplicate_names=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_principal = azuread.ServicePrincipal(
            name,
            client_id=self.application.client_id,
            description=args.description,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # One after another: concurrent writes to one application's credentials conflict.
        self.federated_credentials: list[azuread.ApplicationFederatedIdentityCredential] = []
        prefixes = [github_subjects.parse(text) for text in args.subject_prefixes]
        for index, prefix in enumerate(prefixes):
            # A legacy-format credential keeps the name it always had (no replacement on upgrade); the first
            # immutable one is named apart, so both exist side by side during a migration, and keeps that
            # name; a second one of the same format (a rename or transfer: another owner/name, the same ids)
            # is named by its prefix, since Entra wants credential names unique per application (and Pulumi
            # URNs must differ).
            kind = "-ids" if prefix.immutable else ""
            if any(other.immutable == prefix.immutable for other in prefixes[:index]):
                kind += "-" + hashlib.sha256(prefix.text.encode()).hexdigest()[:8]
            for subject in args.subjects:
                previous = self.federated_credentials[-1:] or []
                slug = subject.replace(":", "-").replace("/", "-") + kind
                self.federated_credentials.append(
                    azuread.ApplicationFederatedIdentityCredential(
                        f"{name}-{slug}",
                        application_id=self.application.id,
                        display_name=slug,
                        description=f"GitHub Actions of {prefix.repository} in context {subject}",
                        issuer=GITHUB_OIDC_ISSUER,
                        audiences=[TOKEN_EXCHANGE_AUDIENCE],
                        subject=prefix.subject(subject),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=list(previous)),
                    )
                )
        self.client_id: pulumi.Output[str] = self.application.client_id
        self.principal_id: pulumi.Output[str] = self.service_principal.object_id
        self.register_outputs({"clientId": self.client_id, "principalId": self.principal_id})

    def grant(
        self, name: str, role: Role, scope: pulumi.Input[str], condition: pulumi.Input[str] | None = None
    ) -> authorization.RoleAssignment:
        """`role` on `scope` for this identity; `condition` constrains delegated role assignment."""
        return assign_role(
            f"{name}-{role.name.lower().replace('_', '-')}",
            role=role,
            scope=scope,
            principal_id=self.principal_id,
            principal_type=PrincipalType.SERVICE_PRINCIPAL,
            parent=self,
            condition=condition,
        )

    def grant_custom(
        self,
        name: str,
        role: CustomRole,
        definition_id: pulumi.Input[str],
        scope: pulumi.Input[str],
        condition: str | None = None,
    ) -> authorization.RoleAssignment:
        """The custom `role` (its definition's resource id) on `scope`; `condition` narrows it (ABAC)."""
        return assign_role(
            f"{name}-{role.key}",
            role=(role, definition_id),
            scope=scope,
            principal_id=self.principal_id,
            principal_type=PrincipalType.SERVICE_PRINCIPAL,
            parent=self,
            condition=condition,
        )
