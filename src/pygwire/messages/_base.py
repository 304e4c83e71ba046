"""Base classes shared by every message.

A message class declares its identifier byte and two methods: ``_read``
builds the message from a :class:`Reader` positioned at the start of the
payload, ``_write`` appends the payload to a :class:`Writer`.  Framing
(identifier, length word, size limit, rollback on error) is done here,
once, for all of them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import ClassVar, Self

from .._wire import Reader, Writer
from ..constants import MAX_MESSAGE_LENGTH, MessageDirection
from ..exceptions import EncodingError

__all__ = [
    "BackendMessage",
    "CommonMessage",
    "FrontendMessage",
    "PGMessage",
    "OpaqueData",
    "SpecialMessage",
    "encode_messages",
]


class PGMessage:
    """Root of every protocol message."""

    __slots__ = ()

    #: The type byte; ``b""`` for startup-phase packets that have none.
    identifier: ClassVar[bytes] = b""
    #: Which side sends it (None for messages both sides send).
    direction: ClassVar[MessageDirection | None] = None

    def to_wire(self) -> bytes:
        """The complete wire form: identifier, Int32 length, payload."""
        wire = self._fast_wire()
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
        wire = self._fast_wire()
        if wire is not None:
            buf += wire
        else:
            self._encode_validated(buf)

    def _fast_wire(self) -> bytes | None:
        """The wire form built directly, for frequent messages; None
        whenever a value is unusual, found by explicit checks (never by
        catching an error), so that the validating encoder decides and
        names the offending field."""
        return None

    def _encode_validated(self, buf: bytearray) -> None:
        problem = _check_fields(self)
        if problem is not None:
            raise EncodingError(type(self).__name__, *problem)
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


# -- field types: what the validating encoder checks before any byte -----------------

#: A check returns None when a value is fine, else (field, complaint).
_Check = Callable[[object, str], "tuple[str, str] | None"]
_CHECKS: dict[type, list[tuple[str, _Check]]] = {}


def _check_fields(msg: PGMessage) -> tuple[str, str] | None:
    """The first field of ``msg`` whose value does not have its declared
    type, as (field, complaint); None when every field is fine.  The checks
    are derived once per class from its dataclass field annotations."""
    cls = type(msg)
    checks = _CHECKS.get(cls)
    if checks is None:
        checks = _CHECKS[cls] = _checks_of(cls)
    for name, check in checks:
        problem = check(getattr(msg, name), name)
        if problem is not None:
            return problem
    return None


def _checks_of(cls: type) -> list[tuple[str, _Check]]:
    if not dataclasses.is_dataclass(cls):
        return []
    hints = typing.get_type_hints(cls)
    return [(f.name, _check_for(hints[f.name])) for f in dataclasses.fields(cls)]


def _is_byte_buffer(value: object) -> bool:
    if isinstance(value, (str, int)) or value is None:
        return False
    try:
        with memoryview(value) as view:  # type: ignore[arg-type]
            return view.itemsize == 1 and view.c_contiguous
    except TypeError:
        return False


def _named(value: object) -> str:
    return type(value).__name__


def _check_for(hint: object) -> _Check:
    """The check for one annotation (the types messages use)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        checks = [_check_for(a) for a in args]

        def any_of(v: object, name: str) -> tuple[str, str] | None:
            problems = [c(v, name) for c in checks]
            if all(problems):
                kinds = " or ".join(_describe(a) for a in args)
                return name, f"expected {kinds}, got {_named(v)}"
            return None

        return any_of
    if origin is list:
        item = _check_for(args[0])

        def each(v: object, name: str) -> tuple[str, str] | None:
            if not isinstance(v, (list, tuple)):
                return name, f"expected a list, got {_named(v)}"
            for i, x in enumerate(v):
                problem = item(x, f"{name}[{i}]")
                if problem is not None:
                    return name, problem[1]
            return None

        return each
    if origin is dict:
        key, val = _check_for(args[0]), _check_for(args[1])

        def mapping(v: object, name: str) -> tuple[str, str] | None:
            if not isinstance(v, dict):
                return name, f"expected a dict, got {_named(v)}"
            for k, x in v.items():
                problem = key(k, name) or val(x, name)
                if problem is not None:
                    return name, problem[1]
            return None

        return mapping
    if hint is type(None):
        return lambda v, name: None if v is None else (name, f"expected None, got {_named(v)}")
    if hint is bytes:
        return lambda v, name: (
            None if _is_byte_buffer(v) else (name, f"expected bytes, got {_named(v)}")
        )
    if hint is int:
        return lambda v, name: (
            None
            if isinstance(v, int) and not isinstance(v, bool)
            else (name, f"expected an integer, got {_named(v)}")
        )
    assert isinstance(hint, type), hint
    return lambda v, name: (
        None if isinstance(v, hint) else (name, f"expected {hint.__name__}, got {_named(v)}")
    )


def _describe(hint: object) -> str:
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


def encode_messages(messages: Iterable[PGMessage]) -> bytes:
    """Encode several messages into one buffer, e.g. a whole pipeline."""
    buf = bytearray()
    for m in messages:
        m.encode_into(buf)
    return bytes(buf)
