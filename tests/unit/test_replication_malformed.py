"""Malformed replication input and unrepresentable messages.

Hand-written bad bytes for each way a replication payload can be wrong,
each with the message the error must name and the offset (counted from the
tag byte of the CopyData payload) it must point at.  Then the encoders: a
value the wire cannot carry is an EncodingError naming the field, and the
buffer is left untouched.  Then the logical stream's own checks (unknown
relations, wrong column counts, messages out of place), whose offsets
count from the start of the XLogData payload fed to it.  Finally the
command builders, which must never let an argument out of its token.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from pygwire import DecodingError, EncodingError, PygwireError
from pygwire.messages._subprotocol import SubMessage, SubProtocol
from pygwire.replication import (
    BASE_BACKUP_STREAM,
    LSN,
    PGOUTPUT,
    STREAMING,
    Begin,
    ChangeKind,
    ColumnKind,
    Commit,
    Delete,
    HotStandbyFeedback,
    Insert,
    LogicalMessage,
    LogicalStream,
    NewArchive,
    PgOutputContext,
    PhysicalStream,
    PrimaryKeepalive,
    Relation,
    RelationColumn,
    ReplicationValueError,
    StandbyStatusUpdate,
    StreamAbort,
    StreamStart,
    StreamStop,
    Timestamp,
    Truncate,
    TupleColumn,
    Update,
    XLogData,
    base_backup,
    create_logical_replication_slot,
    create_physical_replication_slot,
    drop_replication_slot,
    pgoutput_options,
    read_replication_slot,
    start_logical_replication,
    start_physical_replication,
    timeline_history,
)
from replication_cases import CASES, Case, protocol_of


def i8(v: int) -> bytes:
    return struct.pack("!b", v)


def i16(v: int) -> bytes:
    return struct.pack("!h", v)


def i32(v: int) -> bytes:
    return struct.pack("!i", v)


def u32(v: int) -> bytes:
    return struct.pack("!I", v)


def u64(v: int) -> bytes:
    return struct.pack("!Q", v)


V1 = PgOutputContext(1)
V2S = PgOutputContext(2, in_stream=True)
V4P = PgOutputContext(4, parallel=True)

# (protocol, context, payload, message named, offset, words in the reason)
BAD: dict[str, tuple[SubProtocol[Any], Any, bytes, str, int, str]] = {
    "streaming: empty": (STREAMING, None, b"", "streaming replication", 0, "no message tag"),
    "streaming: unknown tag": (STREAMING, None, b"x1234", "streaming replication", 0, "unknown"),
    "XLogData: short header": (STREAMING, None, b"w" + b"\0" * 7, "XLogData", 1, "Int64"),
    "keepalive: reply flag 2": (
        STREAMING,
        None,
        b"k" + u64(1) + u64(2) + b"\x02",
        "PrimaryKeepalive",
        17,
        "only 0 and 1",
    ),
    "keepalive: trailing byte": (
        STREAMING,
        None,
        b"k" + u64(1) + u64(2) + b"\x00\x00",
        "PrimaryKeepalive",
        18,
        "trailing",
    ),
    "status update: reply flag 255": (
        STREAMING,
        None,
        b"r" + u64(1) * 4 + b"\xff",
        "StandbyStatusUpdate",
        33,
        "only 0 and 1",
    ),
    "feedback: cut in the last xid": (
        STREAMING,
        None,
        b"h" + u64(0) + u32(1) * 3 + b"\0\0",
        "HotStandbyFeedback",
        21,
        "Int32",
    ),
    "pgoutput: empty": (PGOUTPUT, V1, b"", "pgoutput", 0, "no message tag"),
    "pgoutput: unknown tag": (PGOUTPUT, V1, b"Z", "pgoutput", 0, "unknown"),
    "Insert: unknown column kind": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"N" + i16(1) + b"x",
        "Insert",
        8,
        "unknown column kind",
    ),
    "Insert: no N marker": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"K" + i16(0),
        "Insert",
        5,
        "expected 'N'",
    ),
    "Insert: negative value length": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"N" + i16(1) + b"t" + i32(-1),
        "Insert",
        9,
        "negative",
    ),
    "Insert: value runs past the end": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"N" + i16(1) + b"b" + i32(9) + b"abc",
        "Insert",
        13,
        "Byte9",
    ),
    "Insert: NUL inside a text value": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"N" + i16(1) + b"t" + i32(3) + b"a\0b",
        "Insert",
        14,
        "NUL",
    ),
    "Insert: column count beyond the payload": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"N" + i16(5) + b"nn",
        "Insert",
        6,
        "5 columns",
    ),
    "Insert: fewer columns than counted": (
        PGOUTPUT,
        V1,
        b"I" + u32(1) + b"N" + i16(2) + b"n",
        "Insert",
        6,
        "2 columns",
    ),
    "Insert: streamed but cut before the relation": (
        PGOUTPUT,
        V2S,
        b"I" + u32(700) + b"\0\0",
        "Insert",
        5,
        "Int32",
    ),
    "Update: unknown marker": (PGOUTPUT, V1, b"U" + u32(1) + b"X", "Update", 5, "'K', 'O' or 'N'"),
    "Update: key without a new tuple": (
        PGOUTPUT,
        V1,
        b"U" + u32(1) + b"K" + i16(0) + b"K" + i16(0),
        "Update",
        8,
        "expected 'N'",
    ),
    "Delete: new tuple instead of old": (
        PGOUTPUT,
        V1,
        b"D" + u32(1) + b"N" + i16(0),
        "Delete",
        5,
        "'K' or 'O'",
    ),
    "Message: flags 2": (
        PGOUTPUT,
        V1,
        b"M" + i8(2) + u64(0) + b"p\0" + i32(0),
        "LogicalMessage",
        1,
        "flags 2",
    ),
    "Message: NULL content": (
        PGOUTPUT,
        V1,
        b"M" + i8(0) + u64(0) + b"p\0" + i32(-1),
        "LogicalMessage",
        12,
        "NULL",
    ),
    "Message: prefix not terminated": (
        PGOUTPUT,
        V1,
        b"M" + i8(0) + u64(0) + b"prefix",
        "LogicalMessage",
        10,
        "NUL-terminated",
    ),
    "Relation: unknown replica identity": (
        PGOUTPUT,
        V1,
        b"R" + u32(1) + b"s\0" + b"t\0" + b"z" + i16(0),
        "Relation",
        9,
        "replica identity",
    ),
    "Relation: invalid UTF-8 name": (
        PGOUTPUT,
        V1,
        b"R" + u32(1) + b"s\0" + b"t\xff\0" + b"d" + i16(0),
        "Relation",
        8,
        "UTF-8",
    ),
    "Relation: columns beyond the payload": (
        PGOUTPUT,
        V1,
        b"R" + u32(1) + b"s\0" + b"t\0" + b"d" + i16(3) + i8(0) + b"a\0" + u32(23) + i32(-1),
        "Relation",
        10,
        "3 columns",
    ),
    "Truncate: negative count": (
        PGOUTPUT,
        V1,
        b"T" + i32(-1) + i8(0),
        "Truncate",
        1,
        "-1 relations",
    ),
    "Truncate: count beyond the payload": (
        PGOUTPUT,
        V1,
        b"T" + i32(3) + i8(0) + u32(16384),
        "Truncate",
        1,
        "3 relations",
    ),
    "Stream Start: flag 2": (
        PGOUTPUT,
        V2S,
        b"S" + u32(1) + i8(2),
        "StreamStart",
        5,
        "only 0 and 1",
    ),
    "Stream Start: in a version 1 stream": (
        PGOUTPUT,
        V1,
        b"S" + u32(1) + i8(1),
        "StreamStart",
        0,
        "version 2",
    ),
    "Begin Prepare: in a version 2 stream": (
        PGOUTPUT,
        PgOutputContext(2),
        b"b" + u64(0) * 3 + u32(1) + b"g\0",
        "BeginPrepare",
        0,
        "version 3",
    ),
    "Stream Abort: parallel, no abort time": (
        PGOUTPUT,
        V4P,
        b"A" + u32(1) + u32(1) + u64(5),
        "StreamAbort",
        17,
        "Int64",
    ),
    "Stream Abort: LSN where none is sent": (
        PGOUTPUT,
        PgOutputContext(4),
        b"A" + u32(1) + u32(1) + u64(5) + u64(6),
        "StreamAbort",
        9,
        "trailing",
    ),
    "Stream Stop: trailing byte": (PGOUTPUT, V2S, b"E\0", "StreamStop", 1, "trailing"),
    "new archive: name not terminated": (
        BASE_BACKUP_STREAM,
        None,
        b"nbase.tar",
        "NewArchive",
        1,
        "NUL-terminated",
    ),
    "progress: short": (BASE_BACKUP_STREAM, None, b"p\0\0\0\1", "ProgressReport", 1, "Int64"),
    "manifest: trailing byte": (BASE_BACKUP_STREAM, None, b"mx", "ManifestStart", 1, "trailing"),
    "BASE_BACKUP: unknown tag": (BASE_BACKUP_STREAM, None, b"w", "BASE_BACKUP", 0, "unknown"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_payload(case: tuple[SubProtocol[Any], Any, bytes, str, int, str]) -> None:
    protocol, context, payload, name, offset, words = case
    with pytest.raises(DecodingError) as info:
        protocol.decode(payload, context)
    assert (info.value.message, info.value.offset) == (name, offset), info.value
    assert words in info.value.reason


def test_class_decode_checks_the_tag() -> None:
    payload = b"k" + u64(1) + u64(2) + b"\x00"
    with pytest.raises(DecodingError) as info:
        XLogData.decode(payload)
    assert (info.value.message, info.value.offset) == ("XLogData", 0)


def _outcome(
    protocol: SubProtocol[Any], data: bytes, context: Any
) -> SubMessage[Any] | DecodingError:
    try:
        return protocol.decode(data, context)
    except DecodingError as exc:
        return exc


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_prefix_fails_or_is_itself_canonical(case: Case) -> None:
    """Cut anywhere, a payload either is refused with a DecodingError or (for
    layouts ending in raw bytes) is a shorter valid message that encodes
    back to exactly those bytes; nothing else escapes."""
    protocol = protocol_of(case)
    for n in range(len(case.payload)):
        prefix = case.payload[:n]
        outcome = _outcome(protocol, prefix, case.context)
        if isinstance(outcome, DecodingError):
            assert 0 <= outcome.offset <= n
        else:
            assert outcome.encode(case.context) == prefix


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_extra_byte_fails_or_is_itself_canonical(case: Case) -> None:
    longer = case.payload + b"\x00"
    outcome = _outcome(protocol_of(case), longer, case.context)
    if isinstance(outcome, DecodingError):
        assert "trailing" in outcome.reason
        assert outcome.offset == len(case.payload)
    else:
        assert outcome.encode(case.context) == longer


def test_archive_names_keep_any_bytes() -> None:
    payload = b"n" + b"\xff\xfe.tar\0" + b"/srv/t\xe9\0"
    msg = BASE_BACKUP_STREAM.decode(payload)
    assert isinstance(msg, NewArchive)
    assert msg.encode() == payload


def test_truncate_options_keep_every_bit() -> None:
    payload = b"T" + i32(0) + b"\xff"
    msg = PGOUTPUT.decode(payload, V1)
    assert isinstance(msg, Truncate)
    assert msg.cascade
    assert msg.restart_identity
    assert msg.encode(V1) == payload


# -- encoders ----------------------------------------------------------------------

T = TupleColumn.text
# (message, context, field named, words in the reason)
UNREPRESENTABLE: dict[str, tuple[Any, Any, str, str]] = {
    "negative LSN": (XLogData(wal_start=-1), None, "wal_start", "outside"),  # type: ignore[arg-type]
    "LSN over 64 bits": (XLogData(wal_end=2**64), None, "wal_end", "outside"),  # type: ignore[arg-type]
    "text as WAL data": (XLogData(data="WAL"), None, "data", "expected bytes"),  # type: ignore[arg-type]
    "reply flag 2": (PrimaryKeepalive(reply_requested=2), None, "reply_requested", "boolean"),  # type: ignore[arg-type]
    "xid over 32 bits": (HotStandbyFeedback(xmin=2**32), None, "xmin", "outside"),
    "timestamp over 64 bits": (
        StandbyStatusUpdate(send_time=2**63),  # type: ignore[arg-type]
        None,
        "send_time",
        "outside",
    ),
    "xid outside a stream": (Insert(1, [T(b"1")], xid=5), V1, "xid", "only messages inside"),
    "no xid inside a stream": (Insert(1, [T(b"1")]), V2S, "xid", "carries its xid"),
    "update with key and old": (
        Update(1, [T(b"1")], key=[T(b"1")], old=[T(b"1")]),
        V1,
        "old",
        "never both",
    ),
    "delete with neither": (Delete(1), V1, "old", "exactly one"),
    "delete with both": (Delete(1, key=[T(b"1")], old=[T(b"1")]), V1, "old", "exactly one"),
    "abort without LSN when parallel": (StreamAbort(1, 1), V4P, "abort_lsn", "parallel"),
    "abort with LSN when not parallel": (
        StreamAbort(1, 1, LSN(5), Timestamp(6)),
        PgOutputContext(4),
        "abort_lsn",
        "only sent",
    ),
    "NUL in a text value": (Insert(1, [T(b"a\0")]), V1, "new[0]", "NUL"),
    "unknown column kind": (
        Insert(1, [TupleColumn("x", b"1")]),  # type: ignore[arg-type]
        V1,
        "new[0]",
        "unknown column kind",
    ),
    "NULL with a value": (
        Insert(1, [TupleColumn(ColumnKind.NULL, b"1")]),
        V1,
        "new[0]",
        "carries no value",
    ),
    "text without a value": (
        Insert(1, [TupleColumn(ColumnKind.TEXT)]),
        V1,
        "new[0]",
        "needs bytes",
    ),
    "column that is no column": (Insert(1, ["t"]), V1, "new[0]", "TupleColumn"),  # type: ignore[list-item]
    "tuple that is no list": (Insert(1, "nn"), V1, "new", "list"),  # type: ignore[arg-type]
    "too many columns": (Insert(1, [TupleColumn.null()] * 65536), V1, "new", "65535"),
    "unknown replica identity": (Relation(1, "s", "t", "z"), V1, "replica_identity", "d, n, f, i"),  # type: ignore[arg-type]
    "relation column that is no column": (
        Relation(1, "s", "t", columns=[("a", 23)]),  # type: ignore[list-item]
        V1,
        "columns[0]",
        "RelationColumn",
    ),
    "NUL in a table name": (Relation(1, "s", "t\0x"), V1, "name", "NUL"),
    "NUL in a message prefix": (LogicalMessage(True, LSN(0), "p\0"), V1, "prefix", "NUL"),
    "message flag 2": (LogicalMessage(2), V1, "transactional", "boolean"),  # type: ignore[arg-type]
    "stream start in version 1": (StreamStart(1, True), V1, "context", "version 2"),
    "not a context": (Begin(), "v1", "context", "PgOutputContext"),
    "unencodable archive name": (NewArchive("\ud800.tar"), None, "name", "not encodable"),
}


@pytest.mark.parametrize("case", UNREPRESENTABLE.values(), ids=UNREPRESENTABLE.keys())
def test_unrepresentable(case: tuple[Any, Any, str, str]) -> None:
    msg, context, field, words = case
    buf = bytearray(b"earlier messages")
    with pytest.raises(EncodingError) as info:
        msg.encode_into(buf, context)
    assert info.value.field == field
    assert words in info.value.reason
    assert buf == b"earlier messages"
    with pytest.raises(EncodingError):
        msg.encode(context)


def test_contexts_refuse_impossible_combinations() -> None:
    # (proto_version, in_stream, parallel)
    for version, in_stream, parallel in (
        (0, False, False),
        (5, False, False),
        (1, True, False),
        (3, False, True),
    ):
        with pytest.raises(ReplicationValueError):
            PgOutputContext(version, in_stream, parallel)
    with pytest.raises(ReplicationValueError):
        LogicalStream(1, streaming="on")
    with pytest.raises(ReplicationValueError):
        LogicalStream(3, streaming="parallel")
    with pytest.raises(ReplicationValueError):
        LogicalStream(2, streaming="sometimes")  # type: ignore[arg-type]
    for encoding in ("no-such-encoding", "base64"):
        with pytest.raises(ReplicationValueError):
            LogicalStream(1, encoding=encoding)


def test_wal_data_past_the_largest_lsn() -> None:
    payload = b"w" + u64(2**64 - 2) + u64(0) + u64(0) + b"abc"
    with pytest.raises(DecodingError) as info:
        PhysicalStream().receive(payload)
    assert (info.value.message, info.value.offset) == ("XLogData", 1)


# -- the logical stream's checks ------------------------------------------------------

HEADER = 25  # 'w', two LSNs and the send time in front of the pgoutput message


def wal(msg: Any, context: PgOutputContext = V1, start: int = 0x100) -> bytes:
    """An XLogData payload carrying ``msg`` (built by pygwire: the layouts
    themselves are checked by the golden table)."""
    return XLogData(LSN(start), LSN(start), Timestamp(0), msg.encode(context)).encode()


REL = Relation(
    16384, "public", "t", columns=[RelationColumn("id", 23, flags=1), RelationColumn("v", 25)]
)


def opened(version: int = 1, **kw: Any) -> LogicalStream:
    stream = LogicalStream(version, **kw)
    stream.receive(wal(REL, stream.context))
    stream.receive(wal(Begin(LSN(0x200), Timestamp(0), 700), stream.context))
    return stream


def test_change_of_an_unknown_relation() -> None:
    stream = LogicalStream(1)
    stream.receive(wal(Begin(xid=1)))
    with pytest.raises(DecodingError) as info:
        stream.receive(wal(Insert(99, [T(b"1")])))
    assert (info.value.message, info.value.offset) == ("Insert", HEADER + 1)
    assert "relation 99" in info.value.reason


def test_change_of_an_unknown_relation_in_a_stream() -> None:
    stream = LogicalStream(2, streaming=True)
    stream.receive(wal(StreamStart(700, True), stream.context))
    with pytest.raises(DecodingError) as info:
        stream.receive(wal(Delete(99, key=[T(b"1")], xid=700), stream.context))
    assert (info.value.message, info.value.offset) == ("Delete", HEADER + 5)


def test_truncate_of_an_unknown_relation() -> None:
    stream = opened()
    with pytest.raises(DecodingError) as info:
        stream.receive(wal(Truncate([16384, 99])))
    # tag, count, options, then the second id
    assert (info.value.message, info.value.offset) == ("Truncate", HEADER + 1 + 4 + 1 + 4)


@pytest.mark.parametrize(
    ("msg", "offset"),
    [
        (Insert(16384, [T(b"1")]), 6),
        (Update(16384, [T(b"1")]), 6),
        # The key tuple is fine; the new tuple, behind 'K', count, two columns, 'N', is not.
        (Update(16384, [T(b"1")], key=[T(b"1"), TupleColumn.null()]), 6 + 2 + 6 + 1 + 1),
        (Delete(16384, old=[T(b"1"), T(b"x"), T(b"y")]), 6),
    ],
)
def test_tuple_with_the_wrong_column_count(msg: Any, offset: int) -> None:
    stream = opened()
    with pytest.raises(DecodingError) as info:
        stream.receive(wal(msg))
    assert (info.value.message, info.value.offset) == (type(msg).__name__, HEADER + offset)
    assert "public.t, which has 2" in info.value.reason


def test_text_value_in_another_encoding() -> None:
    stream = opened()
    with pytest.raises(DecodingError) as info:
        stream.receive(wal(Insert(16384, [T(b"1"), T(b"caf\xe9")])))
    # tag, relation, 'N', count, column 1 (kind, length, "1"), kind, length, "caf"
    assert info.value.offset == HEADER + 1 + 4 + 1 + 2 + 6 + 5 + 3
    assert "'v'" in info.value.reason
    latin = opened(encoding="latin-1")
    change = latin.receive(wal(Insert(16384, [T(b"1"), T(b"caf\xe9")])))
    assert change.new == {"id": "1", "v": "café"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("before", "msg", "words"),
    [
        ((), Insert(16384, [T(b"1"), T(b"2")]), "outside any transaction"),
        ((), Commit(), "Commit without Begin"),
        ((Begin(xid=1),), Begin(xid=2), "while another is open"),
        ((), StreamStop(), "without Stream Start"),
        ((StreamStart(5, True),), StreamStart(6, True), "another stream block"),
        ((StreamStart(5, True),), StreamAbort(5, 5), "outside any transaction or stream"),
        ((), LogicalMessage(True, LSN(1), "p", b""), "transactional message outside"),
    ],
)
def test_messages_out_of_place(before: tuple[Any, ...], msg: Any, words: str) -> None:
    stream = LogicalStream(2, streaming=True)
    stream.receive(wal(REL))
    for m in before:
        stream.receive(wal(m, stream.context))
    ctx = stream.context
    if isinstance(msg, LogicalMessage) and ctx.in_stream:
        msg.xid = 5
    with pytest.raises(DecodingError) as info:
        stream.receive(wal(msg, ctx))
    assert info.value.message == type(msg).__name__
    assert info.value.offset == HEADER
    assert words in info.value.reason


def test_a_client_message_from_the_server() -> None:
    for stream in (LogicalStream(), PhysicalStream()):
        with pytest.raises(DecodingError) as info:
            stream.receive(StandbyStatusUpdate().encode())
        assert (info.value.message, info.value.offset) == ("StandbyStatusUpdate", 0)


def test_a_refused_message_changes_nothing() -> None:
    stream = opened()
    before = (stream.in_transaction, stream.transaction_xid, dict(stream.relations))
    with pytest.raises(DecodingError):
        stream.receive(wal(Insert(16384, [T(b"1")]), start=0x900))
    assert (stream.in_transaction, stream.transaction_xid, dict(stream.relations)) == before
    assert stream.received_lsn == 0x100  # where the earlier XLogData started, not 0x900
    change = stream.receive(wal(Insert(16384, [T(b"1"), TupleColumn.null()])))
    assert change.kind is ChangeKind.INSERT  # type: ignore[union-attr]
    assert change.xid == 700  # type: ignore[union-attr]
    assert isinstance(stream.receive(wal(Commit())), Commit)
    assert not stream.in_transaction


# -- command builders ----------------------------------------------------------------


def test_builders_quote_names_and_values() -> None:
    assert read_replication_slot("s_1") == 'READ_REPLICATION_SLOT "s_1"'
    assert drop_replication_slot("s", wait=True) == 'DROP_REPLICATION_SLOT "s" WAIT'
    assert timeline_history(2) == "TIMELINE_HISTORY 2"
    assert create_physical_replication_slot("p", temporary=True, reserve_wal=True) == (
        'CREATE_REPLICATION_SLOT "p" TEMPORARY PHYSICAL (RESERVE_WAL true)'
    )
    assert create_logical_replication_slot(
        "l", "my plugin", two_phase=True, snapshot="nothing"
    ) == ('CREATE_REPLICATION_SLOT "l" LOGICAL "my plugin" (TWO_PHASE true, SNAPSHOT \'nothing\')')
    assert start_physical_replication("16/B374D848", slot_name="p", timeline=1) == (
        'START_REPLICATION SLOT "p" PHYSICAL 16/B374D848 TIMELINE 1'
    )
    options = {"it's": "a 'quoted' value", "flag": None, "on": True, "n": 4}
    assert start_logical_replication("l", LSN(2**32), options) == (
        'START_REPLICATION SLOT "l" LOGICAL 1/0 '
        "(\"it's\" 'a ''quoted'' value', \"flag\", \"on\" 'true', \"n\" '4')"
    )
    assert pgoutput_options(4, ["a", 'b"c', "d,e"], streaming="parallel", origin="none") == {
        "proto_version": "4",
        "publication_names": '"a","b""c","d,e"',
        "streaming": "parallel",
        "origin": "none",
    }
    assert base_backup(label="x'); DROP", max_rate=32, compression_detail=5) == (
        "BASE_BACKUP (LABEL 'x''); DROP', COMPRESSION_DETAIL 5, MAX_RATE 32)"
    )
    assert base_backup() == "BASE_BACKUP"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: read_replication_slot('s"; DROP'), "slot_name"),
        (lambda: read_replication_slot("Upper"), "slot_name"),
        (lambda: read_replication_slot("x" * 64), "slot_name"),
        (lambda: drop_replication_slot(""), "slot_name"),
        (lambda: timeline_history(0), "timeline"),
        (lambda: timeline_history(2**32), "timeline"),
        (lambda: start_physical_replication("1/2/3"), "start_lsn"),
        (lambda: start_physical_replication(-1), "start_lsn"),
        (lambda: create_logical_replication_slot("s", ""), "plugin"),
        (lambda: create_logical_replication_slot("s", "p\0x"), "plugin"),
        (lambda: create_logical_replication_slot("s", 'p"x'), "plugin"),
        (lambda: start_logical_replication("s", 0, {'o"': "1"}), "options['o\"']"),
        (lambda: create_logical_replication_slot("s", "p", snapshot="all"), "snapshot"),  # type: ignore[arg-type]
        (lambda: create_logical_replication_slot("s", "p", two_phase=1), "two_phase"),  # type: ignore[arg-type]
        (lambda: start_logical_replication("s", 0, {"o": "a\0b"}), "options['o']"),
        (lambda: start_logical_replication("s", 0, {"o": 1.5}), "options['o']"),  # type: ignore[dict-item]
        (lambda: pgoutput_options(5, ["p"]), "proto_version"),
        (lambda: pgoutput_options(1, []), "publication_names"),
        (lambda: pgoutput_options(1, "pub"), "publication_names"),
        (lambda: pgoutput_options(1, [""]), "publication_names"),
        (lambda: pgoutput_options(1, ["p"], streaming=True), "streaming"),
        (lambda: pgoutput_options(3, ["p"], streaming="parallel"), "streaming"),
        (lambda: pgoutput_options(2, ["p"], two_phase=True), "two_phase"),
        (lambda: pgoutput_options(4, ["p"], origin="some"), "origin"),  # type: ignore[arg-type]
        (lambda: base_backup(max_rate=31), "max_rate"),
        (lambda: base_backup(checkpoint="now"), "checkpoint"),  # type: ignore[arg-type]
        (lambda: base_backup(label="a\0"), "label"),
        (lambda: base_backup(manifest="maybe"), "manifest"),  # type: ignore[arg-type]
    ],
)
def test_builders_refuse(build: Any, field: str) -> None:
    with pytest.raises(EncodingError) as info:
        build()
    assert info.value.field == field


def test_every_error_is_a_pygwire_error() -> None:
    assert issubclass(ReplicationValueError, PygwireError)
    assert issubclass(ReplicationValueError, ValueError)
