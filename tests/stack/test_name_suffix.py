"""Each installation's own nameSuffix: registry, Key Vault and storage account names are global across Azure
(stack/naming.py), so a fork that keeps the committed stack files must not reuse this repository's suffix.
The owner keeps its deployed suffix (renaming replaces every resource); a fork is refused before anything is
registered and told the suffix derived from its own repository (stack/naming.py derived_suffix)."""

from __future__ import annotations

import re

import pytest

from stack import naming
from stack.config import ConfigError, load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack

FORK = "someone-else/muse"
FORK_PREFIXES = [f"repo:{FORK}"]


def _fork_config(stack: str, **overrides: object) -> dict[str, object]:
    values = dict(read_stack(stack).config)
    values |= {"muse:githubRepository": FORK, "muse:githubSubjectPrefixes": FORK_PREFIXES}
    values |= {f"muse:{k}": v for k, v in overrides.items()}
    return values


def test_the_committed_suffix_is_this_repositorys_claim() -> None:
    # The deployed names stay: the committed suffix is claimed by the committed repository, and loads.
    for stack in ENVIRONMENTS:
        config = read_stack(stack).config
        assert naming.CLAIMED_SUFFIXES[config["muse:nameSuffix"]] == config["muse:githubRepository"]
        assert load_stack_config(stack, config).name_suffix == "m7k2"


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_a_fork_keeping_the_committed_suffix_is_refused_with_its_own(stack: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_stack_config(stack, _fork_config(stack))
    message = str(refused.value)
    own = naming.derived_suffix(FORK)
    assert "muse:nameSuffix" in message and "muse-platform/muse" in message and f"'{own}'" in message
    # Following the message works: the derived suffix loads.
    assert load_stack_config(stack, _fork_config(stack, nameSuffix=own)).name_suffix == own


def test_negative_control_without_the_claim_the_fork_would_collide_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(naming, "CLAIMED_SUFFIXES", {})
    assert load_stack_config("dev", _fork_config("dev")).name_suffix == "m7k2"


def test_the_claim_ignores_case_as_github_does() -> None:
    assert naming.suffix_claim_problem("m7k2", "Muse-Platform/Muse") == ""
    assert naming.suffix_claim_problem("m7k2", "muse-platform/muse-fork") != ""
    assert naming.suffix_claim_problem("zz99", FORK) == ""  # an unclaimed suffix is the fork's own choice


@pytest.mark.parametrize(
    "repository", ["muse-platform/muse", FORK, "a/b", "Org-With-A-Long-Name/repo.name_x"]
)
def test_a_derived_suffix_is_stable_distinct_and_valid_for_every_name(repository: str) -> None:
    suffix = naming.derived_suffix(repository)
    assert suffix == naming.derived_suffix(repository.upper())  # deterministic, case-insensitive
    assert re.fullmatch(r"[a-z][a-z0-9]{5}", suffix)  # the config's pattern ^[a-z0-9]{2,16}$ and more
    for environment in ENVIRONMENTS:
        assert naming.ResourceNames.for_stack(environment, suffix).problems() == []
    assert suffix not in naming.CLAIMED_SUFFIXES


def test_derived_suffixes_differ_between_repositories() -> None:
    repositories = [f"owner{i}/muse" for i in range(500)]
    assert len({naming.derived_suffix(r) for r in repositories}) == len(repositories)


def test_a_renamed_repository_loads_once_its_claim_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rename or transfer: the stack files name the new owner/name and keep the deployed suffix; the claim
    # in stack/naming.py moves with it (docs/github-setup.md).
    renamed = "muse-platform/muse-service"
    values = _fork_config("prod") | {
        "muse:githubRepository": renamed,
        "muse:githubSubjectPrefixes": [f"repo:{renamed}"],
    }
    monkeypatch.setitem(naming.CLAIMED_SUFFIXES, "m7k2", renamed)
    assert load_stack_config("prod", values).name_suffix == "m7k2"


def test_negative_control_a_rename_without_moving_the_claim_is_refused() -> None:
    renamed = "muse-platform/muse-service"
    values = _fork_config("prod") | {
        "muse:githubRepository": renamed,
        "muse:githubSubjectPrefixes": [f"repo:{renamed}"],
    }
    with pytest.raises(
        ConfigError, match=f"names the deployed resources of {naming.CLAIMED_SUFFIXES['m7k2']}"
    ):
        load_stack_config("prod", values)
