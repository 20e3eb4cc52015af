"""The ASGI middleware: request id, the server span named by route template, and the per-request signals.

It is a plain ASGI callable (never Starlette's BaseHTTPMiddleware). Per request it scans the headers once, wraps
``send`` and ``receive`` once, starts one span, and reads the matched route from what the router already stored in the
scope, so the route template is never computed by re-matching. Everything that can be decided once (excluded paths,
the tracer) is decided in ``__init__``.

The span carries the stable HTTP server semantic-convention attributes with the values
opentelemetry-instrumentation-asgi/-fastapi give them (a test compares the two on the same request); where that
package departs from the specification (``server.address`` taken from the listening socket, with the port appended,
instead of the ``Host`` header) this middleware follows the specification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, get_global_textmap
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from signalfire import _errors, _logging, _metrics, _tracing
from signalfire._export import _drops
from signalfire._scrub._policy import GeneratedId
from signalfire._settings import Settings
from signalfire._web import _url
from signalfire._web._access import AccessLog, send_error_response
from signalfire._web._url import route_template

if TYPE_CHECKING:
    from signalfire._runtime import Observability

__all__ = ["ObservabilityMiddleware", "excluded_path_matcher", "excluded_url_matcher", "route_template"]

_log = logging.getLogger("signalfire")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any
Send = Any

# Printable ASCII without spaces, at most 128 characters: UUIDs, nginx's 32-hex $request_id, ULIDs, ...
_SANE_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")
# The route access lines show for requests no route matched; their metric points and spans have no http.route at all.
UNMATCHED_ROUTE = "unmatched"
# nginx's code for "the client closed the connection before the response was complete".
CLIENT_CLOSED_REQUEST = 499
# The scope key that marks a request as already traced by an outer signalfire middleware (nested or mounted apps).
SCOPE_MARK = "signalfire.span"
# FastAPI's native telemetry (FastAPI >= 0.142) skips a request whose scope holds this key, which is how it keeps a
# mounted FastAPI app from observing a request its parent observes: set here, mounted apps leave the request to us.
_FASTAPI_TELEMETRY_KEY = "fastapi.telemetry"
# Sent on the 500 of an unhandled error: the server closes that connection, so the client must not reuse it.
_CONNECTION_CLOSE = (b"connection", b"close")
# The parent of a request that carries no propagation header: a root span, whatever context the server runs in.
_NO_PARENT = otel_context.Context()
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def excluded_path_matcher(settings: Settings) -> re.Pattern[str] | None:
    """One compiled pattern for SIGNALFIRE_EXCLUDED_PATHS and OTEL_PYTHON_FASTAPI_EXCLUDED_URLS searched in a path
    (None: nothing); the probes' check uses it. The middleware matches the OpenTelemetry patterns against the full URL,
    as OpenTelemetry's instrumentations do (:func:`excluded_url_matcher`)."""
    parts = _path_patterns(settings)
    parts.extend(f"(?:{pattern})" for pattern in settings.excluded_urls)
    return re.compile("|".join(parts)) if parts else None


def _path_patterns(settings: Settings) -> list[str]:
    parts: list[str] = []
    for path in settings.excluded_paths:
        if path.endswith("*"):
            parts.append("^" + re.escape(path[:-1]))
        else:
            parts.append("^" + re.escape(path) + "$")
    return parts


def excluded_url_matcher(settings: Settings) -> re.Pattern[str] | None:
    """OTEL_PYTHON_FASTAPI_EXCLUDED_URLS / OTEL_PYTHON_EXCLUDED_URLS as opentelemetry-util-http's ExcludeList reads
    them: the patterns joined by ``|`` and searched (``re.search``) in ``scheme://host/path`` (no query)."""
    return re.compile("|".join(settings.excluded_urls)) if settings.excluded_urls else None


def _full_url(scope: Scope, scheme: str) -> str:
    """The URL OpenTelemetry's ASGI instrumentation matches exclusions against: the Host header (else the server's
    address, with its port unless 80), then the path."""
    for key, value in scope.get("headers") or ():
        if key == b"host":
            return f"{scheme}://{value.decode('latin-1')}{scope.get('path', '')}"
    server = scope.get("server") or ("0.0.0.0", 80)
    host = server[0] if str(server[1]) == "80" else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{scope.get('path', '')}"


def _header_capture(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(patterns), re.IGNORECASE) if patterns else None


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


def _split_host(host: str, scheme: str) -> tuple[str, int | None]:
    """``example.com:8080`` -> (``example.com``, 8080); ``[::1]:80`` -> (``::1``, 80); no port: the scheme's."""
    default = _DEFAULT_PORTS.get(scheme)
    if host.startswith("["):
        end = host.find("]")
        if end != -1:
            rest = host[end + 1 :]
            port = rest[1:] if rest.startswith(":") else ""
            return host[1:end], int(port) if port.isdigit() else default
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return host, default


def _is_foreign_server_span(span: trace.Span) -> bool:
    # Another instrumentation (OpenTelemetry's FastAPIInstrumentor outside us) already made this request's span.
    return span.is_recording() and getattr(span, "kind", None) is SpanKind.SERVER


def _flush_before_shutdown_complete(send: Send, running: Observability | None) -> Send:
    """Flush every signal when the app reports ``lifespan.shutdown.complete``, before the server hears of it.

    Every ASGI server runs lifespan shutdown after draining and before it exits, and some exit without running atexit
    or our SIGTERM handler (gunicorn's uvicorn worker restores SIGTERM's default action and re-raises it), so this is
    the last moment at which what the finished requests produced can still be delivered. The app's own shutdown
    handlers have run, so their telemetry is included. The flush runs on a thread and is awaited, so the event loop
    goes on (other lifespans, the server's own tasks); it takes at most what is left of SIGNALFIRE_SHUTDOWN_TIMEOUT.
    At ``lifespan.startup.complete`` the app serves (again): see ``Observability.lifespan_started``. ``running`` is
    the instance that instrumented the app (``integrations.fastapi`` hands it down); once shut down, it does nothing.
    """

    async def send_wrapper(message: Message) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.shutdown.complete"):
            if running is not None and running.active and kind == "lifespan.startup.complete":
                running.lifespan_started()
            elif running is not None and running.active:
                await asyncio.wrap_future(running.lifespan_ended())
        await send(message)

    return send_wrapper


class ObservabilityMiddleware:
    """One server span and the request id for every HTTP request of an ASGI app.

    It sits outside Starlette's ServerErrorMiddleware (see ``integrations.fastapi``), so it sees the 500 response an
    unhandled exception turns into and the exception itself. WebSocket connections and lifespan events pass through.
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        *,
        spans: bool = True,
        serve_metrics: bool = True,
        instance: Observability | None = None,
        running: Callable[[], Observability | None] | None = None,
    ) -> None:
        self.app = app
        # The instance that instrumented the app: flushed at lifespan shutdown (integrations.fastapi renews it). Once
        # it is shut down, the one running now (``running``, handed down with it), which a re-initialisation that was
        # not given the app started: its lifespan hooks (SIGTERM chain, flush) are the process's.
        self.instance = instance
        self.running = running
        self.tracer = _tracing.GLOBAL_PROVIDER.get_tracer("signalfire.http", schema_url=_url.SCHEMA_URL)
        # False when another instrumentation (OpenTelemetry's FastAPIInstrumentor) makes the server span.
        self.spans = spans
        self._hook_failed: set[str] = set()
        self._secret_routes: dict[str, bool] = {}
        # False when the app serves the metrics path itself (its route wins) or SIGNALFIRE_METRICS_ON_APP=false.
        self.serve_metrics = serve_metrics
        self.configure(settings)

    def _lifespan_instance(self) -> Observability | None:
        instance = self.instance
        if (instance is None or not instance.active) and self.running is not None:
            return self.running()
        return instance

    def configure(self, settings: Settings) -> None:
        """Take new settings (a re-initialisation); everything derived from them is computed here, once."""
        self.settings = settings
        self._secret_routes.clear()  # judged under the previous settings' key policy
        paths = _path_patterns(settings)
        self.excluded = re.compile("|".join(paths)) if paths else None
        self.excluded_urls = excluded_url_matcher(settings)
        self.request_id_header = settings.request_id_header.lower().encode("latin-1")
        self.known_methods = (
            frozenset(settings.http_known_methods) if settings.http_known_methods is not None else _url.HTTP_METHODS
        )
        # OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*: names matched whole, case-insensitively; sanitised by search.
        self.capture_request = _header_capture(settings.http_capture_headers_server_request)
        self.capture_response = _header_capture(settings.http_capture_headers_server_response)
        sanitize = settings.http_capture_headers_sanitize_fields
        self.sanitize = re.compile("|".join(sanitize), re.IGNORECASE) if sanitize else None
        self.request_hook = settings.server_request_hook
        self.response_hook = settings.server_response_hook
        # Header names the configured propagators read (traceparent, tracestate, baggage): extract() costs about 2 us,
        # so it runs only for requests that carry one of them.
        self.propagation_headers = frozenset(name.lower().encode("latin-1") for name in get_global_textmap().fields)
        # the access log (SIGNALFIRE_ACCESS_LOG_*)
        self.access_log = AccessLog(settings) if settings.access_log else None
        # metrics: the /metrics endpoint (served before anything else, never traced) and the RED recorder
        exposition = _metrics.exposition(settings) if self.serve_metrics and settings.metrics_on_app else None
        self.metrics_path: str | None = exposition[0] if exposition else None
        self.metrics_endpoint: Any = exposition[1] if exposition else None
        self.red = _metrics.http_server

    def _headers(self, prefix: str, raw: Iterable[tuple[bytes, bytes]], wanted: re.Pattern[str]) -> dict[str, Any]:
        """``http.request.header.<name>`` / ``http.response.header.<name>`` attributes, each a tuple of values."""
        values: dict[str, list[str]] = {}
        for raw_name, raw_value in raw:
            name = raw_name.decode("latin-1").lower()
            if wanted.fullmatch(name):
                sanitized = self.sanitize is not None and self.sanitize.search(name)
                values.setdefault(name, []).append("[REDACTED]" if sanitized else raw_value.decode("latin-1"))
        return {f"{prefix}{name.replace('-', '_')}": tuple(found) for name, found in values.items()}

    def _learn_route(self, template: str, path_params: Any) -> bool:
        """Whether requests of ``template`` carry a secret-like route parameter; remembered (routes are few)."""
        secret = bool(path_params) and any(isinstance(n, str) and _url.is_secret_name(n) for n in path_params)
        if len(self._secret_routes) < 4096:
            self._secret_routes[template] = secret
        return secret

    def _call_hook(self, kind: str, hook: Any, *args: Any) -> None:
        """A user hook never breaks the request: a failure is counted and logged once per hook kind."""
        try:
            hook(*args)
        except Exception:
            _drops.dropped("traces", "hook_failed", warn=False)
            if kind not in self._hook_failed:
                self._hook_failed.add(kind)
                _log.warning("signalfire: the %s raised; the request goes on (logged once)", kind, exc_info=True)

    # One function on purpose: on the per-request path every extra call costs (benchmarks/).
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: PLR0915
        if scope["type"] == "http" and scope["path"] == self.metrics_path:
            await self.metrics_endpoint(scope, receive, send)
            return
        if scope["type"] != "http" or not _tracing._active.recording or SCOPE_MARK in scope:
            if scope["type"] == "lifespan":
                _logging.claim_server_loggers()  # the server has configured its logging by now
                send = _flush_before_shutdown_complete(send, self._lifespan_instance())
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        scheme: str = scope.get("scheme", "http")
        if (self.excluded is not None and self.excluded.search(path)) or (
            self.excluded_urls is not None and self.excluded_urls.search(_full_url(scope, scheme))
        ):
            scope.setdefault(_FASTAPI_TELEMETRY_KEY, None)  # mounted FastAPI apps must not trace it either
            await self.app(scope, receive, send)
            return

        # --- request: one pass over the headers ---------------------------------------------------------------
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        request_id: str | None = None
        host: bytes | None = None
        user_agent: bytes | None = None
        request_id_key = self.request_id_header
        propagation_headers = self.propagation_headers
        propagated = False
        for key, value in headers:
            if key == request_id_key:
                if request_id is None and _SANE_REQUEST_ID.match(value):
                    request_id = value.decode("ascii")
            elif key == b"host":
                host = value
            elif key == b"user-agent":
                user_agent = value
            elif key in propagation_headers:
                propagated = True
        if request_id is None:
            # 32 hex digits like uuid4().hex, without building a UUID; made here, so the scrubber skips its shape rules
            request_id = GeneratedId(os.urandom(16).hex())
        raw_method: str = scope.get("method", "GET")
        method = raw_method if raw_method in self.known_methods else _url.http_method(raw_method, self.known_methods)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": scheme,
            "url.path": path,
            "request.id": request_id,
        }
        if method != raw_method:
            attributes["http.request.method_original"] = raw_method
        query: bytes = scope.get("query_string", b"")
        if query:
            # Tokens and signatures travel in query strings; only their values are replaced, the rest kept as sent.
            attributes["url.query"] = _url.recorded_query(query.decode("utf-8", "replace"))
        http_version: str = scope.get("http_version") or ""
        if http_version:
            attributes["network.protocol.version"] = http_version
        if host is not None:
            address, port = _split_host(host.decode("latin-1"), scheme)
        else:
            server = scope.get("server") or ("0.0.0.0", _DEFAULT_PORTS.get(scheme))
            address, port = server[0], server[1]
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
        if user_agent is not None:
            attributes["user_agent.original"] = user_agent.decode("latin-1")
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
            if client[1]:  # behind a proxy the server knows the client's address, not its port (uvicorn gives 0)
                attributes["client.port"] = client[1]
        if self.capture_request is not None:
            attributes.update(self._headers("http.request.header.", headers, self.capture_request))

        # --- span -----------------------------------------------------------------------------------------------
        # What the server or an outer layer put in the context stays there (FastAPI's native telemetry keeps the
        # request's state in it, which its operation spans need); only the parent span comes from the headers, or none.
        ambient = otel_context.get_current()
        parent = extract(headers, context=ambient, getter=_GETTER) if propagated else _NO_PARENT
        server_span: trace.Span | None = None
        token = None
        if self.spans and not _is_foreign_server_span(trace.get_current_span()):
            server_span = self.tracer.start_span(
                "HTTP" if method == "_OTHER" else method, context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
            token = otel_context.attach(trace.set_span_in_context(server_span, parent if propagated else ambient))
            if self.request_hook is not None:
                self._call_hook("server_request_hook", self.request_hook, server_span, scope)
        scope[SCOPE_MARK] = server_span
        scope.setdefault(_FASTAPI_TELEMETRY_KEY, None)
        red_state = self.red.start(method, scheme)
        log_token = _logging.bind_request_id(request_id, server_span)  # the span: for the server's traceback line
        _errors.request_started(request_id)  # this request's own Sentry user, contexts, breadcrumbs
        started = time.perf_counter()

        # --- response: status, last byte, client disconnect -----------------------------------------------------
        status_code = 500
        response_started = False
        response_complete = False
        disconnected = False
        end_ns: int | None = None
        request_id_header = (request_id_key, request_id.encode("ascii"))
        # A 500's start and its single body, held until the app returns: if an exception follows (Starlette's
        # ServerErrorMiddleware answers, then re-raises), the server will close the connection, so the response says
        # so first (docs/reliability.md, "Keep-alive after an unhandled error").
        held: list[Message] | None = None

        async def forward(message: Message) -> None:
            nonlocal response_complete, end_ns, disconnected
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                response_complete = True
            try:
                await send(message)
            except OSError:
                disconnected = True
                raise
            if response_complete and end_ns is None:
                end_ns = time.time_ns()

        async def release(close: bool) -> None:
            nonlocal held
            messages, held = held, None
            if not messages:
                return
            if close:
                messages[0]["headers"] = [*messages[0]["headers"], _CONNECTION_CLOSE]
            for message in messages:
                await forward(message)

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code, response_started, held, response_complete, end_ns, disconnected
            message_type = message["type"]
            if message_type == "http.response.start":
                status_code = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), request_id_header]
                if server_span is not None:
                    if self.capture_response is not None:
                        server_span.set_attributes(
                            self._headers("http.response.header.", message["headers"], self.capture_response)
                        )
                    if self.response_hook is not None:
                        self._call_hook("server_response_hook", self.response_hook, server_span, scope, message)
                if status_code == 500:
                    held = [message]
                    return
            elif held is not None:
                if len(held) == 1 and message_type == "http.response.body" and not message.get("more_body", False):
                    held.append(message)
                    return
                await release(False)  # a streamed 500: it goes out as it comes
            # what forward() does, inline: this runs for every message of every response
            if message_type == "http.response.body" and not message.get("more_body", False):
                response_complete = True
            try:
                await send(message)
            except OSError:
                # uvicorn raises ClientDisconnected (an OSError) when the peer has gone away mid-response.
                disconnected = True
                raise
            if response_complete and end_ns is None:
                end_ns = time.time_ns()

        async def receive_wrapper() -> Message:
            nonlocal disconnected
            message: Message = await receive()
            if message["type"] == "http.disconnect" and not response_complete:
                disconnected = True
            return message

        error: BaseException | None = None
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
            if held is not None:
                await release(False)
        except BaseException as exc:
            error = exc
            if held is not None and isinstance(exc, Exception):  # a cancelled task sends nothing more
                with contextlib.suppress(OSError):  # the client went away; the original exception is what matters
                    await release(True)
            if isinstance(exc, Exception) and not disconnected:
                _errors.capture_unhandled(exc, scope, route_template(scope))  # while the server span is current
            if not response_started and not disconnected and isinstance(exc, Exception):
                # Normally ServerErrorMiddleware (inside us) has answered 500 already; if nothing did, we do, so the
                # client still gets a response carrying the request id.
                await send_error_response(scope, send, request_id_header)
            raise
        finally:
            if disconnected and not response_complete:
                # The client's doing, not a server error: Starlette raises ClientDisconnect for it (ASGI >= 2.4).
                status_code = CLIENT_CLOSED_REQUEST
                error = None
            elif error is not None and not response_started:
                status_code = 500
            template = route_template(scope)
            recorded_path = path
            if template is not None:
                # Whether the route has a secret-like parameter ({token}, {code}...) is a fact of the route: one lookup
                secret = self._secret_routes.get(template)
                if secret is None:
                    secret = self._learn_route(template, scope.get("path_params"))
                if secret:
                    recorded_path = _url.recorded_path(path, scope.get("path_params"))
            error_type = _url.error_type_of_exception(error) if isinstance(error, Exception) else None
            if red_state is not None:
                span_for_exemplar = server_span if server_span is not None else trace.get_current_span()
                self.red.finish(
                    red_state, template or "", status_code, error_type, span_for_exemplar, protocol_version=http_version
                )
            if self.access_log is not None:
                elapsed = time.perf_counter() - started
                self.access_log.write(
                    scope, method, template or UNMATCHED_ROUTE, status_code, elapsed, path=recorded_path
                )
            if error is None:
                # After an exception the id stays bound: the server logs the traceback next, in this same task, and
                # that line should name the request. The task ends with the request, and so does the binding.
                _logging.reset_request_id(log_token)
            if server_span is not None:
                self._finish_span(
                    server_span,
                    method=method,
                    template=template,
                    status_code=status_code,
                    error=error,
                    error_type=error_type,
                    end_ns=end_ns,
                    recorded_path=recorded_path if recorded_path is not path else None,
                )
            if token is not None:
                otel_context.detach(token)

    @staticmethod
    def _finish_span(
        span: trace.Span,
        *,
        method: str,
        template: str | None,
        status_code: int,
        error: BaseException | None,
        error_type: str | None,
        end_ns: int | None,
        recorded_path: str | None = None,
    ) -> None:
        # One set_attributes call: the SDK takes the span's lock and checks it has not ended once per call.
        attributes: dict[str, Any] = {}
        if recorded_path is not None:
            attributes["url.path"] = recorded_path
        if template is not None:
            span.update_name(f"{'HTTP' if method == '_OTHER' else method} {template}")
            attributes["http.route"] = template
        attributes["http.response.status_code"] = status_code
        if isinstance(error, Exception):
            attributes["error.type"] = error_type or _url.error_type_of_exception(error)
            span.set_attributes(attributes)
            try:
                _tracing.record_exception(span, error)  # each frame's text formatted once per process
                description = f"{type(error).__name__}: {error}"
            except Exception:  # an exception whose __str__ raises must not replace the application's own
                description = f"{type(error).__name__}: <str() failed>"
            span.set_status(Status(StatusCode.ERROR, description))
        elif status_code >= 500:
            attributes["error.type"] = _url.error_type_of_status(status_code) or str(status_code)
            span.set_attributes(attributes)
            span.set_status(Status(StatusCode.ERROR))
        else:
            span.set_attributes(attributes)
        span.end(end_time=end_ns)


def iter_middlewares(app: Any) -> Iterable[Any]:
    """The chain of ASGI apps reachable through ``.app`` from ``app`` (a built Starlette middleware stack)."""
    seen: set[int] = set()
    while app is not None and id(app) not in seen:
        seen.add(id(app))
        yield app
        app = getattr(app, "app", None)
