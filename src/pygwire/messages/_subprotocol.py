"""Messages carried inside CopyData: a tag byte, then fields, no length word.

Streaming replication, the ``pgoutput`` logical replication protocol and
BASE_BACKUP's archive stream all put small messages of their own inside
CopyData payloads.  Each starts with a tag byte and has no length word of
its own (the CopyData around it says how long it is).  Their tags collide
across sub-protocols (``w`` is WAL data in streaming replication, ``C`` a
commit in ``pgoutput``, ``d`` archive data in BASE_BACKUP), so each
sub-protocol is a :class:`SubProtocol` with its own tag registry.

A message is one class: a dataclass deriving from :class:`SubMessage`
(through its sub-protocol's base class, which sets ``protocol``) that
declares ``tag`` and two methods, ``_read`` and ``_write``, exactly like
the top-level messages in :mod:`pygwire.messages._base`.  Declaring the
class registers it.  They read and write through the same
:class:`~pygwire._wire.Reader` and :class:`~pygwire._wire.Writer`, so the
same rules hold: a payload must be consumed exactly; a fault raises
:class:`~pygwire.exceptions.DecodingError` naming the message and the offset
counted from the tag byte (offset 0); an encoder refuses what the wire
cannot carry with :class:`~pygwire.exceptions.EncodingError` before any
byte is produced.

Some layouts depend on the stream rather than on the bytes alone
(``pgoutput`` adds a transaction id to a change inside a streamed
transaction, and its version decides which messages exist).  Decoding and
encoding therefore take a *context*, whose type each sub-protocol chooses;
sub-protocols without one use ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Generic, Self, TypeVar

from .._wire import Reader, Writer
from ..constants import MAX_MESSAGE_LENGTH, MessageDirection
from ..exceptions import DecodingError
from .copy import CopyData

__all__ = ["SubMessage", "SubProtocol"]

C = TypeVar("C")

#: A CopyData payload may hold at most this many bytes (the length word
#: counts itself).
_MAX_PAYLOAD = MAX_MESSAGE_LENGTH - 4

_Bytes = bytes | bytearray | memoryview


class SubProtocol(Generic[C]):
    """One sub-protocol: a name, a default context and a registry of tags.

    ``decode`` reads the tag byte and hands the payload to the class
    registered for it; an empty payload or an unknown tag is a
    :class:`~pygwire.exceptions.DecodingError` named after the
    sub-protocol, at offset 0.
    """

    def __init__(self, name: str, default_context: C) -> None:
        #: Used in errors about the payload as a whole (no or unknown tag).
        self.name = name
        #: The context used when a caller gives none.
        self.default_context = default_context
        self._by_tag: dict[int, type[SubMessage[C]]] = {}

    def register(self, cls: type[SubMessage[C]]) -> None:
        """Add ``cls`` under its tag (done by :class:`SubMessage` itself)."""
        tag = cls.tag
        if len(tag) != 1:
            raise TypeError(f"{cls.__qualname__}.tag must be one byte, not {tag!r}")
        old = self._by_tag.get(tag[0])
        # dataclass(slots=True) builds a second class from the first: that
        # one replaces its draft.  Any other clash is a programming error.
        if old is not None and (old.__module__, old.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise TypeError(
                f"{self.name}: tag {tag!r} of {cls.__qualname__} is taken by {old.__qualname__}"
            )
        self._by_tag[tag[0]] = cls

    def message_class(self, tag: bytes | int) -> type[SubMessage[C]] | None:
        """The class registered for ``tag``, or None."""
        key = tag if isinstance(tag, int) else (tag[0] if len(tag) == 1 else -1)
        return self._by_tag.get(key)

    def __iter__(self) -> Iterator[type[SubMessage[C]]]:
        """Every registered class, in order of declaration."""
        return iter(tuple(self._by_tag.values()))

    def decode(self, data: _Bytes, context: C | None = None) -> SubMessage[C]:
        """Decode one message from a whole CopyData payload (tag included)."""
        buf = data if type(data) is bytes else bytes(data)
        if not buf:
            raise DecodingError(self.name, 0, "empty payload: no message tag")
        cls = self._by_tag.get(buf[0])
        if cls is None:
            raise DecodingError(self.name, 0, f"unknown message tag {buf[:1]!r}")
        ctx = self.default_context if context is None else context
        return cls._parse(buf, ctx)

    def __repr__(self) -> str:
        return f"<SubProtocol {self.name}: {len(self._by_tag)} messages>"


class SubMessage(Generic[C]):
    """Root of the messages that travel inside CopyData.

    Subclasses set ``protocol`` (once, in a sub-protocol's base class) and
    ``tag`` (in each message class), and implement ``_read`` / ``_write``.
    """

    __slots__ = ()

    #: The registry this message belongs to.
    protocol: ClassVar[SubProtocol[Any]]
    #: The tag byte; empty in abstract base classes.
    tag: ClassVar[bytes] = b""
    #: Which side sends it (None for messages either side may send).
    direction: ClassVar[MessageDirection | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if vars(cls).get("tag"):
            cls.protocol.register(cls)

    # -- encoding ------------------------------------------------------------
    def encode(self, context: C | None = None) -> bytes:
        """The CopyData payload: tag and fields."""
        buf = bytearray()
        self.encode_into(buf, context)
        return bytes(buf)

    def encode_into(self, buf: bytearray, context: C | None = None) -> None:
        """Append the CopyData payload to ``buf``.

        On an :class:`~pygwire.exceptions.EncodingError` nothing is
        appended: ``buf`` is left as it was.
        """
        ctx = self.protocol.default_context if context is None else context
        start = len(buf)
        try:
            w = Writer(buf, type(self).__name__, start + _MAX_PAYLOAD)
            w.raw(self.tag, "tag")
            self._write(w, ctx)
        except BaseException:
            del buf[start:]
            raise

    def copy_data(self, context: C | None = None) -> CopyData:
        """This message wrapped in the CopyData that carries it."""
        return CopyData(data=self.encode(context))

    def _write(self, w: Writer, ctx: C) -> None:
        """Append the fields (everything after the tag)."""

    # -- decoding ------------------------------------------------------------
    @classmethod
    def decode(cls, data: _Bytes, context: C | None = None) -> Self:
        """Build the message from a whole CopyData payload (tag included).

        The payload must start with this class's tag and be consumed
        exactly; any deviation raises
        :class:`~pygwire.exceptions.DecodingError`.
        """
        buf = data if type(data) is bytes else bytes(data)
        ctx = cls.protocol.default_context if context is None else context
        return cls._parse(buf, ctx)

    @classmethod
    def _parse(cls, buf: bytes, ctx: C) -> Self:
        r = Reader(buf, cls.__name__)
        tag = r.byte1()
        if tag != cls.tag[0]:
            r.fail(f"tag {bytes([tag])!r} is not {cls.tag!r}", at=0)
        msg = cls._read(r, ctx)
        r.finish()
        return msg

    @classmethod
    def _read(cls, r: Reader, ctx: C) -> Self:
        """Read the fields from ``r`` (positioned after the tag)."""
        return cls()
