"""Every `<project>:*` config value the engine hands the program: public SDK APIs plus one private read.

The program validates its config as a whole so that an unknown key (usually a typo) is reported instead of
silently ignored, and that needs every key, not only the declared ones. `pulumi.Config` reads one known key
at a time and cannot list keys. Where the keys are:

- `pulumi up` / `pulumi preview`: the Python language host passes the stack's whole config as JSON in the
  environment variable PULUMI_CONFIG (pulumi/pulumi, sdk/python/cmd/pulumi-language-python/main.go, `Run`);
  `pulumi.runtime.get_config_env()` is the SDK's public reader of it.
- config set inside the process with the public `pulumi.runtime.set_all_config` (Automation API inline
  programs, pulumi/sdk/python/lib/pulumi/automation/_server.py; the offline engine, offline/engine.py): the
  SDK keeps it in the context variable `pulumi.runtime.config.CONFIG`, which has no public reader. Listing
  its keys is the one private access, in `_keys_set_in_process`; if a Pulumi upgrade moves it, that function
  fails loudly (tests/stack/test_pulumi_config.py) instead of unknown keys going unreported.

Values are read with `pulumi.runtime.get_config`, the function `pulumi.Config` itself uses.
"""

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
