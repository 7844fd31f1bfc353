"""What the three workflows must keep doing, asserted on the parsed workflows so a later edit cannot
silently drop a gate: triggers, no deploy from pull requests, image tags, OIDC, the prod diff before the prod
environment gate, one digest from build to prod, rollback and `latest` only after a good deploy, drift against
the deployed commit, permissions, pins, concurrency, timeouts. What the scripts the steps call do is tested by
running them (test_deploy_rollback.py, test_preview_report.py, test_release_records.py)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import replace
from typing import Any

import pytest

from stack.environments import ENVIRONMENTS, image_source, requires_approval
from stack.files import REPO_ROOT
from tests.workflows.expansion import deploy_text, expanded_main
from verify.workflows import PULUMI_SCRIPTS, Job, Step, Workflow, parse

OIDC_ENV = {
    "ARM_USE_OIDC": "true",
    "ARM_CLIENT_ID": "${{ vars.AZURE_CLIENT_ID }}",
    "ARM_TENANT_ID": "${{ vars.AZURE_TENANT_ID }}",
    "ARM_SUBSCRIPTION_ID": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
}
AZURE_LOGIN_WITH = {
    "client-id": "${{ vars.AZURE_CLIENT_ID }}",
    "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
    "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
}
# Previews and the drift check sign in as the read-only preview identity (bootstrap/__main__.py): a pull
# request that edits a workflow can never obtain a token that may deploy.
PREVIEW_OIDC_ENV = {**OIDC_ENV, "ARM_CLIENT_ID": "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"}
PREVIEW_LOGIN_WITH = {**AZURE_LOGIN_WITH, "client-id": "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"}
# The build job pushes with its own identity (AcrPush on the dev registry, dev state read), not a deployer's.
BUILD_LOGIN_WITH = {**AZURE_LOGIN_WITH, "client-id": "${{ vars.AZURE_BUILD_CLIENT_ID }}"}
DIGEST = "${{ needs.build.outputs.digest }}"
DEPLOY_WORDS = re.compile(
    r"\b(docker push|az acr (login|import)|pulumi up|pulumi destroy|kubectl (apply|set))\b"
)
# The scripts a pull-request job may run: none of them writes state, pushes or deploys (each is tested by
# running it: preview.py runs only `pulumi preview`, pin-deployed-image.sh changes the working copy's config).
READ_ONLY_SCRIPTS = {
    "scripts/ci/preview.py",
    "scripts/ci/pin-deployed-image.sh",
    "scripts/ci/start-token-refresher.sh",
    "scripts/ci/pr_comment.py",  # writes the PR comment and the summary only (test_preview_report.py)
    "scripts/ci/scan-summary.sh",  # writes the job summary only (test_vulnerability_scan.py)
    "scripts/ci/install_pulumi.py",  # installs the checksum-checked CLI and plugins (test_pulumi_binaries.py)
}
# main.yml's jobs as GitHub runs them: each call of the reusable deploy.yml becomes the called jobs,
# `<call>.<job>` (verify.workflows.expand_calls).
# One call per environment of stack/environments.txt; a production-tier one previews first. DEV is the first
# environment's deploy, PROD and PREVIEW_PROD the last one's (the list ends with production).
DEPLOYS = {e: f"deploy-{e}.deploy" for e in ENVIRONMENTS}
PREVIEWS = {e: f"deploy-{e}.preview" for e in ENVIRONMENTS if requires_approval(e)}
DEV, PROD, PREVIEW_PROD = DEPLOYS[ENVIRONMENTS[0]], DEPLOYS[ENVIRONMENTS[-1]], PREVIEWS[ENVIRONMENTS[-1]]
BEFORE_PROD = image_source(ENVIRONMENTS[-1]) or ""
# What the jobs of the call before prod's are (prod's call needs that call: every job of it).
BEFORE_PROD_JOBS = {DEPLOYS[BEFORE_PROD], *([PREVIEWS[BEFORE_PROD]] if BEFORE_PROD in PREVIEWS else [])}


def deploy_grant(environment: str) -> dict[str, str]:
    """What a deploy job of `environment` holds (main.yml's call grants it; test_environment_calls.py)."""
    grant = {"contents": "read", "id-token": "write"}
    grant |= {"attestations": "read"} if image_source(environment) else {}
    return grant | ({"actions": "read"} if requires_approval(environment) else {})


DEPLOY_CALL = (
    'exec scripts/ci/deploy.py --stack "$STACK" --image-tag "$IMAGE_DIGEST" --commit "$RELEASE_COMMIT" '
    "--policy-pack policy --canary"
)


def step_named(job: Job, fragment: str) -> Step:
    matches = [s for s in job.steps if fragment in (s.name or "")]
    assert len(matches) == 1, f"expected one step named like {fragment!r}, found {len(matches)}"
    return matches[0]


def pulumi_steps(job: Job, command: str | None = None) -> list[Step]:
    """Steps that run a Pulumi command: pulumi/actions with `command:`, or a scripts/ci script running one."""
    return [s for s in job.pulumi_steps if command is None or s.pulumi_command == command]


def index_of(job: Job, action: str) -> int:
    return next(i for i, s in enumerate(job.steps) if s.action == action)


# The step that installs the Pulumi CLI, checksum-checked (install_pulumi.py, test_pulumi_binaries.py).
CLI_INSTALL = 'scripts/ci/install_pulumi.py cli --version "$PULUMI_VERSION"'


def index_of_cli(job: Job) -> int:
    return next(i for i, s in enumerate(job.steps) if CLI_INSTALL in (s.run or ""))


# --- triggers -----------------------------------------------------------------------------------------------


def test_triggers(pr: Workflow, main: Workflow, drift: Workflow) -> None:
    assert pr.triggers == {"pull_request": {"branches": ["main"]}}
    assert set(main.triggers) == {"push", "workflow_dispatch"}
    assert main.triggers["push"] == {"branches": ["main"]}
    # A manual run names at most a commit (checked to be on main by the build job), nothing else.
    assert set(main.triggers["workflow_dispatch"]["inputs"]) == {"commit"}
    assert set(drift.triggers) == {"schedule", "workflow_dispatch"}
    assert drift.triggers["schedule"][0]["cron"]


def test_no_pull_request_target_anywhere(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert "pull_request_target" not in wf.triggers
        assert "pull_request_target" not in wf.text


def test_only_the_known_workflows_exist(workflows: dict[str, Workflow]) -> None:
    # scan.yml: the vulnerability scan of the locks and the image (test_vulnerability_scan.py).
    # deploy.yml: the reusable deploy main.yml calls once per environment (test_environment_calls.py).
    assert set(workflows) == {"pull-request.yml", "main.yml", "drift.yml", "scan.yml", "deploy.yml"}


# --- pull requests never deploy -----------------------------------------------------------------------------


def test_no_deploy_or_push_reachable_from_pull_request(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        if "pull_request" not in wf.triggers:
            continue
        for job_id, job in wf.jobs.items():
            assert job.environment is None, job_id
            assert set(job.pulumi_commands) <= {"preview"}, job_id
            for _, script in job.run_scripts():
                assert not DEPLOY_WORDS.search(script), (job_id, script)
                assert set(re.findall(r"scripts/ci/[\w.-]+", script)) <= READ_ONLY_SCRIPTS, (job_id, script)
            assert job.uses is None, f"{job_id}: reusable workflow from a pull request"
    assert PULUMI_SCRIPTS["scripts/ci/preview.py"] == "preview"


def test_deploying_workflows_are_not_triggered_by_pull_requests(
    policy: Any, workflows: dict[str, Workflow]
) -> None:
    for wf in workflows.values():
        if policy.publishes(wf):
            assert not {"pull_request", "pull_request_target"} & set(wf.triggers), wf.name


def test_pr_runs_lint_test_and_drift(pr: Workflow) -> None:
    runs = [s.run for s in pr.jobs["checks"].steps]
    assert {"make lint", "make test", "make drift"} <= set(runs)
    assert all(not s.raw.get("continue-on-error") for s in pr.jobs["checks"].steps)


def test_pr_offline_plan_runs_for_forks_and_goes_to_the_summary(pr: Workflow) -> None:
    job = pr.jobs["offline-plan"]
    assert job.matrix["stack"] == list(ENVIRONMENTS)
    assert job.condition is None and job.needs == ("environments",)  # the list, for its matrix
    assert job.permissions == {"contents": "read"}
    script = step_named(job, "Offline plan").run
    assert 'make plan STACK="$STACK"' in script
    assert "$GITHUB_STEP_SUMMARY" in script


def test_pr_plan_diff_runs_for_forks_against_the_base_commit_and_goes_to_the_summary(pr: Workflow) -> None:
    job = pr.jobs["plan-diff"]
    # No credentials and no condition: fork pull requests get it too.
    assert job.condition is None and not job.needs and job.environment is None
    assert job.permissions == {"contents": "read"}
    checkout = job.steps[index_of(job, "actions/checkout")]
    assert checkout.inputs["fetch-depth"] == 0, "the base commit must be in the clone"
    step = step_named(job, "Offline infra diff")
    # The merge commit's first parent: the base the pull request is merged onto.
    assert "make plan-diff BASE=HEAD^1" in step.run
    assert "$GITHUB_STEP_SUMMARY" in step.run
    assert not pulumi_steps(job) and not job.uses_action("azure/login")


def _policy_pack_steps(job: Job, command: str) -> Step:
    (step,) = pulumi_steps(job, command)
    # The pack (policy/PulumiPolicy.yaml) runs in .venv: `make ci-venv` (hash-locked, tests/workflows/
    # test_ci_lock.py) must come before the Pulumi step.
    venv = next(i for i, s in enumerate(job.steps) if s.run == "make ci-venv")
    assert venv < job.steps.index(step)
    return step


def test_preview_and_up_enforce_the_muse_policy_pack(pr: Workflow, main: Workflow) -> None:
    import yaml

    preview = _policy_pack_steps(pr.jobs["preview"], "preview")
    assert preview.policy_packs == ("policy",)
    for job_id in (*DEPLOYS.values(), *PREVIEWS.values()):
        command = "preview" if job_id in PREVIEWS.values() else "up"
        step = _policy_pack_steps(main.jobs[job_id], command)
        assert step.policy_packs == ("policy",), job_id
    pack = yaml.safe_load((REPO_ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    assert "pulumi-policy==" in (REPO_ROOT / "requirements-dev.txt").read_text()


def test_pr_preview_per_stack_with_comment_and_summary(pr: Workflow) -> None:
    """One comment per stack, edited in place, and the job summary - also when the preview fails (preview.py;
    test_preview_report.py runs it against a fake GitHub API)."""
    job = pr.jobs["preview"]
    # dev only: a pull request's subject reaches no identity that reads prod (verify/access/ proves it).
    assert job.matrix["stack"] == [ENVIRONMENTS[0]]
    assert job.strategy["fail-fast"] is False
    assert job.env["STACK"] == "${{ matrix.stack }}"
    (preview,) = pulumi_steps(job, "preview")
    assert preview.run == 'scripts/ci/preview.py --stack "$STACK" --policy-pack policy --comment-on-pr'
    assert preview.comments_on_pr and preview.stack_name == "$STACK"
    assert preview.env == {
        "GITHUB_TOKEN": "${{ github.token }}",
        "PR_NUMBER": "${{ github.event.pull_request.number }}",
    }
    assert job.env["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert not job.steps_of("pulumi/actions") and index_of_cli(job) < job.steps.index(preview)


def test_pr_preview_skips_forks_with_a_notice(pr: Workflow) -> None:
    job = pr.jobs["preview"]
    first = job.steps[0]
    assert first.id == "oidc"
    assert first.env["HEAD_REPO"] == "${{ github.event.pull_request.head.repo.full_name }}"
    assert first.env["BASE_REPO"] == "${{ github.repository }}"
    assert '"$HEAD_REPO" != "$BASE_REPO"' in first.run
    assert "::notice" in first.run
    assert "exit 1" not in first.run
    # Every later step (checkout, login, preview, ...) is skipped when there is no token; the failure report
    # runs under that condition too, and only after a failure.
    for step in job.steps[1:-1]:
        assert step.condition == "steps.oidc.outputs.available == 'true'", step.name
    assert "steps.oidc.outputs.available == 'true'" in (job.steps[-1].condition or "")


def test_pr_preview_reports_a_failure_before_the_preview_in_the_same_comment(pr: Workflow) -> None:
    """preview.py writes the comment when the preview itself fails; when a step before it fails (make ci-venv,
    azure/login, the refresher, pin-deployed-image.sh), the preview step is skipped (GitHub: a step without a
    status function runs only on success()) and pr_comment.py edits the same comment instead
    (test_preview_report.py runs it against the fake GitHub API)."""
    job = pr.jobs["preview"]
    report = job.steps[-1]
    assert report.name == "Report a failure before the preview (summary and PR comment)"
    condition = " ".join((report.condition or "").split())
    assert condition == (
        "failure() && steps.oidc.outputs.available == 'true' && steps.checkout.outcome == 'success' "
        "&& steps.preview.outcome == 'skipped'"
    )
    assert report.env["GITHUB_TOKEN"] == "${{ github.token }}"
    assert report.env["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    assert (report.run or "").startswith('python3 scripts/ci/pr_comment.py --stack "$STACK"')
    # Every step between the checkout and the preview that can fail is named with its outcome.
    preview = step_named(job, "pulumi preview (summary and PR comment")
    assert preview.id == "preview"
    checkout = job.steps[index_of(job, "actions/checkout")]
    assert checkout.id == "checkout"
    between = job.steps[job.steps.index(checkout) + 1 : job.steps.index(preview)]
    for step in between:
        assert step.id, step.name
        assert report.env[f"OUTCOME_{step.id.upper()}"] == f"${{{{ steps.{step.id}.outcome }}}}", step.name
        assert f"=$OUTCOME_{step.id.upper()}" in (report.run or ""), step.name


def test_pr_preview_authenticates_with_oidc_as_the_read_only_identity(pr: Workflow) -> None:
    job = pr.jobs["preview"]
    assert PREVIEW_OIDC_ENV.items() <= job.env.items()
    login = job.steps[index_of(job, "azure/login")]
    assert login.inputs == PREVIEW_LOGIN_WITH
    assert index_of(job, "azure/login") < index_of_cli(job)
    assert index_of(job, "azure/use-kubelogin") < len(job.steps) - 1


def test_only_release_jobs_use_the_deploy_identity(workflows: dict[str, Workflow]) -> None:
    for name, wf in workflows.items():
        # main.yml's through the deploy jobs it calls (expanded), deploy.yml's own.
        uses_deployer = any("vars.AZURE_CLIENT_ID" in str(job.raw) for job in wf.jobs.values())
        assert uses_deployer == (name in ("main.yml", "deploy.yml")), name


def test_pr_bicep_build_and_lint(pr: Workflow) -> None:
    job = pr.jobs["bicep"]
    scripts = "\n".join((s.run or "") for s in job.steps)
    assert "az bicep build --file infra/bicep/main.bicep" in scripts
    assert "az bicep lint --file infra/bicep/main.bicep" in scripts
    assert job.permissions == {"contents": "read"}


# --- build and push -----------------------------------------------------------------------------------------


def test_build_pushes_only_the_full_sha_tag(main: Workflow) -> None:
    job = main.jobs["build"]
    build = step_named(job, "Build the image once").run
    assert "scripts/build-image.sh" in build  # the same recipe as `make image`, root Dockerfile
    push = step_named(job, "Push").run
    assert [line.strip() for line in push.splitlines() if "docker push" in line] == [
        'docker push "$image:$RELEASE_COMMIT"'
    ]
    assert "$RELEASE_COMMIT" in push and "${RELEASE_COMMIT:0" not in push  # the full SHA, not a short one
    assert main.env["IMAGE_REPOSITORY"] == "muse"


TAG_LATEST = 'scripts/ci/tag-latest.sh "$STACK" "$IMAGE_DIGEST"'


def latest_problems(main: Workflow) -> list[str]:
    """Why `latest` could name an image that was not deployed successfully: only the step right after each
    deploy moves it, under GitHub's default success() condition (skipped when the deploy or its rollback
    failed); nothing else in main.yml tags or pushes it."""
    problems = []
    for job_id, job in main.jobs.items():
        tags = [s for s in job.steps if s.run == TAG_LATEST]
        commands = {  # the step's commands; an `echo` that mentions latest moves nothing
            id(s): "\n".join(
                line for line in (s.run or "").splitlines() if not line.strip().startswith("echo")
            )
            for s in job.steps
        }
        others = [s for s in job.steps if s not in tags and re.search(r"latest|docker tag", commands[id(s)])]
        problems += [f"{job_id}: step {s.name!r} moves or names latest" for s in others]
        if job_id not in DEPLOYS.values():
            problems += [f"{job_id}: tags latest without deploying" for _ in tags]
            continue
        deploys = pulumi_steps(job, "up")
        if len(tags) != 1 or len(deploys) != 1:
            problems.append(f"{job_id}: expected one deploy and one tag-latest step")
            continue
        if job.steps.index(tags[0]) != job.steps.index(deploys[0]) + 1:
            problems.append(f"{job_id}: latest is not moved right after the deploy")
        if tags[0].condition is not None:
            problems.append(f"{job_id}: the tag-latest step runs under `if: {tags[0].condition}`")
    return problems


def test_latest_moves_only_after_the_deploy_of_that_digest_succeeded(main: Workflow) -> None:
    assert latest_problems(main) == []


def test_latest_check_catches_a_latest_that_moves_before_or_without_a_good_deploy(main: Workflow) -> None:
    """Negative control: the build as it was (tags and pushes latest), a tag step under `if: always()`, and
    one moved before the deploy."""
    old_build = main.text.replace(
        '          docker image inspect "$image:$RELEASE_COMMIT" > /dev/null\n',
        '          docker image inspect "$image:$RELEASE_COMMIT" > /dev/null\n'
        '          docker tag "$image:$RELEASE_COMMIT" "$image:latest"\n',
    )
    assert any("build: step" in p for p in latest_problems(expanded_main(main=old_build)))
    always = deploy_text().replace(
        f"      - name: Move latest to the deployed digest\n        run: {TAG_LATEST}",
        f"      - name: Move latest to the deployed digest\n        if: always()\n        run: {TAG_LATEST}",
    )
    assert always != deploy_text()
    assert any("`if: always()`" in p for p in latest_problems(expanded_main(deploy=always)))
    job = main.jobs[DEV]
    tag = step_named(job, "Move latest")
    early = replace(job, steps=(tag, *(s for s in job.steps if s is not tag)))
    reordered = replace(main, jobs={**main.jobs, DEV: early})
    assert f"{DEV}: latest is not moved right after the deploy" in latest_problems(reordered)


def test_build_script_tags_the_git_revision(main: Workflow) -> None:
    """main.yml relies on scripts/build-image.sh tagging <image>:<git rev-parse HEAD>."""
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "scripts" / "build-image.sh").read_text(encoding="utf-8")
    assert 'revision="$(git rev-parse HEAD' in script
    assert '--tag "$image:$revision"' in script
    assert "IMAGE_ENGINE" in script


def test_build_captures_the_registry_digest(main: Workflow) -> None:
    job = main.jobs["build"]
    assert job.outputs["digest"] == "${{ steps.push.outputs.digest }}"
    push = step_named(job, "Push")
    assert push.id == "push"
    assert "az acr repository show" in push.run and "--query digest" in push.run
    assert "^sha256:[0-9a-f]{64}$" in push.run
    assert 'echo "digest=$digest" >> "$GITHUB_OUTPUT"' in push.run


def build_registry_problems(main: Workflow, environments: tuple[str, ...]) -> list[str]:
    """The build pushes to the first environment's registry: the stack it reads is the setup job's `first`
    output (stack/environments.txt's first line, which the model computes), never a name written here."""
    job = main.jobs["build"]
    registry = step_named(job, "Read the first environment's registry")
    problems = []
    for output in ("registryName", "registryLoginServer"):
        if f'pulumi stack output {output} --stack "$STACK"' not in registry.run:
            problems.append(f"the build reads {output} of a stack named in its script")
    written = (job.written or job.raw).get("env", {}).get("STACK")
    if written != "${{ needs.environments.outputs.first }}":
        problems.append(f"the build's STACK is {written!r}, written by hand")
    if job.env.get("STACK") != environments[0]:
        problems.append(
            f"the build reads {job.env.get('STACK')!r}, the first environment is {environments[0]}"
        )
    return problems


def test_registry_name_comes_from_the_stack_outputs(main: Workflow) -> None:
    job = main.jobs["build"]
    assert build_registry_problems(main, ENVIRONMENTS) == []

    # The registry's resource id, which the next environment imports from, comes from the model (stack output
    # registryId, read by each deploy job of its own stack), never assembled from variables.
    for job_id in DEPLOYS.values():
        own = step_named(main.jobs[job_id], "This environment's registry")
        assert 'id="$(pulumi stack output registryId --stack "$STACK")"' in own.run
        assert 'echo "id=$id"' in own.run and "/subscriptions/$" not in own.run
    login = step_named(job, "Log in to ACR")
    assert login.run == 'az acr login --name "$REGISTRY_NAME"'
    assert "--username" not in main.text and "admin" not in login.run.replace("admin user", "")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('--stack "$STACK"', f"--stack {ENVIRONMENTS[0]}", "of a stack named in its script"),
        ("STACK: ${{ needs.environments.outputs.first }}", f"STACK: {ENVIRONMENTS[0]}", "written by hand"),
        ("    needs: [environments]\n", "", "the first environment is"),
    ],
    ids=["stack-in-script", "stack-by-hand", "setup-not-needed"],
)
def test_negative_control_a_build_reading_a_named_stack_is_found(old: str, new: str, problem: str) -> None:
    text = (REPO_ROOT / ".github/workflows/main.yml").read_text()
    assert old in text
    edited = parse(text.replace(old, new), REPO_ROOT / ".github/workflows/main.yml")
    problems = build_registry_problems(edited, ENVIRONMENTS)
    assert any(problem in p for p in problems), problems


def test_build_runs_only_on_main(main: Workflow) -> None:
    assert main.jobs["build"].condition == "github.ref == 'refs/heads/main'"


# --- deploys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", DEPLOYS.values())
def test_deploy_releases_the_built_digest(main: Workflow, job_id: str) -> None:
    """deploy.py sets muse:imageTag to the digest and runs `pulumi up` (test_deploy_rollback.py runs it)."""
    job = main.jobs[job_id]
    assert job.env["IMAGE_DIGEST"] == DIGEST
    assert "build" in job.needs
    scripts = "\n".join(s for _, s in job.run_scripts())
    # Deploy jobs never build: the image comes from the build job only.
    assert "docker build" not in scripts and "build-image.sh" not in scripts
    (up,) = pulumi_steps(job, "up")
    assert up.run == DEPLOY_CALL
    # The abort re-applies the previously deployed commit's program: the clone must hold it.
    checkout = job.steps[index_of(job, "actions/checkout")]
    assert checkout.inputs["fetch-depth"] == 0
    assert up.stack_name == "$STACK" and job.env["STACK"] == job_id.split(".")[0].removeprefix("deploy-")
    assert job.env["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_same_digest_flows_from_dev_to_prod(main: Workflow) -> None:
    dev, prod = main.jobs[DEV], main.jobs[PROD]
    assert dev.env["STACK"] == ENVIRONMENTS[0] and prod.env["STACK"] == ENVIRONMENTS[-1]
    assert dev.env["IMAGE_DIGEST"] == prod.env["IMAGE_DIGEST"] == main.jobs[PREVIEW_PROD].env["IMAGE_DIGEST"]
    assert dev.env["IMAGE_DIGEST"] == DIGEST
    copy = step_named(prod, "Copy the same digest")
    # The source registry by resource id: no registry listing, no anonymous fallback (azure-cli import.py).
    assert '--registry "$SOURCE_REGISTRY_ID"' in copy.run
    assert '--source "$IMAGE_REPOSITORY@$IMAGE_DIGEST"' in copy.run
    assert '--image "$IMAGE_REPOSITORY:$RELEASE_COMMIT" --force' in copy.run
    assert "latest" not in copy.run  # moved after the prod deploy succeeded
    assert '[[ "$imported" != "$IMAGE_DIGEST" ]]' in copy.run
    assert prod.steps.index(copy) < prod.steps.index(pulumi_steps(prod, "up")[0])
    # From the environment before prod: that call's output, which is its deploy job's registry step.
    assert prod.env["SOURCE_REGISTRY_ID"] == f"${{{{ needs.deploy-{BEFORE_PROD}.outputs.registry-id }}}}"
    assert prod.env["SOURCE_ENVIRONMENT"] == BEFORE_PROD and "SOURCE_REGISTRY_ID" in dev.env
    assert not any(
        "az acr import --name" in (s.run or "") for s in dev.steps
    )  # the first one imports nothing
    called = parse(deploy_text())
    outputs = called.triggers["workflow_call"]["outputs"]
    assert outputs["registry-id"]["value"] == "${{ jobs.deploy.outputs.registry_id }}"
    assert dev.outputs["registry_id"] == "${{ steps.registry.outputs.id }}"
    assert "registry_id" not in main.jobs["build"].outputs


def prod_gate_problems(main: Workflow) -> list[str]:
    """Why the prod approver could approve without seeing the prod diff, or the diff could come from
    something that can deploy."""
    problems = []
    prod, preview = main.jobs[PROD], main.jobs.get(PREVIEW_PROD)
    if prod.environment != "prod":
        problems.append("deploy-prod is not gated by the prod environment")
    if set(prod.needs) != {"build", *BEFORE_PROD_JOBS, PREVIEW_PROD}:
        problems.append(f"deploy-prod needs {sorted(prod.needs)}, not build, {BEFORE_PROD} and preview-prod")
    if preview is None:
        return [*problems, "no preview-prod job"]
    # Its environment is its OIDC subject (environment:preview-prod, prod's read-only identity); that
    # environment has no reviewers, so the approver sees the diff before approving prod.
    if preview.environment != "preview-prod":
        problems.append("preview-prod does not run in the preview-prod environment (its OIDC subject)")
    if preview.pulumi_commands != ["preview"] or any(
        DEPLOY_WORDS.search(s) for _, s in preview.run_scripts()
    ):
        problems.append("preview-prod does more than `pulumi preview`")
    if "vars.AZURE_CLIENT_ID" in str(preview.raw) or not PREVIEW_OIDC_ENV.items() <= preview.env.items():
        problems.append("preview-prod does not sign in as the read-only preview identity")
    if preview.env.get("STACK") != "prod" or preview.env.get("IMAGE_DIGEST") != DIGEST:
        problems.append("preview-prod does not preview prod with the built digest")
    return problems


def test_prod_is_gated_by_the_prod_environment_after_dev_and_the_prod_diff(main: Workflow) -> None:
    assert prod_gate_problems(main) == []
    assert main.jobs[PROD].raw["environment"]["url"] == "${{ steps.deploy.outputs.museUrl }}"
    # Each job's environment is its OIDC subject: environment:dev reaches the dev deployer only, and the build
    # (ref:refs/heads/main) reaches the build identity only.
    assert main.jobs[DEV].environment == "dev"
    assert main.jobs["build"].environment is None


def test_prod_gate_check_catches_an_approval_without_the_diff(main: Workflow) -> None:
    """Negative control: deploy-prod as it was (needs build and deploy-dev only), and a preview signing in as
    the deploy identity."""
    old = replace(
        main,
        jobs={**main.jobs, PROD: replace(main.jobs[PROD], needs=("build", DEV))},
    )
    assert any("deploy-prod needs" in p for p in prod_gate_problems(old))
    preview = main.jobs[PREVIEW_PROD]
    deployer = replace(preview, env={**preview.env, "ARM_CLIENT_ID": "${{ vars.AZURE_CLIENT_ID }}"})
    wrong = replace(main, jobs={**main.jobs, PREVIEW_PROD: deployer})
    assert "preview-prod does not sign in as the read-only preview identity" in prod_gate_problems(wrong)


def test_prod_diff_is_previewed_read_only_before_the_approval(main: Workflow) -> None:
    job = main.jobs[PREVIEW_PROD]
    # A call's `needs` gate every job of the call: prod's preview starts once dev runs the digest.
    assert set(job.needs) == {"build", *BEFORE_PROD_JOBS}
    assert job.steps[index_of(job, "azure/login")].inputs == PREVIEW_LOGIN_WITH
    (preview,) = pulumi_steps(job, "preview")
    assert " ".join((preview.run or "").split()) == (
        '.ci-tools/scripts/ci/preview.py --stack "$STACK" --policy-pack policy '
        '--title "Diff of $STACK to approve, commit $RELEASE_COMMIT" --change-set'
    )
    # The diff is of this commit with the digest deploy-prod will release, set in the working copy first.
    config = step_named(job, "Preview with the digest")
    assert 'pulumi config set --stack "$STACK" muse:imageTag "$IMAGE_DIGEST"' in config.run
    assert job.steps.index(config) < job.steps.index(preview)


def change_set_binding_problems(main: Workflow) -> list[str]:
    """What lets the prod approver approve a stale diff: deploy-prod must re-run the preview just before
    `pulumi up` and compare its change set with preview-prod's (preview.py --expect-change-set,
    test_preview_report.py runs it)."""
    problems = []
    preview_prod, deploy = main.jobs[PREVIEW_PROD], main.jobs[PROD]
    (recorded,) = pulumi_steps(preview_prod, "preview")
    if "--change-set" not in (recorded.script_call or ()) or not recorded.id:
        problems.append("preview-prod does not record its change set")
    elif preview_prod.outputs.get("change_set") != f"${{{{ steps.{recorded.id}.outputs.change_set }}}}":
        problems.append("preview-prod does not output its change set")
    checks = [s for s in pulumi_steps(deploy, "preview") if s.script_option("--expect-change-set")]
    (up,) = pulumi_steps(deploy, "up")
    if len(checks) != 1:
        problems.append("deploy-prod does not check the change set")
        return problems
    check = checks[0]
    # `needs.preview` inside deploy.yml: the preview job of the same call (PREVIEW_PROD here).
    if check.env.get("APPROVED_CHANGE_SET") != "${{ needs.preview.outputs.change_set }}" or (
        PREVIEW_PROD not in deploy.needs
    ):
        problems.append("deploy-prod compares with something other than preview-prod's change set")
    if check.script_option("--expect-change-set") != ["$APPROVED_CHANGE_SET"]:
        problems.append("deploy-prod compares with something other than preview-prod's change set")
    if deploy.steps.index(check) != deploy.steps.index(up) - 1:
        problems.append("the change-set check is not the step just before pulumi up")
    if 'pulumi config set --stack "$STACK" muse:imageTag "$IMAGE_DIGEST"' not in (check.run or ""):
        problems.append("the change-set check does not preview the digest being released")
    if check.condition:
        problems.append("the change-set check is conditional")
    return problems


def test_deploy_prod_applies_only_the_change_set_that_was_approved(main: Workflow) -> None:
    assert change_set_binding_problems(main) == []


def test_a_deploy_without_the_change_set_check_is_caught(main: Workflow) -> None:
    """Negative control: deploy-prod without the check (the stale-approval defect) is reported."""
    deploy = main.jobs[PROD]
    steps = tuple(s for s in deploy.steps if "--expect-change-set" not in (s.run or ""))
    wrong = replace(main, jobs={**main.jobs, PROD: replace(deploy, steps=steps)})
    assert change_set_binding_problems(wrong) == ["deploy-prod does not check the change set"]


@pytest.mark.parametrize("job_id", ["build", *DEPLOYS.values()])
def test_release_jobs_use_oidc(main: Workflow, job_id: str) -> None:
    job = main.jobs[job_id]
    # The build also attests the pushed digest; deploy-prod reads what it verifies (test_provenance.py) and
    # its run's review history (scripts/ci/approval_guard.py).
    by_job = {d: deploy_grant(e) for e, d in DEPLOYS.items()}
    expected = by_job.get(job_id, {"contents": "read", "id-token": "write", "attestations": "write"})
    assert job.permissions == expected
    login = job.steps[index_of(job, "azure/login")]
    assert login.inputs == (BUILD_LOGIN_WITH if job_id == "build" else AZURE_LOGIN_WITH)
    if job_id != "build":
        assert OIDC_ENV.items() <= job.env.items()
        # kubelogin (AKS local accounts disabled) and login come before any pulumi command
        assert index_of(job, "azure/use-kubelogin") < job.steps.index(pulumi_steps(job, "up")[0])
        assert index_of(job, "azure/login") < job.steps.index(pulumi_steps(job, "up")[0])


@pytest.mark.parametrize("job_id", DEPLOYS.values())
def test_deploy_verifies_rollout_and_smoke_checks_healthz_and_rolls_back(main: Workflow, job_id: str) -> None:
    """One step releases, checks and rolls back (a failed check cannot be caught in a later step without
    continue-on-error, which is banned); test_deploy_rollback.py runs it through every outcome."""
    job = main.jobs[job_id]
    (up,) = pulumi_steps(job, "up")
    assert up.id == "deploy" and up.name and "rolls back" in up.name
    script = (REPO_ROOT / "scripts" / "ci" / "deploy.py").read_text()
    assert '"verify-rollout.sh"' in script and '"smoke-check.sh"' in script
    assert not any(s.raw.get("continue-on-error") for s in job.steps)


def test_smoke_check_uses_curl_fail_retry_on_healthz() -> None:
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "scripts" / "ci" / "smoke-check.sh").read_text()
    assert "curl --fail" in script and "--retry" in script
    assert '/healthz"' in script


def test_deploy_concurrency_per_stack_never_cancels(main: Workflow) -> None:
    groups = {}
    for job_id in DEPLOYS.values():
        concurrency = main.jobs[job_id].concurrency
        assert concurrency["cancel-in-progress"] is False
        groups[job_id] = concurrency["group"]
    assert groups == {d: f"pulumi-deploy-{e}" for e, d in DEPLOYS.items()}
    assert main.jobs[PREVIEW_PROD].concurrency == {
        "group": "pulumi-preview-prod",
        "cancel-in-progress": False,
    }
    assert main.jobs["build"].concurrency["cancel-in-progress"] is False
    assert main.concurrency is None  # a workflow-level group would cancel pending prod approvals


def test_no_caches_on_the_release_path(policy: Any, main: Workflow) -> None:
    assert policy.check_caches(main) == []
    assert "actions/cache" not in main.text
    for job in main.jobs.values():
        for step in job.steps:
            assert "cache" not in step.inputs, step.name
            assert "cache-from" not in (step.run or "")


# --- drift --------------------------------------------------------------------------------------------------


def test_drift_previews_the_deployed_commit_with_refresh_and_expects_no_changes(drift: Workflow) -> None:
    job = drift.jobs["drift"]
    assert job.matrix["stack"] == list(ENVIRONMENTS)
    assert job.strategy["fail-fast"] is False
    assert job.pulumi_commands == ["preview"]  # never up/refresh: drift detection writes no state
    (preview,) = pulumi_steps(job, "preview")
    # --drift: --refresh --expect-no-changes, the diff in the summary (test_preview_report.py runs it).
    assert preview.run == (
        'scripts/ci/preview.py --stack "$STACK" --drift --cwd "$RUNNER_TEMP/deployed" '
        '--note "$RUNNER_TEMP/compared.md" --report "$RUNNER_TEMP/drift.md"'
    )
    assert job.env["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert PREVIEW_OIDC_ENV.items() <= job.env.items()
    # The commit last deployed to the stack (deployed_commit.py), checked out beside main: full history.
    checkout = job.steps[index_of(job, "actions/checkout")]
    assert checkout.inputs["fetch-depth"] == 0
    find = step_named(job, "Find the commit deployed")
    assert find.id == "deployed"
    assert find.run == 'scripts/ci/deployed_commit.py --stack "$STACK" --note "$RUNNER_TEMP/compared.md"'
    worktree = step_named(job, "Check out that commit")
    assert worktree.env["DEPLOYED_COMMIT"] == "${{ steps.deployed.outputs.commit }}"
    assert 'git worktree add --detach "$RUNNER_TEMP/deployed" "$DEPLOYED_COMMIT"' in worktree.run
    # Hash-locked (the job holds a token), also for a commit older than `make ci-venv` (test_deployed_venv).
    assert 'scripts/ci/deployed-venv.sh "$RUNNER_TEMP/deployed"' in worktree.run
    pin = step_named(job, "Compare against the image")
    assert 'cd "$RUNNER_TEMP/deployed"' in pin.run and "pin-deployed-image.sh" in pin.run
    order = [job.steps.index(s) for s in (find, worktree, pin, preview)]
    assert order == sorted(order)
    # A stack main.yml never deployed (deployed_commit.py source=none) is skipped with a notice, not red.
    for step in (worktree, pin, preview):
        assert step.condition == "steps.deployed.outputs.source != 'none'", step.name
    assert "pulumi refresh" not in "\n".join(s for _, s in job.run_scripts())


KUBERNETES_SUPPORT_RUN = '.venv/bin/python -m cli.kubernetes_support --stack "$STACK"'


def kubernetes_support_problems(drift: Workflow) -> list[str]:
    """What keeps the scheduled run from turning red 60 days before a stack's minor leaves AKS support
    (stack/kubernetes_support.py; its CLI is tested in tests/stack)."""
    job = drift.jobs.get("kubernetes-support")
    if job is None:
        return ["no kubernetes-support job"]
    problems = []
    if job.matrix.get("stack") != list(ENVIRONMENTS) or job.strategy.get("fail-fast") is not False:
        problems.append("not every stack is checked on its own")
    # Only on the setup job that lists the environments (test_environment_matrices.py), no condition.
    if job.condition is not None or job.needs != ("environments",):
        problems.append("the job depends on a condition or another job")
    # No Azure identity: the calendar is in the repository.
    if job.permissions != {"contents": "read"} or job.uses_action("azure/login") or pulumi_steps(job):
        problems.append("the job holds more than read access to the repository")
    steps = [s for s in job.steps if s.run == KUBERNETES_SUPPORT_RUN]
    venv = [i for i, s in enumerate(job.steps) if s.run == "make venv"]
    if len(steps) != 1 or not venv or job.steps.index(steps[0]) < venv[0]:
        problems.append("the check does not run once, after make venv")
    elif steps[0].env != {"STACK": "${{ matrix.stack }}"}:
        problems.append("the check does not get the matrix's stack")
    # Red means red: nothing may swallow the exit code.
    if any(s.condition or s.raw.get("continue-on-error") for s in steps) or job.raw.get("continue-on-error"):
        problems.append("the exit code can be swallowed")
    return problems


def test_drift_schedule_turns_red_before_a_stacks_kubernetes_minor_leaves_aks_support(
    drift: Workflow,
) -> None:
    assert set(drift.jobs) == {"environments", "drift", "kubernetes-support", "image-base-support"}
    assert set(drift.triggers) == {"schedule", "workflow_dispatch"}
    assert kubernetes_support_problems(drift) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ("    timeout-minutes: 15\n", "    timeout-minutes: 15\n    continue-on-error: true\n"),
            "swallowed",
        ),
        (
            (
                "      contents: read\n    strategy:",
                "      contents: read\n      id-token: write\n    strategy:",
            ),
            "more than read",
        ),
        (('--stack "$STACK"', "--stack prod"), "not run once"),
    ],
)
def test_negative_control_the_kubernetes_support_check_sees_a_weakened_job(
    drift: Workflow, edit: tuple[str, str], problem: str
) -> None:
    from verify.workflows import parse

    assert drift.text.count(edit[0]) >= 1
    weakened = parse(drift.text.replace(edit[0], edit[1], 1), "drift.yml")
    assert any(problem in p for p in kubernetes_support_problems(weakened))


# --- hygiene on every workflow ------------------------------------------------------------------------------


def test_every_workflow_passes_the_policy(policy: Any, workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert policy.check(wf) == [], wf.name


def test_permissions_per_job(workflows: dict[str, Workflow]) -> None:
    expected = {
        ("pull-request.yml", "checks"): {"contents": "read"},
        # The setup job that lists the environments for the matrices (test_environment_matrices.py).
        **{(w, "environments"): {"contents": "read"} for w in ("pull-request.yml", "main.yml", "drift.yml")},
        ("pull-request.yml", "offline-plan"): {"contents": "read"},
        ("pull-request.yml", "plan-diff"): {"contents": "read"},
        ("pull-request.yml", "preview"): {"contents": "read", "id-token": "write", "pull-requests": "write"},
        ("pull-request.yml", "bicep"): {"contents": "read"},
        ("main.yml", "build"): {"contents": "read", "id-token": "write", "attestations": "write"},
        **{("main.yml", d): deploy_grant(e) for e, d in DEPLOYS.items()},
        **{("main.yml", p): {"contents": "read", "id-token": "write"} for p in PREVIEWS.values()},
        ("drift.yml", "drift"): {"contents": "read", "id-token": "write", "issues": "write"},
        ("drift.yml", "kubernetes-support"): {"contents": "read"},
        ("drift.yml", "image-base-support"): {"contents": "read"},
        ("scan.yml", "locks"): {"contents": "read"},
        ("scan.yml", "image"): {"contents": "read"},
        # The reusable workflow on its own: the preview narrows what its call grants, the deploy job takes
        # exactly what its call grants (above: DEV, PROD).
        ("deploy.yml", "preview"): {"contents": "read", "id-token": "write"},
        ("deploy.yml", "deploy"): None,
    }
    actual = {
        (name, job_id): job.permissions for name, wf in workflows.items() for job_id, job in wf.jobs.items()
    }
    assert actual == expected
    for name, wf in workflows.items():
        # A called workflow's own block would narrow every one of its jobs ("Reusable workflows reference").
        assert wf.permissions == (None if name == "deploy.yml" else {}), name


def test_every_uses_is_pinned_to_a_commit_sha_with_a_version(
    policy: Any, workflows: dict[str, Workflow]
) -> None:
    for wf in workflows.values():
        refs = [s.uses for job in wf.jobs.values() for s in job.steps if s.uses]
        assert refs, wf.name
        for ref in refs:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert policy.check_version_comments(wf) == []


def test_one_sha_per_action_across_workflows(workflows: dict[str, Workflow]) -> None:
    pins: dict[str, set[str]] = {}
    for wf in workflows.values():
        for line in wf.text.splitlines():
            match = re.match(r"\s*(?:-\s+)?uses:\s*([^@\s]+)@(\S+)\s+#\s*(\S+)", line)
            if match:
                pins.setdefault(match.group(1), set()).add(f"{match.group(2)} {match.group(3)}")
    assert pins and all(len(v) == 1 for v in pins.values()), pins


def test_no_event_data_inside_run(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        for job in wf.jobs.values():
            for _, script in job.run_scripts():
                assert "${{" not in script
                assert "github.event" not in script


def test_checkout_never_persists_credentials(workflows: dict[str, Workflow]) -> None:
    count = 0
    for wf in workflows.values():
        for job in wf.jobs.values():
            for step in job.steps:
                if step.action == "actions/checkout":
                    count += 1
                    assert step.inputs["persist-credentials"] is False
    assert count >= 8


def test_every_job_has_a_timeout(workflows: dict[str, Workflow]) -> None:
    """An hour at most; the deploy job the minutes deploy.py's deadlines are counted in (a canary release's
    steps, promotion and a possible abort)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))
    import deploy

    for wf in workflows.values():
        for job_id, job in wf.jobs.items():
            # deploy.yml's job, on its own or expanded into main.yml's callers (`deploy-<env>.deploy`)
            ours = (wf.file_name, job_id) == ("deploy.yml", "deploy") or (
                wf.file_name == "main.yml" and re.fullmatch(r"deploy-[a-z]+\.deploy", job_id)
            )
            limit = deploy.JOB_TIMEOUT_MINUTES if ours else 60
            assert 0 < job.timeout_minutes <= limit, (wf.name, job_id)


def test_every_pulumi_command_uses_the_blob_backend_and_the_pinned_cli(
    workflows: dict[str, Workflow],
) -> None:
    for wf in _pulumi_workflows(workflows):
        for job in wf.jobs.values():
            # pulumi/actions installs "the latest" of a version list that can change, without a checksum.
            assert not job.steps_of("pulumi/actions"), job.id
            runs_pulumi = [
                i for i, s in enumerate(job.steps) if s.pulumi_command or _runs_pulumi(s.run or "")
            ]
            if runs_pulumi:
                # The CLI reads the backend from PULUMI_BACKEND_URL; the pinned CLI is installed first.
                assert job.env["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
                assert index_of(job, "azure/login") < index_of_cli(job)
                assert index_of_cli(job) < min(runs_pulumi)


def _pulumi_workflows(workflows: dict[str, Workflow]) -> list[Workflow]:
    """The workflows that install or run the Pulumi CLI (scan.yml does neither)."""
    found = [
        wf
        for wf in workflows.values()
        if any(s.pulumi_command or _runs_pulumi(s.run or "") for job in wf.jobs.values() for s in job.steps)
    ]
    assert {wf.file_name for wf in found} == {"pull-request.yml", "main.yml", "drift.yml", "deploy.yml"}
    return found


def _runs_pulumi(script: str) -> bool:
    return any(
        re.search(r"(^|[\s;&|(])pulumi\s", line)
        for line in script.splitlines()
        if not line.strip().startswith("echo")
    )


def locked_pulumi_sdk() -> str:
    """The `pulumi` version uv.lock resolves: the one home of the fact (Dependabot's uv updates edit it)."""
    import tomllib
    from pathlib import Path

    lock = tomllib.loads((Path(__file__).resolve().parents[2] / "uv.lock").read_text())
    versions = {p["version"] for p in lock["package"] if p["name"] == "pulumi"}
    assert len(versions) == 1, versions
    return versions.pop()


def stale_cli_pins(workflows: dict[str, Workflow], sdk: str) -> list[str]:
    return [
        f"{wf.file_name}: PULUMI_VERSION {wf.env.get('PULUMI_VERSION')} != locked pulumi {sdk}"
        for wf in _pulumi_workflows(workflows)
        if wf.env.get("PULUMI_VERSION") != sdk
    ]


def test_pulumi_sdk_pin_matches_the_cli_pin(workflows: dict[str, Workflow]) -> None:
    """The CLI the workflows install is the locked SDK's release: bumping one without the other fails."""
    assert stale_cli_pins(workflows, locked_pulumi_sdk()) == []


def test_negative_control_an_sdk_bump_without_the_cli_is_named(workflows: dict[str, Workflow]) -> None:
    major, minor, patch = locked_pulumi_sdk().split(".")
    bumped = f"{major}.{int(minor) + 1}.{patch}"  # what a Dependabot uv pull request does to uv.lock
    assert sorted(p.split(":")[0] for p in stale_cli_pins(workflows, bumped)) == [
        "deploy.yml",
        "drift.yml",
        "main.yml",
        "pull-request.yml",
    ]


def test_no_secrets_only_repository_variables(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert "secrets." not in wf.text
        for name in re.findall(r"vars\.([A-Z_]+)", wf.text):
            assert name in {
                "AZURE_CLIENT_ID",
                "AZURE_PREVIEW_CLIENT_ID",
                "AZURE_BUILD_CLIENT_ID",
                "AZURE_TENANT_ID",
                "AZURE_SUBSCRIPTION_ID",
                "PULUMI_BACKEND_URL",
                "ARTIFACT_ATTESTATIONS",  # enabled | unavailable, recorded by scripts/bootstrap.sh
            }


def test_shell_is_bash_everywhere(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert wf.defaults == {"run": {"shell": "bash"}}


# --- credentials that last the whole job --------------------------------------------------------------------

# Static OIDC inputs would pin one ~5-minute assertion into the azure-native provider: with ARM_OIDC_TOKEN
# or ARM_OIDC_TOKEN_FILE_PATH it reads the token once, at configure time; only with the request URL/token
# (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN, which GitHub sets in jobs with id-token: write) does it ask GitHub
# for a fresh assertion each time Entra ID needs one (pulumi/pulumi-azure-native
# provider/pkg/provider/auth_azidentity.go, newOidcCredential and getOidcTokenExchangeAssertion).
STATIC_ASSERTION_VARIABLES = ("ARM_OIDC_TOKEN", "ARM_OIDC_TOKEN_FILE_PATH", "ARM_CLIENT_SECRET")
# Consumers that need a token after the first minutes of the job.
LATE_CONSUMERS = re.compile(
    r"(^|[\s;&|(])(pulumi|kubectl|kubelogin|az)\s"
    r"|scripts/ci/(verify-rollout|pin-deployed-image|deploy|preview|deployed_commit|tag-latest)"
)


def _calls_azure(script: str) -> bool:
    return any(
        LATE_CONSUMERS.search(line) for line in script.splitlines() if not line.strip().startswith("echo")
    )


def credential_problems(job_id: str, job: Job) -> list[str]:
    """Why a job holding an Azure identity could run out of valid credentials before its timeout."""
    problems: list[str] = []
    env = job.env
    login = job.steps[index_of(job, "azure/login")]
    # kubelogin workloadidentity mode and azidentity's WorkloadIdentityCredential (the azblob backend and the
    # azurekeyvault secrets provider via gocloud.dev's DefaultAzureCredential) read these variables; kubelogin
    # lets AAD_LOGIN_METHOD override the kubeconfig's `--login azurecli` (Azure/kubelogin v0.2.17
    # pkg/internal/token/options.go UpdateFromEnv).
    expected = {
        "AZURE_CLIENT_ID": login.inputs["client-id"],
        "AZURE_TENANT_ID": "${{ vars.AZURE_TENANT_ID }}",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
        "AAD_LOGIN_METHOD": "workloadidentity",
    }
    for name, value in expected.items():
        if env.get(name) != value:
            problems.append(f"{job_id}: env {name} is {env.get(name)!r}, expected {value!r}")
    if "ARM_CLIENT_ID" in env and env["ARM_CLIENT_ID"] != env.get("AZURE_CLIENT_ID"):
        problems.append(f"{job_id}: ARM_CLIENT_ID and AZURE_CLIENT_ID name different identities")
    # gocloud.dev's azurekeyvault opener ignores it (always DefaultAzureCredential,
    # secrets/azurekeyvault/akv.go DefaultClientMaker); it only suggested the az session was used.
    if "AZURE_KEYVAULT_AUTH_VIA_CLI" in env:
        problems.append(f"{job_id}: AZURE_KEYVAULT_AUTH_VIA_CLI is a no-op and misleading")
    for name in STATIC_ASSERTION_VARIABLES:
        if name in env:
            problems.append(f"{job_id}: {name} pins a static credential")
    starts = [
        i
        for i, s in enumerate(job.steps)
        if s.run == f"scripts/ci/start-token-refresher.sh {job.timeout_minutes}"
    ]
    if len(starts) != 1:
        problems.append(f"{job_id}: no `scripts/ci/start-token-refresher.sh <timeout-minutes>` step")
        return problems
    start = starts[0]
    if start < index_of(job, "azure/login") or job.steps[start].condition != login.condition:
        problems.append(
            f"{job_id}: the refresher must start right after azure/login, under the same condition"
        )
    for i, step in enumerate(job.steps):
        # A step running a Pulumi command (install-only pulumi/actions steps do not) or a run: calling Azure.
        uses_azure = step.pulumi_command is not None or _calls_azure(step.run or "")
        if uses_azure and i < start:
            problems.append(f"{job_id}: step {step.name!r} uses Azure before the refresher starts")
    return problems


def credentialed_jobs(workflows: dict[str, Workflow]) -> list[tuple[str, str, Job]]:
    return [
        (name, job_id, job)
        for name, wf in workflows.items()
        for job_id, job in wf.jobs.items()
        if isinstance(job.permissions, dict) and job.permissions.get("id-token") == "write"
    ]


def test_every_job_holding_an_azure_identity_keeps_credentials_for_its_whole_timeout(
    workflows: dict[str, Workflow],
) -> None:
    jobs = credentialed_jobs(workflows)
    assert {(name, job_id) for name, job_id, _ in jobs} == {
        ("main.yml", "build"), *(("main.yml", j) for j in (*DEPLOYS.values(), *PREVIEWS.values())),
        ("pull-request.yml", "preview"), ("drift.yml", "drift"),
        ("deploy.yml", "preview"),  # on its own; its deploy job holds what a call grants (main.yml's)
    }  # fmt: skip
    for _, job_id, job in jobs:
        assert credential_problems(job_id, job) == []
    for wf in workflows.values():
        for name in (*STATIC_ASSERTION_VARIABLES, "AZURE_KEYVAULT_AUTH_VIA_CLI"):
            assert name not in wf.text, (wf.name, name)


def test_credential_check_catches_a_job_that_relies_on_the_azure_login_session(main: Workflow) -> None:
    """Negative control: the deploy job as it was (azure/login only, azurecli kubelogin, KV via az CLI)."""
    job = main.jobs[DEV]
    env = {
        k: v
        for k, v in job.env.items()
        if k not in {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "AAD_LOGIN_METHOD"}
    }
    old = replace(
        job,
        steps=tuple(s for s in job.steps if "start-token-refresher" not in (s.run or "")),
        env={**env, "AZURE_KEYVAULT_AUTH_VIA_CLI": "true"},
    )
    problems = credential_problems(DEV, old)
    assert any("AAD_LOGIN_METHOD" in p for p in problems)
    assert any("start-token-refresher" in p for p in problems)
    assert any("AZURE_KEYVAULT_AUTH_VIA_CLI" in p for p in problems)
    # A refresher started after the first pulumi command is caught too.
    start = next(s for s in job.steps if "start-token-refresher" in (s.run or ""))
    late = replace(job, steps=(*(s for s in job.steps if s is not start), start))
    assert any("before the refresher starts" in p for p in credential_problems(DEV, late))


def test_verify_rollout_uses_the_refreshed_token_in_ci() -> None:
    from pathlib import Path

    ci = Path(__file__).resolve().parents[2] / "scripts" / "ci"
    assert "write-kubeconfig.sh" in (ci / "verify-rollout.sh").read_text()
    script = (ci / "write-kubeconfig.sh").read_text()
    assert 'if [[ -n "${AZURE_FEDERATED_TOKEN_FILE:-}" ]]' in script
    assert "az-login-federated.sh" in script and "login=workloadidentity" in script


def unset_variables(job: Job) -> set[str]:
    """Shell variables a job's run scripts expand that neither GitHub nor the job/step env defines (bash would
    expand them to nothing: e.g. a resource id `/subscriptions//...`). Only the AZURE_/ARM_ variables our
    scripts read from the environment are checked; azure/login exports none of them (its action.yml)."""
    missing = set()
    for step in job.steps:
        defined = {**job.env, **step.env}
        for name in re.findall(r"\$\{?((?:AZURE|ARM)_[A-Z_]+)", step.run or ""):
            if name not in defined:
                missing.add(name)
    return missing


def test_every_azure_variable_a_script_expands_is_defined(workflows: dict[str, Workflow]) -> None:
    unset = {
        (name, job_id): unset_variables(job)
        for name, wf in workflows.items()
        for job_id, job in wf.jobs.items()
        if unset_variables(job)
    }
    assert unset == {}


def test_an_undefined_subscription_id_is_caught(main: Workflow) -> None:
    """Negative control: the registry id (which the next environment imports from) assembled from a variable
    the deploy job does not define (azure/login exports none) would be `/subscriptions//...`; the job reads
    the stack output registryId instead."""
    build = main.jobs[DEV]
    assert "AZURE_SUBSCRIPTION_ID" not in build.env
    step = step_named(build, "This environment's registry")
    assembled = dataclasses.replace(
        step,
        run=step.run.replace(
            'id="$(pulumi stack output registryId --stack "$STACK")"',
            'id="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$group/providers/'
            'Microsoft.ContainerRegistry/registries/$name"',
        ),
    )
    assert assembled.run != step.run
    steps = [assembled if s is step else s for s in build.steps]
    assert unset_variables(dataclasses.replace(build, steps=steps)) == {"AZURE_SUBSCRIPTION_ID"}


def job_clock_problems(job: Job, timeout_minutes: float) -> list[str]:
    """deploy.py's deadlines count from JOB_STARTED_AT within the job's timeout: the job's first step must
    record it, and its timeout-minutes must be the one deploy.py assumes."""
    problems = []
    first = job.steps[0].run or ""
    if 'echo "JOB_STARTED_AT=$(date +%s)" >> "$GITHUB_ENV"' not in first:
        problems.append(f"{job.id}: the first step does not record JOB_STARTED_AT")
    if job.timeout_minutes != timeout_minutes:
        problems.append(f"{job.id}: timeout-minutes {job.timeout_minutes} != deploy.py's {timeout_minutes}")
    return problems


@pytest.mark.parametrize("job_id", [DEV, PROD])
def test_the_deploy_job_records_its_start_for_deploy_pys_deadlines(main: Workflow, job_id: str) -> None:
    import sys

    sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))
    import deploy

    job = main.jobs[job_id]
    assert job_clock_problems(job, deploy.JOB_TIMEOUT_MINUTES) == []
    # negative controls: the record moved after the checkout, or a longer job timeout than deploy.py knows
    late = replace(job, steps=(*job.steps[1:2], job.steps[0], *job.steps[2:]))
    assert job_clock_problems(late, deploy.JOB_TIMEOUT_MINUTES) != []
    assert job_clock_problems(replace(job, timeout_minutes=90), deploy.JOB_TIMEOUT_MINUTES) != []
