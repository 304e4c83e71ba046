"""The ``pgoutput`` logical replication messages, protocol versions 1 to 4.

With ``START_REPLICATION SLOT ... LOGICAL`` and the ``pgoutput`` plugin
each :class:`~pygwire.replication.streaming.XLogData` carries one of these
messages, laid out as in the "Logical Replication Message Formats" section
of the protocol documentation.  ``PGOUTPUT`` is their registry.

Some fields depend on the stream, not on the bytes: a change inside a
streamed transaction (between Stream Start and Stream Stop) carries the
transaction id, and a Stream Abort carries the abort LSN and time only when
``streaming`` is ``parallel``.  A :class:`PgOutputContext` says which
applies; decoding and encoding take one (the default is protocol version 1
outside a stream).  Messages of a later protocol version than the
context's are refused both ways, as are fields the context does not allow
(an ``xid`` outside a stream, say): what a peer of that version could not
read is never produced.

Tuples are lists of :class:`TupleColumn`, one per published column, each
``n`` (NULL), ``u`` (an unchanged TOASTed value, not sent), ``t`` (text) or
``b`` (binary) with the value's bytes as the server sent them.  Names
(schemas, tables, columns, origins, GIDs, message prefixes) are read as
UTF-8, the encoding pygwire assumes everywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, Self

from .._wire import Reader, Writer
from ..constants import MessageDirection
from ..exceptions import DecodingError, EncodingError
from ..messages._subprotocol import SubMessage, SubProtocol
from .streaming import write_flag
from .values import (
    LSN,
    LSN_ZERO,
    TIMESTAMP_ZERO,
    ReplicationValueError,
    Timestamp,
    lsn_unchecked,
    timestamp_unchecked,
)

__all__ = [
    "PGOUTPUT",
    "PGOUTPUT_MAX_VERSION",
    "Begin",
    "BeginPrepare",
    "ColumnKind",
    "Commit",
    "CommitPrepared",
    "Delete",
    "Insert",
    "LogicalMessage",
    "Origin",
    "PgOutputContext",
    "PgOutputMessage",
    "Prepare",
    "Relation",
    "RelationColumn",
    "ReplicaIdentity",
    "RollbackPrepared",
    "StreamAbort",
    "StreamCommit",
    "StreamPrepare",
    "StreamStart",
    "StreamStop",
    "Truncate",
    "TruncateOption",
    "TupleColumn",
    "TupleData",
    "TypeMessage",
    "Update",
]

PGOUTPUT_MAX_VERSION = 4
"""The newest ``proto_version`` whose layouts this module knows."""


@dataclass(frozen=True, slots=True)
class PgOutputContext:
    """What the layout of a ``pgoutput`` message depends on.

    ``proto_version`` is the one asked for in START_REPLICATION;
    ``in_stream`` is true between Stream Start and Stream Stop;
    ``parallel`` is true when ``streaming`` is ``parallel`` (then Stream
    Abort carries the abort LSN and time).
    """

    proto_version: int = 1
    in_stream: bool = False
    parallel: bool = False

    def __post_init__(self) -> None:
        v = self.proto_version
        if not isinstance(v, int) or not 1 <= v <= PGOUTPUT_MAX_VERSION:
            raise ReplicationValueError(
                f"pgoutput proto_version {v!r} is not one of 1..{PGOUTPUT_MAX_VERSION}"
            )
        if self.in_stream and v < 2:
            raise ReplicationValueError("streamed transactions need proto_version 2 or later")
        if self.parallel and v < 4:
            raise ReplicationValueError("streaming = parallel needs proto_version 4 or later")


PGOUTPUT: SubProtocol[PgOutputContext] = SubProtocol("pgoutput", PgOutputContext())
"""The ``pgoutput`` sub-protocol; its context is a :class:`PgOutputContext`."""


class ColumnKind(enum.StrEnum):
    """How a column appears in a tuple."""

    NULL = "n"
    UNCHANGED_TOAST = "u"
    TEXT = "t"
    BINARY = "b"


_N, _U, _T, _B = (ord(k) for k in "nutb")
_KINDS = {ord(k.value): k for k in ColumnKind}


class TupleColumn(NamedTuple):
    """One column of a tuple: its kind and, for text and binary, its bytes."""

    kind: ColumnKind
    data: bytes | None = None

    @classmethod
    def text(cls, data: bytes) -> TupleColumn:
        """A value in text format (the type's output function)."""
        return cls(ColumnKind.TEXT, data)

    @classmethod
    def binary(cls, data: bytes) -> TupleColumn:
        """A value in binary format (the type's send function)."""
        return cls(ColumnKind.BINARY, data)

    @classmethod
    def null(cls) -> TupleColumn:
        """A NULL value."""
        return _NULL

    @classmethod
    def unchanged_toast(cls) -> TupleColumn:
        """An unchanged TOASTed value, which the server does not send."""
        return _UNCHANGED


_NULL = TupleColumn(ColumnKind.NULL)
_UNCHANGED = TupleColumn(ColumnKind.UNCHANGED_TOAST)

TupleData = list[TupleColumn]
"""A tuple: one entry per column published for the relation."""


def _read_tuple(r: Reader) -> TupleData:
    count_at = r.pos
    count = r.uint16()
    # Every column takes at least its kind byte: a count beyond the bytes
    # left is malformed, and refusing it early bounds the loop.
    if count > r.remaining:
        r.fail(f"tuple of {count} columns does not fit the {r.remaining} bytes left", at=count_at)
    columns: TupleData = []
    append = columns.append
    for _ in range(count):
        at = r.pos
        kind = r.byte1()
        if kind == _N:
            append(_NULL)
        elif kind == _U:
            append(_UNCHANGED)
        elif kind in (_T, _B):
            length = r.int32()
            if length < 0:
                r.fail(f"column value length {length} is negative", at=r.pos - 4)
            data = r.bytes_n(length)
            if kind == _T and 0 in data:
                r.fail("a text value contains a NUL byte", at=r.pos - length + data.index(0))
            append(TupleColumn(_KINDS[kind], data))
        else:
            r.fail(f"unknown column kind {bytes([kind])!r} (expected n, u, t or b)", at=at)
    return columns


def _write_tuple(w: Writer, columns: Sequence[TupleColumn], name: str) -> None:
    if not isinstance(columns, (list, tuple)):
        w.fail(name, f"expected a list of TupleColumn, got {type(columns).__name__}")
    w.count(len(columns), name)
    for i, col in enumerate(columns):
        where = f"{name}[{i}]"
        if not isinstance(col, tuple) or len(col) != 2:
            w.fail(where, f"expected a TupleColumn, got {col!r}")
        kind, data = col
        if not isinstance(kind, str) or kind not in _KIND_VALUES:
            w.fail(where, f"unknown column kind {kind!r}")
        if kind in ("n", "u"):
            if data is not None:
                w.fail(where, f"a column of kind {kind!r} carries no value")
            w.raw(kind.encode(), where)
            continue
        if not isinstance(data, (bytes, bytearray, memoryview)):
            w.fail(where, f"a column of kind {kind!r} needs bytes, got {type(data).__name__}")
        if kind == "t" and 0 in bytes(data):
            w.fail(where, "a text value cannot contain a NUL byte")
        w.raw(kind.encode(), where)
        w.value(data, where)


_KIND_VALUES = frozenset(k.value for k in ColumnKind)


def _read_xid(r: Reader, ctx: PgOutputContext) -> int | None:
    return r.uint32() if ctx.in_stream else None


def _write_xid(w: Writer, xid: int | None, ctx: PgOutputContext) -> None:
    if ctx.in_stream:
        if xid is None:
            w.fail("xid", "a message inside a streamed transaction carries its xid")
        w.uint32(xid, "xid")
    elif xid is not None:
        w.fail("xid", "only messages inside a streamed transaction carry an xid")


def _write_gid(w: Writer, gid: str) -> None:
    w.cstring(gid, "gid")


class PgOutputMessage(SubMessage[PgOutputContext]):
    """Base of the ``pgoutput`` messages."""

    __slots__ = ()
    protocol = PGOUTPUT
    direction = MessageDirection.BACKEND
    #: The first protocol version that has this message.
    since: ClassVar[int] = 1

    @classmethod
    def _parse(cls, buf: bytes, ctx: PgOutputContext) -> Self:
        if ctx.proto_version < cls.since:
            raise DecodingError(
                cls.__name__,
                0,
                f"needs pgoutput protocol version {cls.since}, the stream uses {ctx.proto_version}",
            )
        return super()._parse(buf, ctx)

    def encode_into(self, buf: bytearray, context: PgOutputContext | None = None) -> None:
        """Append the payload to ``buf`` (nothing on an EncodingError)."""
        ctx = PGOUTPUT.default_context if context is None else context
        if not isinstance(ctx, PgOutputContext):
            raise EncodingError(type(self).__name__, "context", "expected a PgOutputContext")
        if ctx.proto_version < self.since:
            raise EncodingError(
                type(self).__name__,
                "context",
                f"needs pgoutput protocol version {self.since}, the stream uses "
                f"{ctx.proto_version}",
            )
        super().encode_into(buf, ctx)


# -- transactions ----------------------------------------------------------------


@dataclass(slots=True)
class Begin(PgOutputMessage):
    """A transaction begins (``B``); its changes follow, then Commit."""

    tag = b"B"
    #: The final LSN of the transaction.
    final_lsn: LSN = LSN_ZERO
    commit_time: Timestamp = TIMESTAMP_ZERO
    xid: int = 0

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.uint64(self.final_lsn, "final_lsn")
        w.int64(self.commit_time, "commit_time")
        w.uint32(self.xid, "xid")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        final = lsn_unchecked(r.uint64())
        return cls(final, timestamp_unchecked(r.int64()), r.uint32())


@dataclass(slots=True)
class Commit(PgOutputMessage):
    """The transaction begun by the last Begin committed (``C``)."""

    tag = b"C"
    #: The LSN of the commit record.
    commit_lsn: LSN = LSN_ZERO
    #: The end LSN of the transaction: where a consumer confirms up to.
    end_lsn: LSN = LSN_ZERO
    commit_time: Timestamp = TIMESTAMP_ZERO
    #: Int8 documented as 0 ("currently unused"); kept as sent.
    flags: int = 0

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.int8(self.flags, "flags")
        w.uint64(self.commit_lsn, "commit_lsn")
        w.uint64(self.end_lsn, "end_lsn")
        w.int64(self.commit_time, "commit_time")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        flags = r.int8()
        commit = lsn_unchecked(r.uint64())
        end = lsn_unchecked(r.uint64())
        return cls(commit, end, timestamp_unchecked(r.int64()), flags)


@dataclass(slots=True)
class Origin(PgOutputMessage):
    """The transaction came from another node (``O``): the replication
    origin's name and the commit LSN there."""

    tag = b"O"
    commit_lsn: LSN = LSN_ZERO
    name: str = ""

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.uint64(self.commit_lsn, "commit_lsn")
        w.cstring(self.name, "name")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        lsn = lsn_unchecked(r.uint64())
        return cls(lsn, r.cstring())


@dataclass(slots=True)
class LogicalMessage(PgOutputMessage):
    """A message written by ``pg_logical_emit_message`` (``M``), sent with
    the ``messages`` option; a transactional one arrives inside its
    transaction, a non-transactional one on its own."""

    tag = b"M"
    transactional: bool = False
    #: The LSN of the logical decoding message.
    lsn: LSN = LSN_ZERO
    prefix: str = ""
    content: bytes = b""
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        write_flag(w, self.transactional, "transactional")
        w.uint64(self.lsn, "lsn")
        w.cstring(self.prefix, "prefix")
        if self.content is None:
            w.fail("content", "a message's content cannot be NULL")
        w.value(self.content, "content")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        at = r.pos
        flags = r.int8()
        if flags not in (0, 1):
            r.fail(f"flags {flags}: only 0 and 1 (transactional) are defined", at=at)
        lsn = lsn_unchecked(r.uint64())
        prefix = r.cstring()
        content = r.value()
        if content is None:
            r.fail("content length -1: a message has no NULL content", at=r.pos - 4)
        return cls(flags == 1, lsn, prefix, content, xid)


# -- schema ------------------------------------------------------------------------


class ReplicaIdentity(enum.StrEnum):
    """A relation's replica identity (``pg_class.relreplident``)."""

    DEFAULT = "d"
    NOTHING = "n"
    FULL = "f"
    INDEX = "i"


_IDENTITIES = {ord(i.value): i for i in ReplicaIdentity}


class RelationColumn(NamedTuple):
    """One published column of a Relation message."""

    name: str
    type_oid: int
    type_modifier: int = -1
    #: 1 marks the column as part of the replica identity key.
    flags: int = 0

    @property
    def is_key(self) -> bool:
        """Part of the key sent for updates and deletes."""
        return bool(self.flags & 1)


@dataclass(slots=True)
class Relation(PgOutputMessage):
    """A relation's schema (``R``), sent before its first change and again
    when it changes."""

    tag = b"R"
    relation_id: int = 0
    #: The schema; empty for ``pg_catalog``.
    namespace: str = ""
    name: str = ""
    replica_identity: ReplicaIdentity = ReplicaIdentity.DEFAULT
    columns: list[RelationColumn] = field(default_factory=list)
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        w.uint32(self.relation_id, "relation_id")
        w.cstring(self.namespace, "namespace")
        w.cstring(self.name, "name")
        ident = self.replica_identity
        if not isinstance(ident, str) or ident not in _IDENTITY_VALUES:
            w.fail("replica_identity", f"{ident!r} is not one of d, n, f, i")
        w.int8(ord(ident), "replica_identity")
        columns = self.columns
        if not isinstance(columns, (list, tuple)):
            w.fail("columns", f"expected a list of RelationColumn, got {type(columns).__name__}")
        w.count(len(columns), "columns")
        for i, col in enumerate(columns):
            where = f"columns[{i}]"
            if not isinstance(col, tuple) or len(col) != 4:
                w.fail(where, f"expected a RelationColumn, got {col!r}")
            name, type_oid, type_modifier, flags = col
            w.int8(flags, where)
            w.cstring(name, where)
            w.uint32(type_oid, where)
            w.int32(type_modifier, where)

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        relation_id = r.uint32()
        namespace = r.cstring()
        name = r.cstring()
        at = r.pos
        ident = _IDENTITIES.get(r.int8())
        if ident is None:
            r.fail("replica identity is not one of d, n, f, i", at=at)
        count_at = r.pos
        count = r.uint16()
        # A column takes at least 10 bytes (flags, an empty name, type, typmod).
        if count * 10 > r.remaining:
            r.fail(f"{count} columns do not fit the {r.remaining} bytes left", at=count_at)
        columns = []
        for _ in range(count):
            flags = r.int8()
            col_name = r.cstring()
            type_oid = r.uint32()
            columns.append(RelationColumn(col_name, type_oid, r.int32(), flags))
        return cls(relation_id, namespace, name, ident, columns, xid)

    @property
    def column_names(self) -> list[str]:
        """The published columns' names, in tuple order."""
        return [c.name for c in self.columns]


_IDENTITY_VALUES = frozenset(i.value for i in ReplicaIdentity)


@dataclass(slots=True)
class TypeMessage(PgOutputMessage):
    """The name of a non-built-in type (``Y``), sent before a Relation that
    uses it."""

    tag = b"Y"
    type_oid: int = 0
    namespace: str = ""
    name: str = ""
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        w.uint32(self.type_oid, "type_oid")
        w.cstring(self.namespace, "namespace")
        w.cstring(self.name, "name")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        oid = r.uint32()
        namespace = r.cstring()
        return cls(oid, namespace, r.cstring(), xid)


# -- changes -------------------------------------------------------------------------

_NEW, _KEY, _OLD = ord("N"), ord("K"), ord("O")


def _expect(r: Reader, marker: int, what: str) -> None:
    at = r.pos
    got = r.byte1()
    if got != marker:
        r.fail(f"expected {chr(marker)!r} ({what}), got {bytes([got])!r}", at=at)


@dataclass(slots=True)
class Insert(PgOutputMessage):
    """A row was inserted (``I``)."""

    tag = b"I"
    relation_id: int = 0
    new: TupleData = field(default_factory=list)
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        w.uint32(self.relation_id, "relation_id")
        w.raw(b"N", "new")
        _write_tuple(w, self.new, "new")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        relation_id = r.uint32()
        _expect(r, _NEW, "new tuple")
        return cls(relation_id, _read_tuple(r), xid)


@dataclass(slots=True)
class Update(PgOutputMessage):
    """A row was updated (``U``).

    ``key`` (``K``) holds the old replica identity key when the update
    changed it; ``old`` (``O``) the whole old row under REPLICA IDENTITY
    FULL; at most one of them is set.
    """

    tag = b"U"
    relation_id: int = 0
    new: TupleData = field(default_factory=list)
    key: TupleData | None = None
    old: TupleData | None = None
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        w.uint32(self.relation_id, "relation_id")
        if self.key is not None and self.old is not None:
            w.fail("old", "an Update carries a key or an old tuple, never both")
        if self.key is not None:
            w.raw(b"K", "key")
            _write_tuple(w, self.key, "key")
        elif self.old is not None:
            w.raw(b"O", "old")
            _write_tuple(w, self.old, "old")
        w.raw(b"N", "new")
        _write_tuple(w, self.new, "new")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        relation_id = r.uint32()
        at = r.pos
        marker = r.byte1()
        key = old = None
        if marker == _KEY:
            key = _read_tuple(r)
        elif marker == _OLD:
            old = _read_tuple(r)
        elif marker != _NEW:
            r.fail(f"expected 'K', 'O' or 'N', got {bytes([marker])!r}", at=at)
        if marker != _NEW:
            _expect(r, _NEW, "new tuple")
        return cls(relation_id, _read_tuple(r), key, old, xid)


@dataclass(slots=True)
class Delete(PgOutputMessage):
    """A row was deleted (``D``): ``key`` (``K``) under an index replica
    identity, ``old`` (``O``) under REPLICA IDENTITY FULL; exactly one."""

    tag = b"D"
    relation_id: int = 0
    key: TupleData | None = None
    old: TupleData | None = None
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        w.uint32(self.relation_id, "relation_id")
        key, old = self.key, self.old
        if key is not None and old is None:
            w.raw(b"K", "key")
            _write_tuple(w, key, "key")
        elif old is not None and key is None:
            w.raw(b"O", "old")
            _write_tuple(w, old, "old")
        else:
            w.fail("old", "a Delete carries exactly one of a key and an old tuple")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        relation_id = r.uint32()
        at = r.pos
        marker = r.byte1()
        if marker == _KEY:
            return cls(relation_id, _read_tuple(r), None, xid)
        if marker == _OLD:
            return cls(relation_id, None, _read_tuple(r), xid)
        r.fail(f"expected 'K' or 'O', got {bytes([marker])!r}", at=at)


class TruncateOption(enum.IntFlag):
    """Option bits of a Truncate message."""

    CASCADE = 1
    RESTART_IDENTITY = 2


_NO_OPTIONS = TruncateOption(0)


@dataclass(slots=True)
class Truncate(PgOutputMessage):
    """Relations were truncated together (``T``)."""

    tag = b"T"
    relation_ids: list[int] = field(default_factory=list)
    options: TruncateOption = _NO_OPTIONS
    #: Only inside a streamed transaction (protocol version 2 and later).
    xid: int | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        _write_xid(w, self.xid, ctx)
        ids = self.relation_ids
        if not isinstance(ids, (list, tuple)):
            w.fail("relation_ids", f"expected a list of OIDs, got {type(ids).__name__}")
        w.int32(len(ids), "relation_ids")
        # Option bits: written and read as an unsigned byte, so that every
        # value survives (a negative Int8 is no set of flags).
        w.byte1(self.options, "options")
        for oid in ids:
            w.uint32(oid, "relation_ids")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = _read_xid(r, ctx)
        count_at = r.pos
        count = r.int32()
        options = r.byte1()
        if not 0 <= count * 4 <= r.remaining:
            r.fail(f"{count} relations do not fit the {r.remaining} bytes left", at=count_at)
        ids = r.uint32_array(count)
        return cls(ids, TruncateOption(options), xid)

    @property
    def cascade(self) -> bool:
        """TRUNCATE ... CASCADE."""
        return bool(self.options & TruncateOption.CASCADE)

    @property
    def restart_identity(self) -> bool:
        """TRUNCATE ... RESTART IDENTITY."""
        return bool(self.options & TruncateOption.RESTART_IDENTITY)


# -- streamed transactions (protocol version 2) ------------------------------------------


@dataclass(slots=True)
class StreamStart(PgOutputMessage):
    """A block of a large in-progress transaction begins (``S``)."""

    tag = b"S"
    since = 2
    xid: int = 0
    #: The first block of this transaction.
    first_segment: bool = False

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.uint32(self.xid, "xid")
        write_flag(w, self.first_segment, "first_segment")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = r.uint32()
        at = r.pos
        first = r.int8()
        if first not in (0, 1):
            r.fail(f"first-segment flag {first}: only 0 and 1 are defined", at=at)
        return cls(xid, first == 1)


@dataclass(slots=True)
class StreamStop(PgOutputMessage):
    """The current block of a streamed transaction ends (``E``)."""

    tag = b"E"
    since = 2


@dataclass(slots=True)
class StreamCommit(PgOutputMessage):
    """A streamed transaction committed (``c``)."""

    tag = b"c"
    since = 2
    xid: int = 0
    commit_lsn: LSN = LSN_ZERO
    end_lsn: LSN = LSN_ZERO
    commit_time: Timestamp = TIMESTAMP_ZERO
    #: Int8 documented as 0 ("currently unused"); kept as sent.
    flags: int = 0

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.uint32(self.xid, "xid")
        w.int8(self.flags, "flags")
        w.uint64(self.commit_lsn, "commit_lsn")
        w.uint64(self.end_lsn, "end_lsn")
        w.int64(self.commit_time, "commit_time")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = r.uint32()
        flags = r.int8()
        commit = lsn_unchecked(r.uint64())
        end = lsn_unchecked(r.uint64())
        return cls(xid, commit, end, timestamp_unchecked(r.int64()), flags)


@dataclass(slots=True)
class StreamAbort(PgOutputMessage):
    """A streamed transaction, or one of its subtransactions, aborted (``A``).

    ``subxid`` equals ``xid`` when the whole transaction aborted.  With
    ``streaming`` ``parallel`` (protocol version 4) the abort LSN and time
    follow; otherwise both are None.
    """

    tag = b"A"
    since = 2
    xid: int = 0
    subxid: int = 0
    abort_lsn: LSN | None = None
    abort_time: Timestamp | None = None

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.uint32(self.xid, "xid")
        w.uint32(self.subxid, "subxid")
        if ctx.parallel:
            if self.abort_lsn is None or self.abort_time is None:
                w.fail("abort_lsn", "with streaming = parallel the abort LSN and time are sent")
            w.uint64(self.abort_lsn, "abort_lsn")
            w.int64(self.abort_time, "abort_time")
        elif self.abort_lsn is not None or self.abort_time is not None:
            w.fail("abort_lsn", "the abort LSN and time are only sent with streaming = parallel")

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        xid = r.uint32()
        subxid = r.uint32()
        if not ctx.parallel:
            return cls(xid, subxid)
        lsn = lsn_unchecked(r.uint64())
        return cls(xid, subxid, lsn, timestamp_unchecked(r.int64()))


# -- two-phase commit (protocol version 3) ------------------------------------------------


@dataclass(slots=True)
class BeginPrepare(PgOutputMessage):
    """A transaction to be prepared begins (``b``); Prepare ends it."""

    tag = b"b"
    since = 3
    prepare_lsn: LSN = LSN_ZERO
    end_lsn: LSN = LSN_ZERO
    prepare_time: Timestamp = TIMESTAMP_ZERO
    xid: int = 0
    #: The GID given to PREPARE TRANSACTION.
    gid: str = ""

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.uint64(self.prepare_lsn, "prepare_lsn")
        w.uint64(self.end_lsn, "end_lsn")
        w.int64(self.prepare_time, "prepare_time")
        w.uint32(self.xid, "xid")
        _write_gid(w, self.gid)

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        prepare = lsn_unchecked(r.uint64())
        end = lsn_unchecked(r.uint64())
        when = timestamp_unchecked(r.int64())
        xid = r.uint32()
        return cls(prepare, end, when, xid, r.cstring())


@dataclass(slots=True)
class _PrepareLike(PgOutputMessage):
    """Prepare, Commit Prepared and Stream Prepare share one layout:
    flags, two LSNs, a time, the xid and the GID."""

    lsn: LSN = LSN_ZERO
    end_lsn: LSN = LSN_ZERO
    time: Timestamp = TIMESTAMP_ZERO
    xid: int = 0
    gid: str = ""
    #: Int8 documented as 0 ("currently unused"); kept as sent.
    flags: int = 0

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.int8(self.flags, "flags")
        w.uint64(self.lsn, "lsn")
        w.uint64(self.end_lsn, "end_lsn")
        w.int64(self.time, "time")
        w.uint32(self.xid, "xid")
        _write_gid(w, self.gid)

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        flags = r.int8()
        lsn = lsn_unchecked(r.uint64())
        end = lsn_unchecked(r.uint64())
        when = timestamp_unchecked(r.int64())
        xid = r.uint32()
        return cls(lsn, end, when, xid, r.cstring(), flags)


@dataclass(slots=True)
class Prepare(_PrepareLike):
    """The transaction begun by Begin Prepare was prepared (``P``):
    ``lsn`` is the prepare's LSN, ``time`` the prepare time."""

    tag = b"P"
    since = 3


@dataclass(slots=True)
class CommitPrepared(_PrepareLike):
    """A prepared transaction was committed (``K``): ``lsn`` is the commit's
    LSN, ``time`` the commit time."""

    tag = b"K"
    since = 3


@dataclass(slots=True)
class StreamPrepare(_PrepareLike):
    """A streamed transaction was prepared (``p``): ``lsn`` is the prepare's
    LSN, ``time`` the prepare time."""

    tag = b"p"
    since = 3


@dataclass(slots=True)
class RollbackPrepared(PgOutputMessage):
    """A prepared transaction was rolled back (``r``)."""

    tag = b"r"
    since = 3
    #: The end LSN of the prepared transaction.
    prepare_end_lsn: LSN = LSN_ZERO
    #: The end LSN of the rollback.
    rollback_end_lsn: LSN = LSN_ZERO
    prepare_time: Timestamp = TIMESTAMP_ZERO
    rollback_time: Timestamp = TIMESTAMP_ZERO
    xid: int = 0
    gid: str = ""
    #: Int8 documented as 0 ("currently unused"); kept as sent.
    flags: int = 0

    def _write(self, w: Writer, ctx: PgOutputContext) -> None:
        w.int8(self.flags, "flags")
        w.uint64(self.prepare_end_lsn, "prepare_end_lsn")
        w.uint64(self.rollback_end_lsn, "rollback_end_lsn")
        w.int64(self.prepare_time, "prepare_time")
        w.int64(self.rollback_time, "rollback_time")
        w.uint32(self.xid, "xid")
        _write_gid(w, self.gid)

    @classmethod
    def _read(cls, r: Reader, ctx: PgOutputContext) -> Self:
        flags = r.int8()
        prepare_end = lsn_unchecked(r.uint64())
        rollback_end = lsn_unchecked(r.uint64())
        prepare_time = timestamp_unchecked(r.int64())
        rollback_time = timestamp_unchecked(r.int64())
        xid = r.uint32()
        return cls(prepare_end, rollback_end, prepare_time, rollback_time, xid, r.cstring(), flags)
