"""ErrorResponse and NoticeResponse: a set of (field code, text) pairs.

``fields`` keeps every pair, including codes this library does not know,
as the protocol asks frontends to ignore (not drop) unknown fields.  Each
documented code also has a named read-only accessor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self, overload

from .._wire import Reader, Writer
from ..constants import ErrorField
from ._base import BackendMessage, message

__all__ = ["ErrorResponse", "NoticeResponse"]


class _Field:
    """Accessor for one field code: the text, or None when absent."""

    def __init__(self, code: ErrorField, doc: str) -> None:
        self.code = code.value
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> _Field: ...
    @overload
    def __get__(self, obj: _FieldsMessage, owner: type) -> str | None: ...
    def __get__(self, obj: _FieldsMessage | None, owner: type) -> _Field | str | None:
        if obj is None:
            return self
        return obj.fields.get(self.code)


class _Required(_Field):
    """Accessor for a field PostgreSQL always sends: "" when absent."""

    @overload
    def __get__(self, obj: None, owner: type) -> _Field: ...
    @overload
    def __get__(self, obj: _FieldsMessage, owner: type) -> str: ...
    def __get__(self, obj: _FieldsMessage | None, owner: type) -> _Field | str:
        if obj is None:
            return self
        return obj.fields.get(self.code, "")


@dataclass(slots=True)
class _FieldsMessage(BackendMessage):
    """ErrorResponse and NoticeResponse: the fields and their accessors."""

    fields: dict[str, str] = field(default_factory=dict)

    severity = _Required(ErrorField.SEVERITY, "ERROR, FATAL, NOTICE, ... (localized).")
    severity_nonlocalized = _Field(
        ErrorField.SEVERITY_NONLOCALIZED, "The severity, never localized."
    )
    code = _Required(ErrorField.CODE, "The SQLSTATE code.")
    message = _Required(ErrorField.MESSAGE, "The primary human-readable message.")
    detail = _Field(ErrorField.DETAIL, "An optional secondary message.")
    hint = _Field(ErrorField.HINT, "An optional suggestion what to do.")
    position = _Field(ErrorField.POSITION, "1-based index into the query, as text.")
    internal_position = _Field(ErrorField.INTERNAL_POSITION, "Position in an internal command.")
    internal_query = _Field(ErrorField.INTERNAL_QUERY, "The internal command that failed.")
    where = _Field(ErrorField.WHERE, "Call-stack context.")
    schema_name = _Field(ErrorField.SCHEMA_NAME, "Schema of the object involved.")
    table_name = _Field(ErrorField.TABLE_NAME, "Table involved.")
    column_name = _Field(ErrorField.COLUMN_NAME, "Column involved.")
    data_type_name = _Field(ErrorField.DATA_TYPE_NAME, "Data type involved.")
    constraint_name = _Field(ErrorField.CONSTRAINT_NAME, "Constraint involved.")
    file = _Field(ErrorField.FILE, "Source file that reported the error.")
    line = _Field(ErrorField.LINE, "Source line that reported the error, as text.")
    routine = _Field(ErrorField.ROUTINE, "Source routine that reported the error.")

    def _write(self, w: Writer) -> None:
        for code, text in self.fields.items():
            # A code is one byte, as decoded: chr() of it.  Type first: a
            # bytes code would raise TypeError (or, under -bb, BytesWarning)
            # in the comparison instead of EncodingError.
            if not isinstance(code, str) or len(code) != 1 or not "\x01" <= code <= "\xff":
                w.fail("fields", f"field code {code!r} is not a single non-NUL byte")
            w.raw(code.encode("latin-1"), "fields")
            w.cstring(text, "fields")
        w.raw(b"\0", "fields")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        fields: dict[str, str] = {}
        while code_byte := r.byte1():
            code = chr(code_byte)
            if code in fields:
                r.fail(f"field {code!r} appears twice", at=r.pos - 1)
            fields[code] = r.cstring()
        return cls(fields=fields)


@message(b"E", long=True)
class ErrorResponse(_FieldsMessage):
    """An error; the current command (or with FATAL, the session) is over."""


@message(b"N", long=True)
class NoticeResponse(_FieldsMessage):
    """A warning or notice; may arrive at any time."""
