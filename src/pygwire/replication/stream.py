"""Sans-I/O consumers of a replication stream: physical and logical.

Feed each CopyData payload the server sends after START_REPLICATION to a
stream's ``receive``; it returns what the payload means.  Both
consumers track three WAL locations: *received* (what arrived), *flushed*
and *applied* (what the caller says it made durable and applied, through
:meth:`~ReplicationStream.mark_flushed` and
:meth:`~ReplicationStream.mark_applied`), and build the
:class:`~pygwire.replication.streaming.StandbyStatusUpdate` that reports
them.  A keepalive that asks for a reply sets
:attr:`~ReplicationStream.reply_pending` until :meth:`status_update` builds
the answer.  Nothing is sent by this module: the caller wraps the update in
CopyData (``update.copy_data()``) and writes it.

:class:`PhysicalStream` hands out the WAL as XLogData; *received* is the end
of the WAL received.

:class:`LogicalStream` decodes the ``pgoutput`` messages inside XLogData.
It knows the protocol version and whether it is inside a streamed
transaction (which changes the layouts), keeps the Relation and Type
messages it has seen, and turns each Insert, Update and Delete into a
:class:`RowChange` naming the table and mapping column names to values,
and each Truncate into a :class:`TruncateChange`.  It checks the order the
documentation gives (Begin before Commit, Stream Start before Stream Stop,
changes only inside a transaction or a stream), that every change names a
relation it has described and that every tuple has one value per column.
Any fault is a :class:`~pygwire.exceptions.DecodingError` naming the
message and the offset in the CopyData payload that was fed; a payload
that raises changes nothing.
"""

from __future__ import annotations

import codecs
import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .._hotpath import (
    ChangeSlots,
    RelationEntry,
    RowState,
    pgoutput_boundary_maker,
    pgoutput_row_maker,
    relation_entry,
)
from ..exceptions import DecodingError
from ..messages import CopyData
from .pgoutput import (
    PGOUTPUT,
    Begin,
    BeginPrepare,
    ColumnKind,
    Commit,
    CommitPrepared,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    PgOutputContext,
    PgOutputMessage,
    Prepare,
    Relation,
    RollbackPrepared,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Truncate,
    TruncateOption,
    TupleData,
    TypeMessage,
    Update,
)
from .streaming import (
    STREAMING,
    HotStandbyFeedback,
    PrimaryKeepalive,
    PrimaryStatusUpdate,
    StandbyStatusUpdate,
    XLogData,
)
from .values import LSN, ReplicationValueError, Timestamp, lsn_unchecked, timestamp_unchecked

__all__ = [
    "UNCHANGED_TOAST",
    "ChangeKind",
    "ColumnValue",
    "LogicalEvent",
    "LogicalStream",
    "PhysicalStream",
    "ReplicationStream",
    "RowChange",
    "TruncateChange",
    "UnchangedToast",
]

#: Bytes in front of the output plugin's message in an XLogData payload:
#: the tag, two LSNs and the send time.
_XLOGDATA_HEADER: Final = 1 + 8 + 8 + 8
_XLOGDATA_END_TIME = struct.Struct("!Qq")  # at offset 9
_U64 = struct.Struct("!Q")

_Bytes = bytes | bytearray | memoryview
_LSN_MAX = 2**64 - 1


class UnchangedToast(enum.Enum):
    """The type of :data:`UNCHANGED_TOAST`."""

    UNCHANGED_TOAST = "u"

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST: Final = UnchangedToast.UNCHANGED_TOAST
"""The value of a TOASTed column an update did not change: the server does not
send it, the subscriber keeps the one it has."""

ColumnValue = str | bytes | None | UnchangedToast
"""A column's value in a change: text-format values decoded to ``str``, binary-
format values as ``bytes``, NULL as None, or UNCHANGED_TOAST."""


class ChangeKind(enum.StrEnum):
    """What a :class:`RowChange` did."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class RowChange(ChangeSlots):  # noqa: PLW1641 - mutable and compared by value: unhashable
    """One row inserted, updated or deleted, with names resolved.

    ``new`` maps every published column to its new value (inserts and
    updates).  ``old`` is the old row under REPLICA IDENTITY FULL, or,
    when ``old_is_key``, only the replica identity key's columns (an update
    that changed the key, or a delete under a primary key or index
    identity); None when the server sent no old values.  ``xid`` is the
    transaction's id, inside a streamed transaction the (sub)transaction id
    the change carries.  ``lsn`` is the WAL location of the XLogData that
    carried it.  ``message`` is the Insert, Update or Delete itself
    (decoded when first read: a consumer that only wants the values never
    pays for it).  Compares and prints like a dataclass of those fields.
    """

    __slots__ = ()
    __match_args__ = ("kind", "relation", "new", "old", "old_is_key", "xid", "lsn", "message")

    kind: ChangeKind
    relation: Relation
    new: dict[str, ColumnValue] | None
    old: dict[str, ColumnValue] | None
    old_is_key: bool
    xid: int | None
    lsn: LSN

    def __init__(  # noqa: PLR0917 - the fields in order, as the dataclass it was took them
        self,
        kind: ChangeKind,
        relation: Relation,
        new: dict[str, ColumnValue] | None,
        old: dict[str, ColumnValue] | None,
        old_is_key: bool,
        xid: int | None,
        lsn: LSN,
        message: Insert | Update | Delete,
    ) -> None:
        self.kind = kind
        self.relation = relation
        self.new = new
        self.old = old
        self.old_is_key = old_is_key
        self.xid = xid
        self.lsn = lsn
        self._message = message
        self._payload = None
        self._context = None

    @property
    def message(self) -> Insert | Update | Delete:
        """The Insert, Update or Delete message."""
        msg = self._message
        if msg is None:
            # Made by the fast path, which accepted the payload: the strict
            # decoder reads it the same way.
            payload, self._payload = self._payload, None
            decoded = PGOUTPUT.decode(payload[_XLOGDATA_HEADER:], self._context)
            assert isinstance(decoded, (Insert, Update, Delete))
            msg = self._message = decoded
        return msg

    def _fields(self) -> tuple[object, ...]:
        return (
            self.kind,
            self.relation,
            self.new,
            self.old,
            self.old_is_key,
            self.xid,
            self.lsn,
            self.message,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, RowChange)
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        names = self.__match_args__
        body = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"{type(self).__name__}({body})"

    @property
    def schema(self) -> str:
        """The table's schema (empty for ``pg_catalog``)."""
        return self.relation.namespace

    @property
    def table(self) -> str:
        """The table's name."""
        return self.relation.name


@dataclass(slots=True)
class TruncateChange:
    """Tables truncated together, with names resolved."""

    relations: list[Relation]
    options: TruncateOption
    xid: int | None
    lsn: LSN
    message: Truncate

    @property
    def cascade(self) -> bool:
        """TRUNCATE ... CASCADE."""
        return self.message.cascade

    @property
    def restart_identity(self) -> bool:
        """TRUNCATE ... RESTART IDENTITY."""
        return self.message.restart_identity


LogicalEvent = RowChange | TruncateChange | PgOutputMessage | PrimaryKeepalive | PrimaryStatusUpdate
"""What :meth:`LogicalStream.receive` returns: a change, another ``pgoutput``
message, or the server's keepalive or status update."""

#: Makes a RowChange straight from an XLogData payload when it is
#: well-formed (the compiled twin, when built, does it without Python).
_make_row = pgoutput_row_maker(
    RowChange, LSN, (ChangeKind.INSERT, ChangeKind.UPDATE, ChangeKind.DELETE), UNCHANGED_TOAST
)
#: Makes a Begin or Commit straight from an XLogData payload likewise.
_make_boundary = pgoutput_boundary_maker(Begin, Commit, LSN, Timestamp)


class ReplicationStream:
    """What physical and logical consumers share: decoding the streaming
    messages, the three WAL locations and the replies."""

    def __init__(self, start_lsn: LSN | int | str = 0) -> None:
        start = start_lsn if isinstance(start_lsn, LSN) else LSN(start_lsn)
        self.received_lsn = start
        """The end of what was received."""
        self.flushed_lsn = start
        """What the caller made durable (:meth:`mark_flushed`)."""
        self.applied_lsn = start
        """What the caller applied (:meth:`mark_applied`)."""
        self._server_wal_end = LSN(0)
        self._server_time: Timestamp | None = None
        # The last XLogData payload whose header was not read into the two
        # above yet: the fast paths keep the payload, the properties read it.
        self._server_header: object = None
        self.reply_pending = False
        """A keepalive asked for a reply that :meth:`status_update` has not built
        yet."""

    @property
    def server_wal_end(self) -> LSN:
        """The server's end of WAL, from its last XLogData or keepalive."""
        if self._server_header is not None:
            self._read_server_header()
        return self._server_wal_end

    @property
    def server_time(self) -> Timestamp | None:
        """The server's clock in its last XLogData or keepalive."""
        if self._server_header is not None:
            self._read_server_header()
        return self._server_time

    def _read_server_header(self) -> None:
        header, self._server_header = self._server_header, None
        assert isinstance(header, bytes)
        end, sent = _XLOGDATA_END_TIME.unpack_from(header, 9)
        self._server_wal_end = lsn_unchecked(end)
        self._server_time = timestamp_unchecked(sent)

    def _streaming_message(
        self, data: _Bytes | CopyData
    ) -> XLogData | PrimaryKeepalive | PrimaryStatusUpdate:
        msg = STREAMING.decode(data.data if isinstance(data, CopyData) else data)
        if not isinstance(msg, (XLogData, PrimaryKeepalive, PrimaryStatusUpdate)):
            raise DecodingError(
                type(msg).__name__, 0, "the client sends this message; the server never does"
            )
        return msg

    def _note_server(self, msg: XLogData | PrimaryKeepalive) -> None:
        self._server_header = None
        self._server_wal_end = msg.wal_end
        self._server_time = msg.send_time
        if isinstance(msg, PrimaryKeepalive) and msg.reply_requested:
            self.reply_pending = True

    def mark_flushed(self, lsn: LSN | int | str) -> None:
        """The caller made everything up to ``lsn`` durable.

        Locations only move forward: a lower one is ignored.  For logical
        replication this is what the server keeps as the slot's
        ``confirmed_flush_lsn``: report a transaction's ``end_lsn`` once it
        is safe.
        """
        value = lsn if isinstance(lsn, LSN) else LSN(lsn)
        self.flushed_lsn = max(self.flushed_lsn, value)

    def mark_applied(self, lsn: LSN | int | str) -> None:
        """The caller applied everything up to ``lsn`` (forward only)."""
        value = lsn if isinstance(lsn, LSN) else LSN(lsn)
        self.applied_lsn = max(self.applied_lsn, value)

    def confirm(self, lsn: LSN | int | str) -> None:
        """Both :meth:`mark_flushed` and :meth:`mark_applied`."""
        self.mark_flushed(lsn)
        self.mark_applied(lsn)

    def status_update(
        self, *, now: Timestamp | None = None, reply_requested: bool = False
    ) -> StandbyStatusUpdate:
        """The status update reporting the three locations (and answering
        a keepalive: it clears :attr:`reply_pending`)."""
        self.reply_pending = False
        return StandbyStatusUpdate(
            write=self.received_lsn,
            flush=self.flushed_lsn,
            apply=self.applied_lsn,
            send_time=Timestamp.now() if now is None else now,
            reply_requested=reply_requested,
        )

    @staticmethod
    def hot_standby_feedback(
        xmin: int,
        *,
        xmin_epoch: int = 0,
        catalog_xmin: int = 0,
        catalog_xmin_epoch: int = 0,
        now: Timestamp | None = None,
    ) -> HotStandbyFeedback:
        """A hot standby feedback message; ``xmin`` 0 (with ``catalog_xmin``
        0) turns the feedback off."""
        return HotStandbyFeedback(
            send_time=Timestamp.now() if now is None else now,
            xmin=xmin,
            xmin_epoch=xmin_epoch,
            catalog_xmin=catalog_xmin,
            catalog_xmin_epoch=catalog_xmin_epoch,
        )


class PhysicalStream(ReplicationStream):
    """A physical replication stream: WAL in XLogData."""

    def receive(self, data: _Bytes | CopyData) -> XLogData | PrimaryKeepalive | PrimaryStatusUpdate:
        """Decode one CopyData payload from the server."""
        msg = self._streaming_message(data)
        if isinstance(msg, XLogData):
            end = int(msg.wal_start) + len(msg.data)
            if end > _LSN_MAX:
                raise DecodingError("XLogData", 1, "the WAL data runs past the largest LSN")
            self.received_lsn = max(self.received_lsn, LSN(end))
            self._note_server(msg)
        elif isinstance(msg, PrimaryKeepalive):
            self._note_server(msg)
        return msg


class _Txn(enum.Enum):
    NONE = 0
    PLAIN = 1  # Begin .. Commit
    PREPARED = 2  # Begin Prepare .. Prepare


class LogicalStream(ReplicationStream):
    """A logical replication stream from ``pgoutput``.

    ``proto_version`` and ``streaming`` must be what START_REPLICATION
    asked for (see :func:`~pygwire.replication.commands.pgoutput_options`);
    text-format values are decoded with ``encoding`` (the database's).
    """

    def __init__(
        self,
        proto_version: int = 1,
        *,
        streaming: bool | Literal["off", "on", "parallel"] = False,
        encoding: str = "utf-8",
        start_lsn: LSN | int | str = 0,
    ) -> None:
        super().__init__(start_lsn)
        mode = ("on" if streaming else "off") if isinstance(streaming, bool) else streaming
        if not isinstance(mode, str) or mode not in ("off", "on", "parallel"):
            raise ReplicationValueError(f"streaming {streaming!r} is not off, on or parallel")
        self._parallel = mode == "parallel"
        # Validates the version and the combination (parallel needs 4).
        self._outside = PgOutputContext(proto_version, False, self._parallel)
        if mode != "off" and proto_version < 2:
            raise ReplicationValueError("streaming needs proto_version 2 or later")
        self._inside = (
            PgOutputContext(proto_version, True, self._parallel) if proto_version >= 2 else None
        )
        try:
            # Not b"": decoding nothing skips the check for a text encoding.
            b"a".decode(encoding, "replace")
        except (LookupError, TypeError):
            raise ReplicationValueError(f"{encoding!r} is not a text encoding") from None
        self.encoding = encoding
        """The encoding of text-format values (the database's)."""
        self._relations: dict[int, Relation] = {}
        # What the fast path needs of each relation (names and key flags).
        self._entries: dict[int, RelationEntry] = {}
        # The fast paths read text as UTF-8 only; other encodings take the
        # strict path all the way.
        self._fast = codecs.lookup(encoding).name == "utf-8"
        self._types: dict[int, TypeMessage] = {}
        self._txn = _Txn.NONE
        self._txn_xid: int | None = None
        self._stream_xid: int | None = None
        # What the row fast path reads (None: not now), see _rows_open.
        self._rows: RowState | None = None

    # -- views -------------------------------------------------------------------
    @property
    def proto_version(self) -> int:
        """The ``pgoutput`` protocol version of the stream."""
        return self._outside.proto_version

    @property
    def context(self) -> PgOutputContext:
        """The layout in force for the next message."""
        inside = self._inside
        # Inside is None only before version 2, where no stream can open.
        return inside if self._stream_xid is not None and inside is not None else self._outside

    @property
    def in_stream(self) -> bool:
        """Between Stream Start and Stream Stop."""
        return self._stream_xid is not None

    @property
    def stream_xid(self) -> int | None:
        """The streamed transaction whose block is open, if any."""
        return self._stream_xid

    @property
    def in_transaction(self) -> bool:
        """Between Begin and Commit (or Begin Prepare and Prepare)."""
        return self._txn is not _Txn.NONE

    @property
    def transaction_xid(self) -> int | None:
        """The xid of the transaction being sent (Begin / Begin Prepare)."""
        return self._txn_xid

    @property
    def relations(self) -> Mapping[int, Relation]:
        """Every relation described so far, by relation id."""
        return self._relations

    @property
    def types(self) -> Mapping[int, TypeMessage]:
        """Every Type message so far, by type OID."""
        return self._types

    # -- receiving --------------------------------------------------------------
    def receive(self, data: _Bytes | CopyData) -> LogicalEvent:
        """Decode one CopyData payload from the server."""
        # The frequent messages first, when they are well-formed and in
        # their place; anything else (every fault included) takes the
        # strict path, which decides and words it.
        rows = self._rows
        if rows is not None:  # a transaction or stream block is open
            change: RowChange | None = _make_row(data, rows)
            if change is not None:
                self._server_header = data  # the maker took it: bytes
                if change.lsn > self.received_lsn:  # noqa: PLR1730 - no call: runs per change
                    self.received_lsn = change.lsn
                return change
        if self._fast:
            boundary: Begin | Commit | None = _make_boundary(data)
            if boundary is not None:
                if type(boundary) is Begin:
                    if self._txn is _Txn.NONE and self._stream_xid is None:
                        self._txn, self._txn_xid = _Txn.PLAIN, boundary.xid
                        self._rows_open()
                        self._received_header(data)
                        return boundary
                elif self._txn is _Txn.PLAIN:
                    self._txn, self._txn_xid = _Txn.NONE, None
                    self._rows_open()
                    self._received_header(data)
                    return boundary
        msg = self._streaming_message(data)
        if not isinstance(msg, XLogData):
            if isinstance(msg, PrimaryKeepalive):
                self._note_server(msg)
                # Between transactions the server's end of WAL counts as
                # written: in logical replication the write location is
                # only informational (the slot keeps what flush confirms).
                if not self.in_transaction and not self.in_stream:
                    self.received_lsn = max(self.received_lsn, msg.wal_end)
            return msg
        ctx = self.context
        try:
            inner = PGOUTPUT.decode(msg.data, ctx)
            event = self._apply(inner, msg.wal_start, ctx)
        except DecodingError as exc:
            # Offsets count from the start of what was fed, not of the
            # output plugin's message inside it.
            raise DecodingError(exc.message, exc.offset + _XLOGDATA_HEADER, exc.reason) from exc
        self._note_server(msg)
        self.received_lsn = max(self.received_lsn, msg.wal_start)
        return event

    def _rows_open(self) -> None:
        """Keep what the row fast path reads in step with the state: None
        outside any transaction or stream block (or for other encodings)."""
        stream_xid = self._stream_xid
        if not self._fast or (self._txn is _Txn.NONE and stream_xid is None):
            self._rows = None
        elif stream_xid is not None:
            self._rows = (self._entries, None, True, self._inside)
        else:
            self._rows = (self._entries, self._txn_xid, False, self._outside)

    def _received_header(self, data: Any) -> None:
        """An XLogData payload (bytes: the fast path took it): the server's
        end and clock are in its header, and the received location moves to
        its start."""
        self._server_header = data
        start = _U64.unpack_from(data, 1)[0]
        if start > self.received_lsn:
            self.received_lsn = lsn_unchecked(start)

    def _apply(self, msg: object, lsn: LSN, ctx: PgOutputContext) -> LogicalEvent:
        """Check ``msg`` against the stream's state, then apply it.

        Every check comes before the first change of state, so a message
        that fails leaves the stream as it was.
        """
        name = type(msg).__name__
        txn, stream = self._txn, self._stream_xid
        idle = txn is _Txn.NONE and stream is None

        def refuse(why: str) -> DecodingError:
            return DecodingError(name, 0, why)

        if isinstance(msg, (Insert, Update, Delete)):
            if idle:
                raise refuse("a change outside any transaction or stream")
            return self._row_change(msg, lsn, ctx)
        if isinstance(msg, Truncate):
            if idle:
                raise refuse("a change outside any transaction or stream")
            return self._truncate(msg, lsn, ctx)
        if isinstance(msg, Relation):
            self._relations[msg.relation_id] = msg
            columns = msg.columns
            self._entries[msg.relation_id] = relation_entry(
                msg, [c.name for c in columns], [c.is_key for c in columns]
            )
            return msg
        if isinstance(msg, TypeMessage):
            self._types[msg.type_oid] = msg
            return msg
        if isinstance(msg, Origin):
            if idle:
                raise refuse("an Origin outside any transaction or stream")
            return msg
        if isinstance(msg, LogicalMessage):
            if msg.transactional and idle:
                raise refuse("a transactional message outside any transaction or stream")
            return msg
        if isinstance(msg, (Begin, BeginPrepare)):
            if not idle:
                raise refuse("a transaction begins while another is open")
            self._txn = _Txn.PLAIN if isinstance(msg, Begin) else _Txn.PREPARED
            self._txn_xid = msg.xid
            self._rows_open()
            return msg
        if isinstance(msg, Commit):
            if txn is not _Txn.PLAIN:
                raise refuse("Commit without Begin")
            self._txn, self._txn_xid = _Txn.NONE, None
            self._rows_open()
            return msg
        if isinstance(msg, Prepare):
            if txn is not _Txn.PREPARED:
                raise refuse("Prepare without Begin Prepare")
            self._txn, self._txn_xid = _Txn.NONE, None
            self._rows_open()
            return msg
        if isinstance(msg, StreamStart):
            if not idle:
                raise refuse("Stream Start inside a transaction or another stream block")
            self._stream_xid = msg.xid
            self._rows_open()
            return msg
        if isinstance(msg, StreamStop):
            if stream is None:
                raise refuse("Stream Stop without Stream Start")
            self._stream_xid = None
            self._rows_open()
            return msg
        if isinstance(
            msg, (StreamCommit, StreamAbort, StreamPrepare, CommitPrepared, RollbackPrepared)
        ):
            if not idle:
                raise refuse("must come outside any transaction or stream block")
            return msg
        raise refuse("not a pgoutput message")  # pragma: no cover - the registry is closed

    # -- changes ------------------------------------------------------------------
    def _relation(self, msg: Insert | Update | Delete | Truncate, rel_id: int, at: int) -> Relation:
        relation = self._relations.get(rel_id)
        if relation is None:
            raise DecodingError(
                type(msg).__name__, at, f"relation {rel_id} was never described by a Relation"
            )
        return relation

    def _row_change(
        self, msg: Insert | Update | Delete, lsn: LSN, ctx: PgOutputContext
    ) -> RowChange:
        head = 1 + (4 if ctx.in_stream else 0)  # the tag and, in a stream, the xid
        relation = self._relation(msg, msg.relation_id, head)
        at = head + 4  # the first tuple's marker byte
        old: dict[str, ColumnValue] | None = None
        new: dict[str, ColumnValue] | None = None
        old_is_key = False
        if isinstance(msg, Insert):
            kind = ChangeKind.INSERT
            new = self._values(msg, relation, msg.new, at + 1, key=False)
        else:
            kind = ChangeKind.UPDATE if isinstance(msg, Update) else ChangeKind.DELETE
            before = msg.key if msg.key is not None else msg.old
            if before is not None:
                old_is_key = msg.key is not None
                old = self._values(msg, relation, before, at + 1, key=old_is_key)
                at += 1 + _tuple_size(before)
            if isinstance(msg, Update):
                new = self._values(msg, relation, msg.new, at + 1, key=False)
        xid = msg.xid if ctx.in_stream else self._txn_xid
        return RowChange(kind, relation, new, old, old_is_key, xid, lsn, msg)

    def _values(
        self,
        msg: Insert | Update | Delete,
        relation: Relation,
        columns: TupleData,
        at: int,
        *,
        key: bool,
    ) -> dict[str, ColumnValue]:
        """The tuple starting at offset ``at`` as a name -> value mapping."""
        described = relation.columns
        if len(columns) != len(described):
            raise DecodingError(
                type(msg).__name__,
                at,
                f"tuple of {len(columns)} columns for {relation.namespace}.{relation.name}, "
                f"which has {len(described)}",
            )
        values: dict[str, ColumnValue] = {}
        pos = at + 2
        for col, (kind, data) in zip(described, columns, strict=True):
            if not key or col.is_key:
                values[col.name] = self._value(msg, col.name, kind, data, pos)
            pos += 1 if data is None else 5 + len(data)
        return values

    def _value(
        self, msg: object, column: str, kind: ColumnKind, data: bytes | None, pos: int
    ) -> ColumnValue:
        if kind is ColumnKind.TEXT:
            assert data is not None
            try:
                return data.decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise DecodingError(
                    type(msg).__name__,
                    pos + 5 + exc.start,
                    f"column {column!r} is not valid {self.encoding}: {exc.reason}",
                ) from None
        if kind is ColumnKind.BINARY:
            return data
        return None if kind is ColumnKind.NULL else UNCHANGED_TOAST

    def _truncate(self, msg: Truncate, lsn: LSN, ctx: PgOutputContext) -> TruncateChange:
        first = 1 + (4 if ctx.in_stream else 0) + 4 + 1  # tag, xid, count, options
        relations = [
            self._relation(msg, rel_id, first + 4 * i) for i, rel_id in enumerate(msg.relation_ids)
        ]
        xid = msg.xid if ctx.in_stream else self._txn_xid
        return TruncateChange(relations, msg.options, xid, lsn, msg)


def _tuple_size(columns: TupleData) -> int:
    """Bytes a tuple takes on the wire: the count, then each column."""
    return 2 + sum(1 if data is None else 5 + len(data) for _, data in columns)
