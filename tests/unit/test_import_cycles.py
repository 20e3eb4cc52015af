"""No module of signalfire imports one that imports it back, lazy (function-level) imports included.

The graph is read from the source with ``ast``, so it sees every import statement wherever it stands; imports under
``if TYPE_CHECKING:`` do not count (they never run). A cycle is reported as the set of modules of one strongly
connected component of that graph.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "signalfire"

# Cycles tolerated while being removed: none is left, and none may be added. (a), _runtime <-> the components that
# fetched the running instance back, is gone: they get it in install(), and the public entrypoints a user calls later
# read the leaf _instance. (b), _metrics -> _scrub -> _drops -> _metrics, is gone: _drops counts through a sink that
# _metrics.install() hands it.
ALLOWED_CYCLES: list[frozenset[str]] = []


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return modules


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines.update(child.lineno for child in ast.walk(node) if hasattr(child, "lineno"))
    return lines


def import_graph() -> dict[str, set[str]]:
    """Module -> the signalfire modules it imports (at any depth of the file, outside ``if TYPE_CHECKING``)."""
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = name.split(".")
                    keep = len(parts) - node.level + (1 if is_package else 0)
                    base = ".".join(parts[:keep] + ([node.module] if node.module else []))
                # `from package import module` imports the submodule; `from module import name` the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for dotted in targets:
                target = dotted
                while target and target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def _describe(component: frozenset[str], edges: dict[str, set[str]]) -> str:
    inner = [f"  {a} -> {b}" for a in sorted(component) for b in sorted(edges[a] & component)]
    return " <-> ".join(sorted(component)) + "\n" + "\n".join(inner)


def test_the_graph_sees_lazy_imports_and_ignores_type_checking_ones() -> None:
    """The graph has the edges of function-level imports and none of the imports under ``if TYPE_CHECKING``."""
    edges = import_graph()
    assert "signalfire._runtime" in edges["signalfire"], "the package imports the runtime"
    assert len(edges) > 20, "every module of the package is in the graph"
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\ndef f():\n    import y\n")
    skip = _type_checking_lines(tree)
    imported = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Import) and n.lineno not in skip]
    assert imported == [5]


def test_cycle_detection_finds_a_cycle_and_nothing_else() -> None:
    """A two-module loop is one cycle; a chain and a self-import are none."""
    edges = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": set(), "e": {"e"}}
    assert cycles(edges) == [frozenset({"a", "b"})]


def test_no_import_cycle() -> None:
    """No import cycle at all (ALLOWED_CYCLES is empty and stays so); a cycle fails, naming its edges."""
    edges = import_graph()
    new = [c for c in cycles(edges) if not any(c <= allowed for allowed in ALLOWED_CYCLES)]
    assert not new, "import cycle(s):\n" + "\n".join(_describe(c, edges) for c in new)


def test_only_the_runtime_and_the_public_entrypoints_read_the_running_instance() -> None:
    """The slot of the running instance (_instance) is a leaf, written by the runtime and read only by modules whose
    public functions the application calls after init; components get the instance in install()."""
    edges = import_graph()
    assert edges["signalfire._instance"] == set(), "the slot imports nothing of signalfire"
    readers = {name for name, targets in edges.items() if "signalfire._instance" in targets}
    assert readers == {
        "signalfire._runtime",  # writes it
        "signalfire.health",  # health.router()'s default settings
        "signalfire.integrations",  # instrument_redis() / _sqlalchemy() / _httpx(), and a library imported after init
        "signalfire.integrations.fastapi",  # instrument_fastapi(app)
    }
