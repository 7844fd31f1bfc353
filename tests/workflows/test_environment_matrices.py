"""The workflows' stack matrices are the one list of environments (stack/environments.txt): a new environment
in the list without its matrix entry (or the reverse) fails here."""

from __future__ import annotations

import pytest

from stack.environments import ENVIRONMENTS
from verify.workflows import WORKFLOWS, load


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
