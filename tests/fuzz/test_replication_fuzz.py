"""Fuzzing the replication codecs: only pygwire's errors may escape.

Decoders get random payloads (mostly behind a real tag of their
sub-protocol, so they reach every field parser), golden payloads damaged by
flips, overwrites, cuts and insertions, and random contexts.  Checked on
every input: the only exception is :class:`~pygwire.exceptions.DecodingError`
(anything else, IndexError, struct.error, UnicodeDecodeError, a BytesWarning
under ``-bb``, fails the test); and whatever does decode encodes back to
exactly the bytes it came from, so decoding loses nothing and accepts no
second spelling of a message.

Random valid messages, built field by field, survive encode and decode
unchanged; encoders fed junk in any field raise only EncodingError and
leave the buffer as it was.  The logical stream fed a random mix of valid
and damaged XLogData raises only DecodingError, and its fast path (Begin,
Commit and row changes read straight into their objects, compiled or
Python) agrees with the strict decoder on every event, error and state.
The command builders,
given arbitrary text, produce commands whose tokens read back (by the
documented quoting rules, implemented here independently) to exactly the
arguments given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pygwire import DecodingError, EncodingError
from pygwire.messages._subprotocol import SubMessage, SubProtocol
from pygwire.replication import (
    BASE_BACKUP_STREAM,
    LSN,
    PGOUTPUT,
    STREAMING,
    Begin,
    ColumnKind,
    Commit,
    Delete,
    Insert,
    LogicalStream,
    PgOutputContext,
    PgOutputMessage,
    PhysicalStream,
    PrimaryKeepalive,
    Relation,
    RelationColumn,
    ReplicaIdentity,
    StreamAbort,
    StreamStart,
    StreamStop,
    Timestamp,
    Truncate,
    TruncateOption,
    TupleColumn,
    Update,
    XLogData,
    base_backup,
    create_logical_replication_slot,
    create_physical_replication_slot,
    drop_replication_slot,
    pgoutput_options,
    quote_identifier,
    quote_literal,
    read_replication_slot,
    start_logical_replication,
    start_physical_replication,
    timeline_history,
)
from replication_cases import CASES, Case

T = TypeVar("T")

EXAMPLES = int(os.environ.get("PYGWIRE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

PROTOCOLS: list[SubProtocol[Any]] = [STREAMING, PGOUTPUT, BASE_BACKUP_STREAM]

CONTEXTS = [
    PgOutputContext(v, s, p)
    for v in (1, 2, 3, 4)
    for s in (False, True)
    for p in (False, True)
    if not (s and v < 2) and not (p and v < 4)
]


def context_for(protocol: SubProtocol[Any], draw: st.DrawFn) -> Any:
    return draw(st.sampled_from(CONTEXTS)) if protocol is PGOUTPUT else None


def check_decode(protocol: SubProtocol[Any], context: Any, data: bytes) -> None:
    """Decode ``data``: a DecodingError, or a message that encodes back to it."""
    outcome = decode_or_error(lambda: protocol.decode(data, context))
    if isinstance(outcome, DecodingError):
        assert 0 <= outcome.offset <= len(data)
    else:
        assert outcome.encode(context) == data


def decode_or_error(decode: Callable[[], T]) -> T | DecodingError:
    try:
        return decode()
    except DecodingError as exc:
        return exc


# -- random and damaged payloads ------------------------------------------------------


@st.composite
def tagged_garbage(draw: st.DrawFn) -> tuple[SubProtocol[Any], Any, bytes]:
    protocol = draw(st.sampled_from(PROTOCOLS))
    tags = [cls.tag for cls in protocol]
    tag = draw(st.sampled_from([*tags, b"\x00", b"\xff"]))
    return protocol, context_for(protocol, draw), tag + draw(st.binary(max_size=80))


@FUZZ
@given(tagged_garbage())
def test_random_payloads(case: tuple[SubProtocol[Any], Any, bytes]) -> None:
    check_decode(*case)


_NASTY32 = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@st.composite
def damaged(draw: st.DrawFn, payload: bytes) -> bytes:
    buf = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "int32", "int16", "cut", "delete", "insert"]))
        size = len(buf)
        at = draw(st.integers(0, size))
        if op == "flip" and size:
            buf[min(at, size - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and size:
            buf[min(at, size - 1)] = draw(st.integers(0, 255))
        elif op == "int32":
            buf[at : at + 4] = struct.pack("!I", draw(st.sampled_from(_NASTY32)))
        elif op == "int16":
            buf[at : at + 2] = struct.pack("!H", draw(st.sampled_from(_NASTY32)) & 0xFFFF)
        elif op == "cut":
            del buf[at:]
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(buf)


@st.composite
def damaged_golden(draw: st.DrawFn) -> tuple[SubProtocol[Any], Any, bytes]:
    case: Case = draw(st.sampled_from(list(CASES.values())))
    protocol = type(case.msg).protocol
    # Mostly the row's own context; now and then another one.
    context = case.context
    if protocol is PGOUTPUT and draw(st.integers(0, 3)) == 0:
        context = draw(st.sampled_from(CONTEXTS))
    return protocol, context, draw(damaged(case.payload))


@FUZZ
@given(damaged_golden())
def test_damaged_golden_payloads(case: tuple[SubProtocol[Any], Any, bytes]) -> None:
    check_decode(*case)


# -- random valid messages -----------------------------------------------------------

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
I32 = st.integers(-(2**31), 2**31 - 1)
I8 = st.integers(-128, 127)
LSNS = U64.map(LSN)
TIMES = I64.map(Timestamp)
TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=12)
COLUMN = st.one_of(
    st.just(TupleColumn.null()),
    st.just(TupleColumn.unchanged_toast()),
    st.binary(max_size=12).filter(lambda b: 0 not in b).map(TupleColumn.text),
    st.binary(max_size=12).map(TupleColumn.binary),
)
TUPLE = st.lists(COLUMN, max_size=6)
RELATION_COLUMN = st.builds(RelationColumn, TEXT, U32, I32, I8)

# Strategies by field name (and, failing that, by annotation).
BY_NAME: dict[str, st.SearchStrategy[Any]] = {
    "flags": I8,
    "bytes_done": I64,
    "oldest_committing_full_xid": U64,
    "next_full_xid": U64,
    "replica_identity": st.sampled_from(list(ReplicaIdentity)),
    "columns": st.lists(RELATION_COLUMN, max_size=4),
    "options": st.integers(0, 255).map(TruncateOption),
    "relation_ids": st.lists(U32, max_size=5),
    "new": TUPLE,
    "data": st.binary(max_size=40),
    "content": st.binary(max_size=40),
}
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "LSN": LSNS,
    "Timestamp": TIMES,
    "int": U32,
    "bool": st.booleans(),
    "str": TEXT,
    "bytes": st.binary(max_size=40),
}


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[SubMessage[Any], Any]:
    protocol = draw(st.sampled_from(PROTOCOLS))
    cls = draw(st.sampled_from(list(protocol)))
    context = None
    if protocol is PGOUTPUT:
        assert issubclass(cls, PgOutputMessage)
        context = draw(st.sampled_from([c for c in CONTEXTS if c.proto_version >= cls.since]))
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in BY_NAME:
            values[f.name] = draw(BY_NAME[f.name])
        elif f.name == "xid" and f.type == "int | None":
            values[f.name] = draw(U32) if context and context.in_stream else None
        elif f.name in ("key", "old"):
            values[f.name] = None  # chosen below, as the layouts allow
        elif f.name in ("abort_lsn", "abort_time"):
            kind = str(f.type).split(" ")[0]
            values[f.name] = draw(BY_TYPE[kind]) if context and context.parallel else None
        else:
            values[f.name] = draw(BY_TYPE[str(f.type)])
    if cls is Update:
        which = draw(st.sampled_from([None, "key", "old"]))
        if which:
            values[which] = draw(TUPLE)
    elif cls is Delete:
        values[draw(st.sampled_from(["key", "old"]))] = draw(TUPLE)
    return cls(**values), context


@FUZZ
@given(valid_messages())
def test_random_messages_round_trip(case: tuple[SubMessage[Any], Any]) -> None:
    msg, context = case
    data = msg.encode(context)
    assert data[:1] == msg.tag
    decoded = type(msg).protocol.decode(data, context)
    assert decoded == msg
    assert type(decoded) is type(msg)


# -- encoders fed junk ---------------------------------------------------------------

JUNK: st.SearchStrategy[object] = st.sampled_from(
    [
        *(None, -1, 2**64, 2**70, -(2**63) - 1, 1.5, "text", "a\0b", b"bytes", b"\0"),
        *([], [1], [None], (), {}, object(), ColumnKind.TEXT, ReplicaIdentity.FULL),
        TupleColumn("q", b"x"),  # type: ignore[arg-type]
    ]
)


@FUZZ
@given(st.sampled_from(list(CASES.values())), st.data())
def test_encoders_fed_junk(case: Case, data: st.DataObject) -> None:
    fields = [f.name for f in dataclasses.fields(case.msg)]  # type: ignore[arg-type]
    if not fields:
        return
    name = data.draw(st.sampled_from(fields))
    msg = dataclasses.replace(case.msg, **{name: data.draw(JUNK)})  # type: ignore[type-var]
    context = case.context
    if type(msg).protocol is PGOUTPUT and data.draw(st.booleans()):
        context = data.draw(st.sampled_from(CONTEXTS))
    buf = bytearray(b"before")
    try:
        msg.encode_into(buf, context)
    except EncodingError:
        assert buf == b"before"
        return
    # The junk happened to be representable: the result must decode back.
    assert type(msg).protocol.decode(bytes(buf[6:]), context).encode(context) == buf[6:]


# -- the logical stream ---------------------------------------------------------------


@st.composite
def xlog_stream(draw: st.DrawFn) -> tuple[int, str, list[bytes]]:
    version = draw(st.sampled_from([1, 2, 3, 4]))
    streaming = draw(st.sampled_from(["off"] if version == 1 else ["off", "on", "parallel"]))
    if streaming == "parallel" and version < 4:
        streaming = "on"
    payloads = []
    pg_cases = [c for c in CASES.values() if type(c.msg).protocol is PGOUTPUT]
    for _ in range(draw(st.integers(1, 12))):
        case = draw(st.sampled_from(pg_cases))
        inner = case.payload
        if draw(st.integers(0, 2)) == 0:
            inner = draw(damaged(inner))
        start = draw(st.one_of(st.integers(0, 2**40), st.integers(2**64 - 2**8, 2**64 - 1)))
        payloads.append(XLogData(LSN(start), LSN(start), Timestamp(0), inner).encode())
        if draw(st.integers(0, 5)) == 0:
            payloads.append(draw(damaged(payloads[-1])))
    return version, streaming, payloads


@FUZZ
@given(xlog_stream())
def test_logical_stream_fed_garbage(case: tuple[int, str, list[bytes]]) -> None:
    version, streaming, payloads = case
    stream = LogicalStream(version, streaming=streaming)  # type: ignore[arg-type]
    physical = PhysicalStream()
    for payload in payloads:
        before = stream.received_lsn
        outcome = decode_or_error(lambda: stream.receive(payload))  # noqa: B023 - called at once
        if isinstance(outcome, DecodingError):
            assert 0 <= outcome.offset <= len(payload)
            assert stream.received_lsn == before
        assert stream.received_lsn >= before
        with contextlib.suppress(DecodingError):
            physical.receive(payload)


# The logical stream reads well-formed Begin, Commit, Insert, Update and
# Delete on a fast path (compiled when built, else Python) and everything
# else with the strict decoder.  Fed the same coherent-but-hostile streams,
# a stream with the fast path and one without must agree on every event,
# every error (type, message, offset, reason) and every piece of state.

_NAMES = st.sampled_from(["id", "v", "\u00e9", "id", ""])  # duplicates and "" too
_VALUES = st.one_of(
    st.just(TupleColumn.null()),
    st.just(TupleColumn.unchanged_toast()),
    st.sampled_from([b"", b"1", b"caf\xc3\xa9", b"\xff", b"\xc3", b"a\x80b"]).map(TupleColumn.text),
    st.binary(max_size=4).map(TupleColumn.binary),
)


@st.composite
def coherent_stream(draw: st.DrawFn) -> tuple[int, list[bytes | bytearray]]:
    version = draw(st.sampled_from([1, 2]))
    widths = {10: draw(st.integers(1, 4)), 11: draw(st.integers(1, 4))}
    payloads: list[bytes | bytearray] = []
    lsn = draw(st.integers(0, 2**40))
    # Mostly in order (relations described, then a transaction of
    # changes), so that the fast path has work; any message may come anywhere.
    plan = ["R", "R", "B"] if draw(st.integers(0, 4)) else []
    kinds = ["R", "B", "C", "S", "E", "T", "k"] + ["I"] * 6 + ["U"] * 3 + ["D"] * 3
    plan += draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=30))
    block = False  # a Stream Start was sent: changes carry an xid
    for i, what in enumerate(plan):
        inside = version >= 2 and block != (draw(st.integers(0, 9)) == 0)
        ctx = PgOutputContext(version, inside)
        xid = draw(st.integers(0, 2**32 - 1)) if inside else None
        rel = 10 + i if i < 2 and what == "R" else draw(st.sampled_from([10, 10, 10, 11, 11, 12]))
        width = widths.get(rel, 2)
        if draw(st.integers(0, 9)) == 0:
            width = draw(st.integers(0, 5))
        row = st.lists(_VALUES, min_size=width, max_size=width)
        msg: Any
        if what == "R":
            cols = [
                RelationColumn(draw(_NAMES), 25, -1, draw(st.integers(0, 1))) for _ in range(width)
            ]
            msg = Relation(rel, "s", "t", ReplicaIdentity.DEFAULT, cols, xid)
        elif what == "B":
            msg = Begin(LSN(lsn + 100), Timestamp(draw(st.integers(-(2**63), 2**63 - 1))), 7)
        elif what == "C":
            if draw(st.booleans()):
                plan.insert(i + 1, "B")  # the next transaction (the loop reads on)
            msg = Commit(LSN(lsn), LSN(lsn + 1), Timestamp(5), draw(st.integers(-128, 127)))
        elif what in "SE":
            if version < 2:
                continue
            ctx = PgOutputContext(version)
            msg = StreamStart(9, first_segment=True) if what == "S" else StreamStop()
            block = what == "S"
        elif what == "I":
            msg = Insert(rel, draw(row), xid)
        elif what == "U":
            before = draw(st.sampled_from([None, "key", "old"]))
            key = draw(row) if before == "key" else None
            msg = Update(
                rel, draw(row), key=key, old=draw(row) if before == "old" else None, xid=xid
            )
        elif what == "D":
            before = draw(st.sampled_from(["key", "old"]))
            msg = Delete(
                rel,
                key=draw(row) if before == "key" else None,
                old=draw(row) if before == "old" else None,
                xid=xid,
            )
        elif what == "T":
            msg = Truncate([rel], xid=xid)
        if what == "k":
            payload = PrimaryKeepalive(LSN(lsn), Timestamp(3), draw(st.booleans())).encode()
        else:
            end = draw(st.integers(0, 2**64 - 1))
            sent = Timestamp(draw(st.integers(-(2**63), 2**63 - 1)))
            payload = XLogData(LSN(lsn), LSN(end), sent, msg.encode(ctx)).encode()
        if draw(st.integers(0, 4)) == 0:
            payload = draw(damaged(payload))
        payloads.append(bytearray(payload) if draw(st.integers(0, 19)) == 0 else payload)
        lsn = max(0, lsn + draw(st.integers(-1, 50)))  # now and then backwards
    return version, payloads


def _stream_state(stream: LogicalStream) -> str:
    return repr(
        (
            stream.received_lsn,
            stream.server_wal_end,
            stream.server_time,
            stream.reply_pending,
            stream.in_transaction,
            stream.transaction_xid,
            stream.in_stream,
            stream.stream_xid,
            stream.context,
            dict(stream.relations),
        )
    )


def _event_or_error(stream: LogicalStream, payload: bytes | bytearray) -> object:
    try:
        event = stream.receive(payload)
    except DecodingError as exc:
        return (type(exc), exc.message, exc.offset, exc.reason)
    # repr shows every field, the types of LSNs and timestamps included, and
    # a RowChange's message (decoded now when the fast path made it).
    return (type(event), repr(event), event)


@FUZZ
@given(coherent_stream())
def test_fast_path_agrees_with_the_strict_decoder(
    case: tuple[int, list[bytes | bytearray]],
) -> None:
    version, payloads = case
    streaming = version >= 2
    fast = LogicalStream(version, streaming=streaming)
    strict = LogicalStream(version, streaming=streaming)
    strict._fast = False  # the switch the fast path obeys for other encodings
    for payload in payloads:
        got = _event_or_error(fast, payload)
        expected = _event_or_error(strict, payload)
        assert got == expected
        assert _stream_state(fast) == _stream_state(strict)


# -- commands ----------------------------------------------------------------------

# The replication command scanner's tokens, as the documentation describes
# SQL's: a double-quoted identifier ("" is a quote inside it), a
# single-quoted literal ('' is a quote inside it), or a bare word.
TOKEN = re.compile(r'"((?:[^"]|"")*)"|\'((?:[^\']|\'\')*)\'|([^\s"\'(),]+)|([(),])|\s+')


def tokens(command: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(command):
        match = TOKEN.match(command, pos)
        assert match is not None, f"cannot read {command[pos:]!r}"
        ident, literal, word, punct = match.groups()
        if ident is not None:
            out.append(("ident", ident.replace('""', '"')))
        elif literal is not None:
            out.append(("literal", literal.replace("''", "'")))
        elif word is not None:
            out.append(("word", word))
        elif punct is not None:
            out.append(("punct", punct))
        pos = match.end()
    return out


ANY_TEXT = st.text(st.characters(blacklist_characters="\0"), min_size=1, max_size=20)
NAME_TEXT = st.text(st.characters(blacklist_characters='\0"'), min_size=1, max_size=20)


@FUZZ
@given(st.dictionaries(NAME_TEXT, st.one_of(st.none(), ANY_TEXT), max_size=4))
def test_start_replication_options_cannot_escape(options: dict[str, str | None]) -> None:
    command = start_logical_replication("slot", LSN(7), options)
    expected: list[tuple[str, str]] = [
        ("word", "START_REPLICATION"),
        ("word", "SLOT"),
        ("ident", "slot"),
        ("word", "LOGICAL"),
        ("word", "0/7"),
    ]
    if options:
        expected.append(("punct", "("))
        for i, (name, value) in enumerate(options.items()):
            if i:
                expected.append(("punct", ","))
            expected.append(("ident", name))
            if value is not None:
                expected.append(("literal", value))
        expected.append(("punct", ")"))
    assert tokens(command) == expected


@FUZZ
@given(ANY_TEXT)
def test_quoting_reads_back(text: str) -> None:
    assert tokens(quote_identifier(text)) == [("ident", text)]
    assert tokens(quote_literal(text)) == [("literal", text)]


def test_stream_abort_fields_follow_the_context() -> None:
    """A sanity check of the generator above: with parallel both are set."""
    ctx = PgOutputContext(4, parallel=True)
    assert StreamAbort(1, 2, LSN(3), Timestamp(4)).encode(ctx)[-16:] == bytes(
        [0] * 7 + [3] + [0] * 7 + [4]
    )


ARG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    ANY_TEXT,
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.one_of(ANY_TEXT, st.integers()), max_size=3),
    st.dictionaries(
        st.one_of(ANY_TEXT, st.integers()), st.one_of(ANY_TEXT, st.none(), st.floats())
    ),
)
BUILDERS: list[tuple[Callable[..., str], tuple[str, ...], tuple[str, ...]]] = [
    # (builder, positional parameters, keyword parameters)
    (timeline_history, ("timeline",), ()),
    (read_replication_slot, ("slot_name",), ()),
    (drop_replication_slot, ("slot_name",), ("wait",)),
    (create_physical_replication_slot, ("slot_name",), ("temporary", "reserve_wal")),
    (
        create_logical_replication_slot,
        ("slot_name", "plugin"),
        ("temporary", "two_phase", "snapshot", "failover"),
    ),
    (start_physical_replication, ("start_lsn",), ("slot_name", "timeline")),
    (start_logical_replication, ("slot_name", "start_lsn", "options"), ()),
    (
        pgoutput_options,  # type: ignore[list-item]
        ("proto_version", "publication_names"),
        ("binary", "messages", "streaming", "two_phase", "origin"),
    ),
    (base_backup, (), ("label", "target", "progress", "checkpoint", "max_rate", "manifest")),
]


@FUZZ
@given(st.sampled_from(BUILDERS), st.data())
def test_builders_fed_anything(
    builder: tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...]], data: st.DataObject
) -> None:
    """Whatever the arguments, a command (a str without NUL) or an EncodingError."""
    build, positional, keywords = builder
    args = [data.draw(ARG) for _ in positional]
    kwargs = {k: data.draw(ARG) for k in keywords if data.draw(st.booleans())}
    with contextlib.suppress(EncodingError):
        result = build(*args, **kwargs)
        assert isinstance(result, (str, dict))
        assert "\0" not in str(result)
