"""Malformed input: every class of bad bytes gives its documented error.

Each case is hand-written bytes.  Framing problems (impossible or oversized
length words, unknown types or startup codes, bytes where the protocol
allows none) raise :class:`pygwire.FramingError`; a framed payload that
does not match its message's layout raises :class:`pygwire.DecodingError`,
which names the message and the payload offset of the fault.  Both are
:class:`pygwire.ProtocolError`.  A decoder that raised stays failed until
``clear()``.
"""

from __future__ import annotations

import struct

import pytest

from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    DecodingError,
    FramingError,
    FrontendMessageDecoder,
    ProtocolError,
    StartupRequestCode,
    TransactionStatus,
)
from pygwire import messages as m
from pygwire.codec import MessageDecoder
from pygwire.constants import MAX_MESSAGE_LENGTH, MAX_STARTUP_PACKET_LENGTH

P = ConnectionPhase
DECODERS: list[type[MessageDecoder]] = [BackendMessageDecoder, FrontendMessageDecoder]


def i16(v: int) -> bytes:
    return struct.pack("!h", v)


def i32(v: int) -> bytes:
    return struct.pack("!i", v)


def u32(v: int) -> bytes:
    return struct.pack("!I", v)


def frame(ident: bytes, payload: bytes) -> bytes:
    """A standard message with a correct length word."""
    return ident + u32(len(payload) + 4) + payload


def startup(payload: bytes) -> bytes:
    """A startup packet with a correct length word."""
    return u32(len(payload) + 4) + payload


def backend(phase: ConnectionPhase = P.READY, **limits: int) -> BackendMessageDecoder:
    return BackendMessageDecoder(phase, **limits)


def frontend(phase: ConnectionPhase = P.READY, **limits: int) -> FrontendMessageDecoder:
    return FrontendMessageDecoder(phase, **limits)


def framing_error(decoder: MessageDecoder, data: bytes) -> FramingError:
    decoder.feed(data)
    with pytest.raises(FramingError) as info:
        decoder.read_all()
    return info.value


def decoding_error(decoder: MessageDecoder, data: bytes) -> DecodingError:
    decoder.feed(data)
    with pytest.raises(DecodingError) as info:
        decoder.read_all()
    return info.value


def row_error(payload: bytes) -> DecodingError:
    """A malformed DataRow: the stream decoder splits rows lazily, so the
    error comes on first access to ``columns``; the stream stays in step
    (the next message decodes) and DataRow.decode() checks at once."""
    decoder = backend()
    decoder.feed(frame(b"D", payload) + frame(b"Z", b"I"))
    row, ready = decoder.read_all()
    assert isinstance(row, m.DataRow)
    assert ready == m.ReadyForQuery(status=TransactionStatus.IDLE)
    with pytest.raises(DecodingError) as lazy:
        _ = row.columns
    with pytest.raises(DecodingError) as eager:
        m.DataRow.decode(payload)
    assert (lazy.value.message, lazy.value.offset) == (eager.value.message, eager.value.offset)
    with pytest.raises(DecodingError):
        _ = row.columns  # still failing, not half-split
    return lazy.value


def test_error_hierarchy() -> None:
    assert issubclass(FramingError, ProtocolError)
    assert issubclass(DecodingError, ProtocolError)


# -- length words ------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 3, 0xFFFFFFFF, 0x80000000])
@pytest.mark.parametrize("make", DECODERS, ids=["backend", "frontend"])
def test_impossible_length_word(make: type[MessageDecoder], length: int) -> None:
    # CopyData exists in both directions, so only the length is at fault.
    decoder = make(P.READY)
    err = framing_error(decoder, b"d" + u32(length))
    assert err.identifier == b"d"
    assert err.length == length


@pytest.mark.parametrize("make", DECODERS, ids=["backend", "frontend"])
def test_oversized_length_refused_on_the_header_alone(make: type[MessageDecoder]) -> None:
    decoder = make(P.READY)
    decoder.feed(b"d" + u32(MAX_MESSAGE_LENGTH + 1))
    with pytest.raises(FramingError) as info:
        decoder.read()
    assert info.value.length == MAX_MESSAGE_LENGTH + 1
    # Refused before any body byte was asked for: only the header is held.
    assert decoder.buffered <= 5


@pytest.mark.parametrize("make", DECODERS, ids=["backend", "frontend"])
def test_oversized_length_refused_at_the_fifth_header_byte(make: type[MessageDecoder]) -> None:
    decoder = make(P.READY)
    header = b"d" + u32(0x7FFFFFFF)
    for i in range(4):
        decoder.feed(header[i : i + 1])
        assert decoder.read() is None
    decoder.feed(header[4:])
    with pytest.raises(FramingError):
        decoder.read()
    assert decoder.buffered == 5


@pytest.mark.parametrize("make", DECODERS, ids=["backend", "frontend"])
def test_largest_length_waits_for_the_body(make: type[MessageDecoder]) -> None:
    decoder = make(P.READY)
    decoder.feed(b"d" + u32(MAX_MESSAGE_LENGTH) + b"xyz")
    assert decoder.read() is None
    assert decoder.buffered == 8


@pytest.mark.parametrize("make", DECODERS, ids=["backend", "frontend"])
def test_custom_max_message_size(make: type[MessageDecoder]) -> None:
    decoder = make(P.READY, max_message_size=1000)
    decoder.feed(b"d" + u32(1000))
    assert decoder.read() is None  # at the limit: waits for the body
    decoder.feed(bytes(996))
    assert decoder.read() == m.CopyData(data=bytes(996))

    decoder.feed(b"d" + u32(1001))
    with pytest.raises(FramingError) as info:
        decoder.read()
    assert info.value.length == 1001
    assert decoder.buffered <= 5


def test_custom_max_message_size_caps_the_small_limits() -> None:
    err = framing_error(frontend(max_message_size=100), b"Q" + u32(101))
    assert err.identifier == b"Q"
    err = framing_error(backend(max_message_size=100), b"Z" + u32(101))
    assert err.identifier == b"Z"


def test_frontend_small_message_limit() -> None:
    # PostgreSQL reads Sync, Execute, Close... with PQ_SMALL_MESSAGE_LIMIT.
    decoder = frontend()
    decoder.feed(b"S" + u32(20000))
    with pytest.raises(FramingError) as info:
        decoder.read()
    assert info.value.identifier == b"S"
    assert info.value.length == 20000
    assert decoder.buffered <= 5


@pytest.mark.parametrize("ident", [b"S", b"E", b"C", b"D", b"H", b"X", b"c", b"f"])
def test_frontend_small_types_accept_up_to_10000(ident: bytes) -> None:
    decoder = frontend()
    decoder.feed(ident + u32(10_000))
    assert decoder.read() is None
    decoder = frontend()
    assert framing_error(decoder, ident + u32(10_001)).length == 10_001


def test_backend_small_message_limit() -> None:
    # ReadyForQuery never carries user data: libpq's small limit applies.
    decoder = backend()
    err = framing_error(decoder, b"Z" + u32(1_000_000))
    assert err.identifier == b"Z"
    assert decoder.buffered <= 5


@pytest.mark.parametrize("length", [0, 3, 4, 7])
def test_startup_packet_too_short(length: int) -> None:
    err = framing_error(frontend(P.STARTUP), u32(length) + bytes(8))
    assert err.length == length


def test_startup_packet_too_long() -> None:
    decoder = frontend(P.STARTUP)
    decoder.feed(u32(MAX_STARTUP_PACKET_LENGTH + 1) + u32(StartupRequestCode.V3_0))
    with pytest.raises(FramingError) as info:
        decoder.read()
    assert info.value.length == MAX_STARTUP_PACKET_LENGTH + 1
    assert decoder.buffered <= 8


def test_startup_packet_at_the_limit_waits() -> None:
    decoder = frontend(P.STARTUP)
    decoder.feed(u32(MAX_STARTUP_PACKET_LENGTH) + u32(StartupRequestCode.V3_0))
    assert decoder.read() is None


# -- truncated and over-long payloads --------------------------------------------


def test_data_row_column_runs_past_the_end() -> None:
    payload = i16(1) + i32(10) + b"abc"
    err = row_error(payload)
    assert err.message == "DataRow"
    assert err.offset == 6  # where the column's bytes start


def test_data_row_fewer_columns_than_counted() -> None:
    payload = i16(3) + i32(1) + b"a" + i32(-1)
    err = row_error(payload)
    assert err.message == "DataRow"
    assert err.offset == len(payload)


def test_data_row_without_count() -> None:
    err = row_error(b"\x00")
    assert err.message == "DataRow"


def test_row_description_cut_in_a_field() -> None:
    field = b"id\x00" + u32(16384) + i16(1) + u32(23) + i16(4) + i32(-1) + i16(0)
    err = decoding_error(backend(), frame(b"T", i16(1) + field[:-3]))
    assert err.message == "RowDescription"


def test_row_description_name_without_terminator() -> None:
    err = decoding_error(backend(), frame(b"T", i16(1) + b"id"))
    assert err.message == "RowDescription"
    assert err.offset == 2


def test_bind_value_runs_past_the_end() -> None:
    payload = b"\x00\x00" + i16(0) + i16(1) + i32(100) + b"short"
    err = decoding_error(frontend(), frame(b"B", payload))
    assert err.message == "Bind"


def test_md5_salt_truncated() -> None:
    err = decoding_error(backend(), frame(b"R", i32(5) + b"ab"))
    assert err.message == "AuthenticationMD5Password"


def test_trailing_bytes_after_ready_for_query() -> None:
    err = decoding_error(backend(), frame(b"Z", b"Ix"))
    assert err.message == "ReadyForQuery"
    assert err.offset == 1


def test_trailing_bytes_after_sync() -> None:
    err = decoding_error(frontend(), frame(b"S", b"\x00"))
    assert err.message == "Sync"
    assert err.offset == 0


def test_trailing_bytes_after_query_terminator() -> None:
    err = decoding_error(frontend(), frame(b"Q", b"SELECT 1\x00junk"))
    assert err.message == "Query"
    assert err.offset == 9


def test_trailing_bytes_after_authentication_ok() -> None:
    err = decoding_error(backend(), frame(b"R", i32(0) + b"\x00"))
    assert err.message == "AuthenticationOk"
    assert err.offset == 4


def test_trailing_bytes_after_ssl_request_payload() -> None:
    err = decoding_error(frontend(P.STARTUP), startup(u32(StartupRequestCode.SSL_REQUEST) + b"x"))
    assert err.message == "SSLRequest"


@pytest.mark.parametrize("length", [-2, -(2**31)])
def test_data_row_negative_column_length(length: int) -> None:
    payload = i16(2) + i32(-1) + i32(length) + b"abcd"
    err = row_error(payload)
    assert err.message == "DataRow"
    assert err.offset == 6  # the second length word


@pytest.mark.parametrize("length", [-2, -(2**31)])
def test_bind_negative_value_length(length: int) -> None:
    payload = b"\x00\x00" + i16(0) + i16(1) + i32(length) + i16(0)
    err = decoding_error(frontend(), frame(b"B", payload))
    assert err.message == "Bind"
    assert err.offset == 6


@pytest.mark.parametrize("length", [-2, -(2**31)])
def test_function_call_response_negative_length(length: int) -> None:
    err = decoding_error(backend(), frame(b"V", i32(length)))
    assert err.message == "FunctionCallResponse"
    assert err.offset == 0


# -- C strings: missing terminator, invalid UTF-8 -------------------------------------


def test_query_without_terminator() -> None:
    err = decoding_error(frontend(), frame(b"Q", b"SELECT 1"))
    assert err.message == "Query"
    assert err.offset == 0


def test_parameter_status_value_without_terminator() -> None:
    err = decoding_error(backend(), frame(b"S", b"TimeZone\x00UTC"))
    assert err.message == "ParameterStatus"
    assert err.offset == 9


def test_startup_param_value_without_terminator() -> None:
    payload = u32(StartupRequestCode.V3_0) + b"user\x00bob"
    err = decoding_error(frontend(P.STARTUP), startup(payload))
    assert err.message == "StartupMessage"
    assert err.offset == 9


def test_startup_params_without_final_terminator() -> None:
    payload = u32(StartupRequestCode.V3_0) + b"user\x00bob\x00"
    err = decoding_error(frontend(P.STARTUP), startup(payload))
    assert err.message == "StartupMessage"
    assert err.offset == 13


def test_invalid_utf8_in_query() -> None:
    err = decoding_error(frontend(), frame(b"Q", b"SEL\xffECT 1\x00"))
    assert err.message == "Query"
    assert err.offset == 3


def test_invalid_utf8_in_command_complete() -> None:
    err = decoding_error(backend(), frame(b"C", b"SELECT \xc3\x28\x00"))
    assert err.message == "CommandComplete"
    assert err.offset == 7


def test_invalid_utf8_in_error_response_field() -> None:
    payload = b"SERROR\x00Mbad \xfe here\x00\x00"
    err = decoding_error(backend(), frame(b"E", payload))
    assert err.message == "ErrorResponse"
    assert err.offset == 12
    assert "ErrorResponse" in str(err)


def test_truncated_utf8_sequence_in_parameter_status() -> None:
    # A multi-byte sequence cut by the terminator.
    err = decoding_error(backend(), frame(b"S", b"name\x00caf\xc3\x00"))
    assert err.message == "ParameterStatus"
    assert err.offset == 8


def test_error_response_without_final_terminator() -> None:
    err = decoding_error(backend(), frame(b"E", b"SERROR\x00"))
    assert err.message == "ErrorResponse"
    assert err.offset == 7


# -- unknown identifiers and codes -------------------------------------------------


@pytest.mark.parametrize("ident", [b"@", b"\x00", b"\xff", b"Q", b"P"])
def test_backend_unknown_identifier(ident: bytes) -> None:
    # Q and P are frontend messages: never sent by a server.
    err = framing_error(backend(), frame(ident, b""))
    assert err.identifier == ident


@pytest.mark.parametrize("ident", [b"@", b"\x00", b"\xff", b"Z", b"T"])
def test_frontend_unknown_identifier(ident: bytes) -> None:
    # Z and T are backend messages: never sent by a client.
    err = framing_error(frontend(), frame(ident, b""))
    assert err.identifier == ident


def test_unknown_identifier_refused_on_the_header_alone() -> None:
    decoder = backend()
    decoder.feed(b"@" + u32(100))
    with pytest.raises(FramingError):
        decoder.read()
    assert decoder.buffered <= 5


@pytest.mark.parametrize("code", [1, 4, 13, 99, -1])
def test_unknown_authentication_code(code: int) -> None:
    err = decoding_error(backend(), frame(b"R", i32(code)))
    assert "Authentication" in err.message
    assert err.offset == 0
    assert str(code) in err.reason


def test_authentication_without_code() -> None:
    err = decoding_error(backend(), frame(b"R", b"\x00\x00"))
    assert "Authentication" in err.message


@pytest.mark.parametrize(
    "code",
    [0, 1234, 80877101, 80877105, 0x00020000, 0x00040000, 0xFFFFFFFF],
    ids=lambda c: f"{c:#x}",
)
def test_unknown_startup_request_code(code: int) -> None:
    # 0x00020000 is protocol 2.0, which PostgreSQL 14 dropped.
    err = framing_error(frontend(P.STARTUP), startup(u32(code) + b"\x00"))
    assert str(code) in str(err)


def test_startup_message_class_refuses_protocol_2() -> None:
    with pytest.raises(DecodingError) as info:
        m.StartupMessage.decode(u32(0x00020000) + b"\x00")
    assert info.value.message == "StartupMessage"
    assert info.value.offset == 0


def test_cancel_request_with_short_key() -> None:
    err = decoding_error(
        frontend(P.STARTUP), startup(u32(StartupRequestCode.CANCEL_REQUEST) + i32(42) + b"abc")
    )
    assert err.message == "CancelRequest"


def test_cancel_request_with_overlong_key() -> None:
    err = decoding_error(
        frontend(P.STARTUP),
        startup(u32(StartupRequestCode.CANCEL_REQUEST) + i32(42) + bytes(257)),
    )
    assert err.message == "CancelRequest"


def test_backend_key_data_with_short_key() -> None:
    err = decoding_error(backend(), frame(b"K", i32(42) + b"abc"))
    assert err.message == "BackendKeyData"


def test_ready_for_query_unknown_status() -> None:
    err = decoding_error(backend(), frame(b"Z", b"X"))
    assert err.message == "ReadyForQuery"
    assert err.offset == 0


@pytest.mark.parametrize("ident", [b"D", b"C"], ids=["Describe", "Close"])
def test_describe_and_close_unknown_kind(ident: bytes) -> None:
    err = decoding_error(frontend(), frame(ident, b"Xname\x00"))
    assert err.message == ("Describe" if ident == b"D" else "Close")
    assert err.offset == 0


def test_negotiate_protocol_version_count_beyond_payload() -> None:
    err = decoding_error(backend(), frame(b"v", i32(2) + i32(1_000_000) + b"a\x00"))
    assert err.message == "NegotiateProtocolVersion"
    assert err.offset == 4


def test_negotiate_protocol_version_negative_count() -> None:
    err = decoding_error(backend(), frame(b"v", i32(2) + i32(-1)))
    assert err.message == "NegotiateProtocolVersion"


def test_error_response_duplicate_field() -> None:
    err = decoding_error(backend(), frame(b"E", b"Ma\x00Mb\x00\x00"))
    assert err.message == "ErrorResponse"
    assert err.offset == 3


def test_startup_duplicate_parameter() -> None:
    payload = u32(StartupRequestCode.V3_0) + b"user\x00a\x00user\x00b\x00\x00"
    err = decoding_error(frontend(P.STARTUP), startup(payload))
    assert err.message == "StartupMessage"
    assert err.offset == 11


@pytest.mark.parametrize("phase", [P.SSL_NEGOTIATION, P.GSS_NEGOTIATION])
def test_unexpected_negotiation_reply_byte(phase: ConnectionPhase) -> None:
    decoder = backend(phase)
    decoder.feed(b"X")
    with pytest.raises(DecodingError):
        decoder.read()


# -- bytes where the protocol allows none --------------------------------------------


@pytest.mark.parametrize(
    ("phase", "reply"),
    [
        (P.SSL_NEGOTIATION, b"S"),
        (P.SSL_NEGOTIATION, b"N"),
        (P.GSS_NEGOTIATION, b"G"),
        (P.GSS_NEGOTIATION, b"N"),
    ],
)
def test_bytes_behind_negotiation_reply_are_refused(phase: ConnectionPhase, reply: bytes) -> None:
    # CVE-2021-23222 class: a man in the middle appends plaintext behind the
    # server's "S"; taking it as part of the encrypted session would let it
    # inject a response.
    decoder = backend(phase)
    decoder.feed(reply + b"garbage")
    with pytest.raises(FramingError):
        decoder.read()


@pytest.mark.parametrize(("phase", "reply"), [(P.SSL_NEGOTIATION, b"S"), (P.GSS_NEGOTIATION, b"G")])
def test_bytes_behind_negotiation_reply_refused_across_feeds(
    phase: ConnectionPhase, reply: bytes
) -> None:
    # What matters is what was received before the reply was read, not how
    # it was chunked.
    decoder = backend(phase)
    decoder.feed(reply)
    decoder.feed(frame(b"Z", b"I"))
    with pytest.raises(FramingError):
        decoder.read()


def test_negotiation_reply_alone_is_accepted() -> None:
    decoder = backend(P.SSL_NEGOTIATION)
    decoder.feed(b"S")
    assert decoder.read() is m.SSLResponse.SUPPORTED
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    "request_code", [StartupRequestCode.SSL_REQUEST, StartupRequestCode.GSSENC_REQUEST]
)
def test_bytes_behind_encryption_request_are_refused(request_code: int) -> None:
    # CVE-2021-23214 class: a StartupMessage pipelined behind SSLRequest
    # would be taken as arriving over the encrypted channel.
    request = startup(u32(request_code))
    pipelined = startup(u32(StartupRequestCode.V3_0) + b"user\x00mallory\x00\x00")
    decoder = frontend(P.STARTUP)
    decoder.feed(request + pipelined)
    with pytest.raises(FramingError):
        decoder.read()


@pytest.mark.parametrize("phase", [P.SSL_NEGOTIATION, P.GSS_NEGOTIATION])
def test_client_bytes_while_waiting_for_negotiation_answer(phase: ConnectionPhase) -> None:
    decoder = frontend(P.STARTUP)
    code = (
        StartupRequestCode.SSL_REQUEST
        if phase is P.SSL_NEGOTIATION
        else (StartupRequestCode.GSSENC_REQUEST)
    )
    decoder.feed(startup(u32(code)))
    assert isinstance(decoder.read(), (m.SSLRequest, m.GSSEncRequest))
    assert decoder.phase is P.STARTUP  # the owner sets the phase; the decoder waits
    assert decoder.read() is None  # nothing yet: waiting is fine
    decoder.feed(b"\x00")
    with pytest.raises(FramingError):
        decoder.read()


@pytest.mark.parametrize("phase", [P.SSL_NEGOTIATION, P.GSS_NEGOTIATION])
def test_client_bytes_in_negotiation_phase_set_directly(phase: ConnectionPhase) -> None:
    decoder = frontend(phase)
    decoder.feed(frame(b"Q", b"SELECT 1\x00"))
    with pytest.raises(FramingError):
        decoder.read()


# -- a failed decoder stays failed until clear() ------------------------------------


@pytest.mark.parametrize(
    ("make", "bad", "good", "expected"),
    [
        (BackendMessageDecoder, b"@" + u32(5) + b"x", frame(b"Z", b"I"), m.ReadyForQuery()),
        (
            BackendMessageDecoder,
            frame(b"Z", b"X"),
            frame(b"Z", b"T"),
            m.ReadyForQuery(status=TransactionStatus.IN_TRANSACTION),
        ),
        (FrontendMessageDecoder, b"S" + u32(20000), frame(b"S", b""), m.Sync()),
        (FrontendMessageDecoder, frame(b"Q", b"no terminator"), frame(b"H", b""), m.Flush()),
    ],
    ids=["backend-framing", "backend-decoding", "frontend-framing", "frontend-decoding"],
)
def test_failed_decoder_stays_failed_until_clear(
    make: type[MessageDecoder], bad: bytes, good: bytes, expected: m.PGMessage
) -> None:
    decoder = make(P.READY)
    decoder.feed(bad)
    with pytest.raises(ProtocolError) as first:
        decoder.read()
    error = first.value
    for _ in range(3):
        with pytest.raises(ProtocolError) as again:
            decoder.read()
        assert again.value is error
        with pytest.raises(ProtocolError) as again:
            decoder.feed(good)
        assert again.value is error
        with pytest.raises(ProtocolError):
            decoder.read_all()
        with pytest.raises(ProtocolError):
            next(iter(decoder))
    decoder.clear()
    assert decoder.buffered == 0
    decoder.feed(good)
    assert decoder.read_all() == [expected]


def test_messages_before_the_fault_are_delivered() -> None:
    decoder = backend()
    decoder.feed(frame(b"Z", b"I") + frame(b"Z", b"X"))
    assert decoder.read() == m.ReadyForQuery()
    with pytest.raises(DecodingError):
        decoder.read()
