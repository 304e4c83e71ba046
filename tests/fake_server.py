"""A PostgreSQL-compatible test double built on :mod:`pygwire.server`.

:class:`FakeServer` is a :class:`pygwire.server.Server` on a thread of its
own (:class:`~pygwire.server.ServerThread`) that knows one table,
``people``, and a few statements drivers send; everything else about the
conversation (encryption negotiation, startup, authentication, the two
query protocols, transactions, SET/SHOW, cancel requests, Terminate) is
the server toolkit's, so the library's own tests exercise its own server.
Every message both ways passes a strict
:class:`~pygwire.BackendConnection`, and each :class:`FakeSession` keeps a
log of them for the tests to read.

What it answers (after lower-casing and collapsing white space):

* ``select * from people``, ``select id, name, active, score from people
  order by id``, ``select id, name from people order by id``, ``select
  name from people where id = $1`` and ``select id, name, active, score
  from people where id = $1``;
* ``select <integer> [as name]``;
* ``select $1::int4, $2::text, ...``: its parameters, typed by their casts;
* ``select pg_advisory_unlock_all()`` (asyncpg's pool reset);
* any other statement with a ``FROM``: 42P01; anything else: 42601.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from harness.postgres import make_self_signed_certificate

from pygwire import BackendConnection
from pygwire.auth import AuthMethod as MethodName
from pygwire.constants import MessageDirection
from pygwire.messages import CancelRequest, PGMessage
from pygwire.server import (
    Column,
    Description,
    Handler,
    Outcome,
    Result,
    Server,
    ServerThread,
    Session,
    SQLError,
    SQLState,
)
from pygwire.server import Role as ServerRole
from pygwire.types import Oid

__all__ = ["PEOPLE", "FakeServer", "FakeSession", "PygwireAuth", "Role", "ServerTLS"]

Value = bool | int | str | None
Row = tuple[Value, ...]

#: The one table this server has: id int4, name text, active bool, score int8.
PEOPLE: tuple[Row, ...] = (
    (1, "alice", True, 10_000_000_000),
    (2, "bob", False, -5),
    (3, "carol", True, 0),
)

_PEOPLE_COLUMNS = (
    Column("id", Oid.INT4),
    Column("name", Oid.TEXT),
    Column("active", Oid.BOOL),
    Column("score", Oid.INT8),
)
_VOID = 2278
_TYPE_NAMES = {"bool": Oid.BOOL, "int8": Oid.INT8, "int2": Oid.INT2, "int4": Oid.INT4}
_TYPE_NAMES |= {"text": Oid.TEXT}

_SPACES = re.compile(r"\s+")
_SELECT_INT = re.compile(r"select (-?\d+)(?: as (\w+))?")
_ECHO_ITEM = re.compile(r"\$(\d+)::(\w+)")
_ECHO = re.compile(r"select \$\d+::\w+(?:, \$\d+::\w+)*")
_PERSON_BY_ID = re.compile(r"select (name|id, name, active, score) from people where id = \$1")
_FROM = re.compile(r"\bfrom\s+([a-z_][\w.]*)")


def normalize(sql: str) -> str:
    return _SPACES.sub(" ", sql.strip()).rstrip(";").strip().lower()


@dataclass(frozen=True)
class _Shape:
    """What one known statement takes and returns, and how to run it."""

    params: tuple[int, ...]
    columns: tuple[Column, ...]
    rows: Sequence[Row] | None = None  # None: computed from the parameters
    order: tuple[int, ...] = ()  # echo: the parameters, in this order
    person: tuple[int, int] | None = None  # people by id: (offset, width)


def _shape(sql: str) -> _Shape:
    """Understand one statement, or raise the error PostgreSQL would."""
    norm = normalize(sql)
    if norm in ("select * from people", "select id, name, active, score from people order by id"):
        return _Shape((), _PEOPLE_COLUMNS, PEOPLE)
    if norm == "select id, name from people order by id":
        return _Shape((), _PEOPLE_COLUMNS[:2], [row[:2] for row in PEOPLE])
    if norm == "select pg_advisory_unlock_all()":
        return _Shape((), (Column("pg_advisory_unlock_all", _VOID, type_size=4),), [("",)])
    if match := _SELECT_INT.fullmatch(norm):
        number = int(match[1])
        oid = Oid.INT4 if abs(number) < 2**31 else Oid.INT8
        return _Shape((), (Column(match[2] or "?column?", oid),), [(number,)])
    if _ECHO.fullmatch(norm):
        items = _ECHO_ITEM.findall(norm)
        if any(name not in _TYPE_NAMES for _, name in items):
            raise SQLError(SQLState.UNDEFINED_OBJECT, "type does not exist")
        params = [0] * max(int(n) for n, _ in items)
        for n, name in items:
            params[int(n) - 1] = _TYPE_NAMES[name]
        columns = tuple(Column(name, _TYPE_NAMES[name]) for _, name in items)
        return _Shape(tuple(params), columns, order=tuple(int(n) - 1 for n, _ in items))
    if match := _PERSON_BY_ID.fullmatch(norm):
        width = 1 if match[1] == "name" else 4
        offset = 1 if width == 1 else 0
        columns = _PEOPLE_COLUMNS[offset : offset + width]
        return _Shape((Oid.INT4,), columns, person=(offset, width))
    if match := _FROM.search(norm):
        name = match[1]
        raise SQLError(
            SQLState.UNDEFINED_TABLE,
            f'relation "{name}" does not exist',
            position=match.start(1) + 1,
        )
    first = sql.split(maxsplit=1)[0] if sql.split() else sql
    raise SQLError(SQLState.SYNTAX_ERROR, f'syntax error at or near "{first}"', position=1)


class _Canned(Handler):
    """The statements above; transactions, SET/SHOW and the like are the
    toolkit's built-ins."""

    describe_at_parse = True

    async def query(self, sql: str, params: Sequence[object]) -> Outcome:
        shape = _shape(sql)
        if shape.person is not None:
            offset, width = shape.person
            rows: Sequence[Sequence[object]] = [
                row[offset : offset + width] for row in PEOPLE if row[0] == params[0]
            ]
        elif shape.rows is None:
            rows = [tuple(params[i] for i in shape.order)]
        else:
            rows = shape.rows
        return Result(shape.columns, rows)

    async def describe(self, sql: str, param_types: Sequence[int]) -> Description | None:
        shape = _shape(sql)
        return Description(shape.columns, shape.params)


# -- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A user the server knows: its ``pg_hba.conf`` method and its secret
    (what ``pg_authid.rolpassword`` would hold; None for none)."""

    method: MethodName
    secret: str | None = None


@dataclass
class PygwireAuth:
    """The users: ``roles`` are known, any other user is asked for
    ``default_method`` with no secret (so fails as a wrong password does;
    trust lets it in).  A :class:`pygwire.server.UserStore`."""

    roles: Mapping[str, Role] = field(default_factory=dict)
    default_method: MethodName = "trust"
    mock_secret: bytes = b""

    async def role(self, user: str, session: Session) -> ServerRole:
        role = self.roles.get(user, Role(self.default_method))
        return ServerRole(role.method, role.secret)


# -- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerTLS:
    """The server's certificate and key (PEM files)."""

    certfile: Path
    keyfile: Path

    @classmethod
    def self_signed(cls, directory: Path) -> ServerTLS:
        """A new self-signed certificate for 127.0.0.1 and localhost (made
        with the ``openssl`` command); the certificate is its own CA."""
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
        return context


# -- sessions and the server ------------------------------------------------------------------


@dataclass
class _SessionLog:
    received: list[PGMessage] = field(default_factory=list)
    sent: list[PGMessage] = field(default_factory=list)


class FakeSession(Session):
    """A :class:`pygwire.server.Session` that logs every message both ways."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Every message received and sent, in order.
        self.log = _SessionLog()
        #: Set once the session has ended.
        self.done = threading.Event()
        self.connection.observe(self._record)

    def _record(self, sender: MessageDirection, msg: PGMessage, size: int) -> None:
        if sender is MessageDirection.FRONTEND:
            self.log.received.append(msg)
        else:
            self.log.sent.append(msg)

    @property
    def conn(self) -> BackendConnection:
        """The session's BackendConnection."""
        return self.connection

    @property
    def saw_terminate(self) -> bool:
        """True if the client ended the session with Terminate."""
        return self.terminated


class _Backend(Server):
    """The server itself; :class:`FakeServer` runs it and reads its records."""

    session_class = FakeSession

    def __init__(self, auth: PygwireAuth | None, tls: ServerTLS | None, **options: object) -> None:
        super().__init__(
            _Canned,
            users=auth,
            ssl_context=tls.context() if tls is not None else None,
            tls_certificate=tls.der if tls is not None else None,
            **options,  # type: ignore[arg-type]
        )
        self.lock = threading.Lock()
        #: Every connection accepted, in order (cancel requests included).
        self.accepted: list[FakeSession] = []
        #: CancelRequests received, in order.
        self.cancel_requests: list[CancelRequest] = []
        self.failures: list[str] = []

    def session_started(self, session: Session) -> None:
        assert isinstance(session, FakeSession)
        with self.lock:
            self.accepted.append(session)

    def session_ended(self, session: Session) -> None:
        super().session_ended(session)
        assert isinstance(session, FakeSession)
        with self.lock:
            if session.cancel_request is not None:
                self.cancel_requests.append(session.cancel_request)
            if session.end_reason.startswith("internal error"):
                self.failures.append(f"session {session.process_id}: {session.end_reason}")
        session.done.set()


class FakeServer:
    """A PostgreSQL-compatible test server on 127.0.0.1 (use as a context manager).

    ``auth`` decides the authentication (trust by default); ``tls`` turns
    TLS on (SSLRequest and direct SSL); ``newest_minor`` is the newest
    protocol minor version accepted (2: protocol 3.2).
    """

    def __init__(
        self,
        auth: PygwireAuth | None = None,
        *,
        tls: ServerTLS | None = None,
        newest_minor: int = 2,
        server_version: str = "18.0",
    ) -> None:
        self.tls = tls
        self.backend = _Backend(
            auth, tls, parameters={"server_version": server_version}, newest_minor=newest_minor
        )
        self._thread = ServerThread(self.backend, "127.0.0.1", 0, name="fake-server")

    # -- running ----------------------------------------------------------------------------
    def start(self) -> Self:
        """Listen on a free loopback port, in a thread of its own."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down and join the thread."""
        self._thread.stop(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for tests ------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._thread.port

    @property
    def accepted(self) -> list[FakeSession]:
        """Every connection accepted, in order (cancel requests included)."""
        with self.backend.lock:
            return list(self.backend.accepted)

    @property
    def cancel_requests(self) -> list[CancelRequest]:
        """CancelRequests received, in order."""
        with self.backend.lock:
            return list(self.backend.cancel_requests)

    def conninfo(self, user: str = "trust_user", **params: str) -> dict[str, str]:
        return {"host": self.host, "port": str(self.port), "user": user, "dbname": "postgres"} | (
            params
        )

    def dsn(self, user: str = "trust_user", **params: str) -> str:
        return " ".join(f"{k}={v}" for k, v in self.conninfo(user, **params).items())

    def session(self, process_id: int) -> FakeSession:
        """The session that handed out ``process_id`` in its BackendKeyData."""
        for session in self.accepted:
            if session.process_id == process_id:
                return session
        raise LookupError(f"no session with process id {process_id}")

    def wait_closed(self, session: FakeSession, timeout: float = 10.0) -> None:
        if not session.done.wait(timeout):
            raise TimeoutError(f"session {session.process_id} still open after {timeout}s")

    def check(self) -> None:
        """Raise if a session failed inside the server."""
        with self.backend.lock:
            failures = list(self.backend.failures)
        if failures:
            raise AssertionError(f"fake server errors: {failures!r}")
