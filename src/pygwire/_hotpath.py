"""Hot paths: splitting a byte stream into frames, and splitting rows.

Everything the decoders do per message and per column lives here behind a
narrow interface, so that a compiled twin can replace it while this
pure-Python version stays the reference:

* :class:`FrameBuffer` accumulates fed bytes; :func:`decode_frames` cuts
  every complete frame out of it in one loop and hands each payload, as a
  window ``(buf, start, end)``, to the parser of its type, so payloads are
  parsed in place, never copied just to be parsed; the messages wait in a
  :class:`MessageQueue`;
* :func:`drain` is the per-message loop of every decoder and connection:
  it hands out queued messages, refills the queue, and runs a callback
  (the state machine) for all but the "steady" types (rows and COPY data
  that change nothing);
* :func:`model_steppers` makes the protocol model's loops over each
  chunk's messages (``ProtocolState.server_sent_all`` and
  ``client_sent_all``): the common steps written out, everything else
  handed back to the model's own methods;
* :func:`data_row_parser`, :func:`data_row_columns` and
  :func:`data_row_to_wire` make DataRows that keep their payload and split
  it on first access, and encode rows; :func:`split_data_row` and
  :func:`read_row_description` handle the other messages whose size grows
  with the result.

The compiled twin, ``pygwire._chotpath`` (``_chotpath.c``), replaces every
name listed at the end of this module when it was built, unless the
environment variable ``PYGWIRE_PURE_PYTHON`` is set (to anything but
``""`` or ``"0"``) when pygwire is imported.  :func:`implementation`
tells which is in use.

Buffering strategy: ``buf`` is an immutable ``bytes`` object and ``pos``
the read position in it.  Fed chunks wait in a list and are joined into
``buf`` only when a frame needs more bytes than ``buf`` still has, so each
byte is copied a bounded number of times however the stream is chunked (a
1 GB message fed in 64 KiB pieces is joined once, not 16,000 times).
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat, starmap
from types import MemberDescriptorType
from typing import TYPE_CHECKING, Any, NoReturn

from .constants import MAX_MESSAGE_LENGTH
from .exceptions import DecodingError, FramingError

if TYPE_CHECKING:
    from ._wire import Reader

__all__ = [
    "STOP_BAD_FRAME",
    "BoundaryMaker",
    "ChangeSlots",
    "FrameBuffer",
    "FrameBufferCore",
    "RowSlots",
    "MessageQueue",
    "Parser",
    "RelationEntry",
    "RowMaker",
    "RowState",
    "Stepper",
    "IMPLEMENTATION",
    "cstring_payload",
    "data_row_columns",
    "data_row_parser",
    "data_row_to_wire",
    "decode_frames",
    "drain",
    "implementation",
    "length_error",
    "model_steppers",
    "pgoutput_boundary_maker",
    "pgoutput_row_maker",
    "relation_entry",
    "read_row_description",
    "row_description_fields",
    "split_data_row",
    "split_data_row_strict",
]

_HEADER = struct.Struct("!BI")
# Identifier, length word, column count: one struct call is cheaper than
# building the 7-byte integer.
_DATA_ROW_HEAD = struct.Struct("!BIH").pack
_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")
_U16 = struct.Struct("!H")
# table_oid, column_attr, type_oid, type_size, type_modifier, format_code
_FIELD = struct.Struct("!IhIhih")
# A RowDescription field's end: the name's terminator and 18 fixed bytes.
_FIELD_SPLIT = re.compile(rb"\0(.{18})", re.DOTALL)

_NULL = b"\xff\xff\xff\xff"
# Length words of values shorter than 1 KiB, made once: a list lookup is
# cheaper than converting an int per column when encoding rows.
_LEN_PREFIX = [n.to_bytes(4, "big") for n in range(1024)]

#: Builds a message from a payload window ``(buf, start, end)``.
Parser = Callable[[bytes, int, int], Any]


def _use_compiled() -> bool:
    """Whether the compiled twin is wanted (it is, unless
    ``PYGWIRE_PURE_PYTHON`` is set to anything but "" or "0")."""
    return os.environ.get("PYGWIRE_PURE_PYTHON", "") in ("", "0")


class FrameBufferCore:
    """The receive buffer's state and what runs for every fed chunk.

    Bytes fed while ``buf`` still holds unread bytes wait in one growing
    ``bytearray``, not as one object per chunk: a message fed a byte at a
    time costs about its own size, not forty times that.  The compiled
    twin replaces this class (see the end of the module); FrameBuffer
    below adds what runs rarely.
    """

    __slots__ = ("buf", "pos", "pending")

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0
        #: Fed bytes not yet joined into ``buf``.
        self.pending = bytearray()

    def feed(self, data: bytes) -> None:
        if not self.pending and self.pos == len(self.buf):
            # Everything so far was consumed: adopt the chunk as is.
            self.buf = data
            self.pos = 0
        else:
            self.pending += data

    def __len__(self) -> int:
        return len(self.buf) - self.pos + len(self.pending)

    def clear(self) -> None:
        self.buf = b""
        self.pos = 0
        self.pending = bytearray()

    def take(self) -> bytes:
        """Remove and return every buffered byte."""
        data = self.buf[self.pos :] + self.pending
        self.clear()
        return data

    def ensure(self, n: int) -> bool:
        """Make ``buf[pos:pos+n]`` available if ``n`` bytes are buffered."""
        avail = len(self.buf) - self.pos
        if avail >= n:
            return True
        if avail + len(self.pending) < n:
            return False
        self.buf = self.buf[self.pos :] + self.pending
        self.pos = 0
        self.pending = bytearray()  # a new one: clear() may keep the old capacity
        return True


# The base must be chosen before FrameBuffer is defined, so this one name
# is taken from the compiled twin here rather than at the end.
if TYPE_CHECKING:
    _FrameBufferBase = FrameBufferCore
else:
    _FrameBufferBase = FrameBufferCore
    if _use_compiled():
        with contextlib.suppress(ImportError):  # not built: the pure-Python core
            from ._chotpath import FrameBufferCore as _FrameBufferBase


class FrameBuffer(_FrameBufferBase):
    """Receive buffer that yields frames as windows into :attr:`buf`."""

    __slots__ = ()

    def peek_byte(self) -> int:
        """The next byte, or -1 if nothing is buffered."""
        if not self.ensure(1):
            return -1
        return self.buf[self.pos]

    def skip(self, n: int) -> None:
        self.pos += n

    def startup_frame(self, limit: int) -> tuple[int, int] | None:
        """Cut one startup packet: Int32 length (including itself), payload.

        The payload must hold at least the Int32 request code.  Returns
        ``(payload_start, payload_end)`` or None.
        """
        if not self.ensure(4):
            return None
        length = _U32.unpack_from(self.buf, self.pos)[0]
        if not 8 <= length <= limit:
            raise FramingError(
                f"startup packet declares length {length}; allowed is 8 to {limit}",
                length=length,
            )
        if not self.ensure(length):
            return None
        pos = self.pos
        self.pos = pos + length
        return pos + 4, pos + length


class MessageQueue:
    """Decoded messages not yet returned, oldest first, with the wire size
    of each (what ``MessageDecoder.buffered`` still counts)."""

    __slots__ = ("messages", "sizes")

    def __init__(self) -> None:
        self.messages: deque[Any] = deque()
        self.sizes: deque[int] = deque()

    def append(self, msg: Any, size: int) -> None:
        self.messages.append(msg)
        self.sizes.append(size)

    def popleft(self) -> Any:
        """Remove and return the oldest message; None if there is none."""
        if not self.messages:
            return None
        self.sizes.popleft()
        return self.messages.popleft()

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def nbytes(self) -> int:
        """The wire size of the queued messages together."""
        return sum(self.sizes)

    def clear(self) -> None:
        self.messages.clear()
        self.sizes.clear()


def drain(  # noqa: PLR0917 - positional: called per chunk, from C too
    queue: MessageQueue,
    refill: Callable[[], bool],
    callback: Callable[..., object] | None,
    holder: object,
    name: str,
    sized: bool,
) -> Iterator[Any]:
    """Iterate over the messages of ``queue``, oldest first.

    When the queue is empty, ``refill()`` decodes more into it and returns
    False when nothing more is complete.  Before a message is yielded,
    ``callback(msg)`` runs, unless the message's type is in the set
    ``getattr(holder, name)`` (when ``holder`` is not None): that is how a
    connection lets rows and COPY data, which change no state, through
    without a call per message.  The attribute is read at every message,
    so its owner may replace it between two.  With ``sized`` the callback
    also gets the message's wire size: ``callback(msg, size)``.  An
    exception from ``refill`` or ``callback`` ends the iteration.
    """
    messages = queue.messages
    sizes = queue.sizes
    while True:
        while messages:
            size = sizes.popleft()
            msg = messages.popleft()
            if callback is not None and (holder is None or type(msg) not in getattr(holder, name)):
                if sized:
                    callback(msg, size)
                else:
                    callback(msg)
            yield msg
        if not refill():
            return


class RowSlots:
    """The storage of a row this module makes, splits and encodes (DataRow
    derives from it): ``_raw`` is the payload while the row is not split,
    else None; ``_columns`` the values once split or set."""

    __slots__ = ("_columns", "_raw")
    _columns: list[bytes | None] | None
    _raw: bytes | None


def _check_row_class(fname: str, cls: type[Any]) -> None:
    if not isinstance(cls, type):
        raise TypeError(f"{fname}() needs a class, not {type(cls).__name__}")
    for name in ("_raw", "_columns"):
        if not isinstance(getattr(cls, name, None), MemberDescriptorType):
            raise TypeError(f"{fname}(): {cls.__name__} has no slot {name}")


def data_row_parser(cls: type[Any]) -> Parser:
    """The stream decoders' parser of DataRow.

    It makes a ``cls`` without calling ``__init__``: the payload goes to
    the slot ``_raw`` and None to ``_columns``; the row is split when its
    columns are first read (``_raw`` not None means "not split yet").
    ``cls`` must have those two ``__slots__`` and take ``object.__new__``.
    """
    if isinstance(cls, type) and getattr(cls, "__new__", None) is not object.__new__:
        raise TypeError(f"data_row_parser(): {cls.__name__} defines __new__")
    _check_row_class("data_row_parser", cls)
    new = object.__new__

    def parse(buf: bytes, start: int, end: int) -> Any:
        row = new(cls)
        row._columns = None
        row._raw = buf[start:end]
        return row

    return parse


def data_row_columns(cls: type[Any]) -> Any:
    """The descriptor ``DataRow.columns`` (slots as for :func:`data_row_parser`).

    A row still holding its payload in ``_raw`` (not None) is split on the
    first read, and the list kept in ``_columns`` (the payload is dropped:
    the list may be changed).  Otherwise reading gives ``_columns``, as it
    was set.  A row that cannot be split raises its DecodingError at every
    read.  Setting stores the value, checked when the row is encoded.
    """
    _check_row_class("data_row_columns", cls)

    def get(row: Any) -> list[bytes | None]:
        raw = row._raw
        if raw is None:
            cols: list[bytes | None] = row._columns
            return cols
        cols = row._columns = split_data_row(raw, 0, len(raw))
        row._raw = None
        return cols

    def put(row: Any, value: list[bytes | None]) -> None:
        row._columns = value
        row._raw = None

    return property(get, put, doc="The row's values; None stands for SQL NULL.")


#: decode_frames stopped at a frame whose length word its limit refuses.
STOP_BAD_FRAME = 1


def decode_frames(  # noqa: PLR0917 - positional: called per batch, from C too
    fb: FrameBuffer,
    limits: Sequence[int],
    parsers: Sequence[Parser | None],
    queue: MessageQueue,
    hold: int,
    count: int,
) -> int:
    """Decode up to ``count`` complete standard frames buffered in ``fb``
    into ``queue``.

    ``limits[identifier]`` is the largest length word accepted for a type
    (-1 for unknown types); ``parsers[identifier]`` turns a payload window
    ``(buf, start, end)`` into a message, queued with its wire size.  A
    frame of type ``hold`` is decoded alone, first in its batch, so that
    the phase set by the messages before it frames it, and the phase it
    sets frames those after it (the client's ``p`` family; ReadyForQuery
    ending the startup).  ``count`` bounds how far decoding runs ahead of
    the reader.

    Returns :data:`STOP_BAD_FRAME` when it stopped at a frame whose length
    word is refused (``fb.pos`` at that frame, nothing of it consumed: the
    caller words the error with :func:`length_error`), else 0.  When a
    parser raises, the messages decoded before stay queued, the bad frame
    is consumed and the exception propagates.
    """
    unpack = _HEADER.unpack_from
    out = queue.messages
    append = out.append
    append_size = queue.sizes.append
    while True:
        buf = fb.buf
        pos = fb.pos
        n = len(buf)
        need = 5
        while n - pos >= 5:
            ident, length = unpack(buf, pos)
            if length > limits[ident] or length < 4:
                fb.pos = pos  # nothing of this frame is consumed
                return STOP_BAD_FRAME
            end = pos + 1 + length
            if end > n:
                need = 1 + length
                break
            if ident == hold:
                if out:
                    fb.pos = pos  # decoded first in the next batch
                    return 0
                count = 1  # and alone
            try:
                msg = parsers[ident](buf, pos + 5, end)
            except BaseException:
                fb.pos = end  # the bad frame is consumed; the ones before stay queued
                raise
            append(msg)
            append_size(1 + length)
            pos = end
            count -= 1
            if count <= 0:
                fb.pos = pos
                return 0
        fb.pos = pos
        if not fb.ensure(need):
            return 0


def length_error(fb: FrameBuffer, limits: Sequence[int]) -> FramingError:
    """The error for the frame at ``fb.pos``, whose length word its limit
    refuses (after :data:`STOP_BAD_FRAME`)."""
    ident, length = _HEADER.unpack_from(fb.buf, fb.pos)
    type_byte = bytes([ident])
    limit = limits[ident]
    if limit < 0:
        return FramingError(
            f"unknown message type {type_byte!r}", identifier=type_byte, length=length
        )
    return FramingError(
        f"message {type_byte!r} declares length {length}; allowed is 4 to {limit}",
        identifier=type_byte,
        length=length,
    )


def split_data_row(buf: bytes, start: int, end: int) -> list[bytes | None]:
    """Split a DataRow payload ``buf[start:end]``: Int16 count, then
    (Int32 length, bytes)* with length -1 for NULL.  The payload must be
    consumed exactly; errors name the offset within the payload."""
    # Fast path: reads only move forward, so a read past the payload shows
    # as pos != end at the finish (or struct.error past the buffer); a
    # length below -1 stops the walk.  Any doubt goes to the strict walk,
    # which finds and reports the exact fault.
    try:
        count = _U16.unpack_from(buf, start)[0]
        pos = start + 2
        cols: list[bytes | None] = []
        unpack = _I32.unpack_from
        for _ in range(count):
            (n,) = unpack(buf, pos)
            pos += 4
            if n >= 0:
                stop = pos + n
                cols.append(buf[pos:stop])
                pos = stop
                if pos > end:
                    break
            elif n == -1:
                cols.append(None)
            else:
                break
        else:
            if pos == end:
                return cols
    except struct.error:
        pass
    split_data_row_strict(buf, start, end)


def split_data_row_strict(buf: bytes, start: int, end: int) -> NoReturn:
    """Walk a DataRow that the fast path refused and raise its exact fault."""
    if end - start < 2:
        raise DecodingError("DataRow", 0, "column count needs 2 bytes")
    count = _U16.unpack_from(buf, start)[0]
    pos = start + 2
    for i in range(count):
        if end - pos < 4:
            raise DecodingError(
                "DataRow", pos - start, f"column {i} length needs 4 bytes, {end - pos} left"
            )
        n = _I32.unpack_from(buf, pos)[0]
        pos += 4
        if n < -1:
            raise DecodingError("DataRow", pos - 4 - start, f"column {i} length {n} is below -1")
        if n > end - pos:
            raise DecodingError(
                "DataRow", pos - start, f"column {i} needs {n} bytes, {end - pos} left"
            )
        pos += max(n, 0)
    raise DecodingError("DataRow", pos - start, f"{end - pos} unexpected trailing bytes")


def data_row_to_wire(cls: type[Any], fallback: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """The method ``DataRow.to_wire`` (slots as for :func:`data_row_parser`).

    A row still holding its payload is framed as it came.  Otherwise a list
    of None and bytes values is encoded here, the hottest encoder; anything
    else (other buffers, wrong types, too many or too large values) goes to
    ``fallback(row)``, the validating encoder, which names the fault.
    """
    _check_row_class("data_row_to_wire", cls)

    def to_wire(row: Any) -> bytes:
        raw: bytes | None = row._raw
        if raw is not None:  # untouched since decoding
            return _HEADER.pack(0x44, len(raw) + 4) + raw
        columns = row._columns
        if type(columns) is not list or len(columns) > 0xFFFF:
            return fallback(row)
        # parts.append is called directly, not hoisted: CPython specialises
        # a direct list.append call into an inline append, far cheaper than
        # a call through a bound-method variable.
        parts: list[bytes] = []
        size = 6
        for v in columns:
            if v is None:
                parts.append(_NULL)
                size += 4
            elif type(v) is bytes:  # len() counts bytes only for bytes
                n = len(v)
                parts.append(_LEN_PREFIX[n] if n < 1024 else n.to_bytes(4, "big"))
                parts.append(v)
                size += 4 + n
            else:
                return fallback(row)
        if size > MAX_MESSAGE_LENGTH:  # known before anything is joined
            return fallback(row)
        return _DATA_ROW_HEAD(0x44, size, len(columns)) + b"".join(parts)

    to_wire.__qualname__ = f"{cls.__name__}.to_wire"
    return to_wire


def cstring_payload(buf: bytes, start: int, end: int) -> str | None:
    """The text of a payload that is exactly one UTF-8 C string (Query,
    CommandComplete), or None if it is not (the strict parser then says
    precisely why)."""
    if end > start and buf.find(0, start, end) == end - 1:
        try:
            return buf[start : end - 1].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return None


def row_description_fields(buf: bytes, start: int, end: int, make: type[Any]) -> list[Any] | None:
    """Fast path for a RowDescription payload: the field tuples, or None
    when the strict reader must decide.

    The per-field loop runs in C: one regex split cuts the payload into
    names and 18-byte trailers, the names are decoded in one go and the
    trailers unpacked in one go, and ``make`` tuples are built by ``map``.
    """
    if end - start < 2:
        return None
    count = (buf[start] << 8) | buf[start + 1]
    # Splitting at "NUL + 18 bytes" yields name, trailer, name, trailer, ...
    # and a last piece that must be empty: the fields tile the payload.
    parts = _FIELD_SPLIT.split(memoryview(buf)[start + 2 : end])  # no copy of the payload
    if len(parts) != 2 * count + 1 or parts[-1]:
        return None
    try:
        names = b"\0".join(parts[0:-1:2]).decode("utf-8").split("\0")
    except UnicodeDecodeError:
        return None
    # zip takes six consecutive values from one iterator per field.
    values = iter(struct.unpack("!" + "IhIhih" * count, b"".join(parts[1::2])))
    columns = zip(names, values, values, values, values, values, values, strict=True)
    # starmap passes each (make, columns) pair as the argument tuple itself,
    # one allocation fewer per field than map with two iterables.
    pairs = zip(repeat(make, count), columns, strict=False)  # count pairs, as map gave
    return list(starmap(tuple.__new__, pairs))


def read_row_description(r: Reader, make: type[tuple[Any, ...]]) -> list[Any]:
    """Strict RowDescription reader: ``make`` tuples (name, then the six
    fixed fields); errors name the field and offset."""
    buf = r.buf
    end = r.end
    count = r.uint16()
    pos = r.pos
    out: list[Any] = []
    for i in range(count):
        z = buf.find(0, pos, end)
        if z < 0 or end - z - 1 < 18:
            r.pos = pos
            if z < 0:
                r.fail(f"field {i} name is not NUL-terminated inside the payload")
            r.fail(f"field {i} needs 18 bytes after its name, {end - z - 1} left")
        try:
            name = buf[pos:z].decode("utf-8")
        except UnicodeDecodeError as exc:
            r.fail(f"invalid UTF-8 in string: {exc.reason}", at=pos + exc.start)
        out.append(tuple.__new__(make, (name, *_FIELD.unpack_from(buf, z + 1))))
        pos = z + 19
    r.pos = pos
    return out


# -- pgoutput row changes ------------------------------------------------------


class ChangeSlots:
    """The storage of a row change :func:`pgoutput_row_maker` makes
    (``pygwire.replication.RowChange`` derives from it): the public
    fields, and ``_payload`` / ``_context``, the XLogData payload and the
    pgoutput context it came with, kept so that the Insert, Update or
    Delete message is only decoded if ``message`` is read (``_message``
    caches it)."""

    __slots__ = (
        "kind",
        "relation",
        "new",
        "old",
        "old_is_key",
        "xid",
        "lsn",
        "_message",
        "_payload",
        "_context",
    )


#: What :func:`pgoutput_row_maker`'s function needs of a Relation message,
#: per relation id: see :func:`relation_entry`.
RelationEntry = tuple[Any, tuple[str, ...], tuple[bool, ...], dict[str, Any], dict[str, Any]]
#: What a stream's row changes are read with: ``(relations, xid,
#: in_stream, context)``, see :func:`pgoutput_row_maker`.
RowState = tuple[dict[int, RelationEntry], Any, bool, Any]
#: What :func:`pgoutput_row_maker` returns: ``make(buf, rows)``.
RowMaker = Callable[[object, RowState], Any]

_XLOGDATA = 0x77  # 'w'
_T, _B, _N, _U = 0x74, 0x62, 0x6E, 0x75  # column kinds t, b, n, u
_INSERT, _UPDATE, _DELETE = 0x49, 0x55, 0x44
_NEW, _KEY, _OLD = 0x4E, 0x4B, 0x4F
_CHANGES = frozenset((_INSERT, _UPDATE, _DELETE))
_BEFORE = frozenset((_KEY, _OLD))
_U64 = struct.Struct("!Q")


def _check_slots(fname: str, cls: type[Any], names: Sequence[str]) -> None:
    if not isinstance(cls, type):
        raise TypeError(f"{fname}() needs a class, not {type(cls).__name__}")
    if getattr(cls, "__new__", None) is not object.__new__:
        raise TypeError(f"{fname}(): {cls.__name__} defines __new__")
    for name in names:
        if not isinstance(getattr(cls, name, None), MemberDescriptorType):
            raise TypeError(f"{fname}(): {cls.__name__} has no slot {name}")


def relation_entry(relation: Any, names: Sequence[str], keys: Sequence[bool]) -> RelationEntry:
    """``(relation, names, key flags, row template, key template)``: the
    templates are the dicts a tuple's values are filled into (copying one
    that has every key already costs less than growing a new one; the
    result is the same, duplicate names included)."""
    names, keys = tuple(names), tuple(bool(k) for k in keys)
    key_names = (n for n, k in zip(names, keys, strict=True) if k)
    return relation, names, keys, dict.fromkeys(names), dict.fromkeys(key_names)


def _tuple_values(  # noqa: PLR0917 - positional: called per tuple
    buf: bytes,
    pos: int,
    names: tuple[str, ...],
    keys: tuple[bool, ...] | None,
    template: dict[str, Any],
    unchanged: object,
) -> tuple[dict[str, Any], int] | None:
    """The TupleData at ``buf[pos:]`` as ``{name: value}`` (with ``keys``,
    only the key's columns) filled into a copy of ``template``, and where
    it ends; None at any doubt."""
    end = len(buf)
    if end - pos < 2 or (buf[pos] << 8 | buf[pos + 1]) != len(names):
        return None
    pos += 2
    values = template.copy()
    length, find = _I32.unpack_from, buf.find
    for i, name in enumerate(names):
        if pos >= end:
            return None
        kind = buf[pos]
        if kind == _T or kind == _B:  # noqa: PLR1714, SIM109 - two compares cost less than a lookup
            if end - pos < 5:
                return None
            n = length(buf, pos + 1)[0]
            pos += 5
            stop = pos + n
            if n < 0 or stop > end or (kind == _T and find(0, pos, stop) >= 0):
                return None  # the strict reader refuses a NUL in text too
            if keys is None or keys[i]:  # a key's other columns are read over
                if kind == _B:
                    values[name] = buf[pos:stop]
                else:
                    try:
                        values[name] = buf[pos:stop].decode("utf-8")
                    except UnicodeDecodeError:
                        return None
            pos = stop
        elif kind == _N:
            pos += 1
            if keys is None or keys[i]:
                values[name] = None
        elif kind == _U:
            pos += 1
            if keys is None or keys[i]:
                values[name] = unchanged
        else:
            return None
    return values, pos


def pgoutput_row_maker(
    cls: type[Any], lsn: type[int], kinds: Sequence[Any], unchanged: object
) -> RowMaker:
    """The fast path of a logical stream's Insert, Update and Delete.

    ``make(buf, rows)``, with ``rows`` the stream's ``(relations, xid,
    in_stream, context)``, reads an XLogData payload ``buf`` carrying one
    of them (``in_stream``: with the xid of a streamed transaction after
    the tag) whose relation is in ``relations``, with UTF-8 text, and
    returns a ``cls`` made without
    ``__init__``: ``kind`` from ``kinds`` (insert, update, delete),
    ``relation`` the entry's, ``new`` and ``old`` as ``{name: value}``
    (text as ``str``, binary as ``bytes``, NULL as None, an unchanged
    TOASTed value as ``unchanged``; an old key holds the key's columns
    only), ``old_is_key``, ``xid`` (the message's inside a stream, else the
    argument), ``lsn`` (an ``lsn`` of the XLogData's start), ``_payload``
    ``buf``, ``_context`` ``context`` and ``_message`` None.  Anything else
    (another message, an unknown relation, a tuple that does not fit the
    relation or the payload, a bad kind, invalid UTF-8, a NUL in text)
    gives None: the strict decoder then decides and words the fault.
    """
    _check_slots("pgoutput_row_maker", cls, ChangeSlots.__slots__)
    insert, update, delete = kinds
    new_object = object.__new__
    new_lsn = int.__new__
    u32, u64 = _U32.unpack_from, _U64.unpack_from

    def make(buf: object, rows: RowState) -> Any:
        relations, xid, in_stream, context = rows
        if type(buf) is not bytes or len(buf) < 31 or buf[0] != _XLOGDATA:
            return None
        tag = buf[25]
        if tag not in _CHANGES:
            return None
        pos = 26
        if in_stream:
            if len(buf) < 35:
                return None
            xid = u32(buf, 26)[0]
            pos = 30
        entry = relations.get(u32(buf, pos)[0])
        if entry is None:
            return None
        _, names, keys, row_template, key_template = entry
        marker = buf[pos + 4]
        pos += 5
        old = new = None
        old_is_key = False
        if tag == _INSERT:
            if marker != _NEW:
                return None
            kind = insert
        else:
            kind = update if tag == _UPDATE else delete
            if marker in _BEFORE:
                old_is_key = marker == _KEY
                if old_is_key:
                    got = _tuple_values(buf, pos, names, keys, key_template, unchanged)
                else:
                    got = _tuple_values(buf, pos, names, None, row_template, unchanged)
                if got is None:
                    return None
                old, pos = got
                if tag == _UPDATE:
                    if pos >= len(buf) or buf[pos] != _NEW:
                        return None
                    pos += 1
            elif tag == _DELETE or marker != _NEW:
                return None
        if tag != _DELETE:
            got = _tuple_values(buf, pos, names, None, row_template, unchanged)
            if got is None:
                return None
            new, pos = got
        if pos != len(buf):
            return None
        change = new_object(cls)
        change.kind = kind
        change.relation = entry[0]
        change.new = new
        change.old = old
        change.old_is_key = old_is_key
        change.xid = xid
        change.lsn = new_lsn(lsn, u64(buf, 1)[0])
        change._message = None
        change._payload = buf
        change._context = context
        return change

    return make


_BEGIN_FIELDS = ("final_lsn", "commit_time", "xid")
_COMMIT_FIELDS = ("commit_lsn", "end_lsn", "commit_time", "flags")
_BEGIN = struct.Struct("!QqI")
_COMMIT = struct.Struct("!bQQq")
_BEGIN_SIZE = 25 + 1 + _BEGIN.size
_COMMIT_SIZE = 25 + 1 + _COMMIT.size

#: What :func:`pgoutput_boundary_maker` returns: ``make(buf)``.
BoundaryMaker = Callable[[object], Any]


def pgoutput_boundary_maker(
    begin: type[Any], commit: type[Any], lsn: type[int], timestamp: type[int]
) -> BoundaryMaker:
    """The fast path of a logical stream's Begin and Commit.

    ``make(buf)`` reads an XLogData payload ``buf`` carrying exactly a
    ``pgoutput`` Begin (``B``: final LSN, commit time, xid) or Commit
    (``C``: flags, commit LSN, end LSN, commit time) and returns a
    ``begin`` or ``commit`` made without ``__init__``, its slots filled
    (LSNs as ``lsn``, times as ``timestamp``, the rest as ``int``); None
    for any other payload.  Whether the message may come now is the
    caller's to check.
    """
    _check_slots("pgoutput_boundary_maker", begin, _BEGIN_FIELDS)
    _check_slots("pgoutput_boundary_maker", commit, _COMMIT_FIELDS)
    new_object = object.__new__
    new_int = int.__new__
    begin_fields, commit_fields = _BEGIN.unpack_from, _COMMIT.unpack_from

    def make(buf: object) -> Any:
        if type(buf) is not bytes or buf[:1] != b"w":
            return None
        size = len(buf)
        if size == _BEGIN_SIZE and buf[25] == 0x42:  # B
            final, when, xid = begin_fields(buf, 26)
            msg = new_object(begin)
            msg.final_lsn = new_int(lsn, final)
            msg.commit_time = new_int(timestamp, when)
            msg.xid = xid
            return msg
        if size == _COMMIT_SIZE and buf[25] == 0x43:  # C
            flags, at, end, when = commit_fields(buf, 26)
            msg = new_object(commit)
            msg.commit_lsn = new_int(lsn, at)
            msg.end_lsn = new_int(lsn, end)
            msg.commit_time = new_int(timestamp, when)
            msg.flags = flags
            return msg
        return None

    return make


# -- the protocol model's loops -------------------------------------------------

#: What :func:`model_steppers` returns: ``step(model, msgs)``.
Stepper = Callable[[Any, Iterable[Any]], None]

# The slots the steppers read and write: the model's, and its nodes'.
_MODEL_SLOTS = (
    "_cur",
    "_queue",
    "_skipping",
    "_closed",
    "_unsynced",
    "_after_error",
    "in_session",
    "pending_syncs",
    "transaction_status",
    "steady_server",
    "steady_client",
)
_NODE_SLOTS = ("server", "plain", "queues", "startable", "batch", "syncs", "steady_server")


def model_steppers(  # noqa: PLR0917 - positional: the compiled twin takes them so
    model: type[Any],
    node: type[Any],
    marks: Sequence[Any],
    requests: Mapping[type[Any], Any],
    describe: type[Any],
    describe_kinds: Mapping[Any, Any],
) -> tuple[Stepper, Stepper]:
    """``(server_steps, client_steps)``: the loops that apply a chunk's
    server (client) messages to a ``pygwire.state_machine.ProtocolState``.

    They run for nearly every message, so the common cases are written out:
    a step that keeps the state, a plain move, the end of an answer with
    the next request starting, a request joining the queue.  Everything
    else goes to the model's general methods (``_server_step``, ``_next``,
    ``_startup_client_step``, ``_request``, ``_start``), which say the same
    in full.  ``model`` and ``node`` are the classes of the model and of its
    states, ``marks`` its states ``(IDLE, DONE, RFQ)`` and the empty set of
    steady types, ``requests`` maps a client message type to the request
    it makes, and ``describe_kinds`` a ``describe`` message's kind to its
    request.
    """
    _check_slots("model_steppers", model, _MODEL_SLOTS)
    _check_slots("model_steppers", node, _NODE_SLOTS)
    idle, done, rfq, none = marks

    def server_steps(state: Any, msgs: Iterable[Any]) -> None:
        cur = state._cur
        for msg in msgs:
            nxt = cur.server.get(type(msg))
            if nxt is cur:  # rows, COPY data, any-time messages: the bulk
                continue
            if nxt is None:
                state._server_step(msg, cur, nxt)
            elif nxt.plain:
                state._cur = nxt
                state.steady_server = nxt.steady_server
                state.steady_client = none
            elif nxt is done or (nxt is rfq and cur.queues):
                if nxt is rfq:
                    state.pending_syncs -= cur.syncs
                    state.transaction_status = msg.status
                    state._after_error = False
                queue = state._queue
                if not queue:
                    state._cur = idle
                    state.steady_server = state.steady_client = none
                elif queue[0].startable and not state._skipping:
                    nxt = state._cur = queue.popleft()
                    state.steady_server = nxt.steady_server
                else:
                    state._next()
            else:
                state._server_step(msg, cur, nxt)
            cur = state._cur

    def client_steps(state: Any, msgs: Iterable[Any]) -> None:
        for msg in msgs:
            # Checked per message: a lax model may end the startup mid-chunk.
            if not state.in_session:
                state._startup_client_step(msg)
                continue
            mtype = type(msg)
            request = requests.get(mtype)
            if mtype is describe:
                request = describe_kinds.get(msg.kind)
            cur = state._cur
            if request is None or not request.startable or state._closed or not cur.queues:
                state._request(request, msg)
                continue
            batch = request.batch
            if batch is not None:
                state._unsynced = batch
            state.pending_syncs += request.syncs
            if cur is not idle:
                state._queue.append(request)
            elif state._skipping:
                state._start(request)
            else:
                state._cur = request
                state.steady_server = request.steady_server

    return server_steps, client_steps


# -- the compiled twin ----------------------------------------------------------

#: ``"c"`` when the functions above that have a compiled twin are replaced
#: by it, ``"python"`` when this module's own code runs.
IMPLEMENTATION = "python"

if _use_compiled():
    try:
        from ._chotpath import (
            MessageQueue,
            cstring_payload,
            data_row_columns,
            data_row_parser,
            data_row_to_wire,
            decode_frames,
            drain,
            model_steppers,
            pgoutput_boundary_maker,
            pgoutput_row_maker,
            row_description_fields,
            split_data_row,
        )
    except ImportError:  # not built (no compiler at install time): stay pure Python
        pass
    else:
        IMPLEMENTATION = "c"


def implementation() -> str:
    """Which framing code runs: ``"c"`` (the compiled ``pygwire._chotpath``)
    or ``"python"`` (the reference, when the extension was not built or
    ``PYGWIRE_PURE_PYTHON`` is set)."""
    return IMPLEMENTATION
