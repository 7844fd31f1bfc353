"""Azure names: deterministic per stack and within Azure's rules."""

from __future__ import annotations

import string

import pytest

from stack.config import ConfigError, load_stack_config
from stack.environments import ENVIRONMENTS
from stack.naming import RULES, ResourceNames, derived_suffix


def longest_suffix(environment: str) -> int:
    """The longest suffix whose names all fit Azure's rules for `environment` (0 when none does)."""
    return max(
        (n for n in range(1, 25) if not ResourceNames.for_stack(environment, "a" * n).problems()), default=0
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_name_satisfies_azure_rules(environment: str) -> None:
    # Every listed environment leaves room for a derived suffix (naming.derived_suffix: 6 characters).
    room = longest_suffix(environment)
    assert room >= len(derived_suffix("owner/repo")), (environment, room)
    for suffix in ["ab", "m7k2", "a1b2c3", "a1b2c3d4e5f"[:room]]:
        names = ResourceNames.for_stack(environment, suffix)
        assert names.problems() == []
        for field, rule in RULES.items():
            name = getattr(names, field)
            assert rule.min_len <= len(name) <= rule.max_len
            assert rule.pattern.match(name), (field, name)


def test_negative_control_a_long_environment_name_is_refused_with_the_fix() -> None:
    """An environment name the config grammar accepts (up to 10 characters) can still make a derived name too
    long for Azure: the names' check names it, whatever the environment is called."""
    fix = "(shorten nameSuffix or the environment's name: the name is built from both)"
    problems = ResourceNames.for_stack("production", "a1b2c3").problems()
    assert problems == [
        f"Key Vault name 'kv-muse-production-a1b2c3' is 25 characters; Azure allows 3-24 {fix}",
        f"action group short name name 'muse-production' is 15 characters; Azure allows 1-12 {fix}",
    ]
    assert longest_suffix("production") == 0
    # The stack's config refuses it before any resource is registered, in its one message.
    values = {
        "environment": "production",
        "tier": "production",
        "owner": "platform-team",
        "nameSuffix": "a1b2c3",
    }
    with pytest.raises(ConfigError) as refused:
        load_stack_config("production", {f"muse:{k}": v for k, v in values.items()})
    assert all(problem in str(refused.value) for problem in problems), str(refused.value)


def test_names_are_deterministic_and_distinct_per_environment() -> None:
    assert ResourceNames.for_stack("dev", "m7k2") == ResourceNames.for_stack("dev", "m7k2")
    dev, prod = ResourceNames.for_stack("dev", "m7k2"), ResourceNames.for_stack("prod", "m7k2")
    shared = {k for k in vars(dev) if vars(dev)[k] == vars(prod)[k]}
    assert shared == {"service_account"}  # the same name, in a different namespace per environment


def test_registry_name_is_alphanumeric_only() -> None:
    name = ResourceNames.for_stack("prod", "m7k2").registry
    assert set(name) <= set(string.ascii_lowercase + string.digits)
    assert name == "acrmuseprodm7k2"


def test_key_vault_limit_is_reported_with_the_fix() -> None:
    problems = ResourceNames.for_stack("prod", "abcdefghijkl").problems()
    assert problems == [
        "Key Vault name 'kv-muse-prod-abcdefghijkl' is 25 characters; Azure allows 3-24 (shorten nameSuffix "
        "or the environment's name: the name is built from both)"
    ]


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("registry", "acr-muse"),  # hyphen
        ("registry", "acr1"),  # too short
        ("key_vault", "kv--muse"),  # consecutive hyphens
        ("key_vault", "1kv-muse"),  # must start with a letter
        ("cluster_dns_prefix", "muse-"),  # must end alphanumeric
        ("cluster_dns_prefix", "m" * 55),  # too long
    ],
)
def test_rules_reject_what_azure_rejects(field: str, bad: str) -> None:
    rule = RULES[field]
    assert not (rule.min_len <= len(bad) <= rule.max_len and rule.pattern.match(bad))
