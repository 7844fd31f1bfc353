"""The canary's load Job (components/muse_workload/canary_load.py): bounded in rate, count and time on the
rendered manifest, run like the end-to-end check (Muse's account, the vault token, the candidate's image,
Pod Security `restricted`), valid for the cluster (kubernetes-validate, checkov), and its script run for real
against a real Muse on loopback: every request valid and counted as a success by the service's own metrics
(what the gate reads), never more requests than its bound, and a load that is itself wrong stops at once."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.muse_workload import canary_load, evaluate_check, manifests
from muse.app import PRECREATED_ROUTES
from stack.args import stack_workload_spec
from stack.config import load_stack_config
from stack.files import REPO_ROOT, read_stack
from tests.muse_process import free_port, muse_serving

sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))

import check_job
from canary import Plan
from canary_gate import THRESHOLDS

from muse.contract import secret_environment
from stack.environments import ENVIRONMENTS
from tests import loopback

KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
CANDIDATE_TAG = "sha256:" + "c" * 64
TOKEN = "canary-load-" + "z" * 32
# The most a load Job may send: the rate the gate needs, for the longest step the stack config allows
# (canaryStepSeconds <= 1800, stack/config.py) plus the gate's hold.
MAX_RATE = 2.0
MAX_STEP_SECONDS = 1800


def spec(stack: str = "dev", step_seconds: int | None = None) -> manifests.WorkloadSpec:
    base = stack_workload_spec(stack)
    return replace(
        base, candidate_image_tag=CANDIDATE_TAG, candidate_weight=10,
        canary_step_seconds=step_seconds or base.canary_step_seconds,
    )  # fmt: skip


def container(job: dict[str, Any]) -> dict[str, Any]:
    [only] = job["spec"]["template"]["spec"]["containers"]
    return dict(only)


def bound_problems(job: dict[str, Any], step_seconds: int) -> list[str]:
    """What makes a load Job unbounded or wrongly timed (read from its manifest, not from a clock)."""
    command = container(job)["command"]
    rate, seconds = float(command[5]), float(command[6])
    found = []
    if not 0 < rate <= MAX_RATE:
        found.append(f"rate {rate}/s outside (0, {MAX_RATE}]")
    longest = Plan.of([100], step_seconds, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
    if seconds != longest.longest_step_seconds:  # the gate's own figure for the step, held ones too
        found.append(f"duration {seconds} s is not the longest a {step_seconds} s step lasts")
    deadline = job["spec"].get("activeDeadlineSeconds")
    if not deadline or deadline > seconds + canary_load.START_SECONDS:
        found.append(f"activeDeadlineSeconds {deadline} does not end the pod soon after its duration")
    if job["spec"].get("backoffLimit") != 0:
        found.append("a failed load pod would be started again (backoffLimit != 0)")
    if not job["spec"].get("ttlSecondsAfterFinished"):
        found.append("a finished Job is never removed (no ttlSecondsAfterFinished)")
    if "while sent < limit" not in command[2] or "limit, interval = int(rate * seconds)" not in command[2]:
        found.append("the script does not bound its count by rate x duration")
    return found


@pytest.mark.parametrize("stack", ENVIRONMENTS)
@pytest.mark.parametrize("step_seconds", [None, 60, MAX_STEP_SECONDS])
def test_the_load_is_bounded_in_rate_count_and_time(stack: str, step_seconds: int | None) -> None:
    workload = spec(stack, step_seconds)
    job = canary_load.job(workload)
    assert bound_problems(job, workload.canary_step_seconds) == []
    requests = float(container(job)["command"][5]) * float(container(job)["command"][6])
    assert requests <= MAX_RATE * (MAX_STEP_SECONDS + THRESHOLDS.check_seconds)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda j: container(j)["command"].__setitem__(5, "200"), "rate"),
        (lambda j: container(j)["command"].__setitem__(6, "60"), "duration"),
        (lambda j: j["spec"].pop("activeDeadlineSeconds"), "activeDeadlineSeconds"),
        (lambda j: j["spec"].__setitem__("backoffLimit", 6), "backoffLimit"),
        (
            lambda j: container(j)["command"].__setitem__(
                2, canary_load.script().replace("sent < limit", "1")
            ),
            "count",
        ),
    ],
)
def test_negative_control_an_unbounded_load_is_caught(change: Callable[[Any], Any], says: str) -> None:
    job = copy.deepcopy(canary_load.job(spec()))
    change(job)
    assert any(says in p for p in bound_problems(job, spec().canary_step_seconds))


def test_the_load_lasts_as_long_as_the_gate_can_hold_a_step() -> None:
    assert (
        THRESHOLDS.settle_seconds,
        THRESHOLDS.check_seconds,
    ) == (canary_load.SETTLE_SECONDS, canary_load.CHECK_SECONDS)
    for step in (60, THRESHOLDS.settle_seconds, 600):  # shorter than the settle time, equal, longer
        plan = Plan.of([10, 100], step, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
        assert canary_load.duration_seconds(spec(step_seconds=step)) == plan.longest_step_seconds


def test_the_load_sends_only_routes_the_service_judges_a_release_on() -> None:
    """Both routes' series exist from the pod's start (muse/app.py), and neither is a probe route the gate
    leaves out, so every load request is one the gate counts."""
    sent = {("/api/v1/evaluate", "POST"), ("/api/v1/policies", "GET")}
    assert {(canary_load.EVALUATE_PATH, "POST"), (canary_load.POLICIES_PATH, "GET")} == sent
    assert sent <= set(PRECREATED_ROUTES)
    assert f'"{canary_load.EVALUATE_PATH}?failOn=high"' in canary_load.script()


def test_the_load_runs_like_the_check_against_the_candidate_service() -> None:
    workload = spec("prod")
    job = canary_load.job(workload)
    pod = job["spec"]["template"]["spec"]
    check_pod = evaluate_check.job(workload, manifests.CANDIDATE)["spec"]["template"]["spec"]
    candidate = manifests.deployment(workload, manifests.CANDIDATE)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == workload.service_account
    assert pod["automountServiceAccountToken"] is False  # the CSI driver asks for its own token
    assert pod["volumes"] == check_pod["volumes"] and pod["securityContext"] == check_pod["securityContext"]
    load = container(job)
    assert load["image"] == candidate["containers"][0]["image"]  # no new image
    security = load["securityContext"]
    assert security == candidate["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert load["resources"]["limits"] and load["resources"]["requests"]
    assert load["command"][3] == evaluate_check.service_url(workload, manifests.CANDIDATE)
    assert load["command"][4] == f"{manifests.SECRETS_MOUNT}/{manifests.API_TOKEN.name}"


def test_the_network_policy_admits_the_load_and_its_delete_never_hits_a_check_job() -> None:
    workload = spec("prod")
    job = canary_load.job(workload)
    policy = manifests.manifests(workload)["networkpolicy"]["spec"]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    admitted = [
        s["podSelector"]["matchLabels"] for s in policy["ingress"][0]["from"] if "namespaceSelector" not in s
    ]
    assert any(all(pod_labels.get(k) == v for k, v in sel.items()) for sel in admitted)
    key, _, value = check_job.LOAD_SELECTOR.partition("=")
    assert job["metadata"]["labels"][key] == value
    for track in (manifests.CANDIDATE, manifests.DEPLOYMENT):
        assert key not in evaluate_check.job(workload, track)["metadata"]["labels"]


def _kubernetes_version(stack: str) -> str:
    version = load_stack_config(stack, read_stack(stack).config).kubernetes_version
    return version if version.count(".") == 2 else f"{version}.0"


def _named(job: dict[str, Any]) -> dict[str, Any]:
    named = copy.deepcopy(job)  # `kubectl create` fills generateName's name; the validators want one
    named["metadata"]["name"] = named["metadata"]["generateName"] + "x1"
    return named


@pytest.mark.slow  # kubernetes-validate
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_load_job_passes_kubernetes_validate_strict(stack: str, tmp_path: Path) -> None:
    good = _named(canary_load.job(spec(stack)))
    broken = copy.deepcopy(good)
    broken["spec"]["template"]["spec"]["containers"][0]["comand"] = ["python"]  # negative control: typo

    def validate(doc: dict[str, Any], name: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc))
        version = _kubernetes_version(stack)
        return subprocess.run(
            [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", version, str(path)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip

    result = validate(good, "good.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert validate(broken, "broken.yaml").returncode != 0


@pytest.mark.slow  # checkov
def test_the_load_and_check_jobs_pass_checkov(tmp_path: Path, checkov: Callable[..., dict[str, Any]]) -> None:
    """Scanned with the namespace's NetworkPolicies, as they stand in the cluster: checkov's CKV2_K8S_6
    fails a pod no policy selects (the release's pods had none before manifests.check_network_policy)."""
    workload = spec("prod")
    jobs = [_named(canary_load.job(workload)), _named(evaluate_check.job(workload, manifests.CANDIDATE))]
    policies = [manifests.network_policy(workload), manifests.check_network_policy(workload)]
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "jobs.yaml").write_text(yaml.safe_dump_all([*jobs, *policies]))
    report = checkov("-d", str(tmp_path / "good"), framework="kubernetes")
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert (report["summary"]["failed"], report["summary"]["parsing_errors"], failed) == (0, 0, [])
    assert report["summary"]["passed"] > 20
    # Negative control: the same Job run privileged, as root, with a writable root file system.
    broken = copy.deepcopy(jobs[0])
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        "privileged": True, "runAsUser": 0, "readOnlyRootFilesystem": False,
    }  # fmt: skip
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "job.yaml").write_text(yaml.safe_dump(broken))
    bad = checkov("-d", str(tmp_path / "broken"), framework="kubernetes")
    assert {"CKV_K8S_16", "CKV_K8S_22"} <= {c["check_id"] for c in bad["results"]["failed_checks"]}
    # Negative control: without the release pods' own policy, CKV2_K8S_6 finds them unconfined.
    (tmp_path / "unconfined").mkdir()
    (tmp_path / "unconfined" / "jobs.yaml").write_text(yaml.safe_dump_all([*jobs, policies[0]]))
    unconfined = checkov("-d", str(tmp_path / "unconfined"), framework="kubernetes")
    assert {c["check_id"] for c in unconfined["results"]["failed_checks"]} == {"CKV2_K8S_6"}


# --- the load script, run for real on loopback -----------------------------------------------------------


@pytest.fixture(scope="module")
def real_muse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real Muse process: (API base URL, metrics URL)."""
    metrics_port = free_port()
    env = {
        "MUSE_METRICS_PORT": str(metrics_port), **secret_environment(TOKEN), "MUSE_ENV": "test",
        "MUSE_LOG_LEVEL": "WARNING", "MUSE_VERSION": CANDIDATE_TAG,
    }  # fmt: skip
    with muse_serving(tmp_path_factory.mktemp("muse"), env) as port:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"


def _run_load(url: str, token_file: Path, rate: float, seconds: float) -> subprocess.CompletedProcess[str]:
    """The Job's own command with the URL, rate and duration of this test."""
    script = container(canary_load.job(spec()))["command"][2]
    args = [sys.executable, "-c", script, url, str(token_file), str(rate), str(seconds)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    line = result.stdout.strip().splitlines()[-1]
    return dict(json.loads(line.split(": ", 1)[1] if line.startswith("LOAD") else line[line.index("{") :]))


def _counted(metrics_url: str) -> dict[tuple[str, str, str], float]:
    """muse_http_requests_total by (route, method, status) for the candidate's version, from /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    counted = {}
    pattern = re.compile(r"^muse_http_requests_total\{(.*)\} (\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if labels.get("version") == CANDIDATE_TAG:
                counted[(labels["route"], labels["method"], labels["status"])] = float(match.group(2))
    return counted


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "muse-api-token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.mark.slow  # a real Muse process
def test_the_load_against_a_real_muse_is_all_success_within_its_count(
    real_muse: tuple[str, str], token_file: Path
) -> None:
    url, metrics = real_muse
    before = _counted(metrics)
    result = _run_load(url, token_file, rate=20, seconds=1.5)  # at most 30 requests
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(result)
    assert 0 < report["sent"] <= 30
    assert set(report["answers"]) <= {"POST /api/v1/evaluate 200", "GET /api/v1/policies 200"}
    after = _counted(metrics)
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    # What the gate reads: every load request counted, as a 200, on the two routes it judges.
    assert sum(grown.values()) == report["sent"]
    assert all(status == "200" for _, _, status in grown), grown
    assert {route for route, _, _ in grown} == {canary_load.EVALUATE_PATH, canary_load.POLICIES_PATH}


@pytest.mark.slow  # a real Muse process
def test_negative_control_a_load_with_the_wrong_token_stops_at_its_first_answer(
    real_muse: tuple[str, str], tmp_path: Path
) -> None:
    """401s would add requests to the gate's denominator without ever reaching evaluate: the load stops."""
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-" + "y" * 32)
    result = _run_load(real_muse[0], wrong, rate=20, seconds=1.5)
    assert result.returncode == 2 and "STOP: POST /api/v1/evaluate 401" in result.stdout
    assert _report(result)["sent"] == 1


class _Failing(BaseHTTPRequestHandler):
    """A candidate whose every answer is a 500: the gate's business, so the load goes on and counts them."""

    served: list[str] = []  # noqa: RUF012 - the class is the test's shared counter

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.served.append(self.command)
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_a_failing_candidate_gets_the_whole_bounded_load(token_file: Path) -> None:
    handler = type("Handler", (_Failing,), {"served": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    loopback.start(server)
    try:
        result = _run_load(f"http://127.0.0.1:{server.server_address[1]}", token_file, rate=50, seconds=0.4)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(result)
    # the count bound: never more than rate x duration (20), whatever the answers
    assert 0 < report["sent"] == len(handler.served) <= 20
    assert set(report["answers"]) <= {"POST /api/v1/evaluate 500", "GET /api/v1/policies 500"}


def test_the_release_pods_reach_only_muse_and_dns() -> None:
    workload = spec("prod")
    objects = manifests.manifests(workload)
    policy = objects["checknetworkpolicy"]["spec"]

    def selected(labels: dict[str, str], selector: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    for job in (canary_load.job(workload), evaluate_check.job(workload, manifests.CANDIDATE)):
        assert selected(job["spec"]["template"]["metadata"]["labels"], policy["podSelector"]["matchLabels"])
    for key in ("deployment", "candidatedeployment"):  # never the Muse pods themselves
        labels = objects[key]["spec"]["template"]["metadata"]["labels"]
        assert not selected(labels, policy["podSelector"]["matchLabels"])
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    to_muse, to_dns = policy["egress"]
    assert to_muse["ports"] == [{"protocol": "TCP", "port": manifests.PORT}]
    for key in ("deployment", "candidatedeployment"):
        labels = objects[key]["spec"]["template"]["metadata"]["labels"]
        assert selected(labels, to_muse["to"][0]["podSelector"]["matchLabels"])
    assert {p["port"] for p in to_dns["ports"]} == {53}
