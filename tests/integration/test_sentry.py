"""Sentry through the real sentry-sdk transport to a real ingest endpoint on loopback, with a FastAPI app served by a
real uvicorn: what arrives, what never arrives (secrets, noise, duplicate traces), and a dead Sentry costing nothing."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import signalfire
from signalfire import _runtime
from signalfire._settings import Settings
from tests.receivers import BlackHoleServer, SentryIngestServer, free_port

pytestmark = pytest.mark.integration

# The shared corpus of fake secrets (tests/data/secrets.json): ``secret`` must never be sent, ``text`` holds it in its
# natural context (a header line, a URL, a log sentence, ...).
CORPUS = json.loads((Path(__file__).parent.parent / "data" / "secrets.json").read_text())["secrets"]

SECRETS = {
    "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-AbC123xyz",
    "cookie": "sess_9f8e7d6c5b4a39281706",
    "api_key": "sk_live_51HxQyZKs8d7f6g5h4j3k2l1",
    "query_token": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "password": "correct-horse-battery-staple-42",
    "card": "4111 1111 1111 1111",
    "email": "jane.doe@example.com",
}


def _settings(dsn: str, **overrides: Any) -> Settings:
    return Settings.resolve(
        sentry_dsn=dsn,
        environment="staging",
        service_version="2.3.4",
        traces_sampler_arg=1.0,
        traces_exporter="none",
        metrics_exporter="none",
        handle_sigterm=False,
        **overrides,
    )


@contextmanager
def serve(app: FastAPI, log_level: str = "critical") -> Iterator[str]:
    """``app`` served by a real uvicorn on 127.0.0.1; yields its base URL and stops it afterwards."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level=log_level, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_app() -> FastAPI:
    """The app under test; routes are declared after init_observability(), as the docs say."""
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(status_code=404, detail="no such item")
        return {"id": item_id}

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPException(status_code=503, detail="maintenance")

    @app.get("/fail/{order_id}")
    async def fail(order_id: str) -> None:
        raise ValueError(f"order {order_id} is inconsistent")

    @app.post("/checkout/{order_id}")
    async def checkout(order_id: str, request: Request) -> None:
        body = await request.json()
        password = body["password"]
        card_number = body["card"]
        signalfire.set_user(7, email=SECRETS["email"])
        signalfire.add_breadcrumb("charging", category="payment", data={"password": password, "card": card_number})
        sentry_sdk.set_extra("payload", body)
        signalfire.set_context("payment", {"api_key": SECRETS["api_key"], "card": card_number})
        raise RuntimeError(f"charge failed for {SECRETS['email']} with card {card_number} and password={password}")

    @app.post("/corpus")
    async def corpus(request: Request) -> None:
        body = await request.json()
        texts = body["texts"]
        by_kind = {entry["kind"]: entry["text"] for entry in CORPUS}  # a frame local holding every secret
        for text in texts:
            signalfire.add_breadcrumb(text, category="corpus", data={"note": text})
        sentry_sdk.set_extra("corpus", texts)
        signalfire.set_context("corpus", by_kind)
        signalfire.set_user(8, email=SECRETS["email"], note=texts[0])
        raise RuntimeError("import failed: " + " | ".join(texts))

    return app


@pytest.fixture
def ingest() -> Iterator[SentryIngestServer]:
    with SentryIngestServer() as server:
        yield server


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _start(dsn: str, spans: InMemorySpanExporter | None = None, **overrides: Any) -> tuple[Any, FastAPI]:
    obs = _runtime.start(_settings(dsn, **overrides), span_exporters=[spans] if spans else None)
    app = FastAPI()
    _runtime.instrument_app(obs, app)
    return obs, app


def _app(dsn: str, spans: InMemorySpanExporter | None = None, **overrides: Any) -> tuple[Any, FastAPI]:
    obs = _runtime.start(_settings(dsn, **overrides), span_exporters=[spans] if spans else None)
    app = make_app()
    _runtime.instrument_app(obs, app)
    return obs, app


def test_event_arrives_with_environment_release_tags_and_trace(ingest: SentryIngestServer) -> None:
    """capture_exception through the real transport: environment, release, tags and the OTel trace_id arrive."""
    obs = _runtime.start(_settings(ingest.dsn))
    with signalfire.span("reconcile") as current:
        try:
            raise LookupError("ledger row missing")
        except LookupError as exc:
            event_id = signalfire.capture_exception(exc, tags={"ledger": "eu"})
        trace_id = f"{current.get_span_context().trace_id:032x}"
    assert obs.shutdown(timeout=5)
    (event,) = ingest.events()
    assert event["event_id"] == event_id
    assert (event["environment"], event["release"]) == ("staging", "2.3.4")
    assert event["tags"]["ledger"] == "eu"
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert ingest.received()[0].path == "/api/1/envelope/"


def test_request_event_has_route_method_request_id_user_and_trace(
    ingest: SentryIngestServer, spans: InMemorySpanExporter
) -> None:
    """An unhandled error in a request arrives with route template, method, request_id, user, request and trace."""
    obs, app = _app(ingest.dsn, spans)
    with serve(app) as url:
        response = httpx.post(
            f"{url}/checkout/o-17?coupon=SPRING",
            json={"password": SECRETS["password"], "card": SECRETS["card"]},
            headers={"x-request-id": "req-abc-123"},
        )
    assert response.status_code == 500
    obs.force_flush()
    (event,) = ingest.wait_for_events(1)
    assert event["tags"]["request_id"] == "req-abc-123"
    assert event["tags"]["http.route"] == "/checkout/{order_id}"
    assert event["tags"]["http.request.method"] == "POST"
    assert event["transaction"] == "/checkout/{order_id}"
    assert event["request"]["method"] == "POST"
    assert event["request"]["url"] == f"{url}/checkout/o-17"
    assert event["user"]["id"] == "7"
    # signalfire's server span (the one carrying request.id; FastAPI >= 0.165 may add its own native one)
    (server_span,) = [s for s in spans.get_finished_spans() if s.attributes and "request.id" in s.attributes]
    assert event["contexts"]["trace"]["trace_id"] == f"{server_span.context.trace_id:032x}"
    assert event["contexts"]["trace"]["span_id"] == f"{server_span.context.span_id:016x}"
    assert server_span.attributes is not None
    assert server_span.attributes["sentry.event_id"] == event["event_id"]
    obs.shutdown()


def test_secrets_never_reach_sentry(ingest: SentryIngestServer) -> None:
    """Secrets in headers, cookies, query string, body, extra, context, breadcrumbs, message and locals: none sent."""
    obs, app = _app(ingest.dsn)
    with serve(app) as url:
        response = httpx.post(
            f"{url}/checkout/o-1",
            params={"token": SECRETS["query_token"], "page": "2"},
            json={"password": SECRETS["password"], "card": SECRETS["card"], "email": SECRETS["email"]},
            headers={
                "Authorization": SECRETS["authorization"],
                "X-Api-Key": SECRETS["api_key"],
                "Cookie": f"session={SECRETS['cookie']}; theme=dark",
            },
        )
    assert response.status_code == 500
    assert obs.shutdown(timeout=5)
    (event,) = ingest.wait_for_events(1)
    raw = ingest.raw()
    leaked = [name for name, secret in SECRETS.items() if secret.encode() in raw]
    assert leaked == []
    # the places exist in the event (so the check above looked at real data), with the secrets redacted
    assert "page=2" in event["request"]["query_string"]
    assert "x-api-key" in {k.lower() for k in event["request"]["headers"]}
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert {"password", "card_number", "body"} <= set(frames[-1]["vars"])
    assert any(c.get("category") == "payment" for c in event["breadcrumbs"]["values"])


def _header_safe(text: str) -> bool:
    return text.isprintable() and text.isascii()


@pytest.mark.parametrize("asgi_integration", [False, True], ids=["lean", "sentry-asgi-integration"])
def test_secret_corpus_never_reaches_sentry(ingest: SentryIngestServer, asgi_integration: bool) -> None:
    """Every corpus secret, in headers, cookies, query string, body, extra, context, user, breadcrumbs, the exception
    message and frame locals, is absent from the raw envelope bytes Sentry receives (in both request modes)."""
    texts = [entry["text"] for entry in CORPUS]
    headers = {f"x-note-{i}": text for i, text in enumerate(texts) if _header_safe(text)}
    headers["authorization"] = "Bearer " + CORPUS[0]["secret"]
    headers["cookie"] = "; ".join(
        f"c{i}={entry['secret']}"
        for i, entry in enumerate(CORPUS)
        if _header_safe(entry["secret"]) and ";" not in entry["secret"]
    )
    query = [(f"q{i}", text) for i, text in enumerate(texts)]
    obs, app = _app(ingest.dsn, sentry_asgi_integration=asgi_integration)
    with serve(app) as url:
        response = httpx.post(f"{url}/corpus", params=query, json={"texts": texts}, headers=headers)
    assert response.status_code == 500
    assert obs.shutdown(timeout=5)
    (event,) = ingest.wait_for_events(1)
    raw = ingest.raw()
    leaked = [
        entry["kind"]
        for entry in CORPUS
        if entry["secret"].encode() in raw or json.dumps(entry["secret"])[1:-1].encode() in raw
    ]
    assert leaked == []
    # the secrets were really there to be found: every place is present in the event
    query_string = event["request"]["query_string"]
    if asgi_integration:
        assert len(query_string) > 1000
    else:
        # signalfire's own report follows the URL policy: every parameter keeps its name, most values are markers,
        # and the query is cut at 4096 characters before it is judged
        names = [part.split("=", 1)[0] for part in query_string.split("&")]
        assert names == [n for n, _ in query][: len(names)]
        assert len(names) >= 25
    assert len([h for h in event["request"]["headers"] if h.lower().startswith("x-note-")]) == len(headers) - 2
    if asgi_integration:  # sentry-sdk's integration captures the body; signalfire's lean report does not
        assert event["request"]["data"]["texts"]
    else:
        assert "data" not in event["request"]
    assert event["extra"]["corpus"]
    assert len([c for c in event["breadcrumbs"]["values"] if c.get("category") == "corpus"]) == len(texts)
    assert "by_kind" in event["exception"]["values"][-1]["stacktrace"]["frames"][-1]["vars"]
    assert event["contexts"]["corpus"]


@pytest.mark.parametrize("asgi_integration", [False, True], ids=["lean", "sentry-asgi-integration"])
def test_4xx_and_validation_errors_send_nothing_unhandled_error_sends_one(
    ingest: SentryIngestServer, asgi_integration: bool
) -> None:
    """HTTPException(404) and a validation error are not reported; an unhandled error is reported exactly once."""
    obs, app = _app(ingest.dsn, sentry_asgi_integration=asgi_integration)
    # uvicorn logs the unhandled exception at ERROR ("Exception in ASGI application"): a third sighting, still one event
    with serve(app, log_level="error") as url, httpx.Client(base_url=url) as client:
        assert client.get("/items/404").status_code == 404
        assert client.get("/items/not-a-number").status_code == 422
        assert client.get("/items/1").status_code == 200
        assert client.get("/fail/o-9").status_code == 500
    assert obs.shutdown(timeout=5)
    events = ingest.events()
    assert [e["exception"]["values"][-1]["value"] for e in events] == ["order o-9 is inconsistent"]
    assert all(e.payloads("transaction") == [] for e in ingest.received())  # Sentry started no transactions


@pytest.mark.parametrize("asgi_integration", [False, True], ids=["lean", "sentry-asgi-integration"])
def test_5xx_http_exception_is_reported(ingest: SentryIngestServer, asgi_integration: bool) -> None:
    """HTTPException(503) is a server error and is reported, with its route."""
    obs, app = _app(ingest.dsn, sentry_asgi_integration=asgi_integration)
    with serve(app) as url:
        assert httpx.get(f"{url}/unavailable").status_code == 503
    assert obs.shutdown(timeout=5)
    (event,) = ingest.events()
    assert event["exception"]["values"][-1]["type"] == "HTTPException"
    assert event["tags"]["http.route"] == "/unavailable"


class _HeaderRecorder:
    """An HTTP server on loopback that records the headers of every GET."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _HeaderRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_sentry_adds_no_trace_headers_to_outgoing_requests(ingest: SentryIngestServer) -> None:
    """Outgoing httpx and urllib requests carry no sentry-trace or baggage header: OpenTelemetry owns propagation."""
    import urllib.request

    obs = _runtime.start(_settings(ingest.dsn))
    with _HeaderRecorder() as recorder, signalfire.span("outgoing"):
        httpx.get(recorder.url)
        with urllib.request.urlopen(recorder.url) as reply:
            reply.read()
    obs.shutdown()
    assert len(recorder.headers) == 2
    for headers in recorder.headers:
        assert "sentry-trace" not in headers
        assert "baggage" not in headers


def _median_latency(url: str, path: str, count: int) -> float:
    timings = []
    # uvicorn closes the connection after an unhandled exception without saying so; a reused one may be reset.
    with httpx.Client(base_url=url, headers={"connection": "close"}) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 500
    return statistics.median(timings)


@pytest.mark.parametrize("backend", ["down", "black hole"])
def test_unreachable_sentry_never_slows_requests_and_shutdown_keeps_its_timeout(
    ingest: SentryIngestServer, backend: str
) -> None:
    """With Sentry down or never answering, erroring requests stay about as fast as with a healthy Sentry and
    shutdown() returns within its timeout."""
    count = 15
    obs, app = _app(ingest.dsn)
    with serve(app) as url:
        baseline = _median_latency(url, "/fail/o-1", count)
    obs.shutdown(timeout=5)
    assert len(ingest.wait_for_events(count)) == count  # the baseline really reported every error

    with BlackHoleServer() as hole:
        port = free_port() if backend == "down" else hole.port
        obs, app = _app(f"http://public@127.0.0.1:{port}/1")
        with serve(app) as url:
            degraded = _median_latency(url, "/fail/o-1", count)
        started = time.monotonic()
        obs.shutdown(timeout=1.0)
        shutdown_took = time.monotonic() - started
    # Loose on purpose (a shared CI machine): an order of magnitude, where a blocking transport costs seconds.
    assert degraded < baseline * 10
    assert shutdown_took < 1.0 + 0.5


@pytest.mark.parametrize("client_owner", ["signalfire", "application"])
def test_concurrent_requests_each_report_their_own_user(ingest: SentryIngestServer, client_owner: str) -> None:
    """Two requests in flight at once in a real uvicorn, each with its own user, context and breadcrumb: each error
    event carries its own and nothing of the other's — also on the application's own client without sentry-sdk's
    web integrations."""
    import asyncio

    both_in = asyncio.Event()
    arrived: list[str] = []
    if client_owner == "application":
        sentry_sdk.init(dsn=ingest.dsn, environment="prod-eu", auto_enabling_integrations=False)
    obs = _runtime.start(_settings(ingest.dsn))
    app = FastAPI()
    _runtime.instrument_app(obs, app)

    @app.get("/users/{user_id}")
    async def user(user_id: str) -> None:
        signalfire.set_user(user_id)
        signalfire.set_context("account", {"owner": user_id})
        signalfire.add_breadcrumb(f"step of {user_id}", category="steps")
        arrived.append(user_id)
        if len(arrived) == 2:
            both_in.set()
        await asyncio.wait_for(both_in.wait(), 10)  # both requests hold their values before either fails
        raise RuntimeError(f"failure of {user_id}")

    async def both(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url) as client:
            responses = await asyncio.gather(client.get("/users/alice"), client.get("/users/bob"))
        return [r.status_code for r in responses]

    with serve(app) as url:
        assert asyncio.run(both(url)) == [500, 500]
    assert obs.shutdown(timeout=5)
    if client_owner == "application":
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)
    events = ingest.wait_for_events(2)
    by_message = {e["exception"]["values"][-1]["value"]: e for e in events}
    assert set(by_message) == {"failure of alice", "failure of bob"}
    for name in ("alice", "bob"):
        event = by_message[f"failure of {name}"]
        assert event["environment"] == ("prod-eu" if client_owner == "application" else "staging")
        assert event["user"]["id"] == name
        assert event["contexts"]["account"] == {"owner": name}
        steps = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "steps"]
        assert steps == [f"step of {name}"]


# --- an application with its own sentry_sdk.init() -------------------------------------------------------------------
@pytest.fixture
def own_sentry() -> Iterator[None]:
    """Closes the application's own Sentry client after the test (signalfire leaves it running at shutdown)."""
    yield
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


def _realistic_app_init(dsn: str, seen: list[dict[str, Any]], traces_sample_rate: float | None) -> None:
    """What a real service's start-up does before it meets signalfire: its own init with hooks and integrations."""
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        event.setdefault("tags", {})["team"] = "payments"
        return event

    sentry_sdk.init(
        dsn=dsn,
        before_send=before_send,
        environment="prod-eu",
        traces_sample_rate=traces_sample_rate,
        integrations=[StarletteIntegration(), FastApiIntegration()],
    )


@pytest.mark.parametrize("traces_sample_rate", [None, 1.0], ids=["sentry-not-tracing", "sentry-tracing"])
def test_application_sentry_client_is_kept_scrubbed_and_linked(
    ingest: SentryIngestServer, spans: InMemorySpanExporter, own_sentry: None, traces_sample_rate: float | None
) -> None:
    """The app's sentry_sdk.init() (before_send, environment, integrations, sample rate) survives init_observability()
    with SENTRY_DSN given too: one event per 500, none per 404, its hook ran, linked to the OTel trace, scrubbed."""
    seen: list[dict[str, Any]] = []
    _realistic_app_init(ingest.dsn, seen, traces_sample_rate)
    client = sentry_sdk.get_client()
    obs = _runtime.start(_settings("http://signalfire@127.0.0.1:9/3"), span_exporters=[spans])
    assert sentry_sdk.get_client() is client
    app = FastAPI()

    @app.get("/fail")
    async def fail(token: str) -> None:
        note = f"copied {token}"  # noqa: F841 - a frame local with an innocent name
        raise ValueError("reconciliation failed")

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(status_code=404)

    _runtime.instrument_app(obs, app)
    with serve(app) as url:
        assert httpx.get(f"{url}/missing").status_code == 404
        assert httpx.get(f"{url}/fail", params={"token": SECRETS["query_token"]}).status_code == 500
        client.flush(timeout=5)
        events = ingest.wait_for_events(1)
    assert obs.shutdown(timeout=5)
    client.flush(timeout=5)
    (event,) = ingest.events()
    assert seen, "the application's before_send was not called"
    assert event["environment"] == "prod-eu"
    assert event["tags"]["team"] == "payments"
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    server_span = next(s for s in spans.get_finished_spans() if s.attributes.get("http.route") == "/fail")
    trace_id = format(server_span.context.trace_id, "032x")
    where = "otel" if traces_sample_rate else "trace"
    assert event["contexts"][where]["trace_id"] == trace_id
    assert SECRETS["query_token"].encode() not in ingest.raw()
    assert events
