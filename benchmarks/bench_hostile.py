"""Worst-case scrubbing cost per request part (query, path, each header, body, log value) against a normal request.

    python -m benchmarks.bench_hostile

For every part, hostile values are built from the scrubber's own pattern prefixes and separators (the shapes that
made backtracking patterns quadratic: ``basic%2B`` repeated then ``%3D%3D%3D``, long runs of ``eyJ``, ``a://`` and
``:@``, digit groups, ``password=`` and quotes, ...) at the largest size the part reaches the scrubber with (a 12 KB
query, an 8 KB path or header, a 64 KiB body or log value: SIGNALFIRE_SCRUB_MAX_LENGTH). The slowest of them is the
part's worst case, and it is timed against the same part of a normal request, alternating loops in one process. The
ratio says what one hostile request costs the scrubber compared with an ordinary one (whose values differ from call to
call, so the clean-string cache does not help it); the cost per KiB says the work stays linear. CPU time of the
calling thread.

``CASES`` and ``PAIRS`` put the same comparison into ``nox -s bench`` (benchmarks/bench_micro.py's contract).

    git show a7f975c:src/signalfire/_scrub.py > /tmp/old_scrub.py
    python -m benchmarks.bench_hostile --against /tmp/old_scrub.py

compares this scrubber with another version of ``_scrub.py`` in one process: a typical log event and a typical span
attribute set (fresh values each call, and repeated ones), paired loops in thread CPU time, median of the per-pair
ratios; then the reported hostile inputs, once each (an old quadratic pattern can take tens of seconds).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks._harness when run as a script

from benchmarks._harness import Pair
from signalfire._scrub import Scrubber, scrub_attribute
from signalfire._settings import Settings

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
)
TAILS = ("", "%3D%3D%3D", "===", ".", "@", "'")


def _fill(unit: str, length: int, tail: str) -> str:
    return (unit * (length // len(unit) + 1))[: length - len(tail)] + tail


def _settings_scrubber() -> Scrubber:
    return Scrubber.from_settings(Settings.resolve())


def _query(scrubber: Scrubber) -> Callable[[str], object]:
    def op(query: str) -> object:  # the middleware's url.query and the access log's path
        return scrub_attribute(scrubber, "url.query", scrubber.scrub_query(query))

    return op


def _path(scrubber: Scrubber) -> Callable[[str], object]:
    def op(path: str) -> object:  # url.path on the span, the access log's path
        return scrub_attribute(scrubber, "url.path", path), scrubber.scrub_text(path)

    return op


def _header(name: str) -> Callable[[Scrubber], Callable[[str], object]]:
    def make(scrubber: Scrubber) -> Callable[[str], object]:
        def op(value: str) -> object:  # a captured header on the span, and Sentry's request headers
            return scrub_attribute(scrubber, f"http.request.header.{name}", (value,)), scrubber.scrub(
                {"headers": {name: value}}
            )

        return op

    return make


def _body(scrubber: Scrubber) -> Callable[[str], object]:
    def op(body: str) -> object:  # Sentry's request data
        return scrubber.scrub({"request": {"data": body}})

    return op


def _log_value(scrubber: Scrubber) -> Callable[[str], object]:
    def op(value: str) -> object:  # one field of a log event
        return scrubber.scrub_fields({"event": "payload received", "data": value})

    return op


NORMAL_HEADERS = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "referer": "https://shop.example.com/items?page=2&sort=price",
    "x-forwarded-for": "203.0.113.7, 10.0.0.1",
    "accept-language": "en-GB,en;q=0.9,de;q=0.8",
}
# part -> (operation factory, normal value, hostile size)
PARTS: dict[str, tuple[Callable[[Scrubber], Callable[[str], object]], str, int]] = {
    "query": (_query, "page=2&q=running+shoes&sort=price", 12_000),
    "path": (_path, "/items/48151623/reviews", 8_192),
    **{f"header {name}": (_header(name), value, 8_192) for name, value in NORMAL_HEADERS.items()},
    "body": (_body, '{"item_id": 48151623, "quantity": 2, "note": "gift wrap, please"}', 65_536),
    "log value": (_log_value, "order o-48151623 paid, 2 items, total 99.80 EUR", 65_536),
}


def _once(op: Callable[[str], object], value: str) -> float:
    start = time.thread_time()  # CPU time of this thread: the machine's other load does not count
    op(value)
    return time.thread_time() - start


def worst(part: str) -> tuple[str, Callable[[str], object]]:
    """The slowest hostile value for ``part`` (a quick untimed search over UNITS x TAILS) and its operation."""
    factory, _, size = PARTS[part]
    op = factory(_settings_scrubber())
    candidates = [_fill(unit, size, tail) for unit in UNITS for tail in TAILS]
    costs = [_once(op, value) for value in candidates]
    return candidates[costs.index(max(costs))], op


def _hostile_case(part: str) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        value, op = worst(part)
        return lambda: op(value)

    return setup


def _fresh(value: str) -> Callable[[], str]:
    """The normal value with a new number each call, as real requests differ: no help from the clean-string cache."""
    counter = itertools.count()
    return lambda: f"{value}{next(counter)}"


def _normal_case(part: str) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        factory, value, _ = PARTS[part]
        op = factory(_settings_scrubber())
        fresh = _fresh(value)
        return lambda: op(fresh())

    return setup


def _key(part: str) -> str:
    return part.replace(" ", "_").replace("-", "_")


CASES: dict[str, Callable[[], Callable[[], object]]] = {
    **{f"hostile_{_key(part)}": _hostile_case(part) for part in PARTS},
    **{f"normal_{_key(part)}": _normal_case(part) for part in PARTS},
}
PAIRS = [
    Pair(f"scrub {part}: worst hostile vs normal", f"hostile_{_key(part)}", f"normal_{_key(part)}", None, True)
    for part in PARTS
]
NUMBERS = {f"hostile_{_key(part)}": 20 for part in PARTS}  # a hostile call is milliseconds: fewer per loop


def main() -> None:
    rounds = 5
    print(f"{'part':28} {'hostile value (prefix)':26} {'size':>7} {'normal us':>10} {'hostile us':>11} "
          f"{'ratio':>8} {'us/KiB':>7}")  # fmt: skip
    for part, (factory, normal_value, _) in PARTS.items():
        hostile_value, op = worst(part)
        normal_op = factory(_settings_scrubber())
        fresh = _fresh(normal_value)
        best_hostile = best_normal = float("inf")
        for _ in range(rounds):
            best_hostile = min(best_hostile, _once(op, hostile_value))
            start = time.thread_time()
            for _ in range(200):
                normal_op(fresh())
            best_normal = min(best_normal, (time.thread_time() - start) / 200)
        print(
            f"{part:28} {hostile_value[:24]!r:26} {len(hostile_value):7} {best_normal * 1e6:10.2f} "
            f"{best_hostile * 1e6:11.1f} {best_hostile / best_normal:8.0f} "
            f"{best_hostile * 1e6 / (len(hostile_value) / 1024):7.1f}"
        )


def compare(path: str, pairs: int = 30, loop: int = 300) -> None:
    """This scrubber against the ``_scrub.py`` at ``path``: normal path paired, then the hostile inputs."""
    import importlib.util
    import statistics
    import uuid

    spec = importlib.util.spec_from_file_location("other_scrub", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    other = importlib.util.module_from_spec(spec)
    sys.modules["other_scrub"] = other
    spec.loader.exec_module(other)
    from signalfire import _scrub

    this_scrubber, other_scrubber = _scrub.Scrubber(), other.Scrubber()
    ids = [uuid.uuid4().hex for _ in range(pairs * loop * 2 + 2 * loop)]
    user_agent = NORMAL_HEADERS["user-agent"]

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
            "user_agent.original": f"{user_agent} {i}" if fresh else user_agent,
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
        "12 KB query: basic%2B x1500 then %3D%3D%3D": lambda s: s.scrub_query("q=" + "basic%2B" * 1500 + "%3D%3D%3D"),
        "12 KB query: eyJ x4000 then .": lambda s: s.scrub_query("q=" + "eyJ" * 4000 + "."),
        "64 KiB log value: basic+ repeated then ===": lambda s: s.scrub_fields({"data": "basic+" * 10922 + "==="}),
        "64 KiB log value: eyJ repeated then .": lambda s: s.scrub_fields({"data": "eyJ" * 21845 + "."}),
    }
    print(f"{'hostile input (ms, once)':44} {'other':>10} {'this':>8}")
    for name, call in hostile.items():
        times = []
        for scrubber in (other_scrubber, this_scrubber):
            start = time.thread_time()
            call(scrubber)
            times.append(time.thread_time() - start)
        print(f"{name:44} {times[0] * 1e3:10.1f} {times[1] * 1e3:8.1f}")


if __name__ == "__main__":
    if "--against" in sys.argv:
        compare(sys.argv[sys.argv.index("--against") + 1])
    else:
        main()
