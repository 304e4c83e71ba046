"""Simple query: Query and the server's result messages.

RowDescription and DataRow also answer extended-query Describe/Execute;
they live here because the simple-query flow introduces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from .. import _framing
from .._wire import Reader, Writer
from ..constants import TransactionStatus
from ._base import BackendMessage, FrontendMessage

__all__ = [
    "CommandComplete",
    "DataRow",
    "EmptyQueryResponse",
    "FieldDescription",
    "Query",
    "ReadyForQuery",
    "RowDescription",
]


@dataclass(slots=True)
class Query(FrontendMessage):
    """A simple query: one or more SQL statements separated by semicolons."""

    identifier = b"Q"
    query_string: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.query_string, "query_string")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(query_string=r.cstring())


@dataclass(slots=True)
class FieldDescription:
    """One column of a RowDescription."""

    name: str = ""
    table_oid: int = 0
    column_attr: int = 0
    type_oid: int = 0
    type_size: int = -1
    type_modifier: int = -1
    format_code: int = 0


@dataclass(slots=True)
class RowDescription(BackendMessage):
    """The columns of the rows that follow."""

    identifier = b"T"
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
        return cls(fields=_framing.read_row_description(r, FieldDescription))


@dataclass(slots=True)
class DataRow(BackendMessage):
    """One row of a result; ``None`` stands for SQL NULL."""

    identifier = b"D"
    columns: list[bytes | None] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        w.count(len(self.columns), "columns")
        for v in self.columns:
            w.value(v, "columns")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(columns=_framing.split_data_row(r))


@dataclass(slots=True)
class CommandComplete(BackendMessage):
    """A statement finished; ``tag`` is e.g. ``"SELECT 3"`` or ``"INSERT 0 1"``."""

    identifier = b"C"
    tag: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.tag, "tag")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(tag=r.cstring())


@dataclass(slots=True)
class EmptyQueryResponse(BackendMessage):
    """Answers an empty query string in place of CommandComplete."""

    identifier = b"I"


@dataclass(slots=True)
class ReadyForQuery(BackendMessage):
    """The server is ready for a new query cycle."""

    identifier = b"Z"
    status: TransactionStatus = TransactionStatus.IDLE

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


_STATUSES = {ord(s.value): s for s in TransactionStatus}
_STATUS_BYTES: dict[str, bytes] = {s: s.value.encode() for s in TransactionStatus}
