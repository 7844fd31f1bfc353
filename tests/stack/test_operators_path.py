"""docs/runbook.md "The operator's path": a numbered sequence (bootstrap -> manual dev deploy -> the
cluster -> prod's first deploy -> manual rollback) whose every stack command runs here as a dry run of
scripts/stack, printing the command with its stack's own backend."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from stack.files import REPO_ROOT
from stack.naming import StateBackendNames

# Each step runs scripts/stack as a process (seconds in all).
pytestmark = pytest.mark.slow

RUNBOOK = (REPO_ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
SECTION = RUNBOOK.split("## The operator's path\n", 1)[1].split("\n## ", 1)[0]
STEP = re.compile(r"^(\d+)\. \*\*(.+?)\*\*", re.M)
WRAPPER = REPO_ROOT / "scripts" / "stack"


def test_the_path_is_numbered_in_order() -> None:
    steps = [(int(n), title) for n, title in STEP.findall(SECTION)]
    assert [n for n, _ in steps] == list(range(1, len(steps) + 1))
    titles = [t.lower() for _, t in steps]
    order = ["bootstrap", "manual dev deploy", "prod's first deploy", "manual rollback"]
    positions = [next(i for i, t in enumerate(titles) if word in t) for word in order]
    assert positions == sorted(positions), titles


def _wrapper_calls() -> list[list[str]]:
    """Every `scripts/stack ...` of the section (also inside $(...)), placeholders filled in."""
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", SECTION, re.S))
    filled = blocks.replace("<good digest>", "a" * 64)
    # The manual rollback's message names the checked-out commit (update_message.py reads it back).
    filled = filled.replace("$(git rev-parse HEAD)", "0" * 40)
    filled = re.sub(r"<[^>]+>", "x", filled)
    calls = []
    for match in re.finditer(r"scripts/stack ([^)\n`]+)", filled):
        words = shlex.split(match.group(1).split('"')[0] if '"$(' in match.group(1) else match.group(1))
        calls.append(words)
    return calls


def test_every_stack_command_of_the_path_runs_as_a_dry_run_against_its_own_backend() -> None:
    calls = _wrapper_calls()
    stacks = {words[0] for words in calls}
    assert stacks == {"dev", "prod"}
    for words in calls:
        done = subprocess.run(
            [str(WRAPPER), "--dry-run", *words], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0, (words, done.stderr)
        container = StateBackendNames.for_environment(words[0], "m7k2").backend_url
        pulumi = [line for line in done.stdout.splitlines() if " pulumi " in line]
        assert pulumi and all(container in line for line in pulumi), done.stdout


def test_the_make_targets_of_the_path_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in set(re.findall(r"make (\w+) STACK=", SECTION)):
        assert re.search(rf"^(\S+ )*{target}( \S+)*:", makefile, re.M), target


def test_negative_control_a_stack_the_repository_lacks_is_refused() -> None:
    done = subprocess.run(
        [str(WRAPPER), "--dry-run", "staging", "up"], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "no stack 'staging'" in done.stderr


def _stack_commands_before_the_bootstrap(section: str) -> list[str]:
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S))
    before = blocks.split("scripts/bootstrap.sh", 1)[0]
    return re.findall(r"(?:scripts/stack|pulumi|make \w+ STACK=)[^\n]*", before)


def test_no_stack_command_runs_before_the_bootstrap_has_created_the_stacks() -> None:
    # Before the bootstrap a stack is in no backend: `pulumi config set` would offer to create it with the
    # default passphrase secrets manager (pulumi/pulumi pkg/cmd/pulumi/config/config.go, RequireStack with
    # OfferNew; pkg/cmd/pulumi/stack/secrets.go), and scripts/stack refuses it. Step 1 edits the file.
    assert _stack_commands_before_the_bootstrap(SECTION) == []
    assert "Pulumi.prod.yaml" in SECTION.split("2. **", 1)[0]
    # Negative control: the former step 1 set prod's config through the wrapper before the bootstrap.
    former = SECTION.replace(
        "```bash\n   scripts/bootstrap.sh",
        "```bash\n   scripts/stack prod config set --path 'muse:alertEmails[0]' x\n   scripts/bootstrap.sh",
    )
    assert _stack_commands_before_the_bootstrap(former) == [
        "scripts/stack prod config set --path 'muse:alertEmails[0]' x"
    ]


def test_the_dev_deploy_takes_the_digest_podman_wrote() -> None:
    # `podman push --digestfile <file>` writes the pushed image's digest (podman-push(1)); the next command
    # deploys exactly that file's content.
    push = re.search(r"podman push --digestfile (\S+) ", SECTION)
    assert push and f'muse:imageTag "$(cat {push.group(1)})"' in SECTION
