"""The governance document of one stack: docs/governance/<stack>.md.

Pure rendering from plain data (no Pulumi, no YAML, no repository access): export/governance/sources.py
collects the data from the offline plans and the workflow files, this module turns it into text.
Deterministic: every list is sorted or follows the inventory's (URN-sorted) order; nothing depends on time or
on the machine.

Sections: summary, resource inventory (components -> resources, key properties, tags), every policy with its
status and remediation, the RBAC matrix (stack role assignments plus the CI identities of the bootstrap
project), secrets and where they live, and the Bicep files and workflows (what each deploys, which gate
protects it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from muse.governance.inventory import Inventory, Resource
from muse.governance.policies import POLICIES, SECRET_MARKER, Evaluation, Severity, enforcement, evaluate
from muse.resource_types import KEY_VAULT_SECRET, ROLE_ASSIGNMENT
from rbac.conditions import delegation_summary
from rbac.roles import CustomRoles, Role


@dataclass(frozen=True)
class WorkflowJob:
    id: str
    name: str
    runs_on_pull_requests: bool
    deploys: tuple[str, ...]  # what the job changes: "pulumi up dev", "image push", ...; empty = read-only
    stacks: tuple[str, ...]
    gate: str  # what must happen before the job runs (environment approval, needs, if)
    policy_pack: bool  # the pulumi step runs with the Muse policy pack
    pulumi_commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowSummary:
    path: str  # repository-relative, e.g. .github/workflows/main.yml
    name: str
    triggers: tuple[str, ...]
    jobs: tuple[WorkflowJob, ...]


@dataclass(frozen=True)
class RoleGrant:
    principal: str  # a readable label ("cluster-kubelet (managed identity)") or the principal id
    role: str
    scope: str
    granted_by: str  # the resource that grants it
    condition: str = ""  # e.g. "may assign only: AcrPull, ..."
    contexts: tuple[str, ...] = ()  # GitHub OIDC subjects that can act as this principal


@dataclass
class GovernanceSources:
    """Everything the document says, as plain data."""

    inventory: dict[str, Any]  # the stack's Muse inventory (schema v1)
    notice: str  # the generated-file notice (first line)
    bootstrap_grants: list[RoleGrant] = field(default_factory=list)
    principals: dict[str, str] = field(default_factory=dict)  # principal id -> label
    role_names: dict[str, str] = field(default_factory=dict)  # role definition GUID -> name
    key_properties: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # urn -> rows
    workflows: list[WorkflowSummary] = field(default_factory=list)
    bicep_files: list[str] = field(default_factory=list)  # repository-relative paths
    link_prefix: str = "../../"  # from docs/governance/<stack>.md to the repository root


# What each role lets its holder do, in one line (the RBAC matrix's "can" column), from the role's own
# definition; the custom roles are named by their display name without the installation suffix.
ROLE_CAN = {role.value.name: role.value.can for role in Role} | {
    role.display: role.can for role in CustomRoles.ALL
}
# A role none of them defines (tests/governance/test_governance_doc.py keeps the docs free of it).
UNDESCRIBED = "see the role definition"


def cell(text: Any) -> str:
    """One markdown table cell: single line, pipes escaped."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def short_scope(scope: str) -> str:
    """`/subscriptions/<id>/resourceGroups/rg/providers/Microsoft.X/kind/name` -> `rg / kind name`."""
    parts = [p for p in scope.split("/") if p]
    if len(parts) >= 2 and parts[0] == "subscriptions":
        rest = parts[2:]
        if not rest:
            return "subscription"
        out: list[str] = []
        i = 0
        while i < len(rest):
            if rest[i] == "resourceGroups" and i + 1 < len(rest):
                out.append(f"resource group {rest[i + 1]}")
                i += 2
            elif rest[i] == "providers" and i + 1 < len(rest):
                i += 2  # the namespace; the type/name pairs follow
            elif i + 1 < len(rest):
                out.append(f"{rest[i]} {rest[i + 1]}")
                i += 2
            else:
                out.append(rest[i])
                i += 1
        return " / ".join(out)
    return scope


def role_name(role_definition_id: str, role_names: Mapping[str, str]) -> str:
    guid = role_definition_id.rstrip("/").rsplit("/", 1)[-1]
    return role_names.get(guid, guid)


def condition_summary(condition: str, role_names: Mapping[str, str]) -> str:
    if not condition:
        return ""
    delegable = delegation_summary(condition, role_names)
    if delegable:
        return "may assign only: " + delegable
    kinds = re.findall(r"customResources:kind\] StringEqualsIgnoreCase '([^']+)'", condition)
    return "custom resources: " + ", ".join(sorted(kinds)) if kinds else "conditional"


def grants_of(
    inventory: Inventory,
    principals: Mapping[str, str],
    role_names: Mapping[str, str],
    contexts: Mapping[str, tuple[str, ...]] | None = None,
) -> list[RoleGrant]:
    """The role assignments of an inventory as readable grants."""
    grants = []
    for r in inventory.resources:
        if r.type != ROLE_ASSIGNMENT:
            continue
        props = r.properties
        principal_id = str(props.get("principalId", ""))
        label = principals.get(principal_id, principal_id or "?")
        grants.append(
            RoleGrant(
                principal=label,
                role=role_name(str(props.get("roleDefinitionId", "")), role_names),
                scope=short_scope(str(props.get("scope", ""))),
                granted_by=r.name,
                condition=condition_summary(str(props.get("condition") or ""), role_names),
                contexts=(contexts or {}).get(principal_id, ()),
            )
        )
    return sorted(grants, key=lambda g: (g.principal, g.scope, g.role))


# ------------------------------------------------------------------------------------------------------
# Sections


def _summary(inv: Inventory, evaluation: Evaluation) -> list[str]:
    counts = evaluation.counts()
    verdict = "PASSED" if evaluation.passed else "FAILED"
    custom = [r for r in inv.resources if r.custom]
    return [
        f"- Project / stack: `{inv.project}` / `{inv.stack}` (environment `{inv.environment}`)",
        f"- Resources: {len(custom)} (plus {len(inv.resources) - len(custom)} components)",
        f"- Policies: {evaluation.policyCount}; violations: {len(evaluation.violations)} ("
        + ", ".join(f"{counts[s.value]} {s.value}" for s in Severity)
        + f"); result at {evaluation.failOn.value}: **{verdict}**",
        f"- Machine-readable inventory: [`{inv.stack}.inventory.json`]({inv.stack}.inventory.json) "
        f"(`python -m muse evaluate docs/governance/{inv.stack}.inventory.json`)",
        "",
    ]


def _fallback_rows(resource: Resource) -> list[tuple[str, str]]:
    rows = [
        (k, str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in sorted(resource.properties.items())
        if not isinstance(v, dict | list) and v is not None
    ]
    tags = resource.properties.get("tags")
    if isinstance(tags, dict):
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))))
    return rows


def _inventory(inv: Inventory, sources: GovernanceSources) -> list[str]:
    lines = ["## Resource inventory", ""]
    by_parent: dict[str | None, list[Resource]] = {}
    for r in inv.resources:
        by_parent.setdefault(r.parent, []).append(r)
    urns = {r.urn for r in inv.resources}

    def descendants(urn: str) -> Iterable[tuple[int, Resource]]:
        for child in sorted(by_parent.get(urn, []), key=lambda r: (r.type, r.name)):
            yield 0, child
            for depth, grand in descendants(child.urn):
                yield depth + 1, grand

    roots = sorted(
        (r for r in inv.resources if r.parent is None or r.parent not in urns), key=lambda r: (r.type, r.name)
    )
    for root in roots:
        lines += [f"### `{root.type}` {root.name}", ""]
        members = [(0, root)] if root.custom else list(descendants(root.urn))
        if not root.custom and not members:
            lines += ["(no resources)", ""]
            continue
        lines += ["| Resource | Type | Key properties |", "| --- | --- | --- |"]
        for depth, r in members:
            rows = sources.key_properties.get(r.urn) or _fallback_rows(r)
            props = "<br>".join(f"{cell(k)}: `{cell(v)}`" for k, v in rows) or "-"
            name = ("↳ " * depth) + f"`{cell(r.name)}`"
            lines.append(f"| {name} | `{cell(r.type)}` | {props} |")
        lines.append("")
    return lines


def _policies(inv: Inventory, evaluation: Evaluation) -> list[str]:
    lines = [
        "## Policies",
        "",
        "Every Muse policy (muse/governance/policies.py), evaluated against this inventory. The same "
        "rule set runs in the CrossGuard pack (policy/) under `pulumi preview`/`up`: *mandatory* "
        "(critical, high) blocks the operation, *advisory* (medium, low) warns.",
        "",
        "| Id | Severity | Enforcement | Applies to | Status | Title |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_policy: dict[str, list[Any]] = {}
    for v in evaluation.violations:
        by_policy.setdefault(v.policyId, []).append(v)
    for p in POLICIES:
        applicable = sum(1 for r in inv.resources if p.applies(r))
        found = by_policy.get(p.id, [])
        if found:
            status = f"**{len(found)} violation(s)**"
        elif applicable:
            status = "pass"
        else:
            status = "n/a (no resource of its types)"
        lines.append(
            f"| {p.id} | {p.severity.value} | {enforcement(p.severity)} | {applicable} resource(s) "
            f"| {status} | {cell(p.title)} |"
        )
    lines += ["", "### Violations", ""]
    if not evaluation.violations:
        lines += ["None.", ""]
    else:
        lines += ["| Policy | Resource | Finding |", "| --- | --- | --- |"]
        lines += [
            f"| {v.policyId} | `{cell(v.resourceName)}` (`{cell(v.resourceType)}`) | {cell(v.message)} |"
            for v in evaluation.violations
        ]
        lines.append("")
    lines += ["### Remediation", ""]
    lines += [f"- **{p.id}** {p.title}. {p.rationale} *Fix:* {p.remediation}" for p in POLICIES]
    lines.append("")
    return lines


def _grant_table(grants: list[RoleGrant], with_contexts: bool) -> list[str]:
    if with_contexts:
        head = ["| Identity | Acts for (GitHub OIDC subject) | Role | Can | Where | Condition |"]
        sep = ["| --- | --- | --- | --- | --- | --- |"]
    else:
        head = ["| Principal | Role | Can | Where | Granted by | Condition |"]
        sep = ["| --- | --- | --- | --- | --- | --- |"]
    rows = []
    for g in grants:
        can = ROLE_CAN.get(g.role, UNDESCRIBED)
        if with_contexts:
            subjects = "<br>".join(f"`{cell(c)}`" for c in g.contexts) or "-"
            rows.append(
                f"| {cell(g.principal)} | {subjects} | {cell(g.role)} | {cell(can)} | {cell(g.scope)} "
                f"| {cell(g.condition) or '-'} |"
            )
        else:
            rows.append(
                f"| {cell(g.principal)} | {cell(g.role)} | {cell(can)} | {cell(g.scope)} "
                f"| `{cell(g.granted_by)}` | {cell(g.condition) or '-'} |"
            )
    return head + sep + (rows or ["| (none) | | | | | |"]) + [""]


def _rbac(inv: Inventory, sources: GovernanceSources) -> list[str]:
    grants = grants_of(inv, sources.principals, sources.role_names)
    return [
        "## RBAC matrix: who can do what, where",
        "",
        "### Granted by this stack",
        "",
        "Azure role assignments the stack creates (all with principalType, all on the narrowest scope that "
        "works). Kubernetes access goes through Entra ID and Azure RBAC (local accounts are disabled).",
        "",
        *_grant_table(grants, with_contexts=False),
        "### CI identities (bootstrap project, `make plan-bootstrap`)",
        "",
        "GitHub Actions signs in with OIDC as one of these identities; a job gets a token only in the GitHub "
        "context named by a federated credential. No client secret exists.",
        "",
        *_grant_table(sources.bootstrap_grants, with_contexts=True),
    ]


def _kubernetes_secret_consumers(inv: Inventory) -> list[str]:
    lines = []
    for r in inv.resources:
        if not r.type.endswith(":SecretProviderClass"):
            continue
        params = r.properties.get("spec", {}).get("parameters", {}) if isinstance(r.properties, dict) else {}
        objects = re.findall(r"objectName:\s*(\S+)", str(params.get("objects", "")))
        synced = [
            f"`{s.get('secretName')}` ({', '.join(d.get('key', '?') for d in s.get('data', []))})"
            for s in r.properties.get("spec", {}).get("secretObjects", []) or []
            if isinstance(s, dict)
        ]
        lines.append(
            f"- SecretProviderClass `{r.name}` (Secrets Store CSI driver, workload identity "
            f"`{params.get('clientID', '?')}`) mounts {', '.join(f'`{o}`' for o in objects) or 'nothing'} "
            f"from Key Vault `{params.get('keyvaultName', '?')}` and syncs it to the Kubernetes Secret "
            f"{', '.join(synced) or '(none)'}."
        )
    for r in inv.resources:
        spec = r.properties.get("spec")
        pod = spec.get("template", {}).get("spec") if isinstance(spec, dict) else None
        if not isinstance(pod, dict):
            continue
        for container in pod.get("containers", []) or []:
            for env in container.get("env", []) or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") if isinstance(env, dict) else None
                if isinstance(ref, dict):
                    lines.append(
                        f"- `{r.name}` container `{container.get('name')}` reads `{env.get('name')}` from "
                        f"Secret `{ref.get('name')}` key `{ref.get('key')}` (valueFrom.secretKeyRef; never a "
                        "literal)."
                    )
    return lines


def _secrets(inv: Inventory, sources: GovernanceSources) -> list[str]:
    lines = ["## Secrets and where they live", "", "### Key Vault secrets", ""]
    vault_secrets = [r for r in inv.resources if r.type == KEY_VAULT_SECRET]
    readers = grants_of(inv, sources.principals, sources.role_names)
    if vault_secrets:
        lines += ["| Secret | Vault | Value in Pulumi | Who can read it |", "| --- | --- | --- | --- |"]
        for r in vault_secrets:
            name = str(r.properties.get("secretName", r.name))
            vault = str(r.properties.get("vaultName", "?"))
            masked = "masked (Pulumi secret)" if r.secretPaths else "**plaintext input**"
            who = sorted(
                {
                    f"{g.principal} ({g.role})"
                    for g in readers
                    if g.role in ("Key Vault Secrets User", "Key Vault Secrets Officer")
                    and vault in g.scope
                    and ("secrets" not in g.scope or g.scope.endswith(f"secrets {name}"))
                }
            )
            lines.append(
                f"| `{cell(name)}` | `{cell(vault)}` | {masked} "
                f"| {cell(', '.join(who)) or '(no role in this stack)'} |"
            )
        lines.append("")
    else:
        lines += ["None.", ""]
    lines += [
        "### Secret inputs masked in the plan",
        "",
        f"Values Pulumi holds as secrets (encrypted in the state, shown as `{SECRET_MARKER}` here and in "
        "previews).",
        "",
    ]
    secret_inputs = [(r, p) for r in inv.resources for p in r.secretPaths]
    if secret_inputs:
        lines += ["| Resource | Type | Secret input |", "| --- | --- | --- |"]
        lines += [f"| `{cell(r.name)}` | `{cell(r.type)}` | `{cell(p)}` |" for r, p in secret_inputs]
        lines.append("")
    else:
        lines += ["None.", ""]
    lines += ["### How pods read them", ""]
    lines += _kubernetes_secret_consumers(inv) or ["No Kubernetes workload reads a secret."]
    lines.append("")
    return lines


def _delivery(inv: Inventory, sources: GovernanceSources) -> list[str]:
    pre = sources.link_prefix
    lines = [
        "## Bicep and workflows",
        "",
        "### Generated infrastructure files (Bicep, Kubernetes manifests; `make export`)",
        "",
    ]
    for path in sources.bicep_files:
        lines.append(f"- [`{path}`]({pre}{path})")
    if not sources.bicep_files:
        lines.append("- (none)")
    lines += [
        "",
        "### Workflows: what each deploys and which gate protects it",
        "",
        "| Workflow | Triggers | Job | Deploys | Stacks | Gate | Policy pack |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for wf in sources.workflows:
        for job in wf.jobs:
            deploys = ", ".join(job.deploys) if job.deploys else "nothing (read-only)"
            pack = "yes" if job.policy_pack else ("no" if job.pulumi_commands else "-")
            lines.append(
                f"| [`{wf.path.rsplit('/', 1)[-1]}`]({pre}{wf.path}) | {cell(', '.join(wf.triggers))} "
                f"| {cell(job.name)} | {cell(deploys)} | {cell(', '.join(job.stacks) or '-')} "
                f"| {cell(job.gate)} | {pack} |"
            )
    lines.append("")
    touching = [
        f"`{j.name}` ({wf.path.rsplit('/', 1)[-1]})"
        for wf in sources.workflows
        for j in wf.jobs
        if j.deploys and inv.stack in j.stacks
    ]
    lines += [f"Jobs that change `{inv.stack}`: {', '.join(touching) or 'none'}.", ""]
    return lines


def render_governance_doc(sources: GovernanceSources, fail_on: Severity = Severity.HIGH) -> str:
    inventory = Inventory.model_validate(sources.inventory)
    evaluation = evaluate(inventory, fail_on=fail_on)
    lines = [
        f"<!-- {sources.notice} -->",
        f"# Governance: {inventory.project} / {inventory.stack}",
        "",
        "Generated by Muse (export/governance/document.py) from the offline plan of this stack, the "
        "bootstrap project and the workflow files. `make drift` fails a pull request that changes "
        "infrastructure without regenerating this file (`make export`).",
        "",
        *_summary(inventory, evaluation),
        *_inventory(inventory, sources),
        *_policies(inventory, evaluation),
        *_rbac(inventory, sources),
        *_secrets(inventory, sources),
        *_delivery(inventory, sources),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
