"""A walsender built on pygwire: the publishing side of streaming replication.

:class:`Walsender` listens on 127.0.0.1 at a free port and answers
replication connections the way PostgreSQL's walsender does, for the real
consumers the tests point at it (``pg_recvlogical``, ``pg_receivewal``, a
PostgreSQL subscriber's apply worker).  Every message in both directions
goes through a strict :class:`pygwire.BackendConnection`; what travels
inside CopyData is encoded with :mod:`pygwire.replication` (XLogData and
keepalives out, status updates and hot standby feedback in).

What it serves is given, not computed: WAL bytes for physical replication
(:class:`WalRange`), and for each logical slot a list of
:class:`Transaction` (``pgoutput`` messages with their WAL locations),
which tests may extend while a consumer is connected.  It answers:

* IDENTIFY_SYSTEM, SHOW (from :attr:`Walsender.settings`), TIMELINE_HISTORY
  (from ``history``);
* CREATE_REPLICATION_SLOT (physical and logical, both option syntaxes),
  READ_REPLICATION_SLOT, DROP_REPLICATION_SLOT, ALTER_REPLICATION_SLOT;
* START_REPLICATION PHYSICAL and LOGICAL: CopyBothResponse, the data as
  XLogData, then keepalives (asking for a reply while the consumer has not
  confirmed everything); the consumer's status updates move the slot
  (``confirmed_flush`` of a logical slot, ``restart_lsn`` of a physical
  one), and a restarted stream resumes after what was confirmed; the
  consumer's CopyDone ends the stream as PostgreSQL 18 ends it (CopyDone,
  two CommandCompletes, ReadyForQuery);
* plain SQL on ``replication=database`` connections: ``set_config`` of
  ``search_path`` (what libpq-based replication clients send first), and
  whatever ``sql`` (a test's callable) answers; anything else is an
  ErrorResponse and is kept in :attr:`Walsender.unanswered`.

Authentication is trust; SSLRequest and GSSENCRequest are refused with
``N``.  Each query text is kept in :attr:`Walsender.commands` and each
status update in :attr:`Walsender.status_updates`, so tests can assert what
the real tools sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from loopback import LoopbackServer
from pygwire import BackendConnection, TransactionStatus
from pygwire.messages import (
    AuthenticationOk,
    BackendKeyData,
    CancelRequest,
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    DataRow,
    ErrorResponse,
    FieldDescription,
    GSSEncRequest,
    GSSEncResponse,
    ParameterStatus,
    PGMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Terminate,
)
from pygwire.replication import (
    LSN,
    STREAMING,
    Begin,
    BeginPrepare,
    Commit,
    CommitPrepared,
    Delete,
    HotStandbyFeedback,
    Insert,
    LogicalMessage,
    PgOutputContext,
    PgOutputMessage,
    Prepare,
    PrimaryKeepalive,
    Relation,
    RollbackPrepared,
    StandbyStatusUpdate,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Timestamp,
    Truncate,
    TypeMessage,
    Update,
    XLogData,
)
from pygwire.types import Oid

__all__ = [
    "Column",
    "Result",
    "ScriptBuilder",
    "Session",
    "Slot",
    "SqlError",
    "StatusReport",
    "Transaction",
    "WalRange",
    "Walsender",
    "parse_command",
]

#: The largest WAL chunk in one XLogData (PostgreSQL's MAX_SEND_SIZE: 16
#: pages of 8 kB).
MAX_SEND_SIZE = 16 * 8192

_Value = str | None
_ZERO = LSN(0)


# -- what is served ---------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """``pgoutput`` messages sent together, each with the WAL location its
    XLogData carries, and ``end_lsn``: where a consumer that has it all
    confirms up to (a Commit's end LSN, say).  A stream that restarts skips
    the transactions whose ``end_lsn`` it has confirmed."""

    messages: tuple[tuple[LSN, PgOutputMessage], ...]
    end_lsn: LSN


@dataclass(frozen=True)
class WalRange:
    """WAL bytes to serve for physical replication, from ``start``."""

    start: LSN
    data: bytes

    @property
    def end(self) -> LSN:
        return self.start + len(self.data)


@dataclass
class Slot:
    """A replication slot as the walsender keeps it."""

    name: str
    kind: Literal["physical", "logical"]
    plugin: str | None = None
    two_phase: bool = False
    temporary: bool = False
    restart_lsn: LSN = _ZERO
    confirmed_flush: LSN = _ZERO
    #: The options of CREATE_REPLICATION_SLOT, as parsed.
    options: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A result column: its name, type OID and ``pg_type.typlen``."""

    name: str
    type_oid: int = Oid.TEXT
    type_size: int = -1


@dataclass(frozen=True)
class Result:
    """A result set (or, without columns, a command's completion)."""

    columns: Sequence[Column] = ()
    rows: Sequence[Sequence[_Value]] = ()
    tag: str | None = None


class SqlError(Exception):
    """Answered with an ErrorResponse (the session goes on)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_message(self) -> ErrorResponse:
        return ErrorResponse(fields={"S": "ERROR", "V": "ERROR", "C": self.code, "M": self.message})


#: A test's answers to plain SQL: the result, or None for "not mine".
SqlHandler = Callable[[str], Result | None]


@dataclass(frozen=True)
class StatusReport:
    """A status update a consumer sent, and which session and slot it was."""

    session: int
    slot: str | None
    update: StandbyStatusUpdate


# -- replication commands -----------------------------------------------------------

_REPLICATION_COMMANDS = frozenset(
    {
        "IDENTIFY_SYSTEM",
        "SHOW",
        "TIMELINE_HISTORY",
        "CREATE_REPLICATION_SLOT",
        "DROP_REPLICATION_SLOT",
        "READ_REPLICATION_SLOT",
        "ALTER_REPLICATION_SLOT",
        "START_REPLICATION",
        "BASE_BACKUP",
        "UPLOAD_MANIFEST",
    }
)

# The replication command scanner's tokens: a WAL location, quoted
# identifiers and strings (quotes doubled), numbers, words, punctuation.
_TOKEN = re.compile(
    r"""\s+
    | (?P<lsn>[0-9A-Fa-f]+/[0-9A-Fa-f]+)
    | (?P<qident>"(?:[^"]|"")*")
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>[0-9]+)(?![A-Za-z_])
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<punct>[(),;])
    """,
    re.VERBOSE,
)


_FIRST_WORD = re.compile(r"\s*([A-Za-z_]+)")


@dataclass(frozen=True)
class Token:
    kind: str
    value: str


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SqlError("42601", f'syntax error at or near "{text[pos : pos + 10]}"')
        pos = match.end()
        kind = match.lastgroup
        if kind is None:
            continue
        value = match.group(kind)
        if kind == "qident":
            kind, value = "name", value[1:-1].replace('""', '"')
        elif kind == "string":
            value = value[1:-1].replace("''", "'")
        out.append(Token(kind, value))
    return out


@dataclass
class Command:
    """A parsed replication command: its name, positional words and
    options (``name -> value``, None for a bare option)."""

    name: str
    slot: str | None = None
    kind: str | None = None
    plugin: str | None = None
    lsn: LSN | None = None
    timeline: int | None = None
    temporary: bool = False
    wait: bool = False
    setting: str | None = None
    options: dict[str, str | None] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = [t for t in _tokens(text) if t.value != ";"]
        self.i = 0

    def peek(self) -> Token | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise SqlError("42601", "syntax error at end of input")
        self.i += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "word" and token.value.upper() in words:
            self.i += 1
            return token.value.upper()
        return None

    def name(self) -> str:
        token = self.take()
        if token.kind == "word":
            return token.value.lower()  # unquoted identifiers are folded
        if token.kind == "name":
            return token.value
        raise SqlError("42601", f'syntax error at or near "{token.value}"')

    def lsn(self) -> LSN:
        token = self.take()
        if token.kind != "lsn":
            raise SqlError("42601", f'syntax error at or near "{token.value}"')
        return LSN(token.value)

    def number(self) -> int:
        token = self.take()
        if token.kind != "number":
            raise SqlError("42601", f'syntax error at or near "{token.value}"')
        return int(token.value)

    def options(self) -> dict[str, str | None]:
        """``( name [value], ... )``, or the legacy bare words."""
        options: dict[str, str | None] = {}
        token = self.peek()
        if token is None:
            return options
        if token.value != "(":
            while self.peek() is not None:  # legacy syntax: RESERVE_WAL, TWO_PHASE, ...
                word = self.take()
                options[word.value.lower()] = None
            return options
        self.take()
        while True:
            key = self.name().lower()
            nxt = self.peek()
            value: str | None = None
            if nxt is not None and nxt.value not in (",", ")"):
                value = self.take().value
            options[key] = value
            sep = self.take()
            if sep.value == ")":
                return options
            if sep.value != ",":
                raise SqlError("42601", f'syntax error at or near "{sep.value}"')

    def end(self) -> None:
        token = self.peek()
        if token is not None:
            raise SqlError("42601", f'syntax error at or near "{token.value}"')


def parse_command(text: str) -> Command | None:
    """The replication command in ``text``, or None if it is plain SQL."""
    first = _FIRST_WORD.match(text)
    if first is None or first.group(1).upper() not in _REPLICATION_COMMANDS:
        return None
    p = _Parser(text)
    name = p.take().value.upper()
    cmd = Command(name)
    if name == "SHOW":
        cmd.setting = p.name()
    elif name == "TIMELINE_HISTORY":
        cmd.timeline = p.number()
    elif name in ("READ_REPLICATION_SLOT", "DROP_REPLICATION_SLOT"):
        cmd.slot = p.name()
        cmd.wait = p.keyword("WAIT") is not None
    elif name == "ALTER_REPLICATION_SLOT":
        cmd.slot = p.name()
        cmd.options = p.options()
    elif name == "CREATE_REPLICATION_SLOT":
        cmd.slot = p.name()
        cmd.temporary = p.keyword("TEMPORARY") is not None
        cmd.kind = p.keyword("PHYSICAL", "LOGICAL")
        if cmd.kind is None:
            raise SqlError("42601", "syntax error: PHYSICAL or LOGICAL expected")
        if cmd.kind == "LOGICAL":
            cmd.plugin = p.name()
        cmd.options = p.options()
    elif name == "START_REPLICATION":
        if p.keyword("SLOT"):
            cmd.slot = p.name()
        cmd.kind = p.keyword("PHYSICAL", "LOGICAL") or "PHYSICAL"
        cmd.lsn = p.lsn()
        if cmd.kind == "PHYSICAL":
            if p.keyword("TIMELINE"):
                cmd.timeline = p.number()
        else:
            cmd.options = p.options()
    p.end()
    return cmd


# -- a script of pgoutput messages -------------------------------------------------------


class ScriptBuilder:
    """Lays ``pgoutput`` messages out on WAL locations, as a publisher would.

    Each change takes ``step`` bytes of WAL.  :meth:`transaction` wraps
    changes in Begin and Commit, :meth:`streamed` in Stream Start / Stop
    blocks and a Stream Commit or Abort, :meth:`prepared` in Begin Prepare
    and Prepare, with every LSN field filled in.  The XLogData locations
    follow what PostgreSQL 18 sends: a Begin carries the transaction's first
    location, each change its own, the Commit the transaction's end;
    Relation and Type messages carry 0/0.
    """

    def __init__(self, start: LSN, *, step: int = 0x28, xid: int = 1000) -> None:
        self.lsn = start
        self.step = step
        self._xids = itertools.count(xid)
        self.time = Timestamp.now()

    def _next(self) -> LSN:
        lsn = self.lsn
        self.lsn = lsn + self.step
        return lsn

    def _at(self, msg: PgOutputMessage) -> tuple[LSN, PgOutputMessage]:
        if isinstance(msg, (Relation, TypeMessage)):
            return LSN(0), msg
        return self._next(), msg

    def xid(self) -> int:
        """A new transaction id."""
        return next(self._xids)

    def transaction(
        self, changes: Sequence[PgOutputMessage], *, xid: int | None = None
    ) -> Transaction:
        """Begin, ``changes``, Commit."""
        xid = self.xid() if xid is None else xid
        first = self.lsn
        body = [self._at(m) for m in changes]
        commit_lsn = self._next()
        end = self.lsn
        begin = Begin(commit_lsn, self.time, xid)
        commit = Commit(commit_lsn, end, self.time)
        return Transaction(((first, begin), *body, (end, commit)), end)

    def streamed(
        self,
        xid: int,
        blocks: Sequence[Sequence[PgOutputMessage]],
        *,
        end: Literal["commit", "abort", "prepare"] = "commit",
        gid: str = "",
        parallel: bool = False,
    ) -> Transaction:
        """A large transaction streamed in ``blocks`` (each change carries
        ``xid``), then Stream Commit, Stream Abort (with the abort's LSN and
        time when ``parallel``) or Stream Prepare (``gid``)."""
        body: list[tuple[LSN, PgOutputMessage]] = []
        for i, block in enumerate(blocks):
            body.append((self.lsn, StreamStart(xid, first_segment=i == 0)))
            body.extend(self._at(m) for m in block)
            body.append((self.lsn, StreamStop()))
        at = self._next()
        final = self.lsn
        last: PgOutputMessage
        if end == "commit":
            last = StreamCommit(xid, at, final, self.time)
        elif end == "prepare":
            last = StreamPrepare(at, final, self.time, xid, gid)
        elif parallel:
            last = StreamAbort(xid, xid, at, self.time)
        else:
            last = StreamAbort(xid, xid)
        body.append((final, last))
        return Transaction(tuple(body), final)

    def prepared(self, changes: Sequence[PgOutputMessage], gid: str) -> Transaction:
        """Begin Prepare, ``changes``, Prepare (PREPARE TRANSACTION ``gid``)."""
        xid = self.xid()
        first = self.lsn
        body = [self._at(m) for m in changes]
        prepare_lsn = self._next()
        end = self.lsn
        begin = BeginPrepare(prepare_lsn, end, self.time, xid, gid)
        prepare = Prepare(prepare_lsn, end, self.time, xid, gid)
        return Transaction(((first, begin), *body, (end, prepare)), end)

    def commit_prepared(self, prepared: Transaction) -> Transaction:
        """COMMIT PREPARED of a :meth:`prepared` (or streamed and prepared)
        transaction."""
        xid, gid, _ = _prepared_of(prepared)
        at = self._next()
        msg = CommitPrepared(at, self.lsn, self.time, xid, gid)
        return Transaction(((self.lsn, msg),), self.lsn)

    def rollback_prepared(self, prepared: Transaction) -> Transaction:
        """ROLLBACK PREPARED of a :meth:`prepared` (or streamed and
        prepared) transaction."""
        xid, gid, when = _prepared_of(prepared)
        self._next()
        msg = RollbackPrepared(prepared.end_lsn, self.lsn, when, self.time, xid, gid)
        return Transaction(((self.lsn, msg),), self.lsn)

    def message(self, prefix: str, content: bytes) -> Transaction:
        """A non-transactional logical decoding message."""
        at = self._next()
        return Transaction(((at, LogicalMessage(False, at, prefix, content)),), self.lsn)


def _prepared_of(prepared: Transaction) -> tuple[int, str, Timestamp]:
    """The xid, GID and prepare time of a prepared transaction."""
    last = prepared.messages[-1][1]
    if not isinstance(last, (Prepare, StreamPrepare)):
        raise ValueError("not a prepared transaction")
    return last.xid, last.gid, last.time


# -- one connection ------------------------------------------------------------------------


class _ClientGone(Exception):
    """The client closed the connection or ended the session."""


class Session:
    """The server side of one replication connection (its own thread)."""

    def __init__(self, server: Walsender, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number
        self.conn = BackendConnection()
        self.startup: StartupMessage | None = None
        #: Every message received and sent, in order.
        self.received: list[PGMessage] = []
        self.sent: list[PGMessage] = []
        self.conn.observe(self._record)
        #: The options of the last START_REPLICATION, as parsed.
        self.start_options: dict[str, str | None] = {}
        self.done = threading.Event()
        #: The highest flush location the client reported.
        self.flushed = LSN(0)
        self._out = bytearray()
        self._pending: list[PGMessage] = []

    def _record(self, sender: object, msg: PGMessage, size: int) -> None:
        (self.sent if sender is self.conn.state_machine.mine else self.received).append(msg)

    @property
    def mode(self) -> str:
        """The ``replication`` startup parameter (``database``, ``true``)."""
        return self.startup.params.get("replication", "") if self.startup else ""

    @property
    def logical(self) -> bool:
        return self.mode.lower() == "database"

    @property
    def application_name(self) -> str:
        return self.startup.params.get("application_name", "") if self.startup else ""

    # -- I/O -----------------------------------------------------------------
    def send(self, msg: PGMessage) -> None:
        self._out += self.conn.send(msg)

    def flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            self.sock.sendall(data)

    def _read(self, timeout: float | None) -> bool:
        """Read what arrived within ``timeout`` into the pending messages;
        False if nothing did."""
        if timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return False
        data = self.sock.recv(65536)
        if not data:
            raise _ClientGone
        self._pending.extend(self.conn.receive(data))
        return True

    def next_message(self) -> PGMessage:
        self.flush()
        while not self._pending:
            self._read(None)
        return self._pending.pop(0)

    # -- the conversation ---------------------------------------------------
    def run(self) -> None:
        try:
            if self._startup():
                self._serve()
        except _ClientGone:
            pass
        finally:
            with contextlib.suppress(OSError):
                self.flush()
            self.done.set()

    def _startup(self) -> bool:
        while True:
            msg = self.next_message()
            if isinstance(msg, SSLRequest):
                self.send(SSLResponse.NOT_SUPPORTED)
            elif isinstance(msg, GSSEncRequest):
                self.send(GSSEncResponse.NOT_SUPPORTED)
            elif isinstance(msg, CancelRequest):
                return False
            elif isinstance(msg, StartupMessage):
                self.startup = msg
                break
            else:
                return False
        server = self.server
        if self.mode.lower() not in ("database", "true", "on", "yes", "1"):
            self.send(
                ErrorResponse(
                    fields={
                        "S": "FATAL",
                        "V": "FATAL",
                        "C": "08P01",
                        "M": "this server only accepts replication connections",
                    }
                )
            )
            return False
        encoding = "UTF8" if self.logical else "SQL_ASCII"
        self.send(AuthenticationOk())
        params = {
            "in_hot_standby": "off",
            "integer_datetimes": "on",
            "TimeZone": "UTC",
            "IntervalStyle": "postgres",
            "search_path": '"$user", public',
            "is_superuser": "off",
            "application_name": self.application_name,
            "default_transaction_read_only": "off",
            "scram_iterations": "4096",
            "DateStyle": "ISO, MDY",
            "standard_conforming_strings": "on",
            "session_authorization": self.startup.params.get("user", ""),
            "client_encoding": encoding,
            "server_version": server.server_version,
            "server_encoding": encoding,
        }
        for name, value in params.items():
            self.send(ParameterStatus(name=name, value=value))
        self.send(BackendKeyData(process_id=4000 + self.number, secret_key=b"\x00\x01\x02\x03"))
        self.send(ReadyForQuery(status=TransactionStatus.IDLE))
        return True

    def _serve(self) -> None:
        while True:
            msg = self.next_message()
            if isinstance(msg, Terminate):
                return
            if not isinstance(msg, Query):
                self.send(SqlError("08P01", f"unexpected {type(msg).__name__}").to_message())
                self.send(ReadyForQuery(status=TransactionStatus.IDLE))
                continue
            self.server._note_command(self, msg.query_string)
            try:
                self._query(msg.query_string)
            except SqlError as exc:
                self.send(exc.to_message())
            self.send(ReadyForQuery(status=TransactionStatus.IDLE))

    def _result(self, result: Result, default_tag: str) -> None:
        if result.columns:
            self.send(
                RowDescription(
                    fields=[
                        FieldDescription(name=c.name, type_oid=c.type_oid, type_size=c.type_size)
                        for c in result.columns
                    ]
                )
            )
            for row in result.rows:
                self.send(DataRow(columns=[None if v is None else v.encode() for v in row]))
        self.send(CommandComplete(tag=result.tag or default_tag))

    def _query(self, text: str) -> None:
        server = self.server
        cmd = parse_command(text)
        if cmd is None:
            if not self.logical:
                raise SqlError(
                    "0A000", "cannot execute SQL commands in WAL sender for physical replication"
                )
            self._sql(text)
            return
        name = cmd.name
        if name == "IDENTIFY_SYSTEM":
            columns = [
                Column("systemid"),
                Column("timeline", Oid.INT8, 8),
                Column("xlogpos"),
                Column("dbname"),
            ]
            dbname = self.startup.params.get("database") if self.startup and self.logical else None
            ident = [server.system_id, str(server.timeline), str(server.xlogpos), dbname]
            self._result(Result(columns, [ident]), name)
        elif name == "SHOW":
            assert cmd.setting is not None
            value = server.settings.get(cmd.setting)
            if value is None:
                raise SqlError("42704", f'unrecognized configuration parameter "{cmd.setting}"')
            self._result(Result([Column(cmd.setting)], [[value]]), "SHOW")
        elif name == "TIMELINE_HISTORY":
            assert cmd.timeline is not None
            content = server.history.get(cmd.timeline)
            filename = f"{cmd.timeline:08X}.history"
            if content is None:
                raise SqlError(
                    "58P01", f'could not open file "pg_wal/{filename}": No such file or directory'
                )
            self._result(
                Result([Column("filename"), Column("content")], [[filename, content]]), name
            )
        elif name == "CREATE_REPLICATION_SLOT":
            self._create_slot(cmd)
        elif name == "READ_REPLICATION_SLOT":
            assert cmd.slot is not None
            slot = server.slots.get(cmd.slot)
            columns = [
                Column("slot_type"),
                Column("restart_lsn"),
                Column("restart_tli", Oid.INT8, 8),
            ]
            if slot is None:
                row: list[_Value] = [None, None, None]
            elif slot.kind == "logical":
                raise SqlError(
                    "0A000", "cannot use READ_REPLICATION_SLOT with a logical replication slot"
                )
            else:
                restart = slot.restart_lsn
                row = [
                    "physical",
                    str(restart) if restart else None,
                    str(server.timeline) if restart else None,
                ]
            self._result(Result(columns, [row]), name)
        elif name == "DROP_REPLICATION_SLOT":
            assert cmd.slot is not None
            with server.lock:
                if server.slots.pop(cmd.slot, None) is None:
                    raise SqlError("42704", f'replication slot "{cmd.slot}" does not exist')
                server.changed.notify_all()
            self._result(Result(), name)
        elif name == "ALTER_REPLICATION_SLOT":
            assert cmd.slot is not None
            slot = server.slots.get(cmd.slot)
            if slot is None:
                raise SqlError("42704", f'replication slot "{cmd.slot}" does not exist')
            if "two_phase" in cmd.options:
                slot.two_phase = _true(cmd.options["two_phase"])
            self._result(Result(), name)
        elif name == "START_REPLICATION":
            if cmd.kind == "LOGICAL":
                self._start_logical(cmd)
            else:
                self._start_physical(cmd)
        else:
            raise SqlError("0A000", f"{name} is not served here")

    def _sql(self, text: str) -> None:
        server = self.server
        norm = " ".join(text.split()).rstrip(";").strip()
        if norm.lower() == "select pg_catalog.set_config('search_path', '', false)":
            self._result(Result([Column("set_config")], [[""]], "SELECT 1"), "SELECT 1")
            self.send(ParameterStatus(name="search_path", value=""))
            return
        result = server.sql(text) if server.sql is not None else None
        if result is None:
            with server.lock:
                server.unanswered.append(text)
            raise SqlError("42601", f"the walsender does not answer: {norm[:200]}")
        rows = len(result.rows)
        self._result(result, f"SELECT {rows}")

    def _create_slot(self, cmd: Command) -> None:
        server = self.server
        assert cmd.slot is not None
        assert cmd.kind is not None
        logical = cmd.kind == "LOGICAL"
        if logical and not self.logical:
            raise SqlError("0A000", "logical decoding requires a database connection")
        with server.lock:
            if cmd.slot in server.slots:
                raise SqlError("42710", f'replication slot "{cmd.slot}" already exists')
            slot = Slot(
                cmd.slot,
                "logical" if logical else "physical",
                plugin=cmd.plugin,
                two_phase=_true(cmd.options.get("two_phase", "false"))
                if "two_phase" in cmd.options
                else False,
                temporary=cmd.temporary,
                options=dict(cmd.options),
            )
            if logical:
                slot.restart_lsn = slot.confirmed_flush = server.xlogpos
            elif "reserve_wal" in cmd.options:
                slot.restart_lsn = server.xlogpos
            server.slots[cmd.slot] = slot
            server.changed.notify_all()
        point = str(server.xlogpos) if logical else "0/0"
        columns = [
            Column(n) for n in ("slot_name", "consistent_point", "snapshot_name", "output_plugin")
        ]
        self._result(Result(columns, [[cmd.slot, point, None, cmd.plugin]]), cmd.name)

    # -- streaming ------------------------------------------------------------
    def _start_logical(self, cmd: Command) -> None:
        server = self.server
        name, requested = cmd.slot, cmd.lsn
        assert name is not None
        assert requested is not None
        if not self.logical:
            raise SqlError("0A000", "logical decoding requires a database connection")
        slot = server.slots.get(name)
        if slot is None or slot.kind != "logical":
            raise SqlError("42704", f'replication slot "{name}" does not exist')
        options = cmd.options
        self.start_options = dict(options)
        version, streaming = _pgoutput_options(options) if slot.plugin == "pgoutput" else (1, "off")
        parallel = streaming == "parallel"
        outside = PgOutputContext(version, False, parallel)
        inside = PgOutputContext(version, True, parallel) if version >= 2 else outside
        start = max(requested, slot.confirmed_flush)
        sent = 0  # transactions of the stream already looked at
        schemas = _Schemas()

        def more() -> list[XLogData]:
            nonlocal sent
            stream = server.stream(name)
            out: list[XLogData] = []
            for txn in stream[sent:]:
                # Confirmed before (a restart): skipped, but its schema is known.
                skip = txn.end_lsn <= start
                ctx, xid = outside, None
                for lsn, msg in txn.messages:
                    schemas.learn(msg)
                    if skip:
                        continue
                    # The messages of a stream block carry their xid.
                    if isinstance(msg, StreamStart):
                        data, ctx, xid = msg.encode(outside), inside, msg.xid
                    elif isinstance(msg, StreamStop):
                        data, ctx, xid = msg.encode(inside), outside, None
                    else:
                        for extra in schemas.before(msg, xid):
                            out.append(XLogData(_ZERO, _ZERO, Timestamp.now(), extra.encode(ctx)))
                        data = msg.encode(ctx)
                    out.append(XLogData(lsn, lsn, Timestamp.now(), data))
            sent = len(stream)
            return out

        def wal_end() -> LSN:
            return max([start, *(t.end_lsn for t in server.stream(name))])

        self._copy_both(slot, more, wal_end, logical=True)

    def _start_physical(self, cmd: Command) -> None:
        server = self.server
        requested = cmd.lsn
        assert requested is not None
        slot = None
        if cmd.slot is not None:
            slot = server.slots.get(cmd.slot)
            if slot is None:
                raise SqlError("42704", f'replication slot "{cmd.slot}" does not exist')
            if slot.kind != "physical":
                raise SqlError(
                    "55000", "cannot use a logical replication slot for physical replication"
                )
        if cmd.timeline is not None and cmd.timeline != server.timeline:
            raise SqlError(
                "58P01", f"requested timeline {cmd.timeline} is not in this server's history"
            )
        wal = server.wal
        if wal is None or not wal.start <= requested <= wal.end:
            raise SqlError(
                "58P01",
                f"requested starting point {requested} is not in the WAL this server has",
            )
        done = False

        def more() -> list[XLogData | PrimaryKeepalive]:
            nonlocal done
            if done:
                return []
            done = True
            out: list[XLogData | PrimaryKeepalive] = []
            every = server.reply_every
            for pos in range(int(requested), int(wal.end), MAX_SEND_SIZE):
                chunk = wal.data[pos - wal.start : pos - wal.start + MAX_SEND_SIZE]
                out.append(XLogData(LSN(pos), wal.end, Timestamp.now(), chunk))
                end = pos + len(chunk)
                if every and end % every == 0 and end < wal.end:
                    out.append(PrimaryKeepalive(LSN(end), Timestamp.now(), True))
            return out

        self._copy_both(slot, more, lambda: wal.end, logical=False)

    def _copy_both(
        self,
        slot: Slot | None,
        more: Callable[[], Sequence[XLogData | PrimaryKeepalive]],
        wal_end: Callable[[], LSN],
        *,
        logical: bool,
    ) -> None:
        """COPY BOTH: the data as it comes, keepalives in between, until the
        client's CopyDone."""
        server = self.server
        self.send(CopyBothResponse(overall_format=0, col_formats=[]))
        self.flush()
        client_done = False
        next_keepalive = 0.0
        while not client_done:
            for i, msg in enumerate(more()):
                self.send(msg.copy_data())
                if i % 16 == 15:  # read what the client said meanwhile
                    self.flush()
                    client_done = self._drain(slot, 0.0) or client_done
            self.flush()
            now = time.monotonic()
            if not client_done and now >= next_keepalive:
                end = wal_end()
                with server.lock:
                    confirmed = slot.confirmed_flush if slot and logical else self.flushed
                self.send(PrimaryKeepalive(end, Timestamp.now(), confirmed < end).copy_data())
                self.flush()
                next_keepalive = now + server.keepalive_interval
            if not client_done:
                wait = min(max(next_keepalive - time.monotonic(), 0.0), 0.05)
                client_done = self._drain(slot, wait)
            if server.stopping:
                raise _ClientGone
        # The client ended the COPY: answer as PostgreSQL 18 does.
        self.send(CopyDone())
        self.send(CommandComplete(tag="COPY 0" if logical else "START_STREAMING"))
        self.send(CommandComplete(tag="START_REPLICATION"))

    def _drain(self, slot: Slot | None, timeout: float) -> bool:
        """Take in what the client sent; True once it sent CopyDone."""
        done = False
        while self._read(timeout):
            timeout = 0.0
        pending, self._pending = self._pending, []
        for msg in pending:
            if isinstance(msg, CopyDone):
                done = True
            elif isinstance(msg, CopyData):
                self._feedback(slot, msg.data)
            elif isinstance(msg, Terminate):  # a subscriber's worker that is told to stop
                raise _ClientGone
            else:  # pragma: no cover - the state machine refuses anything else in COPY
                raise AssertionError(f"unexpected {msg!r} during COPY BOTH")
        return done

    def _feedback(self, slot: Slot | None, data: bytes) -> None:
        server = self.server
        msg = STREAMING.decode(data)
        with server.lock:
            if isinstance(msg, StandbyStatusUpdate):
                report = StatusReport(self.number, slot.name if slot else None, msg)
                server.status_updates.append(report)
                self.flushed = max(self.flushed, msg.flush)
                if slot is not None and slot.kind == "logical":
                    slot.confirmed_flush = max(slot.confirmed_flush, msg.flush)
                elif slot is not None and msg.flush:
                    slot.restart_lsn = max(slot.restart_lsn, msg.flush)
            elif isinstance(msg, HotStandbyFeedback):
                server.feedback.append(msg)
            else:
                raise AssertionError(f"a client sent {msg!r}")
            server.changed.notify_all()


class _Schemas:
    """What pgoutput's ``maybe_send_schema`` does: a relation (with the
    Type messages of the non-built-in types it uses) is described on each
    connection before its first change, and again inside each streamed
    transaction, whose changes a parallel apply worker may apply with a
    relation map of its own.  A script's own Relation messages count as
    sent; the ones a connection never saw are sent again."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.types: dict[int, TypeMessage] = {}
        #: Relation ids and type OIDs described, per streamed xid (None:
        #: outside any stream).
        self.sent: dict[int | None, set[tuple[str, int]]] = {}

    def learn(self, msg: PgOutputMessage) -> None:
        if isinstance(msg, Relation):
            self.relations[msg.relation_id] = msg
        elif isinstance(msg, TypeMessage):
            self.types[msg.type_oid] = msg

    def before(self, msg: PgOutputMessage, xid: int | None) -> list[PgOutputMessage]:
        """What must go out before ``msg``."""
        sent = self.sent.setdefault(xid, set())
        if isinstance(msg, Relation):
            sent.add(("r", msg.relation_id))
            return []
        if isinstance(msg, TypeMessage):
            sent.add(("t", msg.type_oid))
            return []
        if isinstance(msg, (Insert, Update, Delete)):
            ids = [msg.relation_id]
        elif isinstance(msg, Truncate):
            ids = list(msg.relation_ids)
        else:
            return []
        out: list[PgOutputMessage] = []
        for rel_id in ids:
            rel = self.relations.get(rel_id)
            if rel is None or ("r", rel_id) in sent:
                continue
            for col in rel.columns:
                typ = self.types.get(col.type_oid)
                if typ is not None and ("t", typ.type_oid) not in sent:
                    out.append(dataclasses.replace(typ, xid=xid))
                    sent.add(("t", typ.type_oid))
            out.append(dataclasses.replace(rel, xid=xid))
            sent.add(("r", rel_id))
        return out


def _pgoutput_options(options: Mapping[str, str | None]) -> tuple[int, str]:
    """The protocol version and streaming mode, refused as pgoutput refuses
    them (``pgoutput_startup``)."""
    raw = options.get("proto_version")
    if raw is None:
        raise SqlError("22023", 'option "proto_version" missing')
    if "publication_names" not in options:
        raise SqlError("22023", 'option "publication_names" missing')
    version = int(raw)
    if version > 4:
        raise SqlError(
            "0A000",
            f"client sent proto_version={version} but server only supports protocol 4 or lower",
        )
    streaming = (options.get("streaming") or "off").lower()
    if streaming in ("on", "true") and version < 2:
        raise SqlError(
            "0A000",
            f"requested proto_version={version} does not support streaming, need 2 or higher",
        )
    if streaming == "parallel" and version < 4:
        raise SqlError(
            "0A000",
            f"requested proto_version={version} does not support parallel streaming, "
            "need 4 or higher",
        )
    if _true(options.get("two_phase", "off")) and version < 3:
        raise SqlError(
            "0A000",
            f"requested proto_version={version} does not support two-phase commit, "
            "need 3 or higher",
        )
    return version, streaming


def _true(value: str | None) -> bool:
    return value is None or value.lower() in ("true", "on", "yes", "1")


# -- the server -------------------------------------------------------------------------------


class Walsender(LoopbackServer):
    """A replication server on 127.0.0.1 (use as a context manager).

    ``wal`` is served to physical consumers; ``xlogpos`` (the WAL flush
    location IDENTIFY_SYSTEM reports) defaults to its end.  Logical streams
    are per slot: :meth:`publish` appends transactions.  ``settings`` answer
    SHOW; ``history`` TIMELINE_HISTORY (timeline -> file content); ``sql``
    answers plain SQL.  ``keepalive_interval`` is the time between
    keepalives once everything is sent; with ``reply_every`` a physical
    stream also asks for a reply each time that many bytes of WAL (from
    0/0) have gone out, while it is still sending.
    """

    thread_name = "walsender"

    def __init__(
        self,
        *,
        system_id: str = "7390000000000000001",
        timeline: int = 1,
        xlogpos: LSN | None = None,
        wal: WalRange | None = None,
        wal_segment_size: str = "16MB",
        history: Mapping[int, str] | None = None,
        server_version: str = "18.0",
        sql: SqlHandler | None = None,
        keepalive_interval: float = 0.2,
        reply_every: int | None = None,
    ) -> None:
        super().__init__()
        self.system_id = system_id
        self.timeline = timeline
        self.wal = wal
        default_pos = wal.end if wal is not None else LSN("0/3000000")
        self.xlogpos = xlogpos if xlogpos is not None else default_pos
        self.settings: dict[str, str] = {
            "wal_segment_size": wal_segment_size,
            "data_directory_mode": "0700",
            "server_version": server_version,
            "wal_level": "logical",
        }
        self.history = dict(history or {})
        self.server_version = server_version
        self.sql = sql
        self.keepalive_interval = keepalive_interval
        self.reply_every = reply_every
        #: Guards everything below; ``changed`` is notified on every change.
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.slots: dict[str, Slot] = {}
        self.streams: dict[str, list[Transaction]] = {}
        self.sessions: list[Session] = []
        #: (session number, query text) of every Query, in order.
        self.commands: list[tuple[int, str]] = []
        self.unanswered: list[str] = []
        self.status_updates: list[StatusReport] = []
        self.feedback: list[HotStandbyFeedback] = []
        self._numbers = itertools.count(1)

    # -- what tests use --------------------------------------------------------
    def create_slot(self, name: str, kind: Literal["physical", "logical"] = "logical") -> Slot:
        with self.lock:
            slot = Slot(name, kind, plugin="pgoutput" if kind == "logical" else None)
            slot.restart_lsn = slot.confirmed_flush = self.xlogpos if kind == "logical" else LSN(0)
            self.slots[name] = slot
            return slot

    def publish(self, slot: str, *transactions: Transaction) -> None:
        """Append to ``slot``'s stream (a connected consumer gets them too)."""
        with self.lock:
            self.streams.setdefault(slot, []).extend(transactions)
            self.changed.notify_all()

    def stream(self, slot: str) -> list[Transaction]:
        with self.lock:
            return list(self.streams.get(slot, ()))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``predicate()`` (checked under the lock) holds."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                self.check()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"walsender: {what} not seen within {timeout:g}s")
                self.changed.wait(min(left, 0.1))

    def queries(self) -> list[str]:
        with self.lock:
            return [text for _, text in self.commands]

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def check(self) -> None:
        """Raise the first error a session thread met."""
        with self._lock:
            errors = list(self.errors)
        if errors:
            raise AssertionError(f"walsender errors: {errors!r}") from errors[0]

    def _note_command(self, session: Session, text: str) -> None:
        with self.lock:
            self.commands.append((session.number, text))
            self.changed.notify_all()

    # -- connections (LoopbackServer) -----------------------------------------------
    def _accepted(self, sock: socket.socket) -> None:
        session = Session(self, sock, next(self._numbers))
        with self._lock:
            self.sessions.append(session)
        self._start_thread(
            self._recording(lambda: self._serve(session)), f"walsender-{session.number}"
        )

    def _serve(self, session: Session) -> None:
        try:
            session.run()
        finally:
            session.sock.close()

    def _break_connections(self) -> None:
        with self._lock:
            sessions = list(self.sessions)
        for session in sessions:
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RDWR)
