"""The timed workloads, run with whichever pygwire the interpreter has.

``benchmarks/run.py`` runs this script under the project's venv (the current
pygwire) and under ``benchmarks/.ref-venv`` (pygwire 0.2.0 from PyPI), so it
only uses API both versions have: decoders' ``feed``, ``phase`` and
iteration (0.2.0 has no ``read()``), message constructors with keyword
arguments, ``to_wire()``, message fields, and ``FrontendConnection``'s
``send``/``receive``.

Every command prints one JSON object on stdout::

    python benchmarks/workloads.py micro  --data DIR [--repeats N] [--only NAME ...]
    python benchmarks/workloads.py memory --data DIR
    python benchmarks/workloads.py e2e    --host H --port P --user U --query Q [--repeats N]

Each timing is the best of ``--repeats`` runs (``time.perf_counter``, with
the garbage collector off during the timed region only).  Alongside it goes
a small ``check`` (message counts, column bytes, NULLs, SHA-256 of encoded
bytes) that the driver compares with what the inputs are known to hold.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import json
import os
import pickle
import resource
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygwire
from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    FrontendConnection,
    FrontendMessageDecoder,
)
from pygwire.messages import (
    Bind,
    DataRow,
    Describe,
    ErrorResponse,
    Execute,
    Parse,
    Query,
    ReadyForQuery,
    RowDescription,
    StartupMessage,
    Sync,
)

CHUNK = 64 * 1024
"""Bytes per ``feed()``: a typical socket read."""
RECV_SIZE = 256 * 1024
"""``recv()`` size of the end-to-end loop (the same in ``drivers.py``)."""

Check = dict[str, Any]
Workload = Callable[[], Check]


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    """Split ``data`` into ``size``-byte bytes objects (before timing)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def best_of(run: Workload, repeats: int) -> tuple[float, list[float], Check]:
    """Run ``run`` ``repeats`` times; best time, all times, and its check."""
    times: list[float] = []
    check: Check = {}
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = run()
            elapsed = time.perf_counter() - t0
        finally:
            gc.enable()
        if check and result != check:
            raise AssertionError(f"result changed between repeats: {check} vs {result}")
        check = result
        times.append(elapsed)
    return min(times), times, check


def backend_decoder() -> BackendMessageDecoder:
    dec = BackendMessageDecoder()
    dec.phase = ConnectionPhase.READY
    return dec


def frontend_decoder() -> FrontendMessageDecoder:
    dec = FrontendMessageDecoder()
    dec.phase = ConnectionPhase.READY
    return dec


# -- server streams (1, 2, 3) --------------------------------------------------


def decode_type_only(chunks: list[bytes]) -> Check:
    """Decode and look at each message's type only, as a proxy would."""
    dec = backend_decoder()
    messages = 0
    datarows = 0
    for chunk in chunks:
        dec.feed(chunk)
        for msg in dec:
            messages += 1
            if type(msg) is DataRow:
                datarows += 1
    return {"messages": messages, "datarows": datarows}


def decode_rows_full(chunks: list[bytes]) -> Check:
    """Decode and read every column of every row."""
    dec = backend_decoder()
    rows = 0
    column_bytes = 0
    nulls = 0
    for chunk in chunks:
        dec.feed(chunk)
        for msg in dec:
            if type(msg) is DataRow:
                rows += 1
                for col in msg.columns:
                    if col is None:
                        nulls += 1
                    else:
                        column_bytes += len(col)
    return {"rows": rows, "column_bytes": column_bytes, "nulls": nulls}


def decode_row_descriptions(chunks: list[bytes]) -> Check:
    """Decode RowDescriptions and read every field's name and type."""
    dec = backend_decoder()
    messages = 0
    fields = 0
    name_bytes = 0
    for chunk in chunks:
        dec.feed(chunk)
        for msg in dec:
            if type(msg) is RowDescription:
                messages += 1
                for field in msg.fields:
                    fields += field.type_oid > 0
                    name_bytes += len(field.name)
    return {"messages": messages, "fields": fields, "name_bytes": name_bytes}


# -- client stream (4) ----------------------------------------------------------


def decode_client_type_only(chunks: list[bytes]) -> Check:
    dec = frontend_decoder()
    messages = 0
    syncs = 0
    for chunk in chunks:
        dec.feed(chunk)
        for msg in dec:
            messages += 1
            if type(msg) is Sync:
                syncs += 1
    return {"messages": messages, "syncs": syncs}


def decode_client_full(chunks: list[bytes]) -> Check:
    """Decode and touch every field of every message."""
    dec = frontend_decoder()
    messages = 0
    query_bytes = 0
    param_bytes = 0
    other = 0
    for chunk in chunks:
        dec.feed(chunk)
        for msg in dec:
            messages += 1
            if type(msg) is Parse:
                query_bytes += len(msg.query)
                other += len(msg.statement) + len(msg.param_types)
            elif type(msg) is Bind:
                for value in msg.param_values:
                    if value is not None:
                        param_bytes += len(value)
                other += len(msg.portal) + len(msg.statement)
                other += len(msg.param_formats) + len(msg.result_formats)
            elif type(msg) is Describe:
                other += len(msg.kind) + len(msg.name)
            elif type(msg) is Execute:
                other += len(msg.portal) + msg.max_rows
    return {
        "messages": messages,
        "query_bytes": query_bytes,
        "param_bytes": param_bytes,
        "other": other,
    }


# -- encoding (5) ---------------------------------------------------------------


def encode_datarows(rows: list[list[bytes | None]]) -> list[bytes]:
    return [DataRow(columns=row).to_wire() for row in rows]


def encode_bind_execute_sync(params: list[list[bytes | None]]) -> list[bytes]:
    out: list[bytes] = []
    append = out.append
    for values in params:
        append(
            Bind(
                portal="",
                statement="",
                param_formats=[0],
                param_values=values,
                result_formats=[0],
            ).to_wire()
        )
        append(Execute(portal="", max_rows=0).to_wire())
        append(Sync().to_wire())
    return out


def encoded(parts: list[bytes]) -> Check:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return {"messages": len(parts), "sha256": h.hexdigest()}


# -- the micro command ----------------------------------------------------------


def micro_workloads(data: Path) -> Iterator[tuple[str, int, Callable[[], Workload]]]:
    """(name, weight, setup) triples; setup loads the input, returns the timed call.

    ``weight`` multiplies ``--repeats`` for the shortest workloads, the same
    in every environment.  Inputs are loaded one workload at a time so that
    no more than one is held in memory at once.
    """

    def stream(name: str, fn: Callable[[list[bytes]], Check]) -> Callable[[], Workload]:
        def setup() -> Workload:
            chunks = chunked((data / name).read_bytes())
            return lambda: fn(chunks)

        return setup

    def encode(
        name: str, fn: Callable[[list[list[bytes | None]]], list[bytes]]
    ) -> Callable[[], Workload]:
        def setup() -> Workload:
            items = pickle.loads((data / name).read_bytes())
            return lambda: encoded(fn(items))

        return setup

    yield "server_stream.type_only", 1, stream("server_stream.bin", decode_type_only)
    yield "server_stream.full", 1, stream("server_stream.bin", decode_rows_full)
    yield "wide_rows.full", 1, stream("wide_rows.bin", decode_rows_full)
    sizes = sorted(int(p.stem.rsplit("_", 1)[1]) for p in data.glob("row_description_*.bin"))
    for nfields in sizes:
        name = f"row_description_{nfields}.bin"
        yield f"row_description.{nfields}", 3, stream(name, decode_row_descriptions)
    yield "large_values.full", 5, stream("large_values.bin", decode_rows_full)
    yield "client_stream.type_only", 1, stream("client_stream.bin", decode_client_type_only)
    yield "client_stream.full", 1, stream("client_stream.bin", decode_client_full)
    yield "encode.datarows", 1, encode("encode_rows.pickle", encode_datarows)
    yield "encode.bind_execute_sync", 1, encode("encode_binds.pickle", encode_bind_execute_sync)


def cmd_micro(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, weight, setup in micro_workloads(Path(args.data)):
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            continue
        run = setup()
        best, times, check = best_of(run, args.repeats * weight)
        results[name] = {"seconds": best, "times": times, "check": check}
        del run
    return results


# -- the memory command (7) -----------------------------------------------------


def rss_kib(field: str) -> int:
    """A ``/proc/self/status`` memory line (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def cmd_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS while decoding a long DataRow stream in 64 KiB chunks.

    The stream is one block of whole DataRows, copied afresh for every
    ``feed()`` (like a socket read) so the decoder cannot get away with
    holding references to one shared object, and so nothing here ever
    holds more than one block.
    """
    data = Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text())["memory"]
    block = (data / "memory_block.bin").read_bytes()
    blocks: int = manifest["blocks"]
    view = memoryview(block)
    dec = backend_decoder()
    gc.collect()
    baseline = rss_kib("VmRSS")
    t0 = time.perf_counter()
    rows = 0
    column_bytes = 0
    for _ in range(blocks):
        dec.feed(bytes(view))  # a new object each time
        for msg in dec:
            if type(msg) is DataRow:
                rows += 1
                for col in msg.columns:
                    if col is not None:
                        column_bytes += len(col)
    elapsed = time.perf_counter() - t0
    hwm = rss_kib("VmHWM")
    return {
        "memory": {
            "seconds": elapsed,
            "stream_bytes": blocks * len(block),
            "baseline_rss_kib": baseline,
            "peak_rss_kib": hwm,
            "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "peak_over_baseline_kib": hwm - baseline,
            "check": {"rows": rows, "column_bytes": column_bytes},
        }
    }


# -- the end-to-end command (6) -------------------------------------------------


class SocketClient(FrontendConnection):
    """A blocking client: FrontendConnection plus a socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def on_send(self, data: bytes) -> None:
        self.sock.sendall(data)


def fail(msg: Any) -> None:
    raise RuntimeError(f"server error: {msg!r}")


def e2e_connect(host: str, port: int, user: str) -> SocketClient:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = SocketClient(sock)
    conn.send(StartupMessage(params={"user": user, "database": "postgres"}))
    while True:
        data = sock.recv(RECV_SIZE)
        if not data:
            raise RuntimeError("server closed the connection during startup")
        for msg in conn.receive(data):
            if isinstance(msg, ErrorResponse):
                fail(msg)
            if isinstance(msg, ReadyForQuery):
                return conn


def e2e_query(conn: SocketClient, query: str) -> Check:
    """Send ``query``, read every column of every row, stop at ReadyForQuery."""
    recv = conn.sock.recv
    receive = conn.receive
    conn.send(Query(query_string=query))
    rows = 0
    column_bytes = 0
    nulls = 0
    while True:
        data = recv(RECV_SIZE)
        if not data:
            raise RuntimeError("server closed the connection")
        for msg in receive(data):
            if type(msg) is DataRow:
                rows += 1
                for col in msg.columns:
                    if col is None:
                        nulls += 1
                    else:
                        column_bytes += len(col)
            elif type(msg) is ReadyForQuery:
                return {"rows": rows, "column_bytes": column_bytes, "nulls": nulls}
            elif type(msg) is ErrorResponse:
                fail(msg)


def cmd_e2e(args: argparse.Namespace) -> dict[str, Any]:
    conn = e2e_connect(args.host, args.port, args.user)
    try:
        best, times, check = best_of(lambda: e2e_query(conn, args.query), args.repeats)
    finally:
        conn.sock.close()
    return {"e2e.pygwire": {"seconds": best, "times": times, "check": check}}


# -- main -----------------------------------------------------------------------


def implementation() -> dict[str, str]:
    return {
        "version": importlib.metadata.version("pygwire"),
        "file": str(pygwire.__file__),
        "python": sys.version.split()[0],
        "pid": str(os.getpid()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    micro = sub.add_parser("micro", help="codec workloads on prepared inputs")
    micro.add_argument("--data", required=True)
    micro.add_argument("--repeats", type=int, default=3)
    micro.add_argument("--only", nargs="*", default=[], help="workload name prefixes")
    memory = sub.add_parser("memory", help="peak RSS decoding a long stream")
    memory.add_argument("--data", required=True)
    e2e = sub.add_parser("e2e", help="a query against a real server")
    e2e.add_argument("--host", required=True)
    e2e.add_argument("--port", type=int, required=True)
    e2e.add_argument("--user", required=True)
    e2e.add_argument("--query", required=True)
    e2e.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    commands = {"micro": cmd_micro, "memory": cmd_memory, "e2e": cmd_e2e}
    results = commands[args.command](args)
    json.dump({"implementation": implementation(), "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
