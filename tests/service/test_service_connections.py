"""Connections under hostile use, against the real uvicorn configuration on 127.0.0.1: open sockets never
fail the probes, the evaluation queue is bounded with a JSON 503, a body declared but never sent is cut
even after the response, a client that stops reading is aborted and its slot freed, and a framing error
after the response closes the connection without an ERROR traceback.

Each check runs once against the former behaviour as its negative control: uvicorn's ``limit_concurrency``
(which counts connections, uvicorn/protocols/http/h11_impl.py in Kludex/uvicorn 0.54.0, handle_events), the
protocol with only the head deadline, an unbounded admission queue, no write deadline, and uvicorn's own
``send_400_response``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import muse.app
from muse.protocol import MuseH11Protocol
from muse.server import build_server

from .conftest import TOKEN
from .test_service_hostile import _deployment, _exchange, _inventory, _open_seconds, _settings, serving_app

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@contextlib.contextmanager
def served(settings: Any, send_buffer: int | None = None, **config: Any) -> Iterator[int]:
    """The service's server, with ``config`` overriding uvicorn.Config attributes (negative controls).
    ``send_buffer`` fixes the kernel's send buffer of accepted sockets (Linux copies it from the listening
    socket, socket(7)), so a non-reading client fills it with KiB instead of loopback's autotuned MiB."""
    server = build_server(settings)
    for key, value in config.items():
        setattr(server.config, key, value)
    if send_buffer is None:
        with serving_app(server) as port:
            yield port
        return
    server.config.port = 0
    sock = server.config.bind_socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(20)


def _local(**env: str) -> Any:
    return _settings(MUSE_HOST="127.0.0.1", **env)


def _post_head(
    length: int, accept: str = "application/json", token: str = TOKEN, close: bool = True
) -> bytes:
    return (
        f"POST /api/v1/evaluate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {length}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


# ----------------------------------------------------------------------------------------------------------
# Open sockets never fail the probes


def _healthz_with_idle_sockets(port: int, count: int) -> bytes:
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.3)  # let the server accept them all
        return _exchange(port, HEALTHZ)


def test_healthz_answers_with_100_idle_connections_open() -> None:
    with served(_local()) as port:
        assert _status(_healthz_with_idle_sockets(port, 100)) == 200


def test_idle_connections_negative_control_uvicorns_connection_cap() -> None:
    # The former configuration: limit_concurrency=64, which counts connections; the probe got a text 503.
    with served(_local(), limit_concurrency=64) as port:
        response = _healthz_with_idle_sockets(port, 100)
    assert _status(response) == 503 and b"application/json" not in response.lower()


# ----------------------------------------------------------------------------------------------------------
# A bounded evaluation queue


def _hold_slots(port: int, count: int, stack: contextlib.ExitStack) -> None:
    """``count`` evaluations admitted and reading a body that never comes (the 20 s body deadline)."""
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        sock.sendall(_post_head(100) + b"{")
    time.sleep(0.3)


def test_evaluations_beyond_the_queue_get_a_json_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(muse.app, "MAX_WAITING_EVALUATIONS", 1)
    with served(_local(MUSE_EVALUATION_CONCURRENCY="1")) as port, contextlib.ExitStack() as stack:
        _hold_slots(port, 2, stack)  # one running, one waiting: the queue is full
        start = time.monotonic()
        response = _exchange(port, _post_head(2) + b"{}", wait=5)
        took = time.monotonic() - start
    head, _, body = response.partition(b"\r\n\r\n")
    assert _status(response) == 503 and took < 2
    assert b"retry-after: 10" in head.lower()
    assert json.loads(body)["error"] == "busy"


def test_admission_waits_at_most_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(muse.app, "ADMISSION_TIMEOUT_SECONDS", 1)
    with served(_local(MUSE_EVALUATION_CONCURRENCY="1")) as port, contextlib.ExitStack() as stack:
        _hold_slots(port, 1, stack)
        start = time.monotonic()
        response = _exchange(port, _post_head(2) + b"{}", wait=5)
    assert _status(response) == 503 and time.monotonic() - start < 3


@pytest.mark.slow  # listens 3 s for the answer that never comes
def test_admission_negative_control_an_unbounded_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    # The former admission: a bare CapacityLimiter, no waiting bound, no timeout; the client hears nothing.
    monkeypatch.setattr(muse.app, "MAX_WAITING_EVALUATIONS", 10**9)
    monkeypatch.setattr(muse.app, "ADMISSION_TIMEOUT_SECONDS", 10**6)
    with served(_local(MUSE_EVALUATION_CONCURRENCY="1")) as port, contextlib.ExitStack() as stack:
        _hold_slots(port, 2, stack)
        assert _exchange(port, _post_head(2) + b"{}", wait=3) == b""


# ----------------------------------------------------------------------------------------------------------
# A body declared but not sent is cut, after the response too


def _former_protocol() -> type[MuseH11Protocol]:
    """The protocol as it was: a head deadline only, nothing once the head is complete."""

    class HeadDeadlineOnly(MuseH11Protocol):
        header_timeout = 1.0

        def _arm_body_timer(self, seconds: float) -> None:
            return None

    return HeadDeadlineOnly


UNSENT_BODIES = {
    "get": b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nx",
    "401": _post_head(100_000_000, token="wrong-token-0123456789-abcdefghijk", close=False) + b"x",
}


@pytest.mark.slow  # waits for the 1 s lingering deadline
@pytest.mark.parametrize("raw", UNSENT_BODIES.values(), ids=UNSENT_BODIES.keys())
def test_a_body_not_sent_after_the_response_is_cut(raw: bytes) -> None:
    with served(_local(MUSE_HEADER_TIMEOUT_SECONDS="1")) as port:
        assert _open_seconds(port, raw, limit=10) < 4


@pytest.mark.slow  # waits 5 s on the open socket
def test_unsent_body_negative_control_the_head_deadline_alone() -> None:
    with served(_local(MUSE_HEADER_TIMEOUT_SECONDS="1"), http=_former_protocol()) as port:
        assert _open_seconds(port, UNSENT_BODIES["401"], limit=5) >= 5


def _trickle_seconds(port: int, limit: float) -> float:
    """A body trickled a byte every 0.2 s after a GET's head: how long the server keeps the connection."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        with contextlib.suppress(OSError):
            while time.monotonic() - start < limit:
                sock.sendall(b"x")
                time.sleep(0.2)
    return time.monotonic() - start


@pytest.mark.slow  # trickles for up to 10 s
def test_a_trickled_body_does_not_postpone_the_deadline() -> None:
    # uvicorn's keep-alive timer is cancelled by every byte; the connection's body deadline is not.
    with served(_local(MUSE_HEADER_TIMEOUT_SECONDS="1")) as port:
        assert _trickle_seconds(port, limit=10) < 4


@pytest.mark.slow  # trickles for 5 s
def test_trickled_body_negative_control_the_head_deadline_alone() -> None:
    with served(_local(MUSE_HEADER_TIMEOUT_SECONDS="1"), http=_former_protocol()) as port:
        assert _trickle_seconds(port, limit=5) >= 5


# ----------------------------------------------------------------------------------------------------------
# A client that stops reading is aborted, and the slot it held is freed


def _big_report_request() -> bytes:
    body = json.dumps(_inventory([_deployment(2180)])).encode()  # ~10,900 violations, a multi-MiB report
    return _post_head(len(body), accept="text/markdown") + body


def _stalled_reader(port: int, stack: contextlib.ExitStack) -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(_big_report_request())
    return sock


def _drain(sock: socket.socket) -> tuple[int, int, bool]:
    """(declared Content-Length, body bytes received, reset) reading until EOF."""
    data, reset = b"", False
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        reset = True
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return length, len(body), reset


@pytest.mark.slow  # a 2,180-container evaluation and the 1 s write deadline
def test_a_client_that_stops_reading_is_aborted_and_frees_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(muse.app, "MAX_WAITING_EVALUATIONS", 0)
    settings = _local(MUSE_EVALUATION_CONCURRENCY="1", MUSE_BODY_TIMEOUT_SECONDS="1")
    with served(settings, send_buffer=65536) as port, contextlib.ExitStack() as stack:
        stalled = _stalled_reader(port, stack)
        time.sleep(1.0)  # evaluated, and writing into a full socket: the slot is still held
        held = _status(_exchange(port, _post_head(2) + b"{}", wait=5))
        time.sleep(4.0)  # the write deadline has aborted the transport
        freed = _status(_exchange(port, _post_head(2) + b"{}", wait=5))
        length, received, _ = _drain(stalled)
    assert held == 503  # the report in the socket buffer counts against the slot
    assert freed == 422  # "{}" is a valid JSON document but not an inventory: the slot was free
    assert received < length


@pytest.mark.slow  # the same, under the former behaviour
def test_stalled_reader_negative_control_slot_freed_before_sending_and_no_write_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoWriteDeadline(MuseH11Protocol):
        write_timeout = 10**6

    class SendAfterRelease(muse.app.SlotResponse):
        # The former order: the slot freed when the endpoint returned, the whole body handed over at once.
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            self.release()
            self.release = lambda: None
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.payload})

    monkeypatch.setattr(muse.app, "MAX_WAITING_EVALUATIONS", 0)
    monkeypatch.setattr(muse.app, "SlotResponse", SendAfterRelease)
    settings = _local(MUSE_EVALUATION_CONCURRENCY="1", MUSE_BODY_TIMEOUT_SECONDS="1")
    with served(settings, 65536, http=NoWriteDeadline) as port, contextlib.ExitStack() as stack:
        stalled = _stalled_reader(port, stack)
        time.sleep(1.0)
        held = _status(_exchange(port, _post_head(2) + b"{}", wait=5))
        time.sleep(4.0)
        length, received, reset = _drain(stalled)
    assert held == 422  # the slot was free while the report sat in the buffer
    assert (received, reset) == (
        length,
        False,
    )  # never cut: the buffer held the report for as long as it took


# ----------------------------------------------------------------------------------------------------------
# A bad chunk after the response


BAD_CHUNK_AFTER_RESPONSE = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def _bad_chunk_after_response(port: int) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(BAD_CHUNK_AFTER_RESPONSE)
        first = sock.recv(65536)  # the /healthz answer
        start = time.monotonic()
        sock.sendall(b"zz-not-a-chunk-size\r\n\r\n")
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while sock.recv(65536):
                pass
        return first, time.monotonic() - start


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_bad_chunk_after_the_response_closes_without_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with served(_local()) as port:
        first, closed_after = _bad_chunk_after_response(port)
        time.sleep(0.2)
    assert first.startswith(b"HTTP/1.1 200") and closed_after < 2
    assert _errors(caplog) == []


def test_bad_chunk_negative_control_uvicorns_own_400(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with served(_local(), http="h11") as port:
        _bad_chunk_after_response(port)
        time.sleep(0.2)
    assert any("LocalProtocolError" in (r.getMessage() + str(r.exc_info)) for r in _errors(caplog))


# ----------------------------------------------------------------------------------------------------------
# Keep-alive: an idle connection after a response is closed within MUSE_KEEP_ALIVE_SECONDS (at most 30)


def _kept_alive_idle_seconds(port: int, limit: float) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while sock.recv(65536):
                pass
        return time.monotonic() - start


def test_the_server_closes_idle_kept_alive_connections_at_the_configured_timeout() -> None:
    settings = _local(MUSE_KEEP_ALIVE_SECONDS="1")
    server = build_server(settings)
    assert server.config.timeout_keep_alive == 1
    with serving_app(server) as port:
        assert _kept_alive_idle_seconds(port, limit=10) < 3


@pytest.mark.slow  # holds the idle connection 3 s
def test_keep_alive_negative_control_a_longer_timeout_keeps_the_connection() -> None:
    with served(_local(), timeout_keep_alive=75) as port:
        assert _kept_alive_idle_seconds(port, limit=3) >= 3
