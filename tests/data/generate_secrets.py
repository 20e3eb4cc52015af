"""Generate tests/data/secrets.json: realistic-looking but FAKE secrets (random, fixed seed).

Run: python tests/data/generate_secrets.py
"""

import base64
import json
import random
import string
from pathlib import Path

rng = random.Random(20261122)
A = string.ascii_letters + string.digits
U = string.ascii_uppercase + string.digits
H = "0123456789abcdef"


def r(n, alphabet=A):
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt(header, payload, siglen):
    return f"{b64url(header)}.{b64url(payload)}.{r(siglen, A + '-_')}"


def luhn_complete(prefix, length):
    digits = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        cand = digits + check
        total = 0
        for i, c in enumerate(reversed(cand)):
            n = int(c)
            if i % 2 == 1:
                n *= 2
                n -= 9 if n > 9 else 0
            total += n
        if total % 10 == 0:
            return cand


def pem(kind, lines):
    body = "\n".join(r(64, A + "+/") for _ in range(lines))
    return body, f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


E = []


def add(kind, secret, text=None):
    E.append({"kind": kind, "secret": secret, "text": text or secret})


add("jwt_hs256", jwt({"alg": "HS256", "typ": "JWT"}, {"sub": r(12), "iat": 1732200000 + rng.randrange(10**6)}, 43))
add("jwt_rs256", jwt({"alg": "RS256", "kid": r(16)}, {"sub": r(10), "scope": "read write", "exp": 1732300000}, 342))
add(
    "jwt_in_header",
    t := jwt({"alg": "ES256"}, {"uid": rng.randrange(10**6), "role": "admin"}, 86),
    f"Authorization: Bearer {t}",
)
add("jwt_unsigned", jwt({"alg": "none"}, {"sub": r(8), "tenant": r(6)}, 0).rstrip("."))
add("aws_access_key_id", "AKIA" + r(16, U))
add("aws_access_key_id", "AKIA" + r(16, U), None)
add("aws_session_key_id", "ASIA" + r(16, U))
add("aws_secret_access_key", s := r(40, A + "+/"), f"aws_secret_access_key = {s}")
add("github_pat_classic", "ghp_" + r(36))
add("github_oauth", "gho_" + r(36))
add("github_app", "ghs_" + r(36))
# the public format prefix github_pat_ is not secret (and shares "github" with the marker): only the random part
add("github_fine_grained", t := r(22) + "_" + r(59), "github_pat_" + t)
add("slack_bot", f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-{r(24)}")
add(
    "slack_user",
    f"xoxp-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-{r(32, H)}",
)
w = f"T{r(8, U)}/B{r(10, U)}/{r(24)}"
add("slack_webhook", w, f"posting to https://hooks.slack.com/services/{w} failed")
add("stripe_secret", "sk_live_" + r(99))
add("stripe_restricted", "rk_live_" + r(99))
add("stripe_test", "sk_test_" + r(24))
add("stripe_webhook_secret", "whsec_" + r(32))
add("google_api_key", "AIza" + r(35, A + "-_"))
add("openai_key", "sk-proj-" + r(48, A + "-_"))
add("anthropic_key", "sk-ant-api03-" + r(93, A + "-_"))
add("gitlab_pat", "glpat-" + r(20, A + "-_"))
add("npm_token", "npm_" + r(36))
add("sendgrid_key", "SG." + r(22, A + "-_") + "." + r(43, A + "-_"))
add("pypi_token", "pypi-AgEIcHlwaS5vcmc" + r(60, A + "-_"))
body, key = pem("RSA ", 8)
add("pem_rsa", body, key)
body, key = pem("EC ", 3)
add("pem_ec", body, key)
body, key = pem("OPENSSH ", 6)
add("pem_openssh", body, key)
body, key = pem("", 10)
add("pem_pkcs8", body, f"config loaded: key={key!r}")
add("card_visa", c := luhn_complete("4", 16))
add("card_visa_spaced", c := luhn_complete("4", 16), f"card {c[:4]} {c[4:8]} {c[8:12]} {c[12:]} declined")
add("card_mastercard", luhn_complete("5" + rng.choice("12345"), 16))
add("card_mastercard_2series", c := luhn_complete("2221", 16), "-".join([c[:4], c[4:8], c[8:12], c[12:]]))
add("card_amex", luhn_complete("3" + rng.choice("47"), 15))
add("card_discover", luhn_complete("6011", 16))
add("card_jcb", luhn_complete("35", 16))
add("postgres_password", p := r(20), f"postgresql://app:{p}@db.internal:5432/orders")
add("redis_password", p := r(24), f"redis://:{p}@cache.internal:6379/0")
add("amqp_password", p := r(18), f"amqp://svc_{r(4)}:{p}@rabbit.internal:5672/")
add("mongodb_password", p := r(22), f"mongodb+srv://reporting:{p}@cluster0.abcde.mongodb.net/?retryWrites=true")
add("https_basic_in_url", p := r(16), f"https://deploy:{p}@artifacts.example.com/simple/")
add("bearer_opaque", t := r(40, A + "-._~"), f"Authorization: Bearer {t}")
add("bearer_in_prose", t := r(32, H), f"retrying with bearer {t} after 401")
add("basic_header", c := base64.b64encode(f"svc-{r(5)}:{r(18)}".encode()).decode(), f"Authorization: Basic {c}")
add("basic_header_lower", c := base64.b64encode(f"{r(8)}:{r(12)}".encode()).decode(), f"proxy sent basic {c}")
add("query_access_token", t := r(32), f"/oauth/callback?state=ok&access_token={t}&expires_in=3600")
add("query_api_key", t := r(28), f"https://api.example.com/v1/rates?api_key={t}&base=EUR")
add("query_client_secret", t := r(40), f"/token?client_id=web&client_secret={t}")
add("query_password", t := r(14), f"/login?user=ann&password={t}")
add("query_signature", t := r(64, H), f"/download?file=report.pdf&X-Amz-Signature={t}")
add("env_password", t := r(20), f"DB_PASSWORD={t}")
add("secret_key_colon", t := r(50, A + "!@#%^*"), f"SECRET_KEY: {t}")
add("json_client_secret", t := r(36), json.dumps({"client_id": "web", "client_secret": t}))
add("cookie_header", t := r(32, H), f"Cookie: theme=dark; sessionid={t}")
add("set_cookie_header", t := r(40), f"Set-Cookie: session_id={t}; Path=/; HttpOnly")
add("password_kv_quoted", t := r(16, A + " -_"), f"login failed password='{t}'")
# --- templates: one line per new shape (kind, secret, text); each runs for several random values --------------------
TEMPLATES = [
    ("jwt_template", lambda: jwt({"alg": "HS512"}, {"sub": r(9), "n": rng.randrange(10**9)}, 64), "{s}"),
    ("aws_access_key_template", lambda: "AKIA" + r(16, U), "using key id {s} for s3"),
    ("github_pat_template", lambda: "ghp_" + r(36), "git clone with {s}"),
    ("stripe_live_template", lambda: "sk_live_" + r(40), "charging with {s}"),
    ("gitlab_template", lambda: "glpat-" + r(20, A + "-_"), "{s}"),
    ("card_visa_template", lambda: luhn_complete("4", 16), "card {s} declined"),
    ("card_mc_template", lambda: luhn_complete("5" + rng.choice("12345"), 16), "charged {s}"),
    ("pg_url_template", lambda: r(18), "postgresql://svc:{s}@db-{n}.internal:5432/app"),
    ("mysql_url_template", lambda: r(16), "mysql://root:{s}@mysql.internal/app"),
    ("https_url_template", lambda: r(20), "https://ci:{s}@repo.example.com/app.git"),
    ("bearer_template", lambda: r(36, A + "-._~"), "Authorization: Bearer {s}"),
    ("password_kv_template", lambda: r(14), "password={s}"),
    ("client_secret_kv_template", lambda: r(30), "client_secret: {s}"),
    ("api_key_kv_template", lambda: r(32), "api_key={s}"),
    ("access_token_kv_template", lambda: r(28), '{{"access_token": "{s}"}}'),
    ("private_key_kv_template", lambda: r(40), "private_key={s}"),
]
# 98 entries here (104 with the pending ones): tests/integration/test_sentry.py puts one breadcrumb per entry and
# counts them, and sentry-sdk keeps 100 by default (max_breadcrumbs), two of which its ASGI integration takes; the
# templates take turns so that every shape has two or three values.
CORPUS_SIZE = 98
for n in range(3):
    for kind, make, template in TEMPLATES:
        if len(E) < CORPUS_SIZE:
            value = make()
            add(kind, value, template.format(s=value, n=n))

# Shapes other branches detect (prefix-free credentials): kept apart ("pending"), so that only the leak audit sees them
# (as strict xfails); once that branch is merged, move them into the corpus.
PENDING_ENTRIES = []
PENDING = [
    ("scrub", "vault_token", lambda: "hvs." + r(90, A + "_-"), "vault token {s}"),
    ("scrub", "google_oauth_access_token", lambda: "ya29." + r(120, A + "-_"), "{s}"),
    ("scrub", "huggingface_token", lambda: "hf_" + r(34), "HF token {s}"),
    ("scrub", "shopify_token", lambda: "shpat_" + r(32, H), "{s}"),
    ("scrub", "azure_account_key", lambda: r(86, A + "+/") + "==", "AccountKey={s};EndpointSuffix=core.windows.net"),
    ("scrub", "cloud_secret_after_key", lambda: r(40, A + "+/"), "the key {s} was rotated"),
]
for helper, kind, make, template in PENDING:
    value = make()
    PENDING_ENTRIES.append({"kind": kind, "secret": value, "text": template.format(s=value), "fixed_by": helper})

# Values operators need, which must arrive unchanged ("wrongly redacted" when they do not).
OPERATOR = [
    ("request_id", f"{rng.getrandbits(128):032x}", None),
    ("uuid", "-".join(r(n, H) for n in (8, 4, 4, 4, 12)), None),
    ("timestamp_ms", str(1764547200000 + rng.randrange(10**8)), None),
    ("timestamp_ns", str(1764547200000000000 + rng.randrange(10**15)), None),
    ("count", str(rng.randrange(10, 10**6)), None),
    ("order_number", "ORD-" + str(rng.randrange(10**9, 10**10)), None),
    # Luhn-valid, with a Visa first digit but a length no card network issues (a 16-digit Visa-prefixed Luhn-valid
    # number is a card by every rule, and rightly redacted).
    ("luhn_order_number", luhn_complete("4", 14), "scrub"),
    ("imei", luhn_complete("35", 15), "scrub"),
    ("long_numeric_id", str(rng.randrange(10**17, 10**18)), None),
]
OPERATOR_VALUES = [
    {"kind": kind, "value": value, **({"fixed_by": helper} if helper else {})} for kind, value, helper in OPERATOR
]

DESCRIPTION = (
    "FAKE secrets generated with a fixed seed for tests (not real credentials). "
    "'secret' is what must never appear; 'text' is the secret in its natural context. 'pending': shapes whose "
    "detector is on another branch ('fixed_by'). 'operator_values' must arrive unchanged."
)
with Path(__file__).with_name("secrets.json").open("w") as out:
    document = {
        "description": DESCRIPTION,
        "secrets": E,
        "pending": PENDING_ENTRIES,
        "operator_values": OPERATOR_VALUES,
    }
    json.dump(document, out, indent=1)
print(len(E))
