"""The ASGI middleware: request id, the server span named by route template, and the per-request signals.

It is a plain ASGI callable: per request it wraps ``send`` once, starts one span, and reads the matched route from
the scope Starlette fills in (``scope["route"]``), so the route template is never computed by re-matching.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from signalfire import _errors, _logging, _metrics, _tracing
from signalfire._access import AccessLog, send_error_response
from signalfire._settings import Settings

__all__ = ["ObservabilityMiddleware", "route_template"]

Scope = dict[str, Any]
Receive = Any
Send = Any

REQUEST_ID_HEADER = b"x-request-id"
# Printable ASCII without spaces, at most 128 characters: UUIDs, nginx's 32-hex $request_id, ULIDs, ...
_SANE_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str | None:
    """The matched route's template, with the prefixes of the mounts it sits under (``/api/items/{item_id}``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return None
    app_root = scope.get("app_root_path", "")
    mount_prefix = scope.get("root_path", "")[len(app_root) :]
    return f"{mount_prefix}{path}" if mount_prefix else path


def _header_getter(carrier: list[tuple[bytes, bytes]], key: str) -> list[str]:
    wanted = key.encode("latin-1").lower()
    return [v.decode("latin-1") for k, v in carrier if k.lower() == wanted]


class _Getter(Getter[list[tuple[bytes, bytes]]]):
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        found = _header_getter(carrier, key)
        return found or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _Getter()


class ObservabilityMiddleware:
    """One server span and the request id for every HTTP request of an ASGI app."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.tracer = _tracing.GLOBAL_PROVIDER.get_tracer("signalfire.http")
        # request correlation and the access log (SIGNALFIRE_REQUEST_ID_HEADER, SIGNALFIRE_ACCESS_LOG_*)
        self.request_id_header = settings.request_id_header.lower().encode("latin-1")
        self.access_log = AccessLog(settings) if settings.access_log else None

        # metrics: the /metrics endpoint (served before anything else, never traced) and the RED recorder
        exposition = _metrics.exposition(settings)
        self.metrics_path: str | None = exposition[0] if exposition else None
        self.metrics_endpoint: Any = exposition[1] if exposition else None
        self.red = _metrics.http_server

    def _request_id(self, headers: list[tuple[bytes, bytes]]) -> str:
        """The request's own id when it sent a sane one in the request-id header, else a fresh one."""
        wanted = self.request_id_header
        for key, value in headers:
            if key == wanted and _SANE_REQUEST_ID.match(value):
                return value.decode("ascii")
        return uuid.uuid4().hex

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: PLR0915
        if scope["type"] == "http" and scope["path"] == self.metrics_path:
            await self.metrics_endpoint(scope, receive, send)
            return
        if scope["type"] != "http" or not _tracing._active.recording:
            if scope["type"] == "lifespan":
                _logging.claim_server_loggers()  # the server has configured its logging by now
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        request_id_header = self.request_id_header
        request_id = self._request_id(headers)
        method = scope.get("method", "GET")
        parent = extract(headers, getter=_GETTER)
        server_span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope.get("path", ""),
                "url.scheme": scope.get("scheme", "http"),
                "request.id": request_id,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(server_span, parent))
        log_token = _logging.bind_request_id(request_id)
        _errors.request_started()  # this request's own Sentry user/contexts/breadcrumbs (a no-op without Sentry)
        started = time.perf_counter()
        status_code = 500
        response_started = False
        response_header = (request_id_header, request_id.encode("ascii"))
        error_type = None
        red_state = self.red.start(scope)

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                status_code = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), response_header]
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            status_code = 500
            failed = True
            error_type = type(exc).__qualname__
            _tracing._record_error(server_span, exc)
            _errors.capture_unhandled(exc, scope, route_template(scope))  # while the server span is current
            if not response_started and isinstance(exc, Exception):
                # Starlette's ServerErrorMiddleware sits outside us and would answer without the request id.
                await send_error_response(scope, send, response_header)
            raise
        finally:
            template = route_template(scope) or UNMATCHED_ROUTE
            server_span.update_name(f"{method} {template}")
            server_span.set_attribute("http.route", template)
            server_span.set_attribute("http.response.status_code", status_code)
            if status_code >= 500:
                server_span.set_status(Status(StatusCode.ERROR))
            if red_state is not None:
                self.red.finish(red_state, template, status_code, error_type, server_span)
            if self.access_log is not None:
                self.access_log.write(scope, method, template, status_code, time.perf_counter() - started)
            if not failed:
                # After an exception the id stays bound: the server logs the traceback next, in this same task, and
                # that line should name the request. The task ends with the request, and so does the binding.
                _logging.reset_request_id(log_token)
            otel_context.detach(token)
            server_span.end()
