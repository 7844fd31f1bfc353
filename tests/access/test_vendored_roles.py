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
    for name, role in vendored["roles"].items():
        assert role == shared["roles"][name], name
    for file in vendored["source"]["files"]:
        [original] = [f for f in shared["source"]["files"] if f["path"] == file["path"]]
        assert {k: v for k, v in file.items() if k != "roles"} == {
            k: v for k, v in original.items() if k != "roles"
        }
        assert set(file["roles"]) <= set(original["roles"])
    assert vendored["source"]["license"] == shared["source"]["license"]
