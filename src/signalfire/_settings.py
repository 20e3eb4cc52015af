"""Settings: the one place that reads the environment.

Resolution order, highest first: keyword arguments to ``init_observability()`` > environment variables > the preset of
the deployment environment > field defaults. Standard ``OTEL_*`` variables mean what the OpenTelemetry specification
says (durations in milliseconds, ``OTEL_SDK_DISABLED=true`` disables, ...); signalfire's own use ``SIGNALFIRE_``.

Every validation failure becomes one :class:`ConfigurationError` that names the variable (or keyword argument), the
value it received and what is accepted.
"""

# No ``from __future__ import annotations`` here: pydantic would have to evaluate every field's annotation from a string
# (one compile() each) when it builds the class at import.
import functools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self, TypedDict
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["ConfigurationError", "OtlpTarget", "Settings"]

Signal = Literal["traces", "metrics", "logs"]
Source = Literal["argument", "environment", "preset", "default"]

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
PROTOCOLS = ("grpc", "http/protobuf")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS = ("json", "console")
EXPORTERS: dict[Signal, tuple[str, ...]] = {
    "traces": ("otlp", "console", "none"),
    "metrics": ("otlp", "prometheus", "console", "none"),
    "logs": ("otlp", "console", "none"),
}
# Libraries init_observability() instruments by itself when they are installed (SIGNALFIRE_AUTO_INSTRUMENT).
AUTO_INSTRUMENTABLE = ("sqlalchemy", "redis", "httpx")
# Environments that take the development preset; every other name (staging, production, qa, ...) takes production's,
# because a shared environment should behave like production unless told otherwise.
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "local", "test", "testing"})

# Values a preset supplies where neither an argument nor the environment did. Each key is a Settings field whose
# default is None; the configuration reference in docs/ is generated from this table.
PRESETS: dict[str, dict[str, Any]] = {
    "development": {
        "traces_sampler_arg": 1.0,
        "log_format": "console",
    },
    "production": {
        "traces_sampler_arg": 0.1,
        "log_format": "json",
    },
}


class ConfigurationError(ValueError):
    """A setting was rejected by :func:`signalfire.init_observability`.

    The message names every offending environment variable (or keyword argument), the value it had and what is
    accepted, one per line::

        OTEL_TRACES_SAMPLER_ARG='1.5' is not accepted: expected a number from 0 to 1 (the sampling ratio)
    """


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class BatchOptions(TypedDict):
    """OTEL_BSP_* as keyword arguments of the SDK's batch span and log-record processors."""

    max_queue_size: int
    schedule_delay_millis: int
    max_export_batch_size: int
    export_timeout_millis: int


@dataclass(frozen=True, slots=True)
class OtlpTarget:
    """Where and how one signal is exported over OTLP, resolved from the generic and per-signal variables."""

    endpoint: str
    protocol: str
    headers: Mapping[str, str]
    timeout_s: float
    compression: str | None


def parse_key_values(raw: str, what: str) -> dict[str, str]:
    """Parse the W3C-baggage-like ``key=value,key2=value2`` lists used by OTEL_RESOURCE_ATTRIBUTES and _HEADERS."""
    result: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected comma-separated key=value pairs ({what}), e.g. 'api-key=abc,team=core'")
        result[unquote(key.strip())] = unquote(value.strip())
    return result


class Settings(BaseModel):
    """All of signalfire's configuration, resolved once by :func:`signalfire.init_observability`.

    Each field documents its environment variables, first one wins. Pass a field name as a keyword argument to
    ``init_observability`` to override the environment::

        signalfire.init_observability(service_name="checkout", traces_sampler_arg=0.25)
    """

    # A plain model that reads the environment itself (__init__): pydantic-settings cost more at import than the rest
    # of start-up's configuration, for two sources (arguments, variables) that fit in a dozen lines.
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid", validate_default=False)

    # --- identity ------------------------------------------------------------------------------------------------
    enabled: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_ENABLED", "OTEL_ENABLED"),
        description="SIGNALFIRE_ENABLED / OTEL_ENABLED. false turns every signal off; decorators become plain calls.",
    )
    sdk_disabled: bool = Field(
        False,
        validation_alias=_env("OTEL_SDK_DISABLED"),
        description="OTEL_SDK_DISABLED. true turns every signal off, as the OpenTelemetry specification says.",
    )
    service_name: str | None = Field(
        None,
        validation_alias=_env("OTEL_SERVICE_NAME", "SIGNALFIRE_SERVICE_NAME"),
        description="OTEL_SERVICE_NAME. Default: service.name from OTEL_RESOURCE_ATTRIBUTES, else "
        "'unknown_service:python'.",
    )
    service_version: str | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_SERVICE_VERSION", "OTEL_SERVICE_VERSION", "APP_VERSION", "GIT_SHA"),
        description="SIGNALFIRE_SERVICE_VERSION / OTEL_SERVICE_VERSION / APP_VERSION / GIT_SHA. Default: "
        "service.version from OTEL_RESOURCE_ATTRIBUTES, else unset.",
    )
    environment: str | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_ENVIRONMENT", "ENVIRONMENT", "DEPLOYMENT_ENVIRONMENT"),
        description="SIGNALFIRE_ENVIRONMENT / ENVIRONMENT / DEPLOYMENT_ENVIRONMENT. Free-form; development, dev, "
        "local, test and testing take the development preset, every other name the production preset. Default: "
        "deployment.environment.name from OTEL_RESOURCE_ATTRIBUTES, else 'development'.",
    )
    resource_attributes: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=_env("OTEL_RESOURCE_ATTRIBUTES"),
        description="OTEL_RESOURCE_ATTRIBUTES. key=value pairs added to every signal's resource.",
    )
    log_level: str = Field(
        "INFO",
        validation_alias=_env("SIGNALFIRE_LOG_LEVEL", "LOG_LEVEL"),
        description="SIGNALFIRE_LOG_LEVEL / LOG_LEVEL. One of CRITICAL, ERROR, WARNING, INFO, DEBUG.",
    )

    # --- exporters -----------------------------------------------------------------------------------------------
    traces_exporter: tuple[str, ...] | None = Field(
        None,
        validation_alias=_env("OTEL_TRACES_EXPORTER"),
        description="OTEL_TRACES_EXPORTER: otlp, console, none (comma-separated). Default: otlp when an endpoint is "
        "configured; otherwise the span tree on the terminal in development and nothing (with one warning) in "
        "production.",
    )
    metrics_exporter: tuple[str, ...] | None = Field(
        None,
        validation_alias=_env("OTEL_METRICS_EXPORTER"),
        description="OTEL_METRICS_EXPORTER: otlp, prometheus, console, none (comma-separated). Default: otlp when "
        "an endpoint is configured.",
    )
    logs_exporter: tuple[str, ...] | None = Field(
        None,
        validation_alias=_env("OTEL_LOGS_EXPORTER"),
        description="OTEL_LOGS_EXPORTER: otlp, console, none (comma-separated). Default: none (logs go to stdout); "
        "otlp when OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set.",
    )

    # --- OTLP: generic, then per signal ----------------------------------------------------------------------------
    otlp_endpoint: str | None = Field(
        None,
        validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTEL_EXPORTER_OTLP_ENDPOINT. Base URL; for http/protobuf /v1/<signal> is appended.",
    )
    otlp_traces_endpoint: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    otlp_metrics_endpoint: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
    otlp_logs_endpoint: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"))
    otlp_protocol: str = Field(
        "http/protobuf",
        validation_alias=_env("OTEL_EXPORTER_OTLP_PROTOCOL"),
        description="OTEL_EXPORTER_OTLP_PROTOCOL: grpc or http/protobuf (the specification's default).",
    )
    otlp_traces_protocol: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
    otlp_metrics_protocol: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"))
    otlp_logs_protocol: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"))
    otlp_headers: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=_env("OTEL_EXPORTER_OTLP_HEADERS"),
        description="OTEL_EXPORTER_OTLP_HEADERS. key=value pairs sent with every export (e.g. an API key).",
    )
    otlp_traces_headers: dict[str, str] | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_HEADERS"))
    otlp_metrics_headers: dict[str, str] | None = Field(
        None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_HEADERS")
    )
    otlp_logs_headers: dict[str, str] | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_HEADERS"))
    otlp_timeout_ms: int = Field(
        10_000,
        validation_alias=_env("OTEL_EXPORTER_OTLP_TIMEOUT"),
        description="OTEL_EXPORTER_OTLP_TIMEOUT, in milliseconds as the specification says.",
    )
    otlp_traces_timeout_ms: int | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"))
    otlp_metrics_timeout_ms: int | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"))
    otlp_logs_timeout_ms: int | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"))
    otlp_compression: str | None = Field(
        None,
        validation_alias=_env("OTEL_EXPORTER_OTLP_COMPRESSION"),
        description="OTEL_EXPORTER_OTLP_COMPRESSION: gzip or none.",
    )

    # --- sampling and batching -------------------------------------------------------------------------------------
    traces_sampler: str = Field(
        "parentbased_traceidratio",
        validation_alias=_env("OTEL_TRACES_SAMPLER"),
        description="OTEL_TRACES_SAMPLER: " + ", ".join(SAMPLERS) + ".",
    )
    traces_sampler_arg: float | None = Field(
        None,
        validation_alias=_env("OTEL_TRACES_SAMPLER_ARG"),
        description="OTEL_TRACES_SAMPLER_ARG: the sampling ratio, 0 to 1. Preset: 1.0 in development, 0.1 in "
        "production.",
    )
    bsp_schedule_delay_ms: int = Field(5_000, validation_alias=_env("OTEL_BSP_SCHEDULE_DELAY"))
    bsp_export_timeout_ms: int = Field(30_000, validation_alias=_env("OTEL_BSP_EXPORT_TIMEOUT"))
    bsp_max_queue_size: int = Field(2_048, validation_alias=_env("OTEL_BSP_MAX_QUEUE_SIZE"))
    bsp_max_export_batch_size: int = Field(512, validation_alias=_env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"))
    # span limits: standard meaning, every value passed explicitly (the SDK would otherwise read the environment)
    attribute_value_length_limit: int = Field(
        4096,
        validation_alias=_env("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        description="OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, the longest attribute value kept, in characters (longer "
        "strings are truncated). signalfire's default is 4096 rather than unlimited: a hostile header or query "
        "string never makes an unbounded span.",
    )
    span_attribute_value_length_limit: int | None = Field(
        None,
        validation_alias=_env("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        description="OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, the same for span attributes only; default: "
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT.",
    )
    attribute_count_limit: int = Field(
        128,
        validation_alias=_env("OTEL_ATTRIBUTE_COUNT_LIMIT"),
        description="OTEL_ATTRIBUTE_COUNT_LIMIT, the most attributes kept per span, event and link (further ones are "
        "dropped).",
    )
    span_attribute_count_limit: int | None = Field(
        None,
        validation_alias=_env("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"),
        description="OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, the same for span attributes only; default: "
        "OTEL_ATTRIBUTE_COUNT_LIMIT.",
    )
    span_event_count_limit: int = Field(
        128,
        validation_alias=_env("OTEL_SPAN_EVENT_COUNT_LIMIT"),
        description="OTEL_SPAN_EVENT_COUNT_LIMIT, the most events kept per span.",
    )
    span_link_count_limit: int = Field(
        128,
        validation_alias=_env("OTEL_SPAN_LINK_COUNT_LIMIT"),
        description="OTEL_SPAN_LINK_COUNT_LIMIT, the most links kept per span.",
    )
    metric_export_interval_ms: int = Field(
        60_000,
        validation_alias=_env("OTEL_METRIC_EXPORT_INTERVAL"),
        description="OTEL_METRIC_EXPORT_INTERVAL, milliseconds between OTLP metric pushes.",
    )
    metric_export_timeout_ms: int = Field(30_000, validation_alias=_env("OTEL_METRIC_EXPORT_TIMEOUT"))

    # --- lifecycle -------------------------------------------------------------------------------------------------
    shutdown_timeout_s: float = Field(
        5.0,
        validation_alias=_env("SIGNALFIRE_SHUTDOWN_TIMEOUT"),
        description="SIGNALFIRE_SHUTDOWN_TIMEOUT, seconds that shutdown() (also at exit and on SIGTERM) may spend "
        "flushing.",
    )
    handle_sigterm: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_HANDLE_SIGTERM"),
        description="SIGNALFIRE_HANDLE_SIGTERM. Flush on SIGTERM, then run the handler that was there before.",
    )

    # --- logs, request correlation and the scrubber (_logging.py, _scrub.py) -------------------------------------
    log_format: str | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_LOG_FORMAT"),
        description="SIGNALFIRE_LOG_FORMAT: json (one JSON object per line) or console (coloured, readable). Preset: "
        "console in development, json in production.",
    )
    log_levels: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=_env("SIGNALFIRE_LOG_LEVELS"),
        description="SIGNALFIRE_LOG_LEVELS: per-logger levels, e.g. 'sqlalchemy.engine=WARNING,uvicorn.access=ERROR'.",
    )
    scrub_keys: tuple[str, ...] = Field(
        (),
        validation_alias=_env("SIGNALFIRE_SCRUB_KEYS"),
        description="SIGNALFIRE_SCRUB_KEYS: extra sensitive keys (comma-separated), redacted in every signal, compared "
        "case- and separator-insensitively.",
    )
    scrub_allow_keys: tuple[str, ...] = Field(
        (),
        validation_alias=_env("SIGNALFIRE_SCRUB_ALLOW_KEYS"),
        description="SIGNALFIRE_SCRUB_ALLOW_KEYS: keys kept readable although they contain a sensitive word "
        "(comma-separated), added to the built-in list (token_count, session_count, ...).",
    )
    scrub_emails: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_SCRUB_EMAILS"),
        description="SIGNALFIRE_SCRUB_EMAILS: redact email addresses in logs and spans (Sentry events always are).",
    )
    scrub_phones: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_SCRUB_PHONES"),
        description="SIGNALFIRE_SCRUB_PHONES: redact phone numbers in logs and spans (Sentry events always are).",
    )
    request_id_header: str = Field(
        "X-Request-ID",
        validation_alias=_env("SIGNALFIRE_REQUEST_ID_HEADER"),
        description="SIGNALFIRE_REQUEST_ID_HEADER: the header a request id is read from and returned in.",
    )
    access_log: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_ACCESS_LOG"),
        description="SIGNALFIRE_ACCESS_LOG: one log line per HTTP request (logger signalfire.access).",
    )
    access_log_sample_rate: float = Field(
        1.0,
        validation_alias=_env("SIGNALFIRE_ACCESS_LOG_SAMPLE_RATE"),
        description="SIGNALFIRE_ACCESS_LOG_SAMPLE_RATE: the share of requests with an access-log line, 0 to 1; 5xx "
        "responses and slow requests are always logged.",
    )
    access_log_slow_ms: float = Field(
        1000.0,
        validation_alias=_env("SIGNALFIRE_ACCESS_LOG_SLOW_MS"),
        description="SIGNALFIRE_ACCESS_LOG_SLOW_MS: requests slower than this many milliseconds are always logged.",
    )
    # --- errors: Sentry (_errors.py) -------------------------------------------------------------------------------
    sentry_dsn: str | None = Field(
        None,
        validation_alias=_env("SENTRY_DSN"),
        description="SENTRY_DSN. Where Sentry events go (https://<public key>@<host>/<project id>); unset: Sentry "
        "stays off and the error helpers do nothing.",
    )
    sentry_environment: str | None = Field(
        None,
        validation_alias=_env("SENTRY_ENVIRONMENT"),
        description="SENTRY_ENVIRONMENT. Default: the service's environment (SIGNALFIRE_ENVIRONMENT / ENVIRONMENT).",
    )
    sentry_release: str | None = Field(
        None,
        validation_alias=_env("SENTRY_RELEASE"),
        description="SENTRY_RELEASE. Default: the service version (SIGNALFIRE_SERVICE_VERSION / APP_VERSION / "
        "GIT_SHA).",
    )
    sentry_traces_sample_rate: float = Field(
        0.0,
        validation_alias=_env("SENTRY_TRACES_SAMPLE_RATE"),
        description="SENTRY_TRACES_SAMPLE_RATE, 0 to 1. Default 0: OpenTelemetry owns tracing and Sentry starts no "
        "transactions, spans or sentry-trace headers. Above 0 Sentry traces too (a second set of traces).",
    )
    sentry_profiles_sample_rate: float = Field(
        0.0,
        validation_alias=_env("SENTRY_PROFILES_SAMPLE_RATE"),
        description="SENTRY_PROFILES_SAMPLE_RATE, 0 to 1, relative to SENTRY_TRACES_SAMPLE_RATE (profiles need Sentry "
        "transactions).",
    )
    sentry_ignore_errors: tuple[str, ...] = Field(
        (),
        validation_alias=_env("SIGNALFIRE_SENTRY_IGNORE_ERRORS"),
        description="SIGNALFIRE_SENTRY_IGNORE_ERRORS. Comma-separated exception class names (KeyError) or dotted "
        "paths (myapp.errors.Retry) never reported. HTTP 4xx and request-validation errors are never reported anyway.",
    )
    sentry_send_user_email: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_SENTRY_SEND_USER_EMAIL"),
        description="SIGNALFIRE_SENTRY_SEND_USER_EMAIL. true keeps the email address given to set_user(); by default "
        "it is redacted like every other email address.",
    )
    sentry_asgi_integration: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_SENTRY_ASGI_INTEGRATION"),
        description="SIGNALFIRE_SENTRY_ASGI_INTEGRATION. true turns sentry-sdk's own ASGI/Starlette/FastAPI "
        "integrations on (request bodies on events, at about twice the CPU per request); default false: signalfire's "
        "middleware reports unhandled errors itself and a request without an error costs Sentry nothing.",
    )
    sentry_before_send: Callable[[Any, Any], Any] | None = Field(
        None,
        validation_alias=_env("sentry_before_send"),
        description="Keyword argument only: your own Sentry before_send(event, hint), run after signalfire's "
        "scrubbing and noise filter; return None to drop the event.",
    )
    sentry_before_breadcrumb: Callable[[Any, Any], Any] | None = Field(
        None,
        validation_alias=_env("sentry_before_breadcrumb"),
        description="Keyword argument only: your own Sentry before_breadcrumb(crumb, hint), run after signalfire's "
        "scrubbing.",
    )

    # --- metrics: registry, Prometheus, RED (_metrics/) ------------------------------------------------------------
    metrics_prefix: str | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_METRICS_PREFIX"),
        description="SIGNALFIRE_METRICS_PREFIX. Namespace put before business instruments' names (payments, orders, "
        "jobs, users, storage, external, your own): 'tvl' exposes tvl_payments_processed_total. Default: none.",
    )
    metrics_max_series: int = Field(
        2000,
        validation_alias=_env("SIGNALFIRE_METRICS_MAX_SERIES"),
        description="SIGNALFIRE_METRICS_MAX_SERIES. Distinct label sets one instrument may have; beyond it values go "
        "to one overflow series and signalfire_metrics_series_overflow_total counts them.",
    )
    metrics_prometheus: bool | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_METRICS_PROMETHEUS"),
        description="SIGNALFIRE_METRICS_PROMETHEUS. Serve the Prometheus exposition. Default: on, unless "
        "OTEL_METRICS_EXPORTER is set without 'prometheus'.",
    )
    metrics_path: str = Field(
        "/metrics",
        validation_alias=_env("SIGNALFIRE_METRICS_PATH"),
        description="SIGNALFIRE_METRICS_PATH. Path of the Prometheus exposition on the instrumented ASGI app.",
    )
    metrics_port: int | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_METRICS_PORT", "OTEL_EXPORTER_PROMETHEUS_PORT"),
        description="SIGNALFIRE_METRICS_PORT / OTEL_EXPORTER_PROMETHEUS_PORT. Also serve the exposition on this port "
        "from a standalone HTTP server (for services without an ASGI app); 0 picks a free port. Default: unset.",
    )
    metrics_host: str = Field(
        "0.0.0.0",  # Prometheus scrapes from another host; prometheus-client binds the same by default
        validation_alias=_env("SIGNALFIRE_METRICS_HOST", "OTEL_EXPORTER_PROMETHEUS_HOST"),
        description="SIGNALFIRE_METRICS_HOST / OTEL_EXPORTER_PROMETHEUS_HOST. Address the standalone server binds.",
    )
    metrics_runtime: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_METRICS_RUNTIME"),
        description="SIGNALFIRE_METRICS_RUNTIME. Expose process (CPU, memory, file descriptors) and Python runtime "
        "(GC, version) metrics.",
    )
    prometheus_multiproc_dir: str | None = Field(
        None,
        validation_alias=_env("PROMETHEUS_MULTIPROC_DIR"),
        description="PROMETHEUS_MULTIPROC_DIR. prometheus-client's multiprocess directory (gunicorn, uvicorn "
        "--workers): every worker writes there and a scrape of any worker sums them all. Must exist and be "
        "writable; empty it when the server starts.",
    )

    # --- HTTP middleware and integrations (_http.py, integrations/) ------------------------------------------------
    excluded_paths: tuple[str, ...] = Field(
        ("/health*", "/metrics"),
        validation_alias=_env("SIGNALFIRE_EXCLUDED_PATHS"),
        description="SIGNALFIRE_EXCLUDED_PATHS: comma-separated request paths that get no span, no metric and no "
        "access-log line; a trailing * matches a prefix (default /health*,/metrics; 'none' excludes nothing).",
    )
    excluded_urls: tuple[str, ...] = Field(
        (),
        validation_alias=_env("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"),
        description="OTEL_PYTHON_FASTAPI_EXCLUDED_URLS / OTEL_PYTHON_EXCLUDED_URLS: comma-separated regular "
        "expressions, as OpenTelemetry's instrumentations read them: a request whose URL without the query "
        "(scheme://host/path) one of them is found in (re.search) is excluded too.",
    )
    auto_instrument: tuple[str, ...] = Field(
        ("sqlalchemy", "redis", "httpx"),
        validation_alias=_env("SIGNALFIRE_AUTO_INSTRUMENT"),
        description="SIGNALFIRE_AUTO_INSTRUMENT: comma-separated libraries init_observability() instruments when "
        "they are installed: sqlalchemy, redis, httpx (default all three; 'none' for none).",
    )
    http_capture_headers_server_request: tuple[str, ...] = Field(
        (),
        validation_alias=_env("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"),
        description="OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST: comma-separated regular expressions; "
        "each request header whose whole name matches one (case-insensitively) is recorded on the server span as "
        "http.request.header.<name> (lower case, - as _), a list of its values, as OpenTelemetry's instrumentations "
        "do.",
    )
    http_capture_headers_server_response: tuple[str, ...] = Field(
        (),
        validation_alias=_env("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE"),
        description="OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE: the same for response headers "
        "(http.response.header.<name>).",
    )
    http_capture_headers_sanitize_fields: tuple[str, ...] = Field(
        (),
        validation_alias=_env("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"),
        description="OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS: comma-separated regular expressions; "
        "a captured header whose name they find (re.search, case-insensitively) is recorded as [REDACTED]. Captured "
        "values go through the scrubber as well.",
    )
    http_known_methods: tuple[str, ...] | None = Field(
        None,
        validation_alias=_env("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"),
        description="OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS: comma-separated HTTP methods (case-sensitive) that "
        "replace the semantic conventions' set (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, QUERY); "
        "any other method is recorded as _OTHER.",
    )
    semconv_stability_opt_in: tuple[str, ...] = Field(
        (),
        validation_alias=_env("OTEL_SEMCONV_STABILITY_OPT_IN"),
        description="OTEL_SEMCONV_STABILITY_OPT_IN: comma-separated, as OpenTelemetry reads it (http, http/dup, "
        "database, ...). signalfire emits only the stable HTTP conventions whatever it says: http and http/dup are "
        "accepted (http/dup's old attribute names are not emitted); other values are for other instrumentations.",
    )
    server_request_hook: Callable[..., Any] | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_SERVER_REQUEST_HOOK"),
        description="SIGNALFIRE_SERVER_REQUEST_HOOK: a function called as hook(span, scope) when a request's server "
        "span starts (the keyword argument, or 'package.module:function' in the environment). A hook that raises is "
        "logged once and counted, never breaks the request.",
    )
    server_response_hook: Callable[..., Any] | None = Field(
        None,
        validation_alias=_env("SIGNALFIRE_SERVER_RESPONSE_HOOK"),
        description="SIGNALFIRE_SERVER_RESPONSE_HOOK: a function called as hook(span, scope, message) with the "
        "http.response.start message (OpenTelemetry's ASGI client_response_hook signature).",
    )
    redis_capture_args: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_REDIS_CAPTURE_ARGS"),
        description="SIGNALFIRE_REDIS_CAPTURE_ARGS. true puts the redis command's arguments (keys and values, "
        "scrubbed) in db.statement; by default only the command and '?' placeholders are recorded.",
    )

    # --- health checks (health.py) ---------------------------------------------------------------------------------
    health_enabled: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_HEALTH_ENABLED"),
        description="SIGNALFIRE_HEALTH_ENABLED. false: init_observability(app) adds no health endpoints.",
    )
    health_live_path: str = Field(
        "/health/live",
        validation_alias=_env("SIGNALFIRE_HEALTH_LIVE_PATH"),
        description="SIGNALFIRE_HEALTH_LIVE_PATH. The liveness endpoint: 200 while the process answers.",
    )
    health_ready_path: str = Field(
        "/health/ready",
        validation_alias=_env("SIGNALFIRE_HEALTH_READY_PATH"),
        description="SIGNALFIRE_HEALTH_READY_PATH. The readiness endpoint: 200 when every critical check passes, "
        "else 503.",
    )
    health_deep_path: str = Field(
        "/health/deep",
        validation_alias=_env("SIGNALFIRE_HEALTH_DEEP_PATH"),
        description="SIGNALFIRE_HEALTH_DEEP_PATH. Every check with status, latency and details; 503 only when a "
        "critical check fails.",
    )
    health_timeout_s: float = Field(
        2.0,
        validation_alias=_env("SIGNALFIRE_HEALTH_TIMEOUT_SECONDS"),
        description="SIGNALFIRE_HEALTH_TIMEOUT_SECONDS. Seconds a check may take before it fails, unless the check "
        "sets its own timeout. Keep it below the probe's timeoutSeconds.",
    )
    health_cache_s: float = Field(
        1.0,
        validation_alias=_env("SIGNALFIRE_HEALTH_CACHE_SECONDS"),
        description="SIGNALFIRE_HEALTH_CACHE_SECONDS. Seconds a check's result is reused, so probe storms call each "
        "dependency at most once per period; 0 runs the checks on every probe.",
    )

    # Where each field's value came from; filled by resolve(), read by `signalfire doctor`.
    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)

    # --- validators ------------------------------------------------------------------------------------------------
    @field_validator("resource_attributes", "otlp_headers", mode="before")
    @classmethod
    def _parse_pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_key_values(value, "key=value")
        return value

    @field_validator("otlp_traces_headers", "otlp_metrics_headers", "otlp_logs_headers", mode="before")
    @classmethod
    def _parse_signal_pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_key_values(value, "key=value")
        return value

    @field_validator("traces_exporter", "metrics_exporter", "logs_exporter", mode="before")
    @classmethod
    def _parse_exporters(cls, value: Any, info: Any) -> Any:
        signal: Signal = info.field_name.removesuffix("_exporter")
        names = [n.strip().lower() for n in value.split(",")] if isinstance(value, str) else list(value)
        names = [n for n in names if n]
        accepted = EXPORTERS[signal]
        for name in names:
            if name not in accepted:
                raise ValueError(f"expected a comma-separated list of {', '.join(accepted)}")
        if "none" in names and len(names) > 1:
            raise ValueError("'none' cannot be combined with another exporter")
        return tuple(names)

    @field_validator("otlp_endpoint", "otlp_traces_endpoint", "otlp_metrics_endpoint", "otlp_logs_endpoint")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or " " in value:
            raise ValueError("expected an http:// or https:// URL such as http://otel-collector:4318")
        return value

    @field_validator(
        "otlp_protocol", "otlp_traces_protocol", "otlp_metrics_protocol", "otlp_logs_protocol", mode="before"
    )
    @classmethod
    def _check_protocol(cls, value: Any) -> Any:
        if value is None:
            return None
        normalized = str(value).strip().lower()
        if normalized not in PROTOCOLS:
            raise ValueError("expected grpc or http/protobuf")
        return normalized

    @field_validator("otlp_compression", mode="before")
    @classmethod
    def _check_compression(cls, value: Any) -> Any:
        if value is None:
            return None
        normalized = str(value).strip().lower()
        if normalized not in ("gzip", "none"):
            raise ValueError("expected gzip or none")
        return None if normalized == "none" else normalized

    @field_validator("traces_sampler", mode="before")
    @classmethod
    def _check_sampler(cls, value: Any) -> Any:
        normalized = str(value).strip().lower()
        if normalized not in SAMPLERS:
            raise ValueError("expected one of " + ", ".join(SAMPLERS))
        return normalized

    @field_validator("traces_sampler_arg", mode="before")
    @classmethod
    def _check_ratio(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            ratio = float(value)
        except (TypeError, ValueError):
            ratio = math.nan
        if not 0.0 <= ratio <= 1.0:  # also rejects NaN
            raise ValueError("expected a number from 0 to 1 (the sampling ratio)")
        return ratio

    @field_validator("sentry_dsn")
    @classmethod
    def _check_dsn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = urlsplit(""), False
        project = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if (
            parts.scheme not in ("http", "https")
            or not parts.username
            or not parts.hostname
            or not port_ok
            or not project.isdigit()
            or parts.query
            or " " in value
        ):
            raise ValueError(
                "expected a Sentry DSN such as https://<public key>@o0.ingest.sentry.io/<project id> "
                "(Sentry > Project Settings > Client Keys)"
            )
        return value

    @field_validator("sentry_traces_sample_rate", "sentry_profiles_sample_rate", mode="before")
    @classmethod
    def _check_sentry_rate(cls, value: Any) -> Any:
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = math.nan
        if isinstance(value, bool) or not 0.0 <= rate <= 1.0:
            raise ValueError("expected a number from 0 to 1 (the share of transactions sampled)")
        return rate

    @field_validator("sentry_ignore_errors", mode="before")
    @classmethod
    def _parse_error_names(cls, value: Any) -> Any:
        names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n) for n in value]
        names = [n for n in names if n]
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(
                    "expected comma-separated exception class names or dotted paths, e.g. 'KeyError,myapp.errors.Retry'"
                )
        return tuple(names)

    @field_validator("sentry_environment", "sentry_release")
    @classmethod
    def _strip_sentry(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        # Sentry rejects releases and environments with newlines, slashes-only or over 200 characters.
        if not value or not value.isprintable() or len(value) > 200 or value in (".", ".."):
            raise ValueError("expected a printable, non-empty name of at most 200 characters")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_level(cls, value: Any) -> Any:
        normalized = str(value).strip().upper()
        if normalized == "WARN":
            normalized = "WARNING"
        if normalized not in LOG_LEVELS:
            raise ValueError("expected one of " + ", ".join(LOG_LEVELS))
        return normalized

    @field_validator(
        "otlp_timeout_ms",
        "otlp_traces_timeout_ms",
        "otlp_metrics_timeout_ms",
        "otlp_logs_timeout_ms",
        "bsp_schedule_delay_ms",
        "bsp_export_timeout_ms",
        "bsp_max_queue_size",
        "bsp_max_export_batch_size",
        "metric_export_interval_ms",
        "metric_export_timeout_ms",
        "attribute_value_length_limit",
        "span_attribute_value_length_limit",
        "attribute_count_limit",
        "span_attribute_count_limit",
        "span_event_count_limit",
        "span_link_count_limit",
        mode="before",
    )
    @classmethod
    def _check_positive_int(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            number = 0
        if isinstance(value, bool) or number <= 0:
            raise ValueError("expected a whole number greater than 0")
        return number

    @field_validator("shutdown_timeout_s", "health_timeout_s", mode="before")
    @classmethod
    def _check_positive_float(cls, value: Any) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not number > 0 or math.isinf(number):
            raise ValueError("expected a number of seconds greater than 0")
        return number

    @field_validator("health_live_path", "health_ready_path", "health_deep_path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("/") or len(value) < 2 or not value.isprintable() or any(c in value for c in " ?#{}"):
            raise ValueError("expected a URL path starting with '/', without spaces, query or braces: /health/ready")
        return value.rstrip("/") or value

    @field_validator("health_cache_s", mode="before")
    @classmethod
    def _check_non_negative_float(cls, value: Any) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not number >= 0 or math.isinf(number):
            raise ValueError("expected a number of seconds, 0 or more")
        return number

    @field_validator("service_name", "service_version", "environment")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or not value.isprintable() or len(value) > 255:
            raise ValueError("expected a printable, non-empty name of at most 255 characters")
        return value

    # --- metrics validators ----------------------------------------------------------------------------------------
    @field_validator("metrics_prefix", mode="before")
    @classmethod
    def _check_metrics_prefix(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip().rstrip("_")
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,63}", text):
            raise ValueError("expected a name of letters, digits and underscores starting with a letter, e.g. 'tvl'")
        return text

    @field_validator("metrics_max_series", mode="before")
    @classmethod
    def _check_max_series(cls, value: Any) -> Any:
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            number = 0
        if isinstance(value, bool) or not 1 <= number <= 1_000_000:
            raise ValueError("expected a whole number from 1 to 1000000 (label sets per instrument)")
        return number

    @field_validator("metrics_path", mode="before")
    @classmethod
    def _check_metrics_path(cls, value: Any) -> Any:
        text = str(value).strip()
        if not text.startswith("/") or not text.isprintable() or " " in text or "?" in text:
            raise ValueError("expected a URL path starting with '/', e.g. /metrics")
        return text

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _check_metrics_port(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            number = -1
        if isinstance(value, bool) or not 0 <= number <= 65535:
            raise ValueError("expected a TCP port from 0 to 65535 (0 picks a free one)")
        return number

    @field_validator("prometheus_multiproc_dir", mode="before")
    @classmethod
    def _check_multiproc_dir(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip()
        if not os.path.isdir(text) or not os.access(text, os.W_OK):
            raise ValueError("expected an existing, writable directory (create it before the server starts)")
        return text

    @model_validator(mode="after")
    def _fill_from_resource_and_preset(self) -> Self:
        # frozen model: fill derived values once, here, through object.__setattr__
        attrs = self.resource_attributes
        if self.service_name is None:
            object.__setattr__(self, "service_name", attrs.get("service.name", "unknown_service:python"))
        if self.service_version is None and "service.version" in attrs:
            object.__setattr__(self, "service_version", attrs["service.version"])
        if self.environment is None:
            env = attrs.get("deployment.environment.name") or attrs.get("deployment.environment") or "development"
            object.__setattr__(self, "environment", env)
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        health_paths = [self.health_live_path, self.health_ready_path, self.health_deep_path]
        if len(set(health_paths)) < len(health_paths):
            raise ValueError(
                "SIGNALFIRE_HEALTH_LIVE_PATH, SIGNALFIRE_HEALTH_READY_PATH and SIGNALFIRE_HEALTH_DEEP_PATH must differ "
                f"(got {', '.join(health_paths)})"
            )
        if self.bsp_max_export_batch_size > self.bsp_max_queue_size:
            raise ValueError(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({self.bsp_max_export_batch_size}) must not exceed "
                f"OTEL_BSP_MAX_QUEUE_SIZE ({self.bsp_max_queue_size})"
            )
        return self

    @field_validator("excluded_paths", mode="before")
    @classmethod
    def _parse_paths(cls, value: Any) -> Any:
        items = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
        items = [p for p in items if p]
        if [p.lower() for p in items] == ["none"]:
            return ()
        for item in items:
            if not item.startswith("/") or "*" in item[:-1]:
                raise ValueError("expected comma-separated paths starting with /, a trailing * for a prefix, or none")
        return tuple(items)

    @field_validator("auto_instrument", mode="before")
    @classmethod
    def _parse_auto_instrument(cls, value: Any) -> Any:
        items = [p.strip().lower() for p in value.split(",")] if isinstance(value, str) else list(value)
        items = [p for p in items if p]
        if items == ["none"]:
            return ()
        for item in items:
            if item not in AUTO_INSTRUMENTABLE:
                raise ValueError("expected a comma-separated list of " + ", ".join(AUTO_INSTRUMENTABLE) + ", or none")
        return tuple(dict.fromkeys(items))

    @field_validator("excluded_urls", mode="before")
    @classmethod
    def _parse_url_patterns(cls, value: Any) -> Any:
        items = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
        items = [p for p in items if p]
        for item in items:
            try:
                re.compile(item)
            except re.error as exc:
                raise ValueError(f"expected comma-separated regular expressions ({item!r}: {exc})") from None
        return tuple(items)

    @field_validator(
        "http_capture_headers_server_request",
        "http_capture_headers_server_response",
        "http_capture_headers_sanitize_fields",
        mode="before",
    )
    @classmethod
    def _parse_header_patterns(cls, value: Any) -> Any:
        items = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
        items = [p for p in items if p]
        for item in items:
            try:
                re.compile(item)
            except re.error as exc:
                raise ValueError(f"expected comma-separated regular expressions ({item!r}: {exc})") from None
        return tuple(items)

    @field_validator("http_known_methods", mode="before")
    @classmethod
    def _parse_known_methods(cls, value: Any) -> Any:
        if value is None:
            return None
        items = [p.strip() for p in value.split(",")] if isinstance(value, str) else [str(p).strip() for p in value]
        items = [p for p in items if p]
        for item in items:
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]{1,32}", item):
                raise ValueError("expected comma-separated HTTP method names such as GET,POST,PURGE")
        return tuple(dict.fromkeys(items))

    @field_validator("semconv_stability_opt_in", mode="before")
    @classmethod
    def _parse_semconv_opt_in(cls, value: Any) -> Any:
        items = [p.strip().lower() for p in value.split(",")] if isinstance(value, str) else list(value)
        return tuple(dict.fromkeys(p for p in items if p))

    @field_validator("server_request_hook", "server_response_hook", mode="before")
    @classmethod
    def _resolve_hook(cls, value: Any) -> Any:
        if value is None or callable(value):
            return value
        if isinstance(value, str) and value.strip():
            module, sep, name = value.strip().partition(":")
            if not sep or not module or not name:
                raise ValueError("expected a callable, or 'package.module:function'")
            import importlib

            try:
                found = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"expected 'package.module:function' naming a function ({exc})") from None
            if not callable(found):
                raise ValueError(f"expected 'package.module:function' naming a function ({value} is not callable)")
            return found
        raise ValueError("expected a callable, or 'package.module:function'")

    # --- validators: logs, request correlation and the scrubber ------------------------------------------------------
    @field_validator("log_format", mode="before")
    @classmethod
    def _check_log_format(cls, value: Any) -> Any:
        if value is None:
            return None
        normalized = str(value).strip().lower()
        if normalized not in LOG_FORMATS:
            raise ValueError("expected " + " or ".join(LOG_FORMATS))
        return normalized

    @field_validator("log_levels", mode="before")
    @classmethod
    def _check_log_levels(cls, value: Any) -> Any:
        pairs = parse_key_values(value, "logger=LEVEL") if isinstance(value, str) else dict(value)
        levels: dict[str, str] = {}
        for name, level in pairs.items():
            normalized = str(level).strip().upper()
            normalized = "WARNING" if normalized == "WARN" else normalized
            if normalized not in LOG_LEVELS:
                raise ValueError(
                    f"expected logger=LEVEL pairs with LEVEL one of {', '.join(LOG_LEVELS)} (got {name}={level})"
                )
            levels[name] = normalized
        return levels

    @field_validator("scrub_keys", "scrub_allow_keys", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        names = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(n).strip() for n in names if str(n).strip())

    @field_validator("request_id_header", mode="before")
    @classmethod
    def _check_header_name(cls, value: Any) -> Any:
        name = str(value).strip()
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]{1,64}", name):
            raise ValueError("expected an HTTP header name such as X-Request-ID")
        return name

    @field_validator("access_log_sample_rate", mode="before")
    @classmethod
    def _check_access_ratio(cls, value: Any) -> Any:
        try:
            ratio = float(value)
        except (TypeError, ValueError):
            ratio = math.nan
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("expected a number from 0 to 1 (the share of requests logged)")
        return ratio

    @field_validator("access_log_slow_ms", mode="before")
    @classmethod
    def _check_slow_ms(cls, value: Any) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not number >= 0 or math.isinf(number):
            raise ValueError("expected a number of milliseconds, 0 or more")
        return number

    # --- derived values --------------------------------------------------------------------------------------------
    @property
    def preset(self) -> str:
        """The preset the environment selects: ``development`` or ``production``."""
        return "development" if (self.environment or "").lower() in DEVELOPMENT_ENVIRONMENTS else "production"

    @property
    def active(self) -> bool:
        """False when OTEL_SDK_DISABLED=true or OTEL_ENABLED=false."""
        return self.enabled and not self.sdk_disabled

    @property
    def sources(self) -> Mapping[str, Source]:
        """Where each field's value came from: argument, environment, preset or default."""
        return dict(self._sources)

    def otlp_target(self, signal: Signal) -> OtlpTarget | None:
        """The OTLP destination for one signal, or None when no endpoint is configured for it.

        A per-signal endpoint is used as given; the generic one gets ``/v1/<signal>`` appended for http/protobuf, as
        the specification says. An exporter list that names ``otlp`` without any endpoint uses the specification's
        default (localhost:4317 for grpc, localhost:4318 for http/protobuf).
        """
        protocol: str = getattr(self, f"otlp_{signal}_protocol") or self.otlp_protocol
        endpoint: str | None = getattr(self, f"otlp_{signal}_endpoint")
        if endpoint is None:
            base = self.otlp_endpoint
            if base is None and "otlp" in (getattr(self, f"{signal}_exporter") or ()):
                base = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
            if base is None:
                return None
            endpoint = base if protocol == "grpc" else base.rstrip("/") + f"/v1/{signal}"
        headers = getattr(self, f"otlp_{signal}_headers")
        timeout_ms = getattr(self, f"otlp_{signal}_timeout_ms") or self.otlp_timeout_ms
        return OtlpTarget(
            endpoint=endpoint,
            protocol=protocol,
            headers=dict(self.otlp_headers if headers is None else headers),
            timeout_s=timeout_ms / 1000,
            compression=self.otlp_compression,
        )

    def batch_options(self) -> BatchOptions:
        """OTEL_BSP_* as the keyword arguments both the SDK's BatchSpanProcessor and BatchLogRecordProcessor take."""
        return BatchOptions(
            max_queue_size=self.bsp_max_queue_size,
            schedule_delay_millis=self.bsp_schedule_delay_ms,
            max_export_batch_size=self.bsp_max_export_batch_size,
            export_timeout_millis=self.bsp_export_timeout_ms,
        )

    def exporters(self, signal: Signal) -> tuple[str, ...]:
        """The exporters in effect for a signal after defaults: the explicit list, else otlp when an endpoint is set.

        Logs are the exception: every line already goes to stdout, so they are exported over OTLP only when asked for
        (OTEL_LOGS_EXPORTER=otlp, or an endpoint of their own in OTEL_EXPORTER_OTLP_LOGS_ENDPOINT), not merely because
        traces have an endpoint — an OTLP record per access line would cost more than the rest of the request path.
        """
        explicit: tuple[str, ...] | None = getattr(self, f"{signal}_exporter")
        if explicit is not None:
            return tuple(n for n in explicit if n != "none")
        if signal == "logs":
            return ("otlp",) if self.otlp_logs_endpoint is not None else ()
        if self.otlp_target(signal) is not None:
            return ("otlp",)
        if signal == "traces" and self.preset == "development":
            return ("console",)
        return ()

    # --- construction ----------------------------------------------------------------------------------------------
    def __init__(self, **values: Any) -> None:
        """Keyword arguments (a field's name or one of its variables' names, in any case), then the environment.

        A field takes its first variable that is set and not empty (the OpenTelemetry specification treats an empty
        variable as unset); variable names are matched case-insensitively. Values are validated as given: the list
        and ``key=value`` fields parse their text in their own validators, nothing is decoded as JSON.
        """
        data = _keyword_arguments(values)
        environ = _environment()
        for field, names in _lookup().env_names.items():
            if field not in data:
                for name in names:
                    found = environ.get(name)
                    if found is not None:
                        data[field] = found[1]
                        break
        super().__init__(**data)

    @classmethod
    def resolve(cls, **overrides: Any) -> Self:
        """Build the settings from keyword overrides and the environment, or raise ConfigurationError.

        >>> Settings.resolve(service_name="checkout").service_name
        'checkout'
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ConfigurationError(
                "; ".join(f"init_observability({name}=...) is not a setting" for name in unknown)
                + ". Accepted keyword arguments are the fields of signalfire.Settings."
            )
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, overrides)) from None
        sources: dict[str, Source] = {}
        preset_fields = PRESETS[settings.preset]
        environ = _environment()
        for name in cls.model_fields:
            if name in overrides:
                sources[name] = "argument"
            elif _env_name_set(name, environ) is not None:
                sources[name] = "environment"
            elif name in preset_fields:
                sources[name] = "preset"
            else:
                sources[name] = "default"
        settings._sources.update(sources)
        return settings

    def __eq__(self, other: object) -> bool:
        # Equal configuration is what matters for idempotent init; where each value came from does not.
        if not isinstance(other, Settings):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.model_dump().items())))


def env_names(field: str) -> tuple[str, ...]:
    """The environment variables that set a field, first one wins."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (str(alias),) if alias else ()


@dataclass(frozen=True, slots=True)
class _Lookup:
    env_names: dict[str, tuple[str, ...]]  # field -> its variables' lower-case names, first one wins
    keywords: dict[str, tuple[str, int]]  # lower-case field or variable name -> (field, rank: lower wins)


@functools.cache
def _lookup() -> _Lookup:
    env = {field: tuple(name.lower() for name in env_names(field)) for field in Settings.model_fields}
    keywords: dict[str, tuple[str, int]] = {}
    for field, names in env.items():
        for rank, name in enumerate((*names, field.lower())):
            keywords.setdefault(name, (field, rank))
    return _Lookup(env, keywords)


def _keyword_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments by field name; a field named twice (name and variable) takes its first variable's value."""
    data: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    keywords = _lookup().keywords
    for key, value in values.items():
        field, rank = keywords.get(key.lower(), (key, 0))  # not a setting: kept, for pydantic to reject
        if field not in ranks or rank < ranks[field]:
            data[field], ranks[field] = value, rank
    return data


def _environment() -> dict[str, tuple[str, str]]:
    """The non-empty environment variables by lower-case name: (the name as set, its value)."""
    return {k.lower(): (k, v) for k, v in os.environ.items() if v != ""}


def _env_name_set(field: str, environ: Mapping[str, tuple[str, str]] | None = None) -> str | None:
    lowered = _environment() if environ is None else environ
    for name in _lookup().env_names[field]:
        if name in lowered:
            return lowered[name][0]
    return None


# pydantic's own wording for the built-in types, said the way the rest of the messages say it
_TYPE_REASONS = {
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "float_parsing": "expected a number",
    "int_parsing": "expected a whole number",
    "string_type": "expected a string",
}
_CLEAN_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def _describe(exc: ValidationError, overrides: Mapping[str, Any]) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        field = str(loc[0]) if loc else ""  # Settings() passes every value by field name
        reason = _TYPE_REASONS.get(error["type"]) or _CLEAN_PREFIX.sub("", error["msg"])
        if field in overrides:
            lines.append(f"init_observability({field}={overrides[field]!r}) is not accepted: {reason}")
        elif field in Settings.model_fields:
            variable = _env_name_set(field) or (env_names(field) or (field,))[0]
            value = os.environ.get(variable, error.get("input"))
            lines.append(f"{variable}={value!r} is not accepted: {reason}")
        else:  # a model-level check, whose message already names its variables
            lines.append(reason)
    return "invalid signalfire configuration:\n  " + "\n  ".join(lines)
