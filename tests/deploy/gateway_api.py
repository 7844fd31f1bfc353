"""Which Gateway API CRDs a cluster has: the bundle AKS's managed Gateway API installs for its Kubernetes
version, and the vendored schemas of that bundle (tests/deploy/schemas/gateway-api/<bundle>/, SOURCE.md).

The table is MicrosoftDocs/azure-aks-docs articles/aks/managed-gateway-api.md, "Supported Kubernetes versions
for Gateway API bundle versions" (standard channel), at commit fb060abe6a8fef960d4c487b543bf7b1e97808fe
(ms.date 05/18/2026; the v1.5.1 row added in 9c4bd6467, 2026-05-28):

| Gateway API bundle version | Supported Kubernetes versions |
| v1.2.1 | v1.26.0 - v1.33.x |
| v1.3.0 | v1.34.x |
| v1.4.1 | v1.35.x |
| v1.5.1 | v1.36.0+ |

"If you upgrade your AKS cluster to a new minor version after installing the Managed Gateway API CRDs,
the CRDs automatically upgrade to the new supported Gateway API bundle version for that Kubernetes version",
so the bundle follows the cluster's minor. The last row is open-ended: the page names no bundle of its own
for 1.37, so 1.37 (dev) gets v1.5.1 as the page states it today; each earlier minor got its own row when it
arrived, so when the page gives 1.37 (or a later minor) another bundle, its row goes here and that bundle is
vendored.
A version below the table's first row is refused: the page says nothing about it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).parent / "schemas" / "gateway-api"
SOURCE = SCHEMAS / "SOURCE.md"
KINDS = {"Gateway": "gateway-v1.json", "HTTPRoute": "httproute-v1.json"}

# (first minor, last minor or None for "and later", bundle), in the page's order.
BUNDLES: tuple[tuple[tuple[int, int], tuple[int, int] | None, str], ...] = (
    ((1, 26), (1, 33), "v1.2.1"),
    ((1, 34), (1, 34), "v1.3.0"),
    ((1, 35), (1, 35), "v1.4.1"),
    ((1, 36), None, "v1.5.1"),
)


class UncoveredVersion(LookupError):
    """A Kubernetes version the AKS table gives no Gateway API bundle for."""


def _minor(kubernetes_version: str) -> tuple[int, int]:
    parts = kubernetes_version.removeprefix("v").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise UncoveredVersion(f"{kubernetes_version!r} is not a Kubernetes version (major.minor[.patch])")
    return int(parts[0]), int(parts[1])


def bundle_for(kubernetes_version: str) -> str:
    """The bundle AKS installs for `kubernetes_version`; UncoveredVersion if the table has none."""
    minor = _minor(kubernetes_version)
    for first, last, bundle in BUNDLES:
        if first <= minor and (last is None or minor <= last):
            return bundle
    raise UncoveredVersion(
        f"Kubernetes {kubernetes_version}: the AKS table of Gateway API bundles (managed-gateway-api.md) "
        f"starts at {BUNDLES[0][0][0]}.{BUNDLES[0][0][1]}; no bundle is documented for it"
    )


def schemas_for(kubernetes_version: str) -> dict[str, dict[str, Any]]:
    """Kind -> the vendored CRD schema of the bundle for `kubernetes_version` (FileNotFoundError with what to
    vendor when that bundle is not here)."""
    bundle = bundle_for(kubernetes_version)
    folder = SCHEMAS / bundle
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Kubernetes {kubernetes_version} gets Gateway API bundle {bundle}, which is not vendored: "
            f"derive its CRDs into {folder} with tests/deploy/schemas/derive_crd_schema.py, list them in "
            f"{SOURCE.name}"
        )
    return {kind: json.loads((folder / name).read_text()) for kind, name in KINDS.items()}
