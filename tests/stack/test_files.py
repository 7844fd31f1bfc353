"""Pulumi.yaml declares exactly the keys the program validates; stack files use only declared keys; read_stack
gives both the engine's view of a stack's config and the values exactly as its file sets them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stack.config import StackConfig, pulumi_schema
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT, project_file, read_stack, stack_names


def test_schema_is_derived_from_the_typed_config() -> None:
    # Regenerate with: python -m cli.config schema
    assert project_file()["config"] == pulumi_schema()


def test_schema_declares_every_key_with_a_description_and_marks_required_ones() -> None:
    declared = project_file()["config"]
    assert set(declared) == {field.alias for field in StackConfig.model_fields.values()}
    required = {key for key, entry in declared.items() if "default" not in entry}
    assert required == {"environment", "tier", "owner", "nameSuffix"}
    assert all(entry["description"] for entry in declared.values())


def test_project_runs_python_in_the_makefile_venv() -> None:
    project = project_file()
    assert project["name"] == "muse"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


def test_there_is_one_stack_per_environment() -> None:
    # Every environment of the one list has its stack file, and no stack file is outside the list.
    assert stack_names() == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_stack_file_uses_only_declared_keys(stack: str) -> None:
    declared = set(project_file()["config"])
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    project_keys = {k.split(":", 1)[1] for k in config if k.startswith("muse:")}
    assert project_keys <= declared, project_keys - declared
    assert all(k.startswith(("muse:", "azure-native:", "kubernetes:")) for k in config), config
    assert config["muse:environment"] == stack


def test_read_stack_keeps_the_stack_file_values_as_set_beside_the_engine_strings(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: muse\nconfig:\n  retentionDays:\n    default: 30\n  zones:\n    default: [1]\n"
    )
    (tmp_path / "Pulumi.t.yaml").write_text(
        "config:\n  muse:zones: [1, 2, 3]\n  muse:owner: platform\n  muse:token:\n    secure: v1:abc\n"
        "  azure-native:location: westeurope\n"
    )
    files = read_stack("t", tmp_path, overrides={"muse:owner": None, "muse:alertEmails": ["a@example.com"]})
    # As the file sets them, the overrides applied (None unsets): typed, secrets as set, no project defaults.
    assert files.stack_file_config == {
        "muse:zones": [1, 2, 3],
        "muse:token": {"secure": "v1:abc"},
        "azure-native:location": "westeurope",
        "muse:alertEmails": ["a@example.com"],
    }
    # What the engine hands the program: strings (JSON for structures), defaults filled in, secrets masked.
    assert files.config == {
        "muse:retentionDays": "30",
        "muse:zones": "[1, 2, 3]",
        "muse:token": "offline-placeholder-for-muse-token",
        "azure-native:location": "westeurope",
        "muse:alertEmails": '["a@example.com"]',
    }
    assert files.secret_keys == ["muse:token"]


def test_the_kept_parse_follows_an_edit_and_no_caller_changes_anothers(tmp_path: Path) -> None:
    """The stack files' parses are kept per text (stack/files.py): an edited file reads as edited, and a
    caller that changes what it got changes nobody else's."""
    (tmp_path / "Pulumi.yaml").write_text("name: muse\nconfig:\n  zones:\n    default: [1]\n")
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  muse:zones: [1, 2]\n")
    first = read_stack("t", tmp_path)
    first.stack_file_config["muse:zones"].append(3)
    first.written["muse:extra"] = "x"
    project_file(tmp_path)["config"]["zones"]["default"].append(9)
    again = read_stack("t", tmp_path)
    assert again.stack_file_config == {"muse:zones": [1, 2]}
    assert again.config["muse:zones"] == "[1, 2]"
    assert "muse:extra" not in again.written
    assert project_file(tmp_path)["config"]["zones"]["default"] == [1]
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  muse:zones: [3]\n")
    assert read_stack("t", tmp_path).stack_file_config == {"muse:zones": [3]}


def test_negative_control_a_shared_parse_leaks_one_callers_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the copy, the kept parse itself is handed out and the next reader sees the change."""
    import stack.files

    monkeypatch.setattr(stack.files, "_load", stack.files._parse)
    (tmp_path / "Pulumi.yaml").write_text("name: muse\nconfig:\n  zones:\n    default: [1]\n")
    project_file(tmp_path)["config"]["zones"]["default"].append(9)
    assert project_file(tmp_path)["config"]["zones"]["default"] == [1, 9]
