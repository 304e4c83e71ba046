"""What a handler is given and what it gives back.

A handler's statement methods return one of:

* a :class:`Result`: columns and rows (a SELECT, SHOW, RETURNING, ...);
* a ``str``: the command tag of a statement that returns no rows
  (``"INSERT 0 1"``, ``"CREATE TABLE"``);
* ``None``: the same, with the statement's first keyword as the tag;
* a :class:`CopyIn` or :class:`CopyOut`: the statement is a COPY.

:class:`Description` is what a handler knows about a statement before
running it (the extended query protocol asks at Describe), and
:class:`Statement` is one statement as the session hands it over.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..sql import command_keyword
from ..types import Oid

__all__ = [
    "Column",
    "CopyIn",
    "CopyOut",
    "Description",
    "Outcome",
    "Result",
    "Row",
    "Rows",
    "Statement",
]

Row = Sequence[object]
"""One row: a value per column, ``None`` for NULL."""
Rows = Iterable[Row] | AsyncIterable[Row]
"""The rows of a result: any iterable, or an async iterable (streamed)."""


@dataclass(frozen=True, slots=True)
class Column:
    """A result column: its name and type, and what RowDescription says of it.

    ``type_oid`` is a type OID (:class:`pygwire.types.Oid`); values are
    encoded with that type's codec.  ``type_size`` defaults to the type's
    own size (4 for int4, -1 for text); ``table_oid`` and ``column_attr``
    name the table column it comes from, if any (0: none).
    """

    name: str
    type_oid: int = Oid.TEXT
    type_size: int | None = None
    type_modifier: int = -1
    table_oid: int = 0
    column_attr: int = 0


@dataclass(slots=True)
class Result:
    """Rows for the client: ``columns`` (each a :class:`Column`, or just a
    name, whose type is then inferred from the first non-NULL value in it)
    and ``rows``.  ``rows`` may be a list, any iterable, or an async
    iterable, which the session consumes as the client reads (a client
    that reads slowly slows the iteration down; a row limit in Execute
    stops it part-way and resumes it at the next Execute).  ``tag`` is the
    command tag; by default ``SELECT n`` with the number of rows sent.
    """

    columns: Sequence[Column | str]
    rows: Rows = ()
    tag: str | None = None


@dataclass(slots=True)
class Description:
    """A statement's shape, known before it runs.

    ``columns``: the result columns, or None when the statement returns no
    rows.  A :class:`Column` fixes the type; a bare name says the type is
    known only once the statement runs: Describe of a statement reports it
    as text, and a portal (whose parameters are bound) is described by
    running it, so its values decide.  ``params``: the
    type OID of each parameter ``$1``, ``$2``, ... (0 where unknown: the
    value arrives as ``str``).  Types the client gave in Parse take
    precedence over these.
    """

    columns: Sequence[Column | str] | None = None
    params: Sequence[int] = ()


#: Consumes the rows of a COPY FROM STDIN; returns how many it stored
#: (None: as many as it read).
CopySink = Callable[[AsyncIterator[tuple[object, ...]]], Awaitable[int | None]]


@dataclass(slots=True)
class CopyIn:
    """The client sends rows (``COPY ... FROM STDIN``).

    ``sink`` is called with an async iterator over the rows as they arrive
    and returns the number of rows it stored (the tag is ``COPY n``).
    ``format`` is 0 (text) or 1 (binary) as the COPY statement said.  With
    ``types`` (one type OID per column) each row comes as Python values
    decoded by those types; without, as the raw fields: ``str`` in text
    format, ``bytes`` in binary format (None for NULL either way).
    ``columns`` is the number of columns when no types are given; a row with
    another number of fields is an error (22P04), as in PostgreSQL.
    """

    sink: CopySink
    types: Sequence[int] | None = None
    format: int = 0
    columns: int | None = None

    @property
    def width(self) -> int | None:
        """The number of columns, when known."""
        return len(self.types) if self.types is not None else self.columns


@dataclass(slots=True)
class CopyOut:
    """The client receives rows (``COPY ... TO STDOUT``).

    ``rows`` are sequences of Python values (or an async iterable of
    them), written in ``format`` 0 (text) or 1 (binary) with the codecs of
    ``types``; without types each value's type is inferred from the first
    row.  The tag is ``COPY n``.
    """

    rows: Rows
    types: Sequence[int] | None = None
    format: int = 0


Outcome = Result | CopyIn | CopyOut | str | None
"""What a handler's statement methods return."""


@dataclass(slots=True)
class Statement:
    """One statement, as the session hands it to :meth:`Handler.execute`.

    ``sql`` is the statement's text (one statement: a simple query holding
    several is split first), ``params`` the bound parameter values decoded
    to Python objects, ``param_types`` their type OIDs (0 where unknown).
    """

    sql: str
    params: Sequence[object] = ()
    param_types: Sequence[int] = ()
    _keyword: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def keyword(self) -> str | None:
        """The first word, upper-cased (``"SELECT"``), or None."""
        if self._keyword is None:
            self._keyword = command_keyword(self.sql) or ""
        return self._keyword or None
