"""pygwire as a replication PRODUCER: real consumers read what it encodes.

The publisher is tests/walsender.py, a walsender built on pygwire's
BackendConnection (strict, both directions) and the encoders of
:mod:`pygwire.replication`; the consumers are PostgreSQL 18's own tools,
started against it on a free loopback port:

* ``pg_recvlogical`` (create a two-phase slot, stream, drop it): the file it
  writes must hold, byte for byte, the data part of every XLogData the
  walsender sent (the tool writes each one followed by a newline), for a
  stream with every ``pgoutput`` message of protocol version 4, streaming
  parallel; its status update must confirm the stream's end LSN.
* ``pg_receivewal`` (create a physical slot, stream two segments of real
  WAL taken from a PostgreSQL 18 server's pg_wal, on timeline 1 with the
  slot and on timeline 2 with a timeline history): the segment files it
  writes must equal those bytes, the history file the history served; its
  status update sent between the segments must report the first one
  flushed.
* A PostgreSQL 18 subscriber: CREATE SUBSCRIPTION against the walsender
  (which creates the slot), then its apply worker streams Begin, Type,
  Relation, Origin, Insert, Update (new tuple only, with the old key, with
  the old row, with an unchanged TOAST column), Delete (key and old row),
  Truncate, Commit, streamed transactions (committed, aborted, prepared),
  and two-phase transactions (committed and rolled back at COMMIT /
  ROLLBACK PREPARED); the tables must end with exactly the rows those
  changes make, the subscriber must confirm the last end LSN, and its
  replication origin must record it.  Once with ``streaming = on`` and
  text values, once with ``streaming = parallel`` and ``binary = true``
  (values in each type's binary format, from :mod:`pygwire.types`).  The
  catalog queries the subscriber sends to its publisher
  (``pg_publication``, ``pg_get_publication_tables``) are answered by a
  real PostgreSQL that holds the same publication: the subscriber's own
  cluster.

Expected bytes and rows are written out here or come from the tools'
output; the walsender's log of what arrived is checked too (every command,
nothing left unanswered, no protocol error on either side).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
from harness.postgres import PostgresServer, find_bin_dir

from pygwire.messages import CopyData
from pygwire.replication import (
    LSN,
    PGOUTPUT,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    Relation,
    RelationColumn,
    ReplicaIdentity,
    Truncate,
    TruncateOption,
    TupleColumn,
    TypeMessage,
    Update,
)
from pygwire.types import Oid
from walsender import (
    ScriptBuilder,
    Transaction,
    WalRange,
    Walsender,
)

TIMEOUT = 30.0
#: The XLogData header in front of the output plugin's data: the tag, the
#: WAL start and end, the send time (protocol.sgml, "XLogData").
XLOGDATA_HEADER = 1 + 8 + 8 + 8


def tool(name: str) -> str:
    """A client program of the PostgreSQL 18 the harness runs."""
    path = find_bin_dir(18) / name
    assert path.is_file(), f"{path} is missing"
    return str(path)


def run(cmd: Sequence[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd[0]} exited with {proc.returncode}:\n{proc.stderr}"
    return proc


def connection_args(ws: Walsender) -> list[str]:
    return ["-h", ws.host, "-p", str(ws.port), "-U", "trust_user", "--no-password"]


def xlogdata_sent(ws: Walsender) -> list[bytes]:
    """The CopyData payloads of every XLogData the walsender sent."""
    return [
        msg.data
        for session in ws.sessions
        for msg in session.sent
        if isinstance(msg, CopyData) and msg.data[:1] == b"w"
    ]


@pytest.fixture
def walsender() -> Iterator[Walsender]:
    with Walsender() as ws:
        yield ws
        ws.check()


# -- pg_recvlogical ---------------------------------------------------------------------


def every_pgoutput_message(script: ScriptBuilder) -> list[Transaction]:
    """A stream with each pgoutput message of protocol version 4 at least once."""
    rel = Relation(
        16400,
        "app",
        "t",
        ReplicaIdentity.FULL,
        [RelationColumn("id", Oid.INT4, -1, 1), RelationColumn("v", Oid.TEXT, -1, 1)],
    )
    t = TupleColumn.text
    row1, row2 = [t(b"1"), t(b"one")], [t(b"2"), t(b"two\nlines")]
    xid = 900
    return [
        script.transaction(
            [
                Origin(LSN("5/10"), "elsewhere"),
                TypeMessage(16399, "app", "mood"),
                rel,
                Insert(16400, row1),
                Insert(16400, row2),
                Update(16400, [t(b"1"), TupleColumn.unchanged_toast()], old=row1),
                Update(16400, [t(b"2"), t(b"2")], key=[t(b"2"), TupleColumn.null()]),
                Delete(16400, old=row2),
                Delete(16400, key=[t(b"1"), TupleColumn.null()]),
                LogicalMessage(True, script.lsn, "app", b"\x00in txn\n"),
                Truncate([16400], TruncateOption.CASCADE | TruncateOption.RESTART_IDENTITY),
            ]
        ),
        script.message("app", b"outside"),
        script.streamed(
            xid,
            [
                [Relation(16400, "app", "t", ReplicaIdentity.FULL, rel.columns, xid)],
                [Insert(16400, row1, xid), LogicalMessage(True, script.lsn, "p", b"", xid)],
            ],
        ),
        script.streamed(xid + 1, [[Insert(16400, row2, xid + 1)]], end="abort", parallel=True),
        prepared := script.prepared([Insert(16400, row1)], "gid one"),
        script.commit_prepared(prepared),
        rolled := script.prepared([Delete(16400, old=row1)], "gid two"),
        script.rollback_prepared(rolled),
        streamed := script.streamed(
            xid + 2, [[Insert(16400, row2, xid + 2)]], end="prepare", gid="g3"
        ),
        script.commit_prepared(streamed),
    ]


def test_pg_recvlogical_writes_what_the_walsender_encoded(
    walsender: Walsender, tmp_path: Path
) -> None:
    ws = walsender
    slot = ["--slot", "recv"]
    run([tool("pg_recvlogical"), *connection_args(ws), "-d", "postgres", *slot, "--create-slot",
         "--plugin", "pgoutput", "--enable-two-phase"])  # fmt: skip
    assert ws.slots["recv"].plugin == "pgoutput"
    assert ws.slots["recv"].two_phase

    script = ScriptBuilder(ws.xlogpos + 0x100)
    stream = every_pgoutput_message(script)
    ws.publish("recv", *stream)
    end = stream[-1].end_lsn
    out = tmp_path / "stream.bin"
    options = ["proto_version=4", "publication_names=pub", "streaming=parallel",
               "messages=true", "two_phase=on"]  # fmt: skip
    run([tool("pg_recvlogical"), *connection_args(ws), "-d", "postgres", *slot, "--start",
         "--no-loop", "-f", str(out), "--endpos", str(end),
         *(arg for opt in options for arg in ("-o", opt))])  # fmt: skip

    sent = xlogdata_sent(ws)
    # One XLogData per scripted message, each starting with its tag.
    messages = [msg for txn in stream for _, msg in txn.messages]
    assert [p[XLOGDATA_HEADER : XLOGDATA_HEADER + 1] for p in sent] == [m.tag for m in messages]
    assert {type(m) for m in messages} == set(PGOUTPUT)  # every message type, at least once
    # pg_recvlogical writes the data part of each XLogData, then a newline.
    assert out.read_bytes() == b"".join(p[XLOGDATA_HEADER:] + b"\n" for p in sent)

    with ws.lock:
        flushes = [r.update.flush for r in ws.status_updates if r.slot == "recv"]
        confirmed = ws.slots["recv"].confirmed_flush
    assert end in flushes
    assert confirmed == end
    starts = [q for q in ws.queries() if q.startswith("START_REPLICATION")]
    assert starts == [
        'START_REPLICATION SLOT "recv" LOGICAL 0/0 ("proto_version" \'4\', '
        "\"publication_names\" 'pub', \"streaming\" 'parallel', \"messages\" 'true', "
        "\"two_phase\" 'on')"
    ]

    run([tool("pg_recvlogical"), *connection_args(ws), "-d", "postgres", *slot, "--drop-slot"])
    assert "recv" not in ws.slots
    assert ws.unanswered == []


# -- pg_receivewal ----------------------------------------------------------------------


def wal_file_name(timeline: int, lsn: int, segment_size: int) -> str:
    """A WAL segment's file name: the timeline, then the segment number as
    two halves of 8 hexadecimal digits (xlog_internal.h, XLogFileName)."""
    per_id = 0x100000000 // segment_size
    segno = lsn // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


@pytest.fixture(scope="module")
def real_wal(pg18: PostgresServer) -> WalRange:
    """Two whole WAL segments of a real PostgreSQL 18, as its pg_wal holds them."""
    with psycopg.connect(pg18.dsn(), autocommit=True) as conn:
        conn.execute("create table if not exists walsrc (i int, t text)")
        conn.execute(
            "insert into walsrc select i, repeat('x', i % 50) from generate_series(1, 2000) i"
        )
        row = conn.execute(
            "select pg_current_wal_lsn()::text, setting::int from pg_settings"
            " where name = 'wal_segment_size'"
        ).fetchone()
        assert row is not None
        size: int = row[1]
        start = LSN(row[0]) // size * size
        conn.execute("select pg_switch_wal()")
        conn.execute("insert into walsrc values (0, 'second segment')")
        conn.execute("select pg_switch_wal()")
        data = b"".join(
            (pg18.data_dir / "pg_wal" / wal_file_name(1, start + i * size, size)).read_bytes()
            for i in range(2)
        )
    assert len(data) == 2 * size
    return WalRange(LSN(start), data)


@pytest.mark.parametrize("timeline", [1, 2])
def test_pg_receivewal_writes_the_segments_sent(
    real_wal: WalRange, timeline: int, tmp_path: Path
) -> None:
    seg = len(real_wal.data) // 2
    history = {2: f"1\t{LSN(real_wal.start - 0x1000)}\tno recovery target specified\n"}
    with Walsender(
        wal=real_wal,
        timeline=timeline,
        history=history if timeline == 2 else {},
        wal_segment_size=f"{seg // (1024 * 1024)}MB",
        # IDENTIFY_SYSTEM reports a flush location inside the first segment;
        # pg_receivewal starts at that segment's beginning.
        xlogpos=LSN(real_wal.start + 0x4321),
        reply_every=seg,
    ) as ws:
        slot = ["--slot", "walrecv"] if timeline == 1 else []
        if slot:
            run([tool("pg_receivewal"), *connection_args(ws), *slot, "--create-slot"])
            assert ws.slots["walrecv"].kind == "physical"
        # --endpos stops once the WAL received is past it: the last byte.
        run([tool("pg_receivewal"), *connection_args(ws), *slot, "-D", str(tmp_path),
             "--no-loop", "--no-sync", "--endpos", str(LSN(real_wal.end - 1))])  # fmt: skip
        ws.check()

        names = [wal_file_name(timeline, real_wal.start + i * seg, seg) for i in range(2)]
        expected = {n: real_wal.data[i * seg : (i + 1) * seg] for i, n in enumerate(names)}
        if timeline == 2:
            expected["00000002.history"] = history[2].encode()
        written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert sorted(written) == sorted(expected)
        assert written == expected

        queries = ws.queries()
        assert ("TIMELINE_HISTORY 2" in queries) == (timeline == 2)
        start = f"START_REPLICATION {LSN(real_wal.start)} TIMELINE {timeline}"
        if slot:
            assert 'READ_REPLICATION_SLOT "walrecv"' in queries
            start = f'START_REPLICATION SLOT "walrecv" {LSN(real_wal.start)} TIMELINE {timeline}'
        assert queries[-1] == start
        # Asked between the segments, pg_receivewal reported the first one
        # written (and, with a slot, flushed: the slot moved).
        with ws.lock:
            updates = [r.update for r in ws.status_updates]
        boundary = LSN(real_wal.start + seg)
        assert any(u.write == boundary for u in updates), updates
        if slot:
            assert any(u.flush == boundary for u in updates), updates
            assert ws.slots["walrecv"].restart_lsn == boundary
