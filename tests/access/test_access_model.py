"""The permission model of Muse's identities, with a negative control for every property it proves.

The model (verify/access/model.py) reads the bootstrap and stack plans and the workflow files; these tests
edit its inputs (a grant removed or added, a workflow changed) and show each check fails, naming what broke.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from rbac.roles import DELEGABLE_BY_CI, PrincipalType, Role, only_assigning, only_reading_custom_resources
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT
from stack.providers import RESOURCE_PROVIDERS
from verify.access.model import (
    Model,
    Result,
    assemble,
    bootstrap_plan,
    evaluate,
    read_only_identities,
    stack_plans,
    writes_allowed,
)
from verify.access.operations import arm_type
from verify.access.rbac import Assignment, builtin_role, in_scope
from verify.workflows import Workflow, load_all

# Slow (the bootstrap and stack plans again, one evaluation per grant): make test-fast leaves it out.
pytestmark = pytest.mark.slow

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _grant(model: Model, identity: str, role: str, scope: str, name: str = "extra") -> Assignment:
    return Assignment(name, model.identities[identity].principal, builtin_role(role), scope, source="test")


def _edited(file: str, old: str, new: str) -> tuple[Workflow, ...]:
    """Every workflow as GitHub runs it after `old` -> `new` in `file`: all of them copied to a scratch folder
    and read by load_all there, so an edit of a reusable workflow (deploy.yml) reaches each job that calls it,
    expanded with that call's inputs, exactly as the `model` fixture reads the real files."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        for path in WORKFLOWS.iterdir():
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                if path.name == file:
                    assert old in text, old
                    text = text.replace(old, new)
                (directory / path.name).write_text(text, encoding="utf-8")
        workflows = load_all(directory)
    assert file in {w.file_name for w in workflows}, file
    return tuple(replace(w, path=WORKFLOWS / w.file_name) for w in workflows)


def test_every_identity_and_job_is_derived_from_the_plans_and_workflows(model: Model) -> None:
    github = {k for k, v in model.identities.items() if v.kind == "github"}
    assert github == {"preview-dev", "preview-prod", "build", "deploy-dev", "deploy-prod"}
    # A reusable workflow (only `workflow_call`) never runs on its own: its jobs run as each caller's
    # (load_all expands them, `<call>.<job>`), with the token the call grants.
    workflows = load_all(WORKFLOWS)
    called_only = [wf for wf in workflows if set(wf.triggers) == {"workflow_call"}]
    credentialed = {
        (wf.file_name, job.id)
        for wf in workflows
        if wf not in called_only
        for job in wf.jobs.values()
        if isinstance(job.permissions, dict) and job.permissions.get("id-token") == "write"
    }
    runs = {(run.workflow, run.job) for run in model.jobs if run.identity}
    assert runs == credentialed
    # ...and every job of a reusable workflow is modelled through at least one call of it.
    assert called_only
    for wf in called_only:
        for job_id in wf.jobs:
            assert any(job.endswith(f".{job_id}") for _, job in runs), (wf.file_name, job_id)
    assert len(model.operations) > 300  # every resource of both stacks, per command, plus the CLI steps


def test_every_operation_is_allowed(result: Result) -> None:
    assert [f"{op.identity}: {op.where}: {op.need.action}" for op in result.denied] == []
    assert result.problems == []


def test_no_grant_is_unneeded(result: Result) -> None:
    assert [f"{a.name}: {a.label}" for a in result.unneeded] == []


def test_removing_any_grant_denies_an_operation_and_names_it(model: Model) -> None:
    for assignment in model.assignments:
        denied = evaluate(model.without(assignment)).denied
        assert denied, f"nothing needs {assignment.name} ({assignment.label})"
        assert all(op.where and op.need.action for op in denied)


PROD_PREVIEWS = (
    "drift.yml drift (prod): pulumi preview (prod)",
    "main.yml deploy-prod.preview: pulumi preview (prod)",
)
# Every custom resource prod's previews refresh: the SecretProviderClass and the Gateway API objects (CRDs
# that AKS's managed Gateway API installs, so customresources/read with group and kind, not a built-in group).
GATEWAY_API_READS = (
    "Gateway 'muse-gateway' (read)",
    "HTTPRoute 'muse-httproute' (read)",
    "HTTPRoute 'muse-httpsredirectroute' (read)",
)
SPC_READ = "SecretProviderClass 'muse-secretproviderclass' (read)"


def _custom_resource_reader(model: Model, identity: str) -> Assignment:
    [reader] = [a for a in model.assignments_of(identity) if a.role.name.startswith("Muse Kubernetes custom")]
    return reader


def test_removing_the_custom_resource_reader_breaks_drift_on_every_custom_resource(model: Model) -> None:
    reader = _custom_resource_reader(model, "preview-prod")
    denied = evaluate(model.without(reader)).denied
    # Both prod previews refresh them: the drift check and the diff before the approval.
    assert {(op.where, op.need.why) for op in denied} == {
        (where, f"pulumi preview --refresh (prod): {what}")
        for where in PROD_PREVIEWS
        for what in (SPC_READ, *GATEWAY_API_READS)
    }
    assert {op.need.action for op in denied} == {
        "Microsoft.ContainerService/managedClusters/customresources/read"
    }


IMPORT_SOURCE_NEEDS = sorted(
    [
        (
            "main.yml deploy-prod.deploy: az acr import (prod)",
            "Microsoft.ContainerRegistry/registries/read",
            "az acr import: source registry (dev)",
        ),
        (
            "main.yml deploy-prod.deploy: az acr import (prod)",
            "Microsoft.ContainerRegistry/registries/pull/read",
            "az acr import: source image (dev)",
        ),
    ]
)


def test_prods_import_is_allowed_by_reader_on_the_dev_registry_only(model: Model, result: Result) -> None:
    source = [
        (op, granting)
        for op, granting in result.allowed.items()
        if op.identity == "deploy-prod"
        and op.need.why.startswith("az acr import: source")
        and "(dev)" in op.need.why
    ]
    assert sorted((op.where, op.need.action, op.need.why) for op, _ in source) == IMPORT_SOURCE_NEEDS
    for op, granting in source:
        assert op.need.scope == model.stacks["dev"].registry_id
        assert [(a.name, a.role.name, a.scope) for a in granting] == [
            ("image-import-acr-import-source", "Reader", model.stacks["dev"].registry_id)
        ]


def test_negative_control_without_the_registry_grant_prods_import_is_denied_naming_it(model: Model) -> None:
    [reader] = [a for a in model.assignments_of("deploy-prod") if a.role.name == "Reader"]
    denied = evaluate(model.without(reader)).denied
    assert sorted((op.where, op.need.action, op.need.why) for op in denied) == IMPORT_SOURCE_NEEDS


def test_dev_deployer_gives_reader_to_prods_deployer_and_to_no_one_else(model: Model, result: Result) -> None:
    reader_probes = {p.why for p in model.prohibitions if "Reader" in p.why and "Secrets" not in p.why}
    for grantee in ("preview-dev", "preview-prod", "deploy-dev", "build", "another service principal"):
        assert f"grant Reader in dev to {grantee}" in reader_probes
        assert f"delete a Reader assignment of {grantee} in dev" in reader_probes
    assert "grant Reader in dev to deploy-prod" not in reader_probes
    assert "grant Reader in prod to deploy-prod" in reader_probes  # prod's deployer gives Reader to no one
    assert "grant Reader in dev to muse-workload (dev)" in reader_probes  # the stacks' managed identities
    assert result.violations == []
    # ...while the dev stack's own Reader for prod's deployer (create, replace, delete) stays allowed.
    grant = [op for op in result.allowed if "image-import-acr-import-source" in op.need.why]
    assert {op.need.action for op in grant} >= {
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
    }
    assert all(result.allowed[op] for op in grant if op.identity == "deploy-dev")


def test_negative_control_reader_delegable_like_the_others_reaches_any_principal(model: Model) -> None:
    [delegation] = [
        a
        for a in model.assignments_of("deploy-dev")
        if a.role.name == "Role Based Access Control Administrator"
    ]
    loose = replace(
        delegation,
        condition=only_assigning(
            [*DELEGABLE_BY_CI, Role.READER],
            PrincipalType.SERVICE_PRINCIPAL,
            never_to=[model.identities[k].principal for k in ("preview-dev", "preview-prod", "deploy-dev")],
        ),
    )
    violations = evaluate(model.without(delegation).with_assignment(loose)).violations
    whys = {p.why for p, _, _ in violations}
    assert "grant Reader in dev to another service principal" in whys
    assert "grant Reader in dev to muse-workload (dev)" in whys
    # The delete branch holds the same limits as the grant (never_to included), so preview-dev's Reader stays
    # safe even here; any other service principal's does not.
    assert "delete a Reader assignment of another service principal in dev" in whys
    assert "delete a Reader assignment of preview-dev in dev" not in whys
    assert "grant Reader in dev to deploy-prod" not in whys


def test_a_reader_condition_without_the_gateway_api_kinds_denies_exactly_their_reads(model: Model) -> None:
    # Negative control of the condition's kinds: the reader narrowed to the SecretProviderClass (what it was
    # before the Gateway API) leaves the read-only identities unable to refresh the Gateway and routes.
    reader = _custom_resource_reader(model, "preview-prod")
    narrowed = replace(
        reader,
        condition=only_reading_custom_resources([("secrets-store.csi.x-k8s.io", "secretproviderclasses")]),
    )
    denied = evaluate(model.without(reader).with_assignment(narrowed)).denied
    assert {(op.where, op.need.why) for op in denied} == {
        (where, f"pulumi preview --refresh (prod): {what}")
        for where in PROD_PREVIEWS
        for what in GATEWAY_API_READS
    }


def test_prods_import_fails_with_acr_pull_on_the_source_as_before(model: Model) -> None:
    [reader] = [a for a in model.assignments_of("deploy-prod") if a.role.name == "Reader"]
    before = model.without(reader).with_assignment(_grant(model, "deploy-prod", "AcrPull", reader.scope))
    denied = evaluate(before).denied
    assert [(op.where, op.need.action) for op in denied] == [
        (
            "main.yml deploy-prod.deploy: az acr import (prod)",
            "Microsoft.ContainerRegistry/registries/read",
        )
    ]


def test_an_extra_grant_is_reported_unneeded(model: Model) -> None:
    # The deployer's former Key Vault Secrets Officer: the secret is written through ARM (Contributor).
    extra = _grant(model, "deploy-dev", "Key Vault Secrets Officer", model.stacks["dev"].group_id)
    assert evaluate(model.with_assignment(extra)).unneeded == [extra]


def test_previews_and_dev_cannot_read_prod_secrets_or_write_prod_state(model: Model, result: Result) -> None:
    assert result.violations == []
    covered = {(who, p.action) for p in model.prohibitions for who in p.identities if "prod" in p.why}
    for identity in ("preview-dev", "deploy-dev", "build"):
        assert (identity, "Microsoft.KeyVault/vaults/keys/decrypt/action") in covered
        assert (identity, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write") in covered
    assert (
        "preview-prod",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
    ) in covered


@pytest.mark.parametrize(
    ("identity", "role", "scope_of"),
    [
        ("preview-dev", "Storage Blob Data Contributor", "state_container"),
        ("deploy-dev", "Key Vault Crypto User", "state_key"),
        ("preview-prod", "Storage Blob Data Contributor", "state_container"),
        ("build", "Storage Blob Data Reader", "state_container"),
    ],
)
def test_negative_control_a_grant_on_prods_state_is_a_violation(
    model: Model, identity: str, role: str, scope_of: str
) -> None:
    grant = _grant(model, identity, role, getattr(model.stacks["prod"], scope_of))
    violations = evaluate(model.with_assignment(grant)).violations
    assert violations and all(who == identity and a == grant for _, who, a in violations)
    assert all("prod" in p.why for p, _, _ in violations)


def test_one_shared_state_container_and_key_would_break_isolation(model: Model) -> None:
    # The old layout: every CI identity on one container and one key. Granting dev's deployer the state
    # account's scope (which holds both containers) is that layout, and the model refuses it.
    account = model.stacks["prod"].state_container.rsplit("/blobServices/", 1)[0]
    grant = _grant(model, "deploy-dev", "Storage Blob Data Contributor", account)
    whys = {p.why for p, _, _ in evaluate(model.with_assignment(grant)).violations}
    assert {"read prod's state", "write prod's state", "delete prod's state"} <= whys


def test_read_only_identities_hold_no_role_that_writes(model: Model) -> None:
    for identity in read_only_identities(model):
        assert [w for a in model.assignments_of(identity) for w in writes_allowed(a.role)] == [], identity
    # Negative controls: what previews held before, and a role that writes.
    assert writes_allowed(builtin_role("Key Vault Crypto User"))
    assert writes_allowed(builtin_role("Storage Blob Data Contributor"))


def test_a_preview_refused_a_dry_run_is_still_allowed_to_preview(model: Model, result: Result) -> None:
    # pulumi-kubernetes tries a server-side dry run (a write) and falls back when Forbidden: optional.
    dry_runs = [op for op in result.allowed if op.identity == "preview-dev" and "dry run" in op.need.why]
    assert dry_runs and all(op.need.optional and not result.allowed[op] for op in dry_runs)


def test_pull_requests_previewing_prod_would_be_denied() -> None:
    # The preview matrix is the list's first environment (from the setup job); a PR previewing every stack:
    workflows = _edited(
        "pull-request.yml",
        '        stack: ["${{ needs.environments.outputs.first }}"]\n',
        "        stack: ${{ fromJSON(needs.environments.outputs.environments) }}\n",
    )
    denied = evaluate(assemble(workflows)).denied
    prod = {op.need.action for op in denied if op.where.startswith("pull-request.yml preview (prod)")}
    assert "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read" in prod
    assert "Microsoft.KeyVault/vaults/keys/decrypt/action" in prod


def test_a_job_whose_subject_its_identity_does_not_trust_is_found() -> None:
    # The deploy job without its environment: subject ref:refs/heads/main, which only the build identity
    # trusts, and its client id falls back to the repository level, where AZURE_CLIENT_ID is not set. It is
    # one job of deploy.yml, so every environment's call of it breaks (and nothing else does).
    workflows = _edited(
        "deploy.yml",
        "    environment:\n"
        "      name: ${{ inputs.environment }}\n"
        "      url: ${{ steps.deploy.outputs.museUrl }}\n",
        "",
    )
    problems = evaluate(assemble(workflows)).problems
    assert {p.split(":", 1)[0] for p in problems} == {
        f"main.yml deploy-{environment}.deploy" for environment in ENVIRONMENTS
    }, problems


def test_a_job_pointed_at_another_stacks_state_is_found() -> None:
    workflows = _edited(
        "drift.yml",
        "      PULUMI_BACKEND_URL: ${{ vars.PULUMI_BACKEND_URL }}",
        "      PULUMI_BACKEND_URL: azblob://x",
    )
    problems = evaluate(assemble(workflows)).problems
    assert any("drift.yml drift (prod)" in p and "PULUMI_BACKEND_URL" in p for p in problems), problems


def test_an_unmodelled_command_in_a_credentialed_job_is_found() -> None:
    workflows = _edited(
        "deploy.yml",
        '        run: scripts/ci/tag-latest.sh "$STACK" "$IMAGE_DIGEST"',
        "        run: az keyvault secret show --vault-name x --name y",
    )
    problems = evaluate(assemble(workflows)).problems
    # Found in each call of the deploy job, named by the job it runs as.
    assert {p.split(":", 1)[0] for p in problems if "unmodelled command: az keyvault secret show" in p} == {
        f"main.yml deploy-{environment}.deploy" for environment in ENVIRONMENTS
    }, problems


def test_every_arm_namespace_is_registered_by_the_bootstrap() -> None:
    namespaces = set()
    plans = [bootstrap_plan()[1], *(p.outputs for p in stack_plans().values())]
    for outputs in plans:
        for (type_token, _), values in outputs.items():
            resource_id = str(values.get("id", ""))
            if type_token.startswith("azure-native:") and resource_id.startswith("/subscriptions/"):
                namespaces.add(arm_type(resource_id).split("/")[0])
    always = {"Microsoft.Authorization", "Microsoft.Resources"}  # registered in every subscription
    assert namespaces - always <= set(RESOURCE_PROVIDERS), namespaces - always - set(RESOURCE_PROVIDERS)
    assert {"Microsoft.ContainerService", "Microsoft.KeyVault", "Microsoft.Insights"} <= namespaces


def test_every_grant_is_within_its_identitys_environment_or_named_cross_environment(model: Model) -> None:
    for key in ("preview-dev", "deploy-dev", "preview-prod"):
        other = model.stacks["prod" if key.endswith("dev") else "dev"]
        assert not [a for a in model.assignments_of(key) if in_scope(a.scope, other.group_id)], key
    dev = model.stacks["dev"]
    crossing = [a for a in model.assignments_of("deploy-prod") if in_scope(dev.group_id, a.scope)]
    # The import source, nothing else of dev: Reader on the dev registry, granted by the dev stack.
    assert [(a.role.name, a.scope, a.source) for a in crossing] == [("Reader", dev.registry_id, "dev")]
    assert not [a for a in model.assignments_of("deploy-prod") if in_scope(a.scope, dev.group_id)]


def test_model_without_jobs_has_only_the_runtime_operations() -> None:
    bare = assemble(())
    assert {op.identity.split(" ")[0] for op in bare.operations} == {
        "cluster-kubelet",
        "muse-workload",
        "cluster-control-plane",
        "gateway-tls",  # the application routing operator reads prod's certificate as it
        "operators",  # people, from docs/runbook.md (tests/access/test_people.py), not from a workflow
    }
    # Then every CI grant is unneeded: the model really reads what each grant is for from the workflows.
    unneeded = {a.name for a in evaluate(replace(bare)).unneeded}
    assert "dev-contributor" in unneeded and "preview-dev-reader" in unneeded


def test_no_deployer_may_grant_a_role_to_a_ci_identity(model: Model, result: Result) -> None:
    probes = {
        (p.identities, p.why)
        for p in model.prohibitions
        if p.action == "Microsoft.Authorization/roleAssignments/write"
    }
    for stack in ENVIRONMENTS:
        for grantee in ("preview-dev", "preview-prod", "deploy-dev", "deploy-prod", "build"):
            assert ((f"deploy-{stack}",), f"grant Key Vault Secrets User in {stack} to {grantee}") in probes
    assert result.violations == []
    # ...while the dev stack's own AcrPush for the build identity stays allowed.
    push = next(a for a in model.assignments if a.source == "dev" and a.role.name == "AcrPush")
    assert push.principal == model.identities["build"].principal
    assert not result.denied


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_negative_control_a_delegation_without_the_principal_limit_lets_a_deployer_arm_a_preview(
    model: Model, stack: str
) -> None:
    # The condition as it was: roles and principal type only.
    [delegation] = [
        a
        for a in model.assignments_of(f"deploy-{stack}")
        if a.role.name == "Role Based Access Control Administrator"
    ]
    assert "roleAssignments:PrincipalId" in (delegation.condition or "")
    loose = replace(
        delegation, condition=only_assigning(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL)
    )
    violations = evaluate(model.without(delegation).with_assignment(loose)).violations
    whys = {p.why for p, _, _ in violations}
    assert f"grant Key Vault Secrets User in {stack} to preview-dev" in whys
    assert f"grant Key Vault Secrets User in {stack} to deploy-{stack}" in whys


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_negative_control_a_delete_branch_on_the_role_only_lets_a_deployer_remove_anyones_grant(
    model: Model, result: Result, stack: str
) -> None:
    whys = {p.why for p in model.prohibitions if p.action == "Microsoft.Authorization/roleAssignments/delete"}
    assert {f"remove AcrPull in {stack} from a user", f"remove AcrPull in {stack} from preview-dev"} <= whys
    assert result.violations == []
    [delegation] = [
        a
        for a in model.assignments_of(f"deploy-{stack}")
        if a.role.name == "Role Based Access Control Administrator"
    ]
    condition = delegation.condition or ""
    write_branch, _, _ = condition.partition(
        " AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'"
    )
    roles = ", ".join(sorted(r.definition_id for r in DELEGABLE_BY_CI))
    role_only = (
        f"{write_branch} AND ((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/delete'}})) OR "
        f"(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
        f"{{{roles}}}))"
    )
    loose = replace(delegation, condition=role_only)
    whys = {p.why for p, _, _ in evaluate(model.without(delegation).with_assignment(loose)).violations}
    assert f"remove AcrPull in {stack} from a user" in whys
    assert f"remove AcrPull in {stack} from preview-dev" in whys


def _gate_queries(result: Result) -> dict:
    return {
        op: granting for op, granting in result.allowed.items() if op.need.why == "canary gate: PromQL query"
    }


def test_each_deployers_canary_gate_query_is_allowed_on_its_own_workspace_only(
    model: Model, result: Result
) -> None:
    queries = _gate_queries(result)
    deployers = {op.identity for op in queries}
    assert deployers == {f"deploy-{env}" for env in model.stacks}
    for op, granting in queries.items():
        stack = model.stacks[op.identity.removeprefix("deploy-")]
        assert arm_type(op.need.scope) == "Microsoft.Monitor/accounts" and op.need.data
        assert op.need.scope == stack.workspace_id
        assert "canary_gate.py" in op.where or "get-access-token" in op.where
        assert [(a.role.name, a.scope) for a in granting] == [("Monitoring Data Reader", stack.group_id)]
    # no other identity may read any workspace's metrics: previews and the build hold no such grant
    for identity in model.identities:
        if identity.startswith(("preview-", "build")):
            assert not [a for a in model.assignments_of(identity) if a.role.name == "Monitoring Data Reader"]


def test_negative_control_without_the_data_reader_grant_the_gate_query_is_denied(model: Model) -> None:
    [reader] = [a for a in model.assignments_of("deploy-dev") if a.role.name == "Monitoring Data Reader"]
    denied = evaluate(model.without(reader)).denied
    assert {(op.identity, op.need.action, op.need.why) for op in denied} == {
        ("deploy-dev", "Microsoft.Monitor/accounts/data/metrics/read", "canary gate: PromQL query")
    }
    # Contributor (actions `*`) on the same group does not reach it: a data action needs dataActions
    assert [a.role.name for a in model.assignments_of("deploy-dev") if a.role.name == "Contributor"]
