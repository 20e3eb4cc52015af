"""Generate docs/configuration.md from signalfire.Settings and its PRESETS.

    python docs/gen_config.py           # rewrite docs/configuration.md
    python docs/gen_config.py --check   # exit 1 if the committed file is stale (tests/test_docs.py does the same)

Sections follow the ``# --- title ---`` comments of the Settings class, so a component's fields appear under its own
heading. A field's example is its ``Field(examples=[...])`` if it has one, else an entry of EXAMPLES below, else its
default.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from signalfire._settings import PRESETS, Settings, env_names

OUTPUT = Path(__file__).resolve().parent / "configuration.md"

# Examples for fields whose default (None or empty) shows nothing useful.
EXAMPLES: dict[str, str] = {
    "service_name": "checkout",
    "service_version": "1.4.2",
    "environment": "production",
    "resource_attributes": "team=payments,cloud.region=eu-west-1",
    "traces_exporter": "otlp,console",
    "metrics_exporter": "otlp,prometheus",
    "logs_exporter": "otlp",
    "otlp_endpoint": "http://otel-collector:4318",
    "otlp_headers": "api-key=REDACTED",
    "otlp_compression": "gzip",
    "sentry_dsn": "https://public-key@o0.ingest.sentry.io/0",
}
_SIGNALS = ("traces", "metrics", "logs")
_SECTION = re.compile(r"^    # --- (?P<title>.+?) -+\s*$")
_FIELD = re.compile(r"^    (?P<name>[a-z_][a-z0-9_]*)\s*:")


def sections() -> list[tuple[str, list[str]]]:
    """The Settings fields grouped under the section comments of the class body, in source order."""
    grouped: list[tuple[str, list[str]]] = [("general", [])]
    for line in inspect.getsource(Settings).splitlines():
        if match := _SECTION.match(line):
            # "logs, request correlation and the scrubber (_logging.py, _scrub.py)": readers need no module names
            grouped.append((re.sub(r"\s*\([^)]*\.py[^)]*\)", "", match["title"]), []))
        elif (match := _FIELD.match(line)) and match["name"] in Settings.model_fields:
            grouped[-1][1].append(match["name"])
    listed = {name for _, names in grouped for name in names}
    missing = [name for name in Settings.model_fields if name not in listed]
    if missing:  # fields declared some other way (a mixin, say) still get documented
        grouped.append(("other", missing))
    return [(title, names) for title, names in grouped if names]


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (types.UnionType, typing.Union):
        return type_name(args[0]) if len(args) == 1 else " or ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if origin is dict or annotation is dict:
        return "key=value list"
    if origin is tuple or origin is list or origin is frozenset:
        return "comma-separated list"
    return {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def show(value: Any) -> str:
    """A value the way it is written in the environment."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dict):
        return "`" + ",".join(f"{k}={v}" for k, v in value.items()) + "`" if value else "empty"
    if isinstance(value, tuple | list | frozenset):
        return "`" + ",".join(str(v) for v in value) + "`" if value else "empty"
    if hasattr(value, "get_secret_value"):
        return "unset"
    return f"`{value}`"


def default_of(field: FieldInfo) -> Any:
    return field.get_default(call_default_factory=True)


def description(name: str, field: FieldInfo) -> str:
    """The field's description without the leading variable names it repeats, or one derived for per-signal forms."""
    text = field.description or ""
    variables = env_names(name)
    # Descriptions start with the variable names ("OTEL_X / OTEL_Y. Text" or "OTEL_X: text"); the table shows them.
    for separator in (". ", ": ", ", "):
        head, sep, rest = text.partition(separator)
        if sep and all(part.strip() in variables for part in head.split("/")):
            text = rest
            break
    if not text:
        for signal in _SIGNALS:
            generic = name.replace(f"_{signal}_", "_", 1)
            if f"_{signal}_" in name and generic in Settings.model_fields:
                return f"The {signal} form of `{env_names(generic)[0]}`; overrides it for {signal} only."
        return "As the OpenTelemetry specification defines it."
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def example(name: str, field: FieldInfo) -> str:
    variable = (env_names(name) or (name.upper(),))[0]
    if field.examples:
        value = field.examples[0]
    elif name in EXAMPLES:
        value = EXAMPLES[name]
    else:
        value = default_of(field)
        if value is None:  # a preset fills it: its production value is a realistic example
            value = PRESETS["production"].get(name, PRESETS["development"].get(name))
        if value is None or value in ({}, ()):
            return ""
    shown = show(value).strip("`") if not isinstance(value, str) else value
    return f"`{variable}={shown}`"


def render() -> str:
    """The whole configuration reference as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by docs/gen_config.py from signalfire.Settings: edit the Settings fields, then run",
        "     `python docs/gen_config.py`. tests/test_docs.py fails while this file is stale. -->",
        "",
        "Every setting is resolved once, when `init_observability()` runs, highest first: a keyword argument of the",
        "same name (`init_observability(service_name=...)`) > the file `OTEL_CONFIG_FILE` names, when set > the",
        "environment > a `.env` file and a secrets directory, when configured > the environment's preset > the",
        "default. Where a setting lists several variables, the first one set wins. A bad value raises",
        "`ConfigurationError` naming the variable, the value and what is accepted. `signalfire.Settings` is a",
        "pydantic-settings `BaseSettings`: [Settings in your application](settings.md) shows `.env` files, secrets",
        "directories, nesting it in your own settings, `OTEL_CONFIG_FILE`, and how the environment is chosen.",
        "",
        "`ENVIRONMENT` selects a **preset**: `development`, `dev`, `local`, `test` and `testing` take the development",
        "column below, every other name (`staging`, `production`, ...) the production column. A preset only fills",
        "what neither an argument nor the environment set. `signalfire config --environment production` prints the",
        "result for a given environment, with the source of each value.",
        "",
    ]
    for title, names in sections():
        out += [f"## {title[0].upper()}{title[1:]}", ""]
        out += [
            "| Variable | Type | Development | Production | Description | Example |",
            "|---|---|---|---|---|---|",
        ]
        for name in names:
            field = Settings.model_fields[name]
            variables = "<br>".join(f"`{v}`" for v in env_names(name)) or f"`{name}` (argument only)"
            base = default_of(field)
            development = PRESETS["development"].get(name, base)
            production = PRESETS["production"].get(name, base)
            out.append(
                f"| {variables} | {type_name(field.annotation)} | {show(development)} | {show(production)} "
                f"| {description(name, field)} | {example(name, field)} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run python docs/gen_config.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
