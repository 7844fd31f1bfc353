"""stack/pulumi_config.py: every `muse:*` key reaches validation, from either place the SDK keeps config.

The two places are the ones the SDK reads in pulumi/runtime/config.py (`get_config`): config set in the
process (`pulumi.runtime.set_all_config`, as Automation API inline programs and the offline engine do) and
the JSON bag the Python language host puts in PULUMI_CONFIG (pulumi/pulumi,
sdk/python/cmd/pulumi-language-python/main.go, `Run`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pulumi.runtime
import pytest
from pulumi.runtime import config as runtime_config

from stack.pulumi_config import project_config


@pytest.fixture(autouse=True)
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = dict(runtime_config.CONFIG.get())
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    pulumi.runtime.set_all_config({})
    yield
    pulumi.runtime.set_all_config(before)


def test_keys_set_in_the_process_are_listed_unknown_ones_included() -> None:
    pulumi.runtime.set_all_config({"muse:environment": "dev", "muse:userNodeCont": "2", "azure:x": "y"})
    assert project_config("muse") == {"muse:environment": "dev", "muse:userNodeCont": "2"}


def test_keys_the_language_host_passes_in_pulumi_config_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps({"muse:environment": "prod", "muse:typo": "1", "a:b": "c"})
    )
    assert project_config("muse") == {"muse:environment": "prod", "muse:typo": "1"}


def test_config_set_in_the_process_wins_like_pulumi_config_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"muse:environment": "prod", "muse:owner": "team"}))
    pulumi.runtime.set_all_config({"muse:environment": "dev"})
    assert project_config("muse") == {"muse:environment": "dev", "muse:owner": "team"}
    assert pulumi.Config("muse").get("environment") == "dev"


def test_the_public_reader_alone_would_miss_keys_set_in_the_process() -> None:
    """Negative control: why the private read exists. Without it a typo set through set_all_config (the
    offline engine's way) would never reach validation."""
    pulumi.runtime.set_all_config({"muse:userNodeCont": "2"})
    assert "muse:userNodeCont" not in pulumi.runtime.get_config_env()
    assert "muse:userNodeCont" in project_config("muse")
