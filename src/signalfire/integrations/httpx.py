"""httpx: opentelemetry-instrumentation-httpx with signalfire's tracer and meter providers.

Every request of ``httpx.Client`` and ``httpx.AsyncClient`` gets a CLIENT span and carries the W3C ``traceparent``
(and ``baggage``) headers, so a call from one instrumented service to another continues the same trace; the
instrumentation's ``http.client.request.duration`` histogram goes to signalfire's meter provider.

URLs follow signalfire's one URL policy (``signalfire._web._url``): the span's ``url.full`` and httpx's own INFO line
``HTTP Request: GET https://...`` carry no userinfo and no secret query values (``?api_key=``, ``?sig=``, ...).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from signalfire import integrations
from signalfire._web import _url

__all__ = ["install", "instrument_httpx", "uninstrument_httpx"]

_instrumented = integrations.ClientInstrumentation(
    "httpx", "opentelemetry.instrumentation.httpx.HTTPXClientInstrumentor"
)


def _require() -> None:
    integrations.require("httpx", "instrument_httpx", "httpx")
    integrations.require("opentelemetry.instrumentation.httpx", "instrument_httpx", "httpx")


def _record_url(span: Any, request: Any) -> None:
    """request_hook: ``url.full`` under signalfire's URL policy (the instrumentation's own redaction strips less)."""
    try:
        if span.is_recording():
            span.set_attribute("url.full", _url.recorded_url(str(request.url)))
    except Exception:  # a hook must never break the call; the URL the instrumentation set is removed, not kept
        with contextlib.suppress(Exception):
            span.set_attribute("url.full", _url.recorded_url(""))


async def _record_url_async(span: Any, request: Any) -> None:
    _record_url(span, request)


class UrlLogFilter(logging.Filter):
    """Rewrites httpx's ``HTTP Request: %s %s ...`` records so their URL follows signalfire's URL policy."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and str(record.msg).startswith("HTTP Request:"):
            try:
                record.args = (args[0], _url.recorded_url(str(args[1])), *args[2:])
            except Exception:  # never lose the line; never keep the raw URL either
                record.args = (args[0], "[REDACTED:url]", *args[2:])
        return True


_LOG_FILTER = UrlLogFilter()
_HOOKS = {"request_hook": _record_url, "async_request_hook": _record_url_async}


def _filter_log(obs: Any) -> None:
    logger = logging.getLogger("httpx")
    if _LOG_FILTER not in logger.filters:
        logger.addFilter(_LOG_FILTER)
        obs.on_shutdown("httpx.log", _unfilter_log)


def _unfilter_log(_timeout: float = 0.0) -> None:
    logging.getLogger("httpx").removeFilter(_LOG_FILTER)


def install(obs: Any) -> None:
    """Instrument every httpx client, sync and async (init_observability() calls this when httpx is installed)."""
    _filter_log(obs)
    _instrumented.library(obs, tracer_provider=obs.tracer_provider, meter_provider=obs.meter_provider, **_HOOKS)


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
    import httpx

    _filter_log(obs)
    hook = _record_url_async if isinstance(client, httpx.AsyncClient) else _record_url
    _instrumented.client(
        obs, client, tracer_provider=obs.tracer_provider, meter_provider=obs.meter_provider, request_hook=hook
    )


def uninstrument_httpx(client: Any = None) -> None:
    """Stop tracing ``client``, or, without one, every httpx client signalfire instrumented.

    Example::

        signalfire.uninstrument_httpx()
    """
    _instrumented.undo(client)
    if client is None:
        _unfilter_log()
