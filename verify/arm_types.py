"""The ARM type data of a resource type at one API version, and a check of an ARM body against it.

Why: the AKS cluster is a generic `azure-native:resources:Resource` whose `properties` the SDK does not type,
so `make export`, `make drift` and the tests validate its body here, against the type data the Bicep compiler
uses (Azure/bicep-types-az, vendored under `verify/arm_types/`). The data and its format:
docs/architecture/code.md#arm-type-data."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

VENDORED = Path(__file__).with_name("arm_types")
REQUIRED, READ_ONLY = 1, 2
_REF = re.compile(r"^#/(\d+)$")


def _index(ref: Mapping[str, str]) -> int:
    match = _REF.match(ref["$ref"])
    if match is None:
        raise ValueError(f"not a local type reference: {ref}")
    return int(match.group(1))


def resource_type_name(arm_type: str, api_version: str) -> str:
    return f"{arm_type}@{api_version}"


def extract(types: Sequence[Mapping[str, Any]], arm_type: str, api_version: str) -> list[dict[str, Any]]:
    """The entries the ResourceType `<arm_type>@<api_version>` reaches, the ResourceType first, renumbered in
    the order they are first reached (so the same source always gives the same file)."""
    wanted = resource_type_name(arm_type, api_version).lower()
    roots = [
        i
        for i, entry in enumerate(types)
        if entry.get("$type") == "ResourceType" and str(entry.get("name", "")).lower() == wanted
    ]
    if len(roots) != 1:
        raise LookupError(f"{len(roots)} ResourceType entries named {arm_type}@{api_version}")
    order: list[int] = []
    position: dict[int, int] = {}

    def visit(index: int) -> None:
        if index in position:
            return
        position[index] = len(order)
        order.append(index)
        for ref in _refs(types[index]):
            visit(_index(ref))

    visit(roots[0])
    return [_renumbered(types[i], position) for i in order]


def _refs(value: Any) -> list[Mapping[str, str]]:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            return [value]
        return [ref for v in value.values() for ref in _refs(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _refs(v)]
    return []


def _renumbered(value: Any, position: Mapping[int, int]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            return {"$ref": f"#/{position[_index(value)]}"}
        return {k: _renumbered(v, position) for k, v in value.items()}
    if isinstance(value, list):
        return [_renumbered(v, position) for v in value]
    return value


def vendored_path(arm_type: str, api_version: str) -> Path:
    namespace, _, resource_type = arm_type.partition("/")
    return VENDORED / namespace.lower() / api_version / f"{resource_type.replace('/', '.')}.json"


@cache
def load(arm_type: str, api_version: str) -> tuple[dict[str, Any], ...]:
    """The vendored entries of `<arm_type>@<api_version>`; the ResourceType is entry 0."""
    path = vendored_path(arm_type, api_version)
    if not path.is_file():
        raise LookupError(
            f"no ARM type data for {arm_type}@{api_version}: vendor it from ../shared/bicep-types with "
            f"verify.arm_types.extract into {path.relative_to(VENDORED.parent.parent)}"
        )
    return tuple(json.loads(path.read_text()))


def validate(
    types: Sequence[Mapping[str, Any]], body: Mapping[str, Any], *, open_unions: bool = False
) -> list[str]:
    """Every way `body` (a PUT body: name, location, tags, sku, identity, properties, ...) breaks the type
    data: properties the API version does not define, read-only ones sent, required ones missing, values of
    the wrong type, strings outside a closed set of literals.

    Stricter than Azure in one respect, on purpose, unless `open_unions`: where the API lists values but also
    accepts any string (a union of literals and `string`, for forward compatibility), only the listed values
    pass. `open_unions` is Azure's own rule, for bodies whose values a typed SDK already took (e.g. the data
    collection streams `Microsoft-ContainerLogV2`, which the type data does not list)."""
    root = types[0]
    if root.get("$type") != "ResourceType":
        raise ValueError("entry 0 is not a ResourceType")
    problems: list[str] = []
    _check(types, _index(root["body"]), body, "", problems, top=True, open_unions=open_unions)
    return problems


def _check(
    types: Sequence[Mapping[str, Any]],
    index: int,
    value: Any,
    path: str,
    problems: list[str],
    top: bool = False,
    open_unions: bool = False,
) -> None:
    entry = types[index]
    kind = entry["$type"]
    where = path or "(body)"
    if kind == "AnyType":
        return
    if kind == "StringType":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")
            return
        pattern = entry.get("pattern")
        if pattern and not re.search(pattern, value):
            problems.append(f"{where}: {value!r} does not match {pattern}")
        if "minLength" in entry and len(value) < entry["minLength"]:
            problems.append(f"{where}: {value!r} is shorter than {entry['minLength']}")
        if "maxLength" in entry and len(value) > entry["maxLength"]:
            problems.append(f"{where}: {value!r} is longer than {entry['maxLength']}")
        return
    if kind == "StringLiteralType":
        if value != entry["value"]:
            problems.append(f"{where}: expected {entry['value']!r}, got {value!r}")
        return
    if kind == "IntegerType":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: expected an integer, got {value!r}")
            return
        if "minValue" in entry and value < entry["minValue"]:
            problems.append(f"{where}: {value} is below {entry['minValue']}")
        if "maxValue" in entry and value > entry["maxValue"]:
            problems.append(f"{where}: {value} is above {entry['maxValue']}")
        return
    if kind == "BooleanType":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {value!r}")
        return
    if kind == "ArrayType":
        if not isinstance(value, list):
            problems.append(f"{where}: expected an array, got {value!r}")
            return
        if "maxLength" in entry and len(value) > entry["maxLength"]:
            problems.append(f"{where}: {len(value)} items, at most {entry['maxLength']}")
        for i, item in enumerate(value):
            _check(types, _index(entry["itemType"]), item, f"{path}[{i}]", problems, open_unions=open_unions)
        return
    if kind == "UnionType":
        elements = [_index(e) for e in entry["elements"]]
        literals = [types[e]["value"] for e in elements if types[e]["$type"] == "StringLiteralType"]
        accepts_any = any(types[e]["$type"] == "StringType" for e in elements)
        if literals and isinstance(value, str) and open_unions and accepts_any:
            return
        if literals and isinstance(value, str):
            if value not in literals:
                problems.append(f"{where}: {value!r} is not one of {literals}")
            return
        for element in elements:
            attempt: list[str] = []
            _check(types, element, value, path, attempt, open_unions=open_unions)
            if not attempt:
                return
        problems.append(f"{where}: {value!r} matches none of the union's types")
        return
    if kind == "ObjectType":
        _check_object(types, entry, value, path, problems, top, open_unions)
        return
    if kind == "DiscriminatedObjectType":
        _check_discriminated(types, entry, value, path, problems, open_unions)
        return
    problems.append(f"{where}: type {kind} is not understood by verify/arm_types.py")


def _check_object(
    types: Sequence[Mapping[str, Any]],
    entry: Mapping[str, Any],
    value: Any,
    path: str,
    problems: list[str],
    top: bool,
    open_unions: bool = False,
) -> None:
    where = path or "(body)"
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object, got {value!r}")
        return
    properties: Mapping[str, Any] = entry.get("properties") or {}
    for name, spec in properties.items():
        # `name` of a resource body is required but sits in the URL of a PUT, not always in the body.
        flags = spec.get("flags", 0)
        in_url = top and name == "name"
        if flags & REQUIRED and not flags & READ_ONLY and name not in value and not in_url:
            problems.append(f"{_join(path, name)}: required by the API, missing")
    for name, item in value.items():
        child = _join(path, name)
        spec = properties.get(name)
        if spec is None:
            extra = entry.get("additionalProperties")
            if extra is None:
                close = [p for p in properties if p.lower() == str(name).lower()]
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"{child}: not a property of {entry.get('name', 'this object')}{hint}")
            else:
                _check(types, _index(extra), item, child, problems, open_unions=open_unions)
            continue
        if spec.get("flags", 0) & READ_ONLY:
            problems.append(f"{child}: read-only (Azure sets it), must not be sent")
            continue
        _check(types, _index(spec["type"]), item, child, problems, open_unions=open_unions)


def _check_discriminated(
    types: Sequence[Mapping[str, Any]],
    entry: Mapping[str, Any],
    value: Any,
    path: str,
    problems: list[str],
    open_unions: bool = False,
) -> None:
    where = path or "(body)"
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object, got {value!r}")
        return
    discriminator = entry["discriminator"]
    variant = entry.get("elements", {}).get(value.get(discriminator))
    if variant is None:
        problems.append(f"{where}: {discriminator} {value.get(discriminator)!r} is not a known variant")
        return
    merged = {
        "$type": "ObjectType",
        "name": entry.get("name"),
        "properties": {
            **(entry.get("baseProperties") or {}),
            **(types[_index(variant)].get("properties") or {}),
        },
    }
    _check_object(types, merged, value, path, problems, top=False, open_unions=open_unions)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else str(name)


def read_only_paths(types: Sequence[Mapping[str, Any]], body: Mapping[str, Any], under: str) -> list[str]:
    """The paths, inside the body's object `under` (e.g. `properties`), at which Azure writes read-only values
    into a resource shaped like `body`: each read-only property of an object the body sends, and each object
    the body does not send that holds one (its whole path, since a path through an object missing from the
    program's inputs cannot be reset: pulumi properties_path.go Reset, and step_generator.go
    processIgnoreChanges fails the update on such a path); a map's entries share one `[*]` path. What a
    generic resource must list in ignoreChanges so that a refresh's copy of AKS's status values never shows
    as a change."""
    root = types[0]
    top = types[_index(root["body"])]
    spec = (top.get("properties") or {})[under]
    found: list[str] = []
    _read_only(types, _index(spec["type"]), body.get(under), under, found)
    return sorted(found)


def _holds_read_only(types: Sequence[Mapping[str, Any]], index: int, seen: frozenset[int]) -> bool:
    entry = types[index]
    if index in seen or entry["$type"] != "ObjectType":
        return False
    for spec in (entry.get("properties") or {}).values():
        if spec.get("flags", 0) & READ_ONLY or _holds_read_only(types, _index(spec["type"]), seen | {index}):
            return True
    return False


def _read_only(
    types: Sequence[Mapping[str, Any]], index: int, sent: Any, path: str, found: list[str]
) -> None:
    entry = types[index]
    if entry["$type"] != "ObjectType" or not isinstance(sent, Mapping):
        return
    properties: Mapping[str, Any] = entry.get("properties") or {}
    for name, spec in properties.items():
        child, child_index = _join(path, name), _index(spec["type"])
        if spec.get("flags", 0) & READ_ONLY:
            found.append(child)
        elif name in sent:
            _read_only(types, child_index, sent[name], child, found)
        elif _holds_read_only(types, child_index, frozenset()):
            found.append(child)
    extra = entry.get("additionalProperties")
    if extra is not None:
        # A map's entries (add-ons by name): one wildcard path for all, so that adding an entry the state
        # does not have yet is no path error (properties_path.go Reset with `*` visits the old entries).
        entries: list[str] = []
        for key, item in sent.items():
            if key not in properties:
                _read_only(types, _index(extra), item, f"{path}[*]", entries)
        found.extend(sorted(set(entries)))
