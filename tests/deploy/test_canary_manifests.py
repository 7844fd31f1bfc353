"""The canary's objects (components/muse_workload/manifests.py, evaluate_check.py): a candidate Deployment and
Service next to the stable ones, the HTTPRoute's weights, the end-to-end check Job, and that the two tracks
never select each other's pods. The end-to-end check script runs for real against a real Muse on loopback,
with broken stand-ins as its negative controls."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.muse_workload import evaluate_check, manifests
from muse.contract import secret_environment
from stack.args import stack_workload_spec
from stack.config import load_stack_config
from stack.files import read_stack
from tests import loopback
from tests.deploy import crd_validation, gateway_api
from tests.muse_process import muse_serving

KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
CANDIDATE_TAG = "sha256:" + "b" * 64
TOKEN = "release-check-" + "x" * 32


def canary_spec(stack: str = "prod", weight: int = 10) -> manifests.WorkloadSpec:
    return replace(stack_workload_spec(stack), candidate_image_tag=CANDIDATE_TAG, candidate_weight=weight)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_without_a_candidate_the_workload_is_the_single_track_it_was() -> None:
    objects = manifests.manifests(stack_workload_spec("prod"))
    assert not any(name.startswith("candidate") for name in objects)
    [ref] = objects["httproute"]["spec"]["rules"][0]["backendRefs"]
    assert ref["name"] == manifests.SERVICE and "weight" not in ref


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_the_route_splits_by_weight_between_the_two_services(weight: int) -> None:
    refs = manifests.http_route(canary_spec(weight=weight))["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {
        manifests.SERVICE: 100 - weight,
        manifests.CANDIDATE: weight,
    }


def test_tracks_never_select_each_others_pods() -> None:
    objects = manifests.manifests(canary_spec())
    pods = {
        key: objects[key]["spec"]["template"]["metadata"]["labels"]
        for key in ("deployment", "candidatedeployment")
    }
    for key, other in (("deployment", "candidatedeployment"), ("candidatedeployment", "deployment")):
        selector = objects[key]["spec"]["selector"]["matchLabels"]
        assert _matches(selector, pods[key]) and not _matches(selector, pods[other])
    for service, deployment in (("service", "deployment"), ("candidateservice", "candidatedeployment")):
        selector = objects[service]["spec"]["selector"]
        assert _matches(selector, pods[deployment])
        assert not _matches(
            selector, pods["candidatedeployment" if deployment == "deployment" else "deployment"]
        )
    # the stable autoscaler and disruption budget see only the stable pods (via the stable selector)
    pdb = objects["poddisruptionbudget"]["spec"]["selector"]["matchLabels"]
    assert _matches(pdb, pods["deployment"]) and not _matches(pdb, pods["candidatedeployment"])
    assert (
        objects["candidatehorizontalpodautoscaler"]["spec"]["scaleTargetRef"]["name"] == manifests.CANDIDATE
    )
    # Negative control: the candidate under the stable name label would be matched by the stable selector.
    shared = {**pods["candidatedeployment"], **manifests.selector_labels()}
    assert _matches(objects["deployment"]["spec"]["selector"]["matchLabels"], shared)


def test_each_track_reports_its_own_image_as_its_version() -> None:
    objects = manifests.manifests(canary_spec())

    def version(key: str) -> str:
        env = objects[key]["spec"]["template"]["spec"]["containers"][0]["env"]
        return next(e["value"] for e in env if e["name"] == "MUSE_VERSION")

    assert version("candidatedeployment") == CANDIDATE_TAG
    assert version("deployment") == stack_workload_spec("prod").image_tag
    image = objects["candidatedeployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@" + CANDIDATE_TAG)


def test_the_network_policy_admits_gateway_and_check_pods_to_both_tracks_only() -> None:
    spec = canary_spec()
    objects = manifests.manifests(spec)
    policy = objects["networkpolicy"]["spec"]
    for key in ("deployment", "candidatedeployment"):
        assert _matches(
            policy["podSelector"]["matchLabels"], objects[key]["spec"]["template"]["metadata"]["labels"]
        )
    sources = policy["ingress"][0]["from"]
    job_labels = evaluate_check.job(spec, manifests.CANDIDATE)["spec"]["template"]["metadata"]["labels"]
    same_namespace = [s for s in sources if "namespaceSelector" not in s]
    assert [s["podSelector"]["matchLabels"] for s in same_namespace] == [manifests.EVALUATE_CHECK_LABEL]
    assert _matches(manifests.EVALUATE_CHECK_LABEL, job_labels)
    # The check pod is not itself a Muse pod (the policy does not open it up).
    assert not _matches(policy["podSelector"]["matchLabels"], job_labels)


@pytest.mark.parametrize(("tag", "weight"), [("", 10), (CANDIDATE_TAG, 101), (CANDIDATE_TAG, -1)])
def test_an_impossible_canary_is_refused(tag: str, weight: int) -> None:
    with pytest.raises(ValueError, match="candidate_weight"):
        replace(stack_workload_spec("dev"), candidate_image_tag=tag, candidate_weight=weight)


def _kubernetes_version(stack: str) -> str:
    version = load_stack_config(stack, read_stack(stack).config).kubernetes_version
    return version if version.count(".") == 2 else f"{version}.0"


@pytest.mark.slow  # kubernetes-validate
def test_candidate_objects_and_the_check_job_pass_kubernetes_validate_strict(tmp_path: Path) -> None:
    spec = canary_spec()
    objects = manifests.manifests(spec)
    docs = [
        objects[k] for k in ("candidatedeployment", "candidateservice", "candidatehorizontalpodautoscaler")
    ]
    jobs = [evaluate_check.job(spec, track) for track in (manifests.CANDIDATE, manifests.DEPLOYMENT)]
    for job in jobs:  # kubernetes-validate names what it checks; `kubectl create` fills generateName's name
        job["metadata"]["name"] = job["metadata"]["generateName"] + "x1"
    docs += jobs
    broken = copy.deepcopy(docs[-1])
    broken["spec"]["template"]["spec"]["containers"][0]["comand"] = ["python"]  # negative control: typo
    files = []
    for index, doc in enumerate([*docs, broken]):
        path = tmp_path / f"{index}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(path)
    version = _kubernetes_version("prod")

    def validate(paths: list[Path]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", version, *map(str, paths)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip

    good = validate(files[:-1])
    assert good.returncode == 0, good.stdout + good.stderr
    assert validate(files[-1:]).returncode != 0


def test_the_weighted_route_passes_the_gateway_api_crd_schema() -> None:
    schema = gateway_api.schemas_for(_kubernetes_version("prod"))["HTTPRoute"]
    route = manifests.http_route(canary_spec(weight=50))
    assert crd_validation.problems(schema, route) == []
    broken = copy.deepcopy(route)
    broken["spec"]["rules"][0]["backendRefs"][1]["weight"] = 1_000_001  # over the CRD's maximum
    assert crd_validation.problems(schema, broken)


def test_the_check_job_runs_as_muse_with_the_vault_secret_and_no_api_token() -> None:
    spec = canary_spec()
    job = evaluate_check.job(spec, manifests.CANDIDATE)
    pod = job["spec"]["template"]["spec"]
    deployment_pod = manifests.deployment(spec, manifests.CANDIDATE)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == spec.service_account
    assert pod["automountServiceAccountToken"] is False
    assert [v["csi"]["volumeAttributes"] for v in pod["volumes"]] == [
        {"secretProviderClass": manifests.SECRET_PROVIDER_CLASS}
    ]
    container = pod["containers"][0]
    assert container["securityContext"] == deployment_pod["containers"][0]["securityContext"]
    assert container["image"] == deployment_pod["containers"][0]["image"]
    assert container["command"][3] == evaluate_check.service_url(spec, manifests.CANDIDATE)
    assert job["spec"]["backoffLimit"] == 0


# --- the check script, run for real ---------------------------------------------------------------------


def _run_check(url: str, token_file: Path) -> subprocess.CompletedProcess[str]:
    command = evaluate_check.job(canary_spec(), manifests.CANDIDATE)["spec"]["template"]["spec"][
        "containers"
    ][0]["command"]
    args = [sys.executable, "-c", command[2], url, str(token_file), *command[5:]]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def real_muse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**secret_environment(TOKEN), "MUSE_ENV": "test", "MUSE_LOG_LEVEL": "WARNING"}
    with muse_serving(tmp_path_factory.mktemp("muse"), env) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "muse-api-token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.mark.slow  # a real Muse process
def test_the_check_passes_against_the_real_service(real_muse: str, token_file: Path) -> None:
    result = _run_check(real_muse, token_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: {evaluate_check.REQUESTS} POST")


@pytest.mark.slow  # a real Muse process
def test_the_check_fails_with_the_wrong_token(real_muse: str, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-" + "y" * 32)
    result = _run_check(real_muse, wrong)
    assert result.returncode == 1 and "answered 401" in result.stdout


class _Stand_in(BaseHTTPRequestHandler):
    """A release whose health checks pass and whose evaluate is broken (`mode`)."""

    mode = "500"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = (
            (500, {"error": "internal"})
            if self.mode == "500"
            else (200, {"summary": {"resources": 1}, "violations": []})
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("mode", "says"), [("500", "answered 500"), ("empty", "without MUSE-TAG-001")])
def test_negative_controls_a_broken_evaluate_fails_the_check(mode: str, says: str, token_file: Path) -> None:
    handler = type("Handler", (_Stand_in,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    loopback.start(server)
    try:
        result = _run_check(f"http://127.0.0.1:{server.server_address[1]}", token_file)
    finally:
        server.shutdown()
    assert result.returncode == 1 and says in result.stdout, result.stdout + result.stderr
