"""httpx: opentelemetry-instrumentation-httpx with signalfire's tracer and meter providers.

Every request of ``httpx.Client`` and ``httpx.AsyncClient`` gets a CLIENT span and carries the W3C ``traceparent``
(and ``baggage``) headers, so a call from one instrumented service to another continues the same trace; the
instrumentation's ``http.client.request.duration`` histogram goes to signalfire's meter provider.
"""

from __future__ import annotations

from typing import Any

from signalfire import integrations

__all__ = ["install", "instrument_httpx", "uninstrument_httpx"]

_instrumented = integrations.ClientInstrumentation(
    "httpx", "opentelemetry.instrumentation.httpx.HTTPXClientInstrumentor"
)


def _require() -> None:
    integrations.require("httpx", "instrument_httpx", "httpx")
    integrations.require("opentelemetry.instrumentation.httpx", "instrument_httpx", "httpx")


def install(obs: Any) -> None:
    """Instrument every httpx client, sync and async (init_observability() calls this when httpx is installed)."""
    _instrumented.library(obs, tracer_provider=obs.tracer_provider, meter_provider=obs.meter_provider)


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
    _instrumented.client(obs, client, tracer_provider=obs.tracer_provider, meter_provider=obs.meter_provider)


def uninstrument_httpx(client: Any = None) -> None:
    """Stop tracing ``client``, or, without one, every httpx client signalfire instrumented.

    Example::

        signalfire.uninstrument_httpx()
    """
    _instrumented.undo(client)
