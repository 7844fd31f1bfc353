"""Attested and verified, offline: main.yml's build attests every pushed digest (provenance and SBOM,
actions/attest with push-to-registry), deploy-prod verifies the exact digest - signed by this repository's
main.yml on refs/heads/main - before `az acr import`, and a repository that cannot attest says "provenance:
not verifiable" instead of skipping silently. The scripts run for real against stub `gh`/`az` commands.

What only GitHub can show: that the attestation is really stored and pushed (actions/attest v4.1.0 needs a
public repository or GitHub Enterprise Cloud, docs.github.com "Using artifact attestations to establish
provenance for builds"), and that `gh attestation verify` on the runner accepts it (cli.github.com/manual/
gh_attestation_verify: `--repo`, `--signer-workflow`, `--source-ref`, `--deny-self-hosted-runners`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stack.files import REPO_ROOT
from tests.workflows.expansion import deploy_text, expanded_main
from verify.workflows import Job, Workflow, parse

CI = REPO_ROOT / "scripts" / "ci"
ATTEST = "actions/attest"
DIGEST = "sha256:" + "ab" * 32
IMAGE = "acrmusedev.azurecr.io/muse"


def _index(job: Job, predicate: str) -> int:
    """The first step whose `run:` contains `predicate`, or whose action is `predicate`."""
    return next(i for i, s in enumerate(job.steps) if s.action == predicate or predicate in (s.run or ""))


def verification_problems(workflow: Workflow) -> list[str]:
    """deploy-prod must verify the digest it imports, before the import, and never let a failure through."""
    job = workflow.jobs["deploy-prod.deploy"]  # prod's call of deploy.yml, as GitHub runs it
    problems = []
    try:
        verify = _index(job, "scripts/ci/verify-provenance.sh")
        mode = _index(job, "scripts/ci/attestation-mode.sh")
        imports = _index(job, "az acr import")
    except StopIteration:
        return ["deploy-prod lacks the mode check, the verification or the import"]
    step = job.steps[verify]
    if not verify < imports:
        problems.append("the verification runs after az acr import")
    if not mode < verify:
        problems.append("the verification runs before its mode is known")
    if step.condition != f"steps.{job.steps[mode].id}.outputs.enabled == 'true'":
        problems.append(f"the verification runs on {step.condition!r}")
    if step.raw.get("continue-on-error") or job.steps[mode].raw.get("continue-on-error"):
        problems.append("a failed verification would not stop the job")
    if (
        '"$IMAGE_DIGEST"' not in (step.run or "")
        or job.env.get("IMAGE_DIGEST") != "${{ needs.build.outputs.digest }}"
    ):
        problems.append("the verification does not check the digest the job imports")
    for later in job.steps[verify + 1 : imports + 1]:
        if later.condition and "always()" in later.condition:
            problems.append(f"{later.name} runs even when the verification failed")
    return problems


def test_deploy_prod_verifies_the_digest_before_az_acr_import(main: Workflow) -> None:
    assert verification_problems(main) == []
    assert main.jobs["deploy-prod.deploy"].permissions == {
        "contents": "read",
        "id-token": "write",
        "attestations": "read",
        "actions": "read",  # the approval guard reads the run's review history
    }


def _move_verification_after_import(text: str) -> str:
    start = text.index("      - name: Verify the digest's provenance")
    end = text.index("      - name: Copy the same digest from the environment before this one")
    block = text[start:end]
    text = text[:start] + text[end:]
    anchor = "      # The approver approved the preview's change set."
    return text.replace(anchor, block + anchor, 1)


@pytest.mark.parametrize(
    "edit",
    [
        _move_verification_after_import,
        lambda t: t.replace(
            "        if: ${{ inputs.import-from != '' && steps.attestations.outputs.enabled == 'true' }}\n"
            "        env:\n          GH_TOKEN",
            "        if: always()\n        continue-on-error: true\n        env:\n          GH_TOKEN",
        ),
        lambda t: t.replace(
            'scripts/ci/verify-provenance.sh "$SOURCE_LOGIN_SERVER/$IMAGE_REPOSITORY" "$IMAGE_DIGEST"',
            'scripts/ci/verify-provenance.sh "$SOURCE_LOGIN_SERVER/$IMAGE_REPOSITORY" "$LATEST_DIGEST"',
        ),
    ],
    ids=["after-import", "failure-ignored", "another-digest"],
)
def test_negative_control_a_weakened_verification_is_caught(main: Workflow, edit: object) -> None:
    edited = edit(deploy_text())  # type: ignore[operator]
    assert edited != deploy_text()
    assert verification_problems(expanded_main(deploy=edited)) != []


def test_the_build_attests_exactly_the_pushed_digest(main: Workflow) -> None:
    job = main.jobs["build"]
    push = next(i for i, s in enumerate(job.steps) if s.id == "push")
    attests = [(i, s) for i, s in enumerate(job.steps) if s.action == ATTEST]
    assert len(attests) == 2 and all(i > push for i, _ in attests)
    kinds = {"sbom" if "sbom-path" in s.inputs else "provenance" for _, s in attests}
    assert kinds == {"provenance", "sbom"}
    for _, step in attests:
        assert step.inputs["subject-digest"] == "${{ steps.push.outputs.digest }}"
        assert (
            step.inputs["subject-name"]
            == "${{ steps.registry.outputs.login_server }}/${{ env.IMAGE_REPOSITORY }}"
        )
        assert step.inputs["push-to-registry"] is True
        assert step.condition == "steps.attestations.outputs.enabled == 'true'"
        assert step.uses and step.uses.split("@")[1] == "59d89421af93a897026c735860bf21b6eb4f7b26"  # v4.1.0
    sbom = next(s for s in job.steps if s.action == "anchore/sbom-action")
    assert sbom.inputs["image"].endswith("@${{ steps.push.outputs.digest }}")
    assert (
        sbom.inputs["output-file"]
        == next(s for _, s in attests if "sbom-path" in s.inputs).inputs["sbom-path"]
    )


def test_only_the_build_job_may_write_attestations(workflows: dict[str, Workflow], policy: Any) -> None:
    writers = {
        (wf.file_name, job_id)
        for wf in workflows.values()
        for job_id, job in wf.jobs.items()
        if isinstance(job.permissions, dict) and job.permissions.get("attestations") == "write"
    }
    assert writers == {("main.yml", "build")}
    main = workflows["main.yml"]
    assert policy.check_permissions(main) == []
    # Negative control: attestations: write in a job that does not attest is refused by the repository policy.
    leaked = main.text.replace(
        "      attestations: read # gh attestation verify",
        "      attestations: write # gh attestation verify",
    )
    assert any(
        "attestations: write but the job does not attest" in p
        for p in policy.check_permissions(parse(leaked))
    )


def test_the_prod_approval_says_what_happens_to_provenance(main: Workflow) -> None:
    job = main.jobs["deploy-prod.preview"]
    mode = _index(job, "scripts/ci/attestation-mode.sh")
    assert mode < _index(job, "scripts/ci/preview.py")
    assert job.steps[mode].env["MODE"] == "${{ vars.ARTIFACT_ATTESTATIONS }}"


# --- the scripts, for real ---------------------------------------------------------------------------------


def _run(
    tmp_path: Path, script: str, *args: str, gh_exit: int = 0
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    for tool, code in (("gh", gh_exit), ("az", 0)):
        stub = bin_dir / tool
        stub.write_text(f'#!/usr/bin/env bash\necho "{tool} $*" >> "{log}"\nexit {code}\n')
        stub.chmod(0o755)
    files = {name: tmp_path / name for name in ("output", "summary")}
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GITHUB_REPOSITORY": "contoso/muse",
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_STEP_SUMMARY": str(files["summary"]),
    }
    proc = subprocess.run([str(CI / script), *args], env=env, capture_output=True, text=True, timeout=30)
    read = {name: path.read_text() if path.exists() else "" for name, path in files.items()}
    read["calls"] = log.read_text() if log.exists() else ""
    return proc, read


def test_verify_provenance_asks_gh_for_main_yml_on_main(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, "verify-provenance.sh", IMAGE, DIGEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = out["calls"].splitlines()
    assert calls[0] == "az acr login --name acrmusedev"
    assert calls[1] == (
        f"gh attestation verify oci://{IMAGE}@{DIGEST} --repo contoso/muse "
        "--signer-workflow contoso/muse/.github/workflows/main.yml --source-ref refs/heads/main "
        "--deny-self-hosted-runners"
    )
    assert "provenance: verified" in out["summary"]


def test_negative_control_an_unverified_digest_stops_the_job(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, "verify-provenance.sh", IMAGE, DIGEST, gh_exit=1)
    assert proc.returncode == 1
    assert "not importing it into prod" in proc.stdout and "verification FAILED" in out["summary"]


@pytest.mark.parametrize(("image", "digest"), [(IMAGE, "latest"), ("evil.example.com/muse", DIGEST)])
def test_a_malformed_reference_is_refused_before_any_call(tmp_path: Path, image: str, digest: str) -> None:
    proc, out = _run(tmp_path, "verify-provenance.sh", image, digest)
    assert proc.returncode == 1 and out["calls"] == ""


def test_attestation_mode_enabled(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, "attestation-mode.sh", "enabled", "checked before the import")
    assert proc.returncode == 0 and out["output"] == "enabled=true\n"
    assert out["summary"] == "- provenance: checked before the import\n"


def test_attestation_mode_unavailable_says_not_verifiable(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, "attestation-mode.sh", "unavailable", "checked before the import")
    assert proc.returncode == 0 and out["output"] == "enabled=false\n"
    assert "provenance: not verifiable" in out["summary"] and "::warning" in proc.stdout


@pytest.mark.parametrize("mode", ["", "Enabled", "yes"])
def test_negative_control_an_unrecorded_mode_stops_the_job(tmp_path: Path, mode: str) -> None:
    proc, out = _run(tmp_path, "attestation-mode.sh", mode, "checked before the import")
    assert proc.returncode == 1 and out["output"] == "" and "ARTIFACT_ATTESTATIONS" in proc.stdout
