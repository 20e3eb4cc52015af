"""The exit path's one question to each collector: does it refuse connections? (_export._otlp.address/refusing)"""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalfire._export._otlp import address, refusing
from tests.receivers import free_port


@pytest.mark.parametrize(
    ("endpoint", "protocol", "expected"),
    [
        ("http://127.0.0.1:4318/v1/traces", "http/protobuf", ("127.0.0.1", 4318)),
        ("https://collector.example:443/v1/logs", "http/protobuf", ("collector.example", 443)),
        ("https://collector.example/v1/logs", "http/protobuf", ("collector.example", 443)),
        ("http://collector.example/v1/logs", "http/protobuf", ("collector.example", 80)),
        ("collector:4317", "grpc", ("collector", 4317)),
        ("http://[::1]:4317", "grpc", ("::1", 4317)),
        ("unix:///var/run/otel.sock", "grpc", None),
        ("http://", "http/protobuf", None),
        ("http://host:notaport/v1/traces", "http/protobuf", None),
    ],
)
def test_address_of_an_endpoint(
    endpoint: str, protocol: str, expected: tuple[str, int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host and port an exporter connects to, or None when it cannot be probed directly."""
    for name in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert address(endpoint, protocol) == expected


def test_an_endpoint_behind_a_proxy_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy in the environment the exporters connect to the proxy, so the collector is not probed."""
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert address("https://collector.example/v1/traces", "http/protobuf") is None


@given(st.text(max_size=300))
def test_address_never_raises(endpoint: str) -> None:
    """Whatever the endpoint setting holds, the answer is an address or None."""
    result = address(endpoint, "grpc")
    assert result is None or (isinstance(result[0], str) and isinstance(result[1], int))


def test_refusing_tells_a_closed_port_from_a_listening_one() -> None:
    """A port nothing listens on refuses; one with a listener does not; both answered in one call."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        open_port = listener.getsockname()[1]
        closed = ("127.0.0.1", free_port())
        assert refusing([closed, ("127.0.0.1", open_port)], timeout=5) == {closed}


def test_a_name_that_does_not_resolve_counts_as_refusing() -> None:
    """A collector whose host name does not resolve cannot be exported to either (.invalid never resolves)."""
    assert refusing([("collector.invalid", 4317)], timeout=5) == {("collector.invalid", 4317)}
