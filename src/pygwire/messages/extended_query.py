"""Extended query: Parse, Bind, Describe, Execute, Close, Sync, Flush and
the server's acknowledgements."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Annotated, Self

from .._wire import INT16, INT32, UINT32, Reader, Writer, fast_utf8
from ..constants import MAX_MESSAGE_LENGTH
from ._base import BackendMessage, FrontendMessage, frame, header, message

_I32 = struct.Struct("!i")
_NULL = b"\xff\xff\xff\xff"
# Length words of values shorter than 1 KiB, made once: a list lookup is
# cheaper than converting an int per value.
_LEN_PREFIX = [n.to_bytes(4, "big") for n in range(1024)]
_KINDS = {0x53: "S", 0x50: "P"}
# Precompiled "n Int16s" / "n UInt32s" layouts for the usual small lists
# (format codes, parameter types).
_INT16_ARRAYS = [struct.Struct(f"!{n}h") for n in range(16)]
_UINT32_ARRAYS = [struct.Struct(f"!{n}I") for n in range(16)]


def _int16s(buf: bytes, pos: int) -> tuple[list[int], int]:
    """Fast path: an Int16 count and that many Int16s, and the new position."""
    n = (buf[pos] << 8) | buf[pos + 1]
    if n == 1 and buf[pos + 2] == 0 and buf[pos + 3] <= 1:
        return [buf[pos + 3]], pos + 4  # one format code for all: 0 or 1, usually
    layout = _INT16_ARRAYS[n] if n < 16 else struct.Struct(f"!{n}h")
    return list(layout.unpack_from(buf, pos + 2)), pos + 2 + 2 * n


def _int16s_wire(values: object) -> bytes | None:
    """Fast path: an Int16 count and the values; None unless ``values`` is a
    short list of ints in range (the validating encoder then decides)."""
    if type(values) is not list:
        return None
    n = len(values)
    if not n:
        return b"\0\0"
    if n == 1:  # one format code for all columns: almost always 0 or 1
        v = values[0]
        if type(v) is int and 0 <= v <= 1:
            return _ONE_FORMAT[v]
    if n >= 16 or not all(type(v) is int and -0x8000 <= v <= 0x7FFF for v in values):
        return None
    return n.to_bytes(2, "big") + _INT16_ARRAYS[n].pack(*values)


# NUL checks below test ``0 in data`` for the reason given in Writer.cstring.
_EXECUTE_ALL = b"E\0\0\0\x09\0\0\0\0\0"
_ONE_FORMAT = (b"\0\x01\0\0", b"\0\x01\0\x01")


__all__ = [
    "Bind",
    "BindComplete",
    "Close",
    "CloseComplete",
    "Describe",
    "Execute",
    "Flush",
    "NoData",
    "ParameterDescription",
    "Parse",
    "ParseComplete",
    "PortalSuspended",
    "Sync",
]


@message(b"P")
class Parse(FrontendMessage):
    """Prepare ``query`` as ``statement`` ("" is the unnamed statement)."""

    statement: str = ""
    query: str = ""
    param_types: list[Annotated[int, UINT32]] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        w.cstring(self.statement, "statement")
        w.cstring(self.query, "query")
        w.uint32_array(self.param_types, "param_types")

    def _fast_wire(self) -> bytes | None:
        statement = fast_utf8(self.statement)
        query = fast_utf8(self.query)
        types = self.param_types
        if statement is None or query is None or type(types) is not list:
            return None
        n = len(types)
        if n >= 16 or not all(type(t) is int and 0 <= t <= 0xFFFFFFFF for t in types):
            return None
        body = b"".join(
            (statement, b"\0", query, b"\0", n.to_bytes(2, "big"), _UINT32_ARRAYS[n].pack(*types))
        )
        return frame(b"P", body)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        statement = r.cstring()
        query = r.cstring()
        return cls(statement=statement, query=query, param_types=r.uint32_array(r.uint16()))

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        # Fast path; any doubt goes to the strict parser (see PGMessage._parse).
        # The unnamed statement ("") is the usual case.
        z1 = start if end > start and buf[start] == 0 else buf.find(0, start, end)
        z2 = buf.find(0, z1 + 1, end) if z1 >= 0 else -1
        if z2 >= 0 and end - z2 >= 3:
            n = (buf[z2 + 1] << 8) | buf[z2 + 2]
            if z2 + 3 + 4 * n == end:
                try:
                    statement = buf[start:z1].decode("utf-8") if z1 > start else ""
                    query = buf[z1 + 1 : z2].decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    layout = _UINT32_ARRAYS[n] if n < 16 else struct.Struct(f"!{n}I")
                    types = list(layout.unpack_from(buf, z2 + 3))
                    return cls(statement, query, types)
        return cls._parse_strict(buf, start, end)


@message(b"B")
class Bind(FrontendMessage):
    """Bind parameter values to ``statement``, creating ``portal``."""

    portal: str = ""
    statement: str = ""
    param_formats: list[Annotated[int, INT16]] = field(default_factory=list)
    param_values: list[bytes | None] = field(default_factory=list)
    result_formats: list[Annotated[int, INT16]] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        w.cstring(self.portal, "portal")
        w.cstring(self.statement, "statement")
        w.int16_array(self.param_formats, "param_formats")
        w.values(self.param_values, "param_values")
        w.int16_array(self.result_formats, "result_formats")

    def _fast_wire(self) -> bytes | None:
        portal = self.portal
        statement = self.statement
        if type(portal) is str and type(statement) is str and not portal and not statement:
            names = b"\0\0"  # the unnamed portal and statement: the usual case
        else:
            p = fast_utf8(portal)
            s = fast_utf8(statement)
            if p is None or s is None:
                return None
            names = p + b"\0" + s + b"\0"
        values = self.param_values
        formats = _int16s_wire(self.param_formats)
        results = _int16s_wire(self.result_formats)
        if formats is None or results is None or type(values) is not list or len(values) > 0xFFFF:
            return None
        parts = [names, formats, len(values).to_bytes(2, "big")]
        size = len(names) + len(formats) + 2 + len(results)
        for v in values:  # (see _hotpath.data_row_to_wire on parts.append)
            if v is None:
                parts.append(_NULL)
                size += 4
            elif type(v) is bytes:  # len() counts bytes: anything else is checked in full
                n = len(v)
                parts.append(_LEN_PREFIX[n] if n < 1024 else n.to_bytes(4, "big"))
                parts.append(v)
                size += 4 + n
            else:
                return None
        if size > MAX_MESSAGE_LENGTH - 4:  # before anything is joined
            return None
        parts.append(results)
        return header(b"B", size + 4) + b"".join(parts)

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        # Fast path: every read moves ``pos`` forward, so if any read ran
        # past the payload, pos != end at the finish and the strict parser
        # decides; reads past the buffer raise IndexError or struct.error.
        try:
            # The unnamed portal and statement ("") are the usual case.
            z1 = start if buf[start] == 0 else buf.index(0, start, end)
            z2 = z1 + 1 if buf[z1 + 1] == 0 else buf.index(0, z1 + 1, end)
            formats, pos = _int16s(buf, z2 + 1)
            n = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
            values: list[bytes | None] = []
            unpack = _I32.unpack_from
            for _ in range(n):
                (size,) = unpack(buf, pos)
                pos += 4
                if size < 0:
                    if size != -1:
                        break
                    values.append(None)
                else:
                    stop = pos + size
                    values.append(buf[pos:stop])
                    pos = stop
                    if pos > end:  # ran past the payload: stop copying
                        break
            else:
                results, pos = _int16s(buf, pos)
                if pos == end:
                    return cls(
                        buf[start:z1].decode("utf-8") if z1 > start else "",
                        buf[z1 + 1 : z2].decode("utf-8") if z2 > z1 + 1 else "",
                        formats,
                        values,
                        results,
                    )
        except (ValueError, IndexError, struct.error):  # ValueError includes bad UTF-8
            pass
        return cls._parse_strict(buf, start, end)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        portal = r.cstring()
        statement = r.cstring()
        param_formats = r.int16_array(r.uint16())
        values = [r.value() for _ in range(r.uint16())]
        return cls(
            portal=portal,
            statement=statement,
            param_formats=param_formats,
            param_values=values,
            result_formats=r.int16_array(r.uint16()),
        )


@dataclass(slots=True)
class _KindAndName(FrontendMessage):
    """Describe and Close: ``kind`` "S" (statement) or "P" (portal), a name."""

    kind: str = "S"
    name: str = ""

    def _write(self, w: Writer) -> None:
        # Type first: b"S" compared with "S" is a BytesWarning under -bb.
        if not isinstance(self.kind, str) or self.kind not in ("S", "P"):
            w.fail("kind", f"must be 'S' or 'P', not {self.kind!r}")
        w.raw(self.kind.encode(), "kind")
        w.cstring(self.name, "name")

    # Every extended-query batch sends a Describe: worth a direct path.
    def _fast_wire(self) -> bytes | None:
        kind = self.kind
        name = fast_utf8(self.name)
        if type(kind) is not str or kind not in ("S", "P") or name is None:
            return None
        return frame(self.identifier, kind.encode("ascii") + name + b"\0")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        b = r.byte1()
        if b not in (0x53, 0x50):
            r.fail(f"kind {bytes([b])!r} is neither 'S' nor 'P'", at=r.pos - 1)
        return cls(kind=chr(b), name=r.cstring())

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        size = end - start
        # The name ends at the payload's last byte; "" (size 2) needs no search.
        if (
            size >= 2
            and buf[end - 1] == 0
            and (size == 2 or buf.find(0, start + 1, end) == end - 1)
        ):
            kind = _KINDS.get(buf[start])
            if kind is not None:
                try:
                    name = buf[start + 1 : end - 1].decode("utf-8") if end - start > 2 else ""
                    return cls(kind, name)
                except UnicodeDecodeError:
                    pass
        return cls._parse_strict(buf, start, end)


@message(b"D", small=True)
class Describe(_KindAndName):
    """Ask for the description of a prepared statement or portal."""


@message(b"C", small=True)
class Close(_KindAndName):
    """Close a prepared statement or portal."""


@message(b"E", small=True)
class Execute(FrontendMessage):
    """Run ``portal``; ``max_rows`` 0 fetches every row."""

    portal: str = ""
    max_rows: Annotated[int, INT32] = 0

    def _write(self, w: Writer) -> None:
        w.cstring(self.portal, "portal")
        w.int32(self.max_rows, "max_rows")

    def _fast_wire(self) -> bytes | None:
        max_rows = self.max_rows
        portal = self.portal
        if type(max_rows) is not int or not -0x80000000 <= max_rows <= 0x7FFFFFFF:
            return None
        if type(portal) is str and not portal:
            if max_rows == 0:
                return _EXECUTE_ALL  # the unnamed portal, every row
            return b"E\0\0\0\x09\0" + max_rows.to_bytes(4, "big", signed=True)
        name = fast_utf8(portal)
        if name is None:
            return None
        return frame(b"E", name + b"\0" + max_rows.to_bytes(4, "big", signed=True))

    @classmethod
    def _read(cls, r: Reader) -> Self:
        portal = r.cstring()
        return cls(portal=portal, max_rows=r.int32())

    @classmethod
    def _parse(cls, buf: bytes, start: int, end: int) -> Self:
        # The unnamed portal ("") is the usual case.
        z = start if end - start == 5 and buf[start] == 0 else buf.find(0, start, end)
        if z >= 0 and z + 5 == end:
            try:
                portal = buf[start:z].decode("utf-8") if z > start else ""
                return cls(portal, _I32.unpack_from(buf, z + 1)[0])
            except UnicodeDecodeError:
                pass
        return cls._parse_strict(buf, start, end)


@message(b"S", small=True)
class Sync(FrontendMessage):
    """End of an extended-query batch: commit or roll back, then ReadyForQuery."""


@message(b"H", small=True)
class Flush(FrontendMessage):
    """Ask the server to send what it has buffered."""


@message(b"1")
class ParseComplete(BackendMessage):
    """The statement was parsed (the answer to Parse)."""


@message(b"2")
class BindComplete(BackendMessage):
    """The portal was created (the answer to Bind)."""


@message(b"3")
class CloseComplete(BackendMessage):
    """The statement or portal was closed (the answer to Close)."""


@message(b"n")
class NoData(BackendMessage):
    """The described statement or portal returns no rows."""


@message(b"s")
class PortalSuspended(BackendMessage):
    """Execute's row limit was reached before the portal was exhausted."""


@message(b"t", long=True)
class ParameterDescription(BackendMessage):
    """The parameter types of a described statement."""

    type_oids: list[Annotated[int, UINT32]] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        w.uint32_array(self.type_oids, "type_oids")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(type_oids=r.uint32_array(r.uint16()))
