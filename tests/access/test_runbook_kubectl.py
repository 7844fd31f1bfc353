"""The runbook's kubectl commands, read from docs/runbook.md (verify/access/runbook.py), and the proof that an
operators' group member may run each one with the grants the bootstrap gives the group, and nothing more.

How kubectl requests map to data actions: kubeguard/guard authz/providers/azure/rbac/checkaccessreqhelper.go
(the verbs, subresources as their resource) and MicrosoftDocs/azure-aks-docs articles/aks/
entra-id-authorization.md (custom resources: `customresources/<verb>`, conditions on group and kind)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rbac.roles import CustomRoles
from stack.environments import ENVIRONMENTS
from verify.access import runbook
from verify.access.model import (
    Model,
    Operation,
    bootstrap_plan,
    evaluate,
    operators,
    people,
    role_definitions,
)
from verify.access.operations import per_group_need
from verify.access.rbac import Permissions, RoleDefinition
from verify.access.runbook import Request, commands


def _fenced(*lines: str) -> str:
    return "intro\n\n```bash\n" + "\n".join(lines) + "\n```\n"


def _requests(markdown: str) -> set[tuple[str, str, str]]:
    return {(r.group, r.resource, r.verb) for c in commands("prod", markdown) for r in c.requests}


def test_the_runbook_itself_needs_nodes_namespaces_and_custom_resources() -> None:
    # What AKS RBAC Writer does not give, found in docs/runbook.md, not in a hand-written list.
    found = _requests(runbook.RUNBOOK.read_text(encoding="utf-8"))
    assert {
        ("core", "nodes", "write"),  # kubectl cordon / drain
        ("core", "pods", "write"),  # the drain's evictions
        ("core", "namespaces", "write"),  # kubectl apply -k on a first bring-up
        ("gateway.networking.k8s.io", "httproutes", "write"),  # kubectl patch httproute
        ("gateway.networking.k8s.io", "gateways", "read"),  # kubectl wait / get gateway
        ("secrets-store.csi.x-k8s.io", "secretproviderclasses", "write"),  # apply -k
        ("apps", "deployments", "write"),  # rollout undo
    } <= found


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("kubectl cordon -l 'agentpool in (a)'", {("core", "nodes", "read"), ("core", "nodes", "write")}),
        (
            'for n in $(kubectl get nodes -o name); do kubectl drain "$n" --ignore-daemonsets; done',
            {
                ("core", "nodes", "read"),
                ("core", "nodes", "write"),
                ("core", "pods", "read"),
                ("core", "pods", "write"),
                ("apps", "daemonsets", "read"),
            },
        ),
        ("kubectl -n x logs <new pod> --previous | tail", {("core", "pods", "read")}),
        ("kubectl -n x logs job/check-1", {("batch", "jobs", "read"), ("core", "pods", "read")}),
        (
            "kubectl -n x rollout undo deployment/muse --to-revision=<n>   # a comment: kubectl delete ns x",
            {
                ("apps", "deployments", "read"),
                ("apps", "replicasets", "read"),
                ("apps", "deployments", "write"),
            },
        ),
        (
            "kubectl get secretproviderclasses.secrets-store.csi.x-k8s.io,secret",
            {("secrets-store.csi.x-k8s.io", "secretproviderclasses", "read"), ("core", "secrets", "read")},
        ),
        ("kubectl top nodes", {("metrics.k8s.io", "nodes", "read"), ("core", "nodes", "read")}),
        ("kubectl kustomize deploy/overlays/prod | less", set()),
    ],
)
def test_a_command_line_becomes_its_requests(line: str, expected: set[tuple[str, str, str]]) -> None:
    assert _requests(_fenced(line)) == expected


def test_inline_code_is_read_even_when_it_wraps_and_a_bare_name_is_a_mention() -> None:
    markdown = (
        "Move it: `kubectl -n muse-prod patch httproute muse --type=json -p\n'[]'`, or read `kubectl top`.\n"
    )
    found = commands("prod", markdown)
    assert [(c.line, c.text) for c in found] == [
        (1, "kubectl -n muse-prod patch httproute muse --type=json -p []"),
        (2, "kubectl top"),
    ]
    assert found[0].requests == (Request("gateway.networking.k8s.io", "httproutes", "write"),)
    assert found[1].requests == ()


def test_apply_sends_every_object_of_the_stacks_overlay() -> None:
    kinds = set(runbook.manifest_kinds(runbook.REPO_ROOT / "deploy" / "overlays" / "prod"))
    assert ("core", "namespaces") in kinds and ("gateway.networking.k8s.io", "httproutes") in kinds
    assert _requests(_fenced("kubectl apply -k deploy/overlays/$stack")) == {
        (group, plural, verb) for group, plural in kinds for verb in ("read", "write")
    }


@pytest.mark.parametrize(
    "line",
    ["kubectl -n x exec -it muse-1 -- sh", "kubectl -n x get widgets", "kubectl scale deploy/x --replicas=2"],
)
def test_negative_control_an_unmodelled_runbook_command_is_an_error(line: str) -> None:
    # A new runbook step cannot go unmodelled: the model refuses it, naming the line.
    with pytest.raises(ValueError, match=r"docs/runbook\.md:4: kubectl"):
        commands("prod", _fenced(line))


# --- the permission model: every runbook command is allowed, each grant and data action is needed --------


def _with_runbook(model: Model, markdown: str, stack: str = "prod") -> Model:
    """The model with the operators' operations of `stack` read from `markdown` instead of the runbook."""
    roles = role_definitions(bootstrap_plan()[0])
    _, _, done = people(stack, model.stacks[stack], roles, markdown)
    kept = [op for op in model.operations if op.identity != operators(stack)]
    return replace(model, operations=[*kept, *done])


def _denied(model: Model, stack: str = "prod") -> list[Operation]:
    return [op for op in evaluate(model).denied if op.identity == operators(stack)]


@pytest.mark.slow
def test_every_runbook_command_is_allowed_for_a_member(model: Model) -> None:
    for stack in ENVIRONMENTS:
        done = [op for op in model.operations if op.identity == operators(stack)]
        assert any("kubectl drain" in op.where for op in done)
        assert _denied(model, stack) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "line",
    [
        "kubectl delete node aks-muse-1",  # nodes/delete: AKS owns the nodes
        "kubectl -n muse-prod delete httproute muse",  # customresources/delete: not granted
        "kubectl -n muse-prod get rolebindings",  # rbac.authorization.k8s.io: nothing of it
    ],
)
def test_negative_control_a_runbook_command_needing_more_is_denied(
    model: Model, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rolebindings is no resource the parser knows (the runbook never names it): teach it, to reach the model.
    monkeypatch.setitem(runbook.RESOURCE_NAMES, "rolebindings", ("rbac.authorization.k8s.io", "rolebindings"))
    denied = _denied(_with_runbook(model, runbook.RUNBOOK.read_text(encoding="utf-8") + _fenced(line)))
    assert denied and all(line in op.where for op in denied)


@pytest.mark.slow
@pytest.mark.parametrize("action", CustomRoles.KUBERNETES_OPERATOR.data_actions)
def test_each_data_action_of_the_operator_role_is_needed(model: Model, action: str) -> None:
    # Least privilege: the role minus any one of its data actions denies a runbook command.
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.name == "operators-prod-kubernetes"]
    role = grant.role
    actions = tuple(a for a in role.permissions.data_actions if a != action)
    narrower = replace(grant, role=replace(role, permissions=Permissions(data_actions=actions)))
    changed = model.without(grant).with_assignment(narrower)
    if action.count("/") == 4:  # managedClusters/<group>/<plural>/<verb>: AKS's per-group check of a CR
        changed = replace(
            changed,
            operations=[replace(op, need=per_group_need(op.need)) for op in changed.operations],
        )
    denied = _denied(changed)
    assert denied and {op.need.action for op in denied} == {action}


@pytest.mark.slow
def test_the_condition_keeps_custom_resources_to_muses_kinds(model: Model) -> None:
    [grant] = [a for a in model.assignments_of(operators("prod")) if a.name == "operators-prod-kubernetes"]
    assert grant.condition
    cluster = model.stacks["prod"].cluster_id
    kind = "Microsoft.ContainerService/managedClusters/customResources"

    def allowed(group: str, plural: str, verb: str) -> bool:
        attributes = {f"@Request[{kind}:group]": group, f"@Request[{kind}:kind]": plural}
        action = f"Microsoft.ContainerService/managedClusters/customresources/{verb}"
        return grant.allows(action, True, cluster, attributes)

    assert allowed("gateway.networking.k8s.io", "httproutes", "write")
    assert not allowed("security.istio.io", "authorizationpolicies", "write")  # another operator's CRD
    assert not allowed("gateway.networking.k8s.io", "httproutes", "delete")
    # Negative control: without its condition the same grant writes any custom resource.
    assert replace(grant, condition=None).allows(
        "Microsoft.ContainerService/managedClusters/customresources/write",
        True,
        cluster,
        {f"@Request[{kind}:group]": "security.istio.io", f"@Request[{kind}:kind]": "authorizationpolicies"},
    )


@pytest.mark.slow
def test_negative_control_rbac_admin_would_break_the_operator_prohibitions(model: Model) -> None:
    [writer] = [a for a in model.assignments_of(operators("prod")) if "Writer" in a.role.name]
    # What AKS RBAC Admin adds to Writer (roles and role bindings in a namespace), as one role.
    rbac = "Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/*"
    admin = replace(writer, role=RoleDefinition("probe", "RBAC admin", Permissions(data_actions=(rbac,))))
    broken = {
        p.why for p, who, _ in evaluate(model.with_assignment(admin)).violations if who == operators("prod")
    }
    assert "write rolebindings (rbac.authorization.k8s.io) in prod's cluster" in broken
    assert evaluate(model).violations == []


# --- the operator's path: a member's step uses only stacks whose group the path has set ---------------------


def _files_with_a_group() -> set[str]:
    from verify.access.model import _group_set

    return {stack for stack in ENVIRONMENTS if _group_set(stack)}


def test_every_member_step_of_the_path_uses_a_stack_whose_group_is_set_before_it() -> None:
    # Pending grants count as held in the model; the path must make them real first: a member's step on a
    # stack needs an earlier step that writes the stack's group into its file (the bootstrap reads it).
    steps = runbook.path_steps()
    assert {"dev"} <= {s for step in steps for s in step.member_stacks()}
    assert {"dev", "prod"} <= {s for step in steps for s in step.sets_group_of()}
    assert runbook.steps_without_grants(_files_with_a_group()) == []


# Step 1 of the path as it was: prod's group only.
OLD_STEP_ONE = """1. **Bootstrap** (an administrator): first write prod's operators' group
   and on-call address into `Pulumi.prod.yaml` itself (an editor, then commit):
   ```yaml
   # Pulumi.prod.yaml, under config: (the id: az ad group show --group <operators> --query id -o tsv)
   muse:operatorsGroupObjectId: <operators' group object id>
   muse:alertEmails: ["<on-call address>"]
   ```
   ```bash
   scripts/bootstrap.sh
   ```
"""


def test_negative_control_the_path_that_set_only_prods_group_is_caught() -> None:
    text = runbook.RUNBOOK.read_text(encoding="utf-8")
    head, rest = text.split("1. **Bootstrap**", 1)
    old = head + OLD_STEP_ONE + "2. **Manual dev deploy**" + rest.split("2. **Manual dev deploy**", 1)[1]
    assert runbook.steps_without_grants(set(), old) == [
        "step 3 (Reach the cluster): a member uses dev, whose group nobody set"
    ]
    # The same path is fine once dev's stack file itself names a real group.
    assert runbook.steps_without_grants({"dev"}, old) == []


# --- triage: the portal steps and az commands of "When an alert fires" -------------------------------------


def test_the_triage_steps_are_read_from_the_runbook() -> None:
    steps = {s.text: s for s in runbook.triage_steps()}
    [acknowledge] = [s for t, s in steps.items() if "Acknowledged" in t]
    assert ("Microsoft.AlertsManagement/alerts/changestate/action", "alert") in {
        (r.action, r.target) for r in acknowledge.requests
    }
    assert {"az monitor log-analytics query", "az monitor log-analytics workspace show"} <= set(steps)
    # The tables come from the runbook's KQL: `let x = KubePodInventory` and the statement after it.
    assert {"ContainerLogV2", "KubePodInventory", "Perf"} <= set(runbook.kusto_tables())


def test_negative_control_a_reworded_portal_step_or_an_unknown_az_command_is_an_error() -> None:
    text = runbook.RUNBOOK.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="no longer has the triage step"):
        runbook.triage_steps(text.replace("set it to *Acknowledged*", "acknowledge it"))
    extra = text.replace(
        runbook.TRIAGE_SECTION, runbook.TRIAGE_SECTION + "`az monitor metrics alert delete -n x`\n"
    )
    with pytest.raises(ValueError, match="az monitor metrics alert delete is not modelled"):
        runbook.triage_steps(extra)


# --- each environment's own names ------------------------------------------------------------------------


def test_dev_is_shown_its_own_commands() -> None:
    line = _fenced("kubectl -n muse-prod rollout history deployment/muse")
    assert [c.text for c in commands("dev", line)] == ["kubectl -n muse-dev rollout history deployment/muse"]
    assert [c.text for c in commands("prod", line)] == [
        "kubectl -n muse-prod rollout history deployment/muse"
    ]
    dev = [c.text for c in commands("dev")]
    assert dev and not [t for t in dev if "muse-prod" in t]


def test_negative_control_the_matrix_would_show_prod_commands_under_dev(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runbook, "for_stack", lambda command, stack: command)
    assert [c.text for c in commands("dev") if "muse-prod" in c.text]


def _suffixes() -> set[str]:
    from stack.files import read_stack

    return {read_stack(stack).config["muse:nameSuffix"] for stack in ENVIRONMENTS}


def test_the_runbook_spells_no_installations_suffix() -> None:
    # Names come from the wrapper (`scripts/stack <env> stack output ...`) or `<suffix>`: a fork or a new
    # suffix gets working commands.
    text = runbook.RUNBOOK.read_text(encoding="utf-8")
    assert _suffixes() and not [s for s in _suffixes() if s in text]
    assert 'rg="$(scripts/stack prod stack output resourceGroupName)"' in text


def test_negative_control_a_hard_coded_name_is_caught() -> None:
    [suffix] = _suffixes()
    text = runbook.RUNBOOK.read_text(encoding="utf-8") + f"\n`az aks show -g rg-muse-prod-{suffix}`\n"
    assert [s for s in _suffixes() if s in text] == [suffix]
