"""Bicep values and their text: the small, fixed subset of Bicep the exporter writes.

Values are plain Python (dict, list, str, int, bool, None) plus `Expr` (a Bicep expression written as is) and
`Cond` (a ternary). Rendering is deterministic. Conditions of ternaries are always parenthesised: the real
Bicep compiler does not need it, but pycep-parser (used to verify the file here) gives `?:` a higher
precedence than `==`/`&&` without the parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INDENT = "  "
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Expr:
    """A Bicep expression, e.g. `registry.id` or `tags`."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Cond:
    """`(condition) ? if_true : if_false`."""

    condition: str
    if_true: Any
    if_false: Any


@dataclass(frozen=True)
class For:
    """`[for (item, index) in source: body]`; `body` may use Expr(item) and Expr(index)."""

    item: str
    index: str
    source: str
    body: Any
    # Parameters (export.mapping.Param) the source reads that no other binding declares.
    declares: tuple[Any, ...] = ()


def string(value: str) -> str:
    """A Bicep string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


def interpolated(parts: Sequence[str | Expr]) -> Expr:
    """'literal${expr}literal' from literal strings and expressions; a lone expression stays bare."""
    if len(parts) == 1 and isinstance(parts[0], Expr):
        return parts[0]
    text = "".join(f"${{{p.text}}}" if isinstance(p, Expr) else string(p)[1:-1] for p in parts)
    return Expr(f"'{text}'")


def key(name: str | Expr) -> str:
    if isinstance(name, Expr):
        return name.text
    return name if IDENTIFIER.match(name) else string(name)


def render(value: Any, level: int = 0) -> str:
    """`value` as Bicep, multi-line objects and arrays indented from `level`."""
    pad = INDENT * (level + 1)
    end = INDENT * level
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, Expr):
        return value.text
    if isinstance(value, Cond):
        return f"({value.condition}) ? {render(value.if_true, level)} : {render(value.if_false, level)}"
    if isinstance(value, For):
        return f"[for ({value.item}, {value.index}) in {value.source}: {render(value.body, level)}]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        lines = [f"{pad}{key(k)}: {render(v, level + 1)}" for k, v in value.items()]
        return "{\n" + "\n".join(lines) + f"\n{end}}}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return "[\n" + "\n".join(f"{pad}{render(v, level + 1)}" for v in value) + f"\n{end}]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as Bicep")


def literal_strings(value: Any) -> list[str]:
    """Every plain string literal in `value` (object keys and expressions excluded)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Cond):
        return literal_strings(value.if_true) + literal_strings(value.if_false)
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in literal_strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in literal_strings(v)]
    return []


def camel(name: str) -> str:
    """`cluster-control-plane` / `ACR_PULL` -> `clusterControlPlane` / `acrPull`."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    if not words:
        raise ValueError(f"no identifier in {name!r}")
    first, rest = words[0], words[1:]
    head = first.lower() if first.isupper() else first[0].lower() + first[1:]
    return head + "".join(w[0].upper() + (w[1:].lower() if w.isupper() else w[1:]) for w in rest)
