"""What a release leaves behind and who reads it, run for real against the stand-ins (release_tools.py):
scripts/ci/deployed_commit.py (which commit the drift check compares a stack with, from the update messages
deploy.py records) in a real git repository, and scripts/ci/tag-latest.sh (`latest` moves after a deploy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "scripts" / "ci"
TOOLS = Path(__file__).with_name("release_tools.py")
DIGEST = "sha256:" + "c" * 64


def _tools(tmp_path: Path, world: dict[str, Any]) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("pulumi", "az"):
        (bin_dir / tool).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TOOLS}" {tool} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    base = {
        "stack": "prod",
        "config": {},
        "history": [],
        "calls": [],
        "images": {},
        "outputs": {},
        "registry": {},
    }
    (tmp_path / "world.json").write_text(json.dumps({**base, **world}))
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RELEASE_WORLD": str(tmp_path / "world.json"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


# --- deployed_commit.py ----------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """A main branch of four commits (oldest first)."""
    directory = tmp_path / "repo"
    directory.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=directory, check=True, env=env)
    commits = []
    for index in range(4):
        subprocess.run(
            ["git", "commit", "-q", "--allow-empty", "-m", f"c{index}"], cwd=directory, check=True, env=env
        )
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, check=True, capture_output=True, text=True
        )
        commits.append(head.stdout.strip())
    return directory, commits


def update(
    message: str, result: str = "succeeded", start: str = "2026-12-01T10:00:00.000Z"
) -> dict[str, Any]:
    return {"version": 0, "kind": "update", "startTime": start, "endTime": start, "message": message,
            "environment": {}, "config": {}, "result": result}  # fmt: skip


def deployed(tmp_path: Path, cwd: Path, history: list[dict[str, Any]]) -> tuple[dict[str, str], str]:
    env = _tools(tmp_path, {"history": history})
    note = tmp_path / "compared.md"
    result = subprocess.run(
        [str(CI / "deployed_commit.py"), "--stack", "prod", "--note", str(note)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines())
    world = json.loads((tmp_path / "world.json").read_text())
    assert any(
        c.startswith("pulumi stack history --stack prod --json --page-size 100") for c in world["calls"]
    )
    return outputs, note.read_text()


def test_compares_with_the_commit_last_deployed_not_with_main(
    tmp_path: Path, repo: tuple[Path, list[str]]
) -> None:
    directory, commits = repo
    # Newest first: main is at c3, whose prod deploy waits for approval; prod last got c1.
    history = [update(f"main {commits[1]}"), update(f"main {commits[0]}", start="2026-11-30T10:00:00.000Z")]
    outputs, note = deployed(tmp_path, directory, history)
    assert outputs == {"commit": commits[1], "source": "deployed"}
    assert f"Compared `prod` with `{commits[1][:12]}`, the commit of its last deploy from main.yml" in note
    assert f"`main` is 2 commit(s) ahead at `{commits[3][:12]}`" in note


def test_a_failed_latest_update_is_skipped_and_named(tmp_path: Path, repo: tuple[Path, list[str]]) -> None:
    directory, commits = repo
    history = [
        update(f"main {commits[2]}", result="failed", start="2026-12-01T11:00:00.000Z"),
        update(f"main {commits[1]}"),
    ]
    outputs, note = deployed(tmp_path, directory, history)
    assert outputs["commit"] == commits[1]
    assert "The stack's latest update (2026-12-01T11:00:00.000Z) failed." in note


def test_a_rollback_counts_as_a_deploy_of_its_commit(tmp_path: Path, repo: tuple[Path, list[str]]) -> None:
    """deploy.py's rollback applies the failed commit's program with the previous image."""
    directory, commits = repo
    history = [
        update(f"main {commits[2]} rollback to {DIGEST}"),
        update(f"main {commits[2]}", result="failed"),
    ]
    outputs, note = deployed(tmp_path, directory, history)
    assert outputs["commit"] == commits[2]
    # The rollback only re-applied the Deployment: the note (which the drift summary and its issue carry)
    # says the commit's other changes may be unapplied, so the diff is not mistaken for a manual change.
    assert "**The last deploy of `prod` was a rollback**" in note and "still unapplied" in note


def test_negative_control_a_plain_release_is_not_called_a_rollback(
    tmp_path: Path, repo: tuple[Path, list[str]]
) -> None:
    directory, commits = repo
    _, note = deployed(tmp_path, directory, [update(f"main {commits[2]}")])
    assert "rollback" not in note


def test_a_persons_update_is_named_and_the_last_main_deploy_compared(
    tmp_path: Path, repo: tuple[Path, list[str]]
) -> None:
    directory, commits = repo
    history = [update("hotfix from laptop"), update(f"main {commits[1]}")]
    outputs, note = deployed(tmp_path, directory, history)
    assert outputs["commit"] == commits[1]
    assert "was not made by main.yml ('hotfix from laptop')" in note


@pytest.mark.parametrize(
    ("history", "why"),
    [
        ([update("main " + "f" * 40)], "is not in main's history"),
    ],
)
def test_falls_back_to_main_and_says_so(
    tmp_path: Path, repo: tuple[Path, list[str]], history: list[dict[str, Any]], why: str
) -> None:
    directory, commits = repo
    outputs, note = deployed(tmp_path, directory, history)
    assert outputs == {"commit": commits[3], "source": "main"}
    assert f"Compared `prod` with `main` (`{commits[3][:12]}`)" in note and why in note


@pytest.mark.parametrize(
    "history",
    [[], [update("bootstrap: registries only")], [update("main " + "a" * 40, result="failed")]],
    ids=["empty", "only-a-persons-update", "only-a-failed-main-deploy"],
)
def test_a_stack_main_yml_never_deployed_is_a_notice_not_drift(
    tmp_path: Path, repo: tuple[Path, list[str]], history: list[dict[str, Any]]
) -> None:
    """Comparing it with main would report the whole unreleased program as drift, red every day."""
    directory, _ = repo
    env = _tools(tmp_path, {"history": history})
    note = tmp_path / "compared.md"
    result = subprocess.run(
        [str(CI / "deployed_commit.py"), "--stack", "prod", "--note", str(note)],
        cwd=directory, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines())
    assert outputs == {"commit": "", "source": "none"}
    assert "::notice title=Drift check skipped (prod)::" in result.stdout
    assert "::error" not in result.stdout
    assert "no successful update from main.yml in the stack's last 100 updates" in note.read_text()
    assert "not deployed by main.yml yet" in (tmp_path / "summary.md").read_text()


# --- tag-latest.sh ----------------------------------------------------------------------------------------


PROD_REGISTRY_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-muse-prod-m7k2/providers/"
    "Microsoft.ContainerRegistry/registries/acrmuseprodm7k2"
)


def tag_latest(
    tmp_path: Path, *args: str, listable: dict[str, str] | None = None, **extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = _tools(
        tmp_path,
        {
            "outputs": {
                "registryName": "acrmuseprodm7k2",
                "registryId": PROD_REGISTRY_ID,
                "registryLoginServer": "acrmuseprodm7k2.azurecr.io",
            },
            "registry_id": PROD_REGISTRY_ID,
            "listable": listable or {},
            "registry": {"muse:latest": "sha256:" + "a" * 64, f"muse:{'1' * 40}": DIGEST},
        },
    )
    result = subprocess.run(
        [str(CI / "tag-latest.sh"), *args], env={**env, **extra}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    return result, json.loads((tmp_path / "world.json").read_text())


def test_latest_moves_to_the_deployed_digest_within_the_registry(tmp_path: Path) -> None:
    result, world = tag_latest(tmp_path, "prod", DIGEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert world["registry"]["muse:latest"] == DIGEST
    # The source by resource id: no registry listing is needed (the world lists none).
    assert world["imports"] == [
        {"source_id": PROD_REGISTRY_ID, "source": f"muse@{DIGEST}", "image": "muse:latest"}
    ]
    [imported] = [c for c in world["calls"] if c.startswith("az acr import")]
    assert "--name acrmuseprodm7k2" in imported and imported.endswith("--force")
    assert f"now names `{DIGEST}`" in (tmp_path / "summary.md").read_text()


def test_negative_control_a_login_server_source_needs_the_registry_listing(tmp_path: Path) -> None:
    # The former call, `--source <login server>/muse@<digest>` without --registry: azure-cli looks the login
    # server up among the registries the identity can list and otherwise pulls anonymously (import.py).
    script = (CI / "tag-latest.sh").read_text()
    old = '--registry "$registry_id" --source "$repository@$digest"'
    assert old in script
    former = tmp_path / "tag-latest-by-login-server.sh"
    former.write_text(script.replace(old, '--source "$login_server/$repository@$digest"'))
    former.chmod(0o755)
    (tmp_path / "az-login-federated.sh").write_text("#!/bin/sh\n")
    env = _tools(
        tmp_path,
        {
            "outputs": {
                "registryName": "acrmuseprodm7k2",
                "registryId": PROD_REGISTRY_ID,
                "registryLoginServer": "acrmuseprodm7k2.azurecr.io",
            },
            "registry_id": PROD_REGISTRY_ID,
            "listable": {},
            "registry": {f"muse:{'1' * 40}": DIGEST},
        },
    )
    result = subprocess.run(
        [str(former), "prod", DIGEST], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "unauthorized" in result.stderr


def test_latest_signs_in_again_from_the_refreshed_token_late_in_a_job(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("header.payload.signature")
    result, world = tag_latest(
        tmp_path, "prod", DIGEST, AZURE_FEDERATED_TOKEN_FILE=str(token), AZURE_CLIENT_ID="client",
        AZURE_TENANT_ID="tenant", ARM_SUBSCRIPTION_ID="subscription",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert world["calls"][0].startswith("az login --service-principal --username client")


def test_latest_refuses_anything_but_a_digest(tmp_path: Path) -> None:
    result, world = tag_latest(tmp_path, "prod", "v1.2.3")
    assert result.returncode == 1
    assert world["calls"] == []
