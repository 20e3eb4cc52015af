"""Leak audit, end to end: every secret of the corpus (tests/data/secrets.json, generated from templates) sent through
a real app (tests/apps/reliability_app.py under uvicorn) in headers, query strings and bodies, which the app puts in
log keyword arguments, span attributes, span event names, link attributes, OTel-API metric points (a meter from
``metrics.get_meter``), Sentry context, metric labels and exception messages; the incoming ``tracestate`` and a
resource attribute from OTEL_RESOURCE_ATTRIBUTES carry secrets too. Every sink is captured as bytes (OTLP traces,
metrics and logs at the real receiver, stdout with stderr, the Sentry envelopes, the /metrics text) and searched:
zero leaks, and zero operator values (ids, timestamps, counts, order numbers, IMEIs) wrongly redacted, per sink.

The one known gap is a strict xfail naming what is missing, so that it flips when fixed.
"""

from __future__ import annotations

import hashlib
import json
import string
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.reliability_server import serve
from tests.receivers import HttpOtlpServer, OtlpReceiver, SentryIngestServer
from tests.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

DATA = json.loads((Path(__file__).parents[1] / "data" / "secrets.json").read_text())
COVERED: list[dict[str, str]] = DATA["secrets"]
CORPUS = COVERED + DATA["pending"]  # "pending" entries are kept out of test_sentry.py's breadcrumb count only
OPERATOR_VALUES: list[dict[str, str]] = DATA["operator_values"]
SINKS = ["otlp_traces", "otlp_metrics", "otlp_logs", "stdout", "sentry", "metrics"]
# One corpus secret as a resource attribute (a repository URL with a password, as CI systems set it).
RESOURCE_ENTRY = next(entry for entry in CORPUS if entry["kind"] == "https_basic_in_url")
# Operator values and the sinks they are placed in (a log line, span and OTel metric attributes, a registry label,
# Sentry context and the exception message).
OPERATOR_SINKS = ["otlp_traces", "otlp_metrics", "otlp_logs", "stdout", "sentry", "metrics"]
_TRACESTATE_VALUE = set(string.printable[:94]) - {",", "="}
# Placements around the scrubber that other branches route through the policy: a bare token as a path segment
# (judged by its route parameter name, {token}), and text reaching stderr outside the log pipeline (a warning, an
# uncaught exception in a thread). Each gets its own tokens, derived from the corpus, so that a leak is attributed.
PLACEMENT_TOKENS = {
    placement: [hashlib.sha256(f"{placement}:{entry['secret']}".encode()).hexdigest()[:32] for entry in COVERED[:5]]
    for placement in ("path_segment", "oauth_query", "custom_header", "stderr", "db_parameter", "redis_auth")
}
# (placement, sink) pairs that still leak, with what is missing.
KNOWN_GAPS = {
    # Not statement data: the app's own handler holds the value in a local variable ("value"), which Sentry sends for
    # the app's frames, scrubbed by name and shape; a random 32-hex token has neither (it looks like a trace id).
    ("db_parameter", "sentry"): "a shape-less token in an in-app frame's local variable with an innocent name reaches "
    "Sentry's frame locals (issue 17: values with innocent names)",
}


def _header_safe(text: str) -> bool:
    return text.isascii() and text.isprintable() and "\n" not in text


def _forms(secret: str) -> set[bytes]:
    """The byte forms a secret could take on the way out: as is, percent-encoded, JSON-escaped."""
    return {
        secret.encode(),
        urllib.parse.quote(secret, safe="").encode(),
        urllib.parse.quote_plus(secret).encode(),
        json.dumps(secret)[1:-1].encode(),
    }


def _tracestate(secret: str) -> str | None:
    """A tracestate member carrying ``secret`` when it is a valid member value (printable, no ',' or '=')."""
    if not secret or len(secret) > 200 or not set(secret) <= _TRACESTATE_VALUE or secret[-1] == " ":
        return None
    return f"vendor={secret}"


@pytest.fixture(scope="module")
def sinks(
    tmp_path_factory: pytest.TempPathFactory, _postgres_session: PostgresServer, _redis_session: RedisServer
) -> Iterator[dict[str, bytes]]:
    """Send the corpus through the app every way once; yield every sink's bytes, keyed by sink."""
    _postgres_session.start()
    _redis_session.start()
    receiver = OtlpReceiver()
    with HttpOtlpServer(receiver) as otlp, SentryIngestServer() as sentry:
        resource_value = urllib.parse.quote(RESOURCE_ENTRY["text"], safe=":/@")
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_LOGS_EXPORTER": "otlp",  # logs leave over OTLP only when asked
            "OTEL_RESOURCE_ATTRIBUTES": f"vcs.repository.url.full={resource_value},deployment.id=d-42",
            "SENTRY_DSN": sentry.dsn,
            "SIGNALFIRE_REDIS_CAPTURE_ARGS": "true",
            "LEAK_PG_URL": _postgres_session.sqlalchemy_url("psycopg"),
            "LEAK_REDIS_URL": _redis_session.url,
        }
        with serve(tmp_path_factory.mktemp("leaks"), **env) as server:

            def send(entry: dict[str, str]) -> list[int]:
                text = entry["text"]
                statuses = [
                    httpx.get(f"{server.url}/leak", params={"s": text}, timeout=30).status_code,
                    httpx.post(f"{server.url}/leak", content=text.encode(), timeout=30).status_code,
                ]
                wire_headers = {}
                # a secret with a shape of its own (the text is the secret): a bare password in a tracestate member
                # is indistinguishable from any other value
                state = _tracestate(entry["secret"]) if entry["text"] == entry["secret"] else None
                if state is not None:
                    wire_headers = {
                        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                        "tracestate": state,
                    }
                statuses.append(
                    httpx.get(f"{server.url}/wire", params={"s": text}, headers=wire_headers, timeout=30).status_code
                )
                if _header_safe(text) and _header_safe(entry["secret"]):
                    headers = {"X-Secret": text, "Authorization": f"Bearer {entry['secret']}", "Cookie": f"s={text}"}
                    statuses.append(httpx.get(f"{server.url}/leak", headers=headers, timeout=30).status_code)
                return statuses

            def send_operator(entry: dict[str, str]) -> int:
                return httpx.get(f"{server.url}/wire", params={"op": entry["value"]}, timeout=30).status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = [s for batch in pool.map(send, CORPUS) for s in batch]
                statuses += list(pool.map(send_operator, OPERATOR_VALUES))
                statuses += [
                    httpx.get(f"{server.url}/password-reset/{token}", timeout=30).status_code
                    for token in PLACEMENT_TOKENS["path_segment"]
                ]
                # OAuth and shared-access-signature parameters, a custom secret header
                statuses += [
                    httpx.get(f"{server.url}/leak", params={"code": t, "state": t, "sig": t}, timeout=30).status_code
                    for t in PLACEMENT_TOKENS["oauth_query"]
                ]
                statuses += [
                    httpx.get(
                        f"{server.url}/leak", headers={"X-Internal-Secret": t, "X-Service-Key": t}, timeout=30
                    ).status_code
                    for t in PLACEMENT_TOKENS["custom_header"]
                ]
            stderr_statuses = [
                httpx.post(f"{server.url}/stderr", content=token.encode(), timeout=30).status_code
                for token in PLACEMENT_TOKENS["stderr"]
            ]
            assert set(stderr_statuses) == {200}
            statement_statuses = [
                httpx.post(f"{server.url}/db", content=token.encode(), timeout=30).status_code
                for token in PLACEMENT_TOKENS["db_parameter"]
            ] + [
                httpx.post(f"{server.url}/redis-auth", content=token.encode(), timeout=30).status_code
                for token in PLACEMENT_TOKENS["redis_auth"]
            ]
            assert set(statement_statuses) == {500}
            statuses += statement_statuses
            assert set(statuses) == {500}, "every request ends in the app's exception"
            events = sentry.wait_for_events(len(statuses), timeout=60)
            scrape = httpx.get(f"{server.url}/metrics", timeout=10).content
            server.stop()

            def raw(signal: str) -> bytes:
                return b"\n".join(export.message.SerializeToString() for export in receiver.of(signal))

            yield {
                "otlp_traces": raw("traces"),
                "otlp_metrics": raw("metrics"),
                "otlp_logs": raw("logs"),
                "stdout": server.output(),
                "sentry": sentry.raw(),
                "metrics": scrape,
                "_events": str(len(events)).encode(),
            }


def test_every_sink_was_exercised(sinks: dict[str, bytes]) -> None:
    """The audit searched real output: every placement arrived at its sinks."""
    assert int(sinks["_events"]) > 0
    assert b"could not process" in sinks["sentry"]
    assert b"reliability_leaky_total" in sinks["metrics"]
    assert b"app_library_calls" in sinks["metrics"]  # an OTel-API instrument on /metrics
    assert b"app.library.calls" in sinks["otlp_metrics"]  # and over OTLP
    assert b"wire.link" in sinks["otlp_traces"]
    assert b"retry after" in sinks["otlp_traces"]  # the event names
    assert b"vcs.repository.url.full" in sinks["otlp_traces"]
    assert b"vendor=" in sinks["otlp_traces"]  # a tracestate arrived
    assert b"AUTH ? ?" in sinks["otlp_traces"]  # the redis AUTH span, arguments captured (and withheld)
    assert b"INSERT INTO leak_members" in sinks["otlp_traces"]  # the failed statement
    assert b'"event":"received"' in sinks["stdout"]
    assert sinks["otlp_logs"]


def _leaks(data: bytes, entries: list[dict[str, str]]) -> list[tuple[str, bytes]]:
    leaked = []
    for entry in entries:
        for form in _forms(entry["secret"]):
            if form in data:
                at = data.index(form)
                leaked.append((entry["kind"], data[max(0, at - 80) : at + 40]))
                break
    return leaked


@pytest.mark.parametrize("sink", SINKS)
def test_no_secret_leaves_through(sinks: dict[str, bytes], sink: str) -> None:
    """No corpus secret appears, in any encoding, in the bytes that left through this sink."""
    leaked = _leaks(sinks[sink], CORPUS)
    assert leaked == [], f"{len(leaked)} of {len(CORPUS)} secrets leaked through {sink}: {leaked[:5]}"


def _redacted(data: bytes, entries: list[dict[str, str]]) -> list[str]:
    return [entry["kind"] for entry in entries if entry["value"].encode() not in data]


@pytest.mark.parametrize("sink", OPERATOR_SINKS)
def test_operator_values_arrive_unchanged(sinks: dict[str, bytes], sink: str) -> None:
    """Ids, timestamps, counts and order numbers reach every sink they were put in, unredacted."""
    assert _redacted(sinks[sink], OPERATOR_VALUES) == []


@pytest.mark.parametrize(
    ("placement", "sink"),
    [
        pytest.param(
            placement,
            sink,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(placement, sink)])]
            if (placement, sink) in KNOWN_GAPS
            else [],
        )
        for placement in PLACEMENT_TOKENS
        for sink in SINKS
    ],
)
def test_no_placement_token_leaves_through(sinks: dict[str, bytes], placement: str, sink: str) -> None:
    """A token in a path segment or written to stderr around the log pipeline leaves through no sink."""
    leaked = [token for token in PLACEMENT_TOKENS[placement] if token.encode() in sinks[sink]]
    assert leaked == []
