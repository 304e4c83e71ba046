"""One client's TCP connection as plaintext in and out, on asyncio.

:class:`ClientStream` is the asyncio protocol of an accepted connection.
It keeps what arrived until the session asks for it, runs TLS on memory
BIOs (:class:`pygwire.tls.TLSEndpoint`, which takes the bytes of a
direct-SSL ClientHello that were already read), and applies backpressure
both ways: reading pauses while more than :data:`READ_HIGH_WATER` bytes
wait unread, and :meth:`ClientStream.drain` waits while the transport's
write buffer is above :data:`WRITE_HIGH_WATER`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._aio import TLSProtocol
from ..tls import TLSEndpoint, TLSError

__all__ = ["READ_HIGH_WATER", "WRITE_HIGH_WATER", "ClientStream"]

#: Unread bytes above which the connection stops reading from the socket.
READ_HIGH_WATER = 256 * 1024
#: Bytes waiting in the transport above which writers wait (drain).
WRITE_HIGH_WATER = 256 * 1024


class ClientStream(TLSProtocol):
    """An accepted connection: plaintext in (:meth:`read`), out (:meth:`write`)."""

    def __init__(self, on_connected: Callable[[ClientStream], None] | None = None) -> None:
        super().__init__()
        #: Called once the connection is made (the server starts a session).
        self.on_connected = on_connected
        #: The peer's address, as the socket reports it.
        self.peer: object = None
        #: True once the peer closed or the connection was lost.
        self.eof = False
        #: What ended the connection from below (a TLS or socket error).
        self.error: Exception | None = None
        self._incoming = bytearray()
        self._reading_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False

    # -- the asyncio protocol ---------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.on_connected is not None:
            self.on_connected(self)

    def _received(self, data: bytes) -> None:
        if data:
            self._incoming += data
            if len(self._incoming) > READ_HIGH_WATER and self.transport is not None:
                self.transport.pause_reading()
                self._reading_paused = True
            self._wake_reader()

    def eof_received(self) -> bool:
        self._ended()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.error is None:
            self.error = exc
        self._ended()
        self._writing_paused = False
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()

    # -- reading ------------------------------------------------------------
    async def read(self) -> bytes:
        """The plaintext received so far, waiting for some; ``b""`` once
        the connection has ended."""
        while not self._incoming and not self.eof:
            self._data_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._data_waiter
            finally:
                self._data_waiter = None
        data = bytes(self._incoming)
        self._incoming.clear()
        if self._reading_paused and self.transport is not None and not self.eof:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    @property
    def unread(self) -> int:
        """Bytes received and not yet returned by :meth:`read`."""
        return len(self._incoming)

    # -- writing ------------------------------------------------------------
    @property
    def backed_up(self) -> bool:
        """True while the transport's write buffer is above its high-water
        mark (the client is not reading fast enough)."""
        return self._writing_paused

    @property
    def writable(self) -> bool:
        """False once nothing written can reach the peer any more."""
        return self.transport is not None and not self.transport.is_closing()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        while self._writing_paused and self.writable:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    # -- TLS ----------------------------------------------------------------
    def start_tls(self, endpoint: TLSEndpoint, received: bytes = b"") -> None:
        """From now on the connection runs under ``endpoint``; ``received``
        is ciphertext already read (a direct-SSL ClientHello).  A handshake
        that fails ends the connection."""
        leftover = bytes(self._incoming)  # ciphertext that arrived meanwhile
        self._incoming.clear()
        self.tls = endpoint
        try:
            endpoint.start()
            plain = endpoint.receive(received + leftover) if received or leftover else b""
        except TLSError as exc:
            self._fail(exc)
            return
        self._send_tls()
        if plain:
            self._incoming += plain

    # -- the end ------------------------------------------------------------
    def abort(self) -> None:
        """Close at once, dropping what was not sent."""
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        self._ended()
        self.abort()

    def _ended(self) -> None:
        self.eof = True
        self._wake_reader()

    def _wake_reader(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
