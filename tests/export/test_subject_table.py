"""The OIDC subject table of docs/architecture/ci-cd.md and docs/github-setup.md is generated (verify/access/
subjects.py, registered in export/artifacts.py): from the bootstrap's identities and the subject each workflow
job presents (GitHub's rule, verify/access/model.py subject_of), so it cannot state a subject no job uses."""

from __future__ import annotations

import pytest

from export.artifacts import ARTIFACTS, section
from stack.files import REPO_ROOT
from tests.workflows.expansion import deploy_text, expanded_main
from verify.access.model import assemble, build
from verify.access.subjects import SECTION, render
from verify.workflows import load_all

DOCS = ("docs/architecture/ci-cd.md", "docs/github-setup.md")
PREFIX = ("repo:muse-platform@184467302/muse@1021473690",)


def _rows(table: str) -> dict[tuple[str, str], str]:
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    return {(r[0].strip("| `"), r[1].strip("`")): r[2].rstrip(" |") for r in rows}


def test_the_committed_tables_are_the_generated_ones() -> None:
    for path in DOCS:
        committed = (REPO_ROOT / path).read_text()
        assert ARTIFACTS[path]() == committed, f"{path}: run make export"
        assert f"<!-- BEGIN GENERATED {SECTION}" in committed


def test_each_job_appears_under_the_subject_it_presents() -> None:
    # The deploy jobs run in main.yml's calls of the reusable deploy.yml: a job of a called workflow presents
    # the same `sub` as one written in the caller, `environment:<name>` when it names an environment (the
    # called file is only in the `job_workflow_ref` claim: docs.github.com, "Using OpenID Connect with
    # reusable workflows"), so the bootstrap's credentials (environment:dev, environment:prod) still match.
    rows = _rows(render(build(), PREFIX))
    assert rows[("deploy-dev", "environment:dev")] == "main.yml deploy-dev.deploy"
    assert (
        rows[("preview-prod", "environment:preview-prod")]
        == "drift.yml drift (prod), main.yml deploy-prod.preview"
    )
    assert rows[("deploy-prod", "environment:prod")] == "main.yml deploy-prod.deploy"
    # What the hand-written page used to say: deploy-dev and preview-prod present the branch subject.
    assert "main.yml deploy-dev" not in rows[("build", "ref:refs/heads/main")]
    assert "main.yml deploy-prod" not in rows[("build", "ref:refs/heads/main")]


def test_negative_control_a_workflow_change_changes_the_table() -> None:
    """The called deploy job without its environment presents ref:refs/heads/main: the table says so, and the
    row of each deployer's credential is left without a job."""
    text = deploy_text()
    edited = text.replace("    environment:\n      name: ${{ inputs.environment }}\n", "", 1)
    assert edited != text
    workflows = [
        expanded_main(deploy=edited) if workflow.path.name == "main.yml" else workflow
        for workflow in load_all(REPO_ROOT / ".github" / "workflows")
    ]
    rows = _rows(render(assemble(tuple(workflows)), PREFIX))
    assert rows[("deploy-dev", "environment:dev")].startswith("- (no job")
    assert rows[("deploy-prod", "environment:prod")].startswith("- (no job")
    assert rows != _rows(render(build(), PREFIX))


def test_an_edited_table_is_stale_and_markers_are_required(tmp_path: object) -> None:
    path = "docs/github-setup.md"
    committed = (REPO_ROOT / path).read_text()
    edited = committed.replace("| `deploy-dev` | `environment:dev`", "| `deploy-dev` | `ref:refs/heads/main`")
    assert edited != committed and ARTIFACTS[path]() != edited
    with pytest.raises(ValueError, match="markers"):
        section("README.md", SECTION, lambda: "")()
