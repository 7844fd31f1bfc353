"""uvicorn's h11 protocol with the two things uvicorn 0.54 cannot be configured to do.

1. A request-head deadline. uvicorn's only read timeout is ``timeout_keep_alive``, armed after a response
   (``H11Protocol.on_response_complete``) and cancelled by the next byte (``data_received`` ->
   ``_unset_keepalive_if_required``); nothing is armed in ``connection_made``. So a connection that sends
   nothing, or one header byte now and then, stays open forever (uvicorn/protocols/http/h11_impl.py in
   Kludex/uvicorn 0.54.0). Here the head must be complete within ``header_timeout`` seconds of the
   connection opening, or of its first byte after a keep-alive pause; otherwise the connection is closed,
   as uvicorn's own keep-alive handler does. The body's deadline is the app's (muse/app.py).
2. The JSON error shape for requests h11 cannot parse (bad Content-Length, malformed head, head over
   ``h11_max_incomplete_event_size``). ``handle_events`` answers every ``h11.RemoteProtocolError`` by calling
   ``send_400_response(msg)``, which writes ``text/plain`` "Invalid HTTP request received."; only that
   method is replaced, writing the same status and ``Connection: close`` with Muse's JSON body.

h11 is the only HTTP implementation in the image (httptools is not installed), and muse/server.py passes
this class as ``http=`` so ``auto`` can never pick another one.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

INVALID_REQUEST_DETAIL = (
    "invalid HTTP/1.1 request: check the request line, the header syntax, Content-Length and "
    "Transfer-Encoding; the request line and headers may take at most {limit} bytes"
)


class MuseH11Protocol(H11Protocol):
    # Set per server by muse/server.py (a subclass per configuration: uvicorn instantiates the class itself).
    header_timeout: float = 10.0
    max_head_bytes: int = 16 * 1024

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # h11's client state stays IDLE until a whole request head has been parsed.
        if self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()
        else:
            self._disarm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None and not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("request head not received within %s s: connection closed", self.header_timeout)
            self._unset_keepalive_if_required()
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {"error": "bad_request", "detail": INVALID_REQUEST_DETAIL.format(limit=self.max_head_bytes)}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
        ]
        # As uvicorn's own send_400_response: h11 serialises the response, then the connection is closed.
        self.transport.write(
            self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
        )
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()
