"""`python -m bench.rollback`: the command of bench/rollback/__init__.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import write_json
from bench.rollback import SCENARIOS, run, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a failed release and its automatic rollback behind nginx")
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--deadline", type=int, default=10, help="progress deadline in seconds (scaled down)")
    parser.add_argument("--prestop", type=int, default=5)
    parser.add_argument("--drain", type=int, default=5, help="MUSE_DRAIN_SECONDS of the replicas")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--keepalive", action="store_true", help="wrk reuses connections (nginx reload artefact)"
    )
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args(argv)
    res = run(args.scenario, args.deadline, args.prestop, args.drain, args.connections, args.keepalive)
    write_json(args.json, res)
    print(summary(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
