"""`make bench` / `python -m bench`: every service benchmark, figures printed and saved as JSON.

(a) rolling update behind nginx under wrk load; (b) POST /api/v1/evaluate throughput; (c) RSS per replica;
(d) a failed release and its rollback (bench/rollback/); (e) a canary release (bench/canary.py).
Replicas are `python -m muse serve` processes; with podman and `--containers` (a) and (b) run again with
containers of the image. About 16 minutes; results in build/bench/*.json. Not part of `make test`.
The runs of each benchmark: docs/benchmarks.md#the-benchmark-suite."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

from bench import canary, evaluate, rollback, rollout
from bench.common import IMAGE, ROOT, machine_facts

OUT = ROOT / "build" / "bench"


def _save(name: str, res: dict[str, object]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(res, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per evaluate load run")
    parser.add_argument("--rollout-duration", type=int, default=60)
    parser.add_argument(
        "--containers", action=argparse.BooleanOptionalAction, default=bool(shutil.which("podman"))
    )
    args = parser.parse_args(argv)
    print("machine:", json.dumps(machine_facts()), flush=True)
    ok = True

    runtimes = ["process"]
    if args.containers:
        build = subprocess.run(
            [str(ROOT / "scripts" / "build-image.sh")], capture_output=True, text=True, timeout=1800, cwd=ROOT
        )
        if build.returncode != 0:
            print(f"image build failed, container runs skipped:\n{build.stderr[-2000:]}", file=sys.stderr)
            ok = False
        else:
            runtimes.append("container")
            print(f"image {IMAGE} built", flush=True)

    for runtime in runtimes:
        for name, kwargs in (
            ("keepalive", {}),
            ("control-reload-only", {"reload_only": True}),
            ("connection-close", {"client_close": True}),
            ("static-upstream-no-reload", {"static_upstream": True}),
        ):
            if runtime == "container" and name == "control-reload-only":
                continue  # the control isolates nginx; the replicas' runtime does not change it
            res = rollout.run(duration=args.rollout_duration, runtime=runtime, **kwargs)  # type: ignore[arg-type]
            _save(f"rollout-{runtime}-{name}", res)
            print(rollout.summary(res), flush=True)
            ok &= res["exit_codes_all_zero"]
        for resources in (200, 1900):
            res = evaluate.run(resources=resources, duration=args.duration, runtime=runtime)
            _save(f"evaluate-{runtime}-{resources}", res)
            print(evaluate.summary(res), flush=True)
            ok &= all(r["failed"] == 0 for r in res["runs"]) and res["exit_code"] == 0
    for scenario, keepalive in (("never-ready", False), ("never-ready", True), ("ready-but-broken", False)):
        res = rollback.run(scenario, keepalive=keepalive)
        _save(f"rollback-{scenario}{'-keepalive' if keepalive else ''}", res)
        print(rollback.summary(res), flush=True)
        # The goal (0 failed) holds where the failed release never takes traffic; a release that passes its
        # readiness probe serves until the smoke check and the rollback (docs/benchmarks.md, (d)).
        if scenario == "never-ready":
            ok &= res["failed"] == 0
    for scenario, end_to_end in (
        ("evaluate-fails", True),
        ("evaluate-fails", False),
        ("fails-all", False),
        ("never-ready", True),
        ("good", True),
    ):
        res = canary.run(scenario, canary.Timing.of_stack("prod"), end_to_end=end_to_end)
        _save(f"canary-{scenario}{'' if end_to_end else '-metrics-only'}", res)
        print(canary.summary(res), flush=True)
        # The goals (docs/benchmarks.md, (e)), judged by canary.judge on the run's counts.
        ok &= res["all_met"]
    print(f"results: {OUT.relative_to(ROOT)}/*.json")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
