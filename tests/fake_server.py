"""A small PostgreSQL-compatible server for tests, built on pygwire alone.

:class:`FakeServer` listens on 127.0.0.1 at a free port, runs one thread per
client connection and speaks enough of the protocol for real drivers
(libpq/psycopg, asyncpg, pg8000) to connect, run a few canned statements
through the simple and the extended query protocol, see errors and
disconnect.  Every message in both directions goes through a
:class:`pygwire.BackendConnection` in strict mode, so the state machine
validates the whole conversation: a driver that does something the state
machine rejects (or a bug in pygwire) shows up in :attr:`FakeServer.errors`.

It is a test helper, not a database: statements are looked up in a small
table (:data:`CANNED`, plus the transaction and ``SET``/``SHOW`` style
commands drivers send on their own), and anything else is an error.

Authentication is pluggable (:class:`AuthMethod`); the one provided,
:class:`PygwireAuth`, is :class:`pygwire.auth.ServerAuthenticator` with a
table of users (:class:`Role`: a ``pg_hba.conf`` method and what
``pg_authid`` would store), so what real clients prove is the library's own
trust, password, md5 and SCRAM-SHA-256(-PLUS) code.

TLS (:class:`ServerTLS`) is optional: with it the server answers SSLRequest
with ``S`` and accepts direct SSL (PostgreSQL 17+, ALPN ``postgresql``).
The TLS layer runs on memory BIOs over the session's socket, so the bytes
of a direct-SSL ClientHello that the decoder already read (handed over in
:class:`pygwire.messages.DirectSSLHandshake`) go to it unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Protocol

from harness.postgres import make_self_signed_certificate

from loopback import HOST, LoopbackServer
from pygwire import BackendConnection, TransactionStatus
from pygwire.auth import AuthMethod as MethodName
from pygwire.auth import ServerAuthenticator, error_response
from pygwire.exceptions import AuthenticationError
from pygwire.messages import (
    BackendKeyData,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    DataRow,
    Describe,
    DirectSSLHandshake,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    FieldDescription,
    Flush,
    FrontendMessage,
    GSSEncRequest,
    GSSEncResponse,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PGMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
    Terminate,
)

__all__ = [
    "BOOL",
    "CANNED",
    "HOST",
    "INT2",
    "INT4",
    "INT8",
    "PEOPLE",
    "TEXT",
    "AuthMethod",
    "AuthenticationFailed",
    "CannedResult",
    "Column",
    "FakeServer",
    "FakeSession",
    "PygwireAuth",
    "Role",
    "ServerTLS",
    "SqlError",
]


# Type OIDs (pg_type.oid) of the types this server knows.
BOOL = 16
INT8 = 20
INT2 = 21
INT4 = 23
TEXT = 25
UNKNOWN = 705
VOID = 2278
VARCHAR = 1043

_TYPE_NAMES = {"bool": BOOL, "int8": INT8, "int2": INT2, "int4": INT4, "text": TEXT}
_INT_SIZES = {INT2: 2, INT4: 4, INT8: 8}
_TYPE_SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, TEXT: -1, VARCHAR: -1, UNKNOWN: -2, VOID: 4}

Value = bool | int | str | None
Row = tuple[Value, ...]

#: The one table this server has: id int4, name text, active bool, score int8.
PEOPLE: tuple[Row, ...] = (
    (1, "alice", True, 10_000_000_000),
    (2, "bob", False, -5),
    (3, "carol", True, 0),
)


# --------------------------------------------------------------------------
# Values


class SqlError(Exception):
    """An error reported to the client as an ErrorResponse."""

    def __init__(self, code: str, message: str, *, position: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.position = position

    def to_message(self, severity: str = "ERROR") -> ErrorResponse:
        fields = {"S": severity, "V": severity, "C": self.code, "M": self.message}
        if self.position is not None:
            fields["P"] = str(self.position)
        return ErrorResponse(fields=fields)


def encode_value(value: Value, type_oid: int, fmt: int) -> bytes | None:
    """``value`` in the wire format ``fmt`` (0 text, 1 binary) of ``type_oid``."""
    if value is None:
        return None
    if type_oid == BOOL:
        if fmt:
            return b"\x01" if value else b"\x00"
        return b"t" if value else b"f"
    if type_oid in _INT_SIZES:
        assert isinstance(value, int)
        if fmt:
            return int(value).to_bytes(_INT_SIZES[type_oid], "big", signed=True)
        return str(int(value)).encode()
    return str(value).encode()


def decode_value(data: bytes | None, type_oid: int, fmt: int) -> Value:
    """The Python value of a parameter sent as ``data`` in format ``fmt``."""
    if data is None:
        return None
    if type_oid == BOOL:
        if fmt:
            if len(data) != 1:
                raise SqlError("08P01", "incorrect binary data format in bind parameter")
            return data != b"\x00"
        text = data.decode().strip().lower()
        if text in ("t", "true", "on", "yes", "1"):
            return True
        if text in ("f", "false", "off", "no", "0"):
            return False
        raise SqlError("22P02", f'invalid input syntax for type boolean: "{data.decode()}"')
    if type_oid in _INT_SIZES:
        if fmt:
            if len(data) != _INT_SIZES[type_oid]:
                raise SqlError("08P01", "incorrect binary data format in bind parameter")
            return int.from_bytes(data, "big", signed=True)
        try:
            return int(data.decode())
        except ValueError:
            raise SqlError(
                "22P02", f'invalid input syntax for type integer: "{data.decode()}"'
            ) from None
    return data.decode()


def _formats(codes: Sequence[int], count: int, what: str) -> list[int]:
    """Expand a format-code list (none, one for all, or one each) to ``count``."""
    if not codes:
        return [0] * count
    if len(codes) == 1:
        return [codes[0]] * count
    if len(codes) == count:
        return list(codes)
    raise SqlError("08P01", f"bind message has {len(codes)} {what} formats but {count} {what}s")


# --------------------------------------------------------------------------
# Statements


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int


@dataclass(frozen=True)
class CannedResult:
    """What a statement returns: columns (none for a command), rows, tag."""

    columns: tuple[Column, ...] = ()
    rows: tuple[Row, ...] = ()
    tag: str = ""


#: Runs a statement for a session with its bound parameter values.
Runner = Callable[["FakeSession", Sequence[Value]], CannedResult]


@dataclass(frozen=True)
class Statement:
    """A statement the server understood: parameter types, columns, how to run it."""

    sql: str
    param_types: tuple[int, ...]
    columns: tuple[Column, ...]
    run: Runner
    transaction_control: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.sql


def _rows(result: CannedResult) -> Runner:
    return lambda session, params: result


def _select(columns: Sequence[Column], rows: Sequence[Row]) -> CannedResult:
    return CannedResult(tuple(columns), tuple(rows), f"SELECT {len(rows)}")


_PEOPLE_COLUMNS = (
    Column("id", INT4),
    Column("name", TEXT),
    Column("active", BOOL),
    Column("score", INT8),
)

#: Normalized SQL (lower case, single spaces, no trailing semicolon) ->
#: (parameter types, result).  Extend with ``FakeServer(canned=...)``.
CANNED: dict[str, tuple[tuple[int, ...], CannedResult]] = {
    "select * from people": ((), _select(_PEOPLE_COLUMNS, PEOPLE)),
    "select id, name, active, score from people order by id": (
        (),
        _select(_PEOPLE_COLUMNS, PEOPLE),
    ),
    "select id, name from people order by id": (
        (),
        _select(_PEOPLE_COLUMNS[:2], [row[:2] for row in PEOPLE]),
    ),
    # Part of asyncpg's pool reset query.
    "select pg_advisory_unlock_all()": (
        (),
        _select([Column("pg_advisory_unlock_all", VOID)], [("",)]),
    ),
}

_SPACES = re.compile(r"\s+")
_SELECT_INT = re.compile(r"select (-?\d+)(?: as (\w+))?")
# select $1::int4, $2::text ...: echoes its parameters, typed by their casts.
_ECHO_ITEM = re.compile(r"\$(\d+)::(\w+)")
_ECHO = re.compile(r"select \$\d+::\w+(?:, \$\d+::\w+)*")
_PERSON_BY_ID = re.compile(r"select (name|id, name, active, score) from people where id = \$1")
_FROM = re.compile(r"\bfrom\s+([a-z_][\w.]*)")


def normalize(sql: str) -> str:
    return _SPACES.sub(" ", sql.strip()).rstrip(";").strip().lower()


def split_statements(query: str) -> list[str]:
    """Split a simple query at semicolons (canned SQL has none in literals)."""
    return [part for part in (p.strip() for p in query.split(";")) if part]


def _setting_name(name: str) -> str:
    return name.strip().strip('"').lower()


# Settings reported with ParameterStatus when they change, and their
# canonical spelling.
_REPORTED = {
    name.lower(): name
    for name in (
        "application_name",
        "client_encoding",
        "DateStyle",
        "default_transaction_read_only",
        "in_hot_standby",
        "integer_datetimes",
        "IntervalStyle",
        "is_superuser",
        "scram_iterations",
        "search_path",
        "server_encoding",
        "server_version",
        "session_authorization",
        "standard_conforming_strings",
        "TimeZone",
    )
}


def _utility(session: FakeSession, sql: str) -> Statement | None:
    """Transaction control and the SET/SHOW style commands drivers send."""
    words = sql.split()
    verb = words[0]
    status = session.status

    def command(tag: str, action: Callable[[], None] | None = None) -> Runner:
        def run(s: FakeSession, params: Sequence[Value]) -> CannedResult:
            if action is not None:
                action()
            return CannedResult(tag=tag)

        return run

    def stmt(run: Runner, columns: tuple[Column, ...] = (), tc: bool = False) -> Statement:
        return Statement(sql, (), columns, run, transaction_control=tc)

    if verb == "begin" or sql.startswith("start transaction"):

        def begin() -> None:
            if session.status is not TransactionStatus.IDLE:
                session.notice("25001", "there is already a transaction in progress")
            else:
                session.status = TransactionStatus.IN_TRANSACTION

        return stmt(command("BEGIN", begin), tc=True)
    if verb in ("commit", "end", "rollback", "abort"):
        failed = verb in ("rollback", "abort") or status is TransactionStatus.ERROR_TRANSACTION

        def finish() -> None:
            if session.status is TransactionStatus.IDLE:
                session.notice("25P01", "there is no transaction in progress")
            session.status = TransactionStatus.IDLE

        return stmt(command("ROLLBACK" if failed else "COMMIT", finish), tc=True)
    if verb == "set":
        match = re.fullmatch(r"set (?:session |local )?([\w.\"]+)\s*(?:=|to)\s*(.+)", sql)
        if match is None:
            return None
        name = _setting_name(match.group(1))
        value = match.group(2).strip().strip("'")
        return stmt(command("SET", lambda: session.set_parameter(name, value)))
    if verb == "reset":
        return stmt(command("RESET"))
    if verb == "show" and len(words) == 2:
        name = _setting_name(words[1])
        if name not in session.parameters:
            raise SqlError("42704", f'unrecognized configuration parameter "{words[1]}"')
        value = session.parameters[name]
        column = (Column(_REPORTED.get(name, name), TEXT),)
        return stmt(_rows(_select(column, [(value,)])), column)
    simple_tags = {
        "listen": "LISTEN",
        "unlisten": "UNLISTEN",
        "notify": "NOTIFY",
        "discard": "DISCARD ALL",
        "deallocate": "DEALLOCATE",
    }
    if verb in simple_tags:
        return stmt(command(simple_tags[verb]))
    if sql == "close all":
        return stmt(command("CLOSE CURSOR ALL"))
    return None


def resolve(
    session: FakeSession,
    sql: str,
    canned: Mapping[str, tuple[tuple[int, ...], CannedResult]],
) -> Statement:
    """Understand one statement, or raise the SqlError PostgreSQL would."""
    norm = normalize(sql)
    if not norm:
        return Statement("", (), (), _rows(CannedResult()))
    utility = _utility(session, norm)
    if utility is not None:
        if session.status is TransactionStatus.ERROR_TRANSACTION and not (
            utility.transaction_control
        ):
            raise _aborted()
        return utility
    if session.status is TransactionStatus.ERROR_TRANSACTION:
        raise _aborted()
    if norm in canned:
        types, result = canned[norm]
        return Statement(norm, types, result.columns, _rows(result))
    if match := _SELECT_INT.fullmatch(norm):
        number = int(match.group(1))
        column = (Column(match.group(2) or "?column?", INT4 if abs(number) < 2**31 else INT8),)
        return Statement(norm, (), column, _rows(_select(column, [(number,)])))
    if _ECHO.fullmatch(norm):
        items = _ECHO_ITEM.findall(norm)
        if any(name not in _TYPE_NAMES for _, name in items):
            raise SqlError("42704", "type does not exist")
        count = max(int(n) for n, _ in items)
        param_types = [0] * count
        for n, name in items:
            param_types[int(n) - 1] = _TYPE_NAMES[name]
        columns = tuple(Column(name, _TYPE_NAMES[name]) for _, name in items)
        order = [int(n) - 1 for n, _ in items]

        def echo(s: FakeSession, params: Sequence[Value]) -> CannedResult:
            return _select(columns, [tuple(params[i] for i in order)])

        return Statement(norm, tuple(param_types), columns, echo)
    if match := _PERSON_BY_ID.fullmatch(norm):
        width = 1 if match.group(1) == "name" else 4
        offset = 1 if width == 1 else 0
        columns = _PEOPLE_COLUMNS[offset : offset + width]

        def person(s: FakeSession, params: Sequence[Value]) -> CannedResult:
            rows = [row[offset : offset + width] for row in PEOPLE if row[0] == params[0]]
            return _select(columns, rows)

        return Statement(norm, (INT4,), columns, person)
    if match := _FROM.search(norm):
        name = match.group(1)
        raise SqlError("42P01", f'relation "{name}" does not exist', position=match.start(1) + 1)
    first = sql.split(maxsplit=1)[0]
    raise SqlError("42601", f'syntax error at or near "{first}"', position=1)


def _aborted() -> SqlError:
    return SqlError(
        "25P02", "current transaction is aborted, commands ignored until end of transaction block"
    )


# --------------------------------------------------------------------------
# Authentication


class AuthenticationFailed(Exception):
    """Raised by an AuthMethod after it has sent the FATAL ErrorResponse."""


class AuthMethod(Protocol):
    """One authentication exchange.

    ``authenticate`` runs after the StartupMessage (and any protocol
    negotiation): it sends requests with ``session.send``, reads the
    client's replies with ``session.read_message()`` and ends by sending
    AuthenticationOk, or by calling ``session.reject(...)`` (which sends a
    FATAL ErrorResponse and raises :class:`AuthenticationFailed`).
    """

    def authenticate(self, session: FakeSession) -> None: ...


@dataclass(frozen=True)
class Role:
    """A user the server knows: its ``pg_hba.conf`` method and its secret.

    ``secret`` is what ``pg_authid.rolpassword`` would hold: a plain
    password, an ``md5`` hash (:func:`pygwire.auth.md5_stored`) or a SCRAM
    verifier (``str(ScramVerifier.from_password(...))``); None for none.
    """

    method: MethodName
    secret: str | None = None


@dataclass
class PygwireAuth:
    """Authentication by :class:`pygwire.auth.ServerAuthenticator`.

    ``roles`` are the known users; any other user is asked for
    ``default_method`` (the ``all`` line of ``pg_hba.conf``) with no stored
    secret, so it fails exactly as a wrong password does (trust lets it in).
    ``mock_secret`` is passed on (see :class:`pygwire.auth.ScramServer`).
    On failure the session gets :func:`pygwire.auth.error_response` (FATAL,
    PostgreSQL's SQLSTATE) and the error is kept in ``session.auth_error``.
    """

    roles: Mapping[str, Role] = field(default_factory=dict)
    default_method: MethodName = "trust"
    mock_secret: bytes = b""

    def authenticate(self, session: FakeSession) -> None:
        role = self.roles.get(session.user, Role(self.default_method))
        authenticator = ServerAuthenticator(
            role.method,
            session.user,
            role.secret,
            tls_certificate=session.tls_certificate,
            mock_secret=self.mock_secret,
        )
        session.authenticator = authenticator
        try:
            answers = authenticator.start()
            while True:
                for answer in answers:
                    session.send(answer)
                if authenticator.authenticated:
                    return
                reply = session.read_message()
                # The BackendConnection decodes nothing else.
                assert isinstance(reply, FrontendMessage), reply
                answers = authenticator.handle(reply)
        except AuthenticationError as exc:
            session.auth_error = exc
            session.send(error_response(exc))
            session.flush()
            raise AuthenticationFailed(exc.message) from exc


#: Everyone is let in.
TRUST = PygwireAuth()


# --------------------------------------------------------------------------
# TLS


@dataclass(frozen=True)
class ServerTLS:
    """The server's certificate and key (PEM files)."""

    certfile: Path
    keyfile: Path

    @classmethod
    def self_signed(cls, directory: Path) -> ServerTLS:
        """A new self-signed certificate for 127.0.0.1 and localhost, made
        with the ``openssl`` command; the certificate is its own CA."""
        cert, key = make_self_signed_certificate(directory, use_openssl=True)
        return cls(cert, key)

    @property
    def der(self) -> bytes:
        """The certificate in DER, as channel binding hashes it."""
        return ssl.PEM_cert_to_DER_cert(self.certfile.read_text())

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # PostgreSQL's default
        context.load_cert_chain(self.certfile, self.keyfile)
        context.set_alpn_protocols(["postgresql"])
        return context


class _TLSLayer:
    """A server-side TLS connection on memory BIOs over a plain socket.

    ``received`` are ciphertext bytes already read from the socket (the
    start of a direct-SSL ClientHello); the rest is read as needed.
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, received: bytes) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._incoming.write(received)
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    def _write_out(self) -> None:
        data = self._outgoing.read()
        if data:
            self.sock.sendall(data)

    def _read_in(self) -> bool:
        """Read ciphertext into the BIO; False at end of stream."""
        data = self.sock.recv(65536)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._write_out()
                if not self._read_in():
                    raise _ClientGone from None
        self._write_out()

    def recv(self) -> bytes:
        """Plaintext; b"" once the client closed the connection."""
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._write_out()
                if not self._read_in():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self._write_out()

    def close(self) -> None:
        """Send close_notify (as PostgreSQL's SSL_shutdown) if still possible."""
        with contextlib.suppress(ssl.SSLError, OSError):
            self.tls.unwrap()
        with contextlib.suppress(OSError):
            self._write_out()


# --------------------------------------------------------------------------
# One client connection


class _ClientGone(Exception):
    """The client closed the connection."""


@dataclass
class _Prepared:
    statement: Statement
    param_types: tuple[int, ...]


@dataclass
class _Portal:
    statement: Statement
    params: list[Value]
    result_formats: list[int]
    result: CannedResult | None = None
    position: int = 0


@dataclass
class _SessionLog:
    received: list[PGMessage] = field(default_factory=list)
    sent: list[PGMessage] = field(default_factory=list)


class FakeSession:
    """The server side of one client connection, run by its own thread."""

    def __init__(self, server: FakeServer, sock: socket.socket, process_id: int) -> None:
        self.server = server
        self.sock = sock
        self.conn = BackendConnection()
        self.process_id = process_id
        self.secret_key = b""
        self.startup: StartupMessage | None = None
        self.cancel_request: CancelRequest | None = None
        #: Protocol version in force (after any negotiation).
        self.protocol_version = 0
        #: Every message received and sent, in order.
        self.log = _SessionLog()
        self.saw_terminate = False
        #: The authentication exchange, and the error that ended it if any.
        self.authenticator: ServerAuthenticator | None = None
        self.auth_error: AuthenticationError | None = None
        #: The server's DER certificate once the session runs over TLS.
        self.tls_certificate: bytes | None = None
        #: True for direct SSL, False after SSLRequest, None without TLS.
        self.direct_tls: bool | None = None
        self.alpn_protocol: str | None = None
        self.parameters: dict[str, str] = {}
        self.status = TransactionStatus.IDLE
        self.done = threading.Event()
        self._tls: _TLSLayer | None = None
        self._out = bytearray()
        self._messages = self._message_stream()
        self._statements: dict[str, _Prepared] = {}
        self._portals: dict[str, _Portal] = {}
        self._skipping = False
        self._changed: list[str] = []

    @property
    def user(self) -> str:
        return self.startup.params.get("user", "") if self.startup else ""

    # -- I/O ----------------------------------------------------------------
    def send(self, msg: PGMessage) -> None:
        """Validate and encode ``msg``; it goes out at the next flush."""
        self._out += self.conn.send(msg)
        self.log.sent.append(msg)

    def flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            if self._tls is not None:
                self._tls.sendall(data)
            else:
                self.sock.sendall(data)

    def _recv(self) -> bytes:
        return self._tls.recv() if self._tls is not None else self.sock.recv(65536)

    def _message_stream(self) -> Iterator[PGMessage]:
        # Messages are decoded one at a time, each after the replies to the
        # previous one were sent, so the decoder's framing always follows
        # the phase both sides agree on.
        while True:
            self.flush()
            data = self._recv()
            if not data:
                return
            for msg in self.conn.receive(data):
                self.log.received.append(msg)
                yield msg

    def read_message(self) -> PGMessage:
        """The client's next message; raises _ClientGone at end of stream."""
        msg = next(self._messages, None)
        if msg is None:
            raise _ClientGone
        return msg

    def reject(self, code: str, message: str) -> NoReturn:
        """Refuse the session with a FATAL error and stop."""
        self.send(SqlError(code, message).to_message("FATAL"))
        self.flush()
        raise AuthenticationFailed(message)

    def notice(self, code: str, message: str, severity: str = "WARNING") -> None:
        self.send(NoticeResponse(fields={"S": severity, "V": severity, "C": code, "M": message}))

    def set_parameter(self, name: str, value: str) -> None:
        self.parameters[name] = value
        if name in _REPORTED:
            self._changed.append(name)

    # -- the conversation ---------------------------------------------------
    def run(self) -> None:
        try:
            if self._startup():
                self._serve()
        except (_ClientGone, AuthenticationFailed):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.flush()
            if self._tls is not None:
                self._tls.close()
            self.done.set()

    def _startup(self) -> bool:
        """Encryption negotiation, startup, authentication; False if the session ends."""
        while True:
            msg = self.read_message()
            if isinstance(msg, SSLRequest):
                if self.server.tls is None or self._tls is not None:
                    self.send(SSLResponse.NOT_SUPPORTED)
                else:
                    self.send(SSLResponse.SUPPORTED)
                    self.flush()
                    self._start_tls(b"", direct=False)
            elif isinstance(msg, DirectSSLHandshake):
                # Without TLS PostgreSQL closes the connection (so does a
                # direct-SSL client that did not ask for ALPN postgresql).
                if self.server.tls is None or not self._start_tls(msg.data, direct=True):
                    return False
            elif isinstance(msg, GSSEncRequest):
                self.send(GSSEncResponse.NOT_SUPPORTED)
            elif isinstance(msg, CancelRequest):
                self.cancel_request = msg
                self.server._cancelled(msg)
                return False
            elif isinstance(msg, StartupMessage):
                self.startup = msg
                break
            else:  # pragma: no cover - the state machine refuses anything else
                raise AssertionError(f"unexpected {msg!r} at startup")
        self._negotiate(self.startup)
        self.server.auth.authenticate(self)
        params = self.startup.params
        self.parameters = {
            "server_version": self.server.server_version,
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "datestyle": "ISO, MDY",
            "intervalstyle": "postgres",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
            "timezone": "UTC",
            "is_superuser": "off",
            "session_authorization": self.user,
            "application_name": params.get("application_name", ""),
            "default_transaction_read_only": "off",
            "in_hot_standby": "off",
            "scram_iterations": "4096",
            "search_path": '"$user", public',
            "transaction_isolation": "read committed",
        }
        for name in sorted(_REPORTED):
            if name in self.parameters:
                self.send(ParameterStatus(name=_REPORTED[name], value=self.parameters[name]))
        key_size = 32 if self.protocol_version >= 0x00030002 else 4
        self.secret_key = secrets.token_bytes(key_size)
        self.send(BackendKeyData(process_id=self.process_id, secret_key=self.secret_key))
        self.send(ReadyForQuery(status=self.status))
        return True

    def _start_tls(self, received: bytes, *, direct: bool) -> bool:
        """TLS handshake; False if a direct-SSL client did not select ALPN."""
        assert self.server.tls_context is not None
        self._tls = _TLSLayer(self.sock, self.server.tls_context, received)
        self._tls.handshake()
        self.alpn_protocol = self._tls.tls.selected_alpn_protocol()
        if direct and self.alpn_protocol != "postgresql":
            return False
        self.direct_tls = direct
        self.tls_certificate = self.server.tls_certificate
        return True

    def _negotiate(self, startup: StartupMessage) -> None:
        requested = startup.protocol_version
        newest = self.server.newest_minor
        minor = min(requested & 0xFFFF, newest)
        unrecognized = [name for name in startup.params if name.startswith("_pq_.")]
        if (requested & 0xFFFF) > newest or unrecognized:
            self.send(NegotiateProtocolVersion(newest_minor=minor, unrecognized=unrecognized))
        self.protocol_version = (3 << 16) | minor

    def _serve(self) -> None:
        while True:
            msg = self.read_message()
            if isinstance(msg, Terminate):
                self.saw_terminate = True
                return
            if isinstance(msg, Query):
                self._simple_query(msg)
            else:
                self._extended(msg)

    # -- simple query -------------------------------------------------------
    def _simple_query(self, msg: Query) -> None:
        statements = split_statements(msg.query_string)
        if not statements:
            self.send(EmptyQueryResponse())
        for sql in statements:
            try:
                stmt = resolve(self, sql, self.server.canned)
                self._send_result(stmt, stmt.run(self, []), [0] * len(stmt.columns), describe=True)
            except SqlError as exc:
                self._error(exc)
                break
        self.send(ReadyForQuery(status=self.status))

    def _send_result(
        self,
        stmt: Statement,
        result: CannedResult,
        formats: list[int],
        *,
        describe: bool,
        start: int = 0,
        max_rows: int = 0,
    ) -> int:
        """Send rows ``start``... (at most ``max_rows``) and the completion; the new start."""
        columns = result.columns
        if describe and columns:
            self.send(RowDescription(fields=_fields(columns, formats)))
        end = len(result.rows) if max_rows <= 0 else min(len(result.rows), start + max_rows)
        for row in result.rows[start:end]:
            self.send(
                DataRow(
                    columns=[
                        encode_value(v, c.type_oid, f)
                        for v, c, f in zip(row, columns, formats, strict=True)
                    ]
                )
            )
        if columns and end < len(result.rows):
            self.send(PortalSuspended())
            return end
        tag = result.tag
        if columns and tag.startswith("SELECT "):
            tag = f"SELECT {end - start}"
        self.send(CommandComplete(tag=tag))
        self._report_changes()
        return end

    def _report_changes(self) -> None:
        for name in self._changed:
            self.send(ParameterStatus(name=_REPORTED[name], value=self.parameters[name]))
        self._changed.clear()

    def _error(self, exc: SqlError) -> None:
        self.send(exc.to_message())
        if self.status is TransactionStatus.IN_TRANSACTION:
            self.status = TransactionStatus.ERROR_TRANSACTION

    # -- extended query -----------------------------------------------------
    def _extended(self, msg: PGMessage) -> None:
        if isinstance(msg, Sync):
            self._skipping = False
            if self.status is TransactionStatus.IDLE:
                self._portals.clear()
            self.send(ReadyForQuery(status=self.status))
            return
        if isinstance(msg, Flush):
            self.flush()
            return
        if self._skipping:
            return
        try:
            if isinstance(msg, Parse):
                self._parse(msg)
            elif isinstance(msg, Bind):
                self._bind(msg)
            elif isinstance(msg, Describe):
                self._describe(msg)
            elif isinstance(msg, Execute):
                self._execute(msg)
            elif isinstance(msg, Close):
                if msg.kind == "S":
                    self._statements.pop(msg.name, None)
                else:
                    self._portals.pop(msg.name, None)
                self.send(CloseComplete())
            else:
                raise SqlError("08P01", f"unexpected message {type(msg).__name__}")
        except SqlError as exc:
            self._error(exc)
            self._skipping = True

    def _parse(self, msg: Parse) -> None:
        if msg.statement and msg.statement in self._statements:
            raise SqlError("42P05", f'prepared statement "{msg.statement}" already exists')
        if len(split_statements(msg.query)) > 1:
            raise SqlError("42601", "cannot insert multiple commands into a prepared statement")
        stmt = resolve(self, msg.query, self.server.canned)
        types = list(stmt.param_types)
        for i, oid in enumerate(msg.param_types):
            if i >= len(types):
                types.append(oid)
            elif oid not in (0, UNKNOWN):
                types[i] = oid
        self._statements[msg.statement] = _Prepared(stmt, tuple(types))
        self.send(ParseComplete())

    def _prepared(self, name: str) -> _Prepared:
        prepared = self._statements.get(name)
        if prepared is None:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        return prepared

    def _portal(self, name: str) -> _Portal:
        portal = self._portals.get(name)
        if portal is None:
            raise SqlError("34000", f'portal "{name}" does not exist')
        return portal

    def _bind(self, msg: Bind) -> None:
        prepared = self._prepared(msg.statement)
        types = prepared.param_types
        if len(msg.param_values) != len(types):
            raise SqlError(
                "08P01",
                f"bind message supplies {len(msg.param_values)} parameters, but prepared "
                f'statement "{msg.statement}" requires {len(types)}',
            )
        formats = _formats(msg.param_formats, len(types), "parameter")
        params = [
            decode_value(v, t, f) for v, t, f in zip(msg.param_values, types, formats, strict=True)
        ]
        result_formats = _formats(
            msg.result_formats, len(prepared.statement.columns), "result column"
        )
        if msg.portal and msg.portal in self._portals:
            raise SqlError("42P03", f'cursor "{msg.portal}" already exists')
        self._portals[msg.portal] = _Portal(prepared.statement, params, result_formats)
        self.send(BindComplete())

    def _describe(self, msg: Describe) -> None:
        if msg.kind == "S":
            prepared = self._prepared(msg.name)
            self.send(ParameterDescription(type_oids=list(prepared.param_types)))
            columns = prepared.statement.columns
            formats = [0] * len(columns)
        else:
            portal = self._portal(msg.name)
            columns = portal.statement.columns
            formats = portal.result_formats
        if columns:
            self.send(RowDescription(fields=_fields(columns, formats)))
        else:
            self.send(NoData())

    def _execute(self, msg: Execute) -> None:
        portal = self._portal(msg.portal)
        stmt = portal.statement
        if stmt.is_empty:
            self.send(EmptyQueryResponse())
            return
        if portal.result is None:
            portal.result = stmt.run(self, portal.params)
        portal.position = self._send_result(
            stmt,
            portal.result,
            portal.result_formats,
            describe=False,
            start=portal.position,
            max_rows=msg.max_rows,
        )


def _fields(columns: Sequence[Column], formats: Sequence[int]) -> list[FieldDescription]:
    return [
        FieldDescription(
            name=c.name,
            type_oid=c.type_oid,
            type_size=_TYPE_SIZES.get(c.type_oid, -1),
            format_code=f,
        )
        for c, f in zip(columns, formats, strict=True)
    ]


# --------------------------------------------------------------------------
# The server


class FakeServer(LoopbackServer):
    """A PostgreSQL-compatible test server on 127.0.0.1 (use as a context manager).

    ``auth`` decides the authentication exchange (trust by default);
    ``tls`` turns TLS on (SSLRequest and direct SSL); ``canned`` adds
    statements to :data:`CANNED`; ``newest_minor`` is the newest protocol
    minor version accepted (2: protocol 3.2).
    """

    def __init__(
        self,
        auth: AuthMethod | None = None,
        *,
        tls: ServerTLS | None = None,
        canned: Mapping[str, tuple[tuple[int, ...], CannedResult]] | None = None,
        newest_minor: int = 2,
        server_version: str = "18.0",
    ) -> None:
        self.auth: AuthMethod = auth if auth is not None else TRUST
        self.tls = tls
        self.tls_context = tls.context() if tls is not None else None
        self.tls_certificate = tls.der if tls is not None else None
        self.canned = {**CANNED, **{normalize(k): v for k, v in (canned or {}).items()}}
        self.newest_minor = newest_minor
        self.server_version = server_version
        super().__init__()
        #: Every connection accepted, in order (cancel requests included).
        self.sessions: list[FakeSession] = []
        #: CancelRequests received, in order.
        self.cancel_requests: list[CancelRequest] = []
        self._pids = itertools.count(4242)

    # -- connections (LoopbackServer) -----------------------------------------
    thread_name = "fake-server"

    def _accepted(self, sock: socket.socket) -> None:
        session = FakeSession(self, sock, next(self._pids))
        with self._lock:
            self.sessions.append(session)
        self._start_thread(
            self._recording(functools.partial(self._serve, session)),
            f"fake-server-{session.process_id}",
        )

    def _break_connections(self) -> None:
        with self._lock:
            sessions = list(self.sessions)
        for session in sessions:
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RDWR)

    def _serve(self, session: FakeSession) -> None:
        try:
            session.run()
        finally:
            session.sock.close()

    def _cancelled(self, request: CancelRequest) -> None:
        with self._lock:
            self.cancel_requests.append(request)

    # -- helpers for tests --------------------------------------------------
    def conninfo(self, user: str = "trust_user", **params: str) -> dict[str, str]:
        return {"host": self.host, "port": str(self.port), "user": user, "dbname": "postgres"} | (
            params
        )

    def dsn(self, user: str = "trust_user", **params: str) -> str:
        return " ".join(f"{k}={v}" for k, v in self.conninfo(user, **params).items())

    def session(self, process_id: int) -> FakeSession:
        """The session that handed out ``process_id`` in its BackendKeyData."""
        with self._lock:
            for session in self.sessions:
                if session.process_id == process_id:
                    return session
        raise LookupError(f"no session with process id {process_id}")

    def wait_closed(self, session: FakeSession, timeout: float = 10.0) -> None:
        if not session.done.wait(timeout):
            raise TimeoutError(f"session {session.process_id} still open after {timeout}s")

    def check(self) -> None:
        """Raise the first error any server thread met."""
        with self._lock:
            errors = list(self.errors)
        if errors:
            raise AssertionError(f"fake server errors: {errors!r}") from errors[0]
