"""The resource inventory: what the offline engine records about every resource of a Pulumi stack.

Unknown fields are kept (``extra="allow"``) so that a newer producer does not break an older Muse; a wrong
shape (missing field, wrong type, unsupported schemaVersion) is an :class:`InventoryError` with one line per
problem, never an exception from deep inside a policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

SCHEMA_VERSION = 1


class InventoryError(ValueError):
    """The inventory cannot be read or does not have the expected shape."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        base = super().__str__()
        if not self.problems:
            return base
        return base + "\n" + "\n".join(f"  {p}" for p in self.problems)


class _Model(BaseModel):
    # strict: a number where a string belongs is a producer bug worth reporting, not something to coerce.
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class ResourceOptions(_Model):
    ignoreChanges: list[str] = Field(default_factory=list)
    protect: bool = False


class Resource(_Model):
    urn: str = Field(min_length=1)
    type: str = Field(min_length=1)
    name: str
    parent: str | None = None
    custom: bool = True
    properties: dict[str, Any] = Field(default_factory=dict)
    secretPaths: list[str] = Field(default_factory=list)
    options: ResourceOptions = Field(default_factory=ResourceOptions)


class Inventory(_Model):
    schemaVersion: Literal[1]
    project: str
    stack: str
    environment: str = Field(min_length=1)
    # What the stack is (its `muse:tier`): the rules that differ between environments read this, never the
    # environment's name. An inventory that does not say gets the production rules: never quietly weaker.
    tier: Literal["production", "development"] = "production"
    resources: list[Resource]


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def validation_problems(exc: ValidationError) -> list[str]:
    """One readable line per problem; the offending input is deliberately not echoed (it may be a secret)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        problems.append(f"{_format_loc(tuple(err['loc']))}: {err['msg']}")
    return problems


def parse_inventory(data: Any) -> Inventory:
    """Validate already-decoded JSON."""
    if not isinstance(data, dict):
        raise InventoryError(f"invalid inventory: expected a JSON object, got {type(data).__name__}")
    version = data.get("schemaVersion")
    if version is not None and version != SCHEMA_VERSION:
        raise InventoryError(
            f"invalid inventory: unsupported schemaVersion {version!r} (this Muse reads {SCHEMA_VERSION})"
        )
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventoryError("invalid inventory:", validation_problems(exc)) from None


def decode_inventory(raw: bytes | bytearray | str) -> Inventory:
    """Decode and validate JSON text; every failure is an InventoryError whose message names no internals.

    pydantic-core's parser (jiter) rather than the json module: it refuses what Python's would turn into a
    crash later on, each with a plain message and position: a lone surrogate (``"\\ud800"``, which the json
    module accepts and the UTF-8 response encoder then cannot write), nesting beyond its recursion limit
    (200; the json module raises RecursionError), invalid UTF-8 and out-of-range numbers. NaN and Infinity
    literals are refused too (``allow_inf_nan=False``): JSON has none and responses must stay valid JSON.
    """
    try:
        data = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        # jiter's message is its own description and position ("recursion limit exceeded at line 1 column
        # 202"); capped anyway, so the detail never grows with the input.
        raise InventoryError(f"malformed JSON: {str(exc)[:200]}") from None
    return parse_inventory(data)


def load_inventory(path: str | Path) -> Inventory:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc.strerror or exc}") from None
    try:
        return decode_inventory(raw)
    except InventoryError as exc:
        raise InventoryError(f"{path}: {exc.args[0]}", exc.problems) from None
