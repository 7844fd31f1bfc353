"""Collect what the governance documents say from this repository (`make export`; the service never runs it).

- the stack inventories: the offline plans (offline/engine.py) as Muse inventories, deterministic JSON;
- principal names: the mocked identities' ids mapped back to the resources that own them;
- the CI identities: the bootstrap project's plan (`run_stack("main", root=bootstrap/)`);
- the workflows: `.github/workflows/*.yml` read by verify/workflows.py, summarised as triggers, jobs, deploy
  steps and gates.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from export.governance.document import (
    GovernanceSources,
    RoleGrant,
    WorkflowJob,
    WorkflowSummary,
    grants_of,
    render_governance_doc,
)
from muse.governance.inventory import parse_inventory
from muse.resource_types import (
    ENTRA_APPLICATION,
    ENTRA_SERVICE_PRINCIPAL,
    ROLE_DEFINITION,
    USER_ASSIGNED_IDENTITY,
)
from offline.captured import StackPlan, all_plans, bootstrap_plan
from offline.engine import OfflinePlan
from offline.plan import key_properties
from rbac.roles import CustomRoles, Role
from stack.environments import requires_approval
from stack.files import REPO_ROOT
from verify.workflows import Job, Workflow, load_all

IDENTITY_TYPES = {
    USER_ASSIGNED_IDENTITY: "managed identity",
    ENTRA_SERVICE_PRINCIPAL: "Entra ID service principal",
}
DEPLOY_PATTERNS = (
    (re.compile(r"\bdocker push\b"), "image push"),
    (re.compile(r"\baz acr import\b"), "image import"),
    (re.compile(r"\bkubectl (apply|set)\b"), "kubectl apply"),
    (re.compile(r"\bpulumi (up|destroy)\b"), "pulumi up"),
    # `az acr import` within the stack's registry, moving `latest` after a successful deploy.
    (re.compile(r"\bscripts/ci/tag-latest\.sh\b"), "image retag (latest)"),
)


def inventory_json(inventory: dict[str, Any]) -> str:
    """The deterministic file form of an inventory: sorted keys, two-space indent, trailing newline."""
    return json.dumps(inventory, indent=2, sort_keys=True) + "\n"


def environment_of(plan: OfflinePlan, stack: str) -> str:
    """The stack's environment, as `python -m cli.plan --format json` derives it (the env tag)."""
    return next((r.get("tags.env") for r in plan.resources if r.get("tags.env")), stack)


def _production_environment(environment: str) -> bool:
    """The GitHub environment of a production-tier stack (its `muse:tier`, never its name)."""
    return requires_approval(environment)


@cache
def stack_plan(stack: str) -> StackPlan:
    """The export's cached plan of a stack (offline/captured.py: the plan plus each resource's mocked
    outputs)."""
    return next(p for p in all_plans() if p.label == stack)


def stack_inventory(stack: str) -> dict[str, Any]:
    plan = stack_plan(stack).plan
    return dict(plan.to_inventory(environment_of(plan, stack), stack_plan(stack).config.tier))


def principal_labels(outputs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for (type_token, name), values in sorted(outputs.items()):
        kind = IDENTITY_TYPES.get(type_token)
        if kind is None:
            continue
        for key in ("principalId", "objectId"):
            value = values.get(key)
            if isinstance(value, str) and value:
                labels[value] = f"{name} ({kind})"
    return labels


def role_names() -> dict[str, str]:
    """Role definition GUID -> name: the built-in roles, and the custom roles the bootstrap defines (by their
    display name, without the installation suffix)."""
    names = {role.definition_id: role.value.name for role in Role}
    plan, _ = bootstrap_plan()
    for definition in plan.of_type(ROLE_DEFINITION):
        custom = next((c for c in CustomRoles.ALL if c.key == definition.name), None)
        if custom is not None:
            names[str(definition.get("roleDefinitionId"))] = custom.display
    return names


def bootstrap_grants() -> list[RoleGrant]:
    plan, outputs = bootstrap_plan()
    inventory = parse_inventory(plan.to_inventory("bootstrap"))
    labels = principal_labels(outputs)
    # GitHub contexts per service principal: the federated credentials of its application.
    app_of_sp = {
        values.get("objectId"): values.get("clientId")
        for (t, _), values in outputs.items()
        if t == ENTRA_SERVICE_PRINCIPAL
    }
    subjects: dict[str, list[str]] = {}
    for r in plan.resources:
        if r.type.endswith("ApplicationFederatedIdentityCredential"):
            subjects.setdefault(str(r.get("applicationId")), []).append(str(r.get("subject")))
    app_ids = {
        values.get("clientId"): values.get("id")
        for (t, _), values in outputs.items()
        if t == ENTRA_APPLICATION
    }
    contexts: dict[str, tuple[str, ...]] = {}
    for sp_object_id, client_id in app_of_sp.items():
        app_resource_id = app_ids.get(client_id)
        found = subjects.get(str(app_resource_id), []) + subjects.get(str(client_id), [])
        contexts[str(sp_object_id)] = tuple(sorted(set(found)))
    return grants_of(inventory, labels, role_names(), contexts)


def key_property_rows(stack: str) -> dict[str, list[tuple[str, str]]]:
    plan = stack_plan(stack).plan
    return {r.urn: key_properties(r) for r in plan.resources if r.custom}


# ------------------------------------------------------------------------------------------------------
# Workflows


def _trigger_labels(workflow: Workflow) -> tuple[str, ...]:
    labels = []
    for trigger, detail in workflow.triggers.items():
        if trigger in ("push", "pull_request") and isinstance(detail, dict) and detail.get("branches"):
            labels.append(f"{trigger} ({', '.join(detail['branches'])})")
        elif trigger == "schedule" and isinstance(detail, list):
            labels.append("schedule (" + ", ".join(str(s.get("cron")) for s in detail) + ")")
        else:
            labels.append(str(trigger))
    return tuple(labels)


def _job_summary(job: Job, pull_request: bool) -> WorkflowJob:
    # Commands only: an `echo` that explains "run pulumi up" is not a deploy.
    scripts = "\n".join(
        line
        for _, script in job.run_scripts()
        for line in script.splitlines()
        if not line.strip().startswith(("echo ", "#"))
    )
    stacks: set[str] = set()
    if isinstance(job.matrix.get("stack"), list):
        stacks.update(str(s) for s in job.matrix["stack"])
    stack_env = job.env.get("STACK")
    if isinstance(stack_env, str) and "${{" not in stack_env:
        stacks.add(stack_env)
    commands = job.pulumi_commands
    pulumi_steps = job.pulumi_steps
    pack = any(s.policy_packs for s in pulumi_steps)
    for step in pulumi_steps:
        name = step.stack_name or ""
        if name and "$" not in name:  # `${{ matrix.stack }}` and `$STACK` come from the matrix / env above
            stacks.add(name)
    deploys = [label for pattern, label in DEPLOY_PATTERNS if pattern.search(scripts)]
    if "up" in commands or "destroy" in commands:
        deploys.append("pulumi up")
    deploys = sorted(set(deploys))
    if "pulumi up" in deploys:
        deploys = [f"pulumi up ({', '.join(sorted(stacks))})" if d == "pulumi up" else d for d in deploys]
    gates = []
    if job.environment:
        environment = job.environment.replace("${{ matrix.stack }}", "<stack>")
        # A production-tier stack's environment has required reviewers; the others only restrict who may enter
        # (main) and give the job its own OIDC subject (docs/github-setup.md).
        rules = (
            "required reviewers" if _production_environment(environment) else "main only, own OIDC subject"
        )
        gates.append(f"GitHub environment `{environment}` ({rules})")
    if job.needs:
        gates.append("after " + ", ".join(f"`{n}`" for n in job.needs))
    if job.condition:
        gates.append(f"if `{job.condition}`")
    if pull_request:
        permissions = job.permissions if isinstance(job.permissions, dict) else {}
        oidc = permissions.get("id-token") == "write"
        gates.append("pull request: read-only preview identity" if oidc else "pull request: no credentials")
    return WorkflowJob(
        id=job.id,
        name=job.name.replace("${{ matrix.stack }}", "<stack>"),
        runs_on_pull_requests=pull_request,
        deploys=tuple(deploys),
        stacks=tuple(sorted(stacks)),
        gate="; ".join(gates) or "none",
        policy_pack=pack,
        pulumi_commands=tuple(commands),
    )


def workflow_summaries(root: Path = REPO_ROOT) -> list[WorkflowSummary]:
    summaries = []
    for workflow in load_all(root / ".github" / "workflows"):
        if set(workflow.triggers) == {"workflow_call"}:
            continue  # a reusable workflow: its jobs are listed as those of each caller that runs them
        triggers = _trigger_labels(workflow)
        pull_request = any(t.startswith("pull_request") for t in triggers)
        summaries.append(
            WorkflowSummary(
                path=workflow.path.relative_to(root).as_posix(),
                name=workflow.name,
                triggers=triggers,
                jobs=tuple(_job_summary(job, pull_request) for job in workflow.jobs.values()),
            )
        )
    return summaries


def governance_sources(stack: str, notice: str, generated_files: list[str]) -> GovernanceSources:
    plan = stack_plan(stack)
    _, bootstrap_outputs = bootstrap_plan()
    principals = {**principal_labels(bootstrap_outputs), **principal_labels(plan.outputs)}
    return GovernanceSources(
        inventory=stack_inventory(stack),
        notice=notice,
        bootstrap_grants=bootstrap_grants(),
        principals=principals,
        role_names=role_names(),
        key_properties=key_property_rows(stack),
        workflows=workflow_summaries(),
        bicep_files=sorted(generated_files),
    )


def render_stack_doc(stack: str, notice: str, generated_files: list[str]) -> str:
    """`generated_files`: the IaC files of the export registry (infra/bicep/..., deploy/...) to link."""
    return render_governance_doc(governance_sources(stack, notice, generated_files))
