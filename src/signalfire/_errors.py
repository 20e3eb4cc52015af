"""Errors: sentry-sdk started from Settings, every event scrubbed, noise dropped, and linked to the OpenTelemetry trace.

One tracing owner: OpenTelemetry. Unless SENTRY_TRACES_SAMPLE_RATE is above 0, Sentry runs with tracing off
(``traces_sample_rate=None``, so incoming ``sentry-trace`` headers are not continued either), with the ``otel``
instrumenter (its integrations' ``start_span``/``start_transaction`` return no-op spans), with no
``trace_propagation_targets`` (no ``sentry-trace``/``baggage`` headers on outgoing requests) and with OpenTelemetry
registered as its external propagation context, so every event's ``contexts.trace`` carries the active OpenTelemetry
trace id and span id. The span, in turn, records the Sentry event id.

Every event and breadcrumb passes through the shared scrubber before anything else sees it; a scrubber failure drops
the event (fail closed) and is counted, it never sends the unscrubbed event and never raises into the app.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import logging
import os
import sys
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace

from signalfire import _logging
from signalfire._export import _drops
from signalfire._settings import Settings

if TYPE_CHECKING:
    from sentry_sdk.transport import Transport

    from signalfire._runtime import Observability
    from signalfire._scrub._policy import Scrubber

__all__ = [
    "add_breadcrumb",
    "capture_exception",
    "capture_message",
    "enabled",
    "install",
    "set_context",
    "set_user",
]

_log = logging.getLogger("signalfire")

Level = Literal["fatal", "error", "warning", "info", "debug"]
Event = dict[str, Any]
Hint = dict[str, Any]

# Top-level event fields that are Sentry's own structure, not user data: not scrubbed (a trace id must stay a trace
# id; the module list is long and public) and put back as they were.
_STRUCTURAL = (
    "event_id",
    "timestamp",
    "start_timestamp",
    "platform",
    "level",
    "logger",
    "release",
    "environment",
    "dist",
    "server_name",
    "sdk",
    "type",
    "modules",
    "transaction_info",
    "debug_meta",
)
# Exceptions that are answers, not failures: FastAPI/Starlette HTTP errors below 500 and request validation.
_VALIDATION_ERRORS = frozenset(
    {
        "fastapi.exceptions.RequestValidationError",
        "fastapi.exceptions.WebSocketRequestValidationError",
    }
)


class _State:
    """The errors component of the running instance while Sentry is on: what install() resolved once (read by the
    hooks on every event), the client signalfire attached to, and what shutdown() gives back or clears."""

    __slots__ = (
        "asgi_integration",
        "attached",
        "dropped",
        "ignored",
        "lean",
        "log_handlers",
        "scopes",
        "send_user_email",
        "user_before_breadcrumb",
        "user_before_send",
    )

    def __init__(
        self, settings: Settings, *, asgi_integration: bool | None = None, attached: _Attached | None = None
    ) -> None:
        # An application's own client with sentry-sdk's Starlette/FastAPI integrations reports unhandled errors itself.
        self.asgi_integration = settings.sentry_asgi_integration if asgi_integration is None else asgi_integration
        self.send_user_email = settings.sentry_send_user_email
        self.user_before_send = settings.sentry_before_send
        self.user_before_breadcrumb = settings.sentry_before_breadcrumb
        self.ignored = frozenset(settings.sentry_ignore_errors)
        # Sentry on without sentry-sdk's ASGI integrations: requests keep their own user/context/breadcrumbs.
        self.lean = not self.asgi_integration
        # The application's own client signalfire attached to (None: signalfire started sentry-sdk itself).
        self.attached = attached
        # shutdown() closes from a worker thread, whose context has scopes of its own: the app's scopes, to clear.
        self.scopes: list[Any] = []
        # Events dropped because scrubbing or enrichment failed; visible in the warning and through dropped_events().
        self.dropped = 0
        # The client's logging-integration handlers signalfire put _reported_filter on (removed at shutdown).
        self.log_handlers: tuple[logging.Handler, ...] = ()

    def ignores(self, exc: BaseException) -> bool:
        """SIGNALFIRE_SENTRY_IGNORE_ERRORS matched the way sentry-sdk matches ignore_errors: class name or full path."""
        cls = type(exc)
        return bool(self.ignored) and (
            cls.__name__ in self.ignored or f"{cls.__module__}.{cls.__name__}" in self.ignored
        )


# The errors component of the running instance (None: Sentry is off); set by install(), cleared by its shutdown step.
_state: _State | None = None
# Process-wide: sentry-sdk's client and scopes are the process's; one lock orders installing and closing them.
_lock = threading.Lock()
# Process-wide: each of these warnings is given once per process (a misbehaving client or hook is the process's).
_warned: set[str] = set()


def forget_warnings() -> None:
    """Give each once-per-process warning again (``_runtime.reset()``, between tests)."""
    _warned.clear()


def _set_state(state: _State | None) -> None:
    global _state  # noqa: PLW0603 - the one slot of the running instance's errors component
    _state = state


def enabled() -> bool:
    """True while Sentry is initialized by signalfire (SENTRY_DSN set and not shut down)."""
    return _state is not None


def dropped_events() -> int:
    """How many events the running instance dropped because it could not scrub them (never sent unscrubbed)."""
    state = _state
    return state.dropped if state is not None else 0


def _count_dropped(state: _State | None) -> None:
    if state is not None:
        state.dropped += 1


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        _log.warning(message, exc_info=True)


# --- install / shutdown -----------------------------------------------------------------------------------------------
def sentry_options(settings: Settings, transport: Transport | None = None) -> dict[str, Any]:
    """The keyword arguments signalfire passes to ``sentry_sdk.init`` for these settings."""
    sentry_tracing = settings.sentry_traces_sample_rate > 0
    options: dict[str, Any] = {
        "dsn": settings.sentry_dsn,
        "environment": settings.sentry_environment or settings.environment,
        "release": settings.sentry_release or settings.service_version,
        "before_send": _before_send,
        "before_breadcrumb": _before_breadcrumb,
        "ignore_errors": list(settings.sentry_ignore_errors),
        # Locals are what makes an error debuggable, but sentry-sdk serialises them for every frame, and a FastAPI
        # traceback is twenty library frames holding the ASGI scope, the app and the middleware stack: about 20 ms of
        # CPU per event, most of it then walked again by the scrubber. before_send adds the locals of your own code's
        # frames instead (_add_own_frame_details), scrubbed with the rest of the event; their source lines too
        # (sentry-sdk re-reads and splits a module's whole source for every frame).
        "include_local_variables": False,
        "include_source_context": False,
        **_data_collection(),
        # flush at exit is ours (shutdown() runs first and closes the client); this bounds sentry's own atexit hook
        "shutdown_timeout": min(2.0, settings.shutdown_timeout_s),
        **_integrations(settings),
    }
    if sentry_tracing:
        options["traces_sample_rate"] = settings.sentry_traces_sample_rate
        options.update(_profiling(settings.sentry_profiles_sample_rate))
    else:
        # None, not 0: with 0 Sentry still continues incoming sentry-trace headers and sends those transactions.
        options["traces_sample_rate"] = None
        options["instrumenter"] = "otel"
        options["trace_propagation_targets"] = []
    if transport is not None:
        options["transport"] = transport
    return options


# What sentry-sdk's integrations collect by themselves, as with send_default_pii=False (which sentry-sdk 2.75
# deprecates in favour of data_collection); signalfire adds the locals and source of the application's own frames.
_DATA_COLLECTION_TERMS = ["forwarded", "-ip", "remote-", "via", "-user"]
_DATA_COLLECTION: dict[str, Any] = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "denylist", "terms": _DATA_COLLECTION_TERMS}},
    "url_query_params": {"mode": "denylist", "terms": _DATA_COLLECTION_TERMS},
    "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False},
    "database_query_data": False,
    "queues": False,
    "stack_frame_variables": False,
    "frame_context_lines": 0,
}


def _init_parameters() -> frozenset[str]:
    """The options this sentry-sdk's ``init()`` takes (its documented ClientConstructor signature)."""
    import inspect

    from sentry_sdk.consts import ClientConstructor

    return frozenset(inspect.signature(ClientConstructor.__init__).parameters)


def _data_collection() -> dict[str, Any]:
    """``data_collection`` where sentry-sdk has it (2.75+); older releases default to the same without it.

    Passing it also turns sentry-sdk's own event_scrubber off: signalfire's scrubbing at the transport does not
    depend on it.
    """
    if "data_collection" not in _init_parameters():
        return {}
    return {"data_collection": copy.deepcopy(_DATA_COLLECTION)}


def _profiling(rate: float) -> dict[str, Any]:
    """Profiling for sampled transactions: continuous profiling bound to traces where sentry-sdk has it
    (transaction-based ``profiles_sample_rate`` is deprecated), else the transaction-based option."""
    if not rate:
        return {}
    if {"profile_session_sample_rate", "profile_lifecycle"} <= _init_parameters():
        return {"profile_session_sample_rate": rate, "profile_lifecycle": "trace"}
    return {"profiles_sample_rate": rate}


def _integrations(settings: Settings) -> dict[str, Any]:
    """Lean by default; sentry-sdk's own web integrations with SIGNALFIRE_SENTRY_ASGI_INTEGRATION=true."""
    if not settings.sentry_asgi_integration:
        # Only the default integrations, which cost nothing per request (argv, atexit, dedupe, excepthook, logging,
        # modules, stdlib, threading). The auto-enabled ones (Starlette/FastAPI/ASGI: an isolation scope, a session
        # and a transaction object per request; SQLAlchemy/Redis/httpx: a breadcrumb per query or call) are left out:
        # signalfire's middleware reports unhandled errors and OpenTelemetry records the queries and calls.
        return {"auto_enabling_integrations": False, "integrations": []}
    integrations: list[Any] = []
    try:
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration
    except Exception:  # starlette/fastapi not installed: sentry's auto-enabling skips them too
        return {"integrations": integrations}
    # Pinned rather than left to the defaults: 5xx reported, transactions named by route template.
    codes = set(range(500, 600))
    integrations.append(StarletteIntegration(transaction_style="url", failed_request_status_codes=codes))
    integrations.append(FastApiIntegration(transaction_style="url", failed_request_status_codes=codes))
    return {"integrations": integrations}


def install(settings: Settings, obs: Observability, *, transport: Transport | None = None) -> None:
    """Attach to the application's Sentry client if it started one, else start sentry-sdk when SENTRY_DSN is set;
    in both cases every envelope is scrubbed at the transport. Registers flush and close with ``obs``."""
    # An application that started its own client has imported sentry-sdk; otherwise it is imported only for a DSN.
    if "sentry_sdk" in sys.modules and _state is None:
        import sentry_sdk

        client = sentry_sdk.get_client()
        if client.is_active():
            _attach(settings, obs, client)
            return
    if not settings.sentry_dsn:
        _attach_later(settings, obs)
        return
    import sentry_sdk
    from sentry_sdk.scope import register_external_propagation_context

    with _lock:
        sentry_sdk.init(**sentry_options(settings, transport))
        client = sentry_sdk.get_client()
        # events the transport loses (backend down, its queue full, rate limited) are counted
        _drops.watch_sentry_transport(client.transport)
        _wrap_transport(client)
        register_external_propagation_context(_otel_trace_context)
        state = _State(settings)
        state.scopes = [sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()]
        state.log_handlers = _filter_reported_records(client, breadcrumbs=state.lean)
        _set_state(state)
        if state.lean:
            _add_request_processor()
            _patch_starlette_handler_lookup()
    obs.note_owner("errors", "no Sentry client", "signalfire started sentry-sdk from SENTRY_* settings")
    obs.on_shutdown("errors", _close, _flush)


class _Attached:
    """The application's own client signalfire attached to, and what to give back at shutdown."""

    __slots__ = ("client", "inner", "sentry_tracing", "wrapper")

    def __init__(self, client: Any, inner: Any, wrapper: Any, sentry_tracing: bool) -> None:
        self.client = client
        self.inner = inner
        self.wrapper = wrapper
        self.sentry_tracing = sentry_tracing


def _attach(settings: Settings, obs: Observability, client: Any) -> None:
    """Keep the client the application initialised (options, integrations, its before_send) and add signalfire's
    part to it: scrubbing at its transport (after its own hooks), the trace link and the 4xx filter (a global event
    processor, which runs before its before_send)."""
    from signalfire._compat import sentry_sdk as compat

    _set_late(None)
    options = client.options
    sentry_tracing = options.get("traces_sample_rate") is not None or options.get("traces_sampler") is not None
    asgi = any(client.get_integration(name) is not None for name in ("starlette", "fastapi", "asgi"))
    with _lock:
        inner = compat.get_transport(client)
        if inner is not None:
            _drops.watch_sentry_transport(inner)
        wrapper = _wrap_transport(client)
        _add_attached_processor()
        # Without sentry-sdk's web integrations nothing isolates requests on this client either: signalfire's
        # per-request user/contexts/breadcrumbs and its reporting of unhandled errors apply, as for its own client.
        state = _State(settings, asgi_integration=asgi, attached=_Attached(client, inner, wrapper, sentry_tracing))
        state.log_handlers = _filter_reported_records(client, breadcrumbs=False)
        _set_state(state)
        if state.lean:
            _add_request_processor()
            _patch_starlette_handler_lookup()
    found = f"a Sentry client initialised by the application (environment {options.get('environment')!r})"
    action = (
        "kept with its options, integrations and before_send; signalfire added scrubbing at its transport, the "
        "OpenTelemetry trace link and the 4xx filter"
    )
    if settings.sentry_dsn and settings.sentry_dsn != client.dsn:
        action += "; signalfire's SENTRY_DSN differs and is not used"
    obs.note_owner("errors", found, action)
    obs.on_shutdown("errors", _detach, _flush)


# (settings, obs) of a running signalfire without a Sentry client of its own: a client the application starts after
# init_observability() is attached to when it sends its first event.
_late: tuple[Settings, Observability] | None = None


def _set_late(late: tuple[Settings, Observability] | None) -> None:
    global _late  # noqa: PLW0603 - the one slot of the running instance waiting for a client
    _late = late


def _attach_later(settings: Settings, obs: Observability) -> None:
    from signalfire._imports import when_imported

    _set_late((settings, obs))
    obs.on_shutdown("errors", lambda _timeout: _set_late(None))
    when_imported("sentry_sdk", lambda _module: _add_attached_processor())


def _detach(timeout: float) -> None:
    """Give the application's client back as it was (its transport unwrapped); flush it, never close it."""
    from signalfire._compat import sentry_sdk as compat

    with _lock:
        state = _state
        attached = state.attached if state is not None else None
        _set_state(None)
        _unfilter_reported_records(state)
    if attached is None:
        return
    if attached.inner is not None and compat.get_transport(attached.client) is attached.wrapper:
        compat.set_transport(attached.client, attached.inner)
    attached.client.flush(timeout=timeout)


def _wrap_transport(client: Any) -> Any:
    from signalfire._compat import sentry_sdk as compat

    inner = compat.get_transport(client)
    if inner is None or _is_scrubbing(inner):
        return inner
    wrapper = _scrubbing_transport(inner)
    if not compat.set_transport(client, wrapper):
        _warn_once("transport", "signalfire: cannot scrub this Sentry client's envelopes; its events are dropped")
    return wrapper


def _flush(timeout: float) -> None:
    import sentry_sdk

    sentry_sdk.get_client().flush(timeout=timeout)


def _close(timeout: float) -> None:
    import sentry_sdk
    from sentry_sdk.scope import remove_external_propagation_context

    with _lock:
        state = _state
        _set_state(None)
        _unfilter_reported_records(state)
        remove_external_propagation_context()
        client = sentry_sdk.get_client()
        # Back to a non-recording client: helpers are no-ops again and a later init starts clean.
        sentry_sdk.get_global_scope().set_client(None)
        installed = state.scopes if state is not None else []
        scopes = [*installed, sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()]
        for scope in scopes:
            scope.clear()
    client.close(timeout=timeout)


# --- scrubbing at the wire ------------------------------------------------------------------------------------------
def _scrubbing_transport(inner: Any) -> Any:
    """A :class:`sentry_sdk.transport.Transport` that scrubs every envelope, then hands it to ``inner``.

    This is the last step before encoding, after every hook of the client (the application's before_send and
    before_send_transaction, sentry-sdk's event processors and event_scrubber): whatever they added is scrubbed too.
    An item that cannot be scrubbed is dropped and counted, never sent as it was. (The class is made on first use:
    importing sentry-sdk costs start-up time a service without Sentry should not pay.)
    """
    return _transport_type()(inner)


# Process-wide: one class for the process (made on first use: importing sentry-sdk costs start-up time).
@functools.cache
def _transport_type() -> type[Any]:
    from sentry_sdk.transport import Transport

    class ScrubbingTransport(Transport):
        def __init__(self, inner: Any) -> None:
            super().__init__(None)
            self.inner = inner
            self.options = getattr(inner, "options", None)
            self.parsed_dsn = getattr(inner, "parsed_dsn", None)

        def capture_envelope(self, envelope: Any) -> None:
            scrubbed = _scrub_envelope(envelope)
            if scrubbed is not None:
                self.inner.capture_envelope(scrubbed)

        def flush(self, timeout: float, callback: Any = None) -> None:
            self.inner.flush(timeout, callback)

        def kill(self) -> None:
            self.inner.kill()

        def record_lost_event(
            self, reason: str, data_category: Any = None, item: Any = None, *, quantity: int = 1
        ) -> None:
            self.inner.record_lost_event(reason, data_category, item, quantity=quantity)

        def is_healthy(self) -> bool:
            return bool(self.inner.is_healthy())

        def __getattr__(self, name: str) -> Any:
            # what else sentry-sdk or the application reads of its transport (only reached for missing names)
            if name == "inner":
                raise AttributeError(name)
            return getattr(self.inner, name)

    return ScrubbingTransport


def _is_scrubbing(transport: Any) -> bool:
    return "sentry_sdk.transport" in sys.modules and isinstance(transport, _transport_type())


# Item types without application data: sentry-sdk's own counts of dropped items, and profiles (sampled stacks: code
# locations and thread names, large, and no values), sent as they are.
_BOOKKEEPING_ITEMS = frozenset({"client_report", "profile", "profile_chunk"})
# Fields of a Sentry log item that are structure (ids, times, levels), kept as they are.
_LOG_STRUCTURE = ("timestamp", "trace_id", "span_id", "level", "severity_number")


def _scrub_envelope(envelope: Any) -> Any:
    """A scrubbed copy of an envelope (None when nothing is left to send); never raises."""
    from sentry_sdk.envelope import Envelope, Item, PayloadRef

    state = _state
    send_user_email = state.send_user_email if state is not None else False
    items = []
    for item in envelope.items:
        kind = item.type or item.headers.get("type")
        payload = item.payload.json if isinstance(item.payload, PayloadRef) else None
        if payload is None or kind in _BOOKKEEPING_ITEMS:
            items.append(item)  # attachments and other bytes the application attached itself, as they are
            continue
        try:
            if kind in ("event", "transaction"):
                scrubbed = _strip_statements(scrub_event(payload, send_user_email=send_user_email))
            elif kind == "log":
                scrubbed = _scrub_logs(payload)
            else:
                scrubbed = _require_dict(_scrubbed(payload, _scrub_active()))
        except Exception:
            _count_dropped(state)
            _drops.dropped("errors", "scrub_failed", warn=False)
            _warn_once("scrub", "signalfire: scrubbing a Sentry item failed; it was dropped, not sent unscrubbed")
            continue
        headers = dict(item.headers)
        if kind == "log" and "item_count" in headers:
            headers["item_count"] = len(scrubbed.get("items") or ())
        items.append(Item(payload=PayloadRef(json=scrubbed), headers=headers))
    if not items:
        return None
    envelope_headers = dict(envelope.headers)
    trace_header = envelope_headers.get("trace")
    if isinstance(trace_header, dict) and isinstance(trace_header.get("transaction"), str):
        # the dynamic sampling context names the transaction, which can be a raw URL
        trace_header = dict(trace_header)
        try:
            trace_header["transaction"] = _scrub_active().scrub_text(trace_header["transaction"])
        except Exception:
            del trace_header["transaction"]
        envelope_headers["trace"] = trace_header
    return Envelope(headers=envelope_headers, items=items)


def _strip_statements(value: Any) -> Any:
    """Bound parameters a database error message repeats (``[parameters: ...]``, ``Key (...)=(...)``) removed from
    every string of an event (its exception values, message, breadcrumbs, frame variables)."""
    from signalfire._scrub._wire import strip_statement_data

    if isinstance(value, str):
        return strip_statement_data(value) if "[parameters: " in value or "Key (" in value else value
    if isinstance(value, dict):
        return {k: _strip_statements(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_statements(v) for v in value]
    return value


def _scrub_active() -> Scrubber:
    from signalfire._scrub import _policy as _scrub

    return _scrub.active()


def _scrub_logs(payload: dict[str, Any]) -> dict[str, Any]:
    """Sentry logs (``enable_logs``): every body and attribute value scrubbed, ids, times and levels kept."""
    from signalfire._scrub._policy import scrub_attribute

    scrubber = _scrub_active()
    logs = []
    for log in payload.get("items") or ():
        if not isinstance(log, dict):
            continue
        result: dict[str, Any] = {k: log[k] for k in _LOG_STRUCTURE if k in log}
        if "body" in log:
            result["body"] = _scrubbed(log["body"], scrubber)
        attributes = log.get("attributes")
        if isinstance(attributes, dict):
            scrubbed_attributes: dict[str, Any] = {}
            for key, attribute in attributes.items():
                if isinstance(attribute, dict) and "value" in attribute:
                    # a sensitive key: the attribute policy of every sink; any other: the value by its shape, with
                    # the Sentry event policy (emails included), as in the event itself
                    value = attribute["value"]
                    if scrubber.key_category(key) is not None:
                        value = scrub_attribute(scrubber, key, value)
                    else:
                        value = _scrubbed(value, scrubber)
                    scrubbed_attributes[key] = {**attribute, "value": value}
                else:
                    scrubbed_attributes[key] = _scrubbed(attribute, scrubber)
            result["attributes"] = scrubbed_attributes
        rest = {k: v for k, v in log.items() if k not in result and k not in ("body", "attributes")}
        if rest:
            result.update(_require_dict(_scrubbed(rest, scrubber)))
        logs.append(result)
    return {**{k: v for k, v in payload.items() if k != "items"}, "items": logs}


# --- the application's own client: trace link and noise filter -------------------------------------------------------
# Process-wide: added once per process (sentry-sdk's global scope keeps it; it is a no-op while signalfire is off).
@functools.cache
def _add_attached_processor() -> None:
    import sentry_sdk

    # On the global scope, so it applies to every event of the process; a no-op once signalfire is shut down.
    sentry_sdk.get_global_scope().add_event_processor(_attached_event)  # type: ignore[arg-type]


def _attach_now() -> _State | None:
    """Attach to a client the application started after init_observability(), on its first event."""
    late = _late
    if late is None or _state is not None:
        return None
    try:
        import sentry_sdk

        client = sentry_sdk.get_client()
        if not client.is_active():
            return None
        _attach(late[0], late[1], client)
    except Exception:
        _warn_once("attach", "signalfire: attaching to the application's Sentry client failed")
        return None
    return _state


def _attached_event(event: Event, hint: Hint) -> Event | None:
    """The application's client: 4xx noise dropped, the OpenTelemetry trace linked, the span told the event id.

    Runs as an event processor, before the application's before_send (which so sees the link).
    """
    state = _state
    if state is None or state.attached is None:
        state = _attach_now()
    attached = state.attached if state is not None else None
    if state is None or attached is None:
        return event
    try:
        from signalfire._compat import sentry_sdk as compat

        if attached.inner is not None and compat.get_transport(attached.client) is not attached.wrapper:
            # Someone replaced the transport signalfire scrubs at: fail closed rather than send unscrubbed.
            _count_dropped(state)
            _drops.dropped("errors", "scrub_failed", warn=False)
            _warn_once("unwrapped", "signalfire: the Sentry transport is no longer scrubbed; events are dropped")
            return None
        exc_info = hint.get("exc_info") if isinstance(hint, dict) else None
        exc = exc_info[1] if exc_info else None
        if event.get("type") != "transaction" and (
            is_noise(exc) or _reported_in_this_request(exc) or (exc is not None and state.ignores(exc))
        ):
            return None
        if state.asgi_integration and event.get("type") != "transaction":
            _mark_reported(exc)
        contexts = event.get("contexts")
        sentry_trace = contexts.get("trace") if isinstance(contexts, dict) else None
        linked = _apply_link(event, exc)
        if attached.sentry_tracing:
            # The application traces with Sentry: its transaction keeps contexts.trace; the OpenTelemetry ids go beside.
            trace_context = event.get("contexts", {}).get("trace") if linked else None
            link = (trace_context["trace_id"], trace_context["span_id"]) if trace_context else _otel_trace_context()
            if linked:
                event["contexts"]["trace"] = sentry_trace
                if sentry_trace is None:
                    del event["contexts"]["trace"]
            if link is not None:
                event.setdefault("contexts", {})["otel"] = {"trace_id": link[0], "span_id": link[1]}
                event.setdefault("tags", {}).setdefault("otel.trace_id", link[0])
            _enrich(event, linked=linked, trace_link=False)
        else:
            _enrich(event, linked=linked)
        if event.get("type") != "transaction" and not linked:
            _record_on_span(event)
    except Exception:
        _warn_once("attached", "signalfire: linking a Sentry event to its trace failed; the event is sent unlinked")
    return event


# --- per-request user, contexts and breadcrumbs (lean mode) -----------------------------------------------------------
_UNSET: Any = object()
_MAX_REQUEST_BREADCRUMBS = 100  # sentry-sdk's default max_breadcrumbs


class _RequestScope:
    """What set_user/set_context/add_breadcrumb gave during one request; merged into that request's events only.

    Created by the middleware when the request starts (not lazily), so a sync endpoint running in a worker thread on a
    copy of the request's context mutates this same object and the middleware's report sees it.
    """

    __slots__ = ("breadcrumbs", "contexts", "owner", "user")

    def __init__(self, owner: str | None) -> None:
        self.owner = owner
        self.user: Any = _UNSET
        self.contexts: dict[str, Any] | None = None
        self.breadcrumbs: list[dict[str, Any]] | None = None


_REQUEST: contextvars.ContextVar[_RequestScope | None] = contextvars.ContextVar(
    "signalfire.sentry_request", default=None
)


def request_started(request_id: str) -> None:
    """Give the current request its own Sentry user/contexts/breadcrumbs; called by the middleware right after it
    bound ``request_id`` (the same object) for logging. A no-op unless Sentry runs in lean mode (the default)."""
    state = _state
    if state is not None and state.lean:
        _REQUEST.set(_RequestScope(request_id))


def _keep_for_request(request: _RequestScope, crumb: dict[str, Any]) -> None:
    """Append ``crumb`` to the request's own breadcrumbs, keeping the newest _MAX_REQUEST_BREADCRUMBS."""
    crumbs = request.breadcrumbs
    if crumbs is None:
        crumbs = request.breadcrumbs = []
    crumbs.append(crumb)
    if len(crumbs) > _MAX_REQUEST_BREADCRUMBS:
        del crumbs[0]


def _request_scope() -> _RequestScope | None:
    """The current request's scope, or None outside a request (then the helpers apply to the process scope)."""
    state = _state
    if state is None or not state.lean:
        return None
    request = _REQUEST.get()
    # The owner check (identity of the bound request id) keeps a finished request's scope, still in a context that
    # drove it in-task (ASGI test clients), from catching the process-level calls that follow.
    if request is None or request.owner is None or request.owner is not _logging.current_request_id():
        return None
    return request


def _merge_request(event: Event, hint: Hint) -> Event:
    """Global event processor: the current request's user, contexts and breadcrumbs onto the event (before sentry-sdk
    serializes it and before before_send scrubs it)."""
    request = _request_scope()
    if request is None:
        return event
    if request.user is not _UNSET:
        if request.user is None:
            event.pop("user", None)
        else:
            event["user"] = dict(request.user)
    if request.contexts:
        contexts = event.get("contexts")
        if not isinstance(contexts, dict):
            contexts = event["contexts"] = {}
        contexts.update(request.contexts)
    if request.breadcrumbs:
        holder = event.get("breadcrumbs")
        if not isinstance(holder, dict):
            holder = event["breadcrumbs"] = {}
        values = [*(holder.get("values") or ()), *request.breadcrumbs]
        values.sort(key=lambda crumb: str(crumb.get("timestamp", "")))
        holder["values"] = values[-_MAX_REQUEST_BREADCRUMBS:]
    return event


# Process-wide: added once per process (global event processors cannot be removed; it does nothing unless lean).
@functools.cache
def _add_request_processor() -> None:
    from sentry_sdk.scope import add_global_event_processor

    add_global_event_processor(_merge_request)  # type: ignore[arg-type]  # sentry's Event is a TypedDict


# --- the trace link ---------------------------------------------------------------------------------------------------
def _otel_trace_context() -> tuple[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def _record_on_span(event: Event) -> None:
    span = trace.get_current_span()
    event_id = event.get("event_id")
    if not event_id or not span.is_recording():
        return
    span.set_attribute("sentry.event_id", event_id)
    span.add_event("sentry.event", {"sentry.event_id": event_id, "sentry.level": str(event.get("level", "error"))})


# --- the hooks --------------------------------------------------------------------------------------------------------
def is_noise(exc: BaseException | None) -> bool:
    """True for exceptions that are answers to the client, not failures: HTTP 4xx and request validation."""
    if exc is None:
        return False
    for cls in type(exc).__mro__:
        module = cls.__module__
        if f"{module}.{cls.__qualname__}" in _VALIDATION_ERRORS:
            return True
        if cls.__name__ == "HTTPException" and module.split(".", 1)[0] in ("starlette", "fastapi"):
            status = getattr(exc, "status_code", 500)
            return isinstance(status, int) and status < 500
    return False


def _before_send(event: Event, hint: Hint) -> Event | None:
    state = _state
    if state is None:
        return None
    exc_info = hint.get("exc_info")
    exc = exc_info[1] if exc_info else None
    if is_noise(exc) or _reported_in_this_request(exc):
        return None
    if state.asgi_integration:
        _mark_reported(exc)
    try:
        if not _wire_scrubbed():
            raise RuntimeError("the Sentry transport is not signalfire's scrubbing one")
        if exc_info:
            _add_own_frame_details(event, exc_info)
        linked = _apply_link(event, exc)
        # The event is scrubbed at the transport, after every hook; here only for a hook that was promised it
        # scrubbed (SIGNALFIRE's sentry_before_send), which then costs a second pass.
        scrubbed = scrub_event(event, send_user_email=state.send_user_email) if state.user_before_send else event
        _enrich(scrubbed, linked=linked)
    except Exception:
        _count_dropped(state)
        _drops.dropped("errors", "scrub_failed", warn=False)
        _warn_once("scrub", "signalfire: scrubbing a Sentry event failed; the event was dropped, not sent unscrubbed")
        return None
    result: Event | None = scrubbed
    if state.user_before_send is not None:
        try:
            result = state.user_before_send(scrubbed, hint)
        except Exception:
            _warn_once("user_before_send", "signalfire: your sentry_before_send raised; the event is sent as scrubbed")
            result = scrubbed
    if result is not None and not linked:
        _record_on_span(result)
    return result


def _wire_scrubbed() -> bool:
    """True while the client sends through signalfire's scrubbing transport (fail closed when someone replaced it)."""
    import sentry_sdk

    from signalfire._compat import sentry_sdk as compat

    return _is_scrubbing(compat.get_transport(sentry_sdk.get_client()))


# Process-wide: where the standard library and installed packages live does not change while the process runs.
@functools.cache
def _library_prefixes() -> tuple[str, ...]:
    import os
    import sysconfig

    paths = {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(os.path.join(os.path.abspath(path), "") for path in paths)


# signalfire's own frames (the middleware holds the ASGI scope) never carry locals, even inside a project root
_OWN_PREFIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


def _add_own_frame_details(event: Event, exc_info: Any) -> None:
    """Give the frames of the application's own code their local variables and source lines, as sentry-sdk would have
    serialised them (library frames keep file, function and line).

    A frame is the application's when it is not signalfire's and sentry-sdk marks it ``in_app: true`` (in_app_include,
    the project root: an application installed into site-packages), or does not mark it ``in_app: false`` and it lies
    outside the standard library and installed packages.
    Each exception of the event (chained causes and contexts, members of exception groups) is matched to the exception
    object with the same type and the same stack (file, function and line of every frame); one that matches none keeps
    its frames without locals.
    """
    import os

    import sentry_sdk
    from sentry_sdk.serializer import serialize
    from sentry_sdk.utils import get_source_context, iter_stacks

    library_prefixes = _library_prefixes()
    values = (event.get("exception") or {}).get("values")
    if not isinstance(values, list) or not exc_info or exc_info[1] is None:
        return
    candidates = []  # (type name, traceback entries, their (path, function, line)) of every reachable exception
    for exc in _reachable_exceptions(exc_info[1]):
        entries = list(iter_stacks(exc.__traceback__))
        codes = [(e.tb_frame.f_code, e.tb_lineno) for e in entries]
        where = [(os.path.abspath(code.co_filename), code.co_name, line) for code, line in codes]
        # sentry-sdk names the type by its qualified name (get_type_name)
        candidates.append((getattr(type(exc), "__qualname__", type(exc).__name__), entries, where))
    options = sentry_sdk.get_client().options
    custom_repr, max_value_length = options.get("custom_repr"), options.get("max_value_length")
    for value in values:
        frames = (value.get("stacktrace") or {}).get("frames") if isinstance(value, dict) else None
        if not isinstance(frames, list) or not frames:
            continue
        wanted = [(f.get("abs_path"), f.get("function"), f.get("lineno")) for f in frames]
        match = next((c for c in candidates if c[0] == value.get("type") and c[2] == wanted), None)
        if match is None:
            continue
        candidates.remove(match)  # siblings of a group with the same stack each take their own
        for frame, entry in zip(frames, match[1], strict=True):
            in_app, path = frame.get("in_app"), str(frame.get("abs_path"))
            if in_app is False or path.startswith(_OWN_PREFIX):
                continue
            if in_app is not True and path.startswith(library_prefixes):
                continue
            frame["vars"] = serialize(dict(entry.tb_frame.f_locals), is_vars=True, custom_repr=custom_repr)
            context = _source_context(get_source_context, entry.tb_frame, entry.tb_lineno, max_value_length)
            frame["pre_context"], frame["context_line"], frame["post_context"] = context


# Process-wide: the source lines around a line of the application's code, as sentry-sdk read them. sentry-sdk reads
# and splits the module's whole source for every frame of every event; the lines of one place change only when the
# file does, and then the process restarts (or, like the traceback module's linecache, shows the lines it read).
_MAX_SOURCE_CONTEXTS = 1024
_source_memo: dict[tuple[Any, ...], tuple[list[Any], Any, list[Any]]] = {}


def _source_context(read: Any, frame: Any, lineno: int, max_value_length: Any) -> tuple[list[Any], Any, list[Any]]:
    """``read(frame, lineno, max_value_length)`` (sentry-sdk's get_source_context), once per file, module and line."""
    try:
        key = (frame.f_code.co_filename, frame.f_globals.get("__name__"), lineno, max_value_length)
        found = _source_memo.get(key)
    except Exception:  # a frame without a usual code object or globals: read it every time
        key, found = None, None
    if found is None:
        pre, line, post = read(frame, lineno, max_value_length)
        found = (list(pre), line, list(post))
        if key is not None and len(_source_memo) < _MAX_SOURCE_CONTEXTS:
            _source_memo[key] = found
    return list(found[0]), found[1], list(found[2])


def _reachable_exceptions(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts and the members of exception groups, each once, depth first."""
    found: list[BaseException] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        members = current.exceptions if isinstance(current, BaseExceptionGroup) else ()
        pending.extend([*reversed(members), current.__context__, current.__cause__])
    return found


def _before_breadcrumb(crumb: dict[str, Any], hint: Hint) -> dict[str, Any] | None:
    state = _state
    try:
        # Breadcrumbs leave only inside events, which are scrubbed at the transport: scrubbing each one here (sentry's
        # logging integration adds one per log record) is needed only for a hook promised scrubbed breadcrumbs.
        hooked = state is not None and state.user_before_breadcrumb is not None
        scrubbed = _scrub_breadcrumb(crumb) if hooked else crumb
    except Exception:
        _count_dropped(state)
        _warn_once("crumb", "signalfire: scrubbing a Sentry breadcrumb failed; it was dropped")
        return None
    result: dict[str, Any] | None = scrubbed
    if state is not None and state.user_before_breadcrumb is not None:
        try:
            result = state.user_before_breadcrumb(scrubbed, hint)
        except Exception:
            _warn_once("user_crumb", "signalfire: your sentry_before_breadcrumb raised; the breadcrumb is kept")
            result = scrubbed
    request = _request_scope() if result is not None else None
    if request is not None and result is not None:
        # Inside a request (lean mode) the crumb belongs to that request's events, not to the process scope.
        _keep_for_request(request, result)
        return None
    return result


def _enrich(event: Event, *, linked: bool = False, trace_link: bool = True) -> None:
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = {}
        event["tags"] = tags
    request_id = tags.get("request_id") if linked else _logging.current_request_id()
    if request_id is not None:
        tags.setdefault("request_id", request_id)
        request = event.get("request")
        method = request.get("method") if isinstance(request, dict) else None
        if method:
            tags.setdefault("http.request.method", method)
        # Sentry's Starlette/FastAPI integration names the transaction by route template (transaction_style="url")
        source = (event.get("transaction_info") or {}).get("source")
        if source in ("route", "url") and event.get("transaction"):
            tags.setdefault("http.route", event["transaction"])
    link = None if linked or not trace_link else _otel_trace_context()
    if link is not None:
        contexts = event.get("contexts")
        if not isinstance(contexts, dict):
            contexts = {}
            event["contexts"] = contexts
        trace_context = contexts.get("trace")
        if not isinstance(trace_context, dict):
            trace_context = {}
            contexts["trace"] = trace_context
        trace_context["trace_id"], trace_context["span_id"] = link


# --- scrubbing --------------------------------------------------------------------------------------------------------
def _scrubbed(value: Any, scrubber: Scrubber) -> Any:
    # One policy in every sink: emails and phones as SIGNALFIRE_SCRUB_EMAILS / _PHONES say, here as in the logs.
    return scrubber.scrub(value)


def _require_dict(value: Any) -> dict[str, Any]:
    # The scrubber answers a marker string for a value it could not handle; an event part must stay a dict.
    if not isinstance(value, dict):
        raise TypeError("the scrubber could not handle an event part")
    return value


def scrub_event(event: Event, *, send_user_email: bool = False) -> Event:
    """A scrubbed copy of a Sentry event: request, user, tags, extra, contexts, breadcrumbs, messages, frame locals.

    Raises when a part cannot be scrubbed; the caller then drops the event.
    """
    from signalfire._scrub import _policy as _scrub

    scrubber = _scrub.active()
    kept = {key: event[key] for key in _STRUCTURAL if key in event}
    rest = {key: value for key, value in event.items() if key not in kept}
    request = rest.pop("request", None)
    user = rest.pop("user", None)
    contexts = rest.pop("contexts", None)
    exception = rest.pop("exception", None)
    result = _require_dict(_scrubbed(_redact_pairs(rest, scrubber), scrubber))
    if exception is not None:
        result["exception"] = _scrub_exception(exception, scrubber)
    if isinstance(contexts, dict):
        trace_context = contexts.get("trace")
        scrubbed_contexts = _require_dict(_scrubbed({k: v for k, v in contexts.items() if k != "trace"}, scrubber))
        if isinstance(trace_context, dict):
            scrubbed_contexts["trace"] = _scrub_trace_context(trace_context, scrubber)
        result["contexts"] = scrubbed_contexts
    if isinstance(request, dict):
        result["request"] = _scrub_request(request, scrubber)
    if isinstance(user, dict):
        result["user"] = _scrub_user(user, scrubber, send_user_email)
    result.update(kept)
    return result


# Process-wide: the scrubbed copy of a stack frame that holds only scalars (file, function, module, line, in_app:
# every library frame), by its items, for one scrubber and one generation of registered secrets. Bounded; a frame is
# looked up, never trusted: the key is the whole frame, and any change of policy or secrets starts a new memo.
_MAX_FRAMES = 4096
# (scrubber, secrets generation, memo), replaced whole: a thread that scrubbed under an older generation stores into
# that generation's memo, which the next lookup under the newer one never reads.
_frame_memo: tuple[Any, int, dict[tuple[Any, ...], dict[str, Any]]] = (None, -1, {})
_SCALARS = (str, int, bool, float, type(None))


def _scrub_exception(exception: Any, scrubber: Scrubber, *, memo: bool = True) -> Any:
    """The event's ``exception`` scrubbed as the rest of the event is; frames of scalars only come from the memo.

    A FastAPI traceback is twenty library frames that repeat from one error to the next; scrubbing them walked every
    string again. Whether a scalar-only frame is scrubbed alone or inside the event gives the same result (strings and
    numbers are scrubbed without regard to depth, and frames sit far above the depth limit), so each is scrubbed once
    and copied; every other part (frames with locals or source lines, values, mechanism) takes the general path.
    """
    from signalfire._scrub._policy import registry_generation

    values = exception.get("values") if isinstance(exception, dict) else None
    if not memo or not isinstance(values, list) or scrubber.max_depth <= 8:
        return _scrubbed(_redact_pairs(exception, scrubber), scrubber)
    global _frame_memo  # noqa: PLW0603 - one process-wide memo, swapped whole when the policy or the secrets change
    generation = registry_generation()
    held = _frame_memo
    if held[0] is not scrubber or held[1] != generation:
        held = _frame_memo = (scrubber, generation, {})
    memo_frames = held[2]
    lifted: dict[tuple[int, int], dict[str, Any]] = {}
    shell: list[Any] = []
    for i, value in enumerate(values):
        stacktrace = value.get("stacktrace") if isinstance(value, dict) else None
        frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
        if isinstance(value, dict) and isinstance(stacktrace, dict) and isinstance(frames, list):
            kept: list[Any] = []
            for j, frame in enumerate(frames):
                if (
                    isinstance(frame, dict)
                    and len(frame) < scrubber.max_items
                    and all(type(k) is str and type(v) in _SCALARS for k, v in frame.items())
                ):
                    lifted[(i, j)] = frame
                    kept.append({})
                else:
                    kept.append(frame)
            shell.append({**value, "stacktrace": {**stacktrace, "frames": kept}})
        else:
            shell.append(value)
    result = _scrubbed(_redact_pairs({**exception, "values": shell}, scrubber), scrubber)
    out = result.get("values") if isinstance(result, dict) else None
    for (i, j), frame in lifted.items():
        try:
            target = out[i]["stacktrace"]["frames"]  # type: ignore[index]
            placeholder = target[j] == {}
        except (LookupError, TypeError):
            continue  # cut by a size limit, as the general path would have cut it
        if not placeholder:
            continue
        key = tuple((k, type(v), v) for k, v in frame.items())  # (1, True and 1.0 are equal keys otherwise)
        scrubbed = memo_frames.get(key)
        if scrubbed is None:
            scrubbed = _require_dict(_scrubbed(frame, scrubber))
            if len(memo_frames) < _MAX_FRAMES:
                memo_frames[key] = scrubbed
        target[j] = dict(scrubbed)
    return result


def _redact_pairs(value: Any, scrubber: Scrubber) -> Any:
    """Redact the value of ``[name, value]`` pairs with a sensitive name, as in ASGI/WSGI header lists.

    Frame locals often hold headers as such lists (``scope["headers"]``). Sentry renders their bytes as
    ``"b'cookie'"``, a name the policy does not recognise, so Sentry's quoting is removed first; which names are
    credentials is the policy's (``_scrub.header_category``).
    """
    from signalfire._scrub._policy import header_category, marker

    if isinstance(value, dict):
        return {k: _redact_pairs(v, scrubber) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], str):
            category = header_category(_unquoted_name(value[0]), scrubber)
            if category is not None:
                return [scrubber.scrub_text(value[0]), marker(category)]
        return [_redact_pairs(item, scrubber) for item in value]
    return value


def _unquoted_name(name: str) -> str:
    """A header name as Sentry renders it in frame locals (``"b'cookie'"``, ``"'cookie'"``), without the quoting."""
    if len(name) > 2 and name[0] in "bB" and name[1] in "'\"" and name[-1] == name[1]:
        return name[2:-1]
    return name.strip("'\"")


def _scrub_trace_context(context: dict[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    ids = ("trace_id", "span_id", "parent_span_id")
    scrubbed = _require_dict(_scrubbed({k: v for k, v in context.items() if k not in ids}, scrubber))
    scrubbed.update({k: context[k] for k in ids if k in context})
    return scrubbed


def _scrub_request(request: dict[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    from signalfire._scrub._policy import header_category, marker

    result: dict[str, Any] = {}
    for key, value in request.items():
        if key == "headers" and isinstance(value, Mapping):
            headers: dict[str, Any] = {}
            for name, header in value.items():
                category = header_category(name, scrubber)
                headers[name] = marker(category) if category is not None else _scrubbed(header, scrubber)
            result[key] = headers
        elif key == "cookies":
            # A cookie's value is a session or a credential more often than not; its name is enough to debug.
            result[key] = dict.fromkeys(value, marker("cookie")) if isinstance(value, Mapping) else marker("cookie")
        elif key == "query_string" and isinstance(value, str):
            result[key] = scrubber.scrub_query(value)
        elif key == "env" and isinstance(value, Mapping):
            result[key] = _scrubbed({k: v for k, v in value.items() if k != "REMOTE_ADDR"}, scrubber)
        elif key == "url" and isinstance(value, str):
            result[key] = _scrubbed(value.split("?", 1)[0], scrubber)
        else:
            result[key] = _scrubbed(value, scrubber)
    return result


def _scrub_user(user: dict[str, Any], scrubber: Scrubber, send_user_email: bool) -> dict[str, Any]:
    from signalfire._scrub._policy import marker

    email = user.get("email")
    rest = {k: v for k, v in user.items() if k not in ("ip_address", "email")}
    result = _require_dict(_scrubbed(rest, scrubber))
    if email is not None:
        result["email"] = email if send_user_email else marker("email")
    return result


def _scrub_breadcrumb(crumb: dict[str, Any]) -> dict[str, Any]:
    from signalfire._scrub import _policy as _scrub

    kept: dict[str, Any] = {k: crumb[k] for k in ("timestamp", "type", "level") if k in crumb}
    scrubber = _scrub.active()
    result = _require_dict(
        _scrubbed(_redact_pairs({k: v for k, v in crumb.items() if k not in kept}, scrubber), scrubber)
    )
    result.update(kept)
    return result


# --- public helpers ---------------------------------------------------------------------------------------------------
def capture_exception(
    exc: BaseException | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    level: Level | None = None,
) -> str | None:
    """Report an exception to Sentry (SENTRY_DSN), scrubbed and linked to the active trace; returns the event id.

    ``exc`` defaults to the exception being handled. ``tags`` are searchable key/values, ``context`` a mapping shown
    as the event's "details" section. Without SENTRY_DSN this does nothing and returns None. Never raises.

    Example::

        try:
            charge(order)
        except PaymentDeclined as exc:
            signalfire.capture_exception(exc, tags={"provider": "stripe"}, context={"order_id": order.id})
    """
    if _state is None:
        return None
    try:
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            _apply(scope, tags, context, level)
            return sentry_sdk.capture_exception(exc)
    except Exception:
        _warn_once("capture", "signalfire: capture_exception failed")
        return None


def capture_message(
    message: str,
    *,
    level: Level = "info",
    tags: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> str | None:
    """Send a message event to Sentry (SENTRY_DSN), scrubbed and linked to the active trace; returns the event id.

    Without SENTRY_DSN this does nothing and returns None. Never raises.

    Example::

        signalfire.capture_message("refund queue above 1000", level="warning", tags={"queue": "refunds"})
    """
    if _state is None:
        return None
    try:
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            _apply(scope, tags, context, None)
            return sentry_sdk.capture_message(message, level=level)
    except Exception:
        _warn_once("capture", "signalfire: capture_message failed")
        return None


def _apply(scope: Any, tags: Mapping[str, Any] | None, context: Mapping[str, Any] | None, level: Level | None) -> None:
    for key, value in (tags or {}).items():
        scope.set_tag(key, value)
    if context:
        scope.set_context("details", dict(context))
    if level is not None:
        scope.set_level(level)


def set_user(id: str | int | None, *, email: str | None = None, **extra: Any) -> None:
    """Attach the user to later Sentry events of this request (or of the process, outside a request).

    The IP address is never sent; the email is redacted unless SIGNALFIRE_SENTRY_SEND_USER_EMAIL=true; ``extra``
    values are scrubbed. ``set_user(None)`` forgets the user. Without SENTRY_DSN this does nothing.

    Example::

        signalfire.set_user(user.id, email=user.email, plan="pro")
    """
    if _state is None:
        return
    try:
        import sentry_sdk

        user: dict[str, Any] | None = None
        if id is not None:
            user = {"id": str(id), **extra}
            if email is not None:
                user["email"] = email
        request = _request_scope()
        if request is not None:
            request.user = user
            return
        sentry_sdk.set_user(user)
    except Exception:
        _warn_once("helper", "signalfire: an error helper failed")


def set_context(name: str, value: Mapping[str, Any]) -> None:
    """Attach a named section of details to later Sentry events (scrubbed when sent). No-op without SENTRY_DSN.

    Example::

        signalfire.set_context("order", {"id": "o-1", "items": 3})
    """
    if _state is None:
        return
    try:
        import sentry_sdk

        request = _request_scope()
        if request is not None:
            if request.contexts is None:
                request.contexts = {}
            request.contexts[name] = dict(value)
            return
        sentry_sdk.set_context(name, dict(value))
    except Exception:
        _warn_once("helper", "signalfire: an error helper failed")


def add_breadcrumb(
    message: str,
    category: str | None = None,
    data: Mapping[str, Any] | None = None,
    level: Level = "info",
) -> None:
    """Record a breadcrumb that later Sentry events of this request carry (scrubbed). No-op without SENTRY_DSN.

    Example::

        signalfire.add_breadcrumb("cart loaded", category="cart", data={"items": 3})
    """
    if _state is None:
        return
    try:
        import sentry_sdk

        request = _request_scope() if _state is not None and _state.attached is not None else None
        if request is not None:
            # The application's client has no before_breadcrumb of signalfire's to keep the crumb to this request.
            import datetime

            crumb: dict[str, Any] = {"message": message, "category": category, "data": dict(data or {}), "level": level}
            crumb["timestamp"] = datetime.datetime.now(datetime.UTC)
            _keep_for_request(request, crumb)
            return
        sentry_sdk.add_breadcrumb(message=message, category=category, data=dict(data or {}), level=level)
    except Exception:
        _warn_once("helper", "signalfire: an error helper failed")


# --- unhandled exceptions from the ASGI middleware -------------------------------------------------------------------
class _Link:
    """What an event about an exception that escaped a request must carry, noted while the request was current."""

    __slots__ = ("event_id", "request_id", "span_id", "trace_id")

    def __init__(self, trace_id: str, span_id: str, request_id: str | None, event_id: str) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.request_id = request_id
        self.event_id = event_id


# The note travels on the exception itself (built-in exceptions take attributes but not weak references).
_LINK_ATTRIBUTE = "_signalfire_sentry_link"


def note_unhandled(exc: BaseException) -> None:
    """Note the trace, span and request of an exception escaping the app, and the event id it will be reported as.

    Called by the middleware while its server span is still current. Sentry's ASGI middleware, outside ours, reports
    the exception after that span has ended; building the event here as well would cost a second serialization of
    every frame's locals, so the event is built once, by Sentry, and before_send applies this note to it. The span
    records the event id now, since it ends before the event is sent.
    """
    if _state is None or not isinstance(exc, Exception) or is_noise(exc) or _state.ignores(exc):
        return
    try:
        context = _otel_trace_context()
        if context is None:
            return
        link = _Link(context[0], context[1], _logging.current_request_id(), uuid.uuid4().hex)
        setattr(exc, _LINK_ATTRIBUTE, link)
        _record_on_span({"event_id": link.event_id, "level": "error"})
    except Exception:
        _warn_once("note", "signalfire: noting an unhandled exception for Sentry failed")


def _apply_link(event: Event, exc: BaseException | None) -> bool:
    """Give an event the trace, request and event id noted for its exception; True when there was a note."""
    try:
        link = getattr(exc, _LINK_ATTRIBUTE, None)
        if not isinstance(link, _Link):
            return False
        delattr(exc, _LINK_ATTRIBUTE)  # one event per note: a later capture of the same exception gets a new id
    except Exception:  # an exception class with unusual attribute handling: no link, but the event is still sent
        return False
    event["event_id"] = link.event_id
    contexts = event.setdefault("contexts", {})
    contexts["trace"] = {**(contexts.get("trace") or {}), "trace_id": link.trace_id, "span_id": link.span_id}
    contexts["trace"].pop("parent_span_id", None)
    if link.request_id is not None:
        event.setdefault("tags", {})["request_id"] = link.request_id
    return True


# The middleware's own report marks the exception with the request's id, so a later sighting in the same request, or
# the server logging it at ERROR right after, sends nothing; the same exception object raised again by a later
# request (a cached or module-level error) is reported again.
_REPORTED_ATTRIBUTE = "_signalfire_sentry_reported"


def _reported_in_this_request(exc: BaseException | None) -> bool:
    """True when ``exc`` was reported during the request in progress (or, outside any request, at all)."""
    if exc is None:
        return False
    try:
        mark = getattr(exc, _REPORTED_ATTRIBUTE, None)
    except Exception:  # odd attribute handling: not marked
        return False
    if mark is None:
        return False
    request_id = _logging.current_request_id()
    return request_id is None or mark == request_id


def _reported_filter(record: logging.LogRecord) -> bool:
    """False for a log record carrying an exception signalfire's middleware already reported, while signalfire's
    Sentry is on: the server's "Exception in ASGI application" line about it becomes no second event.

    Before this filter the logging integration built that event in full (every frame walked, the scope applied, the
    event serialised) and before_send then dropped it; the filter drops it before any of that. Every other record
    (other exceptions, records without one, lifespan failures) passes. Never raises: it runs inside logging calls.
    """
    try:
        exc_info = record.exc_info
        if not (
            _state is not None
            and isinstance(exc_info, tuple)
            and len(exc_info) == 3
            and isinstance(exc_info[1], BaseException)
            and _reported_in_this_request(exc_info[1])
        ):
            return True
        # The server's record comes once, after the request: the mark is spent (a later request raising the same
        # object is reported, and its own record filtered, again).
        delattr(exc_info[1], _REPORTED_ATTRIBUTE)
        return False
    except Exception:  # an exception class with odd attribute handling: the record goes on as before
        return True


def _mark_reported(exc: BaseException | None) -> None:
    """With sentry-sdk's web integrations reporting (SIGNALFIRE_SENTRY_ASGI_INTEGRATION, or the application's client
    with them), note that a request's exception was reported, as capture_unhandled does in lean mode: the server's log
    record about it then builds no event either (DedupeIntegration dropped that one only after it was built)."""
    request_id = _logging.current_request_id()
    if exc is not None and request_id is not None:
        with contextlib.suppress(Exception):  # an exception class refusing attributes: dedupe drops the repeat
            setattr(exc, _REPORTED_ATTRIBUTE, request_id)


def _filter_reported_records(client: Any, *, breadcrumbs: bool) -> tuple[logging.Handler, ...]:
    """Put _reported_filter on ``client``'s logging-integration event handler (``signalfire._compat.sentry_sdk``), and
    with ``breadcrumbs`` on its breadcrumb handler too; the handlers, to take it off at shutdown.

    ``breadcrumbs`` only for signalfire's own client in lean mode: there the record's breadcrumb would belong to the
    request that already reported (before_breadcrumb keeps it for that request's events, and it has none left), so
    dropping it changes nothing but the cost of formatting the traceback once more. An application's own client keeps
    the breadcrumb on its scope for later events, as it always did.
    """
    from signalfire._compat import sentry_sdk as compat

    try:
        found = [compat.logging_event_handler(client)]
        if breadcrumbs:
            found.append(compat.logging_breadcrumb_handler(client))
        handlers = tuple(handler for handler in found if handler is not None)
        for handler in handlers:
            handler.addFilter(_reported_filter)
        return handlers
    except Exception:  # before_send still drops the repeat, after sentry-sdk built it
        _warn_once("log_filter", "signalfire: cannot filter Sentry's logging events; repeats are dropped later")
        return ()


def _unfilter_reported_records(state: _State | None) -> None:
    for handler in state.log_handlers if state is not None else ():
        handler.removeFilter(_reported_filter)


def capture_unhandled(exc: BaseException, scope: Mapping[str, Any], route: str | None) -> None:
    """Report an exception escaping a request, once, with the request context; called by the middleware while the
    server span is current (so the event carries its trace id and span id, and the span records the event id).

    With SIGNALFIRE_SENTRY_ASGI_INTEGRATION=true sentry-sdk's ASGI middleware reports it instead, and this only notes
    the trace link for it. Never raises.
    """
    state = _state
    if state is None or not isinstance(exc, Exception):
        return
    if state.asgi_integration:
        note_unhandled(exc)
        return
    if is_noise(exc) or state.ignores(exc) or _reported_in_this_request(exc):
        return
    try:
        import sentry_sdk
        from sentry_sdk.utils import event_from_exception

        client = sentry_sdk.get_client()
        event, hint = event_from_exception(
            exc, client_options=client.options, mechanism={"type": "signalfire.asgi", "handled": False}
        )
        method = scope.get("method")
        event["request"] = _request_info(scope)
        tags: dict[str, Any] = {}
        if method:
            tags["http.request.method"] = method
        if route:
            event["transaction"] = route
            event["transaction_info"] = {"source": "route"}
            tags["http.route"] = route
        event["tags"] = tags
        sentry_sdk.capture_event(event, hint=hint)
    except Exception:
        _drops.dropped("errors", "capture_failed", warn=False)
        _warn_once("unhandled", "signalfire: reporting an unhandled exception to Sentry failed")
    _mark_reported(exc)


def _request_info(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Sentry's ``request`` interface from the ASGI scope, under the one URL policy (``signalfire._web._url``): secret
    path segments and query values redacted, headers allow-listed (scrubbed again in before_send)."""
    from signalfire._web import _url

    return _url.sentry_request(scope)


def _patch_starlette_handler_lookup() -> None:
    """Report a 5xx HTTPException that Starlette answers with its exception handler (it never reaches the middleware).

    Starlette looks the handler up only once an exception was raised, so wrapping that lookup
    (``signalfire._compat.starlette``) costs a request without an error nothing (sentry-sdk's integration wraps every
    request instead). Applied once per process; the wrapper does nothing while signalfire's Sentry is off or in
    SIGNALFIRE_SENTRY_ASGI_INTEGRATION mode.
    """
    try:
        from starlette.exceptions import HTTPException

        from signalfire._compat.starlette import wrap_exception_handler_lookup
    except Exception:  # no Starlette: nothing to report
        return

    def wrap(handler: Any, exc: Exception, is_async: bool) -> Any:
        state = _state
        if state is None or not state.lean or not isinstance(exc, HTTPException) or exc.status_code < 500:
            return handler
        if is_async:

            async def report_then_handle(conn: Any, exc: Exception) -> Any:
                _report_handled(conn, exc)
                return await handler(conn, exc)

            return report_then_handle

        def report_then_handle_sync(conn: Any, exc: Exception) -> Any:
            _report_handled(conn, exc)
            return handler(conn, exc)

        return report_then_handle_sync

    if not wrap_exception_handler_lookup(wrap):
        _warn_once("lookup", "signalfire: cannot hook Starlette's exception handlers; 5xx HTTPException not reported")


def _report_handled(conn: Any, exc: Exception) -> None:
    try:
        from signalfire._web._url import route_template

        scope = conn.scope
        capture_unhandled(exc, scope, route_template(scope))
    except Exception:
        _warn_once("unhandled", "signalfire: reporting an unhandled exception to Sentry failed")
