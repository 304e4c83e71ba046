"""Golden bytes for every replication message, checked both ways.

The table of cases lives in ``replication_cases`` (shared with the fuzz and
malformed-input tests); its bytes are written by hand from the protocol
documentation, never produced by pygwire.  Each row is checked fed whole:

* encode: ``msg.encode(context) == payload``;
* decode: through the class, through its sub-protocol's registry, and
  inside a CopyData frame split off by pygwire's BackendMessageDecoder (or
  FrontendMessageDecoder for the client's messages) in COPY phase.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pygwire import BackendMessageDecoder, ConnectionPhase, FrontendMessageDecoder
from pygwire.constants import MessageDirection
from pygwire.messages import CopyData
from pygwire.replication import (
    BASE_BACKUP_STREAM,
    LSN,
    PGOUTPUT,
    STREAMING,
    ArchiveData,
    PgOutputContext,
    ProgressReport,
    ReplicationValueError,
    RequestPrimaryStatus,
    RollbackPrepared,
    StandbyStatusUpdate,
    StreamAbort,
    StreamPrepare,
    Timestamp,
)
from replication_cases import CASES, LSN_C, T1, V4_PARALLEL, Case, i32, i64, protocol_of, u32, u64


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_encode(case: Case) -> None:
    assert case.msg.encode(case.context) == case.payload


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decode_by_class(case: Case) -> None:
    decoded = type(case.msg).decode(case.payload, case.context)
    assert decoded == case.msg
    assert type(decoded) is type(case.msg)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decode_by_registry(case: Case) -> None:
    decoded = protocol_of(case).decode(case.payload, case.context)
    assert decoded == case.msg
    assert type(decoded) is type(case.msg)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decode_inside_copy_data_frame(case: Case) -> None:
    """The payload as the connection sees it: a CopyData frame ('d', Int32
    length including itself), split off by pygwire's stream decoder."""
    frame = b"d" + i32(len(case.payload) + 4) + case.payload
    client_sends = type(case.msg).direction is MessageDirection.FRONTEND
    decoder = (
        FrontendMessageDecoder(ConnectionPhase.COPY_BOTH)
        if client_sends
        else BackendMessageDecoder(ConnectionPhase.COPY_BOTH)
    )
    decoder.feed(frame)
    (copy,) = list(decoder)
    assert isinstance(copy, CopyData)
    assert protocol_of(case).decode(copy.data, case.context) == case.msg
    assert case.msg.copy_data(case.context).to_wire() == frame


def test_every_registered_message_has_a_golden_row() -> None:
    registered = {*STREAMING, *PGOUTPUT, *BASE_BACKUP_STREAM}
    assert {type(c.msg) for c in CASES.values()} == registered
    assert len(registered) == 6 + 19 + 4


def test_tags_are_per_sub_protocol() -> None:
    """The same byte means different messages in different sub-protocols."""
    assert STREAMING.message_class(b"p") is RequestPrimaryStatus
    assert PGOUTPUT.message_class(b"p") is StreamPrepare
    assert BASE_BACKUP_STREAM.message_class(b"p") is ProgressReport
    assert PGOUTPUT.message_class(b"r") is RollbackPrepared
    assert STREAMING.message_class(b"r") is StandbyStatusUpdate
    assert BASE_BACKUP_STREAM.message_class(b"d") is ArchiveData


def test_stream_abort_layout_follows_the_context() -> None:
    """The same abort, with and without streaming = parallel."""
    short = b"A" + u32(906) + u32(906)
    long = short + u64(LSN_C) + i64(T1)
    assert PGOUTPUT.decode(short, PgOutputContext(4)) == StreamAbort(906, 906)
    assert PGOUTPUT.decode(long, V4_PARALLEL) == StreamAbort(906, 906, LSN(LSN_C), Timestamp(T1))


# -- values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0/0", 0),
        ("16/B374D848", 0x16_B374D848),
        ("0/16F4C50", 0x16F4C50),
        ("FFFFFFFF/FFFFFFFF", 2**64 - 1),
        ("1/0", 2**32),
    ],
)
def test_lsn_text(text: str, value: int) -> None:
    assert LSN(text) == value
    assert str(LSN(value)) == text
    assert f"{LSN(value)}" == text
    assert repr(LSN(value)) == f"LSN('{text}')"


def test_lsn_accepts_lower_case_and_leading_zeros() -> None:
    assert LSN("16/b374d848") == LSN("00000016/B374D848") == 0x16_B374D848


@pytest.mark.parametrize(
    "bad", ["", "16B374D848", "16/", "/1", "123456789/0", "0/123456789", "g/0", " 0/0", "0/0 "]
)
def test_lsn_text_refused(bad: str) -> None:
    with pytest.raises(ReplicationValueError):
        LSN(bad)


def test_lsn_orders_adds_and_subtracts() -> None:
    a, b = LSN("16/B374D848"), LSN("16/B374D9A0")
    assert a < b
    assert max(a, b) is b
    assert sorted([b, a]) == [a, b]
    moved = a + 0x158
    assert isinstance(moved, LSN)
    assert moved == b
    assert isinstance(0x158 + a, LSN)
    assert b - a == 0x158
    assert a - b == -0x158
    with pytest.raises(ReplicationValueError):
        LSN("FFFFFFFF/FFFFFFFF") + 1
    with pytest.raises(ReplicationValueError):
        LSN(-1)


def test_timestamp_conversions() -> None:
    assert Timestamp(0).to_datetime() == datetime(2000, 1, 1, tzinfo=UTC)
    # 2000-01-02 is 86,400 seconds after the epoch.
    assert Timestamp.from_datetime(datetime(2000, 1, 2, tzinfo=UTC)) == 86_400_000_000
    assert Timestamp(-1).to_datetime() == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    when = datetime(2024, 2, 29, 12, 34, 56, 789012, tzinfo=UTC)
    assert Timestamp.from_datetime(when) == T1
    assert Timestamp(T1).to_datetime() == when
    # Other zones are converted, not misread.
    cet = datetime(2024, 2, 29, 13, 34, 56, 789012, tzinfo=timezone(timedelta(hours=1)))
    assert Timestamp.from_datetime(cet) == T1
    with pytest.raises(ReplicationValueError):
        Timestamp.from_datetime(datetime(2024, 1, 1))  # naive
    for infinite in (Timestamp.INFINITY, Timestamp.NEG_INFINITY):
        assert Timestamp(infinite).is_infinite
        with pytest.raises(ReplicationValueError):
            Timestamp(infinite).to_datetime()
    assert repr(Timestamp(Timestamp.INFINITY)) == "Timestamp(infinity)"
    with pytest.raises(ReplicationValueError):
        Timestamp(2**63)
