"""Golden wire bytes for every message class, written from the protocol docs.

Every expected byte string below is spelled out by hand from the "Message
Formats" section of the PostgreSQL protocol chapter (the 3.2 edition, for
the variable-length cancel keys) -- never produced by pygwire itself.  The
helpers only pack the values listed next to them; none of them calls
pygwire.

Notation mirrors the documentation: ``i16``/``i32`` are Int16/Int32 in
network byte order, ``cstr`` is a String (NUL-terminated), ``frame`` is
``Byte1(ident) + Int32(length including itself) + body`` and ``packet`` is
a startup-phase packet (``Int32(length) + body``, no identifier).  Where
the documentation gives a fixed length, e.g. ``Int32(8)``, it is written
out literally rather than computed.

One table drives both directions:

* encode: ``msg.to_wire() == wire``;
* decode: the payload alone through ``type(msg).decode``, and the whole
  wire through the right stream decoder in the right phase -- fed whole,
  one byte at a time, at seeded random split points, and followed by a
  second message in the same buffer.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pytest

import pygwire.messages as m
from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    FramingError,
    FrontendMessageDecoder,
    StartupRequestCode,
    TransactionStatus,
)
from pygwire.codec import MessageDecoder
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

# ---------------------------------------------------------------------------
# Hand encoders for the documented field types (no pygwire involved).


def i8(v: int) -> bytes:
    """Int8."""
    return struct.pack("!b", v)


def i16(v: int) -> bytes:
    """Int16, network byte order."""
    return struct.pack("!h", v)


def i32(v: int) -> bytes:
    """Int32, network byte order."""
    return struct.pack("!i", v)


def cstr(s: str) -> bytes:
    """String: UTF-8 text followed by a zero byte."""
    return s.encode("utf-8") + b"\x00"


def frame(ident: bytes, *fields: bytes) -> bytes:
    """Byte1(ident), Int32(length of contents including self), contents."""
    body = b"".join(fields)
    return ident + i32(4 + len(body)) + body


def packet(*fields: bytes) -> bytes:
    """Startup-phase packet: Int32(length including self), contents."""
    body = b"".join(fields)
    return i32(4 + len(body)) + body


# Request codes: "1234 in the most significant 16 bits, and 5678 / 5679 /
# 5680 in the least significant 16 bits".
CANCEL_REQUEST_CODE = i32(80877102)
SSL_REQUEST_CODE = i32(80877103)
GSSENC_REQUEST_CODE = i32(80877104)
assert i16(1234) + i16(5678) == CANCEL_REQUEST_CODE
assert i16(1234) + i16(5679) == SSL_REQUEST_CODE
assert i16(1234) + i16(5680) == GSSENC_REQUEST_CODE

# Protocol versions: major in the high 16 bits, minor in the low 16 bits.
V3_0 = b"\x00\x03\x00\x00"
V3_2 = b"\x00\x03\x00\x02"  # 196610, "0x00030002"
V3_9999 = b"\x00\x03\x27\x0f"  # 3.9999: "grease", a minor version no server implements

# 32-byte cancel key as a PostgreSQL 18 server sends it under protocol 3.2.
KEY32 = bytes(range(0xA0, 0xC0))
assert len(KEY32) == 32

# ---------------------------------------------------------------------------
# The table.

Framing = Literal["standard", "startup", "one_byte"]


@dataclass(frozen=True)
class Golden:
    id: str
    msg: PGMessage
    wire: bytes
    decoder: type[MessageDecoder]
    phase: ConnectionPhase
    framing: Framing = "standard"
    # Bytes behind the one-byte SSL/GSSENC replies and behind SSLRequest /
    # GSSENCRequest must be refused (CVE-2021-23222 / CVE-2021-23214).
    refuses_trailing: bool = False

    @property
    def payload(self) -> bytes:
        """The bytes after identifier and length word."""
        if self.framing == "standard":
            return self.wire[5:]
        if self.framing == "startup":
            return self.wire[4:]
        return self.wire


B = BackendMessageDecoder
F = FrontendMessageDecoder
P = ConnectionPhase


def server(id: str, msg: PGMessage, wire: bytes, phase: ConnectionPhase = P.READY) -> Golden:
    return Golden(id, msg, wire, B, phase)


def client(id: str, msg: PGMessage, wire: bytes, phase: ConnectionPhase = P.READY) -> Golden:
    return Golden(id, msg, wire, F, phase)


def startup(id: str, msg: PGMessage, wire: bytes, *, refuses_trailing: bool = False) -> Golden:
    return Golden(id, msg, wire, F, P.STARTUP, "startup", refuses_trailing)


def one_byte(id: str, msg: PGMessage, wire: bytes, phase: ConnectionPhase) -> Golden:
    return Golden(id, msg, wire, B, phase, "one_byte", refuses_trailing=True)


ERROR_FIELDS = {
    "S": "ERROR",
    "V": "ERROR",
    "C": "42P01",
    "M": 'relation "missing_table" does not exist',
    "P": "15",
    "F": "parse_relation.c",
    "L": "1449",
    "R": "parserOpenTable",
}

NOTICE_FIELDS = {
    "S": "NOTICE",
    "V": "NOTICE",
    "C": "42P07",
    "M": 'relation "users" already exists, skipping',
    "W": "PL/pgSQL function inline_code_block line 3 at RAISE",
    "F": "parse_utilcmd.c",
    "L": "207",
    "R": "transformCreateStmt",
}

SCRAM_CLIENT_FIRST = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"
SCRAM_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
SCRAM_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SCRAM_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
GSS_TOKEN = bytes.fromhex("6082025c06092a864886f71201020201006e82024b30820247a003020105")

CASES: list[Golden] = [
    # --- startup-phase packets (client, no identifier byte) ---------------
    startup(
        "StartupMessage-v3.0",
        StartupMessage(
            params={
                "user": "postgres",
                "database": "mydb",
                "application_name": "psql",
                "client_encoding": "UTF8",
            },
            protocol_version=StartupRequestCode.V3_0,
        ),
        packet(
            V3_0,
            cstr("user") + cstr("postgres"),
            cstr("database") + cstr("mydb"),
            cstr("application_name") + cstr("psql"),
            cstr("client_encoding") + cstr("UTF8"),
            b"\x00",
        ),
    ),
    startup(
        "StartupMessage-v3.2",
        StartupMessage(
            params={"user": "alice", "database": "shop"},
            protocol_version=0x00030002,
        ),
        packet(V3_2, cstr("user"), cstr("alice"), cstr("database"), cstr("shop"), b"\x00"),
    ),
    startup(
        "StartupMessage-v3.9999-grease",
        StartupMessage(
            params={"user": "alice", "_pq_.test_extension": "on", "database": "shop"},
            protocol_version=0x0003270F,
        ),
        packet(
            V3_9999,
            cstr("user") + cstr("alice"),
            cstr("_pq_.test_extension") + cstr("on"),
            cstr("database") + cstr("shop"),
            b"\x00",
        ),
    ),
    startup(
        "SSLRequest",
        SSLRequest(),
        b"\x00\x00\x00\x08" + SSL_REQUEST_CODE,  # Int32(8), Int32(80877103)
        refuses_trailing=True,
    ),
    startup(
        "GSSEncRequest",
        GSSEncRequest(),
        b"\x00\x00\x00\x08" + GSSENC_REQUEST_CODE,  # Int32(8), Int32(80877104)
        refuses_trailing=True,
    ),
    startup(
        "CancelRequest-v3.0-4-byte-key",
        CancelRequest(process_id=4242, secret_key=b"\x1a\x2b\x3c\x4d"),
        # Int32(16), Int32(80877102), Int32 pid, Byte4 key
        i32(16) + CANCEL_REQUEST_CODE + i32(4242) + b"\x1a\x2b\x3c\x4d",
    ),
    startup(
        "CancelRequest-v3.2-32-byte-key",
        CancelRequest(process_id=4242, secret_key=KEY32),
        # The key "extends to the end of the message, indicated by the
        # length field": 4 + 4 + 4 + 32.
        i32(44) + CANCEL_REQUEST_CODE + i32(4242) + KEY32,
    ),
    # --- one-byte negotiation answers (server) --------------------------
    one_byte("SSLResponse-S", SSLResponse.SUPPORTED, b"S", P.SSL_NEGOTIATION),
    one_byte("SSLResponse-N", SSLResponse.NOT_SUPPORTED, b"N", P.SSL_NEGOTIATION),
    one_byte("GSSEncResponse-G", GSSEncResponse.SUPPORTED, b"G", P.GSS_NEGOTIATION),
    one_byte("GSSEncResponse-N", GSSEncResponse.NOT_SUPPORTED, b"N", P.GSS_NEGOTIATION),
    # --- authentication requests (server, 'R') --------------------------
    server("AuthenticationOk-0", AuthenticationOk(), b"R" + i32(8) + i32(0), P.AUTHENTICATING),
    server(
        "AuthenticationKerberosV5-2",
        AuthenticationKerberosV5(),
        b"R" + i32(8) + i32(2),
        P.AUTHENTICATING,
    ),
    server(
        "AuthenticationCleartextPassword-3",
        AuthenticationCleartextPassword(),
        b"R" + i32(8) + i32(3),
        P.AUTHENTICATING,
    ),
    server(
        "AuthenticationMD5Password-5",
        AuthenticationMD5Password(salt=b"\x9a\x1b\x7c\x03"),
        b"R" + i32(12) + i32(5) + b"\x9a\x1b\x7c\x03",
        P.AUTHENTICATING,
    ),
    server(
        # Documented up to PostgreSQL 15: Byte1('R'), Int32(8), Int32(6).
        "AuthenticationSCMCredential-6",
        AuthenticationSCMCredential(),
        b"R" + i32(8) + i32(6),
        P.AUTHENTICATING,
    ),
    server("AuthenticationGSS-7", AuthenticationGSS(), b"R" + i32(8) + i32(7), P.AUTHENTICATING),
    server(
        "AuthenticationGSSContinue-8",
        AuthenticationGSSContinue(data=GSS_TOKEN),
        frame(b"R", i32(8), GSS_TOKEN),
        P.AUTHENTICATING_GSS,
    ),
    server("AuthenticationSSPI-9", AuthenticationSSPI(), b"R" + i32(8) + i32(9), P.AUTHENTICATING),
    server(
        "AuthenticationSASL-10",
        AuthenticationSASL(mechanisms=["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
        frame(b"R", i32(10), cstr("SCRAM-SHA-256-PLUS"), cstr("SCRAM-SHA-256"), b"\x00"),
        P.AUTHENTICATING,
    ),
    server(
        "AuthenticationSASLContinue-11",
        AuthenticationSASLContinue(data=SCRAM_SERVER_FIRST),
        frame(b"R", i32(11), SCRAM_SERVER_FIRST),
        P.AUTHENTICATING_SASL_CONTINUE,
    ),
    server(
        "AuthenticationSASLFinal-12",
        AuthenticationSASLFinal(data=SCRAM_SERVER_FINAL),
        frame(b"R", i32(12), SCRAM_SERVER_FINAL),
        P.AUTHENTICATING_SASL_CONTINUE,
    ),
    # --- authentication responses (client, 'p') -------------------------
    client(
        "PasswordMessage-cleartext",
        PasswordMessage(password="hunter2"),
        b"p" + (4 + 8).to_bytes(4, "big") + b"hunter2\x00",
        P.AUTHENTICATING,
    ),
    client(
        "PasswordMessage-md5",
        PasswordMessage(password="md53175bce1d3201d16594cebf9d7eb3f9d"),
        frame(b"p", cstr("md53175bce1d3201d16594cebf9d7eb3f9d")),
        P.AUTHENTICATING,
    ),
    client(
        "GSSResponse",
        GSSResponse(data=GSS_TOKEN),
        frame(b"p", GSS_TOKEN),
        P.AUTHENTICATING_GSS,
    ),
    client(
        "SASLInitialResponse",
        SASLInitialResponse(mechanism="SCRAM-SHA-256", data=SCRAM_CLIENT_FIRST),
        frame(b"p", cstr("SCRAM-SHA-256"), i32(len(SCRAM_CLIENT_FIRST)), SCRAM_CLIENT_FIRST),
        P.AUTHENTICATING_SASL_INITIAL,
    ),
    client(
        # "Length of ... Initial Client Response that follows, or -1 if there
        # is no Initial Response."
        "SASLInitialResponse-no-initial-response",
        SASLInitialResponse(mechanism="OAUTHBEARER", data=None),
        frame(b"p", cstr("OAUTHBEARER"), i32(-1)),
        P.AUTHENTICATING_SASL_INITIAL,
    ),
    client(
        "SASLResponse",
        SASLResponse(data=SCRAM_CLIENT_FINAL),
        frame(b"p", SCRAM_CLIENT_FINAL),
        P.AUTHENTICATING_SASL_CONTINUE,
    ),
    # --- start-up status (server) ---------------------------------------
    server(
        "ParameterStatus",
        ParameterStatus(name="server_version", value="18.0"),
        frame(b"S", cstr("server_version"), cstr("18.0")),
        P.INITIALIZATION,
    ),
    server(
        "ParameterStatus-TimeZone",
        ParameterStatus(name="TimeZone", value="Europe/Berlin"),
        frame(b"S", cstr("TimeZone"), cstr("Europe/Berlin")),
        P.INITIALIZATION,
    ),
    server(
        "BackendKeyData-v3.0-4-byte-key",
        BackendKeyData(process_id=4242, secret_key=b"\x1a\x2b\x3c\x4d"),
        b"K" + i32(12) + i32(4242) + b"\x1a\x2b\x3c\x4d",
        P.INITIALIZATION,
    ),
    server(
        "BackendKeyData-v3.2-32-byte-key",
        BackendKeyData(process_id=4242, secret_key=KEY32),
        b"K" + i32(4 + 4 + 32) + i32(4242) + KEY32,
        P.INITIALIZATION,
    ),
    server(
        "NegotiateProtocolVersion",
        NegotiateProtocolVersion(
            newest_minor=0, unrecognized=["_pq_.test_extension", "_pq_.other_option"]
        ),
        # The docs call this Int32 the "newest minor version", but real
        # servers (PostgreSQL 15 and 18, see test_real_server.py) send the
        # whole version word (3 << 16) | minor.
        frame(
            b"v",
            i32(0x0003_0000),
            i32(2),
            cstr("_pq_.test_extension"),
            cstr("_pq_.other_option"),
        ),
        P.AUTHENTICATING,
    ),
    server(
        "NegotiateProtocolVersion-grease-answer",
        NegotiateProtocolVersion(newest_minor=2, unrecognized=["_pq_.test_extension"]),
        frame(b"v", i32(0x0003_0002), i32(1), cstr("_pq_.test_extension")),
        P.AUTHENTICATING,
    ),
    server(
        "ReadyForQuery-idle",
        ReadyForQuery(status=TransactionStatus.IDLE),
        b"Z" + i32(5) + b"I",
    ),
    server(
        "ReadyForQuery-in-transaction",
        ReadyForQuery(status=TransactionStatus.IN_TRANSACTION),
        b"Z" + i32(5) + b"T",
    ),
    server(
        "ReadyForQuery-failed-transaction",
        ReadyForQuery(status=TransactionStatus.ERROR_TRANSACTION),
        b"Z" + i32(5) + b"E",
    ),
    # --- simple query ---------------------------------------------------
    client(
        "Query", Query(query_string="SELECT 1"), b"Q" + (4 + 9).to_bytes(4, "big") + b"SELECT 1\x00"
    ),
    client(
        "Query-unicode",
        Query(query_string="SELECT 'gr\u00fc\u00dfe' AS w"),
        frame(b"Q", "SELECT 'gr\u00fc\u00dfe' AS w".encode() + b"\x00"),
    ),
    server(
        "RowDescription-2-fields",
        RowDescription(
            fields=[
                FieldDescription(
                    name="id",
                    table_oid=16385,
                    column_attr=1,
                    type_oid=23,
                    type_size=4,
                    type_modifier=-1,
                    format_code=0,
                ),
                FieldDescription(
                    name="name",
                    table_oid=16385,
                    column_attr=2,
                    type_oid=1043,
                    type_size=-1,
                    type_modifier=68,
                    format_code=1,
                ),
            ]
        ),
        frame(
            b"T",
            i16(2),
            # name, table OID, attnum, type OID (int4), typlen, typmod, format
            cstr("id") + i32(16385) + i16(1) + i32(23) + i16(4) + i32(-1) + i16(0),
            # varchar(64): typmod 64 + 4; binary format
            cstr("name") + i32(16385) + i16(2) + i32(1043) + i16(-1) + i32(68) + i16(1),
        ),
        P.SIMPLE_QUERY,
    ),
    server(
        "RowDescription-no-fields",
        RowDescription(fields=[]),
        frame(b"T", i16(0)),
        P.SIMPLE_QUERY,
    ),
    server(
        "DataRow-null-and-empty",
        DataRow(columns=[b"42", None, b"", b"Alice"]),
        frame(b"D", i16(4), i32(2), b"42", i32(-1), i32(0), i32(5), b"Alice"),
        P.SIMPLE_QUERY,
    ),
    server(
        "CommandComplete-SELECT",
        CommandComplete(tag="SELECT 1"),
        frame(b"C", cstr("SELECT 1")),
        P.SIMPLE_QUERY,
    ),
    server(
        "CommandComplete-INSERT",
        CommandComplete(tag="INSERT 0 3"),
        frame(b"C", cstr("INSERT 0 3")),
        P.SIMPLE_QUERY,
    ),
    server("EmptyQueryResponse", EmptyQueryResponse(), b"I" + i32(4), P.SIMPLE_QUERY),
    # --- extended query: client -----------------------------------------
    client(
        "Parse-with-param-types",
        Parse(
            statement="get_user",
            query="SELECT * FROM users WHERE id = $1 AND name = $2",
            param_types=[23, 25],
        ),
        frame(
            b"P",
            cstr("get_user"),
            cstr("SELECT * FROM users WHERE id = $1 AND name = $2"),
            i16(2) + i32(23) + i32(25),
        ),
    ),
    client(
        "Parse-unnamed-untyped",
        Parse(statement="", query="SELECT now()", param_types=[]),
        frame(b"P", cstr(""), cstr("SELECT now()"), i16(0)),
    ),
    client(
        "Bind-mixed-formats-and-NULL",
        Bind(
            portal="p1",
            statement="get_user",
            param_formats=[0, 1, 0],
            param_values=[b"hello", b"\x00\x00\x00\x2a", None],
            result_formats=[1],
        ),
        frame(
            b"B",
            cstr("p1"),
            cstr("get_user"),
            i16(3) + i16(0) + i16(1) + i16(0),  # C = 3 format codes
            i16(3),  # 3 values: text, binary int4 42, NULL
            i32(5) + b"hello",
            i32(4) + b"\x00\x00\x00\x2a",
            i32(-1),
            i16(1) + i16(1),  # R = 1 result format code: binary
        ),
    ),
    client(
        "Bind-unnamed-no-params",
        Bind(portal="", statement="", param_formats=[], param_values=[], result_formats=[]),
        frame(b"B", cstr(""), cstr(""), i16(0), i16(0), i16(0)),
    ),
    client(
        "Describe-S",
        Describe(kind="S", name="get_user"),
        frame(b"D", b"S", cstr("get_user")),
        P.EXTENDED_QUERY,
    ),
    client("Describe-P", Describe(kind="P", name=""), b"D" + i32(6) + b"P\x00", P.EXTENDED_QUERY),
    client(
        "Close-S",
        Close(kind="S", name="get_user"),
        frame(b"C", b"S", cstr("get_user")),
        P.EXTENDED_QUERY,
    ),
    client("Close-P", Close(kind="P", name="p1"), frame(b"C", b"P", cstr("p1")), P.EXTENDED_QUERY),
    client(
        "Execute-all-rows",
        Execute(portal="", max_rows=0),
        b"E" + i32(9) + b"\x00" + i32(0),
        P.EXTENDED_QUERY,
    ),
    client(
        "Execute-row-limit",
        Execute(portal="p1", max_rows=100),
        frame(b"E", cstr("p1"), i32(100)),
        P.EXTENDED_QUERY,
    ),
    client("Sync", Sync(), b"S" + i32(4), P.EXTENDED_QUERY),
    client("Flush", Flush(), b"H" + i32(4), P.EXTENDED_QUERY),
    # --- extended query: server -----------------------------------------
    server("ParseComplete", ParseComplete(), b"1" + i32(4), P.EXTENDED_QUERY),
    server("BindComplete", BindComplete(), b"2" + i32(4), P.EXTENDED_QUERY),
    server("CloseComplete", CloseComplete(), b"3" + i32(4), P.EXTENDED_QUERY),
    server("NoData", NoData(), b"n" + i32(4), P.EXTENDED_QUERY),
    server("PortalSuspended", PortalSuspended(), b"s" + i32(4), P.EXTENDED_QUERY),
    server(
        "ParameterDescription",
        ParameterDescription(type_oids=[23, 25, 1043]),
        frame(b"t", i16(3), i32(23), i32(25), i32(1043)),
        P.EXTENDED_QUERY,
    ),
    server(
        "ParameterDescription-none",
        ParameterDescription(type_oids=[]),
        frame(b"t", i16(0)),
        P.EXTENDED_QUERY,
    ),
    # --- COPY -----------------------------------------------------------
    server(
        "CopyInResponse-text",
        CopyInResponse(overall_format=0, col_formats=[0, 0, 0]),
        frame(b"G", i8(0), i16(3), i16(0), i16(0), i16(0)),
        P.SIMPLE_QUERY,
    ),
    server(
        "CopyOutResponse-binary",
        CopyOutResponse(overall_format=1, col_formats=[1, 1]),
        frame(b"H", i8(1), i16(2), i16(1), i16(1)),
        P.SIMPLE_QUERY,
    ),
    server(
        "CopyBothResponse",
        CopyBothResponse(overall_format=0, col_formats=[]),
        frame(b"W", i8(0), i16(0)),
        P.SIMPLE_QUERY,
    ),
    client(
        "CopyData-from-client",
        CopyData(data=b"1\tAlice\n2\tBob\n"),
        frame(b"d", b"1\tAlice\n2\tBob\n"),
        P.COPY_IN,
    ),
    server(
        "CopyData-from-server",
        CopyData(data=b"3\tCarol\n"),
        frame(b"d", b"3\tCarol\n"),
        P.COPY_OUT,
    ),
    server("CopyData-empty-from-server", CopyData(data=b""), b"d" + i32(4), P.COPY_OUT),
    client("CopyDone-from-client", CopyDone(), b"c" + i32(4), P.COPY_IN),
    server("CopyDone-from-server", CopyDone(), b"c" + i32(4), P.COPY_OUT),
    client(
        "CopyFail",
        CopyFail(error_message="COPY aborted by user"),
        frame(b"f", cstr("COPY aborted by user")),
        P.COPY_IN,
    ),
    # --- errors and notices ---------------------------------------------
    server(
        "ErrorResponse",
        ErrorResponse(fields=dict(ERROR_FIELDS)),
        frame(b"E", *(code.encode() + cstr(text) for code, text in ERROR_FIELDS.items()), b"\x00"),
        P.SIMPLE_QUERY,
    ),
    server(
        "ErrorResponse-FATAL-during-startup",
        ErrorResponse(
            fields={
                "S": "FATAL",
                "V": "FATAL",
                "C": "28P01",
                "M": 'password authentication failed for user "alice"',
            }
        ),
        frame(
            b"E",
            b"S" + cstr("FATAL"),
            b"V" + cstr("FATAL"),
            b"C" + cstr("28P01"),
            b"M" + cstr('password authentication failed for user "alice"'),
            b"\x00",
        ),
        P.AUTHENTICATING,
    ),
    server(
        "NoticeResponse",
        NoticeResponse(fields=dict(NOTICE_FIELDS)),
        frame(b"N", *(code.encode() + cstr(text) for code, text in NOTICE_FIELDS.items()), b"\x00"),
        P.SIMPLE_QUERY,
    ),
    # --- asynchronous ---------------------------------------------------
    server(
        "NotificationResponse",
        NotificationResponse(process_id=4242, channel="jobs", payload="job 17 done"),
        frame(b"A", i32(4242), cstr("jobs"), cstr("job 17 done")),
    ),
    server(
        "NotificationResponse-empty-payload",
        NotificationResponse(process_id=77, channel="wakeup", payload=""),
        frame(b"A", i32(77), cstr("wakeup"), cstr("")),
    ),
    # --- function call --------------------------------------------------
    client(
        "FunctionCall-with-NULL-argument",
        FunctionCall(
            function_oid=952,
            arg_formats=[1],
            arguments=[b"\x00\x00\x60\x01", None],
            result_format=1,
        ),
        frame(
            b"F",
            i32(952),
            i16(1) + i16(1),  # C = 1 argument format code: binary
            i16(2),  # 2 arguments
            i32(4) + b"\x00\x00\x60\x01",
            i32(-1),  # NULL
            i16(1),  # result format: binary
        ),
        P.READY,
    ),
    server(
        "FunctionCallResponse-value",
        FunctionCallResponse(result=b"\x00\x00\x00\x00"),
        frame(b"V", i32(4), b"\x00\x00\x00\x00"),
        P.FUNCTION_CALL,
    ),
    server(
        "FunctionCallResponse-NULL",
        FunctionCallResponse(result=None),
        b"V" + i32(8) + i32(-1),
        P.FUNCTION_CALL,
    ),
    server(
        "FunctionCallResponse-empty",
        FunctionCallResponse(result=b""),
        b"V" + i32(8) + i32(0),
        P.FUNCTION_CALL,
    ),
    # --- termination ----------------------------------------------------
    client("Terminate", Terminate(), b"X" + i32(4)),
]

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case ids"

DECODE_CASES = CASES
SPLITTABLE = [c for c in CASES if len(c.wire) > 1]
TRAILING_OK = [c for c in CASES if not c.refuses_trailing]
TRAILING_REFUSED = [c for c in CASES if c.refuses_trailing]

# The second message used to check that nothing is lost or merged: a
# ReadyForQuery behind server messages, a Sync behind client messages, and
# a PasswordMessage behind a startup packet (read after switching phase, as
# a server would once the startup packet has been handled).
RFQ_WIRE = b"Z" + i32(5) + b"I"
SYNC_WIRE = b"S" + i32(4)
PASSWORD_WIRE = b"p" + i32(4 + 7) + b"secret\x00"


def trailer(case: Golden) -> tuple[bytes, PGMessage, ConnectionPhase | None]:
    if case.framing == "startup":
        return PASSWORD_WIRE, PasswordMessage(password="secret"), P.AUTHENTICATING
    if case.decoder is B:
        return RFQ_WIRE, ReadyForQuery(status=TransactionStatus.IDLE), None
    return SYNC_WIRE, Sync(), None


def new_decoder(case: Golden) -> MessageDecoder:
    dec = case.decoder()
    dec.phase = case.phase
    return dec


def feed_chunks(dec: MessageDecoder, chunks: Iterable[bytes]) -> list[PGMessage]:
    """Feed chunks one by one, draining after each; return what came out."""
    out: list[PGMessage] = []
    for chunk in chunks:
        dec.feed(chunk)
        out.extend(dec.read_all())
    return out


def random_splits(wire: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(wire)), k=min(len(wire) - 1, rng.randint(1, 4))))
    bounds = [0, *cuts, len(wire)]
    return [wire[a:b] for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------------
# Coverage: every exported message class has at least one golden case.

BASES: set[type] = {
    m.PGMessage,
    m.FrontendMessage,
    m.BackendMessage,
    m.CommonMessage,
    m.SpecialMessage,
    m.AuthenticationMessage,
}


def test_table_covers_every_exported_message_class() -> None:
    exported = {
        obj
        for name in m.__all__
        if isinstance(obj := getattr(m, name), type) and issubclass(obj, PGMessage)
    } - BASES
    covered = {type(c.msg) for c in CASES} | {DirectSSLHandshake}
    assert exported - covered == set()
    assert covered - exported == set()


def test_copy_messages_cover_both_directions() -> None:
    for cls in (CopyData, CopyDone):
        decoders = {c.decoder for c in CASES if type(c.msg) is cls}
        assert decoders == {B, F}, cls


# ---------------------------------------------------------------------------
# Encoding.


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_wire(case: Golden) -> None:
    assert case.msg.to_wire() == case.wire


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_encode_into_appends(case: Golden) -> None:
    buf = bytearray(b"prefix")
    case.msg.encode_into(buf)
    assert bytes(buf) == b"prefix" + case.wire


def test_encode_messages_concatenates() -> None:
    msgs = [c.msg for c in CASES if c.decoder is F and c.framing == "standard"]
    assert m.encode_messages(msgs) == b"".join(
        c.wire for c in CASES if c.decoder is F and c.framing == "standard"
    )


# ---------------------------------------------------------------------------
# Decoding the payload alone.


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_decode_payload(case: Golden) -> None:
    cls = type(case.msg)
    decoded = cls.decode(case.payload)
    assert decoded == case.msg
    assert type(decoded) is cls
    # memoryview input works the same (the contract's example uses one).
    assert cls.decode(memoryview(case.payload)) == case.msg


# ---------------------------------------------------------------------------
# Decoding the stream.


@pytest.mark.parametrize("case", DECODE_CASES, ids=[c.id for c in DECODE_CASES])
def test_stream_whole(case: Golden) -> None:
    dec = new_decoder(case)
    dec.feed(case.wire)
    out = dec.read_all()
    assert out == [case.msg]
    assert type(out[0]) is type(case.msg)
    assert dec.buffered == 0
    assert dec.read() is None


@pytest.mark.parametrize("case", DECODE_CASES, ids=[c.id for c in DECODE_CASES])
def test_stream_byte_at_a_time(case: Golden) -> None:
    dec = new_decoder(case)
    *head, last = [case.wire[i : i + 1] for i in range(len(case.wire))]
    for b in head:
        dec.feed(b)
        assert dec.read() is None, "message produced before its last byte arrived"
    dec.feed(last)
    assert dec.read_all() == [case.msg]
    assert dec.buffered == 0


@pytest.mark.parametrize("case", SPLITTABLE, ids=[c.id for c in SPLITTABLE])
def test_stream_random_splits(case: Golden) -> None:
    rng = random.Random(f"golden:{case.id}")
    for _ in range(8):
        chunks = random_splits(case.wire, rng)
        assert b"".join(chunks) == case.wire
        dec = new_decoder(case)
        assert feed_chunks(dec, chunks) == [case.msg], [len(c) for c in chunks]
        assert dec.buffered == 0


@pytest.mark.parametrize("case", TRAILING_OK, ids=[c.id for c in TRAILING_OK])
def test_stream_followed_by_second_message(case: Golden) -> None:
    tail_wire, tail_msg, tail_phase = trailer(case)
    data = case.wire + tail_wire

    # Both messages in one buffer.
    dec = new_decoder(case)
    dec.feed(data)
    assert dec.read() == case.msg
    assert dec.buffered == len(tail_wire)
    if tail_phase is not None:
        dec.phase = tail_phase
    assert dec.read_all() == [tail_msg]
    assert dec.buffered == 0

    # The same with the boundary straddled at random points.
    rng = random.Random(f"trailing:{case.id}")
    for _ in range(5):
        chunks = random_splits(data, rng)
        dec = new_decoder(case)
        out: list[PGMessage] = []
        for chunk in chunks:
            dec.feed(chunk)
            while (msg := dec.read()) is not None:
                out.append(msg)
                if len(out) == 1 and tail_phase is not None:
                    dec.phase = tail_phase
        assert out == [case.msg, tail_msg], [len(c) for c in chunks]
        assert dec.buffered == 0


@pytest.mark.parametrize("case", TRAILING_REFUSED, ids=[c.id for c in TRAILING_REFUSED])
def test_stream_refuses_bytes_behind_encryption_negotiation(case: Golden) -> None:
    # protocol-flow-ssl / protocol-flow-gssapi: "If additional bytes are
    # available to read at this point, it likely means that a
    # man-in-the-middle is attempting to perform a buffer-stuffing attack
    # ... treat it as a protocol violation"; the server likewise expects
    # the client to wait for the one-byte answer.
    dec = new_decoder(case)
    follow = RFQ_WIRE if case.decoder is B else SYNC_WIRE
    dec.feed(case.wire + follow)
    with pytest.raises(FramingError):
        dec.read()


@pytest.mark.parametrize("case_id", ["SSLRequest", "GSSEncRequest"])
def test_a_request_stops_framing_until_the_owner_sets_the_phase(case_id: str) -> None:
    """After SSLRequest the client must wait for the answer: the decoder
    refuses bytes until whoever owns the phase (a connection's state model,
    or the caller) sets it again; the decoder does not set it itself."""
    (case,) = [c for c in CASES if c.id == case_id]
    dec = new_decoder(case)
    dec.feed(case.wire)
    assert dec.read_all() == [case.msg]
    assert dec.phase is P.STARTUP
    dec.phase = P.STARTUP  # the server answered: the phase is set again
    startup = m.StartupMessage(params={"user": "u"})
    dec.feed(startup.to_wire())
    assert dec.read_all() == [startup]


@pytest.mark.parametrize(
    "case_id", ["SSLResponse-S", "SSLResponse-N", "GSSEncResponse-G", "GSSEncResponse-N"]
)
def test_after_the_one_byte_answer_messages_are_framed_as_usual(case_id: str) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    dec = new_decoder(case)
    dec.feed(case.wire)
    assert dec.read_all() == [case.msg]
    phase = dec.phase
    dec.feed(m.AuthenticationOk().to_wire())  # e.g. once the TLS layer is up
    assert dec.read_all() == [m.AuthenticationOk()]
    assert dec.phase is phase


def test_whole_session_in_one_buffer() -> None:
    """Every standard-framed server case back to back, as one stream."""
    cases = [c for c in CASES if c.decoder is B and c.framing == "standard"]
    dec = BackendMessageDecoder()
    dec.phase = P.READY
    dec.feed(b"".join(c.wire for c in cases))
    assert dec.read_all() == [c.msg for c in cases]
    assert dec.buffered == 0

    cases = [c for c in CASES if c.decoder is F and c.framing == "standard"]
    by_phase_p = [c for c in cases if c.wire[:1] == b"p"]
    others = [c for c in cases if c.wire[:1] != b"p"]
    fdec = FrontendMessageDecoder()
    fdec.phase = P.READY
    fdec.feed(b"".join(c.wire for c in others))
    assert fdec.read_all() == [c.msg for c in others]
    # The 'p' family needs its phase set before each message.
    for c in by_phase_p:
        fdec.phase = c.phase
        fdec.feed(c.wire)
        assert fdec.read_all() == [c.msg]


# ---------------------------------------------------------------------------
# Direct SSL (PostgreSQL 17+): "The server will recognize connections which
# immediately begin SSL negotiation without any previous SSLRequest
# packets."  Not a protocol message: the decoder hands the TLS bytes over.

# A TLS 1.2 record header (handshake, version 3.1, length 8) and the start
# of a ClientHello: type 1, 24-bit length, client version 3.3.
TLS_CLIENT_HELLO = b"\x16\x03\x01\x00\x08" + b"\x01\x00\x00\x04\x03\x03\x00\x00"


def test_direct_ssl_handshake() -> None:
    msg = DirectSSLHandshake(data=TLS_CLIENT_HELLO)
    assert msg.to_wire() == TLS_CLIENT_HELLO
    assert DirectSSLHandshake.decode(TLS_CLIENT_HELLO) == msg

    dec = FrontendMessageDecoder()  # starts in STARTUP
    dec.feed(TLS_CLIENT_HELLO)
    assert dec.read_all() == [msg]
    assert dec.buffered == 0
    # The rest of the handshake is the TLS layer's: refused until the
    # owner sets the phase again (to frame the decrypted startup packet).
    dec.feed(b"\x16\x03\x03")
    with pytest.raises(FramingError):
        dec.read()


# ---------------------------------------------------------------------------
# A few field-level spot checks on decoded messages.


def test_error_fields_by_name() -> None:
    (case,) = [c for c in CASES if c.id == "ErrorResponse"]
    dec = new_decoder(case)
    dec.feed(case.wire)
    (err,) = dec.read_all()
    assert isinstance(err, ErrorResponse)
    assert (err.severity, err.code, err.message) == (
        "ERROR",
        "42P01",
        'relation "missing_table" does not exist',
    )
    assert err.position == "15"
    assert (err.file, err.line, err.routine) == ("parse_relation.c", "1449", "parserOpenTable")
    assert err.hint is None


def test_startup_protocol_versions() -> None:
    versions = {c.id: c.msg.protocol_version for c in CASES if isinstance(c.msg, StartupMessage)}
    assert versions == {
        "StartupMessage-v3.0": 196608,
        "StartupMessage-v3.2": 196610,
        "StartupMessage-v3.9999-grease": (3 << 16) | 9999,
    }


def test_negotiate_protocol_version_accepts_a_bare_minor() -> None:
    """A server that reads the documentation literally sends just the minor."""
    payload = i32(2) + i32(0)
    assert NegotiateProtocolVersion.decode(payload) == NegotiateProtocolVersion(newest_minor=2)
