"""Flows of the protocol chapter ("Message Flow") as tables.

Each flow lists (sender, message, phase after it).  Every flow drives a
FrontendStateMachine (which sends "F" rows and receives "B" rows) and a
BackendStateMachine (the reverse) side by side: both must agree with the
table after every message.  Phases are those the documentation implies:
e.g. after a Sync the client waits for ReadyForQuery, after an
ErrorResponse in extended query the server skips to the next Sync.
"""

from __future__ import annotations

import logging

import pytest

from pygwire import (
    BackendConnection,
    BackendStateMachine,
    ConnectionPhase,
    FramingError,
    FrontendConnection,
    FrontendStateMachine,
    StateMachineError,
    TransactionStatus,
)
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationGSSContinue,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    AuthenticationSSPI,
    BackendKeyData,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    DirectSSLHandshake,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    Flush,
    FunctionCall,
    FunctionCallResponse,
    GSSEncRequest,
    GSSEncResponse,
    GSSResponse,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    PGMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
    Terminate,
)

P = ConnectionPhase
Row = tuple[str, PGMessage, ConnectionPhase]

IDLE = ReadyForQuery(status=TransactionStatus.IDLE)
ERROR = ErrorResponse(fields={"S": "ERROR", "V": "ERROR", "C": "42601", "M": "syntax error"})
FATAL = ErrorResponse(fields={"S": "FATAL", "V": "FATAL", "C": "28P01", "M": "auth failed"})
STARTUP = StartupMessage(params={"user": "u"})

# Startup up to READY with trust authentication.
CONNECT: list[Row] = [
    ("F", STARTUP, P.AUTHENTICATING),
    ("B", AuthenticationOk(), P.INITIALIZATION),
    ("B", ParameterStatus(name="server_version", value="18.0"), P.INITIALIZATION),
    ("B", BackendKeyData(process_id=7, secret_key=bytes(4)), P.INITIALIZATION),
    ("B", IDLE, P.READY),
]

FLOWS: dict[str, list[Row]] = {
    "trust": CONNECT,
    "ssl refused then startup": [
        ("F", SSLRequest(), P.SSL_NEGOTIATION),
        ("B", SSLResponse.NOT_SUPPORTED, P.STARTUP),
        *CONNECT,
    ],
    "ssl accepted then startup": [
        ("F", SSLRequest(), P.SSL_NEGOTIATION),
        ("B", SSLResponse.SUPPORTED, P.STARTUP),
        *CONNECT,
    ],
    "gssenc refused, ssl refused": [
        ("F", GSSEncRequest(), P.GSS_NEGOTIATION),
        ("B", GSSEncResponse.NOT_SUPPORTED, P.STARTUP),
        ("F", SSLRequest(), P.SSL_NEGOTIATION),
        ("B", SSLResponse.NOT_SUPPORTED, P.STARTUP),
        *CONNECT,
    ],
    "direct ssl": [("F", DirectSSLHandshake(data=b"\x16\x03\x01"), P.STARTUP), *CONNECT],
    "ssl request answered by an old server's error": [
        ("F", SSLRequest(), P.SSL_NEGOTIATION),
        ("B", FATAL, P.FAILED),
    ],
    "negotiate protocol version": [
        (
            "F",
            StartupMessage(params={"user": "u", "_pq_.x": "1"}, protocol_version=0x3270F),
            P.AUTHENTICATING,
        ),
        ("B", NegotiateProtocolVersion(newest_minor=2, unrecognized=["_pq_.x"]), P.AUTHENTICATING),
        *CONNECT[1:],
    ],
    "cleartext": [
        ("F", STARTUP, P.AUTHENTICATING),
        ("B", AuthenticationCleartextPassword(), P.AUTHENTICATING),
        ("F", PasswordMessage(password="pw"), P.AUTHENTICATING),
        *CONNECT[1:],
    ],
    "md5 wrong password": [
        ("F", STARTUP, P.AUTHENTICATING),
        ("B", AuthenticationMD5Password(salt=b"abcd"), P.AUTHENTICATING),
        ("F", PasswordMessage(password="md5" + "0" * 32), P.AUTHENTICATING),
        ("B", FATAL, P.FAILED),
    ],
    "sasl": [
        ("F", STARTUP, P.AUTHENTICATING),
        ("B", AuthenticationSASL(mechanisms=["SCRAM-SHA-256"]), P.AUTHENTICATING_SASL_INITIAL),
        (
            "F",
            SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=x"),
            P.AUTHENTICATING_SASL_CONTINUE,
        ),
        (
            "B",
            AuthenticationSASLContinue(data=b"r=xy,s=c2FsdA==,i=4096"),
            P.AUTHENTICATING_SASL_CONTINUE,
        ),
        ("F", SASLResponse(data=b"c=biws,r=xy,p=cHJvb2Y="), P.AUTHENTICATING_SASL_CONTINUE),
        ("B", AuthenticationSASLFinal(data=b"v=c2ln"), P.AUTHENTICATING),
        *CONNECT[1:],
    ],
    "gss": [
        ("F", STARTUP, P.AUTHENTICATING),
        ("B", AuthenticationGSS(), P.AUTHENTICATING_GSS),
        ("F", GSSResponse(data=b"token1"), P.AUTHENTICATING_GSS),
        ("B", AuthenticationGSSContinue(data=b"token2"), P.AUTHENTICATING_GSS),
        ("F", GSSResponse(data=b"token3"), P.AUTHENTICATING_GSS),
        *CONNECT[1:],
    ],
    "sspi": [
        ("F", STARTUP, P.AUTHENTICATING),
        ("B", AuthenticationSSPI(), P.AUTHENTICATING_GSS),
        ("F", GSSResponse(data=b"t"), P.AUTHENTICATING_GSS),
        *CONNECT[1:],
    ],
    "simple query, two statements, notice, notification": [
        *CONNECT,
        ("F", Query(query_string="select 1; select 2"), P.SIMPLE_QUERY),
        ("B", RowDescription(), P.SIMPLE_QUERY),
        ("B", DataRow(columns=[b"1"]), P.SIMPLE_QUERY),
        ("B", CommandComplete(tag="SELECT 1"), P.SIMPLE_QUERY),
        ("B", NoticeResponse(fields={"S": "NOTICE", "M": "n"}), P.SIMPLE_QUERY),
        ("B", NotificationResponse(process_id=1, channel="c", payload="p"), P.SIMPLE_QUERY),
        ("B", RowDescription(), P.SIMPLE_QUERY),
        ("B", DataRow(columns=[b"2"]), P.SIMPLE_QUERY),
        ("B", CommandComplete(tag="SELECT 1"), P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
        ("F", Terminate(), P.TERMINATED),
    ],
    "simple query, empty and error": [
        *CONNECT,
        ("F", Query(query_string=""), P.SIMPLE_QUERY),
        ("B", EmptyQueryResponse(), P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
        ("F", Query(query_string="bogus"), P.SIMPLE_QUERY),
        ("B", ERROR, P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
    ],
    "extended query pipeline with an error in the middle": [
        *CONNECT,
        ("F", Parse(query="select $1"), P.EXTENDED_QUERY),
        ("F", Bind(param_values=[b"1"]), P.EXTENDED_QUERY),
        ("F", Describe(kind="P"), P.EXTENDED_QUERY),
        ("F", Execute(), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("F", Parse(query="bogus"), P.EXTENDED_QUERY),
        ("F", Bind(), P.EXTENDED_QUERY),
        ("F", Execute(), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("F", Parse(statement="s", query="select 3"), P.EXTENDED_QUERY),
        ("F", Describe(kind="S", name="s"), P.EXTENDED_QUERY),
        ("F", Close(kind="S", name="s"), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", BindComplete(), P.EXTENDED_QUERY),
        ("B", RowDescription(), P.EXTENDED_QUERY),
        ("B", DataRow(columns=[b"1"]), P.EXTENDED_QUERY),
        ("B", CommandComplete(tag="SELECT 1"), P.EXTENDED_QUERY),
        ("B", IDLE, P.EXTENDED_QUERY),
        ("B", ERROR, P.EXTENDED_QUERY),
        ("B", IDLE, P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", ParameterDescription(type_oids=[]), P.EXTENDED_QUERY),
        ("B", NoData(), P.EXTENDED_QUERY),
        ("B", CloseComplete(), P.EXTENDED_QUERY),
        ("B", IDLE, P.READY),
    ],
    "portal suspension and flush": [
        *CONNECT,
        ("F", Parse(query="select 1"), P.EXTENDED_QUERY),
        ("F", Bind(portal="p"), P.EXTENDED_QUERY),
        ("F", Execute(portal="p", max_rows=1), P.EXTENDED_QUERY),
        ("F", Flush(), P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", BindComplete(), P.EXTENDED_QUERY),
        ("B", DataRow(columns=[b"1"]), P.EXTENDED_QUERY),
        ("B", PortalSuspended(), P.EXTENDED_QUERY),
        ("F", Execute(portal="p", max_rows=1), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("B", CommandComplete(tag="SELECT 0"), P.EXTENDED_QUERY),
        ("B", IDLE, P.READY),
    ],
    "flush while idle stays idle": [
        *CONNECT,
        ("F", Flush(), P.READY),
        ("F", Query(query_string="select 1"), P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
    ],
    # psycopg's pipeline mode: a second batch is sent before the first
    # batch's ReadyForQuery; its replies still belong to extended query.
    "messages pipelined behind the last sync": [
        *CONNECT,
        ("F", Parse(query="select 1"), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("F", Parse(query="select 2"), P.EXTENDED_QUERY),
        ("F", Flush(), P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", IDLE, P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("B", IDLE, P.READY),
    ],
    "copy in from simple query": [
        *CONNECT,
        ("F", Query(query_string="copy t from stdin"), P.SIMPLE_QUERY),
        ("B", CopyInResponse(col_formats=[0]), P.COPY_IN),
        ("F", CopyData(data=b"1\n"), P.COPY_IN),
        ("F", CopyDone(), P.SIMPLE_QUERY),
        ("B", CommandComplete(tag="COPY 1"), P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
    ],
    "copy fail": [
        *CONNECT,
        ("F", Query(query_string="copy t from stdin"), P.SIMPLE_QUERY),
        ("B", CopyInResponse(col_formats=[0]), P.COPY_IN),
        ("F", CopyFail(error_message="nope"), P.SIMPLE_QUERY),
        ("B", ERROR, P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
    ],
    # libpq sends Sync right behind Execute; the server swallows it in copy
    # mode, so libpq sends another after CopyDone.  One ReadyForQuery.
    "copy in from extended query": [
        *CONNECT,
        ("F", Parse(query="copy t from stdin"), P.EXTENDED_QUERY),
        ("F", Bind(), P.EXTENDED_QUERY),
        ("F", Execute(), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", BindComplete(), P.EXTENDED_QUERY),
        ("B", CopyInResponse(col_formats=[0]), P.COPY_IN),
        ("F", CopyData(data=b"1\n"), P.COPY_IN),
        ("F", CopyDone(), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("B", CommandComplete(tag="COPY 1"), P.EXTENDED_QUERY),
        ("B", IDLE, P.READY),
    ],
    "copy out from extended query with a pipelined query behind": [
        *CONNECT,
        ("F", Parse(query="copy t to stdout"), P.EXTENDED_QUERY),
        ("F", Bind(), P.EXTENDED_QUERY),
        ("F", Execute(), P.EXTENDED_QUERY),
        ("F", Sync(), P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", BindComplete(), P.EXTENDED_QUERY),
        ("B", CopyOutResponse(col_formats=[0]), P.COPY_OUT),
        ("F", Parse(query="select 1"), P.COPY_OUT),
        ("F", Sync(), P.COPY_OUT),
        ("B", CopyData(data=b"1\n"), P.COPY_OUT),
        ("B", CopyDone(), P.EXTENDED_QUERY),
        ("B", CommandComplete(tag="COPY 1"), P.EXTENDED_QUERY),
        ("B", IDLE, P.EXTENDED_QUERY),
        ("B", ParseComplete(), P.EXTENDED_QUERY),
        ("B", IDLE, P.READY),
    ],
    "copy both (replication)": [
        *CONNECT,
        ("F", Query(query_string="START_REPLICATION SLOT s LOGICAL 0/0"), P.SIMPLE_QUERY),
        ("B", CopyBothResponse(), P.COPY_BOTH),
        ("B", CopyData(data=b"w..."), P.COPY_BOTH),
        ("F", CopyData(data=b"r..."), P.COPY_BOTH),
        ("F", CopyDone(), P.COPY_BOTH),
        ("B", CopyData(data=b"w..."), P.COPY_BOTH),
        ("B", CopyDone(), P.SIMPLE_QUERY),
        ("B", CommandComplete(tag="START_REPLICATION"), P.SIMPLE_QUERY),
        ("B", IDLE, P.READY),
    ],
    "function call": [
        *CONNECT,
        ("F", FunctionCall(function_oid=1598, arguments=[]), P.FUNCTION_CALL),
        ("B", FunctionCallResponse(result=b"x"), P.FUNCTION_CALL),
        ("B", IDLE, P.READY),
    ],
    "cancel request": [("F", CancelRequest(process_id=7, secret_key=bytes(32)), P.TERMINATED)],
    "server fatal while idle": [
        *CONNECT,
        ("B", ErrorResponse(fields={"S": "FATAL", "C": "57P01", "M": "terminating"}), P.FAILED),
    ],
}


def _machines() -> tuple[FrontendStateMachine, BackendStateMachine]:
    return FrontendStateMachine(), BackendStateMachine()


@pytest.mark.parametrize("flow", FLOWS.values(), ids=FLOWS.keys())
def test_flow_both_roles(flow: list[Row]) -> None:
    client, server = _machines()
    for i, (sender, msg, phase) in enumerate(flow):
        if sender == "F":
            client.send(msg)
            server.receive(msg)
        else:
            server.send(msg)
            client.receive(msg)
        assert (client.phase, server.phase) == (phase, phase), f"row {i}: {msg!r}"


@pytest.mark.parametrize("flow", FLOWS.values(), ids=FLOWS.keys())
def test_flow_through_connections(flow: list[Row]) -> None:
    """The same flows as bytes: each Connection's decoder must follow."""
    client, server = FrontendConnection(), BackendConnection()
    for sender, msg, phase in flow:
        if isinstance(msg, DirectSSLHandshake):
            got = list(server.receive(msg.data))
            assert got == [msg]
            client.state_machine.send(msg)
            continue
        src, dst = (client, server) if sender == "F" else (server, client)
        got = list(dst.receive(src.send(msg)))
        assert got == [msg]
        assert client.phase == server.phase == phase


def test_pending_syncs_counts_pipeline() -> None:
    client, _ = _machines()
    for _, msg, _ in CONNECT:
        (client.send if isinstance(msg, StartupMessage) else client.receive)(msg)
    for _ in range(3):
        client.send(Parse(query="select 1"))
        client.send(Sync())
    assert client.pending_syncs == 3
    for left in (2, 1, 0):
        client.receive(ParseComplete())
        client.receive(IDLE)
        assert client.pending_syncs == left
    assert client.is_ready
    assert client.transaction_status is TransactionStatus.IDLE


def _ready_client() -> FrontendStateMachine:
    client = FrontendStateMachine()
    client.send(STARTUP)
    for _, msg, _ in CONNECT[1:]:
        client.receive(msg)
    return client


def test_error_names_phase_message_and_expected() -> None:
    client = _ready_client()
    with pytest.raises(StateMachineError) as info:
        client.receive(DataRow(columns=[]))
    err = info.value
    assert err.phase is P.READY
    assert err.message == "DataRow"
    assert err.direction == "receive"
    assert "NoticeResponse" in err.expected
    assert "READY" in str(err)
    assert "DataRow" in str(err)


def test_skip_until_sync_after_error() -> None:
    client = _ready_client()
    client.send(Parse(query="bogus"))
    client.send(Bind())
    client.send(Execute())
    client.send(Sync())
    client.receive(ERROR)
    # The server discards Bind/Execute: their replies cannot come.
    with pytest.raises(StateMachineError, match="skips to the next Sync"):
        client.receive(BindComplete())


def test_ready_for_query_without_sync_is_rejected() -> None:
    client = _ready_client()
    client.send(Parse(query="select 1"))
    client.send(Flush())
    client.receive(ParseComplete())
    with pytest.raises(StateMachineError):
        client.receive(IDLE)


def test_password_only_after_request() -> None:
    server = BackendStateMachine()
    server.receive(STARTUP)
    with pytest.raises(StateMachineError, match="no cleartext or MD5 password was requested"):
        server.receive(PasswordMessage(password="pw"))


def test_ok_before_sasl_final_is_rejected() -> None:
    client = FrontendStateMachine()
    client.send(STARTUP)
    client.receive(AuthenticationSASL(mechanisms=["SCRAM-SHA-256"]))
    client.send(SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=x"))
    with pytest.raises(StateMachineError):
        client.receive(AuthenticationOk())


def test_nothing_after_terminate() -> None:
    client = _ready_client()
    client.send(Terminate())
    assert not client.is_active
    with pytest.raises(StateMachineError):
        client.send(Query(query_string="select 1"))


def test_negotiated_protocol_version() -> None:
    client = FrontendStateMachine()
    client.send(StartupMessage(params={"user": "u"}, protocol_version=0x30002))
    assert client.protocol_version == 0x30002
    client.receive(NegotiateProtocolVersion(newest_minor=0, unrecognized=[]))
    assert client.protocol_version == 0x30000


def test_non_strict_logs_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    conn = FrontendConnection(strict=False)
    with caplog.at_level(logging.WARNING, logger="pygwire"):
        data = conn.send(Query(query_string="select 1"))
    assert data == Query(query_string="select 1").to_wire()
    assert "cannot send Query in phase STARTUP" in caplog.text


def test_connection_reframes_between_messages_of_one_chunk() -> None:
    """AuthenticationSASL and the SASL reply decoding need the phase to
    change between two messages fed together (server side)."""
    server = BackendConnection()
    list(server.receive(STARTUP.to_wire()))
    server.send(AuthenticationSASL(mechanisms=["SCRAM-SHA-256"]))
    first = SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=abc")
    got = list(server.receive(first.to_wire()))
    assert got == [first]
    server.send(AuthenticationSASLContinue(data=b"r=abcdef,s=c2FsdA==,i=4096"))
    second = SASLResponse(data=b"c=biws,r=abcdef,p=eA==")
    assert list(server.receive(second.to_wire())) == [second]


def test_connection_client_sees_injection_after_ssl_response() -> None:
    client = FrontendConnection()
    client.send(SSLRequest())
    injected = b"S" + ErrorResponse(fields={"S": "FATAL", "M": "x"}).to_wire()
    with pytest.raises(FramingError):
        list(client.receive(injected))
    assert client.phase is P.FAILED


def test_connection_server_refuses_bytes_pipelined_after_ssl_request() -> None:
    server = BackendConnection()
    with pytest.raises(FramingError):
        list(server.receive(SSLRequest().to_wire() + STARTUP.to_wire()))


def test_receive_feeds_even_if_not_iterated() -> None:
    client = FrontendConnection()
    client.send(STARTUP)
    it = client.receive(AuthenticationOk().to_wire())
    assert client.decoder.buffered == len(AuthenticationOk().to_wire())
    assert list(it) == [AuthenticationOk()]
    assert client.phase is P.INITIALIZATION


# -- the receive loop's shortcut for rows ------------------------------------------
# A connection skips the state machine for messages that are valid and change
# nothing in the current phase (rows, COPY data).  These tests pin down that
# the shortcut never lets through what the state machine would refuse.

ROWS = [DataRow(columns=[b"1", None]), DataRow(columns=[b"2", b"x"])]
RESULT = [
    RowDescription(fields=[]),
    *ROWS,
    CommandComplete(tag="SELECT 2"),
    IDLE,
]


def _ready_connection(cls: type[FrontendConnection] = FrontendConnection) -> FrontendConnection:
    conn = cls()
    conn.send(STARTUP)
    wire = b"".join(msg.to_wire() for _, msg, _ in CONNECT[1:])
    assert len(list(conn.receive(wire))) == len(CONNECT) - 1
    assert conn.phase is P.READY
    return conn


def test_rows_in_one_chunk_pass_and_the_cycle_completes() -> None:
    conn = _ready_connection()
    conn.send(Query(query_string="select"))
    wire = b"".join(msg.to_wire() for msg in RESULT)
    assert list(conn.receive(wire)) == RESULT
    assert conn.phase is P.READY


def test_rows_outside_a_query_are_refused_by_a_connection() -> None:
    conn = _ready_connection()
    with pytest.raises(StateMachineError, match="cannot receive DataRow in phase READY"):
        list(conn.receive(ROWS[0].to_wire()))


def test_rows_after_an_extended_query_error_are_refused() -> None:
    conn = _ready_connection()
    for msg in (Parse(query="select"), Bind(), Execute(), Sync()):
        conn.send(msg)
    wire = ParseComplete().to_wire() + BindComplete().to_wire() + ROWS[0].to_wire()
    assert len(list(conn.receive(wire))) == 3  # a row is fine while executing
    with pytest.raises(StateMachineError, match="skips to the next Sync"):
        list(conn.receive(ERROR.to_wire() + ROWS[1].to_wire()))


def test_a_forced_phase_is_honoured_by_the_shortcut() -> None:
    conn = _ready_connection()
    conn.state_machine.phase = P.SIMPLE_QUERY
    assert list(conn.receive(ROWS[0].to_wire())) == [ROWS[0]]
    conn.state_machine.phase = P.READY
    with pytest.raises(StateMachineError):
        list(conn.receive(ROWS[1].to_wire()))


def test_on_receive_sees_every_row() -> None:
    seen: list[type] = []

    class Tracing(FrontendConnection):
        def on_receive(self, msg: PGMessage) -> None:
            seen.append(type(msg))

    conn = _ready_connection(Tracing)
    seen.clear()
    conn.send(Query(query_string="select"))
    list(conn.receive(b"".join(msg.to_wire() for msg in RESULT)))
    assert seen == [type(msg) for msg in RESULT]


def test_copy_data_in_both_directions_keeps_the_phase() -> None:
    conn = _ready_connection()
    conn.send(Query(query_string="copy t to stdout"))
    wire = CopyOutResponse(col_formats=[0]).to_wire()
    wire += CopyData(data=b"a\n").to_wire() * 3 + CopyDone().to_wire()
    got = list(conn.receive(wire))
    assert [type(m) for m in got] == [CopyOutResponse, CopyData, CopyData, CopyData, CopyDone]
    assert conn.phase is P.SIMPLE_QUERY
