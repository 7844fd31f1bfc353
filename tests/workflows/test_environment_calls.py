"""The workflows follow the one list of environments (stack/environments.txt) and each stack's tier.

main.yml calls the reusable .github/workflows/deploy.yml once per environment, in the list's order, each call
after the one before it and importing from its registry; a production-tier stack's call asks for approval
(preview in `preview-<env>`, the `<env>` GitHub environment's reviewers approve its change set). The preview
and drift matrices list exactly the environments."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from export.workflows import WORKFLOWS, load
from stack.environments import ENVIRONMENTS
from stack.files import read_stack


def _main_raw() -> dict[str, Any]:
    raw: dict[str, Any] = load(WORKFLOWS / "main.yml").raw
    return raw


def _calls(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        job_id: job
        for job_id, job in raw["jobs"].items()
        if job.get("uses") == "./.github/workflows/deploy.yml"
    }


def _tier(environment: str) -> str:
    return str(read_stack(environment).config["muse:tier"])


def call_problems(raw: dict[str, Any], environments: tuple[str, ...], tier: Any = _tier) -> list[str]:
    """Every way main.yml's deploy calls differ from the environment list and the stacks' tiers."""
    calls = _calls(raw)
    problems = []
    by_environment = {job["with"]["environment"]: job_id for job_id, job in calls.items()}
    if list(by_environment) != list(environments):
        problems.append(f"calls deploy {list(by_environment)}, the list is {list(environments)}")
    for position, environment in enumerate(environments):
        job_id = by_environment.get(environment)
        if job_id is None:
            continue
        job, inputs = calls[job_id], calls[job_id]["with"]
        if bool(inputs.get("approval")) != (tier(environment) == "production"):
            problems.append(f"{job_id}: approval {inputs.get('approval')!r} for a {tier(environment)} stack")
        before = environments[position - 1] if position else None
        if before is None:
            if inputs.get("import-from"):
                problems.append(
                    f"{job_id}: the first environment deploys what the build pushed, imports nothing"
                )
            continue
        previous = by_environment.get(before)
        if previous not in (job.get("needs") or ()):
            problems.append(f"{job_id}: does not wait for {previous}")
        expected = "${{ needs." + str(previous) + ".outputs.registry-id }}"
        if inputs.get("import-from") != expected:
            problems.append(f"{job_id}: imports from {inputs.get('import-from')!r}, not {expected}")
    return problems


def test_main_calls_the_reusable_deploy_once_per_environment_in_order() -> None:
    assert call_problems(_main_raw(), ENVIRONMENTS) == []


def test_negative_control_a_staging_in_the_list_without_its_call_is_found() -> None:
    staging = ("dev", "staging", "prod")
    tiers = {"dev": "development", "staging": "production", "prod": "production"}
    problems = call_problems(_main_raw(), staging, tier=tiers.__getitem__)
    assert problems and "the list is ['dev', 'staging', 'prod']" in problems[0]


def test_negative_control_a_production_call_without_approval_is_found() -> None:
    raw = yaml.safe_load(yaml.safe_dump(_main_raw()))
    prod = next(job for job in _calls(raw).values() if job["with"]["environment"] == "prod")
    prod["with"]["approval"] = False
    assert any("approval False for a production stack" in p for p in call_problems(raw, ENVIRONMENTS))


@pytest.mark.parametrize("workflow", ["drift.yml", "pull-request.yml"])
def test_every_stack_matrix_is_the_list(workflow: str) -> None:
    # A pull request previews the first environment only (its identity trusts pull_request: bootstrap's
    # PREVIEW_SUBJECTS); every other matrix covers every environment.
    jobs = {i: j for i, j in load(WORKFLOWS / workflow).jobs.items() if "stack" in j.matrix}
    assert jobs, workflow
    for job_id, job in jobs.items():
        expected = (
            [ENVIRONMENTS[0]] if (workflow, job_id) == ("pull-request.yml", "preview") else ENVIRONMENTS
        )
        assert list(job.matrix["stack"]) == list(expected), (workflow, job_id)
