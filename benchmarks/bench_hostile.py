"""Worst-case cost of one request carrying hostile input, per request part, against a normal request.

    python -m benchmarks.bench_hostile [--rounds 5]            # CPU time, paired with normal requests in one process
    python -m benchmarks.run --only hostile --rounds 3          # the same, plus instructions under callgrind

Each part (the query, the path, the user agent, the referer, a logged request body) gets the largest hostile value
the server accepts for it, sent as a full request through the real middleware, in process through ASGI (as the
request section does), with signalfire's full stack (production preset, 100% sampling, access log, RED metrics, OTLP
traces and logs to a loopback sink, Sentry DSN on loopback). The handler of ``/search`` logs its ``q`` parameter, as
applications log what a user searched for, so the query is scrubbed in the middleware, in the access line, in the
log line and at the wire.

- **Largest accepted size**: uvicorn's HTTP/1.1 parser here is h11 (httptools is not installed); h11 refuses a request
  whose head (request line and headers) is still incomplete past ``max_incomplete_event_size`` (16 KiB by default,
  uvicorn's ``h11_max_incomplete_event_size`` leaves it so). :func:`largest_accepted` finds, by bisection against a
  real ``h11.Connection`` fed one TCP segment at a time, the longest value of each part h11 still accepts. A body is
  not bounded by the server; a logged value is cut at SIGNALFIRE_SCRUB_MAX_LENGTH (64 KiB), so that part is 64 KiB.
- **Hostile values** are built from the scrubber's own pattern prefixes and separators (:data:`UNITS` repeated, then
  one of :data:`TAILS`): ``basic%2B`` then ``%3D%3D%3D``, runs of ``eyJ``, ``a://``, ``:@``, digit groups,
  ``password=`` and quotes, ... For each part the slowest of them (one request each, thread CPU) is the worst case.
- **Cost**: CPU time of the whole process (every thread: the batch span processor's export and the log exporter
  included, forced at the end of each batch with ``force_flush``) per request, hostile batches alternating with
  normal batches (normal values vary per request, so no cache helps them); the ratio is the median of the per-pair
  ratios. Under ``--instructions`` (run.py runs it under ``valgrind --tool=callgrind --dump-before=getpgrp``) each
  phase ends with ``os.getpgrp()``, so callgrind writes one count per phase: instructions per request, reproducible.

``--against OLD_SCRUB.py`` compares this scrubber with another version of ``_scrub.py`` in one process on the
scrubber's own calls (a typical log event, a typical span attribute set, the reported hostile inputs).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks._harness when run as a script

# The shapes a hostile client repeats: every pattern's prefixes, separators and body characters.
UNITS = (
    "basic%2B",
    "basic+",
    "Bearer%20",
    "eyJ",
    "eyJ.",
    "%3D",
    "a://",
    ":@",
    "password=",
    "password='",
    'token="\\',
    "4111 ",
    "4-1",
    "+1 ",
    "(415) ",
    "a@a.",
    "%(",
    "DE89 ",
    "key Aa1+",
    "ghp_",
    "sk-",
    "xoxb-",
    "-----BEGIN RSA PRIVATE KEY-----",
    '{"password":',
    "x=",
    "x=1&",
    "k{}=",  # distinct keys: k0=k1=k2=... (each key judged once, so a repeated one would hide the cost)
)
TAILS = ("", "%3D%3D%3D", "===", ".", "@", "'", " password")
BODY_SIZE = 65_536  # SIGNALFIRE_SCRUB_MAX_LENGTH's default: a logged value is cut there
NORMAL_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
NORMAL_REFERER = "https://shop.example.com/items?page=2&sort=price"
PARTS = ("query", "path", "header user-agent", "header referer", "logged body")


def _fill(unit: str, length: int, tail: str) -> str:
    if "{}" in unit:  # numbered: every repetition distinct
        text = "".join(unit.format(i) for i in range(length // (len(unit) - 1) + 1))
    else:
        text = unit * (length // len(unit) + 1)
    return text[: length - len(tail)] + tail


def vary(value: str, n: int) -> str:
    """``value`` with its first characters replaced by the request's number: a hostile client sends a fresh value each
    time, so no memo of a previous request's scrub helps it (within one request the same value may still share work).
    The length stays the same, and so does the shape after the first few characters."""
    tag = f"{n}-"
    return tag + value[len(tag) :] if len(value) > 2 * len(tag) else value


def _url_safe(value: str) -> str:
    """A hostile value as it can stand in a request target (visible ASCII, no space)."""
    return value.replace(" ", "+")


# --- the request --------------------------------------------------------------------------------------------------
class Request:
    """One request's parts: method, path, query, headers, body."""

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, n: int, part: str | None = None, value: str = "") -> None:
        self.method = "GET"
        self.path = "/search"
        self.query = f"q=running+shoes+{n}&page=2"
        self.headers = [
            ("host", "shop.example.com"),
            ("user-agent", f"{NORMAL_USER_AGENT} {n}"),
            ("referer", f"{NORMAL_REFERER}&n={n}"),
            ("accept", "*/*"),
        ]
        self.body = b""
        if part is not None:
            value = vary(value, n)
        if part == "query":
            self.query = f"q={value}"
        elif part == "path":
            self.path = f"/search/{value}"
        elif part is not None and part.startswith("header "):
            name = part.removeprefix("header ")
            self.headers = [(k, value if k == name else v) for k, v in self.headers]
        elif part == "logged body":
            self.method, self.path, self.query, self.body = "POST", "/notes", "", value.encode()
        elif part is not None:
            raise ValueError(part)

    def head(self) -> bytes:
        """The HTTP/1.1 request head as a client sends it."""
        target = self.path + (f"?{self.query}" if self.query else "")
        lines = [f"{self.method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in self.headers)]
        if self.body:
            lines.append(f"content-length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": unquote(self.path),  # as uvicorn gives it: percent-decoded, the raw target beside
            "raw_path": self.path.encode("latin-1"),
            "root_path": "",
            "query_string": self.query.encode("latin-1"),
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers],
            "client": ("203.0.113.7", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }


def h11_accepts(head: bytes, segment: int = 1448) -> bool:
    """Whether uvicorn's h11 protocol (its default limit) parses this request head into a request when it arrives as
    the network delivers it, one TCP segment (a 1500-byte MTU's payload) at a time, each handed to h11 as it comes.

    h11 checks its limit only on an incomplete head: a larger head that lands in one read is accepted, which happens
    on loopback (one 64 KiB segment) but not across a network, where the server reads segments as they arrive."""
    import h11
    import uvicorn

    limit = uvicorn.Config(app=None).h11_max_incomplete_event_size
    kwargs = {} if limit is None else {"max_incomplete_event_size": limit}
    conn = h11.Connection(h11.SERVER, **kwargs)
    try:
        for offset in range(0, len(head), segment):
            conn.receive_data(head[offset : offset + segment])
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return True
    except h11.RemoteProtocolError:
        return False
    return False


def largest_accepted(part: str) -> int:
    """The longest value of ``part`` whose request head h11 accepts (bisection on a value of URL-safe 'a's)."""
    if part == "logged body":
        return BODY_SIZE
    low, high = 0, 1 << 17
    while low < high:
        mid = (low + high + 1) // 2
        if h11_accepts(Request(0, part, "a" * mid).head()):
            low = mid
        else:
            high = mid - 1
    return low


def candidates(part: str, size: int) -> list[str]:
    values = [_fill(unit, size, tail) for unit in UNITS for tail in TAILS]
    if part in ("query", "path"):
        values = [_url_safe(v) for v in values]
    return [v for v in values if part == "logged body" or h11_accepts(Request(0, part, v).head())]


# --- the app --------------------------------------------------------------------------------------------------------
NATIVE_OFF = {"tracing": False, "metrics": False, "logs": False}  # FastAPI(telemetry=...): its own wrapper off


def build_app(bare: bool = False, native: bool = True) -> Any:
    """A FastAPI app with signalfire's full stack (or none: ``bare``) whose handlers log what they receive; ``native``
    False builds it with FastAPI's native telemetry off (``FastAPI(telemetry=NATIVE_OFF)``, FastAPI >= 0.142)."""
    import logging

    from fastapi import FastAPI
    from fastapi import Request as FastAPIRequest

    import signalfire

    app = FastAPI() if native else FastAPI(telemetry=NATIVE_OFF)  # type: ignore[call-arg]
    log: Any = logging.getLogger("shop") if bare else signalfire.get_logger("shop")

    @app.get("/search")
    async def search(q: str = "", page: int = 1) -> dict[str, Any]:
        if bare:
            log.info("search q=%s page=%s", q, page)
        else:
            log.info("search", q=q, page=page)
        return {"q_length": len(q), "page": page, "results": []}

    @app.post("/notes")
    async def notes(request: FastAPIRequest) -> dict[str, Any]:
        body = (await request.body()).decode("utf-8", "replace")
        if bare:
            log.info("note received: %s", body)
        else:
            log.info("note received", note=body)
        return {"length": len(body)}

    if bare:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        return app, None
    return app, signalfire.init_observability(app)


class Driver:
    """Calls the ASGI app directly, as benchmarks/apps.AsgiDriver does, with a request's own parts and body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.status = 0

    async def request(self, request: Request) -> int:
        body = request.body
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]

        await self.app(request.scope(), receive, send)
        return self.status


async def _lifespan(app: Any) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    queue.put_nowait({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, queue.get, send))
    await asyncio.wait_for(started.wait(), 10)
    return queue, task


# --- measuring --------------------------------------------------------------------------------------------------------
class Bench:
    """The app, its driver and the fresh-value counter of one measuring process."""

    def __init__(self, bare: bool = False, native: bool = True) -> None:
        self.app, self.obs = build_app(bare, native)
        self.driver = Driver(self.app)
        self.counter = itertools.count()

    def normal(self) -> Request:
        return Request(next(self.counter))

    async def batch(self, make: Callable[[], Request], count: int) -> float:
        """CPU seconds of the whole process per request, export included (flushed before the clock stops)."""
        requests = [make() for _ in range(count)]
        start = time.process_time()
        for request in requests:
            await self.driver.request(request)
        self.flush()
        return (time.process_time() - start) / count

    def flush(self) -> None:
        """Export the spans and log records of the batch (metrics are periodic, not per request: left out)."""
        if self.obs is None:
            return
        for name, flush in self.obs._flushers:
            if name != "metrics":
                flush(30)

    async def worst(self, part: str, size: int) -> str:
        """The hostile value of ``part`` whose request costs the most (one request each, export included)."""
        values = candidates(part, size)
        costs = [await self.batch(lambda value=value: Request(next(self.counter), part, value), 1) for value in values]
        return values[costs.index(max(costs))]


def _settle() -> None:
    """Collect, then move every object alive into the collector's permanent generation (``gc.freeze()``).

    A hostile query of 4,000 parameters allocates some 40,000 objects in FastAPI's ``parse_qsl``; a full collection
    that falls inside a phase traverses every object of the process (the app, the SDKs, the modules), millions of
    instructions, and where one falls depends on the allocation history, so the added cost of a phase moved by more
    than signalfire's own work. Frozen start-up objects are never traversed again, and the generation counters are
    reset at the start of each measured phase."""
    import gc

    gc.collect()
    gc.freeze()


async def measure(
    rounds: int,
    normal_count: int,
    hostile_count: int,
    bare: bool = False,
    values: dict[str, str] | None = None,
    native: bool = True,
) -> dict[str, Any]:
    """Per part: the worst hostile value (searched, or given in ``values``) against normal requests, paired."""
    bench = Bench(bare, native)
    queue, task = await _lifespan(bench.app)
    await bench.batch(bench.normal, normal_count)  # warm-up
    _settle()
    results: dict[str, Any] = {}
    for part in PARTS:
        size = largest_accepted(part)
        value = values[part] if values and part in values else await bench.worst(part, size)

        def hostile(part: str = part, value: str = value) -> Request:
            return Request(next(bench.counter), part, value)

        status = await bench.driver.request(hostile())
        normal_us, hostile_us, ratios = [], [], []
        for r in range(rounds):
            order = ((bench.normal, normal_count), (hostile, hostile_count))
            pair = [0.0, 0.0]
            for which, (make, count) in enumerate(order) if r % 2 == 0 else reversed(list(enumerate(order))):
                pair[which] = await bench.batch(make, count)
            normal_us.append(pair[0] * 1e6)
            hostile_us.append(pair[1] * 1e6)
            ratios.append(pair[1] / pair[0])
        results[part] = {
            "size": size,
            "value": value[:40],
            "full_value": value,
            "status": status,
            "normal_us": statistics.median(normal_us),
            "hostile_us": statistics.median(hostile_us),
            "ratio": statistics.median(ratios),
            "us_per_kib": (statistics.median(hostile_us) - statistics.median(normal_us)) / (size / 1024),
        }
    queue.put_nowait({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 10)
    return results


async def instructions(
    count: int, values: dict[str, str] | None = None, bare: bool = False, native: bool = True
) -> dict[str, Any]:
    """Phases separated by ``os.getpgrp()`` for callgrind's ``--dump-before=getpgrp``: warm-up, normal, then per part
    the worst-value search (discarded; skipped for the parts ``values`` gives) and ``count`` hostile requests, each
    followed by ``count`` normal ones."""
    bench = Bench(bare, native)
    queue, task = await _lifespan(bench.app)
    phases = ["start-up", "warm-up"]
    os.getpgrp()
    await bench.batch(bench.normal, count)
    _settle()
    os.getpgrp()
    for part in PARTS:
        size = largest_accepted(part)
        value = values[part] if values and part in values else await bench.worst(part, size)
        await bench.batch(lambda part=part, value=value: Request(next(bench.counter), part, value), 1)  # warm
        _settle()  # in the discarded phase: each part's hostile phase starts from the same collector state
        phases.append(f"search {part}")
        os.getpgrp()
        await bench.batch(lambda part=part, value=value: Request(next(bench.counter), part, value), count)
        phases.append(f"hostile {part}")
        os.getpgrp()
        await bench.batch(bench.normal, count)
        phases.append(f"normal after {part}")
        os.getpgrp()
    queue.put_nowait({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 10)
    return {"phases": phases, "count": count, "sizes": {part: largest_accepted(part) for part in PARTS}}


def read_dumps(prefix: str, result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Instructions per request per part from callgrind's per-phase dumps (``<prefix>.1``, ``.2``, ...)."""
    totals = []
    for index in range(1, len(result["phases"]) + 1):
        text = Path(f"{prefix}.{index}").read_text(errors="replace")
        summary = next(line for line in text.splitlines() if line.startswith(("summary:", "totals:")))
        totals.append(int(summary.split()[1]))
    by_phase = dict(zip(result["phases"], totals, strict=False))
    count = result["count"]
    # one normal figure for every part: the median of the normal phases (the one after a part can carry its tail)
    normal = statistics.median(by_phase[f"normal after {part}"] for part in PARTS) / count
    out = {}
    for part in PARTS:
        hostile = by_phase[f"hostile {part}"] / count
        out[part] = {"normal": normal, "hostile": hostile, "ratio": hostile / normal}
    return out


# The four apps of the instructions table: (bare, native). "bare" has no provider, so FastAPI's own wrapper does not
# run there whatever its telemetry says; with signalfire's providers it runs unless the app turns it off.
VARIANTS: dict[str, tuple[bool, bool]] = {
    "signalfire": (False, True),
    "bare": (True, True),
    "signalfire_native_off": (False, False),
    "bare_native_off": (True, False),
}


def instruction_counts(
    values: Path, env: dict[str, str], count: int = 5, timeout: float = 3600
) -> dict[str, dict[str, dict[str, float]]]:
    """Instructions per request per part for each of :data:`VARIANTS` (one callgrind child each, ``values`` given)."""
    import shutil

    from benchmarks._harness import run_child

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise OSError("valgrind is not installed")
    counts = {}
    with tempfile.TemporaryDirectory(prefix="sfhostile-cg-") as tmp:
        for name, (bare, native) in VARIANTS.items():
            out = f"{tmp}/{name}.out"
            prefix = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-before=getpgrp"]
            args = ["--instructions", "--count", str(count), "--values", str(values)]
            args += (["--bare"] if bare else []) + ([] if native else ["--native-off"])
            counts[name] = read_dumps(out, run_child("bench_hostile", args, env, timeout, prefix))
    return counts


def added_costs(counts: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per part, from :func:`instruction_counts`: the total ratio (hostile/normal request, signalfire's full stack),
    the bare app's own ratio, and signalfire's *added* cost on the hostile input over its added cost on a normal
    request ((signalfire - bare) hostile / (signalfire - bare) normal), with FastAPI's native telemetry on and off;
    ``fastapi_wrapper_extra`` is what FastAPI's own wrapper (native on minus off, signalfire's providers) adds on the
    hostile input beyond what it adds on a normal request (k instructions): FastAPI's cost, not signalfire's."""
    rows: dict[str, dict[str, float]] = {}
    for part in counts["signalfire"]:
        row: dict[str, float] = {}
        for label, sf, bare in (("on", "signalfire", "bare"), ("off", "signalfire_native_off", "bare_native_off")):
            s, b = counts[sf][part], counts[bare][part]
            row[f"normal_{label}"] = s["normal"]
            row[f"hostile_{label}"] = s["hostile"]
            row[f"total_{label}"] = s["hostile"] / s["normal"]
            row[f"bare_{label}"] = b["hostile"] / b["normal"]
            row[f"added_normal_{label}"] = s["normal"] - b["normal"]
            row[f"added_hostile_{label}"] = s["hostile"] - b["hostile"]
            row[f"added_{label}"] = (s["hostile"] - b["hostile"]) / (s["normal"] - b["normal"])
        on, off = counts["signalfire"][part], counts["signalfire_native_off"][part]
        row["fastapi_wrapper_extra"] = ((on["hostile"] - off["hostile"]) - (on["normal"] - off["normal"])) / 1000
        rows[part] = row
    return rows


def print_added(rows: dict[str, dict[str, float]]) -> None:
    """The instructions table: per part and native setting, signalfire's counts, the ratios and the added cost."""
    for label in ("on", "off"):
        print(f"FastAPI's native telemetry {label}: k instructions per request")
        head = f"  {'part':18} {'signalfire n/h':>17} {'total':>6} {'bare':>6} {'added n/h':>15} {'added':>6}"
        print(head + (f" {'FastAPI wrapper extra':>22}" if label == "off" else ""))
        for part, r in rows.items():
            line = (
                f"  {part:18} {r[f'normal_{label}'] / 1000:8.0f}/{r[f'hostile_{label}'] / 1000:8.0f} "
                f"{r[f'total_{label}']:6.2f} {r[f'bare_{label}']:6.2f} "
                f"{r[f'added_normal_{label}'] / 1000:7.0f}/{r[f'added_hostile_{label}'] / 1000:7.0f} "
                f"{r[f'added_{label}']:6.2f}"
            )
            print(line + (f" {r['fastapi_wrapper_extra']:22.0f}" if label == "off" else ""))


def print_table(
    results: dict[str, Any], counts: dict[str, dict[str, float]] | None = None, bare: dict[str, Any] | None = None
) -> None:
    print(f"{'part':20} {'worst value (prefix)':28} {'size':>6} {'normal us':>10} {'hostile us':>11} {'ratio':>6} "
          f"{'us/KiB':>7} {'bare ratio':>10} {'k instr n/h':>15} {'ratio':>6}")  # fmt: skip
    for part, row in results.items():
        instr = ""
        if counts is not None and part in counts:
            c = counts[part]
            instr = f"{c['normal'] / 1000:7.0f}/{c['hostile'] / 1000:7.0f} {c['ratio']:6.2f}"
        print(
            f"{part:20} {row['value'][:26]!r:28} {row['size']:6} {row['normal_us']:10.1f} {row['hostile_us']:11.1f} "
            f"{row['ratio']:6.2f} {row['us_per_kib']:7.1f} "
            f"{bare[part]['ratio'] if bare else float('nan'):10.2f} {instr}"
        )


def _child_main(args: argparse.Namespace) -> None:
    from benchmarks._harness import write_result

    values = json.loads(Path(args.values).read_text()) if args.values else None
    native = not args.native_off
    if args.instructions:
        data = asyncio.run(instructions(args.count, values, args.bare, native))
    else:
        data = asyncio.run(measure(args.rounds, args.normal, args.hostile, args.bare, values, native))
    if not args.bare:
        import signalfire

        signalfire.shutdown()
    write_result(args.result, data)


def main() -> None:
    """Stand-alone: a loopback sink on this process's threads, the measurement in a child (its CPU only)."""
    from benchmarks import apps
    from benchmarks._harness import run_child
    from benchmarks._servers import HttpSink

    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5
    with HttpSink() as sink:
        env = {**apps.variant_env("signalfire", sink.url, sink.url), "OTEL_BSP_SCHEDULE_DELAY": "3600000"}
        results = run_child("bench_hostile", ["--child", "--rounds", str(rounds)], env, 1800)
        with tempfile.TemporaryDirectory(prefix="sfhostile-") as tmp:
            values = Path(tmp) / "values.json"
            values.write_text(json.dumps({part: row["full_value"] for part, row in results.items()}))
            args = ["--child", "--bare", "--rounds", str(rounds), "--values", str(values)]
            bare = run_child("bench_hostile", args, env, 1800)
            print_table(results, bare=bare)
            if "--table" in sys.argv:
                print()
                print_added(added_costs(instruction_counts(values, env)))


# --- the scrubber alone, per rule ---------------------------------------------------------------------------------
RULE_SIZE = 16_384  # a query value as the handler logs it (h11's limit); span attributes are cut at 4 KiB first
# What a rule is, to the timer: the module's compiled patterns (one pass or gate each), and these callables.
RULE_FUNCTIONS = ("_has_token_run", "unquote_plus", "_cards_within")
RULE_METHODS = ("_key_values", "_json_text", "_kv_gate_passes", "scrub_query")


def rule_shapes(size: int = RULE_SIZE) -> dict[str, str]:
    """Every hostile value the request parts are built from, as a header or a body holds it and as a query value
    reaches the handler (percent-decoded)."""
    shapes = {}
    for unit in UNITS:
        for tail in TAILS:
            raw = _fill(unit, size, tail)
            shapes[f"{unit!r}+{tail!r}"] = raw
            decoded = unquote_plus_module(_url_safe(raw))
            if decoded != raw:
                shapes[f"{unit!r}+{tail!r} decoded"] = decoded
    return shapes


def unquote_plus_module(text: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(text)


class RuleTimer:
    """Times each pass of a scrubber module's ``_scan`` in place: every compiled pattern of the module (and the
    instance's), and the methods and functions that make a rule, exclusive of what they call of each other."""

    def __init__(self, module: Any) -> None:
        import re

        self.module = module
        self.totals: dict[str, float] = {}
        self.stack: list[list[float]] = []
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern):
                setattr(module, name, self._proxy(name, value))
            elif isinstance(value, tuple) and value and all(isinstance(v, re.Pattern) for v in value):
                setattr(module, name, tuple(self._proxy(f"{name}[{i}]", v) for i, v in enumerate(value)))
        for name in RULE_FUNCTIONS:
            if hasattr(module, name):
                setattr(module, name, self._timed(name, getattr(module, name)))
        for name in RULE_METHODS:
            if hasattr(module.Scrubber, name):
                setattr(module.Scrubber, name, self._timed(name, getattr(module.Scrubber, name)))
        self.scrubber = module.Scrubber()
        for name in ("_kv_gate",):
            value = getattr(self.scrubber, name, None)
            if isinstance(value, re.Pattern):
                setattr(self.scrubber, name, self._proxy(f"Scrubber.{name}", value))

    def _timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append([0.0])
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                children = self.stack.pop()[0]
                self.totals[name] = self.totals.get(name, 0.0) + elapsed - children
                if self.stack:
                    self.stack[-1][0] += elapsed

        return timed

    def _proxy(self, name: str, pattern: Any) -> Any:
        timer = self

        class Timed:
            def __getattr__(self, attribute: str) -> Any:
                value = getattr(pattern, attribute)
                if attribute in ("sub", "search", "match", "finditer", "findall", "fullmatch", "split"):
                    return timer._timed(f"{name}.{attribute}", value)
                return value

        return Timed()

    def cost(self, text: str, repeat: int = 5) -> tuple[float, dict[str, float]]:
        """Best of ``repeat`` first scrubs of ``text`` (memo and clean cache emptied): seconds, and per rule."""
        import gc

        gc.collect()
        gc.disable()  # a collection inside one timed call is a spike, not the rule's cost
        try:
            return self._best(text, repeat)
        finally:
            gc.enable()

    def _best(self, text: str, repeat: int) -> tuple[float, dict[str, float]]:
        best: tuple[float, dict[str, float]] | None = None
        for _ in range(repeat):
            self.totals = {}
            self.scrubber._clean.clear()
            getattr(self.scrubber, "_memo", {}).clear()
            start = time.perf_counter()
            self.scrubber.scrub_text(text)
            total = time.perf_counter() - start
            if best is None or total < best[0]:
                best = (total, dict(self.totals))
        assert best is not None
        return best


def rule_costs(module: Any, shapes: dict[str, str]) -> dict[str, Any]:
    """Per shape: us per byte in all and per rule; per rule: its worst shape and what it costs there."""
    timer = RuleTimer(module)
    per_shape = {}
    for name, text in shapes.items():
        total, rules = timer.cost(text)
        per_shape[name] = {
            "total": total / len(text) * 1e6,
            "rules": {k: v / len(text) * 1e6 for k, v in rules.items()},
        }
    worst: dict[str, tuple[float, str]] = {}
    for name, row in per_shape.items():
        for rule, cost in row["rules"].items():
            if cost > worst.get(rule, (0.0, ""))[0]:
                worst[rule] = (cost, name)
    return {"shapes": per_shape, "worst": worst}


def _load_other_scrubber(path: str) -> Any:
    """Another version of the scrubber module (``--against OLD.py``), loaded as ``other_scrub``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("other_scrub", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_scrub"] = module
    spec.loader.exec_module(module)
    return module


def print_rules(paths: list[str]) -> None:
    """``--rules [--against OLD_SCRUB.py]``: the scrubber's worst shapes and each rule's worst cost, this version
    (and the other one) side by side, in us per byte (perf_counter, best of 3, one process)."""

    shapes = rule_shapes()
    results = []
    for path in paths:
        if path == "this":
            from signalfire._scrub import _policy as module
        else:
            module = _load_other_scrubber(path)
        results.append(rule_costs(module, shapes))
    labels = ["this" if p == "this" else Path(p).name for p in paths]
    print(f"worst shapes (us/B, {RULE_SIZE} characters)")
    ranked = sorted(shapes, key=lambda name: -max(r["shapes"][name]["total"] for r in results))
    for name in ranked[:15]:
        cells = []
        for result in results:
            row = result["shapes"][name]
            top = sorted(row["rules"].items(), key=lambda item: -item[1])[:2]
            cells.append(f"{row['total']:.3f} ({', '.join(f'{k} {v:.3f}' for k, v in top)})")
        print(f"  {name:38} " + " | ".join(cells))
    print("per rule: its worst shape (us/B), " + " | ".join(labels))
    rules = sorted({rule for result in results for rule in result["worst"]})
    for rule in sorted(rules, key=lambda r: -max(res["worst"].get(r, (0.0, ""))[0] for res in results)):
        cells = [
            f"{res['worst'][rule][0]:.3f} {res['worst'][rule][1]}" if rule in res["worst"] else "-" for res in results
        ]
        print(f"  {rule:28} " + " | ".join(f"{c:52}" for c in cells))
    for label, result in zip(labels, results, strict=True):
        totals = [row["total"] for row in result["shapes"].values()]
        print(f"{label}: worst shape {max(totals):.3f} us/B, median shape {statistics.median(totals):.3f} us/B")


def rule_instructions(count: int = 0) -> dict[str, Any]:
    """Under callgrind (``--dump-before=getpgrp``): one phase per shape, each a first scrub of it (memo emptied)."""
    from signalfire._scrub import _policy

    scrubber = _policy.Scrubber()
    shapes = rule_shapes()
    names = list(shapes)
    os.getpgrp()
    for name in names:
        scrubber._clean.clear()
        scrubber._memo.clear()
        scrubber.scrub_text(shapes[name])
        os.getpgrp()
    return {"phases": ["start-up", *names], "sizes": {name: len(text) for name, text in shapes.items()}}


def print_rule_instructions(prefix: str, result: dict[str, Any]) -> None:
    totals = []
    for index in range(1, len(result["phases"]) + 1):
        text = Path(f"{prefix}.{index}").read_text(errors="replace")
        totals.append(
            int(next(line for line in text.splitlines() if line.startswith(("summary:", "totals:"))).split()[1])
        )
    per_byte = {
        name: count / result["sizes"][name] for name, count in zip(result["phases"][1:], totals[1:], strict=False)
    }
    print("instructions per byte, first scrub (callgrind)")
    for name, value in sorted(per_byte.items(), key=lambda item: -item[1])[:15]:
        print(f"  {name:40} {value:8.0f}")
    print(f"  worst {max(per_byte.values()):.0f}, median {statistics.median(per_byte.values()):.0f} instructions/B")


def compare(path: str, pairs: int = 30, loop: int = 300) -> None:
    """This scrubber against the ``_scrub.py`` at ``path``: normal path paired, then the hostile inputs."""
    import uuid

    other = _load_other_scrubber(path)
    from signalfire._scrub import _policy as _scrub

    this_scrubber, other_scrubber = _scrub.Scrubber(), other.Scrubber()
    ids = [uuid.uuid4().hex for _ in range(pairs * loop * 2 + 2 * loop)]

    def log_event(i: int) -> dict[str, object]:
        return {"event": "request handled", "method": "GET", "path": f"/items/{i}", "status": 200,
                "duration_ms": 12.5, "user_id": "u-123", "request_id": ids[i],
                "message": f"user {i} logged in from 10.0.0.1", "auth_required": True}  # fmt: skip

    def attributes(i: int, fresh: bool) -> dict[str, object]:
        return {
            "http.request.method": "GET",
            "url.path": f"/items/{i}" if fresh else "/items/42",
            "url.scheme": "http",
            "http.route": "/items/{item_id}",
            "http.response.status_code": 200,
            "server.address": "api.example.com",
            "user_agent.original": f"{NORMAL_USER_AGENT} {i}" if fresh else NORMAL_USER_AGENT,
            "url.query": f"page={i}&q=shoes" if fresh else "page=2&q=shoes",
            "network.protocol.version": "1.1",
        }

    def make(module: object, scrubber: object, case: str) -> Callable[[int], object]:
        attribute: Callable[..., object] = getattr(module, "scrub_attribute")  # noqa: B009
        if case == "log event":
            return lambda i: scrubber.scrub_fields(log_event(i))  # type: ignore[attr-defined]
        fresh = case.startswith("span attributes, fresh")
        return lambda i: [attribute(scrubber, k, v) for k, v in attributes(i, fresh).items()]

    counter = itertools.count()
    print(f"{'normal path (us per call)':44} {'other':>8} {'this':>8} {'ratio':>6}")
    for case in ("log event", "span attributes, fresh values", "span attributes, repeated values"):
        ops = (make(other, other_scrubber, case), make(_scrub, this_scrubber, case))
        timings: list[list[float]] = [[], []]
        for round_ in range(pairs):
            for which in (0, 1) if round_ % 2 else (1, 0):
                base = next(counter) * loop
                start = time.thread_time()
                for i in range(base, base + loop):
                    ops[which](i)
                timings[which].append((time.thread_time() - start) / loop)
        ratios = [b / a for a, b in zip(*timings, strict=True)]
        print(f"{case:44} {statistics.median(timings[0]) * 1e6:8.2f} {statistics.median(timings[1]) * 1e6:8.2f} "
              f"{statistics.median(ratios):6.2f}")  # fmt: skip
    hostile = {
        f"16 KiB text: {unit!r} x n, then {tail!r}": _fill(unit, 16_384, tail) for unit in UNITS for tail in TAILS
    }
    print(f"{'hostile text, scrub_text (ms, best of 3)':60} {'other':>8} {'this':>8}")
    worst: list[tuple[float, str, float]] = []
    for name, value in hostile.items():
        times = []
        for scrubber in (other_scrubber, this_scrubber):
            best = float("inf")
            for _ in range(3):
                scrubber._clean.clear()
                getattr(scrubber, "_memo", {}).clear()  # a first scrub, not a repeated one
                start = time.thread_time()
                scrubber.scrub_text(value)
                best = min(best, time.thread_time() - start)
            times.append(best)
        worst.append((times[0], name, times[1]))
    for old, name, new in sorted(worst, reverse=True)[:12]:
        print(f"{name:60} {old * 1e3:8.2f} {new * 1e3:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--bare", action="store_true", help="the same app without signalfire")
    parser.add_argument("--native-off", action="store_true", help="the app built with FastAPI's telemetry off")
    parser.add_argument("--table", action="store_true", help="stand-alone: also the instructions table (callgrind)")
    parser.add_argument("--rules", action="store_true", help="the scrubber's cost per rule on the hostile values")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--normal", type=int, default=100)
    parser.add_argument("--hostile", type=int, default=10)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--values", help="a JSON file: part -> the hostile value to send (skips the search)")
    parser.add_argument("--result")
    parser.add_argument("--against")
    parsed = parser.parse_args()
    if parsed.rules and parsed.instructions:
        from benchmarks._harness import write_result

        write_result(parsed.result, rule_instructions())
    elif parsed.rules and parsed.table:
        import shutil
        import subprocess

        with tempfile.TemporaryDirectory(prefix="sfrules-") as tmp:
            out, result = f"{tmp}/callgrind.out", f"{tmp}/result.json"
            valgrind = shutil.which("valgrind") or "valgrind"
            command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-before=getpgrp"]
            command += [
                sys.executable,
                "-m",
                "benchmarks.bench_hostile",
                "--rules",
                "--instructions",
                "--result",
                result,
            ]
            subprocess.run(command, check=True, capture_output=True, timeout=3600)
            print_rule_instructions(out, json.loads(Path(result).read_text()))
    elif parsed.rules:
        print_rules(["this", *([parsed.against] if parsed.against else [])])
    elif parsed.against:
        compare(parsed.against)
    elif parsed.child or parsed.instructions:
        _child_main(parsed)
    else:
        main()
