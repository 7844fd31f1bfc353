"""The real process: ``python -m muse serve`` on 127.0.0.1 and a free port, driven with signals.

These prove what Kubernetes relies on: readiness turns 503 at SIGTERM while requests are still served, an
in-flight request completes, new connections stop after the drain period, and the exit code is 0 within
MUSE_SHUTDOWN_TIMEOUT_SECONDS. Timings are kept to a few seconds (MUSE_DRAIN_SECONDS=1).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TOKEN = "process-test-token-0123456789-abcdef"
INVENTORY = json.dumps(
    {
        "schemaVersion": 1,
        "project": "muse",
        "stack": "dev",
        "environment": "dev",
        "resources": [
            {
                "urn": "urn:pulumi:dev::muse::azure-native:containerregistry:Registry::r",
                "type": "azure-native:containerregistry:Registry",
                "name": "r",
                "properties": {"adminUserEnabled": True},
            }
        ],
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    # Only what Python needs plus our variables, so the developer's environment cannot change the outcome.
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH", "SYSTEMROOT"}}
    env.update(
        {"MUSE_HOST": "127.0.0.1", "MUSE_API_TOKEN": TOKEN, "MUSE_ENV": "dev", "MUSE_LOG_LEVEL": "INFO"}
    )
    env.update(overrides)
    return env


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def running(tmp_path: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"muse-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "muse", "serve"],
            env=base_env(PORT=str(port), **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    server = Server(proc, port, log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"server exited early: {log.read_text()}"
            with contextlib.suppress(OSError):
                if server.request("GET", "/readyz")[0] == 200:
                    break
            assert time.monotonic() < deadline, f"server not ready: {log.read_text()}"
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def start_partial_request(port: int) -> socket.socket:
    """A POST whose body is only half sent: in flight from the server's point of view until we finish it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST /api/v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(INVENTORY)}\r\n\r\n"
    ).encode()
    sock.sendall(head + INVENTORY[: len(INVENTORY) // 2])
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_sigterm_drains_then_completes_in_flight_request_and_exits_0(tmp_path: Path) -> None:
    with running(tmp_path, MUSE_DRAIN_SECONDS="1", MUSE_SHUTDOWN_TIMEOUT_SECONDS="6") as server:
        in_flight = start_partial_request(server.port)
        time.sleep(0.2)  # let the server accept it and start reading the body
        sent_at = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)

        # Drain period: not ready, but still serving new connections, asking clients to reconnect elsewhere.
        status, _, body = server.request("GET", "/readyz")
        assert (status, json.loads(body)) == (503, {"status": "draining"})
        status, headers, _ = server.request("GET", "/")
        assert status == 200 and headers.get("connection") == "close"

        # After the drain period the listener is closed: new connections are refused.
        time.sleep(max(0.0, 1.6 - (time.monotonic() - sent_at)))
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        assert server.proc.poll() is None, "exited while a request was still in flight"

        # The in-flight request finishes normally.
        in_flight.sendall(INVENTORY[len(INVENTORY) // 2 :])
        status, body = read_response(in_flight)
        in_flight.close()
        assert status == 200
        assert json.loads(body)["violations"][0]["policyId"] == "MUSE-ACR-001"

        assert server.proc.wait(timeout=6) == 0
        assert time.monotonic() - sent_at < 6
        logs = server.log_lines()  # every line parses as JSON
        messages = [e["message"] for e in logs]
        assert "SIGTERM received: readiness is now 503; draining" in messages
        assert "drain period over: closing listeners and waiting for in-flight requests" in messages
        evaluated = [e for e in logs if e.get("route") == "/api/v1/evaluate"]
        assert [(e["status"], e["method"]) for e in evaluated] == [(200, "POST")]
        assert all({"time", "level", "logger", "message"} <= set(e) for e in logs)


def test_request_outliving_the_shutdown_timeout_is_cut_and_exit_is_still_0(tmp_path: Path) -> None:
    with running(tmp_path, MUSE_DRAIN_SECONDS="1", MUSE_SHUTDOWN_TIMEOUT_SECONDS="2") as server:
        stuck = start_partial_request(server.port)  # never completed
        time.sleep(0.2)
        sent_at = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=5) == 0
        assert time.monotonic() - sent_at < 3.5  # 2 s budget + process exit
        stuck.close()
        assert any("timeout graceful shutdown exceeded" in e["message"] for e in server.log_lines())


def test_second_signal_skips_the_drain_period(tmp_path: Path) -> None:
    with running(tmp_path, MUSE_DRAIN_SECONDS="30", MUSE_SHUTDOWN_TIMEOUT_SECONDS="40") as server:
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert server.request("GET", "/readyz")[0] == 503
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=5) == 0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "not-a-port"}, "PORT: Input should be a valid integer"),
        ({"PORT": "99999"}, "PORT: Input should be less than or equal to 65535"),
        ({"MUSE_API_TOKEN": ""}, "MUSE_API_TOKEN: must be at least 32 characters"),
        ({"MUSE_LOG_LEVEL": "verbose"}, "MUSE_LOG_LEVEL:"),
    ],
)
def test_bad_configuration_exits_2_naming_the_variable(env: dict[str, str], named: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "muse", "serve"],
        env=base_env(**env),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert f"muse: configuration error: {named}" in result.stderr.decode()
    assert TOKEN not in result.stderr.decode()


def test_port_in_use_exits_non_zero(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "muse", "serve"],
            env=base_env(PORT=str(port)),
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert result.returncode != 0
    errors = [json.loads(line) for line in result.stdout.decode().splitlines() if '"ERROR"' in line]
    assert errors and "address already in use" in errors[0]["message"].lower()


def test_real_http_edge_cases(tmp_path: Path) -> None:
    """Over a real socket: chunked bodies are counted against the limit; auth and bad JSON are 4xx."""
    with running(tmp_path, MUSE_MAX_BODY_BYTES="2048") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head = (
            f"POST /api/v1/evaluate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"x" * 1000
        sock.sendall(head + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)))
        with contextlib.suppress(OSError):  # the server may close before we send the terminator
            sock.sendall(b"0\r\n\r\n")
        status, body = read_response(sock)
        sock.close()
        assert status == 413 and json.loads(body)["error"] == "payload_too_large"

        assert server.request("POST", "/api/v1/evaluate", b"{nope")[0] == 400
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/api/v1/policies")
        unauthorized = conn.getresponse()
        assert (
            unauthorized.status == 401 and unauthorized.getheader("WWW-Authenticate") == 'Bearer realm="muse"'
        )
        conn.close()
        assert server.proc.poll() is None  # none of it took the process down
