"""A stand-in for an Azure Monitor workspace's Prometheus query endpoint: a real HTTPS server on 127.0.0.1.

    with PrometheusApi(answer) as api:      # api.url: https://127.0.0.1:<port>; api.ca_file: its certificate
        ...

What it follows:

- The query API of Prometheus (prometheus.io/docs/prometheus/latest/querying/api/): `GET` or `POST
  /api/v1/query` with `query=<PromQL>` (for POST in the form-encoded body, "Content-Type:
  application/x-www-form-urlencoded"). Success: HTTP 200 and `{"status": "success", "data": {"resultType":
  "vector", "result": [{"metric": {...}, "value": [<unix time>, "<number as a string>"]}]}}`; an instant
  vector with no series is `"result": []`. Errors: a JSON object `{"status": "error", "errorType": ...,
  "error": ...}` with 400 (parameters missing or incorrect), 422 (the expression cannot be executed) or 503
  (the query timed out or was aborted) ("Format overview").
- Azure Monitor's front of it (learn.microsoft.com/azure/azure-monitor/metrics/prometheus-api-promql): a
  Microsoft Entra bearer token in `Authorization` (none: 401). Throttling and overload are 429 / 503, which
  may carry `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3; whether and when the managed endpoint sends one
  only Azure shows). `script` queues such answers (status, headers, body) ahead of the model's.
- TLS: the endpoint is https only (canary_gate.PrometheusSource refuses anything else), so the server has its
  own certificate for 127.0.0.1; a client trusts it through `SSL_CERT_FILE=ca_file` (OpenSSL's default
  verify paths, which Python's default context loads).

`answer(promql, at)` is the model, `at` the request's evaluation time (`time`, Unix seconds; None: now): a
number, or None for an empty vector (no series matched), or a ValueError for a query it cannot parse (400
bad_data). Every request is recorded in `seen` (the query, the status).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from tests import loopback

Answer = Callable[[str, float | None], float | None]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (an IP subjectAltName: Python checks the IP, not the CN) and its key."""
    cert, key = directory / "prometheus.pem", directory / "prometheus.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class PrometheusApi:
    def __init__(self, directory: Path, answer: Answer) -> None:
        self.answer = answer
        self.script: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.seen: list[tuple[str, int]] = []
        self.ca_file, key = self_signed(directory)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length).decode())

            def do_GET(self) -> None:
                self._answer(urllib.parse.urlsplit(self.path).query)

            def _answer(self, form: str) -> None:
                fields = urllib.parse.parse_qs(form)
                query = (fields.get("query") or [""])[0]
                at = float(fields["time"][0]) if "time" in fields else None
                status, headers, body = api.respond(
                    self.path, self.headers.get("Authorization", ""), query, at
                )
                api.seen.append((query, status))
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.ca_file), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"

    def respond(
        self, path: str, authorization: str, query: str, at: float | None = None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if urllib.parse.urlsplit(path).path != "/api/v1/query":
            return 404, {}, {"status": "error", "errorType": "not_found", "error": "not found"}
        if not authorization.startswith("Bearer ") or len(authorization) <= len("Bearer "):
            return 401, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "no bearer token"}}
        if self.script:
            return self.script.pop(0)
        if not query:
            return 400, {}, {"status": "error", "errorType": "bad_data", "error": "query must not be empty"}
        try:
            value = self.answer(query, at)
        except ValueError as error:
            return 400, {}, {"status": "error", "errorType": "bad_data", "error": str(error)}
        result = [] if value is None else [{"metric": {}, "value": [round(time.time(), 3), repr(value)]}]
        return 200, {}, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def __enter__(self) -> PrometheusApi:
        loopback.start(self.server)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
