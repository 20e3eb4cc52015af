"""Settings: the one place that reads the environment.

Resolution order, highest first: keyword arguments to ``init_observability()`` > the file OTEL_CONFIG_FILE names (when
set) > environment variables > a ``.env`` file > a secrets directory (when configured) > the preset of the deployment
environment > field defaults. Standard ``OTEL_*`` variables mean what the OpenTelemetry specification
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
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, Self, TypedDict
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["ConfigurationError", "OtlpTarget", "Settings"]

Signal = Literal["traces", "metrics", "logs"]
# Where a value came from, highest precedence first ("env file" is a .env file, "secrets dir" a secrets directory).
Source = Literal["argument", "config file", "environment", "env file", "secrets dir", "preset", "default"]

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
# The environment when no variable names one; init_observability() then logs one warning and `signalfire doctor` flags
# it. Development, so a first local run shows its spans and readable logs; docs/settings.md gives the reasons.
DEFAULT_ENVIRONMENT = "development"

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


# --- rules shared by several fields: annotated types, each with the message a rejected value gets --------------------
# A field declares one as its type (``otlp_timeout_ms: PositiveInt = Field(...)``); the rule runs before pydantic's own
# type check, on the text as it came from the environment or the value as given.
def _positive_int(value: Any) -> Any:
    if value is None:
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValueError("expected a whole number greater than 0")
    return number


def _positive_seconds(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number > 0 or math.isinf(number):
        raise ValueError("expected a number of seconds greater than 0")
    return number


def ratio(what: str, *, optional: bool = False, strict: bool = False) -> BeforeValidator:
    """A number from 0 to 1 (NaN refused); ``what`` names it in the message; ``strict`` also refuses true/false."""

    def check(value: Any) -> Any:
        if optional and value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if (strict and isinstance(value, bool)) or not 0.0 <= number <= 1.0:
            raise ValueError(f"expected a number from 0 to 1 ({what})")
        return number

    return BeforeValidator(check)


def name(max_length: int, *, no_dots: bool = False) -> AfterValidator:
    """A printable, non-empty name (service, version, environment, Sentry release), stripped, at most so long;
    ``no_dots`` also refuses '.' and '..' (Sentry does)."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or not value.isprintable() or len(value) > max_length or (no_dots and value in (".", "..")):
            raise ValueError(f"expected a printable, non-empty name of at most {max_length} characters")
        return value

    return AfterValidator(check)


def _key_values(value: Any) -> Any:
    return parse_key_values(value, "key=value") if isinstance(value, str) else value  # pydantic checks the rest


def _protocol(value: Any) -> Any:
    if value is None:
        return None
    normalized = str(value).strip().lower()
    if normalized not in PROTOCOLS:
        raise ValueError("expected grpc or http/protobuf")
    return normalized


TEMPORALITY_PREFERENCES = ("cumulative", "delta", "lowmemory")
HISTOGRAM_AGGREGATIONS = ("explicit_bucket_histogram", "base2_exponential_bucket_histogram")


def _choice(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    """One of ``choices``, case-insensitive, surrounding blanks ignored (as the SDK reads these variables)."""

    def check(value: Any) -> Any:
        normalized = str(value).strip().lower()
        if normalized not in choices:
            raise ValueError("expected " + " or ".join(choices))
        return normalized

    return check


def _split_url(value: str) -> tuple[SplitResult, bool]:
    """``value`` split, and whether its port (if any) is valid; an unparseable value splits as the empty URL."""
    try:
        parts = urlsplit(value)
        return parts, parts.port is None or parts.port > 0
    except ValueError:
        return urlsplit(""), False


def _url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    parts, port_ok = _split_url(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or " " in value:
        raise ValueError("expected an http:// or https:// URL such as http://otel-collector:4318")
    return value


def _sequence(value: Any) -> list[str]:
    """A list field's value given as a list (an argument, a config file) rather than text; anything else is refused
    with a ValueError, so that it is reported as the setting's error rather than a TypeError from deep inside."""
    if isinstance(value, list | tuple | set | frozenset):
        return [item if isinstance(item, str) else str(item) for item in value]
    raise ValueError("expected a comma-separated list")


def _items(value: Any, *, lower: bool = False) -> list[str]:
    """A list setting's items: comma-separated text or a list, each item stripped (and lower-cased when the names are
    case-insensitive), empty ones dropped."""
    items = value.split(",") if isinstance(value, str) else _sequence(value)
    stripped = (item.strip() for item in items)
    return [item.lower() if lower else item for item in stripped if item]


def _regular_expressions(value: Any) -> tuple[str, ...]:
    """Comma-separated (or listed) regular expressions, each compiled once to reject a bad one here, not at runtime.

    A pattern the ``re`` module only warns about (``[[a]``: a possible nested set) is rejected too: it would warn
    again, or change meaning, when the patterns are combined."""
    items = _items(value)
    for item in items:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", FutureWarning)
                re.compile(item)
        except (re.error, FutureWarning) as exc:
            raise ValueError(f"expected comma-separated regular expressions ({item!r}: {exc})") from None
    return tuple(items)


def _mapping(value: Any) -> dict[Any, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueError("expected comma-separated key=value pairs")


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
OptionalPositiveInt = Annotated[int | None, BeforeValidator(_positive_int)]
Seconds = Annotated[float, BeforeValidator(_positive_seconds)]
Name = Annotated[str | None, name(255)]
SentryName = Annotated[str | None, name(200, no_dots=True)]  # Sentry rejects releases and environments of only dots
SampleRate = Annotated[float, ratio("the share of transactions sampled", strict=True)]
KeyValues = Annotated[dict[str, str], BeforeValidator(_key_values)]
OptionalKeyValues = Annotated[dict[str, str] | None, BeforeValidator(_key_values)]
Protocol = Annotated[str, BeforeValidator(_protocol)]
OptionalProtocol = Annotated[str | None, BeforeValidator(_protocol)]
Url = Annotated[str | None, AfterValidator(_url)]


class Settings(BaseSettings):
    """All of signalfire's configuration, resolved once by :func:`signalfire.init_observability`.

    A pydantic-settings ``BaseSettings``: each field documents its environment variables, first one wins. Pass a field
    name as a keyword argument to ``init_observability`` to override the environment::

        signalfire.init_observability(service_name="checkout", traces_sampler_arg=0.25)

    or build one yourself (``Settings(_env_file=".env", _secrets_dir="/run/secrets")``, a subclass with its own
    ``model_config``, or a field of your application's settings) and pass it as ``init_observability(settings=...)``.

    Declaring a field: ``name: type = Field(default, validation_alias=_env("VARIABLE", "ALIAS"), description="...")``,
    one ``_env(...)`` naming every variable that sets it, first one wins (the variables are the only names read from
    the environment, a .env file and a secrets directory; the field name alone is not a variable). Values arrive as
    text and are never JSON-decoded: a list or ``key=value`` field parses its text in a ``mode="before"`` validator.
    A rule several fields share is an annotated type declared above the class (``PositiveInt``, ``Seconds``,
    ``ratio("...")``, ``Name``, ``KeyValues``, ``Protocol``, ``Url``); a field's own rule is a ``field_validator``.
    A field whose default is None may take a value from ``PRESETS``.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="forbid",
        validate_default=False,
        case_sensitive=False,
        env_ignore_empty=True,  # the OpenTelemetry specification treats an empty variable as unset
        enable_decoding=False,  # list and key=value fields parse their own text (OTEL_RESOURCE_ATTRIBUTES=a=b,c=d)
    )

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
    config_file: str | None = Field(
        None,
        validation_alias=_env("OTEL_CONFIG_FILE"),
        description="OTEL_CONFIG_FILE. An OpenTelemetry declarative configuration file (YAML or JSON; needs "
        'pip install "signalfire[config]"). When set it configures exporters, sampler, batching, limits, resource and '
        "propagators, the OTEL_* variables it covers are ignored (as the specification says), and signalfire's own "
        "settings may be given under distribution.signalfire. Keyword arguments still win.",
    )
    service_name: Name = Field(
        None,
        validation_alias=_env("OTEL_SERVICE_NAME", "SIGNALFIRE_SERVICE_NAME"),
        description="OTEL_SERVICE_NAME. Default: service.name from OTEL_RESOURCE_ATTRIBUTES, else "
        "'unknown_service:python'.",
    )
    service_version: Name = Field(
        None,
        validation_alias=_env("SIGNALFIRE_SERVICE_VERSION", "OTEL_SERVICE_VERSION", "APP_VERSION", "GIT_SHA"),
        description="SIGNALFIRE_SERVICE_VERSION / OTEL_SERVICE_VERSION / APP_VERSION / GIT_SHA. Default: "
        "service.version from OTEL_RESOURCE_ATTRIBUTES, else unset.",
    )
    environment: Name = Field(
        None,
        validation_alias=_env("SIGNALFIRE_ENVIRONMENT", "ENVIRONMENT", "DEPLOYMENT_ENVIRONMENT"),
        description="SIGNALFIRE_ENVIRONMENT / ENVIRONMENT / DEPLOYMENT_ENVIRONMENT. Free-form; development, dev, "
        "local, test and testing take the development preset, every other name the production preset. Default: "
        "deployment.environment.name (or deployment.environment) from OTEL_RESOURCE_ATTRIBUTES, else "
        "SENTRY_ENVIRONMENT, else 'development', with a start-up warning saying so (see docs/settings.md).",
    )
    resource_attributes: KeyValues = Field(
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
    otlp_endpoint: Url = Field(
        None,
        validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTEL_EXPORTER_OTLP_ENDPOINT. Base URL; for http/protobuf /v1/<signal> is appended.",
    )
    otlp_traces_endpoint: Url = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    otlp_metrics_endpoint: Url = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
    otlp_logs_endpoint: Url = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"))
    otlp_protocol: Protocol = Field(
        "http/protobuf",
        validation_alias=_env("OTEL_EXPORTER_OTLP_PROTOCOL"),
        description="OTEL_EXPORTER_OTLP_PROTOCOL: grpc or http/protobuf (the specification's default).",
    )
    otlp_traces_protocol: OptionalProtocol = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
    otlp_metrics_protocol: OptionalProtocol = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"))
    otlp_logs_protocol: OptionalProtocol = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"))
    otlp_headers: KeyValues = Field(
        default_factory=dict,
        validation_alias=_env("OTEL_EXPORTER_OTLP_HEADERS"),
        description="OTEL_EXPORTER_OTLP_HEADERS. key=value pairs sent with every export (e.g. an API key).",
    )
    otlp_traces_headers: OptionalKeyValues = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_HEADERS"))
    otlp_metrics_headers: OptionalKeyValues = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_HEADERS"))
    otlp_logs_headers: OptionalKeyValues = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_HEADERS"))
    otlp_timeout_ms: PositiveInt = Field(
        10_000,
        validation_alias=_env("OTEL_EXPORTER_OTLP_TIMEOUT"),
        description="OTEL_EXPORTER_OTLP_TIMEOUT, in milliseconds as the specification says.",
    )
    otlp_traces_timeout_ms: OptionalPositiveInt = Field(
        None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
    )
    otlp_metrics_timeout_ms: OptionalPositiveInt = Field(
        None, validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")
    )
    otlp_logs_timeout_ms: OptionalPositiveInt = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"))
    otlp_compression: str | None = Field(
        None,
        validation_alias=_env("OTEL_EXPORTER_OTLP_COMPRESSION"),
        description="OTEL_EXPORTER_OTLP_COMPRESSION: gzip or none.",
    )
    otlp_metrics_temporality_preference: Annotated[str, BeforeValidator(_choice(TEMPORALITY_PREFERENCES))] = Field(
        "cumulative",
        validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"),
        description="OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: cumulative, delta (counters and histograms "
        "report the change since the last export) or lowmemory (as delta, but observable counters cumulative).",
    )
    otlp_metrics_default_histogram_aggregation: Annotated[str, BeforeValidator(_choice(HISTOGRAM_AGGREGATIONS))] = (
        Field(
            "explicit_bucket_histogram",
            validation_alias=_env("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"),
            description="OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION: explicit_bucket_histogram or "
            "base2_exponential_bucket_histogram, for the OpenTelemetry SDK's histograms exported over OTLP.",
        )
    )

    # --- sampling and batching -------------------------------------------------------------------------------------
    traces_sampler: str = Field(
        "parentbased_traceidratio",
        validation_alias=_env("OTEL_TRACES_SAMPLER"),
        description="OTEL_TRACES_SAMPLER: " + ", ".join(SAMPLERS) + ".",
    )
    traces_sampler_arg: Annotated[float | None, ratio("the sampling ratio", optional=True)] = Field(
        None,
        validation_alias=_env("OTEL_TRACES_SAMPLER_ARG"),
        description="OTEL_TRACES_SAMPLER_ARG: the sampling ratio, 0 to 1. Preset: 1.0 in development, 0.1 in "
        "production.",
    )
    bsp_schedule_delay_ms: PositiveInt = Field(5_000, validation_alias=_env("OTEL_BSP_SCHEDULE_DELAY"))
    bsp_export_timeout_ms: PositiveInt = Field(30_000, validation_alias=_env("OTEL_BSP_EXPORT_TIMEOUT"))
    bsp_max_queue_size: PositiveInt = Field(2_048, validation_alias=_env("OTEL_BSP_MAX_QUEUE_SIZE"))
    bsp_max_export_batch_size: PositiveInt = Field(512, validation_alias=_env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"))
    # span limits: standard meaning, every value passed explicitly (the SDK would otherwise read the environment)
    attribute_value_length_limit: PositiveInt = Field(
        4096,
        validation_alias=_env("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        description="OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, the longest attribute value kept, in characters (longer "
        "strings are truncated). signalfire's default is 4096 rather than unlimited: a hostile header or query "
        "string never makes an unbounded span.",
    )
    span_attribute_value_length_limit: OptionalPositiveInt = Field(
        None,
        validation_alias=_env("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        description="OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, the same for span attributes only; default: "
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT.",
    )
    attribute_count_limit: PositiveInt = Field(
        128,
        validation_alias=_env("OTEL_ATTRIBUTE_COUNT_LIMIT"),
        description="OTEL_ATTRIBUTE_COUNT_LIMIT, the most attributes kept per span, event and link (further ones are "
        "dropped).",
    )
    span_attribute_count_limit: OptionalPositiveInt = Field(
        None,
        validation_alias=_env("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"),
        description="OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, the same for span attributes only; default: "
        "OTEL_ATTRIBUTE_COUNT_LIMIT.",
    )
    span_event_count_limit: PositiveInt = Field(
        128,
        validation_alias=_env("OTEL_SPAN_EVENT_COUNT_LIMIT"),
        description="OTEL_SPAN_EVENT_COUNT_LIMIT, the most events kept per span.",
    )
    span_link_count_limit: PositiveInt = Field(
        128,
        validation_alias=_env("OTEL_SPAN_LINK_COUNT_LIMIT"),
        description="OTEL_SPAN_LINK_COUNT_LIMIT, the most links kept per span.",
    )
    metric_export_interval_ms: PositiveInt = Field(
        60_000,
        validation_alias=_env("OTEL_METRIC_EXPORT_INTERVAL"),
        description="OTEL_METRIC_EXPORT_INTERVAL, milliseconds between OTLP metric pushes.",
    )
    metric_export_timeout_ms: PositiveInt = Field(30_000, validation_alias=_env("OTEL_METRIC_EXPORT_TIMEOUT"))

    # --- lifecycle -------------------------------------------------------------------------------------------------
    shutdown_timeout_s: Seconds = Field(
        5.0,
        validation_alias=_env("SIGNALFIRE_SHUTDOWN_TIMEOUT"),
        description="SIGNALFIRE_SHUTDOWN_TIMEOUT, seconds the whole exit may spend flushing and closing: one budget "
        "shared by lifespan shutdown, SIGTERM, atexit and shutdown().",
    )
    handle_sigterm: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_HANDLE_SIGTERM"),
        description="SIGNALFIRE_HANDLE_SIGTERM. Flush on SIGTERM, then run the handler that was there before.",
    )

    # --- logs, request correlation and the scrubber (_logging.py, _scrub/_policy.py) ----------------------------------
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
    log_root_handlers: str = Field(
        "keep",
        validation_alias=_env("SIGNALFIRE_LOG_ROOT_HANDLERS"),
        description="SIGNALFIRE_LOG_ROOT_HANDLERS: keep (the default: handlers the application put on the root logger "
        "go on receiving every record, beside signalfire's rendering) or replace (signalfire's rendering only; console "
        "handlers are removed and given back at shutdown).",
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
        True,
        validation_alias=_env("SIGNALFIRE_SCRUB_EMAILS"),
        description="SIGNALFIRE_SCRUB_EMAILS: redact email addresses, in every signal alike (logs, spans, metrics, "
        "Sentry events); false keeps them everywhere.",
    )
    scrub_phones: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_SCRUB_PHONES"),
        description="SIGNALFIRE_SCRUB_PHONES: redact phone numbers, in every signal alike; false keeps them "
        "everywhere.",
    )
    scrub_max_length: int = Field(
        65_536,
        validation_alias=_env("SIGNALFIRE_SCRUB_MAX_LENGTH"),
        description="SIGNALFIRE_SCRUB_MAX_LENGTH: the longest string the scrubber reads, in characters (a log value, "
        "a query string, a Sentry field); the rest is cut and replaced by [TRUNCATED] before any pattern runs, and "
        'counted in signalfire_telemetry_dropped_total{signal="scrub",reason="truncated"}. Span attributes are '
        "cut to OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT first.",
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
    access_log_sample_rate: Annotated[float, ratio("the share of requests logged")] = Field(
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
    sentry_environment: SentryName = Field(
        None,
        validation_alias=_env("SENTRY_ENVIRONMENT"),
        description="SENTRY_ENVIRONMENT. Default: the service's environment (SIGNALFIRE_ENVIRONMENT / ENVIRONMENT).",
    )
    sentry_release: SentryName = Field(
        None,
        validation_alias=_env("SENTRY_RELEASE"),
        description="SENTRY_RELEASE. Default: the service version (SIGNALFIRE_SERVICE_VERSION / APP_VERSION / "
        "GIT_SHA).",
    )
    sentry_traces_sample_rate: SampleRate = Field(
        0.0,
        validation_alias=_env("SENTRY_TRACES_SAMPLE_RATE"),
        description="SENTRY_TRACES_SAMPLE_RATE, 0 to 1. Default 0: OpenTelemetry owns tracing and Sentry starts no "
        "transactions, spans or sentry-trace headers. Above 0 Sentry traces too (a second set of traces).",
    )
    sentry_profiles_sample_rate: SampleRate = Field(
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
    metrics_on_app: bool = Field(
        True,
        validation_alias=_env("SIGNALFIRE_METRICS_ON_APP"),
        description="SIGNALFIRE_METRICS_ON_APP. false: the instrumented app does not answer SIGNALFIRE_METRICS_PATH; "
        "with SIGNALFIRE_METRICS_PORT the exposition is then served only on its own port, off the public one.",
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

    # --- HTTP middleware and integrations (_web/_http.py, integrations/) ----------------------------------------------
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
    fastapi_operation_spans: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_FASTAPI_OPERATION_SPANS"),
        description="SIGNALFIRE_FASTAPI_OPERATION_SPANS. true keeps FastAPI's own operation spans (FastAPI >= 0.142: "
        "fastapi.dependencies, fastapi.endpoint, fastapi.serialization, fastapi.background_task) as children of "
        "signalfire's server span; by default FastAPI's native telemetry records nothing.",
    )
    fastapi_otel_auto_configure: bool = Field(
        False,
        validation_alias=_env("FASTAPI_OTEL_AUTO_CONFIGURE"),
        description="FASTAPI_OTEL_AUTO_CONFIGURE, as FastAPI (>= 0.143) reads it: true asks FastAPI to add its own "
        "OTLP exporters at start-up. signalfire's providers do not take them (they would export every span twice, "
        "unscrubbed); the start-up report and signalfire doctor say so.",
    )
    redis_capture_args: bool = Field(
        False,
        validation_alias=_env("SIGNALFIRE_REDIS_CAPTURE_ARGS"),
        description="SIGNALFIRE_REDIS_CAPTURE_ARGS. true puts the redis command's key (scrubbed) in db.statement, "
        "never a value nor an argument of AUTH, HELLO, CONFIG, ACL or MIGRATE; by default only the command and '?' "
        "placeholders are recorded.",
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
    health_timeout_s: Seconds = Field(
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

    # Where each field's value came from, filled by __init__ and read by `signalfire doctor`; the parsed
    # OTEL_CONFIG_FILE (an opentelemetry.configuration model), for what no field expresses (propagators).
    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)
    # Values of secret-named environment variables and passwords of URLs in the environment, read once with the rest
    # of the environment; the scrubber redacts them wherever they appear (not a field: never shown or compared).
    _secret_values: tuple[str, ...] = PrivateAttr(default_factory=lambda: secret_environment_values(os.environ))
    _config_file: Any = PrivateAttr(default=None)

    # --- validators ------------------------------------------------------------------------------------------------

    @field_validator("traces_exporter", "metrics_exporter", "logs_exporter", mode="before")
    @classmethod
    def _parse_exporters(cls, value: Any, info: Any) -> Any:
        signal: Signal = info.field_name.removesuffix("_exporter")
        names = _items(value, lower=True)
        accepted = EXPORTERS[signal]
        for name in names:
            if name not in accepted:
                raise ValueError(f"expected a comma-separated list of {', '.join(accepted)}")
        if "none" in names and len(names) > 1:
            raise ValueError("'none' cannot be combined with another exporter")
        return tuple(names)

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

    @field_validator("sentry_dsn")
    @classmethod
    def _check_dsn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts, port_ok = _split_url(value)
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

    @field_validator("sentry_ignore_errors", mode="before")
    @classmethod
    def _parse_error_names(cls, value: Any) -> Any:
        names = _items(value)
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(
                    "expected comma-separated exception class names or dotted paths, e.g. 'KeyError,myapp.errors.Retry'"
                )
        return tuple(names)

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_level(cls, value: Any) -> Any:
        normalized = str(value).strip().upper()
        if normalized == "WARN":
            normalized = "WARNING"
        if normalized not in LOG_LEVELS:
            raise ValueError("expected one of " + ", ".join(LOG_LEVELS))
        return normalized

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
            env = (
                attrs.get("deployment.environment.name")
                or attrs.get("deployment.environment")
                or self.sentry_environment
                or DEFAULT_ENVIRONMENT
            )
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
        items = _items(value)
        if [p.lower() for p in items] == ["none"]:
            return ()
        for item in items:
            if not item.startswith("/") or "*" in item[:-1]:
                raise ValueError("expected comma-separated paths starting with /, a trailing * for a prefix, or none")
        return tuple(items)

    @field_validator("auto_instrument", mode="before")
    @classmethod
    def _parse_auto_instrument(cls, value: Any) -> Any:
        items = _items(value, lower=True)
        if items == ["none"]:
            return ()
        for item in items:
            if item not in AUTO_INSTRUMENTABLE:
                raise ValueError("expected a comma-separated list of " + ", ".join(AUTO_INSTRUMENTABLE) + ", or none")
        return tuple(dict.fromkeys(items))

    @field_validator("excluded_urls", mode="before")
    @classmethod
    def _parse_url_patterns(cls, value: Any) -> Any:
        return _regular_expressions(value)

    @field_validator(
        "http_capture_headers_server_request",
        "http_capture_headers_server_response",
        "http_capture_headers_sanitize_fields",
        mode="before",
    )
    @classmethod
    def _parse_header_patterns(cls, value: Any) -> Any:
        return _regular_expressions(value)

    @field_validator("http_known_methods", mode="before")
    @classmethod
    def _parse_known_methods(cls, value: Any) -> Any:
        if value is None:
            return None
        items = _items(value)
        for item in items:
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]{1,32}", item):
                raise ValueError("expected comma-separated HTTP method names such as GET,POST,PURGE")
        return tuple(dict.fromkeys(items))

    @field_validator("semconv_stability_opt_in", mode="before")
    @classmethod
    def _parse_semconv_opt_in(cls, value: Any) -> Any:
        return tuple(dict.fromkeys(_items(value, lower=True)))

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

    @field_validator("log_root_handlers", mode="before")
    @classmethod
    def _check_log_root_handlers(cls, value: Any) -> Any:
        normalized = str(value).strip().lower()
        if normalized not in ("keep", "replace"):
            raise ValueError("expected keep or replace")
        return normalized

    @field_validator("log_levels", mode="before")
    @classmethod
    def _check_log_levels(cls, value: Any) -> Any:
        pairs = parse_key_values(value, "logger=LEVEL") if isinstance(value, str) else _mapping(value)
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
        return tuple(_items(value))

    @field_validator("request_id_header", mode="before")
    @classmethod
    def _check_header_name(cls, value: Any) -> Any:
        name = str(value).strip()
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]{1,64}", name):
            raise ValueError("expected an HTTP header name such as X-Request-ID")
        return name

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

    @field_validator("scrub_max_length", mode="before")
    @classmethod
    def _check_scrub_max_length(cls, value: Any) -> Any:
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            number = 0
        if isinstance(value, bool) or number < 64:
            raise ValueError("expected a whole number of characters, at least 64")
        return number

    # --- derived values --------------------------------------------------------------------------------------------
    @property
    def secret_values(self) -> tuple[str, ...]:
        """The environment's secret values: variables named ``*_PASSWORD``, ``*_SECRET``, ``*_TOKEN``, ``*_API_KEY``,
        ``*_DSN``, ... and the passwords of URLs in any variable (``DATABASE_URL``); read when the settings were
        built."""
        return self._secret_values

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
        """Keyword arguments (a field's name or one of its variables' names, in any case), then pydantic-settings'
        sources (see :meth:`settings_customise_sources`), then presets and defaults; raises ConfigurationError.

        pydantic-settings' own keyword arguments (``_env_file``, ``_secrets_dir``, ...) are accepted as usual.
        """
        data = _keyword_arguments(values)
        resolution = _Resolution()
        token = _resolving.set(resolution)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, data, resolution)) from None
        finally:
            _resolving.reset(token)
        preset_fields = PRESETS[self.preset]
        for name in type(self).model_fields:
            source = resolution.sources.get(name)
            self._sources[name] = source or ("preset" if name in preset_fields else "default")
        self._config_file = resolution.config_file

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments > OTEL_CONFIG_FILE > environment > .env file > secrets directory, each recorded for ``sources``.

        A subclass that adds its own sources keeps source reporting by wrapping them in ``super()``'s result. A .env
        file's other variables (the application's) are left out rather than rejected; without a .env file or a
        secrets directory their sources are not called at all.
        """
        sources: list[PydanticBaseSettingsSource] = [_Recorded(init_settings, "argument", keep_unknown=True)]
        owned: frozenset[str] = frozenset()
        path = _config_file_path(init_settings, env_settings)
        if path is not None:
            sources.append(_ConfigFileSource(settings_cls, path))
            owned = file_owned_fields()
        sources.append(_Recorded(env_settings, "environment", drop=owned))
        if getattr(dotenv_settings, "env_vars", True):
            sources.append(_Recorded(dotenv_settings, "env file", drop=owned))
        if getattr(file_secret_settings, "secrets_dir", True) is not None:
            sources.append(_Recorded(file_secret_settings, "secrets dir", drop=owned))
        return tuple(sources)

    @classmethod
    def resolve(cls, **overrides: Any) -> Self:
        """Build the settings from keyword overrides and pydantic-settings' sources, or raise ConfigurationError.

        >>> Settings.resolve(service_name="checkout").service_name
        'checkout'
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ConfigurationError(
                "; ".join(f"init_observability({name}=...) is not a setting" for name in unknown)
                + ". Accepted keyword arguments are the fields of signalfire.Settings."
            )
        return cls(**overrides)

    def __eq__(self, other: object) -> bool:
        # Equal configuration is what matters for idempotent init; where each value came from does not.
        if not isinstance(other, Settings):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.model_dump().items())))


# The last word(s) of a variable name that says its value is a secret (PWD, the working directory, is not one).
_SECRET_VARIABLE = re.compile(
    r"(?:^|_)(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|SECRET_KEY|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|SECRET_ACCESS_KEY"
    r"|CREDENTIALS?|DSN|AUTH_TOKEN|WEBHOOK_SECRET|SIGNING_KEY|ENCRYPTION_KEY|MASTER_KEY|ACCOUNT_KEY)$",
    re.IGNORECASE,
)


def secret_environment_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values in an environment: whole values of secret-named variables (a URL among them gives its
    password only) and the password of a URL in any variable."""
    found: list[str] = []
    for name, raw in environ.items():
        value = raw.strip()
        if not value:
            continue
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.extend({password, unquote(password)})
            continue
        if _SECRET_VARIABLE.search(name) is not None:
            found.append(value)
    return tuple(found)


def env_names(field: str) -> tuple[str, ...]:
    """The environment variables that set a field, first one wins."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (str(alias),) if alias else ()


class _Lookup(NamedTuple):
    env_names: dict[str, tuple[str, ...]]  # field -> its variables' lower-case names, first one wins
    keywords: dict[str, tuple[str, int]]  # lower-case field or variable name -> (field, rank: lower wins)
    variables: dict[str, tuple[tuple[str, str], ...]]  # field -> (lower-case name, name as declared), first wins


@functools.cache
def _lookup() -> _Lookup:
    env = {field: tuple(name.lower() for name in env_names(field)) for field in Settings.model_fields}
    keywords: dict[str, tuple[str, int]] = {}
    for field, names in env.items():
        for rank, name in enumerate((*names, field.lower())):
            keywords.setdefault(name, (field, rank))
    variables = {field: tuple((name.lower(), name) for name in env_names(field)) for field in Settings.model_fields}
    return _Lookup(env, keywords, variables)


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


# --- sources: which one gave each value ------------------------------------------------------------------------------
class _Resolution:
    """What one Settings() learns while its sources run: the source of each field, the parsed OTEL_CONFIG_FILE.

    A plain class, not a dataclass: dataclasses compile their methods at import, which start-up pays for."""

    __slots__ = ("config_file", "config_path", "sources")

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        self.config_file: Any = None
        self.config_path: str | None = None


# Set by Settings.__init__ for the duration of its sources' calls (sources are built inside pydantic-settings).
_resolving: ContextVar[_Resolution | None] = ContextVar("signalfire_settings_resolving", default=None)


class _Recorded(PydanticBaseSettingsSource):
    """A pydantic-settings source that notes which fields it gave and gives none a higher source already gave.

    Unknown keys are dropped (a .env file's or secrets directory's other entries belong to the application), except
    from the arguments, where pydantic rejects them as a misspelt setting.
    """

    def __init__(
        self,
        inner: PydanticBaseSettingsSource,
        label: Source,
        *,
        drop: frozenset[str] = frozenset(),
        keep_unknown: bool = False,
    ) -> None:
        super().__init__(inner.settings_cls)
        self._inner, self._label, self._drop, self._keep_unknown = inner, label, drop, keep_unknown

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def _values(self) -> dict[str, Any]:
        """The inner source's values. For the environment and a .env file, signalfire's own fields are looked up
        directly (get_field_value): their text is never decoded, so pydantic-settings' per-field preparation, which
        inspects every annotation on every instantiation, only costs start-up time. A subclass's own fields get it."""
        inner = self._inner
        if not isinstance(inner, EnvSettingsSource):  # arguments, secrets directory
            return inner()
        own = Settings.model_fields
        data: dict[str, Any] = {}
        fast = not inner.case_sensitive and inner.config.get("env_prefix_target", "variable") == "variable"
        if fast:  # the variables by their lower-case names, as pydantic-settings keys env_vars when case-insensitive
            env_vars = inner.env_vars
            for variables in _lookup().variables.values():
                for lower, declared in variables:
                    value = env_vars.get(lower)
                    if value is not None:
                        data[declared] = value
                        break
        for name, info in self.settings_cls.model_fields.items():
            if fast and name in own:
                continue
            value, key, is_complex = inner.get_field_value(info, name)
            if name not in own:
                value = inner.prepare_field_value(name, info, value, is_complex)
            if value is not None:
                data[key] = value
        return data

    def __call__(self) -> dict[str, Any]:
        data = self._values()
        resolution = _resolving.get()
        given = resolution.sources if resolution is not None else {}
        keywords = _lookup().keywords
        kept: dict[str, Any] = {}
        for key, value in data.items():
            field_name = keywords.get(key.lower(), (None, 0))[0]
            if field_name is None:
                if self._keep_unknown:
                    kept[key] = value
                continue
            if field_name in self._drop or field_name in given:
                continue
            if not self._keep_unknown and key.lower() not in _lookup().env_names[field_name]:
                continue  # pydantic-settings also reads a field's bare name (populate_by_name); only variables count
            kept[key] = value
            given[field_name] = self._label
        return kept


def _config_file_path(
    init_settings: PydanticBaseSettingsSource, env_settings: PydanticBaseSettingsSource
) -> str | None:
    """OTEL_CONFIG_FILE as an argument (config_file=...) or in the environment, before the model exists."""
    for key, value in getattr(init_settings, "init_kwargs", {}).items():
        if key.lower() in ("config_file", "otel_config_file") and value:
            return str(value)
    env_vars: Mapping[str, Any] = getattr(env_settings, "env_vars", {})
    value = env_vars.get("otel_config_file") or env_vars.get("OTEL_CONFIG_FILE")
    return str(value) if value else None


# Variables an OpenTelemetry configuration file replaces: the SDK's own (the specification: when OTEL_CONFIG_FILE is
# set, the other SDK variables are ignored; the file may read them with ${VAR}). A field is the file's when its first
# variable is one of these; instrumentation variables (OTEL_PYTHON_*, OTEL_INSTRUMENTATION_*) stay in effect.
_SDK_VARIABLE_PREFIXES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_",
    "OTEL_BSP_",
    "OTEL_METRIC_EXPORT_",
    "OTEL_ATTRIBUTE_",
    "OTEL_SPAN_",
)


@functools.cache
def file_owned_fields() -> frozenset[str]:
    """The fields whose variables OTEL_CONFIG_FILE replaces."""
    return frozenset(
        name
        for name in Settings.model_fields
        if (names := env_names(name)) and names[0].upper().startswith(_SDK_VARIABLE_PREFIXES)
    )


class _ConfigFileSource(PydanticBaseSettingsSource):
    """OTEL_CONFIG_FILE mapped onto Settings fields (see :func:`config_file_values`), keyed by each field's first
    variable so that it ranks above the environment whatever alias the environment used."""

    def __init__(self, settings_cls: type[BaseSettings], path: str) -> None:
        super().__init__(settings_cls)
        self._path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ does the work

    def __call__(self) -> dict[str, Any]:
        config, values = config_file_values(self._path)
        resolution = _resolving.get()
        data: dict[str, Any] = {}
        for field_name, value in values.items():
            if resolution is not None:
                if field_name in resolution.sources:  # an argument
                    continue
                resolution.sources[field_name] = "config file"
            data[(env_names(field_name) or (field_name,))[0]] = value
        if resolution is not None:
            resolution.config_file, resolution.config_path = config, self._path
        return data


# --- OTEL_CONFIG_FILE ------------------------------------------------------------------------------------------------
def config_file_values(path: str) -> tuple[Any, dict[str, Any]]:
    """Load an OpenTelemetry declarative configuration file and map it onto Settings fields.

    Returns the parsed model (``opentelemetry.configuration.OpenTelemetryConfiguration``) and the field values. What
    no field can express is refused with a ConfigurationError naming it, rather than silently ignored; propagators are
    applied from the parsed model by :func:`apply_config_file`.
    """
    try:
        from opentelemetry.configuration import ConfigurationError as FileError
        from opentelemetry.configuration import load_config_file
    except ImportError:
        raise ConfigurationError(
            f'OTEL_CONFIG_FILE={path!r} needs the opentelemetry-configuration package: pip install "signalfire[config]"'
        ) from None
    try:
        config = load_config_file(path)
    except (FileError, OSError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"OTEL_CONFIG_FILE={path!r} is not accepted: {exc}") from None
    return config, _FileMapping(path).map(config)


class _FileMapping:
    """The declarative configuration's model, field by field, onto Settings (the stable schema's common subset)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.values: dict[str, Any] = {}

    def refuse(self, where: str, what: str = "") -> ConfigurationError:
        return ConfigurationError(
            f"OTEL_CONFIG_FILE={self.path!r}: {where} is not supported by signalfire{what} (supported: otlp_http, "
            "otlp_grpc and console exporters with batch or simple processors, one OTLP exporter per signal, the "
            "always_on/always_off/trace_id_ratio_based/parent_based(root) samplers, limits, resource attributes, "
            "propagators, a Prometheus pull reader, distribution.signalfire)"
        )

    def map(self, config: Any) -> dict[str, Any]:
        values = self.values
        if config.disabled:
            values["sdk_disabled"] = True
        if (limits := config.attribute_limits) is not None:
            self.copy(limits, attribute_value_length_limit="attribute_value_length_limit")
            self.copy(limits, attribute_count_limit="attribute_count_limit")
        if (resource := config.resource) is not None:
            attributes = parse_key_values(resource.attributes_list, "key=value") if resource.attributes_list else {}
            for attribute in resource.attributes or ():
                value = attribute.value
                text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
                attributes[attribute.name] = text.lower() if isinstance(value, bool) else text
            values["resource_attributes"] = attributes
        if (tracer := config.tracer_provider) is not None:
            self.traces(tracer)
        if (meter := config.meter_provider) is not None:
            self.metrics(meter)
        if (logger := config.logger_provider) is not None:
            self.logs(logger)
        distribution = (config.distribution or {}).get("signalfire") or {}
        keywords = _lookup().keywords
        for key, value in distribution.items():
            field_name = keywords.get(str(key).lower(), (None, 0))[0]
            if field_name is None:
                raise ConfigurationError(
                    f"OTEL_CONFIG_FILE={self.path!r}: distribution.signalfire.{key} is not a setting (keys are "
                    "signalfire.Settings field names or their variables)"
                )
            if value is None:  # `key:` with nothing after it: unset
                continue
            if isinstance(value, list):
                values[field_name] = ",".join(str(v) for v in value)
            elif isinstance(value, dict):
                values[field_name] = ",".join(f"{k}={v}" for k, v in value.items())
            else:
                values[field_name] = value
        return values

    def copy(self, source: Any, **fields: str) -> None:
        for name, attribute in fields.items():
            value = getattr(source, attribute)
            if value is not None:
                self.values[name] = value

    def exporter(self, signal: Signal, exporter: Any, where: str) -> str:
        if exporter.console is not None:
            return "console"
        for kind, protocol in (("otlp_http", "http/protobuf"), ("otlp_grpc", "grpc")):
            otlp = getattr(exporter, kind)
            if otlp is None:
                continue
            if f"otlp_{signal}_endpoint" in self.values:
                raise self.refuse(where, " (a second OTLP exporter for the same signal)")
            if otlp.tls is not None:
                raise self.refuse(f"{where}.{kind}.tls")
            default = "http://localhost:4317" if kind == "otlp_grpc" else f"http://localhost:4318/v1/{signal}"
            self.values[f"otlp_{signal}_endpoint"] = otlp.endpoint or default
            self.values[f"otlp_{signal}_protocol"] = protocol
            headers = parse_key_values(otlp.headers_list, "key=value") if otlp.headers_list else {}
            headers.update({pair.name: pair.value or "" for pair in otlp.headers or ()})
            if headers:
                self.values[f"otlp_{signal}_headers"] = headers
            if otlp.timeout is not None:
                self.values[f"otlp_{signal}_timeout_ms"] = otlp.timeout
            if otlp.compression is not None:
                self.values["otlp_compression"] = otlp.compression
            return "otlp"
        raise self.refuse(where, " (only otlp_http, otlp_grpc and console exporters)")

    def traces(self, tracer: Any) -> None:
        names: list[str] = []
        for index, processor in enumerate(tracer.processors):
            where = f"tracer_provider.processors[{index}]"
            if processor.batch is not None:
                batch = processor.batch
                self.copy(batch, bsp_schedule_delay_ms="schedule_delay", bsp_export_timeout_ms="export_timeout")
                self.copy(batch, bsp_max_queue_size="max_queue_size")
                self.copy(batch, bsp_max_export_batch_size="max_export_batch_size")
                names.append(self.exporter("traces", batch.exporter, f"{where}.batch.exporter"))
            elif processor.simple is not None:  # exported in batches all the same: the request path never waits
                names.append(self.exporter("traces", processor.simple.exporter, f"{where}.simple.exporter"))
            else:
                raise self.refuse(where)
        self.values["traces_exporter"] = ",".join(dict.fromkeys(names)) or "none"
        if (limits := tracer.limits) is not None:
            self.copy(limits, span_attribute_value_length_limit="attribute_value_length_limit")
            self.copy(limits, span_attribute_count_limit="attribute_count_limit")
            self.copy(limits, span_event_count_limit="event_count_limit", span_link_count_limit="link_count_limit")
        if tracer.sampler is not None:
            self.values["traces_sampler"], ratio = self.sampler(tracer.sampler, "tracer_provider.sampler")
            if ratio is not None:
                self.values["traces_sampler_arg"] = ratio

    def sampler(self, sampler: Any, where: str, parent: bool = False) -> tuple[str, float | None]:
        prefix = "parentbased_" if parent else ""
        if sampler.always_on is not None:
            return prefix + "always_on", None
        if sampler.always_off is not None:
            return prefix + "always_off", None
        if sampler.trace_id_ratio_based is not None:
            ratio = sampler.trace_id_ratio_based.ratio
            return prefix + "traceidratio", 1.0 if ratio is None else ratio
        based = sampler.parent_based
        if based is not None and not parent:
            for other in ("remote_parent_sampled", "remote_parent_not_sampled", "local_parent_sampled"):
                if getattr(based, other) is not None:
                    raise self.refuse(f"{where}.parent_based.{other}")
            if based.local_parent_not_sampled is not None:
                raise self.refuse(f"{where}.parent_based.local_parent_not_sampled")
            if based.root is None:
                return "parentbased_always_on", None
            return self.sampler(based.root, f"{where}.parent_based.root", parent=True)
        raise self.refuse(where)

    def metrics(self, meter: Any) -> None:
        if meter.views:
            raise self.refuse("meter_provider.views")
        names: list[str] = []
        for index, reader in enumerate(meter.readers):
            where = f"meter_provider.readers[{index}]"
            if reader.periodic is not None:
                periodic = reader.periodic
                self.copy(periodic, metric_export_interval_ms="interval", metric_export_timeout_ms="timeout")
                names.append(self.exporter("metrics", periodic.exporter, f"{where}.periodic.exporter"))
            elif reader.pull is not None and reader.pull.exporter.prometheus_development is not None:
                prometheus = reader.pull.exporter.prometheus_development
                self.copy(prometheus, metrics_host="host", metrics_port="port")
                names.append("prometheus")
            else:
                raise self.refuse(where)
        self.values["metrics_exporter"] = ",".join(dict.fromkeys(names)) or "none"

    def logs(self, logger: Any) -> None:
        names: list[str] = []
        for index, processor in enumerate(logger.processors):
            where = f"logger_provider.processors[{index}]"
            chosen = processor.batch or processor.simple
            if chosen is None:
                raise self.refuse(where)
            names.append(self.exporter("logs", chosen.exporter, f"{where}.exporter"))
        self.values["logs_exporter"] = ",".join(dict.fromkeys(names)) or "none"


def apply_config_file(settings: Settings) -> None:
    """Apply what of OTEL_CONFIG_FILE no Settings field carries: the propagators (the global text-map propagator)."""
    config = settings._config_file
    if config is not None and config.propagator is not None:
        from opentelemetry.configuration.file import configure_propagator

        configure_propagator(config.propagator)


def config_file_report(settings: Settings) -> list[str]:
    """Lines for `signalfire doctor` and `signalfire config`: the file in charge, what it set, what it overrides."""
    if settings.config_file is None:
        return []
    from_file = sorted(name for name, source in settings.sources.items() if source == "config file")
    environ = _environment()
    ignored = sorted(variable for name in file_owned_fields() if (variable := _env_name_set(name, environ)) is not None)
    lines = [f"OTEL_CONFIG_FILE={settings.config_file} is in charge: it sets {', '.join(from_file) or 'nothing'}"]
    if ignored:
        lines.append("ignored while it is set (the file may read them as ${VAR}): " + ", ".join(ignored))
    return lines


ENVIRONMENT_VARIABLES = (
    "SIGNALFIRE_ENVIRONMENT",
    "ENVIRONMENT",
    "DEPLOYMENT_ENVIRONMENT",
    "deployment.environment.name in OTEL_RESOURCE_ATTRIBUTES",
    "SENTRY_ENVIRONMENT",
)


def environment_origin(settings: Settings) -> str | None:
    """What named the deployment environment, or None when nothing did and the default preset runs."""
    source = settings.sources.get("environment", "default")
    if source != "default":
        return _env_name_set("environment") if source == "environment" else source
    attrs = settings.resource_attributes
    where = (
        "OTEL_CONFIG_FILE"
        if settings.sources.get("resource_attributes") == "config file"
        else "OTEL_RESOURCE_ATTRIBUTES"
    )
    for key in ("deployment.environment.name", "deployment.environment"):
        if key in attrs:
            return f"{key} in {where}"
    if settings.sentry_environment is not None:
        return "SENTRY_ENVIRONMENT"
    return None


def unnamed_environment_notice(settings: Settings) -> str | None:
    """The start-up warning when no variable named the environment (None when one did)."""
    if environment_origin(settings) is not None:
        return None
    return (
        f"signalfire: no deployment environment is set, so the {settings.preset} preset runs "
        f"(traces sampled at {settings.traces_sampler_arg:g}, {settings.log_format} logs"
        + (", spans printed to the terminal" if "console" in settings.exporters("traces") else "")
        + "). To choose, set ENVIRONMENT=production (or development), or one of "
        + ", ".join(v for v in ENVIRONMENT_VARIABLES if v != "ENVIRONMENT")
        + "."
    )


# pydantic's own wording for the built-in types, said the way the rest of the messages say it
_TYPE_REASONS = {
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "float_parsing": "expected a number",
    "int_parsing": "expected a whole number",
    "string_type": "expected a string",
}
_CLEAN_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def _describe(exc: ValidationError, arguments: Mapping[str, Any], resolution: _Resolution) -> str:
    lines = []
    keywords = _lookup().keywords
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        key = str(loc[0]) if loc else ""  # a field's first variable (as declared) or its name
        field_name = keywords.get(key.lower(), (key, 0))[0]
        reason = _TYPE_REASONS.get(error["type"]) or _CLEAN_PREFIX.sub("", error["msg"])
        source = resolution.sources.get(field_name)
        value = error.get("input")
        if field_name in arguments and source in ("argument", None):
            lines.append(f"init_observability({field_name}={arguments[field_name]!r}) is not accepted: {reason}")
        elif source == "config file":
            lines.append(
                f"{field_name}={value!r} from OTEL_CONFIG_FILE={resolution.config_path!r} is not accepted: {reason}"
            )
        elif source in ("env file", "secrets dir"):
            where = "a .env file" if source == "env file" else "the secrets directory"
            lines.append(f"{(env_names(field_name) or (key,))[0]}={value!r} from {where} is not accepted: {reason}")
        elif field_name in Settings.model_fields:
            variable = _env_name_set(field_name) or (env_names(field_name) or (field_name,))[0]
            lines.append(f"{variable}={os.environ.get(variable, value)!r} is not accepted: {reason}")
        else:  # a model-level check, whose message already names its variables
            lines.append(reason)
    return "invalid signalfire configuration:\n  " + "\n  ".join(lines)
