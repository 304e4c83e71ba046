"""The state model's rules as data: each a prefix of a conversation, a
message that may come next and one that may not (in the protocol
documentation's terms).  ``unit/test_model_rules.py`` checks the model
against them; ``unit/test_chotpath.py`` replays them through both
versions of the model's loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from pygwire import (
    MessageDirection,
    TransactionStatus,
)
from pygwire.messages import (
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    BackendKeyData,
    Bind,
    BindComplete,
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

F = MessageDirection.FRONTEND
B = MessageDirection.BACKEND
Event = tuple[MessageDirection, PGMessage]

IDLE = ReadyForQuery(status=TransactionStatus.IDLE)
ERROR = ErrorResponse(fields={"S": "ERROR", "V": "ERROR", "C": "42601", "M": "syntax error"})
FATAL = ErrorResponse(fields={"S": "FATAL", "V": "FATAL", "C": "57P01", "M": "terminating"})
STARTUP = StartupMessage(params={"user": "u"})
STARTUP_32 = StartupMessage(params={"user": "u", "_pq_.opt": "1"}, protocol_version=0x30002)
KEY4 = BackendKeyData(process_id=7, secret_key=b"\0\0\0\x07")
CONNECTED: list[Event] = [(F, STARTUP), (B, AuthenticationOk()), (B, KEY4), (B, IDLE)]


def c(*msgs: PGMessage) -> list[Event]:
    return [(F, m) for m in msgs]


def s(*msgs: PGMessage) -> list[Event]:
    return [(B, m) for m in msgs]


@dataclass(frozen=True)
class Rule:
    """After ``prefix``, ``legal`` is accepted (None: nothing more is, from
    either side) and ``illegal`` refused."""

    name: str
    prefix: list[Event]
    legal: Event | None
    illegal: Event


R = Rule
RULES = [
    # -- what each request earns ------------------------------------------------------
    R("Query: results, then ReadyForQuery", [*CONNECTED, *c(Query(query_string="select"))],
      (B, RowDescription()), (B, BindComplete())),
    R("Query: rows only after RowDescription", [*CONNECTED, *c(Query(query_string="select"))],
      (B, CommandComplete(tag="SET")), (B, DataRow(columns=[]))),
    R("Query: an error ends the whole string", [*CONNECTED, *c(Query(query_string="a; b")),
      (B, ERROR)], (B, IDLE), (B, RowDescription())),
    R("Parse earns ParseComplete (not an unsolicited BindComplete)",
      [*CONNECTED, *c(Parse(query="select"))], (B, ParseComplete()), (B, BindComplete())),
    R("Bind earns BindComplete", [*CONNECTED, *c(Bind())], (B, BindComplete()),
      (B, ParseComplete())),
    R("Describe S: ParameterDescription first", [*CONNECTED, *c(Describe(kind="S"))],
      (B, ParameterDescription()), (B, RowDescription())),
    R("Describe S: then RowDescription or NoData",
      [*CONNECTED, *c(Describe(kind="S")), (B, ParameterDescription())],
      (B, NoData()), (B, ParameterDescription())),
    R("Describe P: no ParameterDescription without a Describe S",
      [*CONNECTED, *c(Describe(kind="P"))], (B, NoData()), (B, ParameterDescription())),
    R("Execute: rows, then its end", [*CONNECTED, *c(Execute()), (B, DataRow(columns=[]))],
      (B, PortalSuspended()), (B, RowDescription())),
    R("Execute: an empty query", [*CONNECTED, *c(Execute())], (B, EmptyQueryResponse()),
      (B, NoData())),
    R("Close earns CloseComplete", [*CONNECTED, *c(Close(kind="P"))], (B, CloseComplete()),
      (B, NoData())),
    R("Sync earns ReadyForQuery", [*CONNECTED, *c(Sync())], (B, IDLE),
      (B, CommandComplete(tag="SELECT 1"))),
    R("Sync: a commit error comes before its ReadyForQuery", [*CONNECTED, *c(Sync())],
      (B, ERROR), (B, ParseComplete())),
    R("Flush earns nothing", [*CONNECTED, *c(Parse(query="s"), Flush()), (B, ParseComplete())],
      (F, Sync()), (B, IDLE)),
    R("FunctionCall: its result, then ReadyForQuery",
      [*CONNECTED, *c(FunctionCall(function_oid=1, arguments=[]))],
      (B, FunctionCallResponse(result=b"1")), (B, IDLE)),
    R("FunctionCall: an error, then ReadyForQuery",
      [*CONNECTED, *c(FunctionCall(function_oid=1, arguments=[])), (B, ERROR)],
      (B, IDLE), (B, FunctionCallResponse(result=None))),
    # -- order and counting --------------------------------------------------------------
    R("one ReadyForQuery per Sync, not a second", [*CONNECTED, *c(Sync()), (B, IDLE)],
      (F, Sync()), (B, IDLE)),
    R("answers come in the order of the requests",
      [*CONNECTED, *c(Parse(query="s"), Describe(kind="S"), Sync())],
      (B, ParseComplete()), (B, ParameterDescription())),
    R("rows only inside a result", [*CONNECTED, *c(Query(query_string="q")),
      (B, RowDescription())], (B, DataRow(columns=[b"1"])), (B, ParameterDescription())),
    R("no rows while idle", CONNECTED, (B, ParameterStatus(name="a", value="b")),
      (B, DataRow(columns=[]))),
    R("the next command may be sent before the last is answered",
      [*CONNECTED, *c(Query(query_string="select pg_sleep(1)"))],
      (F, Query(query_string="select 2")), (B, CloseComplete())),
    R("an extended-query error skips to the next Sync",
      [*CONNECTED, *c(Parse(query="bad"), Bind(), Execute(), Sync()), (B, ERROR)],
      (B, IDLE), (B, BindComplete())),
    R("the skip takes a Query too",
      [*CONNECTED, *c(Parse(query="bad"), Query(query_string="q"), Sync()), (B, ERROR)],
      (B, IDLE), (B, RowDescription())),
    R("a Query between extended messages (asyncpg prepare, then execute)",
      [*CONNECTED, *c(Parse(statement="s"), Describe(kind="S"), Flush()),
       *s(ParseComplete(), ParameterDescription(), NoData())],
      (F, Query(query_string="select 2")), (B, IDLE)),
    # -- COPY ---------------------------------------------------------------------------
    R("COPY OUT: data after CopyOutResponse",
      [*CONNECTED, *c(Query(query_string="copy t to stdout")), (B, CopyOutResponse())],
      (B, CopyData(data=b"1\n")), (B, DataRow(columns=[]))),
    R("COPY OUT: no data before CopyOutResponse",
      [*CONNECTED, *c(Query(query_string="copy t to stdout"))],
      (B, CopyOutResponse()), (B, CopyData(data=b"1\n"))),
    R("COPY IN reads only COPY input, Flush and Sync",
      [*CONNECTED, *c(Query(query_string="copy t from stdin")), (B, CopyInResponse())],
      (F, Flush()), (F, Query(query_string="select 1"))),
    R("COPY IN: CommandComplete only after CopyDone",
      [*CONNECTED, *c(Query(query_string="copy t from stdin")), (B, CopyInResponse()),
       (F, CopyData(data=b"1\n"))],
      (F, CopyDone()), (B, CommandComplete(tag="COPY 1"))),
    R("COPY IN: CopyFail earns an error",
      [*CONNECTED, *c(Query(query_string="copy t from stdin")), (B, CopyInResponse()),
       (F, CopyFail(error_message="no"))],
      (B, ERROR), (B, CommandComplete(tag="COPY 0"))),
    R("COPY IN swallows a Sync: it earns no ReadyForQuery",
      [*CONNECTED, *c(Parse(query="copy"), Bind(), Execute(), Sync()),
       *s(ParseComplete(), BindComplete(), CopyInResponse()), (F, CopyDone()),
       (B, CommandComplete(tag="COPY 0"))],
      (F, Sync()), (B, IDLE)),
    # -- any time, and the end ----------------------------------------------------------
    R("notices, parameters, notifications: any time after the startup packet",
      [(F, STARTUP)], (B, NoticeResponse(fields={"S": "NOTICE"})), (B, IDLE)),
    R("notifications while idle", CONNECTED,
      (B, NotificationResponse(process_id=1, channel="c")), (B, CommandComplete(tag="x"))),
    R("FATAL ends the session", [*CONNECTED, *c(Query(query_string="q")), (B, FATAL)],
      None, (B, IDLE)),
    R("nothing is sent after FATAL", [*CONNECTED, (B, FATAL)], None, (F, Sync())),
    R("a non-fatal error needs a request", CONNECTED, (B, FATAL), (B, ERROR)),
    R("nothing after Terminate", [*CONNECTED, *c(Terminate())], None,
      (B, NoticeResponse())),
    R("Terminate behind a request: the request is still answered",
      [*CONNECTED, *c(Query(query_string="q"), Terminate())], (B, RowDescription()),
      (F, Query(query_string="q"))),
    # -- startup --------------------------------------------------------------------------
    R("the startup packet comes first", [], (F, STARTUP), (F, Query(query_string="q"))),
    R("a password only when asked for", [(F, STARTUP), (B, AuthenticationMD5Password())],
      (F, PasswordMessage(password="md5x")), (F, SASLResponse(data=b"x"))),
    R("no AuthenticationOk in the middle of SCRAM",
      [(F, STARTUP), (B, AuthenticationSASL(mechanisms=["SCRAM-SHA-256"])),
       (F, SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=x"))],
      (B, AuthenticationSASLContinue(data=b"r=xy,s=c2FsdA==,i=4096")), (B, AuthenticationOk())),
    R("the client answers each SASL challenge before the next",
      [(F, STARTUP), (B, AuthenticationSASL(mechanisms=["SCRAM-SHA-256"])),
       (F, SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=x")),
       (B, AuthenticationSASLContinue(data=b"r=xy"))],
      (F, SASLResponse(data=b"c=biws")), (B, AuthenticationSASLContinue(data=b"r=xy"))),
    R("NegotiateProtocolVersion not twice",
      [(F, STARTUP_32), (B, NegotiateProtocolVersion(newest_minor=0, unrecognized=[]))],
      (B, AuthenticationOk()), (B, NegotiateProtocolVersion(newest_minor=0, unrecognized=[]))),
    R("NegotiateProtocolVersion not above the version asked for", [(F, STARTUP_32)],
      (B, NegotiateProtocolVersion(newest_minor=1, unrecognized=[])),
      (B, NegotiateProtocolVersion(newest_minor=3, unrecognized=[]))),
    R("NegotiateProtocolVersion refuses only options asked for", [(F, STARTUP_32)],
      (B, NegotiateProtocolVersion(newest_minor=2, unrecognized=["_pq_.opt"])),
      (B, NegotiateProtocolVersion(newest_minor=2, unrecognized=["_pq_.other"]))),
    R("NegotiateProtocolVersion must change something", [(F, STARTUP_32)],
      (B, NegotiateProtocolVersion(newest_minor=0, unrecognized=[])),
      (B, NegotiateProtocolVersion(newest_minor=2, unrecognized=[]))),
    R("a 3.0 cancel key has 4 bytes", [(F, STARTUP), (B, AuthenticationOk())],
      (B, KEY4), (B, BackendKeyData(process_id=7, secret_key=bytes(32)))),
    R("a 3.2 cancel key may be longer", [(F, STARTUP_32), (B, AuthenticationOk()),
      (B, BackendKeyData(process_id=7, secret_key=bytes(32)))], (B, IDLE), (B, KEY4)),
    R("one SSLRequest", [(F, SSLRequest()), (B, SSLResponse.SUPPORTED)],
      (F, STARTUP), (F, SSLRequest())),
    R("GSSENCRequest after SSL was refused, not after it was accepted",
      [(F, SSLRequest()), (B, SSLResponse.NOT_SUPPORTED)],
      (F, GSSEncRequest()), (F, SSLRequest())),
    R("no second GSSENCRequest", [(F, GSSEncRequest()), (B, GSSEncResponse.NOT_SUPPORTED)],
      (F, SSLRequest()), (F, GSSEncRequest())),
    R("direct SSL opens the connection, not after 'N'",
      [(F, SSLRequest()), (B, SSLResponse.NOT_SUPPORTED)],
      (F, STARTUP), (F, DirectSSLHandshake(data=b"\x16\x03\x01"))),
    R("a cancel request ends the connection", [(F, CancelRequest(process_id=1))], None,
      (F, STARTUP)),
]  # fmt: skip
