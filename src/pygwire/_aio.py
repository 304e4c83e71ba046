"""What pygwire's asyncio layers share: one connection's plaintext, under
TLS or not.

asyncio cannot start TLS on bytes it has already handed out, and
PostgreSQL's direct SSL begins with a ClientHello the server must read
first to tell it from a startup packet.  So the proxy (:mod:`pygwire.cli`)
and the server toolkit (:mod:`pygwire.server`) run TLS themselves, on
memory BIOs (:class:`pygwire.tls.TLSEndpoint`), inside their asyncio
protocols.  :class:`TLSProtocol` is that part, written once: ciphertext
in, plaintext to :meth:`TLSProtocol._received`; plaintext out through
:meth:`TLSProtocol.write`, encrypted when TLS is on.  What a layer does
with the plaintext (push it to a peer, or keep it for a reader) is its
own.
"""

from __future__ import annotations

import asyncio
import threading

from .tls import TLSEndpoint, TLSError

__all__ = ["TLSProtocol"]

#: The most one receive call reads (asyncio's own default).
READ_SIZE = 256 * 1024


class _ReadBuffer(threading.local):
    """The buffer every connection of a thread receives into: asyncio calls
    ``get_buffer``, ``recv_into`` and ``buffer_updated`` one after the other
    on the loop's thread, and :meth:`TLSProtocol.buffer_updated` copies what
    arrived out at once, so one buffer serves all of them."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_SIZE))


_READ = _ReadBuffer()


class TLSProtocol(asyncio.BufferedProtocol):
    """An asyncio protocol whose bytes may run under a :class:`TLSEndpoint`.

    Subclasses implement :meth:`_received` (plaintext, or ``b""`` for a
    TLS step that carried none), :meth:`_ended` and :meth:`_fail`.

    It receives into a buffer (``asyncio.BufferedProtocol``) rather than
    taking ``data_received``'s new bytes object: asyncio allocates 256 KiB
    for each of those and shrinks it to what arrived, which glibc serves
    with mmap, mremap and munmap, three system calls and fresh pages per
    chunk.  Under pgbench that cost the proxy more than validating every
    message did.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: The TLS session once one is started; ``None`` for plaintext.
        self.tls: TLSEndpoint | None = None

    # -- asyncio.BufferedProtocol -----------------------------------------
    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_READ.view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        """Bytes received (ciphertext under TLS)."""
        if self.tls is not None:
            try:
                data = self.tls.receive(data)
            except TLSError as exc:
                self._fail(exc)
                return
            self._send_tls()  # a handshake step, or an alert, to answer
            if self.tls.closed:
                self._ended()
        self._received(data)

    # -- writing ----------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send ``data`` (encrypted under TLS); dropped once the connection is gone."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.tls is None:
            transport.write(data)
            return
        try:
            self.tls.send(data)
        except TLSError as exc:
            self._fail(exc)
            return
        self._send_tls()

    def close(self) -> None:
        """Close after what was written is sent (with TLS close_notify)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if self.tls is not None and self.tls.handshake_done:
                self.tls.close()
                self._send_tls()
            transport.close()

    def _send_tls(self) -> None:
        """Write the ciphertext the TLS session has produced."""
        assert self.tls is not None
        out = self.tls.outgoing()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    # -- for subclasses ---------------------------------------------------
    def _received(self, data: bytes) -> None:
        raise NotImplementedError

    def _ended(self) -> None:
        raise NotImplementedError

    def _fail(self, exc: Exception) -> None:
        raise NotImplementedError
