"""The canary's load: a Job sending ~2 valid, authenticated requests/s (POST /api/v1/evaluate of the
end-to-end check's canned inventory, GET /api/v1/policies) straight to the CANDIDATE's Service during one
canary step, so the gate (scripts/ci/canary_gate.py) has the candidate's requests to judge when no user
reaches it. scripts/ci/release_canary.py starts one per step and deletes it when the step ends.

It is the end-to-end check's pod (evaluate_check.py: Muse's service account, the vault token through the
CSI mount, the candidate's image, EVALUATE_CHECK_LABEL for the NetworkPolicy) with a standard-library
script: one request at a time, at most RATE_PER_SECOND x its duration (as long as the step can last), stopping
at its first 4xx (a wrong load only dilutes the 5xx ratio); activeDeadlineSeconds, backoffLimit 0 and
ttlSecondsAfterFinished bound the Job. Why: docs/architecture/ci-cd.md#the-canarys-load.
"""

from __future__ import annotations

import json
from typing import Any

from components.muse_workload import evaluate_check, manifests
from muse.contract import EVALUATE_PATH, POLICIES_PATH

# 2 requests/s: each check judges one 30 s scrape interval (canary_gate.queries), ~60 load requests, so a
# single 5xx makes that check bad (1.7 % > 1 %) and the gate aborts only when the next interval has one too
# (two bad checks in a row); the p95 is taken over those ~60. A one-resource evaluate costs well under the 5
# ms of CPU of a 200-resource one (docs/benchmarks.md, "Evaluate throughput"), so the load takes < 1 % of a
# candidate pod's core and never moves its autoscaler.
RATE_PER_SECOND = 2
# How long a step can last: its own time, or until a check can judge its own traffic at the longest
# ingestion lag the gate waits for if that is later (SETTLE_SECONDS: two scrapes, 120 s of lag, a check), and
# one check more (CHECK_SECONDS) (scripts/ci/canary.py Plan.longest_step_seconds, canary_gate.Thresholds);
# the load covers it so every check of the step, held ones too, sees fresh requests.
# tests/deploy/test_canary_load.py holds these to the gate's own figures.
SETTLE_SECONDS = 210
CHECK_SECONDS = 30
# The pod's start before its first request: scheduling, the CSI driver's mount of the token from Key Vault
# (seconds), the image already on the node (the candidate's pods pulled it). activeDeadlineSeconds allows it.
START_SECONDS = 60
LOAD_LABEL = {"muse.load": "canary"}  # what scripts/ci/check_job.py deletes the load Jobs by

# Runs in the Muse image: standard library only. argv: base URL, token file, requests per second, seconds.
SCRIPT = """
import json, sys, time, urllib.error, urllib.request
url, token_file, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
token = open(token_file, encoding="utf-8").read().strip()
limit, interval = int(rate * seconds), 1.0 / rate
calls = [("POST", "EVALUATE?failOn=high", INVENTORY), ("GET", "POLICIES", None)]
answers, sent = {}, 0
start = time.monotonic()
due = start
while sent < limit and time.monotonic() - start < seconds:
    time.sleep(max(0.0, due - time.monotonic()))
    method, path, body = calls[sent % len(calls)]
    request = urllib.request.Request(url + path, data=body, method=method, headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            status = str(response.status)
    except urllib.error.HTTPError as error:
        status = str(error.code)
    except (OSError, ValueError) as error:
        status = type(error).__name__
    sent += 1
    key = method + " " + path.split("?")[0] + " " + status
    answers[key] = answers.get(key, 0) + 1
    if status.startswith("4"):
        print("STOP: " + key + ": the load itself is wrong (token, body or rate); its requests would only "
              "dilute the gate's 5xx ratio. " + json.dumps({"sent": sent, "answers": answers}), flush=True)
        sys.exit(2)
    due = max(due + interval, time.monotonic())
print("LOAD: " + json.dumps({"sent": sent, "answers": answers}), flush=True)
"""


def script() -> str:
    """The load script with the routes and the end-to-end check's canned inventory in it."""
    inventory = json.dumps(json.dumps(evaluate_check.CANNED_INVENTORY, separators=(",", ":")))
    return (
        SCRIPT.replace("INVENTORY", f"{inventory}.encode()")
        .replace("EVALUATE", EVALUATE_PATH)
        .replace("POLICIES", POLICIES_PATH)
    )


def longest_step_seconds(step_seconds: int) -> int:
    """How long a canary step of `step_seconds` (stack config canaryStepSeconds) can last: the stepper's
    Plan.longest_step_seconds. stack/config.py budgets the release's steps with it."""
    return max(step_seconds, SETTLE_SECONDS) + CHECK_SECONDS


def duration_seconds(spec: manifests.WorkloadSpec) -> int:
    """How long one step's load sends: as long as the step can last."""
    return longest_step_seconds(spec.canary_step_seconds)


def job(spec: manifests.WorkloadSpec) -> dict[str, Any]:
    """One step's load Job against the candidate's Service, with the check Job's pod (account, secret mount,
    security context, node selector) and the candidate's image."""
    check = evaluate_check.job(spec, manifests.CANDIDATE)
    pod = check["spec"]["template"]["spec"]
    seconds = duration_seconds(spec)
    container = {
        **pod["containers"][0],
        "name": "canary-load",
        "command": [
            "python", "-c", script(), evaluate_check.service_url(spec, manifests.CANDIDATE),
            evaluate_check.TOKEN_FILE, str(RATE_PER_SECOND), str(seconds),
        ],
    }  # fmt: skip
    instance = {"app.kubernetes.io/instance": f"{manifests.APP}-{spec.environment}"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"{manifests.APP}-canary-load-",
            "namespace": spec.namespace,
            "labels": {**LOAD_LABEL, **instance},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": seconds + START_SECONDS,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {**check["spec"]["template"]["metadata"]["labels"], **LOAD_LABEL}},
                "spec": {**pod, "containers": [container]},
            },
        },
    }
