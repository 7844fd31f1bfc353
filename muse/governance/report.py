"""Markdown rendering of an evaluation: the governance artifact CI attaches to pull requests."""

from __future__ import annotations

from muse.governance.policies import POLICIES, Evaluation, Policy, Severity


def _cell(text: str) -> str:
    # Table cells must stay on one line and must not open a new column.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(evaluation: Evaluation, policies: tuple[Policy, ...] = POLICIES) -> str:
    counts = evaluation.counts()
    verdict = "PASSED" if evaluation.passed else "FAILED"
    lines = [
        f"# Muse governance report: {evaluation.project}/{evaluation.stack}",
        "",
        f"- Environment: `{evaluation.environment}`",
        f"- Resources evaluated: {evaluation.resourceCount}",
        f"- Policies: {evaluation.policyCount}",
        f"- Violations: {len(evaluation.violations)} "
        + "("
        + ", ".join(f"{counts[s.value]} {s.value}" for s in Severity)
        + ")",
        f"- Result: **{verdict}** (fails on {evaluation.failOn.value} and above: "
        f"{len(evaluation.failing)} violation(s))",
        "",
        "## Violations",
        "",
    ]
    if not evaluation.violations:
        lines += ["No violations.", ""]
    else:
        lines += ["| Severity | Policy | Resource | Finding |", "| --- | --- | --- | --- |"]
        for v in evaluation.violations:
            lines.append(
                f"| {v.severity.value} | {v.policyId} | `{_cell(v.resourceName)}` ({_cell(v.resourceType)}) "
                f"| {_cell(v.message)} |"
            )
        lines.append("")
        failed_ids = sorted({v.policyId for v in evaluation.violations})
        lines += ["## Remediation", ""]
        by_id = {p.id: p for p in policies}
        for policy_id in failed_ids:
            policy = by_id.get(policy_id)
            if policy is not None:
                lines += [f"- **{policy.id}** {policy.title}: {policy.remediation}"]
        lines.append("")
    lines += ["## Policies", "", "| Id | Severity | Title |", "| --- | --- | --- |"]
    lines += [f"| {p.id} | {p.severity.value} | {_cell(p.title)} |" for p in policies]
    lines.append("")
    return "\n".join(lines)


def render_policies_markdown(policies: tuple[Policy, ...] = POLICIES) -> str:
    lines = ["# Muse policies", ""]
    for p in policies:
        lines += [
            f"## {p.id}: {p.title}",
            "",
            f"- Severity: {p.severity.value}",
            f"- Applies to: {', '.join(f'`{t}`' for t in p.applies_to)}",
            f"- Rationale: {p.rationale}",
            f"- Remediation: {p.remediation}",
            "",
        ]
    return "\n".join(lines)
