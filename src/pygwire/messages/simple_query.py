"""Simple query: Query and the server's result messages.

RowDescription and DataRow also answer extended-query Describe/Execute;
they live here because the simple-query flow introduces them.
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, NamedTuple, Self

from .. import _hotpath
from .._wire import INT16, INT32, UINT32, Reader, Writer, fast_utf8
from ..constants import MAX_MESSAGE_LENGTH, TransactionStatus
from ..exceptions import DecodingError
from ._base import BackendMessage, FrontendMessage, PGMessage, frame, message

__all__ = [
    "CommandComplete",
    "DataRow",
    "EmptyQueryResponse",
    "FieldDescription",
    "Query",
    "ReadyForQuery",
    "RowDescription",
]


@message(b"Q")
class Query(FrontendMessage):
    """A simple query: one or more SQL statements separated by semicolons."""

    query_string: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.query_string, "query_string")

    def _fast_wire(self) -> bytes | None:
        data = fast_utf8(self.query_string)
        if data is None or len(data) > MAX_MESSAGE_LENGTH - 5:
            return None
        return b"Q" + (len(data) + 5).to_bytes(4, "big") + data + b"\0"

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(query_string=r.cstring())

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        text = _hotpath.cstring_payload(buf, start, end)
        return cls._parse_strict(buf, start, end) if text is None else cls(text)


class FieldDescription(NamedTuple):
    """One column of a RowDescription (an immutable value, like a row of
    ``pg_attribute``; build a new one with ``_replace`` to change it)."""

    name: str = ""
    table_oid: Annotated[int, UINT32] = 0
    column_attr: Annotated[int, INT16] = 0
    type_oid: Annotated[int, UINT32] = 0
    type_size: Annotated[int, INT16] = -1
    type_modifier: Annotated[int, INT32] = -1
    format_code: Annotated[int, INT16] = 0


@message(b"T", long=True)
class RowDescription(BackendMessage):
    """The columns of the rows that follow."""

    fields: list[FieldDescription] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        w.count(len(self.fields), "fields")
        for f in self.fields:
            w.cstring(f.name, "fields.name")
            w.uint32(f.table_oid, "fields.table_oid")
            w.int16(f.column_attr, "fields.column_attr")
            w.uint32(f.type_oid, "fields.type_oid")
            w.int16(f.type_size, "fields.type_size")
            w.int32(f.type_modifier, "fields.type_modifier")
            w.int16(f.format_code, "fields.format_code")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(fields=_hotpath.read_row_description(r, FieldDescription))

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        fields = _hotpath.row_description_fields(buf, start, end, FieldDescription)
        return cls._parse_strict(buf, start, end) if fields is None else cls(fields)


@message(b"D", long=True, parser=_hotpath.data_row_parser)
class DataRow(_hotpath.RowSlots, BackendMessage):
    """One row of a result; ``None`` stands for SQL NULL.

    A row from a stream decoder keeps its payload and splits it into
    ``columns`` on first access, so code that only forwards or counts rows
    (a proxy, a tracer) never pays for the split, and re-encoding an
    untouched row is a copy.  A malformed row therefore raises its
    DecodingError when ``columns`` is first read; :meth:`decode` checks at
    once.  Framing never depends on a row's contents, so a bad row cannot
    desynchronise the stream.
    """

    __slots__ = ()

    def __init__(self, columns: list[bytes | None] | None = None) -> None:
        # The payload while the row is not split (_raw not None), then the
        # columns.
        self._columns: list[bytes | None] | None = [] if columns is None else columns
        self._raw: bytes | None = None

    #: The values; None stands for SQL NULL.  (A descriptor from the
    #: hot-path module, which splits a decoded row on first access.)
    columns: list[bytes | None] = _hotpath.data_row_columns(_hotpath.RowSlots)

    #: The hottest encoder, from the hot-path module; values it does not
    #: take go to the validating encoder.
    to_wire = _hotpath.data_row_to_wire(_hotpath.RowSlots, PGMessage.to_wire)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, DataRow)
        return self.columns == other.columns

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass messages

    def __repr__(self) -> str:
        # A repr never raises: a malformed row says so instead of its values.
        try:
            return f"DataRow(columns={self.columns!r})"
        except DecodingError as exc:
            return f"DataRow(<malformed: {exc.reason}>, payload={self._raw!r})"

    def encode_into(self, buf: bytearray) -> None:
        """Append the wire form to ``buf`` (nothing on an EncodingError)."""
        buf += self.to_wire()  # an invalid row raises before anything is appended

    def _write(self, w: Writer) -> None:
        w.values(self.columns, "columns")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        cols = _hotpath.split_data_row(r.buf, r.pos, r.end)
        r.pos = r.end
        return cls(cols)


@message(b"C")
class CommandComplete(BackendMessage):
    """A statement finished; ``tag`` is e.g. ``"SELECT 3"`` or ``"INSERT 0 1"``."""

    tag: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.tag, "tag")

    # Every statement's answer, and every tracer's: worth a direct path.
    def _fast_wire(self) -> bytes | None:
        tag = fast_utf8(self.tag)
        return None if tag is None else frame(b"C", tag + b"\0")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(tag=r.cstring())

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        text = _hotpath.cstring_payload(buf, start, end)
        return cls._parse_strict(buf, start, end) if text is None else cls(text)


@message(b"I")
class EmptyQueryResponse(BackendMessage):
    """Answers an empty query string in place of CommandComplete."""


@message(b"Z")
class ReadyForQuery(BackendMessage):
    """The server is ready for a new query cycle."""

    status: TransactionStatus = TransactionStatus.IDLE

    def _fast_wire(self) -> bytes | None:
        status = self.status
        return _READY_WIRES.get(status) if type(status) is TransactionStatus else None

    def _write(self, w: Writer) -> None:
        # Type first: a bytes status would be compared with the str keys (a
        # BytesWarning under -bb), an unhashable one raise TypeError.
        if not isinstance(self.status, str) or self.status not in _STATUS_BYTES:
            w.fail("status", f"{self.status!r} is not a TransactionStatus")
        w.raw(_STATUS_BYTES[self.status], "status")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        b = r.byte1()
        status = _STATUSES.get(b)
        if status is None:
            r.fail(f"unknown transaction status byte {bytes([b])!r}", at=r.pos - 1)
        return cls(status=status)

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        if end - start == 1 and (status := _STATUSES.get(buf[start])) is not None:
            return cls(status)
        return cls._parse_strict(buf, start, end)


_STATUSES = {ord(s.value): s for s in TransactionStatus}
_STATUS_BYTES: dict[str, bytes] = {s: s.value.encode() for s in TransactionStatus}
_READY_WIRES = {s: b"Z\0\0\0\5" + _STATUS_BYTES[s] for s in TransactionStatus}
