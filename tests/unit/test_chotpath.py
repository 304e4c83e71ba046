"""The compiled framing functions against the Python reference, side by side.

``pygwire._chotpath`` (``src/pygwire/_chotpath.c``) must behave exactly like
the functions of ``pygwire/_hotpath.py`` it replaces: the same results, the
same exception types, messages and fields (offsets included), the same
updates to the FrameBuffer.  Every test runs both on the same input (valid,
damaged, random) and compares everything observable.

The reference is ``_hotpath.py`` loaded a second time with
``PYGWIRE_PURE_PYTHON=1``, so it is the Python code whichever path the
installed package uses.  Without the extension these tests skip, except in
CI (``CI=true``), where they fail: CI must test the compiled path.
"""

from __future__ import annotations

import array
import contextlib
import copy
import functools
import gc
import importlib
import importlib.util
import itertools
import logging
import mmap
import os
import signal
import struct
import sys
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType, ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from model_cases import RULES
from pygwire import (
    ConnectionPhase,
    DecodingError,
    FramingError,
    MessageDirection,
    ProtocolError,
    ProtocolState,
    StateMachineError,
    TransactionStatus,
    _hotpath,
)
from pygwire import messages as m
from pygwire import state_machine as sm
from pygwire.codec import MessageDecoder
from pygwire.messages._registry import DECLARATIONS
from pygwire.messages.simple_query import FieldDescription
from pygwire.replication import (
    LSN,
    Begin,
    Commit,
    Delete,
    Insert,
    PgOutputContext,
    Timestamp,
    TupleColumn,
    Update,
    XLogData,
)
from strategies import SEQUENCE_CONTEXTS, STRATEGIES, payload_of, sequences

IN_CI = os.environ.get("CI") == "true"
EXAMPLES = examples(int(os.environ.get("PYGWIRE_FUZZ_EXAMPLES", "300")))
DIFF = settings(max_examples=EXAMPLES, deadline=None)


def _load_compiled() -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module("pygwire._chotpath"), ""
    except ImportError as exc:
        return None, str(exc)


def _load_reference() -> ModuleType:
    """``_hotpath.py`` executed again with PYGWIRE_PURE_PYTHON=1."""
    spec = importlib.util.spec_from_file_location("pygwire._hotpath_reference", _hotpath.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = os.environ.get("PYGWIRE_PURE_PYTHON")
    os.environ["PYGWIRE_PURE_PYTHON"] = "1"
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del os.environ["PYGWIRE_PURE_PYTHON"]
        else:
            os.environ["PYGWIRE_PURE_PYTHON"] = saved
    assert module.IMPLEMENTATION == "python"
    return module


_C, _C_MISSING = _load_compiled()
PY = _load_reference()

if _C is None and not IN_CI:
    pytest.skip(f"pygwire._chotpath is not built ({_C_MISSING})", allow_module_level=True)


class _Missing:
    """Stands in for the extension in CI when it was not built: every test
    fails as soon as it reaches for it."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"CI must test the compiled framing, but it is missing: {_C_MISSING}")


def c() -> Any:
    return _Missing() if _C is None else _C


# -- comparing outcomes -------------------------------------------------------------


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """What a call returned, or everything about what it raised."""
    try:
        result = fn(*args)
    except Exception as exc:
        return ("raised", type(exc), str(exc), exc.args, dict(getattr(exc, "__dict__", {})))
    return ("returned", type(result), result)


def same(name: str, *args: Any) -> tuple[Any, ...]:
    """Run ``name`` in both versions; assert they agree; return the outcome."""
    expected = outcome(getattr(PY, name), *args)
    got = outcome(getattr(c(), name), *args)
    assert got == expected, (name, args)
    return expected


def windows(payload: bytes) -> st.SearchStrategy[tuple[bytes, int, int]]:
    """``payload`` alone or inside a larger buffer, as the decoders pass it."""
    pads = st.binary(max_size=6)
    return st.tuples(pads, pads).map(
        lambda p: (p[0] + payload + p[1], len(p[0]), len(p[0]) + len(payload))
    )


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data``, now and then with a few random mutations."""
    if draw(st.integers(0, 3)) == 0:
        return data
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "int32", "int16", "cut", "grow", "delete"]))
        at = draw(st.integers(0, len(buf)))
        if op == "flip" and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and buf:
            buf[min(at, len(buf) - 1)] = draw(st.sampled_from([0, 0x7F, 0x80, 0xC3, 0xFF]))
        elif op == "int32":
            word = draw(st.sampled_from([0, 1, 4, 5, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE]))
            buf[at : at + 4] = struct.pack("!I", word)
        elif op == "int16":
            buf[at : at + 2] = struct.pack("!H", draw(st.sampled_from([0, 1, 2, 0xFFFF])))
        elif op == "cut":
            del buf[at:]
        elif op == "grow":
            buf[at:at] = draw(st.binary(min_size=1, max_size=20))
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 20))]
    return bytes(buf)


# -- the switch -----------------------------------------------------------------------


def test_implementation_follows_the_environment() -> None:
    wanted = os.environ.get("PYGWIRE_PURE_PYTHON", "") in ("", "0")
    assert _hotpath.implementation() == ("c" if wanted else "python")
    assert _hotpath.implementation() == _hotpath.IMPLEMENTATION
    if wanted:
        assert _hotpath.decode_frames is c().decode_frames
        assert _hotpath.split_data_row is c().split_data_row
    else:
        assert _hotpath.decode_frames.__module__ == "pygwire._hotpath"


# -- split_data_row ---------------------------------------------------------------------

columns = st.lists(st.none() | st.binary(max_size=40), max_size=12)


def data_row_payload(cols: list[bytes | None]) -> bytes:
    out = [struct.pack("!H", len(cols))]
    for v in cols:
        out.append(b"\xff\xff\xff\xff" if v is None else struct.pack("!I", len(v)) + v)
    return b"".join(out)


@DIFF
@given(data=st.data())
def test_split_data_row(data: st.DataObject) -> None:
    if data.draw(st.integers(0, 4)) == 0:
        payload = data.draw(st.binary(max_size=40))
    else:
        payload = data.draw(damaged(data_row_payload(data.draw(columns))))
    same("split_data_row", *data.draw(windows(payload)))


def test_split_data_row_every_error() -> None:
    for payload in [
        b"",
        b"\x00",
        b"\x00\x01",
        b"\x00\x01\x00\x00",
        b"\x00\x01\xff\xff\xff\xfe",
        b"\x00\x01\x80\x00\x00\x00",
        b"\x00\x01\x00\x00\x00\x05abc",
        b"\x00\x01\x7f\xff\xff\xffabc",
        b"\x00\x00x",
        b"\x00\x01\xff\xff\xff\xffxy",
        b"\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc",
        b"\xff\xff",
    ]:
        for buf, start, end in [
            (payload, 0, len(payload)),
            (b"ab" + payload + b"z", 2, 2 + len(payload)),
        ]:
            result = same("split_data_row", buf, start, end)
            if payload != b"\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc":
                assert result[1] is DecodingError


def test_split_data_row_large_values() -> None:
    big = bytes(range(256)) * 300
    payload = data_row_payload([big, None, b"", big[:1023], big[:1024]])
    assert same("split_data_row", payload, 0, len(payload))[2] == [
        big,
        None,
        b"",
        big[:1023],
        big[:1024],
    ]


# -- data_row_to_wire --------------------------------------------------------------------


class _BadLen:
    def __len__(self) -> int:
        raise ValueError("no length")


class _HugeLen:
    def __len__(self) -> int:
        return 2**32


class _Bytes(bytes):
    pass


_ODD_VALUES: list[Any] = [
    bytearray(b"ab"),
    memoryview(b"abc"),
    memoryview(b"abcdef")[::2],  # not contiguous: no buffer for join
    memoryview(array.array("i", [1, 2])),  # len 2, 8 bytes: as odd in both
    _Bytes(b"sub"),
    "text",
    "",
    7,
    None,
    _HugeLen(),
    b"x" * 1500,
]


def _fallback(row: Any) -> Any:
    return ("fallback", row._columns)


def _encoding(mod: ModuleType, cols: Any) -> tuple[Any, ...]:
    row = _Slots()
    row._columns = cols
    row._raw = None
    return outcome(mod.data_row_to_wire(_Slots, _fallback), row)


def same_encoding(cols: Any) -> tuple[Any, ...]:
    """Encode a row of ``cols`` in both versions; assert they agree."""
    expected = _encoding(PY, cols)
    assert _encoding(c(), cols) == expected, cols
    return expected


@DIFF
@given(cols=columns, odd=st.lists(st.integers(0, len(_ODD_VALUES) - 1), max_size=3), data=st.data())
def test_data_row_to_wire(cols: list[Any], odd: list[int], data: st.DataObject) -> None:
    for i in odd:
        cols.insert(data.draw(st.integers(0, len(cols))), _ODD_VALUES[i])
    container = data.draw(st.sampled_from([list, tuple, deque]))
    same_encoding(container(cols))


def test_data_row_to_wire_edges() -> None:
    big = b"y" * 5000
    for cols in [
        [],
        [None] * 0xFFFF,
        [None] * 0x10000,
        [b""] * 0xFFFF,
        [big, b"a" * 1023, b"b" * 1024, None],
        [_BadLen()],
        [b"a", _BadLen()],
        [object()],
        [b"x" * 2000, _BadLen()],
        [_HugeLen(), _BadLen()],
        (b"t", None),
    ]:
        same_encoding(cols)
    # Anything but a list of None and bytes goes to the validating encoder,
    # which names the fault: nothing is measured with len() here.
    for odd in [5, iter([b"a"]), (b"t", None), [b"a", _BadLen()], [memoryview(b"ab")]]:
        assert same_encoding(odd) == ("returned", tuple, ("fallback", odd))


def test_data_row_to_wire_of_a_payload_and_as_a_method() -> None:
    payload = data_row_payload([b"ab", None])
    for mod in (PY, c()):
        row = mod.data_row_parser(_Slots)(payload, 0, len(payload))
        to_wire = mod.data_row_to_wire(_Slots, _fallback)
        assert to_wire(row) == b"D" + struct.pack("!I", 4 + len(payload)) + payload

        class Row(_Slots):
            __slots__ = ()
            encode = to_wire

        assert Row.__dict__["encode"].__qualname__ == "_Slots.to_wire"
        assert mod.data_row_parser(Row)(payload, 0, len(payload)).encode() == to_wire(row)
    with pytest.raises(TypeError):
        c().data_row_to_wire(_Slots, _fallback)(object())
    with pytest.raises(TypeError):
        c().data_row_to_wire(_Slots, _fallback)(row, 1)


def test_data_row_to_wire_over_the_size_limit_copies_nothing() -> None:
    # A 1 GiB column the kernel never backs with memory: the compiled
    # version sees the size before copying anything.
    with mmap.mmap(-1, 1 << 30) as mem:
        view = memoryview(mem)
        try:
            assert _encoding(c(), [view]) == ("returned", tuple, ("fallback", [view]))
        finally:
            view.release()


# -- cstring_payload ---------------------------------------------------------------------


@DIFF
@given(data=st.data())
def test_cstring_payload(data: st.DataObject) -> None:
    text = data.draw(st.text(max_size=20))
    payload = data.draw(
        st.sampled_from(
            [
                text.encode("utf-8", "surrogatepass") + b"\0",
                text.encode("utf-8", "surrogatepass"),
                data.draw(st.binary(max_size=12)),
            ]
        )
    )
    same("cstring_payload", *data.draw(windows(data.draw(damaged(payload)))))


def test_cstring_payload_edges() -> None:
    for args in [
        (b"", 0, 0),
        (b"abc\0", 0, 0),
        (b"abc\0", 4, 4),
        (b"\0", 0, 1),
        (b"a\0b\0", 0, 4),
        (b"\xc3\0", 0, 2),
        (b"\xc3\xa9\0", 0, 3),
        (b"\xed\xa0\x80\0", 0, 4),  # an encoded surrogate: not UTF-8
    ]:
        same("cstring_payload", *args)


# -- row_description_fields --------------------------------------------------------------


class _NotATuple:
    pass


class _Row(tuple[Any, ...]):
    __slots__ = ()


_MAKES: list[Any] = [FieldDescription, tuple, _Row, int, _NotATuple, os.stat_result, "x"]


def _fields_outcome(name: str, buf: bytes, start: int, end: int, make: Any) -> tuple[Any, ...]:
    result = same(name, buf, start, end, make)
    if result[0] == "returned" and result[2] is not None:
        # Equal tuples of different classes compare equal: check the class too.
        c_result = c().row_description_fields(buf, start, end, make)
        assert [type(f) for f in c_result] == [type(f) for f in result[2]]
    return result


@DIFF
@given(data=st.data())
def test_row_description_fields(data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[m.RowDescription])
    payload = data.draw(damaged(payload_of(msg)))
    make = data.draw(
        st.sampled_from(_MAKES) if data.draw(st.integers(0, 5)) == 0 else st.just(FieldDescription)
    )
    buf, start, end = data.draw(windows(payload))
    _fields_outcome("row_description_fields", buf, start, end, make)


def test_row_description_fields_edges() -> None:
    field = b"name\0" + bytes(range(1, 19))
    neg = b"\0" + b"\xff" * 18
    for payload in [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x00x",
        b"\x00\x01" + field,
        b"\x00\x01" + field + b"x",
        b"\x00\x02" + field,
        b"\x00\x02" + field + neg,
        b"\x00\x01" + field[:-1],
        b"\x00\x01\xc3\0" + bytes(18),
        b"\x00\x01\xc3\xa9\0" + bytes(18),
        b"\x00\x01" + b"\0" * 19,
        b"\x00\x02" + b"\0" * 38,
        b"\x00\x01x" + b"\0" * 19,  # the regex could match after a gap
    ]:
        for make in _MAKES:
            _fields_outcome("row_description_fields", payload, 0, len(payload), make)
            _fields_outcome(
                "row_description_fields", b"\0" + payload + b"\0", 1, len(payload) + 1, make
            )


# -- decode_frames with recording parsers -----------------------------------------------


def _recording_parser(ident: int) -> Callable[[bytes, int, int], Any]:
    """A parser that records its window, or fails as its payload asks."""

    def parse(buf: bytes, start: int, end: int) -> tuple[int, int, int, bytes]:
        payload = buf[start:end]
        if payload[:1] == b"\xee":
            raise DecodingError(chr(ident), len(payload), "asked to fail")
        if payload[:1] == b"\xef":
            raise FramingError("framing failure from a parser", length=len(payload))
        if payload[:1] == b"\xed":
            raise ValueError("not a protocol error")
        return (ident, start, end, payload)

    return parse


_PARSERS = [_recording_parser(i) for i in range(256)]


@st.composite
def frame_streams(draw: st.DrawFn) -> tuple[list[int], list[Any], int, int, list[bytes]]:
    """Limits, parsers, a hold type, a batch size and a chunked stream of
    frames, some bad."""
    known = draw(st.lists(st.integers(0, 255), min_size=1, max_size=6, unique=True))
    limits = [-1] * 256
    for ident in known:
        limits[ident] = draw(st.sampled_from([4, 5, 8, 40, 0x3FFFFFFE, 2**40]))
    parsers: list[Any] = list(_PARSERS)
    hold = draw(st.sampled_from([-1, 256, *known]))
    count = draw(st.sampled_from([1, 2, 3, 256]))
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        ident = draw(st.sampled_from(known)) if kind else draw(st.integers(0, 255))
        payload = draw(st.binary(max_size=30))
        if draw(st.integers(0, 5)) == 0:
            payload = draw(st.sampled_from([b"\xee", b"\xef", b"\xed"])) + payload
        length = len(payload) + 4
        if draw(st.integers(0, 9)) == 0:
            length = draw(st.sampled_from([0, 3, 2**31, 2**32 - 1, length + 1, length - 1]))
        parts.append(bytes([ident]) + struct.pack("!I", length) + payload)
    stream = draw(damaged(b"".join(parts)))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return limits, parsers, hold, count, chunks


class Hang(BaseException):
    """Raised by :func:`watchdog`; BaseException so that no ``except`` takes it."""


@contextlib.contextmanager
def watchdog(seconds: float = 10) -> Iterator[None]:
    """Interrupt a decode that goes round in circles (it calls fb.ensure,
    Python code, on every turn, so the signal handler gets to run)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"decoding took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fb_state(fb: Any) -> tuple[Any, ...]:
    return (fb.buf, fb.pos, bytes(fb.pending))


def _popped(queue: Any) -> list[Any]:
    """Everything in ``queue``, oldest first, removed."""
    items = []
    while (msg := queue.popleft()) is not None:
        items.append(msg)
    return items


def _run_frames(
    mod: ModuleType,
    limits: list[int],
    parsers: list[Any],
    hold: int,
    chunks: list[bytes],
    *,
    prefill: bool,
    drain: bool = True,
    count: int = 256,
) -> list[tuple[Any, ...]]:
    """Feed the chunks, decoding after each with ``mod``'s decode_frames
    into ``mod``'s MessageQueue; a trace of everything seen.

    With ``drain`` the queue is emptied after every call, as the decoders
    do before decoding again (so a held frame is decoded next time).
    """
    fb = mod.FrameBufferCore()  # the compiled one is read and updated in place
    queue = mod.MessageQueue()
    if prefill:
        queue.append("earlier", 0)
    trace: list[Any] = []
    with watchdog():
        for chunk in chunks:
            fb.feed(chunk)
            for _ in range(3):  # again after an error: a DecodingError consumed its frame
                result = outcome(mod.decode_frames, fb, limits, parsers, queue, hold, count)
                trace.append((result, _fb_state(fb), len(queue), queue.nbytes))
                if drain:
                    trace.append(_popped(queue))
                if result[0] == "returned":
                    break
    trace.append(_popped(queue))
    return trace


_BUFFER_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.binary(max_size=12)),
        st.tuples(st.just("ensure"), st.integers(-2, 40)),
        st.tuples(st.just("skip"), st.integers(0, 6)),
        st.tuples(st.sampled_from(["take", "clear", "len"]), st.none()),
    ),
    max_size=30,
)


def _run_buffer(mod: ModuleType, ops: list[tuple[str, Any]]) -> list[Any]:
    """Apply ``ops`` to ``mod``'s FrameBufferCore; its state after each."""
    fb = mod.FrameBufferCore()
    trace: list[Any] = []
    for op, arg in ops:
        if op == "feed":
            result: Any = fb.feed(arg)
        elif op == "ensure":
            result = fb.ensure(arg)
        elif op == "skip":  # what a decoder does after a frame
            result = fb.pos = min(fb.pos + arg, len(fb.buf))
        elif op == "len":
            result = len(fb)
        else:
            result = getattr(fb, op)()
        trace.append((op, result, _fb_state(fb)))
    return trace


@DIFF
@given(ops=_BUFFER_OPS)
def test_frame_buffer(ops: list[tuple[str, Any]]) -> None:
    assert _run_buffer(c(), ops) == _run_buffer(PY, ops)


def test_frame_buffer_refuses_what_would_break_it() -> None:
    fb = c().FrameBufferCore()
    fb.feed(b"abc")
    for pos in (4, -1):
        with pytest.raises(ValueError, match="outside the 3-byte buffer"):
            fb.pos = pos
    for wrong in (
        lambda: setattr(fb, "buf", bytearray(b"x")),
        lambda: setattr(fb, "pos", "1"),
        lambda: fb.feed(bytearray(b"x")),
        lambda: fb.ensure("1"),
    ):
        with pytest.raises(TypeError):
            wrong()
    fb.pos = 3
    fb.buf = b"a"  # a shorter buffer pulls pos inside it
    assert (fb.buf, fb.pos, len(fb)) == (b"a", 1, 0)


@DIFF
@given(case=frame_streams(), prefill=st.booleans(), drain=st.booleans())
def test_decode_frames(
    case: tuple[list[int], list[Any], int, int, list[bytes]], prefill: bool, drain: bool
) -> None:
    limits, parsers, hold, count, chunks = case
    kw: dict[str, Any] = {"prefill": prefill, "drain": drain, "count": count}
    expected = _run_frames(PY, limits, parsers, hold, chunks, **kw)
    got = _run_frames(c(), limits, parsers, hold, chunks, **kw)
    assert got == expected


def test_decode_frames_chunk_by_chunk() -> None:
    frames = b"".join(bytes([65 + i]) + struct.pack("!I", 4 + i) + bytes(i) for i in range(20))
    limits = [100] * 256
    for size in (1, 2, 3, 5, 7, 64):
        chunks = [frames[i : i + size] for i in range(0, len(frames), size)]
        expected = _run_frames(PY, limits, _PARSERS, -1, chunks, prefill=False)
        got = _run_frames(c(), limits, _PARSERS, -1, chunks, prefill=False)
        assert got == expected
        assert sum(len(step) for step in expected if isinstance(step, list)) == 20


def test_decode_frames_odd_arguments() -> None:
    def one(mod: ModuleType, overrides: dict[str, Any]) -> tuple[Any, ...]:
        fb = PY.FrameBuffer()
        fb.feed(b"A\0\0\0\x05xB\0\0\0\x04")
        queue = mod.MessageQueue()
        if overrides.pop("prefill", False):
            queue.append(1, 1)
        args: dict[str, Any] = {"fb": fb, "limits": [9] * 256, "parsers": _PARSERS}
        args.update(queue=queue, hold=-1, count=256)
        args.update(copy.deepcopy(overrides))
        result = outcome(lambda: mod.decode_frames(**args))
        return (result, _fb_state(fb), queue.nbytes, _popped(queue))

    cases: list[dict[str, Any]] = [
        {},
        {"hold": 66},
        {"hold": 65},
        {"hold": True},
        {"prefill": True, "hold": 65},
        {"prefill": True, "hold": 66},
        {"count": 1},
        {"count": 1, "hold": 66},
        {"limits": (9,) * 256, "parsers": tuple(_PARSERS)},
        {"limits": [3] * 256},
    ]
    for overrides in cases:
        assert one(c(), dict(overrides)) == one(PY, dict(overrides)), overrides
    with pytest.raises(TypeError):
        c().decode_frames(PY.FrameBuffer(), [9] * 256, _PARSERS, deque(), -1, 256)


class _RefusingBuffer:
    """A frame buffer whose ``pos`` cannot be set: the error from that
    assignment propagates, with the decoding error as its context."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self._pos = 0

    @property
    def pos(self) -> int:
        return self._pos

    @pos.setter
    def pos(self, value: int) -> None:
        raise RuntimeError(f"pos {value} refused")

    def ensure(self, n: int) -> bool:
        return False


def test_decode_frames_when_pos_cannot_be_set() -> None:
    limits = [40] * 256
    limits[0x58] = -1
    for stream in (b"A\0\0\0\x05x", b"A\0\0\0\x05xX\0\0\0\x04", b"A\0\0\0\x05\xee"):
        errors = []
        for mod in (PY, c()):
            queue = mod.MessageQueue()
            with pytest.raises(RuntimeError) as info:
                mod.decode_frames(_RefusingBuffer(stream), limits, _PARSERS, queue, -1, 256)
            context = info.value.__context__
            errors.append((str(info.value), type(context), str(context), _popped(queue)))
        assert errors[0] == errors[1]


# -- the message queue, drain, and DataRow's parser and columns -----------------------


_QUEUE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 10**6)),
        st.tuples(st.sampled_from(["popleft", "len", "nbytes", "clear"]), st.just(0)),
    ),
    max_size=300,
)


def _queue_trace(mod: ModuleType, ops: list[tuple[str, int]]) -> list[Any]:
    queue = mod.MessageQueue()
    trace: list[Any] = []
    for i, (op, size) in enumerate(ops):
        if op == "append":
            trace.append(queue.append(("msg", i), size))
        elif op == "popleft":
            trace.append(queue.popleft())
        elif op == "len":
            trace.append((len(queue), bool(queue)))
        elif op == "nbytes":
            trace.append(queue.nbytes)
        else:
            trace.append(queue.clear())
    return [*trace, _popped(queue)]


@DIFF
@given(ops=_QUEUE_OPS)
def test_message_queue(ops: list[tuple[str, int]]) -> None:
    assert _queue_trace(c(), ops) == _queue_trace(PY, ops)


def test_message_queue_grows_and_shrinks() -> None:
    for mod in (PY, c()):
        queue = mod.MessageQueue()
        for i in range(20_000):  # past every growth step and the shrink limit
            queue.append(i, 2)
        assert (len(queue), queue.nbytes) == (20_000, 40_000)
        assert [queue.popleft() for _ in range(20_000)] == list(range(20_000))
        assert queue.popleft() is None
        queue.append("again", 1)
        assert (len(queue), queue.popleft()) == (1, "again")
    with pytest.raises(TypeError):
        c().MessageQueue(1)
    with pytest.raises(TypeError):
        c().MessageQueue().append(1, "x")


class _Boom(Exception):
    pass


class _A:
    pass


class _Holder:
    """Owns the steady set drain reads, as ProtocolState does."""

    def __init__(self, steady: Any) -> None:
        self.steady = steady


class _B:
    pass


# Per step: what refill queues (then returns whether it queued), or raises.
_REFILLS = st.lists(
    st.one_of(st.lists(st.sampled_from([_A, _B]), max_size=3), st.just("raise")), max_size=6
)


def _drain_trace(
    mod: ModuleType,
    first: list[type],
    refills: list[Any],
    raising: bool,
    steady: Any,
    *,
    sized: bool = False,
) -> list[Any]:
    queue = mod.MessageQueue()
    for i, kind in enumerate(first):
        queue.append(kind(), i + 1)
    steps = iter(refills)
    trace: list[Any] = []

    def refill() -> bool:
        step: Any = next(steps, [])
        trace.append(("refill", len(queue)))
        if step == "raise":
            raise _Boom("refill")
        for i, kind in enumerate(step):
            queue.append(kind(), 10 + i)
        return bool(step)

    def callback(msg: Any, *size: int) -> None:
        trace.append(("callback", type(msg).__name__, size))
        if raising and type(msg) is _B:
            raise _Boom("callback")

    holder = _Holder(steady) if steady else None
    it = mod.drain(queue, refill, callback if steady is not None else None, holder, "steady", sized)
    for _ in range(12):
        result = outcome(next, it)
        trace.append(result[:2] if result[0] == "returned" else result[:3])
    return trace


@DIFF
@given(
    first=st.lists(st.sampled_from([_A, _B]), max_size=4),
    refills=_REFILLS,
    raising=st.booleans(),
    steady=st.sampled_from([None, set(), {_A}, frozenset({_A, _B})]),
    sized=st.booleans(),
)
def test_drain(
    first: list[type], refills: list[Any], raising: bool, steady: set[type] | None, sized: bool
) -> None:
    expected = _drain_trace(PY, first, refills, raising, steady, sized=sized)
    assert _drain_trace(c(), first, refills, raising, steady, sized=sized) == expected


def test_drain_reads_steady_at_every_message() -> None:
    for mod in (PY, c()):
        queue = mod.MessageQueue()
        for _ in range(3):
            queue.append(_A(), 1)
        holder = _Holder(frozenset())
        seen: list[str] = []

        def callback(msg: Any, seen: list[str] = seen, holder: _Holder = holder) -> None:
            seen.append(type(msg).__name__)
            holder.steady = frozenset({_A})  # the owner replaces it between two messages

        assert len(list(mod.drain(queue, lambda: False, callback, holder, "steady", False))) == 3
        assert seen == ["_A"]
    with pytest.raises(TypeError, match="MessageQueue"):
        c().drain(deque(), lambda: False, None, None, "", False)
    with pytest.raises(TypeError, match="str"):
        c().drain(c().MessageQueue(), lambda: False, None, holder, 5, False)


class _Slots:
    __slots__ = ("_columns", "_raw")
    _columns: Any
    _raw: Any


class _SlotsChild(_Slots):
    __slots__ = ()


class _NoSlots:
    pass


class _OneSlot:
    __slots__ = ("_raw",)


class _OwnNew(_Slots):
    __slots__ = ()

    def __new__(cls) -> _OwnNew:
        return super().__new__(cls)


def test_data_row_classes() -> None:
    for name in ("data_row_parser", "data_row_columns"):
        for cls in (_Slots, _SlotsChild, _NoSlots, _OneSlot, _OwnNew, 3, m.DataRow):
            got, expected = outcome(getattr(c(), name), cls), outcome(getattr(PY, name), cls)
            assert got[0] == expected[0], (name, cls)
            if got[0] == "raised":
                assert got[1:4] == expected[1:4], (name, cls)


def _row_state(row: Any) -> tuple[Any, ...]:
    return (getattr(row, "_raw", "unset"), getattr(row, "_columns", "unset"))


@DIFF
@given(data=st.data())
def test_data_row_parser_and_columns(data: st.DataObject) -> None:
    cols = data.draw(st.lists(st.one_of(st.none(), st.binary(max_size=5)), max_size=4))
    payload = data.draw(damaged(data_row_payload(cols)))
    buf, start, end = data.draw(windows(payload))
    traces = []
    for mod in (PY, c()):

        class Row:
            __slots__ = ("_columns", "_raw")
            columns = mod.data_row_columns(_Slots)

        row = mod.data_row_parser(_Slots)(buf, start, end)
        trace: list[Any] = [type(row), _row_state(row)]
        Row.columns = mod.data_row_columns(_Slots)
        descr = Row.columns
        for _ in range(2):  # a bad row raises again; a good one stays split
            trace.append(outcome(descr.__get__, row, _Slots))
            trace.append(_row_state(row))
        trace.append(outcome(descr.__set__, row, [b"new"]))
        trace.append((_row_state(row), outcome(descr.__get__, row, _Slots)))
        trace.append(outcome(descr.__delete__, row))
        traces.append(trace)
    assert traces[1] == traces[0]


def test_data_row_columns_refuses_other_objects() -> None:
    descr = c().data_row_columns(_Slots)
    assert descr.__get__(None, _Slots) is descr
    with pytest.raises(TypeError):
        descr.__get__(_NoSlots(), _NoSlots)
    with pytest.raises(TypeError):
        descr.__set__(object(), [])
    with pytest.raises(ValueError, match="window"):
        c().data_row_parser(_Slots)(b"ab", 1, 3)


def _drain_workload(cf: Any) -> None:
    queue = cf.MessageQueue()
    for i in range(100):
        queue.append(i, 1)
    it = cf.drain(queue, lambda: False, lambda msg: None, _Holder({int}), "steady", False)
    assert sum(1 for _ in it) == 100
    queue.append("x", 1)

    def boom(msg: Any) -> None:
        raise _Boom

    with pytest.raises(_Boom):
        next(cf.drain(queue, lambda: False, boom, None, "", False))
    queue.append("y", 3)
    with pytest.raises(_Boom):
        next(cf.drain(queue, lambda: False, lambda msg, size: boom(msg), None, "", True))
    queue.append(_A(), 1)
    queue.clear()
    row = cf.data_row_parser(_Slots)(b"\x00\x01\x00\x00\x00\x01a", 0, 7)
    descr = cf.data_row_columns(_Slots)
    assert descr.__get__(row, _Slots) == [b"a"]
    bad = cf.data_row_parser(_Slots)(b"\x00\x01", 0, 2)
    with pytest.raises(DecodingError):
        descr.__get__(bad, _Slots)
    descr.__set__(bad, [None])


# -- pgoutput_row_maker, pgoutput_boundary_maker -----------------------------------------

_PG1, _PG2 = PgOutputContext(1), PgOutputContext(2, in_stream=True)
_KINDS = ("insert", "update", "delete")
_UNCHANGED = object()


class _Change:
    __slots__ = PY.ChangeSlots.__slots__


class _Begin:
    __slots__ = ("final_lsn", "commit_time", "xid")


class _Commit:
    __slots__ = ("commit_lsn", "end_lsn", "commit_time", "flags")


class _LSN(int):
    __slots__ = ()


class _Time(int):
    __slots__ = ()


def _slots_of(obj: Any) -> tuple[Any, ...]:
    if obj is None:
        return (None,)
    names = [n for n in type(obj).__slots__]
    return (type(obj), *((n, type(v := getattr(obj, n)), v) for n in names))


_columns = st.one_of(
    st.just(TupleColumn.null()),
    st.just(TupleColumn.unchanged_toast()),
    st.text(max_size=6).map(lambda t: TupleColumn.text(t.replace("\0", "").encode())),
    st.binary(max_size=6).map(TupleColumn.binary),
)


@st.composite
def _change_payload(draw: st.DrawFn, width: int, rel_id: int) -> tuple[bytes, bool]:
    """An XLogData payload carrying an Insert, Update or Delete of
    ``width`` columns (sometimes of another width), and whether it is in a
    streamed transaction."""
    in_stream = draw(st.booleans())
    xid = draw(st.integers(0, 2**32 - 1)) if in_stream else None
    row = st.lists(_columns, min_size=width, max_size=width)
    if draw(st.integers(0, 6)) == 0:
        row = st.lists(_columns, max_size=width + 2)
    kind = draw(st.sampled_from(_KINDS))
    msg: Any
    if kind == "insert":
        msg = Insert(rel_id, draw(row), xid)
    elif kind == "update":
        before = draw(st.sampled_from(["", "key", "old"]))
        msg = Update(
            rel_id,
            draw(row),
            key=draw(row) if before == "key" else None,
            old=draw(row) if before == "old" else None,
            xid=xid,
        )
    else:
        before = draw(st.sampled_from(["key", "old"]))
        msg = Delete(
            rel_id,
            key=draw(row) if before == "key" else None,
            old=draw(row) if before == "old" else None,
            xid=xid,
        )
    inner = msg.encode(_PG2 if in_stream else _PG1)
    start, end = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1))
    return XLogData(LSN(start), LSN(end), Timestamp(0), inner).encode(), in_stream


@DIFF
@given(data=st.data())
def test_pgoutput_row_maker(data: st.DataObject) -> None:
    names = data.draw(st.lists(st.text(max_size=3), min_size=1, max_size=5))
    keys = data.draw(st.lists(st.booleans(), min_size=len(names), max_size=len(names)))
    relation = object()
    entry = PY.relation_entry(relation, names, keys)
    payload, in_stream = data.draw(_change_payload(len(names), 77))
    payload = data.draw(damaged(payload))
    relations = {77: entry} if data.draw(st.integers(0, 9)) else {78: entry}
    rows = (relations, data.draw(st.none() | st.integers(0, 9)), in_stream, _PG1)
    results = []
    for mod in (PY, c()):
        make = mod.pgoutput_row_maker(_Change, _LSN, _KINDS, _UNCHANGED)
        got = outcome(make, payload, rows)
        if got[0] == "returned" and got[2] is not None:
            change = got[2]
            assert change._payload is payload
            assert change._context is _PG1
            assert change.relation is relation
            got = ("returned", _slots_of(change))
        results.append(got)
    assert results[1] == results[0]


def test_pgoutput_row_maker_edges() -> None:
    entry = PY.relation_entry("rel", ["id", "v"], [True, False])
    rows = ({7: entry}, 5, False, _PG1)
    t = TupleColumn.text
    good = [
        Insert(7, [t(b"1"), TupleColumn.null()]),
        Update(7, [t(b"1"), t(b"x")], key=[t(b"2"), t(b"\xff not UTF-8, not a key")]),
        Update(7, [t(b"1"), TupleColumn.unchanged_toast()], old=[t(b"1"), t(b"y")]),
        Delete(7, key=[t(b"1"), TupleColumn.binary(b"\0")]),
        Delete(7, old=[TupleColumn.binary(b"\x00\x01"), t(b"")]),
    ]
    payloads = [XLogData(LSN(1), LSN(2), Timestamp(3), m.encode(_PG1)).encode() for m in good]
    head = payloads[0][:26]
    bad = [
        b"",
        b"w",
        head,
        payloads[0][:-1],
        payloads[0] + b"x",
        head.replace(b"I", b"X") + payloads[0][26:],
        payloads[0][:30] + b"K" + payloads[0][31:],  # an Insert's tuple is N
        payloads[3][:30] + b"N" + payloads[3][31:],  # a Delete has no N tuple
        payloads[0].replace(b"\x00\x02t", b"\x00\x03t"),  # one column too many
        payloads[0].replace(b"n", b"x"),
        payloads[0].replace(b"t\x00\x00\x00\x011", b"t\x00\x00\x00\x01\x00"),  # NUL
        payloads[0].replace(b"t\x00\x00\x00\x011", b"t\x00\x00\x00\x01\xc3"),  # UTF-8
        payloads[0].replace(b"t\x00\x00\x00\x011", b"t\xff\xff\xff\xff1"),  # length
        bytearray(payloads[0]),
    ]
    for mod in (PY, c()):
        make = mod.pgoutput_row_maker(_Change, _LSN, _KINDS, _UNCHANGED)
        for payload in bad:
            assert make(payload, rows) is None, (mod, payload)
        changes = [make(p, rows) for p in payloads]
        assert [ch.kind for ch in changes] == ["insert", "update", "update", "delete", "delete"]
        assert changes[0].new == {"id": "1", "v": None}
        assert changes[1].old == {"id": "2"}  # the key's columns only
        assert changes[1].old_is_key is True
        assert changes[2].new == {"id": "1", "v": _UNCHANGED}
        assert changes[3].old == {"id": "1"}
        assert changes[4].old == {"id": b"\x00\x01", "v": ""}
        assert all(ch.xid == 5 and type(ch.lsn) is _LSN and ch.lsn == 1 for ch in changes)
    # Outside the arguments the stream passes, the compiled one refuses.
    make = c().pgoutput_row_maker(_Change, _LSN, _KINDS, _UNCHANGED)
    for wrong in [("x", 5, False, _PG1), ({7: ("rel", ("id",), (True, False))}, 5, 0, None)]:
        with pytest.raises(TypeError):
            make(payloads[0], wrong)


@DIFF
@given(data=st.data())
def test_pgoutput_boundary_maker(data: st.DataObject) -> None:
    lsn, when = st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1)
    msg = data.draw(
        st.one_of(
            st.builds(Begin, lsn.map(LSN), when.map(Timestamp), st.integers(0, 2**32 - 1)),
            st.builds(
                Commit, lsn.map(LSN), lsn.map(LSN), when.map(Timestamp), st.integers(-128, 127)
            ),
        )
    )
    payload = XLogData(LSN(0), LSN(0), Timestamp(0), msg.encode()).encode()
    payload = data.draw(damaged(payload))
    results = []
    for mod in (PY, c()):
        make = mod.pgoutput_boundary_maker(_Begin, _Commit, _LSN, _Time)
        results.append(outcome(lambda: _slots_of(make(payload))))  # noqa: B023 - called at once
    assert results[1] == results[0]


def test_makers_refuse_classes_without_their_slots() -> None:
    for cls in (_Begin, _NoSlots, _OwnNew, 3):
        got = outcome(c().pgoutput_row_maker, cls, _LSN, _KINDS, None)
        expected = outcome(PY.pgoutput_row_maker, cls, _LSN, _KINDS, None)
        assert got[:4] == expected[:4], cls
        got = outcome(c().pgoutput_boundary_maker, _Begin, cls, _LSN, _Time)
        expected = outcome(PY.pgoutput_boundary_maker, _Begin, cls, _LSN, _Time)
        assert got[:4] == expected[:4], cls


# -- whole decoders: everything the compiled functions touch --------------------------


_SWAPPED = [
    "MessageQueue",
    "decode_frames",
    "drain",
    "data_row_parser",
    "data_row_columns",
    "split_data_row",
    "data_row_to_wire",
    "cstring_payload",
    "row_description_fields",
]


@pytest.fixture(scope="module")
def installs() -> Iterator[Callable[[ModuleType], Any]]:
    saved = {name: getattr(_hotpath, name) for name in _SWAPPED}
    saved_columns = vars(m.DataRow)["columns"]
    saved_to_wire = vars(m.DataRow)["to_wire"]

    def install(source: ModuleType) -> None:
        for name in _SWAPPED:
            setattr(_hotpath, name, getattr(source, name))
        # Made once at import; decoders made after this take the rest.
        m.DataRow.columns = source.data_row_columns(m.DataRow)
        m.DataRow.to_wire = source.data_row_to_wire(m.DataRow, m.PGMessage.to_wire)

    yield install
    for name, fn in saved.items():
        setattr(_hotpath, name, fn)
    m.DataRow.columns = saved_columns
    m.DataRow.to_wire = saved_to_wire


def _canon(msg: m.PGMessage) -> tuple[Any, ...]:
    if isinstance(msg, m.DataRow):
        # The wire form first: it does not split the row.
        return ("DataRow", msg.to_wire(), outcome(lambda: msg.columns))
    return (type(msg), repr(msg), outcome(msg.to_wire))


def _decode_all(decoder: MessageDecoder, chunks: list[bytes]) -> list[Any]:
    trace: list[Any] = []
    for chunk in chunks:
        try:
            decoder.feed(chunk)
            while (msg := decoder.read()) is not None:
                trace.append(_canon(msg))
        except ProtocolError as exc:
            trace.append(("raised", type(exc), str(exc), dict(exc.__dict__)))
            break
        trace.append(("buffered", decoder.buffered))
    return trace


@st.composite
def decoder_streams(draw: st.DrawFn) -> tuple[Callable[[], MessageDecoder], list[bytes]]:
    ctx = draw(st.sampled_from(SEQUENCE_CONTEXTS))
    msgs = draw(sequences(ctx, max_size=6))
    stream = draw(damaged(m.encode_messages(msgs)))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return ctx.new, chunks


@DIFF
@given(case=decoder_streams())
def test_decoders_agree(
    installs: Callable[[ModuleType], None],
    case: tuple[Callable[[], MessageDecoder], list[bytes]],
) -> None:
    new, chunks = case
    installs(PY)
    expected = _decode_all(new(), chunks)
    installs(c())
    assert _decode_all(new(), chunks) == expected


_ENCODED = st.sampled_from([m.DataRow, m.RowDescription, m.CommandComplete, m.Query])


@DIFF
@given(msg=_ENCODED.flatmap(lambda k: STRATEGIES[k]))
def test_encoders_agree(installs: Callable[[ModuleType], None], msg: m.PGMessage) -> None:
    installs(PY)
    expected = outcome(msg.to_wire)
    installs(c())
    assert outcome(msg.to_wire) == expected


# -- the protocol model's loops ---------------------------------------------------------

_CLIENT, _SERVER = MessageDirection.FRONTEND, MessageDirection.BACKEND


def _pool() -> dict[MessageDirection, list[m.PGMessage]]:
    """One or a few of every message, each side's apart."""
    pool: dict[MessageDirection, list[m.PGMessage]] = {_CLIENT: [], _SERVER: []}
    for cls in DECLARATIONS:
        if cls not in (m.SSLResponse, m.GSSEncResponse, m.AuthenticationMessage):
            pool[_CLIENT if issubclass(cls, m.FrontendMessage) else _SERVER].append(cls())
    T = TransactionStatus
    pool[_CLIENT] += [
        m.StartupMessage(params={"user": "u", "_pq_.opt": "1"}, protocol_version=0x30002),
        m.Describe(kind="P"),
        m.Query(query_string="copy t from stdin"),
        m.Execute(max_rows=1),
    ]
    pool[_SERVER] += [
        *m.SSLResponse,
        *m.GSSEncResponse,
        m.ReadyForQuery(status=T.IN_TRANSACTION),
        m.ReadyForQuery(status=T.ERROR_TRANSACTION),
        m.ErrorResponse(fields={"S": "ERROR", "V": "ERROR", "C": "42601", "M": "syntax"}),
        m.ErrorResponse(fields={"S": "FATAL", "V": "FATAL", "C": "57P01", "M": "bye"}),
        m.ErrorResponse(fields={"S": "FATAL", "V": "ERROR", "C": "42601", "M": "translated"}),
    ]
    return pool


_POOL = _pool()


def _snapshot(state: ProtocolState) -> tuple[Any, ...]:
    """Everything the model holds, its states by name."""

    def plain(value: Any) -> Any:
        if isinstance(value, sm._State):
            return ("state", value.name)
        if isinstance(value, deque):
            return tuple(plain(v) for v in value)
        return value

    slots = tuple(plain(getattr(state, n, "<unset>")) for n in ProtocolState.__slots__)
    return (*slots, state.phase, state.outstanding, state.is_idle)


def _model_steppers(mod: Any) -> tuple[Any, Any]:
    marks = (sm.IDLE, sm.DONE, sm.RFQ, sm._NONE)
    steppers: tuple[Any, Any] = mod.model_steppers(
        ProtocolState, sm._State, marks, sm._REQUESTS, m.Describe, sm._DESCRIBE
    )
    return steppers


@functools.cache
def _steppers() -> list[tuple[Any, Any]]:
    return [_model_steppers(PY), _model_steppers(c())]


_ANY_TIME = (m.NoticeResponse, m.ParameterStatus, m.NotificationResponse)


def _rule_events(rule: Any) -> list[tuple[MessageDirection, m.PGMessage]]:
    """A rule's whole conversation: its prefix, the legal message, the illegal one."""
    return [*rule.prefix, *([rule.legal] if rule.legal else []), rule.illegal]


def _feed_rules(steppers: tuple[Any, Any]) -> list[m.PGMessage]:
    """Every rule's conversation through ``steppers``, strict (raising) and
    lax, each message a fresh copy (a leaked reference would keep it):
    the copies fed, in order."""
    server_steps, client_steps = steppers
    fed: list[m.PGMessage] = []
    for strict in (True, False):
        for rule in RULES:
            state = ProtocolState(strict=strict)
            for sender, msg in _rule_events(rule):
                fed.append(copy.copy(msg))
                step = server_steps if sender is _SERVER else client_steps
                with contextlib.suppress(StateMachineError):
                    step(state, [fed[-1]])
    return fed


def _step_both(
    states: list[ProtocolState], sender: MessageDirection, chunk: list[m.PGMessage]
) -> None:
    """Feed ``chunk`` to the reference's model and the compiled one's; both
    must raise the same or nothing, and hold the same after."""
    results = []
    for state, (server_steps, client_steps) in zip(states, _steppers(), strict=True):
        step = server_steps if sender is _SERVER else client_steps
        results.append((outcome(step, state, iter(chunk)), _snapshot(state)))
    assert results[1] == results[0], chunk


@pytest.fixture
def quiet() -> Iterator[None]:
    """Lax models log every violation: not wanted thousands of times."""
    logger = logging.getLogger("pygwire")
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = False


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("by_chunk", [True, False])
@pytest.mark.usefixtures("quiet")
def test_model_steppers_on_the_rules(strict: bool, by_chunk: bool) -> None:
    """Every rule of the model (unit/test_model_rules.py): its prefix, the
    legal message and the illegal one, a message or a chunk at a time."""
    for rule in RULES:
        events = _rule_events(rule)
        states = [ProtocolState(strict=strict) for _ in _steppers()]
        for sender, group in itertools.groupby(events, key=lambda event: event[0]):
            msgs = [msg for _, msg in group]
            for chunk in [msgs] if by_chunk else [[msg] for msg in msgs]:
                _step_both(states, sender, chunk)


@DIFF
@given(st.data())
@pytest.mark.usefixtures("quiet")
def test_model_steppers(data: st.DataObject) -> None:
    """Sessions that mostly follow the model and now and then break it,
    strict and lax, fed a chunk at a time to both versions.  Like a real
    peer, the side with something to say speaks more often, each message
    drawn from what the model expects now; the messages a server may send
    at any time are drawn less often, so that the sessions get somewhere."""
    strict = data.draw(st.booleans())
    phase = data.draw(st.sampled_from([ConnectionPhase.STARTUP] * 3 + list(ConnectionPhase)))
    states = [ProtocolState(phase, strict=strict) for _ in _steppers()]
    for _ in range(data.draw(st.integers(1, 60))):
        waiting = bool(states[0].outstanding)
        sender = _SERVER if data.draw(st.integers(0, 3)) < (3 if waiting else 1) else _CLIENT
        chunk: list[m.PGMessage] = []
        for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3, 5]))):
            wanted = set(states[0].expected(sender))
            fits = [msg for msg in _POOL[sender] if type(msg).__name__ in wanted]
            if data.draw(st.integers(0, 3)):
                fits = [msg for msg in fits if type(msg) not in _ANY_TIME] or fits
            if not fits or data.draw(st.integers(0, 7)) == 0:
                fits = _POOL[sender]
            chunk.append(data.draw(st.sampled_from(fits)))
        _step_both(states, sender, chunk)


@pytest.mark.usefixtures("quiet")
def test_model_steppers_hold_no_references() -> None:
    """After every rule's conversation, strict and lax, each message fed and
    each state of the model has as many references with the compiled loops
    as with the reference: none taken and kept, none given back twice."""
    marks: list[object] = [sm.IDLE, sm.DONE, sm.RFQ, sm._NONE]
    nodes = {id(n): n for n in (*sm._REQUESTS.values(), *sm._DESCRIBE.values(), *marks)}
    counts = []
    for steppers in _steppers():
        gc.collect()  # models that earlier tests left in reference cycles hold states
        before = [sys.getrefcount(n) for n in nodes.values()]
        fed = _feed_rules(steppers)
        gc.collect()  # errors raised hold messages in reference cycles
        after = [sys.getrefcount(n) for n in nodes.values()]
        held = [sys.getrefcount(msg) for msg in fed]
        counts.append((held, [a - b for a, b in zip(after, before, strict=True)]))
    assert counts[1] == counts[0]


def test_model_steppers_refuse_what_is_not_a_model() -> None:
    """What the compiled loops check before they read a slot (the reference
    reads attributes of whatever it is given)."""
    server_steps, client_steps = _model_steppers(c())
    state = ProtocolState(ConnectionPhase.READY)
    for step in (server_steps, client_steps):
        with pytest.raises(TypeError, match="model"):
            step(object(), [])
        with pytest.raises(TypeError):
            step(state, 5)  # not iterable
        with pytest.raises(TypeError):
            step(state)
        with pytest.raises(TypeError, match="unexpected keyword"):
            step(state, [], extra=1)
    state._cur = "not a state"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="not a state of the model"):
        server_steps(state, [m.BindComplete()])
    with pytest.raises(TypeError, match="not a state of the model"):
        client_steps(state, [m.Sync()])
    state = ProtocolState(ConnectionPhase.READY)
    del state._queue
    client_steps(state, [m.Parse()])  # the model is idle: the queue is not read
    with pytest.raises(AttributeError, match="_queue"):
        client_steps(state, [m.Sync()])
    for classes in ((int, sm._State), (ProtocolState, _Time), (_Begin, sm._State)):
        got = same("model_steppers", *classes, (), {}, m.Describe, {})
        assert got[:2] == ("raised", TypeError)


# -- references and memory ------------------------------------------------------------


def _workload() -> None:
    """Every function, on success and on every error path, a few times."""
    cf = c()
    row = data_row_payload([b"abc", None, b"", b"x" * 2000])
    field = b"\x00\x02" + (b"name\0" + bytes(range(18))) * 2
    fd = FieldDescription
    for _ in range(50):
        cf.split_data_row(row, 0, len(row))
        for bad in (b"", b"\x00\x01", b"\x00\x01\xff\xff\xff\xfe", b"\x00\x00x"):
            with pytest.raises(DecodingError):
                cf.split_data_row(bad, 0, len(bad))
        with pytest.raises(ValueError, match="window"):
            cf.split_data_row(row, 0, len(row) + 1)
        for cols in ([b"abc", None, b"x" * 2000], [bytearray(b"abc"), None, memoryview(b"x")]):
            _encoding(cf, cols)
        _encoding(cf, [b"a", "not bytes"])
        assert _encoding(cf, [b"a", _BadLen()])[1] is tuple  # the fallback decides
        cf.cstring_payload(b"SELECT 1\0", 0, 9)
        cf.cstring_payload(b"\xc3\0", 0, 2)
        cf.row_description_fields(field, 0, len(field), fd)
        cf.row_description_fields(field, 0, len(field), tuple)
        cf.row_description_fields(field[:-1], 0, len(field) - 1, fd)
        with pytest.raises(TypeError):
            cf.row_description_fields(field, 0, len(field), int)
        bad_name = b"\x00\x01\xc3\0" + bytes(18)
        cf.row_description_fields(bad_name, 0, len(bad_name), fd)
        fb = PY.FrameBuffer()
        queue = cf.MessageQueue()
        limits = [40] * 256
        limits[0x58] = -1
        limits[0x59] = 4
        stream = b"A\0\0\0\x06abA\0\0\0\x05\xeeB\0\0\0\x04B\0\0\0\x05\xedY\0\0\0\x05xX\0\0\0\x04"
        for chunk in (stream[:3], stream[3:9], stream[9:]):
            fb.feed(chunk)
            for hold in (-1, 66):
                queue.clear()
                with contextlib.suppress(ProtocolError, ValueError):
                    cf.decode_frames(fb, limits, _PARSERS, queue, hold, 2)
        for _ in range(4):
            try:
                if cf.decode_frames(fb, limits, _PARSERS, queue, -1, 256):
                    fb.pos += 1  # a refused length word: skip it, for the test
            except (ProtocolError, ValueError):
                fb.pos += 1
        with pytest.raises(TypeError):
            cf.decode_frames(fb, limits, _PARSERS, queue, "x", 1)
        _drain_workload(cf)
        _maker_workload(cf)
    _stepper_workload(cf)  # hundreds of calls already


def _maker_workload(cf: Any) -> None:
    entry = PY.relation_entry("rel", ["id", "v"], [True, False])
    rows = ({7: entry}, 5, False, _PG1)
    t = TupleColumn.text
    make = cf.pgoutput_row_maker(_Change, _LSN, _KINDS, _UNCHANGED)
    for msg in (
        Insert(7, [t(b"1"), TupleColumn.null()]),
        Update(7, [t(b"1"), t(b"x")], key=[t(b"2"), t(b"y")]),
        Delete(7, old=[TupleColumn.binary(b"\x00"), TupleColumn.unchanged_toast()]),
        Insert(7, [t(b"1")]),  # refused: one column short
    ):
        payload = XLogData(LSN(1), LSN(2), Timestamp(3), msg.encode()).encode()
        make(payload, rows)
        make(payload[:-1], rows)
    with pytest.raises(TypeError):
        make(b"", ())
    boundary = cf.pgoutput_boundary_maker(_Begin, _Commit, _LSN, _Time)
    for edge in (Begin(LSN(1), Timestamp(2), 3), Commit(LSN(1), LSN(2), Timestamp(-3), -1)):
        payload = XLogData(LSN(1), LSN(2), Timestamp(3), edge.encode()).encode()
        boundary(payload)
        boundary(payload[:-1])


def _stepper_workload(cf: Any) -> None:
    """Every rule's conversation, strict (raising) and lax, and refusals."""
    server_steps, client_steps = steppers = _model_steppers(cf)
    logger = logging.getLogger("pygwire")
    logger.disabled = True  # pytest keeps every record logged: that would grow
    try:
        _feed_rules(steppers)
    finally:
        logger.disabled = False
    state = ProtocolState(ConnectionPhase.READY)
    with pytest.raises(TypeError):
        client_steps(object(), [])
    state._cur = "not a state"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        server_steps(state, iter([m.BindComplete()]))


def test_no_leaks() -> None:
    _workload()  # warm caches, interned strings, hypothesis-free
    gc.collect()
    tracemalloc.start()
    try:
        # Rounds under tracing first: blocks allocated before tracing and
        # replaced in them (free lists, caches settling) count as growth
        # once; a leak grows with every round after them.
        for _ in range(20):
            _workload()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            _workload()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 20 x 50 rounds of ~40 calls: a single leaked object per call would be
    # over a megabyte.
    assert grown < 64 * 1024, f"{grown} bytes more after 20 rounds"
