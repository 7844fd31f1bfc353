"""Pulumi.yaml declares exactly the keys the program validates; stack files use only declared keys."""

from __future__ import annotations

import pytest
import yaml

from stack.config import StackConfig, pulumi_schema
from stack.files import REPO_ROOT, project_file, stack_names


def test_schema_is_derived_from_the_typed_config() -> None:
    # Regenerate with: python -m stack.config schema
    assert project_file()["config"] == pulumi_schema()


def test_schema_declares_every_key_with_a_description_and_marks_required_ones() -> None:
    declared = project_file()["config"]
    assert set(declared) == {field.alias for field in StackConfig.model_fields.values()}
    required = {key for key, entry in declared.items() if "default" not in entry}
    assert required == {"environment", "owner", "nameSuffix"}
    assert all(entry["description"] for entry in declared.values())


def test_project_runs_python_in_the_makefile_venv() -> None:
    project = project_file()
    assert project["name"] == "muse"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


def test_there_is_one_stack_per_environment() -> None:
    assert stack_names() == ["dev", "prod"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_file_uses_only_declared_keys(stack: str) -> None:
    declared = set(project_file()["config"])
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    project_keys = {k.split(":", 1)[1] for k in config if k.startswith("muse:")}
    assert project_keys <= declared, project_keys - declared
    assert all(k.startswith(("muse:", "azure-native:", "kubernetes:")) for k in config), config
    assert config["muse:environment"] == stack
