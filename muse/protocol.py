"""uvicorn's h11 protocol with what uvicorn 0.54 cannot be configured to do: a request-head deadline, a
request-body deadline that trickled data does not reset, a write deadline for clients that stop reading, a
closed connection on a framing error after the response started, and Muse's JSON body on h11's 400s.

h11 is the only HTTP implementation in the image; muse/server.py passes this class as `http=`. Why, with
the uvicorn code each point answers: docs/service.md#the-http-protocols-deadlines."""

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
    body_deadline: float = 45.0
    write_timeout: float = 20.0
    max_head_bytes: int = 16 * 1024

    _head_deadline: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _body_timer_due: float = 0.0
    _write_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Answered, but the client is still sending the body it declared: let it finish (lingering close),
        # for at most header_timeout more seconds.
        if self.conn.their_state is h11.SEND_BODY:
            self._arm_body_timer(self.header_timeout)
        self._follow_request_state()

    def _follow_request_state(self) -> None:
        # h11's client state stays IDLE until a whole request head has been parsed, is SEND_BODY while the
        # body is due, and DONE (or MUST_CLOSE) once it has been received.
        state = self.conn.their_state
        if state is h11.IDLE:
            self._disarm_body_timer()
            self._arm_head_deadline()
            return
        self._disarm_head_deadline()
        if state is h11.SEND_BODY:
            self._arm_body_timer(self.body_deadline)
        else:
            self._disarm_body_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_timer()
        self._disarm_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        self._disarm_write_timer()
        super().resume_writing()

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None and not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _arm_body_timer(self, seconds: float) -> None:
        """Arm, or bring forward: data never postpones the deadline."""
        due = self.loop.time() + seconds
        if self._body_timer is not None and self._body_timer_due <= due:
            return
        self._disarm_body_timer()
        if not self.transport.is_closing():
            self._body_timer_due = due
            self._body_timer = self.loop.call_at(due, self._body_timed_out)

    def _disarm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _disarm_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("request head not received within %s s: connection closed", self.header_timeout)
            self._unset_keepalive_if_required()
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.logger.info("request body not received in time: connection closed")
            self._unset_keepalive_if_required()
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False
            self.transport.close()

    def _write_timed_out(self) -> None:
        self._write_timer = None
        if not self.transport.is_closing() or self.transport.get_write_buffer_size():
            self.logger.info("response not read within %s s: connection aborted", self.write_timeout)
            self._unset_keepalive_if_required()
            self.transport.abort()

    def send_400_response(self, msg: str) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            # Our response has started or is complete: a second one cannot be sent (point 4 above).
            self.logger.info("invalid HTTP data after the response: connection closed")
            self._unset_keepalive_if_required()
            self.transport.close()
            return
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
