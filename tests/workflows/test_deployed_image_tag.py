"""scripts/ci/deployed_image_tag.py: which image a stack runs now, read from `pulumi stack export`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ci" / "deployed_image_tag.py"
DIGEST = "sha256:" + "ab" * 32

spec = importlib.util.spec_from_file_location("deployed_image_tag", SCRIPT)
assert spec is not None and spec.loader is not None
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)


def state(*images: str, kind: str = "kubernetes:apps/v1:Deployment") -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {"type": "pulumi:pulumi:Stack", "urn": "urn:pulumi:dev::muse::pulumi:pulumi:Stack::muse-dev"}
    ]
    for image in images:
        resources.append(
            {
                "type": kind,
                "outputs": {
                    "spec": {"template": {"spec": {"containers": [{"name": "muse", "image": image}]}}}
                },
            }
        )
    return {"version": 3, "deployment": {"manifest": {}, "resources": resources}}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"acrmusedevm7k2.azurecr.io/muse@{DIGEST}", DIGEST),
        ("acrmusedevm7k2.azurecr.io/muse:latest", "latest"),
        (
            "acrmusedevm7k2.azurecr.io/muse:0123456789abcdef0123456789abcdef01234567",
            "0123456789abcdef0123456789abcdef01234567",
        ),
        ("localhost:5000/muse:dev", "dev"),
    ],
)
def test_reads_tag_or_digest(image: str, expected: str) -> None:
    assert module.deployed_image_tag(state(image)) == expected


def test_ignores_other_images_and_kinds() -> None:
    assert module.deployed_image_tag(state("docker.io/library/nginx:1.27")) is None
    assert (
        module.deployed_image_tag(
            state(f"acr.azurecr.io/muse@{DIGEST}", kind="kubernetes:apps/v1:StatefulSet")
        )
        is None
    )
    assert module.deployed_image_tag(state(f"acr.azurecr.io/not-muse@{DIGEST}")) is None
    assert module.deployed_image_tag({"version": 3, "deployment": {}}) is None


def test_cli_prints_the_tag_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state(f"acr.azurecr.io/muse@{DIGEST}")))
    out = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == DIGEST
    path.write_text(json.dumps(state()))
    out = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=True)
    assert out.stdout == ""
