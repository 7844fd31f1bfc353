"""main.yml as GitHub runs it after an edit of its text or of the reusable deploy.yml it calls: both
written to a scratch folder and read by verify.workflows.expand_calls, as the `workflows` fixture reads the
real ones. For negative controls that break a step that now lives in deploy.yml."""

from __future__ import annotations

import tempfile
from pathlib import Path

from verify.workflows import WORKFLOWS, Workflow, expand_calls, load


def main_text() -> str:
    return (WORKFLOWS / "main.yml").read_text(encoding="utf-8")


def deploy_text() -> str:
    return (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")


def expanded_main(main: str | None = None, deploy: str | None = None) -> Workflow:
    """main.yml (or `main`) with its calls of deploy.yml (or `deploy`) expanded into the jobs they run."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "main.yml").write_text(main_text() if main is None else main, encoding="utf-8")
        (directory / "deploy.yml").write_text(deploy_text() if deploy is None else deploy, encoding="utf-8")
        workflow = expand_calls(load(directory / "main.yml"), directory)
    return Workflow(**{**workflow.__dict__, "path": WORKFLOWS / "main.yml"})
