"""Fuzzing the decoders: whatever bytes arrive, only ProtocolErrors leave.

Inputs are random bytes, well-framed messages with random payloads, and
valid pipelines from :mod:`strategies` damaged by flipping bytes,
overwriting length words, truncating, deleting and splicing.  They are fed
in random chunks to both decoders, starting in every ConnectionPhase and
with the phase switched between chunks as a Connection would.  Checked on
every step:

* the only exceptions are :class:`pygwire.ProtocolError` subclasses (any
  other, IndexError, struct.error, UnicodeDecodeError, a BytesWarning under
  ``-bb``..., fails the test with its traceback);
* decoding never hangs: every message read consumes bytes, reading stops
  within a bounded number of calls, and a watchdog interrupts a stuck call;
* ``decoder.buffered`` never exceeds the bytes fed;
* a decoder that raised keeps raising the same error.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import struct
import tracemalloc
from collections.abc import Iterator
from types import FrameType

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import (
    BackendMessageDecoder,
    ConnectionPhase,
    DecodingError,
    FrontendMessageDecoder,
    ProtocolError,
    StartupRequestCode,
)
from pygwire import messages as m
from pygwire.codec import MessageDecoder
from strategies import (
    ALL_MESSAGE_CLASSES,
    SEQUENCE_CONTEXTS,
    DecodingContext,
    any_message,
    payload_of,
    sequences,
)

#: Examples per test; raise it for a longer campaign, e.g.
#: ``PYGWIRE_FUZZ_EXAMPLES=50000 pytest tests/test_fuzz_decoders.py``.
EXAMPLES = examples(int(os.environ.get("PYGWIRE_FUZZ_EXAMPLES", "300")))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

DECODERS: list[type[MessageDecoder]] = [BackendMessageDecoder, FrontendMessageDecoder]
PHASES = list(ConnectionPhase)

#: Seconds one example may take before it counts as a hang.
WATCHDOG_SECONDS = 10


class Hang(BaseException):
    """Raised by the watchdog; BaseException so no ``except`` swallows it."""


@contextlib.contextmanager
def watchdog(seconds: float = WATCHDOG_SECONDS) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"decoding took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- input strategies ---------------------------------------------------------------

_INTERESTING_INT32 = [
    0, 1, 3, 4, 5, 7, 8, 9, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 10_000, 10_001,
    30_000, 65_535 + 8, 0x3FFFFFFF, 0x40000000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
    0xFFFFFFFF, StartupRequestCode.V3_0, StartupRequestCode.V3_2, 0x0003270F,
    StartupRequestCode.SSL_REQUEST, StartupRequestCode.GSSENC_REQUEST,
    StartupRequestCode.CANCEL_REQUEST, 0x00020000,
]  # fmt: skip

_FOREIGN_IDENTIFIERS = [b"@", b"\x00", b"\xff"]


def _identifiers(decoder_cls: type[MessageDecoder]) -> list[bytes]:
    """The identifier bytes of the messages ``decoder_cls`` reads."""
    side = m.BackendMessage if decoder_cls is BackendMessageDecoder else m.FrontendMessage
    return sorted(
        {
            cls.identifier
            for cls in ALL_MESSAGE_CLASSES
            if cls.identifier and issubclass(cls, (side, m.CommonMessage))
        }
    )


def chunked(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into chunks at random positions (possibly one chunk)."""
    if len(data) < 2:
        return st.just([data])
    cuts = st.lists(st.integers(1, len(data) - 1), unique=True, max_size=16).map(sorted)
    return cuts.map(lambda c: [data[a:b] for a, b in zip([0, *c], [*c, len(data)], strict=True)])


@st.composite
def framed_garbage(draw: st.DrawFn, decoder_cls: type[MessageDecoder], startup: bool) -> bytes:
    """Correctly framed messages (or startup packets) with random payloads.

    Random bytes almost never get past the length check; these do, and so
    reach every payload parser.  Identifiers are mostly those of the
    decoder's direction; now and then a foreign one or a packet of the
    other framing is mixed in.
    """
    idents = _identifiers(decoder_cls)
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        payload = draw(st.binary(max_size=64))
        if startup != (draw(st.integers(0, 9)) == 0):
            code = draw(st.sampled_from(_INTERESTING_INT32))
            if code == StartupRequestCode.CANCEL_REQUEST and draw(st.booleans()):
                payload = draw(st.binary(min_size=8, max_size=8)) + payload
            parts.append(struct.pack("!II", len(payload) + 8, code) + payload)
            continue
        foreign = draw(st.integers(0, 9)) == 0
        ident = draw(st.sampled_from(_FOREIGN_IDENTIFIERS if foreign else idents))
        if ident == b"R" and draw(st.booleans()):
            # Steer towards real authentication codes, and the ones around them.
            payload = struct.pack("!i", draw(st.integers(-1, 13))) + payload
        parts.append(ident + struct.pack("!I", len(payload) + 4) + payload)
    return b"".join(parts)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to four random mutations."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["flip", "byte", "int32", "truncate", "delete", "insert", "splice"])
        )
        size = len(buf)
        at = draw(st.integers(0, size))
        if op == "flip" and size:
            buf[min(at, size - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and size:
            buf[min(at, size - 1)] = draw(st.integers(0, 255))
        elif op == "int32":
            # Overwrite (or append) a length/count/code word with a nasty value.
            buf[at : at + 4] = struct.pack("!I", draw(st.sampled_from(_INTERESTING_INT32)))
        elif op == "truncate":
            del buf[at:]
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "splice":
            buf[at:at] = draw(any_message()).to_wire()
    return bytes(buf)


@st.composite
def mutated_pipeline(draw: st.DrawFn) -> tuple[DecodingContext, bytes]:
    """A valid pipeline, damaged, and the context it was valid in."""
    ctx = draw(st.sampled_from(SEQUENCE_CONTEXTS))
    msgs = draw(sequences(ctx, max_size=5))
    return ctx, draw(mutated(m.encode_messages(msgs)))


@st.composite
def decoder_setups(draw: st.DrawFn) -> tuple[type[MessageDecoder], ConnectionPhase]:
    return draw(st.sampled_from(DECODERS)), draw(st.sampled_from(PHASES))


@st.composite
def framed_inputs(draw: st.DrawFn) -> tuple[MessageDecoder, list[bytes]]:
    decoder_cls, phase = draw(decoder_setups())
    startup = decoder_cls is FrontendMessageDecoder and phase is ConnectionPhase.STARTUP
    data = draw(framed_garbage(decoder_cls, startup))
    return decoder_cls(phase), draw(chunked(data))


@st.composite
def mutated_inputs(draw: st.DrawFn) -> tuple[MessageDecoder, list[bytes]]:
    ctx, data = draw(mutated_pipeline())
    if draw(st.integers(0, 4)) == 0:
        # Now and then the damaged stream goes to a decoder not expecting it.
        decoder_cls, phase = draw(decoder_setups())
        decoder = decoder_cls(phase)
    else:
        decoder = ctx.new()
    return decoder, draw(chunked(data))


# -- the driver ---------------------------------------------------------------------


def drive(
    decoder: MessageDecoder,
    chunks: list[bytes],
    phase_changes: dict[int, ConnectionPhase] | None = None,
) -> list[m.PGMessage]:
    """Feed ``chunks`` and read after each; check the invariants throughout.

    Returns the messages decoded before the first error (if any).
    """
    phase_changes = phase_changes or {}
    out: list[m.PGMessage] = []
    fed = 0
    with watchdog():
        for i, chunk in enumerate(chunks):
            if i in phase_changes:
                decoder.phase = phase_changes[i]
            decoder.feed(chunk)
            fed += len(chunk)
            assert 0 <= decoder.buffered <= fed
            # Each message consumes at least one byte, so more reads than
            # bytes fed can only mean the decoder is going round in circles.
            for _ in range(fed + 1):
                before = decoder.buffered
                try:
                    msg = decoder.read()
                except ProtocolError as exc:
                    event(f"{type(exc).__name__} after {len(out)} messages")
                    assert_stays_failed(decoder, exc)
                    return out
                if msg is None:
                    break
                assert isinstance(msg, m.PGMessage)
                assert decoder.buffered < before, f"{msg!r} consumed no bytes"
                out.append(msg)
            else:
                pytest.fail("the decoder kept yielding messages")
            assert 0 <= decoder.buffered <= fed
    event(f"no error, {len(out)} messages")
    return out


def assert_stays_failed(decoder: MessageDecoder, exc: ProtocolError) -> None:
    for call in (decoder.read, decoder.read_all, lambda: decoder.feed(b"\x00")):
        with pytest.raises(ProtocolError) as again:
            call()
        assert again.value is exc


# -- the tests ----------------------------------------------------------------------


@FUZZ
@given(
    decoder_cls=st.sampled_from(DECODERS),
    phase=st.sampled_from(PHASES),
    data=st.binary(max_size=512).flatmap(chunked),
)
def test_random_bytes(
    decoder_cls: type[MessageDecoder], phase: ConnectionPhase, data: list[bytes]
) -> None:
    drive(decoder_cls(phase), data)


@FUZZ
@given(case=framed_inputs())
def test_well_framed_random_payloads(case: tuple[MessageDecoder, list[bytes]]) -> None:
    drive(*case)


@FUZZ
@given(case=mutated_inputs())
def test_mutated_valid_pipelines(case: tuple[MessageDecoder, list[bytes]]) -> None:
    drive(*case)


@FUZZ
@given(
    case=framed_inputs() | mutated_inputs(),
    switches=st.dictionaries(st.integers(1, 16), st.sampled_from(PHASES), max_size=4),
)
def test_phase_switched_between_chunks(
    case: tuple[MessageDecoder, list[bytes]], switches: dict[int, ConnectionPhase]
) -> None:
    decoder, chunks = case
    drive(decoder, chunks, switches)


@FUZZ
@given(case=framed_inputs() | mutated_inputs())
def test_clear_recovers_after_any_failure(case: tuple[MessageDecoder, list[bytes]]) -> None:
    decoder, chunks = case
    drive(decoder, chunks)
    decoder.clear()
    assert decoder.buffered == 0
    decoder.phase = ConnectionPhase.READY
    decoder.feed(m.CopyDone().to_wire())
    assert decoder.read_all() == [m.CopyDone()]


@st.composite
def payloads_for_class(draw: st.DrawFn) -> tuple[type[m.PGMessage], bytes]:
    cls = draw(st.sampled_from(ALL_MESSAGE_CLASSES))
    if draw(st.booleans()):
        return cls, draw(st.binary(max_size=128))
    # A valid payload of some class, damaged, given to ``cls``.
    payload = bytearray(payload_of(draw(any_message())))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(payload)))
        op = draw(st.sampled_from(["byte", "int32", "truncate", "insert"]))
        if op == "byte" and payload:
            payload[min(at, len(payload) - 1)] = draw(st.integers(0, 255))
        elif op == "int32":
            payload[at : at + 4] = struct.pack("!I", draw(st.sampled_from(_INTERESTING_INT32)))
        elif op == "truncate":
            del payload[at:]
        elif op == "insert":
            payload[at:at] = draw(st.binary(min_size=1, max_size=6))
    return cls, bytes(payload)


@settings(FUZZ, max_examples=examples(3) * EXAMPLES)
@given(case=payloads_for_class())
def test_class_decode_raises_only_decoding_error(case: tuple[type[m.PGMessage], bytes]) -> None:
    cls, payload = case
    error: DecodingError | None = None
    with watchdog():
        try:
            msg = cls.decode(payload)
        except DecodingError as exc:
            error = exc
    if error is None:
        assert type(msg) is cls
    else:
        assert error.message
        assert 0 <= error.offset <= len(payload)


# -- memory ---------------------------------------------------------------------------


@st.composite
def large_pipelines(draw: st.DrawFn) -> tuple[MessageDecoder, bytes]:
    """A valid pipeline made long, sometimes damaged, for the memory check."""
    ctx = draw(st.sampled_from(SEQUENCE_CONTEXTS))
    msgs = draw(sequences(ctx, max_size=5))
    data = m.encode_messages(msgs) * draw(st.integers(1, 40))
    if draw(st.booleans()):
        data = draw(mutated(data))
    return ctx.new(), data


@settings(FUZZ, max_examples=max(5, EXAMPLES // 10))
@given(case=large_pipelines(), one_byte=st.booleans(), data=st.data())
def test_memory_stays_near_what_was_fed(
    case: tuple[MessageDecoder, bytes], one_byte: bool, data: st.DataObject
) -> None:
    """Fed a byte at a time or in random chunks and read after each, a
    decoder holds about what it was fed: pending bytes in one buffer, not
    one object per chunk, and a bounded batch of messages decoded ahead."""
    decoder, stream = case
    chunks = (
        [stream[i : i + 1] for i in range(len(stream))] if one_byte else data.draw(chunked(stream))
    )
    gc.collect()
    tracemalloc.start()
    try:
        for chunk in chunks:
            try:
                decoder.feed(chunk)
                decoder.read()  # one message per chunk: the rest stays buffered
            except ProtocolError:
                break  # a failed decoder only repeats its error
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Bytes held once or twice (a message being joined), plus a batch of
    # decoded messages, whose objects are larger than their bytes.
    assert peak <= 3 * len(stream) + 400_000, (peak, len(stream))
