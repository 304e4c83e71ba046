"""Portals: a statement's result on its way to the client, in steps.

A :class:`Portal` holds what a statement produced (its outcome) and hands
its rows out a batch at a time, so that an Execute with a row limit can
stop part-way (PortalSuspended) and the next Execute go on, and so that a
large or endless result is produced only as fast as the client reads it.
Protocol portals (Bind) and SQL cursors (DECLARE) are both portals, in one
namespace, as in PostgreSQL.

:class:`RowSource` reads rows from a list, an iterator or an async
iterator with a look-ahead; column types given only by name are inferred
from the first non-NULL values it sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence

from ..messages import FieldDescription
from ..types import Oid
from ._errors import SQLError, SQLState
from ._results import Column, CopyIn, CopyOut, Description, Outcome, Result, Row, Rows
from ._values import Encoder, encoder, infer_type, type_size

__all__ = [
    "INFER_ROWS",
    "Portal",
    "RowSource",
    "description_columns",
    "encode_row",
    "expand_formats",
    "field_descriptions",
    "resolve_columns",
]

#: How many rows are looked at, at most, to infer the type of a column
#: given only by name (the first non-NULL value decides).
INFER_ROWS = 100


class RowSource:
    """Rows from any iterable or async iterable, taken in batches."""

    def __init__(self, rows: Rows) -> None:
        self._sync: Iterator[Row] | None = None
        self._async: AsyncIterator[Row] | None = None
        if isinstance(rows, AsyncIterable):
            self._async = aiter(rows)
        else:
            self._sync = iter(rows)
        self._ahead: list[Row] = []
        #: True once every row has been taken.
        self.exhausted = False

    async def _pull(self, count: int) -> list[Row]:
        out: list[Row] = []
        if self._sync is not None:
            for row in self._sync:
                out.append(row)
                if len(out) >= count:
                    break
        elif self._async is not None:
            while len(out) < count:
                try:
                    out.append(await anext(self._async))
                except StopAsyncIteration:
                    break
        return out

    async def peek(self, count: int) -> list[Row]:
        """Up to ``count`` rows, left in place for :meth:`take`."""
        if len(self._ahead) < count:
            self._ahead += await self._pull(count - len(self._ahead))
        return self._ahead[:count]

    async def take(self, count: int) -> list[Row]:
        """Up to ``count`` rows; fewer only at the end."""
        if self._ahead:
            out = self._ahead[:count]
            del self._ahead[:count]
            if len(out) < count:
                out += await self._pull(count - len(out))
        else:
            out = await self._pull(count)
        if len(out) < count:
            self.exhausted = True
        return out

    async def close(self) -> None:
        """Stop the iteration (an async generator's ``finally`` runs)."""
        self.exhausted = True
        self._ahead.clear()
        source = self._async
        self._async = None
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()
        generator = self._sync
        self._sync = None
        sync_close = getattr(generator, "close", None)
        if sync_close is not None:
            sync_close()


async def resolve_columns(spec: Sequence[Column | str], source: RowSource | None) -> list[Column]:
    """Columns with types: a name alone takes the type of the first
    non-NULL value in its column among the first rows (text if none)."""
    columns: list[Column | None] = [c if isinstance(c, Column) else None for c in spec]
    if all(c is not None for c in columns):
        return [c for c in columns if c is not None]
    rows = await source.peek(INFER_ROWS) if source is not None else []
    resolved: list[Column] = []
    for i, item in enumerate(spec):
        if isinstance(item, Column):
            resolved.append(item)
            continue
        oid: int = Oid.TEXT
        for row in rows:
            if i < len(row) and row[i] is not None:
                oid = infer_type(row[i])
                break
        resolved.append(Column(item, oid))
    return resolved


def encode_row(encoders: Sequence[Encoder], row: Row) -> list[bytes | None]:
    """One row's values as bytes, a value per encoder (XX000 for a row of
    another width: the handler's mistake)."""
    if len(row) != len(encoders):
        raise SQLError(
            SQLState.INTERNAL_ERROR, f"a row has {len(row)} values for {len(encoders)} columns"
        )
    return [None if v is None else enc(v) for enc, v in zip(encoders, row, strict=True)]


def expand_formats(codes: Sequence[int], count: int, what: str) -> list[int]:
    """A Bind format list (none: text; one: for all; else one each) for
    ``count`` items; 08P01 for another length, as PostgreSQL."""
    if not codes:
        return [0] * count
    if len(codes) == 1:
        return [codes[0]] * count
    if len(codes) == count:
        return list(codes)
    raise SQLError(
        SQLState.PROTOCOL_VIOLATION,
        f"bind message has {len(codes)} {what} formats but {count} {what}s",
    )


def field_descriptions(columns: Sequence[Column], formats: Sequence[int]) -> list[FieldDescription]:
    """RowDescription's fields for ``columns`` sent in ``formats``."""
    return [
        FieldDescription(
            name=c.name,
            table_oid=c.table_oid,
            column_attr=c.column_attr,
            type_oid=c.type_oid,
            type_size=c.type_size if c.type_size is not None else type_size(c.type_oid),
            type_modifier=c.type_modifier,
            format_code=f,
        )
        for c, f in zip(columns, formats, strict=True)
    ]


def description_columns(description: Description | None) -> list[Column] | None:
    """A Description's columns with names turned into text columns."""
    if description is None or description.columns is None:
        return None
    return [c if isinstance(c, Column) else Column(c) for c in description.columns]


class Portal:
    """A statement bound to its parameters, and its result once it runs.

    ``sql`` and ``params`` are what runs; ``result_formats`` the client's
    format codes (expanded once the columns are known);
    ``described`` the columns the client was already told about (from
    Describe), which then decide the types values are encoded with.
    ``cursor`` marks a portal opened by DECLARE, ``hold`` one WITH HOLD.
    """

    def __init__(
        self,
        name: str,
        sql: str,
        params: Sequence[object] = (),
        param_types: Sequence[int] = (),
        result_formats: Sequence[int] = (),
        *,
        described: list[Column] | None = None,
        cursor: bool = False,
        hold: bool = False,
    ) -> None:
        self.name = name
        self.sql = sql
        self.params = params
        self.param_types = param_types
        self.result_formats = result_formats
        self.described = described
        #: True once ``described`` is what the statement returns (None
        #: then means: no rows), not merely unknown.
        self.shape_known = described is not None
        self.cursor = cursor
        self.hold = hold
        #: The prepared statement it was bound from (Bind): closing that
        #: statement closes it.
        self.statement: object = None
        #: What the statement returned, once it ran.
        self.outcome: Outcome = None
        self.started = False
        #: The result columns (None: the statement returns no rows).
        self.columns: list[Column] | None = None
        self.source: RowSource | None = None
        self.tag = ""
        #: Every row was sent (or the command completed).
        self.done = False
        #: Rows sent by the Execute (or FETCH) calls so far.
        self.position = 0
        self._formats: list[int] | None = None
        self._encoders: list[Encoder] | None = None

    async def start(self, outcome: Outcome, keyword: str | None) -> None:
        """Take the statement's outcome; resolve its columns."""
        self.outcome = outcome
        self.started = True
        if isinstance(outcome, Result):
            self.source = RowSource(outcome.rows)
            columns = await resolve_columns(outcome.columns, self.source)
            if self.described is not None:
                if len(self.described) != len(columns):
                    raise SQLError(
                        SQLState.INTERNAL_ERROR,
                        f"the result has {len(columns)} columns, "
                        f"but {len(self.described)} were described",
                    )
                columns = self.described
            self.columns = columns
            self.tag = outcome.tag or ""
        elif isinstance(outcome, (CopyIn, CopyOut)):
            self.columns = None
        else:
            self.columns = None
            self.tag = outcome if isinstance(outcome, str) else (keyword or "")

    def formats(self) -> list[int]:
        """The result format code of each column."""
        return self._formats_for(len(self.columns) if self.columns is not None else 0)

    def _formats_for(self, count: int) -> list[int]:
        if self._formats is None or len(self._formats) != count:
            self._formats = expand_formats(self.result_formats, count, "result column")
        return self._formats

    def fields(self, columns: Sequence[Column]) -> list[FieldDescription]:
        """RowDescription's fields for ``columns`` in this portal's formats."""
        return field_descriptions(columns, self._formats_for(len(columns)))

    def encode(self, row: Row) -> list[bytes | None]:
        """One row's column values as bytes."""
        encoders = self._encoders
        if encoders is None:
            assert self.columns is not None
            encoders = self._encoders = [
                encoder(c.type_oid, f) for c, f in zip(self.columns, self.formats(), strict=True)
            ]
        return encode_row(encoders, row)

    async def close(self) -> None:
        """Drop the rest of the result."""
        self.done = True
        if self.source is not None:
            await self.source.close()

    async def materialize(self) -> None:
        """Read every remaining row now (a WITH HOLD cursor at COMMIT)."""
        if self.source is None or self.source.exhausted:
            return
        rows: list[Row] = []
        while batch := await self.source.take(1000):
            rows += batch
        await self.source.close()
        self.source = RowSource(rows)
