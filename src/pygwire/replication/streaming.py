"""The streaming replication messages inside CopyData (physical and logical).

After ``START_REPLICATION`` the server answers CopyBothResponse and both
sides exchange CopyData whose payload is one of these messages, from the
"Streaming Replication Protocol" section of the protocol documentation.
From the server: :class:`XLogData` (``w``, a section of WAL, or for
logical replication one output plugin message), :class:`PrimaryKeepalive`
(``k``) and :class:`PrimaryStatusUpdate` (``s``).  From the client:
:class:`StandbyStatusUpdate` (``r``), :class:`HotStandbyFeedback` (``h``)
and :class:`RequestPrimaryStatus` (``p``).  The ``s`` and ``p`` pair is
newer than PostgreSQL 18 (documented after it).  ``STREAMING`` is their
registry; it needs no context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from .._wire import Reader, Writer
from ..constants import MessageDirection
from ..messages._subprotocol import SubMessage, SubProtocol
from .values import LSN, LSN_ZERO, TIMESTAMP_ZERO, Timestamp, lsn_unchecked, timestamp_unchecked

__all__ = [
    "STREAMING",
    "HotStandbyFeedback",
    "PrimaryKeepalive",
    "PrimaryStatusUpdate",
    "RequestPrimaryStatus",
    "StandbyStatusUpdate",
    "StreamingMessage",
    "XLogData",
]

STREAMING: SubProtocol[None] = SubProtocol("streaming replication", None)
"""The streaming replication sub-protocol (no context)."""


def write_flag(w: Writer, value: bool, field: str) -> None:
    """A byte the documentation defines as 1 or 0 (also Int8 flags of
    pgoutput, the same byte): anything but a boolean or the integers 0 and
    1 would be a guess."""
    if value is not True and value is not False and not (type(value) is int and 0 <= value <= 1):
        w.fail(field, f"expected a boolean, got {value!r}")
    w.byte1(1 if value else 0, field)


def _read_flag(r: Reader, what: str) -> bool:
    at = r.pos
    value = r.byte1()
    if value > 1:
        r.fail(f"{what} is {value}; the protocol defines only 0 and 1", at=at)
    return value == 1


class StreamingMessage(SubMessage[None]):
    """Base of the streaming replication messages."""

    __slots__ = ()
    protocol = STREAMING


@dataclass(slots=True)
class XLogData(StreamingMessage):
    """A section of the WAL stream (``w``).

    In logical replication ``data`` is one message of the output plugin
    (for ``pgoutput``, see :mod:`pygwire.replication.pgoutput`) and
    ``wal_start`` the LSN it belongs to.
    """

    tag = b"w"
    direction = MessageDirection.BACKEND
    #: The starting point of the WAL data in this message.
    wal_start: LSN = LSN_ZERO
    #: The current end of WAL on the server.
    wal_end: LSN = LSN_ZERO
    #: The server's clock when it sent the message.
    send_time: Timestamp = TIMESTAMP_ZERO
    data: bytes = b""

    def _write(self, w: Writer, ctx: None) -> None:
        w.uint64(self.wal_start, "wal_start")
        w.uint64(self.wal_end, "wal_end")
        w.int64(self.send_time, "send_time")
        w.raw(self.data, "data")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        start = lsn_unchecked(r.uint64())
        end = lsn_unchecked(r.uint64())
        return cls(start, end, timestamp_unchecked(r.int64()), r.rest())


@dataclass(slots=True)
class PrimaryKeepalive(StreamingMessage):
    """The server is alive (``k``); ``reply_requested`` asks for a status
    update as soon as possible, to avoid a timeout disconnect."""

    tag = b"k"
    direction = MessageDirection.BACKEND
    #: The current end of WAL on the server.
    wal_end: LSN = LSN_ZERO
    send_time: Timestamp = TIMESTAMP_ZERO
    reply_requested: bool = False

    def _write(self, w: Writer, ctx: None) -> None:
        w.uint64(self.wal_end, "wal_end")
        w.int64(self.send_time, "send_time")
        write_flag(w, self.reply_requested, "reply_requested")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        end = lsn_unchecked(r.uint64())
        sent = timestamp_unchecked(r.int64())
        return cls(end, sent, _read_flag(r, "reply flag"))


@dataclass(slots=True)
class PrimaryStatusUpdate(StreamingMessage):
    """The primary's WAL and transaction status (``s``), the answer to
    :class:`RequestPrimaryStatus`.

    Newer than PostgreSQL 18: documented after it, unknown to 15 and 18.
    """

    tag = b"s"
    direction = MessageDirection.BACKEND
    #: The latest WAL write position on the server.
    wal_write: LSN = LSN_ZERO
    #: Oldest transaction in its commit phase, epoch in the high 32 bits
    #: (the next transaction id to be assigned if none is).
    oldest_committing_full_xid: int = 0
    #: The next transaction id to be assigned, with its epoch likewise.
    next_full_xid: int = 0
    send_time: Timestamp = TIMESTAMP_ZERO

    def _write(self, w: Writer, ctx: None) -> None:
        w.uint64(self.wal_write, "wal_write")
        w.uint64(self.oldest_committing_full_xid, "oldest_committing_full_xid")
        w.uint64(self.next_full_xid, "next_full_xid")
        w.int64(self.send_time, "send_time")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        wal_write = lsn_unchecked(r.uint64())
        oldest = r.uint64()
        return cls(wal_write, oldest, r.uint64(), timestamp_unchecked(r.int64()))


@dataclass(slots=True)
class StandbyStatusUpdate(StreamingMessage):
    """The client's progress (``r``): WAL written, flushed and applied.

    Each location is of the last byte + 1.  For logical replication
    ``flush`` is what the server keeps as the slot's ``confirmed_flush_lsn``.
    """

    tag = b"r"
    direction = MessageDirection.FRONTEND
    write: LSN = LSN_ZERO
    flush: LSN = LSN_ZERO
    apply: LSN = LSN_ZERO
    #: The client's clock when it sent the message.
    send_time: Timestamp = TIMESTAMP_ZERO
    #: Ask the server to answer at once (a ping).
    reply_requested: bool = False

    def _write(self, w: Writer, ctx: None) -> None:
        w.uint64(self.write, "write")
        w.uint64(self.flush, "flush")
        w.uint64(self.apply, "apply")
        w.int64(self.send_time, "send_time")
        write_flag(w, self.reply_requested, "reply_requested")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        write = lsn_unchecked(r.uint64())
        flush = lsn_unchecked(r.uint64())
        apply = lsn_unchecked(r.uint64())
        sent = timestamp_unchecked(r.int64())
        return cls(write, flush, apply, sent, _read_flag(r, "reply flag"))


@dataclass(slots=True)
class HotStandbyFeedback(StreamingMessage):
    """The standby's oldest snapshots (``h``), so the primary keeps the rows
    they still need.  An ``xmin`` and ``catalog_xmin`` of 0 both turn the
    feedback off."""

    tag = b"h"
    direction = MessageDirection.FRONTEND
    send_time: Timestamp = TIMESTAMP_ZERO
    #: The standby's global xmin, excluding replication slots' catalog_xmin.
    xmin: int = 0
    xmin_epoch: int = 0
    #: The lowest catalog_xmin of the standby's replication slots, or 0.
    catalog_xmin: int = 0
    catalog_xmin_epoch: int = 0

    def _write(self, w: Writer, ctx: None) -> None:
        w.int64(self.send_time, "send_time")
        w.uint32(self.xmin, "xmin")
        w.uint32(self.xmin_epoch, "xmin_epoch")
        w.uint32(self.catalog_xmin, "catalog_xmin")
        w.uint32(self.catalog_xmin_epoch, "catalog_xmin_epoch")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        sent = timestamp_unchecked(r.int64())
        xmin = r.uint32()
        xmin_epoch = r.uint32()
        catalog_xmin = r.uint32()
        return cls(sent, xmin, xmin_epoch, catalog_xmin, r.uint32())


@dataclass(slots=True)
class RequestPrimaryStatus(StreamingMessage):
    """Ask the primary for a :class:`PrimaryStatusUpdate` (``p``).

    Newer than PostgreSQL 18: servers 15 and 18 end the connection when
    they receive it.
    """

    tag = b"p"
    direction = MessageDirection.FRONTEND
    send_time: Timestamp = TIMESTAMP_ZERO

    def _write(self, w: Writer, ctx: None) -> None:
        w.int64(self.send_time, "send_time")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        return cls(timestamp_unchecked(r.int64()))
