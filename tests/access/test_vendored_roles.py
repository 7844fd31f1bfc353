"""The vendored built-in role definitions equal ../shared's, and rbac/roles.py names the same ids."""

from __future__ import annotations

import json

import pytest

from rbac.roles import Role
from stack.files import REPO_ROOT
from verify.access.rbac import BUILTIN_ROLES_FILE, builtin_roles

SHARED = REPO_ROOT.parent / "shared" / "azure-rbac" / "builtin-roles.json"


def test_every_role_rbac_assigns_is_vendored_with_its_id() -> None:
    vendored = {role.name: role.id for role in builtin_roles().values()}
    for role in Role:
        assert vendored.get(role.value.name) == role.definition_id, role


@pytest.mark.skipif(
    not SHARED.exists(), reason="../shared/azure-rbac is not beside this checkout (CI runners)"
)
def test_vendored_roles_equal_the_shared_copy() -> None:
    shared = json.loads(SHARED.read_text(encoding="utf-8"))
    vendored = json.loads(BUILTIN_ROLES_FILE.read_text(encoding="utf-8"))
    own = vendored["source"].get("own_sources", {})
    for name, role in vendored["roles"].items():
        if name in own:  # a role the shared copy could not source: only one it lists as missing
            assert name in shared.get("missing", {}) and name not in shared["roles"], name
            continue
        assert role == shared["roles"][name], name
    for file in vendored["source"]["files"]:
        [original] = [f for f in shared["source"]["files"] if f["path"] == file["path"]]
        assert {k: v for k, v in file.items() if k != "roles"} == {
            k: v for k, v in original.items() if k != "roles"
        }
        assert set(file["roles"]) <= set(original["roles"])
    assert vendored["source"]["license"] == shared["source"]["license"]


def test_a_role_with_its_own_source_names_a_pinned_file_and_what_it_shows() -> None:
    vendored = json.loads(BUILTIN_ROLES_FILE.read_text(encoding="utf-8"))
    own = vendored["source"]["own_sources"]
    assert set(own) == {"Monitoring Data Reader"}
    for name, source in own.items():
        pinned = [f for f in source["files"] if len(str(f.get("commit", ""))) == 40]
        assert pinned and all(f["shows"] for f in source["files"]), name
        assert vendored["roles"][name]["sourceFile"] in {f["path"] for f in pinned}, name
    # the one data action the canary gate's query needs, and nothing on the control plane
    reader = vendored["roles"]["Monitoring Data Reader"]
    assert reader["dataActions"] == ["Microsoft.Monitor/accounts/data/metrics/read"]
    assert reader["actions"] == []
