"""Defects an independent audit found, each pinned by a test named for what it
protects.  They hold on both framing paths (the suite runs twice).

1. lengths are counted in bytes: caller data never becomes protocol fields;
2. memory: a pending message costs about its own size however it is fed,
   and decoding ahead is bounded;
3. small limits until the session is established, on both decoders;
4. the largest length word is PostgreSQL's 0x3FFFFFFE;
5. every wrong type is an EncodingError naming the field, and sizes are
   checked before a body is built;
6. StartupMessage carries only 3.x protocol versions;
7, 8. FATAL read from the untranslated severity, and the startup rules
   (tests/test_model_rules.py has the table: NegotiateProtocolVersion,
   cancel keys, encryption requests);
9. DecodingError offsets are relative to the payload;
10. SCRAM iteration counts have a ceiling;
11. minor: RowDescription's parser allocates for what the payload can hold,
    error field codes round-trip, feed() takes byte buffers only, repr()
    never raises.
"""

from __future__ import annotations

import array
import ctypes
import gc
import mmap
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    DecodingError,
    EncodingError,
    FramingError,
    FrontendMessageDecoder,
    ProtocolState,
    StateMachineError,
)
from pygwire import messages as m
from pygwire.auth import ClientAuthenticator
from pygwire.constants import MAX_MESSAGE_LENGTH

P = ConnectionPhase


def bad(value: object) -> Any:
    """Pass a value of the wrong type past the type checker on purpose."""
    return value


# -- 1. lengths in bytes --------------------------------------------------------------------

#: Buffers whose len() counts items of more than one byte.
WIDE_BUFFERS: list[Callable[[], object]] = [
    lambda: array.array("H", [0x4142, 0x4344]),
    lambda: array.array("i", [1, 2, 3]),
    lambda: array.array("d", [1.5]),
    lambda: memoryview(b"abcdefgh").cast("I"),
    lambda: memoryview(array.array("q", [7, 8])),
    lambda: (ctypes.c_uint16 * 3)(1, 2, 3),
]
#: Byte buffers of every kind Python has: accepted, with their bytes.
BYTE_BUFFERS: list[Callable[[], object]] = [
    lambda: b"abc",
    lambda: bytearray(b"abc"),
    lambda: memoryview(b"xabcx")[1:4],
    lambda: array.array("B", b"abc"),
    lambda: array.array("b", b"abc"),
    lambda: memoryview(b"abc").cast("c"),
    lambda: (ctypes.c_ubyte * 3)(97, 98, 99),
]


def _byte_fields(value: object) -> list[tuple[m.PGMessage, str]]:
    return [
        (m.Bind(param_values=[bad(value), b"legit"]), "param_values"),
        (m.FunctionCall(function_oid=1, arguments=[bad(value), b"legit"]), "arguments"),
        (m.DataRow(columns=[bad(value), b"legit"]), "columns"),
        (m.FunctionCallResponse(result=bad(value)), "result"),
        (m.SASLInitialResponse(mechanism="SCRAM-SHA-256", data=bad(value)), "data"),
        (m.CopyData(data=bad(value)), "data"),
        (m.SASLResponse(data=bad(value)), "data"),
    ]


@pytest.mark.parametrize("make", WIDE_BUFFERS)
def test_lengths_are_in_bytes_so_wide_buffers_cannot_forge_fields(
    make: Callable[[], object],
) -> None:
    """A buffer of wide items is refused, naming the field: writing len()
    as the length and copying every byte let one value swallow the next."""
    for msg, field in _byte_fields(make()):
        with pytest.raises(EncodingError) as info:
            msg.to_wire()
        assert info.value.field == field, msg


@pytest.mark.parametrize("make", BYTE_BUFFERS)
def test_every_kind_of_byte_buffer_encodes_its_bytes(make: Callable[[], object]) -> None:
    for msg, _ in _byte_fields(make()):
        wire = msg.to_wire()
        decoded = type(msg).decode(wire[5:])
        expected = type(msg).decode(type(msg)(**_with_bytes(msg)).to_wire()[5:])
        assert decoded == expected, msg


def _with_bytes(msg: m.PGMessage) -> dict[str, Any]:
    """The message's fields with every buffer turned into bytes."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (str, int)):
            return value
        if isinstance(value, list):
            return [plain(v) for v in value]
        return bytes(memoryview(value))

    if isinstance(msg, m.DataRow):
        return {"columns": plain(msg.columns)}
    return {name: plain(getattr(msg, name)) for name in msg.__dataclass_fields__}  # type: ignore[attr-defined]


# -- 2. memory -------------------------------------------------------------------------------


def _peak(run: Callable[[], None]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_message_fed_one_byte_at_a_time_costs_about_its_size() -> None:
    """A 2 MB Query fed as recv() may return it, a byte at a time: the
    pending bytes must not be kept as one object per chunk."""
    wire = m.Query(query_string="x" * 2_000_000).to_wire()
    decoder = FrontendMessageDecoder(P.READY)
    pieces = [wire[i : i + 1] for i in range(len(wire) - 1)]

    def feed() -> None:
        for piece in pieces:
            decoder.feed(piece)

    assert _peak(feed) <= 2.5 * len(wire)
    decoder.feed(wire[-1:])
    assert decoder.read() == m.Query(query_string="x" * 2_000_000)


def test_decoding_ahead_is_bounded() -> None:
    """50 MB of tiny messages in one chunk, then one message read: only a
    bounded batch is decoded ahead, not every message at once."""
    wire = m.Sync().to_wire() * 10_000_000  # 50 MB
    decoder = FrontendMessageDecoder(P.READY)
    decoder.feed(wire)

    def read_one() -> None:
        assert decoder.read() == m.Sync()

    assert _peak(read_one) < 5_000_000
    assert decoder.buffered == len(wire) - 5


# -- 3. small limits until the session is established -----------------------------------------


@pytest.mark.parametrize(
    "phase",
    [
        P.STARTUP,
        P.SSL_NEGOTIATION,
        P.AUTHENTICATING,
        P.AUTHENTICATING_SASL_CONTINUE,
        P.INITIALIZATION,
    ],
)
def test_before_the_session_a_client_refuses_a_huge_error(phase: ConnectionPhase) -> None:
    """A server not yet authenticated gets libpq's 30,000 bytes for an
    error or a notice, not a gigabyte."""
    decoder = BackendMessageDecoder(phase)
    decoder.phase = P.AUTHENTICATING if phase is P.STARTUP else phase
    header = b"E" + (40_000).to_bytes(4, "big")
    decoder.feed(header)
    with pytest.raises(FramingError, match="allowed is 4 to 30000"):
        decoder.read()
    session = BackendMessageDecoder(P.READY)
    session.feed(header)
    assert session.read() is None  # waits for the body: errors may be long in a session


@pytest.mark.parametrize("ident", [b"Q", b"P", b"B", b"d"])
def test_before_the_session_a_server_refuses_big_client_messages(ident: bytes) -> None:
    decoder = FrontendMessageDecoder(P.AUTHENTICATING)
    decoder.feed(ident + (20_000).to_bytes(4, "big"))
    with pytest.raises(FramingError, match="allowed is 4 to 10000"):
        decoder.read()


# -- 4. the largest length word ---------------------------------------------------------------


def test_the_largest_length_word_is_0x3FFFFFFE() -> None:
    assert MAX_MESSAGE_LENGTH == 0x3FFFFFFE
    for decoder in (BackendMessageDecoder(P.READY), FrontendMessageDecoder(P.READY)):
        decoder.feed(b"d\x3f\xff\xff\xff")
        with pytest.raises(FramingError):
            decoder.read()
    waiting = FrontendMessageDecoder(P.READY)
    waiting.feed(b"d\x3f\xff\xff\xfe")
    assert waiting.read() is None


def test_an_encoder_never_writes_a_length_above_0x3FFFFFFE() -> None:
    """0x3FFFFFFB bytes of data and the length word itself: 0x3FFFFFFF."""
    with mmap.mmap(-1, 0x3FFFFFFB) as big:  # address space only: never touched
        view = memoryview(big)
        try:
            with pytest.raises(EncodingError, match="exceed"):
                m.CopyData(data=bad(view)).to_wire()
        finally:
            view.release()


# -- 5. wrong types, and sizes before building ------------------------------------------------

WRONG_TYPES: list[tuple[m.PGMessage, str]] = [
    (m.StartupMessage(params=bad(None)), "params"),
    (m.StartupMessage(params=bad([("user", "x")])), "params"),
    (m.Bind(param_values=bad(None)), "param_values"),
    (m.Bind(param_formats=bad(None)), "param_formats"),
    (m.ErrorResponse(fields=bad(None)), "fields"),
    (m.DataRow(columns=bad(5)), "columns"),
    (m.CancelRequest(process_id=1, secret_key=bad(None)), "secret_key"),
    (m.AuthenticationMD5Password(salt=bad(None)), "salt"),
    (m.RowDescription(fields=bad([("a", 0, 0, 23, 4, -1, 0)])), "fields"),
    (m.Execute(portal=bad(None)), "portal"),
    (m.Parse(param_types=bad(None)), "param_types"),
    (m.Query(query_string=bad(None)), "query_string"),
    (m.ReadyForQuery(status=bad(None)), "status"),
    (m.ParameterDescription(type_oids=bad("abc")), "type_oids"),
    (m.AuthenticationSASL(mechanisms=bad("SCRAM-SHA-256")), "mechanisms"),
    (m.CopyInResponse(col_formats=bad(None)), "col_formats"),
    (m.NegotiateProtocolVersion(unrecognized=bad(None)), "unrecognized"),
]


@pytest.mark.parametrize(("msg", "field"), WRONG_TYPES, ids=lambda x: repr(x)[:50])
def test_every_wrong_type_is_an_encoding_error_naming_the_field(
    msg: m.PGMessage, field: str
) -> None:
    with pytest.raises(EncodingError) as info:
        msg.to_wire()
    assert info.value.field == field
    buf = bytearray(b"kept")
    with pytest.raises(EncodingError):
        msg.encode_into(buf)
    assert buf == b"kept"


def test_sizes_are_checked_before_a_body_is_built() -> None:
    """64 values of 512 MiB: refused before 32 GiB are joined."""
    with mmap.mmap(-1, 1 << 29) as big:
        value = memoryview(big)
        try:
            msg = m.Bind(param_values=[bad(value)] * 64)

            def encode() -> None:
                with pytest.raises(EncodingError, match="exceed"):
                    msg.to_wire()

            assert _peak(encode) < 64 << 20
        finally:
            value.release()


# -- 6. StartupMessage versions -------------------------------------------------------------------


@pytest.mark.parametrize("code", [80877102, 80877103, 80877104, 0x20000, 0x40000, 0])
def test_startup_message_carries_only_3x_versions(code: int) -> None:
    with pytest.raises(EncodingError) as info:
        m.StartupMessage(params={"user": "u"}, protocol_version=code).to_wire()
    assert info.value.field == "protocol_version"


def test_startup_message_grease_version_is_fine() -> None:
    wire = m.StartupMessage(params={"user": "u"}, protocol_version=0x3270F).to_wire()
    assert wire[4:8] == b"\x00\x03\x27\x0f"


# -- 7, 8. the model's startup rules (see tests/test_model_rules.py for the table) ----------------


def test_a_fatal_error_with_translated_severity_ends_the_session() -> None:
    state = ProtocolState(P.READY)
    state.server_sent(m.ErrorResponse(fields={"S": "SCHWERWIEGEND", "V": "FATAL", "M": "x"}))
    assert state.phase is P.FAILED


def test_negotiation_and_cancel_keys_follow_libpq() -> None:
    state = ProtocolState()
    state.client_sent(m.StartupMessage(params={"user": "u"}))
    with pytest.raises(StateMachineError, match=r"above the 3\.0"):
        state.server_sent(m.NegotiateProtocolVersion(newest_minor=2))
    state = ProtocolState()
    state.client_sent(m.StartupMessage(params={"user": "u"}))
    state.server_sent(m.AuthenticationOk())
    with pytest.raises(StateMachineError, match="4"):
        state.server_sent(m.BackendKeyData(process_id=1, secret_key=bytes(32)))


def test_no_second_encryption_request_and_no_client_hello_after_n() -> None:
    state = ProtocolState()
    state.client_sent(m.SSLRequest())
    state.server_sent(m.SSLResponse.NOT_SUPPORTED)
    with pytest.raises(StateMachineError):
        state.client_sent(m.SSLRequest())
    with pytest.raises(StateMachineError):
        state.client_sent(m.DirectSSLHandshake(data=b"\x16\x03\x01"))


# -- 9. offsets relative to the payload ----------------------------------------------------------


def test_decoding_error_offsets_are_relative_to_the_payload() -> None:
    bad_npv = b"v\x00\x00\x00\x0c\x00\x02\x00\x00\x00\x00\x00\x00"  # version 2.0
    for before in (b"", m.ParameterStatus(name="a", value="b").to_wire() * 3):
        decoder = BackendMessageDecoder(P.AUTHENTICATING)
        decoder.feed(before + bad_npv)
        with pytest.raises(DecodingError) as info:
            decoder.read_all()
        assert info.value.offset == 0


# -- 10. SCRAM iteration ceiling -------------------------------------------------------------------


def test_scram_iterations_have_a_ceiling() -> None:
    auth = ClientAuthenticator("u", "pw")
    assert auth.max_iterations == 1_000_000  # documented default
    low = ClientAuthenticator("u", "pw", max_iterations=10_000)
    assert low.max_iterations == 10_000


# -- 11. minor ------------------------------------------------------------------------------


def test_row_description_parser_allocates_for_what_the_payload_holds() -> None:
    payload = b"\xff\xff"  # claims 65,535 fields, has none
    with pytest.raises(DecodingError):
        m.RowDescription.decode(payload)

    def parse() -> None:
        decoder = BackendMessageDecoder(P.READY)
        decoder.feed(b"T\x00\x00\x00\x06" + payload)
        with pytest.raises(DecodingError):
            decoder.read()

    assert _peak(parse) < 64_000


def test_error_field_codes_round_trip_whatever_the_byte() -> None:
    wire = b"E\x00\x00\x00\x0d\xe9abc\x00Mx\x00\x00"  # code 0xE9, then M
    msg = m.ErrorResponse.decode(wire[5:])
    assert msg.to_wire() == wire


def test_feed_takes_byte_buffers_only() -> None:
    decoder = BackendMessageDecoder(P.READY)
    with pytest.raises(TypeError, match="bytes"):
        decoder.feed(bad(5))
    assert decoder.buffered == 0


def test_repr_of_a_malformed_lazy_row_does_not_raise() -> None:
    decoder = BackendMessageDecoder(P.READY)
    decoder.feed(b"D\x00\x00\x00\x07\x00\x01\x00")  # one column, a truncated length
    row = decoder.read()
    assert row is not None
    text = repr(row)
    assert "DataRow" in text
    assert "malformed" in text
