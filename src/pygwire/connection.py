"""Decoder and state machine coordinated, still without I/O.

A :class:`Connection` validates every message against its state machine,
encodes what is sent and decodes what is received, and keeps the decoder's
framing phase in step with the protocol phase after *every* message, so a
chunk that holds an SSLResponse and more, or AuthenticationSASL followed by
further messages, is framed correctly.  Subclasses add I/O through the
:meth:`Connection.on_send` and :meth:`Connection.on_receive` hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from . import _framing
from .codec import _NO_TYPES, BackendMessageDecoder, FrontendMessageDecoder, MessageDecoder
from .constants import ConnectionPhase, TransactionStatus
from .exceptions import ProtocolError, StateMachineError
from .messages import PGMessage
from .state_machine import BackendStateMachine, FrontendStateMachine, _StateMachine

__all__ = ["BackendConnection", "Connection", "FrontendConnection"]

log = logging.getLogger("pygwire")


class Connection:
    """A decoder and a state machine for one side of one connection."""

    decoder: MessageDecoder
    state_machine: _StateMachine

    def __init__(self, decoder: MessageDecoder, state_machine: _StateMachine, strict: bool) -> None:
        self.decoder = decoder
        self.state_machine = state_machine
        self.strict = strict

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
        self._apply(self.state_machine.send, msg)
        self.on_send(data)
        return data

    def receive(self, data: bytes | bytearray | memoryview) -> Iterator[PGMessage]:
        """Feed received bytes; return an iterator over the complete messages.

        The bytes are buffered at once; each message is decoded, validated
        and passed to :meth:`on_receive` only when the iterator reaches it,
        so stopping early loses nothing: the next call yields the rest.
        """
        decoder = self.decoder
        decoder.feed(data)
        self._sync_decoder()  # in case the phase was forced in between
        # Rows and COPY data that are valid and change nothing skip the
        # per-message work below, unless on_receive wants to see them.
        hooked = getattr(self.on_receive, "__func__", None) is not Connection.on_receive
        machine = self.state_machine
        steady = _NO_TYPES if hooked else machine._state.steady[machine._theirs]
        return _framing.drain(decoder._queue, self._refill, self._received, steady)

    def _received(self, msg: PGMessage) -> None:
        self._apply(self.state_machine.receive, msg)
        self.on_receive(msg)

    def _refill(self) -> bool:
        try:
            return self.decoder._refill()
        except ProtocolError:
            # The stream cannot be decoded any further: the connection is lost.
            self.state_machine.fail()
            raise

    def _apply(self, step: Callable[[PGMessage], None], msg: PGMessage) -> None:
        try:
            step(msg)
        except StateMachineError as exc:
            if self.strict:
                raise
            log.warning("protocol violation ignored: %s", exc)
        self._sync_decoder()

    def _sync_decoder(self) -> None:
        # Framing follows the protocol phase after every single message.
        phase = self.state_machine.phase
        if phase is not self.decoder._phase:
            self.decoder.phase = phase

    # -- state ------------------------------------------------------------
    @property
    def phase(self) -> ConnectionPhase:
        return self.state_machine.phase

    @property
    def is_active(self) -> bool:
        return self.state_machine.is_active

    @property
    def is_ready(self) -> bool:
        return self.state_machine.is_ready

    @property
    def pending_syncs(self) -> int:
        return self.state_machine.pending_syncs

    @property
    def transaction_status(self) -> TransactionStatus | None:
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
