"""Every `<project>:*` config value the engine hands the program: public SDK APIs plus one private read.

The program validates its config as a whole, so an unknown key (usually a typo) is reported, and that needs
every key; `pulumi.Config` cannot list keys. The one private access, `_keys_set_in_process`, fails loudly if
a Pulumi upgrade moves it. Where the keys are: docs/architecture/code.md#reading-every-config-key."""

from __future__ import annotations

from typing import Any

import pulumi.runtime


def _keys_set_in_process() -> set[str]:
    # Private: pulumi.runtime.config.CONFIG is not among pulumi.runtime's public names (module docstring).
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get())


def project_config(project: str) -> dict[str, Any]:
    """`{"<project>:<key>": value}` for every key of `project` the engine passed, declared or not."""
    keys = set(pulumi.runtime.get_config_env()) | _keys_set_in_process()
    return {key: pulumi.runtime.get_config(key) for key in sorted(keys) if key.startswith(f"{project}:")}


def stack_config() -> dict[str, Any]:
    """Every key of every namespace the engine passed: the program's own (`project_config`) and others, so a
    near miss of the project's namespace (`mues:replicas`) can be reported instead of silently ignored."""
    keys = set(pulumi.runtime.get_config_env()) | _keys_set_in_process()
    return {key: pulumi.runtime.get_config(key) for key in sorted(keys)}
