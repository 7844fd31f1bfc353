"""Shared pieces of the benchmarks: Muse replicas, nginx in front of them, wrk, RSS sampling.

Everything binds to 127.0.0.1 and every load run is bounded in time (wrk -d) and by a hard timeout.
Replicas are real ``python -m muse serve`` processes (``--runtime process``, this repository's .venv, the
same locked dependencies as the image) or containers of the built image (``--runtime container``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muse.contract import (
    DEFAULT_PORT,
    ENV_DRAIN_SECONDS,
    ENV_ENVIRONMENT,
    ENV_HOST,
    ENV_LOG_LEVEL,
    ENV_METRICS_PORT,
    ENV_PORT,
    ENV_SHUTDOWN_TIMEOUT_SECONDS,
    READINESS_PATH,
    secret_environment,
)

ROOT = Path(__file__).resolve().parents[1]
# A throwaway token for the local replicas only (>= 32 characters, what the service requires).
BENCH_TOKEN = "bench-" + secrets.token_hex(24)
IMAGE = os.environ.get("MUSE_BENCH_IMAGE", "localhost/muse:dev")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_ready(port: int, timeout: float = 30.0) -> float:
    """Seconds until GET /readyz answered 200."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, READINESS_PATH, timeout=1.0) == 200:
                return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(f"replica on port {port} not ready within {timeout} s")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cgroup_working_set_kib(pid: int) -> int | None:
    """The container's memory working set as the kubelet computes it (usage - inactive_file), in KiB.

    None for a process in the host's root cgroup (process replicas) or when no memory cgroup is readable.
    """
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = next((ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] == "memory"), None)
    v2 = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
    for base, rel, usage_file, inactive_key in (
        ("/sys/fs/cgroup/memory", v1, "memory.usage_in_bytes", "total_inactive_file"),
        ("/sys/fs/cgroup", v2, "memory.current", "inactive_file"),
    ):
        if not rel or rel == "/":
            continue
        directory = Path(base + rel)
        if (directory / usage_file).exists():
            usage = int((directory / usage_file).read_text())
            stat = dict(ln.split() for ln in (directory / "memory.stat").read_text().splitlines())
            return max(usage - int(stat.get(inactive_key, 0)), 0) // 1024
    return None


class RssSampler:
    """Samples VmRSS of some processes every ``interval`` seconds in a thread; keeps the maximum."""

    def __init__(self, pids: list[int], interval: float = 0.1, cgroups: bool = False) -> None:
        # cgroups: also sample each pid's memory cgroup (only meaningful when each pid is its own container)
        self.cgroups = cgroups
        self.pids = pids
        self.interval = interval
        self.peak: dict[int, int] = dict.fromkeys(pids, 0)
        self.working_set_peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, pid: int) -> None:
        self.peak.setdefault(pid, 0)
        self.pids = [*self.pids, pid]

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in list(self.pids):
                with contextlib.suppress(OSError):
                    # An exited process (zombie until reaped) has no VmRSS line.
                    self.peak[pid] = max(self.peak[pid], memory_kib(pid).get("VmRSS", 0))
                    ws = cgroup_working_set_kib(pid) if self.cgroups else None
                    if ws is not None:
                        self.working_set_peak[pid] = max(self.working_set_peak.get(pid, 0), ws)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Replica:
    """One Muse replica listening on 127.0.0.1:port."""

    name: str
    runtime: str  # "process" or "container"
    drain_seconds: int = 5
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    container: str | None = None
    log_path: Path | None = None
    pid: int = 0
    ready_after_s: float = 0.0

    def env(self) -> dict[str, str]:
        return {
            **secret_environment(BENCH_TOKEN),
            ENV_ENVIRONMENT: "bench",
            ENV_LOG_LEVEL: "INFO",  # production level: one JSON access-log line per request
            ENV_DRAIN_SECONDS: str(self.drain_seconds),
            ENV_SHUTDOWN_TIMEOUT_SECONDS: str(self.drain_seconds + 20),
        }

    def start(self, log_dir: Path) -> Replica:
        self.log_path = log_dir / f"{self.name}.log"
        started = time.monotonic()
        if self.runtime == "process":
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                ENV_PORT: str(self.port),
                # Replicas share the loopback: each needs its own metrics port too.
                ENV_METRICS_PORT: str(free_port()),
                ENV_HOST: "127.0.0.1",
                **self.env(),
            }
            with self.log_path.open("wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "muse", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log
                )
            self.pid = self.proc.pid
        else:
            self.container = f"muse-bench-{self.name}-{secrets.token_hex(3)}"
            args = [
                "podman",
                "run",
                "--detach",
                "--name",
                self.container,
                "--read-only",
                "--read-only-tmpfs=false",
                "--cap-drop=ALL",
                "--security-opt=no-new-privileges",
                "--publish",
                f"127.0.0.1:{self.port}:{DEFAULT_PORT}",
            ]
            for key, value in self.env().items():
                args += ["--env", f"{key}={value}"]
            subprocess.run([*args, IMAGE], check=True, capture_output=True, timeout=60)
            out = subprocess.run(
                ["podman", "inspect", "--format", "{{.State.Pid}}", self.container],
                check=True,
                capture_output=True,
                text=True,
                timeout=30,
            )
            self.pid = int(out.stdout.strip())
        wait_ready(self.port)
        self.ready_after_s = time.monotonic() - started
        return self

    def sigterm_and_wait(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM (what the kubelet sends after preStop); returns (exit code, seconds to exit)."""
        start = time.monotonic()
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=timeout)
        else:
            assert self.container
            subprocess.run(
                ["podman", "kill", "--signal", "TERM", self.container],
                check=True,
                capture_output=True,
                timeout=30,
            )
            out = subprocess.run(
                ["podman", "wait", self.container],
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            code = int(out.stdout.strip().splitlines()[-1])
            if self.log_path is not None:
                logs = subprocess.run(["podman", "logs", self.container], capture_output=True, timeout=30)
                self.log_path.write_bytes(logs.stdout + logs.stderr)
            subprocess.run(["podman", "rm", "--force", self.container], capture_output=True, timeout=30)
        return code, time.monotonic() - start

    def kill(self) -> None:
        """Cleanup only (never part of a measurement)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.container is not None:
            subprocess.run(
                ["podman", "rm", "--force", "--time", "0", self.container], capture_output=True, timeout=30
            )


class Nginx:
    """nginx on 127.0.0.1 in a private prefix, upstream = the given replica ports; reload = SIGHUP."""

    def __init__(self, workdir: Path, port: int | None = None, access_log: bool = False) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        # One line per request: when, which upstream answered, its status and time (bench/canary.py reads it
        # as its stand-in for the request metrics).
        self.access_log = workdir / "logs" / "access.log" if access_log else None
        self.conf = workdir / "nginx.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.reloads = 0
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)

    def _write(self, upstream_ports: list[int], weights: list[int] | None = None) -> None:
        """`weights`: nginx's weighted round robin (ngx_http_upstream_module `server ... weight=`), one per
        port; a port's share of the requests is its weight over the sum."""
        weights = weights or [1] * len(upstream_ports)
        servers = "\n".join(
            f"    server 127.0.0.1:{p} weight={w} max_fails=0;"
            for p, w in zip(upstream_ports, weights, strict=True)
        )
        w = self.workdir
        log = (
            "log_format upstreams "
            "'$msec $upstream_addr $status $upstream_response_time $request_method $uri';\n"
            f"  access_log {self.access_log} upstreams;"
            if self.access_log
            else "access_log off;"
        )
        self.conf.write_text(f"""# generated by bench/common.py
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  {log}
  client_body_temp_path {w}/client_body;
  proxy_temp_path {w}/proxy;
  fastcgi_temp_path {w}/fastcgi;
  uwsgi_temp_path {w}/uwsgi;
  scgi_temp_path {w}/scgi;
  client_max_body_size 2m;
  upstream muse {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://muse;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      # nginx's defaults, like ingress-nginx: retry another upstream only on connect errors/timeouts.
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
    }}
  }}
}}
""")
        subprocess.run(
            ["nginx", "-t", "-q", "-c", str(self.conf), "-p", str(w)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def start(self, upstream_ports: list[int], weights: list[int] | None = None) -> Nginx:
        self._write(upstream_ports, weights)
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(self.conf), "-p", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            time.sleep(0.05)
        raise TimeoutError("nginx did not start")

    def set_upstream(self, upstream_ports: list[int], weights: list[int] | None = None) -> None:
        """The endpoints update: new config, then a graceful reload (old workers finish their requests)."""
        assert self.proc is not None
        self._write(upstream_ports, weights)
        self.proc.send_signal(signal.SIGHUP)
        self.reloads += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def error_log_lines(self) -> list[str]:
        path = self.workdir / "logs" / "error.log"
        return path.read_text().splitlines() if path.exists() else []


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    raw: str

    @property
    def failed(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())

    def summary(self) -> dict[str, Any]:
        """The load figures a benchmark's --json records, rounded as docs/benchmarks.md quotes them."""
        return {
            "requests": self.requests,
            "failed": self.failed,
            "non_2xx_3xx": self.non_2xx_3xx,
            "socket_errors": self.socket_errors,
            "rps": round(self.rps, 1),
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
        }


def parse_wrk(out: str) -> WrkResult:
    m = re.search(r"(\d+) requests in ([\d.]+\w+),", out)
    if not m:
        raise ValueError(f"unparsable wrk output:\n{out}")
    requests = int(m.group(1))
    seconds = _ms(m.group(2)) / 1000
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    latency = {f"p{p}": _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.MULTILINE)}
    return WrkResult(requests, seconds, rps, int(non.group(1)) if non else 0, errors, latency, out)


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    script: Path | None = None,
    headers: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Starts a bounded wrk run (-d seconds); collect with finish_wrk."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    for key, value in (headers or {}).items():
        args += ["-H", f"{key}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    return subprocess.Popen([*args, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(proc: subprocess.Popen[str], seconds: int) -> WrkResult:
    out, _ = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}:\n{out}")
    return parse_wrk(out)


def start_script(script: str, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """A stand-in server: `python -c script args...` with its output in `log_path` (the benches' broken
    candidates, each a few lines of the standard library)."""
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-c", script, *args], stdout=log, stderr=log)


def stop_process(proc: subprocess.Popen[Any] | None) -> None:
    """Cleanup only (never part of a measurement): SIGKILL a process still running and reap it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def interrupt_wrk(proc: subprocess.Popen[str]) -> WrkResult:
    """Ends an open-ended wrk run (run_wrk with a long -d): wrk prints its statistics on SIGINT."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return parse_wrk(out)


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """The full result of a run, when --json names a file."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_facts() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpus": str(os.cpu_count()),
        "cpu_model": cpu,
        "memory_gib": f"{mem_kib / 1024 / 1024:.1f}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": load,
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        .stdout.split("\n")[0]
        .strip()
        if shutil.which("wrk")
        else "missing",
    }


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"muse-bench-{prefix}-"))
