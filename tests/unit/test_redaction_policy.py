"""One redaction policy for health responses, the CLI's output and Sentry events: what each shows users.

These hold what every adapter showed before the policy moved into ``signalfire._scrub._policy`` (health's own URL and
``password=`` patterns, the CLI's secret-named field words, the Sentry credential-header list), and the adversarial
properties: whatever the input, no adapter leaks a secret the policy knows, and none raises.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire import _errors, cli
from signalfire._scrub import _policy as _scrub
from signalfire._settings import Settings
from signalfire.health import CheckFailed, HealthCheck

SECRET = "hunter2-Zq9"


async def failure(message: str, *, secrets: tuple[str, ...] = (), details: dict[str, object] | None = None):
    """The result a check reports when it raises ``message`` (or CheckFailed with ``details``)."""

    def broken() -> None:
        if details is not None:
            raise CheckFailed(message, details=details)
        raise RuntimeError(message)

    return await HealthCheck("dep", broken, secrets=secrets).run()


# --- health: error messages ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            f"could not connect to postgresql://app:{SECRET}@db:5432/app",
            "postgresql://app:[REDACTED:password]@db:5432/app",
        ),
        (f"connection failed: host=db user=app password={SECRET} dbname=app", "password=[REDACTED:password]"),
        (f"Driver={{ODBC 18}};Server=db;UID=app;PWD={SECRET};", "PWD=[REDACTED:password]"),
        (f"password='{SECRET} two' rejected", "password='[REDACTED:password]'"),
        (f"redis://:{SECRET}@cache:6379/0 refused", "redis://:[REDACTED:password]@cache:6379/0"),
        (f"redis://:pa#{SECRET}@cache:6379/0 refused", "@cache:6379/0"),
        (f"redis://:pa?{SECRET}@cache:6379/0 refused", "@cache:6379/0"),
        (f"postgres://u:p@ss{SECRET}@db/app", "@db/app"),
        (f"options [password={SECRET}]", "password=[REDACTED:password]"),
        (f"PASSWD = {SECRET}", "[REDACTED:password]"),
    ],
)
async def test_health_errors_never_show_a_password_in_a_url_or_connection_string(message, shown):
    """Passwords in URLs (also with '#', '?' or '@' in them) and in key=value connection strings (libpq, ODBC) are
    redacted from a check's error; the rest of the message stays readable."""
    result = await failure(message)
    assert SECRET not in result.error
    assert shown in result.error


async def test_health_errors_redact_a_checks_own_secrets_of_any_length():
    """A check's configured secrets (a Redis password, a header value) are redacted wherever they appear, however
    short."""
    result = await failure("AUTH pw1 failed; token tok-abc123 rejected", secrets=("pw1", "tok-abc123"))
    assert "pw1" not in result.error
    assert "tok-abc123" not in result.error
    assert result.error.count("[REDACTED:secret]") == 2


async def test_health_errors_redact_a_checks_secret_also_percent_decoded():
    """A URL password given percent-encoded (as urlsplit returns it) is redacted also where it appears decoded."""
    result = await failure("login failed with p@ss/word-99", secrets=("p%40ss%2Fword-99",))
    assert "p@ss/word-99" not in result.error


async def test_health_errors_go_through_the_shared_value_rules():
    """Tokens and emails in a check's error are redacted as in a log line."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    result = await failure(f"401 for ann@example.com with Authorization: Bearer {jwt}")
    assert jwt not in result.error
    assert "ann@example.com" not in result.error


async def test_health_details_redact_secret_named_keys_urls_and_check_secrets():
    """Details: values under secret-named keys, URL passwords, a check's secrets and repr()s of objects."""

    class Replica:
        def __repr__(self) -> str:
            return f"Replica(url='postgresql://ro:{SECRET}@replica/app')"

    details = {
        "dsn": f"redis://:{SECRET}@cache:6379/0",
        "api_key": "sk-live-abc",
        "nested": {"password": "xyz-123", "note": "used tok-abc123"},
        "replicas": [Replica(), "plain"],
        "region": "eu",
    }
    result = await failure("bad", secrets=("tok-abc123",), details=details)
    text = json.dumps(result.details)
    for secret in (SECRET, "sk-live-abc", "xyz-123", "tok-abc123"):
        assert secret not in text
    assert result.details["region"] == "eu"
    assert result.details["replicas"][1] == "plain"


# --- the CLI: config and doctor --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("sentry_dsn", "https://abc123@o1.ingest.sentry.io/42", "https://****@o1.ingest.sentry.io/42"),
        ("sentry_dsn", "https://o1.ingest.sentry.io/42", "****"),
        ("otlp_endpoint", "https://user:hunter2@collector:4318/v1", "https://****@collector:4318/v1"),
        ("otlp_endpoint", "https://collector:4318?token=abc123def", "https://collector:4318?token=[REDACTED:token]"),
        ("otlp_headers", {"authorization": "Bearer k", "x-team": "core"}, {"authorization": "****", "x-team": "****"}),
        ("otlp_traces_headers", {"api-key": "k"}, {"api-key": "****"}),
        ("resource_attributes", {"api_token": "t-1", "team": "core"}, {"api_token": "****", "team": "core"}),
        ("resource_attributes", {"db_password": "pw"}, {"db_password": "****"}),
        ("some_api_key", "plain-value", "****"),
        ("my_secret", "plain-value", "****"),
        ("service_name", "shop", "shop"),
        ("otlp_timeout_ms", 10_000, 10_000),
        ("traces_sampler_arg", 0.1, 0.1),
        ("propagators", ["tracecontext", "baggage"], ["tracecontext", "baggage"]),
    ],
)
def test_cli_masks_credentials_and_keeps_plain_values(field, value, shown):
    """DSN keys and URL user-info, header values and secret-named fields are masked (****); others are shown."""
    assert cli.mask(field, value) == shown


def test_config_json_never_shows_a_configured_credential(capsys, monkeypatch):
    """`signalfire config --format json` shows the DSN's host but not its key, no OTLP header value, no endpoint
    password and no value of a secret-named resource attribute."""
    monkeypatch.setenv("SENTRY_DSN", "https://pubkey1234abcd@o1.ingest.sentry.io/42")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"https://user:{SECRET}@collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20tok-Hd83kL,x-team=core")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core,api_token=res-tok-9981")
    assert cli.main(["config", "--format", "json"]) == 0
    out = capsys.readouterr().out
    for secret in ("pubkey1234abcd", SECRET, "tok-Hd83kL", "res-tok-9981"):
        assert secret not in out
    document = json.loads(out)["settings"]
    assert document["sentry_dsn"]["value"] == "https://****@o1.ingest.sentry.io/42"
    assert document["resource_attributes"]["value"]["team"] == "core"


def test_doctor_table_never_shows_a_configured_credential(capsys, monkeypatch):
    """`signalfire doctor`'s table masks the same values as `config`."""
    monkeypatch.setenv("SENTRY_DSN", "https://pubkey1234abcd@o1.ingest.sentry.io/42")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=hdr-key-5521")
    monkeypatch.setattr(cli, "CHECKS", ())
    cli.main(["doctor", "--set", "traces_exporter=none"])
    out = capsys.readouterr().out
    assert "pubkey1234abcd" not in out
    assert "hdr-key-5521" not in out
    assert "https://****@o1.ingest.sentry.io/42" in out


# --- Sentry events: header pairs -------------------------------------------------------------------------------------
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token")


def _frame_event(pairs: list[list[str]]) -> dict[str, object]:
    frame = {"function": "handler", "vars": {"headers": pairs}}
    return {"exception": {"values": [{"type": "E", "value": "x", "stacktrace": {"frames": [frame]}}]}}


def _vars(event: dict[str, object]) -> list[list[str]]:
    return event["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]["headers"]  # type: ignore[index]


@pytest.mark.parametrize("name", [*CREDENTIAL_HEADERS, "x-csrf-token"])
@pytest.mark.parametrize("render", ["{}", "b'{}'", 'b"{}"', "{}".upper()])
def test_sentry_header_pairs_with_a_credential_name_are_redacted(name, render):
    """In frame locals, ``[name, value]`` header pairs (also as Sentry renders bytes, ``"b'cookie'"``) with a credential
    name lose their value; other pairs keep theirs."""
    shown_name = render.format(name)
    event = _errors.scrub_event(_frame_event([[shown_name, "val-Q7x2"], ["b'accept'", "text/html"]]))
    pairs = _vars(event)
    assert pairs[0][0] == shown_name
    assert pairs[0][1].startswith("[REDACTED:")
    assert pairs[1] == ["b'accept'", "text/html"]


@pytest.fixture
def cookie_allowed() -> Iterator[None]:
    """The running policy keeps ``cookie`` and ``authorization`` keys readable (SIGNALFIRE_SCRUB_ALLOW_KEYS)."""
    installed = _scrub.install(Settings.resolve(scrub_allow_keys=["cookie", "authorization", "x-api-key"]))
    yield
    _scrub.reset(installed)


@pytest.mark.usefixtures("cookie_allowed")
def test_sentry_credential_headers_are_redacted_even_when_allow_listed():
    """A credential header's value never reaches Sentry, in header pairs or request headers, even when the
    application allow-listed that key for its logs."""
    event = {
        "request": {"headers": {"Cookie": "sid=val-Q7x2", "Authorization": "val-Q7x3", "X-Api-Key": "val-Q7x4"}},
        **_frame_event([["b'cookie'", "sid=val-Q7x5"], ["authorization", "val-Q7x6"]]),
    }
    text = json.dumps(_errors.scrub_event(event))
    for value in ("val-Q7x2", "val-Q7x3", "val-Q7x4", "val-Q7x5", "val-Q7x6"):
        assert value not in text


# --- adversarial input -----------------------------------------------------------------------------------------------
KNOWN = "Kx7-known-Secret"  # registered with the policy
PER_CALL = "pc-Secret-42"  # a check's own configured secret

_pieces = st.sampled_from(
    [
        KNOWN,
        PER_CALL,
        "@",
        ":",
        "//",
        "://",
        "postgresql://",
        "redis://:",
        "password=",
        "PWD=",
        "[",
        "]",
        "'",
        '"',
        "#",
        "?",
        "=",
        ";",
        " ",
        "%40",
        "é",
        "\u202e",
        "\x00",
        "日本",
        "b'cookie'",
        "Bearer ",
        "\n",
    ]
)
_adversarial_text = st.one_of(
    st.lists(_pieces, max_size=30).map("".join),
    st.text(alphabet=string.printable + "é@日", max_size=200),
)


class Weird:
    """An object whose str() raises (its repr is hypothesis's, to report an example)."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("no format")


class Unprintable(Weird):
    """An object whose repr() raises too: added by the tests, never drawn."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


_odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    _adversarial_text,
    st.just(Weird()),
    st.just(float("inf")),
)
_values = st.recursive(
    _odd,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_adversarial_text, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def known_secret() -> Iterator[None]:
    _scrub.register_secret_values(KNOWN)
    yield
    _scrub._forget_registered()


def _no_secret(text: str, *, per_call: bool = True) -> None:
    assert KNOWN not in text
    if per_call:
        assert PER_CALL not in text


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HypothesisHealthCheck.function_scoped_fixture])


@FUZZ
@given(message=_adversarial_text)
async def test_health_errors_never_leak_a_known_secret_and_never_raise(known_secret, message):
    """Whatever a check raises, its error shows neither a registered secret nor the check's own, and the check
    reports a failure instead of raising."""
    result = await failure(message, secrets=(PER_CALL,))
    assert result.status == "fail"
    _no_secret(result.error)


@FUZZ
@given(details=st.dictionaries(_adversarial_text, _values, max_size=5))
async def test_health_details_never_leak_a_known_secret_and_never_raise(known_secret, details):
    """Details of any shape and type come back JSON-ready and without a known secret."""
    result = await failure("bad", secrets=(PER_CALL,), details={**details, "object": Unprintable()})
    _no_secret(json.dumps(result.details, default=str))


@FUZZ
@given(field=_adversarial_text, value=_values)
def test_cli_mask_never_leaks_a_known_secret_and_never_raises(known_secret, field, value):
    """Any field name and any value: mask() answers something printable without the registered secret."""
    _no_secret(json.dumps([cli.mask(field, value), cli.mask(field, Unprintable())], ensure_ascii=False), per_call=False)


@FUZZ
@given(pairs=st.lists(st.lists(_adversarial_text, min_size=2, max_size=2), max_size=5), extra=_values)
def test_sentry_scrubbing_never_leaks_a_known_secret_and_never_raises(known_secret, pairs, extra):
    """Header pairs and extra data of any shape: the scrubbed event has no registered secret, or scrubbing raises
    the one error the caller turns into a dropped event."""
    event = {**_frame_event(pairs), "extra": {"data": extra}}
    try:
        scrubbed = _errors.scrub_event(event)
    except TypeError:  # scrub_event's documented refusal: the caller drops the event (counted)
        return
    # Objects the policy leaves alone are shown by sentry-sdk's serializer later; here by their type.
    assert KNOWN not in json.dumps(scrubbed, default=lambda o: type(o).__name__, ensure_ascii=False)


def test_huge_values_are_scrubbed_within_the_cap():
    """A megabyte-long error, CLI value or header value is cut and scrubbed, never echoed whole."""
    huge = "x" * 1_000_000 + f" postgresql://app:{SECRET}@db/app"
    assert SECRET not in cli.mask("note", huge)
    assert SECRET not in json.dumps(_errors.scrub_event(_frame_event([["note", huge]])))


async def test_a_huge_health_error_is_cut():
    """A megabyte-long error message becomes a bounded, scrubbed error."""
    result = await failure("x" * 1_000_000 + f" password={SECRET}")
    assert len(result.error) < 10_000
    assert SECRET not in result.error


# --- one policy -------------------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(text=_adversarial_text)
def test_health_and_the_cli_redact_exactly_what_the_log_scrubber_redacts(text):
    """Without a check's own secrets and outside masked fields, a health error and a CLI value are the text as the
    shared scrubber leaves it in a log line: there is no second set of rules."""
    from signalfire import health

    expected = _scrub.active().scrub_text(text)
    assert health._scrub_text(text) == expected
    if _scrub.mask_url_userinfo(text, cli.MASK) is None:
        assert cli.mask("note", text, _scrub.active()) == expected


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:pa#ss-99x@cache:6379/0", "redis://:[REDACTED:password]@cache:6379/0"),
        ("redis://:pa?ss-99x@cache:6379/0", "redis://:[REDACTED:password]@cache:6379/0"),
        ("http://example.com:8080?email=ann@example.com", "http://example.com:8080?email=[REDACTED:email]"),
        ("options [password=hunter2-x]", "options [password=[REDACTED:password]]"),
        ("[REDACTED:password] kept", "[REDACTED:password] kept"),
    ],
)
def test_the_shared_policy_knows_the_url_and_connection_string_forms_health_knew(text, shown):
    """Passwords holding '#' or '?' in URLs and keys right after '[' are redacted in every sink (they were only in
    health responses before); a port and a query stay readable, and markers stay as they are."""
    assert _scrub.Scrubber().scrub_text(text) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://abc@o1.ingest.sentry.io/42", "https://****@o1.ingest.sentry.io/42"),
        ("https://u:p@ss#w?d@[::1]:4318/v1", "https://****@[::1]:4318/v1"),
        ("https://collector:4318/v1?x=a@b", None),
        ("see https://u:p@h", None),
        ("mailto:ann@example.com", None),
    ],
)
def test_the_user_info_of_a_configured_url_is_masked_whole(url, shown):
    """A URL's whole user-info (a DSN's key is its user) is masked, the host kept as written; text that only
    contains a URL is left to the value rules."""
    assert _scrub.mask_url_userinfo(url, "****") == shown
