"""The Muse HTTP service (Starlette).

Middleware order, outermost first: request context (request id, access log, metrics, security headers,
``Connection: close`` while draining, last-resort 500) -> bearer auth for ``/api/*`` -> Starlette routing.
Bad input is always a 4xx with a JSON ``{"error", "detail"}`` body; an unexpected exception is logged at
ERROR with its stack and answered with a JSON 500 that carries the request id.

An evaluation is admitted into one of ``evaluation_concurrency`` slots before its body is read, reads it
within ``body_timeout_seconds`` and the memory-derived size limit (muse/limits.py), and runs decode,
evaluation and rendering on a worker thread, so the event loop keeps answering probes meanwhile. The
metrics are not served here: muse/server.py exposes them on their own port.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muse.config import Settings
from muse.contract import (
    BUILD_INFO,
    DURATION_METRIC,
    EVALUATE_PATH,
    GOVERNANCE_PATH,
    HEALTH_PATH,
    METHOD_LABEL,
    POLICIES_PATH,
    READINESS_PATH,
    REQUESTS_METRIC,
    ROOT_PATH,
    ROUTE_LABEL,
    STATUS_LABEL,
    VERSION_LABEL,
)
from muse.governance.inventory import InventoryError, decode_inventory
from muse.governance.policies import POLICIES, EvaluationTooLarge, Severity, evaluate
from muse.governance.published import GovernanceUnavailable, load_governance_report
from muse.governance.report import render_markdown
from muse.limits import (
    ADMISSION_TIMEOUT_SECONDS,
    MAX_WAITING_EVALUATIONS,
    RESPONSE_CHUNK_BYTES,
    Limits,
    derive_limits,
)
from muse.logs import request_id_var

logger = logging.getLogger("muse.app")
access_logger = logging.getLogger("muse.access")

SERVICE_NAME = "muse"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Probes arrive every few seconds per pod; at INFO they would dominate the log bill.
_QUIET_ROUTES = {HEALTH_PATH, READINESS_PATH}
UNMATCHED_ROUTE = "<unmatched>"
# The API routes whose request series exist from the start (Metrics), with the answers a release is judged on.
PRECREATED_ROUTES = ((EVALUATE_PATH, "POST"), (POLICIES_PATH, "GET"))
# 500: an unhandled error; 503: evaluate's admission refused (busy) - the 5xx these routes answer themselves.
PRECREATED_STATUSES = ("200", "500", "503")
# The access log shows at most this much of a matched route's path: the path is the client's, and a 50 KB path
# logged whole made every request 50 KB of log (43.5 MiB/s from one client). Unmatched paths are not logged.
LOGGED_PATH_CHARS = 256
# On every response: no MIME sniffing of JSON into something executable, and no cache (shared or browser)
# keeps an evaluation, which can describe an environment's weaknesses.
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))


@dataclass
class ServiceState:
    """Lifecycle flags shared by the server (signal handling) and the app (readiness)."""

    started: bool = False
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining


class Metrics:
    def __init__(self, settings: Settings) -> None:
        # A registry per app: tests build many apps in one process, and the default registry is global.
        self.registry = CollectorRegistry()
        # *_created series double the exposition size and no dashboard here uses them.
        disable_created_metrics()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            REQUESTS_METRIC,
            "HTTP requests by route template, method and status.",
            [ROUTE_LABEL, METHOD_LABEL, STATUS_LABEL, VERSION_LABEL],
            registry=self.registry,
        )
        self.latency = Histogram(
            DURATION_METRIC,
            "HTTP request latency by route template and method.",
            [ROUTE_LABEL, METHOD_LABEL, VERSION_LABEL],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.in_flight = Gauge(
            "muse_http_requests_in_flight", "HTTP requests being served.", registry=self.registry
        )
        self.violations = Counter(
            "muse_evaluation_violations",
            "Violations found by /api/v1/evaluate, by severity.",
            ["severity"],
            registry=self.registry,
        )
        build = Gauge(
            BUILD_INFO,
            "Build information; the value is always 1.",
            ["version", "revision", "environment"],
            registry=self.registry,
        )
        build.labels(settings.version, settings.git_revision, settings.env).set(1)
        # The series a release's canary gate reads exist at 0 before the first request: Prometheus'
        # irate() needs two samples, so a counter born at its first request would hide what it counted
        # until the next scrape - a candidate's first 5xx answers included (scripts/ci/canary_gate.py).
        for route, method in PRECREATED_ROUTES:
            for status in PRECREATED_STATUSES:
                self.requests.labels(route, method, status, settings.version)
            self.latency.labels(route, method, settings.version)
        # MUSE_VERSION, the deployed image's tag or digest: the live signals compare a release with the last.
        self.version = settings.version


def error_response(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


# ----------------------------------------------------------------------------------------------------------
# Middleware


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, state: ServiceState, metrics: Metrics, routes: list[Any]) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics
        self.routes = routes

    def _route_template(self, scope: Scope) -> str:
        # Matching here, before the router runs, keeps metric labels bounded to declared routes.
        for route in self.routes:
            match, _ = route.matches(scope)
            if match in (Match.FULL, Match.PARTIAL):
                return str(route.path)
        return UNMATCHED_ROUTE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        route = self._route_template(scope)
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        status = 500
        response_started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                if self.state.draining:
                    # Tell keep-alive clients (proxies) to reconnect, and so reach a pod that is not leaving.
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error", extra={"route": route, "method": method})
            status = 500
            if not response_started:
                response = error_response(500, "internal_error", f"unexpected error; request id {request_id}")
                await response(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - start
            self.metrics.in_flight.dec()
            version = self.metrics.version
            self.metrics.requests.labels(route, method, str(status), version).inc()
            self.metrics.latency.labels(route, method, version).observe(duration)
            level = logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO
            fields: dict[str, Any] = {
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
            }
            if route != UNMATCHED_ROUTE:
                path = scope.get("path", "")
                fields["path"] = path[:LOGGED_PATH_CHARS]
                if len(path) > LOGGED_PATH_CHARS:
                    fields["path_chars"] = len(path)
            access_logger.log(level, "%s %s %s", method, route, status, extra=fields)
            request_id_var.reset(token)


class BearerAuthMiddleware:
    """``/api/*`` needs ``Authorization: Bearer <MUSE_API_TOKEN>``; checked before any body is read."""

    def __init__(self, app: ASGIApp, token: bytes) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/api" or path.startswith("/api/")):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            response = error_response(
                401, "unauthorized", "missing bearer token", {"WWW-Authenticate": 'Bearer realm="muse"'}
            )
        elif not hmac.compare_digest(credentials.strip().encode(), self.token):
            response = error_response(
                401,
                "unauthorized",
                "invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="muse", error="invalid_token"'},
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


# ----------------------------------------------------------------------------------------------------------
# Request helpers


class BodyTooLarge(Exception):
    pass


async def read_limited_body(request: Request, limit: int) -> bytearray:
    """Read at most ``limit`` bytes; refused by Content-Length before reading, and by counting streamed
    chunks, so a chunked body cannot bypass the limit. One buffer: no chunk list joined into a second copy."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ValueError("invalid Content-Length header")
        if int(declared) > limit:
            raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge
        body += chunk
    return body


@dataclass(frozen=True)
class Rendered:
    body: bytes
    media_type: str
    violations_by_severity: dict[str, int]


def run_evaluation(body: bytearray, fail_on: Severity, output: str, limits: Limits) -> Rendered:
    """Decode, evaluate and render: CPU-bound, so it runs on a worker thread (evaluate_endpoint). Returns
    bytes only, so the inventory and the violation models are freed before the response is sent."""
    inventory = decode_inventory(body)
    result = evaluate(
        inventory,
        fail_on=fail_on,
        max_violations=limits.max_violations,
        max_output_chars=limits.max_output_bytes,
    )
    counts = result.counts()
    if output == "markdown":
        return Rendered(render_markdown(result).encode(), "text/markdown; charset=utf-8", counts)
    return Rendered(bytes(JSONResponse(result.to_json()).body), "application/json", counts)


def negotiate(accept: str | None) -> str | None:
    """'json', 'markdown', or None when the client accepts neither (406)."""
    if not accept or not accept.strip():
        return "json"
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in ("application/json", "application/*"):
            kind = "json"
        elif media in ("text/markdown", "text/*"):
            kind = "markdown"
        elif media == "*/*":
            kind = "json"
        else:
            continue
        # Highest quality wins; on a tie, the earlier entry.
        candidate = (quality, -position, kind)
        if quality > 0 and (best is None or candidate > best):
            best = candidate
    return best[2] if best else None


class Admission:
    """At most ``slots`` evaluations at once and ``max_waiting`` waiting for one, each for at most
    ``timeout`` seconds: beyond that, :meth:`enter` returns None and the caller answers 503 (a bounded
    queue, so a burst costs bounded memory and a client learns when to retry instead of hanging)."""

    def __init__(self, slots: int, max_waiting: int, timeout: float) -> None:
        self.limiter = anyio.CapacityLimiter(slots)
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.waiting = 0

    async def enter(self) -> object | None:
        """A token to pass to :meth:`leave`, or None when the queue is full or the wait timed out."""
        token = object()
        try:
            self.limiter.acquire_on_behalf_of_nowait(token)
            return token
        except anyio.WouldBlock:
            pass
        if self.waiting >= self.max_waiting:
            return None
        self.waiting += 1
        try:
            with anyio.move_on_after(self.timeout):
                await self.limiter.acquire_on_behalf_of(token)
                return token
        finally:
            self.waiting -= 1
        return None

    def leave(self, token: object) -> None:
        self.limiter.release_on_behalf_of(token)


class SlotResponse(Response):
    """Writes its body in chunks, each after the transport's buffer has drained (uvicorn awaits the drain
    before a write), then frees the evaluation slot: the report is counted in the slot until it has left.
    A client that stops reading is cut by the protocol's write deadline (muse/protocol.py), which ends
    the wait (the connection is gone, further sends return at once) and so frees the slot."""

    def __init__(self, body: bytes, media_type: str, release: Any) -> None:
        super().__init__(b"", media_type=media_type)
        self.payload = body
        self.headers["content-length"] = str(len(body))
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            view = memoryview(self.payload)
            for offset in range(0, max(len(view), 1), RESPONSE_CHUNK_BYTES):
                chunk = bytes(view[offset : offset + RESPONSE_CHUNK_BYTES])
                more = offset + RESPONSE_CHUNK_BYTES < len(view)
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        finally:
            self.payload = b""
            self.release()


# ----------------------------------------------------------------------------------------------------------
# Application


def create_app(settings: Settings, state: ServiceState | None = None) -> Starlette:
    state = state or ServiceState()
    metrics = Metrics(settings)
    limits = derive_limits(settings)
    admission = Admission(limits.evaluation_concurrency, MAX_WAITING_EVALUATIONS, ADMISSION_TIMEOUT_SECONDS)

    async def root(request: Request) -> Response:
        return JSONResponse(
            {
                "service": SERVICE_NAME,
                "version": settings.version,
                "gitRevision": settings.git_revision,
                "environment": settings.env,
            }
        )

    async def healthz(request: Request) -> Response:
        # Liveness only says the event loop answers; it stays 200 while draining so Kubernetes does not
        # restart a pod that is shutting down on purpose.
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if state.ready:
            return JSONResponse({"status": "ready"})
        reason = "draining" if state.draining else "starting"
        return JSONResponse({"status": reason}, status_code=503)

    async def list_policies(request: Request) -> Response:
        return JSONResponse({"policies": [p.describe() for p in POLICIES]})

    async def evaluate_endpoint(request: Request) -> Response:
        output = negotiate(request.headers.get("accept"))
        if output is None:
            return error_response(406, "not_acceptable", "supported: application/json, text/markdown")
        fail_on_raw = request.query_params.get("failOn", Severity.HIGH.value)
        try:
            fail_on = Severity(fail_on_raw)
        except ValueError:
            return error_response(
                400, "bad_request", f"failOn must be one of {', '.join(s.value for s in Severity)}"
            )
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return error_response(415, "unsupported_media_type", "send the inventory as application/json")
        # Admission before the body is read: a waiting request holds at most uvicorn's read buffer of its
        # body, and at most limits.evaluation_concurrency bodies, evaluations and reports are in memory at
        # once (the slot is freed once the report has been written: SlotResponse).
        token = await admission.enter()
        if token is None:
            return error_response(
                503,
                "busy",
                f"{limits.evaluation_concurrency} evaluations running and {MAX_WAITING_EVALUATIONS} waiting, "
                f"or no slot within {ADMISSION_TIMEOUT_SECONDS} s; retry later",
                {"Retry-After": str(ADMISSION_TIMEOUT_SECONDS)},
            )
        handed_over = False
        try:
            try:
                with anyio.fail_after(settings.body_timeout_seconds):
                    body = await read_limited_body(request, limits.max_body_bytes)
            except BodyTooLarge:
                return error_response(
                    413,
                    "payload_too_large",
                    f"request body exceeds {limits.max_body_bytes} bytes, the limit for a "
                    f"{limits.describe()} (MUSE_MEMORY_LIMIT_BYTES, MUSE_MAX_BODY_BYTES)",
                    {"Connection": "close"},
                )
            except TimeoutError:
                return error_response(
                    408,
                    "request_timeout",
                    f"request body not received within {settings.body_timeout_seconds} s "
                    "(MUSE_BODY_TIMEOUT_SECONDS)",
                    {"Connection": "close"},
                )
            except ValueError as exc:
                return error_response(400, "bad_request", str(exc))
            except ClientDisconnect:
                return Response(status_code=400)
            if not body:
                return error_response(400, "bad_request", "empty body; send an inventory JSON document")
            work = functools.partial(run_evaluation, body, fail_on, output, limits)
            try:
                rendered = await anyio.to_thread.run_sync(work)
            except InventoryError as exc:
                detail = exc.args[0]
                if exc.problems:
                    body_out = {"error": "invalid_inventory", "detail": detail, "problems": exc.problems}
                    return JSONResponse(body_out, status_code=422)
                status = 400 if detail.startswith("malformed JSON") else 422
                error = "malformed_json" if status == 400 else "invalid_inventory"
                return error_response(status, error, detail)
            except EvaluationTooLarge as exc:
                return error_response(
                    422,
                    "evaluation_too_large",
                    f"{exc.detail}, the limit for a {limits.describe()}; evaluate the inventory in parts",
                )
            for severity, count in rendered.violations_by_severity.items():
                if count:
                    metrics.violations.labels(severity).inc(count)
            handed_over = True
            return SlotResponse(rendered.body, rendered.media_type, functools.partial(admission.leave, token))
        finally:
            if not handed_over:
                admission.leave(token)

    report = load_governance_report(settings)

    async def governance(request: Request) -> Response:
        output = negotiate(request.headers.get("accept"))
        if output is None:
            return error_response(406, "not_acceptable", "supported: application/json, text/markdown")
        if isinstance(report, GovernanceUnavailable):
            return error_response(report.status, report.error, report.detail)
        if output == "markdown":
            return PlainTextResponse(report.markdown, media_type="text/markdown; charset=utf-8")
        return JSONResponse(report.to_json())

    routes = [
        Route(ROOT_PATH, root, methods=["GET"]),
        Route(HEALTH_PATH, healthz, methods=["GET"]),
        Route(READINESS_PATH, readyz, methods=["GET"]),
        Route(POLICIES_PATH, list_policies, methods=["GET"]),
        Route(EVALUATE_PATH, evaluate_endpoint, methods=["POST"]),
        Route(GOVERNANCE_PATH, governance, methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
        names = {404: "not_found", 405: "method_not_allowed"}
        return error_response(
            exc.status_code,
            names.get(exc.status_code, "http_error"),
            str(exc.detail),
            dict(exc.headers) if exc.headers else None,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.started = True
        logger.info(
            "muse started",
            extra={
                "version": settings.version,
                "git_revision": settings.git_revision,
                "environment": settings.env,
            },
        )
        yield
        logger.info("muse stopped")

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestContextMiddleware, state=state, metrics=metrics, routes=routes),
            Middleware(BearerAuthMiddleware, token=settings.api_token.get_secret_value().encode()),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.muse = state
    app.state.metrics = metrics
    app.state.limits = limits
    return app
