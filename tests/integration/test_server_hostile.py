"""pygwire.server against hostile clients: none of them may stop other
clients from being served, or make the server's memory grow without bound.

The server runs in this process (a :class:`ServerThread`), so its resident
set size is this process's: it is read from ``/proc/self/status`` before
and after each attack, and the growth must stay far below what the attack
would cost if the server kept what it was sent or what it could not send.
Meanwhile, and after, a well-behaved psycopg client must get its answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import psycopg
import pytest

from pygwire import FrontendConnection
from pygwire.messages import (
    CopyData,
    CopyDone,
    CopyInResponse,
    DataRow,
    ErrorResponse,
    PGMessage,
    Query,
    ReadyForQuery,
    StartupMessage,
)
from pygwire.server import CopyIn, Handler, Outcome, Result, Server, ServerThread

TIMEOUT = 30.0
MIB = 1024 * 1024


class Rows(Handler):
    """``big n``: n rows of 1 KiB, made as they are sent; ``copy in``: COPY
    FROM STDIN, its rows counted; anything else echoes."""

    async def query(self, sql: str, params: Sequence[object]) -> Outcome:
        if sql == "copy in":

            async def sink(rows: AsyncIterator[tuple[object, ...]]) -> int:
                return len([row async for row in rows])

            return CopyIn(sink)
        if sql.startswith("big "):
            count = int(sql.split()[1])
            return Result(["n", "pad"], ((i, "x" * 1024) for i in range(count)))
        return Result(["echo"], [(sql,)])


def rss() -> int:
    """This process's resident set size, in bytes."""
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(
        Server(Rows, startup_timeout=2.0, max_connections=2000, max_message_size=MIB),
        "127.0.0.1",
        0,
    ) as running:
        yield running


def _served(running: ServerThread) -> None:
    """A well-behaved client gets its answer."""
    dsn = f"host=127.0.0.1 port={running.port} user=good sslmode=disable connect_timeout=10"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("hello").fetchone() == ("hello",)


def _connect(running: ServerThread) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
    return sock


def _startup(sock: socket.socket) -> FrontendConnection:
    client = FrontendConnection()
    sock.sendall(client.send(StartupMessage(params={"user": "raw"})))
    _until(sock, client, ReadyForQuery)
    return client


def _until(sock: socket.socket, client: FrontendConnection, kind: type) -> list[PGMessage]:
    got: list[PGMessage] = []
    while not any(isinstance(m, kind) for m in got):
        data = sock.recv(65536)
        if not data:
            break
        got.extend(client.receive(data))
    return got


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(TIMEOUT)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_slow_loris_startup(server: ServerThread) -> None:
    before = rss()
    packet = StartupMessage(params={"user": "slow", "database": "d" * 200}).to_wire()
    lorises = [_connect(server) for _ in range(20)]
    for i in range(8):  # a byte every 0.1 s from each: never a whole packet in time
        for sock in lorises:
            sock.sendall(packet[i : i + 1])
        _served(server)  # others are served meanwhile
        time.sleep(0.1)
    # The startup timeout ends them; nothing was sent to them but the close.
    for sock in lorises:
        assert _closed_by_server(sock) == b""
        sock.close()
    _served(server)
    assert rss() - before < 20 * MIB


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x00\x00\x08\xde\xad\xbe\xef",  # a request code nobody defined
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a web browser
        bytes(range(256)) * 4,
        b"\x00\x00\x00\x03",  # a length shorter than the length word
    ],
)
def test_garbage_before_startup(server: ServerThread, garbage: bytes) -> None:
    with _connect(server) as sock:
        sock.sendall(garbage)
        reply = _closed_by_server(sock)
    # At most an ErrorResponse ('E'), then the close.
    assert reply[:1] in (b"", b"E")
    _served(server)


def test_garbage_after_startup(server: ServerThread) -> None:
    with _connect(server) as sock:
        client = _startup(sock)
        sock.sendall(b"\x01\x02\x03\x04\x05garbage" * 10)
        reply = _closed_by_server(sock)
    got = list(client.receive(reply)) if reply else []
    assert got, "the server says why it closes"
    error = got[0]
    assert isinstance(error, ErrorResponse)
    assert error.fields["S"] == "FATAL"
    assert error.fields["C"] == "08P01"  # protocol_violation
    _served(server)


def test_oversized_messages(server: ServerThread) -> None:
    before = rss()
    # A Query that says it is 1 GiB long: refused from its length word alone.
    with _connect(server) as sock:
        client = _startup(sock)
        sock.sendall(b"Q" + struct.pack("!I", 1024 * MIB) + b"select 1")
        reply = _closed_by_server(sock)
    error = next(iter(client.receive(reply)))
    assert isinstance(error, ErrorResponse)
    assert error.fields["C"] == "08P01"
    # One just over the configured 1 MiB, sent in full: refused as well.
    with _connect(server) as sock:
        client = _startup(sock)
        body = b"select '" + b"x" * MIB + b"'\x00"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            # (closed, maybe, before everything was sent)
            sock.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
        reply = _closed_by_server(sock)
    assert reply[:1] == b"E"
    # A startup packet of 5 MiB (PostgreSQL refuses any over 10,000 bytes).
    with _connect(server) as sock:
        sock.sendall(struct.pack("!II", 5 * MIB, 196608))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"user\x00x\x00" * 1000)
        _closed_by_server(sock)
    _served(server)
    assert rss() - before < 20 * MIB


def test_a_thousand_idle_connections(server: ServerThread) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * 1000 + 256  # both ends live in this process
    if soft < needed:
        assert hard == resource.RLIM_INFINITY or hard >= needed, f"RLIMIT_NOFILE hard {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        before = rss()
        idle: list[socket.socket] = []
        try:
            for _ in range(1000):
                sock = _connect(server)
                idle.append(sock)
                _startup(sock)
            assert server.call(lambda: len(server.server.sessions)) == 1000
            _served(server)
            # Generous: PostgreSQL itself spends megabytes per backend.
            assert rss() - before < 200 * MIB
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + TIMEOUT
        while server.call(lambda: len(server.server.sessions)) > 0:
            assert time.monotonic() < deadline, "the sessions did not end"
            time.sleep(0.1)
        _served(server)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_client_that_never_reads(server: ServerThread) -> None:
    before = rss()
    rows = 200_000  # about 200 MiB of DataRows
    with _connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client = _startup(sock)
        sock.sendall(client.send(Query(query_string=f"big {rows}")))
        time.sleep(1.0)  # the server fills the socket buffers, then waits
        _served(server)
        during = rss() - before
        # Reading now, the whole result still arrives.
        sock.settimeout(TIMEOUT)
        count = 0
        done = False
        while not done:
            data = sock.recv(1 << 20)
            assert data, "the server closed the connection"
            for msg in client.receive(data):
                count += type(msg).__name__ == "DataRow"
                done = done or isinstance(msg, ReadyForQuery)
    assert count == rows
    assert during < 30 * MIB
    _served(server)


class _SlowToClose(Rows):
    """The first session's ``close`` waits until the test lets it finish."""

    closing = threading.Event()
    release = threading.Event()

    async def close(self) -> None:
        if type(self).closing.is_set():
            return
        type(self).closing.set()
        while not type(self).release.is_set():
            await asyncio.sleep(0.01)


def test_notify_to_a_failed_listener_spares_the_notifier() -> None:
    # A listener breaks the protocol; while its session is still ending (its
    # handler closing), another session's NOTIFY must not fail because of it.
    with ServerThread(Server(_SlowToClose), "127.0.0.1", 0) as running:
        try:
            with _connect(running) as sock:
                client = _startup(sock)
                sock.sendall(client.send(Query(query_string="listen x")))
                _until(sock, client, ReadyForQuery)
                sock.sendall(b"Q\x00\x00\x00\x03")  # a length word below 4
                assert _SlowToClose.closing.wait(TIMEOUT)
                dsn = f"host=127.0.0.1 port={running.port} user=b sslmode=disable"
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("notify x, 'hi'")
                    assert conn.execute("still here").fetchone() == ("still here",)
        finally:
            _SlowToClose.release.set()


def test_a_copy_line_that_never_ends(server: ServerThread) -> None:
    # A line of COPY data sent a byte per CopyData costs its length once
    # (not once per piece), and one longer than max_message_size (1 MiB
    # here) is refused rather than buffered: 54000, as PostgreSQL's
    # "program limit exceeded".
    with _connect(server) as sock:
        client = _startup(sock)
        sock.sendall(client.send(Query(query_string="copy in")))
        assert any(isinstance(m, CopyInResponse) for m in _until(sock, client, CopyInResponse))
        sock.sendall(b"".join(client.send(CopyData(data=b"x")) for _ in range(100_000)))
        # The server reads on after refusing the row (the rest of the COPY
        # data is ignored until the client's next request).
        sock.sendall(b"".join(client.send(CopyData(data=b"x" * 65536)) for _ in range(17)))
        sock.sendall(CopyDone().to_wire())
        got = _until(sock, client, ReadyForQuery)
        errors = [m for m in got if isinstance(m, ErrorResponse)]
        assert [e.fields.get("C") for e in errors] == ["54000"]
        sock.sendall(client.send(Query(query_string="after")))
        got = _until(sock, client, ReadyForQuery)
        assert [m.columns for m in got if isinstance(m, DataRow)] == [[b"after"]]
    _served(server)


def test_a_listener_that_never_reads(server: ServerThread) -> None:
    # NOTIFYs for a listener that does not read wait in the server, up to a
    # bound; then its session ends (53200, out of memory) rather than the
    # server's memory growing with every notification.
    before = rss()
    payload = "n" * 7000
    with _connect(server) as sock:
        client = _startup(sock)
        sock.sendall(client.send(Query(query_string="listen x")))
        _until(sock, client, ReadyForQuery)
        dsn = f"host=127.0.0.1 port={server.port} user=notifier sslmode=disable"
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(5000):  # 35 MB of notifications
                conn.execute(f"notify x, '{payload}'")
        during = rss() - before
        got = list(client.receive(_closed_by_server(sock)))
    assert during < 20 * MIB
    last = got[-1]
    assert isinstance(last, ErrorResponse)
    assert (last.fields.get("S"), last.fields.get("C")) == ("FATAL", "53200")
    _served(server)
