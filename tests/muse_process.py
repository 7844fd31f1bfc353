"""A real Muse process on loopback (`python -m muse serve`) for tests that use the service from outside."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from stack.files import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def muse_serving(log_dir: Path, env: Mapping[str, str]) -> Iterator[int]:
    """Runs Muse with `env` (plus PATH, PORT, MUSE_HOST and no drain) until it accepts connections (30 s
    bound, its log in the error otherwise); yields its port; terminates it on exit."""
    port = free_port()
    # No drain on the way out unless the test asks for one: the default MUSE_DRAIN_SECONDS (5) keeps a
    # terminated Muse listening for 5 s (muse/server.py), idle time for tests that do not look at shutdown.
    full = {
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "MUSE_HOST": "127.0.0.1",
        "MUSE_DRAIN_SECONDS": "0",
        **env,
    }
    log = log_dir / "muse.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "muse", "serve"], cwd=REPO_ROOT, env=full, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise TimeoutError(log.read_text())
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
