"""Exception types.

Everything pygwire raises derives from :class:`PygwireError`.  Decoders
promise that, whatever bytes they are fed, only :class:`FramingError` and
:class:`DecodingError` leave them.  Exceptions carry structured fields so
that callers (proxies, tracers) can act on them without parsing strings.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "DecodingError",
    "EncodingError",
    "FramingError",
    "ProtocolError",
    "PygwireError",
    "StateMachineError",
]


class PygwireError(Exception):
    """Root of every exception pygwire raises."""


class ProtocolError(PygwireError):
    """The peer (or the caller) broke the wire protocol."""


class FramingError(ProtocolError):
    """The byte stream cannot be split into messages.

    Raised for impossible or oversized length words, unknown startup codes,
    and bytes that arrive where the protocol allows none (for instance
    plaintext injected after an SSL/GSS negotiation reply).  ``identifier``
    is the message type byte involved, if any; ``length`` the declared
    length, if one was read.
    """

    def __init__(
        self,
        reason: str,
        *,
        identifier: bytes | None = None,
        length: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.identifier = identifier
        self.length = length


class DecodingError(ProtocolError):
    """A framed message's payload does not match its documented layout.

    ``message`` names the message type being decoded and ``offset`` is the
    position within the payload (after the identifier and length word)
    where decoding failed.
    """

    def __init__(self, message: str, offset: int, reason: str) -> None:
        super().__init__(f"{message}: {reason} (at payload offset {offset})")
        self.message = message
        self.offset = offset
        self.reason = reason


class EncodingError(PygwireError, ValueError):
    """A message cannot be represented on the wire.

    Raised before any byte is produced, e.g. for a NUL inside a string
    field, a count over 65535 or a body over the protocol's size limit.
    ``message`` names the message type and ``field`` the offending field.
    """

    def __init__(self, message: str, field: str, reason: str) -> None:
        super().__init__(f"{message}.{field}: {reason}")
        self.message = message
        self.field = field
        self.reason = reason


class StateMachineError(ProtocolError):
    """A message was sent or received in a phase where it cannot occur.

    ``phase`` is the phase at the time, ``message`` the offending message
    type's name, ``direction`` ``"send"`` or ``"receive"``, and ``expected``
    the names of the messages that would have been valid.
    """

    def __init__(
        self,
        reason: str,
        *,
        phase: object = None,
        message: str | None = None,
        direction: str | None = None,
        expected: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.phase = phase
        self.message = message
        self.direction = direction
        self.expected = expected


class AuthenticationError(PygwireError):
    """Authentication cannot go on: refused by policy, or a bad exchange.

    ``sqlstate`` is the code PostgreSQL uses for the same failure (28P01 a
    wrong password or unknown user; 28000 an unacceptable authorization: a
    channel-binding mismatch or downgrade, or a client policy refusal; 0A000
    an unsupported SCRAM feature such as an authzid; 08P01 a malformed
    exchange), so a server can send it on unchanged in an ErrorResponse; a
    client sees which check failed in the message.
    """

    def __init__(self, message: str, sqlstate: str = "08P01") -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
