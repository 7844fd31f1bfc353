"""A small evaluator for the Bicep subset export/ writes, over pycep-parser's AST.

It evaluates parameters (defaults overridden by a parameter file), variables, resource conditions and bodies
and outputs. Values only Azure knows are asked from `resolve(resource, path)` (e.g. `registry.id`,
`kubeletIdentity.properties.principalId`); `guid()` stays opaque (`Guid(args)`). pycep gives identifiers and
string literals the same shape: a bare string that names a parameter, variable or resource is a reference
(export/bicep.py refuses literals that collide with an identifier).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}


@dataclass(frozen=True)
class Guid:
    args: tuple[Any, ...]


@dataclass
class EvaluatedResource:
    symbol: str
    type: str
    api_version: str
    body: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    scope: str | None = None
    depends_on: list[str] = field(default_factory=list)
    existing: bool = False  # `existing`: a reference to a resource the template does not deploy


class BicepEvaluationError(Exception):
    pass


class Evaluator:
    def __init__(
        self,
        ast: Mapping[str, Any],
        parameters: Mapping[str, Any],
        resolve: Callable[[EvaluatedResource, str], Any],
        *,
        subscription_id: str,
        resource_group: str,
        tenant_id: str,
        deployer_object_id: str = "",
    ) -> None:
        self.ast = ast
        self.resolve = resolve
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.tenant_id = tenant_id
        self.deployer_object_id = deployer_object_id
        declared = ast.get("parameters", {})
        unknown = set(parameters) - set(declared)
        if unknown:
            raise BicepEvaluationError(f"parameter file sets undeclared parameters {sorted(unknown)}")
        self.params: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in parameters:
                self.params[name] = parameters[name]
            elif spec.get("default") is not None:  # pycep: None = no default (export/ never writes `= null`)
                self.params[name] = spec["default"]  # export/ writes literal defaults only
            else:
                raise BicepEvaluationError(f"required parameter {name} has no value")
        self.variables: dict[str, Any] = {}
        self._resources: dict[str, EvaluatedResource] = {}
        self.scope: dict[str, Any] = {}

    # -- public

    def resources(self) -> dict[str, EvaluatedResource]:
        """Every resource whose condition holds, by symbol."""
        for symbol in self.ast.get("resources", {}):
            self._resource(symbol)
        return {s: r for s, r in self._resources.items() if r is not None}

    def outputs(self) -> dict[str, Any]:
        return {name: self.eval(spec["value"]) for name, spec in self.ast.get("outputs", {}).items()}

    # -- evaluation

    def _resource(self, symbol: str) -> EvaluatedResource | None:
        if symbol in self._resources:
            return self._resources[symbol]
        spec = self.ast["resources"][symbol]
        config = spec["config"]
        if "condition" in config and "config" in config and len(config) == 2:
            if not self.eval(config["condition"]):
                self._resources[symbol] = None  # type: ignore[assignment]
                return None
            config = config["config"]
        resource = EvaluatedResource(
            symbol, spec["type"], spec["api_version"], existing=bool(spec.get("existing"))
        )
        self._resources[symbol] = resource  # before the body: a body may refer to itself by `.id`
        body = {k: v for k, v in config.items() if k not in ("parent", "scope", "dependsOn")}
        resource.depends_on = [str(d) for d in config.get("dependsOn") or []]
        if "parent" in config:
            resource.parent = str(config["parent"])
        if "scope" in config:
            resource.scope = str(config["scope"])
        resource.body = self.eval(body)
        return resource

    def _lookup(self, name: str) -> Any:
        if name in self.scope:
            return self.scope[name]
        if name in self.params:
            return self.params[name]
        if name in self.ast.get("variables", {}):
            if name not in self.variables:
                self.variables[name] = self.eval(self.ast["variables"][name]["value"])
            return self.variables[name]
        if name in self.ast.get("resources", {}):
            return _ResourceRef(self, name)
        raise KeyError(name)

    def _is_identifier(self, text: str) -> bool:
        if not _IDENTIFIER.match(text):
            return False
        return (
            text in self.scope
            or text in self.params
            or text in self.ast.get("variables", {})
            or text in self.ast.get("resources", {})
        )

    def _interpolate(self, text: str) -> str:
        """A string literal's value: escapes undone (pycep keeps them), `${...}` evaluated."""
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text):
                out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                i += 2
            elif text.startswith("${", i):
                end = text.index("}", i)
                out.append(str(self._simple(text[i + 2 : end].strip())))
                i = end + 1
            else:
                out.append(char)
                i += 1
        return "".join(out)

    def _simple(self, expression: str) -> Any:
        """`a.b.c` or `a + 1` inside an interpolation."""
        if "+" in expression:
            left, right = (p.strip() for p in expression.split("+", 1))
            return self._simple(left) + int(right)
        head, *rest = expression.split(".")
        value = self._lookup(head)
        for part in rest:
            value = _access(value, part)
        return value

    def eval(self, node: Any) -> Any:
        if isinstance(node, str):
            if self._is_identifier(node):
                return self._lookup(node)
            return self._interpolate(node)
        if isinstance(node, list):
            return [self.eval(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "operator" in node and len(node) == 1:
            return self._operator(node["operator"])
        if "function" in node and len(node) == 1:
            return self._function(node["function"])
        if "loop_type" in node:
            detail = node["loop_type"]["detail"]
            items = self.eval(detail["array_name"])
            out = []
            for index, item in enumerate(items):
                saved = dict(self.scope)
                self.scope[detail["item_name"]] = item
                if detail.get("index_name"):
                    self.scope[detail["index_name"]] = index
                out.append(self.eval(node["config"]))
                self.scope = saved
            return out
        result = {}
        for key, value in node.items():
            if key.startswith("'") and key.endswith("'"):
                key = self._interpolate(key[1:-1])
            result[key] = self.eval(value)
        return result

    def _operator(self, op: Mapping[str, Any]) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "property_accessor":
            return _access(self.eval(operands["operand_1"]), operands["operand_2"], self)
        if kind == "conditional":
            chosen = operands["true_value"] if self.eval(operands["condition"]) else operands["false_value"]
            return self.eval(chosen)
        if kind == "not":
            return not self.eval(operands["bool_value"])
        a, b = self.eval(operands["operand_1"]), self.eval(operands["operand_2"])
        binary: dict[str, Callable[[Any, Any], Any]] = {
            "equals": lambda x, y: x == y,
            "not_equals": lambda x, y: x != y,
            "and": lambda x, y: bool(x) and bool(y),
            "or": lambda x, y: bool(x) or bool(y),
            "greater_than": lambda x, y: x > y,
            "greater_than_or_equals": lambda x, y: x >= y,
            "less_than": lambda x, y: x < y,
            "less_than_or_equals": lambda x, y: x <= y,
            "add": lambda x, y: x + y,
        }
        if kind not in binary:
            raise BicepEvaluationError(f"operator {kind} is outside the evaluated subset")
        return binary[kind](a, b)

    def _function(self, fn: Mapping[str, Any]) -> Any:
        kind = fn["type"]
        args = [self.eval(v) for v in (fn.get("parameters") or {}).values() if v is not None]
        if kind == "empty":
            return len(args[0]) == 0
        if kind == "length":
            return len(args[0])
        if kind == "contains":
            return args[1] in args[0]
        if kind == "take":
            return args[0][: args[1]]
        if kind == "union":
            # Objects: later keys win (ARM's union); the subset export/ writes unions objects only.
            if not all(isinstance(a, dict) for a in args):
                raise BicepEvaluationError("union of non-objects is outside the evaluated subset")
            return {k: v for a in args for k, v in a.items()}
        if kind == "guid":
            return Guid(tuple(args))
        if kind == "subscription_resource_id":
            return f"/subscriptions/{self.subscription_id}/providers/{args[0]}/{'/'.join(args[1:])}"
        if kind == "resource_group":
            rg_id = f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            return {"name": self.resource_group, "id": rg_id}
        if kind == "tenant":
            return {"tenantId": self.tenant_id}
        if kind == "deployer":
            return {"objectId": self.deployer_object_id, "tenantId": self.tenant_id}
        raise BicepEvaluationError(f"function {kind} is outside the evaluated subset")


@dataclass(frozen=True)
class _ResourceRef:
    evaluator: Evaluator
    symbol: str

    @property
    def resource(self) -> EvaluatedResource:
        resource = self.evaluator._resource(self.symbol)
        if resource is None:
            raise BicepEvaluationError(f"{self.symbol} is referenced but its condition is false")
        return resource


@dataclass(frozen=True)
class _Path:
    ref: _ResourceRef
    path: str


def _access(value: Any, part: Any, evaluator: Evaluator | None = None) -> Any:
    if isinstance(part, dict) and "operator" in part:  # a.b.c nests as accessor(a, accessor(b, c))
        inner = part["operator"]["operands"]
        return _access(_access(value, inner["operand_1"], evaluator), inner["operand_2"], evaluator)
    if isinstance(value, _ResourceRef):
        if part == "name":
            return value.resource.body["name"]
        if part == "id" or part != "properties":
            return value.evaluator.resolve(value.resource, str(part))
        return _Path(value, "properties")
    if isinstance(value, _Path):
        path = f"{value.path}.{part}"
        return value.ref.evaluator.resolve(value.ref.resource, path)
    if isinstance(value, dict):
        return value[part]
    raise BicepEvaluationError(f"cannot read .{part} of {value!r}")
