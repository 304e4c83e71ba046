"""The state model's rules, each with a legal case and an illegal one.

Every row says, in the protocol documentation's terms, what may and may not
come next after a prefix of the conversation; the model (one ProtocolState
fed by both sides) must accept the legal message and refuse the illegal one
with a StateMachineError.  Further tests cover the views (``outstanding``,
``is_idle``), ``strict=False`` on streams that diverge, and the proxy's
byte-exact forwarding.
"""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_cases import (
    CONNECTED,
    ERROR,
    IDLE,
    KEY4,
    RULES,
    STARTUP,
    B,
    Event,
    F,
    Rule,
    c,
    s,
)
from pygwire import (
    ConnectionPhase,
    ProtocolState,
    ProxyConnection,
    StateMachineError,
    TransactionStatus,
)
from pygwire.messages import (
    AuthenticationMessage,
    AuthenticationOk,
    Bind,
    BindComplete,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyInResponse,
    DataRow,
    Describe,
    ErrorResponse,
    Execute,
    Flush,
    FrontendMessage,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PGMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    Sync,
    Terminate,
)
from pygwire.messages._registry import DECLARATIONS
from pygwire.state_machine import transition_table


def _feed(state: ProtocolState, events: list[Event]) -> None:
    for sender, msg in events:
        state.advance(sender, msg)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_legal(rule: Rule) -> None:
    state = ProtocolState()
    _feed(state, rule.prefix)
    if rule.legal is None:
        assert state.expected(F) == state.expected(B) == ()
        assert state.phase in (ConnectionPhase.FAILED, ConnectionPhase.TERMINATED)
    else:
        state.advance(*rule.legal)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_illegal(rule: Rule) -> None:
    state = ProtocolState()
    _feed(state, rule.prefix)
    with pytest.raises(StateMachineError) as info:
        state.advance(*rule.illegal)
    assert info.value.message == type(rule.illegal[1]).__name__


def test_every_declared_message_has_a_place_in_the_model() -> None:
    """A message class declared without rows would be refused everywhere:
    each one is a step of the table, one of the messages a server may send
    at any time, or a request a client may send once the session runs."""
    listed = {row[2] for row in transition_table()}
    any_time = {NoticeResponse, ParameterStatus, NotificationResponse}
    for cls in DECLARATIONS:
        if cls is AuthenticationMessage or cls.__name__ in listed or cls in any_time:
            continue
        assert issubclass(cls, FrontendMessage), cls
        state = ProtocolState()
        _feed(state, CONNECTED)
        state.advance(F, cls())  # raises if the model has no place for it
        assert state.outstanding, cls


# -- views ----------------------------------------------------------------------------------


def test_outstanding_lists_requests_oldest_first() -> None:
    state = ProtocolState()
    steps: list[tuple[list[Event], tuple[str, ...], ConnectionPhase]] = [
        (CONNECTED, (), ConnectionPhase.READY),
        (
            c(Parse(query="s"), Flush(), Bind(), Execute(), Sync(), Query(query_string="q")),
            ("Parse", "Bind", "Execute", "Sync", "Query"),
            ConnectionPhase.EXTENDED_QUERY,
        ),
        (
            s(ParseComplete(), BindComplete(), DataRow(columns=[])),
            ("Execute", "Sync", "Query"),
            ConnectionPhase.EXTENDED_QUERY,
        ),
        (s(CommandComplete(tag="SELECT 1"), IDLE), ("Query",), ConnectionPhase.SIMPLE_QUERY),
    ]
    for events, outstanding, phase in steps:
        _feed(state, events)
        assert (state.outstanding, state.phase) == (outstanding, phase)
    assert state.pending_syncs == 0


@pytest.mark.parametrize(
    ("events", "idle"),
    [
        ([], True),
        (c(Parse(query="s"), Flush()) + s(ParseComplete()), False),  # implicit transaction open
        (c(Query(query_string="begin")) + s(CommandComplete(tag="BEGIN")), False),
        (
            c(Query(query_string="begin"))
            + s(
                CommandComplete(tag="BEGIN"), ReadyForQuery(status=TransactionStatus.IN_TRANSACTION)
            ),
            False,
        ),
        (c(Sync()), False),
        (c(Sync()) + s(IDLE), True),
        (c(Flush()), True),
    ],
)
def test_is_idle(events: list[Event], idle: bool) -> None:
    """What a pooler asks before handing the server connection to another client."""
    state = ProtocolState()
    _feed(state, CONNECTED + events)
    assert state.is_idle is idle


def test_translated_severity() -> None:
    """A server with lc_messages=de sends S=SCHWERWIEGEND; V stays FATAL."""
    for fields, phase in [
        ({"S": "SCHWERWIEGEND", "V": "FATAL", "M": "x"}, ConnectionPhase.FAILED),
        ({"S": "FATAL", "M": "x"}, ConnectionPhase.FAILED),  # servers before 9.6 send no V
        ({"S": "FEHLER", "V": "ERROR", "M": "x"}, ConnectionPhase.SIMPLE_QUERY),
    ]:
        state = ProtocolState()
        _feed(state, [*CONNECTED, *c(Query(query_string="q"))])
        state.server_sent(ErrorResponse(fields=fields))
        assert state.phase is phase, fields


# -- strict=False: apply what can be applied, and say so --------------------------------------


def _lax(events: list[Event]) -> ProtocolState:
    state = ProtocolState(strict=False)
    _feed(state, events)
    return state


def test_lax_a_missing_answer(caplog: pytest.LogCaptureFixture) -> None:
    """The server skips ParseComplete: BindComplete answers Bind, Parse is dropped."""
    with caplog.at_level(logging.WARNING, logger="pygwire"):
        state = _lax([*CONNECTED, *c(Parse(query="s"), Bind(), Sync()), *s(BindComplete())])
    assert "the oldest outstanding request is Parse" in caplog.text
    assert state.outstanding == ("Sync",)
    state.server_sent(IDLE)
    assert state.is_idle
    assert len(caplog.records) == 1


def test_lax_ready_for_query_resynchronises(caplog: pytest.LogCaptureFixture) -> None:
    """A ReadyForQuery where none is due closes every request up to the
    first that earns one; the rest of the stream is followed again."""
    with caplog.at_level(logging.WARNING, logger="pygwire"):
        state = _lax(
            [*CONNECTED, *c(Parse(query="s"), Bind(), Sync(), Query(query_string="q")), *s(IDLE)]
        )
    assert state.outstanding == ("Query",)
    assert state.pending_syncs == 0
    _feed(state, s(RowDescription(), DataRow(columns=[]), CommandComplete(tag="x"), IDLE))
    assert state.phase is ConnectionPhase.READY
    assert len(caplog.records) == 1


def test_lax_unexplained_messages_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pygwire"):
        state = _lax([*CONNECTED, *s(DataRow(columns=[]), BindComplete())])
    assert state.phase is ConnectionPhase.READY
    assert state.is_idle
    assert len(caplog.records) == 2


def test_lax_a_client_violation_is_applied_as_the_server_would(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Query during COPY IN: PostgreSQL ends the COPY with an error."""
    with caplog.at_level(logging.WARNING, logger="pygwire"):
        state = _lax(
            [*CONNECTED, *c(Query(query_string="copy t from stdin")), *s(CopyInResponse())]
        )
        state.client_sent(Query(query_string="select 1"))
    assert len(caplog.records) == 1
    _feed(state, s(ERROR, IDLE))
    assert state.is_idle


def test_lax_real_client_traffic_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """asyncpg's prepare-then-execute, which the phase table once refused
    (and, lax, mislogged for the rest of the session)."""
    with caplog.at_level(logging.WARNING, logger="pygwire"):
        _lax(
            [
                *CONNECTED,
                *c(Parse(statement="s"), Describe(kind="S", name="s"), Flush()),
                *s(ParseComplete(), ParameterDescription(), RowDescription()),
                *c(Query(query_string="select 2")),
                *s(RowDescription(), DataRow(columns=[b"2"]), CommandComplete(tag="SELECT 1")),
                *s(IDLE),
            ]
        )
    assert caplog.records == []


# -- a proxy forwards the original bytes ---------------------------------------------------------

CLIENT_STREAM = [
    STARTUP,
    Parse(statement="s", query="select $1"),
    Bind(statement="s", param_values=[b"1"]),
    Describe(kind="P"),
    Execute(),
    Sync(),
    Query(query_string="copy t from stdin"),
    CopyData(data=b"1\n" * 50),
    CopyDone(),
    Terminate(),
]
SERVER_STREAM = [
    AuthenticationOk(),
    ParameterStatus(name="server_version", value="18.6"),
    KEY4,
    IDLE,
    ParseComplete(),
    BindComplete(),
    RowDescription(),
    DataRow(columns=[b"1"]),
    CommandComplete(tag="SELECT 1"),
    IDLE,
    CopyInResponse(col_formats=[0]),
    CommandComplete(tag="COPY 50"),
    IDLE,
]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=40), st.booleans())
def test_proxy_forwards_byte_exact(cuts: list[int], one_byte: bool) -> None:
    """The bytes handed on are the bytes received, in any chunking, and the
    messages are those sent.  The client's whole stream goes first up to
    the startup, then the two streams alternate as a real exchange would."""
    proxy = ProxyConnection()
    client_wire = [m.to_wire() for m in CLIENT_STREAM]
    server_wire = [m.to_wire() for m in SERVER_STREAM]
    # Exchange in rounds: (client messages, server messages) of each round.
    rounds = [(0, 1, 0, 4), (1, 7, 4, 11), (7, 9, 11, 13), (9, 10, 13, 13)]
    got_c: list[PGMessage] = []
    got_s: list[PGMessage] = []
    for c0, c1, s0, s1 in rounds:
        for wire, feed, take, got in (
            (b"".join(client_wire[c0:c1]), proxy.from_client, proxy.take_from_client, got_c),
            (b"".join(server_wire[s0:s1]), proxy.from_server, proxy.take_from_server, got_s),
        ):
            pieces = [bytes([b]) for b in wire] if one_byte else _chunks(wire, cuts)
            out = b""
            for piece in pieces:
                got.extend(feed(piece))
                out += take()
            assert out == wire
    assert got_c == CLIENT_STREAM
    assert got_s == SERVER_STREAM
    assert proxy.phase is ConnectionPhase.TERMINATED


def test_proxy_forward_holds_a_partial_message() -> None:
    proxy = ProxyConnection(ConnectionPhase.READY)
    wire = Query(query_string="select 1").to_wire() + Sync().to_wire()
    assert proxy.forward_from_client(wire[:7]) == b""
    assert proxy.forward_from_client(wire[7:-2]) == Query(query_string="select 1").to_wire()
    assert proxy.forward_from_client(wire[-2:]) == Sync().to_wire()
    assert proxy.state.outstanding == ("Query", "Sync")


def test_proxy_hands_over_what_it_has_not_handed_out() -> None:
    """After AuthenticationOk the rest of the server's chunk (a whole
    ParameterStatus and half a ReadyForQuery) comes back byte for byte."""
    proxy = ProxyConnection()
    proxy.forward_from_client(STARTUP.to_wire())
    ok = AuthenticationOk().to_wire()
    rest = ParameterStatus(name="a", value="b").to_wire() + IDLE.to_wire()[:3]
    messages = proxy.from_server(ok + rest)
    assert next(messages) == AuthenticationOk()
    assert proxy.take_from_server() == ok
    assert proxy.take_unread_from_server() == rest
    assert proxy.take_unread_from_server() == b""
    assert proxy.server_decoder.buffered == 0
    assert proxy.take_from_server() == b""


def test_proxy_refuses_what_the_model_refuses() -> None:
    proxy = ProxyConnection(ConnectionPhase.READY)
    with pytest.raises(StateMachineError, match="no request is outstanding"):
        proxy.forward_from_server(BindComplete().to_wire())
