"""Base classes, and the one declaration every message makes.

A message class is declared once, with :func:`message`::

    @message(b"E", small=True)
    class Execute(FrontendMessage):
        portal: str = ""
        max_rows: Annotated[int, INT32] = 0

        def _write(self, w: Writer) -> None: ...      # the payload, through the Writer

        @classmethod
        def _read(cls, r: Reader) -> Self: ...        # the payload, through the Reader

The decorator makes it a slotted dataclass and records a
:class:`Declaration` in :data:`REGISTRY`; the decoders' tables, the
package's exports and the test strategies all derive from it.  A message
without fields gets its constant wire form and one shared decoded instance.

Framing (identifier, length word, size limit, rollback on error) is written
here once: :meth:`PGMessage._encode_validated` for the validating path and
:func:`frame` for the fast paths some frequent messages have.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self, TypeVar

from .._wire import Reader, WireInt, Writer
from ..constants import MAX_MESSAGE_LENGTH, ConnectionPhase, MessageDirection
from ..exceptions import EncodingError

__all__ = [
    "REGISTRY",
    "BackendMessage",
    "CommonMessage",
    "Declaration",
    "FrontendMessage",
    "OpaqueData",
    "PGMessage",
    "SpecialMessage",
    "check_fields",
    "encode_messages",
    "frame",
    "header",
    "message",
]

#: Builds a message from a payload window ``(buf, start, end)``.
Parser = Callable[[bytes, int, int], Any]


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
        problem = check_fields(self)
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


class OpaqueData(PGMessage):
    """Mixin for messages whose whole payload is one opaque ``data`` field
    (COPY data, SASL and GSSAPI tokens): nothing to check, one slice."""

    __slots__ = ()
    data: bytes

    if typing.TYPE_CHECKING:  # each such message is a dataclass of ``data`` alone

        def __init__(self, data: bytes = b"") -> None: ...

    def _write(self, w: Writer) -> None:
        w.raw(self.data, "data")

    def _fast_wire(self) -> bytes | None:
        data = self.data
        return frame(self.identifier, data) if type(data) is bytes else None

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(r.rest())

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        return cls(buf[start:end])


# -- framing, written once ------------------------------------------------------------

_HEADER = struct.Struct("!cI").pack


def header(identifier: bytes, length: int) -> bytes:
    """An identifier and a length word (``length`` counts itself)."""
    return _HEADER(identifier, length)


def frame(identifier: bytes, body: bytes) -> bytes | None:
    """For fast paths: ``body`` framed, or None when it is too large for a
    message (then the validating path refuses it, naming the field)."""
    length = len(body) + 4
    if length > MAX_MESSAGE_LENGTH:
        return None
    return _HEADER(identifier, length) + body


def encode_messages(messages: Iterable[PGMessage]) -> bytes:
    """Encode several messages into one buffer, e.g. a whole pipeline."""
    buf = bytearray()
    for m in messages:
        m.encode_into(buf)
    return bytes(buf)


# -- the declaration --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Declaration:
    """What :func:`message` records about a message class."""

    cls: type[PGMessage]
    #: The type byte (``b""`` for startup-phase packets).
    identifier: bytes
    #: The parser a stream decoder keeps for it.
    parser: Parser
    #: Authentication messages: the Int32 code after 'R'.  Startup-phase
    #: packets: the request code that follows the length word.
    code: int | None = None
    #: Messages that share identifier 'p' with PasswordMessage: the phases
    #: in which a 'p' is this class (only the phase tells them apart).
    decoded_in: tuple[ConnectionPhase, ...] = ()
    #: PostgreSQL reads this client message with its small limit (10,000).
    small: bool = False
    #: A server message that may exceed libpq's 30,000-byte limit.
    long: bool = False


#: Every declared message class, in declaration order.
REGISTRY: list[Declaration] = []

M = TypeVar("M", bound=PGMessage)


@typing.dataclass_transform(field_specifiers=(dataclasses.field,))
def message(
    identifier: bytes = b"",
    *,
    code: int | None = None,
    decoded_in: tuple[ConnectionPhase, ...] = (),
    small: bool = False,
    long: bool = False,
    parser: Callable[[type[Any]], Parser] | None = None,
) -> Callable[[type[M]], type[M]]:
    """Declare a message class (see the module's notes): a slotted
    dataclass of its annotated fields (unless it lays out its own slots),
    registered with these facts.  ``parser`` makes the stream decoders'
    parser from the class, when not ``cls._parse``."""

    def declare(cls: type[M]) -> type[M]:
        if "__slots__" not in vars(cls) and not issubclass(cls, enum.Enum):
            cls = dataclasses.dataclass(slots=True)(cls)
        if identifier:
            cls.identifier = identifier
        if code is not None:
            setattr(cls, "code", code)  # noqa: B010 - not every message has a code
        stream_parser = parser(cls) if parser is not None else cls._parse
        fieldless = dataclasses.is_dataclass(cls) and not dataclasses.fields(cls)
        if fieldless and cls._write is PGMessage._write and identifier:
            # No fields: one constant wire form, one shared decoded instance.
            stream_parser = _fieldless(cls, identifier)
        REGISTRY.append(Declaration(cls, identifier, stream_parser, code, decoded_in, small, long))
        return cls

    return declare


def _fieldless(cls: type[PGMessage], identifier: bytes) -> Parser:
    wire = identifier + b"\0\0\0\x04"
    shared = cls()  # no fields, so nothing can change it: every decode returns it
    strict = cls._parse_strict

    def to_wire(self: PGMessage) -> bytes:
        return wire

    def parse(buf: bytes, start: int, end: int) -> PGMessage:
        return shared if start == end else strict(buf, start, end)

    cls.to_wire = cls._fast_wire = to_wire  # type: ignore[method-assign]  # the constant
    return parse


# -- field types: what the validating encoder checks before any byte -----------------

#: A check returns None when a value is fine, else (field, complaint).
_Check = Callable[[object, str], "tuple[str, str] | None"]
_CHECKS: dict[type, list[tuple[str, _Check]]] = {}


def check_fields(msg: PGMessage) -> tuple[str, str] | None:
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
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, _check_for(hints[f.name])) for f in dataclasses.fields(cls)]


def _is_byte_buffer(value: Any) -> bool:
    if isinstance(value, (str, int)) or value is None:
        return False
    try:
        view = memoryview(value)  # a TypeError says it is no buffer
    except TypeError:
        return False
    with view:
        return view.itemsize == 1 and view.c_contiguous


def _named(value: object) -> str:
    return type(value).__name__


def _check_for(hint: object) -> _Check:
    """The check for one annotation (the types messages use)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _check_int(args[1]) if isinstance(args[1], WireInt) else _check_for(args[0])
    if origin in (types.UnionType, typing.Union):
        return _check_union(args)
    if origin is list:
        return _check_list(_check_for(args[0]))
    if origin is dict:
        return _check_dict(_check_for(args[0]), _check_for(args[1]))
    if hint is type(None):
        return lambda v, name: None if v is None else (name, f"expected None, got {_named(v)}")
    if hint is bytes:
        return lambda v, name: (
            None if _is_byte_buffer(v) else (name, f"expected bytes, got {_named(v)}")
        )
    if hint is int:
        return _check_int(None)
    assert isinstance(hint, type), hint
    return lambda v, name: (
        None if isinstance(v, hint) else (name, f"expected {hint.__name__}, got {_named(v)}")
    )


def _check_int(wire: WireInt | None) -> _Check:
    def check(v: object, name: str) -> tuple[str, str] | None:
        if not isinstance(v, int) or isinstance(v, bool):
            return name, f"expected an integer, got {_named(v)}"
        if wire is not None and not wire.lo <= v <= wire.hi:
            return name, f"{v} is outside {wire.lo}..{wire.hi} ({wire.name})"
        return None

    return check


def _check_union(args: tuple[object, ...]) -> _Check:
    checks = [_check_for(a) for a in args]

    def check(v: object, name: str) -> tuple[str, str] | None:
        if all(c(v, name) for c in checks):
            kinds = " or ".join(
                "None" if a is type(None) else getattr(a, "__name__", str(a)) for a in args
            )
            return name, f"expected {kinds}, got {_named(v)}"
        return None

    return check


def _check_list(item: _Check) -> _Check:
    def check(v: object, name: str) -> tuple[str, str] | None:
        if not isinstance(v, (list, tuple)):
            return name, f"expected a list, got {_named(v)}"
        for i, x in enumerate(v):
            problem = item(x, f"{name}[{i}]")
            if problem is not None:
                return name, f"item {i}: {problem[1]}"
        return None

    return check


def _check_dict(key: _Check, value: _Check) -> _Check:
    def check(v: object, name: str) -> tuple[str, str] | None:
        if not isinstance(v, dict):
            return name, f"expected a dict, got {_named(v)}"
        for k, x in v.items():
            problem = key(k, name) or value(x, name)
            if problem is not None:
                return name, problem[1]
        return None

    return check
