"""End-to-end references: the wire limit and three PostgreSQL drivers.

Runs in the project's venv, beside the pygwire end-to-end loop of
:mod:`benchmarks.workloads`, against the same server and query::

    python -m benchmarks.drivers --host H --port P --user U --query Q [--repeats N]

* ``wire``: a hand-built startup packet and Query, then ``recv()`` until the
  bytes end with a ReadyForQuery frame, decoding nothing: the most any
  client on this socket loop could do;
* ``psycopg`` (``fetchall``), ``asyncpg`` (``fetch``), ``pg8000`` (``run``):
  complete drivers, which also convert every value to a Python object.

Prints one JSON object like ``workloads.py``; each timing is the best of
``--repeats`` (connection setup is not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.workloads import RECV_SIZE, Check, best_of

READY_FRAME = b"Z\x00\x00\x00\x05I"
"""ReadyForQuery, transaction status idle: the end of the answer."""


def recv_until_ready(sock: socket.socket) -> int:
    """Receive until the stream ends with :data:`READY_FRAME`; bytes received."""
    recv = sock.recv
    total = 0
    tail = b""
    while True:
        data = recv(RECV_SIZE)
        if not data:
            raise RuntimeError("server closed the connection")
        total += len(data)
        tail = data[-6:] if len(data) >= 6 else (tail + data)[-6:]
        if tail == READY_FRAME:
            return total


def wire_connect(host: str, port: int, user: str) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    params = b"user\x00" + user.encode() + b"\x00database\x00postgres\x00\x00"
    sock.sendall(struct.pack("!ii", 8 + len(params), 3 << 16) + params)
    recv_until_ready(sock)
    return sock


def wire_query(sock: socket.socket, query: str) -> Check:
    body = query.encode() + b"\x00"
    sock.sendall(b"Q" + struct.pack("!i", 4 + len(body)) + body)
    return {"bytes": recv_until_ready(sock)}


def run_wire(args: argparse.Namespace) -> tuple[float, list[float], Check]:
    sock = wire_connect(args.host, args.port, args.user)
    try:
        return best_of(lambda: wire_query(sock, args.query), args.repeats)
    finally:
        sock.close()


def run_psycopg(args: argparse.Namespace) -> tuple[float, list[float], Check]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(host=args.host, port=args.port, user=args.user, dbname="postgres") as conn:
        cur = conn.cursor()

        def fetch() -> Check:
            cur.execute(args.query)
            return {"rows": len(cur.fetchall())}

        return best_of(fetch, args.repeats)


def run_asyncpg(args: argparse.Namespace) -> tuple[float, list[float], Check]:
    import asyncpg  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(
            asyncpg.connect(host=args.host, port=args.port, user=args.user, database="postgres")
        )
        try:

            def fetch() -> Check:
                return {"rows": len(loop.run_until_complete(conn.fetch(args.query)))}

            return best_of(fetch, args.repeats)
        finally:
            loop.run_until_complete(conn.close())
    finally:
        loop.close()


def run_pg8000(args: argparse.Namespace) -> tuple[float, list[float], Check]:
    import pg8000.native  # noqa: PLC0415

    conn = pg8000.native.Connection(args.user, host=args.host, port=args.port, database="postgres")
    try:
        return best_of(lambda: {"rows": len(conn.run(args.query))}, args.repeats)
    finally:
        conn.close()


CLIENTS: dict[str, Callable[[argparse.Namespace], tuple[float, list[float], Check]]] = {
    "e2e.wire": run_wire,
    "e2e.psycopg": run_psycopg,
    "e2e.asyncpg": run_asyncpg,
    "e2e.pg8000": run_pg8000,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(CLIENTS), choices=list(CLIENTS))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for name in args.only:
        try:
            best, times, check = CLIENTS[name](args)
        except ImportError as exc:
            results[name] = {"error": f"not installed: {exc}"}
            continue
        results[name] = {"seconds": best, "times": times, "check": check}
    json.dump({"results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
