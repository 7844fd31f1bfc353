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
    args = [sys.executable, "-m", "rbac.github_subjects", "prefix", "muse-platform/muse"]
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
    for stack in ("dev", "prod"):
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
