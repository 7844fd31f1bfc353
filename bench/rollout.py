"""Benchmark (a): a rolling update of 2+ Muse replicas behind nginx under sustained wrk load.

Each replica is replaced the way the kubelet and the endpoints controller do it:
  1. remove it from the nginx upstream and reload nginx (the endpoint disappears),
  2. preStop delay (``--prestop``, the Deployment's ``preStop: sleep``),
  3. SIGTERM; Muse drains (readiness 503, keeps serving for MUSE_DRAIN_SECONDS) and exits 0,
  4. start the replacement, wait for ``/readyz`` 200,
  5. add it to the upstream and reload nginx.
wrk keeps ``--connections`` keep-alive connections busy on ``GET /api/v1/policies`` (bearer token) for the
whole run. Every non-2xx response and every socket error counts as a failed request (goal: 0).

    python -m bench.rollout [--replicas 2] [--duration 60] [--prestop 5] [--runtime process|container]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_TOKEN,
    Nginx,
    Replica,
    RssSampler,
    finish_wrk,
    machine_facts,
    memory_kib,
    run_wrk,
    workdir,
)
from muse.contract import POLICIES_PATH


def run(
    replicas: int = 2,
    duration: int = 60,
    prestop: int = 5,
    drain: int = 5,
    connections: int = 16,
    runtime: str = "process",
    path: str = POLICIES_PATH,
    client_close: bool = False,
    reload_only: bool = False,
    static_upstream: bool = False,
) -> dict[str, Any]:
    """reload_only: the control run -- same nginx reloads at the same times, no replica is replaced.
    client_close: wrk sends ``Connection: close`` (one TCP connection per request) instead of keep-alive.
    static_upstream: no nginx reload at all -- the upstream lists the old and the (not yet started)
    replacement ports from the start, nothing is removed, no preStop: SIGTERM alone, so only Muse's drain
    (and nginx retrying a refused connect on the next upstream) protects the clients."""
    if replicas < 2:
        raise SystemExit("a rolling update needs at least 2 replicas")
    work = workdir("rollout")
    facts = machine_facts()
    # Long enough for every step of every replica plus warm-up and a tail at full strength.
    per_replica = prestop + drain + 8
    duration = max(duration, 5 + replicas * per_replica + 10)
    pods = [Replica(f"r{i}", runtime, drain).start(work) for i in range(replicas)]
    rest_kib = {p.name: memory_kib(p.pid)["VmRSS"] for p in pods}
    # Replacements get their ports now, so a static upstream can list them before they exist.
    new_pods: list[Replica] = [Replica(f"r{i}-new", runtime, drain) for i in range(replicas)]
    nginx = Nginx(work).start(
        [p.port for p in pods] + ([p.port for p in new_pods] if static_upstream else [])
    )
    events: list[dict[str, Any]] = []
    started: list[Replica] = []
    sampler = RssSampler([p.pid for p in pods])
    try:
        with sampler:
            t0 = time.monotonic()
            headers = {"Authorization": f"Bearer {BENCH_TOKEN}"}
            if client_close:
                headers["Connection"] = "close"
            wrk = run_wrk(
                f"http://127.0.0.1:{nginx.port}{path}",
                seconds=duration,
                connections=connections,
                threads=1,
                headers=headers,
            )
            time.sleep(5)
            live = list(pods)
            for index, old in enumerate(pods):
                step: dict[str, Any] = {"replica": old.name, "t_start_s": round(time.monotonic() - t0, 2)}
                if reload_only:
                    nginx.set_upstream([p.port for p in live if p is not old])
                    time.sleep(prestop + drain)
                    nginx.set_upstream([p.port for p in live])
                    events.append(
                        step
                        | {
                            "exit_code": 0,
                            "sigterm_to_exit_s": 0.0,
                            "replacement_ready_s": 0.0,
                            "t_end_s": round(time.monotonic() - t0, 2),
                        }
                    )
                    time.sleep(2)
                    continue
                live = [p for p in live if p is not old]
                if not static_upstream:
                    nginx.set_upstream([p.port for p in live])
                    time.sleep(prestop)
                code, seconds = old.sigterm_and_wait()
                step |= {"exit_code": code, "sigterm_to_exit_s": round(seconds, 2)}
                new = new_pods[index].start(work)
                started.append(new)
                sampler.add(new.pid)
                step |= {"replacement_ready_s": round(new.ready_after_s, 2)}
                live.append(new)
                if not static_upstream:
                    nginx.set_upstream([p.port for p in live])
                step["t_end_s"] = round(time.monotonic() - t0, 2)
                events.append(step)
                time.sleep(2)
            result = finish_wrk(wrk, duration)
        upstream_errors = [line for line in nginx.error_log_lines() if "[error]" in line or "[crit]" in line]
        # A refused connect is retried on the next upstream (proxy_next_upstream error): not a client failure.
        refused = [line for line in upstream_errors if "(111: Connection refused) while connecting" in line]
        other_errors = [line for line in upstream_errors if line not in refused]
        return {
            "benchmark": "rollout",
            "machine": facts,
            "config": {
                "replicas": replicas,
                "runtime": runtime,
                "duration_s": duration,
                "prestop_s": prestop,
                "drain_s": drain,
                "connections": connections,
                "path": path,
                "nginx_reloads": nginx.reloads,
                "client_keepalive": not client_close,
                "reload_only_control": reload_only,
                "static_upstream": static_upstream,
            },
            **result.summary(),
            "steps": events,
            "exit_codes_all_zero": all(e["exit_code"] == 0 for e in events),
            "nginx_refused_connects_retried": len(refused),
            "nginx_other_error_count": len(other_errors),
            "nginx_error_lines": other_errors[:20],
            "rss_mib": {
                "at_rest": {k: round(v / 1024, 1) for k, v in rest_kib.items()},
                "peak_under_load": {str(pid): round(v / 1024, 1) for pid, v in sampler.peak.items()},
            },
            "wrk_output": result.raw,
        }
    finally:
        nginx.stop()
        for pod in pods + started:
            pod.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rolling update behind nginx under wrk load")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--duration", type=int, default=60, help="minimum wrk duration in seconds")
    parser.add_argument("--prestop", type=int, default=5)
    parser.add_argument("--drain", type=int, default=5, help="MUSE_DRAIN_SECONDS of the replicas")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runtime", choices=["process", "container"], default="process")
    parser.add_argument("--client-close", action="store_true", help="wrk sends Connection: close")
    parser.add_argument(
        "--reload-only", action="store_true", help="control: the same nginx reloads, no replica replaced"
    )
    parser.add_argument(
        "--static-upstream",
        action="store_true",
        help="no nginx reload: old and replacement ports listed from the start, SIGTERM without removal",
    )
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args(argv)
    res = run(
        args.replicas,
        args.duration,
        args.prestop,
        args.drain,
        args.connections,
        args.runtime,
        client_close=args.client_close,
        reload_only=args.reload_only,
        static_upstream=args.static_upstream,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    print(summary(res))
    return 0 if res["failed"] == 0 and res["exit_codes_all_zero"] else 1


def summary(res: dict[str, Any]) -> str:
    c = res["config"]
    mode = "rollout"
    if c["reload_only_control"]:
        mode = "CONTROL (nginx reloads only, no replica replaced)"
    elif c.get("static_upstream"):
        mode = "rollout WITHOUT nginx reloads (static upstream, no endpoint removal, no preStop)"
    client = "keep-alive" if c["client_keepalive"] else "Connection: close"
    lines = [
        f"{mode}: {c['replicas']} replicas ({c['runtime']}) behind nginx, "
        f"wrk {c['connections']} {client} connections "
        f"on GET {c['path']} for {c['duration_s']} s; preStop {c['prestop_s']} s, drain {c['drain_s']} s",
        f"  requests {res['requests']}  failed {res['failed']} (non-2xx {res['non_2xx_3xx']}, "
        f"socket errors {res['socket_errors']})  rps {res['rps']}  "
        f"p50 {res['latency_ms'].get('p50')} ms  p99 {res['latency_ms'].get('p99')} ms",
    ]
    for step in res["steps"]:
        lines.append(
            f"  roll {step['replica']}: t={step['t_start_s']}..{step['t_end_s']} s, "
            f"exit {step['exit_code']} {step['sigterm_to_exit_s']} s after SIGTERM, "
            f"replacement ready in {step['replacement_ready_s']} s"
        )
    lines.append(
        f"  RSS MiB at rest {res['rss_mib']['at_rest']}, peak under load {res['rss_mib']['peak_under_load']}"
    )
    lines.append(
        f"  nginx: {c['nginx_reloads']} reloads, {res['nginx_refused_connects_retried']} refused upstream "
        f"connects retried elsewhere, {res['nginx_other_error_count']} other upstream errors"
    )
    if res["nginx_error_lines"]:
        lines.append(f"  first other nginx error: {res['nginx_error_lines'][0]}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
