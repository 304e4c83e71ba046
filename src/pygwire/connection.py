"""Decoders and the protocol state coordinated, still without I/O.

A :class:`Connection` is one side of a connection: it validates every
message against its state machine, encodes what is sent and decodes what is
received, and keeps the decoder's framing in step with the protocol after
*every* message, so a chunk that holds an SSLResponse and more, or
AuthenticationSASL followed by further messages, is framed correctly.
Subclasses add I/O through the :meth:`Connection.on_send` and
:meth:`Connection.on_receive` hooks.

A :class:`ProxyConnection` sits between a client and a server: it decodes
both byte streams, validates each message once against one shared
:class:`~pygwire.state_machine.ProtocolState`, and hands back the original
bytes to forward, so nothing is encoded again.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import _framing
from .codec import BackendMessageDecoder, FrontendMessageDecoder, MessageDecoder
from .constants import ConnectionPhase, MessageDirection, TransactionStatus
from .exceptions import ProtocolError
from .messages import PGMessage
from .state_machine import (
    BackendStateMachine,
    FrontendStateMachine,
    ProtocolState,
    StateMachine,
)

__all__ = ["BackendConnection", "Connection", "FrontendConnection", "ProxyConnection"]

_Bytes = bytes | bytearray | memoryview


class Connection:
    """A decoder and a state machine for one side of one connection."""

    decoder: MessageDecoder
    state_machine: StateMachine

    def __init__(self, decoder: MessageDecoder, state_machine: StateMachine, strict: bool) -> None:
        self.decoder = decoder
        self.state_machine = state_machine
        self.strict = strict
        # The model's attribute holding the peer's steady message types.
        theirs = state_machine._theirs
        self._steady_name = (
            "steady_server" if theirs is MessageDirection.BACKEND else "steady_client"
        )

    @property
    def strict(self) -> bool:
        """Raise on protocol violations (True) or log them and carry on."""
        return self.state_machine.state.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self.state_machine.state.strict = value

    # -- hooks ------------------------------------------------------------
    def on_send(self, data: bytes) -> None:
        """Called with the encoded bytes of every sent message (no-op)."""

    def on_receive(self, msg: PGMessage) -> None:
        """Called with every received message before it is yielded (no-op)."""

    # -- traffic ----------------------------------------------------------
    def send(self, msg: PGMessage) -> bytes:
        """Validate ``msg``, encode it, pass it to :meth:`on_send`, return it.

        Encoding comes first so that a message that cannot be encoded does
        not advance the state machine.
        """
        data = msg.to_wire()
        self.state_machine.send(msg)
        self._sync_decoder()
        self.on_send(data)
        return data

    def receive(self, data: _Bytes) -> Iterator[PGMessage]:
        """Feed received bytes; return an iterator over the complete messages.

        The bytes are buffered at once; each message is decoded, validated
        and passed to :meth:`on_receive` only when the iterator reaches it,
        so stopping early loses nothing: the next call yields the rest.
        """
        decoder = self.decoder
        decoder.feed(data)
        self._sync_decoder()  # in case the phase was forced in between
        state = self.state_machine.state
        hooked = getattr(self.on_receive, "__func__", None) is not Connection.on_receive
        if hooked or not state.in_session:
            # Every message through _received: the hook sees it, and during
            # startup the decoder's framing follows each one.
            return _framing.drain(decoder._queue, self._refill, self._received, None, "")
        # In the session framing no longer changes: the model itself is the
        # callback, and rows and COPY data that change nothing skip it.
        step = state.server_sent if self._steady_name == "steady_server" else state.client_sent
        return _framing.drain(decoder._queue, self._refill, step, state, self._steady_name)

    def _received(self, msg: PGMessage) -> None:
        self.state_machine.receive(msg)
        self._sync_decoder()
        self.on_receive(msg)

    def _refill(self) -> bool:
        try:
            return self.decoder._refill()
        except ProtocolError:
            # The stream cannot be decoded any further: the connection is lost.
            self.state_machine.fail()
            raise

    def _sync_decoder(self) -> None:
        # Framing follows the protocol phase after every single message.
        phase = self.state_machine.phase
        if phase is not self.decoder._phase:
            self.decoder.phase = phase

    # -- state ------------------------------------------------------------
    @property
    def phase(self) -> ConnectionPhase:
        """The phase of the oldest outstanding request."""
        return self.state_machine.phase

    @property
    def is_active(self) -> bool:
        """False once the connection is terminated or has failed."""
        return self.state_machine.is_active

    @property
    def is_ready(self) -> bool:
        """True when nothing is outstanding (phase READY)."""
        return self.state_machine.is_ready

    @property
    def is_idle(self) -> bool:
        """Nothing in flight and not inside a transaction."""
        return self.state_machine.is_idle

    @property
    def pending_syncs(self) -> int:
        """Syncs sent whose ReadyForQuery has not come yet."""
        return self.state_machine.pending_syncs

    @property
    def outstanding(self) -> tuple[str, ...]:
        """The client requests not fully answered yet, oldest first."""
        return self.state_machine.outstanding

    @property
    def transaction_status(self) -> TransactionStatus | None:
        """The status from the last ReadyForQuery, if any."""
        return self.state_machine.transaction_status

    def __repr__(self) -> str:
        return f"<{type(self).__name__} phase={self.phase.name}>"


class FrontendConnection(Connection):
    """The client side: sends frontend messages, decodes the server's."""

    def __init__(
        self, initial_phase: ConnectionPhase = ConnectionPhase.STARTUP, strict: bool = True
    ) -> None:
        super().__init__(
            BackendMessageDecoder(initial_phase), FrontendStateMachine(initial_phase), strict
        )


class BackendConnection(Connection):
    """The server side: sends backend messages, decodes the client's."""

    def __init__(
        self, initial_phase: ConnectionPhase = ConnectionPhase.STARTUP, strict: bool = True
    ) -> None:
        super().__init__(
            FrontendMessageDecoder(initial_phase), BackendStateMachine(initial_phase), strict
        )


class _Stream:
    """One direction of a proxied connection: its decoder, the model's step
    for its messages, and the bytes fed but not yet taken for forwarding."""

    __slots__ = ("decoder", "state", "step", "steady", "chunks", "size", "refill")

    def __init__(self, decoder: MessageDecoder, state: ProtocolState, sender: MessageDirection):
        self.decoder = decoder
        self.state = state
        client = sender is MessageDirection.FRONTEND
        self.step = state.client_sent if client else state.server_sent
        self.steady = "steady_client" if client else "steady_server"
        self.chunks: list[bytes] = []
        self.size = 0
        self.refill = self._refill  # bound once: the receive loop calls it per batch

    def feed(self, data: _Bytes) -> None:
        chunk = data if type(data) is bytes else bytes(data)
        self.decoder.feed(chunk)
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)

    def take(self) -> bytes:
        """The original bytes of the messages handed out since the last
        take; bytes of messages not handed out yet stay."""
        keep = self.decoder.buffered
        chunks = self.chunks
        if not keep and len(chunks) == 1:  # the usual case: no copy at all
            self.size = 0
            return chunks.pop()
        data = b"".join(chunks)
        chunks.clear()
        if keep:
            chunks.append(data[len(data) - keep :])
            data = data[: len(data) - keep]
        self.size = keep
        return data

    def _refill(self) -> bool:
        try:
            return self.decoder._refill()
        except ProtocolError:
            self.state.fail()  # the stream cannot be decoded any further
            raise


class ProxyConnection:
    """Both directions of one proxied connection, validated by one model.

    Feed what the client sends to :meth:`from_client` and what the server
    sends to :meth:`from_server`, then take the original bytes of the
    messages handed out with :meth:`take_from_client` /
    :meth:`take_from_server` (or do both at once with the ``forward_*``
    methods).  Each message is validated once, by the
    shared :attr:`state`, in the order the proxy saw it; both decoders'
    framing follows it.  With ``strict=False`` violations are logged and
    applied as far as the model can instead of raised.
    """

    def __init__(
        self, initial_phase: ConnectionPhase = ConnectionPhase.STARTUP, *, strict: bool = True
    ) -> None:
        #: The one model of the connection, fed by both directions.
        self.state = ProtocolState(initial_phase, strict=strict)
        #: Decodes what the client sends.
        self.client_decoder = FrontendMessageDecoder(initial_phase)
        #: Decodes what the server sends.
        self.server_decoder = BackendMessageDecoder(initial_phase)
        self._client = _Stream(self.client_decoder, self.state, MessageDirection.FRONTEND)
        self._server = _Stream(self.server_decoder, self.state, MessageDirection.BACKEND)

    # -- messages ---------------------------------------------------------
    def from_client(self, data: _Bytes) -> Iterator[PGMessage]:
        """Feed bytes the client sent; yield each message once validated."""
        return self._messages(self._client, data)

    def from_server(self, data: _Bytes) -> Iterator[PGMessage]:
        """Feed bytes the server sent; yield each message once validated."""
        return self._messages(self._server, data)

    # -- bytes ------------------------------------------------------------
    def take_from_client(self) -> bytes:
        """The original bytes of the client messages handed out by
        :meth:`from_client` since the last call: what to write to the server."""
        return self._client.take()

    def take_from_server(self) -> bytes:
        """The original bytes of the server messages handed out since the last
        call: what to write to the client."""
        return self._server.take()

    def forward_from_client(self, data: _Bytes) -> bytes:
        """Feed bytes the client sent, validate every complete message, and
        return their original bytes, to be written to the server.  Bytes of
        an incomplete message wait until it completes."""
        for _ in self._messages(self._client, data):
            pass
        return self._client.take()

    def forward_from_server(self, data: _Bytes) -> bytes:
        """Feed bytes the server sent; return the validated ones for the client."""
        for _ in self._messages(self._server, data):
            pass
        return self._server.take()

    def _messages(self, stream: _Stream, data: _Bytes) -> Iterator[PGMessage]:
        stream.feed(data)
        decoder = stream.decoder
        if self.state.in_session:  # framing no longer changes
            return _framing.drain(
                decoder._queue, stream.refill, stream.step, self.state, stream.steady
            )
        self._sync_decoders()
        step = stream.step

        def startup_step(msg: PGMessage) -> None:
            step(msg)
            self._sync_decoders()  # the next message may be framed differently

        return _framing.drain(decoder._queue, stream.refill, startup_step, None, "")

    def _sync_decoders(self) -> None:
        phase = self.state.phase
        for decoder in (self.client_decoder, self.server_decoder):
            if decoder._phase is not phase:
                decoder.phase = phase

    # -- state ------------------------------------------------------------
    @property
    def phase(self) -> ConnectionPhase:
        """The phase of the oldest outstanding request."""
        return self.state.phase

    @property
    def is_idle(self) -> bool:
        """Nothing in flight and not inside a transaction."""
        return self.state.is_idle

    def __repr__(self) -> str:
        return (
            f"<ProxyConnection phase={self.phase.name} outstanding={list(self.state.outstanding)}>"
        )
