"""pygwire's client role against real PostgreSQL servers.

A FrontendConnection on a plain socket (pygwire.client) drives
each flow; the server, not pygwire, decides what comes back.  Assertions
check values the server computed (row contents, SQLSTATEs, tags) and that
the state machine followed every step in strict mode.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from harness.postgres import USERS as PASSWORDS
from harness.postgres import PostgresServer

from pygwire import BackendMessageDecoder, ConnectionPhase, StartupRequestCode
from pygwire.client import ServerError, SocketClient
from pygwire.constants import PROTOCOL_V3_GREASE
from pygwire.messages import (
    Bind,
    BindComplete,
    CancelRequest,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    NegotiateProtocolVersion,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    Parse,
    ParseComplete,
    PGMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SSLRequest,
    SSLResponse,
    Sync,
)

P = ConnectionPhase
USERS = [("trust_user", None), ("password_user", "password_pw"), ("md5_user", "md5_pw")]


def _of(msgs: list[PGMessage], kind: type[PGMessage]) -> list[PGMessage]:
    return [m for m in msgs if isinstance(m, kind)]


def _rows(msgs: list[PGMessage]) -> list[list[bytes | None]]:
    return [m.columns for m in msgs if isinstance(m, DataRow)]


def _connect(
    server: PostgresServer,
    user: str = "trust_user",
    protocol_version: int = StartupRequestCode.V3_0,
    params: dict[str, str] | None = None,
) -> SocketClient:
    return SocketClient.connect(
        server.host,
        server.port,
        user,
        password=PASSWORDS[user],
        protocol_version=protocol_version,
        params=params,
    )


@pytest.mark.parametrize(("user", "password"), USERS, ids=[u for u, _ in USERS])
def test_authentication_methods(pg18: PostgresServer, user: str, password: str | None) -> None:
    client = SocketClient.connect(pg18.host, pg18.port, user, password=password)
    msgs = client.query("select current_user")
    assert _rows(msgs) == [[user.encode()]]
    client.close()


def test_wrong_password_is_a_fatal_28p01(pg18: PostgresServer) -> None:
    with pytest.raises(ServerError) as info:
        SocketClient.connect(pg18.host, pg18.port, "md5_user", password="wrong")
    assert info.value.error.code == "28P01"
    assert info.value.error.severity == "FATAL"


def test_simple_query_multi_statement(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    msgs = client.query("select 1 as a, 'x' as b; select generate_series(1, 3)")
    assert len(_of(msgs, RowDescription)) == 2
    assert _rows(msgs) == [[b"1", b"x"], [b"1"], [b"2"], [b"3"]]
    assert [m.tag for m in _of(msgs, CommandComplete)] == ["SELECT 1", "SELECT 3"]  # type: ignore[attr-defined]
    assert client.phase is P.READY
    client.close()


def test_simple_query_error_notice_empty(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    msgs = client.query("select * from no_such_table")
    (err,) = _of(msgs, ErrorResponse)
    assert err.code == "42P01"  # type: ignore[attr-defined]
    assert err.position == "15"  # type: ignore[attr-defined]
    assert client.is_ready

    msgs = client.query("do $$ begin raise notice 'hello %', 42; end $$")
    (notice,) = _of(msgs, NoticeResponse)
    assert notice.message == "hello 42"  # type: ignore[attr-defined]
    assert notice.severity_nonlocalized == "NOTICE"  # type: ignore[attr-defined]

    msgs = client.query("")
    assert [type(m) for m in msgs] == [EmptyQueryResponse, ReadyForQuery]
    client.close()


def test_extended_query_text_and_binary(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    client.send_all(
        [
            Parse(query="select $1::int4 + 1, $2::text || '!'", param_types=[23, 25]),
            Describe(kind="S"),
            Bind(
                param_formats=[1, 0],
                param_values=[struct.pack("!i", 41), b"hi"],
                result_formats=[1, 0],
            ),
            Execute(),
            Sync(),
        ]
    )
    msgs = client.messages_until(ReadyForQuery)
    assert _of(msgs, ParameterDescription) == [ParameterDescription(type_oids=[23, 25])]
    (desc,) = _of(msgs, RowDescription)
    assert [f.type_oid for f in desc.fields] == [23, 25]  # type: ignore[attr-defined]
    assert _rows(msgs) == [[struct.pack("!i", 42), b"hi!"]]
    assert client.is_ready
    client.close()


def test_pipeline_with_error_in_the_middle(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    groups = ["select 1", "select 1/0", "select 3"]
    for sql in groups:
        client.send_all([Parse(query=sql), Bind(), Execute(), Sync()])
    assert client.pending_syncs == 3
    msgs = client.messages_until(ReadyForQuery, count=3)
    assert client.pending_syncs == 0
    assert client.is_ready
    assert _rows(msgs) == [[b"1"], [b"3"]]
    (err,) = _of(msgs, ErrorResponse)
    assert err.code == "22012"  # type: ignore[attr-defined]
    # The failing group's Bind/Execute replies were skipped up to its Sync.
    kinds = [type(m).__name__ for m in msgs]
    assert kinds[kinds.index("ErrorResponse") + 1] == "ReadyForQuery"
    client.close()


def test_portal_suspension(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    client.query("begin")
    client.send_all(
        [
            Parse(query="select generate_series(1, 5)"),
            Bind(portal="p"),
            Execute(portal="p", max_rows=2),
            Execute(portal="p", max_rows=0),
            Sync(),
        ]
    )
    msgs = client.messages_until(ReadyForQuery)
    kinds = " ".join(type(m).__name__ for m in msgs)
    assert kinds == (
        "ParseComplete BindComplete DataRow DataRow PortalSuspended "
        "DataRow DataRow DataRow CommandComplete ReadyForQuery"
    )
    client.query("commit")
    client.close()


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_copy_in_and_out(pg18: PostgresServer, binary: bool) -> None:
    client = _connect(pg18)
    client.query("create temp table t (i int, s text)")
    fmt = " (format binary)" if binary else ""
    client.send(Query(query_string=f"copy t from stdin{fmt}"))
    (resp,) = client.messages_until(CopyInResponse)
    assert resp.overall_format == int(binary)  # type: ignore[attr-defined]
    assert client.phase is P.COPY_IN
    if binary:
        # Binary COPY file format: signature, flags, header extension, then
        # tuples of (Int16 count, (Int32 length, bytes)*), then -1 trailer.
        head = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
        rows = b"".join(
            struct.pack("!hii", 2, 4, i) + struct.pack("!i", len(s)) + s
            for i, s in [(1, b"one"), (2, b"two")]
        )
        chunks = [head + rows + struct.pack("!h", -1)]
    else:
        chunks = [b"1\tone\n", b"2\ttwo\n"]
    client.send_all([CopyData(data=c) for c in chunks])
    client.send(CopyDone())
    msgs = client.messages_until(ReadyForQuery)
    assert _of(msgs, CommandComplete) == [CommandComplete(tag="COPY 2")]

    client.send(Query(query_string=f"copy (select * from t order by i) to stdout{fmt}"))
    msgs = client.messages_until(ReadyForQuery)
    assert _of(msgs, CopyOutResponse)
    data = b"".join(m.data for m in msgs if isinstance(m, CopyData))
    if binary:
        assert data.startswith(b"PGCOPY\n\xff\r\n\x00")
        assert b"one" in data
        assert b"two" in data
    else:
        assert data == b"1\tone\n2\ttwo\n"
    assert _of(msgs, CommandComplete) == [CommandComplete(tag="COPY 2")]
    client.close()


def test_copy_fail(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    client.query("create temp table t (i int)")
    client.send(Query(query_string="copy t from stdin"))
    client.messages_until(CopyInResponse)
    client.send(CopyData(data=b"1\n"))
    client.send(CopyFail(error_message="client gave up"))
    msgs = client.messages_until(ReadyForQuery)
    (err,) = _of(msgs, ErrorResponse)
    assert err.code == "57014"  # type: ignore[attr-defined]
    assert "client gave up" in err.message  # type: ignore[attr-defined]
    assert _rows(client.query("select count(*) from t")) == [[b"0"]]
    client.close()


def test_copy_in_from_extended_query(pg18: PostgresServer) -> None:
    """libpq's order: Sync right behind Execute, another after CopyDone."""
    client = _connect(pg18)
    client.query("create temp table t (i int)")
    client.send_all([Parse(query="copy t from stdin"), Bind(), Execute(), Sync()])
    client.messages_until(CopyInResponse)
    client.send_all([CopyData(data=b"7\n"), CopyDone(), Sync()])
    msgs = client.messages_until(ReadyForQuery)
    assert _of(msgs, CommandComplete) == [CommandComplete(tag="COPY 1")]
    assert client.is_ready
    assert client.pending_syncs == 0
    client.close()


def test_listen_notify(pg18: PostgresServer) -> None:
    listener = _connect(pg18)
    listener.query("listen chan")
    notifier = _connect(pg18)
    notifier.query("notify chan, 'payload ü'")
    pid = _rows(notifier.query("select pg_backend_pid()"))[0][0]
    msgs = listener.query("select 1")
    (note,) = _of(msgs, NotificationResponse)
    assert note == NotificationResponse(
        process_id=int(pid or b"0"), channel="chan", payload="payload ü"
    )
    listener.close()
    notifier.close()


def test_large_value_over_8mb(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    size = 9 * 1024 * 1024
    msgs = client.query(f"select repeat('ab', {size // 2})")
    (row,) = _rows(msgs)
    assert row[0] is not None
    assert len(row[0]) == size
    assert row[0][:4] == b"abab"
    client.send_all(
        [Parse(query="select length($1)"), Bind(param_values=[b"z" * size]), Execute(), Sync()]
    )
    assert _rows(client.messages_until(ReadyForQuery)) == [[str(size).encode()]]
    client.close()


def test_protocol_3_2_cancel_key_and_cancel(pg18: PostgresServer) -> None:
    client = _connect(pg18, protocol_version=StartupRequestCode.V3_2)
    key = client.backend_key
    assert key is not None
    assert len(key.secret_key) == 32  # PostgreSQL 18 sends 32 bytes in 3.2
    assert client.state_machine.protocol_version == StartupRequestCode.V3_2

    client.send(Query(query_string="select pg_sleep(30)"))
    time.sleep(0.3)
    with socket.create_connection((pg18.host, pg18.port)) as s:
        s.sendall(CancelRequest(process_id=key.process_id, secret_key=key.secret_key).to_wire())
        assert s.recv(1) == b""  # the server closes the cancel connection
    started = time.monotonic()
    msgs = client.messages_until(ReadyForQuery)
    assert time.monotonic() - started < 10
    (err,) = _of(msgs, ErrorResponse)
    assert err.code == "57014"  # type: ignore[attr-defined]  # query_canceled
    client.close()


def test_grease_version_answered_by_negotiate(pg18: PostgresServer) -> None:
    client = _connect(
        pg18, protocol_version=PROTOCOL_V3_GREASE, params={"_pq_.pygwire_unknown": "1"}
    )
    (neg,) = _of(client.startup_messages, NegotiateProtocolVersion)
    assert neg == NegotiateProtocolVersion(newest_minor=2, unrecognized=["_pq_.pygwire_unknown"])
    assert client.state_machine.protocol_version == StartupRequestCode.V3_2
    assert _rows(client.query("select 1")) == [[b"1"]]
    client.close()


def test_ssl_request_refused_without_tls(pg18: PostgresServer) -> None:
    sock = socket.create_connection((pg18.host, pg18.port), timeout=10)
    client = SocketClient(sock)
    client.send(SSLRequest())
    assert client.phase is P.SSL_NEGOTIATION
    assert client.next_message() is SSLResponse.NOT_SUPPORTED
    assert client.phase is P.STARTUP  # type: ignore[comparison-overlap]
    client.authenticate("trust_user")
    assert _rows(client.query("select 1")) == [[b"1"]]
    client.close()


def test_pg15_negotiates_3_2_down_to_3_0(pg15: PostgresServer) -> None:
    client = _connect(pg15, protocol_version=StartupRequestCode.V3_2)
    (neg,) = _of(client.startup_messages, NegotiateProtocolVersion)
    assert neg == NegotiateProtocolVersion(newest_minor=0, unrecognized=[])
    assert client.state_machine.protocol_version == StartupRequestCode.V3_0
    key = client.backend_key
    assert key is not None
    assert len(key.secret_key) == 4
    assert _rows(client.query("show server_version_num"))[0][0].startswith(b"15")  # type: ignore[union-attr]
    client.close()


def test_passive_decoder_joins_late(pg18: PostgresServer) -> None:
    """A tracer that starts reading mid-session decodes by identifier alone."""
    client = _connect(pg18)
    seen: list[PGMessage] = []
    tracer = BackendMessageDecoder(P.READY)
    original = client.receive

    def tee(data: bytes | bytearray | memoryview) -> object:
        tracer.feed(data)
        seen.extend(tracer.read_all())
        return original(data)

    client.receive = tee  # type: ignore[method-assign,assignment]
    msgs = client.query("select 1; select 'two'")
    assert seen == msgs
    client.close()


def test_parse_complete_then_bind_complete_in_one_read(pg18: PostgresServer) -> None:
    client = _connect(pg18)
    client.send_all([Parse(query="select 1"), Bind(), Execute(), Sync()])
    msgs = client.messages_until(ReadyForQuery)
    assert [type(m) for m in msgs[:2]] == [ParseComplete, BindComplete]
    client.close()


def test_server_fatal_terminates_session(pg18: PostgresServer) -> None:
    victim = _connect(pg18)
    pid = _rows(victim.query("select pg_backend_pid()"))[0][0]
    admin = _connect(pg18)
    admin.query(f"select pg_terminate_backend({int(pid or b'0')})")
    with pytest.raises((ServerError, ConnectionError)) as info:
        victim.messages_until(ReadyForQuery)
    if isinstance(info.value, ServerError):
        assert info.value.error.code == "57P01"
    assert victim.phase is P.FAILED
    admin.close()
    victim.sock.close()
