"""pgoutput decoding: pygwire against the parser a user would write by hand.

A logical replication stream as a ``pgoutput`` consumer receives it: the
CopyData payloads after START_REPLICATION, each an XLogData carrying one
``pgoutput`` message.  Three tables with several text columns (one under
REPLICA IDENTITY FULL), transactions of 1 to 16 changes (inserts, updates
with and without a key change, deletes), Relation messages first; built
with pygwire's encoders (generated, not recorded from a server: the same
encoders whose output pg_recvlogical and a PostgreSQL 18 subscriber accept
in tests/integration/test_replication_producer.py).

Two decoders turn every payload into the same information, each change
as (operation, schema, table, old values, new values, xid, LSN) with the
values as ``str`` (None for NULL) in dicts keyed by column name, old values
limited to the key's columns when only the key was sent:

* pygwire: :class:`pygwire.replication.LogicalStream` (``receive`` per
  payload, every :class:`~pygwire.replication.RowChange` read);
* hand-written: ``struct.unpack_from`` over the same payloads, the parser a
  user writes from the protocol documentation without a library (it checks
  nothing but what it needs to find its way).

Both run in the same process, alternating within each repeat; their
results are compared before timing.  ``benchmarks.run`` runs ``decode``
twice a round, on the compiled path and with ``PYGWIRE_PURE_PYTHON=1``;
the target is the compiled pygwire at twice the struct parser's changes
per second.  Commands (each prints one JSON object)::

    python -m benchmarks.pgoutput generate --out FILE [--changes N]
    python -m benchmarks.pgoutput decode --file FILE [--repeats N]

The file holds each payload as an unsigned 32-bit big-endian length and
the bytes.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import random
import struct
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygwire
from pygwire import implementation
from pygwire.replication import (
    LSN,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalStream,
    PgOutputMessage,
    Relation,
    RelationColumn,
    ReplicaIdentity,
    RowChange,
    Timestamp,
    TupleColumn,
    Update,
    XLogData,
)

#: What one change decodes to, on either side.
Change = tuple[str, str, str, dict[str, str | None] | None, dict[str, str | None] | None, int, int]

_LEN = struct.Struct("!I")
TEXT, INT4, INT8, NUMERIC, TIMESTAMPTZ = 25, 23, 20, 1700, 1184

TABLES = [
    # (relation id, schema, table, identity, [(column, type, key)])
    (16401, "public", "orders", ReplicaIdentity.DEFAULT,
     [("id", INT4, True), ("customer", TEXT, False), ("email", TEXT, False),
      ("status", TEXT, False), ("total", NUMERIC, False), ("created_at", TIMESTAMPTZ, False),
      ("note", TEXT, False)]),
    (16402, "public", "events", ReplicaIdentity.DEFAULT,
     [("id", INT8, True), ("kind", TEXT, False), ("payload", TEXT, False),
      ("source", TEXT, False), ("at", TIMESTAMPTZ, False)]),
    (16403, "audit", "log", ReplicaIdentity.FULL,
     [("id", INT8, True), ("who", TEXT, True), ("what", TEXT, True), ("old_value", TEXT, True),
      ("new_value", TEXT, True), ("at", TIMESTAMPTZ, True)]),
]  # fmt: skip

_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
          "golf", "hotel", "india", "juliett", "kilo", "lima"]  # fmt: skip
_STATUS = ["new", "paid", "shipped", "delivered", "cancelled"]


# -- the stream -------------------------------------------------------------------------


def _value(rng: random.Random, table: str, column: str, type_oid: int, row_id: int) -> str | None:
    if column == "id":
        return str(row_id)
    if type_oid == TIMESTAMPTZ:
        return f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 1{rng.randint(0, 9)}:2{rng.randint(0, 9)}:3{rng.randint(0, 9)}.{rng.randint(0, 999999):06d}+00"  # noqa: E501
    if type_oid == NUMERIC:
        return f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"
    if column == "status":
        return rng.choice(_STATUS)
    if column == "email":
        return f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}{row_id}@example.com"
    if column == "payload":
        return json.dumps({"ref": row_id, "tags": rng.sample(_WORDS, 3), "n": rng.random()})
    if column == "note" and rng.random() < 0.3:
        return None
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6)))


def generate(changes: int, seed: int = 42) -> list[bytes]:
    """The CopyData payloads of a stream of ``changes`` row changes."""
    rng = random.Random(seed)
    lsn = LSN("16/B374D848")
    when = Timestamp.from_datetime(datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC))
    payloads: list[bytes] = []
    xid = 5000

    def emit(msg: PgOutputMessage, at: LSN) -> None:
        payloads.append(XLogData(at, at, when, msg.encode()).encode())

    for rel_id, schema, table, identity, cols in TABLES:
        columns = [RelationColumn(n, t, -1, 1 if key else 0) for n, t, key in cols]
        emit(Relation(rel_id, schema, table, identity, columns), LSN(0))
    rows: dict[int, dict[int, list[str | None]]] = {t[0]: {} for t in TABLES}
    next_id = {t[0]: 1 for t in TABLES}

    def tup(values: list[str | None]) -> list[TupleColumn]:
        return [TupleColumn.null() if v is None else TupleColumn.text(v.encode()) for v in values]

    done = 0
    while done < changes:
        xid += 1
        first = lsn
        body: list[tuple[LSN, PgOutputMessage]] = []
        for _ in range(min(rng.randint(1, 16), changes - done)):
            rel_id, _, table, identity, cols = rng.choice(TABLES)
            live = rows[rel_id]
            op = rng.random()
            lsn += rng.randint(0x40, 0x200)
            if op < 0.6 or len(live) < 10:
                row_id = next_id[rel_id]
                next_id[rel_id] += 1
                values = [_value(rng, table, n, t, row_id) for n, t, _ in cols]
                live[row_id] = values
                body.append((lsn, Insert(rel_id, tup(values))))
            elif op < 0.85:
                row_id = rng.choice(list(live))
                old = live[row_id]
                new = list(old)
                for i in rng.sample(range(1, len(cols)), 2):
                    new[i] = _value(rng, table, cols[i][0], cols[i][1], row_id)
                key = old_row = None
                if identity is ReplicaIdentity.FULL:
                    old_row = tup(old)
                elif rng.random() < 0.1:  # a new key: the old one is sent
                    new_id = next_id[rel_id]
                    next_id[rel_id] += 1
                    new[0] = str(new_id)
                    key = tup([old[0]] + [None] * (len(cols) - 1))
                    del live[row_id]
                    row_id = new_id
                live[row_id] = new
                body.append((lsn, Update(rel_id, tup(new), key=key, old=old_row)))
            else:
                row_id = rng.choice(list(live))
                old = live.pop(row_id)
                if identity is ReplicaIdentity.FULL:
                    body.append((lsn, Delete(rel_id, old=tup(old))))
                else:
                    key_only = [old[0]] + [None] * (len(cols) - 1)
                    body.append((lsn, Delete(rel_id, key=tup(key_only))))
            done += 1
        commit = lsn + 0x30
        lsn = commit + 0x30
        emit(Begin(commit, when, xid), first)
        for at, msg in body:
            emit(msg, at)
        emit(Commit(commit, lsn, when), lsn)
    return payloads


def save(payloads: list[bytes], path: Path) -> None:
    with path.open("wb") as f:
        for p in payloads:
            f.write(_LEN.pack(len(p)))
            f.write(p)


def load(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        (n,) = _LEN.unpack_from(data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


# -- the two decoders -------------------------------------------------------------------


def with_pygwire(payloads: list[bytes], sink: Callable[[Change], None]) -> None:
    stream = LogicalStream(1)
    receive = stream.receive
    for payload in payloads:
        event = receive(payload)
        if type(event) is RowChange:
            rel = event.relation
            sink(
                (
                    event.kind,  # a StrEnum: equal to "insert", ...)
                    rel.namespace,
                    rel.name,
                    event.old,  # type: ignore[arg-type]  # text only: no bytes here
                    event.new,
                    event.xid or 0,
                    event.lsn,
                )
            )


_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_BEGIN = struct.Struct("!QqI")
_OPS = {0x49: "insert", 0x55: "update", 0x44: "delete"}


def by_hand(payloads: list[bytes], sink: Callable[[Change], None]) -> None:
    """What a user writes from protocol.sgml: XLogData's header (25 bytes),
    then the pgoutput tag; Relation messages kept by id."""
    relations: dict[int, tuple[str, str, list[str], list[bool]]] = {}
    u32, u16, u64 = _U32.unpack_from, _U16.unpack_from, _U64.unpack_from
    xid = 0

    def read_tuple(p: bytes, pos: int, names: list[str]) -> tuple[dict[str, str | None], int]:
        (count,) = u16(p, pos)
        pos += 2
        row: dict[str, str | None] = {}
        for i in range(count):
            kind = p[pos]
            pos += 1
            if kind in {0x74, 0x62}:  # text / binary
                (length,) = u32(p, pos)
                pos += 4
                row[names[i]] = p[pos : pos + length].decode()
                pos += length
            elif kind == 0x6E:  # null
                row[names[i]] = None
            # 'u': unchanged TOAST, not sent
        return row, pos

    for p in payloads:
        if p[0] != 0x77:  # keepalive
            continue
        tag = p[25]
        if tag in _OPS:
            (rel_id,) = u32(p, 26)
            schema, table, names, keys = relations[rel_id]
            marker = p[30]
            old = new = None
            pos = 31
            if marker in {0x4B, 0x4F}:  # K or O
                old, pos = read_tuple(p, pos, names)
                if marker == 0x4B:
                    old = {n: v for (n, v), k in zip(old.items(), keys, strict=False) if k}
                if tag == 0x55:
                    new, pos = read_tuple(p, pos + 1, names)
            else:  # N
                new, pos = read_tuple(p, pos, names)
            sink((_OPS[tag], schema, table, old, new, xid, u64(p, 1)[0]))
        elif tag == 0x42:  # Begin
            xid = _BEGIN.unpack_from(p, 26)[2]
        elif tag == 0x52:  # Relation
            (rel_id,) = u32(p, 26)
            end = p.index(0, 30)
            schema = p[30:end].decode()
            start, end = end + 1, p.index(0, end + 1)
            table = p[start:end].decode()
            pos = end + 2  # replica identity
            (ncols,) = u16(p, pos)
            pos += 2
            names, keys = [], []
            for _ in range(ncols):
                flags = p[pos]
                end = p.index(0, pos + 1)
                names.append(p[pos + 1 : end].decode())
                keys.append(bool(flags & 1))
                pos = end + 1 + 8
            relations[rel_id] = (schema, table, names, keys)


DECODERS: dict[str, Callable[[list[bytes], Callable[[Change], None]], None]] = {
    "pygwire": with_pygwire,
    "by_hand": by_hand,
}


def collect(payloads: list[bytes], name: str) -> list[Change]:
    out: list[Change] = []
    DECODERS[name](payloads, out.append)
    return out


def decode(path: Path, repeats: int) -> dict[str, Any]:
    """Each decoder's best time; they alternate within every repeat."""
    payloads = load(path)
    reference = collect(payloads, "by_hand")
    same = collect(payloads, "pygwire") == reference
    counter = [0]

    def count(change: Change) -> None:
        counter[0] += 1

    results = dict.fromkeys(DECODERS, float("inf"))
    for _ in range(repeats):
        for name, fn in DECODERS.items():
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            fn(payloads, count)
            results[name] = min(results[name], time.perf_counter() - start)
            gc.enable()
    return {
        "implementation": implementation(),
        "about": {
            "version": importlib.metadata.version("pygwire"),
            "file": str(pygwire.__file__),
            "python": sys.version.split()[0],
        },
        "payloads": len(payloads),
        "bytes": sum(len(p) for p in payloads),
        "changes": len(reference),
        "same": same,
        "seconds": results,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pgoutput")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--changes", type=int, default=200_000)
    d = sub.add_parser("decode")
    d.add_argument("--file", type=Path, required=True)
    d.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    if a.command == "generate":
        payloads = generate(a.changes)
        save(payloads, a.out)
        print(json.dumps({"payloads": len(payloads), "bytes": sum(len(x) for x in payloads)}))
    else:
        print(json.dumps(decode(a.file, a.repeats)))


if __name__ == "__main__":
    main()
