"""The Gateway API CRDs the deploy tests validate against are the bundle AKS installs for each stack's
Kubernetes version (tests/deploy/gateway_api.py), vendored with their provenance
(schemas/gateway-api/SOURCE.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from tests.deploy import gateway_api
from tests.deploy.schemas.derive_crd_schema import derive

STACKS = ENVIRONMENTS
UPSTREAM = {"Gateway": "gateways", "HTTPRoute": "httproutes"}
MANAGED_GATEWAY_API_PAGE = "articles/aks/managed-gateway-api.md"


@pytest.mark.parametrize(
    ("version", "bundle"),
    [
        ("1.26", "v1.2.1"),
        ("1.33", "v1.2.1"),
        ("1.34", "v1.3.0"),
        ("1.35", "v1.4.1"),
        ("1.36", "v1.5.1"),
        ("1.36.4", "v1.5.1"),
        ("1.37", "v1.5.1"),  # "v1.36.0+": the page gives 1.37 no row of its own
    ],
)
def test_the_bundle_follows_the_aks_table(version: str, bundle: str) -> None:
    assert gateway_api.bundle_for(version) == bundle


@pytest.mark.parametrize("version", ["1.25", "1.9", "0.36", "latest", "1"])
def test_a_version_the_table_does_not_cover_is_refused(version: str) -> None:
    with pytest.raises(gateway_api.UncoveredVersion):
        gateway_api.bundle_for(version)


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_validates_against_its_own_vendored_bundle(stack: str) -> None:
    version = str(read_stack(stack).config["muse:kubernetesVersion"])
    bundle = gateway_api.bundle_for(version)
    schemas = gateway_api.schemas_for(version)
    assert set(schemas) == {"Gateway", "HTTPRoute"}
    for schema in schemas.values():
        assert f"bundle {bundle} " in schema["$comment"], schema["$comment"][:160]


def test_negative_control_a_version_whose_bundle_is_not_vendored_says_what_to_vendor() -> None:
    # A stack moved back to 1.34 would need v1.3.0, which is not here: the test must stop, not fall back.
    with pytest.raises(FileNotFoundError, match=r"bundle v1\.3\.0, which is not vendored"):
        gateway_api.schemas_for("1.34")


def _source_rows() -> list[dict[str, str]]:
    rows = []
    for line in gateway_api.SOURCE.read_text().splitlines():
        match = re.match(
            r"\| (v[\d.]+) \| (v[\d.]+) \| `([0-9a-f]{40})` \| `([^`]+)` \| `([0-9a-f]{64})` \|", line
        )
        if match:
            rows.append(dict(zip(("bundle", "tag", "commit", "file", "sha256"), match.groups(), strict=True)))
    return rows


def test_every_vendored_schema_names_its_source_and_source_md_lists_it() -> None:
    rows = _source_rows()
    vendored = sorted(
        p.relative_to(gateway_api.SCHEMAS).as_posix() for p in gateway_api.SCHEMAS.glob("*/*.json")
    )
    listed = sorted(
        f"{r['bundle']}/{gateway_api.KINDS[k]}" for r in rows for k, u in UPSTREAM.items() if u in r["file"]
    )
    assert vendored == listed and vendored
    for row in rows:
        [kind] = [k for k, u in UPSTREAM.items() if f"_{u}.yaml" in row["file"]]
        comment = json.loads((gateway_api.SCHEMAS / row["bundle"] / gateway_api.KINDS[kind]).read_text())[
            "$comment"
        ]
        assert f"bundle {row['bundle']} " in comment
        assert f"at tag {row['tag']} (commit {row['commit']})" in comment
        assert f"config/crd/standard/{row['file']}" in comment
        assert "Apache License 2.0" in comment


def _upstream_repo() -> Path:
    repo = os.environ.get("GATEWAY_API_REPO")
    if not repo:
        pytest.skip(
            "GATEWAY_API_REPO (a git directory of kubernetes-sigs/gateway-api with its tags) is not set"
        )
    return Path(repo)


def test_the_vendored_schemas_are_derived_from_the_upstream_crds() -> None:
    repo = _upstream_repo()
    for row in _source_rows():
        text = subprocess.run(
            ["git", "--git-dir", str(repo), "show", f"{row['commit']}:config/crd/standard/{row['file']}"],
            capture_output=True,
            check=True,
        ).stdout
        assert hashlib.sha256(text).hexdigest() == row["sha256"], row["file"]
        [kind] = [k for k, u in UPSTREAM.items() if f"_{u}.yaml" in row["file"]]
        path = gateway_api.SCHEMAS / row["bundle"] / gateway_api.KINDS[kind]
        vendored = json.loads(path.read_text())
        crd = yaml.safe_load(text)
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == row["bundle"]
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"
        assert derive(crd, "v1", vendored["$comment"]) == vendored, path


def test_the_table_is_the_aks_page_when_the_docs_are_here() -> None:
    docs = os.environ.get("AKS_DOCS_REPO")
    if not docs:
        pytest.skip("AKS_DOCS_REPO (a git directory of MicrosoftDocs/azure-aks-docs) is not set")
    page = subprocess.run(
        [
            "git",
            "--git-dir",
            docs,
            "show",
            f"fb060abe6a8fef960d4c487b543bf7b1e97808fe:{MANAGED_GATEWAY_API_PAGE}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = re.findall(
        r"^\| (v\d+\.\d+\.\d+) +\| v(\d+)\.(\d+)\.[\dx]+(?: - v(\d+)\.(\d+)\.x)?(\+)? *\|$", page, re.M
    )
    documented = []
    for bundle, major, minor, last_major, last_minor, and_later in rows:
        first = (int(major), int(minor))
        last = None if and_later else (int(last_major), int(last_minor)) if last_major else first
        documented.append((first, last, bundle))
    assert tuple(documented) == gateway_api.BUNDLES
