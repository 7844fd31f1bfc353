"""scripts/ci/deploy.py's guards around the engine (scripts/ci/engine.py), run for real against the stand-ins
of tests/workflows/release_tools.py: a SIGINT reaches the running `pulumi up` and nothing more starts; the
release's own deadline interrupts a hung update; the next run recovers the pending operations a killed update
left; a perpetual diff right after a release fails the job. Each has a negative control: deploy.py with that
guard taken out lets the defect through."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import loopback
from tests.workflows.test_deploy_rollback import COMMIT, DEPLOY, NEW, Release, ingress_handler

pytestmark = pytest.mark.slow  # deploy.py and its stand-ins as processes, updates that wait for a signal

CI = DEPLOY.parent
sys.path.insert(0, str(CI))

import engine  # noqa: E402

# What main.yml's deploy jobs set (the environment's own state container, stack/naming.py).
BACKEND = "azblob://state-dev?storage_account=stmusestatem7k2"


def _env(release: Release) -> dict[str, str]:
    return release.deploy_env(PULUMI_BACKEND_URL=BACKEND)


ARGS = ["--stack", "dev", "--image-tag", NEW, "--commit", COMMIT, "--policy-pack", "policy"]
# deploy.py with one guard taken out, for the negative controls (it runs in its own process, like in CI).
WITHOUT = {
    "signals": "engine.Supervisor.install = lambda self: None",
    "recovery": "deploy.recover = lambda *args: ''",
    "convergence": "deploy.converged = lambda *args: deploy.Step('convergence check', 0, '')",
}


def start(release: Release, *extra: str, without: str | None = None) -> subprocess.Popen[str]:
    if without is None:
        command = [str(DEPLOY), *ARGS, *extra]
    else:
        driver = (
            f"import sys; sys.path.insert(0, {str(CI)!r}); import deploy, engine; {WITHOUT[without]}; "
            "sys.exit(deploy.main(sys.argv[1:]))"
        )
        command = [sys.executable, "-c", driver, *ARGS, *extra]
    return subprocess.Popen(
        command,
        env=_env(release),
        cwd=release.dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def wait_for(release: Release, key: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if release.world().get(key):
                return
        except json.JSONDecodeError:
            pass
        time.sleep(0.05)
    raise TimeoutError(key)


def test_sigint_reaches_the_running_update_and_nothing_more_starts(release: Release) -> None:
    release.update(up_seconds=60)
    process = start(release)
    wait_for(release, "up_running")
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)  # what the runner sends the step's process first (row 7)
    code, out = finish(process, timeout=30)
    world = release.world()
    assert world["up_signals"] == ["SIGINT"], out  # Pulumi's graceful cancel, once
    assert time.monotonic() - sent < 7.5, "not stopped within the runner's SIGINT grace"
    assert code == 1 and "SIGINT received" in out
    assert len(release.calls("pulumi up")) == 1, "a rollback was started after the signal"
    # The interrupted update left its operation pending: the next run recovers it before anything else.
    assert world["pending_operations"]
    release.update(up_seconds=0)
    code, out = finish(start(release))
    world = release.world()
    refresh = [i for i, c in enumerate(world["calls"]) if c.startswith("pulumi refresh")]
    ups = [i for i, c in enumerate(world["calls"]) if c.startswith("pulumi up")]
    assert refresh and "--clear-pending-creates" in world["calls"][refresh[-1]]
    assert refresh[-1] < ups[-1] and not world.get("up_with_pending_operations")
    assert code == 0, out
    assert "Recovered an interrupted update" in release.summary.read_text()


def test_negative_control_without_the_handler_the_update_never_hears_of_the_cancel(release: Release) -> None:
    release.update(up_seconds=3)
    process = start(release, without="signals")
    wait_for(release, "up_running")
    process.send_signal(signal.SIGINT)
    finish(process, timeout=60)
    # Python's KeyboardInterrupt ends deploy.py's wait, the Popen context waits for the child, which runs on
    # unaware: on GitHub the runner's kill would then end it mid-operation.
    assert not release.world().get("up_signals")


def test_the_deadline_interrupts_a_hung_update_and_the_failure_is_still_reported(release: Release) -> None:
    release.update(up_seconds=120)
    started = time.monotonic()
    code, out = finish(
        start(release, "--deadline-minutes", "0.05", "--hard-deadline-minutes", "2"), timeout=90
    )
    world = release.world()
    assert world["up_signals"] == ["SIGINT"], out
    assert time.monotonic() - started < 60
    # The update stopped before the Deployment changed: the previous image serves, the job says so (the
    # commands after the deadline ran in the hard deadline's time, not interrupted at once).
    assert code == 1, out
    assert "the previous image still serves" in release.summary.read_text()
    assert not world.get("up_signals", [])[1:]


def test_recovery_clears_pending_operations_before_the_release(release: Release) -> None:
    pending = [
        {
            "resource": {"urn": "urn:pulumi:dev::muse::kubernetes:apps/v1:Deployment::muse"},
            "type": "updating",
        },
        {
            "resource": {"urn": "urn:pulumi:dev::muse::azure-native:storage:StorageAccount::x"},
            "type": "creating",
        },
    ]
    release.update(pending_operations=pending)
    code, out = finish(start(release))
    assert code == 0, out
    assert release.world()["pending_operations"] == []
    summary = release.summary.read_text()
    assert "2 pending operation(s)" in summary and "Dropped pending creates" in summary
    assert not release.world().get("up_with_pending_operations")


def test_negative_control_without_recovery_the_release_updates_on_top_of_pending_operations(
    release: Release,
) -> None:
    release.update(pending_operations=[{"resource": {"urn": "urn:x"}, "type": "creating"}])
    finish(start(release, without="recovery"))
    assert release.world().get("up_with_pending_operations")


def test_a_locked_stack_stops_the_release_and_names_pulumi_cancel(release: Release) -> None:
    release.update(pending_operations=[{"resource": {"urn": "urn:x"}, "type": "updating"}], locked=True)
    code, out = finish(start(release))
    assert code == 64 and "pulumi cancel --stack dev --yes" in out
    # ... against the stack's own backend: a `pulumi cancel` run against another login finds no such lock.
    assert f"against the backend `{BACKEND}`" in out and "scripts/stack dev cancel --yes" in out
    assert not release.calls("pulumi up") and not release.calls("pulumi cancel")


def test_the_hint_names_the_backend_it_was_given_and_says_when_it_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", BACKEND)
    assert BACKEND in engine.backend_of("dev")
    monkeypatch.delenv("PULUMI_BACKEND_URL")
    assert "PULUMI_BACKEND_URL is unset" in engine.backend_of("dev")


PERPETUAL_DIFF = {
    "exit": 1,
    "output": "Previewing update (dev):\n    ~ azure-native:containerservice:ManagedCluster aks updated "
    "[diff: ~kubernetesVersion]\nerror: no changes were expected but changes were proposed",
}


def test_a_perpetual_diff_after_the_release_fails_the_job(release: Release) -> None:
    release.update(preview=PERPETUAL_DIFF)
    code, out = finish(start(release))
    assert code == 4, out
    [preview] = release.world()["preview_args"]
    assert "--expect-no-changes" in preview and "--refresh" in preview
    assert "convergence check (preview --expect-no-changes): failed" in release.summary.read_text()
    # The release itself stands (nothing was rolled back: the new image serves).
    assert release.world()["serving_image"] == NEW


def test_negative_control_without_the_convergence_check_the_perpetual_diff_passes(release: Release) -> None:
    release.update(preview=PERPETUAL_DIFF)
    code, _ = finish(start(release, without="convergence"))
    assert code == 0


@pytest.mark.parametrize("exec_", [True, False])
def test_only_an_exec_step_lets_the_runners_sigint_reach_the_script(tmp_path: Path, exec_: bool) -> None:
    """The runner signals the step's shell (github-behaviour.md row 7; `run:` is `bash -e {0}` on Linux,
    GitHub docs "Workflow syntax", jobs.<job_id>.steps[*].shell). A non-interactive bash waiting for a
    foreground child does not pass SIGINT on; with `exec` the script is that process. Negative control: the
    same step without `exec`."""
    marker = tmp_path / "got"
    child = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGINT, lambda *a: (open({str(marker)!r}, 'w').write('INT'), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(10)\n"
    )
    (tmp_path / "child.py").write_text(child)
    step = tmp_path / "step.sh"
    step.write_text(f"{'exec ' if exec_ else ''}{sys.executable} {tmp_path / 'child.py'}\n")
    shell = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(step)], stdout=subprocess.PIPE, text=True
    )
    assert shell.stdout is not None and shell.stdout.readline().strip() == "ready"
    shell.send_signal(signal.SIGINT)
    try:
        shell.wait(timeout=3)
    except subprocess.TimeoutExpired:
        shell.kill()
        shell.wait()
    assert marker.exists() is exec_


def test_supervisor_interrupts_once_then_terminates_after_the_grace() -> None:
    """A command that ignores the first SIGINT (an update stuck in a provider call) gets SIGTERM after the
    grace: Pulumi terminates on the second signal."""
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, lambda *a: print('INT', flush=True))\n"
        "time.sleep(60)"
    )
    supervisor = engine.Supervisor(deadline=time.monotonic() + 0.5, grace=1.0)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    code = supervisor.wait(process)
    assert code == -signal.SIGTERM
    assert 1.4 <= time.monotonic() - started < 10
    assert supervisor.interrupted == ["deadline"]
    assert (process.stdout.read() if process.stdout else "").count("INT") == 1


def test_pending_operations_are_read_from_the_export_format() -> None:
    state: dict[str, Any] = {
        "version": 3,
        "deployment": {"resources": [], "pending_operations": [{"type": "deleting"}]},
    }
    assert engine.pending_operations(state) == [{"type": "deleting"}]
    assert engine.pending_operations({"version": 3, "deployment": {}}) == []


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    """The stand-in world of test_deploy_rollback.py, its ingress on loopback."""
    from http.server import ThreadingHTTPServer

    holder: dict[str, Release] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), ingress_handler(holder))
    loopback.start(server)
    holder["release"] = Release(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    yield holder["release"]
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _restore_signals() -> Iterator[None]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)


INT_COUNTER = (
    "import signal, sys, time\n"
    "count = []\n"
    "signal.signal(signal.SIGINT, lambda *a: (count.append(1), print('INT', flush=True)))\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
    "print('ready', flush=True)\n"
    "end = time.monotonic() + {seconds}\n"
    "while time.monotonic() < end and not count:\n"
    "    time.sleep(0.02)\n"
    "time.sleep({after})\n"
)


def _child(seconds: float = 20, after: float = 0.0) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", INT_COUNTER.format(seconds=seconds, after=after)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


class OldSupervisor(engine.Supervisor):
    """The former rule (negative control): once "deadline" was recorded, no later command got a SIGINT."""

    def wait(self, process: subprocess.Popen[str]) -> int:
        self.process = process
        while True:
            try:
                return process.wait(timeout=max(0.05, min(1.0, self.remaining())))
            except subprocess.TimeoutExpired:
                if self.remaining() <= 0 and "deadline" not in self.interrupted:
                    self.interrupted.append("deadline")
                    process.send_signal(signal.SIGINT)
                if self.remaining() <= -self.grace:
                    process.kill()
                    return process.wait()


@pytest.mark.parametrize("kind", [engine.Supervisor, OldSupervisor], ids=["now", "negative-control"])
def test_the_abort_rollback_is_interrupted_at_the_hard_deadline_too(kind: type[engine.Supervisor]) -> None:
    """The release's deadline interrupts the update; the abort moves the deadline to the hard deadline
    (release_canary.abort) and its rollback must get its SIGINT there as well, not only SIGTERM 90 s on."""
    supervisor = kind(deadline=time.monotonic() + 0.3, grace=0.5)
    first = _child()
    assert supervisor.wait(first) == 0  # SIGINT at the release's deadline: the update stops cleanly
    supervisor.deadline = time.monotonic() + 0.3  # the hard deadline, for the rollback
    rollback = _child()
    supervisor.wait(rollback)
    got_int = "INT" in (rollback.stdout.read() if rollback.stdout else "")
    assert got_int is (kind is engine.Supervisor)


def test_a_command_that_ignores_sigint_and_sigterm_is_killed_without_raising() -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    supervisor = engine.Supervisor(deadline=time.monotonic() + 0.2, grace=0.3, term_wait=0.5)
    assert supervisor.wait(process) == -signal.SIGKILL  # before: process.wait(timeout=30) raised


class OldInterrupt(engine.Supervisor):
    """The former rule (negative control): one SIGINT per reason, so SIGTERM after SIGINT sent a second."""

    def _interrupt(self, why: str) -> None:
        if self.process is not None and self.process.poll() is None:
            if why not in self.interrupted:
                self.process.send_signal(signal.SIGINT)
            self.interrupted.append(why)


@pytest.mark.parametrize("kind", [engine.Supervisor, OldInterrupt], ids=["now", "negative-control"])
def test_the_runners_sigint_then_sigterm_reach_the_command_as_one_sigint(
    kind: type[engine.Supervisor],
) -> None:
    """The runner's cancel: SIGINT, then SIGTERM 7.5 s later (actions/runner ProcessInvoker.cs); both run the
    handler. Pulumi terminates on a second signal (cancellation_scope.go), so only the first is forwarded."""
    import threading

    supervisor = kind(deadline=time.monotonic() + 60)
    child = _child(seconds=20, after=1.0)
    waiter = threading.Thread(target=supervisor.wait, args=(child,))
    waiter.start()
    while supervisor.process is None:
        time.sleep(0.01)
    assert child.stdout is not None
    supervisor._on_signal(signal.SIGINT, None)
    # The runner's SIGTERM comes 7.5 s later, after the child handled the SIGINT (two pending signals of one
    # kind would merge into one delivery: POSIX does not queue standard signals).
    assert child.stdout.readline().strip() == "INT"
    supervisor._on_signal(signal.SIGTERM, None)
    waiter.join(timeout=10)
    forwarded = 1 + child.stdout.read().count("INT")
    assert forwarded == (1 if kind is engine.Supervisor else 2)
    assert supervisor.interrupted == ["SIGINT received", "SIGTERM received"]
