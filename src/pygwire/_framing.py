"""Hot paths: splitting a byte stream into frames, and splitting rows.

Everything the decoders do per message and per column lives here behind a
narrow interface, so that a compiled twin can replace it while this
pure-Python version stays the reference:

* :class:`FrameBuffer` accumulates fed bytes and cuts them into frames,
  returning ``(identifier, start, end)`` windows into :attr:`FrameBuffer.buf`
  so that payloads are parsed in place, never copied just to be parsed;
* :func:`split_data_row` and :func:`read_row_description` parse the two
  messages whose size grows with the result.

Buffering strategy: ``buf`` is an immutable ``bytes`` object and ``pos``
the read position in it.  Fed chunks wait in a list and are joined into
``buf`` only when a frame needs more bytes than ``buf`` still has, so each
byte is copied a bounded number of times however the stream is chunked (a
1 GB message fed in 64 KiB pieces is joined once, not 16,000 times).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .exceptions import FramingError

if TYPE_CHECKING:
    from ._wire import Reader

__all__ = ["FrameBuffer", "read_row_description", "split_data_row"]

_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")
_U16 = struct.Struct("!H")
# table_oid, column_attr, type_oid, type_size, type_modifier, format_code
_FIELD = struct.Struct("!IhIhih")

T = TypeVar("T")


class FrameBuffer:
    """Receive buffer that yields frames as windows into :attr:`buf`."""

    __slots__ = ("buf", "pos", "_pending", "_pending_len")

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0
        self._pending: list[bytes] = []
        self._pending_len = 0

    def feed(self, data: bytes) -> None:
        if not self._pending and self.pos == len(self.buf):
            # Everything so far was consumed: adopt the chunk as is.
            self.buf = data
            self.pos = 0
        elif data:
            self._pending.append(data)
            self._pending_len += len(data)

    def __len__(self) -> int:
        return len(self.buf) - self.pos + self._pending_len

    def clear(self) -> None:
        self.buf = b""
        self.pos = 0
        self._pending.clear()
        self._pending_len = 0

    def take(self) -> bytes:
        """Remove and return every buffered byte."""
        data = self.buf[self.pos :] + b"".join(self._pending)
        self.clear()
        return data

    def _ensure(self, n: int) -> bool:
        """Make ``buf[pos:pos+n]`` available if ``n`` bytes are buffered."""
        avail = len(self.buf) - self.pos
        if avail >= n:
            return True
        if avail + self._pending_len < n:
            return False
        self._pending.insert(0, memoryview(self.buf)[self.pos :])  # type: ignore[arg-type]
        self.buf = b"".join(self._pending)
        self.pos = 0
        self._pending.clear()
        self._pending_len = 0
        return True

    def peek_byte(self) -> int:
        """The next byte, or -1 if nothing is buffered."""
        if not self._ensure(1):
            return -1
        return self.buf[self.pos]

    def skip(self, n: int) -> None:
        self.pos += n

    def frame(self, limits: list[int]) -> tuple[int, int, int] | None:
        """Cut one standard frame: Byte1 identifier, Int32 length, payload.

        ``limits[identifier]`` is the largest length word accepted for that
        type; -1 marks an unknown identifier.  Both checks run as soon as
        the five header bytes are here, before any of the body is buffered.
        Returns ``(identifier, payload_start, payload_end)`` or None.
        """
        if not self._ensure(5):
            return None
        buf = self.buf
        pos = self.pos
        ident = buf[pos]
        length = _U32.unpack_from(buf, pos + 1)[0]
        if length > limits[ident] or length < 4:
            limit = limits[ident]
            if limit < 0:
                raise FramingError(
                    f"unknown message type {bytes([ident])!r}",
                    identifier=bytes([ident]),
                    length=length,
                )
            raise FramingError(
                f"message {bytes([ident])!r} declares length {length}; allowed is 4 to {limit}",
                identifier=bytes([ident]),
                length=length,
            )
        end = pos + 1 + length
        if end > len(buf):
            if not self._ensure(1 + length):
                return None
            buf = self.buf
            pos = 0
            end = 1 + length
        self.pos = end
        return ident, pos + 5, end

    def startup_frame(self, limit: int) -> tuple[int, int] | None:
        """Cut one startup packet: Int32 length (including itself), payload.

        The payload must hold at least the Int32 request code.  Returns
        ``(payload_start, payload_end)`` or None.
        """
        if not self._ensure(4):
            return None
        length = _U32.unpack_from(self.buf, self.pos)[0]
        if not 8 <= length <= limit:
            raise FramingError(
                f"startup packet declares length {length}; allowed is 8 to {limit}",
                length=length,
            )
        if not self._ensure(length):
            return None
        pos = self.pos
        self.pos = pos + length
        return pos + 4, pos + length


def split_data_row(r: Reader) -> list[bytes | None]:
    """Parse a DataRow payload: Int16 count, then (Int32 length, bytes)*."""
    buf = r.buf
    pos = r.pos
    end = r.end
    if end - pos < 2:
        r.fail("column count needs 2 bytes")
    count = _U16.unpack_from(buf, pos)[0]
    pos += 2
    cols: list[bytes | None] = []
    append = cols.append
    unpack = _I32.unpack_from
    for _ in range(count):
        if end - pos < 4:
            r.fail(f"column {len(cols)} length needs 4 bytes, {end - pos} left", at=pos)
        n = unpack(buf, pos)[0]
        pos += 4
        if n < 0:
            if n != -1:
                r.fail(f"column {len(cols)} length {n} is below -1", at=pos - 4)
            append(None)
            continue
        nxt = pos + n
        if nxt > end:
            r.fail(f"column {len(cols)} needs {n} bytes, {end - pos} left", at=pos)
        append(buf[pos:nxt])
        pos = nxt
    r.pos = pos
    return cols


def read_row_description(r: Reader, make: Callable[..., T]) -> list[T]:
    """Parse a RowDescription payload into ``make(name, *fixed fields)``."""
    count = r.uint16()
    buf = r.buf
    unpack = _FIELD.unpack_from
    out: list[T] = []
    for _ in range(count):
        name = r.cstring()
        pos = r.pos
        if r.end - pos < 18:
            r.fail(f"field {len(out)} needs 18 bytes after its name, {r.end - pos} left")
        r.pos = pos + 18
        out.append(make(name, *unpack(buf, pos)))
    return out
