"""libpq's protocol trace format (``PQtrace``), written and read back.

:class:`Tracer` writes one line per message in the format of libpq 18's
``PQtrace``, byte for byte: the same names, field order, quoting, byte
escapes, length column and ``PQTRACE_SUPPRESS_TIMESTAMPS`` /
``PQTRACE_REGRESS_MODE`` behaviour, so a trace written by a proxy, a test
double or a server built on pygwire can be diffed against one written by
libpq itself.  It only formats: lines go to a text stream the caller
passes in.  :func:`read_trace` turns trace text (libpq's or the tracer's)
back into :class:`TraceEntry` objects holding pygwire messages.

The line layout is ``[timestamp TAB] F|B TAB length TAB name [TAB fields]``
where ``F`` is a message from the client and ``B`` one from the server and
``length`` is the message's length word (it counts itself but not the type
byte).  Fields are each preceded by a space: integers in decimal (Int16
printed unsigned, Int32 signed), strings between double quotes exactly as
sent (no escaping at all), byte strings between single quotes with every
byte outside printable ASCII written ``\\xhh``, and single bytes bare or as
``\\xhh``.  libpq checks that its walk over a message consumed the whole
length word and prints ``mismatched message length: consumed N, expected
M`` on a line of its own when it did not (AuthenticationMD5Password, whose
salt it never prints, always gets that line).

Some facts below differ from the ``fe-trace.c`` found in older sources and
come from libpq 18 itself: BackendKeyData and CancelRequest print the
secret key as a byte string of whatever length it has (protocol 3.2 keys
are up to 256 bytes), NegotiateProtocolVersion prints the names of the
options the server did not recognise, and an unknown type byte of 0x80 or
more is printed sign-extended (``Unknown message: ffffff80``), as the C
code passes a signed ``char`` to ``%02x``.

libpq leaves some messages out of its trace altogether: AuthenticationOk,
and authentication requests or NegotiateProtocolVersion messages that it
refuses before tracing them.  The tracer writes them all unless told to
omit them (``omit_untraced=True``), and it never writes anything for
:class:`~pygwire.messages.DirectSSLHandshake`: a TLS handshake is not a
protocol message and libpq does not trace it.  libpq also does not trace
the separate connection that carries a CancelRequest.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, NoReturn, Protocol, TypeVar, cast

from ._wire import Writer
from .constants import (
    MAX_MESSAGE_LENGTH,
    AuthenticationCode,
    MessageDirection,
    StartupRequestCode,
    TransactionStatus,
)
from .exceptions import PygwireError
from .messages import (
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
from .messages._base import SpecialMessage

__all__ = [
    "REDACTED",
    "TextSink",
    "TraceEntry",
    "TraceFormatError",
    "Tracer",
    "UnknownMessage",
    "read_trace",
]

REDACTED: Final = "<redacted>"
"""What the tracer prints instead of a password, SASL or GSSAPI token
(``redact=True``).  libpq quotes every string and byte string it prints, so
this bare word can never be mistaken for a value."""


class TraceFormatError(PygwireError, ValueError):
    """Trace text that is not in libpq's format.

    ``line`` is the 1-based line where the entry that could not be read
    starts.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(slots=True)
class UnknownMessage(PGMessage):
    """A message whose type byte libpq's trace does not know.

    libpq prints only the type byte and the length of such a message
    (``Unknown message: 78``), so it stands in for them when a trace is
    read back; the tracer accepts it too, to write such lines.
    ``type_code`` is the one type byte, or ``b""`` for a startup-phase
    packet shorter than 8 bytes (printed ``Unknown message``).  A ``p``
    message here is one whose kind of authentication reply is unknown
    (printed ``UnknownAuthenticationResponse``) and an ``R`` message one
    whose authentication code libpq does not know.
    """

    type_code: bytes = b"x"
    payload: bytes = b""

    def to_wire(self) -> bytes:
        """Type byte (if any), length word and the payload as given."""
        buf = bytearray(self.type_code)
        at = len(buf)
        buf += b"\0\0\0\0"
        Writer(buf, "UnknownMessage", at + MAX_MESSAGE_LENGTH).raw(self.payload, "payload")
        buf[at : at + 4] = (len(buf) - at).to_bytes(4, "big")
        return bytes(buf)

    def encode_into(self, buf: bytearray) -> None:
        """Append the wire form to ``buf``."""
        buf += self.to_wire()


# ---------------------------------------------------------------------------
# Writing


_NON_PRINTABLE = re.compile(rb"[^\x20-\x7e]")
_PRINTABLE = bytes(range(0x20, 0x7F))
_FRAME = struct.Struct("!i")


def _hex_escape(match: re.Match[bytes]) -> bytes:
    return b"\\x%02x" % match[0][0]


def _escape(data: bytes) -> str:
    """Bytes as libpq prints them: printable ASCII as is, the rest ``\\xhh``.

    libpq asks ``isprint()``, which in the C and UTF-8 locales a client
    runs in is true for 0x20-0x7e only; a backslash is printed bare, so
    ``\\x41`` in a trace may be the byte 0x41's four characters.
    """
    if not data.translate(None, _PRINTABLE):  # nothing left but what prints
        return data.decode("ascii")
    return _NON_PRINTABLE.sub(_hex_escape, data).decode("ascii")


def _format_timestamp(when: datetime) -> str:
    # libpq: strftime("%Y-%m-%d %H:%M:%S") of local time, then ".%06u".
    return f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond:06d}"


#: A tracer keeps the formatted line of messages up to this size, and up
#: to this many of them (then it starts afresh).
_CACHED_SIZE = 64
_CACHED_LINES = 4096
_FRONTEND = MessageDirection.FRONTEND

#: The start of the last second formatted by :func:`_now_text`, in
#: nanoseconds since the epoch, and its text.
_second_start = -1
_second_text = ""


def _now_text() -> str:
    """The local time now, as :func:`_format_timestamp` writes it; the
    seconds are formatted once per second (a tracer writes thousands of
    lines in one)."""
    global _second_start, _second_text  # noqa: PLW0603 (a cache)
    now = time.time_ns()  # integers: exact, as gettimeofday
    if not 0 <= now - _second_start < 1_000_000_000:  # a new second, or the clock went back
        second = now // 1_000_000_000
        _second_start = second * 1_000_000_000
        _second_text = time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(second))
    # Six digits with leading zeros, without a format specification.
    return _second_text + str((now - _second_start) // 1000 + 1_000_000)[1:]


class _Short(Exception):
    """The walk ran past the end of the message."""


class _Walk:
    """Walks one message's bytes in the order libpq's trace reads them,
    collecting the printed fields.  ``pos`` counts from the first byte of
    the message (the type byte, or the length word of a startup packet),
    as libpq's cursor does."""

    __slots__ = ("buf", "pos", "out")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.out: list[str] = []

    def _take(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > len(self.buf):
            raise _Short
        self.pos = p + n
        return p

    @property
    def left(self) -> int:
        return len(self.buf) - self.pos

    def byte1(self) -> int:
        b = self.buf[self._take(1)]
        self.out.append(f" {chr(b)}" if 0x20 <= b < 0x7F else f" \\x{b:02x}")
        return b

    def int16(self) -> int:
        # libpq reads an Int16 into a uint16: -1 is printed 65535.
        p = self._take(2)
        v = (self.buf[p] << 8) | self.buf[p + 1]
        self.out.append(f" {v}")
        return v

    def int32(self, hide: bool = False) -> int:
        v: int = _FRAME.unpack_from(self.buf, self._take(4))[0]
        self.out.append(" NNNN" if hide else f" {v}")
        return v

    def string(self, hide: bool = False) -> None:
        z = self.buf.find(0, self.pos)
        if z < 0:
            raise _Short
        text = self.buf[self.pos : z].decode("utf-8", "surrogateescape")
        self.pos = z + 1
        self.out.append(' "SSSS"' if hide else f' "{text}"')

    def nchar(self, n: int, hide: bool = False) -> None:
        p = self._take(n)
        self.out.append(" 'BBBB'" if hide else f" '{_escape(self.buf[p : p + n])}'")

    def redacted(self, n: int) -> None:
        self._take(n)
        self.out.append(f" {REDACTED}")

    def name(self, text: str) -> None:
        self.out.append(text)


@dataclass(slots=True)
class _Style:
    regress: bool
    redact: bool
    #: The message's length word (or the one the caller says was on the wire).
    length: int
    #: For 'p' messages: which reply libpq was sending (its current_auth_response).
    reply: type[PGMessage] | None


def _fields_nr(w: _Walk, s: _Style, name: str) -> None:
    # ErrorResponse and NoticeResponse: code byte, string, ... NUL.  The
    # F, L and R fields name server source code, which regress mode hides.
    w.name(name + "\t")
    while True:
        code = w.byte1()
        if code == 0:
            return
        w.string(hide=s.regress and code in b"FLR")


def _values(w: _Walk, count: int) -> None:
    for _ in range(count):
        n = w.int32()
        if n != -1:
            w.nchar(n)


def _rest(w: _Walk, s: _Style) -> int:
    """Bytes from the cursor to the end the length word declares."""
    return s.length + 1 - w.pos


def _t_bind(w: _Walk, s: _Style) -> None:
    w.name("Bind\t")
    w.string()
    w.string()
    for _ in range(w.int16()):
        w.int16()
    _values(w, w.int16())
    for _ in range(w.int16()):
        w.int16()


def _t_data_row(w: _Walk, s: _Style) -> None:
    w.name("DataRow\t")
    _values(w, w.int16())


def _t_kind_name(label: str) -> Callable[[_Walk, _Style], None]:
    def fmt(w: _Walk, s: _Style) -> None:
        w.name(label + "\t")
        w.byte1()
        w.string()

    return fmt


def _t_one_string(label: str) -> Callable[[_Walk, _Style], None]:
    def fmt(w: _Walk, s: _Style) -> None:
        w.name(label + "\t")
        w.string()

    return fmt


def _t_two_strings(label: str) -> Callable[[_Walk, _Style], None]:
    def fmt(w: _Walk, s: _Style) -> None:
        w.name(label + "\t")
        w.string()
        w.string()

    return fmt


def _t_bare(label: str) -> Callable[[_Walk, _Style], None]:
    def fmt(w: _Walk, s: _Style) -> None:
        w.name(label)

    return fmt


def _t_copy_data(w: _Walk, s: _Style) -> None:
    w.name("CopyData\t")
    w.nchar(_rest(w, s), hide=s.regress)


def _t_execute(w: _Walk, s: _Style) -> None:
    w.name("Execute\t")
    w.string()
    w.int32()


def _t_function_call(w: _Walk, s: _Style) -> None:
    w.name("FunctionCall\t")
    w.int32(hide=s.regress)
    for _ in range(w.int16()):
        w.int16()
    _values(w, w.int16())
    w.int16()


def _t_copy_response(label: str) -> Callable[[_Walk, _Style], None]:
    def fmt(w: _Walk, s: _Style) -> None:
        w.name(label + "\t")
        w.byte1()
        for _ in range(w.int16()):
            w.int16()

    return fmt


def _t_copy_both(w: _Walk, s: _Style) -> None:
    # libpq prints Int16s while its cursor is short of the length word,
    # without reading the count first.
    w.name("CopyBothResponse\t")
    w.byte1()
    while s.length > w.pos:
        w.int16()


def _t_key_data(w: _Walk, s: _Style) -> None:
    w.name("BackendKeyData\t")
    w.int32(hide=s.regress)
    w.nchar(_rest(w, s), hide=s.regress)


def _t_notification(w: _Walk, s: _Style) -> None:
    w.name("NotificationResponse\t")
    w.int32(hide=s.regress)
    w.string()
    w.string()


def _t_parse(w: _Walk, s: _Style) -> None:
    w.name("Parse\t")
    w.string()
    w.string()
    for _ in range(w.int16()):
        w.int32(hide=s.regress)


def _t_parameter_description(w: _Walk, s: _Style) -> None:
    w.name("ParameterDescription\t")
    for _ in range(w.int16()):
        w.int32(hide=s.regress)


def _t_row_description(w: _Walk, s: _Style) -> None:
    w.name("RowDescription\t")
    for _ in range(w.int16()):
        w.string()
        w.int32(hide=s.regress)  # table OID
        w.int16()
        w.int32(hide=s.regress)  # type OID
        w.int16()
        w.int32()
        w.int16()


def _t_negotiate(w: _Walk, s: _Style) -> None:
    w.name("NegotiateProtocolVersion\t")
    w.int32()
    for _ in range(w.int32()):
        w.string()


def _t_function_call_response(w: _Walk, s: _Style) -> None:
    w.name("FunctionCallResponse\t")
    n = w.int32()
    if n != -1:
        w.nchar(n)


def _t_ready(w: _Walk, s: _Style) -> None:
    w.name("ReadyForQuery\t")
    w.byte1()


_AUTH_NAMES: Final[dict[int, str]] = {
    AuthenticationCode.OK: "AuthenticationOk",
    AuthenticationCode.CLEARTEXT_PASSWORD: "AuthenticationCleartextPassword",
    AuthenticationCode.MD5_PASSWORD: "AuthenticationMD5Password",
    AuthenticationCode.GSS: "AuthenticationGSS",
    AuthenticationCode.SSPI: "AuthenticationSSPI",
}
_AUTH_DATA_NAMES: Final[dict[int, str]] = {
    AuthenticationCode.GSS_CONTINUE: "AuthenticationGSSContinue",
    AuthenticationCode.SASL_CONTINUE: "AuthenticationSASLContinue",
    AuthenticationCode.SASL_FINAL: "AuthenticationSASLFinal",
}


def _t_authentication(w: _Walk, s: _Style) -> None:
    # The code is read without being printed; only the name shows it.
    # The MD5 salt is never printed (hence libpq's mismatch line).
    code: int = _FRAME.unpack_from(w.buf, w._take(4))[0]
    if code in _AUTH_NAMES:
        w.name(_AUTH_NAMES[code])
    elif code in _AUTH_DATA_NAMES:
        w.name(_AUTH_DATA_NAMES[code] + "\t")
        w.nchar(_rest(w, s), hide=s.regress)
    elif code == AuthenticationCode.SASL:
        w.name("AuthenticationSASL\t")
        while w.left and w.buf[w.pos] != 0:
            w.string()
        w.string()  # the empty name that ends the list: printed ""
    else:
        w.name(f"Unknown authentication message {code}")


def _t_auth_reply(w: _Walk, s: _Style) -> None:
    # One type byte for four replies: libpq knows which one it is sending.
    reply = s.reply
    if reply is PasswordMessage:
        w.name("PasswordMessage\t")
        if s.redact:
            end = w.buf.find(0, w.pos)
            w.redacted(end + 1 - w.pos if end >= 0 else -1)
        else:
            w.string()
    elif reply is SASLInitialResponse:
        w.name("SASLInitialResponse\t")
        w.string()
        n = w.int32()
        if n != -1:
            if s.redact and not s.regress:
                w.redacted(n)
            else:
                w.nchar(n, hide=s.regress)
    elif reply is SASLResponse or reply is GSSResponse:
        w.name(f"{reply.__name__}\t")
        if s.redact and not s.regress:
            w.redacted(_rest(w, s))
        else:
            w.nchar(_rest(w, s), hide=s.regress)
    else:
        w.name("UnknownAuthenticationResponse")


_Formatter = Callable[[_Walk, _Style], None]

# Type byte -> formatter, for messages that mean the same in both
# directions (libpq's switch does not look at the direction for them).
_EITHER: Final[dict[int, _Formatter]] = {
    ord("1"): _t_bare("ParseComplete"),
    ord("2"): _t_bare("BindComplete"),
    ord("3"): _t_bare("CloseComplete"),
    ord("A"): _t_notification,
    ord("B"): _t_bind,
    ord("c"): _t_bare("CopyDone"),
    ord("d"): _t_copy_data,
    ord("f"): _t_one_string("CopyFail"),
    ord("F"): _t_function_call,
    ord("G"): _t_copy_response("CopyInResponse"),
    ord("I"): _t_bare("EmptyQueryResponse"),
    ord("K"): _t_key_data,
    ord("n"): _t_bare("NoData"),
    ord("N"): lambda w, s: _fields_nr(w, s, "NoticeResponse"),
    ord("p"): _t_auth_reply,
    ord("P"): _t_parse,
    ord("Q"): _t_one_string("Query"),
    ord("R"): _t_authentication,
    ord("s"): _t_bare("PortalSuspended"),
    ord("t"): _t_parameter_description,
    ord("T"): _t_row_description,
    ord("v"): _t_negotiate,
    ord("V"): _t_function_call_response,
    ord("W"): _t_copy_both,
    ord("X"): _t_bare("Terminate"),
    ord("Z"): _t_ready,
}
# Type bytes that mean one thing from the client, another from the server.
_TO_SERVER: Final[dict[int, _Formatter]] = {
    ord("C"): _t_kind_name("Close"),
    ord("D"): _t_kind_name("Describe"),
    ord("E"): _t_execute,
    ord("H"): _t_bare("Flush"),
    ord("S"): _t_bare("Sync"),
}
_TO_CLIENT: Final[dict[int, _Formatter]] = {
    ord("C"): _t_one_string("CommandComplete"),
    ord("D"): _t_data_row,
    ord("E"): lambda w, s: _fields_nr(w, s, "ErrorResponse"),
    ord("H"): _t_copy_response("CopyOutResponse"),
    ord("S"): _t_two_strings("ParameterStatus"),
}


def _fast_fields(wire: bytes, bind: bool) -> str | None:
    """The fields of a Bind (``bind``) or a DataRow, as :class:`_Walk`
    prints them, when the body is well formed and exactly consumed; None
    otherwise, and the walk decides.  These two are the messages a traced
    session formats most often afresh: their values change every time."""
    end = len(wire)
    out = ["Bind\t" if bind else "DataRow\t"]

    def int16s(pos: int) -> int:
        """An Int16 count and that many Int16s (printed unsigned, as libpq
        does); the position after them, or -1."""
        if pos + 2 > end:
            return -1
        n = (wire[pos] << 8) | wire[pos + 1]
        pos += 2
        if pos + 2 * n > end:
            return -1
        out.append(f" {n}")
        out.extend(f" {(wire[i] << 8) | wire[i + 1]}" for i in range(pos, pos + 2 * n, 2))
        return pos + 2 * n

    pos = 5
    if bind:
        for _ in range(2):  # portal, statement
            z = wire.find(0, pos)
            if z < 0:
                return None
            out.append(f' "{wire[pos:z].decode("utf-8", "surrogateescape")}"')
            pos = z + 1
        pos = int16s(pos)  # parameter formats
    if pos < 0 or pos + 2 > end:
        return None
    count = (wire[pos] << 8) | wire[pos + 1]
    pos += 2
    out.append(f" {count}")
    for _ in range(count):
        if pos + 4 > end:
            return None
        length: int = _FRAME.unpack_from(wire, pos)[0]
        pos += 4
        out.append(f" {length}")
        if length != -1:
            if length < 0 or pos + length > end:
                return None
            out.append(f" '{_escape(wire[pos : pos + length])}'")
            pos += length
    if bind:
        pos = int16s(pos)  # result formats
    return "".join(out) if pos == end else None


def _format_typed(wire: bytes, to_server: bool, style: _Style, length_text: str) -> str:
    code = wire[0]
    if code == (0x42 if to_server else 0x44) and style.length == len(wire) - 1:
        fields = _fast_fields(wire, to_server)
        if fields is not None:
            return f"{'F' if to_server else 'B'}\t{length_text}\t{fields}\n"
    w = _Walk(wire, 5)
    fmt = (_TO_SERVER if to_server else _TO_CLIENT).get(code) or _EITHER.get(code)
    try:
        if fmt is None:
            # libpq passes a signed char to %02x: bytes >= 0x80 come out
            # sign-extended to eight hex digits.
            w.name(f"Unknown message: {code if code < 0x80 else code | 0xFFFFFF00:02x}")
        else:
            fmt(w, style)
    except _Short:
        pass  # malformed for libpq's walk: print what it got, then the mismatch
    line = f"{'F' if to_server else 'B'}\t{length_text}\t{''.join(w.out)}\n"
    consumed = w.pos - 1
    if consumed != style.length:
        line += f"mismatched message length: consumed {consumed}, expected {style.length}\n"
    return line


def _format_startup(wire: bytes, length: int, regress: bool) -> str:
    # Startup-phase packets have no type byte; the request code decides
    # the name and the layout.  libpq runs no length check on them.
    w = _Walk(wire, 4)
    if length < 8 or len(wire) < 8:
        return f"F\t{length}\tUnknown message\n"
    code = int.from_bytes(wire[4:8], "big")
    try:
        if code == StartupRequestCode.CANCEL_REQUEST and length >= 16:
            w.name("CancelRequest\t")
            w.int16()
            w.int16()
            w.int32(hide=regress)
            w.nchar(length - w.pos, hide=regress)
        elif code in (StartupRequestCode.SSL_REQUEST, StartupRequestCode.GSSENC_REQUEST):
            w.name("SSLRequest\t" if code == StartupRequestCode.SSL_REQUEST else "GSSENCRequest\t")
            w.int16()
            w.int16()
        else:
            w.name("StartupMessage\t")
            w.int16()
            w.int16()
            while w.left and w.buf[w.pos] != 0:
                w.string()
                w.string()
    except _Short:
        pass
    return f"F\t{length}\t{''.join(w.out)}\n"


# How the tracer takes each class of message (found once per class).
_TYPED, _NOT_TRACED, _ONE_BYTE, _PACKET = range(4)
_KINDS: dict[type, int] = {}


def _kind_of(cls: type) -> int:
    if issubclass(cls, DirectSSLHandshake):
        return _NOT_TRACED  # a TLS handshake, not a protocol message
    if issubclass(cls, SSLResponse | GSSEncResponse):
        return _ONE_BYTE
    if issubclass(cls, SpecialMessage):
        return _PACKET  # startup-phase packets: no type byte
    return _TYPED


def _untraced(message: PGMessage) -> bool:
    """True for what libpq 18 receives but never writes to its trace."""
    # AuthenticationOk is never traced; requests for methods libpq does
    # not support (and codes it does not know) end the connection first.
    if isinstance(
        message, AuthenticationOk | AuthenticationKerberosV5 | AuthenticationSCMCredential
    ):
        return True
    if isinstance(message, NegotiateProtocolVersion):
        # libpq 18 asks for no protocol options, so it refuses a message
        # naming unrecognised ones before tracing it.
        return bool(message.unrecognized)
    return isinstance(message, UnknownMessage) and message.type_code == b"R"


class TextSink(Protocol):
    """Where a tracer writes: anything with a text ``write`` (a file, a
    ``StringIO``, ``sys.stdout``)."""

    def write(self, text: str, /) -> object:
        """Write ``text``; the return value is ignored."""
        ...


class Tracer:
    """Writes messages to ``stream`` as libpq's ``PQtrace`` does.

    ``timestamps`` (libpq's default) starts each line with the local time
    to the microsecond; ``False`` is ``PQTRACE_SUPPRESS_TIMESTAMPS``.
    ``regress`` is ``PQTRACE_REGRESS_MODE``: OIDs, process ids, cancel
    keys, COPY data and authentication tokens become ``NNNN`` and
    ``'BBBB'``, the file, line and routine fields of ErrorResponse and
    NoticeResponse become ``"SSSS"`` and their length ``NN``.

    ``redact`` (the default) writes :data:`REDACTED` in place of the
    secret in PasswordMessage, SASLInitialResponse, SASLResponse and
    GSSResponse, which libpq prints (in regress mode it already hides
    the SASL and GSSAPI tokens, so only passwords differ there).  With
    ``redact=False`` the output is exactly libpq's.

    ``omit_untraced`` leaves out the messages libpq receives without
    tracing them (AuthenticationOk, authentication requests it does not
    support, NegotiateProtocolVersion naming options), so that the output
    can be compared with a libpq trace line for line.
    """

    __slots__ = ("stream", "timestamps", "regress", "redact", "omit_untraced", "_lines")

    def __init__(
        self,
        stream: TextSink,
        *,
        timestamps: bool = True,
        regress: bool = False,
        redact: bool = True,
        omit_untraced: bool = False,
    ) -> None:
        self.stream = stream
        self.timestamps = timestamps
        self.regress = regress
        self.redact = redact
        self.omit_untraced = omit_untraced
        # The line of each small message already formatted, by wire bytes,
        # for the server's messages and the client's ([False], [True]): a
        # session repeats most of its messages exactly (Sync, BindComplete,
        # ReadyForQuery, "UPDATE 1"), and the same bytes always give the
        # same line.
        self._lines: tuple[dict[bytes, str], dict[bytes, str]] = ({}, {})

    def trace(
        self,
        direction: MessageDirection,
        message: PGMessage,
        size: int | None = None,
        *,
        timestamp: datetime | None = None,
        wire: bytes | None = None,
    ) -> None:
        """Write ``message``, sent in ``direction``, to the stream.

        See :meth:`format` for the arguments.
        """
        text = self.format(direction, message, size, timestamp=timestamp, wire=wire)
        if text:
            self.stream.write(text)

    def format(
        self,
        direction: MessageDirection,
        message: PGMessage,
        size: int | None = None,
        *,
        timestamp: datetime | None = None,
        wire: bytes | None = None,
    ) -> str:
        """The trace text for one message: a line, or two when libpq would
        add its "mismatched message length" line; ``""`` for a message
        that is not traced.

        ``size`` is the number of bytes the message took on the wire (type
        byte and length word included; 1 for SSLResponse and
        GSSEncResponse); by default it is the size of ``message.to_wire()``.
        The length column shows it, and the body comes from the message,
        so a size that disagrees with the body shows up as libpq shows a
        wrong length word.  ``timestamp`` (local time) defaults to now.

        ``wire``, when the caller has them, is the message's bytes as they
        crossed the wire (:meth:`ProxyConnection.observe_wire
        <pygwire.connection.ProxyConnection.observe_wire>` hands them
        out): the line is formatted from them, as libpq formats what it
        read, instead of from ``message`` encoded again, and ``size``
        defaults to their length.
        """
        if wire is not None and size is None and timestamp is None:
            # A proxy's usual case: bytes formatted before.
            line = self._lines[direction is _FRONTEND].get(wire)
            if line is not None:
                return _now_text() + "\t" + line if self.timestamps else line
        kind = _KINDS.get(type(message))
        if kind is None:
            kind = _KINDS[type(message)] = _kind_of(type(message))
        if kind == _NOT_TRACED or (self.omit_untraced and _untraced(message)):
            return ""
        prefix = ""
        if self.timestamps:
            text = _now_text() if timestamp is None else _format_timestamp(timestamp)
            prefix = text + "\t"
        if kind == _ONE_BYTE:
            answer = cast("SSLResponse | GSSEncResponse", message)
            name = "SSLResponse" if isinstance(answer, SSLResponse) else "GSSENCResponse"
            return f"{prefix}B\t1\t{name}\t {answer.value.decode('latin-1')}\n"
        if wire is None:
            wire = message.to_wire()
        elif size is None:
            size = len(wire)
        if kind == _PACKET or (isinstance(message, UnknownMessage) and not message.type_code):
            length = len(wire) if size is None else size
            return prefix + _format_startup(wire, length, self.regress)
        to_server = direction is _FRONTEND
        # Not the 'p' family: the same bytes print differently by the
        # reply libpq was sending (a password, a SASL message).
        cacheable = (size is None or size == len(wire)) and len(wire) <= _CACHED_SIZE
        if cacheable and wire[0] != 0x70:
            lines = self._lines[to_server]
            line = lines.get(wire)
            if line is None:
                if len(lines) >= _CACHED_LINES:
                    lines.clear()
                line = lines[wire] = self._typed(wire, to_server, len(wire) - 1, message)
            return prefix + line
        length = len(wire) - 1 if size is None else size - 1
        return prefix + self._typed(wire, to_server, length, message)

    def _typed(self, wire: bytes, to_server: bool, length: int, message: PGMessage) -> str:
        style = _Style(self.regress, self.redact, length, type(message))
        hide_length = self.regress and not to_server and wire[0] in b"EN"
        return _format_typed(wire, to_server, style, "NN" if hide_length else str(length))


# ---------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One traced message, as far as the trace text determines it.

    ``size`` is the message's size on the wire (as :meth:`Tracer.format`
    takes it), or ``None`` where regress mode printed ``NN``.
    ``timestamp`` is the local time printed, if any.  ``unknown`` names
    the fields the text did not give (regress mode's ``NNNN``,
    ``'BBBB'`` and ``"SSSS"``, :data:`REDACTED`, the MD5 salt that libpq
    never prints, the payload of an unknown message); placeholders stand
    in for them in ``message``: zero, zero bytes, ``""``, or as many
    ``*`` as the password had bytes, so the message keeps its size.
    """

    direction: MessageDirection
    message: PGMessage
    size: int | None
    timestamp: datetime | None = None
    unknown: frozenset[str] = field(default_factory=frozenset)


class _NoParse(Exception):
    """This reading of the entry does not fit; try another."""


class _Exhausted(Exception):
    """Choice point ``depth`` has no candidate with the index asked for."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


_T = TypeVar("_T")
_DELIMITERS = (0x20, 0x0A)
_INT = re.compile(rb" (-?\d+|NNNN)(?=[ \n]|\Z)")
_UINT = re.compile(rb" (\d+)(?=[ \n]|\Z)")
_BYTE1 = re.compile(rb" (?:\\x([0-9a-f]{2})|([\x20-\x7e]))(?=[ \n]|\Z)")
_HEX = re.compile(rb"\\x([0-9a-f]{2})")
_HEAD = re.compile(rb"(?:(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\t)?([FB])\t(-?\d+|NN)\t([^\t\n]*)")
_MISMATCH = re.compile(rb"mismatched message length: consumed (-?\d+), expected (-?\d+)(?:\n|\Z)")
_UNKNOWN_TYPE = re.compile(rb"Unknown message: ([0-9a-f]{2}|ffffff[89a-f][0-9a-f])")
_UNKNOWN_AUTH = re.compile(rb"Unknown authentication message (-?\d+)")


class _Cursor:
    """Reads the fields of one entry's body, keeping count of the bytes
    they stood for.  Where the text allows several readings (a string
    may contain ``" "``; ``\\x0a`` may be one escaped byte or four
    characters) it takes the one ``choices`` says, so that the caller
    can try the others in turn."""

    def __init__(
        self,
        data: bytes,
        pos: int,
        payload: int | None,
        choices: list[int],
        regress: bool,
    ) -> None:
        self.data = data
        self.pos = pos
        #: Bytes after the length word, from the length column (None: NN).
        self.payload = payload
        self.consumed = 0
        self.unknown: set[str] = set()
        self.choices = choices
        self.depth = 0
        self.regress = regress
        self.suppressed = False

    # -- choice points ---------------------------------------------------
    def _pick(self, candidates: Iterator[_T]) -> _T:
        depth = self.depth
        index = self.choices[depth] if depth < len(self.choices) else 0
        self.depth += 1
        for i, candidate in enumerate(candidates):
            if i == index:
                return candidate
        raise _Exhausted(depth)

    # -- helpers ---------------------------------------------------------
    def _delimited(self, at: int) -> bool:
        return at >= len(self.data) or self.data[at] in _DELIMITERS

    def at_end(self) -> bool:
        """No field follows: the line ends here."""
        return self.pos >= len(self.data) or self.data[self.pos] == 0x0A

    def rest(self) -> int:
        """Payload bytes not yet accounted for (needs the length column)."""
        if self.payload is None or self.payload < self.consumed:
            raise _NoParse
        return self.payload - self.consumed

    def hidden(self, name: str) -> None:
        self.unknown.add(name)
        self.suppressed = True

    # -- fields ----------------------------------------------------------
    def int32(self, name: str = "") -> int:
        """An Int32; ``NNNN`` (regress mode) is allowed when ``name`` says
        which field it hides, and reads as 0."""
        m = _INT.match(self.data, self.pos)
        if m is None or (m[1] == b"NNNN" and not name):
            raise _NoParse
        self.pos = m.end()
        self.consumed += 4
        if m[1] == b"NNNN":
            self.hidden(name)
            return 0
        value = int(m[1])
        if not -(2**31) <= value < 2**31:
            raise _NoParse
        return value

    def oid(self, name: str) -> int:
        """An OID: printed as a signed Int32, stored unsigned."""
        return self.int32(name) & 0xFFFFFFFF

    def uint16(self) -> int:
        m = _UINT.match(self.data, self.pos)
        if m is None or int(m[1]) > 0xFFFF:
            raise _NoParse
        self.pos = m.end()
        self.consumed += 2
        return int(m[1])

    def int16(self) -> int:
        """An Int16 field: libpq prints it unsigned."""
        v = self.uint16()
        return v - 0x10000 if v >= 0x8000 else v

    def int16s(self) -> list[int]:
        return [self.int16() for _ in range(self.uint16())]

    def byte1(self) -> int:
        m = _BYTE1.match(self.data, self.pos)
        if m is None:
            raise _NoParse
        self.pos = m.end()
        self.consumed += 1
        return int(m[1], 16) if m[1] is not None else m[2][0]

    def _string_ends(self, start: int, size: int | None) -> Iterator[int]:
        data = self.data
        if size is not None:
            end = start + size
            if data[end : end + 1] == b'"' and self._delimited(end + 1):
                yield end
            return
        limit = len(data)
        if self.payload is not None:
            # The string and its terminator fit in what is left.
            limit = min(limit, start + self.payload - self.consumed)
        end = data.find(b'"', start, limit)
        while end >= 0:
            if self._delimited(end + 1):
                yield end
            end = data.find(b'"', end + 1, limit)

    def raw_string(self, size: int | None = None) -> bytes:
        """A NUL-terminated string: its bytes, printed between double
        quotes without any escaping.  ``size`` is its length if known."""
        if self.data[self.pos : self.pos + 2] != b' "':
            raise _NoParse
        start = self.pos + 2
        end = self._pick(self._string_ends(start, size))
        text = self.data[start:end]
        if 0 in text:
            raise _NoParse
        self.pos = end + 1
        self.consumed += len(text) + 1
        return text

    def string(self, size: int | None = None) -> str:
        try:
            return self.raw_string(size).decode("utf-8")
        except UnicodeDecodeError:
            raise _NoParse from None

    def _literals(self, start: int, n: int) -> Iterator[tuple[bytes | None, int]]:
        """Readings of ``'...'`` (opening quote before ``start``) that
        stand for ``n`` bytes, with the position after the closing quote;
        ``None`` is regress mode's ``'BBBB'``."""
        data = self.data
        hidden = data[start : start + 5] == b"BBBB'" and self._delimited(start + 5)
        literal = n == 4 and hidden
        if hidden and (self.regress or not literal):
            yield None, start + 5
        # A literal is printable ASCII on one line, in which "\xhh" of a
        # non-printable byte may be an escape (one byte) or four bytes of
        # data; n = characters - 3 * escapes settles how many are escapes,
        # and which ones does not change the printed text.
        bad = _NON_PRINTABLE.search(data, start)
        stop = len(data) if bad is None else bad.start()
        escapes = [
            m.start() for m in _HEX.finditer(data, start, stop) if not 0x20 <= int(m[1], 16) < 0x7F
        ]
        for count in range(len(escapes) + 1):
            end = start + n + 3 * count
            if end >= stop:
                break
            if count and escapes[count - 1] + 4 > end:
                continue
            if data[end] != 0x27 or not self._delimited(end + 1):
                continue
            parts = []
            at = start
            for e in escapes[:count]:
                parts.append(data[at:e])
                parts.append(bytes([int(data[e + 2 : e + 4], 16)]))
                at = e + 4
            parts.append(data[at:end])
            yield b"".join(parts), end + 1
        if hidden and literal and not self.regress:
            yield None, start + 5

    def nchar(self, n: int, name: str = "") -> bytes:
        """``n`` bytes between single quotes; ``'BBBB'`` (regress mode) is
        allowed when ``name`` says which field it hides, and reads as
        zero bytes."""
        if n < 0 or self.data[self.pos : self.pos + 2] != b" '":
            raise _NoParse
        start = self.pos + 2
        value, self.pos = self._pick(self._literals(start, n))
        self.consumed += n
        if value is None:
            if not name:
                raise _NoParse
            if n != 4:
                self.suppressed = True
            self.unknown.add(name)
            return bytes(n)
        return value

    def value(self) -> bytes | None:
        """An Int32 length and that many bytes; -1 is NULL."""
        n = self.int32()
        return None if n == -1 else self.nchar(n)

    def redacted(self, n: int, name: str) -> bool:
        """The tracer's :data:`REDACTED` in place of ``n`` bytes, if present."""
        token = b" " + REDACTED.encode()
        if not self.data.startswith(token, self.pos) or not self._delimited(self.pos + len(token)):
            return False
        self.pos += len(token)
        self.consumed += n
        self.unknown.add(name)
        return True


# -- layouts: one reader per printed name ------------------------------------

_Layout = Callable[[_Cursor], PGMessage]


def _fixed_string(c: _Cursor) -> str:
    # A message holding one string: its length follows from the length
    # column, so quotes and spaces inside it cannot mislead.
    return c.string(None if c.payload is None else c.payload - 1)


def _r_bind(c: _Cursor) -> PGMessage:
    portal = c.string()
    statement = c.string()
    formats = c.int16s()
    values = [c.value() for _ in range(c.uint16())]
    return Bind(portal, statement, formats, values, c.int16s())


def _r_kind_name(cls: type[Describe] | type[Close]) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        kind = c.byte1()
        if kind not in b"SP":
            raise _NoParse
        return cls(kind=chr(kind), name=c.string())

    return read


def _r_fields(cls: type[ErrorResponse] | type[NoticeResponse]) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        fields: dict[str, str] = {}
        while (code := c.byte1()) != 0:
            if code >= 0x80 or chr(code) in fields:
                raise _NoParse
            text = c.string()
            if c.payload is None and code in b"FLR" and text == "SSSS":
                # Only regress mode prints NN, and it always hides these.
                c.hidden(f"fields.{chr(code)}")
                text = ""
            fields[chr(code)] = text
        return cls(fields=fields)

    return read


def _r_copy_response(cls: type[CopyInResponse] | type[CopyOutResponse]) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        overall = c.byte1()
        return cls(overall - 0x100 if overall >= 0x80 else overall, c.int16s())

    return read


def _r_copy_both(c: _Cursor) -> PGMessage:
    overall = c.byte1()
    numbers: list[int] = []
    while not c.at_end():
        numbers.append(c.int16())
    if not numbers or numbers[0] != len(numbers) - 1:
        raise _NoParse
    return CopyBothResponse(overall - 0x100 if overall >= 0x80 else overall, numbers[1:])


def _r_data_row(c: _Cursor) -> PGMessage:
    return DataRow([c.value() for _ in range(c.uint16())])


def _r_function_call(c: _Cursor) -> PGMessage:
    oid = c.oid("function_oid")
    formats = c.int16s()
    args = [c.value() for _ in range(c.uint16())]
    return FunctionCall(oid, formats, args, c.int16())


def _r_function_call_response(c: _Cursor) -> PGMessage:
    return FunctionCallResponse(c.value())


def _r_key_data(c: _Cursor) -> PGMessage:
    pid = c.int32("process_id")
    return BackendKeyData(pid, c.nchar(c.rest(), "secret_key"))


def _r_notification(c: _Cursor) -> PGMessage:
    pid = c.int32("process_id")
    channel = c.string()
    return NotificationResponse(pid, channel, c.string())


def _r_parse(c: _Cursor) -> PGMessage:
    statement = c.string()
    query = c.string()
    return Parse(statement, query, [c.oid("param_types") for _ in range(c.uint16())])


def _r_parameter_description(c: _Cursor) -> PGMessage:
    return ParameterDescription([c.oid("type_oids") for _ in range(c.uint16())])


def _r_row_description(c: _Cursor) -> PGMessage:
    fields = []
    for _ in range(c.uint16()):
        name = c.string()
        table = c.oid("fields.table_oid")
        attr = c.int16()
        type_oid = c.oid("fields.type_oid")
        size = c.int16()
        modifier = c.int32()
        fields.append(FieldDescription(name, table, attr, type_oid, size, modifier, c.int16()))
    return RowDescription(fields)


def _r_negotiate(c: _Cursor) -> PGMessage:
    version = c.int32()
    if version >> 16 not in (0, 3):
        raise _NoParse
    count = c.int32()
    if count < 0:
        raise _NoParse
    return NegotiateProtocolVersion(version & 0xFFFF, [c.string() for _ in range(count)])


def _r_ready(c: _Cursor) -> PGMessage:
    status = chr(c.byte1())
    if status not in "ITE":
        raise _NoParse
    return ReadyForQuery(TransactionStatus(status))


def _auth(cls: type[PGMessage]) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        c.consumed += 4  # the code, shown only by the name
        return cls()

    return read


def _r_md5(c: _Cursor) -> PGMessage:
    # libpq never prints the salt (its mismatch line says so).
    c.consumed += 4
    if c.payload != 8:
        raise _NoParse
    c.unknown.add("salt")
    return AuthenticationMD5Password()


def _auth_data(
    cls: type[AuthenticationGSSContinue]
    | type[AuthenticationSASLContinue]
    | type[AuthenticationSASLFinal],
) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        c.consumed += 4
        return cls(data=c.nchar(c.rest(), "data"))

    return read


def _r_sasl(c: _Cursor) -> PGMessage:
    c.consumed += 4
    names: list[str] = []
    while name := c.string():
        names.append(name)
    return AuthenticationSASL(names)


def _r_password(c: _Cursor) -> PGMessage:
    if c.payload is not None and c.redacted(c.payload, "password"):
        return PasswordMessage("*" * (c.payload - 1))
    raw = c.raw_string(None if c.payload is None else c.payload - 1)
    try:
        return PasswordMessage(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return PasswordMessage(raw)


def _r_sasl_initial(c: _Cursor) -> PGMessage:
    mechanism = c.string()
    n = c.int32()
    if n == -1:
        return SASLInitialResponse(mechanism, None)
    if c.redacted(n, "data"):
        return SASLInitialResponse(mechanism, bytes(n))
    return SASLInitialResponse(mechanism, c.nchar(n, "data"))


def _auth_token(cls: type[SASLResponse] | type[GSSResponse]) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        n = c.rest()
        if c.redacted(n, "data"):
            return cls(bytes(n))
        return cls(c.nchar(n, "data"))

    return read


def _r_unknown_reply(c: _Cursor) -> PGMessage:
    c.unknown.add("payload")
    return UnknownMessage(b"p", bytes(c.rest()))


def _r_startup(c: _Cursor) -> PGMessage:
    version = c.uint16() << 16 | c.uint16()
    params: dict[str, str] = {}
    while not c.at_end():
        name = c.string()
        if not name or name in params:
            raise _NoParse
        params[name] = c.string()
    c.consumed += 1  # the list's terminator, not printed
    return StartupMessage(params, version)


def _r_negotiation(cls: type[SSLRequest] | type[GSSEncRequest], code: int) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        if (c.uint16() << 16 | c.uint16()) != code:
            raise _NoParse
        return cls()

    return read


def _r_cancel(c: _Cursor) -> PGMessage:
    if (c.uint16() << 16 | c.uint16()) != StartupRequestCode.CANCEL_REQUEST:
        raise _NoParse
    pid = c.int32("process_id")
    return CancelRequest(pid, c.nchar(c.rest(), "secret_key"))


def _r_unknown_startup(c: _Cursor) -> PGMessage:
    c.unknown.add("payload")
    return UnknownMessage(b"", bytes(c.rest()))


def _none(cls: type[PGMessage]) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        return cls()

    return read


_LAYOUTS: Final[dict[bytes, _Layout]] = {
    b"AuthenticationCleartextPassword": _auth(AuthenticationCleartextPassword),
    b"AuthenticationGSS": _auth(AuthenticationGSS),
    b"AuthenticationGSSContinue": _auth_data(AuthenticationGSSContinue),
    b"AuthenticationMD5Password": _r_md5,
    b"AuthenticationOk": _auth(AuthenticationOk),
    b"AuthenticationSASL": _r_sasl,
    b"AuthenticationSASLContinue": _auth_data(AuthenticationSASLContinue),
    b"AuthenticationSASLFinal": _auth_data(AuthenticationSASLFinal),
    b"AuthenticationSSPI": _auth(AuthenticationSSPI),
    b"BackendKeyData": _r_key_data,
    b"Bind": _r_bind,
    b"BindComplete": _none(BindComplete),
    b"Close": _r_kind_name(Close),
    b"CloseComplete": _none(CloseComplete),
    b"CommandComplete": lambda c: CommandComplete(_fixed_string(c)),
    b"CopyBothResponse": _r_copy_both,
    b"CopyData": lambda c: CopyData(c.nchar(c.rest(), "data")),
    b"CopyDone": _none(CopyDone),
    b"CopyFail": lambda c: CopyFail(_fixed_string(c)),
    b"CopyInResponse": _r_copy_response(CopyInResponse),
    b"CopyOutResponse": _r_copy_response(CopyOutResponse),
    b"DataRow": _r_data_row,
    b"Describe": _r_kind_name(Describe),
    b"EmptyQueryResponse": _none(EmptyQueryResponse),
    b"ErrorResponse": _r_fields(ErrorResponse),
    b"Execute": lambda c: Execute(c.string(), c.int32()),
    b"Flush": _none(Flush),
    b"FunctionCall": _r_function_call,
    b"FunctionCallResponse": _r_function_call_response,
    b"GSSResponse": _auth_token(GSSResponse),
    b"NegotiateProtocolVersion": _r_negotiate,
    b"NoData": _none(NoData),
    b"NoticeResponse": _r_fields(NoticeResponse),
    b"NotificationResponse": _r_notification,
    b"ParameterDescription": _r_parameter_description,
    b"ParameterStatus": lambda c: ParameterStatus(c.string(), c.string()),
    b"Parse": _r_parse,
    b"ParseComplete": _none(ParseComplete),
    b"PasswordMessage": _r_password,
    b"PortalSuspended": _none(PortalSuspended),
    b"Query": lambda c: Query(_fixed_string(c)),
    b"ReadyForQuery": _r_ready,
    b"RowDescription": _r_row_description,
    b"SASLInitialResponse": _r_sasl_initial,
    b"SASLResponse": _auth_token(SASLResponse),
    b"Sync": _none(Sync),
    b"Terminate": _none(Terminate),
    b"UnknownAuthenticationResponse": _r_unknown_reply,
}

#: Startup-phase packets: no type byte, and the length column counts the
#: whole packet.
_STARTUP_LAYOUTS: Final[dict[bytes, _Layout]] = {
    b"CancelRequest": _r_cancel,
    b"GSSENCRequest": _r_negotiation(GSSEncRequest, StartupRequestCode.GSSENC_REQUEST),
    b"SSLRequest": _r_negotiation(SSLRequest, StartupRequestCode.SSL_REQUEST),
    b"StartupMessage": _r_startup,
    b"Unknown message": _r_unknown_startup,
}


def _unknown_type(code: int) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        c.unknown.add("payload")
        return UnknownMessage(bytes([code]), bytes(c.rest()))

    return read


def _unknown_auth(code: int) -> _Layout:
    def read(c: _Cursor) -> PGMessage:
        c.consumed += 4
        if code == AuthenticationCode.KERBEROS_V5:
            return AuthenticationKerberosV5()
        if code == AuthenticationCode.SCM_CREDENTIAL:
            return AuthenticationSCMCredential()
        c.unknown.add("payload")
        return UnknownMessage(b"R", code.to_bytes(4, "big", signed=True) + bytes(c.rest()))

    return read


def _fail(line: int, reason: str) -> NoReturn:
    raise TraceFormatError(line, reason)


class _TraceReader:
    """Reads entries one after the other, remembering whether regress
    mode has shown itself (it decides what a 4-byte ``'BBBB'`` is)."""

    def __init__(self, text: str, regress: bool | None) -> None:
        # Strings are printed as raw bytes and the length column counts
        # bytes, so the reading is done on the encoded text.
        self.data = text.encode("utf-8", "surrogateescape")
        self.regress = bool(regress)
        self.guess = regress is None
        self.line = 1

    def entries(self) -> Iterator[TraceEntry]:
        data = self.data
        pos = 0
        while pos < len(data):
            head = _HEAD.match(data, pos)
            if head is None:
                _fail(self.line, "expected [timestamp TAB] F|B TAB length TAB message name")
            entry, end = self._entry(head)
            self.line += data.count(b"\n", pos, end)
            pos = end
            yield entry

    def _entry(self, head: re.Match[bytes]) -> tuple[TraceEntry, int]:
        stamp, side, length_text, name = head.groups()
        direction = MessageDirection.FRONTEND if side == b"F" else MessageDirection.BACKEND
        length = None if length_text == b"NN" else int(length_text)
        if length is None and self.guess:
            self.regress = True  # only regress mode prints NN
        timestamp = None
        if stamp is not None:
            timestamp = datetime.strptime(stamp.decode(), "%Y-%m-%d %H:%M:%S.%f")
        pos = head.end()
        if name in (b"SSLResponse", b"GSSENCResponse"):
            return self._one_byte(head, name, direction, length, timestamp)
        startup = name in _STARTUP_LAYOUTS and side == b"F"
        layout = _STARTUP_LAYOUTS.get(name) if startup else _LAYOUTS.get(name)
        if layout is None:
            layout = self._odd_layout(name)
        if self.data[pos : pos + 1] == b"\t":
            pos += 1
        if length is not None and length < 4:
            _fail(self.line, f"length {length} is below 4")
        payload = None if length is None else length - 4
        message, unknown, end = self._search(layout, pos, payload, length, startup)
        size = length if startup or length is None else length + 1
        return TraceEntry(direction, message, size, timestamp, frozenset(unknown)), end

    def _odd_layout(self, name: bytes) -> _Layout:
        if m := _UNKNOWN_TYPE.fullmatch(name):
            return _unknown_type(int(m[1], 16) & 0xFF)
        if m := _UNKNOWN_AUTH.fullmatch(name):
            return _unknown_auth(int(m[1]))
        _fail(self.line, f"unknown message name {name.decode('utf-8', 'replace')!r}")

    def _one_byte(
        self,
        head: re.Match[bytes],
        name: bytes,
        direction: MessageDirection,
        length: int | None,
        timestamp: datetime | None,
    ) -> tuple[TraceEntry, int]:
        data = self.data
        pos = head.end()
        reply = data[pos + 2 : pos + 3]
        cls: type[SSLResponse] | type[GSSEncResponse]
        cls = SSLResponse if name == b"SSLResponse" else GSSEncResponse
        if length != 1 or data[pos : pos + 2] != b"\t " or data[pos + 3 : pos + 4] not in b"\n":
            _fail(self.line, f"malformed {name.decode()} line")
        try:
            message = cls.decode(reply)
        except PygwireError:
            _fail(self.line, f"{name.decode()} {reply!r} is neither of the known answers")
        return TraceEntry(direction, message, 1, timestamp), min(pos + 4, len(data))

    def _search(
        self,
        layout: _Layout,
        pos: int,
        payload: int | None,
        length: int | None,
        startup: bool,
    ) -> tuple[PGMessage, set[str], int]:
        # Depth-first over the readings the text allows (almost always
        # exactly one): the first that fits the length column, ends the
        # line and is followed by another entry or the end wins.
        choices: list[int] = []
        while True:
            c = _Cursor(self.data, pos, payload, choices, self.regress)
            try:
                message = layout(c)
                end = self._finish(c, length, startup)
            except _NoParse:
                if not c.depth:
                    break
                choices = (choices + [0] * c.depth)[: c.depth]
                choices[-1] += 1
                continue
            except _Exhausted as exc:
                if not exc.depth:
                    break
                choices = choices[: exc.depth]
                choices[-1] += 1
                continue
            if c.suppressed and self.guess:
                self.regress = True
            return message, c.unknown, end
        _fail(self.line, "the fields do not fit the message's layout and length")

    def _finish(self, c: _Cursor, length: int | None, startup: bool) -> int:
        data = self.data
        end = c.pos
        if end < len(data):
            if data[end] != 0x0A:
                raise _NoParse
            end += 1
        consumed = c.consumed + 4  # libpq counts the length word, not the type byte
        m = _MISMATCH.match(data, end)
        if m is not None and not startup:
            if int(m[1]) != consumed or (length is not None and int(m[2]) != length):
                raise _NoParse
            end = m.end()
        elif length is not None and consumed != length:
            raise _NoParse
        if end < len(data) and _HEAD.match(data, end) is None:
            raise _NoParse
        return end


def read_trace(text: str, *, regress: bool | None = None) -> list[TraceEntry]:
    """Read libpq-format trace text (libpq's own, or :class:`Tracer`'s)
    into entries, one per message.

    Give the text as libpq wrote it: strings in a trace are raw bytes, so
    read a file with ``encoding="utf-8", errors="surrogateescape"``.
    Writing the entries back with a :class:`Tracer` of the same settings
    (``tracer.trace(e.direction, e.message, e.size, timestamp=e.timestamp)``)
    gives the text again, byte for byte.

    What the text does not determine is listed in each entry's
    ``unknown``: values regress mode hid, values the tracer redacted, the
    MD5 salt, unknown messages' payloads.  Some choices are also
    undecidable and are made arbitrarily, without changing the text: a
    byte string printed ``\\x0a`` where the data may hold either the byte
    0x0a or those four characters (the length settles how many such
    sequences are escapes but not which), a string containing ``" "``
    where the split between two strings is not settled by the length, and
    a 4-byte ``'BBBB'``, which is regress mode's mask or the data
    ``BBBB``: ``regress`` says which, and by default the mask is assumed
    once the text has shown regress mode (``NN``, ``NNNN``, a longer
    ``'BBBB'``).  A NegotiateProtocolVersion whose version word holds a
    bare minor number is read as protocol 3.minor.  Strings must be UTF-8
    (except passwords), as pygwire's messages hold them.

    Raises :class:`TraceFormatError` on text that is not a trace.
    """
    return list(_TraceReader(text, regress).entries())
