"""A small blocking PostgreSQL client: pygwire's FrontendConnection on a socket.

pygwire does no I/O; this file shows the few lines it takes to add it.  The
connection subclass writes through :meth:`on_send` and reads with
:meth:`SocketClient.messages_until`.  It authenticates with trust,
cleartext or MD5 passwords.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterable

from pygwire import ConnectionPhase, FrontendConnection, StartupRequestCode
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    BackendKeyData,
    ErrorResponse,
    PasswordMessage,
    PGMessage,
    Query,
    ReadyForQuery,
    StartupMessage,
    Terminate,
)

Trace = Callable[[str, PGMessage], None]


class ServerError(Exception):
    """An ErrorResponse from the server, with its fields."""

    def __init__(self, error: ErrorResponse) -> None:
        super().__init__(f"{error.severity} {error.code}: {error.message}")
        self.error = error


def md5_password(user: str, password: str, salt: bytes) -> str:
    """PostgreSQL's MD5 answer: 'md5' + md5(md5(password + user) + salt)."""
    inner = hashlib.md5(f"{password}{user}".encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


class SocketClient(FrontendConnection):
    """FrontendConnection that writes to a socket; ``trace`` sees every message."""

    def __init__(self, sock: socket.socket, trace: Trace | None = None) -> None:
        super().__init__()
        self.sock = sock
        self.trace = trace
        self.startup_messages: list[PGMessage] = []
        self.backend_key: BackendKeyData | None = None

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        user: str,
        database: str = "postgres",
        password: str | None = None,
        *,
        protocol_version: int = StartupRequestCode.V3_0,
        params: dict[str, str] | None = None,
        trace: Trace | None = None,
    ) -> SocketClient:
        """Open a socket and a session on it."""
        sock = socket.create_connection((host, port), timeout=30)
        client = cls(sock, trace)
        try:
            client.authenticate(
                user, database, password, protocol_version=protocol_version, params=params
            )
        except BaseException:
            sock.close()
            raise
        return client

    def authenticate(
        self,
        user: str,
        database: str = "postgres",
        password: str | None = None,
        *,
        protocol_version: int = StartupRequestCode.V3_0,
        params: dict[str, str] | None = None,
    ) -> None:
        """Startup and authentication, up to the first ReadyForQuery.

        Every message received on the way is kept in ``startup_messages``
        and the cancellation key in ``backend_key``.
        """
        startup = {"user": user, "database": database, **(params or {})}
        self.send(StartupMessage(params=startup, protocol_version=protocol_version))
        while not isinstance(msg := self.next_message(), ReadyForQuery):
            self.startup_messages.append(msg)
            if isinstance(msg, ErrorResponse):
                raise ServerError(msg)
            if isinstance(msg, BackendKeyData):
                self.backend_key = msg
            if isinstance(msg, AuthenticationCleartextPassword | AuthenticationMD5Password):
                if password is None:
                    raise ValueError("the server asks for a password")
                answer = (
                    md5_password(user, password, msg.salt)
                    if isinstance(msg, AuthenticationMD5Password)
                    else password
                )
                self.send(PasswordMessage(password=answer))
        self.startup_messages.append(msg)

    # -- I/O ---------------------------------------------------------------
    def on_send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, msg: PGMessage) -> bytes:
        if self.trace:
            self.trace("->", msg)
        return super().send(msg)

    def on_receive(self, msg: PGMessage) -> None:
        if self.trace:
            self.trace("<-", msg)

    def send_all(self, messages: Iterable[PGMessage]) -> None:
        for msg in messages:
            self.send(msg)

    def next_message(self) -> PGMessage:
        """The next message from the server, reading the socket as needed."""
        data = b""  # first take what is already buffered in the decoder
        while True:
            for msg in self.receive(data):
                return msg  # the rest stays in the decoder for the next call
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"server closed the connection in {self.phase.name}")

    def messages_until(
        self, last: type[PGMessage], *, count: int = 1, raise_errors: bool = False
    ) -> list[PGMessage]:
        """Receive until ``count`` messages of type ``last`` have arrived.

        With ``raise_errors`` an ErrorResponse raises :class:`ServerError`
        once the exchange is over (at once if the session failed).
        """
        out: list[PGMessage] = []
        while count:
            msg = self.next_message()
            out.append(msg)
            if isinstance(msg, ErrorResponse) and self.phase is ConnectionPhase.FAILED:
                raise ServerError(msg)
            if isinstance(msg, last):
                count -= 1
        if raise_errors:
            for msg in out:
                if isinstance(msg, ErrorResponse):
                    raise ServerError(msg)
        return out

    def query(self, sql: str) -> list[PGMessage]:
        """Run a simple query; return every message up to ReadyForQuery."""
        self.send(Query(query_string=sql))
        return self.messages_until(ReadyForQuery)

    def close(self) -> None:
        if self.is_active:
            self.send(Terminate())
        self.sock.close()
