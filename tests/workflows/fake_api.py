"""A JSON HTTP API on 127.0.0.1 for the fake GitHub of the CI scripts' tests: the response writer and the
server's lifetime, so each test module writes only its routes (a subclass of JsonHandler)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests import loopback


class JsonHandler(BaseHTTPRequestHandler):
    def _send(self, status: int, payload: Any, link: str = "") -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if link:  # GitHub's pagination header (RFC 8288)
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[JsonHandler]) -> Iterator[str]:
    """The API's base URL while it serves on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    loopback.start(server)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
