"""People in the permission model: each environment's operators' group can do what docs/runbook.md has a
member do in the cluster (every kubectl command of the runbook, verify/access/runbook.py), with exactly the
roles the bootstrap grants it (rbac/roles.py OPERATOR_ROLES and CustomRoles.KUBERNETES_OPERATOR)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import stack.files
from components.muse_workload.manifests import CUSTOM_RESOURCES
from offline.engine import run_stack
from rbac.roles import OPERATOR_CUSTOM_RESOURCES, OPERATOR_ROLES, OPERATOR_STATE_ROLE, CustomRoles, Role
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT
from verify.access import matrix, runbook
from verify.access.model import (
    Model,
    Result,
    bootstrap_plan,
    evaluate,
    operator_reach,
    operators,
    people,
    role_definitions,
    stand_in_group,
)
from verify.access.operations import per_group_need
from verify.access.rbac import short_scope

# The whole permission model and bootstrap program runs.
pytestmark = pytest.mark.slow

GROUP = "3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c"


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_a_member_can_do_every_runbook_step(model: Model, result: Result, stack: str) -> None:
    done = [op for op in model.operations if op.identity == operators(stack)]
    # One operation per distinct command (as written) and request: every one is modelled.
    requests = {(c.text, r) for c in runbook.commands(stack) for r in c.requests}
    triage = {(s.text, r) for s in runbook.triage_steps() for r in s.requests}
    assert len(done) == 2 + len(triage) + len(requests) and len(requests) > 50 and len(triage) > 10
    assert all(result.allowed[op] for op in done), [op.where for op in done if not result.allowed[op]]
    assert any("set it to *Acknowledged*" in op.where for op in done)
    assert any("az monitor log-analytics query" in op.where for op in done)


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


def test_negative_control_without_the_kubernetes_operator_role_nodes_namespaces_and_crs_are_denied(
    model: Model,
) -> None:
    # What AKS RBAC Writer does not give: the cordon and drain, the manual apply, the canary's patch.
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.name == "operators-prod-kubernetes"]
    denied = [op for op in evaluate(model.without(grant)).denied if op.identity == operators("prod")]
    actions = {op.need.action.rsplit("managedClusters/", 1)[1] for op in denied}
    assert actions == {
        "nodes/read",
        "nodes/write",
        "namespaces/write",
        "customresources/read",
        "customresources/write",
    }
    assert any("kubectl cordon" in op.where for op in denied)
    assert any("kubectl drain" in op.where for op in denied)
    assert any("kubectl apply -k" in op.where for op in denied)
    assert any("patch httproute" in op.where for op in denied)


def test_the_reader_role_would_not_do_for_a_rollback(model: Model) -> None:
    # Why Writer and not Reader: `kubectl rollout undo` writes the Deployment.
    [writer] = [
        a for a in model.assignments_of(operators("prod")) if a.role.id == Role.AKS_RBAC_WRITER.value.id
    ]
    reader = type(writer)(
        writer.name, writer.principal, _role(model, Role.AKS_RBAC_READER), writer.scope, source=writer.source
    )
    denied = evaluate(model.without(writer).with_assignment(reader)).denied
    places = {op.where for op in denied if op.identity == operators("prod")}
    assert any("rollout undo" in p for p in places) and any("delete pod" in p for p in places)
    # Beyond writes, Reader lacks only Secrets (the Gateway certificate check lists them): AKS docs, "AKS
    # built-in roles" (Reader does not allow viewing Secrets).
    reads = {op.need.action for op in denied if op.identity == operators("prod")}
    reads = {a for a in reads if not a.endswith(("/write", "/delete"))}
    assert reads == {"Microsoft.ContainerService/managedClusters/secrets/read"}


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
    operator_role = CustomRoles.KUBERNETES_OPERATOR.definition_id("m7k2")
    responder = CustomRoles.ALERT_RESPONDER.definition_id("m7k2")
    assert sorted(str(r.get("roleDefinitionId")).rsplit("/", 1)[-1] for r in granted) == sorted(
        [*(role.value.id for role in (*OPERATOR_ROLES, OPERATOR_STATE_ROLE)), operator_role, responder]
    )
    [custom] = [r for r in granted if str(r.get("roleDefinitionId")).endswith(operator_role)]
    assert "customResources:kind] StringEqualsIgnoreCase 'httproutes'" in str(custom.get("condition"))
    scopes = {str(r.get("roleDefinitionId")).rsplit("/", 1)[-1]: str(r.get("scope")) for r in granted}
    assert scopes.pop(OPERATOR_STATE_ROLE.value.id).endswith("/blobServices/default/containers/state-prod")
    assert all(scope.endswith("/resourceGroups/rg-muse-prod-m7k2") for scope in scopes.values())


def test_negative_control_the_placeholder_gets_no_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _bootstrap_with(monkeypatch, "00000000-0000-0000-0000-000000000000") == []


def _grants_shown_as_held(markdown: str, model: Model) -> list[str]:
    """The grants of a pending operators' group (unset or placeholder) that the access matrix shows without
    saying they exist only once the group is set: in its row of the identities table and in its section."""
    found = []
    for key in (operators("dev"), operators("prod")):
        section = markdown.split(f"### `{key}`", 1)[1].split("\n### ", 1)[0]
        # Its row of the identities table (the first table; the prohibitions table names it again).
        row = next(line for line in markdown.splitlines() if line.startswith(f"| `{key}` |"))
        for grant in model.assignments_of(key):
            if not grant.pending:
                continue
            plain = f"{grant.role.name} on {short_scope(grant.scope)}"
            for line in [row, *section.splitlines()]:
                for shown in line.split(plain)[1:]:
                    if PENDING not in shown.split("<br>")[0].split(" | ")[0]:
                        found.append(f"{key}: {plain}")
    return found


PENDING = "if `muse:operatorsGroupObjectId` is set"


def test_the_matrix_shows_an_unset_groups_grants_as_conditional(model: Model, result: Result) -> None:
    # dev leaves the group unset, prod has the placeholder: neither group holds anything in Azure yet.
    assert all(a.pending for key in ENVIRONMENTS for a in model.assignments_of(operators(key)))
    rendered = matrix.render("notice", model, result)
    assert PENDING + ": unset in Pulumi.dev.yaml" in rendered
    assert PENDING + ": a placeholder in Pulumi.prod.yaml" in rendered
    assert _grants_shown_as_held(rendered, model) == []


def test_negative_control_grants_without_the_condition_are_caught(model: Model, result: Result) -> None:
    held = replace(model, assignments=[replace(a, pending="") for a in model.assignments])
    stripped = matrix.render("notice", held, evaluate(held))
    assert PENDING not in stripped
    # The check reads the pending flag from `model`: the stripped rendering shows every one of them as held.
    assert len(_grants_shown_as_held(stripped, model)) >= 8


def test_a_real_group_is_granted_by_the_bootstrap_plan_not_modelled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Once the key names a group, the grants are the bootstrap plan's own (source "bootstrap"), not pending.
    from verify.access import model as access_model

    original = access_model.read_stack

    def read(name: str, *args: Any, **kwargs: Any) -> Any:
        files = original(name, *args, **kwargs)
        if name == "dev":
            return replace(files, config={**files.config, "muse:operatorsGroupObjectId": GROUP})
        return files

    monkeypatch.setattr(access_model, "read_stack", read)
    facts = access_model.build().stacks["dev"]
    identity, modelled, _ = access_model.people("dev", facts, {})
    assert identity.principal == GROUP and modelled == []


def test_the_pending_grants_are_the_bootstrap_programs_own(model: Model) -> None:
    # Modelled from a run of bootstrap/__main__.py with a stand-in group id, not from a copy of its roles.
    for env in ENVIRONMENTS:
        granted = model.assignments_of(operators(env))
        assert {a.principal for a in granted} == {stand_in_group(env)}
        assert all(a.pending and a.name.startswith(f"operators-{env}-") for a in granted)


def test_negative_control_a_bootstrap_condition_on_reads_only_opens_every_custom_resource_write(
    model: Model,
) -> None:
    # The mutation a copy of the grants would miss: the bootstrap's condition bounds reads only, so the role's
    # customresources/write reaches every kind (an Istio AuthorizationPolicy: a prohibition).
    source = (REPO_ROOT / "bootstrap" / "__main__.py").read_text(encoding="utf-8")
    weakened = source.replace(
        "only_custom_resources(list(CUSTOM_RESOURCES), OPERATOR_CUSTOM_RESOURCE_VERBS)",
        'only_custom_resources(list(CUSTOM_RESOURCES), ("read",))',
    )
    assert weakened != source
    roles = role_definitions(bootstrap_plan()[0])
    _, granted, _ = people("prod", model.stacks["prod"], roles, bootstrap_source=weakened)
    kept = [a for a in model.assignments if a.principal != stand_in_group("prod")]
    assert not [v for v in evaluate(model).violations if v[1] == operators("prod")]
    violations = evaluate(replace(model, assignments=[*kept, *granted])).violations
    assert {(p.why, key) for p, key, _ in violations} == {
        ("write authorizationpolicies (security.istio.io) in prod's cluster", operators("prod"))
    }


def test_negative_control_without_the_alert_responder_the_acknowledge_step_is_denied(model: Model) -> None:
    # The runbook's first triage step: set the alert to Acknowledged (alerts/changestate/action).
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.name == "operators-prod-alerts"]
    denied = [op for op in evaluate(model.without(grant)).denied if op.identity == operators("prod")]
    assert {(op.need.action, op.where.split(": ", 1)[1]) for op in denied} == {
        (
            "Microsoft.AlertsManagement/alerts/changestate/action",
            "Open the alert in the portal and set it to *Acknowledged*",
        )
    }


def test_negative_control_without_reader_the_portal_and_log_queries_are_denied(model: Model) -> None:
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.role.id == Role.READER.value.id]
    denied = [op for op in evaluate(model.without(grant)).denied if op.identity == operators("prod")]
    actions = {op.need.action for op in denied}
    assert "Microsoft.AlertsManagement/alerts/read" in actions
    assert "Microsoft.OperationalInsights/workspaces/query/ContainerLogV2/read" in actions
    assert any("az monitor log-analytics query" in op.where for op in denied)
    assert not any("kubectl" in op.where for op in denied)  # Kubernetes is the AKS roles' alone


def test_the_operator_roles_kinds_are_the_ones_muse_deploys() -> None:
    assert sorted(OPERATOR_CUSTOM_RESOURCES) == sorted(CUSTOM_RESOURCES)


def _per_group(model: Model) -> Model:
    """The model with each custom resource request of prod's operators checked the other way AKS may check
    it (verify/access/operations.py per_group_need)."""
    return replace(
        model,
        operations=[
            replace(op, need=per_group_need(op.need)) if op.identity == operators("prod") else op
            for op in model.operations
        ],
    )


def test_a_member_can_do_the_custom_resource_steps_when_aks_checks_them_per_group(model: Model) -> None:
    checked = _per_group(model)
    assert any("gateway.networking.k8s.io/httproutes/write" in op.need.action for op in checked.operations)
    assert [op.where for op in evaluate(checked).denied if op.identity == operators("prod")] == []


def test_negative_control_without_the_per_group_actions_the_patch_is_denied(model: Model) -> None:
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.name == "operators-prod-kubernetes"]
    # Only `managedClusters/<resource>/<verb>` (nodes, namespaces, customresources): no per-group action.
    kept = tuple(a for a in grant.role.permissions.data_actions if a.count("/") == 3)
    narrower = replace(
        grant, role=replace(grant.role, permissions=replace(grant.role.permissions, data_actions=kept))
    )
    checked = _per_group(model.without(grant).with_assignment(narrower))
    denied = [op for op in evaluate(checked).denied if op.identity == operators("prod")]
    assert any("patch httproute" in op.where for op in denied)
    assert {op.need.action.split("managedClusters/")[1].split("/")[0] for op in denied} == {
        "gateway.networking.k8s.io",
        "secrets-store.csi.x-k8s.io",
    }


def test_the_matrix_says_writer_reaches_kube_system(model: Model, result: Result) -> None:
    # Writer at the resource group covers every namespace: a member can borrow any ServiceAccount there.
    assert operator_reach(model, "prod") == [
        "serviceaccounts/write in kube-system",
        "pods/write in kube-system",
        "secrets/read in kube-system",
    ]
    rendered = matrix.render("notice", model, result)
    assert "What `operators (prod)` reaches beyond the runbook" in rendered
    assert "not no\nescalation" in rendered


def test_negative_control_writer_scoped_to_muses_namespace_reaches_no_kube_system(
    model: Model, result: Result
) -> None:
    # What a namespace-scope assignment (`<cluster id>/namespaces/muse-prod`) would change: the text goes.
    [writer] = [
        a for a in model.assignments_of(operators("prod")) if a.role.id == Role.AKS_RBAC_WRITER.value.id
    ]
    scoped = replace(writer, scope=f"{model.stacks['prod'].cluster_id}/namespaces/muse-prod")
    narrowed = model.without(writer).with_assignment(scoped)
    assert operator_reach(narrowed, "prod") == []
    assert "What `operators (prod)` reaches" not in matrix.render("notice", narrowed, result)
