"""The workflow model reads a call of a local reusable workflow as the jobs GitHub runs for it
(docs.github.com, "Reusing workflows": the called workflow's jobs run with the caller's `with:` as
`inputs`, after the caller's `needs`; a called job's permissions cannot exceed the caller job's)."""

from __future__ import annotations

from pathlib import Path

from verify.workflows import expand_calls, load

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
