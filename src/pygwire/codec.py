"""Incremental, phase-aware stream decoders (the contract names this module
``pygwire.codec``; each message class encodes itself, so only decoding lives
here).

:class:`BackendMessageDecoder` decodes what a server sends (for clients and
proxies); :class:`FrontendMessageDecoder` decodes what a client sends (for
servers and proxies).  Feed bytes in chunks of any size; read messages out.

The phase decides only *framing*:

* frontend stream, ``STARTUP``: packets without identifier byte (startup,
  SSL/GSSENC/cancel requests), or a TLS ClientHello for direct SSL;
* backend stream, ``SSL_NEGOTIATION``/``GSS_NEGOTIATION``: a single byte;
* everywhere else: Byte1 identifier, Int32 length, payload.

With standard framing a message decodes by its identifier alone, in any
phase; whether it may occur there is the state machine's business.  The
only exception is the client's ``p`` family, whose members (PasswordMessage,
SASLInitialResponse, SASLResponse, GSSResponse) only the phase tells apart.

Limits follow PostgreSQL's and are checked as soon as a length word
arrives, before the body is buffered.  A decoder that has raised stays
failed, raising the same error again, until :meth:`clear`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from . import _hotpath
from .constants import (
    MAX_MESSAGE_LENGTH,
    MAX_STARTUP_PACKET_LENGTH,
    ConnectionPhase,
)
from .exceptions import FramingError, ProtocolError
from .messages import PGMessage, _registry
from .messages.startup import (
    DirectSSLHandshake,
    GSSEncRequest,
    GSSEncResponse,
    SSLRequest,
    SSLResponse,
    StartupMessage,
)

__all__ = ["BackendMessageDecoder", "FrontendMessageDecoder", "MessageDecoder"]

#: PostgreSQL's PQ_SMALL_MESSAGE_LIMIT, for frontend messages that never
#: carry user data (Sync, Execute, ...).
SMALL_FRONTEND_LIMIT = 10_000
#: PG_MAX_AUTH_TOKEN_LENGTH: the largest password / SASL / GSS message.
AUTH_TOKEN_LIMIT = 65_535
#: libpq's limit for backend messages that do not carry result data.
SMALL_BACKEND_LIMIT = 30_000

# Framing modes.
_STANDARD = 0
_STARTUP = 1
_ONE_BYTE = 2
_SILENT = 3


class MessageDecoder:
    """Common machinery of both decoders.  Not instantiated directly."""

    #: message declarations of this direction, keyed by identifier byte.
    _classes: ClassVar[dict[int, _registry.Declaration]]

    def __init__(
        self,
        phase: ConnectionPhase = ConnectionPhase.STARTUP,
        *,
        max_message_size: int = MAX_MESSAGE_LENGTH,
        max_startup_size: int = MAX_STARTUP_PACKET_LENGTH,
    ) -> None:
        self._frames = _hotpath.FrameBuffer()
        # Messages decoded but not yet returned.
        self._queue = _hotpath.MessageQueue()
        self._error: ProtocolError | None = None
        self._max_startup = max_startup_size
        # Until the session is established the peer is not authenticated
        # (or, for a server, not yet known to be a PostgreSQL client): only
        # the small limits apply then, on both sides.
        self._startup_limits = self._build_limits(max_message_size, session=False)
        self._session_limits = self._build_limits(max_message_size, session=True)
        self._limits = self._startup_limits
        self._parsers: list[_hotpath.Parser | None] = [None] * 256
        for ident, declaration in self._classes.items():
            self._parsers[ident] = declaration.parser
        self.on_failure: Callable[[], object] | None = None
        """Called (without arguments) when the decoder raises the error that ends
        its stream, after every message before the bad bytes was handed out: how
        a connection marks itself failed."""
        self.phase = phase  # sets the framing mode, the limits and the held type

    @classmethod
    def _build_limits(cls, max_message_size: int, *, session: bool) -> list[int]:
        """Largest length word per identifier (-1: unknown type)."""
        limits = [-1] * 256
        for ident in cls._classes:
            limits[ident] = max_message_size
        return limits

    # -- phase -----------------------------------------------------------
    @property
    def phase(self) -> ConnectionPhase:
        """The phase that decides framing; set it after each transition.

        Messages already decoded (waiting in the decoder because they
        arrived in the same chunk) are not decoded again: no message the
        protocol allows to be pipelined changes framing.
        """
        return self._phase

    @phase.setter
    def phase(self, phase: ConnectionPhase) -> None:
        self._phase = phase
        self._mode = self._framing_mode(phase)
        session = phase not in _BEFORE_SESSION
        self._limits = self._session_limits if session else self._startup_limits

    def _framing_mode(self, phase: ConnectionPhase) -> int:
        """The framing mode for ``phase``; also sets ``_hold``."""
        self._hold = -1
        return _STANDARD

    # -- input -----------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes (any byte buffer); partial messages wait
        for the rest."""
        if type(data) is not bytes:
            if isinstance(data, (str, int)) or data is None:
                # bytes(5) would be five NULs: refuse what is not a buffer.
                raise TypeError(f"feed() takes bytes, not {type(data).__name__}")
            data = bytes(memoryview(data))
        if self._error is not None:
            raise self._error
        if data:
            self._frames.feed(data)

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet returned as messages."""
        return len(self._frames) + self._queue.nbytes

    def clear(self) -> None:
        """Drop buffered bytes and decoded messages; forget an earlier error."""
        self._frames.clear()
        self._queue.clear()
        self._error = None

    # -- output ----------------------------------------------------------
    def read(self) -> PGMessage | None:
        """The next complete message, or None if more bytes are needed.

        After an error, the messages that preceded the bad bytes are still
        returned first; then the error is raised, and again on every call
        until :meth:`clear`.
        """
        msg: PGMessage | None = self._queue.popleft()
        if msg is None and self._refill():
            msg = self._queue.popleft()
        return msg

    def read_all(self) -> list[PGMessage]:
        """Every complete message buffered so far."""
        return list(self)

    def feed_and_read(self, data: bytes | bytearray | memoryview) -> list[PGMessage]:
        """:meth:`feed` ``data``, then :meth:`read_all`: one call per chunk
        for a proxy's forwarding loop (quickest with ``bytes``)."""
        if type(data) is not bytes:
            self.feed(data)  # the checks, and the error a non-buffer gets
        elif self._error is not None:
            raise self._error
        elif data:
            self._frames.feed(data)
        return list(_hotpath.drain(self._queue, self._refill, None, None, "", False))

    def __iter__(self) -> Iterator[PGMessage]:
        """Yield messages until no complete message is left."""
        return _hotpath.drain(self._queue, self._refill, None, None, "", False)

    def messages(
        self,
        callback: Callable[..., object],
        steady_from: object = None,
        steady_attr: str = "",
        *,
        sized: bool = False,
    ) -> Iterator[PGMessage]:
        """Yield messages until no complete message is left, calling
        ``callback(msg)`` (with ``sized``: ``callback(msg, wire_size)``)
        before each is yielded, except for the message types in the set
        ``getattr(steady_from, steady_attr)``, read anew at every message.
        This is how a connection validates what it receives, lets rows
        through that change nothing, and tells observers."""
        return _hotpath.drain(self._queue, self._refill, callback, steady_from, steady_attr, sized)

    def __next__(self) -> PGMessage:
        msg = self.read()
        if msg is None:
            raise StopIteration
        return msg

    def _refill(self) -> bool:
        """Decode what is buffered into the (empty) queue (a batch in
        standard framing, one packet otherwise); False if no complete
        message was there.  An error is kept, and raised once the messages
        decoded before it have been handed out."""
        if self._error is None:
            try:
                if self._mode == _STANDARD:
                    frames, limits = self._frames, self._limits
                    stop = _hotpath.decode_frames(
                        frames, limits, self._parsers, self._queue, self._hold, BATCH
                    )
                    if stop == _hotpath.STOP_BAD_FRAME:
                        raise _hotpath.length_error(frames, limits)
                else:
                    before = len(self._frames)
                    msg = self._next_special()
                    if msg is not None:
                        self._queue.append(msg, before - len(self._frames))
            except ProtocolError as exc:
                self._error = exc
            if self._queue:
                return True
        if self._error is not None:
            if self.on_failure is not None:
                self.on_failure()
            raise self._error
        return False

    def _next_special(self) -> PGMessage | None:
        raise NotImplementedError


class BackendMessageDecoder(MessageDecoder):
    """Decodes the server-to-client stream."""

    _classes = _registry.BACKEND

    @classmethod
    def _build_limits(cls, max_message_size: int, *, session: bool) -> list[int]:
        # Like libpq: only messages that carry result data may be long, and
        # only once the server is authenticated.
        limits = super()._build_limits(max_message_size, session=session)
        for ident, declaration in cls._classes.items():
            if not session or not declaration.long:
                limits[ident] = min(SMALL_BACKEND_LIMIT, max_message_size)
        # GSSAPI tokens can exceed the small limit; allow what the server
        # itself accepts for a token, plus the code word.
        limits[ord("R")] = min(AUTH_TOKEN_LIMIT + 8, max_message_size)
        return limits

    def _framing_mode(self, phase: ConnectionPhase) -> int:
        # ReadyForQuery ends the startup: what follows it in the same chunk
        # is decoded with the session's limits.
        self._hold = _Z if phase in _BEFORE_SESSION else -1
        if phase in (ConnectionPhase.SSL_NEGOTIATION, ConnectionPhase.GSS_NEGOTIATION):
            return _ONE_BYTE
        return _STANDARD

    def _next_special(self) -> PGMessage | None:
        frames = self._frames
        b = frames.peek_byte()
        if b < 0:
            return None
        if b == 0x45:  # 'E': a server refusing the request with an error
            limits = self._limits
            stop = _hotpath.decode_frames(frames, limits, self._parsers, self._queue, -1, 1)
            if stop == _hotpath.STOP_BAD_FRAME:
                raise _hotpath.length_error(frames, limits)
            return None
        reply: type[SSLResponse] | type[GSSEncResponse] = (
            SSLResponse if self._phase is ConnectionPhase.SSL_NEGOTIATION else GSSEncResponse
        )
        msg = reply.decode(bytes([b]))
        frames.skip(1)
        if len(frames):
            # Bytes behind the one-byte answer were sent before the TLS/GSS
            # handshake, so they are not protected by it: treating them as
            # part of the encrypted session is the CVE-2021-23222 class.
            raise FramingError(
                f"{len(frames)} bytes arrived right after {msg!r}, before the "
                "encryption handshake; refusing them"
            )
        self._mode = _STANDARD  # what follows is framed as usual (the phase is the owner's)
        return msg


class FrontendMessageDecoder(MessageDecoder):
    """Decodes the client-to-server stream."""

    _classes = _registry.FRONTEND

    @classmethod
    def _build_limits(cls, max_message_size: int, *, session: bool) -> list[int]:
        # PostgreSQL's own limits (postgres.c, auth.c); before the session
        # only the authentication replies may pass the small limit.
        limits = super()._build_limits(max_message_size, session=session)
        for ident, declaration in cls._classes.items():
            if declaration.small or not session:
                limits[ident] = min(SMALL_FRONTEND_LIMIT, max_message_size)
        limits[ord("p")] = min(AUTH_TOKEN_LIMIT, max_message_size)
        return limits

    def _framing_mode(self, phase: ConnectionPhase) -> int:
        # The p family needs the phase; everything else decodes by type.
        p_family = _registry.P_FAMILY.get(phase) or self._classes[_P]  # PasswordMessage
        self._parsers[_P] = p_family.parser
        self._hold = _P
        if phase is ConnectionPhase.STARTUP:
            return _STARTUP
        if phase in (ConnectionPhase.SSL_NEGOTIATION, ConnectionPhase.GSS_NEGOTIATION):
            return _SILENT
        return _STANDARD

    def _next_special(self) -> PGMessage | None:
        frames = self._frames
        if self._mode == _SILENT:
            if len(frames):
                raise FramingError(
                    f"client sent {len(frames)} bytes before the server answered "
                    "its encryption request"
                )
            return None
        first = frames.peek_byte()
        if first < 0:
            return None
        if first == _TLS_HANDSHAKE:
            # PostgreSQL 17+ direct SSL: a TLS ClientHello instead of a
            # length word.  Hand the bytes over; nothing here is ours until
            # the phase is set again (after the TLS layer).
            self._mode = _SILENT
            return DirectSSLHandshake(data=frames.take())
        frame = frames.startup_frame(self._max_startup)
        if frame is None:
            return None
        start, end = frame
        buf = frames.buf
        code = int.from_bytes(buf[start : start + 4], "big")
        declaration = _registry.STARTUP_CODES.get(code)
        cls: type[PGMessage] = StartupMessage if declaration is None else declaration.cls
        if declaration is None and code >> 16 != 3:
            # An unknown request code leaves the stream unframeable, like an
            # unknown identifier byte: a FramingError, as documented in
            # exceptions.FramingError ("unknown startup codes").
            raise FramingError(
                f"startup packet: unsupported protocol version or request code {code}",
                length=end - start + 4,
            )
        msg = cls._parse_strict(buf, start, end)
        if cls is SSLRequest or cls is GSSEncRequest:
            if len(frames):
                # Plaintext pipelined behind the request would be taken as
                # arriving over the encrypted channel: CVE-2021-23214 class.
                raise FramingError(
                    f"{len(frames)} bytes arrived right after {cls.__name__}, "
                    "before the server's answer; refusing them"
                )
            self._mode = _SILENT  # until the answer: the phase is set again then
        return msg


_TLS_HANDSHAKE = 0x16  # TLS record type "handshake"
_P = ord("p")
_Z = ord("Z")
#: Messages decoded ahead of the reader, at most, per refill: decoding a
#: large chunk of small messages at once would hold them all as objects.
BATCH = 256
_BEFORE_SESSION = frozenset(
    {
        ConnectionPhase.STARTUP,
        ConnectionPhase.SSL_NEGOTIATION,
        ConnectionPhase.GSS_NEGOTIATION,
        ConnectionPhase.AUTHENTICATING,
        ConnectionPhase.AUTHENTICATING_SASL_INITIAL,
        ConnectionPhase.AUTHENTICATING_SASL_CONTINUE,
        ConnectionPhase.AUTHENTICATING_GSS,
        ConnectionPhase.INITIALIZATION,
    }
)
