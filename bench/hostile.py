"""Hostile and heavy input against one `python -m muse serve` process on 127.0.0.1: per case, the answer, the
log bytes, the peak RSS (VmHWM) and the worst /healthz latency seen while it ran (a probe every 100 ms; over
1 s counts as a probe failure, the kubelet's timeoutSeconds). Bounded: one request per case (the path case:
200), each with a 120 s timeout; loopback only.

    python -m bench.hostile [--source DIR]   # DIR: a checkout whose muse/ to run (default: this one)

The cases: docs/benchmarks.md#hostile-input-cases."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import BENCH_TOKEN, ROOT, free_port, machine_facts, wait_ready, workdir
from muse.contract import (
    ENV_ENVIRONMENT,
    ENV_HOST,
    ENV_LOG_LEVEL,
    ENV_METRICS_PORT,
    ENV_PORT,
    secret_environment,
)
from muse.resource_types import K8S_DEPLOYMENT

PROBE_TIMEOUT_S = 1.0  # the workload's probes' timeoutSeconds (components/muse_workload/manifests.py)


def _inventory(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemaVersion": 1, "project": "p", "stack": "s", "environment": "dev", "resources": resources}


def _containers(n: int) -> bytes:
    spec = {"spec": {"template": {"spec": {"containers": [{}] * n}}}}
    resource = {"urn": "urn:d", "type": K8S_DEPLOYMENT, "name": "d", "properties": spec}
    return json.dumps(_inventory([resource]), separators=(",", ":")).encode()


def _secret_paths(n: int) -> bytes:
    resource = {
        "urn": "u",
        "type": "t",
        "name": "n",
        # Secret-like names with plaintext values: each is checked against the secret paths (none covers it).
        "properties": {f"password{i}": "v" for i in range(n)},
        "secretPaths": [f"s{i}.x" for i in range(n)],
    }
    return json.dumps(_inventory([resource]), separators=(",", ":")).encode()


def _minimal_resources(size: int) -> bytes:
    one = json.dumps({"urn": "u", "type": "t", "name": ""}, separators=(",", ":"))
    head = json.dumps(_inventory([]), separators=(",", ":"))[:-3]  # without "[]}"
    count = (size - len(head) - 2) // (len(one) + 1)
    return (head + "[" + ",".join([one] * count) + "]}").encode()


def _exchange(port: int, raw: bytes, timeout: float = 120) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
    return b"".join(chunks)


def _post(port: int, body: bytes, accept: str = "application/json", length: str | None = None) -> bytes:
    head = (
        f"POST /api/v1/evaluate HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {BENCH_TOKEN}\r\n"
        f"Content-Type: application/json\r\nAccept: {accept}\r\nConnection: close\r\n"
        f"Content-Length: {length if length is not None else len(body)}\r\n\r\n"
    ).encode()
    return _exchange(port, head + body)


def _summary(response: bytes) -> dict[str, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    out: dict[str, Any] = {
        "status": status,
        "content_type": headers.get("content-type", ""),
        "bytes": len(body),
    }
    if headers.get("content-type", "").startswith("application/json") and status >= 400:
        with contextlib.suppress(ValueError):
            answer = json.loads(body)
            out["error"] = answer.get("error")
            out["detail"] = str(answer.get("detail"))[:100]
    return out


class Probe:
    """GET /healthz every 100 ms while a case runs, on a fresh connection each time or (kept_alive) on one
    kept-alive connection, as a proxy's pooled connection; the worst latency and the failures."""

    def __init__(self, port: int, kept_alive: bool = False) -> None:
        self.port, self.worst, self.failures, self.count = port, 0.0, 0, 0
        self.kept_alive = kept_alive
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kept_alive_exchange(self) -> bytes:
        if self._sock is None:
            self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            self._sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError("closed")
                data += chunk
            return data
        except OSError:
            self._sock.close()
            self._sock = None  # reconnect next time, as a proxy's pool would
            raise

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                if self.kept_alive:
                    answer = self._kept_alive_exchange()
                else:
                    answer = _exchange(
                        self.port, b"GET /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", 30
                    )
                ok = answer.startswith(b"HTTP/1.1 200")
            except OSError:
                ok = False
            took = time.monotonic() - start
            self.count += 1
            self.worst = max(self.worst, took)
            self.failures += int(not ok or took > PROBE_TIMEOUT_S)
            self._stop.wait(0.1)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


def _length(response: bytes) -> int:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


class Server:
    def __init__(self, source: Path, log: Path) -> None:
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(source),
            ENV_PORT: str(self.port),
            ENV_METRICS_PORT: str(free_port()),
            ENV_HOST: "127.0.0.1",
            **secret_environment(BENCH_TOKEN),
            ENV_ENVIRONMENT: "bench",
            ENV_LOG_LEVEL: "INFO",
        }
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "muse", "serve"], cwd=source, env=env, stdout=out, stderr=out
            )
        wait_ready(self.port)

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_bytes(self) -> int:
        return self.log.stat().st_size

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)


def _case(source: Path, out_dir: Path, name: str, action: Any, repeat: int = 1) -> dict[str, Any]:
    """A fresh server per case, so the peak RSS is the case's own."""
    server = Server(source, out_dir / f"hostile-{name}.log")
    try:
        before = server.log_bytes()
        rss_before = server.peak_rss_mib()
        start = time.monotonic()
        with Probe(server.port) as probe, Probe(server.port, kept_alive=True) as pooled:
            results = [action(server.port) for _ in range(repeat)]
            time.sleep(0.3)
        took = time.monotonic() - start
        alive = server.proc.poll() is None
        return {
            "case": name,
            **results[-1],
            "seconds": round(took, 2),
            "log_bytes_per_request": round((server.log_bytes() - before) / repeat),
            "rss_at_rest_mib": round(rss_before, 1),
            "peak_rss_mib": round(server.peak_rss_mib(), 1) if alive else None,
            "probe_worst_s": round(probe.worst, 3),
            "probe_failures": probe.failures,
            "probes": probe.count,
            "kept_alive_probe_worst_s": round(pooled.worst, 3),
            "kept_alive_probe_failures": pooled.failures,
            "server_alive": alive,
        }
    finally:
        server.stop()


def _idle(port: int) -> dict[str, Any]:
    start = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=60) as sock,
        contextlib.suppress(TimeoutError, ConnectionResetError),
    ):
        while sock.recv(1024):
            pass
    return {"status": 0, "closed_after_s": round(time.monotonic() - start, 2)}


def _open_after(port: int, raw: bytes, limit: float = 60) -> dict[str, Any]:
    """Send ``raw`` then nothing: the first answer's status and how long the server keeps the socket."""
    start = time.monotonic()
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(raw)
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    return {**_summary(data), "closed_after_s": round(time.monotonic() - start, 2)}


def _unsent_body_after_401(port: int) -> dict[str, Any]:
    head = (
        b"POST /api/v1/evaluate HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer wrong-0123456789abcdefghijk\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    )
    return _open_after(port, head + b"x")


def _unsent_body_after_get(port: int) -> dict[str, Any]:
    return _open_after(port, b"GET /healthz HTTP/1.1\r\nHost: b\r\nContent-Length: 100000000\r\n\r\nx")


def _bad_chunk_after_response(port: int) -> dict[str, Any]:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n")
        first = sock.recv(65536)
        sock.sendall(b"zz-not-a-chunk-size\r\n\r\n")
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while sock.recv(65536):
                pass
    return {**_summary(first), "closed_after_s": round(time.monotonic() - start, 2)}


def _idle_connections(count: int) -> Any:
    def action(port: int) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            for _ in range(count):
                stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
            time.sleep(1.0)  # the probes run meanwhile
            answer = _summary(
                _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n", 30)
            )
        return {**answer, "open_connections": count}

    return action


def _combined_worst() -> bytes:
    """Both limits at once (tests/container/test_image.py runs it under 256m): a 1 MiB body of minimal
    resources plus 107 Deployments of 20 empty containers with 305-character URNs: 10,807 violations, a
    7.2 MB JSON report."""
    deployments = [
        {
            "urn": f"urn:d{i:05d}" + "x" * 300,
            "type": K8S_DEPLOYMENT,
            "name": "d",
            "properties": {"spec": {"template": {"spec": {"containers": [{}] * 20}}}},
        }
        for i in range(107)
    ]
    head = json.dumps(_inventory(deployments), separators=(",", ":"))[:-2]
    one = json.dumps({"urn": "u", "type": "t", "name": ""}, separators=(",", ":"))
    count = ((1 << 20) - 64 - len(head) - 2) // (len(one) + 1)
    return (head + "," + ",".join([one] * count) + "]}").encode()


def _stalled_readers(count: int) -> Any:
    """``count`` clients each ask for the combined worst report (7.2 MB of JSON) and never read it."""

    def action(port: int) -> dict[str, Any]:
        body = _combined_worst()
        head = (
            f"POST /api/v1/evaluate HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {BENCH_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with contextlib.ExitStack() as stack:
            for _ in range(count):
                sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=60))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(head + body)
            time.sleep(45)  # evaluations, admission timeouts and write deadlines play out
        return {"status": 0, "clients": count}

    return action


SURROGATE = rb'{"schemaVersion":1,"project":"\ud800","stack":"s","environment":"e","resources":[]}'

CASES: list[tuple[str, Any, int]] = [
    (
        "path-50KB",
        lambda port: _summary(
            _exchange(port, b"GET /" + b"a" * 50_000 + b" HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        ),
        200,
    ),
    ("containers-20000", lambda port: _summary(_post(port, _containers(20_000))), 1),
    ("containers-30000", lambda port: _summary(_post(port, _containers(30_000))), 1),
    ("secretpaths-8000x8000", lambda port: _summary(_post(port, _secret_paths(8000))), 1),
    (
        "heaviest-accepted-2180-markdown",
        lambda port: _summary(_post(port, _containers(2180), "text/markdown")),
        1,
    ),
    ("minimal-resources-1MiB", lambda port: _summary(_post(port, _minimal_resources(1 << 20))), 1),
    ("lone-surrogate", lambda port: _summary(_post(port, SURROGATE)), 1),
    ("deep-nesting", lambda port: _summary(_post(port, b"[" * 100_000)), 1),
    ("bad-content-length", lambda port: _summary(_post(port, b"{}", length="abc")), 1),
    ("idle-connection", _idle, 1),
    ("unsent-body-after-401", _unsent_body_after_401, 1),
    ("unsent-body-after-get", _unsent_body_after_get, 1),
    ("bad-chunk-after-response", _bad_chunk_after_response, 1),
    ("idle-connections-200", _idle_connections(200), 1),
    ("combined-worst-1MiB-10807-violations", lambda port: _summary(_post(port, _combined_worst())), 1),
    ("stalled-readers-16-combined-worst", _stalled_readers(16), 1),
]


def run(source: Path, only: list[str] | None = None) -> list[dict[str, Any]]:
    out_dir = workdir("hostile")
    results = []
    for name, action, repeat in CASES:
        if only and name not in only:
            continue
        result = _case(source, out_dir, name, action, repeat)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose muse/ to run")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    args = parser.parse_args(argv)
    print("machine:", json.dumps(machine_facts()), flush=True)
    results = run(args.source.resolve(), args.case)
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
