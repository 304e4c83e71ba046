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

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .codec import BackendMessageDecoder, FrontendMessageDecoder, MessageDecoder
from .constants import ConnectionPhase, MessageDirection, TransactionStatus
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
        # A stream that cannot be decoded any further: the connection is lost.
        decoder.on_failure = state_machine.fail
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
            return decoder.messages(self._received)
        # In the session framing no longer changes: the model itself is the
        # callback, and rows and COPY data that change nothing skip it.
        step = state.server_sent if self._steady_name == "steady_server" else state.client_sent
        return decoder.messages(step, state, self._steady_name)

    def _received(self, msg: PGMessage) -> None:
        self.state_machine.receive(msg)
        self._sync_decoder()
        self.on_receive(msg)

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

    __slots__ = ("decoder", "state", "step", "step_all", "steady", "chunks", "sync_decoders")

    def __init__(
        self,
        decoder: MessageDecoder,
        state: ProtocolState,
        sender: MessageDirection,
        sync_decoders: Callable[[], None],
    ) -> None:
        self.decoder = decoder
        self.sync_decoders = sync_decoders
        self.state = state
        client = sender is MessageDirection.FRONTEND
        self.step = state.client_sent if client else state.server_sent
        self.step_all = state.client_sent_all if client else state.server_sent_all
        self.steady = "steady_client" if client else "steady_server"
        self.chunks: list[bytes] = []
        decoder.on_failure = state.fail  # the stream cannot be decoded any further

    def feed(self, data: _Bytes) -> bytes:
        chunk = data if type(data) is bytes else bytes(data)
        self.decoder.feed(chunk)
        if chunk:
            self.chunks.append(chunk)
        return chunk

    def forward(self, data: _Bytes) -> bytes:
        """Feed ``data``, validate every complete message, and return the
        original bytes of those messages."""
        chunk = data if type(data) is bytes else bytes(data)
        state = self.state
        if state.in_session and not self.chunks:
            # The usual case, written out: whole messages in one chunk,
            # passed on as they came.
            decoder = self.decoder
            decoder.feed(chunk)
            self.step_all(decoder.read_all())
            if not decoder.buffered:
                return chunk
            self.chunks.append(chunk)
            return self.take()
        _consume(self.messages(chunk))
        return self.take()

    def messages(self, data: _Bytes) -> Iterator[PGMessage]:
        self.feed(data)
        decoder = self.decoder
        state = self.state
        if state.in_session:  # framing no longer changes
            return decoder.messages(self.step, state, self.steady)
        state_step = self.step
        sync = self.sync_decoders

        def startup_step(msg: PGMessage) -> None:
            state_step(msg)
            sync()  # the next message may be framed differently

        sync()
        return decoder.messages(startup_step)

    def take(self) -> bytes:
        """The original bytes of the messages handed out since the last
        take; bytes of messages not handed out yet stay."""
        keep = self.decoder.buffered
        chunks = self.chunks
        if not keep and len(chunks) == 1:  # the usual case: no copy at all
            return chunks.pop()
        data = b"".join(chunks)
        chunks.clear()
        if keep:
            chunks.append(data[len(data) - keep :])
            data = data[: len(data) - keep]
        return data


#: Runs an iterator to its end, in C.
_consume: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend


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
        sync = self._sync_decoders
        self._client = _Stream(self.client_decoder, self.state, MessageDirection.FRONTEND, sync)
        self._server = _Stream(self.server_decoder, self.state, MessageDirection.BACKEND, sync)
        #: Feed bytes the client sent; yield each message once validated.
        self.from_client = self._client.messages
        #: Feed bytes the server sent; yield each message once validated.
        self.from_server = self._server.messages
        #: Feed bytes the client sent, validate every complete message, and
        #: return their original bytes, to be written to the server (bytes
        #: of an incomplete message wait until it completes).
        self.forward_from_client = self._client.forward
        #: The same for bytes the server sent: what to write to the client.
        self.forward_from_server = self._server.forward
        #: The original bytes of the client messages handed out by
        #: ``from_client`` since the last call: what to write to the server.
        self.take_from_client = self._client.take
        #: The same for ``from_server``: what to write to the client.
        self.take_from_server = self._server.take

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
