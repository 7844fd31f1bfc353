"""Benchmark (d): a failed release and its automatic rollback, under load behind nginx.

Replays the Deployment's rolling update with real `python -m muse serve` processes, and scripts/ci/deploy.py's
reaction, for a new version that never gets ready and one that is ready but broken.

    python -m bench.rollback --scenario never-ready|ready-but-broken [--deadline 10] [--connections 16]

The model, the scenarios and what is reported: docs/benchmarks.md#rollback-benchmark-setup."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_TOKEN,
    ROOT,
    Nginx,
    Replica,
    free_port,
    interrupt_wrk,
    machine_facts,
    run_wrk,
    start_script,
    stop_process,
    wait_ready,
    workdir,
)
from muse.contract import ENV_API_TOKEN, ENV_HOST, ENV_PORT, ENV_VERSION, READINESS_PATH

GOOD_VERSION = "1.0.0"
NEW_VERSION = "2.0.0"
SCENARIOS = ("never-ready", "ready-but-broken")
SMOKE_CHECK = ROOT / "scripts" / "ci" / "smoke-check.sh"

# A release whose probes pass and whose requests fail: /readyz 200, everything else 500. Exits 0 on SIGTERM.
BROKEN_SERVER = """
import json, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, version = int(sys.argv[1]), sys.argv[2]
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        ready = self.path == "/readyz"
        body = json.dumps({"status": "ready" if ready else "error", "version": version}).encode()
        self.send_response(200 if ready else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.serve_forever()
"""


@dataclass
class VersionedReplica(Replica):
    """A real Muse replica that reports `version` on `GET /`."""

    version: str = GOOD_VERSION

    def env(self) -> dict[str, str]:
        return {**super().env(), ENV_VERSION: self.version}


@dataclass
class BrokenReplica:
    """The ready-but-broken release (see BROKEN_SERVER); the same interface as Replica for the rollout."""

    name: str
    version: str = NEW_VERSION
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_after_s: float = 0.0

    def start(self, log_dir: Path) -> BrokenReplica:
        started = time.monotonic()
        self.proc = start_script(BROKEN_SERVER, [str(self.port), self.version], log_dir / f"{self.name}.log")
        wait_ready(self.port)
        self.ready_after_s = time.monotonic() - started
        return self

    def sigterm_and_wait(self, timeout: float = 30.0) -> tuple[int, float]:
        start = time.monotonic()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout), time.monotonic() - start

    def kill(self) -> None:
        stop_process(self.proc)


@dataclass
class CrashLoopingReplica:
    """The never-ready release: real Muse with a token it rejects exits 2 at start; the kubelet restarts it
    with an exponential back-off (CrashLoopBackOff: 10 s doubling up to 5 min in a cluster; 0.5 s here)."""

    name: str
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _proc: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    def start(self, log_dir: Path) -> CrashLoopingReplica:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            ENV_PORT: str(self.port),
            ENV_HOST: "127.0.0.1",
            ENV_VERSION: NEW_VERSION,
            ENV_API_TOKEN: "too-short",  # the configuration this release cannot accept
        }

        def loop() -> None:
            backoff = 0.5
            with (log_dir / f"{self.name}.log").open("ab") as log:
                while not self._stop.is_set():
                    self._proc = subprocess.Popen(
                        [sys.executable, "-m", "muse", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log
                    )
                    code = self._proc.wait(timeout=60)
                    if self._stop.is_set():
                        return  # deleted by the rollback, not crashed
                    self.exit_codes.append(code)
                    if self._stop.wait(backoff):
                        return
                    self.restarts += 1
                    backoff = min(backoff * 2, 8.0)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def ready(self) -> bool:
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.5)
            try:
                connection.request("GET", READINESS_PATH)
                return connection.getresponse().status == 200
            finally:
                connection.close()
        return False

    def kill(self) -> None:
        """The pod is deleted (its ReplicaSet scaled to 0): stop the loop and the process it runs."""
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=70)


class VersionSampler:
    """Asks `GET /` through nginx every `interval` s which version answered; keeps (t, status, version)."""

    def __init__(self, port: int, t0: float, interval: float = 0.05) -> None:
        self.port, self.t0, self.interval = port, t0, interval
        self.samples: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, version = 0, "no answer"
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    connection.request("GET", "/", headers={"Connection": "close"})
                    response = connection.getresponse()
                    status = response.status
                    version = str(json.loads(response.read() or b"{}").get("version", "?"))
                finally:
                    connection.close()
            self.samples.append((round(time.monotonic() - self.t0, 2), status, version))
            self._stop.wait(self.interval)

    def __enter__(self) -> VersionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self, events: dict[str, float]) -> dict[str, Any]:
        """Answers per version (ok/failed) in each phase, and when each version first and last answered."""
        bounds = [
            ("before the release", 0.0, events["release_started"]),
            ("release, until the failure is detected", events["release_started"], events["failure_detected"]),
            ("rollback, until verified", events["failure_detected"], events["rolled_back_verified"]),
            ("after the rollback", events["rolled_back_verified"], float("inf")),
        ]
        phases: dict[str, dict[str, dict[str, int]]] = {name: {} for name, _, _ in bounds}
        span: dict[str, list[float]] = {}
        for at, status, version in self.samples:
            phase = next(name for name, start, end in bounds if start <= at < end or end == float("inf"))
            counts = phases[phase].setdefault(version, {"ok": 0, "failed": 0})
            counts["ok" if 200 <= status < 300 else "failed"] += 1
            span.setdefault(version, [at, at])[1] = at
        return {"samples": len(self.samples), "phases": phases, "answered_from_to_s": span}


def smoke_check(nginx_port: int) -> tuple[bool, float]:
    """The release's own check: scripts/ci/smoke-check.sh (curl --fail --retry on /healthz) through nginx."""
    start = time.monotonic()
    result = subprocess.run(
        [str(SMOKE_CHECK), f"http://127.0.0.1:{nginx_port}"],
        env={**os.environ, "SMOKE_RETRIES": "1", "SMOKE_RETRY_DELAY": "1"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.returncode == 0, time.monotonic() - start


def _ports(pods: list[Any]) -> list[int]:
    return [p.port for p in pods]


def run(
    scenario: str,
    deadline: int = 10,
    prestop: int = 5,
    drain: int = 5,
    connections: int = 16,
    keepalive: bool = False,
    replicas: int = 2,
) -> dict[str, Any]:
    if scenario not in SCENARIOS:
        raise SystemExit(f"--scenario must be one of {SCENARIOS}")
    work = workdir(f"rollback-{scenario}")
    facts = machine_facts()
    old = [VersionedReplica(f"old{i}", "process", drain).start(work) for i in range(replicas)]
    nginx = Nginx(work).start(_ports(old))
    started: list[Any] = []
    events: dict[str, float] = {}
    notes: list[str] = []
    headers = {"Authorization": f"Bearer {BENCH_TOKEN}"}
    if not keepalive:
        headers["Connection"] = "close"
    t0 = time.monotonic()

    def mark(name: str) -> None:
        events[name] = round(time.monotonic() - t0, 2)

    wrk = run_wrk(
        f"http://127.0.0.1:{nginx.port}/api/v1/policies",
        seconds=600, connections=connections, threads=1, headers=headers,
    )  # fmt: skip
    try:
        with VersionSampler(nginx.port, t0) as sampler:
            time.sleep(5)
            live: list[Any] = list(old)
            mark("release_started")
            if scenario == "never-ready":
                # Surge: one new pod; it must become ready before any old pod leaves (maxUnavailable 0).
                surge = CrashLoopingReplica("new0").start(work)
                started.append(surge)
                while time.monotonic() - t0 - events["release_started"] < deadline:
                    if surge.ready():
                        raise RuntimeError("the never-ready release became ready")
                    time.sleep(0.2)
                mark("failure_detected")  # progress deadline: pulumi up / kubectl rollout status fail
                notes.append(
                    f"new pod restarted {surge.restarts} times, exit codes {sorted(set(surge.exit_codes))}"
                )
                # Rollback: the Deployment's template goes back, the new ReplicaSet scales to 0. The old pods
                # never left the upstream, so there is nothing to roll in.
                surge.kill()
                mark("rollback_applied")
            else:
                # Roll forward pod by pod: surge a new pod, it becomes ready and joins; an old one leaves.
                def roll(replace: Callable[[int], Any]) -> None:
                    for index, pod in enumerate(list(live)):
                        new = replace(index).start(work)
                        started.append(new)
                        live.append(new)
                        nginx.set_upstream(_ports(live))
                        live.remove(pod)
                        nginx.set_upstream(_ports(live))
                        time.sleep(prestop)
                        pod.sigterm_and_wait()

                roll(lambda index: BrokenReplica(f"new{index}"))
                mark("release_rolled_out")
                ok, seconds = smoke_check(nginx.port)
                if ok:
                    raise RuntimeError("the broken release passed the smoke check")
                mark("failure_detected")
                notes.append(f"release smoke check failed after {seconds:.1f} s (1 retry)")
                # Rollback: the previous version rolls back in the same way.
                roll(lambda index: VersionedReplica(f"back{index}", "process", drain))
                mark("rollback_applied")
            ok, seconds = smoke_check(nginx.port)
            if not ok:
                raise RuntimeError("the smoke check failed after the rollback")
            mark("rolled_back_verified")
            time.sleep(5)
        result = interrupt_wrk(wrk)
        mark("end")
        errors = [line for line in nginx.error_log_lines() if "[error]" in line or "[crit]" in line]
        refused = [line for line in errors if "(111: Connection refused) while connecting" in line]
        return {
            "benchmark": "rollback",
            "machine": facts,
            "config": {
                "scenario": scenario,
                "replicas": replicas,
                "deadline_s": deadline,
                "prestop_s": prestop,
                "drain_s": drain,
                "connections": connections,
                "client_keepalive": keepalive,
                "nginx_reloads": nginx.reloads,
            },
            **result.summary(),
            "events_s": events,
            "time_to_rolled_back_s": round(events["rolled_back_verified"] - events["failure_detected"], 2),
            "versions": sampler.summary(events),
            "nginx_refused_connects_retried": len(refused),
            "nginx_other_errors": [line for line in errors if line not in refused][:20],
            "notes": notes,
            "wrk_output": result.raw,
        }
    finally:
        stop_process(wrk)
        nginx.stop()
        for pod in [*old, *started]:
            pod.kill()


def summary(res: dict[str, Any]) -> str:
    c, e, v = res["config"], res["events_s"], res["versions"]
    client = "keep-alive" if c["client_keepalive"] else "Connection: close"
    lines = [
        f"rollback ({c['scenario']}): {c['replicas']} replicas of {GOOD_VERSION} behind nginx, wrk "
        f"{c['connections']} {client} connections; deadline {c['deadline_s']} s, preStop {c['prestop_s']} s, "
        f"drain {c['drain_s']} s",
        f"  requests {res['requests']}  failed {res['failed']} (non-2xx {res['non_2xx_3xx']}, socket errors "
        f"{res['socket_errors']})  rps {res['rps']}  p99 {res['latency_ms'].get('p99')} ms",
        f"  failure detected at {e['failure_detected']} s, rolled back and verified at "
        f"{e['rolled_back_verified']} s: {res['time_to_rolled_back_s']} s",
        "  GET / through nginx every 50 ms, answers per version (ok/failed):",
    ]
    for phase, versions in v["phases"].items():
        answered = ", ".join(f"{name} {n['ok']}/{n['failed']}" for name, n in versions.items()) or "-"
        lines.append(f"    {phase}: {answered}")
    spans = ", ".join(f"{name} {a}..{b} s" for name, (a, b) in v["answered_from_to_s"].items())
    lines += [
        f"  answered from..to: {spans}",
        f"  nginx: {c['nginx_reloads']} reloads, {res['nginx_refused_connects_retried']} refused connects "
        f"retried, {len(res['nginx_other_errors'])} other errors; {'; '.join(res['notes'])}",
    ]
    return "\n".join(lines)
