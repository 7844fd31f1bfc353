"""Azure names: deterministic per stack and within Azure's rules."""

from __future__ import annotations

import string

import pytest

from stack.environments import ENVIRONMENTS
from stack.naming import RULES, ResourceNames


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("suffix", ["ab", "m7k2", "abcdefgh", "a1b2c3d4e5f"])
def test_every_name_satisfies_azure_rules(environment: str, suffix: str) -> None:
    names = ResourceNames.for_stack(environment, suffix)
    assert names.problems() == []
    for field, rule in RULES.items():
        name = getattr(names, field)
        assert rule.min_len <= len(name) <= rule.max_len
        assert rule.pattern.match(name), (field, name)


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
        "Key Vault name 'kv-muse-prod-abcdefghijkl' is 25 characters; Azure allows 3-24 (shorten nameSuffix)"
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
