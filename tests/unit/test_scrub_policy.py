"""The scrubber's policy: known secret values, prefix-free credentials, and the operator values it keeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import signalfire
from signalfire._scrub import _policy as _scrub
from signalfire._scrub._policy import Scrubber, scrub_attribute
from signalfire._settings import Settings, secret_environment_values


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    yield
    _scrub._forget_registered()


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber()


# --- known secrets by value -------------------------------------------------------------------------------------
def test_registered_secret_is_redacted_wherever_it_appears(scrubber):
    """A registered value is redacted under any key, inside text, in a query string and as a dict key's value."""
    signalfire.register_secret("wh-7Tq9Lz2Kp-note")
    assert scrubber.scrub_text("signed with wh-7Tq9Lz2Kp-note ok") == "signed with [REDACTED:secret] ok"
    assert scrubber.scrub({"note": ["wh-7Tq9Lz2Kp-note"]}) == {"note": ["[REDACTED:secret]"]}
    assert scrubber.scrub_query("q=wh-7Tq9Lz2Kp-note&page=2") == "q=[REDACTED:secret]&page=2"
    assert scrub_attribute(scrubber, "db.note", "x wh-7Tq9Lz2Kp-note") == "x [REDACTED:secret]"


def test_registering_forgets_strings_seen_clean(scrubber):
    """A string cached as clean before its secret was registered is redacted after."""
    fields = {"note": "contains letmein-0123456 here"}
    assert scrubber.scrub_fields(dict(fields)) == fields
    _scrub.register_secret_values("letmein-0123456")
    assert scrubber.scrub_fields(dict(fields)) == {"note": "contains [REDACTED:secret] here"}


def test_short_and_odd_values_are_not_registered(scrubber):
    """Values shorter than 6 characters, empty values and non-strings are ignored: ordinary text survives."""
    assert _scrub.register_secret_values("admin", "", None, 12345678, "   ") == 0
    assert scrubber.scrub_text("admin logged in") == "admin logged in"


def test_url_passwords_are_registered_for_the_integrations(scrubber):
    """register_url_secrets takes a database or Redis URL and redacts its password anywhere afterwards."""
    assert _scrub.register_url_secrets("postgresql://app:Zx%40pw-98765@db/app") == 2
    assert scrubber.scrub_text("auth failed for Zx@pw-98765") == "auth failed for [REDACTED:secret]"


def test_settings_secrets_are_known_after_init(monkeypatch):
    """The DSN's password, OTLP header values and secret-named variables are redacted by value after init."""
    monkeypatch.setenv("PAYMENTS_API_KEY", "pk-live-5Hq8Zt2")
    monkeypatch.setenv("SIGNALFIRE_SERVICE_NAME", "checkout")
    signalfire.init_observability(
        traces_exporter="none", otlp_headers="x-honeycomb-team=hcteam-42abcdef,authorization=Bearer otlp-tok-9876"
    )
    try:
        text = "values: pk-live-5Hq8Zt2 hcteam-42abcdef otlp-tok-9876 checkout"
        assert signalfire.scrub(text) == "values: [REDACTED:secret] [REDACTED:secret] [REDACTED:secret] checkout"
    finally:
        signalfire.shutdown()


def test_environment_secrets_are_read_by_name_and_from_urls():
    """Secret-named variables give their value; URLs in any variable give their password; PWD is not a secret."""
    environ = {
        "DB_PASSWORD": "pw-1",
        "STRIPE_SECRET_KEY": "sk-2",
        "GITHUB_TOKEN": "t-3",
        "DATABASE_URL": "postgresql://u:url-pw-4@db/x",
        "SENTRY_DSN": "https://pub@o0.ingest.sentry.io/1",
        "PWD": "/srv/app",
        "TOKENIZERS_PARALLELISM": "false",
        "TOKEN_TYPE_NAME": "bearer",
    }
    assert sorted(secret_environment_values(environ)) == ["pw-1", "sk-2", "t-3", "url-pw-4"]


def test_settings_hold_the_environment_secrets_without_showing_them(monkeypatch):
    """Settings collects the values once, but they are no field: not dumped, not compared, not documented."""
    monkeypatch.setenv("APP_SECRET", "s3cr3t-value")
    settings = Settings.resolve()
    assert "s3cr3t-value" in settings.secret_values
    assert "s3cr3t-value" not in repr(settings.model_dump())


# --- prefix-free credentials ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("using key hkTU9xZrPKyw7zsJXSAs655mGj4N/MCnlEEpXhqU now", "hkTU9xZrPKyw7zsJXSAs655mGj4N/MCnlEEpXhqU"),
        ("secret: 5lb2VshrU41s7R4hYkQpHlegeg00J1", "5lb2VshrU41s7R4hYkQpHlegeg00J1"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=q9Zt2Lm8Xc4Vb7Nn1Rr5Tt6Yy3Uu0Ii9Oo8Pp7Aa6Ss==;",
            "q9Zt2Lm8Xc4Vb7Nn1Rr5Tt6Yy3Uu0Ii9Oo8Pp7Aa6Ss==",
        ),
        ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=Kq2Zr8Lm4Xc7Vb1Nn5==", "Kq2Zr8Lm4Xc7Vb1Nn5=="),
        ("Server=db;User Id=app;Password=Pw0rd-Kq2Zr8;Database=x", "Pw0rd-Kq2Zr8"),
        ("vault token hvs.CAESIJq2Zr8Lm4Xc7Vb1Nn5Rr9Tt3Yy", "hvs.CAESIJq2Zr8Lm4Xc7Vb1Nn5Rr9Tt3Yy"),
        ("Authorization: ya29.a0AfH6SMBq2Zr8Lm4Xc7Vb1Nn5Rr9", "ya29.a0AfH6SMBq2Zr8Lm4Xc7Vb1Nn5Rr9"),
        ("HF hf_Kq2Zr8Lm4Xc7Vb1Nn5Rr9Tt3Yy6Uu0Ii", "hf_Kq2Zr8Lm4Xc7Vb1Nn5Rr9Tt3Yy6Uu0Ii"),
        ("shop shpat_0123456789abcdef0123456789abcdef", "shpat_0123456789abcdef0123456789abcdef"),
        ("login user=ann pass=Kq2Zr8Lm done", "Kq2Zr8Lm"),
        ("cookie session=Zr8Lm4Xc7Vb1; path=/", "Zr8Lm4Xc7Vb1"),
        ("refund to DE89 3704 0044 0532 0130 00 today", "3704 0044 0532 0130"),
        ("refund to GB82WEST12345698765432 today", "WEST12345698765432"),
        ("call +44 20 7946 0958 or (415) 555-2671", "7946 0958"),
        ("reach ann.lee@example.co.uk please", "ann.lee@example"),
    ],
)
def test_prefix_free_credentials_are_redacted(scrubber, text, secret):
    """Credentials without a vendor prefix, connection-string keys, vendor tokens, IBANs, phones, emails."""
    scrubbed = scrubber.scrub_text(text)
    assert secret not in scrubbed
    assert "[REDACTED:" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "key 4bf92f3577b34da6a3ce929d0e0e4736 for trace",  # a trace id (lower-case hex) is an identifier
        "the secret ingredient is love",
        "DE is the country, 89 the count",
        "token: refreshed",
    ],
)
def test_identifiers_and_words_next_to_secret_words_are_kept(scrubber, text):
    """Hashes, trace ids and words after "key"/"secret"/"token:" are not secret-shaped and are kept."""
    assert scrubber.scrub_text(text) == text


def test_email_phone_and_card_policy_is_the_same_in_every_call(scrubber):
    """Text, nested values, query strings and span attributes redact emails, phones and cards alike."""
    text = "ann@example.com +44 20 7946 0958 4111 1111 1111 1111"
    expected = "[REDACTED:email] [REDACTED:phone] [REDACTED:card]"
    assert scrubber.scrub_text(text) == expected
    assert scrubber.scrub({"m": text}) == {"m": expected}
    assert scrubber.scrub_fields({"m": text}) == {"m": expected}
    assert scrub_attribute(scrubber, "m", text) == expected


# --- precision ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("auth_required", True),
        ("password_set", False),
        ("token_count", 3),
        ("auth_latency_ms", 12.5),
        ("token_expires_at", "2026-12-01T10:00:00Z"),
        ("token_expires_in", 3600),
        ("api_key_id", "key_7f3a"),
        ("secret_rotated_at", "2026-11-30"),
        ("token_status", "valid"),
        ("session_count", 4),
        ("gen_ai.usage.input_tokens", 1200),
        ("gen_ai.usage.output_tokens", 80),
        ("password", True),
        ("token", 42),
    ],
)
def test_metadata_about_secrets_is_kept(scrubber, key, value):
    """Keys naming metadata about a secret, and booleans and numbers under sensitive keys, keep their value."""
    assert scrubber.scrub({key: value}) == {key: value}
    assert scrubber.scrub_fields({key: value}) == {key: value}
    assert scrub_attribute(scrubber, key, value) == value


@pytest.mark.parametrize("key", ["session_id", "sessionId", "aws_access_key_id", "PHPSESSID", "password", "token"])
def test_ids_that_are_the_secret_stay_redacted(scrubber, key):
    """A session id or an access key id is the credential itself."""
    assert scrubber.scrub({key: "abc-123-xyz"}) == {key: f"[REDACTED:{scrubber.key_category(key)}]"}


@pytest.mark.parametrize(("key", "value"), [("pin", 1234), ("cvv", 123), ("otp", 654321), ("card", 4111111111111111)])
def test_numbers_that_are_the_secret_stay_redacted(scrubber, key, value):
    """Under pin, cvv, otp, ssn and card keys a number is the secret."""
    assert scrubber.scrub({key: value})[key].startswith("[REDACTED:")
    assert scrub_attribute(scrubber, key, value).startswith("[REDACTED:")


@pytest.mark.parametrize(
    "number",
    [
        "1732252540123",  # a millisecond timestamp
        "490154203237518",  # a 15-digit IMEI (Luhn-valid, no card network issues 15 digits under 49)
        "352099001761481",  # an IMEI under 35 (JCB issues 16 to 19 digits there)
        "7000000000000006",  # a Luhn-valid order number without an issuer prefix
        "4111 11 1111 111111",  # a Visa number's digits, but not written as cards are written
        "9990000000000001",
    ],
)
def test_digit_runs_without_card_context_are_kept(scrubber, number):
    """Luhn-valid order numbers, IMEIs and long ids survive, in text and as integers."""
    assert scrubber.scrub_text(f"order {number} shipped") == f"order {number} shipped"
    if number.isdigit():
        as_int = int(number)
        assert scrubber.scrub({"order": as_int}) == {"order": as_int}
        assert scrub_attribute(scrubber, "order.id", as_int) == as_int


@pytest.mark.parametrize(
    "card", ["4111111111111111", "4111-1111-1111-1111", "3782 822463 10005", "5500 0000 0000 0004", "6011000990139424"]
)
def test_card_numbers_are_redacted_in_text_and_as_integers(scrubber, card):
    """Card numbers (issuer prefix, length, Luhn, card-like grouping) are redacted, integers the same in every sink."""
    assert scrubber.scrub_text(f"paid with {card}.") == "paid with [REDACTED:card]."
    digits = int(card.replace(" ", "").replace("-", ""))
    assert scrubber.scrub({"n": digits}) == {"n": "[REDACTED:card]"}
    assert scrubber.scrub_fields({"n": digits}) == {"n": "[REDACTED:card]"}
    assert scrub_attribute(scrubber, "n", digits) == "[REDACTED:card]"
    assert scrub_attribute(scrubber, "ns", (1, digits)) == (1, "[REDACTED:card]")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE users SET hashed_password=%(hashed_password)s WHERE id=%(id)s",
        "UPDATE users SET password = %s WHERE id = %s",
        "UPDATE users SET password = :password WHERE id = :id",
        "UPDATE users SET password = $1 WHERE id = $2",
        "UPDATE users SET password = ? WHERE id = ?",
        "INSERT INTO t (token) VALUES (@token)",
        "token={token} in template",
    ],
)
def test_placeholders_are_never_values(scrubber, statement):
    """Parameter placeholders in statements and templates are kept as they are."""
    assert scrubber.scrub_text(statement) == statement


def test_words_and_literals_after_a_sensitive_key_are_kept(scrubber):
    """'token: refreshed' and 'password=null' keep their value; 'password: hunter2' and 'token=refreshed' do not."""
    assert scrubber.scrub_text("token: refreshed") == "token: refreshed"
    assert scrubber.scrub_text("password=null auth=false") == "password=null auth=false"
    assert scrubber.scrub_text("password: hunter2") == "password: [REDACTED:password]"
    assert scrubber.scrub_text("token=refreshed") == "token=[REDACTED:token]"


def test_custom_key_headers_are_credentials_and_other_keys_stay_readable() -> None:
    """A custom header named X-...-Key is redacted whole; identifiers named *_key (cache, sort) are kept."""
    scrubbed = signalfire.scrub(
        {"X-Service-Key": "a1b2c3d4e5f6a7b8", "x-signing-key": "k" * 20, "cache_key": "user:42", "sort_key": "b"}
    )
    assert scrubbed == {
        "X-Service-Key": "[REDACTED:api_key]",
        "x-signing-key": "[REDACTED:secret]",  # "signing key" names a secret on its own
        "cache_key": "user:42",
        "sort_key": "b",
    }
