"""The shell glue the workflows call (scripts/ci/*.sh), run for real here: the smoke check against a local
HTTPS server, the preview and rollout helpers against stub `pulumi`/`az`/`kubelogin`/`kubectl` commands that
record how they were called."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import loopback

# Slow (the CI scripts with curl and stub CLIs, retries included): `make test-fast` leaves the module out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "scripts" / "ci"
DIGEST = "sha256:" + "cd" * 32


# --- smoke-check.sh -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_server(tls: tuple[Path, Path]) -> Iterator[dict[str, object]]:
    state: dict[str, object] = {"status": 200, "paths": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["paths"].append(self.path)  # type: ignore[attr-defined]
            body = b'{"status":"ok"}'
            self.send_response(int(state["status"]))  # type: ignore[call-overload]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls[0]), str(tls[1]))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    loopback.start(server)
    state["url"] = f"https://127.0.0.1:{server.server_address[1]}"
    state["ca"] = str(tls[0])
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_redirect(https_server: dict[str, object]) -> Iterator[dict[str, object]]:
    """Plain HTTP for the same host, as the Gateway's HTTP listener answers it: 301 to the https URL."""
    state: dict[str, object] = {"status": 301, "paths": []}
    target = str(https_server["url"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["paths"].append(self.path)  # type: ignore[attr-defined]
            self.send_response(int(state["status"]))  # type: ignore[call-overload]
            if int(state["status"]) in (301, 308):  # type: ignore[call-overload]
                self.send_header("Location", f"{target}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    loopback.start(server)
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


SMOKE_HOST = "muse-smoke.test"  # resolves nowhere (RFC 2606): only curl --resolve can reach the servers


@pytest.fixture(scope="module")
def host_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for SMOKE_HOST only (no IP SAN), so curl verifies it only when SNI names the host."""
    directory = tmp_path_factory.mktemp("host-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={SMOKE_HOST}", "-addext", f"subjectAltName=DNS:{SMOKE_HOST}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def gateway(host_tls: tuple[Path, Path]) -> Iterator[dict[str, object]]:
    """The Gateway at its address (127.0.0.1) before any DNS points at it: an HTTPS listener with the host's
    certificate answering /healthz, and an HTTP listener that only redirects to https://<host>:<port>."""
    state: dict[str, object] = {"https_paths": [], "http_paths": [], "http_status": 301}

    class Https(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["https_paths"].append(self.path)  # type: ignore[attr-defined]
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    secure = ThreadingHTTPServer(("127.0.0.1", 0), Https)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(host_tls[0]), str(host_tls[1]))
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    https_url = f"https://{SMOKE_HOST}:{secure.server_address[1]}"

    class Http(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["http_paths"].append(self.path)  # type: ignore[attr-defined]
            self.send_response(int(state["http_status"]))  # type: ignore[call-overload]
            self.send_header("Location", f"{https_url}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    plain = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    for server in (secure, plain):
        loopback.start(server)
    state.update(
        url=https_url, http_url=f"http://{SMOKE_HOST}:{plain.server_address[1]}", ca=str(host_tls[0])
    )
    yield state
    for server in (secure, plain):
        server.shutdown()
        server.server_close()


def smoke(
    url: str, ca: str, summary: Path, http_url: str = "", address: str | None = "127.0.0.1"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **({"SMOKE_HTTP_URL": http_url} if http_url else {}),
        "CURL_CA_BUNDLE": ca,
        "SMOKE_RETRIES": "1",
        "SMOKE_RETRY_DELAY": "0",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    arguments = [url] if address is None else [url, address]
    return subprocess.run(
        [str(CI / "smoke-check.sh"), *arguments],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_smoke_check_asks_the_gateway_at_its_address_before_dns_exists(
    gateway: dict[str, object], tmp_path: Path
) -> None:
    # The host resolves nowhere; curl --resolve pins both requests to the Gateway's address, and the TLS
    # handshake names the host (SNI), so the host's certificate verifies.
    summary = tmp_path / "summary.md"
    result = smoke(str(gateway["url"]), str(gateway["ca"]), summary, str(gateway["http_url"]), "127.0.0.1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert gateway["https_paths"] == ["/healthz"] and gateway["http_paths"] == ["/healthz"]
    assert "at the Gateway address `127.0.0.1`" in summary.read_text()
    assert "Plain http redirects to https" in result.stdout


def test_smoke_check_fails_at_a_wrong_gateway_address(gateway: dict[str, object], tmp_path: Path) -> None:
    # Negative control: the same servers, asked at an address where no Gateway listens.
    result = smoke(
        str(gateway["url"]), str(gateway["ca"]), tmp_path / "s.md", str(gateway["http_url"]), "127.0.0.2"
    )
    assert result.returncode == 1
    assert "::error title=Smoke check failed::" in result.stdout and "127.0.0.2" in result.stdout
    assert gateway["https_paths"] == []


def test_smoke_check_needs_the_gateway_address_for_https(gateway: dict[str, object], tmp_path: Path) -> None:
    # Without the address the host cannot be reached before DNS exists; an empty or non-IP address is named.
    for address in (None, "", "gw.example.net"):
        result = smoke(
            str(gateway["url"]), str(gateway["ca"]), tmp_path / "s.md", str(gateway["http_url"]), address
        )
        assert result.returncode == 1, address
        assert "museGatewayAddress" in result.stdout
    assert gateway["https_paths"] == []


def test_smoke_check_at_the_address_still_verifies_the_certificate_for_the_host(
    gateway: dict[str, object], https_server: dict[str, object], tmp_path: Path
) -> None:
    # Negative control for SNI/verification: a server whose certificate is not the host's (the IP-only one)
    # at the pinned address fails, although it answers /healthz 200.
    port = str(https_server["url"]).rsplit(":", 1)[1]
    result = smoke(
        f"https://{SMOKE_HOST}:{port}", str(gateway["ca"]), tmp_path / "s.md", str(gateway["http_url"])
    )
    assert result.returncode == 1
    assert https_server["paths"] == []  # the handshake failed before any request


def test_smoke_check_passes_on_healthz_200(
    https_server: dict[str, object], http_redirect: dict[str, object], tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    result = smoke(f"{https_server['url']}/", str(https_server["ca"]), summary, str(http_redirect["url"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert https_server["paths"] == ["/healthz"]
    assert "/healthz" in summary.read_text()
    # Plain http was asked once and redirected to the https URL.
    assert http_redirect["paths"] == ["/healthz"]
    assert "Plain http redirects to https" in result.stdout


def test_smoke_check_fails_when_plain_http_serves_instead_of_redirecting(
    https_server: dict[str, object], http_redirect: dict[str, object], tmp_path: Path
) -> None:
    # The bearer token must not be answered over plain http: a 200 there is a failure.
    http_redirect["status"] = 200
    result = smoke(
        str(https_server["url"]), str(https_server["ca"]), tmp_path / "s.md", str(http_redirect["url"])
    )
    assert result.returncode == 1
    assert "expected a redirect to https://" in result.stdout


def test_smoke_check_fails_on_5xx_after_retrying(
    https_server: dict[str, object], http_redirect: dict[str, object], tmp_path: Path
) -> None:
    https_server["status"] = 503
    result = smoke(
        str(https_server["url"]), str(https_server["ca"]), tmp_path / "s.md", str(http_redirect["url"])
    )
    assert result.returncode == 1
    assert "::error title=Smoke check failed::" in result.stdout
    assert https_server["paths"] == ["/healthz", "/healthz"]  # the first try and one retry


def test_smoke_check_rejects_plain_http_to_a_name_and_malformed_urls(tmp_path: Path) -> None:
    for url in ("http://muse.example.com", "http://10.0.0.1.example.com", "", "https://", "ftp://1.2.3.4"):
        result = smoke(url, "/dev/null", tmp_path / "s.md")
        assert result.returncode == 1, url
        assert "expected an https:// URL, or http:// on a bare IP" in result.stdout


def test_smoke_check_accepts_plain_http_on_a_bare_ip_with_a_warning(tmp_path: Path) -> None:
    # A stack without ingressHost: the URL is the ingress IP, which no certificate can match.
    state: dict[str, object] = {"paths": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["paths"].append(self.path)  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    loopback.start(server)
    try:
        result = smoke(f"http://127.0.0.1:{server.server_address[1]}", "/dev/null", tmp_path / "s.md")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "::warning title=Smoke check::" in result.stdout and "muse:ingressHost" in result.stdout
    assert state["paths"] == ["/healthz"]


# --- stubs for pulumi / az / kubelogin / kubectl ----------------------------------------------------------

STUB = """#!/usr/bin/env bash
printf '%s %s\\n' "$(basename "$0")" "$*" >> "$STUB_LOG"
case "$(basename "$0") $1 $2" in
  "pulumi stack export")
    while [[ $# -gt 0 ]]; do [[ $1 == --file ]] && cp "$STUB_STATE" "$2"; shift; done ;;
  "pulumi stack output") cat "$STUB_OUTPUTS" ;;
  "kubectl rollout status") exit "${STUB_ROLLOUT_RC:-0}" ;;
  "kubectl get deployment/muse") echo "acr.azurecr.io/muse@sha256:x" ;;
esac
exit 0
"""


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pulumi", "az", "kubelogin", "kubectl"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    return {"bin": bin_dir, "log": tmp_path / "calls.log", "state": tmp_path / "state.json",
            "outputs": tmp_path / "outputs.json"}  # fmt: skip


def run_with_stubs(
    stubs: dict[str, Path], script: str, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{stubs['bin']}:{os.environ['PATH']}",
        "STUB_LOG": str(stubs["log"]),
        "STUB_STATE": str(stubs["state"]),
        "STUB_OUTPUTS": str(stubs["outputs"]),
        "RUNNER_TEMP": str(stubs["bin"].parent),
        **extra,
    }
    return subprocess.run(
        [str(CI / script), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def calls(stubs: dict[str, Path]) -> list[str]:
    return stubs["log"].read_text().splitlines() if stubs["log"].exists() else []


def deployment_state(image: str | None) -> dict[str, object]:
    resources: list[dict[str, object]] = []
    if image:
        resources.append(
            {
                "type": "kubernetes:apps/v1:Deployment",
                "outputs": {
                    "spec": {"template": {"spec": {"containers": [{"name": "muse", "image": image}]}}}
                },
            }
        )
    return {"version": 3, "deployment": {"resources": resources}}


def test_pin_deployed_image_sets_the_running_digest(stubs: dict[str, Path]) -> None:
    stubs["state"].write_text(json.dumps(deployment_state(f"acrmuseprod.azurecr.io/muse@{DIGEST}")))
    result = run_with_stubs(stubs, "pin-deployed-image.sh", "prod")
    assert result.returncode == 0, result.stderr
    log = calls(stubs)
    assert log[0].startswith("pulumi stack export --stack prod --file ")
    assert log[1] == f"pulumi config set --stack prod muse:imageTag {DIGEST}"


def test_pin_deployed_image_leaves_config_alone_for_a_new_stack(stubs: dict[str, Path]) -> None:
    stubs["state"].write_text(json.dumps(deployment_state(None)))
    result = run_with_stubs(stubs, "pin-deployed-image.sh", "dev")
    assert result.returncode == 0
    assert "::notice" in result.stdout
    assert not any(" config set " in c for c in calls(stubs))


def test_verify_rollout_uses_entra_kubeconfig_and_waits(stubs: dict[str, Path]) -> None:
    stubs["outputs"].write_text(
        json.dumps({"resourceGroupName": "rg-muse-dev", "clusterName": "aks-muse-dev"})
    )
    result = run_with_stubs(stubs, "verify-rollout.sh", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    log = calls(stubs)
    kubeconfig = str(stubs["bin"].parent / "kubeconfig-dev")
    assert log[0] == "pulumi stack output --stack dev --json"
    assert log[1] == (
        f"az aks get-credentials --resource-group rg-muse-dev --name aks-muse-dev --file {kubeconfig} "
        "--overwrite-existing"
    )
    assert log[2] == f"kubelogin convert-kubeconfig --login azurecli --kubeconfig {kubeconfig}"
    assert log[3] == "kubectl rollout status deployment/muse --namespace muse-dev --timeout=5m"


def azure_cli_expanded(argv: list[str]) -> list[str]:
    """The Azure CLI's `@file` argument expansion, applied to every argument before parsing (Azure/azure-cli
    src/azure-cli-core/azure/cli/core/commands/__init__.py, _expand_file_prefixed_files, called by
    AzCliCommandInvoker.execute via _pre_command_table_create): an argument, or the value after its first
    `=`, that starts with `@` is replaced by that file's content with trailing newlines stripped; an
    unreadable file leaves the argument as it is."""

    def load(argument: str) -> str:
        if not argument.startswith("@") or len(argument) == 1:
            return argument
        try:
            return Path(argument[1:]).expanduser().read_text().rstrip(os.linesep)
        except OSError:
            return argument

    expanded = []
    for argument in argv:
        name, equals, value = argument.partition("=")
        expanded.append(f"{name}={load(value)}" if equals else load(name))
    return expanded


def test_az_login_refuses_a_missing_token_file_instead_of_passing_the_literal_at_path(
    stubs: dict[str, Path], tmp_path: Path
) -> None:
    """az would pass `@<file>` on as the token when it cannot read the file (azure_cli_expanded above)."""
    result = run_with_stubs(
        stubs, "az-login-federated.sh", AZURE_FEDERATED_TOKEN_FILE=str(tmp_path / "absent"),
        AZURE_CLIENT_ID="client", AZURE_TENANT_ID="tenant", ARM_SUBSCRIPTION_ID="subscription",
    )  # fmt: skip
    assert result.returncode == 1
    assert "::error title=Azure sign-in::" in result.stdout
    assert calls(stubs) == []


def test_verify_rollout_in_ci_signs_in_again_from_the_refreshed_token_and_uses_workload_identity(
    stubs: dict[str, Path], tmp_path: Path
) -> None:
    """In CI the kubeconfig uses kubelogin's workloadidentity mode, which on a GitHub runner
    (ACTIONS_ID_TOKEN_REQUEST_TOKEN/URL set) asks the job's OIDC endpoint for a fresh token per assertion
    (Azure/kubelogin v0.2.17 pkg/internal/token/provider.go -> newGithubActionsCredential; modelled in
    release_tools.py, tested in test_token_refresher.py); az signs in again from the refreshed token file."""
    token = tmp_path / "azure-federated-token"
    token.write_text("header.payload.signature")
    stubs["outputs"].write_text(
        json.dumps({"resourceGroupName": "rg-muse-dev", "clusterName": "aks-muse-dev"})
    )
    result = run_with_stubs(
        stubs, "verify-rollout.sh", "dev", AZURE_FEDERATED_TOKEN_FILE=str(token), AZURE_CLIENT_ID="client",
        AZURE_TENANT_ID="tenant", ARM_SUBSCRIPTION_ID="subscription",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    log = calls(stubs)
    kubeconfig = str(stubs["bin"].parent / "kubeconfig-dev")
    # The token file by name (`@<file>`), never the token itself: argv is world-readable in the process list.
    assert log[1] == (
        f"az login --service-principal --username client --tenant tenant --federated-token @{token} "
        "--allow-no-subscriptions --output none"
    )
    assert "header.payload.signature" not in stubs["log"].read_text()
    # What az makes of it: the token (Azure/azure-cli core/commands/__init__.py _expand_file_prefixed_files).
    assert "header.payload.signature" in azure_cli_expanded(log[1].split()[1:])
    assert log[2] == "az account set --subscription subscription"
    assert f"kubelogin convert-kubeconfig --login workloadidentity --kubeconfig {kubeconfig}" in log


def test_verify_rollout_reads_optional_names_and_fails_on_a_stuck_rollout(stubs: dict[str, Path]) -> None:
    stubs["outputs"].write_text(
        json.dumps(
            {"resourceGroupName": "rg", "clusterName": "aks", "museNamespace": "apps", "museDeployment": "m"}
        )
    )
    result = run_with_stubs(stubs, "verify-rollout.sh", "prod", STUB_ROLLOUT_RC="1")
    assert result.returncode == 1
    assert "::error title=Rollout failed::deployment/m in apps" in result.stdout
    assert "kubectl rollout status deployment/m --namespace apps --timeout=5m" in calls(stubs)


def test_verify_rollout_needs_the_cluster_outputs(stubs: dict[str, Path]) -> None:
    stubs["outputs"].write_text(json.dumps({"registryName": "acr"}))
    result = run_with_stubs(stubs, "verify-rollout.sh", "dev")
    assert result.returncode == 1
    assert "no resourceGroupName/clusterName output" in result.stdout


# --- dns_check.py -------------------------------------------------------------------------------------------


def dns_check(host: str, address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CI / "dns_check.py"), host, address], capture_output=True, text=True, timeout=30, check=False
    )


def test_dns_check_notes_a_host_that_resolves_to_the_gateway() -> None:
    # The runner's own resolver (getaddrinfo): localhost is 127.0.0.1 on every Linux runner (/etc/hosts).
    result = dns_check("localhost", "127.0.0.1")
    assert result.returncode == 0
    assert result.stdout.startswith("::notice title=Public DNS::public DNS resolves localhost to")


def test_dns_check_warns_but_never_fails_when_dns_points_elsewhere_or_nowhere() -> None:
    # Negative controls: another address (a Gateway whose IP changed), and a name with no record yet.
    elsewhere = dns_check("localhost", "192.0.2.10")
    assert elsewhere.returncode == 0
    assert "::warning title=Public DNS::public DNS for localhost resolves to 127.0.0.1" in elsewhere.stdout
    assert "A record of localhost is 192.0.2.10" in elsewhere.stdout
    nowhere = dns_check("muse-nowhere.invalid", "192.0.2.10")
    assert nowhere.returncode == 0
    assert "muse-nowhere.invalid does not resolve" in nowhere.stdout
