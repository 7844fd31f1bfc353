"""Repository policy for the GitHub Actions workflows, beyond what actionlint and zizmor check.

    python3 scripts/workflow_policy.py check [FILE...]             # problems; exit 1 if any
    python3 scripts/workflow_policy.py extract-run-blocks DIR [FILE...]  # run: blocks, for shellcheck

Checked for every workflow (default: .github/workflows/*.yml):
  - no `pull_request_target` trigger; top-level `permissions: {}`; every job declares its own `permissions`
    and `timeout-minutes`;
  - `id-token: write` only in jobs that log in to Azure; `pull-requests: write` only in jobs that comment on
    the pull request; no permission above `read` otherwise (`contents: read`);
  - every `uses:` pinned to a full 40-hex commit SHA followed by a `# vX.Y.Z` comment (local `./` actions
    excepted, `docker://` images by digest);
  - `actions/checkout` with `persist-credentials: false`;
  - no `${{ ... }}` expression inside a `run:` script (values reach scripts through `env:`);
  - no dependency caches in workflows that push images or deploy;
  - every job that runs `pulumi up` sits in a job-level `concurrency` group that never cancels a running one;
  - no `secrets.*` for Azure (OIDC only).

The tests in tests/workflows import this module and also feed it deliberately broken workflows.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"

SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^\s+#\s*v\d+(?:\.\d+){0,2}\b")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
DOCKER_DIGEST = re.compile(r"^docker://[^@\s]+@sha256:[0-9a-f]{64}$")

AZURE_LOGIN = "azure/login"
PULUMI_ACTION = "pulumi/actions"
CHECKOUT = "actions/checkout"
CACHE_ACTIONS = ("actions/cache",)
SETUP_ACTIONS_WITH_CACHE = (
    "actions/setup-python",
    "actions/setup-node",
    "actions/setup-go",
    "actions/setup-java",
)


@dataclass(frozen=True)
class Workflow:
    path: Path
    text: str
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def triggers(self) -> dict[str, Any]:
        on = self.doc.get("on")
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        return dict(on or {})

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("jobs") or {})


def load(path: Path | str, text: str | None = None) -> Workflow:
    """Parse a workflow. PyYAML reads the key `on` as the boolean True (YAML 1.1); put it back."""
    path = Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    if True in doc:
        doc["on"] = doc.pop(True)
    return Workflow(path=path, text=text, doc=doc)


def workflow_files(directory: Path = WORKFLOWS) -> list[Path]:
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def action_of(step: dict[str, Any]) -> str | None:
    """`owner/repo` (or `owner/repo/path`) of a `uses:` step, without the ref; None for `run:` steps."""
    uses = step.get("uses")
    if not isinstance(uses, str):
        return None
    return uses.split("@", 1)[0].lower()


def uses_action(job: dict[str, Any], action: str) -> bool:
    return any(action_of(step) == action for step in steps(job))


def pulumi_commands(job: dict[str, Any]) -> list[str]:
    return [
        str((step.get("with") or {}).get("command"))
        for step in steps(job)
        if action_of(step) == PULUMI_ACTION and (step.get("with") or {}).get("command")
    ]


def run_scripts(job: dict[str, Any]) -> Iterator[tuple[int, str]]:
    for index, step in enumerate(steps(job)):
        if isinstance(step.get("run"), str):
            yield index, step["run"]


def with_of(step: dict[str, Any]) -> dict[str, Any]:
    return dict(step.get("with") or {})


def _comments_on_pr(job: dict[str, Any]) -> bool:
    return any(
        action_of(step) == PULUMI_ACTION and str(with_of(step).get("comment-on-pr")).lower() == "true"
        for step in steps(job)
    )


def check_pins(wf: Workflow) -> list[str]:
    """Every `uses:` line: full commit SHA plus a version comment."""
    problems = []
    for number, line in enumerate(wf.text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        ref = match.group("ref").strip("'\"")
        where = f"{wf.name}:{number}"
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if not DOCKER_DIGEST.match(ref):
                problems.append(f"{where}: {ref} is not pinned to an image digest")
            continue
        if not SHA_PIN.match(ref):
            problems.append(f"{where}: {ref} is not pinned to a full 40-hex commit SHA")
        elif not VERSION_COMMENT.match(match.group("rest")):
            problems.append(f"{where}: {ref} has no '# vX.Y.Z' comment naming the pinned release")
    return problems


def check_triggers(wf: Workflow) -> list[str]:
    problems = []
    for forbidden in ("pull_request_target", "workflow_run"):
        if forbidden in wf.triggers:
            problems.append(f"{wf.name}: trigger {forbidden} runs untrusted code with a privileged token")
    return problems


def check_permissions(wf: Workflow) -> list[str]:
    problems = []
    if "permissions" not in wf.doc or wf.doc["permissions"] != {}:
        problems.append(f"{wf.name}: top-level permissions must be {{}} (each job states its own)")
    for job_id, job in wf.jobs.items():
        where = f"{wf.name} job {job_id}"
        perms = job.get("permissions")
        if not isinstance(perms, dict):
            problems.append(f"{where}: no job-level permissions map")
            continue
        for scope, level in perms.items():
            if scope == "id-token":
                if level == "write" and not uses_action(job, AZURE_LOGIN):
                    problems.append(f"{where}: id-token: write but the job does not log in to Azure")
            elif scope == "pull-requests":
                if level == "write" and not _comments_on_pr(job):
                    problems.append(f"{where}: pull-requests: write but the job does not comment on the PR")
            elif level not in ("read", "none"):
                problems.append(f"{where}: {scope}: {level} is more than read")
        if uses_action(job, AZURE_LOGIN) and perms.get("id-token") != "write":
            problems.append(f"{where}: azure/login (OIDC) needs id-token: write")
    return problems


def check_timeouts(wf: Workflow) -> list[str]:
    return [
        f"{wf.name} job {job_id}: no timeout-minutes"
        for job_id, job in wf.jobs.items()
        if not isinstance(job.get("timeout-minutes"), int) or job["timeout-minutes"] <= 0
    ]


def check_checkout(wf: Workflow) -> list[str]:
    problems = []
    for job_id, job in wf.jobs.items():
        for step in steps(job):
            if action_of(step) == CHECKOUT and with_of(step).get("persist-credentials") is not False:
                problems.append(f"{wf.name} job {job_id}: checkout without persist-credentials: false")
    return problems


def check_run_expressions(wf: Workflow) -> list[str]:
    problems = []
    for job_id, job in wf.jobs.items():
        for index, script in run_scripts(job):
            for expression in EXPRESSION.findall(script):
                problems.append(
                    f"{wf.name} job {job_id} step {index + 1}: {expression} inside run: "
                    "(pass it through env: and quote the variable)"
                )
    return problems


def publishes(wf: Workflow) -> bool:
    """Does the workflow push an image or deploy?"""
    for job in wf.jobs.values():
        if "environment" in job or {"up", "update", "destroy"} & set(pulumi_commands(job)):
            return True
        if any(re.search(r"\b(docker push|az acr import|pulumi up)\b", s) for _, s in run_scripts(job)):
            return True
    return False


def check_caches(wf: Workflow) -> list[str]:
    if not publishes(wf):
        return []
    problems = []
    for job_id, job in wf.jobs.items():
        for step in steps(job):
            action = action_of(step)
            if action in CACHE_ACTIONS or (action in SETUP_ACTIONS_WITH_CACHE and with_of(step).get("cache")):
                problems.append(f"{wf.name} job {job_id}: dependency cache on a release path ({action})")
    return problems


def check_deploy_concurrency(wf: Workflow) -> list[str]:
    problems = []
    groups: dict[str, str] = {}
    for job_id, job in wf.jobs.items():
        if not {"up", "update", "destroy"} & set(pulumi_commands(job)):
            continue
        concurrency = job.get("concurrency")
        if not isinstance(concurrency, dict) or not concurrency.get("group"):
            problems.append(f"{wf.name} job {job_id}: deploys without a job-level concurrency group")
            continue
        if concurrency.get("cancel-in-progress") is not False:
            problems.append(f"{wf.name} job {job_id}: concurrency must set cancel-in-progress: false")
        group = str(concurrency["group"])
        if group in groups:
            problems.append(f"{wf.name} job {job_id}: shares concurrency group {group} with {groups[group]}")
        groups[group] = job_id
    return problems


def check_no_azure_secrets(wf: Workflow) -> list[str]:
    return [
        f"{wf.name}: uses secrets.{name}; Azure authenticates with OIDC only"
        for name in re.findall(r"secrets\.([A-Za-z0-9_]+)", wf.text)
        if name != "GITHUB_TOKEN"
    ]


CHECKS = (
    check_triggers,
    check_permissions,
    check_timeouts,
    check_pins,
    check_checkout,
    check_run_expressions,
    check_caches,
    check_deploy_concurrency,
    check_no_azure_secrets,
)


def check(wf: Workflow) -> list[str]:
    return [problem for rule in CHECKS for problem in rule(wf)]


def extract_run_blocks(wf: Workflow, out_dir: Path) -> list[Path]:
    """Write each `run:` block as a bash script the way the runner executes it (shell: bash => -eo pipefail).
    `${{ }}` expressions (none are allowed, see check_run_expressions) become a quoted placeholder."""
    written = []
    for job_id, job in wf.jobs.items():
        for index, script in run_scripts(job):
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
        problems = [p for f in files for p in check(load(f))]
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
