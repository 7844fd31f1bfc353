"""What the three workflows must keep doing, asserted on the parsed workflows so a later edit cannot
silently drop a gate: triggers, no deploy from pull requests, image tags, OIDC, the prod environment gate,
one digest from build to prod, permissions, pins, concurrency, timeouts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from export.workflows import Job, Step, Workflow

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


def step_named(job: Job, fragment: str) -> Step:
    matches = [s for s in job.steps if fragment in (s.name or "")]
    assert len(matches) == 1, f"expected one step named like {fragment!r}, found {len(matches)}"
    return matches[0]


def pulumi_steps(job: Job, command: str | None = None) -> list[Step]:
    return [
        s for s in job.steps_of("pulumi/actions") if command is None or s.inputs.get("command") == command
    ]


def index_of(job: Job, action: str) -> int:
    return next(i for i, s in enumerate(job.steps) if s.action == action)


# --- triggers -----------------------------------------------------------------------------------------------


def test_triggers(pr: Workflow, main: Workflow, drift: Workflow) -> None:
    assert pr.triggers == {"pull_request": {"branches": ["main"]}}
    assert main.triggers == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert set(drift.triggers) == {"schedule", "workflow_dispatch"}
    assert drift.triggers["schedule"][0]["cron"]


def test_no_pull_request_target_anywhere(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert "pull_request_target" not in wf.triggers
        assert "pull_request_target" not in wf.text


def test_only_the_three_workflows_exist(workflows: dict[str, Workflow]) -> None:
    assert set(workflows) == {"pull-request.yml", "main.yml", "drift.yml"}


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
            assert job.uses is None, f"{job_id}: reusable workflow from a pull request"


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
    assert job.matrix["stack"] == ["dev", "prod"]
    assert job.condition is None and not job.needs
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
    from pathlib import Path

    import yaml

    preview = _policy_pack_steps(pr.jobs["preview"], "preview")
    assert preview.inputs["policyPacks"] == "policy"
    for job_id in ("deploy-dev", "deploy-prod"):
        up = _policy_pack_steps(main.jobs[job_id], "up")
        assert up.inputs["policyPacks"] == "policy", job_id
    root = Path(__file__).resolve().parents[2]
    pack = yaml.safe_load((root / "policy" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    assert "pulumi-policy==" in (root / "requirements-dev.txt").read_text()


def test_pr_preview_per_stack_with_comment_and_summary(pr: Workflow) -> None:
    job = pr.jobs["preview"]
    # dev only: a pull request's subject reaches no identity that reads prod (export/access/ proves it).
    assert job.matrix["stack"] == ["dev"]
    assert job.strategy["fail-fast"] is False
    (preview,) = pulumi_steps(job, "preview")
    w = preview.inputs
    assert w["stack-name"] == "${{ matrix.stack }}"
    assert w["comment-on-pr"] is True
    assert w["comment-on-summary"] is True
    assert w.get("edit-pr-comment", True) is True  # one comment per stack, edited in place
    assert w["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_pr_preview_skips_forks_with_a_notice(pr: Workflow) -> None:
    job = pr.jobs["preview"]
    first = job.steps[0]
    assert first.id == "oidc"
    assert first.env["HEAD_REPO"] == "${{ github.event.pull_request.head.repo.full_name }}"
    assert first.env["BASE_REPO"] == "${{ github.repository }}"
    assert '"$HEAD_REPO" != "$BASE_REPO"' in first.run
    assert "::notice" in first.run
    assert "exit 1" not in first.run
    # Every later step (checkout, login, preview, ...) is skipped when there is no token.
    for step in job.steps[1:]:
        assert step.condition == "steps.oidc.outputs.available == 'true'", step.name


def test_pr_preview_authenticates_with_oidc_as_the_read_only_identity(pr: Workflow) -> None:
    job = pr.jobs["preview"]
    assert PREVIEW_OIDC_ENV.items() <= job.env.items()
    login = job.steps[index_of(job, "azure/login")]
    assert login.inputs == PREVIEW_LOGIN_WITH
    assert index_of(job, "azure/login") < index_of(job, "pulumi/actions")
    assert index_of(job, "azure/use-kubelogin") < len(job.steps) - 1


def test_only_release_jobs_use_the_deploy_identity(workflows: dict[str, Workflow]) -> None:
    for name, wf in workflows.items():
        uses_deployer = "vars.AZURE_CLIENT_ID" in wf.text
        assert uses_deployer == (name == "main.yml"), name


def test_pr_bicep_build_and_lint(pr: Workflow) -> None:
    job = pr.jobs["bicep"]
    scripts = "\n".join((s.run or "") for s in job.steps)
    assert "az bicep build --file infra/bicep/main.bicep" in scripts
    assert "az bicep lint --file infra/bicep/main.bicep" in scripts
    assert job.permissions == {"contents": "read"}


# --- build and push -----------------------------------------------------------------------------------------


def test_build_tags_full_sha_and_latest_and_pushes_both(main: Workflow) -> None:
    job = main.jobs["build"]
    build = step_named(job, "Build the image once").run
    assert "scripts/build-image.sh" in build  # the same recipe as `make image`, root Dockerfile
    assert 'docker tag "$image:$GITHUB_SHA" "$image:latest"' in build
    push = step_named(job, "Push").run
    assert 'docker push "$image:$GITHUB_SHA"' in push
    assert 'docker push "$image:latest"' in push
    assert "$GITHUB_SHA" in push and "${GITHUB_SHA:0" not in push  # the full SHA, not a short one
    assert main.env["IMAGE_REPOSITORY"] == "muse"


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


def test_registry_name_comes_from_the_stack_outputs(main: Workflow) -> None:
    job = main.jobs["build"]
    registry = step_named(job, "Read the dev registry")
    assert "pulumi stack output registryName --stack dev" in registry.run
    assert "pulumi stack output registryLoginServer --stack dev" in registry.run
    login = step_named(job, "Log in to ACR")
    assert login.run == 'az acr login --name "$REGISTRY_NAME"'
    assert "--username" not in main.text and "admin" not in login.run.replace("admin user", "")


def test_build_runs_only_on_main(main: Workflow) -> None:
    assert main.jobs["build"].condition == "github.ref == 'refs/heads/main'"


# --- deploys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["deploy-dev", "deploy-prod"])
def test_deploy_sets_image_tag_to_the_built_digest(main: Workflow, job_id: str) -> None:
    job = main.jobs[job_id]
    assert job.env["IMAGE_DIGEST"] == DIGEST
    assert "build" in job.needs
    scripts = "\n".join(s for _, s in job.run_scripts())
    assert 'pulumi config set --stack "$STACK" muse:imageTag "$IMAGE_DIGEST"' in scripts
    # Deploy jobs never build: the image comes from the build job only.
    assert "docker build" not in scripts and "build-image.sh" not in scripts
    (up,) = pulumi_steps(job, "up")
    assert up.inputs["stack-name"] == job.env["STACK"]
    assert up.inputs["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    config_set = next(i for i, s in enumerate(job.steps) if "muse:imageTag" in (s.run or ""))
    assert config_set < job.steps.index(up)


def test_same_digest_flows_from_dev_to_prod(main: Workflow) -> None:
    dev, prod = main.jobs["deploy-dev"], main.jobs["deploy-prod"]
    assert dev.env["STACK"] == "dev" and prod.env["STACK"] == "prod"
    assert dev.env["IMAGE_DIGEST"] == prod.env["IMAGE_DIGEST"] == DIGEST
    copy = step_named(prod, "Copy the same digest").run
    # The source registry by resource id: no registry listing, no anonymous fallback (azure-cli import.py).
    assert '--registry "$SOURCE_REGISTRY_ID"' in copy
    assert '--source "$IMAGE_REPOSITORY@$IMAGE_DIGEST"' in copy
    assert '[[ "$imported" != "$IMAGE_DIGEST" ]]' in copy
    assert prod.env["SOURCE_REGISTRY_ID"] == "${{ needs.build.outputs.registry_id }}"
    assert main.jobs["build"].outputs["registry_id"] == "${{ steps.registry.outputs.id }}"


def test_prod_is_gated_by_the_prod_environment_after_dev(main: Workflow) -> None:
    prod = main.jobs["deploy-prod"]
    assert prod.environment == "prod"
    assert set(prod.needs) == {"build", "deploy-dev"}
    # Each job's environment is its OIDC subject: environment:dev reaches the dev deployer only, and the build
    # (ref:refs/heads/main) reaches the build identity only.
    assert main.jobs["deploy-dev"].environment == "dev"
    assert main.jobs["build"].environment is None


@pytest.mark.parametrize("job_id", ["build", "deploy-dev", "deploy-prod"])
def test_release_jobs_use_oidc(main: Workflow, job_id: str) -> None:
    job = main.jobs[job_id]
    assert job.permissions == {"contents": "read", "id-token": "write"}
    login = job.steps[index_of(job, "azure/login")]
    assert login.inputs == (BUILD_LOGIN_WITH if job_id == "build" else AZURE_LOGIN_WITH)
    if job_id != "build":
        assert OIDC_ENV.items() <= job.env.items()
        # kubelogin (AKS local accounts disabled) and login come before any pulumi command
        assert index_of(job, "azure/use-kubelogin") < job.steps.index(pulumi_steps(job, "up")[0])
        assert index_of(job, "azure/login") < job.steps.index(pulumi_steps(job, "up")[0])


@pytest.mark.parametrize("job_id", ["deploy-dev", "deploy-prod"])
def test_deploy_verifies_rollout_and_smoke_checks_healthz(main: Workflow, job_id: str) -> None:
    job = main.jobs[job_id]
    (up,) = pulumi_steps(job, "up")
    after = job.steps[job.steps.index(up) + 1 :]
    runs = [(s.run or "") for s in after]
    assert 'scripts/ci/verify-rollout.sh "$STACK"' in runs
    smoke = step_named(job, "Smoke check")
    assert smoke.env["MUSE_URL"] == "${{ steps.up.outputs.museUrl }}"
    assert smoke.run == 'scripts/ci/smoke-check.sh "$MUSE_URL"'
    assert up.id == "up"
    assert not any(s.raw.get("continue-on-error") for s in job.steps)


def test_smoke_check_uses_curl_fail_retry_on_healthz() -> None:
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "scripts" / "ci" / "smoke-check.sh").read_text()
    assert "curl --fail" in script and "--retry" in script
    assert '/healthz"' in script


def test_deploy_concurrency_per_stack_never_cancels(main: Workflow) -> None:
    groups = {}
    for job_id in ("deploy-dev", "deploy-prod"):
        concurrency = main.jobs[job_id].concurrency
        assert concurrency["cancel-in-progress"] is False
        groups[job_id] = concurrency["group"]
    assert groups == {"deploy-dev": "pulumi-deploy-dev", "deploy-prod": "pulumi-deploy-prod"}
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


def test_drift_previews_with_refresh_and_expects_no_changes(drift: Workflow) -> None:
    (job,) = drift.jobs.values()
    assert job.matrix["stack"] == ["dev", "prod"]
    assert job.strategy["fail-fast"] is False
    assert job.pulumi_commands == ["preview"]  # never up/refresh: drift detection writes no state
    (preview,) = pulumi_steps(job, "preview")
    w = preview.inputs
    assert w["refresh"] is True and w["expect-no-changes"] is True
    assert w["comment-on-summary"] is True
    assert w["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert PREVIEW_OIDC_ENV.items() <= job.env.items()
    explain = step_named(job, "Explain the drift")
    assert explain.condition == "failure() && steps.preview.outcome == 'failure'"
    assert "$GITHUB_STEP_SUMMARY" in explain.run
    assert "pulumi refresh" not in "\n".join(s for _, s in job.run_scripts())


# --- hygiene on every workflow ------------------------------------------------------------------------------


def test_every_workflow_passes_the_policy(policy: Any, workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert policy.check(wf) == [], wf.name


def test_permissions_per_job(workflows: dict[str, Workflow]) -> None:
    expected = {
        ("pull-request.yml", "checks"): {"contents": "read"},
        ("pull-request.yml", "offline-plan"): {"contents": "read"},
        ("pull-request.yml", "plan-diff"): {"contents": "read"},
        ("pull-request.yml", "preview"): {"contents": "read", "id-token": "write", "pull-requests": "write"},
        ("pull-request.yml", "bicep"): {"contents": "read"},
        ("main.yml", "build"): {"contents": "read", "id-token": "write"},
        ("main.yml", "deploy-dev"): {"contents": "read", "id-token": "write"},
        ("main.yml", "deploy-prod"): {"contents": "read", "id-token": "write"},
        ("drift.yml", "drift"): {"contents": "read", "id-token": "write"},
    }
    actual = {
        (name, job_id): job.permissions for name, wf in workflows.items() for job_id, job in wf.jobs.items()
    }
    assert actual == expected
    for wf in workflows.values():
        assert wf.permissions == {}


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
    for wf in workflows.values():
        for job_id, job in wf.jobs.items():
            assert 0 < job.timeout_minutes <= 60, (wf.name, job_id)


def test_every_pulumi_command_uses_the_blob_backend_and_the_pinned_cli(
    workflows: dict[str, Workflow],
) -> None:
    for wf in workflows.values():
        assert wf.env["PULUMI_VERSION"] == "3.272.0"
        for job in wf.jobs.values():
            for step in pulumi_steps(job):
                assert step.inputs["pulumi-version"] == "${{ env.PULUMI_VERSION }}"
                if "command" in step.inputs:
                    assert step.inputs["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
            if pulumi_steps(job):
                assert job.env["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
                assert index_of(job, "azure/login") < index_of(job, "pulumi/actions")


def test_pulumi_sdk_pin_matches_the_cli_pin(workflows: dict[str, Workflow]) -> None:
    from pathlib import Path

    requirements = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()
    sdk = re.search(r"^pulumi==(\S+)", requirements, re.MULTILINE)
    assert sdk is not None
    for wf in workflows.values():
        assert wf.env["PULUMI_VERSION"] == sdk.group(1)


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
            }


def test_shell_is_bash_everywhere(workflows: dict[str, Workflow]) -> None:
    for wf in workflows.values():
        assert wf.defaults == {"run": {"shell": "bash"}}
