"""The tracer against libpq's own trace, message for message.

psycopg (libpq 18) talks to PostgreSQL 18 through the validating relay
with ``pgconn.trace()`` on, and the relay records every message in the
order it decoded them.  :class:`pygwire.trace.Tracer` then formats the
recorded messages, and its text must be libpq's trace file exactly, in
``PQTRACE_SUPPRESS_TIMESTAMPS`` mode and with ``PQTRACE_REGRESS_MODE``;
libpq's file must also read back into messages and be written again
unchanged.  The connection is traced from its first packet (``PQconnectStart``,
``PQtrace``, then polling), and libpq's stdio buffer is flushed after
``PQfinish`` so that Terminate is in the file too.

Order.  libpq writes a client message when it queues it, before sending,
and a server message when it parses it, after it arrived.  The relay
decodes a client message after libpq sent it and a server message before
forwarding it.  So when the relay saw a client message before a server
message, libpq traced them in that order too; the converse does not hold:
a server message may reach the relay before the client queues its next
message and still be parsed by libpq after it, when libpq only reads once
it has something to wait for.  That happens with a notification from
another session: it arrives while the client is idle, and libpq parses it
after queuing its next query.  Where the conversation allows no such race
the relay's order is compared as it is; otherwise libpq's own interleaving
of the two directions is used, and the relay's order is checked to be
consistent with it (no server message traced before a client message the
relay saw first).

libpq leaves AuthenticationOk out of its trace (and the tracer's
``omit_untraced`` does the same), and it does not trace the separate
connection of a cancel request, neither through ``PQcancel``
(``conn.cancel()``) nor through ``PQcancelCreate`` (``conn.cancel_safe()``).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from harness.postgres import USERS, PostgresServer
from psycopg import generators, pq
from psycopg.pq.abc import PGconn

from pygwire import ConnectionPhase, MessageDirection
from pygwire.messages import (
    BackendKeyData,
    CancelRequest,
    DataRow,
    PasswordMessage,
    PGMessage,
    SASLInitialResponse,
    SSLRequest,
)
from pygwire.trace import REDACTED, Tracer, read_trace
from relay import Relay, RelaySession

TIMEOUT = 10.0
PLAIN = pq.Trace.SUPPRESS_TIMESTAMPS
REGRESS = pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE
DIRECTIONS = {"F": MessageDirection.FRONTEND, "B": MessageDirection.BACKEND}

# libpq writes its trace through a stdio FILE that nothing closes; after
# PQfinish only a flush of every stream gets the last lines out.
_libc = ctypes.CDLL(None)


@dataclass
class Recording:
    """libpq's trace of one connection and the relay's record of it."""

    text: str
    regress: bool
    timestamps: bool
    session: RelaySession
    relay: Relay

    @property
    def log(self) -> list[tuple[str, PGMessage]]:
        return self.session.log


def _poll_connect(pgconn: PGconn) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        status = pgconn.connect_poll()
        if status == pq.PollingStatus.OK:
            return
        if status == pq.PollingStatus.FAILED:
            raise psycopg.OperationalError(pgconn.get_error_message())
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("connecting took too long")
        if status == pq.PollingStatus.READING:
            select.select([pgconn.socket], [], [], left)
        else:
            select.select([], [pgconn.socket], [], left)


@contextlib.contextmanager
def traced(
    server: PostgresServer,
    tmp_path: Path,
    *,
    user: str = "trust_user",
    flags: pq.Trace = PLAIN,
    **params: str,
) -> Iterator[tuple[psycopg.Connection[tuple[object, ...]], list[Recording]]]:
    """A psycopg connection through a relay, traced by libpq from its first
    packet; the recording is appended to the list once it is closed."""
    out: list[Recording] = []
    path = tmp_path / f"libpq-{len(list(tmp_path.iterdir()))}.trace"
    with Relay(server.host, server.port) as relay:
        pgconn = pq.PGconn.connect_start(relay.dsn(server.conninfo(user), **params).encode())
        # libpq's FILE takes over a descriptor of its own, never closed.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pgconn.trace(os.dup(fd))
        os.close(fd)
        pgconn.set_trace_flags(flags)
        try:
            _poll_connect(pgconn)
            conn = psycopg.Connection(pgconn)
            conn.autocommit = True
            yield conn, out
            conn.close()
        finally:
            pgconn.finish()
            _libc.fflush(None)
        for session in relay.sessions:
            session.wait_closed(TIMEOUT)
        relay.check()
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    regress = bool(flags & pq.Trace.REGRESS_MODE)
    timestamps = not flags & pq.Trace.SUPPRESS_TIMESTAMPS
    out.append(Recording(text, regress, timestamps, relay.sessions[0], relay))
    assert relay.sessions[0].phase is ConnectionPhase.TERMINATED


def traced_messages(rec: Recording) -> list[tuple[str, PGMessage]]:
    """The recorded messages that libpq traces, in the relay's order."""
    tracer = Tracer(io.StringIO(), timestamps=False, omit_untraced=True)
    return [(side, msg) for side, msg in rec.log if tracer.format(DIRECTIONS[side], msg)]


def chunks(rec: Recording, *, redact: bool = False) -> list[tuple[str, str]]:
    """The tracer's text for each recorded message that libpq traces."""
    tracer = Tracer(io.StringIO(), timestamps=False, regress=rec.regress, redact=redact)
    return [(side, tracer.format(DIRECTIONS[side], msg)) for side, msg in traced_messages(rec)]


def check(rec: Recording, *, relay_order: bool = True) -> int:
    """Assert that the tracer writes libpq's file for the recorded messages
    and that libpq's file reads back; return how many server messages libpq
    traced later than the relay's order puts them.

    With timestamps on, each line gets the timestamp libpq printed for it.
    """
    ours = traced_messages(rec)
    assert ours, "nothing recorded"
    entries = read_trace(rec.text)
    assert len(entries) == len(ours), (len(entries), len(ours))
    tracer = Tracer(io.StringIO(), timestamps=rec.timestamps, regress=rec.regress, redact=False)

    def text(side: str, msg: PGMessage, index: int) -> str:
        return tracer.format(DIRECTIONS[side], msg, timestamp=entries[index].timestamp)

    # libpq's interleaving of the two directions, the messages from the relay.
    queues = {side: [msg for s, msg in ours if s == side] for side in DIRECTIONS}
    taken = {side: 0 for side in DIRECTIONS}
    merged = []
    moved = 0
    fronts_before = []  # per server message: client messages the relay saw before it
    seen = 0
    for side, _ in ours:
        if side == "F":
            seen += 1
        else:
            fronts_before.append(seen)
    for index, entry in enumerate(entries):
        side = "F" if entry.direction is MessageDirection.FRONTEND else "B"
        if side == "B":
            # libpq never traces an answer before a client message that
            # the relay saw first.
            assert fronts_before[taken["B"]] <= taken["F"], "libpq traced a reply too early"
            moved += fronts_before[taken["B"]] < taken["F"]
        merged.append(text(side, queues[side][taken[side]], index))
        taken[side] += 1
    assert "".join(merged) == rec.text
    if relay_order:
        assert "".join(text(side, msg, i) for i, (side, msg) in enumerate(ours)) == rec.text
        assert moved == 0

    # libpq's text reads back and is written again unchanged.
    stream = io.StringIO()
    tracer = Tracer(stream, timestamps=rec.timestamps, regress=rec.regress, redact=False)
    for e in entries:
        tracer.trace(e.direction, e.message, e.size, timestamp=e.timestamp)
    assert stream.getvalue() == rec.text
    return moved


MODES = [pytest.param(PLAIN, id="plain"), pytest.param(REGRESS, id="regress")]


# -- query flows ----------------------------------------------------------------


@pytest.mark.parametrize("flags", MODES)
def test_simple_query(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, flags=flags) as (conn, out):
        row = conn.execute("select 1, 'a\x01b', NULL, 'é', E'tab\\there', '\"q\" \"r\"'").fetchone()
        assert row == (1, "a\x01b", None, "é", "tab\there", '"q" "r"')
        conn.execute("")
        conn.execute('select 1;\nselect 2 as "two "" words"')
        conn.execute("begin")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("select 1/0")
        conn.execute("rollback")
        conn.execute("set application_name = 'traced'")
    (rec,) = out
    assert 'ParameterStatus\t "application_name" "traced"' in rec.text
    assert "ReadyForQuery\t E" in rec.text
    check(rec)


@pytest.mark.parametrize("flags", MODES)
def test_extended_query(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, flags=flags) as (conn, out):
        cur = conn.cursor()
        cur.execute(
            "select %s::int, %b::bytea, %t::text, %s::text", [5, b"\x00\xff\x80x", "t", None]
        )
        assert cur.fetchone() == (5, b"\x00\xff\x80x", "t", None)
        cur = conn.cursor(binary=True)
        cur.execute("select %b::int8, %b::float8, %b::text", [2**40, 1.5, "é\x01"])
        assert cur.fetchone() == (2**40, 1.5, "é\x01")
        conn.execute("create temp table t (a int, b text)")
        conn.execute("insert into t values (%s, %s)", [1, "x"])  # NoData
        pgconn = conn.pgconn
        pgconn.send_prepare(b"st1", b"select $1::int4 + 1", [23])
        conn.wait(generators.execute(pgconn))
        pgconn.send_describe_prepared(b"st1")
        (described,) = conn.wait(generators.execute(pgconn))
        assert described.nparams == 1
        pgconn.send_close_prepared(b"st1")
        conn.wait(generators.execute(pgconn))
    (rec,) = out
    for name in ("ParameterDescription", "Describe\t S", "Close\t S", "CloseComplete", "NoData"):
        assert name in rec.text
    check(rec)


@pytest.mark.parametrize("flags", MODES)
def test_pipeline_with_an_error(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, flags=flags) as (conn, out):

        def failing() -> None:
            with conn.pipeline():
                conn.execute("select 1")
                conn.execute("select 1/0")
                conn.execute("select 2")

        with pytest.raises(psycopg.errors.DivisionByZero):
            failing()
        with conn.pipeline():
            conn.execute("select 3")
            conn.execute("select %s", [4])
    (rec,) = out
    # The failed pipeline: the third query is never answered.
    assert rec.text.count("ErrorResponse") == 1
    # libpq traces the third query when it queues it; whether its bytes
    # reach the relay before or after the first answers is up to the
    # scheduler, so only libpq's own interleaving is compared.
    check(rec, relay_order=False)


@pytest.mark.parametrize("flags", MODES)
def test_copy(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, flags=flags) as (conn, out):
        cur = conn.cursor()
        cur.execute("create temp table c (a int, b text)")
        with cur.copy("copy c from stdin") as copy:
            copy.write_row((1, "one"))
            copy.write_row((2, "tw\to\n'\\x41"))
        with cur.copy("copy c from stdin (format binary)") as copy:
            copy.set_types(["int4", "text"])
            copy.write_row((3, "three"))

        def abandoned() -> None:
            with cur.copy("copy c from stdin") as copy:
                copy.write_row((4, "four"))
                raise ValueError("stop")  # psycopg sends CopyFail

        with pytest.raises(ValueError, match="stop"):
            abandoned()
        with cur.copy("copy (select * from c order by a) to stdout") as copy:
            assert [r for r in copy.rows()] == [
                ("1", "one"),
                ("2", "tw\to\n'\\x41"),
                ("3", "three"),
            ]
        with cur.copy("copy (select * from c order by a) to stdout (format binary)") as copy:
            copy.set_types(["int4", "text"])
            assert [r[0] for r in copy.rows()] == [1, 2, 3]
    (rec,) = out
    for name in ("CopyInResponse", "CopyOutResponse", "CopyFail", "CopyDone", "CopyData"):
        assert name in rec.text
    check(rec)


@pytest.mark.parametrize("flags", MODES)
def test_listen_notify_and_notices(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, flags=flags) as (conn, out):
        conn.execute("listen ch")
        conn.execute("notify ch, 'payload \"x\" y'")
        conn.execute("select pg_notify('ch', '')")
        conn.execute("do $$ begin raise notice 'hi'; raise warning 'careful %', 1; end $$")
        conn.execute("set client_min_messages = debug1")
        conn.execute("create temp table n (a int primary key)")
    (rec,) = out
    assert rec.text.count("NotificationResponse") == 2
    assert rec.text.count("NoticeResponse") >= 3
    check(rec)


def test_notification_from_another_session(pg18: PostgresServer, tmp_path: Path) -> None:
    """The ordering subtlety: the relay sees the notification before the
    next query, libpq traces it after (it parses it while reading the
    query's answer)."""
    with traced(pg18, tmp_path) as (conn, out):
        conn.execute("listen ch")
        with psycopg.connect(pg18.dsn("trust_user"), autocommit=True) as other:
            other.execute("notify ch, 'from elsewhere'")
        time.sleep(0.3)  # the notification reaches the relay, not libpq
        conn.execute("select 1")
        assert [n.payload for n in conn.notifies(timeout=0, stop_after=1)] == ["from elsewhere"]
    (rec,) = out
    sides = [
        side for side, msg in rec.log if type(msg).__name__ in ("Query", "NotificationResponse")
    ]
    assert sides[-2:] == ["B", "F"]  # the relay's order
    assert check(rec, relay_order=False) >= 1


@pytest.mark.parametrize("flags", MODES)
def test_large_values(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value
    with traced(pg18, tmp_path, flags=flags) as (conn, out):
        cur = conn.cursor(binary=True)
        cur.execute("select %b::bytea", [big])
        assert cur.fetchone() == (big,)
        text = "x" * (1 << 20) + "é"
        assert conn.execute("select %s::text", [text]).fetchone() == (text,)
    (rec,) = out
    rows = [m for _, m in rec.log if isinstance(m, DataRow)]
    assert [len(r.to_wire()) for r in rows] == [4 + 1 + 2 + 4 + len(big), 4 + 1 + 2 + 4 + 2**20 + 2]
    check(rec)


def test_function_call(pg18: PostgresServer, tmp_path: Path) -> None:
    """The fast-path interface (PQfn), which psycopg does not wrap."""
    spec = importlib.util.find_spec("psycopg_binary")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    libs = Path(next(iter(spec.submodule_search_locations))).parent / "psycopg_binary.libs"
    (path,) = libs.glob("libpq*.so*")
    libpq = ctypes.CDLL(str(path))  # the library psycopg already loaded

    class Value(ctypes.Union):
        _fields_ = [("ptr", ctypes.POINTER(ctypes.c_int)), ("integer", ctypes.c_int)]

    class ArgBlock(ctypes.Structure):  # libpq's PQArgBlock
        _fields_ = [("len", ctypes.c_int), ("isint", ctypes.c_int), ("u", Value)]

    libpq.PQfn.restype = ctypes.c_void_p
    libpq.PQfn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                           ctypes.POINTER(ctypes.c_int), ctypes.c_int,
                           ctypes.POINTER(ArgBlock), ctypes.c_int]  # fmt: skip
    libpq.PQclear.argtypes = [ctypes.c_void_p]
    with traced(pg18, tmp_path, flags=REGRESS) as (conn, out):
        (oid,) = conn.execute("select 'int4pl'::regproc::oid::int").fetchone() or (0,)
        args = (ArgBlock * 2)(ArgBlock(4, 1, Value(integer=40)), ArgBlock(4, 1, Value(integer=2)))
        result, length = ctypes.c_int(), ctypes.c_int()
        handle = conn.pgconn.pgconn_ptr  # type: ignore[attr-defined]
        res = libpq.PQfn(handle, oid, ctypes.byref(result), ctypes.byref(length), 1, args, 2)
        assert res, conn.pgconn.get_error_message()
        libpq.PQclear(res)
        assert result.value == 42
    (rec,) = out
    assert (
        "F\t32\tFunctionCall\t NNNN 1 1 2 4 '\\x00\\x00\\x00(' 4 '\\x00\\x00\\x00\\x02' 1"
        in rec.text
    )
    check(rec)


# -- startup, authentication, protocol versions -----------------------------------


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "password_user"])
@pytest.mark.parametrize("flags", MODES)
def test_authentication(pg18: PostgresServer, tmp_path: Path, user: str, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, user=user, flags=flags) as (conn, out):
        assert conn.execute("select current_user").fetchone() == (user,)
    (rec,) = out
    check(rec)

    # By default the tracer hides what libpq shows of the secret.
    password = USERS[user]
    assert password is not None
    redacted = "".join(text for _, text in chunks(rec, redact=True))
    secrets = [m for _, m in rec.log if isinstance(m, PasswordMessage | SASLInitialResponse)]
    assert secrets
    assert password not in redacted
    for msg in secrets:
        shown = msg.password if isinstance(msg, PasswordMessage) else msg.data
        assert isinstance(shown, str | bytes)
        text = shown if isinstance(shown, str) else shown.decode("latin-1")
        if not rec.regress or isinstance(msg, PasswordMessage):
            assert text in rec.text  # libpq prints it
        assert text not in redacted
    # In regress mode libpq already hides SASL data ('BBBB'), not passwords.
    assert ("'BBBB'" if rec.regress and user == "scram_user" else REDACTED) in redacted
    if user == "password_user":
        assert f'PasswordMessage\t "{password}"' in rec.text


@pytest.mark.parametrize("flags", MODES)
def test_protocol_3_2(pg18: PostgresServer, tmp_path: Path, flags: pq.Trace) -> None:
    with traced(pg18, tmp_path, flags=flags, max_protocol_version="3.2") as (conn, out):
        assert conn.pgconn.full_protocol_version == 30002
        conn.execute("select 1")
    (rec,) = out
    (key,) = [m for _, m in rec.log if isinstance(m, BackendKeyData)]
    assert len(key.secret_key) == 32
    assert "StartupMessage\t 3 2 " in rec.text
    check(rec)


def test_timestamps(pg18: PostgresServer, tmp_path: Path) -> None:
    before = time.time()
    with traced(pg18, tmp_path, flags=pq.Trace(0)) as (conn, out):
        conn.execute("select 1")
    (rec,) = out
    entries = read_trace(rec.text)
    stamps = [e.timestamp for e in entries if e.timestamp is not None]
    assert len(stamps) == len(entries)
    assert stamps == sorted(stamps)
    assert before - 1 <= stamps[0].timestamp() <= time.time() + 1
    # Each line formatted with the timestamp libpq printed on it.
    check(rec)


# -- cancellation ---------------------------------------------------------------


def _cancel_session(rec: Recording) -> RelaySession:
    (session,) = rec.relay.sessions[1:]
    session.check()
    *before, request = session.from_client
    assert isinstance(request, CancelRequest), session.from_client
    # sslmode=prefer: libpq negotiates encryption on this connection too.
    assert before in ([], [SSLRequest()])
    (key,) = [m for _, m in rec.log if isinstance(m, BackendKeyData)]
    assert (request.process_id, request.secret_key) == (key.process_id, key.secret_key)
    return session


@pytest.mark.parametrize("protocol", ["3.0", "3.2"])
def test_cancel_safe(pg18: PostgresServer, tmp_path: Path, protocol: str) -> None:
    """``PQcancelCreate``: its connection is not traced."""
    with traced(pg18, tmp_path, max_protocol_version=protocol) as (conn, out):
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(5)")
        timer.join()
    (rec,) = out
    _cancel_session(rec)
    assert "CancelRequest" not in rec.text
    check(rec)


CANCEL_CLIENT = r"""
import ctypes, os, select, sys, threading
import psycopg
from psycopg import pq
dsn, path = sys.argv[1:]
pgconn = pq.PGconn.connect_start(dsn.encode())
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
pgconn.trace(fd)
pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
while (status := pgconn.connect_poll()) != pq.PollingStatus.OK:
    assert status != pq.PollingStatus.FAILED, pgconn.get_error_message()
    waiting = [pgconn.socket]
    select.select(waiting if status == pq.PollingStatus.READING else [],
                  [] if status == pq.PollingStatus.READING else waiting, [], 10)
conn = psycopg.Connection(pgconn)
timer = threading.Timer(0.5, conn.cancel)
timer.start()
try:
    conn.execute("select pg_sleep(5)")
except psycopg.errors.QueryCanceled:
    pass
else:
    raise SystemExit("not cancelled")
timer.join()
conn.close()
ctypes.CDLL(None).fflush(None)  # libpq's FILE is never closed
"""


def test_cancel_blocking(pg18: PostgresServer, tmp_path: Path) -> None:
    """``PQcancel`` (psycopg's ``conn.cancel()``): its connection is not
    traced.  The client runs in a process of its own: psycopg calls
    ``PQcancel`` without releasing the GIL, which would stop the relay's
    threads while libpq waits for them."""
    path = tmp_path / "libpq.trace"
    with Relay(pg18.host, pg18.port) as relay:
        dsn = relay.dsn(pg18.conninfo("trust_user"))
        subprocess.run(
            [sys.executable, "-c", CANCEL_CLIENT, dsn, str(path)], check=True, timeout=30
        )
        for session in relay.sessions:
            session.wait_closed(TIMEOUT)
        relay.check()
    rec = Recording(path.read_text(), False, False, relay.sessions[0], relay)
    _cancel_session(rec)
    assert "CancelRequest" not in rec.text
    check(rec)


# -- helpers under test ------------------------------------------------------------


def test_check_notices_a_wrong_trace(pg18: PostgresServer, tmp_path: Path) -> None:
    """The comparison can fail: a trace with one line changed is refused."""
    with traced(pg18, tmp_path) as (conn, out):
        conn.execute("select 1")
    (rec,) = out
    rec.text = rec.text.replace('"select 1"', '"select 2"')
    with pytest.raises(AssertionError):
        check(rec)
