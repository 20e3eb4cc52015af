"""Documentation that runs: every ```python block in README.md and docs/**/*.md is executed.

Conventions (also in docs/contributing.md):

- Each ```python block runs on its own in a fresh interpreter, with a temporary directory as the working directory, an
  environment cleaned of OTEL_*/SENTRY_*/SIGNALFIRE_* (and the other variables signalfire reads), and a timeout. A block
  passes when it exits with status 0; ``assert`` in the block is how it checks what it shows.
- A block directly preceded by an HTML comment ``<!-- docs-test: ... -->`` takes directives from it, space-separated:
  ``continue``   appends the block to the previous block of the same file; the two (or more) run as one program, so
                 later blocks can use names the earlier ones defined. The test is named after the first block.
  ``otlp``       starts a real OTLP/HTTP receiver on loopback for the block and sets OTEL_EXPORTER_OTLP_ENDPOINT and
                 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, so examples that export have somewhere to send.
  ``env:NAME=VALUE`` sets an environment variable for the block (repeatable), for examples that configure by env.
  ``pytest``     runs the block as a test file under pytest (in the temporary directory: no conftest), for examples of
                 tests written with the ``telemetry`` fixture. It passes when every test in it passes.
  The comment renders as nothing, so readers see plain code.
- ```python skip marks a block that cannot run (it needs a real cloud backend, say). Skips are counted and the suite
  fails when there are more than MAX_SKIPS across all documents: a skipped example is an untested example.
- A line ``--8<-- "path"`` (pymdownx.snippets, as mkdocs renders it) is replaced by the file at that path, relative to
  the repository root, so a page can show an example file and the test runs what the reader sees.
- ```bash, ```console, ```yaml and every other language are shown, not run.
- docs/configuration.md is generated from Settings by docs/gen_config.py; a test fails while it is stale.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import _CONFIG_NAMES, _CONFIG_PREFIXES
from tests.receivers import HttpOtlpServer

ROOT = Path(__file__).resolve().parent.parent
MAX_SKIPS = 3
TIMEOUT_S = 60

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
_SNIPPET = re.compile(r"^(?P<indent>\s*)--8<--\s+\"(?P<path>[^\"]+)\"\s*$", re.MULTILINE)
DIRECTIVES = ("continue", "otlp", "pytest")


@dataclass
class Block:
    """One fenced code block of a Markdown document."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    options: tuple[str, ...]
    code: str
    directives: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


@dataclass
class Program:
    """What one test runs: one block, or a block and the blocks that ``continue`` it."""

    blocks: list[Block]
    env: dict[str, str] = field(default_factory=dict)
    otlp: bool = False
    pytest: bool = False

    @property
    def code(self) -> str:
        return "\n".join(f"# --- {b.where}\n{expand_snippets(b.code)}" for b in self.blocks)

    @property
    def where(self) -> str:
        return self.blocks[0].where


def parse_blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced code block in a Markdown file, with its language, options and the directives before it."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        tokens = match["info"].strip().split()
        language = tokens[0].lower() if tokens else ""
        directives: tuple[str, ...] = ()
        previous = i - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0 and (found := _DIRECTIVE.match(lines[previous])):
            directives = tuple(found["body"].split())
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        blocks.append(
            Block(path, i + 1, language, tuple(t.lower() for t in tokens[1:]), "\n".join(body) + "\n", directives)
        )
        i = j + 1
    return blocks


def expand_snippets(code: str) -> str:
    """Replace each ``--8<-- "path"`` line with the file it names, as pymdownx.snippets does when mkdocs renders."""

    def include(match: re.Match[str]) -> str:
        return textwrap.indent((ROOT / match["path"]).read_text(encoding="utf-8"), match["indent"])

    return _SNIPPET.sub(include, code)


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    docs = sorted((ROOT / "docs").rglob("*.md")) if (ROOT / "docs").is_dir() else []
    return [ROOT / "README.md", *docs]


def _is_python(block: Block) -> bool:
    return block.language in ("python", "py", "python3")


def collect(paths: list[Path]) -> tuple[list[Program], list[Block]]:
    """The programs to run and the blocks marked skip, from these documents."""
    programs: list[Program] = []
    skipped: list[Block] = []
    for path in paths:
        last: Program | None = None
        for block in parse_blocks(path):
            if not _is_python(block):
                continue
            if "skip" in block.options:
                skipped.append(block)
                continue
            if "continue" in block.directives:
                if last is None:
                    raise AssertionError(f"{block.where}: 'docs-test: continue' with no python block before it")
                last.blocks.append(block)
            else:
                last = Program([block])
                programs.append(last)
            for directive in block.directives:
                if directive == "otlp":
                    last.otlp = True
                elif directive == "pytest":
                    last.pytest = True
                elif directive.startswith("env:") and "=" in directive:
                    name, _, value = directive[4:].partition("=")
                    last.env[name] = value
                elif directive not in DIRECTIVES:
                    raise AssertionError(f"{block.where}: unknown docs-test directive {directive!r}")
    return programs, skipped


PROGRAMS, SKIPPED = collect(documents())


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without anything that configures signalfire; the worktree's src/ first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES) and k not in _CONFIG_NAMES}
    # The block runs in a temporary directory, so a relative PYTHONPATH (PYTHONPATH=src) must be made absolute.
    paths = [str(ROOT / "src")] + [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def run_program(program: Program, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Execute a program as a script in a fresh interpreter, under the convention's environment (plus ``env``) and
    timeout."""
    script = cwd / ("test_docs_block.py" if program.pytest else "docs_block.py")
    script.write_text(program.code, encoding="utf-8")
    command = [sys.executable, str(script)]
    if program.pytest:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    return subprocess.run(
        command,
        cwd=cwd,
        env=clean_env({**program.env, **env}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.where for p in PROGRAMS])
def test_python_block_runs(program: Program, tmp_path: Path):
    """A ```python block of the documentation runs to completion in a fresh interpreter."""
    if program.otlp:
        with HttpOtlpServer() as server:
            result = run_program(
                program,
                tmp_path,
                OTEL_EXPORTER_OTLP_ENDPOINT=server.endpoint,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            )
    else:
        result = run_program(program, tmp_path)
    if result.returncode != 0:
        pytest.fail(
            f"{program.where} exited with {result.returncode}\n--- code\n{program.code}\n--- stdout\n"
            f"{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}",
            pytrace=False,
        )


def test_few_blocks_are_skipped():
    """At most MAX_SKIPS ```python skip blocks exist in all the documentation: examples are meant to run."""
    where = [b.where for b in SKIPPED]
    assert len(SKIPPED) <= MAX_SKIPS, f"{len(SKIPPED)} skipped python blocks (at most {MAX_SKIPS}): {where}"


def test_configuration_reference_is_current():
    """docs/configuration.md is what docs/gen_config.py generates from Settings now (run it after changing a field)."""
    spec = importlib.util.spec_from_file_location("gen_config", ROOT / "docs" / "gen_config.py")
    assert spec is not None
    assert spec.loader is not None
    gen_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_config)
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == gen_config.render(), "docs/configuration.md is stale: run python docs/gen_config.py"


def test_documentation_has_python_blocks():
    """The collector finds the documentation's examples (an empty collection would pass vacuously)."""
    assert PROGRAMS, "no ```python block found in README.md or docs/"


# --- the convention itself --------------------------------------------------------------------------------------------
_SAMPLE = textwrap.dedent(
    """\
    # Title

    ```python
    x = 1
    ```

    <!-- docs-test: continue env:A=1 -->
    ```python title="more.py"
    import os
    assert x == 1 and os.environ["A"] == "1"
    ```

    ```bash
    exit 1
    ```

    ```python skip
    raise SystemExit(1)
    ```

    !!! note
        ```python
        y = 2
        ```
    """
)


def test_parser_reads_language_options_directives_and_indented_blocks(tmp_path: Path):
    """The parser finds each fence with its language, options and preceding directives, and de-indents admonitions."""
    blocks = parse_blocks(tmp_path / "x.md", _SAMPLE)
    assert [(b.language, b.options, b.directives) for b in blocks] == [
        ("python", (), ()),
        ("python", ('title="more.py"',), ("continue", "env:A=1")),
        ("bash", (), ()),
        ("python", ("skip",), ()),
        ("python", (), ()),
    ]
    assert blocks[4].code == "y = 2\n"


def test_continued_blocks_run_as_one_program_and_skips_and_other_languages_do_not_run(tmp_path: Path):
    """continue joins a block to the previous one; skip and bash blocks are not programs; env: is applied."""
    doc = tmp_path / "x.md"
    doc.write_text(_SAMPLE, encoding="utf-8")
    programs, skipped = collect([doc])
    assert [p.code.count("# ---") for p in programs] == [2, 1]
    assert programs[0].env == {"A": "1"}
    assert len(skipped) == 1
    assert run_program(programs[0], tmp_path).returncode == 0


def test_block_runs_without_the_developers_signalfire_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A variable like OTEL_SERVICE_NAME in the developer's shell does not reach a block."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-shell")
    monkeypatch.setenv("SIGNALFIRE_ENVIRONMENT", "production")
    program = Program([Block(tmp_path / "x.md", 1, "python", (), "import os\nprint(sorted(os.environ))\n")])
    result = run_program(program, tmp_path)
    assert "OTEL_SERVICE_NAME" not in result.stdout
    assert "SIGNALFIRE_ENVIRONMENT" not in result.stdout


def test_snippet_lines_are_replaced_by_the_file_they_name(tmp_path: Path):
    """A --8<-- "path" line runs the file it includes, as the rendered page shows it."""
    program = Program([Block(tmp_path / "x.md", 1, "python", (), '--8<-- "examples/worker.py"\n')])
    assert program.code.count("def handle(job: Job)") == 1


def test_pytest_directive_runs_the_block_as_a_test_file(tmp_path: Path):
    """A block marked pytest passes only when its tests pass."""
    failing = Program([Block(tmp_path / "x.md", 1, "python", (), "def test_fails():\n    assert False\n")], pytest=True)
    assert run_program(failing, tmp_path).returncode == 1
    passing = Program([Block(tmp_path / "x.md", 1, "python", (), "def test_passes():\n    pass\n")], pytest=True)
    assert run_program(passing, tmp_path).returncode == 0


def test_readme_links_point_at_files_that_exist():
    """Every relative link in README.md (into docs/, CHANGELOG.md, ...) names a file of the repository."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [
        t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and not t.startswith("#")
    ]
    assert targets, "README.md links into the documentation"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert missing == []
