"""The image base's lifecycle check (stack/runtime_support.py): the Dockerfile's base, its recorded end of
security support, and the scheduled job's verdict 60 days ahead; the local base follows the same release."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from cli import runtime_support as runtime_support_cli
from stack import runtime_support
from stack.files import REPO_ROOT
from stack.kubernetes_support import WARNING_DAYS, Support

DOCKERFILE_TEXT = (REPO_ROOT / "Dockerfile").read_text()
DATA = json.loads(runtime_support.DATA_PATH.read_text())
TODAY = date(2026, 12, 7)


def _write(tmp_path: Path, dockerfile: str, data: dict[str, object]) -> tuple[Path, Path]:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "data.json").write_text(json.dumps(data))
    return tmp_path / "Dockerfile", tmp_path / "data.json"


def test_the_base_is_digest_pinned_on_the_first_from_for_dependabot() -> None:
    base = runtime_support.read_base(DOCKERFILE_TEXT)
    assert base.image.startswith("docker.io/library/python:")
    # Every other stage derives from `base`, so `podman build --from` (first FROM only) swaps the whole base.
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE_TEXT, re.MULTILINE)
    assert froms[0] == base.image and set(froms[1:]) == {"base"}, froms


def test_the_recorded_base_is_supported_well_past_2027() -> None:
    base = runtime_support.read_base(DOCKERFILE_TEXT)
    for component in runtime_support.components(base, DATA):
        assert component.last_day is not None and component.last_day > date(2027, 12, 31), component
        assert component.sources and all(s.startswith("https://") for s in component.sources), component
        assert runtime_support.check(component, TODAY).status is Support.SUPPORTED


def test_the_local_debootstrap_base_follows_the_dockerfile_release() -> None:
    script = (REPO_ROOT / "scripts" / "build-base-image.sh").read_text()
    suite = re.search(r"^suite=(\S+)$", script, re.MULTILINE)
    assert suite and suite.group(1) == runtime_support.read_base(DOCKERFILE_TEXT).codename
    assert "localhost/muse-base:" + suite.group(1) in (REPO_ROOT / "scripts" / "build-image.sh").read_text()


def test_main_passes_on_the_repository_today(capsys: pytest.CaptureFixture[str]) -> None:
    assert runtime_support_cli.main(["--today", TODAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "::error" not in out and "Debian trixie (13) has security support until 2028-08-09" in out


def test_a_past_end_date_turns_it_red(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Negative control: the same Dockerfile with the Debian release's end moved into the past."""
    data = json.loads(json.dumps(DATA))
    codename = runtime_support.read_base(DOCKERFILE_TEXT).codename
    data["debian"][codename]["security_support_ends"] = (TODAY - timedelta(days=1)).isoformat()
    dockerfile, data_path = _write(tmp_path, DOCKERFILE_TEXT, data)
    code = runtime_support_cli.main(
        ["--today", TODAY.isoformat(), "--dockerfile", str(dockerfile), "--data", str(data_path)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert f"::error title=Image base support::Debian {codename}" in out and "left security support on" in out


def test_it_turns_red_sixty_days_ahead_not_sixty_one() -> None:
    last_day = date(2028, 8, 9)
    component = runtime_support.Component(
        "Debian trixie (13)", last_day, ("https://wiki.debian.org/DebianReleases",)
    )
    assert (
        runtime_support.check(component, last_day - timedelta(days=WARNING_DAYS + 1)).status
        is Support.SUPPORTED
    )
    ending = runtime_support.check(component, last_day - timedelta(days=WARNING_DAYS))
    assert ending.status is Support.ENDING and "in 60 day(s)" in ending.message
    assert runtime_support.check(component, last_day).status is Support.ENDING
    assert runtime_support.check(component, last_day + timedelta(days=1)).status is Support.UNSUPPORTED


def test_a_base_the_data_does_not_know_is_red(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Dependabot (or a person) moves the tag to a new minor: the end of support must be recorded first."""
    moved = re.sub(
        r"^(FROM \S*python:)3\.\d+-slim-", r"\g<1>3.99-slim-", DOCKERFILE_TEXT, count=1, flags=re.MULTILINE
    )
    assert moved != DOCKERFILE_TEXT
    dockerfile, data_path = _write(tmp_path, moved, DATA)
    assert (
        runtime_support_cli.main(
            ["--today", TODAY.isoformat(), "--dockerfile", str(dockerfile), "--data", str(data_path)]
        )
        == 1
    )
    assert "Python 3.99 is not in stack/runtime_lifecycle.json" in capsys.readouterr().out


@pytest.mark.parametrize(
    "first_from",
    [
        "FROM python:3.13-slim-trixie AS base",  # no digest: Dependabot cannot pin, builds drift
        "ARG BASE_IMAGE=python:3.13-slim-trixie@sha256:"
        + "a" * 64
        + "\nFROM ${BASE_IMAGE} AS base",  # ARG: bot-blind
        "FROM python:3.13-slim-trixie@sha256:" + "a" * 64 + " AS builder",  # the other stages cannot derive
    ],
)
def test_a_base_dependabot_cannot_update_is_refused(first_from: str) -> None:
    with pytest.raises(ValueError, match="first FROM"):
        runtime_support.read_base(first_from + "\nFROM base AS runtime\n")


def test_the_scheduled_workflow_runs_the_check() -> None:
    from verify.workflows import load

    drift = load(REPO_ROOT / ".github" / "workflows" / "drift.yml")
    assert "schedule" in drift.triggers
    job = drift.jobs["image-base-support"]
    assert any(step.run and step.run.strip() == "python -m cli.runtime_support" for step in job.steps)
    assert job.condition is None and job.permissions == {"contents": "read"}
