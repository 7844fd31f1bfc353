"""main.yml follows the one list of environments (stack/environments.txt) and each stack's tier.

It calls the reusable .github/workflows/deploy.yml once per environment, in the list's order, each call after
the one before it and importing the digest from its registry (that call's outputs); a production-tier stack's
call asks for approval (preview in `preview-<env>`, the `<env>` GitHub environment's reviewers approve its
change set, the approval guard, the change-set check). Adding a production-like `staging` is its stack file,
its line in the list and one call: the last test here adds exactly that and finds prod's gates on it.

GitHub's rules the model applies (verify.workflows.expand_calls): docs.github.com "Reusable workflows
reference" (a called job's token can only be narrowed from the call's; the caller's `env` does not reach
the called workflow) and "Using OpenID Connect with reusable workflows" (a called job's `sub` is the caller
repository's, `environment:<name>` when the job names one; the called file is in `job_workflow_ref`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.environments import ENVIRONMENTS, image_source, requires_approval
from stack.files import REPO_ROOT
from tests.workflows.expansion import expanded_main, main_text
from verify.access.model import subject_of
from verify.workflows import WORKFLOWS, load

CALLED = "./.github/workflows/deploy.yml"
RELEASE_COMMIT = "${{ inputs.commit || github.sha }}"
DIGEST = "${{ needs.build.outputs.digest }}"
STAGING = ("dev", "staging", "prod")


def _calls(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job_id: job for job_id, job in raw["jobs"].items() if job.get("uses") == CALLED}


def call_problems(
    raw: dict[str, Any],
    environments: tuple[str, ...] = ENVIRONMENTS,
    approval: Callable[[str], bool] = requires_approval,
) -> list[str]:
    """Every way main.yml's deploy calls differ from the environment list and the stacks' tiers."""
    calls = _calls(raw)
    problems = []
    by_environment = {job["with"]["environment"]: job_id for job_id, job in calls.items()}
    if list(by_environment) != list(environments):
        problems.append(f"calls deploy {list(by_environment)}, the list is {list(environments)}")
    if raw["env"]["RELEASE_COMMIT"] != RELEASE_COMMIT:
        problems.append("main.yml's RELEASE_COMMIT is not the one each call passes")
    for environment in environments:
        job_id = by_environment.get(environment)
        if job_id is None:
            continue
        job, inputs = calls[job_id], calls[job_id]["with"]
        if inputs.get("commit") != RELEASE_COMMIT or inputs.get("image-digest") != DIGEST:
            problems.append(f"{job_id}: does not release the run's commit and the built digest")
        wants_approval = approval(environment)
        if bool(inputs.get("approval")) != wants_approval:
            problems.append(
                f"{job_id}: approval {inputs.get('approval')!r}, the stack's tier says {wants_approval}"
            )
        before = image_source(environment, environments)
        # Exactly what the called jobs need: a called job can only narrow the call's grant.
        grant = {"contents": "read", "id-token": "write"}
        grant |= {"actions": "read"} if wants_approval else {}  # approval_guard.py reads the review history
        grant |= {"attestations": "read"} if before else {}  # verify-provenance.sh before the import
        if job.get("permissions") != grant:
            problems.append(f"{job_id}: grants {job.get('permissions')}, its jobs need {grant}")
        if before is None:
            if inputs.get("import-from") or job.get("needs") != ["build"]:
                problems.append(f"{job_id}: the first environment deploys what the build pushed, after it")
            continue
        previous = by_environment.get(before)
        if job.get("needs") != ["build", previous]:
            problems.append(f"{job_id}: needs {job.get('needs')}, not the build and {previous}")
        expected = {
            "import-from": before,
            "source-registry-id": f"${{{{ needs.{previous}.outputs.registry-id }}}}",
            "source-login-server": f"${{{{ needs.{previous}.outputs.registry-login-server }}}}",
        }
        for name, value in expected.items():
            if inputs.get(name) != value:
                problems.append(f"{job_id}: {name} is {inputs.get(name)!r}, not {value!r}")
    return problems


def _main_raw(text: str | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(main_text() if text is None else text)
    return raw


def test_main_calls_the_reusable_deploy_once_per_environment_in_order() -> None:
    assert call_problems(_main_raw()) == []
    assert [j for j in load(WORKFLOWS / "main.yml").jobs if j != "build"] == [
        f"deploy-{e}" for e in ENVIRONMENTS
    ]


def test_negative_control_a_staging_in_the_list_without_its_call_is_found() -> None:
    tiers = {"dev": False, "staging": True, "prod": True}
    problems = call_problems(_main_raw(), STAGING, tiers.__getitem__)
    assert problems[0] == "calls deploy ['dev', 'prod'], the list is ['dev', 'staging', 'prod']"
    # prod would still import from dev, skipping the environment before it.
    assert "deploy-prod: import-from is 'dev', not 'staging'" in problems


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda c: c["deploy-prod"]["with"].update(approval=False),
            "deploy-prod: approval False, the stack's tier says True",
        ),
        (
            lambda c: c["deploy-prod"]["permissions"].pop("actions"),
            "deploy-prod: grants {'contents': 'read', 'id-token': 'write', 'attestations': 'read'}",
        ),
        (
            lambda c: c["deploy-prod"]["with"].update(
                {"source-registry-id": "${{ needs.build.outputs.id }}"}
            ),
            "deploy-prod: source-registry-id is '${{ needs.build.outputs.id }}'",
        ),
        (
            lambda c: c["deploy-dev"]["permissions"].update(actions="read"),
            "deploy-dev: grants",
        ),
    ],
    ids=["prod-without-approval", "guard-without-actions-read", "import-from-elsewhere", "dev-over-granted"],
)
def test_negative_control_a_call_that_strays_from_its_tier_or_order_is_found(
    edit: Callable[[dict[str, Any]], None], problem: str
) -> None:
    raw = _main_raw()
    edit(_calls(raw))
    assert any(p.startswith(problem) for p in call_problems(raw)), call_problems(raw)


def test_a_call_granting_less_than_its_jobs_ask_is_refused_as_github_refuses_it() -> None:
    """The preview job narrows its call's grant to contents/id-token; a call without id-token: write would
    make GitHub refuse the whole run ("The nested job 'preview' is requesting 'id-token: write', but is only
    allowed 'none'"): the model refuses it too."""
    text = main_text()
    start = text.index("  deploy-prod:")
    narrowed = text[:start] + text[start:].replace(
        "      id-token: write # azure/login and azure-native (ARM_USE_OIDC), as prod's own identities\n",
        "",
        1,
    )
    assert narrowed != text
    with pytest.raises(ValueError, match=r"deploy.yml job preview requests more than the call grants"):
        expanded_main(main=narrowed)


def test_each_called_job_presents_the_subject_of_its_environment() -> None:
    """The bootstrap trusts `environment:<env>` for each deployer and `environment:preview-<env>` for each
    read-only identity (bootstrap/__main__.py); a job of a called workflow presents exactly those."""
    main = expanded_main()
    for environment in ENVIRONMENTS:
        deploy = main.jobs[f"deploy-{environment}.deploy"]
        assert subject_of(main, deploy, deploy.environment) == f"environment:{environment}"
        preview = main.jobs.get(f"deploy-{environment}.preview")
        assert (preview is not None) == requires_approval(environment)
        if preview is not None:
            assert subject_of(main, preview, preview.environment) == f"environment:preview-{environment}"


# --- a production-like staging: its stack file, its line in the list, one call -----------------------------

STAGING_CALL = """\
  deploy-staging:
    name: staging
    needs: [build, deploy-dev]
    uses: ./.github/workflows/deploy.yml
    permissions:
      contents: read
      actions: read
      id-token: write
      attestations: read
    with:
      environment: staging
      commit: ${{ inputs.commit || github.sha }}
      image-digest: ${{ needs.build.outputs.digest }}
      import-from: dev
      source-registry-id: ${{ needs.deploy-dev.outputs.registry-id }}
      source-login-server: ${{ needs.deploy-dev.outputs.registry-login-server }}
      approval: ${tier_approval}

"""


def _with_staging_call(approval: bool) -> str:
    """main.yml plus the one call for staging, prod now after it and importing from it."""
    text = main_text()
    call = STAGING_CALL.replace("${tier_approval}", "true" if approval else "false")
    if not approval:  # a development-tier call asks for no approval guard
        call = call.replace("      actions: read\n", "")
    text = text.replace("  deploy-prod:\n", call + "  deploy-prod:\n", 1)
    prod = text.index("  deploy-prod:\n")
    tail = (
        text[prod:]
        .replace("needs: [build, deploy-dev]", "needs: [build, deploy-staging]")
        .replace("import-from: dev", "import-from: staging")
        .replace("needs.deploy-dev.outputs", "needs.deploy-staging.outputs")
    )
    return text[:prod] + tail


def _staging_root(tmp_path: Path, tier: str) -> Path:
    """A checkout whose Pulumi.staging.yaml is prod's stack file, renamed, with `tier`."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    data = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    data["config"] = {**data["config"], "muse:environment": "staging", "muse:tier": tier}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


def _github_environment_body(name: str, approval: bool) -> dict[str, Any]:
    """What scripts/bootstrap.sh PUTs for the GitHub environment `name` (scripts/github_environment.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "github_environment", REPO_ROOT / "scripts/github_environment.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body: dict[str, Any] = module.put_body({}, name, approval=approval)
    return body


def staging_gates(tmp_path: Path, tier: str) -> dict[str, Any]:
    """What a staging declared with `tier` gets: the approval the workflow and GitHub environment give it."""
    root = _staging_root(tmp_path, tier)
    approval = requires_approval("staging", STAGING, root)
    text = _with_staging_call(approval)
    main = expanded_main(main=text)
    deploy, preview = main.jobs["deploy-staging.deploy"], main.jobs.get("deploy-staging.preview")
    steps = " ".join(s.run or "" for s in deploy.steps)
    return {
        "call_problems": call_problems(
            _main_raw(text), STAGING, lambda e: requires_approval(e, STAGING, root)
        ),
        "environment": deploy.environment,
        "subject": subject_of(main, deploy, deploy.environment),
        "preview environment": preview.environment if preview else None,
        "waits for its preview": "deploy-staging.preview" in deploy.needs,
        "approval guard": '.ci-tools/scripts/ci/approval_guard.py --environment "$STACK"' in steps,
        "change-set check": "--expect-change-set" in steps,
        "imports from": deploy.env.get("SOURCE_ENVIRONMENT"),
        "provenance before import": 0
        <= steps.find("verify-provenance.sh")
        < steps.find("az acr import --name"),
        "prod imports from": main.jobs["deploy-prod.deploy"].env["SOURCE_REGISTRY_ID"],
        "no admin bypass": _github_environment_body("staging", approval).get("can_admins_bypass") is False,
        "stack": deploy.env["STACK"],
    }


def test_a_production_tier_staging_gets_prods_approval(tmp_path: Path) -> None:
    """A staging made from prod's stack file (tier production; its plan has prod's purge protection, zonal
    pools and HTTPS: tests/program/test_environments.py) and one call: previewed in preview-staging,
    approved in the staging GitHub environment (required reviewers, no administrator bypass), guarded against
    re-runs, the change set checked, the digest imported from dev after its provenance check; prod now
    imports from staging."""
    gates = staging_gates(tmp_path, "production")
    assert gates == {
        "call_problems": [],
        "environment": "staging",
        "subject": "environment:staging",  # the bootstrap's deploy-staging credential (environment:<env>)
        "preview environment": "preview-staging",
        "waits for its preview": True,
        "approval guard": True,
        "change-set check": True,
        "imports from": "dev",
        "provenance before import": True,
        "prod imports from": "${{ needs.deploy-staging.outputs.registry-id }}",
        "no admin bypass": True,
        "stack": "staging",
    }


def test_negative_control_a_development_tier_staging_gets_none_of_it(tmp_path: Path) -> None:
    """The same staging declared with dev's tier: no preview to approve, no guard, no change-set check, and
    administrators may bypass its environment; it still imports from dev (its place in the list)."""
    gates = staging_gates(tmp_path, "development")
    assert gates["call_problems"] == []
    assert gates["preview environment"] is None
    assert (
        not gates["waits for its preview"] and not gates["approval guard"] and not gates["change-set check"]
    )
    assert not gates["no admin bypass"]
    assert gates["imports from"] == "dev" and gates["environment"] == "staging"
    # And a production-tier staging whose call forgot approval is caught against its tier.
    root = _staging_root(tmp_path, "production")
    problems = call_problems(
        _main_raw(_with_staging_call(False)), STAGING, lambda e: requires_approval(e, STAGING, root)
    )
    assert any(p.startswith("deploy-staging: approval False, the stack's tier says True") for p in problems)
