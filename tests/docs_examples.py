"""The Python examples of the documentation pages, read and run.

The conventions (docs/about.md explains them to writers):

* Every fenced ``python`` block of a page under ``docs/`` is an example.
* A block that begins with a module docstring starts a new *program*;
  the blocks after it, up to the next such block, continue the same
  program, as the steps of a guide do.  Each program runs in a fresh
  interpreter, its blocks in order in one namespace, as ``__main__``.
* A fenced block opened with ``text title="Output"`` right after a Python
  block (only blank lines between) is what that block prints.  ``...`` in
  it stands for any text (a process id, a nonce, a time).
* A block whose first line is indented continues the block before it
  (the rest of a function that prose interrupted).
* A block preceded by ``<!-- example: not run: REASON -->`` is not run;
  like every block it is still type-checked (``mypy --strict``), as part
  of its program.
* A file the page includes (``--8<-- "FILE:START:END"``, the
  ``pymdownx.snippets`` syntax) is read in its place; its blocks keep its
  own name and line numbers.  A fence may be indented (inside a list
  item); its lines lose that indentation.
* Programs that need a server read libpq's environment variables
  (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``,
  ``PGSSLROOTCERT``), which the test sets to a server it starts; a
  connection to ``localhost:5432`` (the quick start's literal address) is
  sent to that server too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Block",
    "Program",
    "RunResult",
    "matches",
    "pages",
    "parse_page",
    "run_program",
    "type_check",
]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^( *)(`{3,})\s*([\w-]*)(.*)$")
_SNIPPET = re.compile(r'^-{1,}8<-{1,} "([^":]+)(?::(\d*))?(?::(\d*))?"$')
_NOT_RUN = re.compile(r"^<!-- example: not run: (.+?) -->$")
_OUTPUT_TITLE = re.compile(r'title="Output"')


@dataclass
class Block:
    """One fenced Python block of a page."""

    page: Path
    line: int  # of the first line of code, 1-based
    code: str
    not_run: str | None = None  # the reason, when marked
    output: str | None = None  # the Output block that follows, if any

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Program:
    """Blocks run together, in order, in one namespace."""

    page: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def where(self) -> str:
        return self.blocks[0].where

    @property
    def runs(self) -> bool:
        return any(b.not_run is None for b in self.blocks)

    def source(self) -> tuple[str, list[tuple[int, Block]]]:
        """All blocks as one module, and where each block starts in it."""
        lines: list[str] = []
        starts: list[tuple[int, Block]] = []
        for block in self.blocks:
            starts.append((len(lines) + 1, block))
            lines += block.code.splitlines()
        return "\n".join(lines) + "\n", starts


def pages(root: Path = DOCS) -> list[Path]:
    """Every Markdown page of the documentation, hooks excluded."""
    return sorted(p for p in root.rglob("*.md") if "hooks" not in p.relative_to(root).parts)


def _starts_program(code: str) -> bool:
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    return first.startswith(('"""', "'''", 'r"""'))


def _lines(page: Path, text: str | None = None, depth: int = 0) -> list[tuple[Path, int, str]]:
    """The page's lines, each with the file and line it comes from, with the
    files ``pymdownx.snippets`` includes (``--8<-- "FILE:START:END"``, paths
    from the repository's root, as mkdocs.yml's ``base_path``) in place."""
    source = page.read_text(encoding="utf-8") if text is None else text
    out: list[tuple[Path, int, str]] = []
    for n, line in enumerate(source.splitlines(), 1):
        snippet = _SNIPPET.match(line)
        if snippet is None:
            out.append((page, n, line))
            continue
        if depth > 4:
            raise ValueError(f"{page}:{n}: snippets nested too deep")
        name, start, end = snippet.groups()
        included = _lines(ROOT / name, depth=depth + 1)
        first = int(start) if start else 1
        last = int(end) if end else len(included)
        out += [entry for entry in included if first <= entry[1] <= last]
    return out


def parse_page(page: Path, text: str | None = None) -> list[Program]:
    """The programs of one page (the files it includes count as its own)."""
    lines = _lines(page, text)
    blocks: list[Block] = []
    pending_reason: str | None = None
    last: Block | None = None  # the Python block an Output block may follow
    i = 0
    while i < len(lines):
        origin, lineno, line = lines[i]
        where = f"{origin}:{lineno}"
        marker = _NOT_RUN.match(line.strip())
        if marker:
            pending_reason = marker.group(1)
            i += 1
            continue
        fence = _FENCE.match(line)
        if not fence:
            if line.strip():
                last = None
                if pending_reason is not None:
                    raise ValueError(f"{where}: a not-run marker must precede a block")
            i += 1
            continue
        # A fence may be indented (a block inside a list item): its lines
        # lose that indentation, as Markdown reads them.
        indent, ticks, lang, rest = fence.groups()
        end = i + 1
        while end < len(lines) and lines[end][2].rstrip() != indent + ticks:
            end += 1
        if end == len(lines):
            raise ValueError(f"{where}: unclosed code block")
        body = "\n".join(entry[2].removeprefix(indent) for entry in lines[i + 1 : end])
        if lang == "python" and blocks and body[:1].isspace() and body.strip():
            # An indented block continues the previous one (the rest of a
            # function the prose interrupted): one unit, page lines kept.
            prev = blocks[-1]
            gap = lineno + 1 - (prev.line + len(prev.code.splitlines()))
            prev.code += "\n" * gap + body + "\n"
            prev.output = None
            last = prev
        elif lang == "python":
            block = Block(origin, lineno + 1, body + "\n", not_run=pending_reason)
            blocks.append(block)
            last = block
        elif lang == "text" and _OUTPUT_TITLE.search(rest):
            if last is None:
                raise ValueError(f"{where}: an Output block must follow a Python block")
            last.output = body + "\n"
            last = None
        else:
            last = None
        pending_reason = None
        i = end + 1
    programs: list[Program] = []
    for block in blocks:
        if not programs or _starts_program(block.code):
            programs.append(Program(page))
        programs[-1].blocks.append(block)
    return programs


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` output fits ``expected``, where ``...`` is any text
    (trailing spaces of lines do not count)."""

    def norm(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    pattern = ".*?".join(re.escape(part) for part in norm(expected).split("..."))
    return re.fullmatch(pattern, norm(actual), re.DOTALL) is not None


# The driver runs in the example's own interpreter: blocks in one namespace,
# the output of each captured on its own, the first failure reported with the
# page's line numbers.
_DRIVER = r"""
import contextlib, io, json, os, socket, sys, traceback
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
redirect = os.environ.get("DOCS_EXAMPLES_LOCALHOST_5432")
if redirect:
    host, port = redirect.rsplit(":", 1)
    original = socket.create_connection
    def create_connection(address, *args, **kwargs):
        if tuple(address) in (("localhost", 5432), ("127.0.0.1", 5432)):
            address = (host, int(port))
        return original(address, *args, **kwargs)
    socket.create_connection = create_connection
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
results = []
for block in blocks:
    out = io.StringIO()
    try:
        code = compile("\n" * (block["line"] - 1) + block["code"], block["page"], "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
    except BaseException:
        results.append({"output": out.getvalue(), "error": traceback.format_exc()})
        break
    results.append({"output": out.getvalue(), "error": None})
print(json.dumps(results))
"""


@dataclass
class RunResult:
    """What one block printed, or the traceback it ended with."""

    block: Block
    output: str
    error: str | None


def run_program(
    program: Program, env: Mapping[str, str], tmp: Path, timeout: float = 120
) -> list[RunResult]:
    """Run the program's blocks (those not marked) in a fresh interpreter."""
    runnable = [b for b in program.blocks if b.not_run is None]
    spec = tmp / "blocks.json"
    spec.write_text(
        json.dumps([{"page": str(b.page), "line": b.line, "code": b.code} for b in runnable]),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=tmp,
        check=False,
    )
    try:
        results = json.loads(proc.stdout.splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(
            f"{program.where}: the example's interpreter failed:\n{proc.stdout}\n{proc.stderr}"
        ) from None
    # Fewer results than blocks when a block failed: the rest never ran.
    pairs = zip(runnable, results, strict=False)
    return [RunResult(block, r["output"], r["error"]) for block, r in pairs]


def type_check(programs: Sequence[Program], tmp: Path) -> list[str]:
    """``mypy --strict`` over every program, each as a module of its own;
    the errors, with the page and line they come from."""
    files: dict[str, list[tuple[int, Block]]] = {}
    for n, program in enumerate(programs):
        source, starts = program.source()
        name = tmp / f"example_{n:03d}.py"
        name.write_text(source, encoding="utf-8")
        files[str(name)] = starts
    if not files:
        return []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    errors: list[str] = []
    for line in proc.stdout.splitlines():
        m = re.match(r"^(.*?):(\d+): (.*)$", line)
        if not m or m.group(1) not in files:
            if line.strip():
                errors.append(line)
            continue
        lineno = int(m.group(2))
        start, block = next((s, b) for s, b in reversed(files[m.group(1)]) if s <= lineno)
        errors.append(f"{block.page.relative_to(ROOT)}:{block.line + lineno - start}: {m.group(3)}")
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not errors):
        errors.append(f"mypy failed: {proc.stderr}")
    return errors
