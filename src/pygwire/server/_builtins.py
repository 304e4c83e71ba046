"""Statements the session answers itself, before a handler's ``query``.

Drivers send statements of their own that have little to do with the data
a server serves: transaction control, ``SET``/``SHOW``/``RESET`` of session
settings, ``DISCARD ALL`` and ``DEALLOCATE`` from connection pools,
``LISTEN``/``NOTIFY``, and cursors (``DECLARE``/``FETCH``/``MOVE``/
``CLOSE``, which psycopg's server-side cursors use).  :func:`run_builtin`
answers them as PostgreSQL does, calling the handler's ``begin``,
``commit`` and ``rollback`` hooks and its ``execute`` for a cursor's query;
:func:`describe_builtin` says what they return.  Anything else is
:data:`NOT_BUILTIN`, and goes to the handler's ``query``.

Cursors scan forward only (``FETCH NEXT``, ``FORWARD n``, ``ALL``).
Settings that change how values are written on the wire take only what
the codecs write (:func:`checked_setting`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..constants import TransactionStatus
from ..sql import Token, tokens
from ._errors import SQLError, SQLState
from ._portal import Portal
from ._results import Column, Description, Outcome, Result, Row, Statement

if TYPE_CHECKING:
    from ._handler import Handler
    from ._session import Session

__all__ = [
    "NOT_BUILTIN",
    "NotBuiltin",
    "checked_setting",
    "describe_builtin",
    "is_transaction_exit",
    "run_builtin",
    "startup_settings",
]


class NotBuiltin(enum.Enum):
    """The type of :data:`NOT_BUILTIN`."""

    NOT_BUILTIN = "not a built-in statement"


#: Returned by :func:`run_builtin` for statements it does not answer.
NOT_BUILTIN = NotBuiltin.NOT_BUILTIN

_IDLE = TransactionStatus.IDLE
_IN = TransactionStatus.IN_TRANSACTION
_FAILED = TransactionStatus.ERROR_TRANSACTION


class _Words:
    """A statement's tokens, with helpers to read them in order."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens: list[Token] = tokens(sql)
        self.pos = 0

    def text(self, tok: Token) -> str:
        return self.sql[tok.start : tok.end]

    def peek(self, offset: int = 0) -> str:
        """The word at the cursor, lower-cased ("" past the end or for a non-word)."""
        at = self.pos + offset
        if at >= len(self.tokens) or self.tokens[at].kind != "word":
            return ""
        return self.text(self.tokens[at]).lower()

    def accept(self, *words: str) -> str:
        """Consume the next word if it is one of ``words``; return it or ""."""
        word = self.peek()
        if word and word in words:
            self.pos += 1
            return word
        return ""

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def name(self) -> str:
        """An identifier: a word (lower-cased) or a quoted identifier."""
        if self.at_end():
            raise _syntax(self, "a name")
        tok = self.tokens[self.pos]
        self.pos += 1
        text = self.text(tok)
        if tok.kind == "word":
            return text.lower()
        if tok.kind == "ident":
            return text[1:-1].replace('""', '"')
        raise _syntax(self, "a name", tok)

    def dotted_name(self) -> str:
        """A setting's name: a name, or prefix.name for a custom one."""
        name = self.name()
        while self.punct("."):
            name += "." + self.name()
        return name

    def value(self) -> str:
        """A setting's value: a quoted string, a word or a (signed) number."""
        if self.at_end():
            raise _syntax(self, "a value")
        tok = self.tokens[self.pos]
        text = self.text(tok)
        self.pos += 1
        if tok.kind == "string":
            return _unquote(text)
        if tok.kind in ("word", "number"):
            return text
        if tok.kind == "ident":
            return text[1:-1].replace('""', '"')
        if text in "+-" and self.pos < len(self.tokens):
            nxt = self.tokens[self.pos]
            if nxt.kind == "number":
                self.pos += 1
                return text + self.text(nxt)
        raise _syntax(self, "a value", tok)

    def punct(self, char: str) -> bool:
        if self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            if tok.kind == "other" and self.text(tok) == char:
                self.pos += 1
                return True
        return False

    def rest(self) -> str:
        """The text from the cursor to the end."""
        if self.at_end():
            return ""
        return self.sql[self.tokens[self.pos].start :].strip()


# PostgreSQL's escapes in E'...' strings (the "String Constants With
# C-Style Escapes" section): \ooo and \xhh are bytes, \uXXXX and
# \UXXXXXXXX code points; any other character stands for itself.
_E_ESCAPE = re.compile(
    r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([uU])|(.))",
    re.DOTALL,
)
_E_LETTERS = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _e_string(body: str) -> str:
    out = bytearray()
    pos = 0
    for match in _E_ESCAPE.finditer(body):
        out += body[pos : match.start()].encode("utf-8")
        pos = match.end()
        octal, hexa, short, long, bad, other = match.groups()
        if octal is not None or hexa is not None:
            out.append(int(octal, 8) & 0xFF if octal is not None else int(hexa, 16))
        elif bad is not None:
            raise SQLError(
                SQLState.INVALID_ESCAPE_SEQUENCE,
                "invalid Unicode escape",
                hint="Unicode escapes must be \\uXXXX or \\UXXXXXXXX.",
            )
        elif short is not None or long is not None:
            code = int(short if short is not None else long, 16)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise SQLError(SQLState.INVALID_ESCAPE_SEQUENCE, "invalid Unicode escape value")
            out += chr(code).encode("utf-8")
        else:
            out += _E_LETTERS.get(other, other).encode("utf-8")
    out += body[pos:].encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise SQLError(
            SQLState.CHARACTER_NOT_IN_REPERTOIRE, 'invalid byte sequence for encoding "UTF8"'
        ) from None


def _unquote(text: str) -> str:
    if text[:1] in "eE":
        return _e_string(text[2:-1].replace("''", "'"))
    return text[1:-1].replace("''", "'")


def _count(words: _Words) -> int:
    """A FETCH or MOVE count: an integer (42601 for anything else)."""
    tok = words.tokens[words.pos] if not words.at_end() else None
    if tok is None or tok.kind != "number" or not words.text(tok).isdigit():
        raise _syntax(words, "a row count", tok)
    words.pos += 1
    return int(words.text(tok))


def _syntax(words: _Words, expected: str, tok: Token | None = None) -> SQLError:
    if tok is None:
        return SQLError(
            SQLState.SYNTAX_ERROR, f"syntax error at end of input (expected {expected})"
        )
    return SQLError(
        SQLState.SYNTAX_ERROR,
        f'syntax error at or near "{words.text(tok)}"',
        position=tok.start + 1,
    )


_UTF8_NAMES = frozenset({"utf8", "unicode"})
_DATE_ORDERS = {
    "mdy": "MDY", "us": "MDY", "noneuro": "MDY", "noneuropean": "MDY",
    "dmy": "DMY", "euro": "DMY", "european": "DMY", "ymd": "YMD",
}  # fmt: skip


def _bad_value(name: str, value: str, detail: str) -> SQLError:
    return SQLError(
        SQLState.INVALID_PARAMETER_VALUE,
        f'invalid value for parameter "{name}": "{value}"',
        detail=detail,
    )


def checked_setting(session: Session, name: str, value: str) -> str:
    """``value`` as a SET of ``name`` stores it; 22023 for a client_encoding,
    DateStyle or IntervalStyle other than what the value codecs write (UTF8,
    or SQL_ASCII, which takes the bytes unconverted; ISO; postgres): the
    client would read values in a format they are not in.  A handler with
    ``any_settings`` takes any value as given."""
    key = name.lower()
    handler = session.handler
    if handler is not None and handler.any_settings:
        return value
    if key == "client_encoding":
        # Encoding names compare as PostgreSQL compares them: letters and
        # digits only, in any case (asyncpg sends 'utf-8', quotes included).
        clean = "".join(c for c in value.lower() if c.isalnum())
        if clean == "sqlascii":  # no conversion: the bytes as they are, as PostgreSQL
            return "SQL_ASCII"
        if clean not in _UTF8_NAMES:
            raise _bad_value(name, value, "Only UTF8 is supported.")
        return "UTF8"
    if key == "datestyle":
        # As PostgreSQL: a style and an order, either one keeps the other.
        current = session.parameter("DateStyle") or "ISO, MDY"
        order = current.split(",")[-1].strip() if "," in current else "MDY"
        for word in value.replace(",", " ").split():
            word = word.lower()
            if word in _DATE_ORDERS:
                order = _DATE_ORDERS[word]
            elif word != "iso":
                raise _bad_value("DateStyle", value, "Only ISO output is supported.")
        return f"ISO, {order}"
    if key == "intervalstyle":
        if value.lower() != "postgres":
            raise _bad_value("IntervalStyle", value, "Only postgres output is supported.")
        return "postgres"
    return value


#: Startup packet entries that are not run-time parameters.
_STARTUP_ONLY = frozenset({"user", "database", "options", "replication"})


def startup_settings(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """The run-time parameters a startup packet sets, as PostgreSQL takes
    them: every entry but user, database, replication and ``_pq_.``
    options, then the ``-c name=value`` and ``--name=value`` switches of
    ``options`` (separated by spaces; a backslash keeps the next character)."""
    settings = [
        (name, value)
        for name, value in params.items()
        if name not in _STARTUP_ONLY and not name.startswith("_pq_.")
    ]
    words = [
        re.sub(r"\\(.)", r"\1", word)
        for word in re.findall(r"(?:\\.|[^\s\\])+", params.get("options", ""))
    ]
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "-c" and i < len(words):
            setting = words[i]
            i += 1
        elif word.startswith("-c") and len(word) > 2:
            setting = word[2:]
        elif word.startswith("--") and len(word) > 2:
            setting = word[2:].replace("-", "_")
        else:
            raise SQLError(
                SQLState.SYNTAX_ERROR, f"invalid command-line argument for server process: {word}"
            )
        name, equals, value = setting.partition("=")
        if not equals:
            raise SQLError(SQLState.SYNTAX_ERROR, f"-c {name} requires a value")
        settings.append((name.replace("-", "_"), value))
    return settings


def is_transaction_exit(statement: Statement) -> bool:
    """True for what may run in a failed transaction: COMMIT, END,
    ROLLBACK, ABORT (also ROLLBACK TO SAVEPOINT)."""
    return statement.keyword in ("COMMIT", "END", "ROLLBACK", "ABORT")


# -- running -------------------------------------------------------------------------------


async def run_builtin(handler: Handler, statement: Statement) -> Outcome | NotBuiltin:
    """Answer ``statement`` if it is one of the built-in statements."""
    keyword = statement.keyword
    session = handler.session
    if keyword in ("BEGIN", "START"):
        if keyword == "START" and _Words(statement.sql).peek(1) != "transaction":
            return NOT_BUILTIN
        return await _begin(handler, session)
    if keyword in ("COMMIT", "END", "ROLLBACK", "ABORT"):
        words = _Words(statement.sql)
        words.pos = 1
        if keyword == "ROLLBACK" and words.peek() in ("to", "prepared"):
            return await _rollback_to(handler, session, statement)
        if keyword == "COMMIT" and words.peek() == "prepared":
            return NOT_BUILTIN
        return await _finish(handler, session, commit=keyword in ("COMMIT", "END"))
    if keyword == "SET":
        return _set(session, _Words(statement.sql))
    if keyword == "RESET":
        return _reset(session, _Words(statement.sql))
    if keyword == "SHOW":
        return _show(session, _Words(statement.sql))
    if keyword == "DISCARD":
        return await _discard(session, _Words(statement.sql))
    if keyword == "DEALLOCATE":
        return _deallocate(session, _Words(statement.sql))
    if keyword in ("LISTEN", "UNLISTEN", "NOTIFY"):
        return _listen(session, _Words(statement.sql), keyword)
    if keyword == "DECLARE":
        return await _declare(handler, session, statement)
    if keyword in ("FETCH", "MOVE"):
        return await _fetch(session, _Words(statement.sql), move=keyword == "MOVE")
    if keyword == "CLOSE":
        return await _close(session, _Words(statement.sql))
    return NOT_BUILTIN


async def _begin(handler: Handler, session: Session) -> Outcome:
    if session.transaction_status is not _IDLE:
        session.notice(
            SQLState.ACTIVE_SQL_TRANSACTION, "there is already a transaction in progress"
        )
        return "BEGIN"
    if not session.adopt_implicit_transaction():
        await handler.begin()
    session.begin_transaction()
    return "BEGIN"


async def _finish(handler: Handler, session: Session, *, commit: bool) -> Outcome:
    status = session.transaction_status
    if status is _IDLE:
        session.notice(SQLState.NO_ACTIVE_SQL_TRANSACTION, "there is no transaction in progress")
        return "COMMIT" if commit else "ROLLBACK"
    committed = commit and status is _IN
    try:
        if committed:
            await handler.commit()
        else:
            await handler.rollback()
    finally:
        # Whatever the hook did, the transaction block is over.
        await session.end_transaction(committed=committed)
    return "COMMIT" if committed else "ROLLBACK"


async def _rollback_to(handler: Handler, session: Session, statement: Statement) -> Outcome:
    outcome = await handler.query(statement.sql, statement.params)
    if session.transaction_status is _FAILED:
        session.transaction_status = _IN
    return outcome if outcome is not None else "ROLLBACK"


def _set(session: Session, words: _Words) -> Outcome:
    words.pos = 1
    local = words.accept("session", "local") == "local"
    first = words.peek()
    if first in ("transaction", "constraints"):
        return "SET" if first == "transaction" else "SET CONSTRAINTS"
    if first in ("session", "characteristics"):
        return "SET"
    if first == "time" and words.peek(1) == "zone":
        words.pos += 2
        name = "timezone"
    elif first == "names":
        words.pos += 1
        name = "client_encoding"
    elif first == "schema":
        words.pos += 1
        name = "search_path"
    else:
        name = words.dotted_name()
        if not (words.accept("to") or words.punct("=")):
            raise _syntax(words, "TO or =", words.tokens[words.pos] if not words.at_end() else None)
    if words.peek() == "default" or (words.peek() == "local" and name == "timezone"):
        value = None
    else:
        values = [words.value()]
        while words.punct(","):
            values.append(words.value())
        if not words.at_end():
            raise _syntax(words, "the end of the statement", words.tokens[words.pos])
        value = checked_setting(session, name, ", ".join(values))
    if local:
        if session.transaction_status is _IDLE:
            session.notice(
                SQLState.NO_ACTIVE_SQL_TRANSACTION,
                "SET LOCAL can only be used in transaction blocks",
                severity="WARNING",
            )
            return "SET"
        session.set_local(name)
    if value is None:
        session.reset_parameter(name)
    else:
        session.set_parameter(name, value)
    return "SET"


def _reset(session: Session, words: _Words) -> Outcome:
    words.pos = 1
    if words.accept("all"):
        session.reset_parameter(None)
    elif words.peek() == "time" and words.peek(1) == "zone":
        session.reset_parameter("timezone")
    elif words.peek() == "session" and words.peek(1) == "authorization":
        pass
    else:
        name = words.dotted_name()
        session.reset_parameter(name)
    return "RESET"


def _show(session: Session, words: _Words) -> Outcome:
    words.pos = 1
    if words.accept("all"):
        rows = [(name, value, "") for name, value in sorted(session.parameters.items())]
        return Result([Column("name"), Column("setting"), Column("description")], rows, tag="SHOW")
    time_zone = words.peek() == "time" and words.peek(1) == "zone"
    name = "timezone" if time_zone else words.dotted_name()
    value = session.parameter(name)
    if value is None:
        raise SQLError(SQLState.UNDEFINED_OBJECT, f'unrecognized configuration parameter "{name}"')
    return Result([Column(session.parameter_name(name))], [(value,)], tag="SHOW")


async def _discard(session: Session, words: _Words) -> Outcome:
    words.pos = 1
    what = words.name()
    if what == "all":
        if session.transaction_status is not _IDLE:
            raise SQLError(
                SQLState.ACTIVE_SQL_TRANSACTION, "DISCARD ALL cannot run inside a transaction block"
            )
        await session.close_portal(None)
        session.deallocate(None)
        session.unlisten(None)
        session.reset_parameter(None)
        return "DISCARD ALL"
    if what in ("plans", "sequences", "temp", "temporary"):
        return f"DISCARD {what.upper() if what != 'temporary' else 'TEMP'}"
    raise SQLError(SQLState.SYNTAX_ERROR, f'syntax error at or near "{what}"')


def _deallocate(session: Session, words: _Words) -> Outcome:
    words.pos = 1
    words.accept("prepare")
    if words.accept("all"):
        session.deallocate(None)
        return "DEALLOCATE ALL"
    session.deallocate(words.name())
    return "DEALLOCATE"


def _listen(session: Session, words: _Words, keyword: str) -> Outcome:
    words.pos = 1
    if keyword == "UNLISTEN":
        if words.punct("*"):
            session.unlisten(None)
        else:
            session.unlisten(words.name())
        return "UNLISTEN"
    channel = words.name()
    if keyword == "LISTEN":
        session.listen(channel)
        return "LISTEN"
    payload = ""
    if words.punct(","):
        payload = words.value()
    session.queue_notification(channel, payload)
    return "NOTIFY"


# -- cursors -------------------------------------------------------------------------------


async def _declare(handler: Handler, session: Session, statement: Statement) -> Outcome:
    words = _Words(statement.sql)
    words.pos = 1
    name = words.name()
    hold = False
    while not words.accept("cursor"):
        word = words.accept("binary", "asensitive", "insensitive", "no", "scroll")
        if not word:
            raise _syntax(words, "CURSOR", words.tokens[words.pos] if not words.at_end() else None)
        if word == "binary":
            raise SQLError(SQLState.FEATURE_NOT_SUPPORTED, "BINARY cursors are not supported")
    if words.accept("with"):
        words.accept("hold")
        hold = True
    elif words.accept("without"):
        words.accept("hold")
    if not words.accept("for"):
        raise _syntax(words, "FOR", words.tokens[words.pos] if not words.at_end() else None)
    if not hold and session.transaction_status is _IDLE:
        raise SQLError(
            SQLState.NO_ACTIVE_SQL_TRANSACTION,
            "DECLARE CURSOR can only be used in transaction blocks",
        )
    if session.has_portal(name):
        raise SQLError(SQLState.DUPLICATE_CURSOR, f'cursor "{name}" already exists')
    query = Statement(words.rest(), statement.params, statement.param_types)
    outcome = await handler.execute(query)
    if not isinstance(outcome, Result):
        raise SQLError(
            SQLState.INVALID_CURSOR_DEFINITION,
            f"cannot open {query.keyword or 'this'} query as cursor",
        )
    portal = Portal(name, query.sql, query.params, query.param_types, cursor=True, hold=hold)
    await portal.start(outcome, query.keyword)
    session.add_cursor(portal)
    return "DECLARE CURSOR"


def _fetch_count(words: _Words) -> int | None:
    """How many rows a FETCH or MOVE moves forward (None: all)."""
    word = words.accept(
        "next", "forward", "all", "prior", "first", "last", "absolute", "relative", "backward"
    )
    if word in ("prior", "first", "last", "absolute", "relative", "backward"):
        raise SQLError(
            SQLState.OBJECT_NOT_IN_PREREQUISITE_STATE,
            "cursor can only scan forward",
            hint="Declare it with SCROLL option to enable backward scan.",
        )
    if word == "all":
        return None
    count = 1
    if word in ("", "forward"):
        if word == "forward" and words.accept("all"):
            return None
        tok = words.tokens[words.pos] if not words.at_end() else None
        if tok is not None and tok.kind == "number":
            count = _count(words)
        elif tok is not None and tok.kind == "other" and words.text(tok) in "+-":
            sign = words.text(tok)
            words.pos += 1
            value = _count(words)
            count = -value if sign == "-" else value
    if count < 0:
        raise SQLError(SQLState.OBJECT_NOT_IN_PREREQUISITE_STATE, "cursor can only scan forward")
    return count


async def _fetch(session: Session, words: _Words, *, move: bool) -> Outcome:
    words.pos = 1
    count = _fetch_count(words)
    words.accept("from", "in")
    portal = session.cursor(words.name())
    rows: list[Row] = []
    source = portal.source
    if source is not None and not portal.done:
        if count is None:
            while batch := await source.take(1000):
                rows += batch
        elif count:
            rows += await source.take(count)
        if source.exhausted:
            portal.done = True
    portal.position += len(rows)
    tag = f"{'MOVE' if move else 'FETCH'} {len(rows)}"
    if move:
        return tag
    assert portal.columns is not None
    return Result(portal.columns, rows, tag=tag)


async def _close(session: Session, words: _Words) -> Outcome:
    words.pos = 1
    if words.accept("all"):
        await session.close_portal(None, cursors_only=True)
        return "CLOSE CURSOR ALL"
    name = words.name()
    session.cursor(name)  # 34000 if there is none
    await session.close_portal(name)
    return "CLOSE CURSOR"


# -- describing ---------------------------------------------------------------------------


def describe_builtin(session: Session, statement: Statement) -> Description | None:
    """What a built-in statement returns, without running it; None for a
    statement that is not built in (or a DECLARE, whose query decides)."""
    keyword = statement.keyword
    if keyword == "SHOW":
        words = _Words(statement.sql)
        words.pos = 1
        if words.accept("all"):
            return Description([Column("name"), Column("setting"), Column("description")])
        name = "timezone" if words.peek() == "time" else words.name()
        return Description([Column(session.parameter_name(name))])
    if keyword == "FETCH":
        words = _Words(statement.sql)
        words.pos = 1
        _fetch_count(words)
        words.accept("from", "in")
        portal = session.cursor(words.name())
        return Description(portal.columns)
    if keyword in (
        "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SET", "RESET", "DISCARD",
        "DEALLOCATE", "LISTEN", "UNLISTEN", "NOTIFY", "MOVE", "CLOSE", "DECLARE",
    ):  # fmt: skip
        if keyword == "ROLLBACK" and _Words(statement.sql).peek(1) in ("to", "prepared"):
            return None
        if keyword == "START" and _Words(statement.sql).peek(1) != "transaction":
            return None
        return Description(None)
    return None
