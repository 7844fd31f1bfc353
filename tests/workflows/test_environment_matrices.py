"""The workflows' stack matrices follow the one list of environments (stack/environments.txt): each is
written `${{ fromJSON(needs.<setup>.outputs.environments) }}` (docs.github.com, "Using a matrix for your
jobs": a matrix from a previous job's JSON output), and the setup job's step prints the list
(cli/environments.py --github-output). The model (verify.workflows) runs that step on the repository and puts
its output where the jobs read it, so what is checked here is the matrix GitHub expands, not the text.
A hand-written list - even one equal to today's - fails: it would miss the next environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.environments import github_outputs
from stack.environments import ENVIRONMENTS, read_environments
from stack.files import REPO_ROOT
from verify.workflows import (
    ENVIRONMENTS_STEP,
    FROM_JSON_NEEDS,
    NEEDS_OUTPUT,
    WORKFLOWS,
    Workflow,
    load,
    parse,
)

# A pull request previews the first environment only (its identity trusts pull_request: the bootstrap's
# PREVIEW_SUBJECTS); every other stack matrix covers every environment.
FIRST_ONLY = {("pull-request.yml", "preview")}


def matrix_problems(workflow: Workflow, environments: tuple[str, ...]) -> list[str]:
    """Every stack matrix of `workflow` that is not derived from the setup job's output, or that GitHub
    would expand to anything but `environments` (the first one only for FIRST_ONLY)."""
    problems = []
    for job_id, job in workflow.jobs.items():
        if "stack" not in job.matrix:
            continue
        written = (job.written or job.raw).get("strategy", {}).get("matrix", {}).get("stack")
        texts = [written] if isinstance(written, str) else written if isinstance(written, list) else []
        derived = bool(texts) and all(
            isinstance(t, str) and (FROM_JSON_NEEDS.match(t.strip()) or NEEDS_OUTPUT.fullmatch(t.strip()))
            for t in texts
        )
        if not derived:
            problems.append(f"{workflow.file_name} {job_id}: stack matrix {written!r} is written by hand")
        expected = [environments[0]] if (workflow.file_name, job_id) in FIRST_ONLY else list(environments)
        if job.matrix["stack"] != expected:
            problems.append(
                f"{workflow.file_name} {job_id}: runs {job.matrix['stack']}, the list is {expected}"
            )
    return problems


@pytest.mark.parametrize("workflow", ["drift.yml", "pull-request.yml"])
def test_every_stack_matrix_is_the_list(workflow: str) -> None:
    loaded = load(WORKFLOWS / workflow)
    assert [j for j in loaded.jobs.values() if "stack" in j.matrix], workflow
    assert matrix_problems(loaded, ENVIRONMENTS) == []


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (f"[{', '.join(ENVIRONMENTS)}]", "is written by hand"),  # equal to today's list, still refused
        (f"[{ENVIRONMENTS[0]}]", "is written by hand"),  # lacks an environment
    ],
    ids=["todays-list-by-hand", "lacks-an-environment"],
)
def test_negative_control_a_hand_written_matrix_is_found(written: str, problem: str) -> None:
    text = (WORKFLOWS / "drift.yml").read_text()
    derived = "stack: ${{ fromJSON(needs.environments.outputs.environments) }}"
    assert derived in text
    edited = parse(text.replace(derived, f"stack: {written}"), WORKFLOWS / "drift.yml")
    problems = matrix_problems(edited, ENVIRONMENTS)
    assert any(problem in p for p in problems), problems
    # ...and with one more environment in the list, the hand-written matrix misses it.
    longer = (*ENVIRONMENTS[:-1], "qa", ENVIRONMENTS[-1])
    assert any("the list is" in p for p in matrix_problems(edited, longer))


def test_negative_control_a_matrix_from_an_output_the_job_does_not_need_is_unresolved() -> None:
    """GitHub's needs context holds a job's direct needs only: without `needs: [environments]` the matrix
    reads nothing and the model leaves it unexpanded."""
    text = (WORKFLOWS / "drift.yml").read_text()
    edited = parse(text.replace("    needs: [environments]\n", "", 1), WORKFLOWS / "drift.yml")
    assert any("runs" in p for p in matrix_problems(edited, ENVIRONMENTS))


def test_the_setup_step_writes_the_list_to_github_output(tmp_path: Path) -> None:
    """The step as the runner runs it (bash, the checkout as working directory, $GITHUB_OUTPUT a file):
    one `name=value` line per output, the list as JSON that fromJSON reads."""
    for workflow in ("drift.yml", "pull-request.yml", "main.yml"):
        setup = load(WORKFLOWS / workflow).jobs["environments"]
        assert setup.permissions == {"contents": "read"}, workflow
        assert [s.run for s in setup.steps if s.id == "list"] == [ENVIRONMENTS_STEP], workflow
    output = tmp_path / "output"
    subprocess.run(
        ["bash", "-eo", "pipefail", "-c", ENVIRONMENTS_STEP],
        cwd=REPO_ROOT,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
        check=True,
    )
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert json.loads(lines["environments"]) == list(read_environments())
    assert lines == github_outputs()
    assert lines["first"] == ENVIRONMENTS[0]


def test_the_setup_step_needs_only_the_standard_library() -> None:
    """The setup jobs run before any venv (`python3` of the runner image, which need not ship PyYAML):
    `-S` leaves site-packages out, so an import of anything but the standard library fails here."""
    run = subprocess.run(
        [sys.executable, "-S", "-m", "cli.environments", "--github-output"],
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (
        run.stdout.splitlines()[0] == f"environments={json.dumps(list(ENVIRONMENTS), separators=(',', ':'))}"
    )


def test_negative_control_without_site_packages_a_third_party_import_fails() -> None:
    run = subprocess.run([sys.executable, "-S", "-c", "import yaml"], capture_output=True, text=True)
    assert run.returncode != 0 and "yaml" in run.stderr
