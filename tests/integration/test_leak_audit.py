"""Leak audit, end to end: every secret of the corpus (tests/data/secrets.json) sent through a real app in headers,
query strings and bodies, which the app then puts in log keyword arguments, span attributes, Sentry context, metric
labels and exception messages. Every exit is captured as bytes (the OTLP receiver, stdout, the Sentry receiver, the
/metrics text) and searched: zero occurrences."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.reliability_server import serve
from tests.receivers import HttpOtlpServer, OtlpReceiver, SentryIngestServer

pytestmark = pytest.mark.integration

CORPUS: list[dict[str, str]] = json.loads((Path(__file__).parents[1] / "data" / "secrets.json").read_text())["secrets"]


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


@pytest.fixture(scope="module")
def exits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """Send the corpus through the app every way once; yield every exit's bytes, keyed by exit."""
    receiver = OtlpReceiver()
    with HttpOtlpServer(receiver) as otlp, SentryIngestServer() as sentry:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "SENTRY_DSN": sentry.dsn,
        }
        with serve(tmp_path_factory.mktemp("leaks"), **env) as server:

            def send(entry: dict[str, str]) -> list[int]:
                text = entry["text"]
                statuses = [
                    httpx.get(f"{server.url}/leak", params={"s": text}, timeout=30).status_code,
                    httpx.post(f"{server.url}/leak", content=text.encode(), timeout=30).status_code,
                ]
                if _header_safe(text) and _header_safe(entry["secret"]):
                    headers = {"X-Secret": text, "Authorization": f"Bearer {entry['secret']}", "Cookie": f"s={text}"}
                    statuses.append(httpx.get(f"{server.url}/leak", headers=headers, timeout=30).status_code)
                return statuses

            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = [s for batch in pool.map(send, CORPUS) for s in batch]
            assert set(statuses) == {500}, "every /leak request ends in the app's exception"
            events = sentry.wait_for_events(len(statuses), timeout=30)
            scrape = httpx.get(f"{server.url}/metrics", timeout=10).content
            server.stop()
            yield {
                "otlp": receiver.raw(),
                "stdout": server.output(),
                "sentry": sentry.raw(),
                "metrics": scrape,
                "_events": str(len(events)).encode(),
                "_spans": str(len(receiver.spans())).encode(),
                "_logs": str(len(receiver.logs())).encode(),
            }


def test_every_exit_was_exercised(exits: dict[str, bytes]) -> None:
    """The audit searched real output: spans, OTLP log records, Sentry events and the app's metrics all arrived."""
    assert int(exits["_spans"]) > 0
    assert int(exits["_logs"]) > 0
    assert int(exits["_events"]) > 0
    assert b"could not process" in exits["sentry"]
    assert b"reliability_leaky_total" in exits["metrics"]
    assert b'"event":"received"' in exits["stdout"]


@pytest.mark.parametrize("exit_name", ["otlp", "stdout", "sentry", "metrics"])
def test_no_secret_leaves_through(exits: dict[str, bytes], exit_name: str) -> None:
    """No corpus secret appears, in any encoding, in the bytes that left through this exit."""
    data = exits[exit_name]
    leaked: list[tuple[str, Any]] = []
    for entry in CORPUS:
        for form in _forms(entry["secret"]):
            if form in data:
                at = data.index(form)
                leaked.append((entry["kind"], data[max(0, at - 80) : at + 40]))
                break
    assert leaked == [], f"{len(leaked)} secrets leaked through {exit_name}: {leaked[:5]}"
