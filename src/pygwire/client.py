"""A small blocking PostgreSQL client: a FrontendConnection on a socket.

An I/O layer on top of the sans-I/O core, importing only its public API:
the connection subclass writes through :meth:`SocketClient.on_send` and
reads with :meth:`SocketClient.next_message`.  Authentication (SCRAM with
channel binding, MD5, cleartext) comes from :mod:`pygwire.auth`; TLS from
the standard library's :mod:`ssl`, through SSLRequest or directly.  It is
meant for scripts, tests and tools that speak the protocol by hand; it
hands out protocol messages, not Python values.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable

from .auth import ChannelBinding, ClientAuthenticator
from .connection import FrontendConnection
from .constants import ConnectionPhase, StartupRequestCode
from .exceptions import PygwireError
from .messages import (
    AuthenticationMessage,
    BackendKeyData,
    ErrorResponse,
    PGMessage,
    Query,
    ReadyForQuery,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Terminate,
)

__all__ = ["ServerError", "SocketClient", "Trace"]

Trace = Callable[[str, PGMessage], None]
"""Called with "->" or "<-" and each message sent or received."""


class ServerError(PygwireError):
    """An ErrorResponse from the server, with its fields."""

    def __init__(self, error: ErrorResponse) -> None:
        super().__init__(f"{error.severity} {error.code}: {error.message}")
        self.error = error


class SocketClient(FrontendConnection):
    """FrontendConnection that writes to a socket; ``trace`` sees every message."""

    def __init__(self, sock: socket.socket, trace: Trace | None = None) -> None:
        super().__init__()
        self.sock = sock
        self.trace = trace
        self.tls_certificate: bytes | None = None
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
        tls: ssl.SSLContext | None = None,
        direct_tls: bool = False,
        channel_binding: ChannelBinding = "prefer",
        trace: Trace | None = None,
    ) -> SocketClient:
        """Open a socket and a session on it.

        With ``tls`` the connection is encrypted: after an SSLRequest, or at
        once with ``direct_tls`` (PostgreSQL 17+, ALPN ``postgresql``).
        """
        sock = socket.create_connection((host, port), timeout=30)
        client = cls(sock, trace)
        try:
            if tls is not None:
                client.start_tls(tls, host, direct=direct_tls)
            client.authenticate(
                user,
                database,
                password,
                protocol_version=protocol_version,
                params=params,
                channel_binding=channel_binding,
            )
        except BaseException:
            client.sock.close()
            raise
        return client

    def start_tls(self, context: ssl.SSLContext, host: str, *, direct: bool = False) -> None:
        """Encrypt the connection, through SSLRequest or directly."""
        if direct:
            context.set_alpn_protocols(["postgresql"])
        else:
            self.send(SSLRequest())
            if self.next_message() is not SSLResponse.SUPPORTED:
                raise ConnectionError("the server refused TLS")
        self.sock = context.wrap_socket(self.sock, server_hostname=host)
        self.tls_certificate = self.sock.getpeercert(binary_form=True)

    def authenticate(
        self,
        user: str,
        database: str = "postgres",
        password: str | None = None,
        *,
        protocol_version: int = StartupRequestCode.V3_0,
        params: dict[str, str] | None = None,
        channel_binding: ChannelBinding = "prefer",
    ) -> None:
        """Startup and authentication, up to the first ReadyForQuery.

        Every message received on the way is kept in ``startup_messages``
        and the cancellation key in ``backend_key``.
        """
        auth = ClientAuthenticator(
            user, password, channel_binding=channel_binding, tls_certificate=self.tls_certificate
        )
        startup = {"user": user, "database": database, **(params or {})}
        self.send(StartupMessage(params=startup, protocol_version=protocol_version))
        while not isinstance(msg := self.next_message(), ReadyForQuery):
            self.startup_messages.append(msg)
            if isinstance(msg, ErrorResponse):
                raise ServerError(msg)
            if isinstance(msg, BackendKeyData):
                self.backend_key = msg
            if isinstance(msg, AuthenticationMessage):
                answer = auth.handle(msg)
                if answer is not None:
                    self.send(answer)
        self.startup_messages.append(msg)

    # -- I/O ---------------------------------------------------------------
    def on_send(self, data: bytes) -> None:
        """Write what the connection encoded to the socket."""
        self.sock.sendall(data)

    def send(self, msg: PGMessage) -> bytes:
        """Validate, encode and write ``msg``."""
        if self.trace:
            self.trace("->", msg)
        return super().send(msg)

    def on_receive(self, msg: PGMessage) -> None:
        """Pass a received message to the trace, if any."""
        if self.trace:
            self.trace("<-", msg)

    def send_all(self, messages: Iterable[PGMessage]) -> None:
        """Send several messages (a pipeline), in order."""
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
        """Send Terminate (if the session is still open) and close the socket."""
        if self.is_active:
            self.send(Terminate())
        self.sock.close()
