"""libpq (psycopg) and asyncpg through a decoding relay to a real PostgreSQL 18.

Every message in both directions is decoded by pygwire and checked by one
strict model shared by both directions (a ProxyConnection); the relay
forwards the original bytes, and every message re-encoded must equal them.
After each flow the model must be idle (READY, nothing outstanding), no
StateMachineError may have been raised; closing the client must leave the
model TERMINATED.

Nothing here skips: a flow that cannot run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import asyncpg
import pg8000.native
import psycopg
import pytest
from harness.postgres import PostgresServer
from psycopg import errors as pg_errors
from psycopg import generators, pq, waiting
from psycopg.abc import PQGen
from psycopg.conninfo import make_conninfo

from pygwire import ConnectionPhase, StartupRequestCode
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    Bind,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    NoticeResponse,
    NotificationResponse,
    ParameterStatus,
    Parse,
    PasswordMessage,
    PGMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
)
from relay import Relay, RelaySession

TIMEOUT = 10.0
READY = ConnectionPhase.READY
TERMINATED = ConnectionPhase.TERMINATED

Conn = psycopg.Connection[Any]
T = TypeVar("T")


@pytest.fixture(params=[65536, 3], ids=["whole", "split"])
def relay(pg18: PostgresServer, request: pytest.FixtureRequest) -> Iterator[Relay]:
    """A relay reading up to 64 KiB at once, or 3 bytes (messages arrive in pieces)."""
    chunk_size: int = request.param
    with Relay(pg18.host, pg18.port, chunk_size) as r:
        yield r
    r.check()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("relay-")]


@pytest.fixture
def connect(relay: Relay, pg18: PostgresServer) -> Iterator[Callable[..., Conn]]:
    """Open psycopg connections through the relay; close them at the end."""
    opened: list[Conn] = []

    def open_conn(user: str = "trust_user", **params: Any) -> Conn:
        params.setdefault("sslmode", "disable")
        params.setdefault("gssencmode", "disable")
        params.setdefault("autocommit", True)
        params.setdefault("connect_timeout", 10)
        conn = psycopg.connect(make_conninfo("", **relay.conninfo(pg18.conninfo(user))), **params)
        opened.append(conn)
        return conn

    yield open_conn
    for conn in opened:
        conn.close()


def session_of(relay: Relay, conn: Conn) -> RelaySession:
    """The relayed connection that carried ``conn``'s BackendKeyData."""
    pid = conn.info.backend_pid
    for session in relay.sessions:
        keys = [m for m in session.from_server if isinstance(m, BackendKeyData)]
        if keys and keys[0].process_id == pid:
            return session
    raise LookupError(f"no relayed connection for backend {pid}")


def settled(session: RelaySession) -> None:
    """The model is idle between flows, with nothing pending and no error."""
    session.check()
    assert session.phase == READY, (
        [type(m).__name__ for m in session.from_client[-6:]],
        [type(m).__name__ for m in session.from_server[-6:]],
    )
    state = session.proxy.state
    assert state.pending_syncs == 0
    assert state.outstanding == ()


def close_and_check(conn: Conn, session: RelaySession) -> None:
    conn.close()
    session.wait_closed(TIMEOUT)
    session.check()
    assert session.phase == TERMINATED


def nonblocking(conn: Conn, gen: PQGen[T]) -> T:
    """Run a psycopg generator on ``conn``'s socket.

    libpq's blocking calls that psycopg does not run without the GIL would
    stop the relay's threads too; the generators wait in Python instead.
    """
    return waiting.wait(gen, conn.pgconn.socket, interval=0.1)


def received(log: list[PGMessage], *types: type[PGMessage]) -> list[PGMessage]:
    return [m for m in log if isinstance(m, types)]


def kinds(log: list[PGMessage]) -> list[type[PGMessage]]:
    return [type(m) for m in log]


# --------------------------------------------------------------------------
# Connection set-up


AUTH_EXCHANGES: dict[str, tuple[list[type[PGMessage]], list[type[PGMessage]]]] = {
    # user: (authentication messages from the server, replies of the client)
    "trust_user": ([AuthenticationOk], []),
    "password_user": ([AuthenticationCleartextPassword, AuthenticationOk], [PasswordMessage]),
    "md5_user": ([AuthenticationMD5Password, AuthenticationOk], [PasswordMessage]),
    "scram_user": (
        [AuthenticationSASL, AuthenticationSASLContinue, AuthenticationSASLFinal, AuthenticationOk],
        [SASLInitialResponse, SASLResponse],
    ),
}

_AUTH_FROM_SERVER = (
    AuthenticationOk,
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
)


@pytest.mark.parametrize("user", list(AUTH_EXCHANGES))
def test_authentication(relay: Relay, connect: Callable[..., Conn], user: str) -> None:
    conn = connect(user)
    session = session_of(relay, conn)
    settled(session)
    assert conn.execute("select current_user").fetchone() == (user,)
    settled(session)
    server_auth, client_auth = AUTH_EXCHANGES[user]
    assert kinds(received(session.from_server, *_AUTH_FROM_SERVER)) == server_auth
    assert kinds(session.from_client[1 : 1 + len(client_auth)]) == client_auth
    if user == "scram_user":
        sasl = received(session.from_server, AuthenticationSASL)[0]
        assert isinstance(sasl, AuthenticationSASL)
        assert "SCRAM-SHA-256" in sasl.mechanisms
    close_and_check(conn, session)


def test_wrong_password_fails_both_sides(relay: Relay, pg18: PostgresServer) -> None:
    info = relay.conninfo(
        pg18.conninfo("scram_user"), password="wrong", sslmode="disable", gssencmode="disable"
    )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(make_conninfo("", **info))
    session = relay.sessions[-1]
    session.wait_closed(TIMEOUT)
    session.check()
    assert session.phase == ConnectionPhase.FAILED
    error = session.from_server[-1]
    assert isinstance(error, ErrorResponse)
    assert error.severity == "FATAL"
    assert error.code == "28P01"


def test_sslmode_prefer(relay: Relay, connect: Callable[..., Conn]) -> None:
    """The SSLRequest goes through; the server (no TLS configured) says 'N'."""
    conn = connect("scram_user", sslmode="prefer", gssencmode="prefer")
    session = session_of(relay, conn)
    assert kinds(session.from_client[:2]) == [SSLRequest, StartupMessage]
    assert session.from_server[0] is SSLResponse.NOT_SUPPORTED
    assert conn.execute("select 1").fetchone() == (1,)
    settled(session)
    close_and_check(conn, session)


def test_protocol_3_2_and_cancel(relay: Relay, connect: Callable[..., Conn]) -> None:
    """Protocol 3.2: a 32-byte cancel key, used through the relay to cancel a query."""
    conn = connect(max_protocol_version="3.2")
    session = session_of(relay, conn)
    startup = session.from_client[0]
    assert isinstance(startup, StartupMessage)
    assert startup.protocol_version == StartupRequestCode.V3_2
    assert conn.info.full_protocol_version == 30002
    key = received(session.from_server, BackendKeyData)[0]
    assert isinstance(key, BackendKeyData)
    assert len(key.secret_key) == 32

    timer = threading.Timer(0.5, conn.cancel_safe)
    timer.start()
    try:
        with pytest.raises(pg_errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")
    finally:
        timer.join()
    settled(session)
    cancel_session = next(
        s for s in relay.sessions if s.from_client and isinstance(s.from_client[0], CancelRequest)
    )
    cancel_session.wait_closed(TIMEOUT)
    cancel_session.check()
    assert cancel_session.from_client == [
        CancelRequest(process_id=key.process_id, secret_key=key.secret_key)
    ]
    assert cancel_session.phase == TERMINATED
    assert conn.execute("select 2").fetchone() == (2,)
    close_and_check(conn, session)


# --------------------------------------------------------------------------
# Simple query


def test_simple_queries(relay: Relay, connect: Callable[..., Conn]) -> None:
    conn = connect()
    session = session_of(relay, conn)

    cur = conn.execute("select 1; select 2 as two, 'x' as x")
    assert cur.fetchall() == [(1,)]
    assert cur.nextset()
    assert cur.fetchall() == [(2, "x")]
    assert received(session.from_client, Query)[-1] == Query(
        query_string="select 1; select 2 as two, 'x' as x"
    )
    assert len(received(session.from_server, CommandComplete)) >= 2
    settled(session)

    with pytest.raises(pg_errors.UndefinedTable) as undefined:
        conn.execute("select * from no_such_table")
    assert undefined.value.sqlstate == "42P01"
    assert isinstance(session.from_server[-2], ErrorResponse)
    settled(session)

    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    conn.execute("DO $$ BEGIN RAISE NOTICE 'x'; END $$")
    assert notices == ["x"]
    notice = received(session.from_server, NoticeResponse)[-1]
    assert isinstance(notice, NoticeResponse)
    assert notice.message == "x"
    settled(session)

    result = conn.pgconn.exec_(b"")
    assert result.status == pq.ExecStatus.EMPTY_QUERY
    assert kinds(session.from_server[-2:]) == [EmptyQueryResponse, ReadyForQuery]
    settled(session)

    # A failing statement in the middle of a multi-statement query.
    with pytest.raises(pg_errors.DivisionByZero):
        conn.execute("select 1; select 1/0; select 3")
    settled(session)

    # A reported setting changes: ParameterStatus arrives mid-query.
    conn.execute("set application_name = 'through the relay'")
    assert conn.info.parameter_status("application_name") == "through the relay"
    status = received(session.from_server, ParameterStatus)[-1]
    assert status == ParameterStatus(name="application_name", value="through the relay")
    settled(session)

    # Transactions: the status byte follows, on both sides.
    conn.execute("begin")
    assert session.proxy.state.transaction_status == "T"
    with pytest.raises(pg_errors.UndefinedTable):
        conn.execute("select * from no_such_table")
    assert session.proxy.state.transaction_status == "E"
    conn.execute("rollback")
    settled(session)
    assert session.proxy.state.transaction_status == "I"
    close_and_check(conn, session)


# --------------------------------------------------------------------------
# Extended query


def test_extended_queries(relay: Relay, connect: Callable[..., Conn]) -> None:
    conn = connect()
    session = session_of(relay, conn)

    row = conn.execute("select %s::int4, %s::text, %s::bool", (42, "hi", True)).fetchone()
    assert row == (42, "hi", True)
    bind = received(session.from_client, Bind)[-1]
    assert isinstance(bind, Bind)
    assert bind.result_formats == [0]
    settled(session)

    cur = conn.cursor(binary=True)
    cur.execute("select %b::int8, %b::text, %s::int4[]", (2**40, "bin", [1, 2]))
    assert cur.fetchone() == (2**40, "bin", [1, 2])
    bind = received(session.from_client, Bind)[-1]
    assert isinstance(bind, Bind)
    assert bind.result_formats == [1]
    assert 1 in bind.param_formats
    settled(session)

    cur = conn.execute("select generate_series(1, %s::int4) as n", (500,))
    assert [n for (n,) in cur] == list(range(1, 501))
    settled(session)

    # NULLs both ways, an empty string, non-ASCII text.
    assert conn.execute("select %s::text, %s::text, %s", (None, "", "zażółć ✓")).fetchone() == (
        None,
        "",
        "zażółć ✓",
    )
    settled(session)

    # Large values: a 2 MB parameter and a 2 MB result, split across many
    # reads (40 kB when the relay reads 3 bytes at a time).
    big = "ab" * (1_000_000 if relay.chunk_size > 1000 else 20_000)
    assert conn.execute("select length(%s::text), %s::text", (big, big)).fetchone() == (
        len(big),
        big,
    )
    settled(session)

    with pytest.raises(pg_errors.UndefinedTable):
        conn.execute("select %s::int4 from no_such_table", (1,))
    settled(session)
    with pytest.raises(pg_errors.InvalidTextRepresentation):
        conn.execute("select %s::text::int4", ("nope",))
    settled(session)
    close_and_check(conn, session)


def test_prepared_statement_reuse(relay: Relay, connect: Callable[..., Conn]) -> None:
    conn = connect(prepare_threshold=0)
    session = session_of(relay, conn)
    for i in range(4):
        assert conn.execute("select %s::int4 * 2", (i,)).fetchone() == (i * 2,)
        settled(session)
    named = [m for m in received(session.from_client, Parse) if isinstance(m, Parse)]
    assert len(named) == 1
    assert named[0].statement
    binds = [m for m in received(session.from_client, Bind) if isinstance(m, Bind)]
    assert [b.statement for b in binds] == [named[0].statement] * 4

    # Close the statement with the protocol's Close message.
    conn.pgconn.send_close_prepared(named[0].statement.encode())
    (closed,) = nonblocking(conn, generators.execute(conn.pgconn))
    assert closed.status == pq.ExecStatus.COMMAND_OK
    assert received(session.from_client, Close)[-1] == Close(kind="S", name=named[0].statement)
    assert isinstance(received(session.from_server, CloseComplete)[-1], CloseComplete)
    settled(session)
    close_and_check(conn, session)


def after_pipeline(conn: Conn, session: RelaySession) -> None:
    """The model is READY after a psycopg pipeline, and after one more query.

    When results are still to be fetched at the end of the block, psycopg
    sends a Flush after the pipeline's last Sync, which may reach the relay
    on either side of the ReadyForQuery: a Flush produces nothing either way.
    """
    settled(session)
    assert conn.execute("select %s::int4", (0,)).fetchone() == (0,)
    settled(session)


def test_pipeline(relay: Relay, connect: Callable[..., Conn]) -> None:
    conn = connect()
    session = session_of(relay, conn)
    with conn.pipeline():
        cursors = [conn.execute("select %s::int4 + 1", (i,)) for i in range(5)]
    assert [c.fetchone() for c in cursors] == [(i + 1,) for i in range(5)]
    after_pipeline(conn, session)

    first = conn.cursor()
    last = conn.cursor()

    def failing_pipeline() -> None:
        with conn.pipeline() as pipeline:
            first.execute("select %s::int4", (1,))
            pipeline.sync()
            conn.execute("select %s::int4 from no_such_table", (2,))
            conn.execute("select %s::int4", (3,))
            last.execute("select %s::int4", (4,))

    mark = len(session.from_server)
    with pytest.raises(pg_errors.UndefinedTable):
        failing_pipeline()
    assert first.fetchone() == (1,)
    # After the error the server skipped everything up to the next Sync:
    # ReadyForQuery follows the ErrorResponse, although two more statements
    # were sent behind the failing one.
    replies = kinds(session.from_server[mark:])
    error_at = replies.index(ErrorResponse)
    assert replies[error_at + 1] is ReadyForQuery
    assert replies.count(ReadyForQuery) == 2
    after_pipeline(conn, session)
    close_and_check(conn, session)


# --------------------------------------------------------------------------
# libpq's traffic that the phase-table state machine of pygwire 0.3 refused


def _own_relay(pg18: PostgresServer) -> tuple[Relay, str]:
    relay = Relay(pg18.host, pg18.port).start()
    info = relay.conninfo(pg18.conninfo("trust_user"), sslmode="disable", gssencmode="disable")
    return relay, make_conninfo("", **info)


def test_flush_while_idle(pg18: PostgresServer) -> None:
    """PostgreSQL answers nothing to a Flush while idle and stays ready."""
    relay, dsn = _own_relay(pg18)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            session = relay.sessions[-1]
            conn.pgconn.send_flush_request()
            nonblocking(conn, generators.send(conn.pgconn))
            with contextlib.suppress(psycopg.OperationalError):
                conn.execute("select 1")
        session.wait_closed(TIMEOUT)
        assert session.errors == []
    finally:
        relay.stop()


def test_pipelined_messages_after_sync(pg18: PostgresServer) -> None:
    """libpq pipeline: a query, a Sync, another query and a Flush.

    The first query sleeps, so the relay sees everything the client sent
    before the first reply.
    """
    relay, dsn = _own_relay(pg18)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            session = relay.sessions[-1]
            pgconn = conn.pgconn
            pgconn.enter_pipeline_mode()
            pgconn.send_query_params(b"select pg_sleep(0.5)", None)
            pgconn.pipeline_sync()
            pgconn.send_query_params(b"select 2", None)
            pgconn.send_flush_request()
            with contextlib.suppress(psycopg.OperationalError):
                nonblocking(conn, generators.send(pgconn))
                statuses = [
                    r.status
                    for _ in range(3)
                    for r in nonblocking(conn, generators.fetch_many(pgconn))
                ]
                assert statuses == [
                    pq.ExecStatus.TUPLES_OK,
                    pq.ExecStatus.PIPELINE_SYNC,
                    pq.ExecStatus.TUPLES_OK,
                ]
                pgconn.pipeline_sync()
                nonblocking(conn, generators.fetch_many(pgconn))
                pgconn.exit_pipeline_mode()
        session.wait_closed(TIMEOUT)
        assert session.errors == []
    finally:
        relay.stop()


# --------------------------------------------------------------------------
# COPY


def test_copy(relay: Relay, connect: Callable[..., Conn]) -> None:
    conn = connect()
    session = session_of(relay, conn)
    conn.execute("create temp table copy_t (a int4, b text)")
    cur = conn.cursor()

    with cur.copy("COPY copy_t (a, b) FROM STDIN") as copy:
        for i in range(100):
            copy.write_row((i, f"text {i}"))
    assert cur.rowcount == 100
    assert isinstance(received(session.from_server, CopyInResponse)[-1], CopyInResponse)
    assert isinstance(received(session.from_client, CopyDone)[-1], CopyDone)
    settled(session)

    with cur.copy("COPY copy_t (a, b) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text"])
        for i in range(100, 150):
            copy.write_row((i, None if i % 10 == 0 else f"binary {i}"))
    settled(session)

    with cur.copy("COPY (select a, b from copy_t order by a) TO STDOUT") as copy:
        text_rows = list(copy.rows())
    assert len(text_rows) == 150
    assert text_rows[0] == ("0", "text 0")
    assert isinstance(received(session.from_server, CopyOutResponse)[-1], CopyOutResponse)
    settled(session)

    with cur.copy("COPY (select a, b from copy_t order by a) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text"])
        binary_rows = list(copy.rows())
    assert binary_rows[0] == (0, "text 0")
    assert binary_rows[110] == (110, None)
    assert binary_rows[149] == (149, "binary 149")
    settled(session)

    # An exception in the block makes psycopg send CopyFail.
    def failing_copy() -> None:
        with cur.copy("COPY copy_t (a, b) FROM STDIN") as copy:
            copy.write_row((1000, "never"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_copy()
    assert isinstance(received(session.from_client, CopyFail)[-1], CopyFail)
    settled(session)

    # COPY started by the extended protocol (libpq then ends it with CopyDone + Sync).
    pgconn = conn.pgconn
    pgconn.send_query_params(b"COPY copy_t (a, b) FROM STDIN", None)
    (started,) = nonblocking(conn, generators.execute(pgconn))
    assert started.status == pq.ExecStatus.COPY_IN
    nonblocking(conn, generators.copy_to(pgconn, b"2000\textended\n"))
    end = nonblocking(conn, generators.copy_end(pgconn, None))
    assert end.status == pq.ExecStatus.COMMAND_OK
    # The Sync behind Execute is swallowed by COPY mode; the one after CopyDone counts.
    assert kinds(received(session.from_client, Parse, Execute, CopyDone, Sync)[-5:]) == [
        Parse,
        Execute,
        Sync,
        CopyDone,
        Sync,
    ]
    settled(session)

    # COPY TO STDOUT started by the extended protocol.
    pgconn.send_query_params(b"COPY (select a from copy_t where a < 3 order by a) TO STDOUT", None)
    (started,) = nonblocking(conn, generators.execute(pgconn))
    assert started.status == pq.ExecStatus.COPY_OUT
    chunks: list[bytes] = []
    while isinstance(data := nonblocking(conn, generators.copy_from(pgconn)), memoryview):
        chunks.append(bytes(data))
    assert chunks == [b"0\n", b"1\n", b"2\n"]
    assert data.status == pq.ExecStatus.COMMAND_OK
    settled(session)

    # An error in the middle of COPY TO STDOUT ends the copy.
    def failing_copy_out() -> list[tuple[Any, ...]]:
        with cur.copy("COPY (select 1 / (5 - n) from generate_series(1, 10) n) TO STDOUT") as c:
            return list(c.rows())

    with pytest.raises(pg_errors.DivisionByZero):
        failing_copy_out()
    assert kinds(session.from_server[-2:]) == [ErrorResponse, ReadyForQuery]
    settled(session)

    assert conn.execute("select count(*) from copy_t").fetchone() == (151,)
    assert len(received(session.from_client, CopyData)) >= 3
    assert len(received(session.from_server, CopyData)) > 300
    close_and_check(conn, session)


def test_fatal_error_mid_session(relay: Relay, connect: Callable[..., Conn]) -> None:
    """A backend terminated by an administrator: FATAL, then the server hangs up."""
    conn = connect()
    session = session_of(relay, conn)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("select pg_terminate_backend(pg_backend_pid())")
    session.wait_closed(TIMEOUT)
    session.check()
    assert session.phase == ConnectionPhase.FAILED
    fatal = received(session.from_server, ErrorResponse)[-1]
    assert isinstance(fatal, ErrorResponse)
    assert (fatal.severity, fatal.code) == ("FATAL", "57P01")
    conn.close()


# --------------------------------------------------------------------------
# LISTEN / NOTIFY


def test_listen_notify(relay: Relay, connect: Callable[..., Conn]) -> None:
    listener = connect()
    notifier = connect("md5_user")
    listen_session = session_of(relay, listener)
    notify_session = session_of(relay, notifier)
    seen: list[psycopg.Notify] = []
    listener.add_notify_handler(seen.append)

    listener.execute("LISTEN relay_channel")
    # Delivered with the NOTIFY's own reply when the listener notifies itself...
    listener.execute("NOTIFY relay_channel, 'to myself'")
    assert [n.payload for n in seen] == ["to myself"]
    settled(listen_session)

    # ... and unprompted, while the listener is idle, from another session.
    listener.remove_notify_handler(seen.append)
    notifier.execute("select pg_notify('relay_channel', 'from another')")
    settled(notify_session)
    got = list(listener.notifies(timeout=TIMEOUT, stop_after=1))
    assert [n.payload for n in got] == ["from another"]
    notes = received(listen_session.from_server, NotificationResponse)
    assert [n.payload for n in notes if isinstance(n, NotificationResponse)] == [
        "to myself",
        "from another",
    ]
    settled(listen_session)
    close_and_check(notifier, notify_session)
    close_and_check(listener, listen_session)


# --------------------------------------------------------------------------
# Cursors


def test_server_side_cursor(relay: Relay, connect: Callable[..., Conn]) -> None:
    """psycopg's named cursors: DECLARE, then FETCH FORWARD itersize rows at a time."""
    conn = connect(autocommit=False)
    session = session_of(relay, conn)
    with conn.cursor("relay_cursor") as cur:
        cur.itersize = 3
        cur.execute("select n, n::text from generate_series(1, 10) as n")
        assert cur.fetchmany(4) == [(n, str(n)) for n in range(1, 5)]
        assert [n for n, _ in cur] == list(range(5, 11))
    conn.commit()
    settled(session)
    assert session.proxy.state.transaction_status == "I"
    fetches = [
        m
        for m in received(session.from_client, Query, Parse)
        if "FETCH FORWARD" in (m.query_string if isinstance(m, Query) else getattr(m, "query", ""))
    ]
    assert len(fetches) >= 3
    close_and_check(conn, session)


def test_portal_suspension_with_asyncpg(relay: Relay, pg18: PostgresServer) -> None:
    """libpq always executes portals to completion; asyncpg's cursors use
    Execute with a row limit, so the server answers PortalSuspended."""

    async def flow() -> int:
        conn = await asyncpg.connect(
            host=relay.host,
            port=relay.port,
            user="scram_user",
            password="scram_pw",
            database="postgres",
            ssl=False,
            timeout=TIMEOUT,
        )
        try:
            async with conn.transaction():
                cursor = await conn.cursor("select n from generate_series(1, 10) as n")
                assert [r["n"] for r in await cursor.fetch(4)] == [1, 2, 3, 4]
                assert [r["n"] for r in await cursor.fetch(4)] == [5, 6, 7, 8]
                assert [r["n"] for r in await cursor.fetch(4)] == [9, 10]
                values = [r["n"] async for r in conn.cursor("select generate_series(1, 7) n")]
                assert values == list(range(1, 8))
            assert await conn.fetchval("select $1::int4 + 1", 41) == 42
            pid: int = conn.get_server_pid()
        finally:
            await conn.close(timeout=TIMEOUT)
        return pid

    pid = asyncio.run(flow())
    session = next(
        s
        for s in relay.sessions
        if any(isinstance(m, BackendKeyData) and m.process_id == pid for m in s.from_server)
    )
    session.wait_closed(TIMEOUT)
    session.check()
    assert session.phase == TERMINATED
    limited = [
        m for m in received(session.from_client, Execute) if isinstance(m, Execute) and m.max_rows
    ]
    assert limited
    assert len(received(session.from_server, PortalSuspended)) >= 3
    assert len(received(session.from_server, DataRow)) >= 17


def test_pg8000_through_relay(relay: Relay, pg18: PostgresServer) -> None:
    """pg8000 (pure Python): cleartext password, Flush-driven extended queries."""
    conn = pg8000.native.Connection(
        "password_user",
        password="password_pw",
        host=relay.host,
        port=relay.port,
        database="postgres",
        timeout=TIMEOUT,
    )
    try:
        session = relay.sessions[-1]
        assert conn.run("select 1") == [[1]]
        assert conn.run("select :a::int4 + 1, :b::text", a=41, b="b") == [[42, "b"]]
        with pytest.raises(pg8000.native.DatabaseError) as undefined:
            conn.run("select * from no_such_table")
        assert undefined.value.args[0]["C"] == "42P01"
        settled(session)
    finally:
        conn.close()
    session.wait_closed(TIMEOUT)
    session.check()
    assert session.phase == TERMINATED
    assert PasswordMessage in kinds(session.from_client)
