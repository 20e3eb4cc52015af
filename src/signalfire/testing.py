"""signalfire's pytest plugin: the ``telemetry`` fixture captures every signal of a test in memory.

Installed with signalfire (entry point ``pytest11``, the module ``_signalfire_pytest``, which imports this one only
when a test uses the fixture: a project that never does pays nothing), so no conftest copying::

    def test_checkout_is_traced(telemetry):
        checkout(order_id="o-1")
        span = telemetry.span("checkout")
        assert span.attributes["order.id"] == "o-1"

Find spans by name and attributes (dotted names through ``**{...}``), read a metric by its labels, and check that
nothing captured leaks a secret::

    def test_charge(telemetry):
        charge(card="4111 1111 1111 1111", amount=10)
        span = telemetry.span("charge", **{"payment.provider": "stripe"})
        assert telemetry.children(span)[0].name == "stripe.request"
        assert telemetry.metric_value("payments", outcome="ok") == 1
        telemetry.assert_no_secrets(["4111 1111 1111 1111"])

Pass settings through the ``signalfire_settings`` marker::

    @pytest.mark.signalfire_settings(service_name="billing", traces_sampler_arg=0.5)
    def test_sampling(telemetry): ...

State is reset after each test: signalfire is shut down and the next test starts clean.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from signalfire import _logging, _runtime
from signalfire._metrics import metrics as registry
from signalfire._metrics._otel import InMemoryRegistryReader
from signalfire._settings import Settings

__all__ = ["MemorySentryTransport", "Telemetry", "capture", "telemetry"]

# What the fixture overrides unless the test's marker says otherwise: everything recorded, nothing sent anywhere.
TEST_DEFAULTS: dict[str, Any] = {
    "environment": "test",
    "traces_sampler": "parentbased_traceidratio",
    "traces_sampler_arg": 1.0,
    "traces_exporter": "none",
    "metrics_exporter": "none",
    "logs_exporter": "none",
    "handle_sigterm": False,
    # Sentry on, with events kept in memory by the fixture's transport (this DSN is never contacted).
    "sentry_dsn": "http://signalfire-test@127.0.0.1:9/0",
}


class MemorySentryTransport(Transport):
    """A sentry-sdk transport that keeps every envelope in memory instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self._envelopes: list[Envelope] = []
        self._lock = threading.Lock()

    def capture_envelope(self, envelope: Envelope) -> None:
        with self._lock:
            self._envelopes.append(envelope)

    def clear(self) -> None:
        """Forget the envelopes received so far."""
        with self._lock:
            self._envelopes.clear()

    def snapshot(self) -> list[Envelope]:
        """The envelopes received so far, oldest first."""
        with self._lock:
            return list(self._envelopes)


class Telemetry:
    """Everything one test emitted: spans, metric points and log lines, with helpers to find them."""

    def __init__(
        self,
        obs: _runtime.Observability,
        spans: InMemorySpanExporter,
        metrics: InMemoryMetricReader,
        logs: _LogCapture | None = None,
        sentry: MemorySentryTransport | None = None,
    ) -> None:
        self.obs = obs
        self._span_exporter = spans
        self._metric_reader = metrics
        self._logs = logs or _LogCapture()
        self._sentry = sentry

    @property
    def settings(self) -> Settings:
        """The settings the fixture started signalfire with."""
        return self.obs.settings

    @property
    def spans(self) -> list[ReadableSpan]:
        """Every finished span so far, in the order they ended."""
        self.obs.force_flush()
        return list(self._span_exporter.get_finished_spans())

    def find_spans(self, name: str | None = None, **attributes: Any) -> list[ReadableSpan]:
        """The finished spans with this name (any, if None) whose attributes include ``attributes``."""
        found = []
        for item in self.spans:
            if name is not None and item.name != name:
                continue
            attrs: Mapping[str, Any] = item.attributes or {}
            if all(attrs.get(k) == v for k, v in attributes.items()):
                found.append(item)
        return found

    def span(self, name: str, **attributes: Any) -> ReadableSpan:
        """The one finished span with this name and attributes; fails the test if there are none or several, showing
        the spans that were captured."""
        found = self.find_spans(name, **attributes)
        if len(found) != 1:
            pytest.fail(
                f"expected one span {name!r} with {attributes}, found {len(found)}; captured:\n{self.span_tree()}",
                pytrace=False,
            )
        return found[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The finished spans whose parent is ``parent``, in start order."""
        parent_id = parent.context.span_id if parent.context is not None else None
        kids = [s for s in self.spans if s.parent is not None and s.parent.span_id == parent_id]
        return sorted(kids, key=lambda s: s.start_time or 0)

    def span_tree(self) -> str:
        """Every captured trace rendered as the development span tree (names, durations, key attributes)."""
        from signalfire._export._console import render_tree

        traces: dict[int, list[ReadableSpan]] = {}
        for item in self.spans:
            traces.setdefault(item.context.trace_id if item.context else 0, []).append(item)
        return "".join(render_tree(group) for group in traces.values()) or "(no spans)\n"

    def clear(self) -> None:
        """Forget the spans, log lines and Sentry events captured so far (metric values are cumulative and stay),
        e.g. after a test's own setup."""
        self.obs.force_flush()
        self._span_exporter.clear()
        self._logs.lines.clear()
        if self._sentry is not None:
            self._sentry.clear()

    def metric_points(self, name: str) -> list[NumberDataPoint | Any]:
        """Every OpenTelemetry data point of the instrument ``name`` collected now."""
        data = self._metric_reader.get_metrics_data()
        points: list[Any] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def metric_point(self, name: str, **labels: Any) -> Any:
        """The data point of instrument ``name`` with exactly these labels (a histogram point has ``count``, ``sum``,
        ``bucket_counts``); fails the test, listing the label sets seen, if there is none."""
        points = self.metric_points(name)
        for point in points:
            if dict(point.attributes or {}) == labels:
                return point
        seen = [dict(point.attributes or {}) for point in points]
        pytest.fail(f"no data point of {name!r} with labels {labels}; label sets seen: {seen}", pytrace=False)

    def metric_value(self, name: str, **labels: Any) -> float:
        """The value of instrument ``name`` for exactly these labels: a sum, a gauge, or a histogram's count.

        For an instrument of ``signalfire.metrics`` ``name`` may also be its Prometheus name and ``labels`` may use
        Prometheus label names and be a subset: the matching series are added up, and 0.0 means none was recorded::

            signalfire.metrics.record_payment(amount=49.0, currency="USD", status="succeeded")
            assert telemetry.metric_value("payments_processed_total", currency="USD") == 1
        """
        from signalfire._metrics import metrics as registry

        instrument = registry.lookup(name)
        if instrument is not None:
            return self._registry_value(instrument, labels)
        point = self.metric_point(name, **labels)
        return float(point.count if hasattr(point, "count") else point.value)

    @property
    def logs(self) -> list[dict[str, Any]]:
        """Every log line so far (structlog and standard library), as the fields that were rendered, in order."""
        return [dict(fields) for fields, _ in self._logs.lines]

    @property
    def log_lines(self) -> list[str]:
        """Every log line so far exactly as written to stdout."""
        return [line for _, line in self._logs.lines]

    def find_logs(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The log lines with this event (any, if None) whose fields include ``fields``."""
        return [
            line
            for line in self.logs
            if (event is None or line.get("event") == event) and all(line.get(k) == v for k, v in fields.items())
        ]

    @property
    def sentry_events(self) -> list[dict[str, Any]]:
        """Every Sentry event sent so far (error and message events, as sentry-sdk serialized them), oldest first.

        Empty when the test's settings turn Sentry off (``signalfire_settings(sentry_dsn=None)``).
        """
        found: list[dict[str, Any]] = []
        for envelope in self._sentry.snapshot() if self._sentry is not None else ():
            for item in envelope.items:
                if item.type in ("event", "transaction") and item.payload.json is not None:
                    found.append(item.payload.json)
        return found

    def _registry_value(self, instrument: Any, labels: Mapping[str, Any]) -> float:
        spec = instrument.spec.prefixed(self.settings.metrics_prefix or "")
        by_any_name = dict(zip(spec.labels, spec.labels, strict=True))
        by_any_name.update(zip(spec.prometheus_labels, spec.labels, strict=True))
        wanted: dict[str, str] = {}
        for key, value in labels.items():
            if key not in by_any_name:
                pytest.fail(f"{spec.name!r} has no label {key!r}; its labels are {spec.labels}")
            wanted[by_any_name[key]] = _text(value)
        total = 0.0
        for point in self.metric_points(spec.otel_name or spec.name):
            attributes = {k: _text(v) for k, v in (point.attributes or {}).items()}
            if all(attributes.get(k, "") == v for k, v in wanted.items()):
                total += float(point.count if hasattr(point, "count") else point.value)
        return total

    def texts(self) -> Iterator[str]:
        """Every captured signal rendered as text, for leak checks (Sentry envelopes as the bytes sent)."""
        yield from self.log_lines
        for item in self.spans:
            yield item.to_json(indent=None)
        for envelope in self._sentry.snapshot() if self._sentry is not None else ():
            yield envelope.serialize().decode("utf-8", "replace")
        data = self._metric_reader.get_metrics_data()
        if data is not None:
            yield data.to_json(indent=None)

    def assert_no_secrets(self, secrets: Iterable[str] | str) -> None:
        """Fail if any of ``secrets`` (a string or several) appears in anything captured so far: span names and
        attributes, events, metric labels and every other signal :meth:`texts` renders."""
        wanted = [secrets] if isinstance(secrets, str) else [s for s in secrets if s]
        texts = list(self.texts())
        for secret in wanted:
            for text in texts:
                if secret in text:
                    at = text.index(secret)
                    context = text[max(0, at - 60) : at].replace(secret, "***")
                    pytest.fail(
                        f"secret {secret[:3]}... ({len(secret)} chars) found in captured telemetry after ...{context}",
                        pytrace=False,
                    )


class _LogCapture:
    """Collects every rendered log line while a test runs."""

    def __init__(self) -> None:
        self.lines: list[tuple[dict[str, Any], str]] = []

    def __call__(self, fields: dict[str, Any], line: str) -> None:
        self.lines.append((dict(fields), line))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def capture(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """The ``telemetry`` fixture's body: signalfire started in memory for one test, shut down and reset afterwards.

    The plugin that pytest loads at start-up (``_signalfire_pytest``) imports this module only when a test asks for
    the fixture, so projects that never use it do not pay for importing signalfire.
    """
    overrides = dict(TEST_DEFAULTS)
    marker = request.node.get_closest_marker("signalfire_settings")
    if marker is not None:
        overrides.update(marker.kwargs)
    _runtime.reset()
    spans = InMemorySpanExporter()
    metrics = InMemoryRegistryReader(registry)
    logs = _LogCapture()
    _logging.add_tap(logs)
    sentry = MemorySentryTransport()
    try:
        obs = _runtime.start(
            Settings.resolve(**overrides), span_exporters=[spans], metric_readers=[metrics], sentry_transport=sentry
        )
        try:
            yield Telemetry(obs, spans, metrics, logs, sentry if obs.settings.sentry_dsn else None)
        finally:
            obs.shutdown()
    finally:
        _logging.remove_tap(logs)


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """signalfire started in memory for one test; shut down and reset afterwards (for ``pytest_plugins =
    ["signalfire.testing"]``; the installed plugin defines the same fixture lazily)."""
    yield from capture(request)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "signalfire_settings(**overrides): Settings overrides for the telemetry fixture")
