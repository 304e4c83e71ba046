"""pygwire.types without a server: known encodings, edge cases, errors, round trips.

Expected bytes are PostgreSQL 18's own output for the same values (text
with extra_float_digits=1, DateStyle ISO, TimeZone UTC, IntervalStyle
postgres, bytea_output hex; binary from the types' send functions), as
printed by ``select <literal>`` in text and binary result format, or the
formats the PostgreSQL documentation gives.  tests/test_types_real.py
asks a live server for these and many more.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import struct
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire.exceptions import PygwireError
from pygwire.types import (
    Format,
    Infinity,
    Interval,
    Oid,
    TypeCodec,
    TypeCodecError,
    UnsupportedTypeError,
    ValueDecodeError,
    ValueEncodeError,
    codec,
    decode,
    encode,
    infer_oid,
)
from types_cases import ACCEPTED, REFUSED, REFUSED_BY_DESIGN

__all__ = ["BAD_BINARY", "KNOWN"]

TEXT, BINARY = Format.TEXT, Format.BINARY
UTC = dt.UTC

# -- the OID table -----------------------------------------------------------

# typname, typlen and typarray from pg_type (PostgreSQL 18).
PG_TYPE: dict[str, tuple[int, int, int]] = {
    "bool": (16, 1, 1000),
    "bytea": (17, -1, 1001),
    "name": (19, 64, 1003),
    "int8": (20, 8, 1016),
    "int2": (21, 2, 1005),
    "int4": (23, 4, 1007),
    "text": (25, -1, 1009),
    "oid": (26, 4, 1028),
    "json": (114, -1, 199),
    "float4": (700, 4, 1021),
    "float8": (701, 8, 1022),
    "unknown": (705, -2, 0),
    "bpchar": (1042, -1, 1014),
    "varchar": (1043, -1, 1015),
    "date": (1082, 4, 1182),
    "time": (1083, 8, 1183),
    "timestamp": (1114, 8, 1115),
    "timestamptz": (1184, 8, 1185),
    "interval": (1186, 16, 1187),
    "numeric": (1700, -1, 1231),
    "uuid": (2950, 16, 2951),
    "jsonb": (3802, -1, 3807),
}


@pytest.mark.parametrize("name", PG_TYPE)
def test_oid_table(name: str) -> None:
    oid, typlen, array_oid = PG_TYPE[name]
    assert Oid[name.upper()] == oid
    c = codec(oid)
    assert (c.oid, c.name, c.typlen, c.array_oid, c.element_oid) == (
        oid,
        name,
        typlen,
        array_oid,
        0,
    )
    if array_oid:
        assert Oid[name.upper() + "_ARRAY"] == array_oid
        a = codec(array_oid)
        assert (a.oid, a.name, a.typlen, a.array_oid, a.element_oid) == (
            array_oid,
            "_" + name,
            -1,
            0,
            oid,
        )


def test_every_oid_has_a_codec() -> None:
    assert len(Oid) == 2 * len(PG_TYPE) - 1  # unknown has no array type
    for oid in Oid:
        assert isinstance(codec(oid), TypeCodec)
        assert repr(codec(oid)).startswith("<TypeCodec ")


@pytest.mark.parametrize("oid", [0, 1, 18, 600, 2**32, -1, "23", None])
def test_unknown_oid(oid: object) -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        codec(oid)  # type: ignore[arg-type]
    assert info.value.sqlstate == "42704"
    assert isinstance(info.value, PygwireError)
    assert isinstance(info.value, LookupError)


# -- known encodings ---------------------------------------------------------

# (value, oid, text, binary hex): PostgreSQL 18's output for the literal.
KNOWN: list[tuple[object, int, bytes, str]] = [
    (True, Oid.BOOL, b"t", "01"),
    (False, Oid.BOOL, b"f", "00"),
    (-32768, Oid.INT2, b"-32768", "8000"),
    (2147483647, Oid.INT4, b"2147483647", "7fffffff"),
    (-(2**63), Oid.INT8, b"-9223372036854775808", "8000000000000000"),
    (4294967295, Oid.OID, b"4294967295", "ffffffff"),
    (1.5, Oid.FLOAT8, b"1.5", "3ff8000000000000"),
    (struct.unpack("!f", bytes.fromhex("3dcccccd"))[0], Oid.FLOAT4, b"0.1", "3dcccccd"),
    (-0.0, Oid.FLOAT8, b"-0", "8000000000000000"),
    (-math.inf, Oid.FLOAT4, b"-Infinity", "ff800000"),
    (1e15, Oid.FLOAT8, b"1e+15", "430c6bf526340000"),
    (1e-5, Oid.FLOAT8, b"1e-05", "3ee4f8b588e368f1"),
    (5e-324, Oid.FLOAT8, b"5e-324", "0000000000000001"),
    (1234567.0, Oid.FLOAT4, b"1.234567e+06", "4996b438"),
    (Decimal("123456.789"), Oid.NUMERIC, b"123456.789", "0003000100000003000c0d801ed2"),
    (Decimal("-1.5"), Oid.NUMERIC, b"-1.5", "000200004000000100011388"),
    (Decimal("0.0001"), Oid.NUMERIC, b"0.0001", "0001ffff000000040001"),
    (Decimal("10000"), Oid.NUMERIC, b"10000", "00010001000000000001"),
    (Decimal("0.00"), Oid.NUMERIC, b"0.00", "0000000000000002"),
    (Decimal("Infinity"), Oid.NUMERIC, b"Infinity", "00000000d0000020"),
    (b"\x00\xff", Oid.BYTEA, b"\\x00ff", "00ff"),
    (dt.date(2000, 1, 1), Oid.DATE, b"2000-01-01", "00000000"),
    (dt.date(1999, 12, 31), Oid.DATE, b"1999-12-31", "ffffffff"),
    (Infinity.POSITIVE, Oid.DATE, b"infinity", "7fffffff"),
    (
        dt.datetime(2000, 1, 1, 0, 0, 0, 500000),
        Oid.TIMESTAMP,
        b"2000-01-01 00:00:00.5",
        "000000000007a120",
    ),
    (
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        Oid.TIMESTAMPTZ,
        b"1970-01-01 00:00:00+00",
        "fffca2fec4c82000",
    ),
    (dt.time(4, 5, 6, 789000), Oid.TIME, b"04:05:06.789", "000000036c97ca88"),
    (
        Interval(14, 3, 14706789000),
        Oid.INTERVAL,
        b"1 year 2 mons 3 days 04:05:06.789",
        "000000036c97ca88000000030000000e",
    ),
    (
        Interval(0, -1, 7380000000),
        Oid.INTERVAL,
        b"-1 days +02:03:00",
        "00000001b7e1dd00ffffffff00000000",
    ),
    (
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        Oid.UUID,
        b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
    ),
    (
        {"b": 1, "aa": [True, None]},
        Oid.JSONB,
        b'{"b": 1, "aa": [true, null]}',
        "01" + b'{"b": 1, "aa": [true, null]}'.hex(),
    ),
    (
        ["", "a b", "a,b", 'a"b', "a\\b", "{", "}", "NULL", "x", None],
        Oid.TEXT_ARRAY,
        b'{"","a b","a,b","a\\"b","a\\\\b","{","}","NULL",x,NULL}',
        "0000000100000001000000190000000a00000001000000000000000361206200000003612c62000000036122"
        "6200000003615c62000000017b000000017d000000044e554c4c0000000178ffffffff",
    ),
    (
        [1, None],
        Oid.INT4_ARRAY,
        b"{1,NULL}",
        "00000001000000010000001700000002000000010000000400000001ffffffff",
    ),
    ([], Oid.INT4_ARRAY, b"{}", "000000000000000000000017"),
    ([b"a"], Oid.BYTEA_ARRAY, b'{"\\\\x61"}', "00000001000000000000001100000001000000010000000161"),
]


def _same(a: object, b: object) -> bool:
    """Equality that treats NaN as equal to itself and keeps -0.0 apart from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return (a.is_nan() and b.is_nan()) or (a == b and str(a) == str(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(("value", "oid", "text", "binary"), KNOWN)
def test_known(value: object, oid: int, text: bytes, binary: str) -> None:
    assert encode(value, oid, TEXT) == text
    assert encode(value, oid, BINARY).hex() == binary
    assert _same(decode(text, oid, TEXT), value)
    assert _same(decode(bytes.fromhex(binary), oid, BINARY), value)
    # The codec object takes the same, also from a memoryview or bytearray.
    assert _same(codec(oid).decode(memoryview(bytes.fromhex(binary)), 1), value)
    assert _same(codec(oid).decode(bytearray(text), 0), value)


def test_special_values() -> None:
    assert encode(math.nan, Oid.FLOAT8) == b"NaN"
    assert encode(math.nan, Oid.FLOAT8, BINARY) == bytes.fromhex("7ff8000000000000")
    assert math.isnan(decode(b"NaN", Oid.FLOAT8))  # type: ignore[arg-type]
    assert encode(Decimal("NaN"), Oid.NUMERIC, BINARY).hex() == "00000000c0000000"
    assert encode(Decimal("-Infinity"), Oid.NUMERIC, BINARY).hex() == "00000000f0000020"
    assert encode(Decimal("-0.00"), Oid.NUMERIC) == b"0.00"  # numeric has no -0
    assert encode(Infinity.NEGATIVE, Oid.TIMESTAMP, BINARY).hex() == "8000000000000000"
    assert decode(b"-infinity", Oid.TIMESTAMPTZ) is Infinity.NEGATIVE
    assert encode(Interval.INFINITY, Oid.INTERVAL) == b"infinity"
    assert (
        encode(Interval.NEG_INFINITY, Oid.INTERVAL, BINARY).hex()
        == "80" + "00" * 7 + "80000000" * 2
    )
    assert decode(b"-infinity", Oid.INTERVAL) == Interval.NEG_INFINITY


# -- floats: PostgreSQL's shortest output --------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (100000000000000.0, "100000000000000"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (0.0001, "0.0001"),
        (1e100, "1e+100"),
        (1.5e300, "1.5e+300"),
        (-2.5e-10, "-2.5e-10"),
        (1e-310, "1e-310"),
        (2.0**52, "4.503599627370496e+15"),
        (0.1 + 0.2, "0.30000000000000004"),
        # Python's repr gives one digit less for these: a decimal exactly
        # halfway to the next float, which PostgreSQL never prints.
        (3.152519739159347e16, "3.1525197391593472e+16"),
        (3.092535278770144e18, "3.0925352787701443e+18"),
        (8.71910791804678e16, "8.719107918046781e+16"),
    ],
)
def test_float8_text(value: float, text: str) -> None:
    assert encode(value, Oid.FLOAT8) == text.encode()
    assert decode(text.encode(), Oid.FLOAT8) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1e-5, "1e-05"),
        (3.4028234663852886e38, "3.4028235e+38"),
    ],
)
def test_float4_text(value: float, text: str) -> None:
    assert encode(value, Oid.FLOAT4) == text.encode()
    assert decode(text.encode(), Oid.FLOAT4) == struct.unpack("!f", struct.pack("!f", value))[0]


def test_float4_rounds_like_a_cast() -> None:
    # 0.1 is not a float4: it is rounded to the nearest one, as 0.1::float8::float4 is.
    assert encode(0.1, Oid.FLOAT4, BINARY).hex() == "3dcccccd"
    with pytest.raises(ValueEncodeError) as info:
        encode(1e39, Oid.FLOAT4)
    assert info.value.sqlstate == "22003"
    with pytest.raises(ValueEncodeError):
        encode(1e-50, Oid.FLOAT4)
    with pytest.raises(ValueEncodeError):
        encode(10**400, Oid.FLOAT8)


@settings(max_examples=examples(500))
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float8_text_round_trips(value: float) -> None:
    text = encode(value, Oid.FLOAT8)
    assert _same(decode(text, Oid.FLOAT8), value)


@settings(max_examples=examples(500))
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float4_text_round_trips(value: float) -> None:
    assert _same(decode(encode(value, Oid.FLOAT4), Oid.FLOAT4), value)
    assert _same(decode(encode(value, Oid.FLOAT4, BINARY), Oid.FLOAT4, BINARY), value)


# -- text input: what PostgreSQL reads ------------------------------------------


@pytest.mark.parametrize(("text", "oid", "value"), ACCEPTED)
def test_accepted_text(text: str, oid: int, value: object) -> None:
    assert _same(decode(text.encode(), oid), value)


@pytest.mark.parametrize(("text", "oid", "sqlstate"), REFUSED)
def test_refused_text(text: str, oid: int, sqlstate: str) -> None:
    with pytest.raises(ValueDecodeError) as info:
        decode(text.encode(), oid)
    err = info.value
    assert err.oid == oid
    assert err.type_name == codec(oid).name
    assert str(err).startswith(codec(oid).name + ": ")
    assert err.sqlstate == sqlstate


@pytest.mark.parametrize(("text", "oid", "sqlstate"), REFUSED_BY_DESIGN)
def test_refused_by_design(text: str, oid: int, sqlstate: str) -> None:
    with pytest.raises(ValueDecodeError) as info:
        decode(text.encode(), oid)
    assert info.value.sqlstate == sqlstate


def test_text_must_be_utf8_without_nul() -> None:
    for oid in (Oid.TEXT, Oid.INT4, Oid.JSON, Oid.TEXT_ARRAY):
        with pytest.raises(ValueDecodeError) as info:
            decode(b"\xff", oid)
        assert info.value.sqlstate == "22021"
        with pytest.raises(ValueDecodeError):
            decode(b"a\x00b", oid)
    with pytest.raises(ValueDecodeError):
        decode(b"a\x00b", Oid.TEXT, BINARY)


# -- binary input ---------------------------------------------------------------

# (hex, oid, SQLSTATE): PostgreSQL 18 refuses each of these as a binary
# parameter.  Too few bytes make its receive function read past the value:
# "insufficient data left in message", 08P01; bytes left over are 22P03.
BAD_BINARY: list[tuple[str, int, str]] = [
    ("", Oid.BOOL, "08P01"),
    ("0100", Oid.BOOL, "22P03"),
    ("000000", Oid.INT4, "08P01"),
    ("0000000000", Oid.INT4, "22P03"),
    ("00000000", Oid.FLOAT8, "08P01"),
    ("0001000000000000" + "2710", Oid.NUMERIC, "22P03"),  # digit 10000
    ("0001000080000000" + "0001", Oid.NUMERIC, "22P03"),  # sign 0x8000
    ("0001000000004000" + "0001", Oid.NUMERIC, "22P03"),  # scale 0x4000
    ("00010000000000", Oid.NUMERIC, "08P01"),
    ("7fffffff00", Oid.DATE, "22P03"),
    ("7ffffffe", Oid.DATE, "22008"),
    ("80000001", Oid.DATE, "22008"),
    ("7ffffffffffffffe", Oid.TIMESTAMP, "22008"),
    ("000000141dd76001", Oid.TIME, "22008"),
    ("ffffffffffffffff", Oid.TIME, "22008"),
    ("00" * 15, Oid.UUID, "08P01"),
    ("00" * 15, Oid.INTERVAL, "08P01"),
    # The server reports an unknown jsonb version as an internal error
    # (XX000); here it is what it is, invalid binary data.
    ("02" + b"{}".hex(), Oid.JSONB, "22P03"),
    ("", Oid.JSONB, "08P01"),
    (b"a".hex() * 64, Oid.NAME, "42622"),
    ("000000010000000000000019000000010000000100000001", Oid.INT4_ARRAY, "42804"),
    ("00000001000000020000001700000001000000010000000400000001", Oid.INT4_ARRAY, "22P03"),
    ("000000010000000000000017000000010000000100000003000000", Oid.INT4_ARRAY, "08P01"),
    ("0000000100000000000000170000000100000001000000040000000100", Oid.INT4_ARRAY, "22P03"),
    ("00000001000000000000001700000001000000010000000300000001", Oid.INT4_ARRAY, "08P01"),
    ("ffffffff" + "00000000" + "00000017", Oid.INT4_ARRAY, "22P03"),
    ("00000007" + "00000000" + "00000017" + "0000000100000001" * 7, Oid.INT4_ARRAY, "54000"),
    ("00000001" + "00000000" + "00000017" + "ffffffff00000001", Oid.INT4_ARRAY, "54000"),
    ("ffffffff0000000000000017", Oid.INT4_ARRAY, "22P03"),
]


@pytest.mark.parametrize(("data", "oid", "sqlstate"), BAD_BINARY)
def test_bad_binary(data: str, oid: int, sqlstate: str) -> None:
    with pytest.raises(ValueDecodeError) as info:
        decode(bytes.fromhex(data), oid, BINARY)
    assert info.value.sqlstate == sqlstate


def test_binary_as_the_server_reads_it() -> None:
    # boolrecv takes any non-zero byte as true; numeric_recv truncates
    # digits its scale hides; PostgreSQL 17 intervals with some fields at
    # their limit are finite.
    assert decode(b"\x02", Oid.BOOL, BINARY) is True
    assert decode(bytes.fromhex("00020000000000000001" + "0929"), Oid.NUMERIC, BINARY) == Decimal(1)
    assert decode(bytes.fromhex("0001fffb00000002" + "0001"), Oid.NUMERIC, BINARY) == Decimal(
        "0.00"
    )
    finite = decode(struct.pack("!qii", 2**63 - 1, 0, 0), Oid.INTERVAL, BINARY)
    assert isinstance(finite, Interval)
    assert not finite.is_infinite


def test_arrays_with_other_shapes() -> None:
    empty_with_dimension = struct.pack("!iiIii", 1, 0, Oid.INT4, 0, 1)
    assert decode(empty_with_dimension, Oid.INT4_ARRAY, BINARY) == []
    two_dims = struct.pack("!iiIiiii", 2, 0, Oid.INT4, 1, 1, 1, 1) + struct.pack("!ii", 4, 7)
    with pytest.raises(ValueDecodeError) as info:
        decode(two_dims, Oid.INT4_ARRAY, BINARY)
    assert info.value.sqlstate == "0A000"
    lower_zero = struct.pack("!iiIii", 1, 0, Oid.INT4, 1, 0) + struct.pack("!ii", 4, 7)
    with pytest.raises(ValueDecodeError):
        decode(lower_zero, Oid.INT4_ARRAY, BINARY)


# -- encoding errors ----------------------------------------------------------------

# (value, oid, SQLSTATE)
BAD_VALUES: list[tuple[object, int, str]] = [
    (None, Oid.INT4, "22004"),
    ("1", Oid.INT4, "42804"),
    (True, Oid.INT4, "42804"),
    (1.0, Oid.INT8, "42804"),
    (2**15, Oid.INT2, "22003"),
    (-(2**31) - 1, Oid.INT4, "22003"),
    (2**63, Oid.INT8, "22003"),
    (-1, Oid.OID, "22003"),
    (1, Oid.BOOL, "42804"),
    ("1.5", Oid.FLOAT8, "42804"),
    (1.5, Oid.NUMERIC, "42804"),
    (Decimal("sNaN"), Oid.NUMERIC, "22P02"),
    (Decimal("NaN123"), Oid.NUMERIC, "22P02"),
    (Decimal("1E+131072"), Oid.NUMERIC, "22003"),
    (Decimal("1E-16384"), Oid.NUMERIC, "22003"),
    (b"x", Oid.TEXT, "42804"),
    ("a\x00b", Oid.TEXT, "22021"),
    ("\ud800", Oid.TEXT, "22021"),
    ("a" * 64, Oid.NAME, "42622"),
    ("x", Oid.BYTEA, "42804"),
    (dt.datetime(2000, 1, 1), Oid.DATE, "42804"),
    ("2000-01-01", Oid.DATE, "42804"),
    (dt.time(1, tzinfo=UTC), Oid.TIME, "42804"),
    (dt.datetime(2000, 1, 1, tzinfo=UTC), Oid.TIMESTAMP, "42804"),
    (dt.datetime(2000, 1, 1), Oid.TIMESTAMPTZ, "42804"),
    (dt.date(2000, 1, 1), Oid.TIMESTAMP, "42804"),
    (30, Oid.INTERVAL, "42804"),
    ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", Oid.UUID, "42804"),
    ({1: 2}, Oid.JSONB, "42804"),
    ({"a": math.nan}, Oid.JSON, "22P02"),
    ({"a": {1, 2}}, Oid.JSON, "42804"),
    ({"a": "\x00"}, Oid.JSONB, "22P05"),
    ("x", Oid.TEXT_ARRAY, "42804"),
    ([[1]], Oid.INT4_ARRAY, "0A000"),
    ([1, "2"], Oid.INT4_ARRAY, "42804"),
    ([1, 2**40], Oid.INT4_ARRAY, "22003"),
]


@pytest.mark.parametrize(("value", "oid", "sqlstate"), BAD_VALUES)
def test_bad_values(value: object, oid: int, sqlstate: str) -> None:
    for fmt in (TEXT, BINARY):
        with pytest.raises(ValueEncodeError) as info:
            encode(value, oid, fmt)
        err = info.value
        assert (err.sqlstate, err.oid, err.type_name) == (sqlstate, oid, codec(oid).name)
        assert isinstance(err, PygwireError)
        assert isinstance(err, ValueError)


def test_array_errors_name_the_element() -> None:
    with pytest.raises(ValueEncodeError, match="element 1"):
        encode([1, 2**40], Oid.INT4_ARRAY)
    with pytest.raises(ValueDecodeError, match="element 2"):
        decode(b"{1,2,x}", Oid.INT4_ARRAY)


def test_self_containing_json() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueEncodeError) as info:
        encode(loop, Oid.JSON)
    assert info.value.sqlstate == "54001"
    with pytest.raises(ValueDecodeError):
        decode(b"[" * 100_000, Oid.JSONB)


def test_unsupported_format_code() -> None:
    with pytest.raises(ValueEncodeError) as enc:
        encode(1, Oid.INT4, 2)
    with pytest.raises(ValueDecodeError) as dec:
        decode(b"1", Oid.INT4, 2)
    assert enc.value.sqlstate == dec.value.sqlstate == "22023"


def test_json_none_is_json_null() -> None:
    assert encode(None, Oid.JSON) == b"null"
    assert encode(None, Oid.JSONB, BINARY) == b"\x01null"
    assert decode(b"null", Oid.JSON) is None


def test_jsonb_text_is_canonical() -> None:
    # jsonb prints keys by length, then bytewise, and numbers as numeric does.
    value = {
        "é": "x\x01/\t",
        "aa": [1, 2.5, {}],
        "b": None,
        "c": 1e20,
        "d": Decimal("1E-7"),
        "e": -0.0,
    }
    assert (
        encode(value, Oid.JSONB)
        == (
            '{"b": null, "c": 100000000000000000000, "d": 0.0000001, "e": 0.0, '
            '"aa": [1, 2.5, {}], "é": "x\\u0001/\\t"}'
        ).encode()
    )
    assert decode(encode(value, Oid.JSON), Oid.JSON) == {**value, "d": 1e-7}


def test_big_integers_in_json() -> None:
    big = 10**5000
    assert decode(encode([big], Oid.JSON), Oid.JSON) == [big]
    # (str(big) itself would pass int()'s digit limit)
    assert decode(str(Decimal(big)).encode(), Oid.JSONB) == big


# -- dates and times ---------------------------------------------------------------


def test_dates_beyond_datetime() -> None:
    # Valid PostgreSQL values that datetime cannot hold fail with 22008.
    for text in (b"4714-11-24 BC", b"5874897-12-31"):
        with pytest.raises(ValueDecodeError) as info:
            decode(text, Oid.DATE)
        assert info.value.sqlstate == "22008"
    with pytest.raises(ValueDecodeError, match="BC"):
        decode(bytes.fromhex("fff49d7b"), Oid.DATE, BINARY)
    with pytest.raises(ValueDecodeError):
        decode(b"24:00:00", Oid.TIME)
    with pytest.raises(ValueDecodeError):
        decode(bytes.fromhex("000000141dd76000"), Oid.TIME, BINARY)


def test_aware_datetimes_far_out() -> None:
    # Near datetime's limits an offset moves the instant outside them; the
    # text is still what PostgreSQL prints for that instant.
    early = dt.datetime(1, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    assert encode(early, Oid.TIMESTAMPTZ) == b"0001-12-31 20:00:00+00 BC"
    late = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=5)))
    assert encode(late, Oid.TIMESTAMPTZ) == b"10000-01-01 04:00:00+00"
    with pytest.raises(ValueDecodeError):
        decode(encode(late, Oid.TIMESTAMPTZ, BINARY), Oid.TIMESTAMPTZ, BINARY)


def test_timestamptz_decodes_to_utc() -> None:
    value = decode(b"2020-06-01 12:00:00+02", Oid.TIMESTAMPTZ)
    assert isinstance(value, dt.datetime)
    assert value.tzinfo is UTC
    assert value == dt.datetime(2020, 6, 1, 10, tzinfo=UTC)
    # A zone-less text is read in the session time zone, UTC.
    assert decode(b"2020-06-01 12:00:00", Oid.TIMESTAMPTZ) == dt.datetime(
        2020, 6, 1, 12, tzinfo=UTC
    )


# -- Interval ------------------------------------------------------------------------


def test_interval_type() -> None:
    iv = Interval.from_timedelta(dt.timedelta(days=-1, seconds=5, microseconds=7))
    assert iv == Interval(0, -1, 5_000_007)
    assert iv.to_timedelta() == dt.timedelta(days=-1, seconds=5, microseconds=7)
    assert encode(dt.timedelta(hours=25), Oid.INTERVAL) == b"1 day 01:00:00"
    with pytest.raises(TypeCodecError):
        Interval(1).to_timedelta()
    with pytest.raises(TypeCodecError):
        Interval.INFINITY.to_timedelta()
    with pytest.raises(TypeCodecError):
        Interval(0, 2**31 - 2).to_timedelta()
    with pytest.raises(TypeCodecError):
        Interval(2**31)
    with pytest.raises(TypeCodecError):
        Interval(0, 0, 1.5)  # type: ignore[arg-type]
    assert Interval.INFINITY.is_infinite
    assert not Interval(1, 2, 3).is_infinite


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (Interval(), "00:00:00"),
        (Interval(0, 1), "1 day"),
        (Interval(0, 2), "2 days"),
        (Interval(0, -1, -1_000_000), "-1 days -00:00:01"),
        (Interval(-(2**31)), "-178956970 years -8 mons"),
        (Interval(2**31 - 1, 0, 0), "178956970 years 7 mons"),
        (Interval(0, 0, 2**63 - 1), "2562047788:00:54.775807"),
        (Interval(0, 0, -(2**63)), "-2562047788:00:54.775808"),
        (Interval(0, 2**31 - 1, 2**63 - 1), "2147483647 days 2562047788:00:54.775807"),
        (Interval(18, 0, 0), "1 year 6 mons"),
        (Interval(1, 15, 0), "1 mon 15 days"),
        (Interval(0, 1, 43_200_000_000), "1 day 12:00:00"),
    ],
)
def test_interval_text(interval: Interval, text: str) -> None:
    assert encode(interval, Oid.INTERVAL) == text.encode()
    assert decode(text.encode(), Oid.INTERVAL) == interval


# -- infer_oid -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "oid"),
    [
        (None, Oid.TEXT),
        (True, Oid.BOOL),
        (1, Oid.INT4),
        (2**31, Oid.INT8),
        (-(2**63), Oid.INT8),
        (2**63, Oid.NUMERIC),
        (1.5, Oid.FLOAT8),
        (Decimal(1), Oid.NUMERIC),
        ("x", Oid.TEXT),
        (b"x", Oid.BYTEA),
        (memoryview(b"x"), Oid.BYTEA),
        (dt.date(2000, 1, 1), Oid.DATE),
        (dt.datetime(2000, 1, 1), Oid.TIMESTAMP),
        (dt.datetime(2000, 1, 1, tzinfo=UTC), Oid.TIMESTAMPTZ),
        (dt.time(1), Oid.TIME),
        (dt.timedelta(1), Oid.INTERVAL),
        (Interval(1), Oid.INTERVAL),
        (uuid.UUID(int=0), Oid.UUID),
        ({"a": 1}, Oid.JSONB),
        ([1, None, 2], Oid.INT4_ARRAY),
        ([1, 2**40], Oid.INT8_ARRAY),
        ((2**40, 2**70), Oid.NUMERIC_ARRAY),
        ([], Oid.TEXT_ARRAY),
        ([None], Oid.TEXT_ARRAY),
        (["a"], Oid.TEXT_ARRAY),
        ([{"a": 1}], Oid.JSONB_ARRAY),
        ([dt.datetime(2000, 1, 1, tzinfo=UTC)], Oid.TIMESTAMPTZ_ARRAY),
    ],
)
def test_infer_oid(value: object, oid: int) -> None:
    assert infer_oid(value) == oid
    if value is not None:
        # The chosen type takes the value.
        encode(value, oid)


@pytest.mark.parametrize(
    "value",
    [object(), dt.time(1, tzinfo=UTC), Infinity.POSITIVE, [1, "a"], [[1]], [1.5, 1], {1, 2}],
)
def test_infer_oid_refuses(value: object) -> None:
    with pytest.raises(UnsupportedTypeError):
        infer_oid(value)


# -- round trips and fuzzing ---------------------------------------------------------

_TEXTS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
_AWARE = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXTS, inner, max_size=4),
    max_leaves=10,
)


def _numeric_ok(value: Decimal) -> bool:
    """Within numeric's limits: 16383 digits after the point, 131072 before."""
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -16383 and value.adjusted() < 131072


SCALARS: dict[int, st.SearchStrategy[object]] = {
    Oid.BOOL: st.booleans(),
    Oid.INT2: st.integers(-(2**15), 2**15 - 1),
    Oid.INT4: st.integers(-(2**31), 2**31 - 1),
    Oid.INT8: st.integers(-(2**63), 2**63 - 1),
    Oid.OID: st.integers(0, 2**32 - 1),
    Oid.FLOAT8: st.floats(),
    Oid.FLOAT4: st.floats(width=32),
    Oid.NUMERIC: st.decimals(allow_nan=False, allow_infinity=False).filter(_numeric_ok)
    | st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]),
    Oid.TEXT: _TEXTS,
    Oid.VARCHAR: _TEXTS,
    Oid.BPCHAR: _TEXTS,
    Oid.UNKNOWN: _TEXTS,
    Oid.NAME: _TEXTS.filter(lambda s: len(s.encode()) < 64),
    Oid.BYTEA: st.binary(),
    Oid.DATE: st.dates() | st.sampled_from(list(Infinity)),
    Oid.TIME: st.times(),
    Oid.TIMESTAMP: st.datetimes() | st.sampled_from(list(Infinity)),
    Oid.TIMESTAMPTZ: _AWARE | st.sampled_from(list(Infinity)),
    Oid.INTERVAL: st.builds(
        Interval,
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-(2**63), 2**63 - 1),
    ),
    Oid.UUID: st.uuids(),
    Oid.JSON: _JSON,
    Oid.JSONB: _JSON,
}


def _normal(value: object, oid: int) -> object:
    """What decoding gives back for an encoded value.

    numeric has no negative zero and no negative display scale: 1E+3
    comes back as 1000.
    """
    if oid == Oid.NUMERIC and isinstance(value, Decimal) and value.is_finite():
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent > 0:
            return Decimal(int(value))
        return value.copy_abs() if value.is_zero() else value
    return value


def _json_same(a: object, b: object) -> bool:
    """JSON equality: jsonb keeps numbers as decimals, so 1e20 may come back as an int."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_same(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b) and not isinstance(b, bool)
    return type(a) is type(b) and a == b


@settings(max_examples=examples(60))
@given(st.data())
@pytest.mark.parametrize("oid", sorted(SCALARS))
def test_round_trip(oid: int, data: st.DataObject) -> None:
    same = _json_same if oid in (Oid.JSON, Oid.JSONB) else _same
    value = data.draw(SCALARS[oid])
    expected = _normal(value, oid)
    for fmt in (TEXT, BINARY):
        assert same(decode(encode(value, oid, fmt), oid, fmt), expected)
    array = data.draw(st.lists(SCALARS[oid] | st.none(), max_size=5))
    array_oid = codec(oid).array_oid
    if array_oid:
        for fmt in (TEXT, BINARY):
            back = decode(encode(array, array_oid, fmt), array_oid, fmt)
            assert isinstance(back, list)
            expected_list = [None if v is None else _normal(v, oid) for v in array]
            assert len(back) == len(expected_list)
            for got, want in zip(back, expected_list, strict=True):
                assert (got is None and want is None) or same(got, want)


@settings(max_examples=examples(40))
@given(data=st.binary(max_size=40), fmt=st.sampled_from([0, 1]))
@pytest.mark.parametrize("oid", sorted(Oid))
def test_decoding_garbage_raises_only_value_decode_error(oid: int, data: bytes, fmt: int) -> None:
    with contextlib.suppress(ValueDecodeError):
        decode(data, oid, fmt)


# Characters that mean something to one input syntax or another.
_SYNTAX = st.text(
    alphabet='0123456789_-+.:eExXoObBpP {}[]=,"\\\tTZzNULinfaty@PYMWDHS()é\x0b', max_size=30
)


@settings(max_examples=examples(150))
@given(text=_SYNTAX)
@pytest.mark.parametrize("oid", sorted(Oid))
def test_decoding_text_garbage_raises_only_value_decode_error(oid: int, text: str) -> None:
    with contextlib.suppress(ValueDecodeError):
        decode(text.encode(), oid)


def test_decode_wants_bytes() -> None:
    with pytest.raises(ValueDecodeError):
        decode("1", Oid.INT4)  # type: ignore[arg-type]


@settings(max_examples=examples(200))
@given(st.text(alphabet='{}",\\ aNUL\t1[]:=-', max_size=20))
def test_array_text_garbage(text: str) -> None:
    with contextlib.suppress(ValueDecodeError):
        decode(text.encode(), Oid.TEXT_ARRAY)
