"""A test's HTTP server on loopback, served from a daemon thread."""

from __future__ import annotations

import socketserver
import threading

# serve_forever looks for shutdown() once per poll interval, 0.5 s by default, and shutdown() blocks until it
# has (CPython Lib/socketserver.py, BaseServer.serve_forever/shutdown): half a second of idle wall time per
# server. A short interval lets a test's server stop within a few milliseconds.
POLL_SECONDS = 0.02


def start(server: socketserver.BaseServer) -> threading.Thread:
    """Serve `server` until its shutdown(); the thread is returned for a test that joins it."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
    )
    thread.start()
    return thread
