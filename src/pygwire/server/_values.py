"""Python values to column bytes and parameter bytes to Python values.

The session encodes every value a handler returns with the codec of its
column's type (:mod:`pygwire.types`) in the format the client asked for,
and decodes every bound parameter with the codec of the parameter's type.
An encoder is built once per (type, format) and kept.

Two conversions make dynamically typed sources (SQLite, CSV files, JSON
documents) easy to serve, and are the only leniency:

* a ``str`` given for a column of a non-string type is read as that type's
  text input (``"2024-01-31"`` for a date column), and refused with the
  server's SQLSTATE if it is not valid input;
* any value given for a column of a string type (text, varchar, bpchar,
  name) is written as the text output of its own inferred type (``5`` as
  ``"5"``, ``True`` as ``"t"``), as a cast to text would.

Types without a codec take ``str`` (UTF-8) and ``bytes`` (as they are);
parameters of such types, and of type ``unknown`` or unspecified (OID 0),
decode to ``str`` in text format and stay ``bytes`` in binary format.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..types import (
    Format,
    Oid,
    TypeCodec,
    TypeCodecError,
    UnsupportedTypeError,
    codec,
    infer_oid,
)
from ._errors import SQLError, SQLState

__all__ = ["Decoder", "Encoder", "decoder", "encoder", "infer_type", "type_size"]

#: Encodes one non-NULL value.
Encoder = Callable[[object], bytes]
#: Decodes one non-NULL parameter.
Decoder = Callable[[bytes], object]

_STRING_TYPES = frozenset({Oid.TEXT, Oid.VARCHAR, Oid.BPCHAR, Oid.NAME, Oid.UNKNOWN})
_INT_RANGES = {
    Oid.INT2: (-(2**15), 2**15 - 1, 2),
    Oid.INT4: (-(2**31), 2**31 - 1, 4),
    Oid.INT8: (-(2**63), 2**63 - 1, 8),
}


def _codec_or_none(oid: int) -> TypeCodec | None:
    try:
        return codec(oid)
    except UnsupportedTypeError:
        return None


def type_size(oid: int) -> int:
    """The size RowDescription reports for ``oid`` (-1 when unknown)."""
    found = _codec_or_none(oid)
    return found.typlen if found is not None else -1


def infer_type(value: object) -> int:
    """The column type of a Python value (:func:`pygwire.types.infer_oid`),
    text when there is no default."""
    try:
        return int(infer_oid(value))
    except UnsupportedTypeError:
        return Oid.TEXT


def codec_error(exc: TypeCodecError) -> SQLError:
    """A codec's error as the client gets it (its SQLSTATE and type name)."""
    return SQLError(exc.sqlstate, str(exc), data_type_name=exc.type_name)


def _as_text(value: object) -> str:
    """Any value as the text output of its own type (what ``::text`` gives)."""
    if isinstance(value, str):
        return value
    try:
        return codec(infer_oid(value)).encode(value, Format.TEXT).decode("utf-8")
    except TypeCodecError:
        return str(value)


@functools.lru_cache(maxsize=512)
def encoder(oid: int, fmt: int) -> Encoder:
    """The encoder of non-NULL values of type ``oid`` in format ``fmt``.

    It raises :class:`SQLError` (with the codec's SQLSTATE) for a value
    the type cannot take.
    """
    if fmt not in (Format.TEXT, Format.BINARY):
        raise SQLError(SQLState.PROTOCOL_VIOLATION, f"unsupported format code: {fmt}")
    found = _codec_or_none(oid)
    if found is None:
        return _raw_encoder(oid, fmt)
    type_codec: TypeCodec = found
    string_type = oid in _STRING_TYPES
    binary = fmt == Format.BINARY

    def slow(value: object) -> bytes:
        try:
            return type_codec.encode(value, fmt)
        except TypeCodecError as exc:
            if exc.sqlstate != SQLState.DATATYPE_MISMATCH:
                raise codec_error(exc) from None
        # The value is of another Python type: the two conversions.
        try:
            if string_type:
                return type_codec.encode(_as_text(value), fmt)
            if isinstance(value, str):
                parsed = type_codec.decode(value.encode("utf-8"), Format.TEXT)
                return type_codec.encode(parsed, fmt)
        except TypeCodecError as exc:
            raise codec_error(exc) from None
        raise SQLError(
            SQLState.DATATYPE_MISMATCH,
            f"cannot send a {type(value).__name__} value as type {type_codec.name}",
            data_type_name=type_codec.name,
        )

    # The frequent cases written out; anything unusual goes the long way.
    if oid in _INT_RANGES:
        lo, hi, size = _INT_RANGES[Oid(oid)]
        if binary:

            def int_binary(value: object) -> bytes:
                if type(value) is int and lo <= value <= hi:
                    return value.to_bytes(size, "big", signed=True)
                return slow(value)

            return int_binary

        def int_text(value: object) -> bytes:
            if type(value) is int and lo <= value <= hi:
                return b"%d" % value
            return slow(value)

        return int_text
    if oid in (Oid.TEXT, Oid.VARCHAR):

        def text(value: object) -> bytes:
            if type(value) is str and "\x00" not in value:
                try:
                    return value.encode("utf-8")
                except UnicodeEncodeError:
                    pass  # a lone surrogate: the codec words the error
            return slow(value)

        return text
    return slow


def _raw_encoder(oid: int, fmt: int) -> Encoder:
    def raw(value: object) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if fmt == Format.TEXT:
            try:
                return _as_text(value).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SQLError(SQLState.CHARACTER_NOT_IN_REPERTOIRE, str(exc)) from None
        raise SQLError(
            SQLState.DATATYPE_MISMATCH,
            f"type {oid} has no codec: give its binary value as bytes",
        )

    return raw


@functools.lru_cache(maxsize=512)
def decoder(oid: int, fmt: int) -> Decoder:
    """The decoder of non-NULL parameters of type ``oid`` sent in ``fmt``.

    It raises :class:`SQLError` with PostgreSQL's SQLSTATE for bytes that
    are not a valid value (22P02 invalid text, 22P03 invalid binary, ...).
    """
    if fmt not in (Format.TEXT, Format.BINARY):
        raise SQLError(SQLState.PROTOCOL_VIOLATION, f"unsupported format code: {fmt}")
    found = _codec_or_none(oid) if oid not in (0, Oid.UNKNOWN) else None
    if found is None:
        if fmt == Format.BINARY:
            return bytes

        def text(data: bytes) -> object:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SQLError(
                    SQLState.CHARACTER_NOT_IN_REPERTOIRE,
                    f'invalid byte sequence for encoding "UTF8": {exc.reason}',
                ) from None

        return text
    type_codec: TypeCodec = found

    def decode(data: bytes) -> object:
        try:
            return type_codec.decode(data, fmt)
        except TypeCodecError as exc:
            raise codec_error(exc) from None

    return decode
