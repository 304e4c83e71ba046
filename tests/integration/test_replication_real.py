"""pygwire as a replication consumer of real PostgreSQL 18 and 15 servers.

Every connection here is a pygwire FrontendConnection on a socket
(examples/socket_client.py) with ``replication`` in the startup packet,
strict about the protocol state throughout; commands come from
:mod:`pygwire.replication.commands` and every CopyData payload goes through
:class:`~pygwire.replication.LogicalStream` or
:class:`~pygwire.replication.PhysicalStream`.  The server decides what comes
back; the checks compare it with what the server itself reports:

* Logical: one scripted workload (inserts, updates and deletes under
  replica identity default, full and nothing; TRUNCATE with CASCADE and
  RESTART IDENTITY; unchanged TOAST values; a non-built-in type;
  transactional and non-transactional ``pg_logical_emit_message``; a large
  transaction with an aborted subtransaction and a large aborted one;
  PREPARE TRANSACTION with COMMIT PREPARED and ROLLBACK PREPARED, one of
  them large; a transaction from a replication origin) is decoded by
  several pgoutput slots at once, protocol versions 1 to 4 (4 on
  PostgreSQL 18 only), text and binary, streaming off, on and parallel,
  two-phase or not.  Each decoding must equal, transaction by transaction
  and LSN by LSN, what a second slot with the ``test_decoding`` plugin
  reports for the same WAL; applied to empty tables it must give the
  tables' final contents; the slot's ``confirmed_flush_lsn`` must be the
  flush location pygwire reported.
* Physical: WAL streamed with START_REPLICATION PHYSICAL must be
  contiguous and byte for byte the server's WAL files; the standby status
  update and hot standby feedback pygwire sends must show up in
  ``pg_stat_replication``.
* BASE_BACKUP: the archive and manifest pygwire reassembles must be a
  readable tar of the data directory and the server's JSON manifest.
* The other commands, and quoting that survives hostile names.

A server that cannot start fails these tests; nothing is skipped.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
import pytest
from examples.socket_client import ServerError, SocketClient
from harness.postgres import SUPERUSER, PostgresServer

from pygwire.messages import (
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    CopyOutResponse,
    DataRow,
    ErrorResponse,
    PGMessage,
    Query,
    ReadyForQuery,
    RowDescription,
)
from pygwire.replication import (
    BASE_BACKUP_STREAM,
    LSN,
    STREAMING,
    UNCHANGED_TOAST,
    ArchiveData,
    Begin,
    BeginPrepare,
    ChangeKind,
    Commit,
    CommitPrepared,
    LogicalEvent,
    LogicalMessage,
    LogicalStream,
    ManifestStart,
    NewArchive,
    Origin,
    PhysicalStream,
    Prepare,
    PrimaryKeepalive,
    ProgressReport,
    Relation,
    ReplicaIdentity,
    RequestPrimaryStatus,
    RollbackPrepared,
    RowChange,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Timestamp,
    TruncateChange,
    TypeMessage,
    XLogData,
    base_backup,
    create_logical_replication_slot,
    create_physical_replication_slot,
    drop_replication_slot,
    identify_system,
    pgoutput_options,
    read_replication_slot,
    start_logical_replication,
    start_physical_replication,
    timeline_history,
)

TIMEOUT = 60.0


# -- a replication connection driven by pygwire ---------------------------------------


class Walsender:
    """A pygwire client connection in replication mode (the server side of
    it is a walsender)."""

    def __init__(self, server: PostgresServer, mode: str = "database", **params: str) -> None:
        self.client = SocketClient.connect(
            server.host, server.port, "trust_user", params={"replication": mode, **params}
        )

    def command(self, sql: str) -> list[list[bytes | None]]:
        """Run a replication command; its rows (an error raises)."""
        msgs = self.client.query(sql)
        for msg in msgs:
            if isinstance(msg, ErrorResponse):
                raise ServerError(msg)
        return [m.columns for m in msgs if isinstance(m, DataRow)]

    def start(self, sql: str) -> None:
        """Send START_REPLICATION and wait for CopyBothResponse."""
        self.client.send(Query(query_string=sql))
        msg = self.client.next_message()
        if isinstance(msg, ErrorResponse):
            raise ServerError(msg)
        assert isinstance(msg, CopyBothResponse), msg

    def copy_data(self, timeout: float = 1.0) -> bytes | None:
        """The next CopyData payload, or None if nothing came in time."""
        self.client.sock.settimeout(timeout)
        try:
            msg = self.client.next_message()
        except TimeoutError:
            return None
        finally:
            self.client.sock.settimeout(TIMEOUT)
        if isinstance(msg, ErrorResponse):
            raise ServerError(msg)
        assert isinstance(msg, CopyData), msg
        return msg.data

    def send(self, msg: Any) -> None:
        """Send a streaming message in CopyData."""
        self.client.send(msg.copy_data())

    def finish(self) -> list[PGMessage]:
        """End COPY BOTH from the client side; every message up to
        ReadyForQuery."""
        self.client.send(CopyDone())
        return self.client.messages_until(ReadyForQuery)

    def close(self) -> None:
        self.client.close()


def sql_connection(server: PostgresServer) -> psycopg.Connection[Any]:
    """A psycopg superuser session for the workload and the server's views."""
    return psycopg.connect(server.dsn(), autocommit=True)


def one(conn: psycopg.Connection[Any], sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args or None).fetchone()
    assert row is not None
    return row[0]


# -- the logical workload -------------------------------------------------------------

SETUP = """
create schema cdc;
create type cdc.mood as enum ('sad', 'ok', 'happy');
create table cdc.dflt (id int primary key, val text, big text);
alter table cdc.dflt alter column big set storage external;
create table cdc.fll (id int, val text, big text);
alter table cdc.fll replica identity full;
alter table cdc.fll alter column big set storage external;
create table cdc.nth (id int, val text);
alter table cdc.nth replica identity nothing;
create table cdc.parent (id int primary key);
create table cdc.child (id int references cdc.parent, note text);
create table cdc.bin (id int primary key, n bigint, t text, b bool, m cdc.mood);
create table cdc.big (id int primary key, payload text);
create table cdc.marker (id int primary key);
create publication pub_main for table
    cdc.dflt, cdc.fll, cdc.parent, cdc.child, cdc.bin, cdc.big, cdc.marker;
create publication "pub ""odd"", name" for table cdc.nth with (publish = 'insert');
select pg_replication_origin_create('node_x');
"""
PUBLICATIONS = ["pub_main", 'pub "odd", name']
# Which operations of each table the publications send.
PUBLISHED = {
    "dflt": {"INSERT", "UPDATE", "DELETE", "TRUNCATE"},
    "fll": {"INSERT", "UPDATE", "DELETE", "TRUNCATE"},
    "parent": {"INSERT", "UPDATE", "DELETE", "TRUNCATE"},
    "child": {"INSERT", "UPDATE", "DELETE", "TRUNCATE"},
    "bin": {"INSERT", "UPDATE", "DELETE", "TRUNCATE"},
    "big": {"INSERT", "UPDATE", "DELETE", "TRUNCATE"},
    "marker": {"INSERT"},
    "nth": {"INSERT"},
}
KEYS = {"dflt": "id", "parent": "id", "bin": "id", "big": "id", "marker": "id"}

BIG1, BIG2, BIG3 = "a" * 3000 + "!", "b" * 3500, "c" * 4000
ORIGIN_TIME = datetime(2024, 1, 1, tzinfo=UTC)
#: A workload step: wait until every streaming slot has streamed part of the
#: open transaction.
WAIT_FOR_STREAM = "-- wait for the stream"

WORKLOAD: list[tuple[str, tuple[Any, ...]]] = [
    ("insert into cdc.dflt values (1, 'one', %s), (2, 'two', %s), (3, null, 'small')",
     (BIG1, BIG2)),
    ("update cdc.dflt set val = 'one!' where id = 1", ()),  # big unchanged: 'u'
    ("update cdc.dflt set id = 20 where id = 2", ()),  # the key changes: 'K'
    ("delete from cdc.dflt where id = 3", ()),
    ("insert into cdc.fll values (1, 'x', %s), (2, null, 'small')", (BIG3,)),
    ("update cdc.fll set val = 'x2' where id = 1", ()),  # 'O' with the whole old row
    ("update cdc.fll set val = 'y' where id = 2", ()),
    ("delete from cdc.fll where id = 2", ()),
    ("insert into cdc.nth values (1, 'n'), (2, 'm')", ()),
    ("update cdc.nth set val = 'changed' where id = 1", ()),  # not published
    ("delete from cdc.nth where id = 2", ()),  # not published
    ("insert into cdc.parent values (1), (2); insert into cdc.child values (1, 'c1')", ()),
    ("truncate cdc.parent cascade", ()),
    ("insert into cdc.parent values (3); insert into cdc.child values (3, 'c3')", ()),
    ("truncate cdc.parent, cdc.child restart identity", ()),
    ("insert into cdc.parent values (4)", ()),
    ("insert into cdc.bin values (1, 9000000000, 'héllo wörld', true, 'happy'),"
     " (2, null, '', false, null)", ()),
    ("update cdc.bin set n = -5, m = 'sad' where id = 1", ()),
    ("select pg_logical_emit_message(true, 'txn-msg', 'inside')", ()),
    ("select pg_logical_emit_message(false, 'plain-msg', 'outside')", ()),
    ("begin; insert into cdc.dflt values (30, 'with message', 'x');"
     " select pg_logical_emit_message(true, 'mixed', 'm1'); commit", ()),
    # Large enough to stream at logical_decoding_work_mem = 64kB, with a
    # subtransaction rolled back after part of it was streamed.
    ("begin; insert into cdc.big select g, repeat('x', 200) from generate_series(1, 1500) g;"
     " savepoint s1;"
     " insert into cdc.big select g, repeat('y', 200) from generate_series(1501, 3000) g;"
     " rollback to savepoint s1;"
     " insert into cdc.big values (3001, 'after rollback'); commit", ()),
    # Rolled back while the slots stream it live: decoded after the fact, a
    # transaction the server already knows aborted is dropped unsent.
    ("begin; insert into cdc.big select g, repeat('q', 200) from generate_series(5001, 6500) g",
     ()),
    (WAIT_FOR_STREAM, ()),
    ("rollback", ()),
    ("begin; insert into cdc.dflt values (40, 'prepared', 'p');"
     " prepare transaction 'gid_commit'", ()),
    ("commit prepared 'gid_commit'", ()),
    ("begin; insert into cdc.dflt values (41, 'rolled back', 'r');"
     " prepare transaction 'gid_rollback'", ()),
    ("rollback prepared 'gid_rollback'", ()),
    ("begin; insert into cdc.big select g, repeat('w', 200) from generate_series(7001, 8500) g;"
     " prepare transaction 'gid_big'", ()),
    ("commit prepared 'gid_big'", ()),
    ("select pg_replication_origin_session_setup('node_x')", ()),
    ("begin; select pg_replication_origin_xact_setup('0/ABCDEF', '2024-01-01 00:00:00+00');"
     " insert into cdc.dflt values (50, 'from node_x', 'o'); commit", ()),
    ("select pg_replication_origin_session_reset()", ()),
    ("insert into cdc.marker values (1)", ()),
]  # fmt: skip


@dataclass(frozen=True)
class Config:
    """One pgoutput slot's START_REPLICATION options."""

    name: str
    proto_version: int
    streaming: Literal["off", "on", "parallel"] = "off"
    two_phase: bool = False
    binary: bool = False
    origin: Literal["any", "none"] | None = None
    #: The oldest server that has these options.
    since: int = 15


CONFIGS = [
    Config("v1", 1),
    Config("v2-streaming-binary", 2, streaming="on", binary=True),
    Config("v3-two-phase-streaming", 3, streaming="on", two_phase=True),
    Config("v4-parallel-two-phase-binary", 4, "parallel", two_phase=True, binary=True, since=16),
    # streaming on, not parallel: version 4's Stream Abort then has no LSN.
    Config("v4-streaming-origin-none", 4, streaming="on", origin="none", since=16),
]


@dataclass
class Decoded:
    """What one pgoutput slot sent, decoded by pygwire."""

    config: Config
    events: list[LogicalEvent]
    stream: LogicalStream
    marker_commit: Commit
    confirmed_flush: LSN
    #: The server's messages after pygwire's CopyDone.
    ending: list[PGMessage]


@dataclass
class Run:
    """The workload on one server and everything read back."""

    version: int
    decoded: dict[str, Decoded]
    td_plain: list[tuple[LSN, str]]
    td_plain_local: list[tuple[LSN, str]]
    td_two_phase: list[tuple[LSN, str]]
    tables: dict[str, list[dict[str, str | None]]]
    oids: dict[str, int] = field(default_factory=dict)


class Slot:
    """One pgoutput slot streaming to pygwire while the workload runs."""

    def __init__(self, ws: Walsender, name: str, config: Config) -> None:
        self.ws = ws
        self.name = name
        self.config = config
        self.stream = LogicalStream(config.proto_version, streaming=config.streaming)
        self.events: list[LogicalEvent] = []
        self.marker_seen = False
        self.marker_commit: Commit | None = None

    def start(self) -> None:
        c = self.config
        options = pgoutput_options(
            c.proto_version,
            PUBLICATIONS,
            binary=c.binary or None,
            messages=True,
            streaming=c.streaming if c.streaming != "off" else None,
            two_phase=c.two_phase or None,
            origin=c.origin,
        )
        self.ws.start(start_logical_replication(self.name, 0, options))

    def drain(self) -> None:
        """Decode whatever has arrived; answer keepalives that ask."""
        while (payload := self.ws.copy_data(timeout=0.02)) is not None:
            event = self.stream.receive(payload)
            self.events.append(event)
            if self.stream.reply_pending:
                self.ws.send(self.stream.status_update())
            if isinstance(event, RowChange) and event.table == "marker":
                self.marker_seen = True
            if self.marker_seen and isinstance(event, Commit) and self.marker_commit is None:
                self.marker_commit = event


def _wait(slots: list[Slot], done: Callable[[Slot], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not all(done(s) for s in slots):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not arrive within {TIMEOUT} s")
        for slot in slots:
            slot.drain()


def _table_contents(server: PostgresServer) -> dict[str, list[dict[str, str | None]]]:
    """Every table's rows in text format, read by a pygwire client (as the
    superuser, who owns them)."""
    client = SocketClient.connect(server.host, server.port, SUPERUSER)
    try:
        tables = {}
        for table in PUBLISHED:
            msgs = client.query(f"select * from cdc.{table}")
            (desc,) = [m for m in msgs if isinstance(m, RowDescription)]
            names = [f.name for f in desc.fields]
            tables[table] = [
                {
                    n: None if v is None else v.decode()
                    for n, v in zip(names, m.columns, strict=True)
                }
                for m in msgs
                if isinstance(m, DataRow)
            ]
        return tables
    finally:
        client.close()


def _peek(conn: psycopg.Connection[Any], slot: str, *options: str) -> list[tuple[LSN, str]]:
    rows = conn.execute(
        "select lsn::text, data from pg_logical_slot_peek_changes(%s, NULL, NULL,"
        " 'include-xids', '1', 'skip-empty-xacts', '0'" + ", %s" * len(options) + ")",
        (slot, *options),
    ).fetchall()
    return [(LSN(lsn), data) for lsn, data in rows]


def _run_workload(server: PostgresServer) -> Run:
    sql = sql_connection(server)
    sql.execute(SETUP)
    oids = {
        name: one(sql, f"select '{name}'::regclass::oid")
        for name in ("cdc.dflt", "cdc.fll", "cdc.nth", "cdc.bin")
    }
    oids["cdc.mood"] = one(sql, "select 'cdc.mood'::regtype::oid")
    # test_decoding first, so that its slots see everything pgoutput's do.
    sql.execute("select pg_create_logical_replication_slot('td_plain', 'test_decoding')")
    sql.execute("select pg_create_logical_replication_slot('td_2pc', 'test_decoding', false, true)")
    slots: list[Slot] = []
    try:
        for i, config in enumerate(c for c in CONFIGS if server.version >= c.since):
            ws = Walsender(
                server, logical_decoding_work_mem="64kB", application_name=f"pygwire_{i}"
            )
            name = f"pygwire_{i}"
            (row,) = ws.command(
                create_logical_replication_slot(
                    name,
                    "pgoutput",
                    temporary=True,
                    two_phase=config.two_phase or None,
                    snapshot="nothing",
                )
            )
            assert row[0] == name.encode()
            assert row[3] == b"pgoutput"
            slots.append(Slot(ws, name, config))
        for slot in slots:
            slot.start()
        streaming = [s for s in slots if s.config.streaming != "off"]
        for statement, args in WORKLOAD:
            if statement == WAIT_FOR_STREAM:
                xid = int(one(sql, "select pg_current_xact_id()::text")) & 0xFFFFFFFF
                _wait(
                    streaming,
                    lambda s: any(isinstance(e, StreamStart) and e.xid == xid for e in s.events),  # noqa: B023 - used at once
                    f"a stream block of transaction {xid}",
                )
            else:
                sql.execute(statement, args or None)
            for slot in slots:
                slot.drain()
        _wait(slots, lambda s: s.marker_commit is not None, "the marker row's commit")
        decoded = {}
        for slot in slots:
            assert slot.marker_commit is not None
            # Confirm everything up to the marker, then leave COPY BOTH.
            slot.stream.confirm(slot.marker_commit.end_lsn)
            slot.ws.send(slot.stream.status_update())
            ending = slot.ws.finish()
            confirmed = LSN(
                one(
                    sql,
                    "select confirmed_flush_lsn::text from pg_replication_slots"
                    " where slot_name = %s",
                    slot.name,
                )
            )
            decoded[slot.config.name] = Decoded(
                slot.config, slot.events, slot.stream, slot.marker_commit, confirmed, ending
            )
        return Run(
            server.version,
            decoded,
            _peek(sql, "td_plain"),
            _peek(sql, "td_plain", "only-local", "1"),
            _peek(sql, "td_2pc"),
            _table_contents(server),
            oids,
        )
    finally:
        for slot in slots:
            slot.ws.close()
        sql.close()


@pytest.fixture(scope="module", params=[18, 15], ids=["pg18", "pg15"])
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The workload on a server of its own (two-phase commit needs
    max_prepared_transactions, which only a restart changes)."""
    with PostgresServer(request.param, settings={"max_prepared_transactions": 10}) as server:
        yield _run_workload(server)


def _cases(run: Run) -> list[Decoded]:
    return list(run.decoded.values())


# -- normalising both plugins' output --------------------------------------------------

Value = str | None | object
Row = dict[str, Value]


def _text(value: object, type_oid: int, binary_types: dict[int, str]) -> Value:
    """A pgoutput value in PostgreSQL's text format (binary converted)."""
    if not isinstance(value, bytes):
        return value  # text already decoded, None, or UNCHANGED_TOAST
    kind = binary_types.get(type_oid, "text")
    if kind == "int":
        return str(int.from_bytes(value, "big", signed=True))
    if kind == "bool":
        return {b"\x01": "t", b"\x00": "f"}[value]
    return value.decode()


def _pg_entries(decoded: Decoded, mood_oid: int) -> list[tuple[Any, ...]]:
    """The slot's output as committed units, in the order the server sent
    them: ("COMMIT", xid, end_lsn, changes), ("PREPARE", gid, xid, end_lsn,
    changes), ("COMMIT PREPARED" / "ROLLBACK PREPARED", gid, xid, end_lsn),
    ("MESSAGE", lsn, prefix, content) for non-transactional messages."""
    binary_types = {20: "int", 23: "int", 16: "bool", 25: "text", mood_oid: "text"}
    entries: list[tuple[Any, ...]] = []
    current: list[tuple[Any, ...]] = []
    streamed: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
    top: int | None = None
    begin_xid = 0

    def change(event: Any) -> tuple[Any, ...] | None:
        if isinstance(event, RowChange):
            types = {c.name: c.type_oid for c in event.relation.columns}

            def norm(row: dict[str, Any] | None, old: bool) -> Row | None:
                if row is None:
                    return None
                out = {k: _text(v, types[k], binary_types) for k, v in row.items()}
                # test_decoding leaves NULLs out of old tuples.
                return {k: v for k, v in out.items() if v is not None} if old else out

            op = event.kind.value.upper()
            if op == "INSERT":
                return (op, event.lsn, event.table, norm(event.new, False))
            if op == "UPDATE":
                return (op, event.lsn, event.table, norm(event.old, True), norm(event.new, False))
            return (op, event.lsn, event.table, norm(event.old, True))
        if isinstance(event, TruncateChange):
            return (
                "TRUNCATE",
                event.lsn,
                frozenset(r.name for r in event.relations),
                event.cascade,
                event.restart_identity,
            )
        if isinstance(event, LogicalMessage) and event.transactional:
            return ("MESSAGE", event.lsn, event.prefix, event.content.decode())
        return None

    for event in decoded.events:
        item = change(event)
        if item is not None:
            if top is not None:
                xid = event.xid  # type: ignore[union-attr]
                assert isinstance(xid, int)
                streamed.setdefault(top, []).append((xid, item))
            else:
                current.append(item)
        elif isinstance(event, LogicalMessage):
            entries.append(("MESSAGE", event.lsn, event.prefix, event.content.decode()))
        elif isinstance(event, (Begin, BeginPrepare)):
            current, begin_xid = [], event.xid
        elif isinstance(event, Commit):
            entries.append(("COMMIT", begin_xid, event.end_lsn, current))
        elif isinstance(event, Prepare):
            entries.append(("PREPARE", event.gid, event.xid, event.end_lsn, current))
        elif isinstance(event, StreamStart):
            top = event.xid
        elif isinstance(event, StreamStop):
            top = None
        elif isinstance(event, StreamAbort):
            if event.subxid == event.xid:
                streamed.pop(event.xid, None)
            else:
                streamed[event.xid] = [c for c in streamed[event.xid] if c[0] != event.subxid]
        elif isinstance(event, StreamCommit):
            changes = [c for _, c in streamed.pop(event.xid, [])]
            entries.append(("COMMIT", event.xid, event.end_lsn, changes))
        elif isinstance(event, StreamPrepare):
            changes = [c for _, c in streamed.pop(event.xid, [])]
            entries.append(("PREPARE", event.gid, event.xid, event.end_lsn, changes))
        elif isinstance(event, CommitPrepared):
            entries.append(("COMMIT PREPARED", event.gid, event.xid, event.end_lsn))
        elif isinstance(event, RollbackPrepared):
            entries.append(("ROLLBACK PREPARED", event.gid, event.xid, event.rollback_end_lsn))
    return [e for e in entries if not (e[0] == "COMMIT" and not e[3])]


_TD_TABLE = re.compile(r"table (?P<tables>.+?): (?P<op>INSERT|UPDATE|DELETE|TRUNCATE):(?P<rest>.*)")
_TD_COLUMN = re.compile(r"(?P<name>[^\s\[]+)\[(?P<type>[^\]]+)\]:(?P<value>'(?:[^']|'')*'|\S+)")
_TD_MESSAGE = re.compile(
    r"message: transactional: (?P<t>[01]) prefix: (?P<prefix>.*?), sz: \d+ content:(?P<c>.*)",
    re.S,
)
_TD_GID = re.compile(r"(?P<op>PREPARE TRANSACTION|COMMIT PREPARED|ROLLBACK PREPARED) "
                     r"'(?P<gid>(?:[^']|'')*)', txid (?P<xid>\d+)")  # fmt: skip


def _td_tuple(text: str) -> Row:
    row: Row = {}
    for m in _TD_COLUMN.finditer(text):
        value = m["value"]
        parsed: Value
        if value == "null":
            parsed = None
        elif value == "unchanged-toast-datum":
            parsed = UNCHANGED_TOAST
        elif value.startswith("'"):
            parsed = value[1:-1].replace("''", "'")
        elif m["type"] == "boolean":
            parsed = {"true": "t", "false": "f"}[value]
        else:
            parsed = value
        row[m["name"]] = parsed
    return row


def _td_entries(rows: list[tuple[LSN, str]]) -> list[tuple[Any, ...]]:
    """test_decoding's output in the form of :func:`_pg_entries`, limited to
    what the publications send."""
    entries: list[tuple[Any, ...]] = []
    current: list[tuple[Any, ...]] = []
    for lsn, data in rows:
        if data.startswith("BEGIN "):
            current = []
        elif data.startswith("COMMIT ") and not data.startswith("COMMIT PREPARED"):
            if current:
                entries.append(("COMMIT", int(data.split()[1]), lsn, current))
        elif (m := _TD_GID.fullmatch(data)) is not None:
            gid, xid = m["gid"].replace("''", "'"), int(m["xid"])
            if m["op"] == "PREPARE TRANSACTION":
                entries.append(("PREPARE", gid, xid, lsn, current))
            else:
                entries.append((m["op"], gid, xid, lsn))
        elif (m := _TD_MESSAGE.fullmatch(data)) is not None:
            item = ("MESSAGE", lsn, m["prefix"], m["c"])
            (current if m["t"] == "1" else entries).append(item)
        elif (m := _TD_TABLE.fullmatch(data)) is not None:
            tables = [t.split(".", 1) for t in m["tables"].split(", ")]
            names = [t for schema, t in tables if schema == "cdc"]
            op, rest = m["op"], m["rest"].strip()
            if not names or op not in PUBLISHED[names[0]]:
                continue
            if op == "TRUNCATE":
                flags = rest.split()
                current.append(
                    ("TRUNCATE", lsn, frozenset(names), "cascade" in flags, "restart_seqs" in flags)
                )
            elif op == "INSERT":
                current.append((op, lsn, names[0], _td_tuple(rest)))
            elif op == "UPDATE":
                old: Row | None = None
                if rest.startswith("old-key: "):
                    old_text, new_text = rest[len("old-key: ") :].split(" new-tuple: ", 1)
                    old = _td_tuple(old_text)
                else:
                    new_text = rest
                current.append((op, lsn, names[0], old, _td_tuple(new_text)))
            else:
                current.append((op, lsn, names[0], _td_tuple(rest)))
        else:
            pytest.fail(f"unexpected test_decoding output: {data[:200]!r}")
    return entries


# -- the comparisons -----------------------------------------------------------------------


def _expected_td(run: Run, config: Config) -> list[tuple[LSN, str]]:
    if config.origin == "none":
        return run.td_plain_local
    return run.td_two_phase if config.two_phase else run.td_plain


def test_pgoutput_equals_test_decoding(run: Run) -> None:
    """Every slot's decoding equals test_decoding's for the same WAL: the
    same transactions (xids, end LSNs, GIDs) in the same order, the same
    changes at the same LSNs with the same values."""
    for decoded in _cases(run):
        mine = _pg_entries(decoded, run.oids["cdc.mood"])
        theirs = _td_entries(_expected_td(run, decoded.config))
        kinds = {e[0] for e in mine}
        assert kinds >= {"COMMIT", "MESSAGE"}
        if decoded.config.two_phase:
            assert kinds >= {"PREPARE", "COMMIT PREPARED", "ROLLBACK PREPARED"}
        # Every row of the large transactions: 1,500 + 1 committed, 1,500 prepared.
        changes = [c for e in mine if e[0] in ("COMMIT", "PREPARE") for c in e[-1]]
        assert sum(1 for c in changes if c[2] == "big") == 3001
        assert len(mine) == len(theirs), decoded.config
        for got, want in zip(mine, theirs, strict=True):
            assert got == want, decoded.config


def _apply(entries: list[tuple[Any, ...]]) -> dict[str, list[Row]]:
    """Replay decoded transactions on empty tables."""
    tables: dict[str, list[Row]] = {t: [] for t in PUBLISHED}
    prepared: dict[str, list[tuple[Any, ...]]] = {}

    def find(table: str, match: Row) -> int:
        hits = [
            i
            for i, row in enumerate(tables[table])
            if all(row.get(k) == v for k, v in match.items())
        ]
        assert len(hits) == 1, (table, match, tables[table])
        return hits[0]

    def run_changes(changes: list[tuple[Any, ...]]) -> None:
        for change in changes:
            op = change[0]
            if op == "INSERT":
                tables[change[2]].append(dict(change[3]))
            elif op == "UPDATE":
                table, old, new = change[2], change[3], change[4]
                key = old if old is not None else {KEYS[table]: new[KEYS[table]]}
                i = find(table, key)
                merged = {
                    k: tables[table][i][k] if v is UNCHANGED_TOAST else v for k, v in new.items()
                }
                tables[table][i] = merged
            elif op == "DELETE":
                del tables[change[2]][find(change[2], change[3])]
            elif op == "TRUNCATE":
                for table in change[2]:
                    tables[table].clear()

    for entry in entries:
        if entry[0] == "COMMIT":
            run_changes(entry[3])
        elif entry[0] == "PREPARE":
            prepared[entry[1]] = entry[4]
        elif entry[0] == "COMMIT PREPARED":
            run_changes(prepared.pop(entry[1]))
        elif entry[0] == "ROLLBACK PREPARED":
            prepared.pop(entry[1])
    return tables


def _sorted(rows: Sequence[Mapping[str, object]]) -> list[list[tuple[str, object]]]:
    return sorted((sorted(r.items()) for r in rows), key=repr)


def test_replaying_the_changes_gives_the_tables(run: Run) -> None:
    """Applied to empty tables, each slot's changes give the final contents
    (without the updates and deletes of cdc.nth, which is published for
    inserts only, and the origin's row where origin = none filtered it)."""
    for decoded in _cases(run):
        replayed = _apply(_pg_entries(decoded, run.oids["cdc.mood"]))
        for table, rows in run.tables.items():
            want = list(rows)
            if table == "nth":
                want = [{"id": "1", "val": "n"}, {"id": "2", "val": "m"}]
            if table == "dflt" and decoded.config.origin == "none":
                want = [r for r in want if r["id"] != "50"]
            assert _sorted(replayed[table]) == _sorted(want), (decoded.config, table)


def test_the_slot_confirms_what_pygwire_reported(run: Run) -> None:
    for decoded in _cases(run):
        end = decoded.marker_commit.end_lsn
        assert decoded.stream.flushed_lsn == end
        assert decoded.confirmed_flush == end, decoded.config
        assert decoded.stream.received_lsn >= decoded.marker_commit.commit_lsn
        assert not decoded.stream.in_transaction
        assert not decoded.stream.in_stream
        # After pygwire's CopyDone: the server's CopyDone, perhaps a last
        # keepalive, then both CommandCompletes and ReadyForQuery.
        kinds = [type(m).__name__ for m in decoded.ending if not isinstance(m, CopyData)]
        assert kinds == [
            "CopyDone",
            "CommandComplete",
            "CommandComplete",
            "ReadyForQuery",
        ], decoded.config
        tags = [m.tag for m in decoded.ending if isinstance(m, CommandComplete)]
        assert tags[-1] == "START_REPLICATION"


def _of(decoded: Decoded, kind: type[Any]) -> list[Any]:
    return [e for e in decoded.events if isinstance(e, kind)]


def _changes(decoded: Decoded, table: str) -> list[RowChange]:
    return [e for e in _of(decoded, RowChange) if e.table == table]


def test_relations_and_types(run: Run) -> None:
    for decoded in _cases(run):
        relations = {r.name: r for r in _of(decoded, Relation)}
        assert relations["dflt"].relation_id == run.oids["cdc.dflt"]
        assert relations["dflt"].namespace == "cdc"
        assert relations["dflt"].replica_identity is ReplicaIdentity.DEFAULT
        assert [(c.name, c.type_oid, c.is_key) for c in relations["dflt"].columns] == [
            ("id", 23, True),
            ("val", 25, False),
            ("big", 25, False),
        ]
        assert relations["fll"].replica_identity is ReplicaIdentity.FULL
        assert all(c.is_key for c in relations["fll"].columns)  # FULL: the whole row
        assert relations["nth"].replica_identity is ReplicaIdentity.NOTHING
        assert relations["nth"].relation_id == run.oids["cdc.nth"]
        # A non-built-in type is named by a Type message before its Relation.
        (mood,) = {(t.type_oid, t.namespace, t.name) for t in _of(decoded, TypeMessage)}
        assert mood == (run.oids["cdc.mood"], "cdc", "mood")
        assert relations["bin"].columns[4].type_oid == run.oids["cdc.mood"]
        assert decoded.stream.types[run.oids["cdc.mood"]].name == "mood"


def _as_text(run: Run, change: RowChange, row: dict[str, Any] | None) -> Row | None:
    """A change's values in text format, whichever format they came in."""
    if row is None:
        return None
    binary_types = {20: "int", 23: "int", 16: "bool", 25: "text", run.oids["cdc.mood"]: "text"}
    types = {c.name: c.type_oid for c in change.relation.columns}
    return {k: _text(v, types[k], binary_types) for k, v in row.items()}


def _id(run: Run, change: RowChange) -> Value:
    """The id column a change inserted or updated to."""
    row = _as_text(run, change, change.new)
    return None if row is None else row["id"]


def test_row_changes(run: Run) -> None:
    for decoded in _cases(run):

        def new(c: RowChange) -> Row | None:
            return _as_text(run, c, c.new)

        def old(c: RowChange) -> Row | None:
            return _as_text(run, c, c.old)

        dflt = _changes(decoded, "dflt")
        assert dflt[0].kind is ChangeKind.INSERT
        assert new(dflt[0]) == {"id": "1", "val": "one", "big": BIG1}
        assert new(dflt[1]) == {"id": "2", "val": "two", "big": BIG2}
        assert new(dflt[2]) == {"id": "3", "val": None, "big": "small"}
        # An update that leaves a TOASTed value alone does not send it.
        update = dflt[3]
        assert update.kind is ChangeKind.UPDATE
        assert new(update) == {"id": "1", "val": "one!", "big": UNCHANGED_TOAST}
        assert update.old is None
        # A changed key comes as the old key's columns only.
        key_change = dflt[4]
        assert key_change.old_is_key
        assert old(key_change) == {"id": "2"}
        assert new(key_change) == {"id": "20", "val": "two", "big": UNCHANGED_TOAST}
        delete = dflt[5]
        assert delete.kind is ChangeKind.DELETE
        assert delete.old_is_key
        assert old(delete) == {"id": "3"}
        assert delete.new is None
        # REPLICA IDENTITY FULL: the whole old row, TOASTed value included.
        fll = _changes(decoded, "fll")
        assert old(fll[2]) == {"id": "1", "val": "x", "big": BIG3}
        assert not fll[2].old_is_key
        assert new(fll[2]) == {"id": "1", "val": "x2", "big": UNCHANGED_TOAST}
        assert fll[4].kind is ChangeKind.DELETE
        assert old(fll[4]) == {"id": "2", "val": "y", "big": "small"}
        # REPLICA IDENTITY NOTHING, published for inserts only.
        assert [c.kind for c in _changes(decoded, "nth")] == [ChangeKind.INSERT] * 2
        truncates = _of(decoded, TruncateChange)
        assert [
            ({r.name for r in t.relations}, t.cascade, t.restart_identity) for t in truncates
        ] == [
            ({"parent", "child"}, True, False),
            ({"parent", "child"}, False, True),
        ]


def test_binary_and_text_values(run: Run) -> None:
    for decoded in _cases(run):
        inserted = _changes(decoded, "bin")[0].new
        assert inserted is not None
        if decoded.config.binary:
            assert inserted == {
                "id": (1).to_bytes(4, "big"),
                "n": (9_000_000_000).to_bytes(8, "big"),
                "t": "héllo wörld".encode(),
                "b": b"\x01",
                "m": b"happy",
            }
        else:
            assert inserted == {
                "id": "1",
                "n": "9000000000",
                "t": "héllo wörld",
                "b": "t",
                "m": "happy",
            }
        updated = _changes(decoded, "bin")[2].new
        assert updated is not None
        assert updated["n"] == (
            (-5).to_bytes(8, "big", signed=True) if decoded.config.binary else "-5"
        )


def test_messages(run: Run) -> None:
    for decoded in _cases(run):
        messages = {(m.prefix, m.transactional, m.content) for m in _of(decoded, LogicalMessage)}
        assert messages == {
            ("txn-msg", True, b"inside"),
            ("plain-msg", False, b"outside"),
            ("mixed", True, b"m1"),
        }


def test_origin(run: Run) -> None:
    """The transaction from replication origin node_x: an Origin message
    with the origin's commit LSN, and the commit time it was given."""
    for decoded in _cases(run):
        origins = _of(decoded, Origin)
        from_origin = [c for c in _changes(decoded, "dflt") if _id(run, c) == "50"]
        if decoded.config.origin == "none":
            assert origins == []
            assert from_origin == []
            continue
        assert origins == [Origin(LSN("0/ABCDEF"), "node_x")]
        begin = decoded.events[decoded.events.index(origins[0]) - 1]
        assert isinstance(begin, Begin)
        assert begin.commit_time.to_datetime() == ORIGIN_TIME
        assert from_origin[0].xid == begin.xid


def test_commit_times_are_the_servers_clock(run: Run) -> None:
    now = datetime.now(UTC)
    for decoded in _cases(run):
        commit = decoded.marker_commit
        assert abs(commit.commit_time.to_datetime() - now) < timedelta(minutes=10)
        keepalives = _of(decoded, PrimaryKeepalive)
        assert keepalives
        assert all(abs(k.send_time.to_datetime() - now) < timedelta(minutes=10) for k in keepalives)


def test_streamed_transactions(run: Run) -> None:
    for decoded in _cases(run):
        starts = _of(decoded, StreamStart)
        if decoded.config.streaming == "off":
            assert starts == []
            assert _of(decoded, StreamAbort) == []
            continue
        assert starts[0].first_segment
        assert len(_of(decoded, StreamStop)) == len(starts)
        aborts = _of(decoded, StreamAbort)
        # The rolled-back savepoint (a subtransaction) and the rolled-back
        # transaction (subxid == xid).
        assert [a.subxid != a.xid for a in aborts] == [True, False]
        parallel = decoded.config.streaming == "parallel"
        for abort in aborts:
            assert (abort.abort_lsn is not None) is parallel
            assert (abort.abort_time is not None) is parallel
            if abort.abort_time is not None:
                assert abs(abort.abort_time.to_datetime() - datetime.now(UTC)) < timedelta(
                    minutes=10
                )
        # Changes inside a stream carry their (sub)transaction's xid.
        streamed = [c for c in _changes(decoded, "big") if _id(run, c) == "3001"]
        commit = _of(decoded, StreamCommit)[0]
        assert streamed[0].xid != commit.xid  # inserted in the savepoint's successor
        assert _of(decoded, StreamCommit)


def test_two_phase(run: Run) -> None:
    for decoded in _cases(run):
        if not decoded.config.two_phase:
            for kind in (BeginPrepare, Prepare, CommitPrepared, RollbackPrepared, StreamPrepare):
                assert _of(decoded, kind) == []
            continue
        prepared = {p.gid for p in _of(decoded, Prepare)}
        streamed = {p.gid for p in _of(decoded, StreamPrepare)}
        assert prepared | streamed == {"gid_commit", "gid_rollback", "gid_big"}
        # The large one went out in stream blocks, then Stream Prepare.
        assert "gid_big" in streamed
        assert {c.gid for c in _of(decoded, CommitPrepared)} == {"gid_commit", "gid_big"}
        (rollback,) = _of(decoded, RollbackPrepared)
        assert rollback.gid == "gid_rollback"
        (begin,) = [b for b in _of(decoded, BeginPrepare) if b.gid == "gid_rollback"]
        assert rollback.xid == begin.xid
        assert rollback.prepare_end_lsn == begin.end_lsn


# -- physical replication --------------------------------------------------------------


@pytest.fixture(params=["pg18", "pg15"])
def server(request: pytest.FixtureRequest) -> PostgresServer:
    """Each session server in turn."""
    result: PostgresServer = request.getfixturevalue(request.param)
    return result


def test_physical_streaming(server: PostgresServer) -> None:
    sql = sql_connection(server)
    ws = Walsender(server, "true", application_name="pygwire_physical")
    try:
        ((systemid, timeline, xlogpos, dbname),) = ws.command(identify_system())
        assert systemid is not None
        assert dbname is None  # physical replication: no database
        assert timeline is not None
        assert xlogpos is not None
        start = LSN(xlogpos.decode())
        tli = int(timeline)
        # The walsender sends flushed WAL only; the harness runs with
        # synchronous_commit off, so this session waits for its flushes.
        sql.execute("set synchronous_commit = on")
        sql.execute("create table if not exists phys (i int, t text)")
        sql.execute("insert into phys select g, repeat('p', 100) from generate_series(1, 2000) g")
        target = LSN(one(sql, "select pg_current_wal_flush_lsn()::text"))
        ws.start(start_physical_replication(start, timeline=tli))
        stream = PhysicalStream(start)
        chunks: list[XLogData] = []
        deadline = time.monotonic() + TIMEOUT
        while stream.received_lsn < target and time.monotonic() < deadline:
            payload = ws.copy_data()
            if payload is None:
                continue
            msg = stream.receive(payload)
            if isinstance(msg, XLogData):
                chunks.append(msg)
            if stream.reply_pending:
                ws.send(stream.status_update())
        assert stream.received_lsn >= target
        # The WAL arrives contiguously from where it was asked for.
        assert chunks[0].wal_start == start
        for before, after in itertools.pairwise(chunks):
            assert after.wal_start == before.wal_start + len(before.data)
        assert stream.received_lsn == chunks[-1].wal_start + len(chunks[-1].data)
        # ... and is byte for byte the server's WAL file.
        first = chunks[0]
        name, offset = sql.execute(
            "select file_name, file_offset from pg_walfile_name_offset(%s::text::pg_lsn)",
            (str(first.wal_start),),
        ).fetchone()  # type: ignore[misc]
        size = min(len(first.data), 8192)
        on_disk = one(sql, "select pg_read_binary_file(%s, %s, %s)", f"pg_wal/{name}", offset, size)
        assert first.data[:size] == bytes(on_disk)

        # Report progress and an xmin; pg_stat_replication shows both.
        xmin8 = one(sql, "select pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        flushed = LSN(chunks[len(chunks) // 2].wal_start)
        stream.mark_flushed(flushed)
        stream.mark_applied(start)
        ws.send(stream.status_update())
        ws.send(stream.hot_standby_feedback(xmin8 & 0xFFFFFFFF, xmin_epoch=xmin8 >> 32))
        row = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            row = sql.execute(
                "select write_lsn::text, flush_lsn::text, replay_lsn::text, backend_xmin::text"
                " from pg_stat_replication where application_name = 'pygwire_physical'"
            ).fetchone()
            if row is not None and row[3] is not None:
                break
            time.sleep(0.05)
        assert row is not None
        assert (LSN(row[0]), LSN(row[1]), LSN(row[2])) == (stream.received_lsn, flushed, start)
        assert int(row[3]) == xmin8 & 0xFFFFFFFF
        ending = ws.finish()
        assert [m.tag for m in ending if isinstance(m, CommandComplete)][-1] == "START_REPLICATION"
    finally:
        ws.close()
        sql.close()


def _read_until_closed(ws: Walsender) -> None:
    """Read WAL and keepalives until the server closes (or TIMEOUT passes)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        payload = ws.copy_data(timeout=1.0)
        assert payload is None or STREAMING.decode(payload).tag in (b"w", b"k")


def test_request_primary_status_is_newer_than_these_servers(server: PostgresServer) -> None:
    """The documented ``p`` request: PostgreSQL 15 and 18 do not know it and
    end the connection (nothing pygwire can decode comes back)."""
    ws = Walsender(server, "true")
    try:
        ((_, _, xlogpos, _),) = ws.command(identify_system())
        assert xlogpos is not None
        ws.start(start_physical_replication(xlogpos.decode()))
        ws.send(RequestPrimaryStatus(Timestamp.now()))
        with pytest.raises(ConnectionError):
            _read_until_closed(ws)
    finally:
        ws.close()


def test_physical_slot_commands(server: PostgresServer) -> None:
    ws = Walsender(server, "true")
    try:
        (row,) = ws.command(create_physical_replication_slot("pygwire_phys", reserve_wal=True))
        assert row[0] == b"pygwire_phys"
        assert row[2] is None  # no snapshot for a physical slot
        ((slot_type, restart_lsn, restart_tli),) = ws.command(read_replication_slot("pygwire_phys"))
        assert slot_type == b"physical"
        assert restart_lsn is not None
        assert LSN(restart_lsn.decode()) > 0
        assert restart_tli == b"1"
        ws.command(drop_replication_slot("pygwire_phys", wait=True))
        assert ws.command(read_replication_slot("pygwire_phys")) == [[None, None, None]]
        # Timeline 1 has no history file; the command itself is understood.
        with pytest.raises(ServerError) as info:
            ws.command(timeline_history(1))
        assert info.value.error.code == "58P01"
        assert "00000001.history" in (info.value.error.message or "")
    finally:
        ws.close()


# -- BASE_BACKUP -------------------------------------------------------------------------


def test_base_backup(server: PostgresServer) -> None:
    ws = Walsender(server, "true")
    client = ws.client
    try:
        client.send(
            Query(
                query_string=base_backup(
                    label="pygwire's backup",
                    progress=True,
                    checkpoint="fast",
                    manifest="yes",
                    wait=False,
                )
            )
        )
        messages = client.messages_until(ReadyForQuery)
    finally:
        ws.close()
    assert not [m for m in messages if isinstance(m, ErrorResponse)]
    assert len([m for m in messages if isinstance(m, CopyOutResponse)]) == 1
    archives: dict[str, bytearray] = {}
    manifest = bytearray()
    target: bytearray | None = None
    progress: list[int] = []
    for msg in messages:
        if not isinstance(msg, CopyData):
            continue
        sub = BASE_BACKUP_STREAM.decode(msg.data)
        if isinstance(sub, NewArchive):
            assert sub.tablespace_path == ""
            target = archives.setdefault(sub.name, bytearray())
        elif isinstance(sub, ManifestStart):
            target = manifest
        elif isinstance(sub, ArchiveData):
            assert target is not None
            target += sub.data
        elif isinstance(sub, ProgressReport):
            progress.append(sub.bytes_done)
    assert list(archives) == ["base.tar"]
    with tarfile.open(fileobj=io.BytesIO(bytes(archives["base.tar"]))) as tar:
        names = set(tar.getnames())
        version = tar.extractfile("PG_VERSION").read()  # type: ignore[union-attr]
        label = tar.extractfile("backup_label").read().decode()  # type: ignore[union-attr]
    assert version.strip() == str(server.version).encode()
    assert "LABEL: pygwire's backup" in label
    document = json.loads(manifest)
    assert document["PostgreSQL-Backup-Manifest-Version"] in (1, 2)
    listed = {f["Path"] for f in document["Files"]}
    assert "PG_VERSION" in listed
    assert listed <= names
    assert progress
    assert progress == sorted(progress)
    assert progress[-1] <= len(archives["base.tar"])


# -- quoting against a real parser -----------------------------------------------------------


def test_hostile_option_values_stay_values(server: PostgresServer) -> None:
    """An option name written to break out of its token reaches the plugin
    whole, which refuses it by its full text."""
    ws = Walsender(server)
    try:
        ws.command(create_logical_replication_slot("pygwire_q", "pgoutput", temporary=True))
        # pgoutput names an option it does not know in its error.
        evil = "x' '1'), (proto_version '1"
        with pytest.raises(ServerError) as info:
            ws.start(start_logical_replication("pygwire_q", 0, {evil: "1"}))
        assert info.value.error.message == f"unrecognized pgoutput option: {evil}"
    finally:
        ws.close()


def test_timestamps_match_the_servers_arithmetic(server: PostgresServer) -> None:
    """Microseconds since 2000-01-01 as the server computes them."""
    with sql_connection(server) as sql:
        micros = one(
            sql,
            "select ((extract(epoch from timestamptz '2024-02-29 12:34:56.789012+00')"
            " - extract(epoch from timestamptz '2000-01-01 00:00:00+00')) * 1000000)::bigint",
        )
        distance = one(sql, "select '16/B374D9A0'::pg_lsn - '16/B374D848'::pg_lsn")
    assert Timestamp(micros).to_datetime() == datetime(2024, 2, 29, 12, 34, 56, 789012, tzinfo=UTC)
    assert LSN("16/B374D9A0") - LSN("16/B374D848") == int(distance)


# -- keepalives ----------------------------------------------------------------------------


def _idle_stream(ws: Walsender, seconds: float, *, answer: bool) -> list[PrimaryKeepalive]:
    """Stream an idle slot for ``seconds``; reply to keepalives if ``answer``."""
    stream = LogicalStream(1)
    ws.command(create_logical_replication_slot("pygwire_idle", "pgoutput", temporary=True))
    ws.start(start_logical_replication("pygwire_idle", 0, pgoutput_options(1, ["none_such"])))
    asked: list[PrimaryKeepalive] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        payload = ws.copy_data(timeout=0.1)
        if payload is None:
            continue
        event = stream.receive(payload)
        if isinstance(event, PrimaryKeepalive) and event.reply_requested:
            asked.append(event)
        if answer and stream.reply_pending:
            ws.send(stream.status_update())
            assert not stream.reply_pending
    return asked


def test_keepalives_that_ask_are_answered(server: PostgresServer) -> None:
    """With wal_sender_timeout at 1 s the server asks for a reply every half
    second of silence and drops a client that does not answer in time; the
    status updates LogicalStream builds keep the stream alive."""
    ws = Walsender(server, wal_sender_timeout="1s")
    try:
        asked = _idle_stream(ws, 4.0, answer=True)
        assert len(asked) >= 2
        ending = ws.finish()
        assert [m.tag for m in ending if isinstance(m, CommandComplete)][-1] == "START_REPLICATION"
    finally:
        ws.close()


def test_unanswered_keepalives_end_the_stream(server: PostgresServer) -> None:
    ws = Walsender(server, wal_sender_timeout="1s")
    try:
        with pytest.raises(ConnectionError):
            _idle_stream(ws, 10.0, answer=False)
    finally:
        ws.close()
