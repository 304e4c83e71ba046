"""Fuzzing the encoders: whatever a field holds, encoding either produces
bytes that decode back to the same message, or raises EncodingError naming
the field, and never anything else.

Every field of every message class is replaced, one at a time, by values of
every kind Python has: None, numbers, booleans, text, bytes-like buffers of
one-byte and of wider items (arrays, memoryviews, ctypes arrays, mmap), lists
and tuples of those, dicts, sets, arbitrary objects.  Buffers of one-byte
items are bytes; they must encode to exactly their bytes (a length counted
in items instead of bytes would make the surplus become protocol fields).
"""

from __future__ import annotations

import array
import ctypes
import dataclasses
import mmap
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import EncodingError
from pygwire import messages as m
from strategies import ALL_MESSAGE_CLASSES, STRATEGIES, contexts_for

EXAMPLES = examples(int(os.environ.get("PYGWIRE_FUZZ_EXAMPLES", "300")))
FUZZ = settings(
    max_examples=examples(3) * EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_MAP = mmap.mmap(-1, 8)
_MAP.write(b"mmapped!")


def _byte_buffers(data: bytes) -> list[Any]:
    return [
        data,
        bytearray(data),
        memoryview(b"<" + data + b">")[1:-1],
        array.array("B", data),
        array.array("b", [x - 256 if x > 127 else x for x in data]),
        (ctypes.c_char * len(data)).from_buffer_copy(data) if data else bytearray(),
        memoryview(data).cast("c") if data else b"",
    ]


def _wide_buffers() -> list[Any]:
    return [
        array.array("H", [0x4142, 0x4344]),
        array.array("i", [1, -2]),
        array.array("d", [0.5]),
        memoryview(b"abcdefgh").cast("I"),
        (ctypes.c_uint32 * 2)(1, 2),
        memoryview(b"abcdef")[::2],  # one-byte items, not contiguous
    ]


#: Values of every kind, for any field.
ODD_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    # Drawn by index: Hypothesis hashes what sampled_from holds.
    st.tuples(st.binary(max_size=5), st.integers(0, 6)).map(lambda t: _byte_buffers(t[0])[t[1]]),
    st.integers(0, 5).map(lambda i: _wide_buffers()[i]),
    st.builds(lambda: memoryview(_MAP)),
    st.lists(
        st.one_of(st.none(), st.integers(-3, 70000), st.binary(max_size=3), st.text(max_size=3)),
        max_size=4,
    ),
    st.tuples(st.integers(0, 3), st.text(max_size=2)),
    st.dictionaries(
        st.text(max_size=2), st.one_of(st.text(max_size=2), st.integers(0, 3)), max_size=3
    ),
    st.frozensets(st.integers(0, 3), max_size=2),
    st.builds(object),
)


def _fields(msg: m.PGMessage) -> list[str]:
    if isinstance(msg, m.DataRow):
        return ["columns"]
    if dataclasses.is_dataclass(msg):
        return [f.name for f in dataclasses.fields(msg)]
    return []


def _normalised(value: Any) -> Any:
    """A field's value as bytes where it is text or a one-byte buffer (a
    password decodes to str when it is UTF-8, to bytes otherwise)."""
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None or isinstance(value, (int, dict)):
        return value
    try:
        with memoryview(value) as view:
            return bytes(view)
    except TypeError:
        return value


@FUZZ
@given(data=st.data())
def test_any_value_in_any_field_encodes_faithfully_or_is_refused(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(ALL_MESSAGE_CLASSES))
    msg = data.draw(STRATEGIES[cls])
    names = _fields(msg)
    if not names:
        return
    name = data.draw(st.sampled_from(names))
    value = data.draw(ODD_VALUES)
    if isinstance(msg, m.DataRow):
        setattr(msg, "columns", value)  # noqa: B010 - through the descriptor, any value
    else:
        object.__setattr__(msg, name, value)
    refused: EncodingError | None = None
    try:
        wire = msg.to_wire()
    except EncodingError as exc:
        refused = exc
    if refused is not None:
        assert refused.message == cls.__name__
        assert refused.field.split(".")[0].split("[")[0] == name, (refused, name)
        buf = bytearray(b"kept")
        with pytest.raises(EncodingError):
            msg.encode_into(buf)
        assert buf == b"kept"
        return
    if cls is m.DirectSSLHandshake:
        return  # its bytes are a TLS record, not a message to decode again
    # Encoded: it must decode back to the same values (buffers as bytes).
    decoded = _decode(cls, wire)
    got = decoded.columns if isinstance(decoded, m.DataRow) else getattr(decoded, name)
    assert _normalised(got) == _normalised(value) or got == value, (cls.__name__, name, value)


def _decode(cls: type[m.PGMessage], wire: bytes) -> m.PGMessage:
    decoder = contexts_for(cls)[0].new()
    decoder.feed(wire)
    msg = decoder.read()
    assert msg is not None
    return msg
