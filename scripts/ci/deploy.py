#!/usr/bin/env python3
"""Release one image to one stack, and put the previous image back when the release fails.

    scripts/ci/deploy.py --stack dev --image-tag sha256:<64 hex> --commit "$GITHUB_SHA" --policy-pack policy \
        [--canary] [--job-timeout-minutes 60] [--deadline-minutes N] [--hard-deadline-minutes N]

With --canary a new image goes through release_canary.py; otherwise `pulumi up` of the new tag, the rollout
and smoke checks, and on failure a targeted `pulumi up` of the Deployment back to the previous image.
engine.py recovers, keeps the deadlines, forwards signals and checks convergence. Exit codes: 0 released;
1 failed, the previous image serves; 2 failed with nothing to return to; 3 the rollback failed too;
4 released, convergence not shown; 64 a placeholder or a malformed digest. Standard library only.
Why: docs/architecture/ci-cd.md#the-deploy-script."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import check_job
import release_canary
from canary_gate import (
    ACCESS_QUERY,
    BUILD_INFO,
    AccessDenied,
    PrometheusSource,
    QueryUnavailable,
    Sample,
    az_token,
    queries,
    sample_from,
    scalar,
)
from deployed_image_tag import deployed_image_tag
from dns_check import report as public_dns_report
from engine import Cancelled, Supervisor, converged, recover
from update_message import commit_of, deploy_message, rollback_message
from workflow_files import append

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE.parent.parent / ".venv" / "bin" / "python"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# What a failed pulumi command's output says went wrong, matched in order. Not its exit code: pulumi's
# ExitCodeFor (pkg/cmd/pulumi/cmd/exit_codes.go) defines 4 (resource error) and 5 (policy violation) but never
# returns them ("TODO: Wire policy, timeout, and resource-specific errors"), so a policy violation and a
# rollout that never became ready both exit 1, like any failed update (a bail).
PULUMI_FAILURES = (
    ("mandatory policy violation", "a mandatory policy violation"),
    ("failed to fully initialize or become live", "the Deployment did not become ready"),
    ("untargeted create", "the engine refused the --target (untargeted create)"),
)
# AKS installs the Gateway API CRDs (ingressProfile.gatewayAPI) and the Secrets Store CRDs (the Key Vault
# add-on) after the cluster reports Succeeded, so a stack's first deploy can reach its Gateway or
# SecretProviderClass before the CRD is served. pulumi-kubernetes retries such a create only about a minute
# (pulumi/pulumi-kubernetes provider/pkg/await/await.go Creation: retry.SleepingRetry from 1 s, backoff 2,
# WithMaxRetries(5), on meta.IsNoMatchError / IsNotFound; provider/pkg/retry/retry.go), then fails with
# Kubernetes' NoKindMatchError text. `pulumi up` is then run again after a pause, a bounded number of times:
# what the failed update created stays in state, so the next one continues from there.
CRD_NOT_SERVED_YET = re.compile(r'no matches for kind "[A-Za-z]+" in version "[A-Za-z0-9.-]+/[A-Za-z0-9]+"')
CRD_RETRIES = 3
CRD_RETRY_SECONDS = int(os.environ.get("MUSE_CRD_RETRY_SECONDS", "120"))
ROUTE_NAME = "muse"  # the HTTPRoute's metadata.name (components/muse_workload/manifests.py HTTP_ROUTE)
# All traffic to the stable Service in one request (route_to_stable, the runbook's "In a hurry"). Both
# weights: at the 100 % step the stable entry's weight is already 0 (manifests.py backend_refs: 100 - weight),
# and a weight of 0 sends that entry nothing (gateway-api apis/v1/shared_types.go, BackendRef.Weight), so
# setting only the candidate's to 0 leaves [0, 0]: no backend at all. The `test` ops make the API server
# refuse the whole patch unless entry 0 is the stable Service and entry 1 the candidate (RFC 6902 section 4.6,
# "test"; a failed test fails the patch, section 5): never re-weights a route the program laid out
# differently.
STABLE_SERVICE, CANDIDATE_SERVICE = "muse", "muse-candidate"  # manifests.py SERVICE, CANDIDATE
# The patch's own bound: the API server's answer within 5 s (kubectl --request-timeout), the process within 8:
# what an abort adds to a failing candidate's exposure before the Gateway's data plane applies it.
ROUTE_PATCH_REQUEST_SECONDS, ROUTE_PATCH_SECONDS = 5, 8
TO_STABLE_PATCH = [
    {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": STABLE_SERVICE},
    {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": CANDIDATE_SERVICE},
    {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 100},
    {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0},
]
OUTPUT_TAIL_CHARACTERS = 20_000  # of each failed command, in the summary (its full output is in the log)

NOT_CONVERGED, CONVERGENCE_UNKNOWN = release_canary.NOT_CONVERGED, release_canary.CONVERGENCE_UNKNOWN
RELEASED, NOT_REPLACED, ROLLED_BACK, NOTHING_TO_RETURN_TO, ROLLBACK_FAILED = (
    "released",
    "failed-before-the-deployment-changed",
    "rolled-back",
    "nothing-to-return-to",
    "rollback-failed",
)
EXIT_CODES = {
    RELEASED: 0,
    NOT_REPLACED: 1,
    ROLLED_BACK: 1,
    release_canary.ABORTED: 1,
    NOTHING_TO_RETURN_TO: 2,
    ROLLBACK_FAILED: 3,
    NOT_CONVERGED: 4,
    CONVERGENCE_UNKNOWN: 4,
    release_canary.LOCKED: 5,  # nothing started: the stack is locked (`pulumi cancel`, docs/runbook.md)
}
# The release's own clock (engine.py says why), counted from the JOB's start (JOB_STARTED_AT, which
# deploy.yml's deploy job records in its first step: checkout, the venv, Pulumi, prod's provenance check,
# import and preview all run before deploy.py), not from deploy.py's: the release must be decided by the
# deadline, the abort and rollback by the hard deadline, and the job's later steps run after that.
JOB_TIMEOUT_MINUTES = 70  # deploy.yml's deploy job `timeout-minutes` (test_workflow_semantics: they agree)
AFTER_HARD_DEADLINE_MINUTES = 5  # Supervisor.grace for an interrupted pulumi, then tag-latest and outputs
ABORT_MINUTES = 20  # weight back, the previous commit's checkout + venv + up, its checks and convergence
# Set by main(); run() hands each command to it so a signal or the deadline reaches the running command.
SUPERVISOR: Supervisor | None = None
HARD_DEADLINE: float = float("inf")


def deadlines(
    job_timeout_minutes: float,
    job_started_at: float | None,
    now: float,
    deadline_minutes: float | None = None,
    hard_deadline_minutes: float | None = None,
) -> tuple[float, float]:
    """(release deadline, hard deadline) in seconds from `now` (epoch seconds, as JOB_STARTED_AT): what is
    left of the job's timeout, less the time kept after the hard deadline, and before it for an abort. The
    --deadline-minutes / --hard-deadline-minutes flags can only shorten them."""
    used = max(0.0, now - job_started_at) if job_started_at is not None else 0.0
    hard = job_timeout_minutes * 60 - used - AFTER_HARD_DEADLINE_MINUTES * 60
    release = hard - ABORT_MINUTES * 60
    if hard_deadline_minutes is not None:
        hard = min(hard, hard_deadline_minutes * 60)
    if deadline_minutes is not None:
        release = min(release, deadline_minutes * 60)
    return min(release, hard), hard


def job_started_at() -> float | None:
    """JOB_STARTED_AT (epoch seconds, deploy.yml's first step), None when unset (a run by hand)."""
    value = os.environ.get("JOB_STARTED_AT", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValueError(f"JOB_STARTED_AT={value!r} is not epoch seconds (deploy.yml: date +%s)")
    return float(value)


def _remaining() -> float:
    """Seconds left before the release's deadline (main()'s supervisor; none when run without it)."""
    return SUPERVISOR.remaining() if SUPERVISOR is not None else float("inf")


def _rollback_time() -> None:
    """A failed release's rollback runs until the hard deadline - unless the job is being cancelled."""
    if SUPERVISOR is not None:
        if SUPERVISOR.signalled:
            raise Cancelled(f"{SUPERVISOR.signalled} received: the job is being cancelled")
        SUPERVISOR.deadline = max(SUPERVISOR.deadline, HARD_DEADLINE)


@dataclass
class Step:
    what: str  # "pulumi up", "rollout check", "smoke check", ...
    returncode: int
    output: str
    interrupted: str = ""  # why the supervisor stopped it (the deadline, a signal); "" when it ran its course

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        if self.ok:
            return f"{self.what}: passed"
        if self.interrupted:  # its answer says nothing about what it checks
            return f"{self.what}: interrupted ({self.interrupted}) before it finished"
        meaning = (
            next((why for found, why in PULUMI_FAILURES if found in self.output), "")
            if self.what.startswith("pulumi")
            else ""
        )
        return f"{self.what}: failed (exit {self.returncode}{': ' + meaning if meaning else ''})"


@dataclass
class Attempt:
    image: str
    steps: list[Step] = field(default_factory=list)
    url: str = ""
    gateway_address: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if not s.ok), None)


def run(what: str, args: list[str]) -> Step:
    """Run a command, streaming its output to the log and keeping it for the summary."""
    print(f"::group::{what}: {' '.join(args)}", flush=True)
    lines: list[str] = []
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        reader = _reader(process, lines)
        before = len(SUPERVISOR.interrupted) if SUPERVISOR is not None else 0
        code = SUPERVISOR.wait(process) if SUPERVISOR is not None else process.wait()
        reader.join(timeout=30)
    print("::endgroup::", flush=True)
    why = SUPERVISOR.interrupted[before:] if SUPERVISOR is not None else []
    return Step(what, code, "".join(lines), interrupted=", ".join(why) if code != 0 else "")


def _reader(process: subprocess.Popen[str], lines: list[str]) -> Any:
    """Stream the command's output to the log on a thread, so the main thread can watch the clock."""
    import threading

    def read() -> None:
        for line in process.stdout or ():
            print(line, end="", flush=True)
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def pulumi(*args: str) -> list[str]:
    return ["pulumi", *args, "--non-interactive", "--color", "never"]


def recorded_deployment(stack: str) -> tuple[str | None, str | None]:
    """(URN, image tag or digest) the stack's state records for the Muse Deployment ((None, None): none)."""
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        exported = run(
            "pulumi stack export", pulumi("stack", "export", "--stack", stack, "--file", str(state))
        )
        if not exported.ok:
            raise RuntimeError(f"pulumi stack export --stack {stack} failed: {exported.output[-2000:]}")
        resources = (json.loads(state.read_text(encoding="utf-8")).get("deployment") or {}).get("resources")
    for resource in resources or []:
        image = deployed_image_tag({"deployment": {"resources": [resource]}})
        if image:
            return str(resource.get("urn") or "") or None, image
    return None, None


def recorded_image(stack: str) -> str | None:
    """The image tag or digest the stack's state records for the Muse Deployment (None: no Deployment)."""
    return recorded_deployment(stack)[1]


def stack_outputs(stack: str) -> dict[str, Any]:
    """Every output of the stack (`pulumi stack output --json`); raises when pulumi fails or answers no JSON
    object, so that a backend error is never read as "no such output" (a decision must not fail open)."""
    result = subprocess.run(
        pulumi("stack", "output", "--stack", stack, "--json"), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"pulumi stack output --stack {stack} --json failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-1000:]}"
        )
    try:
        outputs = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise RuntimeError(f"pulumi stack output --stack {stack} --json is not JSON: {error}") from None
    if not isinstance(outputs, dict):
        raise RuntimeError(f"pulumi stack output --stack {stack} --json is not an object")
    return outputs


def stack_output(stack: str, name: str) -> str:
    result = subprocess.run(
        pulumi("stack", "output", name, "--stack", stack), capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def release(
    stack: str, image: str, message: str, policy_packs: list[str], target: str | None = None
) -> Attempt:
    """config set, pulumi up (of `target` only, when given), rollout check, smoke check; stops at the first
    failure."""
    attempt = Attempt(image)
    configured = run("pulumi config set", pulumi("config", "set", "--stack", stack, "muse:imageTag", image))
    attempt.steps.append(configured)
    if not configured.ok:
        return attempt
    # --refresh first reads the live cluster into state: the auto-upgrade channel moves the cluster's and
    # pools' versions, which the program ignores (ignoreChanges), and for an ignored property the engine sends
    # the value of the *stored* inputs (pulumi/pulumi step_generator.go processIgnoreChanges). Without a saved
    # refresh those stay at the creation version, and any other change to the cluster would PUT an older
    # kubernetesVersion than AKS runs (a downgrade AKS refuses).
    up = ["up", "--stack", stack, "--yes", "--refresh", "--diff", "--message", message]
    if target:
        up += ["--target", target]
    for pack in policy_packs:
        up += ["--policy-pack", pack]
    for retry in range(CRD_RETRIES + 1):
        step = run("pulumi up", pulumi(*up))
        not_served = None if step.ok else CRD_NOT_SERVED_YET.search(step.output)
        if not_served is None or retry == CRD_RETRIES:
            break
        print(
            f"::notice title=CRD not served yet ({stack})::{not_served.group(0)}: AKS is still installing "
            f"it; pulumi up again in {CRD_RETRY_SECONDS}s ({retry + 1}/{CRD_RETRIES})",
            flush=True,
        )
        time.sleep(CRD_RETRY_SECONDS)
    attempt.steps.append(step)
    if not attempt.ok:
        return attempt
    attempt.steps.append(run("rollout check", [str(HERE / "verify-rollout.sh"), stack]))
    if not attempt.ok:
        return attempt
    attempt.url = stack_output(stack, "museUrl")
    attempt.gateway_address = stack_output(stack, "museGatewayAddress")
    attempt.steps.append(
        run("smoke check", [str(HERE / "smoke-check.sh"), attempt.url, attempt.gateway_address])
    )
    return attempt


def tail(text: str) -> str:
    text = text[-OUTPUT_TAIL_CHARACTERS:]
    return text.replace("```", "'''")


def running_cell(running: str | None) -> str:
    """`<digest>` plus what is known about it, or the words when no digest is known."""
    digest = re.match(r"sha256:[0-9a-f]{64}", running or "")
    if running and digest:
        return f"`{digest.group(0)}`{running[digest.end() :]}"
    return running or "nothing yet"


def first_deploy_running(new: Attempt) -> str | None:
    """What serves after a failed first deploy. Once `pulumi up` created the Deployment, its pods run the new
    image (ready or not, and failing the smoke check or not): the release stays in place, nothing is removed.
    Only a failure before the Deployment existed leaves nothing running."""
    up = next((s for s in new.steps if s.what == "pulumi up"), None)
    if up is not None and up.ok:
        return f"{new.image} (the failed release: nothing to return to)"
    if up is not None and "failed to fully initialize or become live" in up.output:
        return f"{new.image}, not ready (the failed release: nothing to return to)"
    return None


def summary(
    stack: str, result: str, previous: str | None, new: Attempt, rollback: Attempt | None, note: str
) -> str:
    titles = {
        RELEASED: "released",
        NOT_REPLACED: "FAILED, the previous image still serves",
        ROLLED_BACK: "FAILED, rolled back to the previous image",
        NOTHING_TO_RETURN_TO: "FAILED, nothing to roll back to",
        ROLLBACK_FAILED: "FAILED, and the rollback FAILED: act now (docs/runbook.md, Rollback)",
    }
    running = {
        RELEASED: new.image,
        NOT_REPLACED: previous,
        ROLLED_BACK: previous,
        NOTHING_TO_RETURN_TO: first_deploy_running(new) if previous is None else "see below",
    }.get(result, "unknown: see below")
    lines = [
        f"### Deploy `{stack}`: {titles[result]}",
        "",
        "| | image |",
        "|---|---|",
        f"| before this release | `{previous or 'none (first deploy)'}` |",
        f"| this release | `{new.image}` |",
        f"| running now | {running_cell(running)} |",
        "",
        *(f"- release {s.describe()}" for s in new.steps if s.what != "pulumi config set" or not s.ok),
    ]
    if rollback is not None:
        lines += [
            f"- rollback {s.describe()}" for s in rollback.steps if s.what != "pulumi config set" or not s.ok
        ]
    if note:
        lines += ["", note]
    for label, attempt in (("release", new), ("rollback", rollback)):
        failed = attempt.failed if attempt else None
        if failed is not None:
            lines += [
                "",
                f"<details><summary>{label}: output of the failed {failed.what}</summary>",
                "",
                "```text",
                tail(failed.output),
                "```",
                "</details>",
            ]
    return "\n".join(lines) + "\n"


def deploy(stack: str, image: str, commit: str, policy_packs: list[str]) -> tuple[str, str]:
    """(result, summary markdown)."""
    deployment_urn, previous = recorded_deployment(stack)
    print(f"{stack} runs {previous or 'no Muse Deployment yet'}; releasing {image}", flush=True)
    new = release(stack, image, deploy_message(commit), policy_packs)
    if new.ok:
        return RELEASED, summary(stack, RELEASED, previous, new, None, "")
    _rollback_time()
    failed = new.failed or new.steps[-1]
    if failed.what in ("pulumi config set", "pulumi up"):
        try:
            now: str | None = recorded_image(stack)
        except RuntimeError as error:  # unknown: roll back, which is harmless if nothing changed
            print(f"::warning title=State::{error}", flush=True)
            now = None
        if now == previous and previous is not None:
            note = (
                f"`{failed.what}` failed before the Deployment changed: the stack still records and runs "
                f"`{previous}`, so there is nothing to roll back. Resources the update changed before it "
                "failed stay changed (the output below names them)."
            )
            return NOT_REPLACED, summary(stack, NOT_REPLACED, previous, new, None, note)
    if previous is None:
        note = (
            "This was the stack's first deploy of Muse: there is no previous image to return to. The failed "
            "release stays in place; fix it and push again."
        )
        return NOTHING_TO_RETURN_TO, summary(stack, NOTHING_TO_RETURN_TO, previous, new, None, note)
    if previous == image:
        note = (
            f"The stack already ran `{image}` before this release, so there is nothing different to return "
            "to: the failure is not the image's. Read the output below."
        )
        return NOTHING_TO_RETURN_TO, summary(stack, NOTHING_TO_RETURN_TO, previous, new, None, note)
    print(f"::warning title=Rollback ({stack})::{failed.describe()}; deploying {previous} again", flush=True)
    rollback = release(stack, previous, rollback_message(commit, previous), policy_packs, deployment_urn)
    kept = (
        f"The rollback updated only the Deployment (`pulumi up --target {deployment_urn}`): infrastructure "
        "changes of this commit that the failed `pulumi up` applied stay applied, the ones it never reached "
        "stay unapplied until the next release (docs/runbook.md, Automatic rollback)."
    )
    if rollback.ok:
        return ROLLED_BACK, summary(stack, ROLLED_BACK, previous, new, rollback, kept)
    return ROLLBACK_FAILED, summary(stack, ROLLBACK_FAILED, previous, new, rollback, kept)


def placeholder_problem(stack: str) -> str | None:
    """placeholders.py's message for `stack`, or None; run with the project's .venv (module docstring)."""
    if not VENV_PYTHON.exists():
        return f"{VENV_PYTHON} is missing: run `make ci-venv` first (placeholders.py needs the program)"
    done = subprocess.run(
        [str(VENV_PYTHON), str(HERE / "placeholders.py"), "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
        cwd=HERE.parent.parent,
    )
    return (
        None if done.returncode == 0 else (done.stderr.strip() or f"placeholders.py exit {done.returncode}")
    )


def evaluates_at_time(source: PrometheusSource, tries: int = 2) -> None:
    """The gate evaluates a check's counts at its interval's end (the API's `time`) and takes the interval's
    end from `timestamp()`. Both show on a series every pod has: its newest sample's timestamp evaluated AT
    that timestamp is itself, half a second later not the evaluation time (a `timestamp()` that returned it
    would make every check a new interval; another pod's sample scraped in between may show), and a
    millisecond before it older. A workspace that ignored `time` or cut it to whole seconds would make the
    counts read another interval, silently: that fails here instead, after a second try (a replica behind
    between the reads). No build-info sample yet (nothing scraped): nothing to compare, said, it passes."""
    newest = f"max(timestamp({BUILD_INFO}))"
    for _ in range(tries):
        end = scalar(source.query(newest))
        if end is None:
            print(
                f"deploy: no {BUILD_INFO} sample in the workspace yet: its `time` handling unchecked",
                flush=True,
            )
            return
        at = {offset: scalar(source.query(newest, at=end + offset)) for offset in (0.0, 0.5, -0.001)}
        later = at[0.5]
        if (
            at[0.0] == end
            and later is not None
            and end <= later < end + 0.4995
            and (at[-0.001] is None or at[-0.001] < end)
        ):
            return
    raise RuntimeError(
        f"the Azure Monitor workspace does not evaluate a query at the `time` it is given: {newest} was "
        f"{end} now, {at[0.0]} at time={end:.3f}, {at[0.5]} half a second later and {at[-0.001]} a "
        "millisecond before; the canary gate reads each interval at its end and cannot run "
        "(docs/architecture/ci-cd.md)"
    )


class CommandTools:
    """release_canary.Tools with the real commands: pulumi, the check scripts, kubectl, az, git."""

    def __init__(self, stack: str, policy_packs: list[str], prometheus_output: str) -> None:
        self.stack, self.policy_packs, self.prometheus_output = stack, policy_packs, prometheus_output
        # The release's own kubeconfig, kept from its first kubectl to its end (close()): verify-rollout.sh
        # removes the one it writes as soon as its check is done.
        self.kubeconfig = (
            Path(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir()) / f"kubeconfig-{stack}-release"
        )
        self._token: tuple[float, str] | None = None
        self._source: PrometheusSource | None = None
        self.namespace = f"muse-{stack}"  # stack output museNamespace, read with the kubeconfig (_kubectl)

    def _cwd(self, cwd: str | None) -> list[str]:
        return ["--cwd", cwd] if cwd else []

    def config_set(self, values: dict[str, str], cwd: str | None = None) -> Step:
        step = Step("pulumi config set", 0, "")
        for key, value in values.items():
            step = run(
                "pulumi config set",
                pulumi("config", "set", "--stack", self.stack, key, value, *self._cwd(cwd)),
            )
            if not step.ok:
                return step
        return step

    def up(self, message: str, *, target: str | None = None, cwd: str | None = None) -> Step:
        # A weight move is targeted at the route and needs no refresh; every other up refreshes (release()).
        args = ["up", "--stack", self.stack, "--yes", "--diff", "--message", message, *self._cwd(cwd)]
        args += ["--target", target] if target else ["--refresh"]
        root = Path(cwd) if cwd else HERE.parent.parent
        for pack in self.policy_packs:
            args += ["--policy-pack", str(root / pack)]
        return run("pulumi up" + (" --target (route weights)" if target else ""), pulumi(*args))

    def outputs(self) -> dict[str, Any]:
        result = subprocess.run(
            pulumi("stack", "output", "--stack", self.stack, "--json"),
            capture_output=True,
            text=True,
            check=False,
        )
        return dict(json.loads(result.stdout or "{}")) if result.returncode == 0 else {}

    def _kubectl(self) -> list[str]:
        if not self.kubeconfig.exists():  # write-kubeconfig.sh: kubelogin, the job's identity
            outputs = self.outputs()
            written = run(
                "kubeconfig (canary release)",
                [
                    str(HERE / "write-kubeconfig.sh"),
                    str(outputs.get("resourceGroupName") or ""),
                    str(outputs.get("clusterName") or ""),
                    str(self.kubeconfig),
                ],
            )
            if not written.ok:
                raise RuntimeError(f"cannot write the kubeconfig: {written.output.strip()[-500:]}")
            self.namespace = str(outputs.get("museNamespace") or self.namespace)
        return ["kubectl", "--kubeconfig", str(self.kubeconfig)]

    def route_to_stable(self) -> Step:
        """Stable 100, candidate 0 with one `kubectl patch` (TO_STABLE_PATCH; docs/runbook.md, Canary, "In
        a hurry"): run from the signal handler and as an abort's first move (release_canary.route_back), so
        no pulumi, no stack output, a short timeout. backendRefs[1] is the candidate while a canary runs
        (components/muse_workload/manifests.py backend_refs); the patch's `test` ops refuse any other layout.
        The route carries pulumi.com/patchForce (manifests.py PATCH_FORCE), so Pulumi's next apply of the
        route takes the field back from this patch's manager."""
        # The kubeconfig is written by the release's first kubectl, the end-to-end check before any traffic
        # (canary.py): without it no weight was moved, and the caller's targeted up sets weight 0 anyway.
        if not self.kubeconfig.exists():
            return Step("kubectl patch httproute", 1, "no kubeconfig yet: no weight was ever moved")
        patch = json.dumps(TO_STABLE_PATCH)
        args = ["kubectl", "--kubeconfig", str(self.kubeconfig), "-n", self.namespace]
        args += ["patch", "httproute", ROUTE_NAME, "--type=json", "-p", patch]
        args += [f"--request-timeout={ROUTE_PATCH_REQUEST_SECONDS}s"]
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, check=False, timeout=ROUTE_PATCH_SECONDS
            )
        except (OSError, subprocess.SubprocessError) as error:
            return Step("kubectl patch httproute", 1, f"{type(error).__name__}: {error}")
        return Step("kubectl patch httproute", done.returncode, (done.stdout + done.stderr).strip()[-500:])

    def close(self) -> None:
        """The release's kubeconfig goes when the release ends (canary_deploy's finally)."""
        self.kubeconfig.unlink(missing_ok=True)

    def end_to_end(self, job: dict[str, Any]) -> tuple[bool, str]:
        try:
            kubectl = self._kubectl()
        except RuntimeError as error:  # a failed check, never an exception mid-promotion
            return False, str(error)
        return check_job.run(job, kubectl=kubectl)

    def start_load(self, job: dict[str, Any], weight: int) -> None:
        name = check_job.start(job, kubectl=self._kubectl())
        print(f"canary: load for the {weight} % step: {name}", flush=True)

    def stop_load(self, job: dict[str, Any]) -> None:
        # Never raises: it runs in the release's finally, also on a signal; a Job it misses ends at its
        # activeDeadlineSeconds.
        try:
            ok, detail = check_job.stop(job["metadata"]["namespace"], kubectl=self._kubectl())
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            ok, detail = False, f"{type(error).__name__}: {error}"
        print(f"canary: load deleted: {detail}" if ok else f"canary: deleting the load failed: {detail}")

    def verify(self, checks: dict[str, Any], track: str) -> list[Step]:
        steps = [run("rollout check", [str(HERE / "verify-rollout.sh"), self.stack])]
        url, address = stack_output(self.stack, "museUrl"), stack_output(self.stack, "museGatewayAddress")
        steps.append(run("smoke check", [str(HERE / "smoke-check.sh"), url, address]))
        if track in checks:
            ok, detail = self.end_to_end(checks[track])
            steps.append(
                Step("end-to-end check (POST /api/v1/evaluate in the cluster)", 0 if ok else 1, detail)
            )
        return steps

    def token(self) -> str:
        # The az session of azure/login cannot renew itself after GitHub's ~5-minute assertion expired: sign
        # in again from the refreshed federated-token file first (verify-rollout.sh does the same).
        if self._token is None or time.monotonic() - self._token[0] > 20 * 60:
            if os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
                subprocess.run(
                    [str(HERE / "az-login-federated.sh")], check=True, capture_output=True, timeout=120
                )
            self._token = (time.monotonic(), az_token())
        return self._token[1]

    def metrics_access(self, version: str = "") -> None:
        """Queries before anything changes: a deploy identity without Monitoring Data Reader on the
        workspace fails here with the fix, not mid-canary after the candidate is up (AccessDenied); and the
        gate's own queries for `version` (the candidate: no data yet), counts at a `time` as a check sends
        them, so a function or parameter the workspace refuses (an HTTP 400, a query error) fails here."""
        source = self._prometheus()
        try:
            source.query(ACCESS_QUERY)
            for kind, promql in queries(version).items() if version else ():
                try:
                    scalar(source.query(promql, at=None if kind == "interval_end" else time.time()))
                except (AccessDenied, QueryUnavailable):
                    raise
                except (RuntimeError, urllib.error.HTTPError) as error:
                    raise RuntimeError(
                        f"the Azure Monitor workspace refused the canary gate's {kind} query before anything "
                        f"changed: {error}; the query: {promql}"
                    ) from None
            if version:
                evaluates_at_time(source)
        except QueryUnavailable as error:
            raise RuntimeError(
                f"the Azure Monitor workspace did not answer before anything changed ({error}): nothing "
                "was changed; re-run the job (docs/runbook.md, Canary)"
            ) from None

    def _prometheus(self) -> PrometheusSource:
        if self._source is None:
            endpoint = stack_output(self.stack, self.prometheus_output)
            if not endpoint:
                raise RuntimeError(f"the stack has no output {self.prometheus_output}: no metrics to gate on")
            # A Retry-After is honoured only within the release's deadline (the supervisor's, read at each
            # wait: an abort runs to the hard deadline).
            self._source = PrometheusSource(endpoint, token=self.token, remaining=_remaining)
        return self._source

    def sample(self, version: str) -> Sample:
        return sample_from(self._prometheus().query, version)

    def converged(self, cwd: str | None = None) -> Step:
        return converged(self.stack, pulumi, run, cwd)  # type: ignore[no-any-return]

    def checkout(self, commit: str) -> str:
        """The deployed commit in its own worktree with its own locked environment (deployed-venv.sh)."""
        worktree = Path(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir()) / f"previous-{commit[:12]}"
        if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], check=False).returncode != 0:
            run(
                "git fetch (previous commit)", ["git", "fetch", "--no-tags", "--depth", "1", "origin", commit]
            )
        if not worktree.exists():
            added = run("git worktree add", ["git", "worktree", "add", "--detach", str(worktree), commit])
            if not added.ok:
                raise RuntimeError(f"cannot check out {commit}: {added.output[-500:]}")
        venv = run("deployed commit's environment", [str(HERE / "deployed-venv.sh"), str(worktree)])
        if not venv.ok:
            raise RuntimeError(f"cannot install {commit}'s environment: {venv.output[-500:]}")
        return str(worktree)


def previous_commit(stack: str) -> str | None:
    """The commit of the stack's last successful main.yml update (update_message.py), before this release."""
    result = subprocess.run(
        pulumi("stack", "history", "--stack", stack, "--json", "--page-size", "100"),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"pulumi stack history --stack {stack} failed: {result.stderr.strip()[-2000:]}")
    return last_commit(json.loads(result.stdout or "[]"))


def last_commit(updates: list[dict[str, Any]]) -> str | None:
    """The commit of the newest successful update whose message commit_of reads (a promotion, a release, a
    rollback, a person's runbook rollback); a canary's intermediate updates are skipped."""
    for update in updates:
        if update.get("kind") == "update" and update.get("result") == "succeeded":
            commit = commit_of(update.get("message", ""))
            if commit:
                return commit
    return None


def plain_release(stack: str, image: str, commit: str, policy_packs: list[str]) -> tuple[str, str]:
    """The release without a canary, then the convergence check: every successful release gets one, also
    the canary's fallback (first deploy, same image)."""
    result, text = deploy(stack, image, commit, policy_packs)
    if result == RELEASED:
        check = converged(stack, pulumi, run)
        text += f"\n- {check.describe()}\n"
        if not check.ok:
            result = CONVERGENCE_UNKNOWN if check.interrupted else NOT_CONVERGED
    return result, text


def canary_deploy(
    stack: str, image: str, commit: str, policy_packs: list[str], prometheus_output: str, hard_deadline: float
) -> tuple[str, str]:
    """A release as a canary (release_canary.py), or the plain release when there is nothing to compare
    with (first deploy, or the same image again: a program-only change)."""
    _, previous = recorded_deployment(stack)
    if previous is None or previous == image:
        return plain_release(stack, image, commit, policy_packs)
    # Read strictly (stack_outputs raises on any pulumi failure: main() exits 64, nothing changed): only a
    # stack that answers and has no such output goes out without a canary.
    if not stack_outputs(stack).get(prometheus_output):
        # A stack last deployed before the program exported the workspace's query endpoint: nothing to gate
        # on yet. Refusing would refuse every release forever (only a release adds the output); this one goes
        # out plainly, its `pulumi up` exports the output, and the next release canaries.
        why = (
            f"the stack has no output {prometheus_output} yet (deployed before the program exported it): "
            "released without a canary; this release adds the output, the next one canaries"
        )
        print(f"::warning title=No canary ({stack})::{why}", flush=True)
        result, text = plain_release(stack, image, commit, policy_packs)
        return result, text + f"\n- no canary: {why}\n"
    if SUPERVISOR is None:
        raise RuntimeError("canary_deploy runs under main()'s supervisor")
    ctx = release_canary.Context(
        stack=stack, image=image, previous=previous, commit=commit, previous_commit=previous_commit(stack),
        supervisor=SUPERVISOR, hard_deadline=hard_deadline,
        clock=time.monotonic, sleep=time.sleep, wall=time.time,
    )  # fmt: skip
    tools = CommandTools(stack, policy_packs, prometheus_output)
    try:
        tools.metrics_access(image)
    except AccessDenied as denied:  # main(): exit 64, nothing changed, the previous release serves
        raise RuntimeError(str(denied)) from None
    try:
        result, lines = release_canary.release(ctx, tools)
    finally:
        tools.close()
    titles = {
        RELEASED: "released through the canary",
        NOT_CONVERGED: (
            "released, but the stack does NOT converge (a perpetual diff): fix it before the next release"
        ),
        CONVERGENCE_UNKNOWN: (
            "released, but the convergence check was interrupted (the deadline or a signal): run "
            "`pulumi preview --expect-no-changes` by hand"
        ),
        release_canary.ABORTED: "FAILED, the canary aborted and the previous release was restored",
        release_canary.LOCKED: (
            "NOT STARTED, the stack is locked: nothing changed (docs/runbook.md, Cancelled deploy)"
        ),
        ROLLBACK_FAILED: "FAILED, and the rollback FAILED: act now (docs/runbook.md, Rollback)",
    }
    running = image if result in (RELEASED, NOT_CONVERGED, CONVERGENCE_UNKNOWN) else previous
    now = running_cell(running) if result != ROLLBACK_FAILED else "unknown: see below"
    text = "\n".join(
        [
            f"### Deploy `{stack}`: {titles[result]}",
            "",
            "| | image | program |",
            "|---|---|---|",
            f"| before this release | `{previous}` | `{ctx.previous_commit or 'unknown'}` |",
            f"| this release | `{image}` | `{commit}` |",
            f"| running now | {now} | |",
            "",
            *lines,
        ]
    )
    return result, text + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--image-tag", required=True, help="the digest to release (sha256:<64 hex>)")
    parser.add_argument("--commit", required=True, help="the commit being released (recorded in the update)")
    parser.add_argument("--policy-pack", action="append", default=[], help="passed to pulumi up (repeatable)")
    parser.add_argument(
        "--canary", action="store_true", help="release through the canary (release_canary.py)"
    )
    parser.add_argument(
        "--prometheus-output",
        default="prometheusQueryEndpoint",
        help="the stack output with the Azure Monitor workspace's Prometheus query endpoint",
    )
    parser.add_argument(
        "--job-timeout-minutes",
        type=float,
        default=JOB_TIMEOUT_MINUTES,
        help="the job's timeout-minutes; the deadlines count from JOB_STARTED_AT within it",
    )
    parser.add_argument("--deadline-minutes", type=float, help="shortens the release's deadline (from now)")
    parser.add_argument("--hard-deadline-minutes", type=float, help="shortens the hard deadline (from now)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not DIGEST.match(args.image_tag):
        print(f"::error title=Digest::'{args.image_tag}' is not sha256:<64 hex>", flush=True)
        return 64
    # Before anything changes: a stack with a committed placeholder (Pulumi.prod.yaml's) is not deployed for
    # real (placeholders.py says why); the offline plan and the tests still accept it.
    blocked = placeholder_problem(args.stack)
    if blocked:
        print(f"::error title=Placeholders ({args.stack})::{' '.join(blocked.split())}", flush=True)
        return 64
    global SUPERVISOR, HARD_DEADLINE
    try:
        release_seconds, hard_seconds = deadlines(
            args.job_timeout_minutes, job_started_at(), time.time(),
            args.deadline_minutes, args.hard_deadline_minutes,
        )  # fmt: skip
    except ValueError as error:
        print(f"::error title=Deploy ({args.stack})::{error}", flush=True)
        return 64
    if release_seconds <= 0:
        print(
            f"::error title=Deploy ({args.stack})::the job's earlier steps left no time for a release "
            f"inside its {args.job_timeout_minutes:.0f} min (the release needs its deadline plus "
            f"{ABORT_MINUTES + AFTER_HARD_DEADLINE_MINUTES} min for an abort): nothing was started",
            flush=True,
        )
        return 1
    print(
        f"deploy: {release_seconds / 60:.1f} min to decide the release, {hard_seconds / 60:.1f} min for an "
        "abort (from the job's start and its timeout)",
        flush=True,
    )
    start = time.monotonic()
    SUPERVISOR = Supervisor(start + release_seconds)
    HARD_DEADLINE = start + hard_seconds
    SUPERVISOR.install()
    try:
        # What a killed update left (pending operations) is cleared before anything else (engine.py).
        recovered = recover(args.stack, pulumi, run)
        if recovered:
            print(f"::warning title=Recovered ({args.stack})::{recovered.splitlines()[0]}", flush=True)
            append("GITHUB_STEP_SUMMARY", f"#### Recovered an interrupted update\n\n{recovered}\n\n")
        if args.canary:
            result, text = canary_deploy(
                args.stack,
                args.image_tag,
                args.commit,
                args.policy_pack,
                args.prometheus_output,
                HARD_DEADLINE,
            )
        else:
            result, text = plain_release(args.stack, args.image_tag, args.commit, args.policy_pack)
    except Cancelled as error:
        print(f"::error title=Deploy ({args.stack})::{error}", flush=True)
        append("GITHUB_STEP_SUMMARY", f"### Deploy `{args.stack}`: stopped ({error})\n")
        return 1
    except (RuntimeError, ValueError) as error:  # refused before anything changed (access, state, config)
        print(f"::error title=Deploy ({args.stack})::{error}", flush=True)
        append("GITHUB_STEP_SUMMARY", f"### Deploy `{args.stack}`: refused\n\n{error}\n")
        return 64
    except Exception as error:  # a timeout, an HTTP error, a bug: still a summary, exit 1
        what = f"{type(error).__name__}: {error}"
        print(f"::error title=Deploy ({args.stack})::stopped by an unexpected error: {what}", flush=True)
        append(
            "GITHUB_STEP_SUMMARY",
            f"### Deploy `{args.stack}`: FAILED, stopped by an unexpected error\n\n`{what}`\n\nThe log above "
            "shows the last command; `pulumi stack history` and docs/runbook.md (Canary, Rollback) say what "
            "the stack runs now.\n",
        )
        return 1
    append("GITHUB_STEP_SUMMARY", text)
    url = stack_output(args.stack, "museUrl") if result != ROLLBACK_FAILED else ""
    address = stack_output(args.stack, "museGatewayAddress") if result != ROLLBACK_FAILED else ""
    append("GITHUB_OUTPUT", f"result={result}\nmuseUrl={url}\nmuseGatewayAddress={address}\n")
    host = re.match(r"https://([^/:]+)", url)
    if host:  # a report, never a gate: DNS is set by a person once the Gateway has its address
        level, message = public_dns_report(host.group(1), address)
        print(f"::{level} title=Public DNS ({args.stack})::{message}", flush=True)
        append("GITHUB_STEP_SUMMARY", f"\n#### Public DNS (not a gate)\n\n{message}\n")
    if result != RELEASED:
        print(f"::error title=Deploy ({args.stack})::{text.splitlines()[0].removeprefix('### ')}", flush=True)
    return EXIT_CODES[result]


if __name__ == "__main__":
    sys.exit(main())
