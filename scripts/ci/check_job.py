"""Run the end-to-end check of one track in the cluster: create its Job (stack output `museEvaluateChecks`,
built by components/muse_workload/evaluate_check.py), wait for it to succeed or fail, return its log.

    ok, detail = check_job.run(job_manifest, kubectl=["kubectl"], timeout=240)

`kubectl create -f - -o name` creates the Job from its generateName and prints `job.batch/<name>`; the Job's
status counts `succeeded` / `failed` pods (batch/v1 JobStatus); with `backoffLimit: 0` one failed pod fails
it. The Job removes itself `ttlSecondsAfterFinished` later, so a failed one stays to be read for an hour.
The caller's kubeconfig is the release's own (deploy.py CommandTools, write-kubeconfig.sh: kubelogin, the
job's OIDC identity), kept until the release ends.
Standard library only.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

KUBECTL_TIMEOUT_SECONDS = 60.0  # each kubectl call; subprocess.run raises TimeoutExpired past it


def _kubectl(kubectl: list[str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kubectl, *args], input=stdin, capture_output=True, text=True, check=False,
        timeout=KUBECTL_TIMEOUT_SECONDS,
    )  # fmt: skip


def run(job: dict[str, Any], *, kubectl: list[str], **options: Any) -> tuple[bool, str]:
    """The check's verdict; a kubectl that hangs past KUBECTL_TIMEOUT_SECONDS (subprocess.TimeoutExpired) or
    cannot start (OSError) fails the check instead of raising out of the canary (release_canary.py aborts
    on a failed check)."""
    try:
        return _run(job, kubectl=kubectl, **options)
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"kubectl failed: {type(error).__name__}: {str(error)[:300]}"


def _run(
    job: dict[str, Any],
    *,
    kubectl: list[str],
    timeout: float = 240.0,
    poll: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    namespace = job["metadata"]["namespace"]
    created = _kubectl(kubectl, "create", "-f", "-", "-o", "name", stdin=json.dumps(job))
    if created.returncode != 0:
        return False, f"kubectl create of the check Job failed: {created.stderr.strip()[-500:]}"
    name = created.stdout.strip()  # job.batch/<name>
    start = clock()
    while clock() - start < timeout:
        status = _kubectl(
            kubectl, "get", name, "-n", namespace, "-o", "jsonpath={.status.succeeded},{.status.failed}"
        )
        succeeded, _, failed = status.stdout.strip().partition(",")
        if succeeded not in ("", "0") or failed not in ("", "0"):
            logs = _kubectl(kubectl, "logs", name, "-n", namespace, "--tail", "20")
            text = (logs.stdout or logs.stderr).strip()[-1000:]
            return succeeded not in ("", "0"), f"{name}: {text}"
        sleep(poll)
    return False, f"{name} did not finish within {timeout:.0f} s"


# --- the canary's load (components/muse_workload/canary_load.py, stack output `museCanaryLoad`) -------------

LOAD_SELECTOR = "muse.load=canary"  # canary_load.LOAD_LABEL, on the Job itself (never on the check Jobs)


def start(job: dict[str, Any], *, kubectl: list[str]) -> str:
    """Create one step's load Job and return its name (`job.batch/<name>`); it runs on its own."""
    created = _kubectl(kubectl, "create", "-f", "-", "-o", "name", stdin=json.dumps(job))
    if created.returncode != 0:
        raise RuntimeError(f"kubectl create of the load Job failed: {created.stderr.strip()[-500:]}")
    return created.stdout.strip()


def stop(namespace: str, *, kubectl: list[str]) -> tuple[bool, str]:
    """Delete every load Job of the namespace, this run's and any a killed run left, with their pods.

    By label, not by name, so a Job whose `create` answer was lost, or a killed run's, goes too.
    `--wait=false` returns once the API server accepted the deletion: it never holds an abort or a
    cancellation (the runner gives a cancelled job a few seconds). Background cascading deletes the pods
    after the Job (the kubectl default, written out); a pod that outlives a failed delete still ends at the
    Job's activeDeadlineSeconds."""
    deleted = _kubectl(
        kubectl, "delete", "job", "-n", namespace, "-l", LOAD_SELECTOR, "--cascade=background",
        "--wait=false", "--ignore-not-found",
    )  # fmt: skip
    return deleted.returncode == 0, (deleted.stdout or deleted.stderr).strip()[-500:]
