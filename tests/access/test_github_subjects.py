"""The repository's OIDC subject prefix, read from GitHub's answer (rbac/github_subjects.py) and configured
per stack (muse:githubSubjectPrefixes).

GitHub's answers come from tests/github_model.py (GET .../actions/oidc/customization/sub, the fields Azure/
azure-dev cli/azd/pkg/tools/github/oidc.go at ae35809f decodes; immutable subjects for repositories created
after 2026-07-15, docs.github.com/en/actions/reference/security/oidc "Immutable subject claims")."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest

from rbac import github_subjects
from stack.config import ConfigError, load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT, read_stack
from tests.github_model import Repository

NEW = Repository("muse-platform", "muse", owner_id=184467302, repo_id=1021473690, created=date(2026, 8, 3))
OLD = Repository("muse-platform", "muse", owner_id=184467302, repo_id=1021473690, created=date(2025, 1, 9))


def test_the_prefix_is_github_s_own_in_the_immutable_format() -> None:
    assert github_subjects.prefix_from_customization("muse-platform/muse", NEW.customization()) == NEW.prefix
    assert NEW.prefix == "repo:muse-platform@184467302/muse@1021473690"
    # azd's test answer: use_immutable_subject false beside an immutable prefix; the prefix wins.
    answer = {"use_default": True, "use_immutable_subject": False, "sub_claim_prefix": NEW.prefix}
    assert github_subjects.prefix_from_customization("muse-platform/muse", answer) == NEW.prefix
    # The default template spelled out (use_default false, the keys repo and context) is the same subject.
    spelled = NEW.customization(["repo", "context"])
    assert github_subjects.prefix_from_customization("muse-platform/muse", spelled) == NEW.prefix


def test_a_legacy_repository_gets_the_legacy_prefix() -> None:
    assert github_subjects.prefix_from_customization("muse-platform/muse", OLD.customization()) == OLD.prefix
    assert (
        github_subjects.prefix_from_customization("muse-platform/muse", {"use_default": True}) == OLD.prefix
    )


@pytest.mark.parametrize(
    "keys", [["repo", "context", "job_workflow_ref"], ["repository_owner_id", "context"]]
)
def test_a_customised_subject_template_is_refused_with_the_fix(keys: list[str]) -> None:
    with pytest.raises(ValueError, match=r"customised OIDC subject template") as refused:
        github_subjects.prefix_from_customization("muse-platform/muse", NEW.customization(keys))
    assert str(keys) in str(refused.value)
    assert "customization/sub -F use_default=true" in str(refused.value)


def test_configured_prefixes_must_include_github_s() -> None:
    assert github_subjects.check_configured(NEW.prefix, [NEW.prefix]) is None
    assert github_subjects.check_configured(NEW.prefix, [OLD.prefix, NEW.prefix]) is None  # migrating
    # Negative control: a stack file still holding the legacy prefix for an immutable repository.
    problem = github_subjects.check_configured(NEW.prefix, [OLD.prefix])
    assert problem is not None and NEW.prefix in problem
    assert f'muse:githubSubjectPrefixes: ["{OLD.prefix}", "{NEW.prefix}"]' in problem


def _cli(answer: dict[str, object], *configured: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "cli.github_subjects", "prefix", "muse-platform/muse"]
    if configured:
        args.append(json.dumps(list(configured)))
    return subprocess.run(
        args, input=json.dumps(answer), capture_output=True, text=True, timeout=30, check=False, cwd=REPO_ROOT
    )


def test_the_command_bootstrap_runs_prints_or_refuses() -> None:
    ok = _cli(NEW.customization(), NEW.prefix)
    assert (ok.returncode, ok.stdout) == (0, NEW.prefix + "\n")
    stale = _cli(NEW.customization(), OLD.prefix)
    assert stale.returncode == 1 and "does not list" in stale.stderr and stale.stdout == ""
    custom = _cli(NEW.customization(["repository_id", "context"]), NEW.prefix)
    assert custom.returncode == 1 and "customised OIDC subject template" in custom.stderr


def _config(**overrides: object) -> dict[str, object]:
    return {**read_stack("dev").config, **{f"muse:{k}": v for k, v in overrides.items()}}


def test_the_stacks_carry_an_immutable_prefix_of_their_repository() -> None:
    for stack in ENVIRONMENTS:
        config = load_stack_config(stack, read_stack(stack).config, today=date(2026, 12, 7))
        [prefix] = config.github_subject_prefixes
        parsed = github_subjects.parse(prefix)
        assert parsed.immutable and parsed.repository == config.github_repository


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        (["repo:someone/else"], "names someone/else, not githubRepository"),
        (["repo:muse-platform@1/muse"], "not a GitHub OIDC subject prefix"),
        (["muse-platform/muse"], "not a GitHub OIDC subject prefix"),
        ([OLD.prefix, NEW.prefix, "repo:muse-platform@9/muse@9"], "more than two"),
        ([NEW.prefix, NEW.prefix], "twice"),
        ([], "is empty"),
    ],
)
def test_a_bad_prefix_is_refused_before_any_resource(prefixes: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_stack_config("dev", _config(githubSubjectPrefixes=prefixes), today=date(2026, 12, 7))
    assert "githubSubjectPrefixes" in str(refused.value) and message in str(refused.value)


# An organisation's template (docs.github.com/rest/actions/oidc; tests/github_model.py row 2): the repository
# answers use_default false without claim keys, the organisation's endpoint answers the keys (404: none).
ORG_CUSTOM = Repository(
    "muse-platform", "muse", owner_id=184467302, repo_id=1021473690, created=date(2026, 8, 3),
    org_template=("repository_owner_id", "context"), follows_org_template=True,
)  # fmt: skip


def test_an_organisation_template_with_other_keys_is_refused() -> None:
    answer = ORG_CUSTOM.customization()
    assert answer["use_default"] is False and "include_claim_keys" not in answer
    with pytest.raises(ValueError, match=r"follows the organisation muse-platform, which uses a customised"):
        github_subjects.prefix_from_customization(
            "muse-platform/muse", answer, ORG_CUSTOM.org_customization()
        )
    # Why: the token's subject is not the prefix the credentials are built from (Entra compares exactly).
    token = ORG_CUSTOM.token_subject("environment:prod")
    assert token == "repository_owner_id:184467302:environment:prod"
    assert not token.startswith(ORG_CUSTOM.prefix)
    # Without the organisation's answer the repository cannot be checked: refused, saying what to run.
    with pytest.raises(ValueError, match=r"gh api orgs/muse-platform/actions/oidc/customization/sub"):
        github_subjects.prefix_from_customization("muse-platform/muse", answer)


@pytest.mark.parametrize("org_template", [None, ("repo", "context")], ids=["404", "repo-context"])
def test_an_organisation_without_a_template_or_with_the_default_keys_gives_the_prefix(
    org_template: tuple[str, ...] | None,
) -> None:
    repository = Repository(
        "muse-platform", "muse", owner_id=184467302, repo_id=1021473690, created=date(2026, 8, 3),
        org_template=org_template, follows_org_template=True,
    )  # fmt: skip
    answer, organisation = repository.customization(), repository.org_customization()
    prefix = github_subjects.prefix_from_customization("muse-platform/muse", answer, organisation)
    assert (
        prefix == NEW.prefix and repository.token_subject("environment:prod") == f"{prefix}:environment:prod"
    )


def test_negative_control_the_former_check_let_an_organisation_template_through() -> None:
    """Before: only the repository's own claim keys were looked at, so an organisation's template passed."""
    answer = ORG_CUSTOM.customization()
    keys = list(answer.get("include_claim_keys") or [])
    former_refuses = answer.get("use_default") is False and bool(keys) and tuple(keys) != ("repo", "context")
    assert not former_refuses


def test_the_command_takes_the_organisation_s_answer() -> None:
    args = [
        sys.executable,
        "-m",
        "cli.github_subjects",
        "prefix",
        "muse-platform/muse",
        json.dumps([NEW.prefix]),
    ]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*args, *extra], input=json.dumps(ORG_CUSTOM.customization()), capture_output=True, text=True,
            timeout=30, check=False, cwd=REPO_ROOT,
        )  # fmt: skip

    refused = run("--org-template", json.dumps(ORG_CUSTOM.org_customization()))
    assert refused.returncode == 1 and "customised OIDC subject template" in refused.stderr
    assert run("--org-template", "").stdout == NEW.prefix + "\n"  # 404: GitHub's default
    assert run().returncode == 1


def test_a_rename_is_a_migration_by_repository_id_not_a_foreign_repository() -> None:
    renamed = Repository(
        "muse-platform", "muse-app", owner_id=184467302, repo_id=1021473690, created=NEW.created
    )
    # The stack names the new repository; the old name's prefix stays until a run signed in with the new one.
    assert github_subjects.prefix_problems([NEW.prefix, renamed.prefix], "muse-platform/muse-app") == []
    # Negative controls: another repository's prefix (another id) and a legacy prefix of another name.
    other = Repository("muse-platform", "other", owner_id=184467302, repo_id=5, created=NEW.created)
    assert github_subjects.prefix_problems([other.prefix, renamed.prefix], "muse-platform/muse-app") != []
    assert github_subjects.prefix_problems(
        ["repo:muse-platform/muse", renamed.prefix], "muse-platform/muse-app"
    )
