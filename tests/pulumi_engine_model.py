"""What `pulumi refresh` and `pulumi up` send for a resource whose inputs the program ignores, modelled as the
real code does it (a test double of the engine and of azure-native, never of our program):

- `parse_property_path`: pulumi/pulumi sdk/go/common/resource/properties_path.go `ParsePropertyPath` (the
  non-strict parser `processIgnoreChanges` uses): `a.b`, `a["b.c"]`, `a[0]`, `a[*]`; a bare name runs to the
  next `.` or `[`.
- `reset`: the same file's `PropertyPath.Reset`: the value at the path in the new inputs is set to the old
  inputs' value, or deleted when the old inputs do not have it; `*` matches every key or element; a path
  whose intermediate elements exist in neither is fine, one that exists on one side only is a path error
  (the engine then logs "cannot ignore changes in added or removed elements of the path").
- `ignored_inputs`: pulumi/pulumi pkg/resource/deploy/step_generator.go `processIgnoreChanges`: each path
  of ignoreChanges reset from the old inputs (the inputs in state) into a copy of the program's inputs.
- `refreshed_inputs`: pulumi/pulumi-azure-native provider/pkg/provider/provider.go `Read` with diff.go
  `applyDiff`/`applyValueDiff`: the difference between the old and the new outputs (projected onto the input
  shape) is applied to the inputs in state, objects key by key and arrays element by element, recursively,
  so only what changed is copied. For the generic `azure-native:resources:Resource` the ARM body's
  `properties` is untyped (its SDK and schema type it `Any`: pulumi_azure_native/resources/resource.py), so
  the projection onto the inputs keeps all of it, read-only values included.
"""

from __future__ import annotations

import copy
from typing import Any

WILDCARD = "*"
PathElement = str | int


def parse_property_path(path: str) -> list[PathElement]:
    """pulumi's ParsePropertyPath (non-strict): names, quoted keys, integer indexes and `[*]`."""
    if path.startswith("."):
        raise ValueError("expected property path to start with a name or index")
    elements: list[PathElement] = []
    rest = path
    while rest:
        if rest[0] == ".":
            rest = rest[1:]
            if not rest:
                raise ValueError("expected property path to end with a name or index")
        elif rest[0] == "[":
            if len(rest) > 1 and rest[1] == '"':
                key, i = [], 2
                while True:
                    if i >= len(rest):
                        raise ValueError("missing closing quote in property name")
                    if rest[i] == '"':
                        i += 1
                        break
                    if rest[i] == "\\" and i + 1 < len(rest) and rest[i + 1] == '"':
                        key.append('"')
                        i += 2
                    else:
                        key.append(rest[i])
                        i += 1
                if i >= len(rest) or rest[i] != "]":
                    raise ValueError("missing closing bracket in property access")
                elements.append("".join(key))
                rest = rest[i + 1 :]
            else:
                close = rest.find("]")
                if close == -1:
                    raise ValueError("missing closing bracket in array index")
                segment = rest[1:close]
                elements.append(WILDCARD if segment == WILDCARD else int(segment))
                rest = rest[close + 1 :]
        else:
            end = len(rest)
            for i, char in enumerate(rest):
                if char in ".[":
                    end = i
                    break
            elements.append(rest[:end])
            rest = rest[end:]
    return elements


def reset(path: list[PathElement], old: Any, new: Any) -> bool:
    """PropertyPath.reset: `new` (mutated) takes `old`'s value at `path`; False on a path error."""
    if not path:
        return False
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        if key < 0:
            return False
        if not rest:
            if not isinstance(old, list) and not isinstance(new, list):
                return True
            if not isinstance(old, list) or not isinstance(new, list):
                return False
            if key >= len(old) and key >= len(new):
                return True
            if key >= len(old) or key >= len(new):
                return False
            new[key] = copy.deepcopy(old[key])
            return True
        if not isinstance(old, list) or not isinstance(new, list):
            return not isinstance(old, list) and not isinstance(new, list)
        if key >= len(old) or key >= len(new):
            return False
        return reset(rest, old[key], new[key])
    if key == WILDCARD:
        if not rest:
            if isinstance(new, dict):
                if isinstance(old, dict):
                    new.clear()
                    new.update(copy.deepcopy(old))
                return True
            if isinstance(new, list):
                if isinstance(old, list):
                    for i in range(min(len(old), len(new))):
                        new[i] = copy.deepcopy(old[i])
                    return len(old) == len(new)
                return True
            return False
        if isinstance(old, dict) and isinstance(new, dict):
            return all(k in new and reset(rest, old[k], new[k]) for k in old)
        if isinstance(old, list) and isinstance(new, list):
            ok = all(reset(rest, o, n) for o, n in zip(old, new, strict=False))
            return ok and len(old) == len(new)
        return False
    if not rest:
        if isinstance(old, dict) and key in old:
            if not isinstance(new, dict):
                return False
            new[key] = copy.deepcopy(old[key])
        elif isinstance(new, dict):
            new.pop(key, None)
        return True
    if not isinstance(old, dict) or not isinstance(new, dict):
        return not isinstance(old, dict) and not isinstance(new, dict)
    if key in old and key not in new:
        return False
    if key not in old and key not in new:
        return True
    return reset(rest, old.get(key), new[key])


def ignored_inputs(
    program: dict[str, Any], state: dict[str, Any], ignore_changes: tuple[str, ...] | list[str]
) -> tuple[dict[str, Any], list[str]]:
    """processIgnoreChanges: the inputs the engine diffs and sends, and the paths it could not reset."""
    sent = copy.deepcopy(program)
    invalid = []
    for text in ignore_changes:
        try:
            path = parse_property_path(text)
        except ValueError:
            continue  # the engine skips a path it cannot parse
        if not reset(path, state, sent):
            invalid.append(text)
    return sent, invalid


def _apply_value_diff(base: Any, old: Any, new: Any) -> Any:
    if isinstance(base, dict) and isinstance(old, dict) and isinstance(new, dict):
        return _apply_diff(base, old, new)
    if isinstance(base, list) and isinstance(old, list) and isinstance(new, list):
        return [
            copy.deepcopy(item)
            if i >= len(base) or i >= len(old)
            else _apply_value_diff(base[i], old[i], item)
            for i, item in enumerate(new)
        ]
    return copy.deepcopy(new)


def _apply_diff(values: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    result = {k: copy.deepcopy(v) for k, v in values.items() if not (k in old and k not in new)}
    for key in new:
        if key not in old:
            result[key] = copy.deepcopy(new[key])
        elif old[key] != new[key]:
            result[key] = (
                _apply_value_diff(values[key], old[key], new[key])
                if key in values
                else copy.deepcopy(new[key])
            )
    return result


def refreshed_inputs(
    state_inputs: dict[str, Any], old_outputs: dict[str, Any], new_outputs: dict[str, Any]
) -> dict[str, Any]:
    """azure-native Read: the inputs in state after `pulumi refresh` (applyDiff of old -> new outputs)."""
    return _apply_diff(state_inputs, old_outputs, new_outputs)


def changed_paths(old: Any, new: Any, base: str = "") -> dict[str, tuple[Any, Any]]:
    """Every leaf that differs between two input trees, by dotted path: what a preview would show."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(old) | set(new)):
            found.update(changed_paths(old.get(key), new.get(key), f"{base}.{key}" if base else key))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = {}
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            found.update(changed_paths(o, n, f"{base}[{i}]"))
        return found
    return {} if old == new else {base: (old, new)}
