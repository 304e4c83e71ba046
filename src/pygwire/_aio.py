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

from .tls import TLSEndpoint, TLSError

__all__ = ["TLSProtocol"]


class TLSProtocol(asyncio.Protocol):
    """An asyncio protocol whose bytes may run under a :class:`TLSEndpoint`.

    Subclasses implement :meth:`_received` (plaintext, or ``b""`` for a
    TLS step that carried none), :meth:`_ended` and :meth:`_fail`.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: The TLS session once one is started; ``None`` for plaintext.
        self.tls: TLSEndpoint | None = None

    # -- asyncio.Protocol -------------------------------------------------
    def data_received(self, data: bytes) -> None:
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
