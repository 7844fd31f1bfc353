"""scripts/ci/check_job.py: creates the end-to-end check's Job, waits for its pod's verdict, returns its log;
against a stand-in kubectl that answers as kubectl does (`create -o name` prints `job.batch/<name>` for a
generateName, `get -o jsonpath` prints the JobStatus counts, empty while unset)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "ci"))

import check_job

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"generateName": "muse-evaluate-check-", "namespace": "muse-dev"},
}

KUBECTL = """
import json, sys
from pathlib import Path
state = Path(sys.argv[1]); args = sys.argv[2:]
world = json.loads(state.read_text())
world["calls"].append(args)
if args[0] == "create":
    world["created"] = json.loads(sys.stdin.read())
    print("job.batch/muse-evaluate-check-x7k2q")
elif args[0] == "get":
    world["polls"] += 1
    done = world["polls"] >= world["finish_after"]
    print(world["status"] if done else ",", end="")
elif args[0] == "logs":
    print(world["log"])
state.write_text(json.dumps(world))
"""


def kubectl(tmp_path: Path, status: str, log: str, finish_after: int = 2) -> tuple[list[str], Path]:
    state = tmp_path / "world.json"
    state.write_text(
        json.dumps({"calls": [], "polls": 0, "finish_after": finish_after, "status": status, "log": log})
    )
    script = tmp_path / "kubectl.py"
    script.write_text(KUBECTL)
    return [sys.executable, str(script), str(state)], state


def test_a_passing_check_returns_its_log(tmp_path: Path) -> None:
    command, state = kubectl(tmp_path, "1,", "OK: 20 POST /api/v1/evaluate answered 200 with MUSE-TAG-001")
    ok, detail = check_job.run(JOB, kubectl=command, sleep=lambda _: None)
    world = json.loads(state.read_text())
    assert ok and "OK: 20 POST" in detail and detail.startswith("job.batch/muse-evaluate-check-x7k2q")
    assert world["created"] == JOB
    assert ["logs", "job.batch/muse-evaluate-check-x7k2q", "-n", "muse-dev", "--tail", "20"] in world["calls"]


def test_a_failed_pod_fails_the_check_with_its_output(tmp_path: Path) -> None:
    command, _ = kubectl(tmp_path, ",1", "FAIL: POST /api/v1/evaluate answered 500 (request 1 of 20)")
    ok, detail = check_job.run(JOB, kubectl=command, sleep=lambda _: None)
    assert not ok and "answered 500" in detail


@pytest.mark.parametrize("status", [",", "0,0"])
def test_a_job_that_never_finishes_fails_at_the_timeout(tmp_path: Path, status: str) -> None:
    """Negative control of the wait: a Job without a verdict is not a pass."""
    command, _ = kubectl(tmp_path, status, "", finish_after=1)
    clock = iter(range(0, 1000, 10))
    ok, detail = check_job.run(
        JOB, kubectl=command, timeout=30, clock=lambda: float(next(clock)), sleep=lambda _: None
    )
    assert not ok and "did not finish within 30 s" in detail


def hanging_kubectl(tmp_path: Path) -> list[str]:
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(30)\n")
    return [sys.executable, str(script)]


def test_a_kubectl_that_hangs_fails_the_check_instead_of_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """subprocess.run(timeout=...) kills the child and raises TimeoutExpired (Python docs, subprocess.run);
    mid-canary that must be a failed check, which aborts the release, not an exception past it."""
    monkeypatch.setattr(check_job, "KUBECTL_TIMEOUT_SECONDS", 0.3)
    ok, detail = check_job.run(JOB, kubectl=hanging_kubectl(tmp_path), sleep=lambda _: None)
    assert not ok and "TimeoutExpired" in detail
    missing = check_job.run(JOB, kubectl=[str(tmp_path / "no-kubectl")], sleep=lambda _: None)
    assert not missing[0] and "FileNotFoundError" in missing[1]


def test_negative_control_the_bare_wait_raises_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check_job, "KUBECTL_TIMEOUT_SECONDS", 0.3)
    with pytest.raises(subprocess.TimeoutExpired):
        check_job._run(JOB, kubectl=hanging_kubectl(tmp_path), sleep=lambda _: None)
