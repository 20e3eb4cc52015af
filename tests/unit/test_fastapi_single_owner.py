"""One owner per signal on FastAPI apps: FastAPI's native telemetry, FastAPIInstrumentor, apps signalfire was not
given, and the start-up report of owners that says what signalfire did about each."""

from __future__ import annotations

import gc
import weakref

import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from opentelemetry.trace import SpanKind

import signalfire
from signalfire import _runtime

try:
    import fastapi.telemetry  # noqa: F401  - FastAPI >= 0.142

    NATIVE = True
except ImportError:
    NATIVE = False

needs_native = pytest.mark.skipif(not NATIVE, reason="FastAPI < 0.142 has no native telemetry")


def make_app() -> FastAPI:
    app = FastAPI()

    def dependency() -> str:
        return "dep"

    @app.get("/items/{item_id}")
    async def item(item_id: int, tasks: BackgroundTasks, dep: str = Depends(dependency)) -> dict[str, object]:
        tasks.add_task(lambda: None)
        with signalfire.span("inside.endpoint"):
            pass
        return {"id": item_id, "dep": dep}

    return app


async def get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path)


def scopes_with(telemetry, name: str) -> set[str]:
    """The instrumentation scopes that produced metric ``name`` in the fixture's reader."""
    data = telemetry._metric_reader.get_metrics_data()
    return {
        scope_metrics.scope.name
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
    }


async def test_one_server_span_per_request(telemetry):
    """A request to an instrumented FastAPI app yields exactly one server span, named by the route template."""
    app = make_app()
    signalfire.instrument_fastapi(app)
    response = await get(app, "/items/7")
    assert response.status_code == 200
    server_spans = [s for s in telemetry.spans if s.kind is SpanKind.SERVER]
    assert [s.name for s in server_spans] == ["GET /items/{item_id}"]
    assert [s.instrumentation_scope.name for s in server_spans] == ["signalfire.http"]
    # the application's own span, and nothing of FastAPI's
    assert sorted(s.name for s in telemetry.spans) == ["GET /items/{item_id}", "inside.endpoint"]
    assert telemetry.span("inside.endpoint").parent.span_id == server_spans[0].context.span_id


@needs_native
async def test_native_telemetry_records_no_metrics_beside_signalfires(telemetry):
    """FastAPI's native http.server.request.duration is not recorded: the HTTP metrics are signalfire's, once."""
    app = make_app()
    signalfire.instrument_fastapi(app)
    await get(app, "/items/7")
    assert scopes_with(telemetry, "http.server.request.duration") == {"signalfire"}
    assert scopes_with(telemetry, "http.server.active_requests") <= {"signalfire"}


@needs_native
async def test_the_app_is_not_touched_through_private_attributes(telemetry):
    """signalfire leaves FastAPI's telemetry configuration as the application built it."""
    app = FastAPI()
    before = dict(app._telemetry)
    signalfire.instrument_fastapi(app)
    await get(app, "/health/live")
    assert app._telemetry == before


@needs_native
@pytest.mark.signalfire_settings(fastapi_operation_spans=True)
async def test_operation_spans_are_children_of_signalfires_server_span(telemetry):
    """SIGNALFIRE_FASTAPI_OPERATION_SPANS=true keeps FastAPI's dependency, endpoint and background-task spans, under
    signalfire's server span, and the application's spans stay children of the server span."""
    app = make_app()
    signalfire.instrument_fastapi(app)
    await get(app, "/items/7")
    server = telemetry.span("GET /items/{item_id}")
    children = {s.name for s in telemetry.children(server)}
    assert {"fastapi.dependencies", "fastapi.endpoint", "fastapi.background_task"} <= children
    assert len([s for s in telemetry.spans if s.kind is SpanKind.SERVER]) == 1
    assert {s.context.trace_id for s in telemetry.spans} == {server.context.trace_id}
    assert telemetry.span("inside.endpoint").parent.span_id == telemetry.span("fastapi.endpoint").context.span_id


@needs_native
async def test_operation_spans_are_off_by_default(telemetry):
    """Without the setting FastAPI's operation spans are not recorded."""
    app = make_app()
    signalfire.instrument_fastapi(app)
    await get(app, "/items/7")
    assert not [s for s in telemetry.spans if s.name.startswith("fastapi.")]


@needs_native
async def test_unrecorded_operations_leave_the_server_span_alone(telemetry):
    """With operation spans off, the application's spans are children of signalfire's server span, and a failing
    endpoint marks the server span through signalfire alone (FastAPI's operation gets a span that records nothing)."""
    app = make_app()

    @app.get("/fails")
    async def fails() -> None:
        with signalfire.span("before.failure"):
            pass
        raise RuntimeError("boom")

    signalfire.instrument_fastapi(app)
    await get(app, "/items/7")
    server = telemetry.span("GET /items/{item_id}")
    assert telemetry.span("inside.endpoint").parent.span_id == server.context.span_id
    with pytest.raises(RuntimeError):
        await get(app, "/fails")
    failed = telemetry.span("GET /fails")
    assert telemetry.span("before.failure").parent.span_id == failed.context.span_id
    assert failed.attributes["error.type"] == "RuntimeError"
    assert [s.name for s in telemetry.spans if s.name.startswith("fastapi.")] == []


def test_the_native_tracer_records_no_operation_when_not_asked():
    """FastAPI's tracer from signalfire's provider hands out non-recording spans that are not made current, and the
    span in force stays current inside them."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from signalfire.integrations._fastapi_native import NativeTracer

    sdk = TracerProvider().get_tracer("test")
    native = NativeTracer(sdk)
    with sdk.start_as_current_span("server") as server:
        for _ in range(2):  # the shared context manager serves again
            with native.start_as_current_span("fastapi.endpoint", attributes={"a": 1}) as operation:
                assert not operation.is_recording()
                assert operation.get_span_context() == server.get_span_context()
                assert trace.get_current_span() is server
        assert not native.start_span("GET", kind=trace.SpanKind.SERVER).is_recording()


@needs_native
@pytest.mark.signalfire_settings(fastapi_operation_spans=True)
async def test_an_app_signalfire_was_not_given_stays_untraced(telemetry):
    """An app never passed to signalfire gets neither spans nor metrics from FastAPI's native telemetry through
    signalfire's providers (not half: spans without their metrics)."""
    stranger = make_app()
    response = await get(stranger, "/items/7")
    assert response.status_code == 200
    assert [s.name for s in telemetry.spans] == ["inside.endpoint"]  # the application's own span only
    assert scopes_with(telemetry, "http.server.request.duration") == set()


async def test_fastapi_instrumentor_keeps_its_span_and_signalfire_adds_none(telemetry):
    """An app instrumented with OpenTelemetry's FastAPIInstrumentor: its server span is the one, signalfire's
    middleware and FastAPI's native telemetry add none, and the owners report says so."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = make_app()
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=telemetry.obs.tracer_provider, meter_provider=telemetry.obs.meter_provider
    )
    try:
        signalfire.instrument_fastapi(app)
        await get(app, "/items/7")
        server_spans = [s for s in telemetry.spans if s.kind is SpanKind.SERVER]
        assert [s.instrumentation_scope.name for s in server_spans] == ["opentelemetry.instrumentation.fastapi"]
        assert telemetry.metric_value("http_server_request_duration_seconds", http_route="/items/{item_id}") == 1
        # the instrumentor's own http.server.* instruments are dropped: every request is counted once, by signalfire
        points = telemetry.metric_points("http.server.request.duration")
        assert [p.count for p in points if p.attributes.get("http.route") == "/items/{item_id}"] == [1]
        for instrument in ("http.server.duration", "http.server.response.size", "http.server.request.size"):
            assert telemetry.metric_points(instrument) == [], instrument
        found = [o for o in telemetry.obs.owners if "FastAPIInstrumentor" in o.found]
        assert found
        assert found[0].signal == "traces"
        assert found[0].action.startswith("kept")
    finally:
        FastAPIInstrumentor.uninstrument_app(app)


@pytest.mark.signalfire_settings(metrics_exporter="prometheus")
async def test_the_apps_own_metrics_route_wins(telemetry):
    """An app that serves /metrics itself keeps it; signalfire leaves the path alone and says so."""
    app = FastAPI()

    @app.get("/metrics")
    async def own() -> dict[str, str]:
        return {"mine": "yes"}

    signalfire.instrument_fastapi(app)
    response = await get(app, "/metrics")
    assert response.json() == {"mine": "yes"}
    assert any(o.signal == "routes" and "/metrics" in o.found for o in telemetry.obs.owners)


async def test_a_mounted_metrics_app_wins(telemetry):
    """app.mount('/metrics', ...) (prometheus_client's make_asgi_app) is the app's own /metrics."""
    from starlette.responses import PlainTextResponse

    app = FastAPI()

    async def mounted(scope, receive, send):
        await PlainTextResponse("own exposition")(scope, receive, send)

    app.mount("/metrics", mounted)
    signalfire.instrument_fastapi(app)
    response = await get(app, "/metrics/")
    assert response.text == "own exposition"


@pytest.mark.signalfire_settings(metrics_on_app=False, metrics_exporter="prometheus")
async def test_metrics_can_be_kept_off_the_app(telemetry):
    """SIGNALFIRE_METRICS_ON_APP=false: the app does not answer the metrics path (serve it on its own port)."""
    app = FastAPI()
    signalfire.instrument_fastapi(app)
    assert (await get(app, "/metrics")).status_code == 404


@pytest.mark.signalfire_settings(metrics_exporter="prometheus")
async def test_signalfire_serves_metrics_when_the_app_does_not(telemetry):
    """Without a route of its own at /metrics the app answers signalfire's exposition, before routing."""
    app = FastAPI()
    signalfire.instrument_fastapi(app)
    response = await get(app, "/metrics")
    assert response.status_code == 200
    assert "# HELP" in response.text


def test_the_start_up_line_names_the_owners(telemetry):
    """init writes one structured info line listing the owners found and what signalfire did (also when signalfire
    owns every signal, as here: seen at the default level); doctor shows the same."""
    lines = [line for line in telemetry.logs if line.get("event") == "signalfire: owners of each signal"]
    assert len(lines) == 1
    assert lines[0]["level"] == "info"
    assert lines[0]["signals"] == dict.fromkeys(("traces", "metrics", "logs", "errors"), "signalfire")
    assert set(lines[0]["signals"]) == {"traces", "metrics", "logs", "errors"}
    assert lines[0]["owners"] == [o.as_dict() for o in telemetry.obs.owners]
    if NATIVE:
        assert any("native telemetry" in o["found"] for o in lines[0]["owners"])


@pytest.mark.signalfire_settings(fastapi_otel_auto_configure=True)
def test_an_owner_signalfire_refused_makes_the_line_an_info_line(telemetry):
    """FASTAPI_OTEL_AUTO_CONFIGURE=true is refused, which an operator should know: the line is at info level."""
    (line,) = [line for line in telemetry.logs if line.get("event") == "signalfire: owners of each signal"]
    assert line["level"] == "info"
    assert any(o["found"] == "FASTAPI_OTEL_AUTO_CONFIGURE=true" for o in line["owners"])


async def test_instrumented_apps_are_not_kept_alive(telemetry):
    """1,000 apps built, instrumented (one in fifty serving a request, so its stack is built) and dropped are all
    collected: nothing signalfire holds keeps an application alive."""
    refs = []
    for number in range(1000):
        served = number % 50 == 0
        app = make_app() if served else FastAPI()
        signalfire.init_observability(app, **_overrides(telemetry))
        if served:
            assert (await get(app, "/items/1")).status_code == 200
        refs.append(weakref.ref(app))
        del app
    gc.collect()
    alive = [ref for ref in refs if ref() is not None]
    assert alive == []
    running = _runtime.current()
    assert running is telemetry.obs
    assert len([ref for ref in running._instrumented_apps if ref() is not None]) == 0


def _overrides(telemetry) -> dict[str, object]:
    """The keyword arguments that resolve to the fixture's settings (init_observability then reuses the instance)."""
    from signalfire.testing import TEST_DEFAULTS

    return dict(TEST_DEFAULTS)
