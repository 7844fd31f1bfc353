"""Derive a test schema from a CustomResourceDefinition, as the vendored Gateway API schemas here were made.

    .venv/bin/python tests/deploy/schemas/derive_crd_schema.py <crd.yaml> <version> <note> > <out.json>

From the CRD's `openAPIV3Schema` of <version>: descriptions dropped (size); `additionalProperties: false`
added on every object that lists its properties and allows nothing else (the API server prunes unknown fields
of a structural schema silently, so a typo would be dropped, not refused: the test refuses it); apiVersion and
kind pinned to that version; metadata name and namespace required, as this repository deploys it. Kept:
`default`s (the API server applies them before validating) and `x-kubernetes-validations` (the CEL rules the
API server evaluates; tests/deploy evaluate them with cel-python). The source note goes into `$comment`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strip(v) for k, v in node.items() if k != "description"}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def derive(crd: dict[str, Any], version: str, source: str) -> dict[str, Any]:
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema: dict[str, Any] = _strip(served["schema"]["openAPIV3Schema"])
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {"type": "object", "required": ["name", "namespace"]}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": source,
        "title": f"{kind} ({group}/{version})",
        **schema,
    }


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    crd_path, version, note = sys.argv[1:]
    derived = derive(yaml.safe_load(Path(crd_path).read_text()), version, note)
    print(json.dumps(derived, indent=1, sort_keys=True))
