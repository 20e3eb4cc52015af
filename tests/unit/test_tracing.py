"""traced and span: names, attributes, parent/child links, errors, generators, async context, sampling."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import signalfire


@signalfire.traced
def plain(value: int) -> int:
    return value * 2


@signalfire.traced("custom.name", attributes={"team": "core"}, capture_args=["property_id"])
def with_options(property_id: str, secret: str) -> str:
    return property_id


def test_default_span_name_is_module_and_qualname(telemetry):
    """@traced names the span module.qualname and returns the function's result."""
    assert plain(2) == 4
    span = telemetry.span(f"{__name__}.plain")
    assert span.attributes["code.function.name"] == f"{__name__}.plain"


def test_name_static_attributes_and_captured_arguments(telemetry):
    """A given name, static attributes, and only the arguments asked for are recorded."""
    with_options("p-1", secret="hunter2")
    span = telemetry.span("custom.name")
    assert span.attributes["team"] == "core"
    assert span.attributes["code.function.parameter.property_id"] == "p-1"
    assert not any("secret" in key for key in span.attributes)


def test_capture_args_with_unknown_name_fails_at_decoration():
    """Naming a parameter the function does not have is a mistake reported at import time."""
    with pytest.raises(TypeError, match="nope"):

        @signalfire.traced(capture_args=["nope"])
        def f(a: int) -> None: ...


def test_nested_spans_are_parent_and_child(telemetry):
    """A span opened inside a traced function is its child, in the same trace."""

    @signalfire.traced
    def outer() -> None:
        with signalfire.span("inner", step=1):
            pass

    outer()
    inner = telemetry.span("inner", step=1)
    parent = telemetry.span(f"{__name__}.test_nested_spans_are_parent_and_child.<locals>.outer")
    assert inner.parent.span_id == parent.context.span_id
    assert inner.context.trace_id == parent.context.trace_id


def test_exception_is_recorded_and_reraised_unchanged(telemetry):
    """The exception is recorded, the status is ERROR, and the caller gets the very same exception."""
    error = ValueError("card declined")

    @signalfire.traced
    def fail() -> None:
        raise error

    with pytest.raises(ValueError, match="card declined") as info:
        fail()
    assert info.value is error
    span = telemetry.find_spans()[0]
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert span.events[0].attributes["exception.type"] == "ValueError"


def test_span_context_manager_records_exception(telemetry):
    """span() as a context manager records and re-raises."""
    with pytest.raises(KeyError), signalfire.span("lookup"):
        raise KeyError("k")
    assert telemetry.span("lookup").status.status_code is StatusCode.ERROR


def test_generator_span_covers_iteration_but_not_the_consumer(telemetry):
    """A generator's span stays open across iteration; the consumer's code is not inside it."""

    @signalfire.traced
    def numbers():
        for i in range(3):
            with signalfire.span("produce", i=i):
                yield i

    seen_in_consumer = []
    with signalfire.span("consumer"):
        consumer_span = trace.get_current_span()
        for value in numbers():
            seen_in_consumer.append(trace.get_current_span() is consumer_span)
            assert value in (0, 1, 2)
    assert all(seen_in_consumer)
    generator_span = telemetry.find_spans(name=f"{__name__}.{numbers.__qualname__}")[0]
    produced = telemetry.find_spans("produce")
    assert len(produced) == 3
    assert all(p.parent.span_id == generator_span.context.span_id for p in produced)
    assert generator_span.end_time >= max(p.end_time for p in produced)


def test_generator_send_throw_and_return_value(telemetry):
    """send(), throw() and the return value pass through the wrapper unchanged."""

    @signalfire.traced
    def echo():
        received = yield "ready"
        try:
            yield received
        except RuntimeError:
            yield "caught"
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("hello") == "hello"
    assert gen.throw(RuntimeError("x")) == "caught"
    with pytest.raises(StopIteration) as info:
        next(gen)
    assert info.value.value == "done"
    assert telemetry.find_spans()[0].status.status_code is StatusCode.UNSET


def test_closed_generator_is_not_an_error(telemetry):
    """Stopping iteration early (close) ends the span without an error status."""

    @signalfire.traced
    def forever():
        while True:
            yield 1

    gen = forever()
    next(gen)
    gen.close()
    assert telemetry.find_spans()[0].status.status_code is StatusCode.UNSET


async def test_async_function_keeps_context_across_awaits(telemetry):
    """Spans opened after an await in an async traced function are its children."""

    @signalfire.traced
    async def sync_property_availability(property_id: str) -> str:
        await asyncio.sleep(0)
        with signalfire.span("after-await"):
            await asyncio.sleep(0)
        return property_id

    results = await asyncio.gather(*(sync_property_availability(f"p{i}") for i in range(5)))
    assert results == [f"p{i}" for i in range(5)]
    parents = {s.context.span_id for s in telemetry.find_spans() if s.name.endswith("sync_property_availability")}
    children = telemetry.find_spans("after-await")
    assert len(parents) == 5
    assert {c.parent.span_id for c in children} == parents


async def test_async_generator_and_async_span(telemetry):
    """Async generators are traced across iteration; span() works with async with."""

    @signalfire.traced
    async def ticks():
        for i in range(2):
            async with signalfire.span("tick", i=i):
                yield i

    assert [i async for i in ticks()] == [0, 1]
    gen_span = next(s for s in telemetry.find_spans() if s.name.endswith("ticks"))
    assert {t.parent.span_id for t in telemetry.find_spans("tick")} == {gen_span.context.span_id}


async def test_async_exception_recorded(telemetry):
    """An async function's exception is recorded and re-raised."""

    @signalfire.traced
    async def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail()
    assert telemetry.find_spans()[0].status.status_code is StatusCode.ERROR


def test_traced_before_init_is_a_plain_call():
    """Before init_observability() the decorated function just runs."""
    assert plain(21) == 42
    with signalfire.span("nothing") as current:
        assert not current.is_recording()


@pytest.mark.signalfire_settings(traces_sampler="traceidratio", traces_sampler_arg=0.25)
def test_sampling_ratio_is_respected(telemetry):
    """With a 25% ratio, about a quarter of 4000 root spans are recorded (wide statistical bounds)."""
    for _ in range(4000):
        with signalfire.span("sampled"):
            pass
    recorded = len(telemetry.find_spans("sampled"))
    assert 800 < recorded < 1200


@pytest.mark.signalfire_settings(traces_sampler_arg=0.0)
def test_parent_based_sampling_follows_a_sampled_parent(telemetry):
    """With ratio 0, a child of a sampled remote parent is still recorded (parent-based)."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with trace.use_span(NonRecordingSpan(parent)), signalfire.span("child"):
        pass
    with signalfire.span("root"):
        pass
    assert [s.name for s in telemetry.find_spans()] == ["child"]
