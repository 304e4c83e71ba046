"""examples/cdc.py against PostgreSQL 18: the JSON lines it prints.

The example runs as a subprocess (tests never import examples/): it
creates its slot, streams a publication, and exits after a number of
transactions.  A workload of inserts, updates (same key, new key, under
REPLICA IDENTITY FULL, one leaving a TOASTed value unchanged), deletes
and a TRUNCATE runs meanwhile, each transaction noting its xid, the WAL
insert location before and after its changes and the clock; every line
must name the table and operation and carry the values the server holds,
the transaction's xid, a change LSN between those locations and a commit
time between those clocks.  Run again
on the same slot, the example must print only what came after: it
confirmed what it printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from harness.postgres import PostgresServer

from pygwire.replication import LSN

ROOT = Path(__file__).resolve().parents[2]
SLOT = "cdc_example"
TIMEOUT = 30.0

SETUP = """
create schema cdc_ex;
create table cdc_ex.orders (id int primary key, customer text, total numeric(10,2), status text);
create table cdc_ex.audit (id int, note text);
alter table cdc_ex.audit replica identity full;
create table cdc_ex.docs (id int primary key, body text, tag text);
alter table cdc_ex.docs alter column body set storage external;
insert into cdc_ex.docs values (1, repeat('x', 10000), 'draft');
create publication cdc_ex_pub for table cdc_ex.orders, cdc_ex.audit, cdc_ex.docs;
"""


@dataclass
class Txn:
    """What the workload knows of one of its transactions."""

    xid: int
    before: LSN
    after: LSN
    started: datetime
    ended: datetime


@pytest.fixture
def pg(pg18: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(pg18.dsn(), autocommit=True)
    conn.execute(SETUP)
    try:
        yield conn
    finally:
        conn.execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots"
            " where slot_name = %s",
            [SLOT],
        )
        conn.execute("drop publication cdc_ex_pub")
        conn.execute("drop schema cdc_ex cascade")
        conn.close()


def run_in_transaction(conn: psycopg.Connection[Any], *statements: str) -> Txn:
    started = datetime.now(UTC)
    with conn.transaction():
        xid, before = _one(conn, "select pg_current_xact_id()::text, pg_current_wal_insert_lsn()")
        for sql in statements:
            conn.execute(sql)
        after = _one(conn, "select pg_current_wal_insert_lsn()")[0]
    return Txn(int(xid), LSN(str(before)), LSN(str(after)), started, datetime.now(UTC))


def _one(conn: psycopg.Connection[Any], sql: str) -> tuple[Any, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


def start_cdc(server: PostgresServer, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(ROOT / "examples" / "cdc.py"), "--host", server.host,
           "--port", str(server.port), "--user", "trust_user", "--dbname", "postgres",
           "--slot", SLOT, "--publication", "cdc_ex_pub", *extra]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # printed once START_REPLICATION is answered
    assert line.startswith("cdc: streaming slot"), line + proc.stderr.read()
    return proc


def finish(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def check_transaction(lines: list[dict[str, Any]], txn: Txn) -> None:
    """The transaction-level fields of ``lines``, against what the
    workload saw."""
    commit_lsns = {line["commit_lsn"] for line in lines}
    assert len(commit_lsns) == 1
    commit_lsn = LSN(commit_lsns.pop())
    for line in lines:
        assert line["xid"] == txn.xid
        assert txn.before <= LSN(line["lsn"]) < txn.after <= commit_lsn
        assert txn.started <= datetime.fromisoformat(line["commit_time"]) <= txn.ended


def without_transaction(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in ("lsn", "commit_lsn", "commit_time", "xid")}


def test_cdc_example_prints_each_committed_change(
    pg18: PostgresServer, pg: psycopg.Connection[Any]
) -> None:
    proc = start_cdc(pg18, "--create-slot", "--max-transactions", "4")
    try:
        txns = [
            run_in_transaction(
                pg,
                "insert into cdc_ex.orders values (1, 'Zoë', 19.90, 'new'), (2, 'Bob', 5, 'new')",
            ),
            run_in_transaction(
                pg,
                "update cdc_ex.orders set status = 'paid' where id = 1",
                "update cdc_ex.orders set id = 20 where id = 2",
                "insert into cdc_ex.audit values (1, 'paid order 1')",
            ),
            run_in_transaction(
                pg,
                "delete from cdc_ex.orders where id = 20",
                "update cdc_ex.audit set note = 'paid order 1, by card'",
            ),
            run_in_transaction(pg, "truncate cdc_ex.audit"),
        ]
        lines = finish(proc)
    finally:
        proc.kill()
        proc.wait()

    orders, audit = "cdc_ex.orders", "cdc_ex.audit"
    zoe = {"id": "1", "customer": "Zoë", "total": "19.90"}
    expected: list[list[dict[str, Any]]] = [
        [
            {"table": orders, "operation": "insert", "old": None, "new": {**zoe, "status": "new"}},
            {"table": orders, "operation": "insert", "old": None,
             "new": {"id": "2", "customer": "Bob", "total": "5.00", "status": "new"}},
        ],
        [
            {"table": orders, "operation": "update", "old": None, "new": {**zoe, "status": "paid"}},
            {"table": orders, "operation": "update", "old": {"id": "2"},
             "new": {"id": "20", "customer": "Bob", "total": "5.00", "status": "new"}},
            {"table": audit, "operation": "insert", "old": None,
             "new": {"id": "1", "note": "paid order 1"}},
        ],
        [
            {"table": orders, "operation": "delete", "old": {"id": "20"}, "new": None},
            {"table": audit, "operation": "update", "old": {"id": "1", "note": "paid order 1"},
             "new": {"id": "1", "note": "paid order 1, by card"}},
        ],
        [{"table": audit, "operation": "truncate", "old": None, "new": None}],
    ]  # fmt: skip
    assert [without_transaction(line) for line in lines] == [e for t in expected for e in t]
    at = 0
    for txn, changes in zip(txns, expected, strict=True):
        check_transaction(lines[at : at + len(changes)], txn)
        at += len(changes)

    # The slot kept what the example confirmed: a new run prints only what
    # came after.
    confirmed = _one(pg, "select confirmed_flush_lsn::text from pg_replication_slots"
                         " where slot_name = 'cdc_example'")[0]  # fmt: skip
    assert LSN(confirmed) > LSN(lines[-1]["commit_lsn"])
    proc = start_cdc(pg18, "--max-transactions", "2")
    try:
        last = [
            run_in_transaction(pg, "insert into cdc_ex.orders values (3, 'Ann', null, 'new')"),
            # The TOASTed body (stored out of line, written before the slot
            # existed) is not changed: the server does not send it.
            run_in_transaction(pg, "update cdc_ex.docs set tag = 'final' where id = 1"),
        ]
        again = finish(proc)
    finally:
        proc.kill()
        proc.wait()
    assert [without_transaction(line) for line in again] == [
        {"table": orders, "operation": "insert", "old": None,
         "new": {"id": "3", "customer": "Ann", "total": None, "status": "new"}},
        {"table": "cdc_ex.docs", "operation": "update", "old": None,
         "new": {"id": "1", "tag": "final"}, "unchanged": ["body"]},
    ]  # fmt: skip
    check_transaction(again[:1], last[0])
    check_transaction(again[1:], last[1])
    # And the slot's confirmed position moved on past that transaction too.
    moved = _one(pg, "select confirmed_flush_lsn::text from pg_replication_slots"
                     " where slot_name = 'cdc_example'")[0]  # fmt: skip
    assert LSN(moved) > LSN(again[-1]["commit_lsn"]) > LSN(again[0]["commit_lsn"]) > LSN(confirmed)
