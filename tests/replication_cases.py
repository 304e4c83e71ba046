"""Golden bytes for every replication message, written from the protocol docs.

Each expected byte string is spelled out by hand from the layouts in the
"Streaming Replication Protocol" (XLogData, keepalive, status updates, hot
standby feedback, BASE_BACKUP's CopyData messages) and "Logical
Replication Message Formats" (pgoutput) sections of the PostgreSQL
documentation -- never produced by pygwire.  The helpers only pack the
values next to them; none calls pygwire.

Notation follows the documentation: ``i8``/``i32``/``i64`` are signed
IntN in network byte order, ``u32``/``u64`` the same bits for the
unsigned values (OIDs, xids, LSNs), ``cstr`` a String (NUL-terminated).
Timestamps are microseconds since 2000-01-01 UTC, computed here with
``datetime`` arithmetic of the standard library.

The checks live in ``unit/test_replication_golden.py``; the malformed-input
and fuzz tests reuse the table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pygwire.messages._subprotocol import SubMessage, SubProtocol
from pygwire.replication import (
    LSN,
    ArchiveData,
    Begin,
    BeginPrepare,
    Commit,
    CommitPrepared,
    Delete,
    HotStandbyFeedback,
    Insert,
    LogicalMessage,
    ManifestStart,
    NewArchive,
    Origin,
    PgOutputContext,
    Prepare,
    PrimaryKeepalive,
    PrimaryStatusUpdate,
    ProgressReport,
    Relation,
    RelationColumn,
    ReplicaIdentity,
    RequestPrimaryStatus,
    RollbackPrepared,
    StandbyStatusUpdate,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Timestamp,
    Truncate,
    TruncateOption,
    TupleColumn,
    TypeMessage,
    Update,
    XLogData,
)

# The table is shared with the malformed-input and fuzz tests.
__all__ = ["CASES", "LSN_C", "T1", "V4_PARALLEL", "Case", "i32", "i64", "protocol_of", "u32", "u64"]


def i8(v: int) -> bytes:
    return struct.pack("!b", v)


def i16(v: int) -> bytes:
    return struct.pack("!h", v)


def i32(v: int) -> bytes:
    return struct.pack("!i", v)


def u32(v: int) -> bytes:
    return struct.pack("!I", v)


def i64(v: int) -> bytes:
    return struct.pack("!q", v)


def u64(v: int) -> bytes:
    return struct.pack("!Q", v)


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def us_since_2000(when: datetime) -> int:
    """Microseconds from 2000-01-01 00:00 UTC to ``when``."""
    delta = when - datetime(2000, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


# Values used throughout: an LSN from the documentation's own example, and
# times with every microsecond digit in use.
LSN_A = 0x16_B374D848  # 16/B374D848
LSN_B = 0x16_B374D9A0
LSN_C = 0x17_00000010
T1 = us_since_2000(datetime(2024, 2, 29, 12, 34, 56, 789012, tzinfo=UTC))
T2 = us_since_2000(datetime(2024, 2, 29, 12, 34, 57, 1, tzinfo=UTC))

V1 = PgOutputContext(1)
V2_STREAM = PgOutputContext(2, in_stream=True)
V3 = PgOutputContext(3)
V4_PARALLEL = PgOutputContext(4, parallel=True)
V4_PARALLEL_STREAM = PgOutputContext(4, in_stream=True, parallel=True)

# A tuple with every column kind: n, u, t, b.
ALL_KINDS = [
    TupleColumn.null(),
    TupleColumn.unchanged_toast(),
    TupleColumn.text(b"caf\xc3\xa9"),
    TupleColumn.binary(b"\x00\x00\x00\x2a"),
]
ALL_KINDS_WIRE = (
    i16(4) + b"n" + b"u" + b"t" + i32(5) + b"caf\xc3\xa9" + b"b" + i32(4) + b"\x00\x00\x00\x2a"
)
KEY_TUPLE = [TupleColumn.text(b"7"), TupleColumn.null()]
KEY_TUPLE_WIRE = i16(2) + b"t" + i32(1) + b"7" + b"n"


@dataclass
class Case:
    """A message, its payload written from the documentation, its context."""

    msg: SubMessage[Any]
    payload: bytes
    context: Any = None


CASES: dict[str, Case] = {
    # -- streaming replication ---------------------------------------------------
    "XLogData": Case(
        XLogData(LSN(LSN_A), LSN(LSN_B), Timestamp(T1), b"\x01WAL bytes\xff"),
        b"w" + u64(LSN_A) + u64(LSN_B) + i64(T1) + b"\x01WAL bytes\xff",
    ),
    "XLogData empty": Case(XLogData(), b"w" + u64(0) + u64(0) + i64(0)),
    "PrimaryKeepalive reply": Case(
        PrimaryKeepalive(LSN(LSN_B), Timestamp(T2), reply_requested=True),
        b"k" + u64(LSN_B) + i64(T2) + b"\x01",
    ),
    "PrimaryKeepalive": Case(
        PrimaryKeepalive(LSN(LSN_A), Timestamp(T1)), b"k" + u64(LSN_A) + i64(T1) + b"\x00"
    ),
    "PrimaryStatusUpdate": Case(
        PrimaryStatusUpdate(LSN(LSN_C), (1 << 32) | 740, (1 << 32) | 745, Timestamp(T2)),
        b"s" + u64(LSN_C) + u64((1 << 32) | 740) + u64((1 << 32) | 745) + i64(T2),
    ),
    "StandbyStatusUpdate": Case(
        StandbyStatusUpdate(LSN(LSN_C), LSN(LSN_B), LSN(LSN_A), Timestamp(T1), True),
        b"r" + u64(LSN_C) + u64(LSN_B) + u64(LSN_A) + i64(T1) + b"\x01",
    ),
    "HotStandbyFeedback": Case(
        HotStandbyFeedback(Timestamp(T1), 3_000_000_000, 2, 731, 1),
        b"h" + i64(T1) + u32(3_000_000_000) + u32(2) + u32(731) + u32(1),
    ),
    "RequestPrimaryStatus": Case(RequestPrimaryStatus(Timestamp(T2)), b"p" + i64(T2)),
    # -- pgoutput ------------------------------------------------------------------
    "Begin": Case(
        Begin(LSN(LSN_B), Timestamp(T1), 4_000_000_000),
        b"B" + u64(LSN_B) + i64(T1) + u32(4_000_000_000),
        V1,
    ),
    "Message transactional": Case(
        LogicalMessage(True, LSN(LSN_A), "audit", b"\x00payload"),
        b"M" + i8(1) + u64(LSN_A) + cstr("audit") + i32(8) + b"\x00payload",
        V1,
    ),
    "Message non-transactional": Case(
        LogicalMessage(False, LSN(LSN_A), "", b""),
        b"M" + i8(0) + u64(LSN_A) + cstr("") + i32(0),
        V3,
    ),
    "Message streamed": Case(
        LogicalMessage(True, LSN(LSN_A), "p", b"x", xid=812),
        b"M" + u32(812) + i8(1) + u64(LSN_A) + cstr("p") + i32(1) + b"x",
        V2_STREAM,
    ),
    "Commit": Case(
        Commit(LSN(LSN_A), LSN(LSN_B), Timestamp(T1)),
        b"C" + i8(0) + u64(LSN_A) + u64(LSN_B) + i64(T1),
        V1,
    ),
    "Origin": Case(
        Origin(LSN(LSN_C), "node_b"), b"O" + u64(LSN_C) + cstr("node_b"), PgOutputContext(4)
    ),
    "Relation": Case(
        Relation(
            16386,
            "public",
            "accounts",
            ReplicaIdentity.FULL,
            [RelationColumn("id", 23, -1, 1), RelationColumn("note", 1043, 36, 0)],
        ),
        b"R"
        + u32(16386)
        + cstr("public")
        + cstr("accounts")
        + i8(ord("f"))
        + i16(2)
        + (i8(1) + cstr("id") + u32(23) + i32(-1))
        + (i8(0) + cstr("note") + u32(1043) + i32(36)),
        V1,
    ),
    "Relation pg_catalog, no columns": Case(
        Relation(1259, "", "pg_class", ReplicaIdentity.NOTHING, []),
        b"R" + u32(1259) + cstr("") + cstr("pg_class") + i8(ord("n")) + i16(0),
        V1,
    ),
    "Relation streamed": Case(
        Relation(16390, "s", "t", ReplicaIdentity.INDEX, [RelationColumn("k", 25)], xid=900),
        b"R"
        + u32(900)
        + u32(16390)
        + cstr("s")
        + cstr("t")
        + i8(ord("i"))
        + i16(1)
        + (i8(0) + cstr("k") + u32(25) + i32(-1)),
        V2_STREAM,
    ),
    "Type": Case(
        TypeMessage(16400, "public", "mood"),
        b"Y" + u32(16400) + cstr("public") + cstr("mood"),
        V1,
    ),
    "Type streamed": Case(
        TypeMessage(16400, "public", "mood", xid=901),
        b"Y" + u32(901) + u32(16400) + cstr("public") + cstr("mood"),
        V2_STREAM,
    ),
    "Insert every column kind": Case(
        Insert(16386, ALL_KINDS), b"I" + u32(16386) + b"N" + ALL_KINDS_WIRE, V1
    ),
    "Insert streamed": Case(
        Insert(16386, KEY_TUPLE, xid=902),
        b"I" + u32(902) + u32(16386) + b"N" + KEY_TUPLE_WIRE,
        V4_PARALLEL_STREAM,
    ),
    "Update new only": Case(
        Update(16386, ALL_KINDS), b"U" + u32(16386) + b"N" + ALL_KINDS_WIRE, V1
    ),
    "Update key": Case(
        Update(16386, ALL_KINDS, key=KEY_TUPLE),
        b"U" + u32(16386) + b"K" + KEY_TUPLE_WIRE + b"N" + ALL_KINDS_WIRE,
        V1,
    ),
    "Update old": Case(
        Update(16386, KEY_TUPLE, old=ALL_KINDS),
        b"U" + u32(16386) + b"O" + ALL_KINDS_WIRE + b"N" + KEY_TUPLE_WIRE,
        V1,
    ),
    "Update streamed": Case(
        Update(16386, KEY_TUPLE, old=KEY_TUPLE, xid=903),
        b"U" + u32(903) + u32(16386) + b"O" + KEY_TUPLE_WIRE + b"N" + KEY_TUPLE_WIRE,
        V2_STREAM,
    ),
    "Delete key": Case(Delete(16386, key=KEY_TUPLE), b"D" + u32(16386) + b"K" + KEY_TUPLE_WIRE, V1),
    "Delete old": Case(Delete(16386, old=ALL_KINDS), b"D" + u32(16386) + b"O" + ALL_KINDS_WIRE, V1),
    "Delete streamed": Case(
        Delete(16386, key=KEY_TUPLE, xid=904),
        b"D" + u32(904) + u32(16386) + b"K" + KEY_TUPLE_WIRE,
        V2_STREAM,
    ),
    "Truncate": Case(
        Truncate([16386, 16390], TruncateOption.CASCADE | TruncateOption.RESTART_IDENTITY),
        b"T" + i32(2) + i8(3) + u32(16386) + u32(16390),
        V1,
    ),
    "Truncate streamed": Case(
        Truncate([16386], TruncateOption(0), xid=905),
        b"T" + u32(905) + i32(1) + i8(0) + u32(16386),
        V2_STREAM,
    ),
    "Stream Start first": Case(StreamStart(906, True), b"S" + u32(906) + i8(1), V2_STREAM),
    "Stream Start": Case(StreamStart(906, False), b"S" + u32(906) + i8(0), V2_STREAM),
    "Stream Stop": Case(StreamStop(), b"E", V2_STREAM),
    "Stream Commit": Case(
        StreamCommit(906, LSN(LSN_A), LSN(LSN_B), Timestamp(T2)),
        b"c" + u32(906) + i8(0) + u64(LSN_A) + u64(LSN_B) + i64(T2),
        PgOutputContext(2),
    ),
    "Stream Abort": Case(StreamAbort(906, 907), b"A" + u32(906) + u32(907), PgOutputContext(2)),
    "Stream Abort v4 on": Case(
        StreamAbort(906, 906), b"A" + u32(906) + u32(906), PgOutputContext(4)
    ),
    "Stream Abort v4 parallel": Case(
        StreamAbort(906, 907, LSN(LSN_C), Timestamp(T1)),
        b"A" + u32(906) + u32(907) + u64(LSN_C) + i64(T1),
        V4_PARALLEL,
    ),
    "Begin Prepare": Case(
        BeginPrepare(LSN(LSN_A), LSN(LSN_B), Timestamp(T1), 908, "gid-1"),
        b"b" + u64(LSN_A) + u64(LSN_B) + i64(T1) + u32(908) + cstr("gid-1"),
        V3,
    ),
    "Prepare": Case(
        Prepare(LSN(LSN_A), LSN(LSN_B), Timestamp(T1), 908, "gid-1"),
        b"P" + i8(0) + u64(LSN_A) + u64(LSN_B) + i64(T1) + u32(908) + cstr("gid-1"),
        V3,
    ),
    "Commit Prepared": Case(
        CommitPrepared(LSN(LSN_B), LSN(LSN_C), Timestamp(T2), 908, "gid-1"),
        b"K" + i8(0) + u64(LSN_B) + u64(LSN_C) + i64(T2) + u32(908) + cstr("gid-1"),
        V3,
    ),
    "Rollback Prepared": Case(
        RollbackPrepared(LSN(LSN_B), LSN(LSN_C), Timestamp(T1), Timestamp(T2), 909, "g'2"),
        b"r" + i8(0) + u64(LSN_B) + u64(LSN_C) + i64(T1) + i64(T2) + u32(909) + cstr("g'2"),
        PgOutputContext(4),
    ),
    "Stream Prepare": Case(
        StreamPrepare(LSN(LSN_A), LSN(LSN_B), Timestamp(T1), 910, "big"),
        b"p" + i8(0) + u64(LSN_A) + u64(LSN_B) + i64(T1) + u32(910) + cstr("big"),
        V3,
    ),
    # -- BASE_BACKUP ---------------------------------------------------------------
    "new archive": Case(NewArchive("base.tar", ""), b"n" + cstr("base.tar") + cstr("")),
    "new archive of a tablespace": Case(
        NewArchive("16385.tar", "/srv/ts1"), b"n" + cstr("16385.tar") + cstr("/srv/ts1")
    ),
    "manifest": Case(ManifestStart(), b"m"),
    "archive data": Case(ArchiveData(b"ustar\x00data"), b"d" + b"ustar\x00data"),
    "progress report": Case(ProgressReport(23_486_464), b"p" + i64(23_486_464)),
}


def protocol_of(case: Case) -> SubProtocol[Any]:
    """The sub-protocol whose registry decodes the row."""
    return type(case.msg).protocol
