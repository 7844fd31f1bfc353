"""Reads Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program.

Used by the offline engine, and by the bootstrap program, which deploys the landing zone of every
environment from the same stack files the environments use.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StackFiles:
    project: str
    stack: str
    config: dict[str, str]  # "muse:key" -> value as the engine passes it (strings; arrays as JSON)
    secret_keys: list[str]
    # "muse:key" -> value exactly as Pulumi.<stack>.yaml (and the overrides) set it: typed YAML values,
    # secrets as their `secure:` mapping, no Pulumi.yaml defaults. The Bicep parameter files are written
    # from these.
    stack_file_config: dict[str, Any]
    # "muse:key" -> the text of an unquoted scalar as written in the file ("1.30"), which a YAML number
    # loses: what a message quotes back to the person.
    written: dict[str, str] = field(default_factory=dict)


def project_file(root: Path = REPO_ROOT) -> dict[str, Any]:
    data: dict[str, Any] = _load((root / "Pulumi.yaml").read_text())
    return data


# Every offline run, test and policy check reads the stack files again (a few hundred times per test run)
# and pure-Python PyYAML takes ~10 ms for Pulumi.yaml. The parse is kept per text, so an edited file is
# parsed afresh; each caller gets its own copy to change (docs/benchmarks.md, "Test loop").
@functools.lru_cache(maxsize=64)
def _parse(text: str) -> Any:
    return yaml.safe_load(text)


def _load(text: str) -> Any:
    return copy.deepcopy(_parse(text))


def stack_names(root: Path = REPO_ROOT) -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))


def _as_engine_string(value: Any) -> str:
    # The engine passes every config value as a string; structured values as JSON text.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def read_stack(stack: str, root: Path = REPO_ROOT, overrides: dict[str, Any] | None = None) -> StackFiles:
    """Config of `stack` with Pulumi.yaml defaults filled in, like `pulumi up` does.

    `secure:` values cannot be decrypted offline (the key lives in Azure Key Vault); they are replaced by a
    placeholder and still marked secret, so the program sees the same shape as in a real run.
    """
    project = project_file(root)
    name = project["name"]
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}; stacks here: {', '.join(stack_names(root))}")
    text = path.read_text()
    stack_config: dict[str, Any] = (_load(text) or {}).get("config") or {}
    if overrides:
        stack_config = {**stack_config, **overrides}
    # An override of None unsets the key, like `pulumi config rm`.
    as_set = {key: value for key, value in stack_config.items() if value is not None}

    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, declared in (project.get("config") or {}).items():
        if isinstance(declared, dict) and "default" in declared:
            values[f"{name}:{key}"] = _as_engine_string(declared["default"])
    for key, value in stack_config.items():
        if value is None:
            values.pop(key, None)
            continue
        if isinstance(value, dict) and "secure" in value:
            placeholder = f"offline-placeholder-for-{key.replace(':', '-')}"
            declared = (project.get("config") or {}).get(key.partition(":")[2]) or {}
            # An array (e.g. webhook URLs) keeps its shape: one placeholder URL item.
            is_array = isinstance(declared, dict) and declared.get("type") == "array"
            values[key] = json.dumps([f"https://{placeholder}.invalid/"]) if is_array else placeholder
            secret_keys.append(key)
        else:
            values[key] = _as_engine_string(value)
    return StackFiles(
        project=name,
        stack=stack,
        config=values,
        secret_keys=secret_keys,
        stack_file_config=as_set,
        written=dict(_plain_scalars(text)),
    )


@functools.lru_cache(maxsize=64)
def _plain_scalars(text: str) -> dict[str, str]:
    """`config:` keys whose value is an unquoted scalar -> its source text (yaml.compose keeps it)."""
    root = yaml.compose(text)
    found: dict[str, str] = {}
    if not isinstance(root, yaml.MappingNode):
        return found
    for key, value in root.value:
        if key.value == "config" and isinstance(value, yaml.MappingNode):
            for name, scalar in value.value:
                if isinstance(scalar, yaml.ScalarNode) and scalar.style is None:
                    found[str(name.value)] = str(scalar.value)
    return found
