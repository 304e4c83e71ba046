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
  writes must equal those bytes, the history file the history served; the
  status update it sends when asked between the segments must report the
  first one written (and with the slot flushed, which moves the slot).
* A PostgreSQL 18 subscriber: CREATE SUBSCRIPTION against the walsender
  (its backend creates the two-phase slot), then its apply worker streams
  Begin, Type, Relation, Origin, Insert, Update (new tuple only, with the
  old key, with the old row, with an unchanged TOAST column), Delete (key
  and old row), Truncate, Commit, streamed transactions (committed,
  aborted, prepared) and two-phase transactions (Begin Prepare / Prepare,
  then Commit Prepared or Rollback Prepared).  While prepared, the
  subscriber must hold them as prepared transactions; in the end its
  tables must hold exactly the rows those changes make, its status updates
  must confirm the last end LSN and its replication origin must record it.
  Disabled and enabled again, it must ask to resume at that LSN, and what
  the walsender sends from there (the next transaction, its relation
  described again on the new connection) must apply with no duplicate.
  Once with ``streaming = on`` and text values, once with ``streaming =
  parallel`` (abort LSN and time in Stream Abort; the subscriber may hand a
  streamed transaction to a parallel apply worker) and ``binary = true``
  (each type's binary format, from :mod:`pygwire.types`).
  DROP SUBSCRIPTION must drop the slot.  The SQL the subscriber sends its
  publisher (``set_config`` of ``search_path``, ``pg_publication``,
  ``pg_get_publication_tables``) is answered from a real PostgreSQL that
  holds the same publication: the subscriber's own cluster.  The
  replication commands of each of its connections are checked one by one.

Expected bytes and rows are written out here or come from the tools'
output; the walsender's log of what arrived is checked too (every command,
nothing left unanswered, no protocol error on either side).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

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
from pygwire.types import Format, Oid
from pygwire.types import encode as encode_value
from walsender import (
    Column,
    Result,
    ScriptBuilder,
    SqlError,
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

    def in_stream(xid: int) -> Relation:
        # pgoutput describes the relation again inside each streamed transaction.
        return Relation(16400, "app", "t", ReplicaIdentity.FULL, rel.columns, xid)

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
                [in_stream(xid)],
                [Insert(16400, row1, xid), LogicalMessage(True, script.lsn, "p", b"", xid)],
            ],
        ),
        script.streamed(
            xid + 1,
            [[in_stream(xid + 1), Insert(16400, row2, xid + 1)]],
            end="abort",
            parallel=True,
        ),
        prepared := script.prepared([Insert(16400, row1)], "gid one"),
        script.commit_prepared(prepared),
        rolled := script.prepared([Delete(16400, old=row1)], "gid two"),
        script.rollback_prepared(rolled),
        streamed := script.streamed(
            xid + 2, [[in_stream(xid + 2), Insert(16400, row2, xid + 2)]], end="prepare", gid="g3"
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


# -- a PostgreSQL subscriber ---------------------------------------------------------------


class Catalog:
    """Answers what a subscriber asks its publisher in SQL from a real
    PostgreSQL's catalog, as that server answers it (types and all)."""

    def __init__(self, server: PostgresServer) -> None:
        self.conn = psycopg.connect(server.dsn(), autocommit=True)
        self.lock = threading.Lock()

    def __call__(self, query: str) -> Result | None:
        with self.lock:
            res = self.conn.pgconn.exec_(query.encode())
        if res.status == psycopg.pq.ExecStatus.FATAL_ERROR:
            code = res.error_field(psycopg.pq.DiagnosticField.SQLSTATE) or b"XX000"
            text = res.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) or b""
            raise SqlError(code.decode(), text.decode())
        columns = [
            Column((res.fname(i) or b"").decode(), res.ftype(i), res.fsize(i))
            for i in range(res.nfields)
        ]
        rows = [
            [None if (v := res.get_value(r, c)) is None else v.decode() for c in range(res.nfields)]
            for r in range(res.ntuples)
        ]
        return Result(columns, rows, (res.command_status or b"").decode())

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def server_log_on_failure(server: PostgresServer) -> Iterator[None]:
    """Add the end of the server's log to an assertion or timeout inside."""
    try:
        yield
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n-- {server!r} log:\n{server.log_tail(25)}") from exc


@pytest.fixture(scope="module")
def subscriber() -> Iterator[PostgresServer]:
    """The PostgreSQL 18 that subscribes (prepared transactions allowed, for
    two-phase)."""
    with PostgresServer(18, settings={"max_prepared_transactions": 10}) as server:
        yield server


UNCHANGED = object()  # an unchanged TOASTed value: not sent


class Table:
    """A subscriber table as a publisher describes it, and its rows as
    pgoutput tuples (text or binary values, from pygwire.types)."""

    def __init__(
        self, conn: psycopg.Connection[Any], name: str, identity: ReplicaIdentity, binary: bool
    ) -> None:
        self.binary = binary
        row = conn.execute("select %s::regclass::oid", [name]).fetchone()
        assert row is not None
        self.oid: int = row[0]
        cols = conn.execute(
            "select attname, atttypid, atttypmod, coalesce(attnum = any(i.indkey), false),"
            " t.typtype = 'e'"
            " from pg_attribute a join pg_type t on t.oid = a.atttypid"
            " left join pg_index i on i.indrelid = a.attrelid and i.indisprimary"
            " where attrelid = %s and attnum > 0 and not attisdropped order by attnum",
            [self.oid],
        ).fetchall()
        schema, table = name.split(".")
        full = identity is ReplicaIdentity.FULL
        # pgoutput flags the replica identity's columns; under FULL, all.
        self.relation = Relation(
            self.oid,
            schema,
            table,
            identity,
            [RelationColumn(n, oid, mod, 1 if key or full else 0) for n, oid, mod, key, _ in cols],
        )
        # An enum's text and binary forms are both its label.
        self.types = [Oid.TEXT if enum else oid for _, oid, _, _, enum in cols]
        self.keys = [key or full for _, _, _, key, _ in cols]

    def tuple(self, *values: object) -> list[TupleColumn]:
        out = []
        for value, oid in zip(values, self.types, strict=True):
            if value is None:
                out.append(TupleColumn.null())
            elif value is UNCHANGED:
                out.append(TupleColumn.unchanged_toast())
            elif self.binary:
                out.append(TupleColumn.binary(encode_value(value, oid, Format.BINARY)))
            else:
                out.append(TupleColumn.text(encode_value(value, oid, Format.TEXT)))
        return out

    def key(self, *values: object) -> list[TupleColumn]:
        """The old key: the identity's columns, NULL for the others."""
        it = iter(values)
        return self.tuple(*(next(it) if k else None for k in self.keys))

    def insert(self, *values: object, xid: int | None = None) -> Insert:
        return Insert(self.oid, self.tuple(*values), xid)

    def describe(self, xid: int | None = None) -> Relation:
        rel = self.relation
        return Relation(
            rel.relation_id, rel.namespace, rel.name, rel.replica_identity, rel.columns, xid
        )


@pytest.mark.parametrize(
    ("streaming", "binary"), [("on", False), ("parallel", True)], ids=["text-on", "binary-parallel"]
)
def test_postgresql_subscriber_applies_what_pygwire_encodes(
    subscriber: PostgresServer, streaming: str, binary: bool
) -> None:
    case = "binary" if binary else "text"
    s, pub, sub = f"shop_{case}", f"pub_{case}", f"sub_{case}"
    catalog = Catalog(subscriber)
    conn = psycopg.connect(subscriber.dsn(), autocommit=True)
    try:
        for sql in (
            f"create schema {s}",
            f"create type {s}.mood as enum ('sad', 'ok', 'happy')",
            f"create table {s}.items (id int primary key, name text not null,"
            f" price numeric(10,2), tags text[], mood {s}.mood)",
            f"create table {s}.notes (id int, body text)",
            f"alter table {s}.notes replica identity full",
            f"create table {s}.events (id bigint primary key, what text)",
            # The publication the walsender's catalog answers come from.
            f"create publication {pub} for table {s}.items, {s}.notes, {s}.events",
        ):
            conn.execute(sql)
        with Walsender(sql=catalog) as ws, server_log_on_failure(subscriber):
            conn.execute(
                f"create subscription {sub} connection 'host={ws.host} port={ws.port}"
                f" user=trust_user dbname=postgres' publication {pub} with (copy_data = false,"
                f" streaming = {streaming}, binary = {binary}, two_phase = true)"
            )
            assert ws.slots[sub].plugin == "pgoutput"
            assert ws.slots[sub].two_phase
            resumed_at = run_subscriber_script(
                ws, conn, s, sub, binary=binary, parallel=streaming == "parallel"
            )
            conn.execute(f"drop subscription {sub}")  # drops the slot on the publisher
            assert sub not in ws.slots
            assert ws.unanswered == []
            ws.check()

            # What each of the subscriber's connections asked, SQL aside:
            # CREATE SUBSCRIPTION's, the apply worker's (twice: it was
            # restarted), DROP SUBSCRIPTION's.
            with ws.lock:
                commands = [(n, q) for n, q in ws.commands if not q.startswith("SELECT")]
            options = ["proto_version '4'", f"streaming '{streaming}'", "origin 'any'"]
            options.append(f"publication_names '\"{pub}\"'")
            options += ["binary 'true'"] if binary else []

            slot_options = "TWO_PHASE, SNAPSHOT 'nothing'"

            def start(lsn: LSN) -> str:
                return f'START_REPLICATION SLOT "{sub}" LOGICAL {lsn} ({", ".join(options)})'

            assert commands == [
                (1, f'CREATE_REPLICATION_SLOT "{sub}" LOGICAL pgoutput ({slot_options})'),
                (2, "IDENTIFY_SYSTEM"),
                (2, start(LSN(0))),
                (3, "IDENTIFY_SYSTEM"),
                (3, start(resumed_at)),
                (4, f'DROP_REPLICATION_SLOT "{sub}" WAIT'),
            ]  # fmt: skip
    finally:
        conn.close()
        catalog.close()


def run_subscriber_script(
    ws: Walsender,
    conn: psycopg.Connection[Any],
    s: str,
    sub: str,
    *,
    binary: bool,
    parallel: bool,
) -> LSN:
    """Stream the changes, check the subscriber's tables; the LSN the
    subscriber resumed at after a restart."""
    items = Table(conn, f"{s}.items", ReplicaIdentity.DEFAULT, binary)
    notes = Table(conn, f"{s}.notes", ReplicaIdentity.FULL, binary)
    events = Table(conn, f"{s}.events", ReplicaIdentity.DEFAULT, binary)
    mood = conn.execute(f"select '{s}.mood'::regtype::oid").fetchone()
    assert mood is not None
    script = ScriptBuilder(ws.xlogpos + 0x1000)
    streamed_xid, aborted_xid, streamed_prepare_xid = script.xid(), script.xid(), script.xid()

    def until_confirmed(txn: Transaction) -> None:
        ws.wait_for(
            lambda: ws.slots[sub].confirmed_flush >= txn.end_lsn, TIMEOUT, f"flush {txn.end_lsn}"
        )

    # Phase 1: plain transactions, streamed ones, and three prepared.
    first = [
        script.transaction(
            [
                TypeMessage(mood[0], s, "mood"),
                items.relation,
                notes.relation,
                events.relation,
                items.insert(1, "apple", Decimal("1.50"), ["red", "green"], "happy"),
                items.insert(2, "pear", None, [], "ok"),
                items.insert(3, "plum", Decimal("2.00"), None, "sad"),
                notes.insert(1, "first"),
                notes.insert(2, "second"),
                events.insert(1, "created"),
                events.insert(2, "created"),
            ]
        ),
        script.transaction(
            [
                Origin(LSN("1/0"), "upstream"),
                Update(items.oid, items.tuple(2, "pear", Decimal("0.99"), [], "ok")),
                Update(
                    items.oid,
                    items.tuple(30, "plum", Decimal("2.00"), None, "sad"),
                    key=items.key(3),
                ),
                Delete(items.oid, key=items.key(1)),
                Update(notes.oid, notes.tuple(1, "first, edited"), old=notes.tuple(1, "first")),
                Delete(notes.oid, old=notes.tuple(2, "second")),
            ]
        ),
        script.transaction([Truncate([events.oid], TruncateOption.RESTART_IDENTITY)]),
        script.streamed(
            streamed_xid,
            [
                [
                    events.describe(streamed_xid),
                    events.insert(10, "streamed", xid=streamed_xid),
                    events.insert(11, "streamed", xid=streamed_xid),
                ],
                [events.insert(12, "streamed", xid=streamed_xid)],
            ],
        ),
        script.streamed(
            aborted_xid,
            [[events.describe(aborted_xid), events.insert(20, "aborted", xid=aborted_xid)]],
            end="abort",
            parallel=parallel,
        ),
        fig := script.prepared([items.insert(4, "fig", Decimal("3.25"), ["a"], "ok")], "p1"),
        date := script.prepared([items.insert(5, "date", None, None, None)], "p2"),
        kiwi := script.streamed(
            streamed_prepare_xid,
            [
                [
                    # pgoutput describes a relation again inside each streamed
                    # transaction: a parallel apply worker has its own map.
                    items.describe(streamed_prepare_xid),
                    items.insert(6, "kiwi", Decimal("0.50"), None, "sad", xid=streamed_prepare_xid),
                ]
            ],
            end="prepare",
            gid="p3",
        ),
    ]
    ws.publish(sub, *first)
    until_confirmed(first[-1])
    prepared = conn.execute("select count(*) from pg_prepared_xacts").fetchone()
    assert prepared == (3,)
    assert conn.execute(f"select id from {s}.items order by id").fetchall() == [(2,), (30,)]

    # Phase 2: settle the prepared transactions, then an update that leaves
    # a TOASTed column alone.
    second = [
        script.commit_prepared(fig),
        script.rollback_prepared(date),
        script.commit_prepared(kiwi),
        script.transaction(
            [Update(items.oid, items.tuple(2, UNCHANGED, Decimal("1.10"), ["x"], "happy"))]
        ),
    ]
    ws.publish(sub, *second)
    until_confirmed(second[-1])

    assert conn.execute(
        f"select id, name, price::text, tags::text, mood::text from {s}.items order by id"
    ).fetchall() == [
        (2, "pear", "1.10", "{x}", "happy"),
        (4, "fig", "3.25", "{a}", "ok"),
        (6, "kiwi", "0.50", None, "sad"),
        (30, "plum", "2.00", None, "sad"),
    ]
    assert conn.execute(f"select * from {s}.notes").fetchall() == [(1, "first, edited")]
    assert conn.execute(f"select * from {s}.events order by id").fetchall() == [
        (10, "streamed"),
        (11, "streamed"),
        (12, "streamed"),
    ]
    assert conn.execute("select count(*) from pg_prepared_xacts").fetchone() == (0,)
    # The subscriber keeps the last end LSN it applied as its origin's
    # progress: where it will ask to resume.
    remote = conn.execute(
        "select remote_lsn::text from pg_replication_origin_status s"
        " join pg_subscription on s.external_id = 'pg_' || pg_subscription.oid"
        " where subname = %s",
        [sub],
    ).fetchone()
    assert remote == (str(second[-1].end_lsn),)
    with ws.lock:
        flushes = [r.update.flush for r in ws.status_updates if r.slot == sub]
    assert second[-1].end_lsn in flushes

    # Phase 3: the subscriber stops and comes back; the walsender resumes
    # after what it confirmed (anything sent again would be a duplicate key).
    conn.execute(f"alter subscription {sub} disable")
    ws.wait_for(lambda: all(x.done.is_set() for x in ws.sessions), TIMEOUT, "the worker leaving")
    third = script.transaction([events.insert(13, "after a restart")])
    ws.publish(sub, third)
    conn.execute(f"alter subscription {sub} enable")
    until_confirmed(third)
    assert conn.execute(f"select id from {s}.events order by id").fetchall() == [
        (10,),
        (11,),
        (12,),
        (13,),
    ]
    return second[-1].end_lsn
