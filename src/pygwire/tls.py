"""TLS without a socket: ciphertext in and out as bytes, on memory BIOs.

PostgreSQL starts TLS inside its own protocol (SSLRequest, then the
server's ``S``) or, since PostgreSQL 17, as the very first bytes of the
connection ("direct SSL", ALPN ``postgresql``).  Either way a server or a
proxy has already read bytes of the connection by the time it knows TLS
follows, and a direct-SSL ClientHello is already in its hands (pygwire's
decoder hands it over as :class:`~pygwire.messages.DirectSSLHandshake`).
asyncio's ``start_tls`` and ``ssl.wrap_socket`` cannot take bytes that
were already read; an :class:`ssl.SSLObject` on memory BIOs can, and it
fits a sans-I/O design: :class:`TLSEndpoint` takes the ciphertext the
caller read and gives back the plaintext, takes plaintext to send and
gives back the ciphertext to write.  The caller moves the bytes.

Typical use on a server or proxy, after answering SSLRequest with ``S``
(or on receiving a DirectSSLHandshake)::

    tls = TLSEndpoint(server_context(cert, key), server_side=True)
    plain = tls.receive(handshake_bytes)     # ciphertext already read, if any
    sock.sendall(tls.outgoing())             # handshake answers
    ...
    plain = tls.receive(sock.recv(65536))    # then decode ``plain``
    tls.send(reply); sock.sendall(tls.outgoing())

Errors from the TLS library become :class:`TLSError`, a
:class:`~pygwire.exceptions.PygwireError`.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from .auth.channel_binding import tls_server_end_point
from .exceptions import PygwireError

__all__ = [
    "ALPN_POSTGRESQL",
    "TLSEndpoint",
    "TLSError",
    "client_context",
    "server_context",
]

ALPN_POSTGRESQL = "postgresql"
"""The ALPN protocol name PostgreSQL requires for direct SSL."""

#: How much plaintext one read from the TLS object may return.
_READ_SIZE = 65536

Verify = Literal["none", "ca", "full"]


class TLSError(PygwireError):
    """The TLS handshake or a TLS record failed (bad certificate, protocol
    mismatch, corrupted record), or the peer broke an ALPN requirement."""


def server_context(
    certfile: str | Path,
    keyfile: str | Path,
    *,
    alpn: Iterable[str] = (ALPN_POSTGRESQL,),
) -> ssl.SSLContext:
    """A server context as PostgreSQL configures one: TLS 1.2 or newer,
    the certificate chain in ``certfile`` with its key, and ALPN
    ``postgresql`` offered (needed for direct SSL).  A file that cannot be
    read or does not hold a matching certificate and key is a TLSError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # PostgreSQL's ssl_min_protocol_version
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load certificate {certfile} with key {keyfile}: {exc}") from exc
    protocols = list(alpn)
    if protocols:
        context.set_alpn_protocols(protocols)
    return context


def client_context(
    *,
    verify: Verify = "full",
    cafile: str | Path | None = None,
    alpn: Iterable[str] = (ALPN_POSTGRESQL,),
) -> ssl.SSLContext:
    """A client context for libpq's ``sslmode`` levels: ``"none"`` is
    ``require`` (encrypt, trust any certificate), ``"ca"`` is
    ``verify-ca`` and ``"full"`` is ``verify-full`` (the host name must
    match too).  ``cafile`` is the root certificate (``sslrootcert``);
    without one the system's roots are used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = verify == "full"
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            if cafile is None:
                context.load_default_certs()
            else:
                context.load_verify_locations(cafile)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load root certificate {cafile}: {exc}") from exc
    protocols = list(alpn)
    if protocols:
        context.set_alpn_protocols(protocols)
    return context


class TLSEndpoint:
    """One side of a TLS connection, moved by the caller.

    :meth:`receive` takes ciphertext from the peer (``b""`` for the end of
    the stream) and returns the plaintext it completes; :meth:`send` takes
    plaintext (held until the handshake is done); :meth:`outgoing` returns
    the ciphertext to write to the peer: call it after every receive and
    send.  :attr:`closed` turns True when the peer ends the TLS session.
    ``require_alpn`` (for direct SSL, where PostgreSQL insists on ALPN
    ``postgresql``) makes a handshake that did not agree on it a TLSError.
    """

    __slots__ = ("_in", "_out", "_tls", "_held", "handshake_done", "closed", "require_alpn")

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        require_alpn: str | None = None,
    ) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname
        )
        self._held: list[bytes] = []
        self.handshake_done = False
        """True once the handshake completed."""
        self.closed = False
        """True once the peer closed the TLS session (or the stream ended)."""
        self.require_alpn = require_alpn

    def start(self) -> None:
        """Begin the handshake (a client's ClientHello goes to :meth:`outgoing`)."""
        self._handshake()

    def receive(self, data: bytes) -> bytes:
        """Take ciphertext from the peer; return the plaintext it completes."""
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        if not self.handshake_done and not self._handshake():
            return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify
                self.closed = True
                break
            except ssl.SSLEOFError:  # the stream ended without close_notify
                self.closed = True
                break
            except ssl.SSLError as exc:
                raise TLSError(f"TLS error: {_reason(exc)}") from exc
            if not chunk:
                self.closed = True
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` for the peer (held until the handshake is done)."""
        if not self.handshake_done:
            self._held.append(data)
            return
        self._write(data)

    def outgoing(self) -> bytes:
        """The ciphertext to write to the peer now (``b""`` if none)."""
        return self._out.read()

    def close(self) -> None:
        """Send close_notify (to :meth:`outgoing`)."""
        # SSLWantReadError: the peer's close_notify is not awaited.
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()

    @property
    def alpn_protocol(self) -> str | None:
        """The ALPN protocol agreed on, if any."""
        return self._tls.selected_alpn_protocol()

    @property
    def version(self) -> str | None:
        """The TLS version in use (``"TLSv1.3"``), once the handshake is done."""
        return self._tls.version()

    def peer_certificate(self) -> bytes | None:
        """The peer's DER certificate (a client sees the server's), if any."""
        return self._tls.getpeercert(binary_form=True)

    def channel_binding(self) -> bytes | None:
        """``tls-server-end-point`` data of the server's certificate, for a
        client's SCRAM-SHA-256-PLUS; None without a peer certificate."""
        der = self.peer_certificate()
        return None if der is None else tls_server_end_point(der)

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLEOFError as exc:
            raise TLSError("the peer closed the connection during the TLS handshake") from exc
        except ssl.SSLError as exc:
            raise TLSError(f"TLS handshake failed: {_reason(exc)}") from exc
        self.handshake_done = True
        if self.require_alpn is not None and self.alpn_protocol != self.require_alpn:
            raise TLSError(
                f"the TLS handshake did not agree on ALPN {self.require_alpn!r} "
                f"(got {self.alpn_protocol!r})"
            )
        held, self._held = self._held, []
        for data in held:
            self._write(data)
        return True

    def _write(self, data: bytes) -> None:
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            raise TLSError(f"TLS error: {_reason(exc)}") from exc


def _reason(exc: ssl.SSLError) -> str:
    """The library's reason, with a certificate check's own words."""
    detail = getattr(exc, "verify_message", None)  # set by certificate checks
    reason = exc.reason or str(exc)
    return f"{reason}: {detail}" if detail else reason
