"""The shared hex text of a span context's ids: what the log line and the exemplar both print."""

from __future__ import annotations

from opentelemetry.trace import SpanContext, TraceFlags

from signalfire._hex_ids import hex_ids


def test_ids_are_zero_padded_lowercase_hex_and_follow_the_context():
    first = SpanContext(0xAB, 0xC, is_remote=False, trace_flags=TraceFlags(1))
    second = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(0))
    assert hex_ids(first)[1:] == ("000000000000000000000000000000ab", "000000000000000c", "01")
    assert hex_ids(second)[1:] == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "00")
    # an equal but distinct context is formatted again (the cache is by identity), to the same text
    again = SpanContext(0xAB, 0xC, is_remote=False, trace_flags=TraceFlags(1))
    assert hex_ids(again)[0] is again
    assert hex_ids(again)[1:] == hex_ids(first)[1:]
