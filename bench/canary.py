"""Benchmark (e): a canary release under load behind a weighted stand-in for the Gateway, with the release's
own gate and stepper.

Two replicas of the stable version (real ``python -m muse serve``, MUSE_VERSION=1.0.0) and one candidate
behind nginx, whose weighted round robin (``server ... weight=``) stands in for the Gateway's HTTPRoute
backendRef weights. wrk sends ``GET /api/v1/policies`` and, one request in four, ``POST /api/v1/evaluate``
with a one-resource inventory (at random: a fixed pattern lines up with nginx's round robin). The stepper
and the gate are the release's own (scripts/ci/canary.py and canary_gate.py, imported, not copied); what
they act on is replaced:

- a weight move is an nginx reload with the new weights (in Azure: ``pulumi up --target`` of the route, which
  takes longer: ``--move-seconds`` adds a modelled delay, default 0);
- the metrics are read from nginx's access log (per request: time, upstream, status, upstream time), the
  stand-in for ``increase(muse_http_requests_total{version=...}[window])`` and the p95 of the duration
  histogram in managed Prometheus;
- the end-to-end check is the real check script of the in-cluster Job
  (components/muse_workload/evaluate_check.py) run against the candidate's port directly, like the Job
  against the candidate's Service.

Scenarios:
  ``evaluate-fails``: the candidate is a real Muse behind a proxy that answers ``POST /api/v1/evaluate`` with
    500 and passes everything else through (its probes and health checks pass). With the end-to-end check it
    never gets user traffic; ``--no-end-to-end`` measures the metric gate alone.
  ``never-ready``: real Muse with a configuration it rejects, restarted with a back-off (bench/rollback.py's
    CrashLoopingReplica); the candidate up waits up to ``--deadline`` s (scaled down from the progress
    deadline) and fails; the weights never move.
  ``good``: a real Muse at MUSE_VERSION 2.0.0; every step holds.

Reported: client requests and failed ones (non-2xx + socket errors), the goal bound (the first step's share
of one step's requests), the candidate's measured share of the requests in each step, when the first bad
check came and when the traffic was back on the stable replicas (time to abort).

    python -m bench.canary --scenario evaluate-fails|never-ready|good [--no-end-to-end] [--step 20]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_TOKEN,
    ROOT,
    Nginx,
    free_port,
    machine_facts,
    parse_wrk,
    run_wrk,
    wait_ready,
    workdir,
)
from bench.rollback import CrashLoopingReplica, VersionedReplica
from components.muse_workload import evaluate_check

sys.path.insert(0, str(ROOT / "scripts" / "ci"))
from canary import Plan, run_canary
from canary_gate import Gate, Sample, Thresholds

SCENARIOS = ("evaluate-fails", "never-ready", "good")
PROBES = ("/healthz", "/readyz")

# The candidate whose evaluate is broken: a proxy to a real Muse that answers POST /api/v1/evaluate with 500.
BROKEN_EVALUATE = """
import http.client, json, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, upstream = int(sys.argv[1]), int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _forward(self, body):
        connection = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()
    def do_GET(self):
        self._forward(None)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/api/v1/evaluate"):
            data = json.dumps({"error": "internal", "detail": "broken release"}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._forward(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.serve_forever()
"""

# One request in four, at random, is an evaluate: a fixed 3:1 pattern would line up with nginx's deterministic
# weighted round robin and hand the candidate a skewed mix (seen: half of its requests were evaluates).
LUA = """-- generated by bench/canary.py: GET /api/v1/policies, and POST /api/v1/evaluate with probability 1/4
local body = io.open("{body}"):read("*a")
math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Connection"] = "close"
request = function()
  if math.random() < 0.25 then
    return wrk.format("POST", "/api/v1/evaluate", {{["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer {token}", ["Connection"] = "close"}}, body)
  end
  return wrk.format("GET", "/api/v1/policies")
end
"""


@dataclass
class BrokenEvaluateCandidate:
    """A real Muse (the upstream) behind the BROKEN_EVALUATE proxy (the candidate's port)."""

    name: str
    port: int = field(default_factory=free_port)
    upstream: VersionedReplica | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, log_dir: Path) -> BrokenEvaluateCandidate:
        self.upstream = VersionedReplica(f"{self.name}-muse", "process", 5, version="2.0.0").start(log_dir)
        with (log_dir / f"{self.name}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BROKEN_EVALUATE, str(self.port), str(self.upstream.port)],
                stdout=log, stderr=log,
            )  # fmt: skip
        wait_ready(self.port)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.upstream is not None:
            self.upstream.kill()


class AccessLog:
    """nginx's access log as the metric source: the candidate's requests, 5xx and p95 over a window."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.entries: list[tuple[float, int, int, float, str]] = []  # (time, port, status, seconds, uri)

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) < 6 or parts[1] == "-":
                continue
            upstream = parts[1].split(",")[-1].strip()
            seconds = parts[3].split(",")[-1].strip()
            self.entries.append(
                (float(parts[0]), int(upstream.rsplit(":", 1)[1]), int(parts[2]),
                 float(seconds) if seconds != "-" else 0.0, parts[5])
            )  # fmt: skip

    def sample(self, port: int, window: float) -> Sample:
        self._read()
        since = time.time() - window
        mine = [e for e in self.entries if e[0] >= since and e[1] == port and e[4] not in PROBES]
        durations = sorted(e[3] for e in mine)
        p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))] if durations else None
        return Sample(len(mine), sum(1 for e in mine if e[2] >= 500), p95)

    def share(self, port: int, start: float, end: float) -> tuple[int, int]:
        """(requests the candidate answered, all requests) between two wall-clock times."""
        self._read()
        inside = [e for e in self.entries if start <= e[0] < end and e[4] not in PROBES]
        return sum(1 for e in inside if e[1] == port), len(inside)


def run(
    scenario: str,
    step_seconds: int = 20,
    check_seconds: int = 5,
    steps: tuple[int, ...] = (10, 50, 100),
    end_to_end: bool = True,
    move_seconds: float = 0.0,
    deadline: int = 10,
    connections: int = 16,
) -> dict[str, Any]:
    if scenario not in SCENARIOS:
        raise SystemExit(f"--scenario must be one of {SCENARIOS}")
    work = workdir(f"canary-{scenario}")
    facts = machine_facts()
    stable = [VersionedReplica(f"stable{i}", "process", 5).start(work) for i in range(2)]
    stable_ports = [r.port for r in stable]
    nginx = Nginx(work, access_log=True).start(stable_ports)
    log = AccessLog(work / "logs" / "access.log")
    (work / "inventory.json").write_text(json.dumps(evaluate_check.CANNED_INVENTORY))
    lua = work / "mix.lua"
    lua.write_text(LUA.format(body=work / "inventory.json", token=BENCH_TOKEN))
    wrk = run_wrk(f"http://127.0.0.1:{nginx.port}/", seconds=600, connections=connections, script=lua)
    candidate: Any = None
    events: dict[str, float] = {}
    weights: list[tuple[float, int, float]] = []  # (monotonic, weight, wall clock)
    t0 = time.monotonic()

    def mark(name: str) -> None:
        events[name] = round(time.monotonic() - t0, 2)

    try:
        time.sleep(3)
        mark("release_started")
        outcome = None
        if scenario == "never-ready":
            candidate = CrashLoopingReplica("candidate").start(work)
            while time.monotonic() - t0 - events["release_started"] < deadline:
                if candidate.ready():
                    raise RuntimeError("the never-ready candidate became ready")
                time.sleep(0.2)
            mark("candidate_up_failed")  # pulumi up fails at the progress deadline; no weight was moved
        else:
            if scenario == "good":
                candidate = VersionedReplica("candidate", "process", 5, version="2.0.0").start(work)
            else:
                candidate = BrokenEvaluateCandidate("candidate").start(work)
            mark("candidate_ready")
            token_file = work / "token"
            token_file.write_text(BENCH_TOKEN)
            thresholds = Thresholds(check_seconds=check_seconds, window_seconds=2 * check_seconds)

            class Ops:
                def set_weight(self, weight: int) -> None:
                    time.sleep(move_seconds)
                    # nginx refuses weight=0 (ngx_http_upstream_module): a 0 % side leaves the upstream.
                    pairs = [(p, 100 - weight) for p in stable_ports] + [(candidate.port, 2 * weight)]
                    kept = [(p, w) for p, w in pairs if w > 0]
                    nginx.set_upstream([p for p, _ in kept], [w for _, w in kept])
                    weights.append((time.monotonic(), weight, time.time()))

                def sample(self) -> Sample:
                    return log.sample(candidate.port, thresholds.window_seconds)

                def end_to_end(self) -> tuple[bool, str]:
                    if not end_to_end:
                        return True, "left out (--no-end-to-end)"
                    result = subprocess.run(
                        [sys.executable, "-c", evaluate_check.script(), f"http://127.0.0.1:{candidate.port}",
                         str(token_file), evaluate_check.EXPECTED_POLICY, str(evaluate_check.REQUESTS)],
                        capture_output=True, text=True, timeout=60, check=False,
                    )  # fmt: skip
                    return result.returncode == 0, result.stdout.strip()

            events["canary_started_monotonic"] = time.monotonic()
            outcome = run_canary(
                Plan.of(steps, step_seconds, check_seconds), Ops(), Gate(thresholds),
                clock=time.monotonic, sleep=time.sleep, deadline=time.monotonic() + 3600, log=lambda _: None,
            )  # fmt: skip
            if not outcome.promoted and weights:
                # Abort: all traffic back to the stable replicas at once.
                time.sleep(move_seconds)
                nginx.set_upstream(stable_ports)
                weights.append((time.monotonic(), 0, time.time()))
            mark("decided")
        time.sleep(3)
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=60)
        result = parse_wrk(out)
        mark("end")
        per_step = []
        for index, (at, weight, wall) in enumerate(weights):
            until = weights[index + 1][2] if index + 1 < len(weights) else time.time()
            mine, total = log.share(candidate.port, wall, until)
            per_step.append(
                {"weight": weight, "from_s": round(at - t0, 2), "seconds": round(until - wall, 2),
                 "requests": total, "candidate_requests": mine,
                 "candidate_share": round(mine / total, 4) if total else None}
            )  # fmt: skip
        release_seconds = max(events["end"] - events["release_started"], 1e-9)
        rps = result.requests / max(result.seconds, 1e-9)
        bound = round(steps[0] / 100 * rps * step_seconds)
        first_bad = outcome.first_bad_check_at if outcome else None
        back_at = next((at for at, w, _ in weights[1:] if w == 0), None)
        started = events.pop("canary_started_monotonic", None)
        time_to_abort = (
            round(back_at - (started + first_bad), 2)
            if started is not None and first_bad is not None and back_at is not None
            else None
        )
        return {
            "benchmark": "canary",
            "machine": facts,
            "config": {
                "scenario": scenario,
                "steps": list(steps),
                "step_seconds": step_seconds,
                "check_seconds": check_seconds,
                "window_seconds": 2 * check_seconds,
                "end_to_end": end_to_end,
                "move_seconds": move_seconds,
                "deadline_s": deadline,
                "connections": connections,
                "nginx_reloads": nginx.reloads,
            },
            "requests": result.requests,
            "failed": result.failed,
            "non_2xx_3xx": result.non_2xx_3xx,
            "socket_errors": result.socket_errors,
            "rps": round(rps, 1),
            "goal_failed_at_most": bound,
            "release_seconds": round(release_seconds, 2),
            "outcome": None
            if outcome is None
            else {
                "promoted": outcome.promoted,
                "reason": outcome.reason,
                "first_bad_check_at_s": first_bad,
                "decided_at_s": outcome.decided_at,
                "events": outcome.events,
            },
            "time_to_abort_after_first_bad_check_s": time_to_abort,
            "steps_measured": per_step,
            "events_s": events,
            "wrk_output": result.raw,
        }
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait(timeout=10)
        nginx.stop()
        for replica in [*stable, candidate]:
            if replica is not None:
                replica.kill()


def summary(res: dict[str, Any]) -> str:
    c, o = res["config"], res["outcome"]
    lines = [
        f"canary ({c['scenario']}{'' if c['end_to_end'] else ', no end-to-end check'}): steps {c['steps']} x "
        f"{c['step_seconds']} s, checks every {c['check_seconds']} s over {c['window_seconds']} s, weight "
        f"move +{c['move_seconds']} s; wrk {c['connections']} connections, 1 in 4 requests POST evaluate",
        f"  requests {res['requests']}  failed {res['failed']} (goal <= {res['goal_failed_at_most']}: first "
        f"step's share of one step at {res['rps']} rps)",
    ]
    if o is not None:
        lines.append(
            f"  {'promoted' if o['promoted'] else 'ABORTED: ' + o['reason']}; first bad check at "
            f"{o['first_bad_check_at_s']} s, time to abort after it: "
            f"{res['time_to_abort_after_first_bad_check_s']} s"
        )
    for step in res["steps_measured"]:
        lines.append(
            f"  weight {step['weight']:>3} % for {step['seconds']:>6} s: candidate answered "
            f"{step['candidate_requests']} of {step['requests']} ({step['candidate_share']})"
        )
    if c["scenario"] == "never-ready":
        failed_at = res["events_s"].get("candidate_up_failed")
        lines.append(f"  candidate up failed at {failed_at} s; weights never moved")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a canary release under load behind weighted nginx")
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--step", type=int, default=20, help="seconds per step (scaled down from >= 60)")
    parser.add_argument("--check", type=int, default=5, help="seconds between checks (30 in the release)")
    parser.add_argument("--no-end-to-end", action="store_true", help="the metric gate alone")
    parser.add_argument("--move-seconds", type=float, default=0.0, help="modelled time of a weight move")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    res = run(
        args.scenario, args.step, args.check, end_to_end=not args.no_end_to_end,
        move_seconds=args.move_seconds, connections=args.connections,
    )  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    print(summary(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
