"""The end-to-end check of a release: a Kubernetes Job that POSTs a canned inventory to /api/v1/evaluate of
one track's Service (the candidate's, or the stable one's) from inside the cluster, and checks the answer.

A Job, because /healthz and /readyz answer 200 whenever the event loop answers. It runs the image it checks
as Muse's own service account with the same Key Vault secret, so the token never leaves the cluster, and it
asserts behaviour (one resource, the required-tags finding MUSE-TAG-001), not only a 200.
scripts/ci/check_job.py creates the Job, waits and reads its log.
Why: docs/architecture/ci-cd.md#the-end-to-end-check."""

from __future__ import annotations

import json
from typing import Any

from components.muse_workload import manifests
from muse.contract import EVALUATE_PATH

EXPECTED_POLICY = "MUSE-TAG-001"
# The API token as the CSI driver mounts it from Key Vault (the check and the canary's load read it).
TOKEN_FILE = f"{manifests.SECRETS_MOUNT}/{manifests.API_TOKEN.name}"
REQUESTS = 20  # also gives the metric gate a signal in a window with no user traffic (dev)
CANNED_INVENTORY: dict[str, Any] = {
    "schemaVersion": 1,
    "project": "muse",
    "stack": "release-check",
    "environment": "release-check",
    "resources": [
        {
            "urn": "urn:pulumi:release-check::muse::azure-native:storage:StorageAccount::untagged",
            "type": "azure-native:storage:StorageAccount",
            "name": "untagged",
            "custom": True,
            "properties": {},
        }
    ],
}
# Runs in the Muse image: standard library only. argv: base URL, token file, expected policy, requests.
SCRIPT = """
import json, sys, urllib.error, urllib.request
url, token_file, expected, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
token = open(token_file, encoding="utf-8").read().strip()
body = INVENTORY
for attempt in range(count):
    request = urllib.request.Request(
        url + "EVALUATE?failOn=high", data=body, method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"FAIL: POST EVALUATE answered {error.code} (request {attempt + 1} of {count})")
        sys.exit(1)
    except (OSError, ValueError) as error:
        print(f"FAIL: POST EVALUATE: {type(error).__name__}: {error}")
        sys.exit(1)
    found = sorted({v.get("policyId") for v in answer.get("violations", [])})
    if answer.get("summary", {}).get("resources") != 1 or expected not in found:
        print(f"FAIL: evaluate answered 200 without {expected} for the canned inventory (found {found})")
        sys.exit(1)
print(f"OK: {count} POST EVALUATE answered 200 with {expected}")
"""


def script() -> str:
    """The check script with the route and the canned inventory in it."""
    inventory = json.dumps(json.dumps(CANNED_INVENTORY, separators=(",", ":")))
    return SCRIPT.replace("INVENTORY", f"{inventory}.encode()").replace("EVALUATE", EVALUATE_PATH)


def service_url(spec: manifests.WorkloadSpec, track: str) -> str:
    return f"http://{track}.{spec.namespace}.svc.cluster.local:{manifests.SERVICE_PORT}"


def job(spec: manifests.WorkloadSpec, track: str) -> dict[str, Any]:
    """The Job for `track` (manifests.DEPLOYMENT or manifests.CANDIDATE), run with that track's image."""
    image_tag = spec.candidate_image_tag if track == manifests.CANDIDATE else spec.image_tag
    pod = manifests.deployment(spec, track)["spec"]["template"]["spec"]
    token_file = TOKEN_FILE
    container = {
        "name": "evaluate-check",
        "image": manifests.image_reference(spec.azure.registry_login_server, image_tag),
        "command": [
            "python", "-c", script(), service_url(spec, track), token_file, EXPECTED_POLICY, str(REQUESTS),
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "securityContext": pod["containers"][0]["securityContext"],
        "volumeMounts": [{"name": "secrets-store", "mountPath": manifests.SECRETS_MOUNT, "readOnly": True}],
    }  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"{manifests.APP}-evaluate-check-",
            "namespace": spec.namespace,
            "labels": {
                **manifests.EVALUATE_CHECK_LABEL,
                "app.kubernetes.io/instance": f"{manifests.APP}-{spec.environment}",
            },
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 180,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {
                    "labels": {**manifests.EVALUATE_CHECK_LABEL, manifests.WORKLOAD_IDENTITY_USE: "true"}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": pod["serviceAccountName"],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "nodeSelector": pod["nodeSelector"],
                    "securityContext": pod["securityContext"],
                    "containers": [container],
                    "volumes": [v for v in pod["volumes"] if v["name"] == "secrets-store"],
                },
            },
        },
    }  # fmt: skip
