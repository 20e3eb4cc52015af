"""Metrics: the OpenTelemetry meter provider (``_provider``); the registry and backends plug into it."""
