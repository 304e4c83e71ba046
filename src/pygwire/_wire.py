"""The one way to read a payload and the one way to write a message.

:class:`Reader` is a bounds-checked cursor over a payload held in a
``bytes`` object (possibly a window of a larger receive buffer, so that no
payload is copied just to be parsed).  Every read checks what is left
first; every failure becomes a :class:`DecodingError` naming the message
and the offset.  :meth:`Reader.finish` fails if bytes are left over.

:class:`Writer` appends to a caller's ``bytearray``.  It refuses what the
wire cannot carry (a NUL inside a C string, a count over 65535, an integer
out of range, a body over :data:`MAX_MESSAGE_LENGTH`) and on failure the
buffer is truncated back, so an invalid message never yields any bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple, NoReturn

from .constants import MAX_MESSAGE_LENGTH
from .exceptions import DecodingError, EncodingError

__all__ = [
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT16",
    "UINT32",
    "UINT64",
    "Reader",
    "WireInt",
    "Writer",
    "fast_utf8",
]


class WireInt(NamedTuple):
    """The wire type of an integer field, for ``Annotated[int, ...]``: the
    validating encoder checks the range, and test strategies draw from it."""

    name: str
    lo: int
    hi: int


INT8 = WireInt("Int8", -(2**7), 2**7 - 1)
INT16 = WireInt("Int16", -(2**15), 2**15 - 1)
UINT16 = WireInt("Int16 (unsigned)", 0, 2**16 - 1)
INT32 = WireInt("Int32", -(2**31), 2**31 - 1)
UINT32 = WireInt("Int32 (unsigned: an OID)", 0, 2**32 - 1)
INT64 = WireInt("Int64", -(2**63), 2**63 - 1)
UINT64 = WireInt("Int64 (unsigned: an LSN)", 0, 2**64 - 1)

_I8 = struct.Struct("!b")
_U8 = struct.Struct("!B")
_I16 = struct.Struct("!h")
_U16 = struct.Struct("!H")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I64 = struct.Struct("!q")
_U64 = struct.Struct("!Q")


class Reader:
    """Bounds-checked cursor over ``buf[start:end]``."""

    __slots__ = ("buf", "pos", "end", "start", "name")

    def __init__(self, buf: bytes, name: str, start: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.name = name
        self.start = start
        self.pos = start
        self.end = len(buf) if end is None else end

    # -- failure -------------------------------------------------------
    def fail(self, reason: str, at: int | None = None) -> NoReturn:
        """Raise a DecodingError for this message at ``at`` (default: here)."""
        where = self.pos if at is None else at
        raise DecodingError(self.name, where - self.start, reason)

    def _need(self, n: int, what: str) -> int:
        p = self.pos
        if n > self.end - p:
            self.fail(f"{what} needs {n} bytes, {self.end - p} left")
        self.pos = p + n
        return p

    # -- fixed-size integers --------------------------------------------
    def byte1(self) -> int:
        """One byte as an unsigned integer (Byte1 / Int8 fields)."""
        p = self._need(1, "Byte1")
        return self.buf[p]

    def int8(self) -> int:
        return int(_I8.unpack_from(self.buf, self._need(1, "Int8"))[0])

    def int16(self) -> int:
        return int(_I16.unpack_from(self.buf, self._need(2, "Int16"))[0])

    def uint16(self) -> int:
        """An Int16 used as a count: PostgreSQL reads these unsigned."""
        return int(_U16.unpack_from(self.buf, self._need(2, "Int16"))[0])

    def int32(self) -> int:
        return int(_I32.unpack_from(self.buf, self._need(4, "Int32"))[0])

    def uint32(self) -> int:
        """An Int32 holding an OID, which PostgreSQL treats as unsigned."""
        return int(_U32.unpack_from(self.buf, self._need(4, "Int32"))[0])

    def int64(self) -> int:
        return int(_I64.unpack_from(self.buf, self._need(8, "Int64"))[0])

    def uint64(self) -> int:
        """An Int64 holding an LSN, which is unsigned."""
        return int(_U64.unpack_from(self.buf, self._need(8, "Int64"))[0])

    # -- variable-size fields -------------------------------------------
    def bytes_n(self, n: int) -> bytes:
        p = self._need(n, f"Byte{n}")
        return self.buf[p : p + n]

    def cstring_bytes(self) -> bytes:
        """A NUL-terminated string as raw bytes (terminator consumed)."""
        p = self.pos
        z = self.buf.find(0, p, self.end)
        if z < 0:
            self.fail("string is not NUL-terminated inside the payload")
        self.pos = z + 1
        return self.buf[p:z]

    def cstring(self) -> str:
        """A NUL-terminated UTF-8 string (terminator consumed)."""
        p = self.pos
        raw = self.cstring_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(f"invalid UTF-8 in string: {exc.reason}", at=p + exc.start)

    def text(self, n: int) -> str:
        """``n`` bytes of UTF-8 text that is not NUL-terminated."""
        p = self.pos
        raw = self.bytes_n(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(f"invalid UTF-8 in text: {exc.reason}", at=p + exc.start)

    def value(self) -> bytes | None:
        """An Int32 length followed by that many bytes; -1 means NULL."""
        n = self.int32()
        if n < 0:
            if n == -1:
                return None
            self.fail(f"value length {n} is below -1", at=self.pos - 4)
        return self.bytes_n(n)

    def int16_array(self, count: int) -> list[int]:
        p = self._need(2 * count, f"{count} Int16 values")
        return list(struct.unpack_from(f"!{count}h", self.buf, p))

    def uint32_array(self, count: int) -> list[int]:
        p = self._need(4 * count, f"{count} Int32 values")
        return list(struct.unpack_from(f"!{count}I", self.buf, p))

    def rest(self) -> bytes:
        """Every byte left in the payload."""
        p = self.pos
        self.pos = self.end
        return self.buf[p : self.end]

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def finish(self) -> None:
        """Fail unless the payload was consumed exactly."""
        if self.pos != self.end:
            self.fail(f"{self.end - self.pos} unexpected trailing bytes")


class Writer:
    """Appends a message's fields to ``buf``; every method validates first."""

    __slots__ = ("buf", "name", "_limit")

    def __init__(self, buf: bytearray, name: str, limit: int) -> None:
        self.buf = buf
        self.name = name
        # Absolute buffer length that the body may not exceed.
        self._limit = limit

    def fail(self, field: str, reason: str) -> NoReturn:
        raise EncodingError(self.name, field, reason)

    def _append(self, data: bytes, field: str) -> None:
        if len(self.buf) + len(data) > self._limit:
            self.fail(field, f"message body would exceed {MAX_MESSAGE_LENGTH} bytes")
        self.buf += data

    def _int(self, st: struct.Struct, lo: int, hi: int, v: int, field: str) -> None:
        if not isinstance(v, int) or isinstance(v, bool):
            self.fail(field, f"expected an integer, got {type(v).__name__}")
        if not lo <= v <= hi:
            self.fail(field, f"{v} is outside {lo}..{hi}")
        self._append(st.pack(v), field)

    def byte1(self, v: int, field: str) -> None:
        # Compare only an int: anything else must reach _int's type check
        # and become an EncodingError, not a TypeError from ``<``.
        self._int(_I8 if isinstance(v, int) and v < 0 else _U8, -128, 255, v, field)

    def int8(self, v: int, field: str) -> None:
        """A signed Int8, the counterpart of :meth:`Reader.int8`."""
        self._int(_I8, -128, 127, v, field)

    def int16(self, v: int, field: str) -> None:
        self._int(_I16, -(2**15), 2**15 - 1, v, field)

    def uint16(self, v: int, field: str) -> None:
        self._int(_U16, 0, 2**16 - 1, v, field)

    def count(self, n: int, field: str) -> None:
        """An Int16 element count: at most 65535, as PostgreSQL reads it."""
        if isinstance(n, int) and n > 0xFFFF:
            self.fail(field, f"{n} elements; the protocol allows at most 65535")
        self.uint16(n, field)

    def int32(self, v: int, field: str) -> None:
        self._int(_I32, -(2**31), 2**31 - 1, v, field)

    def uint32(self, v: int, field: str) -> None:
        self._int(_U32, 0, 2**32 - 1, v, field)

    def int64(self, v: int, field: str) -> None:
        self._int(_I64, -(2**63), 2**63 - 1, v, field)

    def uint64(self, v: int, field: str) -> None:
        self._int(_U64, 0, 2**64 - 1, v, field)

    def byte_view(self, data: Any, field: str) -> memoryview:
        """``data`` as a view of bytes: any byte buffer (bytes, bytearray,
        a memoryview or array of one-byte items, mmap, ...).  A buffer of
        wider items is refused: its len() counts items, so a length word
        taken from it would not match the bytes copied, and the surplus
        would be read as further fields."""
        if isinstance(data, (str, int)) or data is None:
            self.fail(field, f"expected bytes, got {type(data).__name__}")
        try:
            view = memoryview(data)
        except TypeError:
            self.fail(field, f"expected bytes, got {type(data).__name__}")
        itemsize, contiguous = view.itemsize, view.c_contiguous
        if itemsize != 1 or not contiguous:
            view.release()
            what = f"{itemsize}-byte items" if itemsize != 1 else "a non-contiguous view"
            self.fail(
                field,
                f"expected a buffer of bytes, got {type(data).__name__} of {what}; "
                "pass bytes (e.g. .tobytes())",
            )
        return view

    def raw(self, data: object, field: str) -> None:
        """Bytes as they are (a fixed-size field or the payload's rest)."""
        with self.byte_view(data, field) as view:
            if len(self.buf) + view.nbytes > self._limit:
                self.fail(field, f"message body would exceed {MAX_MESSAGE_LENGTH} bytes")
            self.buf += view

    def encode_text(self, s: str | bytes, field: str) -> bytes:
        """A string's UTF-8 bytes (bytes pass as they are: text in another
        client encoding, such as a password)."""
        if isinstance(s, str):
            try:
                return s.encode("utf-8")
            except UnicodeEncodeError as exc:
                self.fail(field, f"not encodable as UTF-8: {exc.reason}")
        if isinstance(s, (bytes, bytearray)):
            return bytes(s)
        self.fail(field, f"expected str, got {type(s).__name__}")

    def cstring(self, s: str | bytes, field: str) -> None:
        """A NUL-terminated string; a NUL inside it is refused."""
        data = self.encode_text(s, field)
        # An int needle: with b"\0", bytes.__contains__ first tries the
        # needle as an int and discards a TypeError, several times slower.
        if 0 in data:
            self.fail(field, "contains a NUL byte, which would end the string early")
        self._append(data + b"\0", field)

    def value(self, v: object, field: str) -> None:
        """Int32 length and bytes, or -1 for NULL."""
        if v is None:
            self._append(b"\xff\xff\xff\xff", field)
            return
        with self.byte_view(v, field) as view:
            if len(self.buf) + 4 + view.nbytes > self._limit:
                self.fail(field, f"message body would exceed {MAX_MESSAGE_LENGTH} bytes")
            self.buf += _I32.pack(view.nbytes)
            self.buf += view

    def values(self, values: Sequence[object], field: str) -> None:
        """An Int16 count and that many :meth:`value` fields.  Every size is
        known before the first byte is written, so a body too large for a
        message is refused without being built."""
        if not isinstance(values, (list, tuple)):
            self.fail(field, f"expected a list, got {type(values).__name__}")
        self.count(len(values), field)
        total = len(self.buf)
        for v in values:
            if v is not None:
                with self.byte_view(v, field) as view:
                    total += view.nbytes
            total += 4
            if total > self._limit:
                self.fail(field, f"message body would exceed {MAX_MESSAGE_LENGTH} bytes")
        for v in values:
            self.value(v, field)

    def int16_array(self, values: Sequence[int], field: str) -> None:
        """An Int16 count and that many Int16 values."""
        if not isinstance(values, (list, tuple)):
            self.fail(field, f"expected a list of integers, got {type(values).__name__}")
        self.count(len(values), field)
        for v in values:
            self.int16(v, field)

    def uint32_array(self, values: Sequence[int], field: str) -> None:
        """An Int16 count and that many unsigned Int32 values (OIDs)."""
        if not isinstance(values, (list, tuple)):
            self.fail(field, f"expected a list of integers, got {type(values).__name__}")
        self.count(len(values), field)
        for v in values:
            self.uint32(v, field)


def fast_utf8(text: object) -> bytes | None:
    """For encoders' fast paths: a str's UTF-8 bytes when it is a str
    without a NUL that UTF-8 can carry (no lone surrogate); otherwise None,
    and the :class:`Writer` path decides and names the fault."""
    if type(text) is not str:
        return None
    if text.isascii():
        data = text.encode("ascii")
    else:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # only a lone surrogate can cause it
            return None
    return None if 0 in data else data
