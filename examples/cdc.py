"""Change data capture with pygwire: each committed change as one JSON line.

    python examples/cdc.py --host 127.0.0.1 --port 5432 --user repl --dbname app \\
        --slot cdc --publication app_pub --create-slot --max-transactions 10

connects with ``replication=database`` (pygwire's :class:`SocketClient`),
creates the logical slot with the ``pgoutput`` plugin if asked (or reuses
it), starts replication for the publication, and prints every change of
every committed transaction to standard output as one JSON object per
line::

    {"table": "public.orders", "operation": "update", "old": {"id": "7"},
     "new": {"id": "70", "status": "paid"}, "lsn": "0/1A4E2F8", "commit_lsn": "0/1A4E5C0",
     "commit_time": "2026-01-31T12:00:00.123456+00:00", "xid": 754}

Values are the server's text output.  ``old`` is null for an insert and
for an update that kept the key, the replica identity's columns for a
delete or a key change, the whole old row under REPLICA IDENTITY FULL; an
unchanged TOASTed value the server did not send is left out of ``new`` and
named in ``unchanged``.  ``lsn`` is the change's WAL location,
``commit_lsn`` its transaction's commit record.  A TRUNCATE prints one line per table.  After each
transaction the flushed location is confirmed to the server, so a slot
reused later resumes after the last transaction printed; keepalives are
answered.  The standard library and pygwire only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pygwire.client import ServerError, SocketClient
from pygwire.messages import (
    CopyBothResponse,
    CopyData,
    CopyDone,
    ErrorResponse,
    Query,
    ReadyForQuery,
)
from pygwire.replication import (
    LSN,
    UNCHANGED_TOAST,
    Begin,
    ColumnValue,
    Commit,
    LogicalStream,
    PrimaryKeepalive,
    RowChange,
    TruncateChange,
    create_logical_replication_slot,
    pgoutput_options,
    start_logical_replication,
)

__all__ = ["main"]

#: pgoutput protocol version 1 reads the same from PostgreSQL 10 to 18;
#: without streaming, later versions send nothing else for committed
#: transactions.
PROTO_VERSION = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5432)
    p.add_argument("--user", default="postgres")
    p.add_argument("--password", default=None)
    p.add_argument("--dbname", default="postgres")
    p.add_argument("--slot", required=True, help="logical replication slot (pgoutput)")
    p.add_argument("--publication", required=True, action="append", help="may be repeated")
    p.add_argument("--create-slot", action="store_true", help="create the slot if missing")
    p.add_argument(
        "--max-transactions", type=int, default=0, help="exit after this many (0: run until ^C)"
    )
    p.add_argument(
        "--status-interval",
        type=float,
        default=10.0,
        help="seconds between status updates while idle (default 10)",
    )
    return p.parse_args(argv)


def values(row: dict[str, ColumnValue] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """A row for JSON, and the columns left out as unchanged TOAST."""
    if row is None:
        return None, []
    out: dict[str, Any] = {}
    unchanged = []
    for name, value in row.items():
        if value is UNCHANGED_TOAST:
            unchanged.append(name)
        elif isinstance(value, bytes):  # binary format: not asked for, kept readable
            out[name] = value.hex()
        else:
            out[name] = value
    return out, unchanged


class Capture:
    """One replication connection, printing committed changes."""

    def __init__(self, client: SocketClient, out: Any = sys.stdout) -> None:
        self.client = client
        self.out = out
        self.stream = LogicalStream(PROTO_VERSION)
        self.pending: list[dict[str, Any]] = []
        self.begin: Begin | None = None
        self.transactions = 0
        self.stopping = False

    def create_slot(self, slot: str) -> None:
        """Create the slot; one that exists already is reused."""
        try:
            self.command(create_logical_replication_slot(slot, "pgoutput", snapshot="nothing"))
        except ServerError as exc:
            if exc.error.code != "42710":  # duplicate_object: reuse it
                raise

    def command(self, sql: str) -> None:
        for msg in self.client.query(sql):
            if isinstance(msg, ErrorResponse):
                raise ServerError(msg)

    def send_status(self) -> None:
        self.client.send(self.stream.status_update().copy_data())

    def run(
        self, slot: str, publications: list[str], max_transactions: int, interval: float
    ) -> int:
        options = pgoutput_options(PROTO_VERSION, publications)
        self.client.send(Query(query_string=start_logical_replication(slot, "0/0", options)))
        msg = self.client.next_message()
        if isinstance(msg, ErrorResponse):
            raise ServerError(msg)
        assert isinstance(msg, CopyBothResponse), msg
        print(f"cdc: streaming slot {slot} of {', '.join(publications)}", file=sys.stderr)
        self.client.sock.settimeout(interval)
        while not self.stopping:
            try:
                msg = self.client.next_message()
            except TimeoutError:
                self.send_status()  # idle: tell the server we are alive
                continue
            if isinstance(msg, ErrorResponse):
                raise ServerError(msg)
            if not isinstance(msg, CopyData):  # the server ended the stream
                break
            self.handle(self.stream.receive(msg.data))
            if max_transactions and self.transactions >= max_transactions:
                break
        self.finish()
        return 0

    def handle(self, event: object) -> None:
        if isinstance(event, Begin):
            self.begin, self.pending = event, []
        elif isinstance(event, RowChange):
            old, _ = values(event.old)
            new, unchanged = values(event.new)
            line = self.line(event.relation.namespace, event.table, event.kind.value, event.lsn)
            line.update(old=old, new=new)
            if unchanged:
                line["unchanged"] = unchanged
            self.pending.append(line)
        elif isinstance(event, TruncateChange):
            for rel in event.relations:
                self.pending.append(self.line(rel.namespace, rel.name, "truncate", event.lsn))
        elif isinstance(event, Commit):
            for line in self.pending:
                line["commit_lsn"] = str(event.commit_lsn)
                print(json.dumps(line, ensure_ascii=False), file=self.out)
            self.out.flush()
            self.pending, self.begin = [], None
            # Printed: the server may forget everything up to the end of it.
            self.stream.confirm(event.end_lsn)
            self.send_status()
            self.transactions += 1
        elif isinstance(event, PrimaryKeepalive) and self.stream.reply_pending:
            self.send_status()

    def line(self, schema: str, table: str, operation: str, lsn: LSN) -> dict[str, Any]:
        begin = self.begin
        return {
            "table": f"{schema}.{table}" if schema else table,
            "operation": operation,
            "old": None,
            "new": None,
            "lsn": str(lsn),
            "commit_lsn": None,  # known at Commit
            "commit_time": begin.commit_time.to_datetime().isoformat() if begin else None,
            "xid": begin.xid if begin else None,
        }

    def finish(self) -> None:
        """End the COPY as a client does: CopyDone, then drain to ReadyForQuery."""
        self.send_status()
        self.client.send(CopyDone())
        self.client.sock.settimeout(30)
        while not isinstance(msg := self.client.next_message(), ReadyForQuery):
            if isinstance(msg, ErrorResponse):
                raise ServerError(msg)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        client = SocketClient.connect(
            args.host,
            args.port,
            args.user,
            args.dbname,
            args.password,
            params={"replication": "database", "application_name": "pygwire-cdc"},
        )
    except (OSError, ServerError) as exc:
        print(f"cdc: cannot connect: {exc}", file=sys.stderr)
        return 1
    capture = Capture(client)

    def stop(signum: int, frame: object) -> None:
        capture.stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if args.create_slot:
            capture.create_slot(args.slot)
        return capture.run(args.slot, args.publication, args.max_transactions, args.status_interval)
    except ServerError as exc:
        print(f"cdc: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
