"""scripts/stack: every pulumi command a person runs by hand reaches the stack's own state container and
secrets key; `up` refreshes and refuses, before pulumi runs, what could only fail later (a committed
placeholder, a VM size the region lacks, an image the registry lacks). Stand-ins for az and pulumi record
their calls and answer as the real CLIs do (exit non-zero on a missing image, an empty list-skus answer)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.files import REPO_ROOT
from stack.naming import StateBackendNames

# Real processes: scripts/stack with stand-in az and pulumi.
pytestmark = pytest.mark.slow

WRAPPER = REPO_ROOT / "scripts" / "stack"
REAL_PROD = {
    "muse:ingressHost": "muse.contoso.com",
    "muse:operatorsGroupObjectId": "3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c",
    "muse:alertEmails": ["oncall@contoso.com"],
}
# pulumi: `stack ls --json` prints the stacks of $STACKS (default dev, prod and main) as the CLI's
# stackSummaryJSON list (pulumi/pulumi pkg/cmd/pulumi/stack/stack_ls.go).
# az: `acr repository show` exits 3 with azure-cli's error line when $MISSING_IMAGE is set (a
# ResourceNotFoundError, azure/cli/core/azclierror.py); `vm list-skus` prints the size unless it is $NO_SIZE.
STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $* | ${PULUMI_BACKEND_URL:-no-backend}" >> "$CALLS"
case "$(basename "$0") $*" in
  "pulumi stack ls --json")
    printf '['; sep=''
    for name in ${STACKS-dev prod main}; do
      printf '%s{"name": "%s", "current": false, "updateInProgress": false}' "$sep" "$name"; sep=', '
    done
    echo ']' ;;
  "az acr repository show"*)
    [ -z "${MISSING_IMAGE:-}" ] || { echo "ERROR: (ResourceNotFoundError) manifest unknown" >&2; exit 3; } ;;
  "az vm list-skus"*)
    for a in "$@"; do case "$a" in Standard_*) size="$a";; esac; done
    [ "$size" = "${NO_SIZE:-}" ] || echo "$size" ;;
esac
exit 0
"""


def _checkout(
    tmp_path: Path, prod: dict[str, object] | None = None, dev: dict[str, object] | None = None
) -> Path:
    """A copy of the scripts and stack files, with changes to the stack files."""
    root = tmp_path / "repo"
    (root / "scripts" / "ci").mkdir(parents=True)
    for name in ("stack", "stack_command.py"):
        shutil.copy(REPO_ROOT / "scripts" / name, root / "scripts" / name)
    for name in ("placeholders.py", "reserved_host.py"):
        shutil.copy(REPO_ROOT / "scripts" / "ci" / name, root / "scripts" / "ci" / name)
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    (root / "bootstrap").mkdir()
    shutil.copy(REPO_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    for stack, changes in (("dev", dev), ("prod", prod)):
        data = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
        data["config"].update(changes or {})
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data))
    return root


def _run(root: Path, tmp_path: Path, *args: str, **env: str) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("az", "pulumi"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "HOME": str(tmp_path),
        **env,
    }
    done = subprocess.run(
        [str(root / "scripts" / "stack"), *args], env=environment, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr, calls.read_text().splitlines()


@pytest.mark.parametrize(("stack", "container"), [("dev", "state-dev"), ("prod", "state-prod")])
def test_the_dry_run_prints_every_command_with_the_stacks_own_backend(stack: str, container: str) -> None:
    done = subprocess.run(
        [str(WRAPPER), "--dry-run", stack, "up"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    backend = StateBackendNames.for_environment(stack, "m7k2")
    assert lines[0] == f"# stack {stack}: backend {backend.backend_url}, secrets {backend.secrets_provider}"
    *_, exists, pulumi = lines
    assert exists == f"PULUMI_BACKEND_URL='azblob://{container}?storage_account=stmusestatem7k2' " + (
        "pulumi stack ls --json"
    )
    assert pulumi == f"PULUMI_BACKEND_URL='azblob://{container}?storage_account=stmusestatem7k2' " + (
        f"pulumi up --stack {stack} --refresh"
    )
    # The checks come first, each printed: placeholders, the sizes, the image.
    assert "placeholders.py --stack" in lines[1]
    assert any(line.startswith("az vm list-skus") for line in lines)
    assert any(line.startswith("az acr repository show --name acrmuse") for line in lines)


def test_the_bootstrap_project_uses_its_own_container_and_directory() -> None:
    done = subprocess.run(
        [str(WRAPPER), "--dry-run", "bootstrap", "stack", "output", "githubVariables"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == (
        "(cd bootstrap && PULUMI_BACKEND_URL='azblob://state?storage_account=stmusestatem7k2' "
        "pulumi stack output githubVariables --stack main)"
    )


def test_a_fork_with_its_own_suffix_reaches_its_own_state(tmp_path: Path) -> None:
    root = _checkout(tmp_path, dev={"muse:nameSuffix": "fk9x"}, prod={"muse:nameSuffix": "fk9x"})
    code, output, _ = _run(root, tmp_path, "--dry-run", "prod", "preview")
    assert code == 0, output
    assert "azblob://state-prod?storage_account=stmusestatefk9x" in output
    assert "m7k2" not in output  # negative control: nothing of the committed suffix is left


def test_up_runs_pulumi_with_the_backend_and_refresh_when_every_check_passes(tmp_path: Path) -> None:
    root = _checkout(tmp_path, prod=REAL_PROD)
    code, output, calls = _run(root, tmp_path, "prod", "up", "--message", "manual")
    assert code == 0, output
    assert calls[-1] == (
        "pulumi up --message manual --stack prod --refresh | azblob://state-prod?storage_account=stmusestatem7k2"
    )
    assert calls[-2].startswith("pulumi stack ls --json")  # the stack exists in its backend
    assert calls[-3].startswith("az acr repository show --name acrmuseprodm7k2 --image muse:latest")


def test_up_refuses_an_image_the_registry_lacks_before_pulumi_runs(tmp_path: Path) -> None:
    root = _checkout(tmp_path, dev={"muse:imageTag": "sha256:" + "c" * 64})
    code, output, calls = _run(root, tmp_path, "dev", "up", MISSING_IMAGE="1")
    assert code == 65, output
    assert "registry acrmusedevm7k2 has no image muse@sha256:" + "c" * 64 in output
    assert "scripts/build-image.sh" in output and "ResourceNotFoundError" in output
    assert not [c for c in calls if c.startswith("pulumi")]


def test_up_refuses_prods_placeholders_before_azure_is_asked(tmp_path: Path) -> None:
    root = _checkout(tmp_path)  # the committed prod file: its placeholders
    code, output, calls = _run(root, tmp_path, "prod", "up")
    assert code == 65, output
    assert "muse:operatorsGroupObjectId" in output and "muse:alertEmails" in output
    assert calls == []


def test_preview_and_up_refuse_a_size_the_region_does_not_offer(tmp_path: Path) -> None:
    root = _checkout(tmp_path, dev={"muse:userNodeVmSize": "Standard_D2ds_v9"})
    code, output, calls = _run(root, tmp_path, "dev", "preview", NO_SIZE="Standard_D2ds_v9")
    assert code == 65, output
    assert "muse:userNodeVmSize Standard_D2ds_v9 is not offered in westeurope" in output
    assert not [c for c in calls if c.startswith("pulumi")]
    # Negative control: the same stack where the region has the size previews.
    code, output, calls = _run(root, tmp_path, "dev", "preview")
    assert code == 0 and calls[-1].startswith("pulumi preview --stack dev --refresh"), output


def test_a_registry_stage_deploys_no_workload_so_no_image_is_checked(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    code, output, calls = _run(
        root, tmp_path, "dev", "up", MISSING_IMAGE="1", MUSE_BOOTSTRAP_STAGE="registry"
    )
    assert code == 0, output
    assert not [c for c in calls if c.startswith("az acr")]


def test_flags_a_person_gives_are_kept() -> None:
    done = subprocess.run(
        [str(WRAPPER), "--dry-run", "prod", "preview", "--stack", "prod", "--refresh=false"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.rstrip().endswith("pulumi preview --stack prod --refresh=false")


@pytest.mark.parametrize(
    "command",
    [["config", "set", "muse:replicas", "4"], ["preview"], ["stack", "output", "museUrl"]],
    ids=["config-set", "preview", "stack-output"],
)
def test_a_stack_missing_from_its_backend_is_refused_not_offered(tmp_path: Path, command: list[str]) -> None:
    # Pulumi would offer to create it with the passphrase secrets manager (pulumi/pulumi
    # pkg/cmd/pulumi/config/config.go RequireStack with OfferNew; pkg/cmd/pulumi/stack/secrets.go).
    root = _checkout(tmp_path)
    code, output, calls = _run(root, tmp_path, "dev", *command, STACKS="main")
    assert code == 65, output
    assert "stack dev: not in its backend azblob://state-dev" in output and "Pulumi.dev.yaml" in output
    assert calls[-1] == "pulumi stack ls --json | azblob://state-dev?storage_account=stmusestatem7k2"
    # Negative control: the same command once the backend has the stack (also as a qualified DIY name).
    for stacks in ("dev", "organization/muse/dev"):
        code, output, calls = _run(root, tmp_path, "dev", *command, STACKS=stacks)
        assert code == 0, output
        assert calls[-1].startswith(f"pulumi {' '.join(command)}")


def test_creating_the_stack_needs_no_stack(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    code, output, calls = _run(root, tmp_path, "dev", "stack", "init", STACKS="")
    assert code == 0, output
    assert [c.split(" |")[0] for c in calls] == [
        "pulumi stack init --stack dev --secrets-provider "
        + StateBackendNames.for_environment("dev", "m7k2").secrets_provider
    ]


# A missing .venv: `make venv` installs about 1 GB. A person at a terminal is told and it runs; anything else
# (a test, a script, CI) gets the hint and exit 2, never a silent install.
FAKE_MAKEFILE = (
    "venv:\n\tmkdir -p .venv/bin && printf '#!/bin/sh\\necho ran \"$$@\"\\n' > .venv/bin/python"
    " && chmod +x .venv/bin/python && touch installed\n"
)


def _bare_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(WRAPPER, root / "scripts" / "stack")
    (root / "Makefile").write_text(FAKE_MAKEFILE)
    return root


def test_without_a_venv_a_script_gets_the_hint_and_nothing_is_installed(tmp_path: Path) -> None:
    root = _bare_checkout(tmp_path)
    done = subprocess.run(
        [str(root / "scripts" / "stack"), "dev", "preview"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "run 'make venv'" in done.stderr
    assert not (root / "installed").exists() and not (root / ".venv").exists()


@pytest.mark.parametrize("opt_out", [False, True])
def test_without_a_venv_a_person_at_a_terminal_is_told_then_it_is_made(tmp_path: Path, opt_out: bool) -> None:
    """Interactive (stdin and stdout a terminal, here a pseudo-terminal): the message first, then `make venv`,
    then the command; MUSE_NO_VENV_SETUP=1 refuses as a script would (negative control of the opt-out)."""
    root = _bare_checkout(tmp_path)
    leader, follower = os.openpty()
    env = {**os.environ, "MUSE_NO_VENV_SETUP": "1" if opt_out else ""}
    with subprocess.Popen(
        [str(root / "scripts" / "stack"), "dev", "preview"],
        stdin=follower,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as process:
        os.close(follower)
        _, stderr = process.communicate(timeout=60)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    if opt_out:
        assert process.returncode == 2 and "run 'make venv'" in stderr
        assert not (root / "installed").exists()
    else:
        assert process.returncode == 0, stderr
        assert "running 'make venv'" in stderr and (root / "installed").exists()
        assert b"ran " in output and b"stack_command.py dev preview" in output
