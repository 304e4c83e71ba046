"""The fast paths must agree with the strict ones on every input.

Frequent messages decode through ``_parse`` and encode through
``_fast_wire``, which take shortcuts and hand any doubt to the strict
Reader/Writer.  Here both are run side by side: on valid payloads, on
payloads damaged at random, and on messages with odd field values, they
must produce the same message, the same bytes, or the same error.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import DecodingError, EncodingError
from pygwire import messages as m
from pygwire.messages._registry import DECLARATIONS
from strategies import ALL_MESSAGE_CLASSES, STRATEGIES, payload_of

_STRICT = m.PGMessage._parse.__func__  # type: ignore[attr-defined]


def _stream_parser(cls: type[m.PGMessage]) -> Any:
    """The parser the stream decoders use for ``cls``."""
    return DECLARATIONS[cls].parser


#: Classes whose stream parser is not the strict one.
FAST_PARSED = [
    c for c in ALL_MESSAGE_CLASSES if getattr(_stream_parser(c), "__func__", None) is not _STRICT
]


def _outcome(parse: Any, payload: bytes) -> object:
    """A message (DataRow's columns forced), or the error's identity."""
    # A window inside a larger buffer, as the stream decoders pass it.
    buf = b"\xaa" * 3 + payload + b"\x00\xff" * 3
    try:
        msg = parse(buf, 3, 3 + len(payload))
        if isinstance(msg, m.DataRow):
            _ = msg.columns
    except DecodingError as exc:
        return ("error", exc.message, exc.offset)
    return msg


def _mutate(data: st.DataObject, payload: bytes) -> bytes:
    raw = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "grow", "zero", "neg"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[at:]
        elif op == "grow":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "zero" and raw:
            raw[at] = 0
        elif op == "neg" and raw:
            raw[at] = 0xFF
    return bytes(raw)


@settings(max_examples=examples(300))
@given(data=st.data())
def test_fast_parsers_agree_with_strict(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(FAST_PARSED))
    payload = payload_of(data.draw(STRATEGIES[cls]))
    if data.draw(st.booleans()):
        payload = _mutate(data, payload)
    strict = _outcome(cls._parse_strict, payload)
    fast = _outcome(_stream_parser(cls), payload)
    # DataRow's strict reader fails at once; its lazy parser at .columns.
    assert fast == strict, (cls.__name__, payload)


@settings(max_examples=examples(300))
@given(data=st.data())
def test_fast_encoders_agree_with_validating(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(ALL_MESSAGE_CLASSES))
    msg = data.draw(STRATEGIES[cls])
    fast = msg._fast_wire()
    buf = bytearray()
    msg._encode_validated(buf)
    if fast is not None:
        assert fast == bytes(buf)
    assert msg.to_wire() == bytes(buf)


def test_fast_paths_exist_for_the_hot_messages() -> None:
    """A regression guard: these must not silently fall back to strict."""
    for cls in (m.DataRow, m.RowDescription, m.Bind, m.Parse, m.Execute, m.Describe, m.Query):
        assert cls in FAST_PARSED, cls
    payload = b""
    assert _stream_parser(m.Sync)(payload, 0, 0) is _stream_parser(m.Sync)(payload, 0, 0)
    assert m.Sync().to_wire() == b"S\x00\x00\x00\x04"  # constant wire form


def test_fast_encoder_refuses_what_the_writer_refuses() -> None:
    bad = [
        m.Bind(portal="a\x00b"),
        m.Bind(param_formats=[70000]),
        m.Bind(param_values=["text"]),  # type: ignore[list-item]
        m.Execute(portal="p", max_rows=2**31),
        m.Parse(query="x\x00"),
        m.Parse(param_types=[-1]),
        m.Query(query_string="\ud800"),
        m.DataRow(columns=[1]),  # type: ignore[list-item]
    ]
    for msg in bad:
        try:
            msg.to_wire()
        except EncodingError:
            continue
        raise AssertionError(f"{msg!r} was encoded")
