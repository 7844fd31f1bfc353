"""`python -m muse serve`: configuration, logging, uvicorn, and graceful shutdown.

After SIGTERM `/readyz` answers 503 at once, new connections stop after MUSE_DRAIN_SECONDS, and requests
still running at MUSE_SHUTDOWN_TIMEOUT_SECONDS are cancelled; a second signal skips the drain, a third stops
at once. PORT serves the API and the probes; MUSE_METRICS_PORT serves Prometheus metrics from a second
uvicorn server on its own thread and loop. Timeline and why: docs/service.md#shutdown-timeline."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import threading
from types import FrameType

import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app

from muse.app import ServiceState, create_app
from muse.config import ConfigError, Settings, load_settings
from muse.limits import ADMISSION_TIMEOUT_SECONDS, MAX_HEAD_BYTES
from muse.logs import configure_logging
from muse.protocol import MuseH11Protocol

logger = logging.getLogger("muse.server")

EXIT_CONFIG = 2


class GracefulServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        state: ServiceState,
        drain_seconds: int,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(config)
        self.state = state
        self.registry = registry or CollectorRegistry()
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signals_received = 0

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Deliberately not calling super(): uvicorn records the signal and re-raises it once shut down, so
        # the process would die "killed by SIGTERM" (exit 143) instead of exiting 0 after a clean drain.
        self._signals_received += 1
        if self._signals_received == 1 and self._loop is not None:
            # Runs inside a signal handler: hand the work to the event loop (thread- and signal-safe).
            self._loop.call_soon_threadsafe(self._begin_drain, sig)
        elif self._signals_received <= 2:
            self.should_exit = True
        else:
            self.force_exit = True

    def _begin_drain(self, sig: int) -> None:
        self.state.draining = True
        logger.info(
            "%s received: readiness is now 503; draining",
            signal.Signals(sig).name,
            extra={
                "drain_seconds": self.drain_seconds,
                "grace_seconds": self.config.timeout_graceful_shutdown,
            },
        )
        if self.drain_seconds <= 0:
            self._stop_accepting()
        else:
            asyncio.get_running_loop().call_later(self.drain_seconds, self._stop_accepting)

    def _stop_accepting(self) -> None:
        if not self.should_exit:
            logger.info("drain period over: closing listeners and waiting for in-flight requests")
        self.should_exit = True


def protocol_class(settings: Settings) -> type[MuseH11Protocol]:
    """uvicorn instantiates the protocol class itself, so the configured values travel as class attributes."""
    attributes = {
        "header_timeout": float(settings.header_timeout_seconds),
        # The app answers first: its admission wait (503) and body deadline (408) end before this one.
        "body_deadline": float(ADMISSION_TIMEOUT_SECONDS + settings.body_timeout_seconds + 5),
        "write_timeout": float(settings.body_timeout_seconds),
        "max_head_bytes": MAX_HEAD_BYTES,
    }
    return type("ConfiguredMuseH11Protocol", (MuseH11Protocol,), attributes)


def build_server(settings: Settings) -> GracefulServer:
    state = ServiceState()
    app = create_app(settings, state)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(settings),
        # Request line + headers: h11 refuses a longer head (the JSON 400 of muse/protocol.py).
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # No limit_concurrency: uvicorn counts CONNECTIONS against it and answers everything beyond, the
        # probes included, with a plain-text 503 (h11_impl.py, uvicorn 0.54), so idle sockets failed
        # liveness. The app bounds the evaluations waiting instead (muse/limits.py MAX_WAITING_EVALUATIONS),
        # and the protocol's head, body and write deadlines bound how long any connection holds anything.
        # None: keep the JSON handler configure_logging installed instead of uvicorn's text formatter.
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,  # RequestContextMiddleware writes the access log, with request id and route
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=settings.grace_seconds,
    )
    return GracefulServer(config, state, settings.drain_seconds, app.state.metrics.registry)


def build_metrics_server(settings: Settings, registry: CollectorRegistry) -> uvicorn.Server:
    """prometheus_client's own ASGI exposition app, on MUSE_METRICS_PORT, with the same protocol limits."""
    config = uvicorn.Config(
        make_asgi_app(registry),
        host=settings.host,
        port=settings.metrics_port,
        http=protocol_class(settings),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        limit_concurrency=8,  # one scraper per pod, with room for a person's curl
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    return uvicorn.Server(config)


def start_metrics_server(settings: Settings, registry: CollectorRegistry) -> threading.Thread:
    """Bind in the calling thread (a port in use fails the start, exit 1), then serve on a daemon thread:
    uvicorn installs signal handlers only on the main thread, so the API server keeps SIGTERM."""
    server = build_metrics_server(settings, registry)
    sock = server.config.bind_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="metrics", daemon=True)
    thread.start()
    return thread


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"muse: configuration error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    server = build_server(settings)
    try:
        start_metrics_server(settings, server.registry)
    except SystemExit:
        # uvicorn's bind_socket logs the reason (address in use, permission) and exits 1.
        return 1
    server.run()
    if not server.started:
        # uvicorn exits by itself when it cannot bind; this covers a failed application startup.
        logger.error("server did not start")
        return 1
    logger.info("muse exited cleanly")
    return 0
