"""Real drivers against a server built on pygwire alone.

libpq (through psycopg), asyncpg and pg8000 connect to
:class:`tests.fake_server.FakeServer`, whose every message in both
directions goes through a strict :class:`pygwire.BackendConnection`: each
driver's conversation (encryption negotiation, startup, simple and
extended queries, errors, the skip-until-Sync rule, COPY-free pipelines,
portal suspension, cancellation, Terminate) is validated by the state
machine and must leave the server without a single error.

Nothing here skips: a driver that cannot connect fails its test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any, Literal

import asyncpg
import pg8000.dbapi
import pg8000.native
import psycopg
import pytest
from psycopg import errors as pg_errors

from fake_server import PEOPLE, FakeServer, FakeSession, PygwireAuth, Role
from pygwire import ConnectionPhase, FrontendConnection, StartupRequestCode
from pygwire.messages import (
    BackendKeyData,
    Bind,
    CancelRequest,
    CommandComplete,
    DataRow,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    GSSEncRequest,
    GSSEncResponse,
    NegotiateProtocolVersion,
    ParameterStatus,
    Parse,
    PGMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
    Terminate,
)

TIMEOUT = 10.0
PEOPLE_ROWS = [row[:2] for row in PEOPLE]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv
    srv.check()
    assert not _server_threads()


def _server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("fake-server")]


def _received(session: FakeSession, *types: type[PGMessage]) -> list[PGMessage]:
    return [m for m in session.log.received if isinstance(m, types)]


def _assert_clean_close(server: FakeServer, session: FakeSession) -> None:
    server.wait_closed(session, TIMEOUT)
    assert session.saw_terminate
    assert session.conn.phase is ConnectionPhase.TERMINATED
    server.check()


def _assert_negotiation(session: FakeSession, ssl: bool, gss: bool) -> None:
    kinds = [type(m) for m in session.log.received[:3]]
    expected: list[type[PGMessage]] = []
    if gss:
        expected.append(GSSEncRequest)
    if ssl:
        expected.append(SSLRequest)
    expected.append(StartupMessage)
    assert kinds[: len(expected)] == expected


# --------------------------------------------------------------------------
# libpq through psycopg


@pytest.mark.parametrize("gssencmode", ["disable", "prefer"])
@pytest.mark.parametrize("sslmode", ["disable", "prefer"])
def test_psycopg(server: FakeServer, sslmode: str, gssencmode: str) -> None:
    dsn = server.dsn(sslmode=sslmode, gssencmode=gssencmode, application_name="pygwire-test")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        session = server.session(conn.info.backend_pid)
        assert conn.info.server_version == 180000
        assert conn.info.parameter_status("application_name") == "pygwire-test"
        assert conn.info.parameter_status("session_authorization") == "trust_user"
        assert conn.info.full_protocol_version == 30000
        assert len(session.secret_key) == 4

        # Simple query protocol (no parameters, text results).
        cur = conn.execute("select id, name from people order by id")
        assert cur.fetchall() == PEOPLE_ROWS
        assert cur.statusmessage == "SELECT 3"
        assert _received(session, Query)[-1] == Query(
            query_string="select id, name from people order by id"
        )

        # Extended query protocol, text and binary results.
        assert conn.execute("select %s::int4, %s::text", (42, "hi")).fetchone() == (42, "hi")
        row = conn.execute(
            "select %s::int4, %s::text, %s::bool, %s::int8", (7, "x", True, 2**40), binary=True
        ).fetchone()
        assert row == (7, "x", True, 2**40)
        bind = _received(session, Bind)[-1]
        assert isinstance(bind, Bind)
        assert bind.result_formats == [1]
        cur = conn.execute("select * from people", binary=True)
        assert cur.fetchall() == list(PEOPLE)

        # Errors, in both protocols; the session goes on.
        with pytest.raises(pg_errors.UndefinedTable) as undefined:
            conn.execute("select * from missing_table")
        assert undefined.value.sqlstate == "42P01"
        with pytest.raises(pg_errors.SyntaxError) as syntax:
            conn.execute("selec %s", (1,))
        assert syntax.value.sqlstate == "42601"
        assert conn.execute("select 1").fetchone() == (1,)
    _assert_negotiation(session, ssl=sslmode == "prefer", gss=False)
    _assert_clean_close(server, session)


def _tx_status(conn: psycopg.Connection[Any]) -> psycopg.pq.TransactionStatus:
    return conn.info.transaction_status


def test_psycopg_transactions(server: FakeServer) -> None:
    """Not in autocommit psycopg sends BEGIN, COMMIT and ROLLBACK itself."""
    with psycopg.connect(server.dsn(sslmode="disable")) as conn:
        session = server.session(conn.info.backend_pid)
        assert conn.execute("select 1").fetchone() == (1,)
        assert _tx_status(conn) is psycopg.pq.TransactionStatus.INTRANS
        conn.commit()
        with pytest.raises(pg_errors.UndefinedTable):
            conn.execute("select * from nowhere")
        assert _tx_status(conn) is psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(pg_errors.InFailedSqlTransaction) as aborted:
            conn.execute("select 1")
        assert aborted.value.sqlstate == "25P02"
        conn.rollback()
        assert conn.execute("show TimeZone").fetchone() == ("UTC",)
        conn.execute("set application_name = 'changed'")
        assert conn.info.parameter_status("application_name") == "changed"
        conn.commit()
    queries = [m.query_string for m in _received(session, Query) if isinstance(m, Query)]
    assert queries.count("BEGIN") == 3
    assert "COMMIT" in queries
    assert "ROLLBACK" in queries
    _assert_clean_close(server, session)


def test_psycopg_pipeline_and_prepared(server: FakeServer) -> None:
    """A pipeline with an error in the middle exercises skip-until-Sync."""
    with psycopg.connect(server.dsn(sslmode="disable"), autocommit=True) as conn:
        session = server.session(conn.info.backend_pid)
        first = conn.cursor()

        def failing_pipeline() -> None:
            with conn.pipeline():
                first.execute("select %s::int4, %s::text", (1, "a"))
                conn.execute("select * from missing_table")
                conn.execute("select %s::int4, %s::text", (3, "c"))

        with pytest.raises(pg_errors.UndefinedTable):
            failing_pipeline()
        assert first.fetchall() == [(1, "a")]
        with conn.pipeline():
            cursors = [conn.execute("select %s::int4, %s::text", (i, str(i))) for i in range(3)]
        assert [c.fetchone() for c in cursors] == [(i, str(i)) for i in range(3)]

        # Prepared statement reuse: one named Parse, several Binds.
        for ident in (1, 2, 3, 1):
            cur = conn.execute("select name from people where id = %s", (ident,), prepare=True)
            assert cur.fetchone() == (PEOPLE[ident - 1][1],)
        named = [m for m in _received(session, Parse) if isinstance(m, Parse) and m.statement]
        assert len(named) == 1
        binds = [m for m in _received(session, Bind) if isinstance(m, Bind)]
        assert sum(b.statement == named[0].statement for b in binds) == 4
        assert conn.execute("select 2").fetchone() == (2,)
    _assert_clean_close(server, session)


@pytest.mark.parametrize("sslmode", ["disable", "prefer"])
def test_psycopg_protocol_3_2_and_cancel(server: FakeServer, sslmode: str) -> None:
    dsn = server.dsn(sslmode=sslmode, gssencmode="prefer", max_protocol_version="3.2")
    with psycopg.connect(dsn, autocommit=True) as conn:
        session = server.session(conn.info.backend_pid)
        assert session.startup is not None
        assert session.startup.protocol_version == StartupRequestCode.V3_2
        assert conn.info.full_protocol_version == 30002
        assert len(session.secret_key) == 32
        assert conn.execute("select 1").fetchone() == (1,)
        # The 32-byte key the client got comes back in its CancelRequest.
        conn.cancel_safe(timeout=TIMEOUT)
        assert server.cancel_requests == [
            CancelRequest(process_id=session.process_id, secret_key=session.secret_key)
        ]
        assert conn.execute("select 2").fetchone() == (2,)
    _assert_clean_close(server, session)
    cancel_session = next(s for s in server.accepted if s.cancel_request is not None)
    server.wait_closed(cancel_session, TIMEOUT)
    assert cancel_session.conn.phase is ConnectionPhase.TERMINATED
    assert isinstance(cancel_session.log.received[-1], CancelRequest)


def test_psycopg_protocol_3_0_cancel(server: FakeServer) -> None:
    with psycopg.connect(server.dsn(sslmode="disable"), autocommit=True) as conn:
        session = server.session(conn.info.backend_pid)
        conn.cancel_safe(timeout=TIMEOUT)
    assert server.cancel_requests == [
        CancelRequest(process_id=session.process_id, secret_key=session.secret_key)
    ]
    assert len(session.secret_key) == 4
    _assert_clean_close(server, session)


@pytest.mark.parametrize("method", ["password", "md5"])
def test_psycopg_password_auth(method: Literal["password", "md5"]) -> None:
    """More methods and peers: test_server_auth.py."""
    with FakeServer(PygwireAuth({"alice": Role(method, "s3cret")})) as server:
        with psycopg.connect(server.dsn("alice", password="s3cret", sslmode="disable")) as conn:
            session = server.session(conn.info.backend_pid)
            assert conn.execute("select 1").fetchone() == (1,)
        _assert_clean_close(server, session)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.dsn("alice", password="wrong", sslmode="disable"))
        failed = server.accepted[-1]
        server.wait_closed(failed, TIMEOUT)
        assert failed.conn.phase is ConnectionPhase.FAILED
    server.check()


def test_server_stops_with_clients_connected() -> None:
    server = FakeServer().start()
    conn = psycopg.connect(server.dsn(sslmode="disable"), autocommit=True)
    try:
        assert conn.execute("select 1").fetchone() == (1,)
        server.stop()
        assert not _server_threads()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    finally:
        conn.close()
    server.check()


def _raw_exchange(sock: socket.socket, conn: FrontendConnection, msg: PGMessage) -> list[PGMessage]:
    """Send ``msg``; return the replies up to a one-byte answer or ReadyForQuery."""
    sock.sendall(conn.send(msg))
    replies: list[PGMessage] = []
    while True:
        data = sock.recv(65536)
        assert data, f"server closed the connection after {replies!r}"
        for reply in conn.receive(data):
            replies.append(reply)
            if isinstance(reply, SSLResponse | GSSEncResponse | ReadyForQuery):
                return replies


def test_negotiation_with_pygwire_client(server: FakeServer) -> None:
    """What libpq only does with Kerberos credentials (GSSENCRequest) or not at
    all (protocol 3.9999, unknown ``_pq_`` options), done by a pygwire client."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        conn = FrontendConnection()
        assert _raw_exchange(sock, conn, GSSEncRequest()) == [GSSEncResponse.NOT_SUPPORTED]
        assert _raw_exchange(sock, conn, SSLRequest()) == [SSLResponse.NOT_SUPPORTED]
        startup = StartupMessage(
            params={"user": "trust_user", "database": "postgres", "_pq_.nonsense": "1"},
            protocol_version=0x0003270F,
        )
        replies = _raw_exchange(sock, conn, startup)
        assert replies[0] == NegotiateProtocolVersion(
            newest_minor=2, unrecognized=["_pq_.nonsense"]
        )
        assert conn.state_machine.protocol_version == StartupRequestCode.V3_2
        keys = [m for m in replies if isinstance(m, BackendKeyData)]
        assert len(keys) == 1
        assert len(keys[0].secret_key) == 32
        statuses = {m.name: m.value for m in replies if isinstance(m, ParameterStatus)}
        assert statuses["server_version"] == "18.0"
        assert statuses["DateStyle"] == "ISO, MDY"
        assert conn.is_ready

        replies = _raw_exchange(sock, conn, Query(query_string=""))
        assert replies == [EmptyQueryResponse(), ReadyForQuery()]
        replies = _raw_exchange(sock, conn, Query(query_string="select 1; select x from y"))
        assert [type(m) for m in replies] == [
            RowDescription,
            DataRow,
            CommandComplete,
            ErrorResponse,
            ReadyForQuery,
        ]
        assert _raw_exchange(sock, conn, Sync()) == [ReadyForQuery()]
        sock.sendall(conn.send(Terminate()))
    session = server.session(keys[0].process_id)
    _assert_clean_close(server, session)


# --------------------------------------------------------------------------
# asyncpg


async def _asyncpg_flow(server: FakeServer, ssl: Any) -> FakeSession:
    conn = await asyncpg.connect(
        host=server.host,
        port=server.port,
        user="trust_user",
        database="postgres",
        ssl=ssl,
        timeout=TIMEOUT,
    )
    try:
        session = server.session(conn.get_server_pid())
        assert conn.get_server_version().major == 18
        assert await conn.fetchval("select 1") == 1
        rows = await conn.fetch("select * from people")
        assert [tuple(r) for r in rows] == list(PEOPLE)
        assert tuple(await conn.fetchrow("select $1::int4, $2::text", 42, "hi")) == (42, "hi")
        assert tuple(
            await conn.fetchrow("select $1::bool, $2::int8, $3::int2", False, -(2**40), 7)
        ) == (False, -(2**40), 7)
        # asyncpg sends binary parameters and asks for binary results.
        bind = _received(session, Bind)[-1]
        assert isinstance(bind, Bind)
        assert bind.param_formats == [1, 1, 1]
        assert bind.result_formats == [1]

        with pytest.raises(asyncpg.PostgresError) as undefined:
            await conn.fetch("select * from missing_table")
        assert undefined.value.sqlstate == "42P01"
        with pytest.raises(asyncpg.PostgresSyntaxError) as syntax:
            await conn.execute("selec 1")
        assert syntax.value.sqlstate == "42601"

        # A transaction and a cursor that fetches two rows at a time:
        # Execute with a row limit, PortalSuspended, Execute again.
        async with conn.transaction():
            names = [r["name"] async for r in conn.cursor("select * from people", prefetch=2)]
        assert names == [row[1] for row in PEOPLE]
        assert _received(session, Execute)[-2] == Execute(portal=_last_portal(session), max_rows=2)
        assert any(isinstance(m, PortalSuspended) for m in session.log.sent)
        assert await conn.fetchval("select 3") == 3
    finally:
        await conn.close(timeout=TIMEOUT)
    return session


def _last_portal(session: FakeSession) -> str:
    bind = [m for m in session.log.received if isinstance(m, Bind) and m.portal][-1]
    assert isinstance(bind, Bind)
    return bind.portal


@pytest.mark.parametrize("ssl", [False, "prefer"])
def test_asyncpg(server: FakeServer, ssl: Any) -> None:
    session = asyncio.run(_asyncpg_flow(server, ssl))
    _assert_negotiation(session, ssl=ssl == "prefer", gss=False)
    _assert_clean_close(server, session)


def test_asyncpg_pool_reset(server: FakeServer) -> None:
    """Releasing a pooled connection sends asyncpg's multi-statement reset query."""

    async def flow() -> int:
        async with asyncpg.create_pool(
            host=server.host,
            port=server.port,
            user="trust_user",
            database="postgres",
            ssl=False,
            min_size=1,
            max_size=1,
        ) as pool:
            async with pool.acquire() as conn:
                pid: int = conn.get_server_pid()
                assert await conn.fetchval("select $1::int4", 5) == 5
            async with pool.acquire() as conn:
                assert await conn.fetchval("select 1") == 1
        return pid

    session = server.session(asyncio.run(flow()))
    queries = [m.query_string for m in _received(session, Query) if isinstance(m, Query)]
    assert any("RESET ALL" in q for q in queries)
    _assert_clean_close(server, session)


# --------------------------------------------------------------------------
# pg8000


def test_pg8000_native(server: FakeServer) -> None:
    conn = pg8000.native.Connection(
        "trust_user", host=server.host, port=server.port, database="postgres", timeout=TIMEOUT
    )
    try:
        session = server.accepted[-1]
        assert conn.run("select 1") == [[1]]
        assert conn.run("select id, name from people order by id") == [list(r) for r in PEOPLE_ROWS]
        assert conn.run("select :a::int4, :b::text", a=42, b="hi") == [[42, "hi"]]
        assert conn.run("select name from people where id = :i", i=2) == [["bob"]]
        with pytest.raises(pg8000.native.DatabaseError) as undefined:
            conn.run("select * from missing_table")
        assert undefined.value.args[0]["C"] == "42P01"
        with pytest.raises(pg8000.native.DatabaseError) as syntax:
            conn.run("selec :a", a=1)
        assert syntax.value.args[0]["C"] == "42601"
        assert conn.run("select 2") == [[2]]
        assert any(isinstance(m, Parse) for m in session.log.received)
        assert any(isinstance(m, Sync) for m in session.log.received)
    finally:
        conn.close()
    _assert_clean_close(server, session)


def test_pg8000_dbapi(server: FakeServer) -> None:
    """The DB-API layer wraps statements in transactions of its own."""
    conn = pg8000.dbapi.connect(
        "trust_user", host=server.host, port=server.port, database="postgres", timeout=TIMEOUT
    )
    try:
        session = server.accepted[-1]
        cur = conn.cursor()
        cur.execute("select id, name from people order by id")
        assert [tuple(r) for r in cur.fetchall()] == PEOPLE_ROWS
        cur.execute("select %s::int4, %s::text", (5, "five"))
        assert tuple(cur.fetchone()) == (5, "five")
        conn.commit()
        with pytest.raises(pg8000.dbapi.DatabaseError) as undefined:
            cur.execute("select * from missing_table")
        assert undefined.value.args[0]["C"] == "42P01"
        conn.rollback()
    finally:
        conn.close()
    sql = [
        (m.query_string if isinstance(m, Query) else m.query).lower()
        for m in _received(session, Query, Parse)
        if isinstance(m, Query | Parse)
    ]
    assert any(s.startswith("begin") for s in sql)
    assert "commit" in sql
    assert "rollback" in sql
    _assert_clean_close(server, session)
