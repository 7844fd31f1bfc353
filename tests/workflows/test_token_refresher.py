"""scripts/ci/federated_token_refresher.py against a fake GitHub OIDC endpoint on 127.0.0.1.

The fake answers as GitHub documents its token request endpoint ("About security hardening with OpenID
Connect" -> "Updating your actions for OIDC"): GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud> with
`Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answer `{"value": "<JWT>"}`, and each token lives
5 minutes (Azure/login#180: "valid from 06:01:13 ... expiry 06:06:13"). Lifetimes are scaled down so the
test runs in seconds.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import loopback

ROOT = Path(__file__).resolve().parents[2]
REFRESHER = ROOT / "scripts" / "ci" / "federated_token_refresher.py"
START = ROOT / "scripts" / "ci" / "start-token-refresher.sh"
BEARER = "runtime-request-token"


def _jwt(claims: dict[str, object]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join([b64(b'{"alg":"RS256"}'), b64(json.dumps(claims).encode()), b64(b"signature")])


@pytest.fixture
def oidc() -> Iterator[dict[str, object]]:
    state: dict[str, object] = {"requests": [], "lifetime": 300, "fail": 0, "audience": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            state["requests"].append(  # type: ignore[attr-defined]
                {"query": query, "auth": self.headers.get("Authorization")}
            )
            if state["fail"]:
                state["fail"] = int(state["fail"]) - 1  # type: ignore[call-overload]
                self.send_response(503)
                self.end_headers()
                return
            # The auth scheme is case-insensitive (RFC 9110 11.1); kubelogin sends "bearer".
            scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or credentials != BEARER:
                self.send_response(401)
                self.end_headers()
                return
            now = int(time.time())
            audience = state["audience"] or query.get("audience", [""])[0]
            serial = len(state["requests"])  # type: ignore[arg-type]
            lifetime = int(state["lifetime"])  # type: ignore[call-overload]
            subject = "repo:muse-platform/muse:ref:refs/heads/main"
            claims = {"aud": audience, "iat": now, "nbf": now, "exp": now + lifetime, "sub": subject}
            token = _jwt({**claims, "jti": f"t{serial}"})
            body = json.dumps({"value": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    loopback.start(server)
    # GitHub's URL already carries a query string (api-version): the audience is appended to it.
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/_apis/idtoken?api-version=2.0"
    yield state
    server.shutdown()
    server.server_close()


def _env(oidc: dict[str, object], tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ACTIONS_ID_TOKEN_REQUEST_URL": str(oidc["url"]),
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": BEARER,
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_ENV": str(tmp_path / "github_env"),
    }


def _claims(path: Path) -> dict[str, object]:
    payload = path.read_text().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_once_writes_a_token_for_the_azure_audience_with_the_runtime_bearer(
    oidc: dict[str, object], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    result = subprocess.run(
        [sys.executable, str(REFRESHER), "--file", str(token_file), "--once"],
        env=_env(oidc, tmp_path), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [request] = oidc["requests"]  # type: ignore[misc]
    assert request["auth"] == f"Bearer {BEARER}"
    assert request["query"] == {"api-version": ["2.0"], "audience": ["api://AzureADTokenExchange"]}
    assert _claims(token_file)["aud"] == "api://AzureADTokenExchange"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text() not in result.stdout + result.stderr  # never printed


@pytest.mark.slow  # waits seconds for tokens to expire
def test_keeps_the_file_valid_longer_than_one_token_lives(oidc: dict[str, object], tmp_path: Path) -> None:
    """Tokens live 3 s here; over 8 s the file must always hold an unexpired token, and be rewritten."""
    oidc["lifetime"] = 3
    token_file = tmp_path / "token"
    process = subprocess.Popen(
        [sys.executable, str(REFRESHER), "--file", str(token_file), "--for-seconds", "8",
         "--every", "60", "--margin", "1.5"],
        env=_env(oidc, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 8
        seen: set[str] = set()
        while time.time() < deadline:
            if token_file.exists():
                claims = _claims(token_file)
                assert float(claims["exp"]) > time.time(), "the file held an expired token"  # type: ignore[arg-type]
                seen.add(str(claims["jti"]))
            time.sleep(0.2)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert len(seen) >= 4, seen  # refreshed before each 3-second token expired


@pytest.mark.slow  # waits seconds for tokens to expire
def test_retries_a_failing_endpoint_without_losing_the_current_token(
    oidc: dict[str, object], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    env = _env(oidc, tmp_path)
    subprocess.run([sys.executable, str(REFRESHER), "--file", str(token_file), "--once"], env=env, check=True,
                   timeout=30)  # fmt: skip
    first = token_file.read_text()
    oidc["fail"] = 2
    result = subprocess.run(
        [sys.executable, str(REFRESHER), "--file", str(token_file), "--for-seconds", "5", "--every", "60"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("::warning title=OIDC token refresh::OIDC endpoint answered HTTP 503") == 2
    assert token_file.read_text() != first  # the third request succeeded and replaced it


def test_once_fails_loudly_on_a_wrong_audience_or_no_id_token_permission(
    oidc: dict[str, object], tmp_path: Path
) -> None:
    oidc["audience"] = "https://github.com/muse-platform"
    env = _env(oidc, tmp_path)
    token_file = tmp_path / "token"
    result = subprocess.run([sys.executable, str(REFRESHER), "--file", str(token_file), "--once"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 1 and "audience" in result.stderr and not token_file.exists()
    del env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    result = subprocess.run([sys.executable, str(REFRESHER), "--file", str(token_file), "--once"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2 and "id-token: write" in result.stderr


@pytest.mark.slow  # waits seconds for tokens to expire
def test_start_script_primes_the_file_exports_it_and_keeps_refreshing(
    oidc: dict[str, object], tmp_path: Path
) -> None:
    oidc["lifetime"] = 3
    env = _env(oidc, tmp_path)
    result = subprocess.run(["bash", str(START), "1"], env=env, capture_output=True, text=True, timeout=30,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split("(pid ")[1].split(")")[0])
    try:
        token_file = tmp_path / "azure-federated-token"
        assert (tmp_path / "github_env").read_text() == f"AZURE_FEDERATED_TOKEN_FILE={token_file}\n"
        first = _claims(token_file)["jti"]
        time.sleep(3)
        assert _claims(token_file)["jti"] != first
        assert float(_claims(token_file)["exp"]) > time.time()  # type: ignore[arg-type]
    finally:
        os.kill(pid, 15)


@pytest.mark.slow  # waits seconds for tokens to expire
def test_negative_control_a_token_written_once_expires_within_the_job(
    oidc: dict[str, object], tmp_path: Path
) -> None:
    """What `azure/login` alone leaves: one assertion, expired long before a 60-minute deploy ends."""
    oidc["lifetime"] = 1
    token_file = tmp_path / "token"
    subprocess.run([sys.executable, str(REFRESHER), "--file", str(token_file), "--once"],
                   env=_env(oidc, tmp_path), check=True, timeout=30)  # fmt: skip
    time.sleep(1.5)
    assert float(_claims(token_file)["exp"]) < time.time()  # type: ignore[arg-type]


TOOLS = Path(__file__).with_name("release_tools.py")


@pytest.mark.parametrize("actions_variables", [True, False])
def test_kubelogin_workloadidentity_asks_github_when_the_actions_variables_are_set(
    oidc: dict[str, object], tmp_path: Path, actions_variables: bool
) -> None:
    """The kubelogin stand-in (release_tools.py) picks its credential as Azure/kubelogin v0.2.17
    pkg/internal/token/provider.go does: in workloadidentity mode with ACTIONS_ID_TOKEN_REQUEST_TOKEN/URL set
    (every GitHub job with `id-token: write`) newGithubActionsCredential, which asks the OIDC endpoint for a
    fresh token per assertion (audience api://AzureADTokenExchange) and never reads
    AZURE_FEDERATED_TOKEN_FILE.
    Negative control: without those variables it reads the file, and fails when there is none."""
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"calls": []}))
    env = {
        **_env(oidc, tmp_path),
        "RELEASE_WORLD": str(world),
        "AZURE_CLIENT_ID": "c",
        "AZURE_TENANT_ID": "t",
    }
    env["AZURE_FEDERATED_TOKEN_FILE"] = str(tmp_path / "no-such-file")
    env["AAD_LOGIN_METHOD"] = "workloadidentity"
    if not actions_variables:
        del env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    command = [sys.executable, str(TOOLS), "kubelogin", "get-token", "--server-id", "6dae42f8"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if actions_variables:
        assert result.returncode == 0, result.stderr
        assert "GithubActionsCredential" in json.loads(result.stdout)["status"]["token"]
        [request] = oidc["requests"]  # type: ignore[misc]
        assert request["query"]["audience"] == ["api://AzureADTokenExchange"]
    else:
        assert result.returncode == 1 and "federated token file" in result.stderr
        assert oidc["requests"] == []
        (tmp_path / "no-such-file").write_text("header.payload.signature")
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert "WorkloadIdentityCredential" in json.loads(result.stdout)["status"]["token"]
