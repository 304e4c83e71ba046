"""pygwire.types against PostgreSQL 18: the server's bytes are the reference.

Every value is built on the server from SQL written with Python's own
formatting (repr, str, isoformat, json.dumps, hex), never with pygwire;
the server's text and binary output of it must equal pygwire's encoding,
and pygwire must decode both back to the value.  In the other direction
pygwire's text and binary encodings are sent as parameters and the server
echoes them in the other format, which must match what it printed for the
value: so the server read the same value.  Random floats, numerics,
dates, timestamps, intervals, arrays and JSON documents go through the
same checks in bulk, and every text input of tests/test_types.py is read
by both: pygwire either refuses it or reads what the server reads.

The session settings that decide text formats are set explicitly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import struct
import uuid
from collections.abc import Iterator
from decimal import Decimal, localcontext
from fractions import Fraction

import psycopg
import pytest
from harness.postgres import PostgresServer
from psycopg import pq

from pygwire.types import (
    Infinity,
    Interval,
    Oid,
    ValueDecodeError,
    codec,
    decode,
    encode,
)
from types_cases import ACCEPTED, REFUSED, REFUSED_BY_DESIGN

__all__: list[str] = []

UTC = dt.UTC
SETTINGS = {
    "extra_float_digits": "1",
    "DateStyle": "ISO, MDY",
    "TimeZone": "UTC",
    "IntervalStyle": "postgres",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
    "standard_conforming_strings": "on",
}


class ServerError(Exception):
    """The server refused a statement; ``sqlstate`` says why."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate


def _configure(run: object) -> None:
    assert callable(run)
    for name, value in SETTINGS.items():
        run(f"set {name} = '{value}'")


@pytest.fixture(scope="module")
def pg(pg18: PostgresServer) -> Iterator[pq.abc.PGconn]:
    """A raw libpq session with the text-format settings pinned."""
    conn = pq.PGconn.connect(pg18.dsn("trust_user").encode())
    assert conn.status == pq.ConnStatus.OK, conn.error_message

    def run(sql: str) -> None:
        res = conn.exec_(sql.encode())
        assert res.status == pq.ExecStatus.COMMAND_OK, res.error_message

    _configure(run)
    for name, value in SETTINGS.items():
        res = conn.exec_(f"show {name}".encode())
        assert res.get_value(0, 0) == value.encode(), name
    yield conn
    conn.finish()


@pytest.fixture(scope="module")
def cur(pg18: PostgresServer) -> Iterator[psycopg.Cursor[tuple[object, ...]]]:
    """A psycopg cursor with the same settings, for bulk checks (psycopg adapts the inputs)."""
    with psycopg.connect(pg18.dsn("trust_user"), autocommit=True) as conn:
        _configure(conn.execute)
        yield conn.cursor()


def _query(
    conn: pq.abc.PGconn,
    sql: str,
    params: list[tuple[bytes, int, int]] | None = None,
    result_format: int = 0,
) -> bytes | None:
    """The single value ``sql`` returns, in ``result_format``; params are (data, oid, format)."""
    params = params or []
    res = conn.exec_params(
        sql.encode(),
        [p[0] for p in params],
        [p[1] for p in params],
        [p[2] for p in params],
        result_format=result_format,
    )
    if res.status != pq.ExecStatus.TUPLES_OK:
        state = res.error_field(pq.DiagnosticField.SQLSTATE) or b"?????"
        raise ServerError(state.decode(), res.error_message.decode(errors="replace"))
    assert (res.ntuples, res.nfields) == (1, 1)
    return res.get_value(0, 0)


def _server_value(conn: pq.abc.PGconn, expr: str) -> tuple[bytes, bytes]:
    """The server's text and binary output of one SQL expression."""
    text = _query(conn, f"select {expr}", result_format=0)
    binary = _query(conn, f"select {expr}", result_format=1)
    assert text is not None
    assert binary is not None
    return text, binary


def _echo(conn: pq.abc.PGconn, data: bytes, oid: int, fmt_in: int, fmt_out: int) -> bytes:
    """What the server sends back for a parameter of type ``oid``, read in ``fmt_in``."""
    out = _query(conn, "select $1", [(data, oid, fmt_in)], result_format=fmt_out)
    assert out is not None
    return out


# -- SQL for Python values, written without pygwire ------------------------------


def lit(text: str) -> str:
    """A standard SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_of(value: object, oid: int) -> str:
    """An SQL expression for ``value`` as type ``oid``, from Python's own formatting."""
    c = codec(oid)
    if c.element_oid:
        assert isinstance(value, list)
        element = codec(c.element_oid).name
        if not value:
            return f"'{{}}'::{element}[]"
        items = ["NULL" if v is None else sql_of(v, c.element_oid) for v in value]
        return f"ARRAY[{', '.join(items)}]::{element}[]"
    name = c.name
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, Decimal)):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and oid not in (Oid.JSON, Oid.JSONB):
        text = value
    elif isinstance(value, bytes):
        return f"decode('{value.hex()}', 'hex')"
    elif isinstance(value, Infinity):
        text = value.value
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, (dt.date, dt.time)):
        text = value.isoformat()
    elif isinstance(value, Interval):
        if value in (Interval.INFINITY, Interval.NEG_INFINITY):
            text = "infinity" if value == Interval.INFINITY else "-infinity"
        else:
            text = f"{value.months} months {value.days} days {value.microseconds} microseconds"
    elif isinstance(value, uuid.UUID):
        text = str(value)
    else:
        text = json.dumps(value)
    return f"{lit(text)}::{name}"


def _f32(x: float) -> float:
    value: float = struct.unpack("!f", struct.pack("!f", x))[0]
    return value


F64_EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.5,
    0.1,
    1 / 3,
    2 / 3,
    math.pi,
    math.nan,
    math.inf,
    -math.inf,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    5e-324,
    1e-310,
    1e14,
    1e15,
    999999999999999.9,
    123456789012345.67,
    1e16,
    2.0**53,
    2.0**53 + 2,
    2.0**63,
    9007199254740993.0,
    1e-4,
    1e-5,
    0.00012345,
    1e22,
    1e23,
    5e-5,
    123456789.123456789,
    4.35,
    0.3,
    # repr() prints these one digit shorter, on a halfway point.
    3.152519739159347e16,
    3.092535278770144e18,
    8.71910791804678e16,
]
F32_EDGES = [
    _f32(x)
    for x in [
        0.0,
        -0.0,
        1.0,
        0.1,
        1 / 3,
        math.nan,
        math.inf,
        -math.inf,
        3.4028234663852886e38,
        1.1754943508222875e-38,
        1.401298464324817e-45,
        123456.0,
        1234567.0,
        999999.9,
        1e-4,
        1e-5,
        16777216.0,
        16777217.0,
        3.14159,
        7.0e-46 * 2,
    ]
]
DECIMAL_EDGES = [
    Decimal(s)
    for s in [
        "0",
        "0.00",
        "-0.000",
        "1",
        "-1",
        "1.50",
        "123456.789",
        "0.0001",
        "0.00001",
        "10000",
        "99999999",
        "100000000",
        "1E+5",
        "-1E-7",
        "1e-30",
        "3.14159265358979323846264338327950288419716939937510",
        "-12345678901234567890123456789012345678901234567890",
        "0.1000",
        "9999.9999",
        "NaN",
        "Infinity",
        "-Infinity",
        "1E-16383",
        "-9E+1000",
    ]
]
TEXT_EDGES = [
    "",
    "a",
    " spaced ",
    "quote ' double \" backslash \\",
    "unicode: é ü ß 日本 \U0001f600",
    "line\nbreak\ttab\r",
    "NULL",
    "{braces},commas",
    "\x01\x7f",
    "x" * 1000,
]

# (value, oid)
CASES: list[tuple[object, int]] = [
    (True, Oid.BOOL),
    (False, Oid.BOOL),
    *[(v, Oid.INT2) for v in (0, 1, -1, 32767, -32768)],
    *[(v, Oid.INT4) for v in (0, 42, -42, 2**31 - 1, -(2**31))],
    *[(v, Oid.INT8) for v in (0, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63))],
    *[(v, Oid.OID) for v in (0, 1, 2**31, 2**32 - 1)],
    *[(v, Oid.FLOAT8) for v in F64_EDGES],
    *[(v, Oid.FLOAT4) for v in F32_EDGES],
    *[(v, Oid.NUMERIC) for v in DECIMAL_EDGES],
    *[(v, Oid.NUMERIC) for v in (0, -(10**30), 2**64)],  # ints are numerics too
    *[(v, Oid.FLOAT8) for v in (0, 1, -(2**53) - 1, 10**300)],  # ... and float8s
    *[(v, oid) for v in TEXT_EDGES for oid in (Oid.TEXT, Oid.VARCHAR, Oid.BPCHAR)],
    *[(v, Oid.NAME) for v in ("", "pg_class", "é" * 31, "a" * 63)],
    (bytes(range(256)), Oid.BYTEA),
    (b"", Oid.BYTEA),
    (b"\\x00'\"", Oid.BYTEA),
    *[
        (v, Oid.DATE)
        for v in (
            dt.date(2000, 1, 1),
            dt.date(1999, 12, 31),
            dt.date(2000, 1, 2),
            dt.date(2000, 2, 29),
            dt.date(1, 1, 1),
            dt.date(9999, 12, 31),
            dt.date(1970, 1, 1),
            dt.date(1582, 10, 10),
            Infinity.POSITIVE,
            Infinity.NEGATIVE,
        )
    ],
    *[
        (v, Oid.TIME)
        for v in (
            dt.time(0),
            dt.time(23, 59, 59, 999999),
            dt.time(12, 30, 0, 500000),
            dt.time(4, 5, 6, 789),
        )
    ],
    *[
        (v, Oid.TIMESTAMP)
        for v in (
            dt.datetime(2000, 1, 1),
            dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(2000, 1, 1, 0, 0, 0, 1),
            dt.datetime(1, 1, 1),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(1970, 1, 1, 12, 34, 56, 120000),
            Infinity.POSITIVE,
            Infinity.NEGATIVE,
        )
    ],
    *[
        (v, Oid.TIMESTAMPTZ)
        for v in (
            dt.datetime(2000, 1, 1, tzinfo=UTC),
            dt.datetime(2021, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
            dt.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            Infinity.NEGATIVE,
        )
    ],
    *[
        (v, Oid.INTERVAL)
        for v in (
            Interval(),
            Interval(0, 1, 0),
            Interval(14, 3, 14706789000),
            Interval(0, -1, 7380000000),
            Interval(1, -1, 0),
            Interval(-14, 3, -14706000000),
            Interval(0, 0, -1),
            Interval(0, 0, 360000000000000),
            Interval(-1, -1, -1),
            Interval(12, 0, 0),
            Interval(-12, 0, 0),
            Interval(2**31 - 1, 2**31 - 1, 2**63 - 1 - 1),
            Interval(-(2**31), -(2**31), -(2**63) + 1),
            Interval.INFINITY,
            Interval.NEG_INFINITY,
        )
    ],
    *[
        (v, Oid.UUID)
        for v in (
            uuid.UUID(int=0),
            uuid.UUID(int=2**128 - 1),
            uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        )
    ],
    *[
        (v, oid)
        for v in (
            {"b": 1, "aa": [True, None, 2.5], "a": {"nested": "é\n\u0001"}},
            [],
            {},
            'string with "quotes" and \\ and / and \t',
            12345678901234567890,
            -0.5,
            1.5e300,
            None,
            True,
            [1e-7, 100.0, 0.1],
            {"": 0, "é": 1, "z": 2, "aaa": 3},
        )
        for oid in (Oid.JSON, Oid.JSONB)
    ],
    (["", "a b", "a,b", 'a"b', "a\\b", "{", "}", "NULL", "null", "x", None], Oid.TEXT_ARRAY),
    ([" ", "\t", "\x0b", "\n", "é", "\x01", "a;b", "[1]", "=", "'"], Oid.TEXT_ARRAY),
    ([], Oid.TEXT_ARRAY),
    ([None], Oid.TEXT_ARRAY),
    ([None, None], Oid.INT4_ARRAY),
    ([1, None, -3], Oid.INT4_ARRAY),
    ([2**63 - 1], Oid.INT8_ARRAY),
    ([True, False, None], Oid.BOOL_ARRAY),
    ([1.5, math.nan, -math.inf, -0.0, None], Oid.FLOAT8_ARRAY),
    ([_f32(0.1)], Oid.FLOAT4_ARRAY),
    ([Decimal("1.50"), Decimal("NaN"), None], Oid.NUMERIC_ARRAY),
    ([b"a", b"", b"\x00\\"], Oid.BYTEA_ARRAY),
    ([dt.date(2000, 1, 1), Infinity.POSITIVE], Oid.DATE_ARRAY),
    ([dt.time(1, 2, 3, 4)], Oid.TIME_ARRAY),
    ([dt.datetime(2000, 1, 1, 1, 2, 3)], Oid.TIMESTAMP_ARRAY),
    ([dt.datetime(2000, 1, 1, tzinfo=UTC), Infinity.NEGATIVE], Oid.TIMESTAMPTZ_ARRAY),
    ([Interval(1, 2, 3), Interval(), Interval(0, -1, 1)], Oid.INTERVAL_ARRAY),
    ([uuid.UUID(int=5)], Oid.UUID_ARRAY),
    ([{"a": [1, "b,c"]}, None, "x"], Oid.JSONB_ARRAY),
    ([{"a": 1}, [], None], Oid.JSON_ARRAY),
    (["x", "NULL", ""], Oid.VARCHAR_ARRAY),
    (["x ", "y"], Oid.BPCHAR_ARRAY),
    (["pg_class", "a b"], Oid.NAME_ARRAY),
    ([0, 2**32 - 1], Oid.OID_ARRAY),
    ([-32768], Oid.INT2_ARRAY),
]


def _same(a: object, b: object) -> bool:
    """Value equality with NaN equal to itself and -0.0 told from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return (a.is_nan() and b.is_nan()) or (a == b and str(a) == str(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _expected(value: object, oid: int) -> object:
    """The value pygwire decodes: numeric normalises, jsonb keeps numbers as decimals."""
    if isinstance(value, int) and not isinstance(value, bool):
        if oid == Oid.NUMERIC:
            return Decimal(value)
        if oid == Oid.FLOAT8:
            return float(value)
    if isinstance(value, list):
        element = codec(oid).element_oid or oid
        return [None if v is None else _expected(v, element) for v in value]
    if isinstance(value, Decimal) and value.is_finite():
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent > 0:
            return Decimal(int(value))
        return value.copy_abs() if value.is_zero() else value
    return value


def _json_equal(a: object, b: object) -> bool:
    """JSON equality: jsonb keeps numbers as decimals, so 1e20 may come back as an int."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return not isinstance(b, bool) and float(a) == float(b)
    return type(a) is type(b) and a == b


def _is_json(oid: int) -> bool:
    return oid in (Oid.JSON, Oid.JSONB) or codec(oid).element_oid in (Oid.JSON, Oid.JSONB)


def _id(case: tuple[object, int]) -> str:
    value, oid = case
    text = repr(value)
    return f"{codec(oid).name}:{text[:40]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_server_output_equals_encoding(pg: pq.abc.PGconn, case: tuple[object, int]) -> None:
    value, oid = case
    text, binary = _server_value(pg, sql_of(value, oid))
    if oid == Oid.JSON:
        # json keeps the text it was given (here json.dumps's), so compare
        # what both texts mean, through jsonb.
        ours = _query(pg, "select $1::jsonb::text", [(encode(value, oid), Oid.TEXT, 0)])
        theirs = _query(pg, f"select {sql_of(value, oid)}::jsonb::text")
        assert ours == theirs
        assert decode(text, oid) == json.loads(text)
        assert decode(binary, oid, 1) == json.loads(binary)
        return
    assert encode(value, oid, 0) == text
    assert encode(value, oid, 1) == binary
    expected = _expected(value, oid)
    if _is_json(oid):
        assert _json_equal(decode(text, oid, 0), expected)
        assert _json_equal(decode(binary, oid, 1), expected)
    else:
        assert _same(decode(text, oid, 0), expected)
        assert _same(decode(binary, oid, 1), expected)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_server_reads_encoding(pg: pq.abc.PGconn, case: tuple[object, int]) -> None:
    value, oid = case
    if oid == Oid.JSON or codec(oid).element_oid == Oid.JSON:
        oid_for_echo = Oid.JSONB if oid == Oid.JSON else Oid.JSONB_ARRAY
        # The server prints json as given: check through jsonb instead.
        as_jsonb = _query(
            pg, f"select $1::{codec(oid_for_echo).name}::text", [(encode(value, oid, 1), oid, 1)]
        )
        assert as_jsonb == _query(
            pg, f"select ({sql_of(value, oid)})::{codec(oid_for_echo).name}::text"
        )
        return
    text, binary = _server_value(pg, sql_of(value, oid))
    assert _echo(pg, encode(value, oid, 0), oid, 0, 1) == binary
    assert _echo(pg, encode(value, oid, 1), oid, 1, 0) == text


def test_float4_takes_any_float_as_a_cast_does(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    # Python floats that are not float4 values round as float8::float4 does.
    rng = random.Random(RNG_SEED + 9)
    values = [rng.uniform(-3e38, 3e38) * 10.0 ** -rng.randint(0, 70) for _ in range(2000)]
    values = [v for v in values if abs(v) > 1e-44]
    cur.execute(
        "select v::float4::text, float4send(v::float4)"
        " from unnest(%b::float8[]) with ordinality u(v, i) order by i",
        [values],
    )
    for x, (text, binary) in zip(values, cur.fetchall(), strict=True):
        assert isinstance(text, str)
        assert encode(x, Oid.FLOAT4) == text.encode(), x
        assert encode(x, Oid.FLOAT4, 1) == binary, x


def test_timedelta_is_an_interval(pg: pq.abc.PGconn) -> None:
    # timedelta's days stay days; its seconds become the time part.
    for delta in (dt.timedelta(days=-1, seconds=5), dt.timedelta(hours=25), dt.timedelta()):
        micros = delta.seconds * 10**6 + delta.microseconds
        text, binary = _server_value(
            pg, lit(f"{delta.days} days {micros} microseconds") + "::interval"
        )
        assert encode(delta, Oid.INTERVAL) == text
        assert encode(delta, Oid.INTERVAL, 1) == binary
        back = decode(binary, Oid.INTERVAL, 1)
        assert isinstance(back, Interval)
        assert back.to_timedelta() == delta


def test_unknown_type(pg: pq.abc.PGconn) -> None:
    # Parameters of type unknown, in either format, are the text they carry.
    for value in ("héllo", "", "x y", "{a}"):
        for fmt in (0, 1):
            data = encode(value, Oid.UNKNOWN, fmt)
            assert _query(pg, "select $1::text", [(data, Oid.UNKNOWN, fmt)]) == value.encode()
            assert decode(data, Oid.UNKNOWN, fmt) == value


def test_oids_and_sizes(pg: pq.abc.PGconn) -> None:
    # The Oid table, typlen and array types are pg_type's.
    for oid in Oid:
        c = codec(oid)
        row = _query(
            pg,
            "select format('%s|%s|%s|%s', typname, typlen, typarray, typelem)"
            f" from pg_type where oid = {int(oid)}",
        )
        assert row is not None
        typname, typlen, typarray, typelem = row.decode().split("|")
        assert (c.name, c.typlen, c.array_oid, c.element_oid) == (
            typname,
            int(typlen),
            int(typarray),
            int(typelem) if c.element_oid else 0,
        )
        assert oid.name.lower().removesuffix("_array") in (typname.lstrip("_"), "bpchar")


def test_row_description_size_and_type(pg: pq.abc.PGconn) -> None:
    # RowDescription's type OID and size for each type are the codec's.
    for oid in Oid:
        if oid == Oid.UNKNOWN:
            continue
        c = codec(oid)
        res = pg.exec_(
            f"select null::{codec(c.element_oid).name + '[]' if c.element_oid else c.name}".encode()
        )
        assert res.ftype(0) == oid
        assert res.fsize(0) == c.typlen


# -- values pygwire refuses by design -----------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "'0044-03-15 BC'::date",
        "'4714-11-24 BC'::date",
        "'5874897-12-31'::date",
        "'10000-01-01'::date",
        "'24:00:00'::time",
        "'0001-12-31 23:59:59 BC'::timestamp",
        "'294276-12-31 23:59:59.999999'::timestamp",
        "'0001-01-01 00:00:00+01'::timestamptz",
        "'[0:1]={1,2}'::int4[]",
        "'{{1,2},{3,4}}'::int4[]",
    ],
)
def test_server_values_datetime_cannot_hold(pg: pq.abc.PGconn, expr: str) -> None:
    text, binary = _server_value(pg, expr)
    oid = Oid(pg.exec_(f"select {expr}".encode()).ftype(0))
    for data, fmt in ((text, 0), (binary, 1)):
        with pytest.raises(ValueDecodeError) as info:
            decode(data, oid, fmt)
        assert info.value.sqlstate in ("22008", "0A000")


def test_bc_and_far_future_text_matches_the_server(pg: pq.abc.PGconn) -> None:
    # Out of datetime's range, pygwire still prints what the server prints.
    early = dt.datetime(1, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    late = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=5)))
    for value in (early, late):
        text, binary = _server_value(pg, sql_of(value, Oid.TIMESTAMPTZ))
        assert encode(value, Oid.TIMESTAMPTZ) == text
        assert encode(value, Oid.TIMESTAMPTZ, 1) == binary


# -- bulk random values -------------------------------------------------------------

RNG_SEED = 20240607


def _random_f64(rng: random.Random) -> float:
    while True:
        x: float = struct.unpack("!d", rng.getrandbits(64).to_bytes(8, "big"))[0]
        if math.isfinite(x):
            return x


def test_random_float8(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED)
    values = [_random_f64(rng) for _ in range(3000)]
    # Also values near powers of two and ten, where the shortest output
    # and the layout switch are decided.
    for e in range(-30, 30):
        for base in (2.0**e, 10.0**e):
            values += [base, math.nextafter(base, 0), math.nextafter(base, math.inf)]
    values += [float(10**k) for k in range(25)]
    cur.execute(
        "select v::text, float8send(v)"
        " from unnest(%b::float8[]) with ordinality u(v, i) order by i",
        [values],
    )
    rows = cur.fetchall()
    assert len(rows) == len(values)
    for x, (text, binary) in zip(values, rows, strict=True):
        assert isinstance(text, str)
        assert encode(x, Oid.FLOAT8) == text.encode(), x
        assert encode(x, Oid.FLOAT8, 1) == binary
        assert _same(decode(text.encode(), Oid.FLOAT8), x)
    # ... and the server reads pygwire's text back to the same bits.
    cur.execute(
        "select float8send(t::float8) from unnest(%s::text[]) with ordinality u(t, i) order by i",
        [[encode(x, Oid.FLOAT8).decode() for x in values]],
    )
    assert [r[0] for r in cur.fetchall()] == [struct.pack("!d", x) for x in values]


def test_random_float4(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED + 1)
    values: list[float] = []
    while len(values) < 3000:
        x = struct.unpack("!f", rng.getrandbits(32).to_bytes(4, "big"))[0]
        if math.isfinite(x):
            values.append(x)
    for e in range(-40, 39):
        base = _f32(10.0**e) if 10.0**e < 3.4e38 else 3.4028234663852886e38
        values += [base, _f32(2.0**e) if 2.0**e < 3.4e38 else base]
    cur.execute(
        "select v::float4::text, float4send(v::float4)"
        " from unnest(%b::float8[]) with ordinality u(v, i) order by i",
        [values],
    )
    rows = cur.fetchall()
    for x, (text, binary) in zip(values, rows, strict=True):
        assert isinstance(text, str)
        assert encode(x, Oid.FLOAT4) == text.encode(), x
        assert encode(x, Oid.FLOAT4, 1) == binary
        assert _same(decode(text.encode(), Oid.FLOAT4), x)
    cur.execute(
        "select float4send(t::float4) from unnest(%s::text[]) with ordinality u(t, i) order by i",
        [[encode(x, Oid.FLOAT4).decode() for x in values]],
    )
    assert [r[0] for r in cur.fetchall()] == [struct.pack("!f", x) for x in values]


def test_float_text_near_halfway_points(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    # Decimal texts at, just above and just below the exact point halfway
    # between two neighbouring floats: rounding must go the server's way.
    rng = random.Random(RNG_SEED + 8)
    for width, name, oid in ((32, "float4", Oid.FLOAT4), (64, "float8", Oid.FLOAT8)):
        texts: list[str] = []
        with localcontext() as ctx:
            # Enough digits for every halfway point exactly (they are dyadic).
            ctx.prec = 2000
            _halfway_texts(rng, width, 1500, texts)
        cur.execute(
            f"select {name}send(t::{name})"
            " from unnest(%s::text[]) with ordinality u(t, i) order by i",
            [texts],
        )
        for text, (binary,) in zip(texts, cur.fetchall(), strict=True):
            assert encode(decode(text.encode(), oid), oid, 1) == binary, (name, text)


def _halfway_texts(rng: random.Random, width: int, count: int, texts: list[str]) -> None:
    """Appends texts at and near halfway points between floats of ``width`` bits."""
    fmt, mask = ("!f", 2**31) if width == 32 else ("!d", 2**63)
    goal = len(texts) + count
    while len(texts) < goal:
        bits = rng.randrange(mask - 1)
        x = struct.unpack(fmt, bits.to_bytes(width // 8, "big"))[0]
        y = struct.unpack(fmt, (bits + 1).to_bytes(width // 8, "big"))[0]
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        exact = (Fraction(x) + Fraction(y)) / 2
        mid = Decimal(exact.numerator) / Decimal(exact.denominator)
        nudge = Decimal(10) ** (mid.adjusted() - rng.randint(30, 120))
        texts.append(str(rng.choice([mid, mid + nudge, mid - nudge])))


def _random_decimal(rng: random.Random) -> Decimal:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
    exponent = rng.randint(-70, 40)
    sign = rng.choice(["", "-"])
    return Decimal(f"{sign}{digits}E{exponent}")


def test_random_numeric(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED + 2)
    values = [_random_decimal(rng) for _ in range(2000)]
    texts = [str(v) for v in values]
    cur.execute(
        "select t::numeric::text, numeric_send(t::numeric)"
        " from unnest(%s::text[]) with ordinality u(t, i) order by i",
        [texts],
    )
    for value, (text, binary) in zip(values, cur.fetchall(), strict=True):
        assert isinstance(text, str)
        assert encode(value, Oid.NUMERIC) == text.encode(), value
        assert encode(value, Oid.NUMERIC, 1) == binary, value
        assert _same(decode(text.encode(), Oid.NUMERIC), _expected(value, Oid.NUMERIC))
        assert _same(decode(binary, Oid.NUMERIC, 1), _expected(value, Oid.NUMERIC))


def test_numeric_limits(pg: pq.abc.PGconn) -> None:
    # The largest and smallest magnitudes numeric holds, in both formats.
    for text in ("9" * 131072 + "." + "9" * 16383, "-0." + "0" * 16382 + "1", "1" + "0" * 131071):
        value = Decimal(text)
        server_text, server_binary = _server_value(pg, lit(text) + "::numeric")
        assert encode(value, Oid.NUMERIC) == server_text
        assert encode(value, Oid.NUMERIC, 1) == server_binary
        assert decode(server_binary, Oid.NUMERIC, 1) == value
        assert _echo(pg, encode(value, Oid.NUMERIC, 1), Oid.NUMERIC, 1, 0) == server_text


def test_random_dates_and_timestamps(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED + 3)
    lo, hi = dt.date(1, 1, 1).toordinal(), dt.date(9999, 12, 31).toordinal()
    dates = [dt.date.fromordinal(rng.randint(lo, hi)) for _ in range(1000)]
    stamps = [
        dt.datetime.fromordinal(rng.randint(lo, hi))
        + dt.timedelta(microseconds=rng.randrange(86400 * 10**6))
        for _ in range(1000)
    ]
    cur.execute(
        "select d::date::text, date_send(d::date)"
        " from unnest(%s::text[]) with ordinality u(d, i) order by i",
        [[d.isoformat() for d in dates]],
    )
    for value, (text, binary) in zip(dates, cur.fetchall(), strict=True):
        assert isinstance(text, str)
        assert encode(value, Oid.DATE) == text.encode()
        assert encode(value, Oid.DATE, 1) == binary
        assert decode(text.encode(), Oid.DATE) == value
    for oid, name, tz in (
        (Oid.TIMESTAMP, "timestamp", None),
        (Oid.TIMESTAMPTZ, "timestamptz", UTC),
    ):
        values = [s.replace(tzinfo=tz) for s in stamps]
        cur.execute(
            f"select t::{name}::text, {name}_send(t::{name})"
            " from unnest(%s::text[]) with ordinality u(t, i) order by i",
            [[v.isoformat() for v in values]],
        )
        for value, (text, binary) in zip(values, cur.fetchall(), strict=True):
            assert isinstance(text, str)
            assert encode(value, oid) == text.encode()
            assert encode(value, oid, 1) == binary
            assert decode(text.encode(), oid) == value
            assert decode(binary, oid, 1) == value


def test_random_timestamptz_offsets(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED + 4)
    values = [
        dt.datetime(
            rng.randint(2, 9998),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            rng.randrange(10**6),
            tzinfo=dt.timezone(dt.timedelta(seconds=rng.randint(-15 * 3600 + 1, 15 * 3600 - 1))),
        )
        for _ in range(500)
    ]
    cur.execute(
        "select t::timestamptz::text from unnest(%s::text[]) with ordinality u(t, i) order by i",
        [[v.isoformat() for v in values]],
    )
    for value, (text,) in zip(values, cur.fetchall(), strict=True):
        assert isinstance(text, str)
        assert encode(value, Oid.TIMESTAMPTZ) == text.encode()
        assert decode(text.encode(), Oid.TIMESTAMPTZ) == value


def test_random_intervals(pg: pq.abc.PGconn) -> None:
    rng = random.Random(RNG_SEED + 5)
    for _ in range(500):
        value = Interval(
            rng.choice([0, rng.randint(-50, 50), rng.randint(-(2**31), 2**31 - 1)]),
            rng.choice([0, rng.randint(-50, 50), rng.randint(-(2**31), 2**31 - 1)]),
            rng.choice([0, rng.randint(-(10**11), 10**11), rng.randint(-(2**63) + 1, 2**63 - 2)]),
        )
        # The binary layout of the documentation: int64 time, int32 days, int32 months.
        packed = struct.pack("!qii", value.microseconds, value.days, value.months)
        text = _echo(pg, packed, Oid.INTERVAL, 1, 0)
        assert encode(value, Oid.INTERVAL) == text
        assert encode(value, Oid.INTERVAL, 1) == packed
        assert decode(text, Oid.INTERVAL) == value
        assert _echo(pg, encode(value, Oid.INTERVAL), Oid.INTERVAL, 0, 1) == packed


def test_random_text_arrays(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED + 6)
    alphabet = [
        '"',
        "\\",
        "{",
        "}",
        ",",
        " ",
        "\t",
        "\n",
        "\x0b",
        "a",
        "N",
        "U",
        "L",
        "é",
        "'",
        ";",
        "[",
        "]",
        ":",
        "=",
    ]
    for _ in range(300):
        items: list[str | None] = [
            None
            if rng.random() < 0.1
            else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(0, 6))
        ]
        if rng.random() < 0.1:
            items.append(rng.choice(["NULL", "null", "Null", ""]))
        cur.execute("select %s::text[]::text, array_send(%s::text[])", [items, items])
        text, binary = cur.fetchone() or (None, None)
        assert isinstance(text, str)
        assert encode(items, Oid.TEXT_ARRAY) == text.encode(), items
        assert encode(items, Oid.TEXT_ARRAY, 1) == binary
        assert decode(text.encode(), Oid.TEXT_ARRAY) == items
        cur.execute(
            "select %s::text::text[] = %s::text[]", [encode(items, Oid.TEXT_ARRAY).decode(), items]
        )
        assert cur.fetchone() == (True,)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randint(0, 7 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(10**20), 10**20)
    if kind == 3:
        return rng.choice([_random_f64(rng), rng.uniform(-1000, 1000), 0.5, 1e-7])
    if kind == 4:
        return "".join(rng.choice('ab"\\/\n\té€\U0001f600 \x1f') for _ in range(rng.randint(0, 8)))
    if kind in (5, 6):
        return {
            "".join(rng.choice("abcé") for _ in range(rng.randint(0, 4))): _random_json(
                rng, depth + 1
            )
            for _ in range(rng.randint(0, 5))
        }
    return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def test_random_jsonb(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    rng = random.Random(RNG_SEED + 7)
    docs = [_random_json(rng) for _ in range(500)]
    cur.execute(
        "select j::jsonb::text from unnest(%s::text[]) with ordinality u(j, i) order by i",
        [[json.dumps(d) for d in docs]],
    )
    for doc, (text,) in zip(docs, cur.fetchall(), strict=True):
        assert isinstance(text, str)
        assert encode(doc, Oid.JSONB) == text.encode(), doc
        assert _json_equal(decode(text.encode(), Oid.JSONB), doc)


# -- text input: pygwire refuses or agrees -------------------------------------------

EXTRA_INPUTS: list[tuple[str, Oid]] = (
    [
        (s, Oid.INTERVAL)
        for s in [
            "1 day 5",
            "- 1 day",
            "1 day -",
            "0.5 weeks",
            "1.5 days",
            ".5 days",
            "5. days",
            "1 weeks 1.5 days",
            "1.0000005 seconds",
            "0.0000015 seconds",
            "1:00:60",
            "1:00:60.5",
            "1:00:61",
            "1:2",
            "1:2:3.5",
            "-1:2:3",
            "PT",
            "P1DT",
            "P0D",
            "PT1.5S",
            "P1.5Y",
            "1 2:03:04",
            "1 seconds 1 ms",
            "1.5 us",
            "1 usec",
            "10 secs",
            "3 y",
            "3 m",
            "3 h",
            "1 millennium",
            "2 centuries",
            "1 decs",
            "1 mil",
            "1 hr 2 mins",
            "ago",
            "1 ago",
            "1 day ago",
            "1e3 days",
            "9223372036854775807 microseconds",
            "-9223372036854775808 microseconds",
            "2562047788:00:54.775807",
            "2562047789:00:00",
            "-2147483648 days",
            "2147483647 months 1 month",
            "23:59:59.9999995",
            "1 hour 1 hour",
            "1 minute 02:00",
            "1 day 02:00 03:00",
        ]
    ]
    + [
        (s, Oid.TIMESTAMP)
        for s in [
            "2000-01-01 24:00:00",
            "2000-01-01 23:59:60",
            "2000-01-01T10:00",
            "2000-01-01t10:00",
            "2000-01-01 10:00:00.",
            "2000-01-01  10:00",
            "2000-01-01 10:00:00 AD",
            "2000-01-01 10:00:00 bc",
            "0000-01-01",
            "99-01-01",
            "2000-13-01",
            "2000-01-01 10:00:00+16",
            "2000-01-01 10:00:00+15:59",
            "2000-01-01 10:00:00-0530",
            "epoch",
            "+infinity",
            "2000-01-01 00:00:00.0000005",
            "2000-01-01 00:00:00.0000015",
        ]
    ]
    + [
        (s, Oid.TIMESTAMPTZ)
        for s in [
            "2000-01-01 10:00:00+16",
            "2000-01-01 10:00:00-15:59:59",
            "2000-01-01 10:00:00 z",
            "2000-01-01 10:00:00 gmt",
            "2000-01-01 10:00:00+0530",
            "2000-01-01 10:00:00+5",
            "2000-01-01 10:00:00 +05 BC",
            "1970-01-01",
            "epoch",
        ]
    ]
    + [
        (s, Oid.TIME)
        for s in [
            "24:00",
            "24:00:00.0",
            "23:59:59.9999999",
            "12:00:00.",
            "1:2",
            "12:00:00 +02",
            "12:60",
        ]
    ]
    + [
        (s, Oid.DATE)
        for s in [
            "2000-01-01 BC",
            "0000-01-01",
            "0001-01-01 AD",
            "2000-01-01 ",
            " 2000-1-1 ",
            "2000-02-29",
            "1900-02-29",
        ]
    ]
    + [
        (s, Oid.TEXT_ARRAY)
        for s in [
            "{{},{}}",
            "[1:0]={}",
            "[2]={a,b}",
            "[ 1:2]={a,b}",
            "{a,{b}}",
            "[2:1]={}",
            '{"a"\t}',
            "{a\\",
            '{"a',
            "{}}",
            '{a"}',
            '{"\\\\"}',
        ]
    ]
    + [
        (s, Oid.JSON)
        for s in [
            '"\\u0000"',
            "[1,]",
            "01",
            "1.",
            ".5",
            "-",
            "1e5",
            '{"a":1,}',
            "true false",
            "\t{}\n",
            '"\x01"',
        ]
    ]
    + [
        (s, Oid.NUMERIC)
        for s in [
            "0e131072",
            "0e-16383",
            "1_000_",
            "1e+_5",
            "0x",
            "0x_",
            "1.5e",
            "+.5",
            "-.5e-3",
            "0o777",
            "0b2",
        ]
    ]
    + [
        (s, Oid.FLOAT8)
        for s in [
            "0x.8",
            "0x1.",
            "nan(123)",
            "nan()",
            "NAN(abc)",
            "+nan",
            "-nan",
            "+Infinity",
            "0x1p-1074",
            "0x1p-1075",
            "0x1p1024",
            "1e-324",
            "2.5e-324",
        ]
    ]
    + [
        (s, Oid.FLOAT4)
        for s in [
            "0x1p-149",
            "0x1p-150",
            "0x1.000001p0",
            "1.00000005960464477539062501",
            "1.000000059604644775390625",
        ]
    ]
)


def _same_refusal(text: str, oid: int, ours: str, theirs: str | None) -> None:
    """Both refuse: with the server's SQLSTATE, unless pygwire refused a form
    it does not read (22007, 0A000) or JSON text with junk after a token
    (json reports the first fault it meets, PostgreSQL the first it checks)."""
    if ours in ("22007", "0A000") or oid in (Oid.JSON, Oid.JSONB):
        return
    assert ours == theirs, (text, ours, theirs)


def _try_decode(data: bytes, oid: int, fmt: int) -> tuple[object, ValueDecodeError | None]:
    """pygwire's value, or its refusal."""
    try:
        return decode(data, oid, fmt), None
    except ValueDecodeError as exc:
        return None, exc


def _server_reads(pg: pq.abc.PGconn, text: str, oid: int) -> tuple[bytes | None, str | None]:
    """The server's binary value for a text parameter, or its SQLSTATE."""
    try:
        return _echo(pg, text.encode(), oid, 0, 1), None
    except ServerError as exc:
        return None, exc.sqlstate


INPUTS = (
    [(t, o) for t, o, _ in ACCEPTED]
    + [(t, o) for t, o, _ in REFUSED]
    + [(t, o) for t, o, _ in REFUSED_BY_DESIGN]
    + EXTRA_INPUTS
)
DESIGNED = {(t, int(o)) for t, o, _ in REFUSED_BY_DESIGN}


@pytest.mark.parametrize(
    ("text", "oid"), INPUTS, ids=[f"{codec(o).name}:{t[:30]!r}" for t, o in INPUTS]
)
def test_text_input_agrees_with_the_server(pg: pq.abc.PGconn, text: str, oid: int) -> None:
    server_value, server_state = _server_reads(pg, text, oid)
    ours, refusal = _try_decode(text.encode(), oid, 0)
    if refusal is not None:
        # Refusing a value the server reads is allowed where documented:
        # beyond datetime's range, and input forms not supported.
        allowed = ("22008", "22007", "0A000", "22003")
        designed = refusal.sqlstate in allowed or (text, oid) in DESIGNED
        assert server_value is None or designed, (text, refusal)
        if server_value is None:
            _same_refusal(text, oid, refusal.sqlstate, server_state)
        return
    assert server_value is not None, (
        f"pygwire read {text!r} as {ours!r}; the server refused ({server_state})"
    )
    if oid in (Oid.JSON, Oid.JSONB):
        assert _json_equal(ours, decode(server_value, oid, 1))
    else:
        assert encode(ours, oid, 1) == server_value, (text, ours)


# Pieces that generated inputs are made of, per type: valid and invalid
# forms mixed, so that most combinations probe an edge of the grammar.
PIECES: dict[int, list[list[str]]] = {
    Oid.INTERVAL: [
        ["1", "-2", "+3", "0", "12", "1.5", "-0.5", "01:02", "-1:02:03", "10:00:00.5", "60"],
        ["day", "days", "hour", "min", "s", "ms", "us", "mon", "year", "week", "ago", "@", "y"],
        ["m", "h", "d", "w", "msec", "usec", "sec", "mins", "hrs", "yrs", "months", "decade"],
    ],
    Oid.TIMESTAMPTZ: [
        ["2000-01-01", "1999-12-31", "0001-01-01", "2000-1-1", "2000-02-29", "2001-02-29"],
        [" ", "T", "  ", "t"],
        ["00:00", "23:59:59", "12:00:00.123456", "24:00:00", "1:2:3", "12:00:00.9999999"],
        ["", "+00", "-05", "+05:30", "Z", " UTC", "+1", "+0530", "-15:59:59", "+16", " z"],
        ["", " BC", " AD", " bc"],
    ],
    Oid.NUMERIC: [
        ["", "-", "+", " "],
        ["0", "1", "12_3", "0x1F", "0b1_0", "0o7", ".5", "5.", "1_0.0_1", "_1", "1__2", "00"],
        ["", "e5", "E-3", "e+1_0", "e", "e_1"],
        ["", " ", "x"],
    ],
    Oid.FLOAT8: [
        ["", "-", "+", " "],
        ["0", "1", "0x1", "0x1.8p1", "0x.8", ".5", "5.", "inf", "Infinity", "nan", "1e308"],
        ["", "e5", "E-3", "e", "e-330"],
        ["", " ", "x"],
    ],
    Oid.TEXT_ARRAY: [
        ["", " ", "[1:2]=", "[2]=", "[0:1]="],
        ["{"],
        ["a", '"b"', " c ", "NULL", '"NULL"', '\\"', '"\\\\"', "", "d e", "{x}", '"a"b', "null"],
        [",", "", ", "],
        ["a", '"b"', " c ", "NULL", "", "a\\ ", '"', "}"],
        ["}"],
        ["", " ", "x"],
    ],
    Oid.DATE: [
        ["", " "],
        ["2000-01-01", "2000-13-01", "2000-02-30", "0000-01-01", "99-01-01", "10000-01-01"],
        ["", " BC", " AD", " "],
    ],
    Oid.BYTEA: [
        ["\\x", "", "\\X"],
        ["4", "1", " ", "\n", "G", "\\", "\\\\", "\\101", "\\400", "a"],
        ["4", "1", " ", "f", "\\"],
    ],
}


@pytest.mark.parametrize("oid", sorted(PIECES), ids=[codec(o).name for o in sorted(PIECES)])
def test_generated_text_inputs_agree(pg: pq.abc.PGconn, oid: int) -> None:
    # Combinations of the pieces: pygwire refuses or reads what the server reads.
    rng = random.Random(RNG_SEED + oid)
    seen: set[str] = set()
    for _ in range(400):
        text = "".join(rng.choice(choices) for choices in PIECES[oid])
        if oid == Oid.INTERVAL:
            text = " ".join(rng.choice(rng.choice(PIECES[oid])) for _ in range(rng.randint(1, 5)))
        if text in seen:
            continue
        seen.add(text)
        server_value, server_state = _server_reads(pg, text, oid)
        ours, refusal = _try_decode(text.encode(), oid, 0)
        if refusal is not None:
            allowed = ("22008", "22007", "0A000", "22003")
            assert server_value is None or refusal.sqlstate in allowed, (text, refusal)
            if server_value is None:
                _same_refusal(text, oid, refusal.sqlstate, server_state)
        else:
            assert server_value is not None, (text, ours)
            assert encode(ours, oid, 1) == server_value, (text, ours)
    assert len(seen) >= 40


def test_documented_refusals_are_valid_postgresql(pg: pq.abc.PGconn) -> None:
    # Everything REFUSED_BY_DESIGN lists is something the server reads.
    for text, oid, _ in REFUSED_BY_DESIGN:
        assert _server_reads(pg, text, oid)[0] is not None, text
    assert DESIGNED


# -- binary input: pygwire refuses what the server refuses ---------------------------

BINARY_INPUTS: list[tuple[bytes, int]] = [
    (b"", Oid.BOOL),
    (b"\x02", Oid.BOOL),
    (b"\x01\x00", Oid.BOOL),
    (b"\x00\x01", Oid.INT4),
    (b"\x00" * 5, Oid.INT4),
    (b"\xff" * 8, Oid.FLOAT8),
    (struct.pack("!hhHHh", 1, 0, 0xC000, 0, 1), Oid.NUMERIC),
    (struct.pack("!hhHHh", 1, 0, 0xC000, 0, 10000), Oid.NUMERIC),
    (struct.pack("!hhHHh", 1, 0, 0x8000, 0, 1), Oid.NUMERIC),
    (struct.pack("!hhHHh", 1, 0, 0, 0x4000, 1), Oid.NUMERIC),
    (struct.pack("!hhHHh", 1, -5, 0, 2, 1), Oid.NUMERIC),
    (struct.pack("!hhHHhh", 2, 0, 0, 0, 1, 2345), Oid.NUMERIC),
    (struct.pack("!hhHHhh", 2, 0, 0, 2, 1, 2345), Oid.NUMERIC),
    (struct.pack("!hhHHhh", 2, 0, 0x4000, 0, 0, 0), Oid.NUMERIC),
    (struct.pack("!hhHH", 0, 0, 0xD000, 0), Oid.NUMERIC),
    (struct.pack("!hhHHh", -1, 0, 0, 0, 1), Oid.NUMERIC),
    (struct.pack("!hhHH", 1, 0, 0, 0), Oid.NUMERIC),
    (struct.pack("!i", 2**31 - 2), Oid.DATE),
    (struct.pack("!i", -2451545), Oid.DATE),
    (struct.pack("!i", -2451546), Oid.DATE),
    (struct.pack("!i", 2145031948), Oid.DATE),
    (struct.pack("!i", 2145031949), Oid.DATE),
    (struct.pack("!q", 9223371331200000000), Oid.TIMESTAMP),
    (struct.pack("!q", -211813488000000001), Oid.TIMESTAMPTZ),
    (struct.pack("!q", 86400000000), Oid.TIME),
    (struct.pack("!q", -1), Oid.TIME),
    (b"\x00" * 16, Oid.INTERVAL),
    (b"\x00" * 17, Oid.INTERVAL),
    (b"\x00" * 15, Oid.UUID),
    (b"a\x00b", Oid.TEXT),
    (b"\xc3", Oid.TEXT),
    (b"\xed\xa0\x80", Oid.VARCHAR),
    (b"a" * 63, Oid.NAME),
    (b"a" * 64, Oid.NAME),
    (b"\x02{}", Oid.JSONB),
    (b"\x01 {} ", Oid.JSONB),
    (b"\x01", Oid.JSONB),
    (b'\x01"\\u0000"', Oid.JSONB),
    (b'"\\u0000"', Oid.JSON),
    (b"{", Oid.JSON),
    (struct.pack("!iiI", 0, 0, Oid.INT4), Oid.INT4_ARRAY),
    (struct.pack("!iiI", 0, 0, Oid.INT8), Oid.INT4_ARRAY),
    (struct.pack("!iiI", 0, 2, Oid.INT4), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 0, 1), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 1, 1) + struct.pack("!ii", 4, 7), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 1, Oid.INT4, 1, 1) + struct.pack("!i", -1), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 1, 1) + struct.pack("!i", -1), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 1, 1) + struct.pack("!ih", 2, 7), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 2, 1) + struct.pack("!ii", 4, 7), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 1, 1) + struct.pack("!iii", 4, 7, 0), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, 1, 1) + struct.pack("!i", -2), Oid.INT4_ARRAY),
    (struct.pack("!iiIii", 1, 0, Oid.INT4, -1, 1), Oid.INT4_ARRAY),
    (struct.pack("!iiI", 7, 0, Oid.INT4) + b"\x00\x00\x00\x01\x00\x00\x00\x01" * 7, Oid.INT4_ARRAY),
    (struct.pack("!iiI", -1, 0, Oid.INT4), Oid.INT4_ARRAY),
]


@pytest.mark.parametrize(
    ("data", "oid"),
    BINARY_INPUTS,
    ids=[f"{codec(o).name}:{d.hex()[:40]}" for d, o in BINARY_INPUTS],
)
def test_binary_input_agrees_with_the_server(pg: pq.abc.PGconn, data: bytes, oid: int) -> None:
    try:
        server_text: bytes | None = _echo(pg, data, oid, 1, 0)
        server_state = None
    except ServerError as exc:
        server_text, server_state = None, exc.sqlstate
    ours, refusal = _try_decode(data, oid, 1)
    if refusal is not None:
        assert server_text is None or refusal.sqlstate in ("22008", "0A000"), (data, refusal)
        if server_text is None and data[:1] != b"\x02":
            # (an unknown jsonb version is XX000 on the server, 22P03 here)
            assert refusal.sqlstate == server_state, (data, refusal, server_state)
        return
    assert server_text is not None, (
        f"pygwire read {data!r} as {ours!r}; the server refused ({server_state})"
    )
    if oid in (Oid.JSON, Oid.JSONB):
        assert _json_equal(ours, json.loads(server_text))
    else:
        assert encode(ours, oid, 0) == server_text
