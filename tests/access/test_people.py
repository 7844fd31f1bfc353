"""People in the permission model: each environment's operators' group can do what docs/runbook.md has a
member do in the cluster, with exactly the roles the bootstrap grants it (rbac/roles.py OPERATOR_ROLES)."""

from __future__ import annotations

from typing import Any

import pytest

import stack.files
from offline.engine import run_stack
from rbac.roles import OPERATOR_ROLES, OPERATOR_STATE_ROLE, Role
from stack.files import REPO_ROOT
from verify.access.model import RUNBOOK_KUBECTL, Model, Result, evaluate, operators

# The whole permission model and bootstrap program runs.
pytestmark = pytest.mark.slow

GROUP = "3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_member_can_do_every_runbook_step(model: Model, result: Result, stack: str) -> None:
    done = [op for op in model.operations if op.identity == operators(stack)]
    assert len(done) == 2 + len(RUNBOOK_KUBECTL)
    assert all(result.allowed[op] for op in done), [op.where for op in done if not result.allowed[op]]
    assert all(
        "az aks get-credentials" in op.where or "kubectl" in op.where or "stack output" in op.where
        for op in done
    )


def test_negative_control_without_the_state_read_the_stack_outputs_are_denied(model: Model) -> None:
    # The runbook's `scripts/stack <env> stack output ...` reads the state-<env> container.
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.name == "operators-prod-state"]
    assert grant.scope.endswith("/containers/state-prod")
    denied = evaluate(model.without(grant)).denied
    assert [op.where for op in denied if op.identity == operators("prod")] == [
        "docs/runbook.md (prod): scripts/stack prod stack output"
    ]


@pytest.mark.parametrize("role", OPERATOR_ROLES, ids=[r.name for r in OPERATOR_ROLES])
def test_negative_control_without_either_role_a_step_is_denied(model: Model, role: Role) -> None:
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.role.id == role.value.id]
    denied = evaluate(model.without(grant)).denied
    assert any(op.identity == operators("prod") for op in denied)


def test_the_reader_role_would_not_do_for_a_rollback(model: Model) -> None:
    # Why Writer and not Reader: `kubectl rollout undo` writes the Deployment.
    [writer] = [
        a for a in model.assignments_of(operators("prod")) if a.role.id == Role.AKS_RBAC_WRITER.value.id
    ]
    reader = type(writer)(
        writer.name, writer.principal, _role(model, Role.AKS_RBAC_READER), writer.scope, source=writer.source
    )
    denied = evaluate(model.without(writer).with_assignment(reader)).denied
    assert [op.where for op in denied if op.identity == operators("prod")] == [
        "docs/runbook.md (prod): kubectl delete pod (a leaking pod)",
        "docs/runbook.md (prod): kubectl rollout undo",
    ]


def _role(model: Model, role: Role) -> Any:
    from verify.access.rbac import builtin_roles

    return dict(builtin_roles())[role.value.id]


def _bootstrap_with(monkeypatch: pytest.MonkeyPatch, group: str | None) -> list[Any]:
    original = stack.files.read_stack

    def read(name: str, root: Any = REPO_ROOT, overrides: dict[str, Any] | None = None) -> Any:
        extra = {"muse:operatorsGroupObjectId": group} if name == "prod" else {}
        return original(name, root, {**(overrides or {}), **extra})

    monkeypatch.setattr(stack.files, "read_stack", read)
    plan = run_stack("main", root=REPO_ROOT / "bootstrap")
    return [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("principalType") == "Group"
    ]


def test_the_bootstrap_grants_a_real_group_exactly_the_operator_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    granted = _bootstrap_with(monkeypatch, GROUP)
    assert {str(r.get("principalId")) for r in granted} == {GROUP}
    assert sorted(str(r.get("roleDefinitionId")).rsplit("/", 1)[-1] for r in granted) == sorted(
        role.value.id for role in (*OPERATOR_ROLES, OPERATOR_STATE_ROLE)
    )
    scopes = {str(r.get("roleDefinitionId")).rsplit("/", 1)[-1]: str(r.get("scope")) for r in granted}
    assert scopes.pop(OPERATOR_STATE_ROLE.value.id).endswith("/blobServices/default/containers/state-prod")
    assert all(scope.endswith("/resourceGroups/rg-muse-prod-m7k2") for scope in scopes.values())


def test_negative_control_the_placeholder_gets_no_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _bootstrap_with(monkeypatch, "00000000-0000-0000-0000-000000000000") == []
