"""The workflow model reads a call of a local reusable workflow as the jobs GitHub runs for it
(docs.github.com, "Reusing workflows": the called workflow's jobs run with the caller's `with:` as
`inputs`, after the caller's `needs`; a called job's permissions cannot exceed the caller job's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from verify.workflows import WORKFLOWS, expand_calls, fold_condition, load, parse

CALLER = """\
name: main
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-24.04
    steps: [{run: echo build}]
  deploy-prod:
    needs: [build]
    uses: ./.github/workflows/deploy.yml
    permissions: {contents: read, id-token: write}
    with:
      environment: prod
      approval: true
"""
CALLED = """\
name: deploy
on:
  workflow_call:
    inputs:
      environment: {type: string, required: true}
      approval: {type: boolean, default: false}
      note: {type: string, default: from the default}
env:
  SHARED: one
jobs:
  preview:
    if: ${{ inputs.approval }}
    environment: preview-${{ inputs.environment }}
    runs-on: ubuntu-24.04
    env: {STACK: "${{ inputs.environment }}"}
    steps: [{run: "scripts/ci/preview.py --stack \\"$STACK\\""}]
  deploy:
    needs: [preview]
    environment: {name: "${{ inputs.environment }}"}
    runs-on: ubuntu-24.04
    env: {STACK: "${{ inputs.environment }}", NOTE: "${{ inputs.note }}"}
    steps: [{run: "scripts/ci/deploy.py --stack \\"$STACK\\""}]
"""


def _workflows(tmp_path: Path) -> Path:
    (tmp_path / "main.yml").write_text(CALLER)
    (tmp_path / "deploy.yml").write_text(CALLED)
    return tmp_path


def test_a_call_becomes_the_called_jobs_with_the_callers_inputs(tmp_path: Path) -> None:
    directory = _workflows(tmp_path)
    main = expand_calls(load(directory / "main.yml"), directory)
    assert list(main.jobs) == ["build", "deploy-prod.preview", "deploy-prod.deploy"]
    preview, deploy = main.jobs["deploy-prod.preview"], main.jobs["deploy-prod.deploy"]
    assert preview.environment == "preview-prod" and deploy.environment == "prod"
    assert preview.condition is None  # the caller's `true` makes the `if:` always true
    assert preview.needs == ("build",) and deploy.needs == ("build", "deploy-prod.preview")
    assert deploy.env == {"SHARED": "one", "STACK": "prod", "NOTE": "from the default"}
    assert deploy.permissions == {"contents": "read", "id-token": "write"}  # the caller's ceiling
    assert deploy.pulumi_commands == ["up"] and preview.pulumi_commands == ["preview"]


def test_negative_control_unexpanded_the_call_deploys_nothing(tmp_path: Path) -> None:
    directory = _workflows(tmp_path)
    main = load(directory / "main.yml")
    assert list(main.jobs) == ["build", "deploy-prod"]
    assert main.jobs["deploy-prod"].pulumi_commands == []


def test_jobs_and_steps_the_inputs_switch_off_are_left_out(tmp_path: Path) -> None:
    directory = _workflows(tmp_path)
    (directory / "main.yml").write_text(CALLER.replace("approval: true", "approval: false"))
    main = expand_calls(load(directory / "main.yml"), directory)
    # No approval: no preview job, and the deploy needs only the caller's needs.
    assert list(main.jobs) == ["build", "deploy-prod.deploy"]
    assert main.jobs["deploy-prod.deploy"].needs == ("build",)


def test_a_called_job_asking_more_than_the_call_grants_is_refused(tmp_path: Path) -> None:
    """GitHub refuses to start such a run ("Reusable workflows reference": the GITHUB_TOKEN permissions
    passed from the caller can only be downgraded by the called workflow)."""
    directory = _workflows(tmp_path)
    (directory / "deploy.yml").write_text(
        CALLED.replace(
            '    runs-on: ubuntu-24.04\n    env: {STACK: "${{ inputs.environment }}", NOTE',
            (
                "    runs-on: ubuntu-24.04\n    permissions: {contents: read, actions: read}\n"
                '    env: {STACK: "${{ inputs.environment }}", NOTE'
            ),
            1,
        )
    )
    with pytest.raises(
        ValueError,
        match=r"deploy.yml job deploy requests more than the call grants "
        r"\(actions: read \(allowed: none\)\)",
    ):
        expand_calls(load(directory / "main.yml"), directory)
    # Negative control: narrowing is allowed and is what the job gets.
    (directory / "deploy.yml").write_text(
        CALLED.replace(
            '    runs-on: ubuntu-24.04\n    env: {STACK: "${{ inputs.environment }}", NOTE',
            (
                "    runs-on: ubuntu-24.04\n    permissions: {contents: read}\n"
                '    env: {STACK: "${{ inputs.environment }}", NOTE'
            ),
            1,
        )
    )
    main = expand_calls(load(directory / "main.yml"), directory)
    assert main.jobs["deploy-prod.deploy"].permissions == {"contents": "read"}


def test_the_called_workflows_own_permissions_narrow_its_jobs(tmp_path: Path) -> None:
    """A workflow-level block in the called file applies to its jobs without their own (a called workflow
    with `permissions: {}` would leave its deploy job without id-token)."""
    directory = _workflows(tmp_path)
    (directory / "deploy.yml").write_text(
        CALLED.replace("env:\n  SHARED", "permissions: {}\nenv:\n  SHARED", 1)
    )
    main = expand_calls(load(directory / "main.yml"), directory)
    assert main.jobs["deploy-prod.deploy"].permissions == {}


@pytest.mark.parametrize(
    ("condition", "known", "folded"),
    [
        # deploy.yml's deploy job, for a call without approval (its preview job left out) and with one.
        (
            "${{ !cancelled() && (needs.preview.result == 'success' || "
            "(needs.preview.result == 'skipped' && !false)) }}",
            {"needs.preview.result": "skipped"},
            "!cancelled()",
        ),
        (
            "${{ !cancelled() && (needs.preview.result == 'success' || "
            "(needs.preview.result == 'skipped' && !true)) }}",
            {},
            "!cancelled() && needs.preview.result == 'success'",
        ),
        ("${{ 'dev' != '' && steps.a.outputs.enabled == 'true' }}", {}, "steps.a.outputs.enabled == 'true'"),
        ("${{ '' != '' && steps.a.outputs.enabled == 'true' }}", {}, False),
        ("${{ true }}", {}, True),
        ("github.ref == 'refs/heads/main'", {}, "github.ref == 'refs/heads/main'"),
        ("(a || b) && c", {}, "(a || b) && c"),
        ("!(a == 'b')", {}, "!(a == 'b')"),
        (
            "contains(github.event.head_commit.message, 'x')",
            {},
            "contains(github.event.head_commit.message, 'x')",
        ),
    ],
)
def test_conditions_the_inputs_decide_are_folded(
    condition: str, known: dict[str, str], folded: object
) -> None:
    assert fold_condition(condition, known) == folded


def test_the_policy_leaves_a_called_workflows_permissions_to_its_calls(
    policy: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy.yml states no workflow-level permissions (they would narrow every job of every call) and is
    checked as the jobs each caller runs; a call GitHub would refuse is reported, not crashed on."""
    called = parse(CALLED, tmp_path / "deploy.yml")
    assert policy.check_permissions(called) == []
    narrowing = parse(CALLED.replace("env:\n  SHARED", "permissions: {}\nenv:\n  SHARED", 1), called.path)
    assert policy.check_permissions(narrowing) == [
        "deploy.yml: a called workflow leaves permissions to its callers"
    ]
    # The real one, and its callers' expansion (every call grants what its jobs need).
    real = load(WORKFLOWS / "deploy.yml")
    assert policy.check_permissions(real) == []
    assert policy.check(expand_calls(load(WORKFLOWS / "main.yml"), WORKFLOWS)) == []
    # A call granting less than a called job asks for: GitHub refuses the run, the policy says why.
    directory = _workflows(tmp_path)
    (directory / "deploy.yml").write_text(
        CALLED.replace(
            "    if: ${{ inputs.approval }}\n",
            "    if: ${{ inputs.approval }}\n    permissions: {id-token: write}\n",
        )
    )
    (directory / "main.yml").write_text(
        CALLER.replace("{contents: read, id-token: write}", "{contents: read}")
    )
    assert policy.main(["workflow_policy.py", "check", str(directory / "main.yml")]) == 1
    assert "deploy.yml job preview requests more than the call grants (id-token: write (allowed: none))" in (
        capsys.readouterr().err
    )
