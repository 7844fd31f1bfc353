"""Runs scripts/ci/deploy.py's main() in this process with a virtual clock, maybe with one guard taken out.

    python canary_driver.py [--without <guard>] <deploy.py arguments...>

The canary waits for real: 30 s between gate checks, steps of a minute or more, Retry-After and backoff
pauses. Here a sleep of a second or more passes at once and moves `time.monotonic` and `time.time` on by its
length, so a release of three one-minute steps runs in seconds of real time with the same decisions; the
deadlines (JOB_STARTED_AT, --deadline-minutes) and the metrics' timestamps count the virtual time too. Shorter
sleeps really sleep, and the modules that poll child processes and sockets (subprocess, threading, socket,
ssl) are imported first and keep the real clock: a command or a query takes the real time it takes. Everything
else is deploy.py as CI runs it: its own process, its signal handlers, the commands it starts.

`--without` names a guard to take out, for the negative controls (each test shows its assertions fail
without the behaviour they guard).
"""

from __future__ import annotations

import http.client  # noqa: F401 - imported before the patch: keeps the real clock
import os
import socket  # noqa: F401
import ssl  # noqa: F401
import subprocess  # noqa: F401
import sys
import threading  # noqa: F401
import time
import urllib.request  # noqa: F401
from pathlib import Path
from typing import Any

CI = Path(__file__).resolve().parents[2] / "scripts" / "ci"
_monotonic, _sleep = time.monotonic, time.sleep
_skipped = [0.0]


_time = time.time
# Where the skipped seconds go for the stand-ins in the test's own process (the Prometheus API's timestamps
# follow this process's virtual wall clock); unset: nowhere.
_SKIPPED_FILE = os.environ.get("CANARY_DRIVER_SKIPPED", "")


def monotonic() -> float:
    return _monotonic() + _skipped[0]


def wall() -> float:
    """time.time on the same virtual clock: the canary compares it with the metrics' timestamps."""
    return _time() + _skipped[0]


def sleep(seconds: float) -> None:
    if seconds < 1:
        _sleep(seconds)
    else:
        _skipped[0] += seconds
        _publish()


def _publish() -> None:
    if _SKIPPED_FILE:  # whole or not at all: the stand-in reads it from another thread
        written = Path(_SKIPPED_FILE + ".tmp")
        written.write_text(str(_skipped[0]))
        written.replace(_SKIPPED_FILE)


def without(guard: str) -> None:
    import canary_gate
    import release_canary

    import deploy

    judge = canary_gate.judge
    if guard == "gate":  # every check with traffic is healthy, whatever the candidate does

        def healthy(sample: Any, thresholds: Any = canary_gate.THRESHOLDS) -> tuple[bool | None, list[str]]:
            return judge(sample, thresholds) if not sample.has_signal else (False, [])

        canary_gate.judge = healthy
    elif guard == "route-first":  # the abort goes straight to the rollback, the route left where it was
        abort = release_canary.abort
        release_canary.abort = lambda ctx, tools, route, reason: abort(ctx, tools, "", reason)
    elif guard == "no-data-hold":  # a check without requests counts as a healthy one
        canary_gate.Sample.has_signal = property(lambda self: True)  # type: ignore[method-assign,assignment]

        def blind(sample: Any, thresholds: Any = canary_gate.THRESHOLDS) -> tuple[bool | None, list[str]]:
            bad, found = judge(sample, thresholds)
            return (False, []) if bad is None else (bad, found)

        canary_gate.judge = blind
    elif guard == "route-back":  # no `kubectl patch`: neither on a signal nor as an abort's first move
        release_canary.route_back = lambda *args: None
    elif guard == "recovery":
        deploy.recover = lambda *args: ""
    elif guard == "convergence":
        deploy.CommandTools.converged = lambda self, cwd=None: deploy.Step("convergence check", 0, "")  # type: ignore[method-assign]
    elif guard == "retry-after":  # the old PrometheusSource: its backoff, whatever the server asked
        canary_gate.RETRY_AFTER_STATUSES = frozenset()
    else:
        raise SystemExit(f"canary_driver: unknown guard {guard!r}")


def main(argv: list[str]) -> int:
    time.monotonic, time.sleep, time.time = monotonic, sleep, wall  # type: ignore[assignment]
    _publish()  # this run's clock, not a previous run's
    sys.path.insert(0, str(CI))
    import deploy

    if argv[:1] == ["--without"]:
        without(argv[1])
        argv = argv[2:]
    code = deploy.main(argv)
    print(f"canary_driver: {_skipped[0]:.0f} s of sleeps passed at once", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
