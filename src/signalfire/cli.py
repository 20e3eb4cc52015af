"""The ``signalfire`` console script: ``doctor`` checks a deployment's configuration, ``config`` shows it.

::

    $ signalfire doctor                         # effective configuration, then checks; exit 1 on a problem
    $ signalfire config --environment production --format json

Every subcommand is a :class:`Command` in :data:`COMMANDS`; a new one (``dashboards``, ``alerts``) is one more entry
there. Errors are one line on stderr, never a traceback: a rejected setting exits with status 2 and the
:class:`~signalfire.ConfigurationError` message, a failed check with status 1 and the fix.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

from signalfire._scrub._policy import Scrubber, mask_config_value
from signalfire._settings import (
    ConfigurationError,
    Settings,
    Signal,
    _env_name_set,
    config_file_report,
    env_names,
    environment_origin,
    unnamed_environment_notice,
)
from signalfire._version import __version__

__all__ = ["COMMANDS", "Command", "Finding", "main"]

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_FAILURE = 70  # EX_SOFTWARE: signalfire itself failed
EXIT_USAGE = 2  # argparse's own status for a bad command line; a rejected setting is the same kind of mistake


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its name, one line of help, how it adds its arguments, and what it runs (returning the exit code).

    ``run`` may raise :class:`~signalfire.ConfigurationError`; :func:`main` prints it as one line and exits with 2.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- settings from the command line ---------------------------------------------------------------------------------
def _add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment",
        metavar="NAME",
        help="resolve as this deployment environment (e.g. production), whatever ENVIRONMENT says",
    )
    parser.add_argument(
        "--set",
        metavar="FIELD=VALUE",
        action="append",
        default=[],
        help="override a Settings field as init_observability(FIELD=VALUE) would (repeatable)",
    )


def resolve_settings(args: argparse.Namespace) -> Settings:
    """The Settings the service would get: command-line overrides as arguments, then the environment."""
    overrides: dict[str, Any] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"--set {item!r} is not accepted: expected FIELD=VALUE, e.g. service_name=shop")
        overrides[name.strip()] = value
    if args.environment:
        overrides["environment"] = args.environment
    return Settings.resolve(**overrides)


# --- masking ----------------------------------------------------------------------------------------------------------
# What is masked is the one policy's (_scrub._policy.mask_config_value); how it reads is the CLI's: a value hidden
# whole is "****", so the table stays narrow and a masked field is told apart from a value that holds a marker.
MASK = "****"


def mask(field: str, value: Any, scrubber: Scrubber | None = None) -> Any:
    """``value`` fit to print: header values, the user-info of URLs (a Sentry DSN's key), secret-named fields, and
    whatever the shared scrubber (configured as the service would configure it) redacts in a log line."""
    return mask_config_value(field, value, MASK, scrubber or Scrubber())


# --- configuration table ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Row:
    """One setting as shown by ``config`` and ``doctor``."""

    field: str
    value: Any
    source: str
    variable: str | None  # the environment variable that set it, or the first one that would


def rows(settings: Settings) -> list[Row]:
    """Every field of ``settings`` with its masked value, its source and its environment variable."""
    dump = settings.model_dump(mode="json")
    sources = settings.sources
    scrubber = Scrubber.from_settings(settings)
    result = []
    for name in Settings.model_fields:
        names = env_names(name)
        variable = _env_name_set(name) if sources.get(name) == "environment" else (names[0] if names else None)
        result.append(Row(name, mask(name, dump[name], scrubber), sources.get(name, "default"), variable))
    return result


# Identity fields the doctor shows even at their defaults, because "which service is this" comes first.
_ALWAYS_SHOWN = frozenset({"service_name", "service_version", "environment"})


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def print_table(settings: Settings, out: TextIO, *, only_set: bool = False) -> None:
    """The settings as an aligned table: field, value, source, environment variable; ``only_set`` leaves out the
    fields at their defaults."""
    shown = [r for r in rows(settings) if not only_set or r.source != "default" or r.field in _ALWAYS_SHOWN]
    table = [(r.field, _show(r.value), r.source, r.variable or "") for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for field, value, source, variable in table:
        cell = value if len(value) <= 60 else value[:57] + "..."
        print(f"  {field:<{widths[0]}}  {cell:<{min(widths[1], 60)}}  {source:<{widths[2]}}  {variable}", file=out)


# --- config -----------------------------------------------------------------------------------------------------------
def _config_arguments(parser: argparse.ArgumentParser) -> None:
    _add_settings_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


def run_config(args: argparse.Namespace) -> int:
    """Print the effective settings, masked, with where each value came from."""
    settings = resolve_settings(args)
    if args.format == "json":
        document = {
            "environment": settings.environment,
            "environment_from": environment_origin(settings),
            "preset": settings.preset,
            "config_file": config_file_report(settings),
            "settings": {
                r.field: {"value": r.value, "source": r.source, "variable": r.variable} for r in rows(settings)
            },
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"environment: {settings.environment} (preset: {settings.preset}; {_origin(settings)})")
        for line in config_file_report(settings):
            print(line)
        print_table(settings, sys.stdout)
    return EXIT_OK


def _origin(settings: Settings) -> str:
    origin = environment_origin(settings)
    return f"from {origin}" if origin is not None else "no variable names it: the default"


# --- doctor -----------------------------------------------------------------------------------------------------------
Status = Literal["ok", "problem", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a doctor check; a ``problem`` makes ``signalfire doctor`` exit 1 and carries its ``fix``."""

    status: Status
    title: str
    fix: str | None = None


Check = Callable[[Settings, float], Iterable[Finding]]


def check_exporters(settings: Settings, timeout: float) -> Iterable[Finding]:
    """Where each signal goes; a production service that exports traces nowhere is worth a warning."""
    if not settings.active:
        yield Finding("info", "signalfire is disabled (OTEL_SDK_DISABLED=true or SIGNALFIRE_ENABLED=false)")
        return
    signals: tuple[Signal, ...] = ("traces", "metrics", "logs")
    for signal in signals:
        exporters = settings.exporters(signal)
        yield Finding("info", f"{signal}: exported to {', '.join(exporters) if exporters else 'nothing'}")
    never = settings.traces_sampler in ("always_off", "parentbased_always_off") or (
        settings.traces_sampler.endswith("traceidratio") and settings.traces_sampler_arg == 0
    )
    if never:
        yield Finding(
            "warning",
            f"OTEL_TRACES_SAMPLER={settings.traces_sampler} (ratio {settings.traces_sampler_arg}) samples no trace "
            "this service starts",
            "unset OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG for the preset's ratio, or set a ratio above 0",
        )
    if settings.preset == "production" and not settings.exporters("traces"):
        yield Finding(
            "warning",
            "production preset without a traces exporter: spans are recorded and dropped",
            "set OTEL_EXPORTER_OTLP_ENDPOINT to your OpenTelemetry Collector, e.g. http://otel-collector:4318",
        )


def check_otlp(settings: Settings, timeout: float) -> Iterable[Finding]:
    """Each OTLP endpoint in use answers an empty export request (HTTP/protobuf or gRPC) within ``timeout``.

    Signals that share an endpoint and an outcome are reported on one line.
    """
    if not settings.active:
        return
    grouped: dict[tuple[str, str, tuple[str, str] | None], list[Signal]] = {}
    timings: dict[tuple[str, str, tuple[str, str] | None], float] = {}
    variables: dict[tuple[str, str, tuple[str, str] | None], str] = {}
    signals: tuple[Signal, ...] = ("traces", "metrics", "logs")
    for signal in signals:
        target = settings.otlp_target(signal) if "otlp" in settings.exporters(signal) else None
        if target is None:
            continue
        started = time.monotonic()
        if target.protocol == "grpc":
            error = _grpc_export(signal, target.endpoint, target.headers, timeout)
        else:
            error = _http_export(target.endpoint, target.headers, timeout)
        base = target.endpoint.removesuffix(f"/v1/{signal}")
        key = (base, target.protocol, error)
        grouped.setdefault(key, []).append(signal)
        timings[key] = max(timings.get(key, 0.0), (time.monotonic() - started) * 1000)
        variables.setdefault(key, _endpoint_variable(settings, signal))
    for key, names in grouped.items():
        base, protocol, error = key
        where = f"OTLP endpoint {base} ({protocol}) for {', '.join(names)}"
        if error is None:
            yield Finding("ok", f"{where} answers ({timings[key]:.0f} ms)")
        else:
            reason, fix = error
            yield Finding("problem", f"{where}: {reason}", fix.format(variable=variables[key]))


def _endpoint_variable(settings: Settings, signal: Signal) -> str:
    if getattr(settings, f"otlp_{signal}_endpoint") is not None:
        return f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    return "OTEL_EXPORTER_OTLP_ENDPOINT"


_UNREACHABLE_FIX = "start the collector, or set {variable} to the address it listens on"


def _http_export(url: str, headers: Mapping[str, str], timeout: float) -> tuple[str, str] | None:
    # An empty body is a valid, empty Export*ServiceRequest: a receiver accepts it and stores nothing.
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Content-Type": "application/x-protobuf", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        return None
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (401, 403):
            return f"rejected the credentials (HTTP {exc.code})", "check the key in OTEL_EXPORTER_OTLP_HEADERS"
        if exc.code == 404:
            return (
                "answers, but not at this path (HTTP 404)",
                "set {variable} to the collector's base URL (http://host:4318), without /v1/<signal>; "
                "or use OTEL_EXPORTER_OTLP_PROTOCOL=grpc for port 4317",
            )
        if exc.code in (400, 415):  # an OTLP receiver that wanted content, not an empty request: it is there
            return None
        return f"answered HTTP {exc.code}", "check the collector's logs; {variable} may point at something else"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"does not answer ({_reason(reason, timeout)})", _UNREACHABLE_FIX


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host name does not resolve"
    return str(reason)


def _grpc_export(signal: Signal, endpoint: str, headers: Mapping[str, str], timeout: float) -> tuple[str, str] | None:
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    services: dict[str, tuple[Any, Any]] = {
        "traces": (trace_service_pb2_grpc.TraceServiceStub, trace_service_pb2.ExportTraceServiceRequest),
        "metrics": (metrics_service_pb2_grpc.MetricsServiceStub, metrics_service_pb2.ExportMetricsServiceRequest),
        "logs": (logs_service_pb2_grpc.LogsServiceStub, logs_service_pb2.ExportLogsServiceRequest),
    }
    parts = urlsplit(endpoint)
    address = f"{parts.hostname}:{parts.port or 4317}"
    channel = (
        grpc.secure_channel(address, grpc.ssl_channel_credentials())
        if parts.scheme == "https"
        else grpc.insecure_channel(address)
    )
    stub_class, request_class = services[signal]
    try:
        stub_class(channel).Export(
            request_class(), timeout=timeout, metadata=[(k.lower(), v) for k, v in headers.items()]
        )
        return None
    except grpc.RpcError as exc:
        code = exc.code()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return f"rejected the credentials ({code.name})", "check the key in OTEL_EXPORTER_OTLP_HEADERS"
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return (
                f"answers, but has no OTLP {signal} service (UNIMPLEMENTED)",
                "enable the OTLP receiver's gRPC protocol in the collector, or point {variable} at it",
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"does not answer (no answer within {timeout:g} s)", _UNREACHABLE_FIX
        reason = "cannot connect" if code == grpc.StatusCode.UNAVAILABLE else code.name
        return f"does not answer ({reason})", _UNREACHABLE_FIX + " (4317 speaks grpc, 4318 http/protobuf)"
    finally:
        channel.close()


def field_for(variable: str) -> str | None:
    """The Settings field that the environment variable ``variable`` sets, if any."""
    for name in Settings.model_fields:
        if variable in env_names(name):
            return name
    return None


def check_sentry(settings: Settings, timeout: float) -> Iterable[Finding]:
    """SENTRY_DSN, when set, parses as a DSN and its host resolves."""
    field = field_for("SENTRY_DSN")
    if field is None:
        yield Finding("info", "Sentry: not part of this signalfire version's settings")
        return
    dsn = getattr(settings, field)
    if dsn is None:
        yield Finding("info", "Sentry: SENTRY_DSN is not set; errors are not sent to Sentry")
        return
    dsn = str(getattr(dsn, "get_secret_value", lambda: dsn)())
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        parsed = Dsn(dsn)
    except BadDsn as exc:
        yield Finding(
            "problem",
            f"Sentry: SENTRY_DSN does not parse ({exc})",
            "copy the DSN from Sentry's project settings (Client Keys): https://<key>@<host>/<project id>",
        )
        return
    error = _resolve(parsed.host, timeout)
    if error is not None:
        yield Finding(
            "problem",
            f"Sentry: the DSN's host {parsed.host} does not resolve ({error})",
            "check the DSN's host name and this machine's DNS; a self-hosted Sentry must be reachable from here",
        )
        return
    yield Finding("ok", f"Sentry: DSN parses and {parsed.host} resolves (project {parsed.project_id})")


def _resolve(host: str, timeout: float) -> str | None:
    # getaddrinfo has no timeout of its own; a daemon thread bounds how long a broken resolver can hold the doctor.
    outcome: list[str | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except OSError as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def check_prometheus_dir(settings: Settings, timeout: float) -> Iterable[Finding]:
    """PROMETHEUS_MULTIPROC_DIR, when set, is a directory this process can write to."""
    field = field_for("PROMETHEUS_MULTIPROC_DIR")
    path = getattr(settings, field, None) if field else None
    if path is None:
        return
    path = os.fspath(path)
    fix = f"create it before the server starts and let the service user write to it: mkdir -p {path}"
    if not os.path.isdir(path):
        yield Finding("problem", f"Prometheus: multiprocess directory {path} does not exist", fix)
        return
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        yield Finding("problem", f"Prometheus: multiprocess directory {path} is not writable ({exc.strerror})", fix)
        return
    yield Finding("ok", f"Prometheus: multiprocess directory {path} is writable")


# Extras that are not integrations: the development tooling and the union of the others.
_NOT_INTEGRATIONS = frozenset({"all", "test", "docs", "dev", "bench", "dashboards"})
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)[^;]*(?:;\s*extra\s*==\s*['\"](?P<extra>[^'\"]+)['\"])?"
)


def integration_requirements() -> dict[str, list[str]]:
    """Each integration extra of the installed signalfire and the distributions it needs, from the package metadata
    (so the check follows pyproject.toml's extras)."""
    try:
        requirements = importlib.metadata.requires("signalfire") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    extras: dict[str, list[str]] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match and match["extra"] and match["extra"] not in _NOT_INTEGRATIONS:
            extras.setdefault(match["extra"], []).append(match["name"])
    return extras


def check_instrumentations(settings: Settings, timeout: float) -> Iterable[Finding]:
    """Which integrations can work here: each extra's library and its OpenTelemetry instrumentation are installed."""
    extras = integration_requirements()
    if not extras:
        yield Finding("info", "integrations: signalfire's package metadata is not available (not installed with pip?)")
        return
    for extra, names in sorted(extras.items()):
        installed = {name: _version(name) for name in names}
        present = {name: version for name, version in installed.items() if version is not None}
        missing = sorted(set(names) - set(present))
        libraries = ", ".join(f"{n} {v}" for n, v in sorted(present.items()) if not n.startswith("opentelemetry-"))
        if not libraries:
            yield Finding("info", f"integration {extra}: not installed")
        elif missing:
            yield Finding(
                "warning",
                f"integration {extra}: {libraries} installed, but not {', '.join(missing)}: it is not instrumented",
                f'pip install "signalfire[{extra}]"',
            )
        else:
            yield Finding("ok", f"integration {extra}: {libraries}, instrumented")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_environment(settings: Settings, timeout: float) -> Iterable[Finding]:
    """No variable names the deployment environment, so the default preset runs: said, not guessed silently."""
    notice = unnamed_environment_notice(settings)
    if notice is not None:
        yield Finding("warning", notice.removeprefix("signalfire: "))


# The doctor's checks, in the order they print; a component adds its own check here.
CHECKS: tuple[Check, ...] = (
    check_environment,
    check_exporters,
    check_otlp,
    check_sentry,
    check_prometheus_dir,
    check_instrumentations,
)

_MARKS: dict[Status, str] = {"ok": "ok  ", "problem": "FAIL", "warning": "warn", "info": "    "}


def owners(settings: Settings, app_spec: str | None) -> list[tuple[str, str, str]]:
    """Who owns each signal: with ``--app module:attribute``, what init_observability() finds for that application
    (the owners recorded if the module initialised signalfire itself); without it, what the environment alone tells."""
    from signalfire import _owners, _runtime

    if app_spec is None:
        probe = _runtime.Observability(settings, None, None)
        return _owners.detect(probe, imported_only=False)
    module_name, _, attribute = app_spec.partition(":")
    sys.path.insert(0, os.getcwd())  # as uvicorn does: the application's package from the current directory
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    running = _runtime.current()
    started = running is None
    if running is None:
        running = _runtime.start(settings, app=app)
    else:
        _runtime.instrument_app(running, app)
    try:
        # The app's own routes are judged when its middleware stack is built (its first request): build it now.
        build = getattr(app, "build_middleware_stack", None)
        if callable(build):
            build()
        return [(o.signal, o.found, o.action) for o in running.owners]
    finally:
        if started:
            running.shutdown(timeout=1.0)


def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    _add_settings_arguments(parser)
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTRIBUTE",
        help="import the application (as uvicorn would, e.g. myservice.main:app) and report who owns each signal",
    )
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="per network check (default: 3)")
    parser.add_argument("--all", action="store_true", help="list every setting, not only those set or preset")


def run_doctor(args: argparse.Namespace) -> int:
    """Show the effective configuration, run every check, and exit 1 if any found a problem."""
    settings = resolve_settings(args)
    print(f"signalfire {__version__} doctor")
    print(f"\nconfiguration (environment: {settings.environment}, preset: {settings.preset}; {_origin(settings)})")
    for line in config_file_report(settings):
        print(f"  {line}")
    print_table(settings, sys.stdout, only_set=not args.all)
    if not args.all:
        print("  (every other setting is at its default: signalfire config lists them all)")
    problems = 0
    print("\nowners (who owns each signal, and what signalfire does about it)")
    try:
        found = owners(settings, getattr(args, "app", None))
    except Exception as exc:  # an application that fails to import is the doctor's finding, not its crash
        found = []
        print(f"  FAIL  importing {args.app} failed: {exc!r}")
        problems += 1
    if not found:
        print("        signalfire owns traces, metrics, logs and errors; nothing else was found")
    for signal, who, action in found:
        mark = _MARKS["warning"] if action.startswith("refused") else _MARKS["info"]
        print(f"  {mark}  {signal}: {who}")
        print(f"        {action}")
    if getattr(args, "app", None) is None:
        print("        (pass --app module:attribute to see what signalfire finds in your application)")
    print("\nchecks")
    for check in CHECKS:
        try:
            findings = list(check(settings, args.timeout))
        except Exception as exc:  # a broken check is reported, and the other checks still run
            findings = [Finding("problem", f"{check.__name__} failed: {exc!r}", "report this as a signalfire bug")]
        for finding in findings:
            print(f"  {_MARKS[finding.status]}  {finding.title}")
            if finding.fix:
                print(f"        fix: {finding.fix}")
            problems += finding.status == "problem"
    print()
    if problems:
        print(f"{problems} problem{'s' if problems > 1 else ''} found.")
        return EXIT_PROBLEM
    print("no problems found.")
    return EXIT_OK


# --- dashboards and alerts: generated from the metric registry -----------------------------------------------------
def _registry_arguments(parser: argparse.ArgumentParser) -> None:
    _add_settings_arguments(parser)
    parser.add_argument(
        "--import",
        dest="imports",
        metavar="MODULE",
        action="append",
        default=[],
        help="import this module first, so the instruments it declares with metrics.declare() are included "
        "(repeatable; the current directory is on the import path)",
    )
    parser.add_argument(
        "--prefix",
        metavar="NAME",
        help="namespace of business instruments (default: SIGNALFIRE_METRICS_PREFIX)",
    )


def registry_instruments(args: argparse.Namespace) -> list[Any]:
    """The registry's instruments as the service would expose them: its modules imported, its prefix applied."""
    settings = resolve_settings(args)
    if args.imports and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in args.imports:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the user's module: any failure is theirs to see, in one line
            raise ConfigurationError(f"--import {module!r} failed: {type(exc).__name__}: {exc}") from None
    from signalfire import metrics

    prefix = args.prefix if args.prefix is not None else (settings.metrics_prefix or "")
    return list(metrics.instruments(prefix=prefix))


def _dashboards_arguments(parser: argparse.ArgumentParser) -> None:
    _registry_arguments(parser)
    parser.add_argument(
        "--out", metavar="DIR", default="dashboards", help="directory to write to (default: dashboards)"
    )
    parser.add_argument(
        "--uid-prefix", default="signalfire", help="dashboard uids start with this (default: signalfire)"
    )
    parser.add_argument("--title-prefix", default="signalfire", help="dashboard titles start with this")
    parser.add_argument(
        "--matchers",
        default='job=~"$job"',
        help='label matchers of every query (default: job=~"$job", the dashboards\' job picker)',
    )


def run_dashboards(args: argparse.Namespace) -> int:
    """Write one Grafana dashboard JSON file per dashboard into --out and list the files written."""
    from signalfire._generators._dashboards import DashboardOptions, render_dashboards

    options = DashboardOptions(uid_prefix=args.uid_prefix, title_prefix=args.title_prefix, matchers=args.matchers)
    rendered = render_dashboards(registry_instruments(args), options)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for name, text in rendered.items():
        path = os.path.join(out, name)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        print(path)
    return EXIT_OK


def _alerts_arguments(parser: argparse.ArgumentParser) -> None:
    from signalfire._generators._alerts import option_fields

    _registry_arguments(parser)
    parser.add_argument("--out", metavar="FILE", default="-", help="rule file to write (default: standard output)")
    for option in option_fields():
        flag = "--" + option.name.replace("_", "-")
        default = option.default
        help_text = str(option.metadata["help"]).replace("%", "%%")  # argparse formats help with %
        if isinstance(default, tuple):
            shown = ",".join(default)
            parser.add_argument(flag, default=shown, metavar="LABEL,...", help=f"{help_text} (default: {shown})")
        elif isinstance(default, int | float):
            parser.add_argument(flag, type=float, default=float(default), metavar="NUMBER",
                                help=f"{help_text} (default: {default:g})")  # fmt: skip
        else:
            metavar = "DURATION" if option.name.endswith(("_for", "_window")) else "TEXT"
            parser.add_argument(flag, default=default, metavar=metavar,
                                help=f"{help_text} (default: {default or 'none'})")  # fmt: skip


def run_alerts(args: argparse.Namespace) -> int:
    """Write the Prometheus rule file (alerts and SLO recording rules) to --out or standard output."""
    from signalfire._generators._alerts import AlertOptions, option_fields, render_alert_rules

    values: dict[str, Any] = {}
    for option in option_fields():
        value = getattr(args, option.name)
        if isinstance(option.default, tuple):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        values[option.name] = value
    try:
        options = AlertOptions(**values)
        text = render_alert_rules(registry_instruments(args), options)
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        # "error_rate_for='5 minutes' is not accepted: ..." names the field; say it as the option the user typed
        message = str(exc)
        name = message.split("=", 1)[0]
        if name in values:
            message = "--" + name.replace("_", "-") + message[len(name) :]
        raise ConfigurationError(message) from None
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as file:
            file.write(text)
        print(os.path.abspath(args.out))
    return EXIT_OK


# Subcommands, in the order `signalfire --help` lists them. dashboards and alerts add their Command here.
COMMANDS: list[Command] = [
    Command("doctor", "check the configuration and that every backend answers", _doctor_arguments, run_doctor),
    Command("config", "print the effective settings and where each came from", _config_arguments, run_config),
    Command(
        "dashboards",
        "write Grafana dashboards generated from the metric registry",
        _dashboards_arguments,
        run_dashboards,
    ),
    Command(
        "alerts",
        "write Prometheus alert and SLO rules generated from the metric registry",
        _alerts_arguments,
        run_alerts,
    ),
]


def build_parser(commands: Sequence[Command] = ()) -> argparse.ArgumentParser:
    """The argument parser with one subparser per command."""
    parser = argparse.ArgumentParser(prog="signalfire", description="signalfire: observability for Python services.")
    parser.add_argument("--version", action="version", version=f"signalfire {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an unexpected error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands or COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 fine, 1 a check found a problem, 2 bad input, 70 a bug)."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigurationError as exc:
        message = str(exc).removeprefix("invalid signalfire configuration:\n").strip()
        for line in message.splitlines():
            print(f"signalfire: error: {line.strip()}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `signalfire config | head`
        return EXIT_OK
    except Exception as exc:
        if args.traceback:
            raise
        print(f"signalfire: error: unexpected {type(exc).__name__}: {exc} (--traceback shows where)", file=sys.stderr)
        return EXIT_FAILURE
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
