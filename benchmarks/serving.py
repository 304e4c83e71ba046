"""pygwire.server's SQLite demo against PostgreSQL 18, on the same workloads.

``python -m benchmarks.serving [--seconds 10] [--rounds 1]`` (``make bench``
runs it through :mod:`benchmarks.run`) starts a PostgreSQL 18 and
``examples/sqlite_server.py`` in a process of its own, both holding a
``pgbench_accounts`` table of 100,000 rows, and measures, alternating
which goes first each round:

* single-row selects as ``pgbench -S`` makes them (``select abalance from
  pgbench_accounts where aid = :aid``, 8 clients, 2 threads), in TPS;
* one 100,000-row ``select`` read through psycopg, in rows per second
  (the best of three).

It prints one JSON object.  No target: the ratio is the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.proxying import _free_port, pgbench_bin

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = 100_000
SELECT_SCRIPT = (
    f"\\set aid random(1, {ACCOUNTS})\nselect abalance from pgbench_accounts where aid = :aid;\n"
)
ALL_ROWS = "select aid, bid, abalance, filler from pgbench_accounts"


def seed_sqlite(path: Path) -> None:
    """pgbench_accounts as ``pgbench -i -s 1`` makes it, in SQLite."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute(
        "create table pgbench_accounts (aid int4 primary key, bid int4, abalance int4,"
        " filler char(84))"
    )
    db.execute("begin")
    db.executemany(
        "insert into pgbench_accounts values (?, 1, 0, ?)",
        ((aid, " " * 84) for aid in range(1, ACCOUNTS + 1)),
    )
    db.execute("commit")
    db.close()


class SQLiteServerProcess:
    """``python -m examples.sqlite_server`` on a free port."""

    def __init__(self, database: Path) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "examples.sqlite_server", "--database", str(database),
             "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the SQLite server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def select_tps(host: str, port: int, user: str, seconds: int, script: Path) -> dict[str, Any]:
    env = {**os.environ, "PGHOST": host, "PGPORT": str(port), "PGUSER": user}
    env |= {"PGDATABASE": "postgres", "PGSSLMODE": "disable", "PGGSSENCMODE": "disable"}
    args = ["-n", "-f", str(script), "-c", "8", "-j", "2", "-T", str(seconds)]
    result = subprocess.run(
        [str(pgbench_bin()), *args], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench: {result.stderr.strip()[-500:]}")
    tps = re.search(r"tps = ([\d.]+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if tps is None:
        raise RuntimeError(f"pgbench printed no tps:\n{result.stdout}")
    if failed is not None and int(failed[1]):
        raise RuntimeError(f"pgbench: {failed[1]} failed transactions")
    return {"tps": float(tps[1])}


def rows_per_second(host: str, port: int, user: str, repeats: int = 3) -> float:
    dsn = f"host={host} port={port} user={user} dbname=postgres sslmode=disable"
    best = float("inf")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(repeats):
            started = time.perf_counter()
            rows = conn.execute(ALL_ROWS).fetchall()
            elapsed = time.perf_counter() - started
            if len(rows) != ACCOUNTS:
                raise RuntimeError(f"{len(rows)} rows, not {ACCOUNTS}")
            best = min(best, elapsed)
    return ACCOUNTS / best


def measure(seconds: int, rounds: int) -> dict[str, Any]:
    from harness.postgres import PostgresServer  # noqa: PLC0415

    out: dict[str, Any] = {
        "tps": {"sqlite": [], "postgres": []},
        "rows_per_second": {"sqlite": [], "postgres": []},
        "seconds": seconds,
        "clients": 8,
        "rows": ACCOUNTS,
    }
    with tempfile.TemporaryDirectory(prefix="pygwire-serving-") as tmp:
        script = Path(tmp) / "select.sql"
        script.write_text(SELECT_SCRIPT)
        database = Path(tmp) / "bench.sqlite3"
        seed_sqlite(database)
        pg = PostgresServer(18, settings={"max_connections": 50}).start()
        sqlite_server = SQLiteServerProcess(database)
        try:
            env = {**os.environ, "PGHOST": pg.host, "PGPORT": str(pg.port)}
            env |= {"PGUSER": "trust_user", "PGDATABASE": "postgres", "PGSSLMODE": "disable"}
            subprocess.run(
                [str(pgbench_bin()), "-i", "-q", "-s", "1"], env=env, capture_output=True,
                check=True,
            )  # fmt: skip
            targets = {
                "sqlite": ("127.0.0.1", sqlite_server.port, "bench"),
                "postgres": (pg.host, pg.port, "trust_user"),
            }
            for r in range(rounds):
                order = ["sqlite", "postgres"] if r % 2 == 0 else ["postgres", "sqlite"]
                for who in order:
                    host, port, user = targets[who]
                    print(f"serving round {r + 1}/{rounds}: {who}", file=sys.stderr)
                    out["tps"][who].append(select_tps(host, port, user, seconds, script)["tps"])
                    out["rows_per_second"][who].append(rows_per_second(host, port, user))
        finally:
            sqlite_server.stop()
            pg.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.seconds, args.rounds)))


if __name__ == "__main__":
    main()
