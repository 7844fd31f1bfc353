"""Repository rules for the GitHub Actions workflows that no linter has.

    .venv/bin/python scripts/workflow_policy.py check [FILE...]                  # exit 1 on any problem
    .venv/bin/python scripts/workflow_policy.py extract-run-blocks DIR [FILE...]  # for shellcheck

scripts/lint-workflows.sh runs it after actionlint and zizmor. Checked here: per-job permissions, timeouts,
release comments on pinned actions, no dependency cache where images are pushed or deployed, a `pulumi up`
concurrency group per job, no `secrets.*`. Workflows are read by verify/workflows.py. What zizmor covers
instead, and why each rule stays: docs/architecture/ci-cd.md#workflow-rules-no-linter-has."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from verify.workflows import EXPRESSION, Job, Workflow, expand_calls, load, workflow_files

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+#\s*v\d+(?:\.\d+){0,2}\b")

AZURE_LOGIN = "azure/login"
# actions/attest (build provenance, SBOM) needs `attestations: write` and `id-token: write` (its README,
# "Usage"); no other step of this repository writes attestations.
ATTEST = "actions/attest"
CACHE_ACTIONS = ("actions/cache",)
SETUP_ACTIONS_WITH_CACHE = (
    "actions/setup-python",
    "actions/setup-node",
    "actions/setup-go",
    "actions/setup-java",
)
DEPLOY_COMMANDS = {"up", "update", "destroy"}


def _comments_on_pr(job: Job) -> bool:
    return any(s.comments_on_pr for s in job.steps)


# The scripts that write issues with the job token (a failed drift check's issue).
ISSUE_WRITERS = ("scripts/ci/drift_issue.py",)


def _writes_issues(job: Job) -> bool:
    return any(writer in (s.run or "") for s in job.steps for writer in ISSUE_WRITERS)


def called_only(wf: Workflow) -> bool:
    """A reusable workflow that nothing but a `workflow_call` starts."""
    return set(wf.triggers) == {"workflow_call"}


def check_permissions(wf: Workflow) -> list[str]:
    """Least privilege per job, tied to what the job does. zizmor's excessive-permissions flags a missing or
    write-all workflow block, but not a workflow-level `contents: read`, a job without its own block, or a job
    whose `id-token`/`pull-requests`/`contents: write` its steps do not need: that needs knowing which steps
    use which permission (azure/login and actions/attest need `id-token: write`; actions/attest needs
    `attestations: write`; pulumi/actions' comment-on-pr and scripts/ci/preview.py --comment-on-pr need
    `pull-requests: write`; scripts/ci/drift_issue.py `issues: write`): this repository's knowledge."""
    problems = []
    if called_only(wf):
        # A reusable workflow's jobs get what each call grants, narrowed by what they state themselves
        # ("Reusable workflows reference"): a workflow-level block would narrow every job, and its jobs are
        # checked here as the jobs each caller runs (expand_calls gives them their effective permissions).
        if wf.permissions is not None:
            problems.append(f"{wf.file_name}: a called workflow leaves permissions to its callers")
        return problems
    if wf.permissions != {}:
        problems.append(f"{wf.file_name}: top-level permissions must be {{}} (each job states its own)")
    for job_id, job in wf.jobs.items():
        where = f"{wf.file_name} job {job_id}"
        if not isinstance(job.permissions, dict):
            problems.append(f"{where}: no job-level permissions map")
            continue
        for scope, level in job.permissions.items():
            if scope == "id-token":
                if level == "write" and not (job.uses_action(AZURE_LOGIN) or job.uses_action(ATTEST)):
                    problems.append(
                        f"{where}: id-token: write but the job neither signs in to Azure nor attests"
                    )
            elif scope == "attestations" and level == "write":
                if not job.uses_action(ATTEST):
                    problems.append(f"{where}: attestations: write but the job does not attest")
            elif scope == "pull-requests":
                if level == "write" and not _comments_on_pr(job):
                    problems.append(f"{where}: pull-requests: write but the job does not comment on the PR")
            elif scope == "issues":
                if level == "write" and not _writes_issues(job):
                    problems.append(f"{where}: issues: write but the job writes no issue")
            elif level not in ("read", "none"):
                problems.append(f"{where}: {scope}: {level} is more than read")
        if job.uses_action(AZURE_LOGIN) and job.permissions.get("id-token") != "write":
            problems.append(f"{where}: azure/login (OIDC) needs id-token: write")
        if job.uses_action(ATTEST) and (
            job.permissions.get("id-token") != "write" or job.permissions.get("attestations") != "write"
        ):
            problems.append(f"{where}: actions/attest needs id-token: write and attestations: write")
    return problems


def check_timeouts(wf: Workflow) -> list[str]:
    """A hung job holds a runner (and a deploy's concurrency group) for GitHub's default of 360 minutes.
    Neither actionlint nor zizmor has a rule for a missing `timeout-minutes`."""
    return [
        f"{wf.file_name} job {job_id}: no timeout-minutes"
        for job_id, job in wf.jobs.items()
        if not isinstance(job.timeout_minutes, int) or job.timeout_minutes <= 0
    ]


def check_version_comments(wf: Workflow) -> list[str]:
    """A 40-hex pin says nothing to a reviewer; the `# vX.Y.Z` comment names the release (and Dependabot
    updates it next to the SHA). zizmor's unpinned-uses requires the hash, not the comment; its
    ref-version-mismatch audit looks at comments only in online mode, and lint-workflows.sh runs --offline."""
    problems = []
    for number, line in enumerate(wf.text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        ref = match.group("ref").strip("'\"")
        if SHA_PIN.match(ref) and not VERSION_COMMENT.match(match.group("rest")):
            problems.append(
                f"{wf.file_name}:{number}: {ref} has no '# vX.Y.Z' comment naming the pinned release"
            )
    return problems


def publishes(wf: Workflow) -> bool:
    """Does the workflow push an image or deploy?"""
    for job in wf.jobs.values():
        if job.environment is not None or DEPLOY_COMMANDS & set(job.pulumi_commands):
            return True
        if any(re.search(r"\b(docker push|az acr import|pulumi up)\b", s) for _, s in job.run_scripts()):
            return True
    return False


def check_caches(wf: Workflow) -> list[str]:
    """No dependency cache on a release path (a poisoned cache would ship). zizmor's cache-poisoning audit
    recognises publishing by release triggers and known publishing actions; it does not see `docker push`,
    `az acr import` or `pulumi up`, which is how this repository releases."""
    if not publishes(wf):
        return []
    problems = []
    for job_id, job in wf.jobs.items():
        for step in job.steps:
            action = step.action
            if action in CACHE_ACTIONS or (action in SETUP_ACTIONS_WITH_CACHE and step.inputs.get("cache")):
                problems.append(f"{wf.file_name} job {job_id}: dependency cache on a release path ({action})")
    return problems


def check_deploy_concurrency(wf: Workflow) -> list[str]:
    """Two `pulumi up` runs on one stack must queue, never cancel each other (a cancelled update leaves a
    pending operation in the state). zizmor's concurrency-limits only asks that some concurrency exists, and
    accepts a workflow-level group, which would cancel pending prod approvals."""
    problems = []
    groups: dict[str, str] = {}
    for job_id, job in wf.jobs.items():
        if not DEPLOY_COMMANDS & set(job.pulumi_commands):
            continue
        concurrency = job.concurrency
        if not isinstance(concurrency, dict) or not concurrency.get("group"):
            problems.append(f"{wf.file_name} job {job_id}: deploys without a job-level concurrency group")
            continue
        if concurrency.get("cancel-in-progress") is not False:
            problems.append(f"{wf.file_name} job {job_id}: concurrency must set cancel-in-progress: false")
        group = str(concurrency["group"])
        if group in groups:
            problems.append(
                f"{wf.file_name} job {job_id}: shares concurrency group {group} with {groups[group]}"
            )
        groups[group] = job_id
    return problems


def check_no_secrets(wf: Workflow) -> list[str]:
    """Azure and Pulumi authenticate with OIDC; a stored secret is a credential that can leak. zizmor's
    secrets-outside-env and overprovisioned-secrets judge how a secret is used, not whether one is."""
    return [
        f"{wf.file_name}: uses secrets.{name}; Azure authenticates with OIDC only"
        for name in re.findall(r"secrets\.([A-Za-z0-9_]+)", wf.text)
        if name != "GITHUB_TOKEN"
    ]


CHECKS = (
    check_permissions,
    check_timeouts,
    check_version_comments,
    check_caches,
    check_deploy_concurrency,
    check_no_secrets,
)


def check(wf: Workflow) -> list[str]:
    return [problem for rule in CHECKS for problem in rule(wf)]


def extract_run_blocks(wf: Workflow, out_dir: Path) -> list[Path]:
    """Write each `run:` block as a bash script the way the runner executes it (shell: bash => -eo pipefail).
    `${{ }}` expressions (zizmor's template-injection allows none) become a placeholder word."""
    written = []
    for job_id, job in wf.jobs.items():
        for index, script in job.run_scripts():
            body = EXPRESSION.sub("GHA_EXPRESSION", script)
            target = out_dir / f"{wf.path.stem}.{job_id}.step{index + 1}.sh"
            target.write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{body}", encoding="utf-8")
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in {"check", "extract-run-blocks"}:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "check":
        files = [Path(a) for a in argv[2:]] or workflow_files()
        # A call of a local reusable workflow is checked as the jobs it runs (verify.workflows.expand_calls).
        problems = []
        for f in files:
            try:
                problems += check(expand_calls(load(f), f.parent))
            except ValueError as error:  # a call GitHub would refuse to start
                problems.append(str(error))
        for problem in problems:
            print(f"workflow policy: {problem}", file=sys.stderr)
        if not problems:
            print(f"workflow policy: {len(files)} workflow(s) OK")
        return 1 if problems else 0
    if len(argv) < 3:
        print("usage: workflow_policy.py extract-run-blocks DIR [FILE...]", file=sys.stderr)
        return 2
    out_dir = Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [Path(a) for a in argv[3:]] or workflow_files()
    for f in files:
        for script in extract_run_blocks(load(f), out_dir):
            print(script)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
