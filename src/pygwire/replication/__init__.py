"""Replication and change data capture, without I/O.

What travels inside the CopyData of a replication connection, typed:

* :mod:`~pygwire.replication.streaming`: XLogData, keepalives, status
  updates and hot standby feedback (``START_REPLICATION``);
* :mod:`~pygwire.replication.pgoutput`: the logical replication messages of
  ``pgoutput``, protocol versions 1 to 4;
* :mod:`~pygwire.replication.base_backup`: BASE_BACKUP's archive stream
  (PostgreSQL 15 and later);
* :mod:`~pygwire.replication.values`: :class:`LSN` and :class:`Timestamp`;
* :mod:`~pygwire.replication.commands`: the replication commands, quoted;
* :mod:`~pygwire.replication.stream`: :class:`LogicalStream` and
  :class:`PhysicalStream`, which decode a stream, track the WAL locations
  and build the status updates.

A replication connection is a :class:`~pygwire.FrontendConnection` whose
StartupMessage has ``replication`` set (``database`` for logical,
``true`` for physical); commands go as Query messages, and after
CopyBothResponse each CopyData payload goes to a stream's ``receive``.
"""

from .base_backup import (
    BASE_BACKUP_STREAM,
    ArchiveData,
    BaseBackupMessage,
    ManifestStart,
    NewArchive,
    ProgressReport,
)
from .commands import (
    base_backup,
    create_logical_replication_slot,
    create_physical_replication_slot,
    drop_replication_slot,
    identify_system,
    pgoutput_options,
    quote_identifier,
    quote_literal,
    read_replication_slot,
    start_logical_replication,
    start_physical_replication,
    timeline_history,
)
from .pgoutput import (
    PGOUTPUT,
    PGOUTPUT_MAX_VERSION,
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
    RelationColumn,
    ReplicaIdentity,
    RollbackPrepared,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Truncate,
    TruncateOption,
    TupleColumn,
    TupleData,
    TypeMessage,
    Update,
)
from .stream import (
    UNCHANGED_TOAST,
    ChangeKind,
    ColumnValue,
    LogicalEvent,
    LogicalStream,
    PhysicalStream,
    ReplicationStream,
    RowChange,
    TruncateChange,
    UnchangedToast,
)
from .streaming import (
    STREAMING,
    HotStandbyFeedback,
    PrimaryKeepalive,
    PrimaryStatusUpdate,
    RequestPrimaryStatus,
    StandbyStatusUpdate,
    StreamingMessage,
    XLogData,
)
from .values import LSN, PG_EPOCH, ReplicationValueError, Timestamp

__all__ = [
    "BASE_BACKUP_STREAM",
    "LSN",
    "PGOUTPUT",
    "PGOUTPUT_MAX_VERSION",
    "PG_EPOCH",
    "STREAMING",
    "UNCHANGED_TOAST",
    "ArchiveData",
    "BaseBackupMessage",
    "Begin",
    "BeginPrepare",
    "ChangeKind",
    "ColumnKind",
    "ColumnValue",
    "Commit",
    "CommitPrepared",
    "Delete",
    "HotStandbyFeedback",
    "Insert",
    "LogicalEvent",
    "LogicalMessage",
    "LogicalStream",
    "ManifestStart",
    "NewArchive",
    "Origin",
    "PgOutputContext",
    "PgOutputMessage",
    "PhysicalStream",
    "Prepare",
    "PrimaryKeepalive",
    "PrimaryStatusUpdate",
    "ProgressReport",
    "Relation",
    "RelationColumn",
    "ReplicaIdentity",
    "ReplicationStream",
    "ReplicationValueError",
    "RequestPrimaryStatus",
    "RollbackPrepared",
    "RowChange",
    "StandbyStatusUpdate",
    "StreamAbort",
    "StreamCommit",
    "StreamPrepare",
    "StreamStart",
    "StreamStop",
    "StreamingMessage",
    "Timestamp",
    "Truncate",
    "TruncateChange",
    "TruncateOption",
    "TupleColumn",
    "TupleData",
    "TypeMessage",
    "UnchangedToast",
    "Update",
    "XLogData",
    "base_backup",
    "create_logical_replication_slot",
    "create_physical_replication_slot",
    "drop_replication_slot",
    "identify_system",
    "pgoutput_options",
    "quote_identifier",
    "quote_literal",
    "read_replication_slot",
    "start_logical_replication",
    "start_physical_replication",
    "timeline_history",
]
