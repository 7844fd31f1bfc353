"""The offline plans the export is generated from, with what the mocks answered for each resource.

The plan records each resource's *inputs*; the exporter also needs the values Azure computes (ids, principal
ids, the OIDC issuer URL) to recognise a reference between two resources and write it as a symbolic reference
(`registry.id`) instead of a pasted value. `CapturingMocks` keeps the offline mocks' answers per resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pulumi

from offline.engine import OfflinePlan, PlannedResource, RecordingMonitor, run_stack
from offline.mocks import OfflineMocks
from stack.config import StackConfig, load_stack_config
from stack.files import REPO_ROOT, read_stack, stack_names


class CapturingMocks(OfflineMocks):
    """The offline mocks, also keeping each resource's outputs by (type token, logical name)."""

    def __init__(self, stack: str, **answers: Any) -> None:
        super().__init__(stack, **answers)
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        key = (args.typ, args.name)
        if key in self.outputs:
            raise ValueError(
                f"two resources of type {args.typ} are named {args.name!r}; the export needs unique names"
            )
        self.outputs[key] = {**outputs, "id": resource_id}
        return resource_id, outputs


@dataclass
class StackPlan:
    """One stack's plan, its raw config (as the stack files set it) and each resource's mocked outputs."""

    stack: str
    plan: OfflinePlan
    stack_config: dict[str, Any]  # keys without `muse:`, exactly as Pulumi.<stack>.yaml sets them
    config: StackConfig  # the validated config the program ran with (defaults filled in)
    outputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    label: str = ""  # the stack, or `<stack>+<variant>` for a config variant

    def __post_init__(self) -> None:
        self.label = self.label or self.stack

    def outputs_of(self, resource: PlannedResource) -> dict[str, Any]:
        return self.outputs.get((resource.type, resource.name), {})


def plan_stack(stack: str, overrides: dict[str, Any] | None = None, label: str = "") -> StackPlan:
    """`stack`'s plan, run now: it sees the program as it is at this moment (a test may have patched it).
    Callers that want the committed stack's plan and may share it take `committed_plan`."""
    return _plan_stack(stack, overrides, label)


@cache
def committed_plan(stack: str) -> StackPlan:
    """`stack`'s plan with its stack file as committed: the export, the access model and the tests' session
    fixture share it, since each whole-program run costs about a second of CPU."""
    return _plan_stack(stack, None, "")


def _plan_stack(stack: str, overrides: dict[str, Any] | None, label: str) -> StackPlan:
    mocks = CapturingMocks(stack)
    plan = run_stack(stack, overrides=overrides, monitor=RecordingMonitor(mocks))
    files = read_stack(stack, overrides=overrides)
    # The keys without their namespace (`muse:`), as the Bicep parameters are named.
    config = {key.split(":", 1)[1]: value for key, value in files.stack_file_config.items()}
    parsed = load_stack_config(stack, files.config)
    return StackPlan(
        stack=stack, plan=plan, stack_config=config, config=parsed, outputs=mocks.outputs, label=label
    )


@cache
def stacks() -> tuple[str, ...]:
    return tuple(stack_names())


# Config variants the export also plans, so that resources the program creates only for some config (none
# of the stack files sets) get their Bicep `if` condition: (stack, overrides).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "image-push-identity": ("dev", {"muse:imagePushPrincipalId": "11111111-2222-4333-8444-555555555555"}),
    "image-import-identity": ("dev", {"muse:imageImportPrincipalId": "11111111-2222-4333-8444-666666666666"}),
    # Not a conditional resource, but the only way to see the action group's e-mail receivers (a Bicep
    # `for`) proven equivalent: neither stack file sets alertEmails.
    "alert-emails": ("prod", {"muse:alertEmails": ["oncall@example.com", "platform@example.com"]}),
}


@cache
def all_plans() -> tuple[StackPlan, ...]:
    """Every stack's plan, then every variant's (computed once per process)."""
    plans = [committed_plan(stack) for stack in stacks()]
    for name, (stack, overrides) in VARIANTS.items():
        plans.append(plan_stack(stack, overrides, label=f"{stack}+{name}"))
    return tuple(plans)


@cache
def bootstrap_plan() -> tuple[OfflinePlan, dict[tuple[str, str], dict[str, Any]]]:
    """The bootstrap project's plan (bootstrap/, committed) and what the mocks answered for each resource:
    the access model, the export's governance sources and the tests share one run per process."""
    mocks = CapturingMocks("main")
    plan = run_stack("main", root=REPO_ROOT / "bootstrap", monitor=RecordingMonitor(mocks))
    return plan, mocks.outputs


__all__ = [
    "CapturingMocks",
    "StackPlan",
    "all_plans",
    "bootstrap_plan",
    "committed_plan",
    "plan_stack",
    "read_stack",
    "stacks",
]
