"""httpx: opentelemetry-instrumentation-httpx with signalfire's tracer and meter providers.

Every request of ``httpx.Client`` and ``httpx.AsyncClient`` gets a CLIENT span and carries the W3C ``traceparent``
(and ``baggage``) headers, so a call from one instrumented service to another continues the same trace; the
instrumentation's ``http.client.request.duration`` histogram goes to signalfire's meter provider.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from signalfire import integrations

_log = logging.getLogger("signalfire")

__all__ = ["install", "instrument_httpx", "uninstrument_httpx"]

_lock = threading.Lock()
_instrumented: dict[str, Any] = {}


def _require() -> None:
    integrations.require("httpx", "instrument_httpx", "httpx")
    integrations.require("opentelemetry.instrumentation.httpx", "instrument_httpx", "httpx")


def install(obs: Any) -> None:
    """Instrument every httpx client, sync and async (init_observability() calls this when httpx is installed)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    with _lock:
        if "global" in _instrumented:
            return
        instrumentor = HTTPXClientInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            # The application instrumented it itself: leave it (and its uninstrumenting) to the application.
            _log.info("signalfire: httpx is already instrumented by OpenTelemetry; signalfire leaves it as it is")
            return
        instrumentor.instrument(tracer_provider=obs.tracer_provider, meter_provider=obs.meter_provider)
        _instrumented["global"] = True
    obs.on_shutdown("httpx", lambda _timeout: uninstrument_httpx())


def instrument_httpx(client: Any = None) -> None:
    """Trace outgoing httpx requests (sync and async) and propagate the trace to the server called.

    Without ``client`` every ``httpx.Client`` and ``httpx.AsyncClient`` is instrumented (what init_observability()
    does when SIGNALFIRE_AUTO_INSTRUMENT includes httpx); with one, only that client. Instrumenting twice does nothing
    more. Needs ``pip install "signalfire[httpx]"``.

    Example::

        signalfire.init_observability(auto_instrument="none")
        signalfire.instrument_httpx()
    """
    _require()
    obs = integrations.running("instrument_httpx")
    if client is None:
        install(obs)
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    with _lock:
        if "global" in _instrumented or getattr(client, "_is_instrumented_by_opentelemetry", False):
            return
        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=obs.tracer_provider, meter_provider=obs.meter_provider
        )
        _instrumented.setdefault("clients", []).append(client)
    obs.on_shutdown("httpx", lambda _timeout: uninstrument_httpx(client))


def uninstrument_httpx(client: Any = None) -> None:
    """Stop tracing ``client``, or, without one, every httpx client signalfire instrumented.

    Example::

        signalfire.uninstrument_httpx()
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    with _lock:
        if client is not None:
            clients = _instrumented.get("clients", [])
            if any(c is client for c in clients):
                HTTPXClientInstrumentor.uninstrument_client(client)
                _instrumented["clients"] = [c for c in clients if c is not client]
            return
        if _instrumented.pop("global", None) is not None:
            HTTPXClientInstrumentor().uninstrument()
        for each in _instrumented.pop("clients", []):
            HTTPXClientInstrumentor.uninstrument_client(each)
