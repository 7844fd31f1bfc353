"""The release's own clock and its manners with the Pulumi engine: a deadline inside the job's timeout, a
clean stop on SIGINT/SIGTERM, recovery of what a killed update left behind, and the convergence check.

The runner kills a timed-out step within 10 s, leaving pending operations, so the release keeps its own
deadline and cancels pulumi gracefully (SIGINT), forwards the runner's signal once, clears pending
operations with `pulumi refresh --clear-pending-creates` before the next release (never breaking the lock:
`pulumi cancel` is a person's call), and fails a release whose stack has not converged.
Standard library only. Why: docs/architecture/ci-cd.md#the-release-engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCKED = "the stack is currently locked"


class Cancelled(RuntimeError):
    """The job was cancelled (a signal) or the release ran out of its own time."""


@dataclass
class Supervisor:
    """Owns the release's deadline and the one command running now."""

    deadline: float  # time.monotonic() value
    # After the first SIGINT at the release's OWN deadline, before the second signal. Only that path has this
    # long: on a cancel or the job's timeout the runner itself kills deploy.py about 10 s after its SIGINT
    # (7.5 s + 2.5 s, ../shared/reference/github-behaviour.md row 7), whatever this says; the deadlines
    # (deploy.py) leave the release its 90 s inside the job's timeout-minutes.
    grace: float = 90.0
    term_wait: float = 30.0  # after the SIGTERM, before SIGKILL
    clock: Callable[[], float] = time.monotonic
    signalled: str = ""
    process: subprocess.Popen[str] | None = None
    interrupted: list[str] = field(default_factory=list)
    # Run once on the first signal, right after the running command got its SIGINT: what must happen within
    # the runner's ~10 s (release_canary.py: the route's weight back to the stable Service).
    on_signal: Callable[[], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The command that already got its SIGINT: each command gets one, whatever asks again. On a cancel the
    # runner sends SIGINT and 7.5 s later SIGTERM (actions/runner ProcessInvoker.cs); both run _on_signal, and
    # forwarding the second as another SIGINT would make Pulumi terminate at once instead of finishing its
    # graceful cancel (pulumi/pulumi pkg/backend/cancellation_scope.go: a second signal terminates).
    _sigint_sent_to: subprocess.Popen[str] | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, number: int, _frame: object) -> None:
        self.signalled = signal.Signals(number).name
        print(
            f"::warning title=Deploy::{self.signalled} received: stopping the running command cleanly",
            flush=True,
        )
        self._interrupt(f"{self.signalled} received")
        urgent, self.on_signal = self.on_signal, None
        if urgent is not None:
            try:
                urgent()
            except Exception as error:
                print(f"::warning title=Deploy::on the signal: {type(error).__name__}: {error}", flush=True)

    def _interrupt(self, why: str) -> None:
        with self._lock:
            process = self.process
            if process is not None and process.poll() is None:
                # SIGINT, once per command: Pulumi's graceful cancel (a second signal would terminate it).
                if self._sigint_sent_to is not process:
                    process.send_signal(signal.SIGINT)
                    self._sigint_sent_to = process
                if why not in self.interrupted:
                    self.interrupted.append(why)

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def check(self) -> None:
        """Before starting anything: stop when signalled or out of time."""
        if self.signalled:
            raise Cancelled(f"{self.signalled} received: the job is being cancelled")
        if self.remaining() <= 0:
            raise Cancelled("the release's deadline has passed")

    def wait(self, process: subprocess.Popen[str]) -> int:
        """Wait for `process`, interrupting it at the deadline (SIGINT, then SIGTERM after `grace`, then
        SIGKILL 30 s later). Keyed on the deadline's value, not on an earlier interrupt: an abort's rollback
        runs to the hard deadline (deploy.py _rollback_time, release_canary.abort) after the release's own
        deadline interrupted the update before it, and must be interrupted at the hard deadline too."""
        with self._lock:
            self.process = process
        interrupted_at: float | None = None  # the deadline this command was interrupted at
        try:
            while True:
                try:
                    return process.wait(timeout=max(0.05, min(1.0, self.remaining())))
                except subprocess.TimeoutExpired:
                    if self.remaining() <= 0 and interrupted_at != self.deadline:
                        print(
                            "::warning title=Deploy::deadline reached: interrupting the running command",
                            flush=True,
                        )
                        interrupted_at = self.deadline
                        self._interrupt("deadline")
                    signalled = self._sigint_sent_to is process
                    if signalled and self.remaining() <= -self.grace and process.poll() is None:
                        process.send_signal(signal.SIGTERM)  # Pulumi: a second signal terminates
                        try:
                            return process.wait(timeout=self.term_wait)
                        except subprocess.TimeoutExpired:
                            process.kill()  # what the runner would do, but with the release still alive
                            return process.wait()
        finally:
            with self._lock:
                self.process = None


Run = Callable[[str, list[str]], Any]  # deploy.run: (what, args) -> Step with .ok and .output


def pending_operations(state: dict[str, Any]) -> list[dict[str, Any]]:
    """`pending_operations` of a `pulumi stack export` (apitype.DeploymentV3: resource + type)."""
    ops = (state.get("deployment") or {}).get("pending_operations") or []
    return [op for op in ops if isinstance(op, dict)]


def export_state(stack: str, pulumi: Callable[..., list[str]], run: Run) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "state.json"
        step = run("pulumi stack export", pulumi("stack", "export", "--stack", stack, "--file", str(path)))
        if not step.ok:
            raise RuntimeError(f"pulumi stack export --stack {stack} failed: {step.output[-2000:]}")
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return state


def backend_of(stack: str) -> str:
    """The state backend this job's pulumi commands use (PULUMI_BACKEND_URL: each environment's own container,
    stack/naming.py StateBackendNames), named so a `pulumi cancel` is run against the right stack's state."""
    url = os.environ.get("PULUMI_BACKEND_URL", "")
    return f"the backend `{url}`" if url else f"`{stack}`'s own backend (PULUMI_BACKEND_URL is unset here)"


def lock_hint(stack: str) -> str:
    """What to do about a locked stack (the DIY backend's words: pulumi/pulumi pkg/backend/diy/lock.go
    checkForLock, "the stack is currently locked by N lock(s)"; LOCKED matches them)."""
    return (
        f"The stack is locked: if nobody else updates `{stack}` (a deploy, a person's up or refresh), "
        f"`pulumi cancel --stack {stack} --yes` against {backend_of(stack)} removes the lock (by hand: "
        f"`scripts/stack {stack} cancel --yes`, which points at that backend; docs/runbook.md, Cancelled "
        "deploy)."
    )


def recover(stack: str, pulumi: Callable[..., list[str]], run: Run) -> str:
    """Clear what a killed update left (pending operations); '' when there was nothing. Raises when the
    refresh fails (the stack is locked, or Azure answers an error): the release must not start on top."""
    ops = pending_operations(export_state(stack, pulumi, run))
    if not ops:
        return ""
    listed = [f"{op.get('type')} `{(op.get('resource') or {}).get('urn')}`" for op in ops]
    creates = [line for line, op in zip(listed, ops, strict=True) if op.get("type") == "creating"]
    step = run(
        "pulumi refresh (recover pending operations)",
        pulumi("refresh", "--stack", stack, "--yes", "--clear-pending-creates", "--skip-preview"),
    )
    if not step.ok:
        hint = f" {lock_hint(stack)}" if LOCKED in step.output else ""
        raise RuntimeError(f"recovering {len(ops)} pending operation(s) failed.{hint}")
    note = (
        f"A previous update of `{stack}` was interrupted and left {len(ops)} pending operation(s); "
        "`pulumi refresh --clear-pending-creates` read the live state back before this release:\n"
        + "\n".join(f"- {line}" for line in listed)
    )
    if creates:
        note += (
            "\n\nDropped pending creates: if one of them was created after all, the next `pulumi up` fails "
            "with 'already exists'; import it (docs/runbook.md, Cancelled deploy)."
        )
    return note


def converged(stack: str, pulumi: Callable[..., list[str]], run: Run, cwd: str | None = None) -> Any:
    """`pulumi preview --expect-no-changes` with the release's refresh: fails on a perpetual diff."""
    args = ["preview", "--stack", stack, "--expect-no-changes", "--refresh", "--diff"]
    if cwd:
        args += ["--cwd", cwd]
    return run("convergence check (preview --expect-no-changes)", pulumi(*args))
