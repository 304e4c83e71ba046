"""COPY's data formats, text and binary, both ways, without I/O.

``COPY ... FROM STDIN`` and ``COPY ... TO STDOUT`` carry rows inside
CopyData messages, in the formats the COPY documentation describes ("File
Formats"): text (one line per row, fields separated by a tab, ``\\N`` for
NULL, backslash escapes) or binary (a signature and header, then per row a
field count and each field's length and bytes, then -1).  CopyData
boundaries need not fall between rows, so the readers are incremental:
:meth:`CopyReader.feed` takes any chunk and returns the rows it completes.

Writing follows ``CopyAttributeOutText`` in PostgreSQL's ``copyto.c``:
backslash, the delimiter and the six control characters ``\\b \\f \\n \\r
\\t \\v`` are escaped, nothing else is.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

from ._errors import SQLError, SQLState

__all__ = [
    "BINARY_SIGNATURE",
    "BINARY_TRAILER",
    "CopyReader",
    "binary_header",
    "binary_row",
    "text_row",
]

#: The first 11 bytes of binary COPY data.
BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: The field count -1 that ends binary COPY data.
BINARY_TRAILER = b"\xff\xff"

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_OUT_ESCAPES = {
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_OUT_SPECIAL = re.compile(r"[\\\b\f\n\r\t\v]")
_IN_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.)|$)", re.DOTALL)
_IN_LETTERS = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _bad(message: str) -> SQLError:
    return SQLError(SQLState.BAD_COPY_FILE_FORMAT, message)


def _escape(text: str) -> str:
    return _OUT_SPECIAL.sub(lambda m: _OUT_ESCAPES[m.group()], text)


def text_row(fields: Sequence[bytes | None]) -> bytes:
    """One row of text-format COPY data: each field's text (UTF-8) escaped,
    tab-separated, ``\\N`` for None, ending in a newline."""
    parts = [
        b"\\N" if value is None else _escape(value.decode("utf-8")).encode("utf-8")
        for value in fields
    ]
    return b"\t".join(parts) + b"\n"


def binary_header() -> bytes:
    """The signature, flags (no OIDs) and an empty header extension."""
    return BINARY_SIGNATURE + _I32.pack(0) + _I32.pack(0)


def binary_row(fields: Sequence[bytes | None]) -> bytes:
    """One row of binary-format COPY data."""
    out = [_I16.pack(len(fields))]
    for value in fields:
        if value is None:
            out.append(_I32.pack(-1))
        else:
            out.append(_I32.pack(len(value)))
            out.append(value)
    return b"".join(out)


def _unescape_byte(match: re.Match[bytes]) -> bytes:
    octal, hexa, other = match.groups()
    if octal is not None:
        return bytes((int(octal, 8) & 0xFF,))
    if hexa is not None:
        return bytes((int(hexa, 16),))
    if other is not None:
        return _IN_LETTERS.get(other, other)
    return b""  # a backslash at the very end of a field reads as nothing


class CopyReader:
    """Rows out of COPY data fed in chunks of any size.

    ``binary`` chooses the format.  Text rows are tuples of ``str`` (None
    for ``\\N``), binary rows tuples of ``bytes`` (None for NULL).  With
    ``columns`` set, a row with another number of fields is an error, as
    PostgreSQL reports it (SQLSTATE 22P04).  Call :meth:`finish` when the
    data ends (CopyDone): it returns a last text line that had no newline,
    and refuses a cut-off binary row.  ``max_row`` bounds the bytes one row
    may take: a longer one is refused (54000) rather than buffered.
    """

    def __init__(
        self, *, binary: bool = False, columns: int | None = None, max_row: int = 64 * 1024 * 1024
    ) -> None:
        self.binary = binary
        self.columns = columns
        self.max_row = max_row
        #: Rows read so far.
        self.rows = 0
        self._buffer = bytearray()
        # How much of the buffer is known to hold no newline: each feed
        # searches only what it added, so a line in many pieces costs its
        # length once, not once per piece.
        self._scanned = 0
        self._header_done = not binary
        self._ended = False  # the end marker (\. or the binary trailer) came

    def feed(self, data: bytes) -> list[tuple[object, ...]]:
        """The rows ``data`` completes (bytes after the end marker are ignored)."""
        if self._ended:
            return []
        self._buffer += data
        rows = self._binary_rows() if self.binary else self._text_rows(final=False)
        if len(self._buffer) > self.max_row:  # what is left is one unfinished row
            raise SQLError(
                SQLState.PROGRAM_LIMIT_EXCEEDED,
                f"COPY row {self.rows + 1} is longer than {self.max_row} bytes",
            )
        return rows

    def finish(self) -> list[tuple[object, ...]]:
        """The rows left at the end of the data."""
        if self._ended:
            return []
        if self.binary:
            if self._buffer:
                raise _bad("unexpected EOF in COPY data")
            return []
        return self._text_rows(final=True)

    # -- text -----------------------------------------------------------------
    def _text_rows(self, *, final: bool) -> list[tuple[object, ...]]:
        buffer = self._buffer
        end = len(buffer) - 1 if final else buffer.rfind(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(buffer)
            return []
        self._scanned = 0
        lines = bytes(buffer[: end + 1]).split(b"\n")
        del buffer[: end + 1]
        if lines and lines[-1] == b"":
            lines.pop()
        rows: list[tuple[object, ...]] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line == b"\\.":
                self._ended = True
                break
            rows.append(self._text_fields(line))
        return rows

    def _text_fields(self, line: bytes) -> tuple[object, ...]:
        fields: list[object] = []
        for raw in _split_unescaped_tabs(line):
            if raw == b"\\N":
                fields.append(None)
                continue
            if b"\\" in raw:
                # De-escaped first, then checked as UTF-8, as the server does:
                # \ooo and \xhh stand for bytes.
                raw = _IN_ESCAPE.sub(_unescape_byte, raw)
            try:
                fields.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise SQLError(
                    SQLState.CHARACTER_NOT_IN_REPERTOIRE,
                    f'invalid byte sequence for encoding "UTF8": {exc.reason}',
                ) from None
        return self._counted(fields)

    def _counted(self, fields: list[object]) -> tuple[object, ...]:
        self.rows += 1
        if self.columns is not None and len(fields) != self.columns:
            if len(fields) > self.columns:
                raise _bad(f"extra data after last expected column (line {self.rows})")
            raise _bad(f"missing data for column {len(fields) + 1} (line {self.rows})")
        return tuple(fields)

    # -- binary -----------------------------------------------------------------
    def _binary_rows(self) -> list[tuple[object, ...]]:
        buffer = self._buffer
        rows: list[tuple[object, ...]] = []
        pos = 0
        if not self._header_done:
            if len(buffer) < 19:
                return rows
            if bytes(buffer[:11]) != BINARY_SIGNATURE:
                raise _bad("COPY file signature not recognized")
            flags = _I32.unpack_from(buffer, 11)[0]
            if flags & 0x10000:
                raise SQLError(
                    SQLState.FEATURE_NOT_SUPPORTED, "COPY data with OIDs is not supported"
                )
            if flags & ~0xFFFF & ~0x10000:
                raise _bad("unrecognized critical flags in COPY file header")
            extension = _I32.unpack_from(buffer, 15)[0]
            if extension < 0:
                raise _bad("invalid COPY file header (wrong length)")
            if len(buffer) < 19 + extension:
                return rows
            pos = 19 + extension
            self._header_done = True
        size = len(buffer)
        while pos + 2 <= size:
            count = _I16.unpack_from(buffer, pos)[0]
            if count == -1:
                self._ended = True
                pos = size
                break
            if count < 0:
                raise _bad(f"row field count is {count}, expected a positive number")
            fields: list[object] = []
            at = pos + 2
            complete = True
            for _ in range(count):
                if at + 4 > size:
                    complete = False
                    break
                length = _I32.unpack_from(buffer, at)[0]
                at += 4
                if length == -1:
                    fields.append(None)
                    continue
                if length < 0:
                    raise _bad(f"invalid field size {length}")
                if at + length > size:
                    complete = False
                    break
                fields.append(bytes(buffer[at : at + length]))
                at += length
            if not complete:
                break
            rows.append(self._counted(fields))
            pos = at
        del buffer[:pos]
        return rows


def _split_unescaped_tabs(line: bytes) -> list[bytes]:
    """The fields of one text line: split at tabs not escaped by a backslash."""
    if b"\\" not in line:
        return line.split(b"\t")
    fields: list[bytes] = []
    start = 0
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == 0x5C:  # a backslash escapes the next byte
            i += 2
            continue
        if c == 0x09:
            fields.append(line[start:i])
            start = i + 1
        i += 1
    fields.append(line[start:])
    return fields
