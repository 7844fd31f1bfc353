"""scripts/ci/deploy.py run for real: release, rollout check, smoke check and the automatic rollback, against
stand-ins of pulumi, kubectl, az and kubelogin that share one model of the stack and its cluster
(tests/workflows/release_tools.py, which cites the documented behaviour each follows). The smoke check is the
real scripts/ci/smoke-check.sh (curl) against a loopback server that answers for whichever image serves."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import loopback

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "scripts" / "ci" / "deploy.py"
TOOLS = Path(__file__).with_name("release_tools.py")
PREVIOUS = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class ReleaseWorkspace:
    """A deploy job's runner directory: the stand-in tools on PATH, the world file they share, the job
    summary and output files, and the environment deploy.py runs with there."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.world_file = tmp_path / "world.json"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in ("pulumi", "kubectl", "az", "kubelogin"):
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TOOLS}" {tool} "$@"\n')
            wrapper.chmod(0o755)
        self.summary = tmp_path / "summary.md"
        self.output = tmp_path / "output.txt"

    def world(self) -> dict[str, Any]:
        return json.loads(self.world_file.read_text())

    def write(self, world: dict[str, Any]) -> None:
        self.world_file.write_text(json.dumps(world))

    def update(self, **changes: Any) -> None:
        self.write({**self.world(), **changes})

    def deploy_env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "RELEASE_WORLD": str(self.world_file),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(self.output),
            "RUNNER_TEMP": str(self.dir),
            "SMOKE_RETRIES": "1",
            "SMOKE_RETRY_DELAY": "0",
            **extra,
        }
        env.pop("AZURE_FEDERATED_TOKEN_FILE", None)
        return env


class Release(ReleaseWorkspace):
    def __init__(self, tmp_path: Path, url: str) -> None:
        super().__init__(tmp_path)
        self.served: list[str | None] = []
        self.write(
            {
                "stack": "dev",
                "namespace": "muse-dev",
                "login_server": "acrmusedevm7k2.azurecr.io",
                "config": {"muse:imageTag": "0.1.0"},
                "state_image": PREVIOUS,
                "spec_image": PREVIOUS,
                "serving_image": PREVIOUS,
                "images": {},
                "history": [],
                "calls": [],
                "registry": {},
                "outputs": {
                    "resourceGroupName": "rg-muse-dev-m7k2",
                    "clusterName": "aks-muse-dev-m7k2",
                    "museNamespace": "muse-dev",
                    "museDeployment": "muse",
                    "museUrl": url,
                    "registryName": "acrmusedevm7k2",
                    "registryLoginServer": "acrmusedevm7k2.azurecr.io",
                },
            }
        )

    def run(self, image: str = NEW, *extra: str) -> subprocess.CompletedProcess[str]:
        env = self.deploy_env(MUSE_CRD_RETRY_SECONDS="0")
        args = [
            str(DEPLOY),
            "--stack",
            "dev",
            "--image-tag",
            image,
            "--commit",
            COMMIT,
            "--policy-pack",
            "policy",
        ]
        return subprocess.run(
            [*args, *extra], env=env, capture_output=True, text=True, timeout=120, check=False, cwd=self.dir
        )

    def calls(self, prefix: str = "") -> list[str]:
        return [c for c in self.world()["calls"] if c.startswith(prefix)]


def ingress_handler(holder: dict[str, Release]) -> type[BaseHTTPRequestHandler]:
    class Ingress(BaseHTTPRequestHandler):
        """What the ingress answers: /healthz of the pods that serve (503 when none do)."""

        def do_GET(self) -> None:
            world = holder["release"].world()
            serving = world.get("serving_image")
            holder["release"].served.append(serving)
            behaviour = {"healthz": 200, **world["images"].get(serving or "", {})}
            status = int(behaviour["healthz"]) if serving else 503
            body = json.dumps({"status": "ok" if status == 200 else "failing", "image": serving}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Ingress


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    holder: dict[str, Release] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), ingress_handler(holder))
    server.timeout = 5
    loopback.start(server)
    holder["release"] = Release(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    yield holder["release"]
    server.shutdown()
    server.server_close()


def up_calls(release: Release) -> list[str]:
    return release.calls("pulumi up ")


def test_success_releases_the_new_image_and_records_the_commit(release: Release) -> None:
    result = release.run()
    assert result.returncode == 0, result.stdout + result.stderr
    world = release.world()
    assert world["state_image"] == world["serving_image"] == NEW
    # The running image is recorded before anything changes.
    calls = world["calls"]
    assert calls[0].startswith("pulumi stack export --stack dev --file ")
    assert (
        calls.index(f"pulumi config set --stack dev muse:imageTag {NEW} --non-interactive --color never") > 0
    )
    [up] = up_calls(release)
    assert f"--message main {COMMIT}" in up and "--policy-pack policy" in up and "--yes" in up
    assert "--skip-preview" not in up  # the preview phase runs the policy pack before anything changes
    # A saved refresh keeps the stored inputs current, so ignored versions (set by the auto-upgrade channel)
    # are sent as AKS runs them, never as the creation version (pulumi/pulumi processIgnoreChanges).
    assert "--refresh" in up.split()
    assert any(c.startswith("kubectl rollout status deployment/muse --namespace muse-dev") for c in calls)
    assert world["history"][0]["message"] == f"main {COMMIT}"
    summary = release.summary.read_text()
    assert "### Deploy `dev`: released" in summary
    assert f"| before this release | `{PREVIOUS}` |" in summary and f"| running now | `{NEW}` |" in summary
    assert "result=released" in release.output.read_text()
    assert f"museUrl={world['outputs']['museUrl']}" in release.output.read_text()
    assert release.served == [NEW]


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_up_that_never_becomes_ready_is_rolled_back_through_pulumi_up(release: Release) -> None:
    release.update(images={NEW: {"ready": False}})
    result = release.run()
    assert result.returncode == 1, result.stdout + result.stderr
    world = release.world()
    # State records the previous image again (the failed update had checkpointed the new one) and the
    # cluster agrees; the old pods served throughout.
    assert world["state_image"] == world["spec_image"] == world["serving_image"] == PREVIOUS
    first, second = up_calls(release)
    assert f"--message main {COMMIT}" in first
    assert f"--message main {COMMIT} rollback to {PREVIOUS}" in second
    assert world["config"]["muse:imageTag"] == PREVIOUS
    assert [h["result"] for h in world["history"]] == ["succeeded", "failed"]
    summary = release.summary.read_text()
    assert "FAILED, rolled back to the previous image" in summary
    assert f"| this release | `{NEW}` |" in summary and f"| running now | `{PREVIOUS}` |" in summary
    assert "release pulumi up: failed (exit 1: the Deployment did not become ready)" in summary
    assert "failed to fully initialize or become live" in summary
    assert "infrastructure changes of this commit" in summary
    assert release.served == [PREVIOUS]  # the rollback's smoke check
    assert "::error title=Deploy (dev)::" in result.stdout


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_rollout_check_failure_is_rolled_back(release: Release) -> None:
    release.update(images={NEW: {"fails_after_ready": True}})
    result = release.run()
    assert result.returncode == 1, result.stdout + result.stderr
    world = release.world()
    assert world["state_image"] == world["serving_image"] == PREVIOUS
    assert len(up_calls(release)) == 2
    summary = release.summary.read_text()
    assert "release rollout check: failed (exit 1)" in summary
    assert "timed out waiting for the condition" in summary
    assert "rollback rollout check: passed" in summary and "rollback smoke check: passed" in summary


def test_smoke_check_failure_is_rolled_back(release: Release) -> None:
    release.update(images={NEW: {"healthz": 503}})
    result = release.run()
    assert result.returncode == 1, result.stdout + result.stderr
    world = release.world()
    assert world["state_image"] == world["serving_image"] == PREVIOUS
    # The broken version answered the release's smoke check (and its retry); the restored one the rollback's.
    assert release.served == [NEW, NEW, PREVIOUS]
    summary = release.summary.read_text()
    assert "release smoke check: failed (exit 1)" in summary
    assert "FAILED, rolled back to the previous image" in summary


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_a_failing_rollback_says_so_and_exits_3(release: Release) -> None:
    release.update(
        images={NEW: {"ready": False}},
        up_failures={"2": {"exit": 1, "error": "autorest: 429 TooManyRequests on the Key Vault"}},
    )
    result = release.run()
    assert result.returncode == 3, result.stdout + result.stderr
    world = release.world()
    assert world["state_image"] == NEW  # what the failed release checkpointed; the rollback changed nothing
    summary = release.summary.read_text()
    assert "and the rollback FAILED" in summary
    assert "rollback pulumi up: failed (exit 1)" in summary
    assert "429 TooManyRequests" in summary
    assert "result=rollback-failed" in release.output.read_text()


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_first_deploy_has_nothing_to_return_to(release: Release) -> None:
    release.update(state_image=None, spec_image=None, serving_image=None, images={NEW: {"ready": False}})
    result = release.run()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(up_calls(release)) == 1
    summary = release.summary.read_text()
    assert "| before this release | `none (first deploy)` |" in summary
    assert "first deploy of Muse: there is no previous image to return to" in summary
    assert f"| running now | `{NEW}`, not ready (the failed release: nothing to return to) |" in summary


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_first_deploy_failing_the_smoke_check_names_the_new_image_as_running(release: Release) -> None:
    """pulumi up created the Deployment and its pods serve the new image; only the smoke check failed.
    Negative control for the wording: "nothing yet" would be false here."""
    release.update(state_image=None, spec_image=None, serving_image=None, images={NEW: {"healthz": 503}})
    result = release.run()
    assert result.returncode == 2, result.stdout + result.stderr
    summary = release.summary.read_text()
    assert "release smoke check: failed" in summary
    assert f"| running now | `{NEW}` (the failed release: nothing to return to) |" in summary
    assert "nothing yet" not in summary


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_a_failure_before_the_deployment_changed_rolls_nothing_back(release: Release) -> None:
    """A mandatory policy violation stops `pulumi up` in its preview phase: the stack still runs the previous
    image, so a rollback `pulumi up` would only apply this commit's other changes."""
    release.update(images={NEW: {"policy_violation": True}})
    result = release.run()
    assert result.returncode == 1, result.stdout + result.stderr
    world = release.world()
    assert len(up_calls(release)) == 1
    assert world["state_image"] == world["serving_image"] == PREVIOUS
    summary = release.summary.read_text()
    assert "FAILED, the previous image still serves" in summary
    assert "pulumi up: failed (exit 1: a mandatory policy violation)" in summary
    assert "nothing to roll back" in summary


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_redeploying_the_running_image_has_nothing_different_to_return_to(release: Release) -> None:
    release.update(images={PREVIOUS: {"healthz": 503}})
    result = release.run(PREVIOUS)
    assert result.returncode == 2
    assert len(up_calls(release)) == 1
    assert "nothing different to return to" in release.summary.read_text()


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_rollback_is_what_restores_service(release: Release) -> None:
    """Negative control for the rollback itself: without the previous image (state lost it), the smoke-failing
    release would stay live and the job would say there is nothing to return to."""
    release.update(state_image=None, images={NEW: {"healthz": 503}})
    result = release.run()
    assert result.returncode == 2
    assert release.world()["serving_image"] == NEW


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_refuses_anything_but_a_digest(release: Release) -> None:
    result = release.run("latest")
    assert result.returncode == 64
    assert "is not sha256:<64 hex>" in result.stdout
    assert release.calls() == []


GATEWAY_HOST = "muse-release.test"  # resolves nowhere (RFC 2606): DNS does not point at the Gateway yet


@pytest.fixture
def gateway_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Release]:
    """A stack with an https host whose DNS does not exist yet (prod's first deploy, a move of the ingress):
    the Gateway at 127.0.0.1 has an HTTPS listener with the host's certificate and an HTTP listener that
    redirects, as the Gateway program declares them."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={GATEWAY_HOST}", "-addext", f"subjectAltName=DNS:{GATEWAY_HOST}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    holder: dict[str, Release] = {}
    secure = ThreadingHTTPServer(("127.0.0.1", 0), ingress_handler(holder))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    url = f"https://{GATEWAY_HOST}:{secure.server_address[1]}"

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", f"{url}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    plain = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (secure, plain):
        loopback.start(server)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(cert))
    monkeypatch.setenv("SMOKE_HTTP_URL", f"http://{GATEWAY_HOST}:{plain.server_address[1]}")
    (tmp_path / "release").mkdir()
    holder["release"] = Release(tmp_path / "release", url)
    world = holder["release"].world()
    holder["release"].update(outputs={**world["outputs"], "museGatewayAddress": "127.0.0.1"})
    yield holder["release"]
    for server in (secure, plain):
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_https_release_is_checked_at_the_gateway_before_dns_points_at_it(gateway_release: Release) -> None:
    result = gateway_release.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert gateway_release.served == [NEW]
    summary = gateway_release.summary.read_text()
    assert "### Deploy `dev`: released" in summary and "at the Gateway address `127.0.0.1`" in summary
    # Public DNS is reported, not a gate: the host resolves nowhere, so a warning names the record to set.
    assert (
        f"::warning title=Public DNS (dev)::public DNS for {GATEWAY_HOST} does not resolve" in result.stdout
    )
    assert "#### Public DNS (not a gate)" in summary
    assert "museGatewayAddress=127.0.0.1" in gateway_release.output.read_text()


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_https_release_at_a_wrong_gateway_address_fails_the_smoke_check(gateway_release: Release) -> None:
    """Negative control: the stack output names an address where no Gateway listens."""
    world = gateway_release.world()
    gateway_release.update(outputs={**world["outputs"], "museGatewayAddress": "127.0.0.2"})
    result = gateway_release.run()
    assert result.returncode == 3, (
        result.stdout + result.stderr
    )  # the rollback's smoke check fails the same way
    summary = gateway_release.summary.read_text()
    assert "release smoke check: failed" in summary and "rollback smoke check: failed" in summary
    assert gateway_release.served == []


DEPLOYMENT_URN = "urn:pulumi:dev::muse::muse:kubernetes:MuseWorkload$kubernetes:apps/v1:Deployment::muse"
ROLE_ASSIGNMENT = "urn:pulumi:dev::muse::pulumi:pulumi:Stack$azure-native:authorization:RoleAssignment::new"
NEW_ROLE_ASSIGNMENT = {
    "urn": ROLE_ASSIGNMENT,
    "parent": "urn:pulumi:dev::muse::pulumi:pulumi:Stack::muse-dev",
    "error": "AuthorizationFailed: the client does not have authorization to perform roleAssignments/write",
}


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_rollback_targets_the_deployment_and_skips_what_the_failed_update_never_reached(
    release: Release,
) -> None:
    """The commit adds a role assignment the deploy identity may not create; the release's `pulumi up` stopped
    at the Deployment (never ready) before reaching it. The rollback updates the Deployment only."""
    release.update(images={NEW: {"ready": False}}, new_resources=[NEW_ROLE_ASSIGNMENT])
    result = release.run()
    assert result.returncode == 1, result.stdout + result.stderr
    first, second = up_calls(release)
    assert "--target" not in first
    assert f"--target {DEPLOYMENT_URN}" in second
    world = release.world()
    assert world["state_image"] == world["serving_image"] == PREVIOUS
    assert ROLE_ASSIGNMENT not in world["state_urns"]  # a skipped create, left for the next release
    summary = release.summary.read_text()
    assert "FAILED, rolled back to the previous image" in summary
    assert f"`pulumi up --target {DEPLOYMENT_URN}`" in summary


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_an_untargeted_rollback_fails_on_what_the_failed_update_never_reached(release: Release) -> None:
    """Negative control: the old rollback, an untargeted `pulumi up` of the same commit with the previous
    image, run by the same stand-in on the same stack, also creates the role assignment and fails on it."""
    release.update(images={NEW: {"ready": False}}, new_resources=[NEW_ROLE_ASSIGNMENT])
    assert release.run().returncode == 1  # the release, then the targeted rollback
    env = {**os.environ, "RELEASE_WORLD": str(release.world_file)}
    world = release.world()
    world["config"]["muse:imageTag"] = PREVIOUS
    release.write(world)
    untargeted = subprocess.run(
        [sys.executable, str(TOOLS), "pulumi", "up", "--stack", "dev", "--yes", "--message", "rollback"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert untargeted.returncode == 1
    assert "AuthorizationFailed" in untargeted.stderr


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_the_stand_in_refuses_a_targeted_update_with_a_dependency_not_in_state(release: Release) -> None:
    """Negative control for the stand-in's targeting rule (step_generator.go validateSteps, replayed by
    tests/bootstrap/engine_targeting.py): `--target <Deployment>` is refused with "untargeted create", exit 1
    (a bail: exit_codes.go ExitCodeError), when the
    Deployment's parent or a dependency is not in state (e.g. a
    ConfigMap this commit adds). The rollback is accepted because those are in state: the release's untargeted
    `pulumi up` creates a new dependency before it changes the Deployment (dependency order)."""
    config_map = "urn:pulumi:dev::muse::muse:kubernetes:MuseWorkload$kubernetes:core/v1:ConfigMap::muse"
    workload = "urn:pulumi:dev::muse::muse:kubernetes:MuseWorkload::muse"
    release.update(
        new_resources=[{"urn": config_map, "parent": workload}], deployment_new_dependencies=[config_map]
    )
    env = {**os.environ, "RELEASE_WORLD": str(release.world_file)}
    up = [sys.executable, str(TOOLS), "pulumi", "up", "--stack", "dev", "--yes", "--target", DEPLOYMENT_URN]
    refused = subprocess.run(up, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "untargeted create" in refused.stderr, refused.stderr
    assert config_map in refused.stderr
    without_parent = [u for u in release.world().get("state_urns", []) if u != workload]
    release.update(new_resources=[], deployment_new_dependencies=[], state_urns=without_parent)
    refused = subprocess.run(up, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "untargeted create" in refused.stderr, refused.stderr
    # The full release creates the ConfigMap before the Deployment, so its rollback is accepted.
    release.update(
        state_urns=[*without_parent, workload],
        new_resources=[{"urn": config_map, "parent": workload}],
        deployment_new_dependencies=[config_map],
        images={NEW: {"ready": False}},
    )
    result = release.run()
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"--target {DEPLOYMENT_URN}" in up_calls(release)[-1]
    assert release.world()["serving_image"] == PREVIOUS


# --- a first deploy that reaches a CRD before AKS serves it -------------------------------------------------

# Kubernetes' NoKindMatchError (apimachinery meta.NoKindMatchError.Error()), as pulumi-kubernetes reports it
# once its own create retries (about a minute) ran out.
NO_GATEWAY_KIND = (
    "resource muse-gateway was not successfully created by the Kubernetes API server: no matches for kind "
    '"Gateway" in version "gateway.networking.k8s.io/v1"'
)


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_a_crd_not_served_yet_is_waited_for_with_bounded_retries(release: Release) -> None:
    release.update(
        state_image=None,
        spec_image=None,
        serving_image=None,
        up_failures={"1": {"error": NO_GATEWAY_KIND, "exit": 1}, "2": {"error": NO_GATEWAY_KIND, "exit": 1}},
    )
    result = release.run(NEW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        len(up_calls(release)) == 3
    )  # two refusals while AKS installs the CRD, then the update goes through
    assert result.stdout.count("::notice title=CRD not served yet (dev)::") == 2
    assert "(1/3)" in result.stdout and "(2/3)" in result.stdout


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_the_crd_retries_are_bounded(release: Release) -> None:
    failures = {str(n): {"error": NO_GATEWAY_KIND, "exit": 1} for n in range(1, 10)}
    release.update(state_image=None, spec_image=None, serving_image=None, up_failures=failures)
    result = release.run(NEW)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(up_calls(release)) == 4  # the first try and three retries, no more


@pytest.mark.slow  # deploy.py and ~20 stand-in processes
def test_negative_control_other_failures_are_not_retried(release: Release) -> None:
    release.update(up_failures={"1": {"error": 'Code="InvalidTemplate"', "exit": 1}})
    result = release.run(NEW)
    assert result.returncode != 0
    assert len([c for c in up_calls(release) if "--target" not in c]) == 1
