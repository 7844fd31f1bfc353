"""Validate a custom resource the way the API server does for a structural CRD schema, offline.

1. Defaults: every `default` of the schema is applied where the object leaves the field out (the API
   server defaults before it validates, and several CEL rules read defaulted fields, e.g. a backendRef's
   `kind`).
2. The OpenAPI schema, with jsonschema (the vendored schemas also refuse unknown fields:
   derive_crd_schema.py).
3. The CEL rules (`x-kubernetes-validations`) at each node, with cel-python, on the defaulted object.
   Property names are escaped as Kubernetes escapes them for CEL (`namespace` -> `__namespace__`, `-` ->
   `__dash__`, ...: kubernetes.io/docs/reference/using-api/cel/#escaping); transition rules (`oldSelf`) need
   a previous object and are skipped.

`problems(schema, obj)` lists every finding; an empty list means the API server would admit the object as far
as its CRD says (admission webhooks of the implementation may still refuse it).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import celpy
import jsonschema

# CEL keywords and reserved words Kubernetes escapes as `__<word>__` when they are property names.
_RESERVED = frozenset(
    {
        *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function"),
        *("if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"),
    }
)
_IDENTIFIER = re.compile(r"^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$")
_ENVIRONMENT = celpy.Environment()


def escape(name: str) -> str:
    if name in _RESERVED:
        return f"__{name}__"
    if not _IDENTIFIER.match(name):
        return name
    return (
        name.replace("__", "__underscores__")
        .replace(".", "__dot__")
        .replace("-", "__dash__")
        .replace("/", "__slash__")
    )


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """`value` with the schema's defaults filled in where fields are absent (a copy)."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in (schema.get("properties") or {}):
                    _default(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


def _to_cel_shape(schema: dict[str, Any], value: Any) -> Any:
    """The value as CEL sees it: object property names escaped, map keys left as they are."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for name, item in value.items():
            if name in properties:
                out[escape(name)] = _to_cel_shape(properties[name], item)
            else:
                out[name] = _to_cel_shape(extra if isinstance(extra, dict) else {}, item)
        return out
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [_to_cel_shape(items, v) for v in value]
    return value


def _rules(schema: dict[str, Any], value: Any, path: str, found: list[str]) -> None:
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"]:
            continue
        program = _ENVIRONMENT.program(_ENVIRONMENT.compile(rule["rule"]))
        try:
            result = program.evaluate({"self": celpy.json_to_cel(_to_cel_shape(schema, value))})
        except celpy.CELEvalError:
            found.append(f"{path or '(object)'}: {rule.get('message', rule['rule'])} (the rule errs)")
            continue
        if isinstance(result, celpy.CELEvalError) or not bool(
            result
        ):  # an erring rule fails, as in Kubernetes
            found.append(f"{path or '(object)'}: {rule.get('message', rule['rule'])}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, item in value.items():
            if name in properties:
                _rules(properties[name], item, f"{path}.{name}" if path else name, found)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _rules(schema["items"], item, f"{path}[{i}]", found)


def problems(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Everything the API server would refuse in `obj` under `schema` (the defaulted object is validated)."""
    defaulted = apply_defaults(schema, obj)
    found = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(object)'}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(defaulted)
    ]
    _rules(schema, defaulted, "", found)
    return found
