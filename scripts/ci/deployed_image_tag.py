"""Print the Muse image tag (or digest) a stack currently runs, read from `pulumi stack export`.

CI uses it before `pulumi preview` (pull requests, drift): the committed stack files carry the default
`muse:imageTag`, while `main` deploys set it to a digest at deploy time. Without this, every preview would
show the Deployment's image changing back to the default and the drift check would always fail.

    pulumi stack export --stack dev --file state.json
    python3 scripts/ci/deployed_image_tag.py state.json        # -> sha256:<64 hex>, or nothing

Prints nothing (exit 0) when the stack has no Muse Deployment yet; the committed config then applies.
Standard library only: it runs on the GitHub runner before any virtualenv exists.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
REPOSITORY = "muse"
# <registry>/<repository>@sha256:<hex>  or  <registry>/<repository>:<tag>
_IMAGE = re.compile(
    r"^(?:[^/]+/)*(?P<repo>[a-z0-9._-]+)(?:@(?P<digest>sha256:[0-9a-f]{64})|:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))$"
)


def _images(resource: dict[str, Any]) -> Iterator[str]:
    for section in ("outputs", "inputs"):
        spec = (resource.get(section) or {}).get("spec") or {}
        pod = ((spec.get("template") or {}).get("spec")) or {}
        for container in pod.get("containers") or []:
            image = container.get("image")
            if isinstance(image, str):
                yield image


def deployed_image_tag(state: dict[str, Any], repository: str = REPOSITORY) -> str | None:
    """The tag or digest of the first `repository` image in the stack's Deployments, or None."""
    resources = ((state.get("deployment") or {}).get("resources")) or []
    for resource in resources:
        if resource.get("type") != DEPLOYMENT_TYPE:
            continue
        for image in _images(resource):
            match = _IMAGE.match(image)
            if match and match.group("repo") == repository:
                return match.group("digest") or match.group("tag")
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} <pulumi-stack-export.json>", file=sys.stderr)
        return 2
    state = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    tag = deployed_image_tag(state)
    if tag:
        print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
