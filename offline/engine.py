"""Run `__main__.py` for one stack under the offline mocks and record what it would deploy."""

from __future__ import annotations

import runpy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import rpc

from muse.governance.policies import SECRET_MARKER, get_path
from muse.resource_types import PULUMI_STACK
from offline.mocks import OfflineMocks
from stack.files import REPO_ROOT, read_stack

# The mask that replaces secret values: the marker Muse's policies read as "this input is a Pulumi secret".
SECRET = SECRET_MARKER


@dataclass(frozen=True)
class PlannedResource:
    """One resource as the program registered it: inputs (secrets masked), parent and options."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    properties: dict[str, Any]
    secret_paths: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    provider: str | None = None
    # `customTimeouts` the program set (create/update/delete -> duration, e.g. "10m"); only the ones set.
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    # The names of the `aliases` the program gave (alias specs; the monitor supports them, so the SDK sends
    # specs, not URNs: pulumi/runtime/resource.py).
    alias_names: tuple[str, ...] = ()
    # Pulumi `protect`: the engine refuses to delete or replace the resource.
    protect: bool = False
    # The type tokens of the resource's aliases (the program's and the SDK's): what older state may call it.
    alias_types: tuple[str, ...] = ()

    def get(self, dotted: str, default: Any = None) -> Any:
        """`resource.get("sku.name")`: a nested input by dotted path; list items by index."""
        return get_path(self.properties, dotted, default)


@dataclass(frozen=True)
class StackOutput:
    value: Any
    secret: bool


@dataclass
class OfflinePlan:
    project: str
    stack: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, StackOutput] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> PlannedResource:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_token} {name or ''}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> PlannedResource:
        return next(r for r in self.resources if r.urn == urn)

    def children(self, parent_urn: str | None) -> list[PlannedResource]:
        return sorted((r for r in self.resources if r.parent == parent_urn), key=lambda r: (r.type, r.name))

    def counts_by_type(self) -> Counter[str]:
        return Counter(r.type for r in self.resources)

    def to_inventory(self, environment: str, tier: str = "production") -> dict[str, Any]:
        """The plan as a Muse resource inventory (schema v1, see muse/governance); `tier` is the stack's
        `muse:tier` (production when not given, as the inventory's own default: never quietly weaker)."""
        return {
            "schemaVersion": 1,
            "project": self.project,
            "stack": self.stack,
            "environment": environment,
            "tier": tier,
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent,
                    "custom": r.custom,
                    "properties": r.properties,
                    "secretPaths": list(r.secret_paths),
                    "options": {
                        "ignoreChanges": list(r.ignore_changes),
                        "dependsOn": list(r.depends_on),
                        "protect": r.protect,
                    },
                }
                for r in sorted(self.resources, key=lambda r: r.urn)
            ],
        }


def _urn_type(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def _parent_urn(parent: str) -> str | None:
    # Top-level components are parented to the implicit Stack; the plan treats them as roots.
    return parent if parent and _urn_type(parent) != PULUMI_STACK else None


def _normalize(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Inputs as plain JSON: secrets masked (paths recorded), integral numbers as ints (the wire format
    carries every number as a double)."""
    if rpc.is_rpc_secret(value):
        secret_paths.append(path)
        return SECRET
    if isinstance(value, dict):
        return {
            k: _normalize(v, f"{path}.{k}" if path else k, secret_paths)
            for k, v in sorted(value.items())
            if not k.startswith("__")
        }
    if isinstance(value, list):
        return [_normalize(v, f"{path}.{i}", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _custom_timeouts(request: Any) -> dict[str, str]:
    timeouts = request.customTimeouts
    return {
        kind: getattr(timeouts, kind) for kind in ("create", "update", "delete") if getattr(timeouts, kind)
    }


class RecordingMonitor(runtime_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent, options and secret paths."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[PlannedResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != PULUMI_STACK:
            secret_paths: list[str] = []
            properties = _normalize(rpc.deserialize_properties(request.object), "", secret_paths)
            self.recorded.append(
                PlannedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=_parent_urn(request.parent),
                    custom=bool(request.custom),
                    properties=properties,
                    secret_paths=tuple(sorted(secret_paths)),
                    ignore_changes=tuple(request.ignoreChanges),
                    depends_on=tuple(sorted(request.dependencies)),
                    provider=request.provider or None,
                    custom_timeouts=_custom_timeouts(request),
                    alias_names=tuple(sorted(a.spec.name for a in request.aliases if a.spec.name)),
                    protect=bool(request.protect),
                    alias_types=tuple(
                        alias.spec.type
                        for alias in request.aliases
                        if alias.HasField("spec") and alias.spec.type
                    ),
                )
            )
        return response


def run_offline(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    monitor: RecordingMonitor | None = None,
) -> OfflinePlan:
    """Run `program` (a whole Pulumi program, or a few components in a test) under the offline mocks.

    Pass a `monitor` to inspect what was registered even when the program raises.
    """
    monitor = monitor or RecordingMonitor(OfflineMocks(stack))
    # Public SDK entry points only: reset_options starts a fresh settings bag (new RPC manager, no pending
    # outputs, no root Stack) so several stacks run in one process and a failed run leaves nothing behind;
    # set_mocks then creates the run's root Stack; runtime.test runs the program and waits for every RPC.
    pulumi.runtime.reset_options(project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(config or {}, secret_keys or [])
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    root_stack = pulumi.runtime.get_root_resource()
    outputs: dict[str, StackOutput] = {}

    def record(name: str, value: Any) -> pulumi.Output[None]:
        output = pulumi.Output.from_input(value)
        is_secret: pulumi.Output[bool] = pulumi.Output.from_input(output.is_secret())  # an awaitable input
        return pulumi.Output.all(output, is_secret).apply(
            lambda resolved: outputs.__setitem__(name, StackOutput(resolved[0], secret=bool(resolved[1])))
        )

    @pulumi.runtime.test
    def run_program() -> pulumi.Output[Any]:
        program()
        # pulumi.export() keeps each stack output on the root Stack resource.
        exported = getattr(root_stack, "outputs", {})
        return pulumi.Output.all(*(record(name, value) for name, value in exported.items()))

    run_program()
    return OfflinePlan(
        project=project,
        stack=stack,
        resources=sorted(monitor.recorded, key=lambda r: r.urn),
        outputs=dict(sorted(outputs.items())),
    )


def run_stack(
    stack: str,
    *,
    root: Path = REPO_ROOT,
    overrides: dict[str, Any] | None = None,
    monitor: RecordingMonitor | None = None,
) -> OfflinePlan:
    """Run the whole program (`__main__.py`) for `stack` offline, with the config of its stack file.

    `overrides` replace stack config values (None removes one). Raises whatever the program raises, e.g.
    `pulumi.RunError` for invalid config.
    """
    files = read_stack(stack, root, overrides)

    def main_program() -> None:
        # The program imports the project's packages, installed editable into .venv (pyproject.toml).
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    return run_offline(
        main_program,
        project=files.project,
        stack=stack,
        config=files.config,
        secret_keys=files.secret_keys,
        monitor=monitor or RecordingMonitor(OfflineMocks(stack)),
    )
