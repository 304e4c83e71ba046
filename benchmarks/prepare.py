"""Build the benchmark inputs once, with the current pygwire.

Every workload of :mod:`benchmarks.workloads` reads its input from the files
written here, so both pygwire versions decode (or encode from) exactly the
same bytes.  :func:`prepare` also records in ``manifest.json`` what a correct
decoder must find in each input (message and row counts, column bytes,
NULLs) and the SHA-256 of the bytes the encoders must produce, so the driver
can tell a fast wrong answer from a fast right one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pygwire import TransactionStatus
from pygwire.messages import (
    Bind,
    CommandComplete,
    DataRow,
    Describe,
    Execute,
    FieldDescription,
    Parse,
    ReadyForQuery,
    RowDescription,
    Sync,
)

__all__ = ["Sizes", "prepare"]

Row = list[bytes | None]

TEXT_OID = 25
INT4_OID = 23
FLOAT8_OID = 701

MEMORY_BLOCK = 64 * 1024
"""The memory workload feeds copies of one block of whole DataRows this long."""


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Input sizes; :meth:`scaled` shrinks them for quick trial runs."""

    stream_rows: int = 200_000
    wide_rows: int = 5_000
    wide_columns: int = 200
    row_description_fields: tuple[int, ...] = (400, 800, 1_600)
    row_description_total_fields: int = 64_000
    large_rows: int = 100
    large_value_bytes: int = 1 << 20
    client_groups: int = 50_000
    memory_bytes: int = 200 << 20

    def scaled(self, factor: float) -> Sizes:
        def n(value: int, minimum: int = 1) -> int:
            return max(minimum, int(value * factor))

        return Sizes(
            stream_rows=n(self.stream_rows),
            wide_rows=n(self.wide_rows),
            wide_columns=self.wide_columns,
            row_description_fields=self.row_description_fields,
            row_description_total_fields=n(
                self.row_description_total_fields, max(self.row_description_fields)
            ),
            large_rows=n(self.large_rows),
            large_value_bytes=self.large_value_bytes,
            client_groups=n(self.client_groups),
            memory_bytes=n(self.memory_bytes, 16 * MEMORY_BLOCK),
        )


def _field(name: str, type_oid: int, attr: int) -> FieldDescription:
    return FieldDescription(
        name=name,
        table_oid=16_384,
        column_attr=attr,
        type_oid=type_oid,
        type_size=-1 if type_oid == TEXT_OID else 4,
        type_modifier=-1,
        format_code=0,
    )


def _result_stream(fields: list[FieldDescription], rows: Iterable[Row], count: int) -> bytes:
    """RowDescription, the DataRows, CommandComplete, ReadyForQuery."""
    parts = [RowDescription(fields=fields).to_wire()]
    parts.extend(DataRow(columns=row).to_wire() for row in rows)
    parts.append(CommandComplete(tag=f"SELECT {count}").to_wire())
    parts.append(ReadyForQuery(status=TransactionStatus.IDLE).to_wire())
    return b"".join(parts)


def _row_stats(rows: Sequence[Row]) -> dict[str, int]:
    column_bytes = 0
    nulls = 0
    for row in rows:
        for col in row:
            if col is None:
                nulls += 1
            else:
                column_bytes += len(col)
    return {"rows": len(rows), "column_bytes": column_bytes, "nulls": nulls}


def stream_row(i: int) -> Row:
    """Five text columns, the third NULL (as ``select i, 'hello world '||i, ...``)."""
    return [b"%d" % i, b"hello world %d" % i, None, b"x", b"%.1f" % (i * 1.5)]


def _stream_fields() -> list[FieldDescription]:
    types = (INT4_OID, TEXT_OID, TEXT_OID, TEXT_OID, FLOAT8_OID)
    pairs = zip("abcde", types, strict=True)
    return [_field(name, oid, n + 1) for n, (name, oid) in enumerate(pairs)]


def _wide_row(i: int, columns: int) -> Row:
    return [None if j % 20 == 19 else b"r%dc%d" % (i, j) for j in range(columns)]


def _bind_params(i: int) -> list[bytes | None]:
    return [b"%d" % i, b"name %d" % i]


def _client_group(i: int) -> list[bytes]:
    """One pipelined Parse/Bind/Describe/Execute/Sync group."""
    return [
        Parse(
            statement="",
            query=f"SELECT id, name FROM users WHERE id = $1 OR name = $2 -- {i}",
            param_types=[INT4_OID, TEXT_OID],
        ).to_wire(),
        Bind(
            portal="",
            statement="",
            param_formats=[0],
            param_values=_bind_params(i),
            result_formats=[0],
        ).to_wire(),
        Describe(kind="P", name="").to_wire(),
        Execute(portal="", max_rows=0).to_wire(),
        Sync().to_wire(),
    ]


def _bind_execute_sync(i: int) -> bytes:
    return b"".join(
        (
            Bind(
                portal="",
                statement="",
                param_formats=[0],
                param_values=_bind_params(i),
                result_formats=[0],
            ).to_wire(),
            Execute(portal="", max_rows=0).to_wire(),
            Sync().to_wire(),
        )
    )


def _memory_block() -> tuple[bytes, list[Row]]:
    """Exactly :data:`MEMORY_BLOCK` bytes of whole DataRows; and the rows."""
    rows: list[Row] = []
    parts: list[bytes] = []
    size = 0
    i = 0
    filler = b"m" * 400
    while True:
        row: Row = [b"%d" % i, filler, None, b"x", b"%.1f" % (i * 1.5)]
        wire = DataRow(columns=row).to_wire()
        if MEMORY_BLOCK - size - len(wire) < 16:
            break
        rows.append(row)
        parts.append(wire)
        size += len(wire)
        i += 1
    # One last row whose single column fills the block to the byte
    # (11 bytes of framing: identifier, length, count, column length).
    rows.append([b"f" * (MEMORY_BLOCK - size - 11)])
    parts.append(DataRow(columns=rows[-1]).to_wire())
    block = b"".join(parts)
    assert len(block) == MEMORY_BLOCK
    return block, rows


def _sha256(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def prepare(out: Path, sizes: Sizes) -> dict[str, Any]:
    """Write every input file under ``out``; return (and write) the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"sizes": dataclasses.asdict(sizes)}

    # 1. server stream; 5. its DataRows re-encoded.
    rows = [stream_row(i) for i in range(sizes.stream_rows)]
    stream = _result_stream(_stream_fields(), rows, len(rows))
    (out / "server_stream.bin").write_bytes(stream)
    (out / "encode_rows.pickle").write_bytes(pickle.dumps(rows, protocol=4))
    manifest["server_stream"] = {"bytes": len(stream), "messages": len(rows) + 3}
    manifest["server_stream"] |= _row_stats(rows)
    manifest["encode_datarows"] = {
        "messages": len(rows),
        "sha256": _sha256(DataRow(columns=row).to_wire() for row in rows),
    }
    del rows, stream

    # 2. wide rows and wide RowDescriptions.
    wide_fields = [_field(f"col_{j:03d}", TEXT_OID, j + 1) for j in range(sizes.wide_columns)]
    wide = [_wide_row(i, sizes.wide_columns) for i in range(sizes.wide_rows)]
    wide_stream = _result_stream(wide_fields, wide, len(wide))
    (out / "wide_rows.bin").write_bytes(wide_stream)
    manifest["wide_rows"] = {"bytes": len(wide_stream), "messages": len(wide) + 3}
    manifest["wide_rows"] |= _row_stats(wide)
    del wide, wide_stream

    manifest["row_description"] = {}
    for nfields in sizes.row_description_fields:
        fields = [_field(f"column_{j:04d}", TEXT_OID, j + 1) for j in range(nfields)]
        one = RowDescription(fields=fields).to_wire()
        copies = max(1, sizes.row_description_total_fields // nfields)
        (out / f"row_description_{nfields}.bin").write_bytes(one * copies)
        manifest["row_description"][str(nfields)] = {
            "bytes": len(one) * copies,
            "messages": copies,
            "fields": nfields * copies,
            "name_bytes": sum(len(f.name) for f in fields) * copies,
        }

    # 3. large values.
    value = bytes(range(256)) * (sizes.large_value_bytes // 256)
    large: list[Row] = [[b"%d" % i, value] for i in range(sizes.large_rows)]
    large_fields = [_field("id", INT4_OID, 1), _field("payload", TEXT_OID, 2)]
    large_stream = _result_stream(large_fields, large, len(large))
    (out / "large_values.bin").write_bytes(large_stream)
    manifest["large_values"] = {"bytes": len(large_stream), "messages": len(large) + 3}
    manifest["large_values"] |= _row_stats(large)
    del large, large_stream, value

    # 4. pipelined client stream; 5. Bind/Execute/Sync re-encoded.
    groups = [_client_group(i) for i in range(sizes.client_groups)]
    client = b"".join(b"".join(g) for g in groups)
    (out / "client_stream.bin").write_bytes(client)
    manifest["client_stream"] = {
        "bytes": len(client),
        "messages": 5 * len(groups),
        "query_bytes": sum(
            len(f"SELECT id, name FROM users WHERE id = $1 OR name = $2 -- {i}")
            for i in range(len(groups))
        ),
        "param_bytes": sum(
            len(v) for i in range(len(groups)) for v in _bind_params(i) if v is not None
        ),
    }
    params = [_bind_params(i) for i in range(sizes.client_groups)]
    (out / "encode_binds.pickle").write_bytes(pickle.dumps(params, protocol=4))
    manifest["encode_bind_execute_sync"] = {
        "messages": 3 * len(params),
        "sha256": _sha256(_bind_execute_sync(i) for i in range(len(params))),
    }
    del groups, client, params

    # 7. memory: one block, fed again and again.
    block, block_rows = _memory_block()
    (out / "memory_block.bin").write_bytes(block)
    manifest["memory"] = {
        "block_bytes": len(block),
        "block_rows": len(block_rows),
        "block_column_bytes": _row_stats(block_rows)["column_bytes"],
        "blocks": max(1, sizes.memory_bytes // len(block)),
    }

    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
