"""Round trips: every message survives encode -> decode unchanged.

For each message class, Hypothesis builds valid instances
(:mod:`strategies`); each is encoded with ``to_wire()`` and decoded
back (a) by the stream decoder that reads it, fed in chunks cut at
Hypothesis-chosen split points, and (b) by ``type(msg).decode(payload)``.
Whole pipelines built with ``encode_messages`` decode back in order.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import ConnectionPhase, FramingError, FrontendMessageDecoder
from pygwire import messages as m
from pygwire.codec import MessageDecoder
from strategies import (
    ALL_MESSAGE_CLASSES,
    SEQUENCE_CONTEXTS,
    STRATEGIES,
    DecodingContext,
    contexts_for,
    payload_of,
    sequences,
)

#: A direct-SSL handshake is not framed: the decoder hands over whatever it
#: holds when the first byte arrives, so it cannot be cut at split points.
STREAM_CLASSES = [cls for cls in ALL_MESSAGE_CLASSES if cls is not m.DirectSSLHandshake]

ROUNDTRIP = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def split_points(size: int) -> st.SearchStrategy[list[int]]:
    """Sorted, distinct cut positions strictly inside ``size`` bytes."""
    if size < 2:
        return st.just([])
    return st.lists(st.integers(1, size - 1), unique=True, max_size=min(size - 1, 12)).map(sorted)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_in_chunks(decoder: MessageDecoder, chunks: list[bytes]) -> list[list[m.PGMessage]]:
    """Feed each chunk and collect what became readable after it."""
    out = []
    for chunk in chunks:
        decoder.feed(chunk)
        out.append(decoder.read_all())
    return out


def test_every_message_class_has_a_strategy() -> None:
    assert set(ALL_MESSAGE_CLASSES) == set(STRATEGIES)
    # Sanity: the list really is the whole protocol, not an empty filter.
    assert len(ALL_MESSAGE_CLASSES) >= 55


@pytest.mark.parametrize("cls", STREAM_CLASSES, ids=lambda c: c.__name__)
@ROUNDTRIP
@given(data=st.data())
def test_stream_decoder_roundtrip_at_random_split_points(
    cls: type[m.PGMessage], data: st.DataObject
) -> None:
    msg = data.draw(STRATEGIES[cls], label="message")
    wire = msg.to_wire()
    for ctx in contexts_for(cls):
        points = data.draw(split_points(len(wire)), label=f"split points for {ctx}")
        decoder = ctx.new()
        per_chunk = feed_in_chunks(decoder, cut(wire, points))
        # Nothing comes out before the last byte is in, then exactly msg.
        assert all(not got for got in per_chunk[:-1])
        (decoded,) = per_chunk[-1]
        assert type(decoded) is cls
        assert decoded == msg
        assert decoder.buffered == 0
        assert decoder.read() is None


@pytest.mark.parametrize("cls", ALL_MESSAGE_CLASSES, ids=lambda c: c.__name__)
@ROUNDTRIP
@given(data=st.data())
def test_class_decode_of_payload_roundtrip(cls: type[m.PGMessage], data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[cls], label="message")
    payload = payload_of(msg)
    for form in (payload, bytearray(payload), memoryview(payload)):
        decoded = cls.decode(form)
        assert type(decoded) is cls
        assert decoded == msg
    # The wire form is stable: encoding the decoded message gives the same bytes.
    assert cls.decode(payload).to_wire() == msg.to_wire()


@pytest.mark.parametrize("cls", ALL_MESSAGE_CLASSES, ids=lambda c: c.__name__)
@ROUNDTRIP
@given(data=st.data())
def test_encode_into_appends_exactly_to_wire(cls: type[m.PGMessage], data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[cls], label="message")
    prefix = data.draw(st.binary(max_size=8), label="prefix")
    buf = bytearray(prefix)
    msg.encode_into(buf)
    assert bytes(buf) == prefix + msg.to_wire()


@ROUNDTRIP
@given(data=st.data())
def test_direct_ssl_handshake_is_handed_over_whole(data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[m.DirectSSLHandshake])
    assert isinstance(msg, m.DirectSSLHandshake)
    decoder = FrontendMessageDecoder(ConnectionPhase.STARTUP)
    decoder.feed(msg.to_wire())
    assert decoder.read_all() == [msg]
    assert decoder.buffered == 0
    # The rest of the connection belongs to the TLS layer: nothing more is
    # framed until the owner sets the phase again.
    decoder.feed(b"\x16")
    with pytest.raises(FramingError):
        decoder.read()


@pytest.mark.parametrize("ctx", SEQUENCE_CONTEXTS, ids=str)
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encode_messages_pipeline_roundtrip(ctx: DecodingContext, data: st.DataObject) -> None:
    msgs = data.draw(sequences(ctx), label="messages")
    wire = m.encode_messages(msgs)
    assert wire == b"".join(msg.to_wire() for msg in msgs)
    points = data.draw(split_points(len(wire)), label="split points")
    decoder = ctx.new()
    decoded = [msg for got in feed_in_chunks(decoder, cut(wire, points)) for msg in got]
    assert decoded == msgs
    assert [type(x) for x in decoded] == [type(x) for x in msgs]
    assert decoder.buffered == 0


@ROUNDTRIP
@given(data=st.data())
def test_pipeline_one_byte_at_a_time(data: st.DataObject) -> None:
    """The h11 discipline: a whole pipeline fed byte by byte, then with trailing data."""
    ctx = data.draw(st.sampled_from(SEQUENCE_CONTEXTS[1:]), label="context")
    msgs = data.draw(sequences(ctx, max_size=4), label="messages")
    wire = m.encode_messages(msgs)
    decoder = ctx.new()
    decoded = [
        msg for got in feed_in_chunks(decoder, cut(wire, list(range(1, len(wire))))) for msg in got
    ]
    assert decoded == msgs
    # A partial message behind a complete one is held, not lost or misread.
    trailing = m.Sync().to_wire()[:3] if ctx.decoder is FrontendMessageDecoder else b"Z\x00"
    decoder.feed(wire + trailing)
    assert decoder.read_all() == msgs
    assert decoder.buffered == len(trailing)
