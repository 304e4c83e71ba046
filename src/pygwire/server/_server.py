"""The listening server: accepts connections, runs sessions, shuts down.

:class:`Server` owns the listening socket, the table of sessions (for
cancel requests and notifications), the limits and the TLS setup.
:class:`Users` is the in-memory user store; any object with the shape of
:class:`UserStore` will do.  :class:`ServerThread` runs a server on an
event loop of its own, for programs (and tests) that are not asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import signal
import ssl
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from ..auth import AuthMethod, ScramVerifier, md5_stored
from ..exceptions import PygwireError
from ..tls import ALPN_POSTGRESQL, server_context
from ._errors import SQLError, SQLState
from ._handler import Handler
from ._session import Session
from ._stream import ClientStream

__all__ = [
    "DEFAULT_PARAMETERS",
    "HandlerFactory",
    "Role",
    "Server",
    "ServerThread",
    "UserStore",
    "Users",
]

log = logging.getLogger("pygwire.server")

T = TypeVar("T")

DEFAULT_PARAMETERS: Mapping[str, str] = {
    "server_version": "18.0",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "is_superuser": "off",
    "default_transaction_read_only": "off",
    "in_hot_standby": "off",
    "scram_iterations": "4096",
    "search_path": '"$user", public',
    "transaction_isolation": "read committed",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}
"""What a new session reports and SHOW reads, as a PostgreSQL 18 server
configured like the codecs of :mod:`pygwire.types` assume (UTF-8, ISO
dates, UTC).  ``application_name`` and ``session_authorization`` are the
client's own; ``Server(parameters=...)`` changes or adds entries."""

HandlerFactory = Callable[[Session], Handler]
"""Makes the handler of a session (a :class:`Handler` subclass will do)."""


@dataclass(frozen=True, slots=True)
class Role:
    """A user: how it authenticates (``pg_hba.conf``'s method) and its secret.

    ``secret`` is what ``pg_authid.rolpassword`` holds: a SCRAM verifier
    (``str(ScramVerifier.from_password(pw))``), an ``md5`` hash
    (:func:`pygwire.auth.md5_stored`) or a plain password; None for none.
    """

    method: AuthMethod = "scram-sha-256"
    secret: str | None = None


class UserStore(Protocol):
    """Where a server looks users up.

    ``role`` returns the user's :class:`Role`, or None for an unknown
    user, who is then asked for ``default_method`` with no secret and fails
    exactly like a wrong password (trust lets anyone in).  ``mock_secret``
    seeds the stable fake SCRAM salt unknown users get.
    """

    default_method: AuthMethod
    mock_secret: bytes

    async def role(self, user: str, session: Session) -> Role | None:
        """The user's role, or None if there is no such user."""
        ...


class Users:
    """An in-memory :class:`UserStore`.

    ``roles`` maps user names to a :class:`Role` or to a plain password,
    which is stored the way ``method`` needs it (a SCRAM verifier for
    scram-sha-256, an md5 hash for md5).  Unknown users get
    ``default_method`` (``method`` unless given).
    """

    def __init__(
        self,
        roles: Mapping[str, Role | str] | None = None,
        *,
        method: AuthMethod = "scram-sha-256",
        default_method: AuthMethod | None = None,
        mock_secret: bytes = b"",
    ) -> None:
        self.default_method: AuthMethod = default_method or method
        self.mock_secret = mock_secret
        self.roles: dict[str, Role] = {}
        for user, role in (roles or {}).items():
            self.roles[user] = role if isinstance(role, Role) else self._stored(user, role, method)

    @staticmethod
    def _stored(user: str, password: str, method: AuthMethod) -> Role:
        if method == "scram-sha-256":
            return Role(method, str(ScramVerifier.from_password(password)))
        if method == "md5":
            return Role(method, md5_stored(user, password))
        return Role(method, password if method == "password" else None)

    async def role(self, user: str, session: Session) -> Role | None:
        """The user's role, or None if there is no such user."""
        return self.roles.get(user)


def _der_certificate(certfile: str | Path) -> bytes:
    """The first certificate of a PEM file, in DER (channel binding hashes it)."""
    text = Path(certfile).read_text(encoding="ascii")
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[begin:end])


class Server:
    """A PostgreSQL-protocol server: one :class:`Session` per client.

    ``handler`` makes each session's :class:`Handler` (pass the subclass).
    ``users`` authenticates clients (None: trust everyone).  TLS: give
    ``certfile`` and ``keyfile`` (PEM), or an ``ssl_context`` of your own
    (it is set to offer ALPN ``postgresql``; ``certfile`` or
    ``tls_certificate``, the DER certificate, is then needed for
    SCRAM-SHA-256-PLUS); clients then get TLS after SSLRequest
    and by direct SSL (ALPN ``postgresql``).  ``parameters`` change or add
    to :data:`DEFAULT_PARAMETERS`; ``reported`` names further parameters to
    send as ParameterStatus.

    Limits: ``max_connections`` sessions at once (then 53300);
    ``startup_timeout`` seconds from connection to ReadyForQuery;
    ``idle_timeout`` and ``idle_in_transaction_timeout`` seconds a session
    may wait for the client's next request (None: forever);
    ``max_message_size`` bytes per client message (PostgreSQL allows
    1 GiB; the default here is 64 MiB), and per row of COPY FROM STDIN
    (a longer row fails with 54000).  ``newest_minor`` is the newest
    protocol minor version spoken (2: protocol 3.2, its 256-bit cancel keys).

    Use ``async with Server(...) as server: await server.start(host, port)``,
    :meth:`serve` in a program of your own, :meth:`run` for a blocking
    one, or :class:`ServerThread` beside synchronous code.
    """

    def __init__(
        self,
        handler: HandlerFactory,
        *,
        users: UserStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        tls_certificate: bytes | None = None,
        parameters: Mapping[str, str] | None = None,
        reported: frozenset[str] = frozenset(),
        max_connections: int = 100,
        startup_timeout: float | None = 60.0,
        idle_timeout: float | None = None,
        idle_in_transaction_timeout: float | None = None,
        max_message_size: int = 64 * 1024 * 1024,
        newest_minor: int = 2,
        strict: bool = True,
    ) -> None:
        self.handler = handler
        self.users = users
        if ssl_context is None and certfile is not None:
            if keyfile is None:
                raise ValueError("certfile needs keyfile")
            ssl_context = server_context(certfile, keyfile)
        elif ssl_context is not None:
            # Direct SSL needs ALPN "postgresql" agreed (PostgreSQL 17+ and
            # libpq insist); a context of the user's own is made to offer it.
            ssl_context.set_alpn_protocols([ALPN_POSTGRESQL])
        #: The TLS context (None: SSLRequest is answered N, direct SSL refused).
        self.tls_context = ssl_context
        if tls_certificate is None and certfile is not None:
            tls_certificate = _der_certificate(certfile)
        #: The server's DER certificate, for SCRAM-SHA-256-PLUS.
        self.tls_certificate = tls_certificate if ssl_context is not None else None
        self.parameters: dict[str, str] = {**DEFAULT_PARAMETERS, **(parameters or {})}
        self.reported = reported
        self.max_connections = max_connections
        self.startup_timeout = startup_timeout
        self.idle_timeout = idle_timeout
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.max_message_size = max_message_size
        self.newest_minor = newest_minor
        self.strict = strict
        #: Sessions that passed their startup packet, by process id.
        self.sessions: dict[int, Session] = {}
        #: True once :meth:`close` began: new sessions are refused (57P03).
        self.closing = False
        self._connections: set[Session] = set()
        self._pids = itertools.count(10000)
        self._listener: asyncio.Server | None = None
        self._closed: asyncio.Event | None = None

    #: The class of the sessions (a subclass can keep more about each).
    session_class: type[Session] = Session

    # -- hooks ------------------------------------------------------------------------------
    def session_started(self, session: Session) -> None:
        """Called for every accepted connection before anything is read
        (override to observe: ``session.connection.observe(...)``)."""

    def session_ended(self, session: Session) -> None:
        """Called when a connection has ended; ``session.end_reason`` says why."""
        self._connections.discard(session)
        if self.sessions.get(session.process_id) is session:
            del self.sessions[session.process_id]

    def admit(self, session: Session) -> int:
        """Let a session in after its startup packet; return its process id.

        Raises :class:`SQLError` to refuse it: 57P03 while the server shuts
        down, 53300 beyond ``max_connections``.
        """
        if self.closing:
            raise SQLError(SQLState.CANNOT_CONNECT_NOW, "the database system is shutting down")
        if len(self.sessions) >= self.max_connections:
            raise SQLError(SQLState.TOO_MANY_CONNECTIONS, "sorry, too many clients already")
        pid = next(self._pids)
        self.sessions[pid] = session
        return pid

    # -- listening --------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        """Listen on ``host:port`` (port 0: a free one; see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        self._listener = await loop.create_server(self._accept, host, port, backlog=1024)

    @property
    def port(self) -> int:
        """The port listened on."""
        if self._listener is None:
            raise RuntimeError("the server is not listening")
        return int(self._listener.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        """The address listened on."""
        if self._listener is None:
            raise RuntimeError("the server is not listening")
        return str(self._listener.sockets[0].getsockname()[0])

    def _accept(self) -> ClientStream:
        return ClientStream(self._begin)

    def _begin(self, stream: ClientStream) -> None:
        session = self.session_class(self, stream)
        self._connections.add(session)
        try:
            self.session_started(session)
        except Exception:
            log.exception("session_started failed")
        session.task = asyncio.get_running_loop().create_task(session.run())

    async def serve(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        """Listen and serve until :meth:`close` (or until cancelled)."""
        await self.start(host, port)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` has finished."""
        assert self._closed is not None
        await self._closed.wait()

    def run(
        self, host: str = "127.0.0.1", port: int = 5432, *, shutdown_timeout: float = 30.0
    ) -> None:
        """Serve in this thread until SIGINT or SIGTERM, then shut down gracefully."""

        async def main() -> None:
            await self.start(host, port)
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            log.info("listening on %s:%d", self.host, self.port)
            await stop.wait()
            await self.close(shutdown_timeout)

        asyncio.run(main())

    async def close(self, timeout: float = 30.0) -> None:
        """Shut down: stop listening, end idle sessions with 57P01 at once,
        let running statements finish for up to ``timeout`` seconds, then
        cancel them and end those sessions with 57P01 too."""
        self.closing = True
        if self._listener is not None:
            self._listener.close()
        sessions = list(self._connections)
        for session in sessions:
            session.shutdown()
        tasks = [s.task for s in sessions if s.task is not None and not s.task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.wait_closed()
        if self._closed is not None:
            self._closed.set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- across sessions ----------------------------------------------------------------------
    def cancel(self, process_id: int, secret_key: bytes | None = None) -> bool:
        """Cancel the statement the session ``process_id`` is running (as a
        CancelRequest does: the key must match, compared in constant time;
        None skips the check, as ``pg_cancel_backend`` by a superuser)."""
        session = self.sessions.get(process_id)
        if session is None:
            return False
        if secret_key is not None and not hmac.compare_digest(session.secret_key, secret_key):
            return False
        return session.cancel()

    def terminate(self, process_id: int) -> bool:
        """End the session ``process_id`` with 57P01 (``pg_terminate_backend``)."""
        session = self.sessions.get(process_id)
        if session is None:
            return False
        session.shutdown()
        return True

    def notify(self, channel: str, payload: str = "", *, sender: int = 0) -> int:
        """Send a notification to every session listening on ``channel``;
        returns how many there were."""
        count = 0
        for session in list(self.sessions.values()):
            if channel in session.listening:
                try:
                    session.notify(channel, payload, process_id=sender)
                except PygwireError:
                    # That listener's connection cannot take it; the
                    # notifying session is not to blame.
                    log.warning("session %d cannot be notified", session.process_id)
                    continue
                count += 1
        return count


class ServerThread:
    """A :class:`Server` on an event loop of its own, in a daemon thread.

    ``with ServerThread(server, "127.0.0.1", 0) as running:`` starts it (in a
    thread called ``name``)
    and waits until it listens (``running.port``); leaving the block shuts
    it down.  :meth:`call` runs a function or coroutine on the server's
    loop and returns its result (sessions are not thread-safe).
    """

    def __init__(
        self,
        server: Server,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "pygwire-server",
    ) -> None:
        self.server = server
        self.name = name
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 30.0) -> Self:
        """Start the thread; return once the server listens."""
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start(self.host, self.port)
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self.port = self.server.port
            self._ready.set()
            await self._stop.wait()

        asyncio.run(main())

    def call(self, fn: Callable[[], T] | Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``fn()`` (or await a coroutine) on the server's loop; its result."""
        loop = self.loop
        assert loop is not None

        async def run() -> T:
            if asyncio.iscoroutine(fn):
                result: T = await fn
                return result
            assert callable(fn)
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down (see :meth:`Server.close`) and join the thread."""
        loop, thread = self.loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            await self.server.close(timeout)
            assert self._stop is not None
            self._stop.set()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout + 10)
        thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
