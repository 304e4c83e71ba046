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
from .constants import MAX_MESSAGE_LENGTH, ConnectionPhase, MessageDirection, TransactionStatus
from .messages import PGMessage
from .state_machine import (
    BackendStateMachine,
    FrontendStateMachine,
    ProtocolState,
    StateMachine,
)

__all__ = [
    "BackendConnection",
    "Connection",
    "FrontendConnection",
    "Observer",
    "ProxyConnection",
    "WireObserver",
]

_Bytes = bytes | bytearray | memoryview
F = MessageDirection.FRONTEND
B = MessageDirection.BACKEND

Observer = Callable[[MessageDirection, PGMessage, int], object]
"""Called for every message that crosses a connection, in either direction:
``observer(sender, message, wire_size)``.  A tracer, a proxy's counters and
a test's recorder all take this shape (``pygwire.trace.Tracer.trace`` is
one)."""
WireObserver = Callable[[MessageDirection, PGMessage, bytes], object]
"""``observer(sender, message, wire)``: like :data:`Observer`, with the
message's original bytes (type byte and length word included) in place of
their count; see :meth:`ProxyConnection.observe_wire`."""


class Connection:
    """A decoder and a state machine for one side of one connection."""

    decoder: MessageDecoder
    state_machine: StateMachine

    def __init__(self, decoder: MessageDecoder, state_machine: StateMachine, strict: bool) -> None:
        self.decoder = decoder
        self.state_machine = state_machine
        self.strict = strict
        self._observers: list[Observer] = []
        # A stream that cannot be decoded any further: the connection is lost.
        decoder.on_failure = state_machine.fail
        # The model's attribute holding the peer's steady message types.
        theirs = state_machine.theirs
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
    def observe(self, observer: Observer) -> None:
        """Call ``observer(sender, message, wire_size)`` for every message
        this side sends or receives, in order, once it is validated."""
        self._observers.append(observer)

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
        for observer in self._observers:
            observer(self.state_machine.mine, msg, len(data))
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
        if hooked or self._observers or not state.in_session:
            # Every message through _received: the hooks see it, and during
            # startup the decoder's framing follows each one.
            return decoder.messages(self._received, sized=True)
        # In the session framing no longer changes: the model itself is the
        # callback, and rows and COPY data that change nothing skip it.
        step = state.server_sent if self._steady_name == "steady_server" else state.client_sent
        return decoder.messages(step, state, self._steady_name)

    def _received(self, msg: PGMessage, size: int) -> None:
        self.state_machine.receive(msg)
        self._sync_decoder()
        for observer in self._observers:
            observer(self.state_machine.theirs, msg, size)
        self.on_receive(msg)

    def _sync_decoder(self) -> None:
        _frame_as(self.state_machine.state, (self.decoder,))

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


def _frame_as(state: ProtocolState, decoders: tuple[MessageDecoder, ...]) -> None:
    """Give ``decoders`` the framing ``state`` needs: the phase itself
    during startup, after every message (a chunk may hold an SSLResponse and
    more, or AuthenticationSASL and the first SASL reply); READY in the
    session, where every phase is framed alike."""
    phase = ConnectionPhase.READY if state.in_session else state.phase
    for decoder in decoders:
        if not state.in_session or decoder.phase is not phase:
            decoder.phase = phase


class FrontendConnection(Connection):
    """The client side: sends frontend messages, decodes the server's.

    ``max_message_size`` caps the length word the decoder accepts (the
    protocol's own limit by default).
    """

    def __init__(
        self,
        initial_phase: ConnectionPhase = ConnectionPhase.STARTUP,
        strict: bool = True,
        *,
        max_message_size: int = MAX_MESSAGE_LENGTH,
    ) -> None:
        super().__init__(
            BackendMessageDecoder(initial_phase, max_message_size=max_message_size),
            FrontendStateMachine(initial_phase),
            strict,
        )


class BackendConnection(Connection):
    """The server side: sends backend messages, decodes the client's.

    ``max_message_size`` caps the length word the decoder accepts (the
    protocol's own limit by default): a server that keeps less than
    PostgreSQL's 1 GiB per message in memory says so here.
    """

    def __init__(
        self,
        initial_phase: ConnectionPhase = ConnectionPhase.STARTUP,
        strict: bool = True,
        *,
        max_message_size: int = MAX_MESSAGE_LENGTH,
    ) -> None:
        super().__init__(
            FrontendMessageDecoder(initial_phase, max_message_size=max_message_size),
            BackendStateMachine(initial_phase),
            strict,
        )


class _Stream:
    """One direction of a proxied connection: its decoder, the model's step
    for its messages, and the bytes fed but not yet taken for forwarding."""

    __slots__ = (
        "decoder",
        "state",
        "sender",
        "step",
        "step_all",
        "steady",
        "chunks",
        "sync_decoders",
        "observers",
        "wire_observers",
        "observed",
    )

    def __init__(
        self,
        decoder: MessageDecoder,
        state: ProtocolState,
        sender: MessageDirection,
        sync_decoders: Callable[[], None],
        *,
        observers: list[Observer],
        wire_observers: list[WireObserver],
    ) -> None:
        self.decoder = decoder
        self.sync_decoders = sync_decoders
        self.sender = sender
        self.observers = observers
        self.wire_observers = wire_observers
        #: How many bytes at the start of ``chunks`` belong to messages the
        #: observers have seen: the next message's bytes start there.
        self.observed = 0
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
        if state.in_session and not self.chunks and not (self.observers or self.wire_observers):
            # The usual case, written out: whole messages in one chunk,
            # passed on as they came.
            decoder = self.decoder
            self.step_all(decoder.feed_and_read(chunk))
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
        if state.in_session and not (self.observers or self.wire_observers):  # framing is set
            return decoder.messages(self.step, state, self.steady)
        self.sync_decoders()
        return decoder.messages(self.step_observed, sized=True)

    def step_observed(self, msg: PGMessage, size: int) -> None:
        """Validate one message, keep the framing in step during startup,
        and tell the observers."""
        startup = not self.state.in_session
        self.step(msg)
        if startup:
            self.sync_decoders()  # the next message may be framed differently
        for observer in self.observers:
            observer(self.sender, msg, size)
        if self.wire_observers:
            # The message's bytes are the next ``size`` of those fed: a
            # slice of the chunk it came in (joined with the chunks before
            # when it spans several, which take() would join anyway).
            chunks = self.chunks
            if len(chunks) > 1:
                chunks[:] = [b"".join(chunks)]
            start = self.observed
            self.observed = start + size
            wire = chunks[0][start : start + size]
            for wire_observer in self.wire_observers:
                wire_observer(self.sender, msg, wire)

    def take(self) -> bytes:
        """The original bytes of the messages handed out since the last
        take; bytes of messages not handed out yet stay."""
        keep = self.decoder.buffered
        chunks = self.chunks
        self.observed = 0  # what stays has not been handed out
        if not keep and len(chunks) == 1:  # the usual case: no copy at all
            return chunks.pop()
        data = b"".join(chunks)
        chunks.clear()
        if keep:
            chunks.append(data[len(data) - keep :])
            data = data[: len(data) - keep]
        return data

    def take_unread(self) -> bytes:
        """Remove and return the bytes fed but not handed out as messages
        (complete or not), leaving the decoder empty; bytes of messages
        handed out stay for :meth:`take`."""
        keep = self.decoder.buffered
        data = b"".join(self.chunks)
        self.chunks.clear()
        if len(data) > keep:
            self.chunks.append(data[: len(data) - keep])
        self.observed = max(len(data) - keep, 0)  # what stays was handed out
        self.decoder.clear()
        return data[len(data) - keep :] if keep else b""


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
        self.state = ProtocolState(initial_phase, strict=strict)
        """The one model of the connection, fed by both directions."""
        self.client_decoder = FrontendMessageDecoder(initial_phase)
        """Decodes what the client sends."""
        self.server_decoder = BackendMessageDecoder(initial_phase)
        """Decodes what the server sends."""
        sync = self._sync_decoders
        self._observers: list[Observer] = []
        self._wire_observers: list[WireObserver] = []
        seen, seen_wire = self._observers, self._wire_observers
        self._client = _Stream(
            self.client_decoder, self.state, F, sync, observers=seen, wire_observers=seen_wire
        )
        self._server = _Stream(
            self.server_decoder, self.state, B, sync, observers=seen, wire_observers=seen_wire
        )
        self.from_client = self._client.messages
        """Feed bytes the client sent; yield each message once validated."""
        self.from_server = self._server.messages
        """Feed bytes the server sent; yield each message once validated."""
        self.forward_from_client = self._client.forward
        """Feed bytes the client sent, validate every complete message, and return
        their original bytes, to be written to the server (bytes of an
        incomplete message wait until it completes)."""
        self.forward_from_server = self._server.forward
        """The same for bytes the server sent: what to write to the client."""
        self.take_from_client = self._client.take
        """The original bytes of the client messages handed out by ``from_client``
        since the last call: what to write to the server."""
        self.take_from_server = self._server.take
        """The same for ``from_server``: what to write to the client."""
        self.take_unread_from_client = self._client.take_unread
        """Remove and return the bytes the client sent that no message handed out
        covers yet: to hand the rest of the stream to another reader (a proxy
        that stops validating, or relays the rest as is)."""
        self.take_unread_from_server = self._server.take_unread
        """The same for the server's stream: e.g. a proxy that authenticated
        upstream itself hands what follows AuthenticationOk to the model of the
        client's conversation."""

    def observe(self, observer: Observer) -> None:
        """Call ``observer(sender, message, wire_size)`` for every message
        of either direction, in the order the proxy validated them."""
        self._observers.append(observer)

    def observe_wire(self, observer: WireObserver) -> None:
        """Call ``observer(sender, message, wire)`` for every message of
        either direction, in the order the proxy validated them, with the
        message's original bytes: what a tracer formats, without encoding
        the message again (and exactly as the peer wrote it)."""
        self._wire_observers.append(observer)

    def _sync_decoders(self) -> None:
        _frame_as(self.state, (self.client_decoder, self.server_decoder))

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
