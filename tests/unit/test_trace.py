"""The libpq trace format, offline: every message, both modes, redaction,
reading back, and the bytes that make the format ambiguous.

Expected lines are libpq 18's own: most were written by libpq (through
psycopg's ``pgconn.trace()``) for the same message, against PostgreSQL 18
or a scripted server; the rest follow libpq's ``fe-trace.c`` field by
field (noted where so).  ``»`` stands for a TAB in the tables below, so
that the byte escapes can be written as libpq prints them.
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta

import pytest

import pygwire.messages as messages_module
from pygwire.constants import MessageDirection, StartupRequestCode, TransactionStatus
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationGSSContinue,
    AuthenticationKerberosV5,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    AuthenticationSCMCredential,
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
    FieldDescription,
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
from pygwire.trace import REDACTED, TraceEntry, TraceFormatError, Tracer, UnknownMessage, read_trace

F = MessageDirection.FRONTEND
B = MessageDirection.BACKEND


def lines(*text: str) -> str:
    """Trace lines with ``»`` for TAB, each ended by a newline."""
    return "".join(t.replace("»", "\t") + "\n" for t in text)


def fmt(
    direction: MessageDirection, msg: PGMessage, *, regress: bool = False, redact: bool = False
) -> str:
    return Tracer(io.StringIO(), timestamps=False, regress=regress, redact=redact).format(
        direction, msg
    )


# (direction, message, libpq's lines, libpq's lines in regress mode or None if the same)
Case = tuple[MessageDirection, PGMessage, str, str | None]

ERROR_FIELDS = {
    "S": "ERROR", "V": "ERROR", "C": "22012", "M": "division by zero",
    "F": "int.c", "L": "870", "R": "int4div",
}  # fmt: skip
NOTICE_FIELDS = {
    "S": "NOTICE", "V": "NOTICE", "C": "00000", "M": "hi",
    "W": "PL/pgSQL function inline_code_block line 1 at RAISE",
    "F": "pl_exec.c", "L": "3909", "R": "exec_stmt_raise",
}  # fmt: skip
KEY_32 = b"0123456789abcdefghijklmnopqrstu\n"

CASES: list[Case] = [
    # -- startup phase, from the client ---------------------------------
    (F, StartupMessage({"user": "u", "database": "d"}),
     lines('F»27»StartupMessage» 3 0 "user" "u" "database" "d"'), None),
    (F, StartupMessage({"user": "u", "database": "d"}, StartupRequestCode.V3_2),
     lines('F»27»StartupMessage» 3 2 "user" "u" "database" "d"'), None),
    (F, SSLRequest(), lines("F»8»SSLRequest» 1234 5679"), None),
    # fe-trace.c: GSSENCRequest is printed like SSLRequest (80877104).
    (F, GSSEncRequest(), lines("F»8»GSSENCRequest» 1234 5680"), None),
    # libpq 18 (its shipped code): the key as a byte string, hidden in regress mode.
    (F, CancelRequest(4242, b"\x01ab\xff"),
     lines(r"F»16»CancelRequest» 1234 5678 4242 '\x01ab\xff'"),
     lines("F»16»CancelRequest» 1234 5678 NNNN 'BBBB'")),
    (F, CancelRequest(7, KEY_32),
     lines(r"F»44»CancelRequest» 1234 5678 7 '0123456789abcdefghijklmnopqrstu\x0a'"),
     lines("F»44»CancelRequest» 1234 5678 NNNN 'BBBB'")),
    # -- authentication -------------------------------------------------
    (B, AuthenticationOk(), lines("B»8»AuthenticationOk"), None),
    (B, AuthenticationCleartextPassword(), lines("B»8»AuthenticationCleartextPassword"), None),
    (B, AuthenticationMD5Password(b"\x01\xffab"),
     lines("B»12»AuthenticationMD5Password",
           "mismatched message length: consumed 8, expected 12"), None),
    # fe-trace.c: codes libpq does not handle are named by number.
    (B, AuthenticationKerberosV5(), lines("B»8»Unknown authentication message 2"), None),
    (B, AuthenticationSCMCredential(), lines("B»8»Unknown authentication message 6"), None),
    (B, AuthenticationGSS(), lines("B»8»AuthenticationGSS"), None),
    (B, AuthenticationSSPI(), lines("B»8»AuthenticationSSPI"), None),
    (B, AuthenticationGSSContinue(b"\x00abc"),
     lines(r"B»12»AuthenticationGSSContinue» '\x00abc'"),
     lines("B»12»AuthenticationGSSContinue» 'BBBB'")),
    (B, AuthenticationSASL(["X-FOO", "SCRAM-SHA-256"]),
     lines('B»29»AuthenticationSASL» "X-FOO" "SCRAM-SHA-256" ""'), None),
    (B, AuthenticationSASLContinue(b"r=abc,s=c2FsdA==,i=4096"),
     lines("B»31»AuthenticationSASLContinue» 'r=abc,s=c2FsdA==,i=4096'"),
     lines("B»31»AuthenticationSASLContinue» 'BBBB'")),
    (B, AuthenticationSASLFinal(b"v=xyz"),
     lines("B»13»AuthenticationSASLFinal» 'v=xyz'"),
     lines("B»13»AuthenticationSASLFinal» 'BBBB'")),
    (F, PasswordMessage("pw"), lines('F»7»PasswordMessage» "pw"'), None),
    (F, PasswordMessage("md53bdaa7bc49c2417ecf729214fa53707f"),
     lines('F»40»PasswordMessage» "md53bdaa7bc49c2417ecf729214fa53707f"'), None),
    (F, SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=+zbZIE2kuLSY9hD1/32PrJPp"),
     lines("F»54»SASLInitialResponse» \"SCRAM-SHA-256\" 32 'n,,n=,r=+zbZIE2kuLSY9hD1/32PrJPp'"),
     lines("F»54»SASLInitialResponse» \"SCRAM-SHA-256\" 32 'BBBB'")),
    (F, SASLInitialResponse("X", None), lines('F»10»SASLInitialResponse» "X" -1'), None),
    (F, SASLResponse(b"c=biws,r=abc"),
     lines("F»16»SASLResponse» 'c=biws,r=abc'"), lines("F»16»SASLResponse» 'BBBB'")),
    (F, GSSResponse(b"`\x01"),
     lines(r"F»6»GSSResponse» '`\x01'"), lines("F»6»GSSResponse» 'BBBB'")),
    # -- after authentication -------------------------------------------
    (B, BackendKeyData(7, b"\x01\x02\x03\x04"),
     lines(r"B»12»BackendKeyData» 7 '\x01\x02\x03\x04'"),
     lines("B»12»BackendKeyData» NNNN 'BBBB'")),
    (B, BackendKeyData(20327, KEY_32),
     lines(r"B»40»BackendKeyData» 20327 '0123456789abcdefghijklmnopqrstu\x0a'"),
     lines("B»40»BackendKeyData» NNNN 'BBBB'")),
    (B, ParameterStatus("search_path", '"$user", public'),
     lines('B»32»ParameterStatus» "search_path" ""$user", public"'), None),
    (B, ReadyForQuery(TransactionStatus.IDLE), lines("B»5»ReadyForQuery» I"), None),
    (B, ReadyForQuery(TransactionStatus.IN_TRANSACTION), lines("B»5»ReadyForQuery» T"), None),
    (B, ReadyForQuery(TransactionStatus.ERROR_TRANSACTION), lines("B»5»ReadyForQuery» E"), None),
    (B, NegotiateProtocolVersion(0, []),
     lines("B»12»NegotiateProtocolVersion» 196608 0"), None),
    # libpq 18 (its shipped code): the unrecognised option names follow.
    (B, NegotiateProtocolVersion(0, ["_pq_.x"]),
     lines('B»19»NegotiateProtocolVersion» 196608 1 "_pq_.x"'), None),
    # -- simple query ---------------------------------------------------
    (F, Query("select 1, 'a\x01b', NULL, 'é'"),
     lines("F»32»Query» \"select 1, 'a\x01b', NULL, 'é'\""), None),
    (B, RowDescription([FieldDescription("?column?", 0, 0, 23, 4, -1, 0)]),
     lines('B»33»RowDescription» 1 "?column?" 0 0 23 4 -1 0'),
     lines('B»33»RowDescription» 1 "?column?" NNNN 0 NNNN 4 -1 0')),
    (B, RowDescription([FieldDescription("x", 3000000000, -3, 4000000000, -2, -7, 1)]),
     lines('B»26»RowDescription» 1 "x" -1294967296 65533 -294967296 65534 -7 1'),
     lines('B»26»RowDescription» 1 "x" NNNN 65533 NNNN 65534 -7 1')),
    (B, DataRow([b"1", b"a\x01b", None, "é".encode()]),
     lines(r"B»28»DataRow» 4 1 '1' 3 'a\x01b' -1 2 '\xc3\xa9'"), None),
    (B, DataRow([b"\x7f\x80 \\x41'\"", b"", None]),
     lines(r"""B»27»DataRow» 3 9 '\x7f\x80 \x41'"' 0 '' -1"""), None),
    (B, CommandComplete("SELECT 1"), lines('B»13»CommandComplete» "SELECT 1"'), None),
    (B, EmptyQueryResponse(), lines("B»4»EmptyQueryResponse"), None),
    (B, ErrorResponse(ERROR_FIELDS),
     lines(r'B»65»ErrorResponse» S "ERROR" V "ERROR" C "22012" M "division by zero"'
           r' F "int.c" L "870" R "int4div" \x00'),
     lines(r'B»NN»ErrorResponse» S "ERROR" V "ERROR" C "22012" M "division by zero"'
           r' F "SSSS" L "SSSS" R "SSSS" \x00')),
    (B, NoticeResponse(NOTICE_FIELDS),
     lines(r'B»119»NoticeResponse» S "NOTICE" V "NOTICE" C "00000" M "hi"'
           r' W "PL/pgSQL function inline_code_block line 1 at RAISE"'
           r' F "pl_exec.c" L "3909" R "exec_stmt_raise" \x00'),
     lines(r'B»NN»NoticeResponse» S "NOTICE" V "NOTICE" C "00000" M "hi"'
           r' W "PL/pgSQL function inline_code_block line 1 at RAISE"'
           r' F "SSSS" L "SSSS" R "SSSS" \x00')),
    (B, ErrorResponse({"S": "ERROR", "\x7f": "x"}),
     lines(r'B»15»ErrorResponse» S "ERROR" \x7f "x" \x00'),
     lines(r'B»NN»ErrorResponse» S "ERROR" \x7f "x" \x00')),
    (B, NotificationResponse(20161, "ch", "payload"),
     lines('B»19»NotificationResponse» 20161 "ch" "payload"'),
     lines('B»19»NotificationResponse» NNNN "ch" "payload"')),
    # -- extended query -------------------------------------------------
    (F, Parse("", "select $1::int, $2::bytea", [21, 17]),
     lines('F»41»Parse» "" "select $1::int, $2::bytea" 2 21 17'),
     lines('F»41»Parse» "" "select $1::int, $2::bytea" 2 NNNN NNNN')),
    (F, Bind("", "", [1, 1], [b"\x00\x05", b"\x00\xff\x80x"], [0]),
     lines(r"""F»32»Bind» "" "" 2 1 1 2 2 '\x00\x05' 4 '\x00\xff\x80x' 1 0"""), None),
    (F, Bind("p1", "s1", [], [None], []), lines('F»20»Bind» "p1" "s1" 0 1 -1 0'), None),
    (F, Describe("P", ""), lines('F»6»Describe» P ""'), None),
    (F, Describe("S", "st1"), lines('F»9»Describe» S "st1"'), None),
    (F, Execute("", 0), lines('F»9»Execute» "" 0'), None),
    (F, Execute("c1", 10), lines('F»11»Execute» "c1" 10'), None),
    (F, Close("S", "st1"), lines('F»9»Close» S "st1"'), None),
    (F, Close("P", ""), lines('F»6»Close» P ""'), None),
    (F, Sync(), lines("F»4»Sync"), None),
    (F, Flush(), lines("F»4»Flush"), None),
    (B, ParseComplete(), lines("B»4»ParseComplete"), None),
    (B, BindComplete(), lines("B»4»BindComplete"), None),
    (B, CloseComplete(), lines("B»4»CloseComplete"), None),
    (B, NoData(), lines("B»4»NoData"), None),
    (B, PortalSuspended(), lines("B»4»PortalSuspended"), None),
    (B, ParameterDescription([23]),
     lines("B»10»ParameterDescription» 1 23"), lines("B»10»ParameterDescription» 1 NNNN")),
    # -- COPY -----------------------------------------------------------
    (B, CopyInResponse(0, [0, 0]), lines(r"B»11»CopyInResponse» \x00 2 0 0"), None),
    (B, CopyOutResponse(1, [1]), lines(r"B»9»CopyOutResponse» \x01 1 1"), None),
    (B, CopyOutResponse(-1, [0]), lines(r"B»9»CopyOutResponse» \xff 1 0"), None),
    (B, CopyBothResponse(1, [0, 1]), lines(r"B»11»CopyBothResponse» \x01 2 0 1"), None),
    (F, CopyData(b"1\tone\n2\ttw\\to\n"),
     lines(r"F»18»CopyData» '1\x09one\x0a2\x09tw\to\x0a'"), lines("F»18»CopyData» 'BBBB'")),
    (B, CopyData(b"k\x00"), lines(r"B»6»CopyData» 'k\x00'"), lines("B»6»CopyData» 'BBBB'")),
    (F, CopyDone(), lines("F»4»CopyDone"), None),
    (B, CopyDone(), lines("B»4»CopyDone"), None),
    (F, CopyFail("stop"), lines('F»9»CopyFail» "stop"'), None),
    # -- function call (fe-trace.c: the OID is hidden in regress mode) --
    (F, FunctionCall(1598, [1], [b"\x00\x01"], 1),
     lines(r"F»22»FunctionCall» 1598 1 1 1 2 '\x00\x01' 1"),
     lines(r"F»22»FunctionCall» NNNN 1 1 1 2 '\x00\x01' 1")),
    (F, FunctionCall(1598, [], [None], 0),
     lines("F»18»FunctionCall» 1598 0 1 -1 0"), lines("F»18»FunctionCall» NNNN 0 1 -1 0")),
    (B, FunctionCallResponse(b"\x00\x01"),
     lines(r"B»10»FunctionCallResponse» 2 '\x00\x01'"), None),
    (B, FunctionCallResponse(None), lines("B»8»FunctionCallResponse» -1"), None),
    # -- encryption answers and the end ---------------------------------
    (B, SSLResponse.NOT_SUPPORTED, lines("B»1»SSLResponse» N"), None),
    (B, SSLResponse.SUPPORTED, lines("B»1»SSLResponse» S"), None),
    (B, GSSEncResponse.NOT_SUPPORTED, lines("B»1»GSSENCResponse» N"), None),
    (B, GSSEncResponse.SUPPORTED, lines("B»1»GSSENCResponse» G"), None),
    (F, Terminate(), lines("F»4»Terminate"), None),
    # -- what libpq does not know (the type byte is printed sign-extended)
    (B, UnknownMessage(b"\x01", b"ab"),
     lines("B»6»Unknown message: 01", "mismatched message length: consumed 4, expected 6"),
     None),
    (B, UnknownMessage(b"x", b"abcd"),
     lines("B»8»Unknown message: 78", "mismatched message length: consumed 4, expected 8"),
     None),
    (B, UnknownMessage(b"\xf0", b""), lines("B»4»Unknown message: fffffff0"), None),
    (F, UnknownMessage(b"p", b"ab"),
     lines("F»6»UnknownAuthenticationResponse",
           "mismatched message length: consumed 4, expected 6"), None),
    # fe-trace.c: a startup packet too short to hold a request code.
    (F, UnknownMessage(b"", b""), lines("F»4»Unknown message"), None),
]  # fmt: skip

IDS = [f"{type(m).__name__}-{i}" for i, (_, m, _, _) in enumerate(CASES)]


@pytest.mark.parametrize(("direction", "msg", "plain", "regress"), CASES, ids=IDS)
def test_format(
    direction: MessageDirection, msg: PGMessage, plain: str, regress: str | None
) -> None:
    assert fmt(direction, msg) == plain
    assert fmt(direction, msg, regress=True) == (regress or plain)


def test_every_message_class_has_a_case() -> None:
    bases = {"PGMessage", "FrontendMessage", "BackendMessage", "CommonMessage", "SpecialMessage",
             "AuthenticationMessage", "DirectSSLHandshake"}  # fmt: skip
    classes = {
        name
        for name in messages_module.__all__
        if isinstance(cls := getattr(messages_module, name), type)
        and issubclass(cls, PGMessage | SSLResponse | GSSEncResponse)
        and name not in bases
    }
    covered = {type(msg).__name__ for _, msg, _, _ in CASES}
    assert classes - covered == set()
    assert len(classes) >= 55


@pytest.mark.parametrize(("direction", "msg", "plain", "regress"), CASES, ids=IDS)
def test_read_back(
    direction: MessageDirection, msg: PGMessage, plain: str, regress: str | None
) -> None:
    """Each line reads back to the message, and writes back to itself."""
    (entry,) = read_trace(plain)
    assert entry.direction is direction
    assert entry.timestamp is None
    if isinstance(msg, AuthenticationMD5Password):
        assert entry.unknown == {"salt"}  # libpq never prints it
        assert entry.message == AuthenticationMD5Password()
    elif isinstance(msg, UnknownMessage):
        assert entry.unknown == {"payload"}
        assert entry.message == UnknownMessage(msg.type_code, bytes(len(msg.payload)))
    else:
        assert entry.unknown == set()
        assert entry.message == msg
    assert entry.size == len(msg.to_wire())
    assert fmt(entry.direction, entry.message) == plain

    text = regress or plain
    (entry,) = read_trace(text, regress=True)
    out = Tracer(io.StringIO(), timestamps=False, regress=True, redact=False)
    assert out.format(entry.direction, entry.message, entry.size) == text
    if regress is None:
        assert entry.message == msg or entry.unknown
    else:
        assert entry.unknown or entry.size is None, "regress mode hid something"


def test_regress_hides_what_fe_trace_says() -> None:
    # Regress lengths: NN only for the server's ErrorResponse / NoticeResponse.
    entries = read_trace(
        lines(
            r'B»NN»ErrorResponse» S "ERROR" F "SSSS" L "SSSS" R "SSSS" \x00',
            "B»12»BackendKeyData» NNNN 'BBBB'",
            'B»33»RowDescription» 1 "?column?" NNNN 0 NNNN 4 -1 0',
        )
    )
    assert [e.size for e in entries] == [None, 13, 34]
    assert [e.unknown for e in entries] == [
        {"fields.F", "fields.L", "fields.R"},
        {"process_id", "secret_key"},
        {"fields.table_oid", "fields.type_oid"},
    ]
    assert entries[1].message == BackendKeyData(0, bytes(4))


# -- timestamps ---------------------------------------------------------------


def test_timestamp_column() -> None:
    # A line libpq 18 wrote (PQtrace without flags).
    libpq = "2026-12-02 01:42:10.959396\tF\t8\tSSLRequest\t 1234 5679\n"
    when = datetime(2026, 12, 2, 1, 42, 10, 959396)
    assert Tracer(io.StringIO()).format(F, SSLRequest(), timestamp=when) == libpq
    (entry,) = read_trace(libpq)
    assert entry.timestamp == when
    early = datetime(2026, 1, 2, 3, 4, 5, 6)
    assert Tracer(io.StringIO()).format(B, NoData(), timestamp=early) == (
        "2026-01-02 03:04:05.000006\tB\t4\tNoData\n"
    )


def test_timestamp_defaults_to_local_now() -> None:
    stream = io.StringIO()
    before = datetime.now()
    Tracer(stream).trace(F, Sync())
    after = datetime.now()
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\tF\t4\tSync\n", stream.getvalue())
    assert m is not None
    stamp = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f")
    assert before - timedelta(microseconds=1) <= stamp <= after


def test_timestamps_across_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seconds are formatted once per second: the next second's lines
    (or the last second's, after the clock went back) must not keep the
    last second's text."""
    stream = io.StringIO()
    tracer = Tracer(stream)
    base = 1_700_000_000_000_000_000  # a whole second, in nanoseconds
    # The last one: the clock set back by a second.
    times = (base + 999_999_000, base + 1_000_001_000, base + 1_500_000_999, base + 400_000)
    for now in times:
        monkeypatch.setattr(time, "time_ns", lambda now=now: now)
        tracer.trace(F, Sync())
    expected = [
        datetime.fromtimestamp(t // 1000 / 1e6).strftime("%Y-%m-%d %H:%M:%S.%f") for t in times
    ]
    got = [line.split("\t")[0] for line in stream.getvalue().splitlines()]
    assert got == expected


# -- redaction ----------------------------------------------------------------

SECRETS: list[tuple[MessageDirection, PGMessage, str, str]] = [
    (F, PasswordMessage("hunter2"),
     "hunter2", lines(f"F»12»PasswordMessage» {REDACTED}")),
    (F, SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=nonce"),
     "r=nonce", lines(f'F»35»SASLInitialResponse» "SCRAM-SHA-256" 13 {REDACTED}')),
    (F, SASLResponse(b"c=biws,r=nonce,p=proof"),
     "p=proof", lines(f"F»26»SASLResponse» {REDACTED}")),
    (F, GSSResponse(b"token"), "token", lines(f"F»9»GSSResponse» {REDACTED}")),
]  # fmt: skip


@pytest.mark.parametrize(("direction", "msg", "secret", "redacted"), SECRETS)
def test_redaction_by_default(
    direction: MessageDirection, msg: PGMessage, secret: str, redacted: str
) -> None:
    stream = io.StringIO()
    Tracer(stream, timestamps=False).trace(direction, msg)
    assert stream.getvalue() == redacted
    assert secret not in stream.getvalue()
    # Shown on request, as libpq shows it.
    assert secret in fmt(direction, msg, redact=False)
    (entry,) = read_trace(redacted)
    assert entry.size == len(msg.to_wire())
    assert entry.unknown == ({"password"} if isinstance(msg, PasswordMessage) else {"data"})
    assert fmt(entry.direction, entry.message, redact=True) == redacted


def test_redaction_in_regress_mode_differs_from_libpq_only_for_passwords() -> None:
    sasl = SASLResponse(b"c=biws,r=nonce,p=proof")
    assert fmt(F, sasl, regress=True, redact=True) == lines("F»26»SASLResponse» 'BBBB'")
    assert fmt(F, PasswordMessage("pw"), regress=True, redact=True) == lines(
        f"F»7»PasswordMessage» {REDACTED}"
    )
    # libpq prints passwords even in regress mode.
    assert fmt(F, PasswordMessage("pw"), regress=True) == lines('F»7»PasswordMessage» "pw"')


def test_password_that_is_not_utf8() -> None:
    msg = PasswordMessage(b"\xffpw\xfe")
    text = fmt(F, msg)
    # Strings are printed as raw bytes; in Python text they are surrogates.
    assert text.encode("utf-8", "surrogateescape") == b'F\t9\tPasswordMessage\t "\xffpw\xfe"\n'
    (entry,) = read_trace(text)
    assert entry.message == msg


# -- options and odd inputs ---------------------------------------------------


def test_direct_ssl_is_not_traced() -> None:
    assert fmt(F, DirectSSLHandshake(b"\x16\x03\x01\x00\x05hello")) == ""


def test_omit_untraced() -> None:
    tracer = Tracer(io.StringIO(), timestamps=False, omit_untraced=True)
    for msg in (
        AuthenticationOk(),
        AuthenticationKerberosV5(),
        AuthenticationSCMCredential(),
        NegotiateProtocolVersion(0, ["_pq_.x"]),
        UnknownMessage(b"R", b"\0\0\0\x63"),
    ):
        assert tracer.format(B, msg) == ""
    assert tracer.format(B, NegotiateProtocolVersion(0, [])) == lines(
        "B»12»NegotiateProtocolVersion» 196608 0"
    )
    assert tracer.format(B, AuthenticationSASLFinal(b"v=x")) != ""


def test_size_given_is_the_length_column() -> None:
    # The length column shows what the caller saw on the wire; a body that
    # does not fill it is reported as libpq reports a wrong length word.
    tracer = Tracer(io.StringIO(), timestamps=False)
    assert tracer.format(F, Query("x"), 7) == lines('F»6»Query» "x"')
    assert tracer.format(F, Query("x"), 10) == lines(
        'F»9»Query» "x"', "mismatched message length: consumed 6, expected 9"
    )
    assert tracer.format(F, SSLRequest(), 8) == lines("F»8»SSLRequest» 1234 5679")


def test_trace_writes_to_the_stream() -> None:
    stream = io.StringIO()
    tracer = Tracer(stream, timestamps=False)
    tracer.trace(F, Query("select 1"))
    tracer.trace(B, AuthenticationOk())
    tracer.trace(F, DirectSSLHandshake(b"\x16"))
    assert stream.getvalue() == lines('F»13»Query» "select 1"', "B»8»AuthenticationOk")


def test_large_value() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB, every byte value
    msg = DataRow([value])
    text = fmt(B, msg)
    printable = "".join(chr(b) for b in range(0x20, 0x7F))
    escaped = "".join(f"\\x{b:02x}" for b in range(0x20)) + printable
    escaped += "".join(f"\\x{b:02x}" for b in range(0x7F, 0x100))
    assert text == lines(f"B»{4 + 2 + 4 + len(value)}»DataRow» 1 {len(value)} '{escaped * 4096}'")
    (entry,) = read_trace(text)
    assert entry.message == msg


# -- reading: what the text leaves open ---------------------------------------


def roundtrip(text: str, **kw: bool) -> list[TraceEntry]:
    entries = read_trace(text)
    stream = io.StringIO()
    tracer = Tracer(stream, timestamps=entries[0].timestamp is not None, redact=False, **kw)
    for e in entries:
        tracer.trace(e.direction, e.message, e.size, timestamp=e.timestamp)
    assert stream.getvalue() == text
    return entries


def test_strings_spanning_lines() -> None:
    query = Query('select 1\nF\t13\tQuery\t "x"\n, 2')
    text = fmt(F, query) + fmt(B, CommandComplete("SELECT 1")) + fmt(F, Sync())
    assert text.count("\n") == 5
    entries = roundtrip(text)
    assert [e.message for e in entries] == [query, CommandComplete("SELECT 1"), Sync()]


def test_quote_space_quote_inside_strings() -> None:
    # Two readings print the same: the name 'a" "b' or the value 'b" "c'.
    text = lines('B»12»ParameterStatus» "a" "b" "c"')
    (entry,) = roundtrip(text)
    assert entry.message in (ParameterStatus('a" "b', "c"), ParameterStatus("a", 'b" "c'))
    # The length column settles a string that is alone in its message.
    one = Query('x" "y')
    (entry,) = roundtrip(fmt(F, one) + fmt(F, Sync()))[:1]
    assert entry.message == one


def test_escape_or_four_characters() -> None:
    # bytea in text format is "\x00ff": six characters, printed unescaped.
    row = DataRow([b"\\x00ff", b"\x00ff"])
    text = fmt(B, row)
    assert text == lines(r"B»23»DataRow» 2 6 '\x00ff' 3 '\x00ff'")
    (entry,) = roundtrip(text)
    assert entry.message == row
    # Here the length says one of the two "\x0a" is an escape, not which.
    a, b = DataRow([b"\\x0a\n"]), DataRow([b"\n\\x0a"])
    assert fmt(B, a) == fmt(B, b) == lines(r"B»15»DataRow» 1 5 '\x0a\x0a'")
    (entry,) = roundtrip(fmt(B, a))
    assert entry.message in (a, b)


def test_bbbb_is_data_or_mask() -> None:
    data = CopyData(b"BBBB")
    (entry,) = read_trace(fmt(B, data))
    assert entry.message == data
    assert not entry.unknown
    (entry,) = read_trace(fmt(B, data), regress=True)
    assert entry.message == CopyData(bytes(4))
    assert entry.unknown == {"data"}
    # Once regress mode has shown itself, a 4-byte 'BBBB' is taken as its mask.
    text = lines("B»12»BackendKeyData» NNNN 'BBBB'", "B»8»CopyData» 'BBBB'")
    assert read_trace(text)[1].unknown == {"data"}


def test_sizes_of_entries() -> None:
    text = lines(
        'F»27»StartupMessage» 3 0 "user" "u" "database" "d"',
        "B»1»SSLResponse» N",
        'F»13»Query» "select 1"',
    )
    assert [e.size for e in read_trace(text)] == [27, 1, 14]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("hello\n", 1),
        (lines("F»4»Sync", "B»4»NoSuchMessage"), 2),
        (lines('F»14»Query» "select 1"'), 1),  # length does not fit
        (lines("F»4»Sync", 'F»13»Query» "select 1'), 2),  # unterminated
        (lines("B»5»ReadyForQuery» X"), 1),  # not a transaction status
        (lines("F»4»Sync extra"), 1),
        ("mismatched message length: consumed 4, expected 6\n", 1),
    ],
)
def test_not_a_trace(text: str, line: int) -> None:
    with pytest.raises(TraceFormatError) as info:
        read_trace(text)
    assert info.value.line == line


def test_a_session_reads_back() -> None:
    # Lines libpq 18 wrote for a trust login and one query (PQtrace with
    # PQTRACE_SUPPRESS_TIMESTAMPS), against PostgreSQL 18.
    text = lines(
        "F»8»SSLRequest» 1234 5679",
        "B»1»SSLResponse» N",
        'F»43»StartupMessage» 3 0 "user" "trust_user" "database" "postgres"',
        'B»23»ParameterStatus» "in_hot_standby" "off"',
        'B»32»ParameterStatus» "search_path" ""$user", public"',
        r"B»12»BackendKeyData» 22329 '\x03A5\x04'",
        "B»5»ReadyForQuery» I",
        'F»38»Parse» "" "insert into t2 values ($1)" 1 21',
        r"""F»22»Bind» "" "" 1 1 1 2 '\x00\x01' 1 0""",
        'F»6»Describe» P ""',
        'F»9»Execute» "" 0',
        "F»4»Sync",
        "B»4»ParseComplete",
        "B»4»BindComplete",
        "B»4»NoData",
        'B»15»CommandComplete» "INSERT 0 1"',
        "B»5»ReadyForQuery» I",
        "F»4»Terminate",
    )
    entries = roundtrip(text)
    assert [e.direction for e in entries].count(F) == 8
    assert entries[7].message == Parse("", "insert into t2 values ($1)", [21])
    assert entries[8].message == Bind("", "", [1], [b"\x00\x01"], [0])
