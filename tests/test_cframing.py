"""The compiled framing functions against the Python reference, side by side.

``pygwire._cframing`` (``src/pygwire/_cframing.c``) must behave exactly like
the functions of ``pygwire/_framing.py`` it replaces: the same results, the
same exception types, messages and fields (offsets included), the same
updates to the FrameBuffer.  Every test runs both on the same input (valid,
damaged, random) and compares everything observable.

The reference is ``_framing.py`` loaded a second time with
``PYGWIRE_PURE_PYTHON=1``, so it is the Python code whichever path the
installed package uses.  Without the extension these tests skip, except in
CI (``CI=true``), where they fail: CI must test the compiled path.
"""

from __future__ import annotations

import array
import contextlib
import copy
import gc
import importlib
import importlib.util
import mmap
import os
import signal
import struct
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType, ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygwire import (
    DecodingError,
    FramingError,
    ProtocolError,
    _framing,
)
from pygwire import messages as m
from pygwire.codec import MessageDecoder
from pygwire.messages.simple_query import FieldDescription
from strategies import SEQUENCE_CONTEXTS, STRATEGIES, payload_of, sequences

IN_CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("PYGWIRE_FUZZ_EXAMPLES", "300"))
DIFF = settings(max_examples=EXAMPLES, deadline=None)


def _load_compiled() -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module("pygwire._cframing"), ""
    except ImportError as exc:
        return None, str(exc)


def _load_reference() -> ModuleType:
    """``_framing.py`` executed again with PYGWIRE_PURE_PYTHON=1."""
    spec = importlib.util.spec_from_file_location("pygwire._framing_reference", _framing.__file__)
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
    pytest.skip(f"pygwire._cframing is not built ({_C_MISSING})", allow_module_level=True)


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
    assert _framing.implementation() == ("c" if wanted else "python")
    assert _framing.implementation() == _framing.IMPLEMENTATION
    if wanted:
        assert _framing.decode_frames is c().decode_frames
        assert _framing.split_data_row is c().split_data_row
    else:
        assert _framing.decode_frames.__module__ == "pygwire._framing"


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


# -- encode_data_row ---------------------------------------------------------------------


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


@DIFF
@given(cols=columns, odd=st.lists(st.integers(0, len(_ODD_VALUES) - 1), max_size=3), data=st.data())
def test_encode_data_row(cols: list[Any], odd: list[int], data: st.DataObject) -> None:
    for i in odd:
        cols.insert(data.draw(st.integers(0, len(cols))), _ODD_VALUES[i])
    container = data.draw(st.sampled_from([list, tuple, deque]))
    same("encode_data_row", container(cols))


def test_encode_data_row_edges() -> None:
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
        same("encode_data_row", cols)
    for not_columns in [5, None, iter([b"a"])]:
        result = same("encode_data_row", not_columns)
        assert result[:2] == ("raised", TypeError)
    assert same("encode_data_row", [b"a", _BadLen()])[1] is ValueError


def test_encode_data_row_over_the_size_limit_copies_nothing() -> None:
    # A 1 GiB column the kernel never backs with memory: the compiled
    # version sees the size before copying anything.
    with mmap.mmap(-1, 1 << 30) as mem:
        view = memoryview(mem)
        try:
            assert c().encode_data_row([view]) is None
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
def frame_streams(draw: st.DrawFn) -> tuple[list[int], list[Any], int, list[bytes]]:
    """Limits, parsers, a hold type, and a chunked stream of frames, some bad."""
    known = draw(st.lists(st.integers(0, 255), min_size=1, max_size=6, unique=True))
    limits = [-1] * 256
    for ident in known:
        limits[ident] = draw(st.sampled_from([4, 5, 8, 40, 0x3FFFFFFF, 2**40]))
    parsers: list[Any] = list(_PARSERS)
    hold = draw(st.sampled_from([-1, 256, *known]))
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
    return limits, parsers, hold, chunks


class Hang(BaseException):
    """Raised by :func:`watchdog`; BaseException so that no ``except`` takes it."""


@contextlib.contextmanager
def watchdog(seconds: float = 10) -> Iterator[None]:
    """Interrupt a decode that goes round in circles (it calls fb._ensure,
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
    return (fb.buf, fb.pos, [bytes(p) for p in fb._pending], fb._pending_len)


def _run_frames(
    decode: Callable[..., None],
    limits: list[int],
    parsers: list[Any],
    hold: int,
    chunks: list[bytes],
    *,
    prefill: bool,
    drain: bool = True,
) -> list[tuple[Any, ...]]:
    """Feed the chunks, decoding after each; a trace of everything seen.

    With ``drain`` the output is emptied after every call, as the decoders
    do before decoding again (so a held frame is decoded next time).
    """
    fb = PY.FrameBuffer()
    out: deque[Any] = deque(["earlier"] if prefill else [])
    sizes: deque[int] = deque([0] if prefill else [])
    trace = []
    with watchdog():
        for chunk in chunks:
            fb.feed(chunk)
            for _ in range(3):  # again after an error: a DecodingError consumed its frame
                result = outcome(decode, fb, limits, parsers, out, sizes, hold)
                trace.append((result, _fb_state(fb), list(out), list(sizes)))
                if drain:
                    out.clear()
                    sizes.clear()
                if result[0] == "returned":
                    break
    return trace


@DIFF
@given(case=frame_streams(), prefill=st.booleans(), drain=st.booleans())
def test_decode_frames(
    case: tuple[list[int], list[Any], int, list[bytes]], prefill: bool, drain: bool
) -> None:
    limits, parsers, hold, chunks = case
    expected = _run_frames(
        PY.decode_frames, limits, parsers, hold, chunks, prefill=prefill, drain=drain
    )
    got = _run_frames(
        c().decode_frames, limits, parsers, hold, chunks, prefill=prefill, drain=drain
    )
    assert got == expected


def test_decode_frames_chunk_by_chunk() -> None:
    frames = b"".join(bytes([65 + i]) + struct.pack("!I", 4 + i) + bytes(i) for i in range(20))
    limits = [100] * 256
    for size in (1, 2, 3, 5, 7, 64):
        chunks = [frames[i : i + size] for i in range(0, len(frames), size)]
        expected = _run_frames(PY.decode_frames, limits, _PARSERS, -1, chunks, prefill=False)
        got = _run_frames(c().decode_frames, limits, _PARSERS, -1, chunks, prefill=False)
        assert got == expected
        assert sum(len(step[2]) for step in expected) == 20


def test_decode_frames_odd_arguments() -> None:
    def one(decode: Callable[..., None], overrides: dict[str, Any]) -> tuple[Any, ...]:
        fb = PY.FrameBuffer()
        fb.feed(b"A\0\0\0\x05xB\0\0\0\x04")
        args: dict[str, Any] = {"fb": fb, "limits": [9] * 256, "parsers": _PARSERS}
        args.update(out=deque(), sizes=deque())
        args.update(copy.deepcopy(overrides))
        result = outcome(lambda: decode(**args))
        return (result, _fb_state(fb), repr(args["out"]), repr(args["sizes"]))

    cases: list[dict[str, Any]] = [
        {},
        {"hold": 66},
        {"hold": 65},
        {"hold": True},
        {"out": deque([1]), "hold": 65},
        {"out": deque([1]), "hold": 66},
        {"limits": [9] * 66},  # IndexError at B: not a ProtocolError, pos stays
        {"parsers": [None] * 256},
        {"limits": (9,) * 256, "parsers": tuple(_PARSERS)},
        {"limits": [-(2**70)] * 256},
        {"limits": [2**70] * 256},
        {"limits": [3] * 256},
        {"out": []},  # a list has append too
        {"sizes": None},
    ]
    for overrides in cases:
        assert one(c().decode_frames, overrides) == one(PY.decode_frames, overrides), overrides


class _RefusingBuffer:
    """A frame buffer whose ``pos`` cannot be set: the error from that
    assignment propagates, with the decoding error as its context."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self._pos = 0
        self._pending: list[bytes] = []

    @property
    def pos(self) -> int:
        return self._pos

    @pos.setter
    def pos(self, value: int) -> None:
        raise RuntimeError(f"pos {value} refused")

    def _ensure(self, n: int) -> bool:
        return False


def test_decode_frames_when_pos_cannot_be_set() -> None:
    limits = [40] * 256
    limits[0x58] = -1
    for stream in (b"A\0\0\0\x05x", b"A\0\0\0\x05xX\0\0\0\x04", b"A\0\0\0\x05\xee"):
        errors = []
        for decode in (PY.decode_frames, c().decode_frames):
            out: deque[Any] = deque()
            with pytest.raises(RuntimeError) as info:
                decode(_RefusingBuffer(stream), limits, _PARSERS, out, deque())
            context = info.value.__context__
            errors.append((str(info.value), type(context), str(context), list(out)))
        assert errors[0] == errors[1]


# -- whole decoders: everything the compiled functions touch --------------------------


_SWAPPED = [
    "decode_frames",
    "split_data_row",
    "encode_data_row",
    "cstring_payload",
    "row_description_fields",
]


@pytest.fixture(scope="module")
def installs() -> Iterator[Callable[[ModuleType], Any]]:
    saved = {name: getattr(_framing, name) for name in _SWAPPED}

    def install(source: ModuleType) -> None:
        for name in _SWAPPED:
            setattr(_framing, name, getattr(source, name))

    yield install
    for name, fn in saved.items():
        setattr(_framing, name, fn)


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
        cf.encode_data_row([b"abc", None, b"x" * 2000])
        cf.encode_data_row([bytearray(b"abc"), None, memoryview(b"x")])
        cf.encode_data_row([b"a", "not bytes"])
        with pytest.raises(ValueError, match="no length"):
            cf.encode_data_row([b"a", _BadLen()])
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
        out: deque[Any] = deque()
        sizes: deque[int] = deque()
        limits = [40] * 256
        limits[0x58] = -1
        limits[0x59] = 4
        stream = b"A\0\0\0\x06abA\0\0\0\x05\xeeB\0\0\0\x04B\0\0\0\x05\xedY\0\0\0\x05xX\0\0\0\x04"
        for chunk in (stream[:3], stream[3:9], stream[9:]):
            fb.feed(chunk)
            for hold in (-1, 66):
                out.clear()
                with contextlib.suppress(ProtocolError, ValueError):
                    cf.decode_frames(fb, limits, _PARSERS, out, sizes, hold)
        for _ in range(4):
            try:
                cf.decode_frames(fb, limits, _PARSERS, out, sizes)
            except (ProtocolError, ValueError):
                fb.pos += 1
        with pytest.raises(TypeError):
            cf.decode_frames(fb, limits, _PARSERS, out, sizes, "x")


def test_no_leaks() -> None:
    _workload()  # warm caches, interned strings, hypothesis-free
    gc.collect()
    tracemalloc.start()
    try:
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
