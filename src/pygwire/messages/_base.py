"""Base classes shared by every message.

A message class declares its identifier byte and two methods: ``_read``
builds the message from a :class:`Reader` positioned at the start of the
payload, ``_write`` appends the payload to a :class:`Writer`.  Framing
(identifier, length word, size limit, rollback on error) is done here,
once, for all of them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import ClassVar, Self

from .._wire import Reader, Writer
from ..constants import MAX_MESSAGE_LENGTH, MessageDirection

__all__ = [
    "BackendMessage",
    "CommonMessage",
    "FrontendMessage",
    "PGMessage",
    "OpaqueData",
    "SpecialMessage",
    "encode_messages",
]


#: What a fast encoder may raise on an unusual value: the validating
#: encoder then runs and reports the fault as an EncodingError.
_NOT_FAST = (TypeError, ValueError, OverflowError, AttributeError, LookupError, struct.error)


class PGMessage:
    """Root of every protocol message."""

    __slots__ = ()

    #: The type byte; ``b""`` for startup-phase packets that have none.
    identifier: ClassVar[bytes] = b""
    #: Which side sends it (None for messages both sides send).
    direction: ClassVar[MessageDirection | None] = None

    def to_wire(self) -> bytes:
        """The complete wire form: identifier, Int32 length, payload."""
        try:
            wire = self._fast_wire()
        except _NOT_FAST:
            wire = None
        if wire is not None:
            return wire
        buf = bytearray()
        self._encode_validated(buf)
        return bytes(buf)

    def encode_into(self, buf: bytearray) -> None:
        """Append the wire form to ``buf``.

        On an :class:`~pygwire.exceptions.EncodingError` nothing is
        appended: ``buf`` is left as it was.
        """
        wire = self._try_fast_wire()
        if wire is not None:
            buf += wire
        else:
            self._encode_validated(buf)

    def _fast_wire(self) -> bytes | None:
        """The wire form built directly, for frequent messages; None (or
        any exception) whenever the value is unusual, so that the
        validating encoder decides and names the offending field."""
        return None

    def _try_fast_wire(self) -> bytes | None:
        try:
            return self._fast_wire()
        except _NOT_FAST:
            return None

    def _encode_validated(self, buf: bytearray) -> None:
        start = len(buf)
        try:
            buf += self.identifier
            at = len(buf)
            buf += b"\0\0\0\0"
            self._write(Writer(buf, type(self).__name__, at + MAX_MESSAGE_LENGTH))
            buf[at : at + 4] = (len(buf) - at).to_bytes(4, "big")
        except BaseException:
            del buf[start:]
            raise

    def _write(self, w: Writer) -> None:
        """Append the payload (everything after the length word)."""

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Self:
        """Build the message from its payload alone (no identifier, no length).

        The payload must be consumed exactly; any deviation from the
        documented layout raises :class:`~pygwire.exceptions.DecodingError`.
        """
        data = payload if type(payload) is bytes else bytes(payload)
        return cls._parse_strict(data, 0, len(data))

    @classmethod
    def _parse_strict(cls, buf: bytes, start: int, end: int) -> Self:
        """Decode ``buf[start:end]`` through the bounds-checked Reader."""
        r = Reader(buf, cls.__name__, start, end)
        msg = cls._read(r)
        if r.pos != end:
            r.finish()
        return msg

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        """What the stream decoders call.

        Frequent messages override this with a fast path that checks the
        same things as :meth:`_read` and, on any doubt, hands over to
        :meth:`_parse_strict`, which either decodes or raises the precise
        DecodingError.  The two must agree on every input.
        """
        return cls._parse_strict(buf, start, end)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        """Read the fields from ``r``; the caller checks ``r.finish()``."""
        return cls()

    @classmethod
    def _stream_parser(cls) -> Callable[[bytes, int, int], PGMessage]:
        """The parser a stream decoder stores for this class, once."""
        if getattr(cls._parse, "__func__", None) is not _parse_empty:
            return cls._parse
        # Fieldless (Sync, BindComplete, ...): the shared instance, bound now.
        shared = _shared(cls)
        strict = cls._parse_strict

        def parse(buf: bytes, start: int, end: int) -> PGMessage:
            return shared if start == end else strict(buf, start, end)

        return parse

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "_fast_wire" not in vars(cls):
            fieldless = getattr(cls._write, "__code__", None) is _WRITE_NOTHING
            if cls.identifier and fieldless and cls._fast_wire is PGMessage._fast_wire:
                # No fields: the wire form is a constant.
                wire = cls.identifier + b"\0\0\0\x04"
                cls._fast_wire = _constant_wire(wire)  # type: ignore[method-assign,assignment]
                cls.to_wire = _constant_wire(wire)  # type: ignore[method-assign,assignment]
            elif getattr(cls._fast_wire, "constant", False):  # a fieldless parent
                cls._fast_wire = PGMessage._fast_wire  # type: ignore[method-assign]
                cls.to_wire = PGMessage.to_wire  # type: ignore[method-assign]
        if "_parse" not in vars(cls):
            # A class without fields only has to check that the payload is
            # empty; a class with fields must not inherit that shortcut.  A
            # parser a parent chose on purpose is kept either way.
            inherited = getattr(cls._parse, "__func__", None)
            fieldless = getattr(cls._read, "__func__", None) is _READ_NOTHING
            if fieldless and inherited is _PARSE_STRICT:
                cls._parse = classmethod(_parse_empty)  # type: ignore[assignment,method-assign]
            elif not fieldless and inherited is _parse_empty:
                cls._parse = classmethod(_PARSE_STRICT)  # type: ignore[assignment,method-assign]


_READ_NOTHING = PGMessage._read.__func__  # type: ignore[attr-defined]
_WRITE_NOTHING = PGMessage._write.__code__
_PARSE_STRICT = PGMessage._parse.__func__  # type: ignore[attr-defined]


def _constant_wire(wire: bytes) -> Callable[[PGMessage], bytes]:
    def fast_wire(self: PGMessage) -> bytes:
        return wire

    fast_wire.constant = True  # type: ignore[attr-defined]
    return fast_wire


def _parse_empty(cls: type[PGMessage], buf: bytes, start: int, end: int) -> PGMessage:
    if start != end:
        return cls._parse_strict(buf, start, end)
    return _shared(cls)


def _shared(cls: type[PGMessage]) -> PGMessage:
    # A fieldless message has empty slots, so it cannot be changed: one
    # shared instance per class serves every Sync, ParseComplete, ...
    msg = _SHARED.get(cls)
    if msg is None:
        msg = _SHARED[cls] = cls()
    return msg


_SHARED: dict[type[PGMessage], PGMessage] = {}


class OpaqueData(PGMessage):
    """Mixin for messages whose whole payload is one opaque ``data`` field
    (COPY data, SASL and GSSAPI tokens): nothing to check, one slice."""

    __slots__ = ()
    data: bytes

    def _write(self, w: Writer) -> None:
        w.raw(self.data, "data")

    def _fast_wire(self) -> bytes | None:
        data = self.data
        if type(data) is not bytes or len(data) > MAX_MESSAGE_LENGTH - 4:
            return None
        return self.identifier + (len(data) + 4).to_bytes(4, "big") + data

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(r.rest())  # type: ignore[call-arg]

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        return cls(buf[start:end])  # type: ignore[call-arg]


class FrontendMessage(PGMessage):
    """A message only clients send."""

    __slots__ = ()
    direction = MessageDirection.FRONTEND


class BackendMessage(PGMessage):
    """A message only servers send."""

    __slots__ = ()
    direction = MessageDirection.BACKEND


class CommonMessage(PGMessage):
    """A message both sides send (COPY data and completion)."""

    __slots__ = ()


class SpecialMessage(PGMessage):
    """A startup-phase packet without identifier byte."""

    __slots__ = ()


def encode_messages(messages: Iterable[PGMessage]) -> bytes:
    """Encode several messages into one buffer, e.g. a whole pipeline."""
    buf = bytearray()
    for m in messages:
        m.encode_into(buf)
    return bytes(buf)
