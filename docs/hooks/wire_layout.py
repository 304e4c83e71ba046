"""Wire layouts of the message classes, derived from their encoders.

A message's layout is not written down a second time: each class is
encoded through a :class:`pygwire._wire.Writer` that records every call
(``cstring(value, "name")``, ``int16_array(...)``, ``raw(...)``), and the
calls become rows in the protocol documentation's vocabulary (``Byte1('Q')``,
``Int32``, ``String``, ``Byten``).  Repeated parts (RowDescription's
fields, an ErrorResponse's fields, StartupMessage's parameters) are found
by encoding the message with zero, one and two items and comparing the
calls; the identifier and request codes come from the registry
(:data:`pygwire.messages._base.REGISTRY`).

Used by the documentation build (``griffe_pygwire.py``) and tested in
``tests/unit/test_docs_hooks.py``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pygwire._wire import Writer
from pygwire.constants import MAX_MESSAGE_LENGTH
from pygwire.messages import FieldDescription, PGMessage
from pygwire.messages._base import REGISTRY, Declaration

__all__ = ["Call", "Loop", "Row", "declarations", "layout", "layout_markdown"]


@dataclass(frozen=True)
class Call:
    """One call a message's encoder made on its Writer."""

    method: str
    field: str
    #: Not compared: a count differs between encodings of one layout.
    value: Any = dataclasses.field(compare=False)


@dataclass(frozen=True)
class Loop:
    """Calls repeated once per item of a list or dict field."""

    field: str
    calls: tuple[Call, ...]


@dataclass(frozen=True)
class Row:
    """One line of a layout: the wire type, the field it holds, a note."""

    wire: str
    field: str
    note: str = ""
    depth: int = 0


_RECORDED = (
    "byte1",
    "int8",
    "int16",
    "uint16",
    "count",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "raw",
    "cstring",
    "value",
    "values",
    "int16_array",
    "uint32_array",
)


class _RecordingWriter(Writer):
    """A Writer that also records the calls the encoder makes on it (the
    outermost ones: ``values`` calling ``count`` records ``values``)."""

    __slots__ = ("calls", "_depth")

    def __init__(self, name: str) -> None:
        super().__init__(bytearray(), name, MAX_MESSAGE_LENGTH)
        self.calls: list[Call] = []
        self._depth = 0


def _recorder(method: str) -> Callable[..., None]:
    base = getattr(Writer, method)

    def record(self: _RecordingWriter, value: Any, field: str) -> None:
        if self._depth == 0:
            self.calls.append(Call(method, field, value))
        self._depth += 1
        try:
            base(self, value, field)
        finally:
            self._depth -= 1

    return record


for _method in _RECORDED:
    setattr(_RecordingWriter, _method, _recorder(_method))


def declarations() -> list[Declaration]:
    """Every declared message class with a layout of its own (the bases of
    families, such as AuthenticationMessage, have none)."""
    return [d for d in REGISTRY if _calls(d.cls, {}) is not None or _is_reply(d.cls)]


def _is_reply(cls: type[PGMessage]) -> bool:
    return issubclass(cls, enum.Enum)


def _calls(cls: type[PGMessage], values: dict[str, Any]) -> list[Call] | None:
    """The calls that encoding ``cls(**values)`` makes; None when the class
    cannot be built or encoded on its own (a family's base)."""
    if _is_reply(cls) or "_encode_validated" in vars(cls):
        return None
    try:
        msg = cls(**values)
        writer = _RecordingWriter(cls.__name__)
        msg._write(writer)
    except Exception:
        return None
    return writer.calls


def _fields(cls: type) -> dict[str, Any]:
    """Field name -> annotation, for dataclass messages (and DataRow)."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    if cls.__name__ == "DataRow":
        return {"columns": list[bytes | None]}
    return {}


def _item(hint: Any) -> Any:
    """A valid sample item for a list of ``hint``."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if hint is str:
        return "a"
    if hint is int:
        return 0
    if hint is FieldDescription:
        return FieldDescription()
    return b""  # bytes, bytes | None


def _sample(hint: Any, n: int) -> Any | None:
    """A list or dict value with ``n`` items for a field of type ``hint``;
    None when the field is neither."""
    origin = typing.get_origin(hint)
    if origin is list:
        return [_item(typing.get_args(hint)[0]) for _ in range(n)]
    if origin is dict:
        # Single letters: valid error field codes and parameter names alike.
        return {key: "v" for key in "SMCDH"[:n]}
    return None


def _splice(base: list[Call], more: list[Call], k: int) -> int | None:
    """Where ``more`` inserts ``k`` calls into ``base``, if it does."""
    for p in range(len(base) + 1):
        if more[:p] == base[:p] and more[p + k :] == base[p:]:
            return p
    return None


def layout(cls: type[PGMessage]) -> list[Call | Loop] | None:
    """The encoder's calls for ``cls``, repeated parts as :class:`Loop`;
    None when it has no layout of its own."""
    fields = _fields(cls)
    base = _calls(cls, {})
    if base is None:
        return None
    loops: list[tuple[int, Loop]] = []
    for name, hint in fields.items():
        one, two = _sample(hint, 1), _sample(hint, 2)
        if one is None:
            continue
        calls1, calls2 = _calls(cls, {name: one}), _calls(cls, {name: two})
        if calls1 is None or calls2 is None:
            continue
        k = len(calls1) - len(base)
        if k <= 0:
            continue  # one call for the whole list: values(), int16_array(), ...
        p = _splice(base, calls1, k)
        if p is None or _splice(base, calls2, 2 * k) != p:
            raise ValueError(f"{cls.__name__}.{name}: cannot tell the repeated part")
        loops.append((p, Loop(name, tuple(calls1[p : p + k]))))
    out: list[Call | Loop] = list(base)
    for p, loop in sorted(loops, key=lambda pl: pl[0], reverse=True):
        out[p:p] = [loop]
    return out


_INT = {
    "byte1": "Byte1",
    "int8": "Int8",
    "int16": "Int16",
    "uint16": "Int16",
    "int32": "Int32",
    "uint32": "Int32",
    "int64": "Int64",
    "uint64": "Int64",
}


def _code(name: str) -> str:
    return f"`{name}`"


def _rows(
    cls: type[PGMessage], calls: Sequence[Call | Loop], fields: dict[str, Any], depth: int
) -> list[Row]:
    rows: list[Row] = []
    for call in calls:
        if isinstance(call, Loop):
            rows.append(Row("", f"for each item of {_code(call.field)}:", "", depth))
            inner = _rows(cls, call.calls, fields, depth + 1)
            if typing.get_origin(fields[call.field]) is dict and len(inner) == 2:
                notes = ("key", "value")
                inner = [dataclasses.replace(r, note=n) for r, n in zip(inner, notes, strict=True)]
            rows += inner
            continue
        field = call.field.split(".")[0].split("[")[0]
        is_field = field in fields
        shown = _code(call.field) if is_field else ""
        method = call.method
        if method in _INT or method == "count":
            wire = "Int16" if method == "count" else _INT[method]
            hint = fields.get(field)
            if is_field and typing.get_origin(hint) in (list, dict) and depth == 0:
                rows.append(Row(wire, "", f"number of {_code(field)} items", depth))
            elif is_field:
                note = "unsigned" if method in ("uint16", "uint32", "uint64") else ""
                rows.append(Row(wire, shown, note, depth))
            else:
                what = "authentication code" if cls.identifier == b"R" else "request code"
                rows.append(Row(f"{wire}({int(call.value)})", "", f"the {what}", depth))
        elif method == "cstring":
            rows.append(Row("String", shown, "NUL-terminated", depth))
        elif method == "raw":
            data = bytes(call.value)
            if data == b"\0" and (not is_field or typing.get_origin(fields[field]) in (list, dict)):
                rows.append(Row("Byte1(0)", "", "terminator", depth))
            elif is_field and fields[field] is bytes and not _fixed_length(cls, field):
                rows.append(Row("Byte*n*", shown, "to the end of the message", depth))
            else:
                rows.append(Row(f"Byte{len(data)}", shown, "", depth))
        elif method == "value":
            rows.append(Row("Int32", "", f"length of {shown} in bytes; -1 is NULL", depth))
            rows.append(Row("Byte*n*", shown, "", depth))
        elif method == "values":
            rows.append(Row("Int16", "", f"number of {_code(field)}", depth))
            rows.append(Row("", f"for each item of {shown}:", "", depth))
            rows.append(Row("Int32", "", "length in bytes; -1 is NULL", depth + 1))
            rows.append(Row("Byte*n*", "", "the value", depth + 1))
        elif method in ("int16_array", "uint32_array"):
            item = "Int16" if method == "int16_array" else "Int32"
            rows.append(Row("Int16", "", f"number of {_code(field)}", depth))
            rows.append(Row(f"{item}[*n*]", shown, "", depth))
        else:  # pragma: no cover - every recorded method is handled above
            raise ValueError(method)
    return rows


def _fixed_length(cls: type[PGMessage], field: str) -> bool:
    """A bytes field whose encoder refuses any other length than its
    default's (a salt, say): found by trying a longer value."""
    default = getattr(cls(), field)
    return _calls(cls, {field: bytes(default) + b"\0"}) is None


def rows(cls: type[PGMessage]) -> list[Row]:
    """The layout of ``cls`` as table rows, framing included."""
    if _is_reply(cls):
        members = typing.cast(Any, cls)
        return [Row(f"Byte1('{m.value.decode()}')", "", m.name) for m in members]
    calls = layout(cls)
    if calls is None:
        return []
    framing: list[Row] = []
    if cls.identifier:
        framing.append(Row(f"Byte1('{cls.identifier.decode()}')", "", "identifies the message"))
    framing.append(Row("Int32", "", "length of the message in bytes, counting itself"))
    return framing + _rows(cls, calls, _fields(cls), 0)


def layout_markdown(cls: type[PGMessage]) -> str:
    """The layout of ``cls`` as a Markdown table ("" when it has none)."""
    table = rows(cls)
    if not table:
        return ""
    if _is_reply(cls):
        head = "One byte, with no identifier and no length word:"
    else:
        head = "On the wire (types as in the protocol documentation's *Message Formats*):"
    lines = [head, "", "| bytes | field | |", "|---|---|---|"]
    for row in table:
        indent = "&emsp;" * row.depth
        wire = f"`{row.wire}`" if row.wire and "*" not in row.wire else row.wire
        lines.append(f"| {indent}{wire} | {indent if not wire else ''}{row.field} | {row.note} |")
    return "\n".join(lines) + "\n"


def _type_name(hint: Any) -> str:
    """An annotation as a reader wants it: ``list[int (Int16)]``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        wire = re.sub(r" \((unsigned)[^)]*\)", r" \1", getattr(args[1], "name", ""))
        return f"{_type_name(args[0])} ({wire})" if wire else _type_name(args[0])
    if origin in (list, dict):
        inner = ", ".join(_type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if origin is not None and args:  # a union
        return " | ".join(_type_name(a) for a in args)
    if hint is type(None):
        return "None"
    return str(getattr(hint, "__name__", hint))


def fields_markdown(cls: type[PGMessage]) -> str:
    """The constructor's fields of ``cls``: name, type, default ("" if none)."""
    if not dataclasses.is_dataclass(cls):
        return ""
    hints = typing.get_type_hints(cls, include_extras=True)
    lines = ["| field | type | default |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = ""
        default = default.replace("|", "\\|")
        lines.append(f"| `{f.name}` | `{_type_name(hints[f.name])}` | `{default}` |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""
