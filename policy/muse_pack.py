"""Muse's policies as pulumi-policy (CrossGuard) policies: one rule set, two engines.

Each policy in `muse.governance.policies.POLICIES` becomes one `ResourceValidationPolicy` that calls the same
`Policy.check` the Muse service runs, so the engines cannot disagree; critical and high are MANDATORY, medium
and low ADVISORY. Secrets reach it masked (policy/secret_masking.py). Environment, tier, unknowns and the
stack check: docs/governance.md#the-policy-pack."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import Severity as PolicySeverity

# Raised when a validator reads a value that is unknown during preview; pulumi-policy exports no public alias
# (pulumi_policy.__all__), so it is imported from the module that raises it (checked against 1.21.0).
from pulumi_policy.proxy import UnknownValueError

from muse.governance.inventory import Inventory, InventoryError, Resource, ResourceOptions, parse_inventory
from muse.governance.policies import POLICIES, SECRET_MARKER, Policy, enforcement
from policy.secret_masking import install_secret_masking

PACK_NAME = "muse-governance"
STACK_POLICY_NAME = "muse-inventory-valid"
EVALUATION_FAILED = "could not be evaluated (unexpected property shape)"
_MAX_DEPTH = 64


def policy_name(policy: Policy) -> str:
    """`MUSE-TAG-001` -> `muse-tag-001` (CrossGuard policy names are lower-case by convention)."""
    return policy.id.lower()


def enforcement_level(policy: Policy) -> EnforcementLevel:
    mandatory = enforcement(policy.severity) == "mandatory"
    return EnforcementLevel.MANDATORY if mandatory else EnforcementLevel.ADVISORY


install_secret_masking()


# ------------------------------------------------------------------------------------------------------
# Engine resource -> Muse resource


def plain(value: Any, path: str = "", secret_paths: list[str] | None = None, depth: int = 0) -> Any:
    """Plain JSON from pulumi-policy's unknown-checking proxies: unknowns become None, ``[secret]`` values
    are recorded in ``secret_paths`` (dotted, list indices as numbers, like the offline inventories)."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, str):
        if value == SECRET_MARKER and secret_paths is not None:
            secret_paths.append(path)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value.keys()):
            try:
                child = value[key]
            except UnknownValueError:
                child = None
            out[str(key)] = plain(child, f"{path}.{key}" if path else str(key), secret_paths, depth + 1)
        return out
    if isinstance(value, Sequence):
        items = []
        for index in range(len(value)):
            try:
                child = value[index]
            except UnknownValueError:
                child = None
            items.append(plain(child, f"{path}.{index}" if path else str(index), secret_paths, depth + 1))
        return items
    return value


def stack_of(urn: str) -> str:
    """`urn:pulumi:dev::muse::type::name` -> `dev`."""
    head = urn.split("::", 1)[0]
    return head.split(":", 2)[2] if head.count(":") >= 2 else ""


# The Muse project's stack files, beside this pack in the repository (`pulumi preview --policy-pack policy`
# runs from the project directory with this repository checked out).
STACK_FILES = Path(__file__).resolve().parent.parent


def tier_of(stack: str, root: Path = STACK_FILES) -> str:
    """The stack's declared `muse:tier` from its stack file; production when the file or key is missing, so
    an unknown stack gets the stricter rules, never quietly weaker ones."""
    path = root / f"Pulumi.{stack}.yaml"
    try:
        return _declared_tier(path.read_text())
    except (OSError, yaml.YAMLError):
        return "production"


@functools.lru_cache(maxsize=16)  # asked once per resource and policy: parse each file's text once
def _declared_tier(text: str) -> str:
    config = (yaml.safe_load(text) or {}).get("config") or {}
    tier = config.get("muse:tier")
    return tier if tier in ("production", "development") else "production"


def project_of(urn: str) -> str:
    parts = urn.split("::")
    return parts[1] if len(parts) > 1 else ""


def to_resource(resource_type: str, urn: str, name: str, props: Any, opts: Any = None) -> Resource:
    """A Muse resource; `opts` (the engine's PolicyResourceOptions) gives `protect` and `ignoreChanges`, as
    the offline inventories record them."""
    secret_paths: list[str] = []
    properties = plain(props, "", secret_paths)
    options = (
        ResourceOptions(
            protect=bool(getattr(opts, "protect", False)),
            ignoreChanges=[str(c) for c in getattr(opts, "ignore_changes", None) or []],
        )
        if opts is not None
        else ResourceOptions()
    )
    return Resource(
        urn=urn,
        type=resource_type,
        name=name,
        properties=properties if isinstance(properties, dict) else {},
        secretPaths=sorted(secret_paths),
        options=options,
    )


def inventory_of(resources: list[Resource], urn: str) -> Inventory:
    stack = stack_of(urn)
    return Inventory(
        schemaVersion=1,
        project=project_of(urn),
        stack=stack,
        environment=stack or "unknown",
        tier=tier_of(stack),
        resources=resources,
    )


def _validator(policy: Policy) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = to_resource(args.resource_type, args.urn, args.name, args.props, args.opts)
        if not policy.applies(resource):
            return
        try:
            messages = policy.check(resource, inventory_of([resource], args.urn))
        except Exception:  # fail closed, exactly like muse.governance.evaluate
            messages = [EVALUATION_FAILED]
        for message in messages:
            report_violation(f"[{policy.id}] {message}. Fix: {policy.remediation}", None)

    return validate


def _validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resources:
        return
    resources = []
    for r in args.resources:
        properties = plain(r.props, "", [])
        resources.append(
            {
                "urn": r.urn,
                "type": r.resource_type,
                "name": r.name,
                "properties": properties if isinstance(properties, dict) else {},
            }
        )
    urn = args.resources[0].urn
    try:
        parse_inventory(
            {
                "schemaVersion": 1,
                "project": project_of(urn),
                "stack": stack_of(urn),
                "environment": stack_of(urn) or "unknown",
                "resources": resources,
            }
        )
    except InventoryError as exc:
        report_violation(f"the stack is not a valid Muse inventory: {exc}", None)


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    policies: list[ResourceValidationPolicy | StackValidationPolicy] = [
        ResourceValidationPolicy(
            name=policy_name(p),
            description=f"{p.id}: {p.title}",
            validate=_validator(p),
            enforcement_level=enforcement_level(p),
            severity=PolicySeverity(p.severity.value),
            remediation_steps=p.remediation,
            tags=["muse", p.id.split("-")[1].lower()],
        )
        for p in POLICIES
    ]
    policies.append(
        StackValidationPolicy(
            name=STACK_POLICY_NAME,
            description="The stack's resources form a valid Muse inventory (schema v1)",
            validate=_validate_stack,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    )
    return policies
