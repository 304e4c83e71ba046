"""Serve a SQLite database to PostgreSQL clients: pygwire.server over stdlib sqlite3.

Run with ``make demo-server`` (or ``python -m examples.sqlite_server
[--database FILE] [--port 5433]``), then ``psql -h 127.0.0.1 -p 5433 -U
demo -c 'select * from films'``.  psql, pgbench, psycopg, asyncpg, pg8000
and node-postgres all work against it (``tests/integration/
test_server_clients.py`` runs them).

Each session opens its own connection to the database file (WAL mode, so
readers do not wait for writers) and runs every statement in a worker
thread: a long statement does not stop other sessions, and a cancel request
interrupts it (``sqlite3.Connection.interrupt``).

SQLite speaks a dialect close to PostgreSQL's; what differs is translated
with pygwire.sql's tokens, never by text search, so nothing inside quotes
is touched:

* ``$1`` becomes SQLite's ``?1``;
* a dollar-quoted string becomes a standard one;
* a cast ``expr::type`` is dropped, and its type becomes the type of the
  parameter or result column it ends;
* the ``public.`` schema qualifier is dropped;
* ``now()``, ``version()`` and ``pg_sleep(seconds)`` are SQL functions.

The statements of one Query string, and of an extended-query batch up to
its Sync (a pipeline), run in one SQLite transaction, as they run in one
implicit transaction block in PostgreSQL (``implicit_transactions``).

PostgreSQL types each result column before it runs a statement; SQLite
types values.  Column types come, in this order, from a cast at the end of
the select-list item, from the declared type of the table column of the
same name, and (for statements that are run before they are described)
from the values themselves.  Parameter types come from a cast, from the
column an ``INSERT`` puts them in, or from the column they are compared
with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import decimal
import json
import logging
import re
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pygwire.server import (
    Column,
    CopyIn,
    CopyOut,
    Description,
    Handler,
    Outcome,
    Result,
    Server,
    Session,
    SQLError,
    SQLState,
)
from pygwire.sql import tokens
from pygwire.types import Oid

__all__ = ["SQLiteHandler", "make_server", "seed"]

T = TypeVar("T")

#: PostgreSQL type names (first word, lower case) to type OIDs.
TYPE_NAMES: dict[str, int] = {
    "bool": Oid.BOOL,
    "boolean": Oid.BOOL,
    "smallint": Oid.INT2,
    "int2": Oid.INT2,
    "int": Oid.INT4,
    "integer": Oid.INT4,
    "int4": Oid.INT4,
    "serial": Oid.INT4,
    "bigint": Oid.INT8,
    "int8": Oid.INT8,
    "bigserial": Oid.INT8,
    "real": Oid.FLOAT4,
    "float4": Oid.FLOAT4,
    "float": Oid.FLOAT8,
    "float8": Oid.FLOAT8,
    "double": Oid.FLOAT8,
    "numeric": Oid.NUMERIC,
    "decimal": Oid.NUMERIC,
    "text": Oid.TEXT,
    "varchar": Oid.VARCHAR,
    "character": Oid.BPCHAR,
    "char": Oid.BPCHAR,
    "bpchar": Oid.BPCHAR,
    "name": Oid.NAME,
    "bytea": Oid.BYTEA,
    "blob": Oid.BYTEA,
    "date": Oid.DATE,
    "time": Oid.TIME,
    "timestamp": Oid.TIMESTAMP,
    "timestamptz": Oid.TIMESTAMPTZ,
    "interval": Oid.INTERVAL,
    "uuid": Oid.UUID,
    "json": Oid.JSON,
    "jsonb": Oid.JSONB,
}

_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_CLAUSE_ENDS = frozenset(
    {"from", "where", "group", "order", "limit", "offset", "union", "except", "intersect",
     "having", "window", "returning", "into", "fetch", "for"}
)  # fmt: skip

log = logging.getLogger("sqlite_server")


def type_of(declared: str | None) -> int | None:
    """The type OID of a declared type (``varchar(20)``, ``double precision``)."""
    if not declared:
        return None
    word = re.split(r"[\s(\[]", declared.strip().lower(), maxsplit=1)[0]
    return TYPE_NAMES.get(word)


def _sqlite_value(value: object) -> object:
    """A parameter as SQLite stores it."""
    if value is None or isinstance(value, int | float | str | bytes):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time | uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return str(value)


def _to_bool(value: object) -> object:
    return bool(value) if isinstance(value, int) else value


def _to_numeric(value: object) -> object:
    return decimal.Decimal(str(value)) if isinstance(value, int | float) else value


def _to_float(value: object) -> object:
    return float(value) if isinstance(value, int) else value


def _to_json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def _to_str(value: object) -> object:
    return value if value.__class__ is str or value is None else str(value)


#: How a SQLite value becomes what a column type wants (the codecs parse
#: text for the other types); by plain int, which is faster to look up.
_CONVERTERS: dict[int, Callable[[object], object]] = {
    int(Oid.BOOL): _to_bool,
    int(Oid.NUMERIC): _to_numeric,
    int(Oid.FLOAT4): _to_float,
    int(Oid.FLOAT8): _to_float,
    int(Oid.JSON): _to_json,
    int(Oid.JSONB): _to_json,
    int(Oid.TEXT): _to_str,
    int(Oid.VARCHAR): _to_str,
    int(Oid.BPCHAR): _to_str,
    int(Oid.NAME): _to_str,
}


def _converted(
    rows: list[tuple[object, ...]], types: Sequence[int | None]
) -> list[tuple[object, ...]]:
    """``rows`` with each column's values as its type wants them."""
    plan = [
        (i, _CONVERTERS[int(t)])
        for i, t in enumerate(types)
        if t is not None and int(t) in _CONVERTERS
    ]
    if not plan:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i, convert in plan:
            value = values[i]
            if value is not None:
                values[i] = convert(value)
        out.append(tuple(values))
    return out


def _value_type(values: Sequence[object]) -> int:
    """The type of a column known only by its values (ints as int4 when they fit,
    as PostgreSQL types an integer literal)."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            return Oid.BOOL
        if isinstance(value, int):
            fits = all(
                v is None or (isinstance(v, int) and _INT4_MIN <= v <= _INT4_MAX) for v in values
            )
            return Oid.INT4 if fits else Oid.INT8
        if isinstance(value, float):
            return Oid.FLOAT8
        if isinstance(value, bytes):
            return Oid.BYTEA
        return Oid.TEXT
    return Oid.TEXT


class _Translation:
    """A PostgreSQL statement as SQLite runs it, with what its casts say."""

    def __init__(self, sql: str) -> None:
        self.source = sql
        toks = tokens(sql)
        self.tokens = toks
        self.words = [sql[t.start : t.end].lower() if t.kind == "word" else "" for t in toks]
        self.param_casts: dict[int, int] = {}
        out: list[str] = []
        last = 0
        skip_until = -1
        for i, tok in enumerate(toks):
            if i < skip_until:
                continue
            cast_end = self._cast_end(i)
            if cast_end is not None:
                # Drop "::type[(n)][[]]"; remember it for a parameter just before.
                out.append(sql[last : tok.start])
                last = toks[cast_end - 1].end
                skip_until = cast_end
                previous = toks[i - 1] if i else None
                oid = type_of(sql[toks[i + 2].start : toks[i + 2].end])
                if previous is not None and previous.kind == "param" and oid is not None:
                    self.param_casts[int(sql[previous.start + 1 : previous.end])] = oid
                continue
            if tok.kind == "dollar":
                # $tag$...$tag$ as a standard string literal.
                text = sql[tok.start : tok.end]
                tag = text[: text.index("$", 1) + 1]
                body = text[len(tag) : len(text) - len(tag)]
                out.append(sql[last : tok.start])
                out.append("'" + body.replace("'", "''") + "'")
                last = tok.end
            elif tok.kind == "param":
                out.append(sql[last : tok.start])
                out.append("?" + sql[tok.start + 1 : tok.end])
                last = tok.end
            elif self._is_public_qualifier(i):
                out.append(sql[last : tok.start])
                last = toks[i + 1].end
                skip_until = i + 2
        out.append(sql[last:])
        self.sql = "".join(out)
        self.keyword = next((w for w in self.words if w), "")

    def _char(self, i: int) -> str:
        if i >= len(self.tokens):
            return ""
        tok = self.tokens[i]
        return self.source[tok.start : tok.end] if tok.kind == "other" else ""

    def _cast_end(self, i: int) -> int | None:
        """If tokens ``i``, ``i+1`` are ``::`` and a type follows, the index after it."""
        toks = self.tokens
        if self._char(i) != ":" or self._char(i + 1) != ":" or toks[i + 1].start != toks[i].end:
            return None
        j = i + 2
        if j >= len(toks) or toks[j].kind not in ("word", "ident"):
            return None
        j += 1
        # "double precision", "character varying", "timestamp with time zone"
        while j < len(toks) and self.words[j] in ("precision", "varying", "with", "without",
                                                  "time", "zone"):  # fmt: skip
            j += 1
        if self._char(j) == "(":
            while j < len(toks) and self._char(j) != ")":
                j += 1
            j += 1
        while self._char(j) == "[" and self._char(j + 1) == "]":
            j += 2
        return j

    def _is_public_qualifier(self, i: int) -> bool:
        tok = self.tokens[i]
        text = self.source[tok.start : tok.end].lower()
        return text in ("public", '"public"') and self._char(i + 1) == "."

    # -- what the statement returns ----------------------------------------------------
    def select_items(self) -> list[tuple[int, int]] | None:
        """Token ranges of the top-level select list, or None."""
        depth = 0
        start: int | None = None
        items: list[tuple[int, int]] = []
        for i, word in enumerate(self.words):
            char = self._char(i)
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            if depth:
                continue
            if start is None:
                if word == "select":
                    start = i + 1
                    if self.words[start : start + 1] in (["distinct"], ["all"]):
                        start += 1
                continue
            if char == ",":
                items.append((start, i))
                start = i + 1
            elif word in _CLAUSE_ENDS or char == ";":
                items.append((start, i))
                return items
        if start is not None:
            items.append((start, len(self.tokens)))
            return items
        return None

    def item_type(self, first: int, end: int, columns: dict[str, int]) -> int | None:
        """The type of one select-list item, if its text tells it."""
        toks = self.tokens
        # Without its alias ("... AS name", or a trailing bare name).
        if end - first >= 2 and self.words[end - 2] == "as":
            end -= 2
        depth = 0
        cast: int | None = None
        for i in range(first, end):
            char = self._char(i)
            depth += (char == "(") - (char == ")")
            if depth == 0 and self._cast_end(i) is not None:
                cast = type_of(self.source[toks[i + 2].start : toks[i + 2].end])
        if cast is not None:
            return cast
        words = [w for w in self.words[first:end] if w]
        if end - first >= 2 and words and words[0] in ("count",) and self._char(first + 1) == "(":
            return Oid.INT8
        if end - first == 1 and toks[first].kind in ("word", "ident"):
            return columns.get(self.source[toks[first].start : toks[first].end].strip('"').lower())
        if end - first == 3 and self._char(first + 1) == ".":
            return columns.get(self.source[toks[end - 1].start : toks[end - 1].end].strip('"'))
        return None

    def param_types(
        self, count: int, columns: dict[str, int], insert: list[int] | None
    ) -> list[int]:
        """Parameter types: a cast, the INSERT column, or the compared column."""
        types = [0] * count
        for number, oid in self.param_casts.items():
            if number <= count:
                types[number - 1] = oid
        toks, source = self.tokens, self.source
        for i, tok in enumerate(toks):
            if tok.kind != "param":
                continue
            number = int(source[tok.start + 1 : tok.end])
            if number > count or types[number - 1]:
                continue
            # "column = $n" (or <, >, <>, ...)
            j = i - 1
            while j >= 0 and toks[j].kind == "other" and source[toks[j].start] in "=<>!":
                j -= 1
            if j < i - 1 and j >= 0 and toks[j].kind in ("word", "ident"):
                found = columns.get(source[toks[j].start : toks[j].end].strip('"').lower())
                if found:
                    types[number - 1] = found
        if insert is not None:
            # INSERT ... VALUES ($1, $2, ...): the parameters by position.
            position = 0
            depth = 0
            values_at = self.words.index("values") if "values" in self.words else len(toks)
            for i in range(values_at + 1, len(toks)):
                char = self._char(i)
                if char == "(":
                    depth += 1
                    if depth == 1:
                        position = 0
                elif char == ")":
                    depth -= 1
                elif char == "," and depth == 1:
                    position += 1
                elif toks[i].kind == "param" and depth == 1 and position < len(insert):
                    number = int(source[toks[i].start + 1 : toks[i].end])
                    if number <= count and not types[number - 1]:
                        types[number - 1] = insert[position]
        return types


class SQLiteHandler(Handler):
    """One session's handler: a connection to the database file of its own."""

    database: str = ""
    # A pipeline's statements, or a Query's, commit or roll back together.
    implicit_transactions = True

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.db = sqlite3.connect(
            self.database, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self.cancelled = threading.Event()
        self.db.create_function("now", 0, lambda: datetime.datetime.now(datetime.UTC).isoformat())
        self.db.create_function("version", 0, lambda: "PostgreSQL 18.0 (pygwire SQLite demo)")
        self.db.create_function("pg_sleep", 1, self._sleep)
        self._schema_version = -1
        self._columns: dict[str, int] = {}
        self._tables: dict[str, list[tuple[str, int]]] = {}

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline:
            if self.cancelled.is_set():
                raise sqlite3.OperationalError("interrupted")
            time.sleep(0.005)

    # -- running in the worker thread ------------------------------------------------------
    async def _run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a thread; a cancel interrupts SQLite and waits for it."""
        self.cancelled.clear()
        future = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.cancelled.set()
            self.db.interrupt()
            with contextlib.suppress(Exception):
                await future  # the connection is free again only once it returns
            raise
        except sqlite3.Error as exc:
            raise _sql_error(exc) from None

    def _schema(self) -> None:
        """Refresh the declared column types when the schema changed."""
        version = self.db.execute("pragma schema_version").fetchone()[0]
        if version == self._schema_version:
            return
        tables: dict[str, list[tuple[str, int]]] = {}
        columns: dict[str, int] = {}
        for schema in ("temp", "main"):
            names = self.db.execute(
                f"select name from {schema}.sqlite_schema where type in ('table', 'view')"
            ).fetchall()
            for (table,) in names:
                info = self.db.execute(f'pragma {schema}.table_info("{table}")').fetchall()
                cols = [(row[1], type_of(row[2]) or Oid.TEXT) for row in info]
                tables.setdefault(table.lower(), cols)
                for name, oid in cols:
                    columns.setdefault(name.lower(), oid)
        self._schema_version, self._tables, self._columns = version, tables, columns

    def _insert_types(self, tr: _Translation) -> list[int] | None:
        """The column types an INSERT fills, in its VALUES order."""
        if tr.keyword != "insert" or "into" not in tr.words:
            return None
        at = tr.words.index("into") + 1
        table = self._name(tr, at)
        cols = self._tables.get(table)
        if cols is None:
            return None
        nxt = at + 1
        while tr._char(nxt) == ".":
            nxt += 2
        if tr._char(nxt) == "(":
            types = dict((n.lower(), t) for n, t in cols)
            named: list[int] = []
            for i in range(nxt + 1, len(tr.tokens)):
                if tr._char(i) == ")":
                    break
                if tr.tokens[i].kind in ("word", "ident"):
                    named.append(types.get(self._name(tr, i), Oid.TEXT))
            return named
        return [t for _, t in cols]

    @staticmethod
    def _name(tr: _Translation, i: int) -> str:
        tok = tr.tokens[i]
        text = tr.source[tok.start : tok.end]
        # "public"."t" is dropped from the SQL, not from the tokens.
        if text.lower() in ("public", '"public"') and tr._char(i + 1) == ".":
            tok = tr.tokens[i + 2]
            text = tr.source[tok.start : tok.end]
        return text.strip('"').lower()

    def _column_types(self, tr: _Translation, names: list[str]) -> list[int | None]:
        items = tr.select_items()
        types: list[int | None] = []
        star = items is None or len(items) != len(names)
        for index, name in enumerate(names):
            oid = None if star or items is None else tr.item_type(*items[index], self._columns)
            if oid is None and (
                star or (items is not None and items[index][1] - items[index][0] == 1)
            ):
                oid = self._columns.get(name.lower())
            types.append(oid)
        return types

    # -- the handler's part ----------------------------------------------------------------
    async def query(self, sql: str, params: Sequence[object]) -> Outcome:
        tr = _Translation(sql)
        if tr.keyword == "copy":
            return await self._copy(tr, params)
        values = [_sqlite_value(v) for v in params]

        def work() -> tuple[list[str] | None, list[tuple[object, ...]], int, list[int | None]]:
            self._schema()
            cursor = self.db.execute(tr.sql, values)
            if cursor.description is None:
                return None, [], cursor.rowcount, []
            names = [_column_name(d[0]) for d in cursor.description]
            return names, cursor.fetchall(), 0, self._column_types(tr, names)

        names, rows, count, types = await self._run(work)
        if names is None:
            return _tag(tr, count)
        columns = []
        for i, (name, oid) in enumerate(zip(names, types, strict=True)):
            if oid is None:
                oid = _value_type([row[i] for row in rows])
            columns.append(Column(name, oid))
        rows = _converted(rows, types)
        # RETURNING: the tag is the command's, with the rows it returned.
        tag = _tag(tr, len(rows)) if tr.keyword in ("insert", "update", "delete") else None
        return Result(columns, rows, tag=tag)

    async def describe(self, sql: str, param_types: Sequence[int]) -> Description | None:
        tr = _Translation(sql)
        count = len(param_types)

        def work() -> Description:
            self._schema()
            inferred = tr.param_types(count, self._columns, self._insert_types(tr))
            params = [given or found for given, found in zip(param_types, inferred, strict=True)]
            if tr.keyword not in ("select", "with", "values"):
                return Description(None, params)
            cursor = self.db.execute(f"select * from ({tr.sql}) limit 1", [None] * count)
            names = [_column_name(d[0]) for d in cursor.description or ()]
            types = self._column_types(tr, names)
            # Unknown types: a sample row (with NULL parameters) may tell;
            # else the name alone (a portal is then described by running it).
            sample = cursor.fetchone() if None in types else None
            columns: list[Column | str] = []
            for i, (name, oid) in enumerate(zip(names, types, strict=True)):
                if oid is None and sample is not None and sample[i] is not None:
                    oid = _value_type([sample[i]])
                columns.append(name if oid is None else Column(name, oid))
            return Description(columns, params)

        return await self._run(work)

    async def begin(self) -> None:
        await self._run(lambda: self.db.execute("begin"))

    async def commit(self) -> None:
        await self._run(lambda: self.db.execute("commit"))

    async def rollback(self) -> None:
        await self._run(lambda: self.db.execute("rollback") if self.db.in_transaction else None)

    async def close(self) -> None:
        self.db.close()

    # -- COPY ------------------------------------------------------------------------------
    async def _copy(self, tr: _Translation, params: Sequence[object]) -> Outcome:
        toks, words = tr.tokens, tr.words
        fmt = 0
        for i, word in enumerate(words):
            if word == "format" and i + 1 < len(words):
                kind = words[i + 1]
                if kind == "csv":
                    raise SQLError(SQLState.FEATURE_NOT_SUPPORTED, "COPY in CSV is not supported")
                fmt = 1 if kind == "binary" else 0
            elif word == "binary":
                fmt = 1
        if tr._char(1) == "(":  # COPY (query) TO STDOUT
            depth, end = 0, 1
            for end in range(1, len(toks)):
                depth += (tr._char(end) == "(") - (tr._char(end) == ")")
                if depth == 0:
                    break
            inner = tr.source[toks[1].end : toks[end].start]
            result = await self.query(inner, params)
            if not isinstance(result, Result):
                raise SQLError(SQLState.WRONG_OBJECT_TYPE, "COPY query must return rows")
            types = [c.type_oid if isinstance(c, Column) else Oid.TEXT for c in result.columns]
            return CopyOut(result.rows, types, fmt)
        table = self._name(tr, 1)
        await self._run(self._schema)
        cols = self._tables.get(table)
        if cols is None:
            raise SQLError(SQLState.UNDEFINED_TABLE, f'relation "{table}" does not exist')
        at = 2 if not tr._is_public_qualifier(1) else 4
        chosen = cols
        if tr._char(at) == "(":
            by_name = {n.lower(): (n, t) for n, t in cols}
            chosen = []
            for i in range(at + 1, len(toks)):
                if tr._char(i) == ")":
                    break
                if toks[i].kind in ("word", "ident"):
                    name = self._name(tr, i)
                    if name not in by_name:
                        raise SQLError(
                            SQLState.UNDEFINED_COLUMN,
                            f'column "{name}" of "{table}" does not exist',
                        )
                    chosen.append(by_name[name])
        names = ", ".join(f'"{n}"' for n, _ in chosen)
        oids = [t for _, t in chosen]
        if "to" in words:
            rows = await self._run(
                lambda: self.db.execute(f'select {names} from "{table}"').fetchall()
            )
            return CopyOut(_converted(rows, oids), oids, fmt)
        insert = f'insert into "{table}" ({names}) values ({", ".join("?" * len(chosen))})'

        async def sink(rows: AsyncIterator[tuple[object, ...]]) -> int:
            stored = 0
            batch: list[list[object]] = []
            async for row in rows:
                batch.append([_sqlite_value(v) for v in row])
                if len(batch) >= 1000:
                    await self._run(lambda b=batch: self.db.executemany(insert, b))  # type: ignore[misc]
                    stored += len(batch)
                    batch = []
            if batch:
                await self._run(lambda: self.db.executemany(insert, batch))
                stored += len(batch)
            return stored

        return CopyIn(sink, oids, fmt)


def _column_name(name: str) -> str:
    """PostgreSQL names an unnamed function call's column after the function
    (``count``), SQLite after the expression's text (``count(*)``)."""
    call = re.match(r"([A-Za-z_]\w*)\s*\(.*\)$", name, re.DOTALL)
    return call[1].lower() if call else name


def _tag(tr: _Translation, count: int) -> str:
    """The command tag PostgreSQL gives the statement."""
    keyword = tr.keyword.upper()
    if keyword == "INSERT":
        return f"INSERT 0 {max(count, 0)}"
    if keyword in ("UPDATE", "DELETE"):
        return f"{keyword} {max(count, 0)}"
    if keyword in ("CREATE", "DROP", "ALTER"):
        rest = [w for w in tr.words[1:4] if w and w not in ("temp", "temporary", "unique", "if")]
        return f"{keyword} {rest[0].upper()}" if rest else keyword
    return keyword


_ERRORS = (
    ("no such table", SQLState.UNDEFINED_TABLE),
    ("no such column", SQLState.UNDEFINED_COLUMN),
    ("no such function", SQLState.UNDEFINED_FUNCTION),
    ("syntax error", SQLState.SYNTAX_ERROR),
    ("incomplete input", SQLState.SYNTAX_ERROR),
    ("already exists", SQLState.DUPLICATE_TABLE),
    ("interrupted", SQLState.QUERY_CANCELED),
    ("database is locked", SQLState.LOCK_NOT_AVAILABLE),
    ("UNIQUE constraint", SQLState.UNIQUE_VIOLATION),
    ("NOT NULL constraint", SQLState.NOT_NULL_VIOLATION),
    ("FOREIGN KEY constraint", SQLState.FOREIGN_KEY_VIOLATION),
    ("CHECK constraint", SQLState.CHECK_VIOLATION),
)


def _sql_error(exc: sqlite3.Error) -> SQLError:
    """A SQLite error as the PostgreSQL error clients expect."""
    text = str(exc)
    for needle, code in _ERRORS:
        if needle in text:
            if code == SQLState.QUERY_CANCELED:
                return SQLError(code, "canceling statement due to user request")
            return SQLError(code, text)
    return SQLError(SQLState.INTERNAL_ERROR, text)


def seed(path: str | Path) -> None:
    """A small sample table, ``films``, in a new database file."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute(
        "create table if not exists films (id integer primary key, title text, year int4,"
        " rating numeric, seen bool)"
    )
    if db.execute("select count(*) from films").fetchone()[0] == 0:
        db.executemany(
            "insert into films values (?, ?, ?, ?, ?)",
            [(1, "Metropolis", 1927, "8.3", 1), (2, "Alphaville", 1965, "7.1", 0)],
        )
    db.close()


def make_server(database: str | Path, **options: Any) -> Server:
    """A server for the SQLite database file ``database`` (WAL mode is set)."""
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.close()
    handler = type("Handler", (SQLiteHandler,), {"database": str(database)})
    return Server(handler, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="the SQLite file (default: a new one with 'films')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5433)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    database = args.database
    if database is None:
        database = str(Path(tempfile.mkdtemp(prefix="pygwire-sqlite-")) / "demo.sqlite3")
        seed(database)
    print(f"serving {database} on {args.host}:{args.port}; try:")
    print(f"  psql -h {args.host} -p {args.port} -U demo -c 'select * from films'")
    make_server(database).run(args.host, args.port)


if __name__ == "__main__":
    main()
