"""Pulumi.yaml declares exactly the keys the program validates; stack files use only declared keys."""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

import pytest
import yaml

from components.config import StackConfig
from offline.stack_files import REPO_ROOT, project_file, stack_names


def _pulumi_type(annotation: Any) -> str:
    if get_origin(annotation) is tuple:
        return "array"
    if annotation is bool:
        return "boolean"
    if annotation is int or (get_origin(annotation) is Annotated and get_args(annotation)[0] is int):
        return "integer"
    return "string"


def test_schema_matches_the_typed_config() -> None:
    declared = project_file()["config"]
    fields = {field.alias: field for field in StackConfig.model_fields.values()}
    assert set(declared) == set(fields)
    for key, field in fields.items():
        entry = declared[key]
        assert entry["type"] == _pulumi_type(field.annotation), key
        assert entry["description"] == field.description, key
        if field.is_required():
            assert "default" not in entry, f"{key} is required in code but has a default in Pulumi.yaml"
        else:
            default = list(field.default) if isinstance(field.default, tuple) else field.default
            assert entry["default"] == default, key


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
