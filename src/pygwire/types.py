"""PostgreSQL type OIDs and value codecs, in text and binary format, both ways.

A server built on pygwire describes its result columns with type OIDs and
sizes (RowDescription), sends values as bytes (DataRow) and reads the
parameters a client binds (Bind), each in text format (code 0) or binary
format (code 1).  This module turns Python values into those bytes and
back, for the common built-in types and their one-dimensional arrays:

======================  ==========================================
PostgreSQL type         Python value
======================  ==========================================
bool                    :class:`bool`
int2, int4, int8, oid   :class:`int` (range-checked)
float4, float8          :class:`float` (NaN and the infinities too)
numeric                 :class:`decimal.Decimal` (also NaN, ±Infinity)
text, varchar, bpchar,  :class:`str`
name, unknown
bytea                   :class:`bytes` (bytearray, memoryview accepted)
date                    :class:`datetime.date` or :class:`Infinity`
time                    :class:`datetime.time` (naive)
timestamp               naive :class:`datetime.datetime` or :class:`Infinity`
timestamptz             aware :class:`datetime.datetime` (UTC on decode)
                        or :class:`Infinity`
interval                :class:`Interval` (:class:`datetime.timedelta`
                        accepted)
uuid                    :class:`uuid.UUID`
json, jsonb             what :mod:`json` reads and writes
``T[]``                 :class:`list` of T's values, None for NULL
======================  ==========================================

Text format is what PostgreSQL prints with its default session settings
and UTF-8 client encoding: ``extra_float_digits = 1`` (shortest exact
float output), ``DateStyle = ISO``, ``TimeZone = UTC``,
``IntervalStyle = postgres`` and ``bytea_output = hex``.  Binary format is
each type's send/recv representation.

Decoding follows PostgreSQL's input and receive functions and refuses
what they refuse: wrong lengths, trailing bytes and invalid text raise
:class:`ValueDecodeError`, which names the type and carries the SQLSTATE
PostgreSQL reports, so that a server can answer with the same error.
Encoding refuses a value of the wrong Python type or out of the type's
range with :class:`ValueEncodeError`.  None is SQL NULL and has no
encoding (send a NULL column or parameter), except for json and jsonb,
where it is JSON ``null``.

Decisions where PostgreSQL and Python differ:

* ``infinity`` and ``-infinity`` dates and timestamps decode to
  :attr:`Infinity.POSITIVE` and :attr:`Infinity.NEGATIVE` (and encode
  from them); an infinite interval is :attr:`Interval.INFINITY`.
* Dates and timestamps outside the years 1-9999 (BC dates, years past
  9999) are valid PostgreSQL values that :mod:`datetime` cannot hold:
  decoding them raises :class:`ValueDecodeError` (SQLSTATE 22008), and so
  does the time ``24:00:00``.  Encoding an aware datetime near those
  limits still gives the server's text for that instant (``... BC``).
* timestamp takes naive datetimes, timestamptz aware ones (converted to
  UTC); the other kind is refused rather than guessed.  timestamptz
  decodes to datetimes in UTC, and text without an offset is read in UTC,
  the session time zone assumed here.
* Text input for date, time, timestamp(tz) and interval is a subset of
  what PostgreSQL reads: the ISO forms it prints (``2000-01-31``,
  ``T`` or space before the time, numeric offsets, ``Z``/``UTC``/``GMT``,
  ``BC``, ``epoch``, ``infinity``) and, for intervals, the postgres style
  (``1 year -2 days +03:04:05``, with ``@`` and ``ago``) and ISO 8601
  designators (``P1Y2M3DT4H5M6S``).  Forms whose meaning depends on
  settings or on time zone rules (``01/02/2000``, ``today``, zone names)
  and fractional interval units other than seconds and milliseconds are
  refused (SQLSTATE 22007), never guessed.
* float4 takes any Python float and rounds it to the nearest float4, as
  a float8-to-float4 cast does; a value that would become infinite or
  zero is refused.  ``nan(...)`` with a payload is refused (glibc's
  strtod keeps the payload, which a Python float would not show).
* numeric takes Decimal or int; signalling NaN and NaN payloads are
  refused, negative zero becomes zero and a positive exponent becomes
  zeros (``1E+3`` is ``1000``), as numeric stores no negative scale.
* name refuses values of 64 bytes or more on encode; on text input it
  truncates them to 63 bytes, as PostgreSQL's namein does.
* json and jsonb read and write through :mod:`json`: non-integer numbers
  decode to float (one beyond float's range is refused), duplicate keys
  keep the last value, and a lone surrogate escape (``"\\ud800"``, valid
  json, not jsonb) is refused, as no UTF-8 string can hold it.  jsonb text
  is written as the server prints it (keys by length, then bytes;
  numbers as numeric prints them).
* One-dimensional arrays only, with lower bound 1 (PostgreSQL's default);
  others raise :class:`ValueDecodeError` (SQLSTATE 0A000).
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import re
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final, NoReturn

from .exceptions import PygwireError

__all__ = [
    "Format",
    "Infinity",
    "Interval",
    "Oid",
    "TypeCodec",
    "TypeCodecError",
    "UnsupportedTypeError",
    "ValueDecodeError",
    "ValueEncodeError",
    "codec",
    "decode",
    "encode",
    "infer_oid",
]


# ---------------------------------------------------------------------------
# Public enums, value types and errors
# ---------------------------------------------------------------------------


class Oid(enum.IntEnum):
    """Type OIDs of the built-in types this module converts (from ``pg_type``).

    Every type but ``unknown`` (which has none) has its one-dimensional
    array type alongside, named ``<TYPE>_ARRAY``.
    """

    BOOL = 16
    BYTEA = 17
    NAME = 19
    INT8 = 20
    INT2 = 21
    INT4 = 23
    TEXT = 25
    OID = 26
    JSON = 114
    FLOAT4 = 700
    FLOAT8 = 701
    UNKNOWN = 705
    BPCHAR = 1042
    VARCHAR = 1043
    DATE = 1082
    TIME = 1083
    TIMESTAMP = 1114
    TIMESTAMPTZ = 1184
    INTERVAL = 1186
    NUMERIC = 1700
    UUID = 2950
    JSONB = 3802

    JSON_ARRAY = 199
    BOOL_ARRAY = 1000
    BYTEA_ARRAY = 1001
    NAME_ARRAY = 1003
    INT2_ARRAY = 1005
    INT4_ARRAY = 1007
    TEXT_ARRAY = 1009
    BPCHAR_ARRAY = 1014
    VARCHAR_ARRAY = 1015
    INT8_ARRAY = 1016
    FLOAT4_ARRAY = 1021
    FLOAT8_ARRAY = 1022
    OID_ARRAY = 1028
    TIMESTAMP_ARRAY = 1115
    DATE_ARRAY = 1182
    TIME_ARRAY = 1183
    TIMESTAMPTZ_ARRAY = 1185
    INTERVAL_ARRAY = 1187
    NUMERIC_ARRAY = 1231
    UUID_ARRAY = 2951
    JSONB_ARRAY = 3807


class Format(enum.IntEnum):
    """A format code of the extended query protocol (Bind, RowDescription)."""

    TEXT = 0
    BINARY = 1


class Infinity(enum.Enum):
    """PostgreSQL's ``infinity`` and ``-infinity`` dates and timestamps.

    :mod:`datetime` has no infinite values, so these two members stand for
    them: decoding an infinite date, timestamp or timestamptz gives one of
    them, and encoding one gives PostgreSQL's infinite value of the target
    type.  The member's value is PostgreSQL's spelling.
    """

    POSITIVE = "infinity"
    NEGATIVE = "-infinity"


class TypeCodecError(PygwireError, ValueError):
    """A value and a PostgreSQL type do not go together.

    ``type_name`` is PostgreSQL's name of the type (``int4``, ``_text``),
    ``oid`` its OID (0 when not known), ``reason`` what is wrong, and
    ``sqlstate`` the error code PostgreSQL reports for the same fault
    (22P02 invalid text, 22P03 invalid binary data, 22003 out of range,
    22008 date/time out of range, ...), ready for an ErrorResponse.
    """

    def __init__(self, type_name: str, reason: str, *, oid: int = 0, sqlstate: str) -> None:
        super().__init__(f"{type_name}: {reason}")
        self.type_name = type_name
        self.oid = oid
        self.reason = reason
        self.sqlstate = sqlstate


class ValueDecodeError(TypeCodecError):
    """Bytes that are not a valid value of the type in the given format."""


class ValueEncodeError(TypeCodecError):
    """A Python value that the type cannot represent, or of the wrong kind."""


class UnsupportedTypeError(TypeCodecError, LookupError):
    """No codec for this OID, or no default type for this Python value."""


#: PostgreSQL's isspace(): the C locale's six whitespace characters.
_WS: Final = " \t\n\r\v\f"

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _check_int(value: object, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeCodecError("interval", f"{what} must be an int", sqlstate="42804")
    if not lo <= value <= hi:
        raise TypeCodecError("interval", f"{what} {value} is out of range", sqlstate="22008")
    return int(value)


@dataclass(frozen=True, slots=True)
class Interval:
    """A PostgreSQL interval: months, days and microseconds, kept apart.

    PostgreSQL keeps the three fields separate because a month has no
    fixed number of days and a day has no fixed number of seconds (time
    zone changes), so ``1 mon`` is neither ``30 days`` nor ``720:00:00``.
    The fields are signed, each on its own: ``-1 days +02:00:00`` is
    ``Interval(days=-1, microseconds=7_200_000_000)``.  Months and days
    are 32-bit, microseconds 64-bit, as on the server.
    :attr:`INFINITY` and :attr:`NEG_INFINITY` are PostgreSQL's (17+)
    infinite intervals.
    """

    months: int = 0
    days: int = 0
    microseconds: int = 0

    INFINITY: ClassVar[Interval]
    NEG_INFINITY: ClassVar[Interval]

    def __post_init__(self) -> None:
        _check_int(self.months, _I32_MIN, _I32_MAX, "months")
        _check_int(self.days, _I32_MIN, _I32_MAX, "days")
        _check_int(self.microseconds, _I64_MIN, _I64_MAX, "microseconds")

    @classmethod
    def from_timedelta(cls, delta: _dt.timedelta) -> Interval:
        """The interval of ``delta``'s days and time (no months).

        Days stay days, as PostgreSQL converts ``'1 day'::interval``: the
        seconds and microseconds become the time part.
        """
        return cls(0, delta.days, delta.seconds * 1_000_000 + delta.microseconds)

    @property
    def is_infinite(self) -> bool:
        """True for :attr:`INFINITY` and :attr:`NEG_INFINITY`."""
        return self in (Interval.INFINITY, Interval.NEG_INFINITY)

    def to_timedelta(self) -> _dt.timedelta:
        """The interval as a :class:`datetime.timedelta`, counting a day as 24 hours.

        Raises :class:`TypeCodecError` for an interval with months (which
        have no fixed length), an infinite one, or one beyond timedelta's
        range.
        """
        if self.is_infinite:
            raise TypeCodecError(
                "interval", "an infinite interval has no timedelta", sqlstate="22008"
            )
        if self.months:
            raise TypeCodecError(
                "interval", "an interval with months has no fixed length", sqlstate="22008"
            )
        try:
            return _dt.timedelta(days=self.days, microseconds=self.microseconds)
        except OverflowError:
            raise TypeCodecError(
                "interval", "beyond the range of datetime.timedelta", sqlstate="22008"
            ) from None


Interval.INFINITY = Interval(_I32_MAX, _I32_MAX, _I64_MAX)
Interval.NEG_INFINITY = Interval(_I32_MIN, _I32_MIN, _I64_MIN)


# ---------------------------------------------------------------------------
# Internal failure signal: helpers raise _Bad, TypeCodec adds the type name
# ---------------------------------------------------------------------------


class _Bad(Exception):
    """A conversion failed; the codec re-raises it with its type's name."""

    def __init__(self, reason: str, sqlstate: str = "22P02") -> None:
        super().__init__(reason)
        self.reason = reason
        self.sqlstate = sqlstate


def _bad(reason: str, sqlstate: str = "22P02") -> NoReturn:
    raise _Bad(reason, sqlstate)


def _syntax(text: str) -> NoReturn:
    # Like PostgreSQL's 'invalid input syntax for type X: "..."'; long
    # inputs are shortened so an error message stays readable.
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise _Bad(f"invalid input syntax: {shown!r}", "22P02")


def _wrong_type(value: object, expected: str) -> NoReturn:
    raise _Bad(f"expected {expected}, got {type(value).__name__}", "42804")


_Prepare = Callable[[object], object]
_ToText = Callable[[object], str]
_FromText = Callable[[str], object]
_ToBinary = Callable[[object], bytes]
_FromBinary = Callable[[bytes], object]

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I64 = struct.Struct("!q")
_U64 = struct.Struct("!Q")
_F32 = struct.Struct("!f")
_F64 = struct.Struct("!d")


def _check_length(data: bytes, size: int) -> None:
    """A fixed-size binary value must be exactly ``size`` bytes.

    The server reads a value that is too short past its end, which it
    reports as a protocol violation (08P01); one that is too long leaves
    bytes over, an invalid binary representation (22P03).
    """
    if len(data) < size:
        _bad(f"insufficient data left in message: {size} bytes needed, {len(data)} sent", "08P01")
    if len(data) > size:
        _bad(f"incorrect binary data format: {len(data) - size} bytes too many", "22P03")


def _unpack(st: struct.Struct, data: bytes) -> int:
    _check_length(data, st.size)
    return int(st.unpack(data)[0])


# ---------------------------------------------------------------------------
# bool
# ---------------------------------------------------------------------------


def _bool_prepare(value: object) -> object:
    if not isinstance(value, bool):
        _wrong_type(value, "bool")
    return value


def _bool_to_text(value: object) -> str:
    return "t" if value else "f"


def _bool_to_binary(value: object) -> bytes:
    return b"\x01" if value else b"\x00"


def _bool_from_text(text: str) -> bool:
    # boolin: surrounding whitespace; any non-empty prefix of true, false,
    # yes, no; 'on'; 'of' or 'off'; '1' and '0'; case-insensitive.
    s = text.strip(_WS).lower()
    if s and s.isascii():
        if "true".startswith(s) or "yes".startswith(s) or s in ("on", "1"):
            return True
        if "false".startswith(s) or "no".startswith(s) or s in ("of", "off", "0"):
            return False
    _syntax(text)


def _bool_from_binary(data: bytes) -> bool:
    _check_length(data, 1)
    # boolrecv takes any non-zero byte as true.
    return data[0] != 0


# ---------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------

# PostgreSQL 16+ integer input: decimal with single underscores between
# digits, or 0x / 0o / 0b with an underscore allowed before any digit.
# Matched as a prefix: the server reads the digits first (an overflow there
# is reported as such) and only then finds junk after them.
_INT_RE = re.compile(
    r"[ \t\n\r\v\f]*([+-]?)(?:"
    r"0[xX]((?:_?[0-9a-fA-F])+)|0[oO]((?:_?[0-7])+)|0[bB]((?:_?[01])+)|([0-9]+(?:_[0-9]+)*)"
    r")"
)


def _parse_int(text: str) -> tuple[int, bool] | None:
    """The integer PostgreSQL reads (big ones capped), and whether only
    whitespace follows it; None if no integer starts the text."""
    m = _INT_RE.match(text)
    if m is None:
        return None
    clean = not text[m.end() :].strip(_WS)
    sign, hexd, octd, bind, decd = m.groups()
    for digits, base, bits in ((hexd, 16, 4), (octd, 8, 3), (bind, 2, 1), (decd, 10, 0)):
        if digits is None:
            continue
        digits = digits.replace("_", "").lstrip("0") or "0"
        # Anything this long is out of every integer type's range; capping
        # it avoids converting huge strings (and int()'s digit limit).
        too_long = len(digits) > 25 if base == 10 else len(digits) * bits > 80
        value = 2**80 if too_long else int(digits, base)
        return (-value if sign == "-" else value), clean
    return None  # pragma: no cover - the pattern has one of the four groups


def _int_codec_parts(
    lo: int, hi: int, st: struct.Struct, kind: str
) -> tuple[_Prepare, _ToText, _FromText, _ToBinary, _FromBinary]:
    def prepare(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            _wrong_type(value, "int")
        if not lo <= value <= hi:
            _bad(f"{value} is out of range for type {kind}", "22003")
        return int(value)

    def to_text(value: object) -> str:
        return str(value)

    def from_text(text: str) -> int:
        # Plain decimal digits, what servers and drivers send, skip the full
        # grammar (int() alone would also take underscores and non-ASCII digits).
        body = text[1:] if text[:1] == "-" else text
        if body.isdigit() and body.isascii() and len(body) <= 18:
            value, clean = int(text), True
        else:
            parsed = _parse_int(text)
            if parsed is None:
                _syntax(text)
            value, clean = parsed
        if not lo <= value <= hi:
            _bad(f"value {text.strip(_WS)!r} is out of range for type {kind}", "22003")
        if not clean:
            _syntax(text)
        return value

    def to_binary(value: object) -> bytes:
        return st.pack(value)

    def from_binary(data: bytes) -> int:
        return _unpack(st, data)

    return prepare, to_text, from_text, to_binary, from_binary


# oidin reads with strtoul(base 0): optional sign, 0x hex, leading-0 octal.
_OID_RE = re.compile(r"[ \t\n\r\v\f]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[ \t\n\r\v\f]*")


def _oid_from_text(text: str) -> int:
    m = _OID_RE.fullmatch(text)
    if m is None:
        _syntax(text)
    sign, digits = m.groups()
    if digits[:2] in ("0x", "0X"):
        body, base = digits[2:].lstrip("0") or "0", 16
    else:
        body, base = digits.lstrip("0") or "0", 8 if digits.startswith("0") else 10
    if len(body) > 25:
        _bad(f"value {text.strip(_WS)!r} is out of range for type oid", "22003")
    value = int(body, base)
    # strtoul works modulo 2**64 and negates after reading; oidin then
    # accepts what fits in 32 bits, unsigned or as a sign-extended int32.
    if value >= 2**64:
        _bad(f"value {text.strip(_WS)!r} is out of range for type oid", "22003")
    if sign == "-":
        value = (2**64 - value) % 2**64
    if value < 2**32:
        return value
    if value >= 2**64 - 2**31:
        return value - (2**64 - 2**32)
    _bad(f"value {text.strip(_WS)!r} is out of range for type oid", "22003")


# ---------------------------------------------------------------------------
# Floating point
# ---------------------------------------------------------------------------


def _float_parts(x: float, single: bool) -> tuple[int, int, bool]:
    """Positive finite non-zero ``x`` as ``m * 2**e``, and whether the gap below is halved."""
    if single:
        bits = _U32.unpack(_F32.pack(x))[0] & 0x7FFFFFFF
        ieee_exp, mant, mbits, bias = bits >> 23, bits & 0x7FFFFF, 23, 127
    else:
        bits = _U64.unpack(_F64.pack(x))[0] & 0x7FFFFFFFFFFFFFFF
        ieee_exp, mant, mbits, bias = bits >> 52, bits & (2**52 - 1), 52, 1023
    if ieee_exp == 0:
        return mant, 1 - bias - mbits, False
    # At a power of two the next float down is half as far away as the
    # next one up (except at the smallest normal exponent).
    return (1 << mbits) | mant, ieee_exp - bias - mbits, mant == 0 and ieee_exp > 1


def _shortest_exact(x: float, single: bool) -> tuple[int, int]:
    """Shortest ``(n, k)`` with ``n * 10**k`` strictly inside ``x``'s rounding interval.

    PostgreSQL's float output (Ryu, with STRICTLY_SHORTEST off) never
    prints a decimal that lies exactly halfway to a neighbouring float,
    so the interval is open; of the shortest candidates it takes the one
    nearest to ``x``.  Exact integer arithmetic throughout.
    """
    m, e, halved = _float_parts(x, single)
    # Bounds in units of 2**(e - 2): x = 4m, the halfway points 4m ± 2
    # (4m - 1 below a power of two).
    lo_q, x_q, hi_q = 4 * m - (1 if halved else 2), 4 * m, 4 * m + 2
    e2 = e - 2
    p2, q2 = (1 << e2, 1) if e2 >= 0 else (1, 1 << -e2)
    k = math.floor(math.log10(hi_q) + e2 * math.log10(2)) + 1
    while True:
        p10, q10 = (10**k, 1) if k >= 0 else (1, 10**-k)
        # Compare everything as integers: value * q2 * q10.
        lo, xv, hi = lo_q * p2 * q10, x_q * p2 * q10, hi_q * p2 * q10
        unit = p10 * q2
        if (lo // unit + 1) * unit < hi:
            best = None
            base = xv // unit
            for n in (base, base + 1):
                if lo < n * unit < hi:
                    dist = abs(n * unit - xv)
                    if best is None or dist < best[0] or (dist == best[0] and n % 2 == 0):
                        best = (dist, n)
            assert best is not None
            n = best[1]
            while n % 10 == 0:
                n //= 10
                k += 1
            return n, k
        k -= 1


def _repr_digits(x: float) -> tuple[int, int]:
    """``repr(x)`` (positive, finite, non-zero) as ``(n, k)`` without trailing zeros."""
    mant, _, exp = repr(x).partition("e")
    whole, _, frac = mant.partition(".")
    n = int(whole + frac)
    k = (int(exp) if exp else 0) - len(frac)
    while n % 10 == 0:
        n //= 10
        k += 1
    return n, k


def _float8_digits(x: float) -> tuple[int, int]:
    n, k = _repr_digits(x)
    # repr() may print a decimal that lies exactly halfway between two
    # floats (it reads ties to even); PostgreSQL never does.  Such a
    # halfway point is a dyadic rational, which a decimal n * 10**k with
    # k < 0 can only be if 5**-k divides n: anything else is safe.
    if k < 0 and (k < -24 or n % 5**-k):
        return n, k
    if k >= 0 and x < 2.0**53:
        return n, k  # floats this small are spaced at most 1 apart: no halfway integer
    return _shortest_exact(x, single=False)


def _format_float(x: float, single: bool) -> str:
    """PostgreSQL's float4out / float8out with extra_float_digits > 0."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign = "-" if x < 0 else ""
    x = abs(x)
    n, k = _shortest_exact(x, True) if single else _float8_digits(x)
    digits = str(n)
    sci = k + len(digits) - 1
    # Fixed notation when the decimal exponent is in [-4, 6) for float4 and
    # [-4, 15) for float8, as printf's %g would choose; else d.ddde±XX.
    if -4 <= sci < (6 if single else 15):
        if k >= 0:
            return sign + digits + "0" * k
        if len(digits) > -k:
            return f"{sign}{digits[:k]}.{digits[k:]}"
        return f"{sign}0.{'0' * (-k - len(digits))}{digits}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if sci < 0 else '+'}{abs(sci):02d}"


# What strtod reads, matched as a prefix like strtod (longest form first):
# the server reports a value out of range before any junk after it.
_FLOAT_RE = re.compile(
    r"[ \t\n\r\v\f]*(?P<sign>[+-]?)(?:"
    r"0[xX](?P<hex>(?P<hint>[0-9a-fA-F]+)\.?(?P<hfrac>[0-9a-fA-F]*)|\.(?P<hfrac2>[0-9a-fA-F]+))"
    r"(?:[pP](?P<hexp>[+-]?[0-9]+))?"
    r"|(?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|(?P<nan>[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)"
    r"|(?P<dec>(?P<int>[0-9]+)\.?(?P<frac>[0-9]*)|\.(?P<frac2>[0-9]+))(?:[eE](?P<exp>[+-]?[0-9]+))?"
    r")"
)


def _round_rational_f32(a: int, b: int) -> float:
    """The float4 nearest to ``a / b`` (> 0), ties to even; inf on overflow."""
    e = a.bit_length() - b.bit_length()
    if (a << max(0, -e)) < (b << max(0, e)):
        e -= 1  # now 2**e <= a/b < 2**(e+1)
    e = max(e, -126)  # denormals share the smallest normal exponent
    shift = 23 - e
    num, den = (a << shift, b) if shift >= 0 else (a, b << -shift)
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    if e - 23 + q.bit_length() > 128:
        return math.inf
    return math.ldexp(q, e - 23)


def _sticky(digits: str, keep: int) -> tuple[str, int]:
    """Cut a digit string to ``keep`` digits plus a sticky non-zero digit.

    Rounding to float4 depends only on which side of each halfway point
    a value lies, and every float4 halfway point has far fewer than
    ``keep`` significant digits, so the cut never changes the result.
    Returns the digits and how many were dropped.
    """
    if len(digits) <= keep:
        return digits, 0
    rest = digits[keep:]
    return digits[:keep] + ("1" if rest.strip("0") else "0"), len(rest) - 1


def _float_from_text(text: str, single: bool) -> float:
    kind = "real" if single else "double precision"
    m = _FLOAT_RE.match(text)
    if m is None:
        _syntax(text)
    junk = bool(text[m.end() :].strip(_WS))
    negative = m["sign"] == "-"
    if junk and (m["nan"] is not None or m["inf"] is not None):
        _syntax(text)
    if m["nan"] is not None:
        if m["nan"].endswith(")") and not m["nan"].endswith("()"):
            # glibc's strtod puts the digits of nan(...) into the NaN's
            # payload, which the server then sends on; not reproduced.
            _bad(f"NaN payloads are not supported: {text.strip(_WS)!r}", "0A000")
        # The sign survives in a NaN's bits, and the server keeps it.
        return -math.nan if negative else math.nan
    if m["inf"] is not None:
        return -math.inf if negative else math.inf
    if m["dec"] is not None:
        whole = m["int"] or ""
        frac = m["frac"] if m["int"] is not None else m["frac2"]
        exp = _capped_int(m["exp"], 10**9) if m["exp"] else 0
        digits = (whole + frac).lstrip("0")
        scale = exp - len(frac)
        approx = float(f"{whole or '0'}.{frac or '0'}e{exp}") if digits else 0.0
        if single and digits and 1e-47 < approx < 1e40:
            kept, dropped = _sticky(digits, 120)
            scale += dropped
            n = int(kept)
            a, b = (n * 10**scale, 1) if scale >= 0 else (n, 10**-scale)
            value = _round_rational_f32(a, b)
        else:
            value = approx
    else:
        hint = m["hint"] or ""
        hfrac = m["hfrac"] if m["hint"] is not None else m["hfrac2"]
        hexp = _capped_int(m["hexp"], 10**9) if m["hexp"] else 0
        digits = (hint + hfrac).lstrip("0")
        # Keep 40 hex digits and a sticky bit for the rest: more than any
        # float's precision, so the rounding is the same.
        n = int(digits[:40] or "0", 16) * 2 + (1 if digits[40:].strip("0") else 0)
        scale = hexp - 4 * len(hfrac) + 4 * max(0, len(digits) - 40) - 1
        if not digits:
            value = 0.0
        elif n.bit_length() + scale > 1100:
            value = math.inf
        elif n.bit_length() + scale < -1200:
            value = 0.0
        elif single:
            a, b = (n << scale, 1) if scale >= 0 else (n, 1 << -scale)
            value = _round_rational_f32(a, b)
        else:
            try:
                value = math.ldexp(float(n), scale) if n < 2**53 else _hex_f64(n, scale)
            except OverflowError:
                value = math.inf
    if math.isinf(value):
        _bad(f"{text.strip(_WS)!r} is out of range for type {kind}", "22003")
    if value == 0.0 and digits:
        _bad(f"{text.strip(_WS)!r} is out of range for type {kind}", "22003")
    if single and digits and value != 0:
        # Round the parsed double to float4 (exact already when the exact
        # path above ran, and then a no-op).
        value = _to_f32(value, kind, text)
    if junk:
        _syntax(text)
    return -value if negative else value


def _hex_f64(n: int, scale: int) -> float:
    """``n * 2**scale`` rounded to the nearest double, ties to even."""
    return float.fromhex(f"{n:x}p{scale}")


def _to_f32(value: float, kind: str, text: str) -> float:
    try:
        rounded: float = _F32.unpack(_F32.pack(value))[0]
    except OverflowError:
        _bad(f"{text.strip(_WS)!r} is out of range for type {kind}", "22003")
    if rounded == 0.0 and value != 0.0:
        _bad(f"{text.strip(_WS)!r} is out of range for type {kind}", "22003")
    return rounded


def _float_codec_parts(
    single: bool,
) -> tuple[_Prepare, _ToText, _FromText, _ToBinary, _FromBinary]:
    st = _F32 if single else _F64
    kind = "real" if single else "double precision"

    def prepare(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _wrong_type(value, "float")
        try:
            x = float(value)
        except OverflowError:
            _bad(f"{value} is out of range for type {kind}", "22003")
        if single and math.isfinite(x):
            # float8 -> float4 as PostgreSQL casts: round to nearest, and
            # refuse what would become infinite or zero.
            try:
                x = _F32.unpack(_F32.pack(x))[0]
            except OverflowError:
                _bad(f"{value!r} is out of range for type real", "22003")
            if x == 0.0 and value != 0:
                _bad(f"{value!r} is out of range for type real (underflow)", "22003")
        return x

    def to_text(value: object) -> str:
        assert isinstance(value, float)
        return _format_float(value, single)

    def from_text(text: str) -> float:
        return _float_from_text(text, single)

    def to_binary(value: object) -> bytes:
        return st.pack(value)

    def from_binary(data: bytes) -> float:
        _check_length(data, st.size)
        result: float = st.unpack(data)[0]
        return result

    return prepare, to_text, from_text, to_binary, from_binary


# ---------------------------------------------------------------------------
# numeric
# ---------------------------------------------------------------------------

_NUMERIC_POS, _NUMERIC_NEG = 0x0000, 0x4000
_NUMERIC_NAN, _NUMERIC_PINF, _NUMERIC_NINF = 0xC000, 0xD000, 0xF000
_NUMERIC_MAX_INT_DIGITS = 131072  # weight <= 32767 in base-10000 digits
_NUMERIC_MAX_DSCALE = 0x3FFF
_NBASE = 10000
# ndigits, weight, sign, dscale.  The digit count is unsigned: the widest
# numeric has 36864 base-10000 digits, and the server sends that count in
# 16 bits and reads it back unsigned.
_NUMERIC_HEAD = "!HhHH"

_NUMERIC_SPECIAL_RE = re.compile(
    r"[ \t\n\r\v\f]*(?:(?P<nan>[nN][aA][nN])"
    r"|(?P<sign>[+-]?)(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?))[ \t\n\r\v\f]*"
)
_NUMERIC_RE = re.compile(
    r"[ \t\n\r\v\f]*(?P<sign>[+-]?)(?:"
    r"0[xX](?P<hex>(?:_?[0-9a-fA-F])+)|0[oO](?P<oct>(?:_?[0-7])+)|0[bB](?P<bin>(?:_?[01])+)"
    r"|(?:(?P<int>[0-9]+(?:_[0-9]+)*)(?:\.(?P<frac>(?:[0-9]+(?:_[0-9]+)*)?))?"
    r"|\.(?P<frac2>[0-9]+(?:_[0-9]+)*))"
    r"(?:[eE](?P<exp>[+-]?[0-9]+(?:_[0-9]+)*))?"
    r")[ \t\n\r\v\f]*"
)


def _capped_int(text: str, cap: int) -> int:
    """``int(text)`` for a signed decimal string, clamped to ``[-cap, cap]``.

    Exponents only matter up to a bound, and clamping first keeps huge
    digit strings away from int() (and its digit limit).
    """
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > len(str(cap)):
        return -cap if text.startswith("-") else cap
    value = int(text)
    return max(-cap, min(cap, value))


def _make_decimal(negative: bool, digits: str, dscale: int) -> Decimal:
    """``digits`` (a non-empty decimal string) with ``dscale`` of them after the point."""
    digits = digits.lstrip("0") or "0"
    if digits == "0":
        negative = False  # numeric has no negative zero
    return Decimal((1 if negative else 0, tuple(map(int, digits)), -dscale))


def _numeric_check(int_digits: int, dscale: int) -> None:
    if int_digits > _NUMERIC_MAX_INT_DIGITS or dscale > _NUMERIC_MAX_DSCALE:
        _bad("value overflows numeric format", "22003")


def _numeric_prepare(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        _wrong_type(value, "decimal.Decimal or int")
    d = Decimal(value)
    if d.is_snan():
        _bad("a signalling NaN has no numeric value", "22P02")
    if d.is_nan():
        if d.as_tuple().digits:
            _bad("a NaN with a payload has no numeric value", "22P02")
        return Decimal("NaN")
    if d.is_infinite():
        return d
    _, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    significant = len(digits) - next((i for i, v in enumerate(digits) if v), len(digits))
    _numeric_check(significant + exponent if significant else 0, max(0, -exponent))
    return d


def _numeric_to_text(value: object) -> str:
    assert isinstance(value, Decimal)
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "-Infinity" if value < 0 else "Infinity"
    text = format(value, "f")
    return text[1:] if value.is_zero() and text.startswith("-") else text


def _numeric_from_text(text: str) -> Decimal:
    special = _NUMERIC_SPECIAL_RE.fullmatch(text)
    if special is not None:
        if special["nan"] is not None:
            return Decimal("NaN")
        return Decimal("-Infinity" if special["sign"] == "-" else "Infinity")
    m = _NUMERIC_RE.fullmatch(text)
    if m is None:
        _syntax(text)
    negative = m["sign"] == "-"
    for group, base, bits in (("hex", 16, 4), ("oct", 8, 3), ("bin", 2, 1)):
        if m[group] is not None:
            body = m[group].replace("_", "").lstrip("0") or "0"
            # Power-of-two bases convert without int()'s decimal digit
            # limit; the length check keeps the conversion bounded.
            if len(body) * bits > _NUMERIC_MAX_INT_DIGITS * 3.33 + 8:
                _bad("value overflows numeric format", "22003")
            digits = str(Decimal(int(body, base)))
            _numeric_check(len(digits.lstrip("0")), 0)
            return _make_decimal(negative, digits, 0)
    whole = (m["int"] or "").replace("_", "")
    frac = (m["frac"] if m["int"] is not None else m["frac2"]) or ""
    frac = frac.replace("_", "")
    # numeric_in refuses exponents beyond INT_MAX / 2 outright.
    exp = _capped_int((m["exp"] or "0").replace("_", ""), 2**31 // 2)
    if abs(exp) >= 2**31 // 2:
        _bad("value overflows numeric format", "22003")
    # The value is int(whole + frac) * 10**scale.
    scale = exp - len(frac)
    significant = (whole + frac).lstrip("0")
    dscale = max(0, -scale)
    _numeric_check(len(significant) + scale if significant else 0, dscale)
    if not significant:
        return _make_decimal(negative, "0", dscale)
    return _make_decimal(negative, significant + "0" * max(0, scale), dscale)


def _numeric_to_binary(value: object) -> bytes:
    assert isinstance(value, Decimal)
    if value.is_nan():
        return struct.pack(_NUMERIC_HEAD, 0, 0, _NUMERIC_NAN, 0)
    if value.is_infinite():
        # numeric_send reports a display scale of 32 for the infinities (a
        # by-product of how the server stores them); clients ignore it, and
        # sending the same keeps the bytes identical to PostgreSQL's.
        return struct.pack(_NUMERIC_HEAD, 0, 0, _NUMERIC_NINF if value < 0 else _NUMERIC_PINF, 32)
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    dscale = max(0, -exponent)
    text = "".join(map(str, digit_tuple))
    if exponent > 0:
        text += "0" * exponent
        exponent = 0
    elif len(text) < -exponent:
        text = "0" * (-exponent - len(text)) + text  # 1E-4: the point is left of the digits
    int_part, frac_part = text[: len(text) + exponent], text[len(text) + exponent :]
    int_part = int_part.lstrip("0")
    # Group the decimal digits in fours around the point: base-10000 digits.
    int_part = "0" * (-len(int_part) % 4) + int_part
    frac_part += "0" * (-len(frac_part) % 4)
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    # The server stores no leading or trailing zero digits.
    start = 0
    while start < len(groups) and groups[start] == 0:
        start += 1
        weight -= 1
    end = len(groups)
    while end > start and groups[end - 1] == 0:
        end -= 1
    groups = groups[start:end]
    if not groups:
        return struct.pack(_NUMERIC_HEAD, 0, 0, _NUMERIC_POS, dscale)
    head = struct.pack(
        _NUMERIC_HEAD, len(groups), weight, _NUMERIC_NEG if sign else _NUMERIC_POS, dscale
    )
    return head + struct.pack(f"!{len(groups)}h", *groups)


def _numeric_from_binary(data: bytes) -> Decimal:
    _check_length(data[:8], 8)
    ndigits, weight, sign, dscale = struct.unpack_from(_NUMERIC_HEAD, data)
    _check_length(data, 8 + 2 * ndigits)
    digits = struct.unpack_from(f"!{ndigits}h", data, 8)
    if any(not 0 <= d < _NBASE for d in digits):
        _bad('invalid digit in external "numeric" value', "22P03")
    if sign == _NUMERIC_NAN:
        return Decimal("NaN")
    if sign == _NUMERIC_PINF:
        return Decimal("Infinity")
    if sign == _NUMERIC_NINF:
        return Decimal("-Infinity")
    if sign not in (_NUMERIC_POS, _NUMERIC_NEG):
        _bad('invalid sign in external "numeric" value', "22P03")
    if dscale > _NUMERIC_MAX_DSCALE:
        _bad('invalid scale in external "numeric" value', "22P03")
    # Decimal digits of the base-10000 digits, with the point after
    # (weight + 1) groups; groups before the first sent one are zeros.
    text = "".join(f"{d:04d}" for d in digits)
    point = 4 * (weight + 1)
    if point < 0:
        text = "0" * -point + text
        point = 0
    elif point > len(text):
        text += "0" * (point - len(text))
    int_part, frac_part = text[:point], text[point:]
    # numeric_recv truncates digits the display scale hides.
    frac_part = frac_part[:dscale] + "0" * (dscale - len(frac_part))
    int_digits = len(int_part.lstrip("0"))
    if int_digits > _NUMERIC_MAX_INT_DIGITS:
        _bad("value overflows numeric format", "22P03")
    return _make_decimal(sign == _NUMERIC_NEG, (int_part or "0") + frac_part, dscale)


# ---------------------------------------------------------------------------
# Character types, bytea, uuid
# ---------------------------------------------------------------------------


def _str_prepare(value: object) -> object:
    if not isinstance(value, str):
        _wrong_type(value, "str")
    if "\x00" in value:
        _bad("a NUL character cannot be stored in PostgreSQL text", "22021")
    return value


def _str_identity(value: object) -> str:
    assert isinstance(value, str)
    return value


def _str_from_text(text: str) -> str:
    return text


def _str_to_binary(value: object) -> bytes:
    assert isinstance(value, str)
    return _utf8(value)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        _bad(f"not encodable as UTF-8: {exc.reason}", "22021")


def _from_utf8(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _bad(
            f'invalid byte sequence for encoding "UTF8" at byte {exc.start}: {exc.reason}', "22021"
        )
    if "\x00" in text:
        _bad('invalid byte sequence for encoding "UTF8": 0x00', "22021")
    return text


_NAMEDATALEN = 64


def _name_prepare(value: object) -> object:
    _str_prepare(value)
    assert isinstance(value, str)
    if len(_utf8(value)) >= _NAMEDATALEN:
        _bad(f"longer than {_NAMEDATALEN - 1} bytes", "42622")
    return value


def _name_from_text(text: str) -> str:
    # namein truncates to 63 bytes, at a character boundary.
    raw = _utf8(text)
    if len(raw) < _NAMEDATALEN:
        return text
    return raw[: _NAMEDATALEN - 1].decode("utf-8", errors="ignore")


def _name_from_binary(data: bytes) -> str:
    text = _from_utf8(data)
    if len(data) >= _NAMEDATALEN:
        _bad("identifier too long", "42622")
    return text


def _bytea_prepare(value: object) -> object:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        _wrong_type(value, "bytes")
    return bytes(value)


def _bytea_to_text(value: object) -> str:
    assert isinstance(value, bytes)
    return "\\x" + value.hex()


_HEX_SKIP = " \t\n\r"  # hex_decode skips these between digit pairs
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX_ONLY = re.compile(r"[0-9a-fA-F]*")


def _bytea_from_text(text: str) -> bytes:
    if text.startswith("\\x"):
        body = text[2:]
        if _HEX_ONLY.fullmatch(body) and len(body) % 2 == 0:
            return bytes.fromhex(body)  # the usual case, without a loop
        out = bytearray()
        i = 0
        while i < len(body):
            if body[i] in _HEX_SKIP:
                i += 1
                continue
            if body[i] not in _HEX_DIGITS:
                _bad(f"invalid hexadecimal digit: {body[i]!r}", "22023")
            if i + 1 == len(body):
                _bad("invalid hexadecimal data: odd number of digits", "22023")
            if body[i + 1] not in _HEX_DIGITS:
                _bad(f"invalid hexadecimal digit: {body[i + 1]!r}", "22023")
            out.append(int(body[i : i + 2], 16))
            i += 2
        return bytes(out)
    # Escape format: \\ is a backslash, \ooo an octal byte (first digit
    # 0-3), any other backslash is an error; other characters stand for
    # their own (UTF-8) bytes.
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            j = text.find("\\", i)
            j = len(text) if j < 0 else j
            out += _utf8(text[i:j])
            i = j
            continue
        if text[i + 1 : i + 2] == "\\":
            out.append(0x5C)
            i += 2
            continue
        octal = text[i + 1 : i + 4]
        if (
            len(octal) == 3
            and octal[0] in "0123"
            and octal[1] in "01234567"
            and octal[2] in "01234567"
        ):
            out.append(int(octal, 8))
            i += 4
            continue
        _bad("invalid input syntax for type bytea", "22P02")
    return bytes(out)


def _bytes_identity(value: object) -> bytes:
    assert isinstance(value, bytes)
    return value


def _bytes_from_binary(data: bytes) -> bytes:
    return bytes(data)


def _uuid_prepare(value: object) -> object:
    if not isinstance(value, uuid.UUID):
        _wrong_type(value, "uuid.UUID")
    return value


def _uuid_to_text(value: object) -> str:
    return str(value)


# string_to_uuid: optional braces, 32 hex digits, an optional hyphen after
# any group of four digits but the last.
_UUID_RE = re.compile(r"(\{?)((?:[0-9a-fA-F]{4}-?){7}[0-9a-fA-F]{4})(\}?)")


def _uuid_from_text(text: str) -> uuid.UUID:
    m = _UUID_RE.fullmatch(text)
    if m is None or (m[1] == "{") != (m[3] == "}"):
        _syntax(text)
    return uuid.UUID(hex=m[2].replace("-", ""))


def _uuid_to_binary(value: object) -> bytes:
    assert isinstance(value, uuid.UUID)
    return value.bytes


def _uuid_from_binary(data: bytes) -> uuid.UUID:
    _check_length(data, 16)
    return uuid.UUID(bytes=bytes(data))


# ---------------------------------------------------------------------------
# Dates and times
# ---------------------------------------------------------------------------

_USECS_PER_DAY: Final = 86_400_000_000
_USECS_PER_HOUR: Final = 3_600_000_000
_USECS_PER_MINUTE: Final = 60_000_000
_USECS_PER_SEC: Final = 1_000_000
_ORDINAL_2000: Final = 730120  # date(2000, 1, 1).toordinal()
# PostgreSQL's range: 4714-11-24 BC (Julian day 0) up to, not including,
# 5874898-01-01 for dates and 294277-01-01 for timestamps.
_DATE_MIN, _DATE_END = -2451545, 2145031949
_TS_MIN, _TS_END = -211813488000000000, 9223371331200000000
# datetime's range, in the same units.
_PY_DATE_MIN = 1 - _ORDINAL_2000
_PY_DATE_MAX = _dt.date.max.toordinal() - _ORDINAL_2000
_PY_TS_MIN = _PY_DATE_MIN * _USECS_PER_DAY
_PY_TS_END = (_PY_DATE_MAX + 1) * _USECS_PER_DAY
_EPOCH_2000 = _dt.datetime(2000, 1, 1)
_UTC = _dt.UTC


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 2000-01-01 of a proleptic Gregorian date (year 0 is 1 BC)."""
    # Count from 0000-03-01 so that the leap day ends each 4-year cycle.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of :func:`_days_from_civil`."""
    z = days + 730425
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _format_date(days: int) -> tuple[str, bool]:
    """ISO text of a day number, and whether it is BC (the suffix goes last)."""
    year, month, day = _civil_from_days(days)
    bc = year <= 0
    return f"{1 - year if bc else year:04d}-{month:02d}-{day:02d}", bc


def _format_time(usecs: int) -> str:
    """HH:MM:SS[.ffffff] of a non-negative time of day, fraction trimmed."""
    hours, rest = divmod(usecs, _USECS_PER_HOUR)
    minutes, rest = divmod(rest, _USECS_PER_MINUTE)
    seconds, fraction = divmod(rest, _USECS_PER_SEC)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + f".{fraction:06d}".rstrip("0") if fraction else text


_DATE_PART = r"(?P<year>[0-9]{4,})-(?P<month>[0-9]{1,2})-(?P<day>[0-9]{1,2})"
_TIME_PART = (
    r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{1,2})"
    r"(?::(?P<second>[0-9]{1,2})(?:\.(?P<fraction>[0-9]*))?)?"
)
_ZONE_PART = (
    r"(?P<zone>[zZ]|[uU][tT][cC]|[gG][mM][tT]"
    r"|(?P<zsign>[+-])(?P<zh>[0-9]{1,2})(?::(?P<zm>[0-9]{2})(?::(?P<zs>[0-9]{2}))?|(?P<zm2>[0-9]{2}))?)"
)
_SP = r"[ \t\n\r\v\f]*"
_DATE_RE = re.compile(rf"{_SP}{_DATE_PART}(?:{_SP}(?P<era>[bB][cC]|[aA][dD]))?{_SP}")
_TIME_RE = re.compile(rf"{_SP}{_TIME_PART}{_SP}")
_TIMESTAMP_RE = re.compile(
    rf"{_SP}{_DATE_PART}(?:(?:[ \t\n\r\v\f]+|[tT]){_TIME_PART})?"
    rf"(?:{_SP}{_ZONE_PART})?(?:{_SP}(?P<era>[bB][cC]|[aA][dD]))?{_SP}"
)


def _special_date(text: str) -> Infinity | str | None:
    word = text.strip(_WS).lower()
    if word in ("infinity", "+infinity"):
        return Infinity.POSITIVE
    if word == "-infinity":
        return Infinity.NEGATIVE
    if word == "epoch":
        return "epoch"
    return None


def _parse_date_fields(m: re.Match[str]) -> int:
    """Day number of a matched ISO date, checked as PostgreSQL checks it."""
    year_digits = m["year"].lstrip("0") or "0"
    if len(year_digits) > 9:
        _bad("date out of range", "22008")
    year, month, day = int(year_digits), int(m["month"]), int(m["day"])
    if year == 0:
        _bad("date/time field value out of range: year 0", "22008")
    if (m["era"] or "").lower() == "bc":
        year = 1 - year
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        _bad(f"date/time field value out of range: {m[0].strip(_WS)!r}", "22008")
    return _days_from_civil(year, month, day)


def _parse_time_fields(m: re.Match[str], allow_24: bool) -> int:
    """Microseconds since midnight of a matched time (24:00:00 only if allowed)."""
    if m["hour"] is None:
        return 0
    hour, minute = int(m["hour"]), int(m["minute"])
    second = int(m["second"] or 0)
    fraction = m["fraction"] or ""
    usec = 0
    if fraction:
        # PostgreSQL reads the fraction as a double and rounds it to
        # microseconds (rint: half to even); the same double arithmetic here
        # gives the same rounding.
        usec = round(float("0." + fraction) * 1_000_000)
    if minute > 59 or second > 59 or hour > 24:
        _bad(f"date/time field value out of range: {m[0].strip(_WS)!r}", "22008")
    total = ((hour * 60 + minute) * 60 + second) * _USECS_PER_SEC + usec
    if hour == 24 and (total != _USECS_PER_DAY or not allow_24):
        _bad(f"date/time field value out of range: {m[0].strip(_WS)!r}", "22008")
    return total


def _zone_offset(m: re.Match[str]) -> int:
    """A matched UTC offset in seconds (east positive)."""
    if m["zone"] is None or m["zsign"] is None:
        return 0
    hours = int(m["zh"])
    minutes = int(m["zm"] or m["zm2"] or 0)
    seconds = int(m["zs"] or 0)
    # PostgreSQL accepts offsets below 16 hours (TZDISP_LIMIT).
    if minutes > 59 or seconds > 59 or hours > 15:
        _bad(f"time zone displacement out of range: {m[0].strip(_WS)!r}", "22009")
    offset = (hours * 60 + minutes) * 60 + seconds
    return -offset if m["zsign"] == "-" else offset


def _date_prepare(value: object) -> object:
    if isinstance(value, Infinity):
        return value
    if isinstance(value, _dt.datetime) or not isinstance(value, _dt.date):
        _wrong_type(value, "datetime.date or Infinity")
    return value.toordinal() - _ORDINAL_2000


def _date_to_text(value: object) -> str:
    if isinstance(value, Infinity):
        return value.value
    assert isinstance(value, int)
    text, bc = _format_date(value)
    return text + " BC" if bc else text


def _date_from_days(days: int) -> _dt.date:
    if not _PY_DATE_MIN <= days <= _PY_DATE_MAX:
        year = _civil_from_days(days)[0]
        era = f"{1 - year} BC" if year <= 0 else str(year)
        _bad(f"the year {era} is outside datetime.date's range", "22008")
    return _dt.date.fromordinal(days + _ORDINAL_2000)


def _date_from_text(text: str) -> _dt.date | Infinity:
    special = _special_date(text)
    if isinstance(special, Infinity):
        return special
    if special == "epoch":
        return _dt.date(1970, 1, 1)
    m = _DATE_RE.fullmatch(text)
    if m is None:
        _bad(f"invalid input syntax for type date: {text!r}", "22007")
    days = _parse_date_fields(m)
    if not _DATE_MIN <= days < _DATE_END:
        _bad("date out of range", "22008")
    return _date_from_days(days)


def _date_to_binary(value: object) -> bytes:
    if value is Infinity.POSITIVE:
        return _I32.pack(_I32_MAX)
    if value is Infinity.NEGATIVE:
        return _I32.pack(_I32_MIN)
    return _I32.pack(value)


def _date_from_binary(data: bytes) -> _dt.date | Infinity:
    days = _unpack(_I32, data)
    if days == _I32_MAX:
        return Infinity.POSITIVE
    if days == _I32_MIN:
        return Infinity.NEGATIVE
    if not _DATE_MIN <= days < _DATE_END:
        _bad("date out of range", "22008")
    return _date_from_days(days)


def _time_prepare(value: object) -> object:
    if not isinstance(value, _dt.time):
        _wrong_type(value, "datetime.time")
    if value.utcoffset() is not None:
        _bad("an aware datetime.time needs timetz, which this module does not cover", "42804")
    return (
        (value.hour * 60 + value.minute) * 60 + value.second
    ) * _USECS_PER_SEC + value.microsecond


def _time_to_text(value: object) -> str:
    assert isinstance(value, int)
    return _format_time(value)


def _time_from_usecs(usecs: int) -> _dt.time:
    if usecs == _USECS_PER_DAY:
        _bad("24:00:00 is a valid time but not a datetime.time", "22008")
    hours, rest = divmod(usecs, _USECS_PER_HOUR)
    minutes, rest = divmod(rest, _USECS_PER_MINUTE)
    seconds, micro = divmod(rest, _USECS_PER_SEC)
    return _dt.time(hours, minutes, seconds, micro)


def _time_from_text(text: str) -> _dt.time:
    m = _TIME_RE.fullmatch(text)
    if m is None:
        _bad(f"invalid input syntax for type time: {text!r}", "22007")
    return _time_from_usecs(_parse_time_fields(m, allow_24=True))


def _time_to_binary(value: object) -> bytes:
    return _I64.pack(value)


def _time_from_binary(data: bytes) -> _dt.time:
    usecs = _unpack(_I64, data)
    if not 0 <= usecs <= _USECS_PER_DAY:
        _bad("time out of range", "22008")
    return _time_from_usecs(usecs)


def _timestamp_prepare_parts(value: object, aware: bool) -> object:
    if isinstance(value, Infinity):
        return value
    if not isinstance(value, _dt.datetime):
        _wrong_type(value, "datetime.datetime or Infinity")
    offset = value.utcoffset()
    if aware and offset is None:
        _bad("a naive datetime has no instant for timestamptz; give it a tzinfo", "42804")
    if not aware and offset is not None:
        _bad("an aware datetime for timestamp would lose its offset; use timestamptz", "42804")
    naive = value.replace(tzinfo=None)
    delta = naive - _EPOCH_2000
    usecs = (delta.days * 86400 + delta.seconds) * _USECS_PER_SEC + delta.microseconds
    if offset is not None:
        usecs -= (offset.days * 86400 + offset.seconds) * _USECS_PER_SEC + offset.microseconds
    return usecs


def _timestamp_prepare(value: object) -> object:
    return _timestamp_prepare_parts(value, aware=False)


def _timestamptz_prepare(value: object) -> object:
    return _timestamp_prepare_parts(value, aware=True)


def _format_timestamp(value: object, zone: str) -> str:
    if isinstance(value, Infinity):
        return value.value
    assert isinstance(value, int)
    days, usecs = divmod(value, _USECS_PER_DAY)
    text, bc = _format_date(days)
    text = f"{text} {_format_time(usecs)}{zone}"
    return text + " BC" if bc else text


def _timestamp_to_text(value: object) -> str:
    return _format_timestamp(value, "")


def _timestamptz_to_text(value: object) -> str:
    return _format_timestamp(value, "+00")


def _timestamp_from_usecs(usecs: int, aware: bool) -> _dt.datetime:
    if not _PY_TS_MIN <= usecs < _PY_TS_END:
        year = _civil_from_days(usecs // _USECS_PER_DAY)[0]
        era = f"{1 - year} BC" if year <= 0 else str(year)
        _bad(f"the year {era} is outside datetime.datetime's range", "22008")
    naive = _EPOCH_2000 + _dt.timedelta(microseconds=usecs)
    return naive.replace(tzinfo=_UTC) if aware else naive


def _timestamp_from_text_parts(text: str, aware: bool) -> _dt.datetime | Infinity:
    special = _special_date(text)
    if isinstance(special, Infinity):
        return special
    if special == "epoch":
        return _timestamp_from_usecs(-946684800 * _USECS_PER_SEC, aware)
    m = _TIMESTAMP_RE.fullmatch(text)
    if m is None:
        kind = "timestamp with time zone" if aware else "timestamp without time zone"
        _bad(f"invalid input syntax for type {kind}: {text!r}", "22007")
    # The zone is checked first, as the server does.  timestamp ignores it,
    # as PostgreSQL does; for timestamptz a missing zone means the
    # session's, UTC here.
    offset = _zone_offset(m)
    days = _parse_date_fields(m)
    usecs = days * _USECS_PER_DAY + _parse_time_fields(m, allow_24=True)
    if aware:
        usecs -= offset * _USECS_PER_SEC
    if not _TS_MIN <= usecs < _TS_END:
        _bad("timestamp out of range", "22008")
    return _timestamp_from_usecs(usecs, aware)


def _timestamp_from_text(text: str) -> _dt.datetime | Infinity:
    return _timestamp_from_text_parts(text, aware=False)


def _timestamptz_from_text(text: str) -> _dt.datetime | Infinity:
    return _timestamp_from_text_parts(text, aware=True)


def _timestamp_to_binary(value: object) -> bytes:
    if value is Infinity.POSITIVE:
        return _I64.pack(_I64_MAX)
    if value is Infinity.NEGATIVE:
        return _I64.pack(_I64_MIN)
    return _I64.pack(value)


def _timestamp_from_binary_parts(data: bytes, aware: bool) -> _dt.datetime | Infinity:
    usecs = _unpack(_I64, data)
    if usecs == _I64_MAX:
        return Infinity.POSITIVE
    if usecs == _I64_MIN:
        return Infinity.NEGATIVE
    if not _TS_MIN <= usecs < _TS_END:
        _bad("timestamp out of range", "22008")
    return _timestamp_from_usecs(usecs, aware)


def _timestamp_from_binary(data: bytes) -> _dt.datetime | Infinity:
    return _timestamp_from_binary_parts(data, aware=False)


def _timestamptz_from_binary(data: bytes) -> _dt.datetime | Infinity:
    return _timestamp_from_binary_parts(data, aware=True)


# ---------------------------------------------------------------------------
# interval
# ---------------------------------------------------------------------------


def _interval_prepare(value: object) -> object:
    if isinstance(value, _dt.timedelta):
        try:
            return Interval.from_timedelta(value)
        except TypeCodecError as exc:
            _bad(exc.reason, "22008")
    if not isinstance(value, Interval):
        _wrong_type(value, "Interval or datetime.timedelta")
    return value


def _interval_to_text(value: object) -> str:
    """IntervalStyle postgres: ``1 year 2 mons -3 days +04:05:06.7``."""
    assert isinstance(value, Interval)
    if value == Interval.INFINITY:
        return "infinity"
    if value == Interval.NEG_INFINITY:
        return "-infinity"
    # C division truncates toward zero, so both parts take the sign.
    years = abs(value.months) // 12 * (1 if value.months >= 0 else -1)
    months = value.months - years * 12
    parts: list[str] = []
    before_negative = False  # the previous field was negative: "+" marks a positive one
    for amount, unit in ((years, "year"), (months, "mon"), (value.days, "day")):
        if amount == 0:
            continue
        plus = "+" if before_negative and amount > 0 else ""
        parts.append(f"{plus}{amount} {unit}{'' if amount == 1 else 's'}")
        before_negative = amount < 0
    usecs = value.microseconds
    if not parts or usecs:
        sign = "-" if usecs < 0 else "+" if before_negative else ""
        parts.append(sign + _format_time(abs(usecs)))
    return " ".join(parts)


_INTERVAL_UNITS: Final[dict[str, str]] = {
    **dict.fromkeys(("us", "usec", "usecs", "microsecond", "microseconds"), "microsecond"),
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), "millisecond"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "second"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minute"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hour"),
    **dict.fromkeys(("d", "day", "days"), "day"),
    **dict.fromkeys(("w", "week", "weeks"), "week"),
    **dict.fromkeys(("mon", "mons", "month", "months"), "month"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "year"),
    **dict.fromkeys(("decade", "decades"), "decade"),
    **dict.fromkeys(("century", "centuries"), "century"),
    **dict.fromkeys(("millennium", "millennia"), "millennium"),
}
# unit -> (field, multiplier): field 0 months, 1 days, 2 microseconds.
_UNIT_SCALE: Final[dict[str, tuple[int, int]]] = {
    "microsecond": (2, 1),
    "millisecond": (2, 1000),
    "second": (2, _USECS_PER_SEC),
    "minute": (2, _USECS_PER_MINUTE),
    "hour": (2, _USECS_PER_HOUR),
    "day": (1, 1),
    "week": (1, 7),
    "month": (0, 1),
    "year": (0, 12),
    "decade": (0, 120),
    "century": (0, 1200),
    "millennium": (0, 12000),
}
_INTERVAL_ITEM_RE = re.compile(
    r"(?P<time>(?P<tsign>[+-]?)(?P<th>[0-9]{1,19}):(?P<tm>[0-9]{1,2})"
    r"(?::(?P<ts>[0-9]{1,2})(?:\.(?P<tf>[0-9]{0,6}))?)?(?![0-9.:]))"
    r"|(?P<num>[+-]?[0-9]{1,19})(?:\.(?P<frac>[0-9]{0,6}))?[ \t\n\r\v\f]*(?P<unit>[a-z]+)"
)
_ISO_INTERVAL_RE = re.compile(
    r"p(?:(?P<y>[+-]?[0-9]{1,19})y)?(?:(?P<mo>[+-]?[0-9]{1,19})m)?(?:(?P<w>[+-]?[0-9]{1,19})w)?"
    r"(?:(?P<d>[+-]?[0-9]{1,19})d)?"
    r"(?:t(?:(?P<h>[+-]?[0-9]{1,19})h)?(?:(?P<mi>[+-]?[0-9]{1,19})m)?"
    r"(?:(?P<s>[+-]?[0-9]{1,19})(?:\.(?P<sf>[0-9]{0,6}))?s)?)?"
)


class _IntervalSum:
    """Accumulates interval fields, failing as PostgreSQL does on overflow."""

    def __init__(self) -> None:
        self.fields = [0, 0, 0]
        self.seen: set[str] = set()

    def add(self, field: int, amount: int) -> None:
        limit = (_I32_MIN, _I32_MAX) if field < 2 else (_I64_MIN, _I64_MAX)
        if not limit[0] <= amount <= limit[1]:
            _bad("interval field value out of range", "22015")
        total = self.fields[field] + amount
        if not limit[0] <= total <= limit[1]:
            _bad("interval field value out of range", "22015")
        self.fields[field] = total

    def claim(self, *units: str) -> None:
        # Each unit may be given once; a time field claims hours, minutes
        # and seconds.  PostgreSQL rejects repeats the same way.
        for unit in units:
            if unit in self.seen:
                _bad("a unit is given twice", "22007")
            self.seen.add(unit)


def _scaled_fraction(whole: str, frac: str | None, scale: int) -> int:
    """``whole.frac * scale`` for a scale that makes it an exact integer."""
    frac = frac or ""
    value = int(whole) * scale
    if frac:
        part = int(frac) * scale
        denominator = 10 ** len(frac)
        if part % denominator:
            _bad("fractional part too fine for the unit", "22007")
        value += -(part // denominator) if whole.startswith("-") else part // denominator
    return value


def _interval_from_text(text: str) -> Interval:
    s = text.strip(_WS).lower()
    if not s.isascii():
        _bad(f"invalid input syntax for type interval: {text!r}", "22007")
    if s in ("infinity", "+infinity"):
        return Interval.INFINITY
    if s == "-infinity":
        return Interval.NEG_INFINITY
    acc = _IntervalSum()
    if s.startswith("p"):
        m = _ISO_INTERVAL_RE.fullmatch(s)
        if m is None or not any(m.groupdict().values()):
            _bad(f"invalid input syntax for type interval: {text!r}", "22007")
        for group, unit in (
            ("y", "year"),
            ("mo", "month"),
            ("w", "week"),
            ("d", "day"),
            ("h", "hour"),
            ("mi", "minute"),
        ):
            if m[group] is not None:
                field, scale = _UNIT_SCALE[unit]
                acc.add(field, int(m[group]) * scale)
        if m["s"] is not None:
            acc.add(2, _scaled_fraction(m["s"], m["sf"], _USECS_PER_SEC))
        return Interval(*acc.fields)
    if s.startswith("@"):
        s = s[1:].lstrip(_WS)
    negate = False
    if s.endswith("ago") and (len(s) == 3 or s[-4] in _WS):
        negate = True
        s = s[:-3].rstrip(_WS)
    if not s:
        _bad(f"invalid input syntax for type interval: {text!r}", "22007")
    bare = re.fullmatch(r"([+-]?[0-9]{1,19})(?:\.([0-9]{0,6}))?", s)
    if bare is not None and not negate:
        # A lone number is seconds.
        acc.add(2, _scaled_fraction(bare[1], bare[2], _USECS_PER_SEC))
    else:
        pos = 0
        while pos < len(s):
            m = _INTERVAL_ITEM_RE.match(s, pos)
            if m is None:
                _bad(f"invalid input syntax for type interval: {text!r}", "22007")
            if m["time"] is not None:
                acc.claim("hour", "minute", "second", "millisecond", "microsecond")
                hours, minutes = int(m["th"]), int(m["tm"])
                seconds = int(m["ts"] or 0)
                # PostgreSQL allows a leap second here, not a 60th minute.
                if minutes > 59 or seconds > 60:
                    _bad("interval field value out of range", "22015")
                if hours > _I64_MAX // _USECS_PER_HOUR:
                    _bad("interval field value out of range", "22015")
                usecs = (hours * 3600 + minutes * 60 + seconds) * _USECS_PER_SEC
                usecs += _scaled_fraction("0", m["tf"], _USECS_PER_SEC)
                acc.add(2, -usecs if m["tsign"] == "-" else usecs)
            else:
                found = _INTERVAL_UNITS.get(m["unit"])
                if found is None:
                    _bad(f"invalid input syntax for type interval: {text!r}", "22007")
                unit = found
                if m["frac"] and unit not in ("second", "millisecond"):
                    # PostgreSQL spreads fractions of other units over
                    # smaller ones with float arithmetic; not reproduced.
                    _bad(f"a fractional number of {unit}s is not supported", "22007")
                # The server adds first and checks for a repeated unit after,
                # so an overflow is what it reports when both happen.
                field, scale = _UNIT_SCALE[unit]
                acc.add(field, _scaled_fraction(m["num"], m["frac"], scale))
                acc.claim(unit)
                if m["frac"] and unit == "second":
                    acc.claim("millisecond", "microsecond")
                elif m["frac"] and unit == "millisecond":
                    acc.claim("microsecond")
            pos = m.end()
            rest = s[pos:]
            stripped = rest.lstrip(_WS)
            if stripped and stripped == rest:
                _bad(f"invalid input syntax for type interval: {text!r}", "22007")
            pos = len(s) - len(stripped)
    months, days, usecs = acc.fields
    if negate:
        months, days, usecs = -months, -days, -usecs
    try:
        return Interval(months, days, usecs)
    except TypeCodecError:
        _bad("interval out of range", "22008")


def _interval_to_binary(value: object) -> bytes:
    assert isinstance(value, Interval)
    return struct.pack("!qii", value.microseconds, value.days, value.months)


def _interval_from_binary(data: bytes) -> Interval:
    _check_length(data, 16)
    usecs, days, months = struct.unpack("!qii", data)
    return Interval(months, days, usecs)


# ---------------------------------------------------------------------------
# json and jsonb
# ---------------------------------------------------------------------------


def _json_number(value: float | Decimal, canonical: bool) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            _bad(f"{value!r} is not a JSON number", "22P02")
        if not canonical:
            return repr(value)
        value = Decimal(repr(value))
    elif not value.is_finite():
        _bad(f"{value!r} is not a JSON number", "22P02")
    return _numeric_to_text(value) if canonical else format(value, "f")


def _json_dump(value: object, canonical: bool, out: list[str]) -> None:
    """Serialise like jsonb's output when ``canonical`` (key order, numbers)."""
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        if canonical and "\x00" in value:
            _bad("jsonb cannot hold \\u0000", "22P05")
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        # str() refuses ints past sys.get_int_max_str_digits(); Decimal does not.
        out.append(str(Decimal(value)) if value.bit_length() > 13000 else str(value))
    elif isinstance(value, (float, Decimal)):
        out.append(_json_number(value, canonical))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _json_dump(item, canonical, out)
        out.append("]")
    elif isinstance(value, dict):
        keys = list(value)
        if any(not isinstance(k, str) for k in keys):
            _bad("JSON object keys must be str", "42804")
        if canonical:
            # jsonb orders keys by length, then bytewise (UTF-8).
            keys.sort(key=lambda k: (len(_utf8(k)), _utf8(k)))
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(", ")
            _json_dump(key, canonical, out)
            out.append(": ")
            _json_dump(value[key], canonical, out)
        out.append("}")
    else:
        _wrong_type(value, "a JSON value (dict, list, str, int, float, Decimal, bool, None)")


def _json_prepare(value: object) -> object:
    return value


def _json_text(value: object, canonical: bool) -> str:
    out: list[str] = []
    try:
        _json_dump(value, canonical, out)
    except RecursionError:
        _bad("nested too deeply (or contains itself)", "54001")
    return "".join(out)


def _json_to_text(value: object) -> str:
    return _json_text(value, canonical=False)


def _jsonb_to_text(value: object) -> str:
    return _json_text(value, canonical=True)


def _json_no_constant(name: str) -> NoReturn:
    _bad(f"{name} is not valid JSON", "22P02")


def _json_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        _bad(f"the number {text[:40]} is beyond a Python float's range", "22003")
    return value


def _json_int(text: str) -> int:
    # int() refuses more than sys.get_int_max_str_digits() digits; Decimal
    # converts any length.
    return int(text) if len(text) < 4000 else int(Decimal(text))


def _json_check_strings(value: object, jsonb: bool) -> None:
    # json.loads lets lone surrogate escapes through; PostgreSQL refuses
    # them, and jsonb also refuses \u0000.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    _bad("a lone surrogate escape (\\ud800-\\udfff) has no UTF-8 form", "22P02")
            if jsonb and "\x00" in item:
                _bad("unsupported Unicode escape sequence \\u0000", "22P05")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())


def _json_parse(text: str, jsonb: bool) -> object:
    try:
        value = json.loads(
            text, parse_constant=_json_no_constant, parse_float=_json_float, parse_int=_json_int
        )
    except json.JSONDecodeError as exc:
        _bad(f"invalid input syntax for type json: {exc.msg} at {exc.pos}", "22P02")
    except RecursionError:
        _bad("JSON nested too deeply", "54001")
    except ValueError as exc:  # any other refusal of the json module
        _bad(f"invalid input syntax for type json: {exc}", "22P02")
    _json_check_strings(value, jsonb)
    return value


def _json_from_text(text: str) -> object:
    return _json_parse(text, jsonb=False)


def _jsonb_from_text(text: str) -> object:
    return _json_parse(text, jsonb=True)


def _json_to_binary(value: object) -> bytes:
    return _utf8(_json_to_text(value))


def _json_from_binary(data: bytes) -> object:
    return _json_parse(_from_utf8(data), jsonb=False)


def _jsonb_to_binary(value: object) -> bytes:
    # jsonb's binary format is a version byte (1) and the text.
    return b"\x01" + _utf8(_jsonb_to_text(value))


def _jsonb_from_binary(data: bytes) -> object:
    _check_length(data[:1], 1)
    if data[0] != 1:
        # The server reports this as an internal error (XX000); 22P03 is
        # the code for what it is, binary data in a format not understood.
        _bad(f"unsupported jsonb version number {data[0]}", "22P03")
    return _json_parse(_from_utf8(data[1:]), jsonb=True)


# ---------------------------------------------------------------------------
# The codec object and arrays
# ---------------------------------------------------------------------------


class TypeCodec:
    """Converts values of one PostgreSQL type, in both formats and directions.

    ``oid``, ``name`` (``pg_type.typname``), ``typlen`` (the size
    RowDescription reports: 4 for int4, -1 for varlena types such as text,
    -2 for unknown), ``array_oid`` (0 if the type has none) and
    ``element_oid`` (0 unless this is an array type) describe the type.
    Get one with :func:`codec`.
    """

    __slots__ = (
        "oid",
        "name",
        "typlen",
        "array_oid",
        "element_oid",
        "_prepare",
        "_to_text",
        "_from_text",
        "_to_binary",
        "_from_binary",
    )

    def __init__(
        self,
        oid: int,
        name: str,
        *,
        typlen: int,
        array_oid: int,
        element_oid: int,
        parts: tuple[_Prepare, _ToText, _FromText, _ToBinary, _FromBinary],
    ) -> None:
        self.oid = oid
        self.name = name
        self.typlen = typlen
        self.array_oid = array_oid
        self.element_oid = element_oid
        (
            self._prepare,
            self._to_text,
            self._from_text,
            self._to_binary,
            self._from_binary,
        ) = parts

    def __repr__(self) -> str:
        return f"<TypeCodec {self.name} oid={self.oid} typlen={self.typlen}>"

    def encode(self, value: object, format: int = Format.TEXT) -> bytes:
        """``value`` as the bytes of a column or parameter in ``format``.

        Raises :class:`ValueEncodeError` if the value is of the wrong
        Python type or out of the type's range.  None (SQL NULL) has no
        bytes: send a NULL instead (json and jsonb read None as JSON null).
        """
        try:
            if value is None and self.oid not in (Oid.JSON, Oid.JSONB):
                _bad("None is SQL NULL, which has no encoding: send a NULL", "22004")
            prepared = self._prepare(value)
            if format == Format.TEXT:
                return _utf8(self._to_text(prepared))
            if format == Format.BINARY:
                return self._to_binary(prepared)
            _bad(f"unsupported format code: {format}", "22023")
        except _Bad as exc:
            raise ValueEncodeError(
                self.name, exc.reason, oid=self.oid, sqlstate=exc.sqlstate
            ) from None

    def decode(self, data: bytes | bytearray | memoryview, format: int = Format.TEXT) -> object:
        """The Python value of a non-NULL column or parameter in ``format``.

        Raises :class:`ValueDecodeError` for bytes that are not a valid
        value of the type: wrong length, trailing bytes, invalid text.
        """
        try:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                _wrong_type(data, "bytes")
            raw = bytes(data)
            if format == Format.TEXT:
                return self._from_text(_from_utf8(raw))
            if format == Format.BINARY:
                return self._from_binary(raw)
            _bad(f"unsupported format code: {format}", "22023")
        except _Bad as exc:
            raise ValueDecodeError(
                self.name, exc.reason, oid=self.oid, sqlstate=exc.sqlstate
            ) from None


_ARRAY_SPACE = " \t\n\r\v\f"  # array_isspace: the same six characters
_ARRAY_SPECIAL = frozenset('{}",\\' + _ARRAY_SPACE)
_MAXDIM = 6


def _array_quote(text: str) -> str:
    """One element of array_out: quoted when it would not read back as itself."""
    if (
        not text
        or (len(text) == 4 and text.lower() == "null")
        or not _ARRAY_SPECIAL.isdisjoint(text)
    ):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _array_tokens(text: str) -> Iterator[tuple[str, str | None]]:
    """Lexes the part of an array literal from its first brace.

    Yields ("{", None), ("}", None), (",", None) and ("item", value) with
    value None for an unquoted NULL; the parser checks the order.
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _ARRAY_SPACE:
            i += 1
        elif c in "{},":
            yield c, None
            i += 1
        elif c == '"':
            out: list[str] = []
            i += 1
            while True:
                if i >= n:
                    _bad("malformed array literal: unterminated quoted element", "22P02")
                c = text[i]
                if c == "\\":
                    if i + 1 >= n:
                        _bad("malformed array literal: unexpected end of input", "22P02")
                    out.append(text[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            # After a quoted element only whitespace, a comma or a brace.
            j = i
            while j < n and text[j] in _ARRAY_SPACE:
                j += 1
            if j < n and text[j] not in ",}":
                _bad("malformed array literal: junk after a quoted element", "22P02")
            yield "item", "".join(out)
        else:
            out = []
            escaped = False
            trailing_plain_space = 0  # unescaped whitespace at the end, to trim
            while i < n:
                c = text[i]
                if c == "\\":
                    if i + 1 >= n:
                        _bad("malformed array literal: unexpected end of input", "22P02")
                    out.append(text[i + 1])
                    escaped = True
                    trailing_plain_space = 0
                    i += 2
                    continue
                if c in '{},"':
                    break
                out.append(c)
                trailing_plain_space = trailing_plain_space + 1 if c in _ARRAY_SPACE else 0
                i += 1
            if i < n and text[i] in '{"':
                _bad("malformed array literal: unexpected character in an element", "22P02")
            value = "".join(out[: len(out) - trailing_plain_space])
            if not escaped and len(value) == 4 and value.lower() == "null":
                yield "item", None
            else:
                yield "item", value


_DIMS_RE = re.compile(r"\[([+-]?[0-9]{1,10})(?::([+-]?[0-9]{1,10}))?\]")


def _array_parse_text(text: str) -> list[str | None]:
    """The element texts of a one-dimensional array literal."""
    s = text.lstrip(_ARRAY_SPACE)
    lower, upper = 1, None
    if s.startswith("["):
        m = _DIMS_RE.match(s)
        if m is None:
            _bad("malformed array literal: bad dimensions", "22P02")
        if m[2] is None:
            upper = int(m[1])
        else:
            lower, upper = int(m[1]), int(m[2])
        s = s[m.end() :].lstrip(_ARRAY_SPACE)
        if s.startswith("["):
            _bad("multidimensional arrays are not supported", "0A000")
        if not s.startswith("="):
            _bad('malformed array literal: missing "=" after dimensions', "22P02")
        s = s[1:].lstrip(_ARRAY_SPACE)
    if not s.startswith("{"):
        _bad('malformed array literal: must begin with "{"', "22P02")
    items: list[str | None] = []
    depth = 0
    max_depth = 0
    expect_item = True  # at the start of a level or after a comma
    closed = False
    # What each open level holds so far: "" nothing, "e" elements, "a" arrays.
    holds: list[str] = []
    for kind, value in _array_tokens(s):
        if closed:
            _bad("malformed array literal: junk after closing right brace", "22P02")
        if kind == "{":
            if not expect_item:
                _bad("malformed array literal: unexpected {", "22P02")
            if holds:
                if holds[-1] == "e":
                    _bad("malformed array literal: elements and sub-arrays mixed", "22P02")
                holds[-1] = "a"
            holds.append("")
            depth += 1
            max_depth = max(max_depth, depth)
            if depth > _MAXDIM:
                _bad("number of array dimensions exceeds the maximum allowed (6)", "54000")
            expect_item = True
        elif kind == "}":
            if expect_item and (items or depth < max_depth):
                _bad("malformed array literal: unexpected }", "22P02")
            depth -= 1
            holds.pop()
            expect_item = False
            if depth == 0:
                closed = True
        elif kind == ",":
            if expect_item:
                _bad("malformed array literal: unexpected comma", "22P02")
            expect_item = True
        else:
            if not expect_item:
                _bad("malformed array literal: unexpected element", "22P02")
            if holds[-1] == "a":
                _bad("malformed array literal: elements and sub-arrays mixed", "22P02")
            holds[-1] = "e"
            items.append(value)
            expect_item = False
    if not closed:
        _bad("malformed array literal: unexpected end of input", "22P02")
    if max_depth > 1:
        if upper is not None:
            _bad("malformed array literal: dimensions do not match the elements", "22P02")
        if items:
            _bad("multidimensional arrays are not supported", "0A000")
        return []  # "{{}}" and the like are empty arrays
    if upper is not None:
        if upper < lower:
            _bad("upper bound cannot be less than lower bound", "2202E")
        if upper - lower + 1 != len(items):
            _bad("malformed array literal: dimensions do not match the elements", "22P02")
        if lower != 1 and items:
            _bad(f"arrays with lower bound {lower} are not supported", "0A000")
    return items


def _array_parts(
    element: TypeCodec,
) -> tuple[_Prepare, _ToText, _FromText, _ToBinary, _FromBinary]:
    def wrap(index: int, exc: _Bad) -> NoReturn:
        raise _Bad(f"element {index}: {exc.reason}", exc.sqlstate) from None

    def prepare(value: object) -> object:
        if not isinstance(value, (list, tuple)):
            _wrong_type(value, "list")
        prepared: list[object] = []
        for i, item in enumerate(value):
            if item is None:
                prepared.append(None)
                continue
            if isinstance(item, (list, tuple)) and element.oid not in (Oid.JSON, Oid.JSONB):
                _bad("nested lists (multidimensional arrays) are not supported", "0A000")
            try:
                prepared.append(element._prepare(item))
            except _Bad as exc:
                wrap(i, exc)
        return prepared

    def to_text(value: object) -> str:
        assert isinstance(value, list)
        parts = []
        for i, item in enumerate(value):
            if item is None:
                parts.append("NULL")
                continue
            try:
                parts.append(_array_quote(element._to_text(item)))
            except _Bad as exc:
                wrap(i, exc)
        return "{" + ",".join(parts) + "}"

    def from_text(text: str) -> list[object]:
        result: list[object] = []
        for i, item in enumerate(_array_parse_text(text)):
            if item is None:
                result.append(None)
                continue
            try:
                result.append(element._from_text(item))
            except _Bad as exc:
                wrap(i, exc)
        return result

    def to_binary(value: object) -> bytes:
        assert isinstance(value, list)
        if not value:
            return struct.pack("!iiI", 0, 0, element.oid)
        has_null = any(item is None for item in value)
        out = [struct.pack("!iiIii", 1, 1 if has_null else 0, element.oid, len(value), 1)]
        for i, item in enumerate(value):
            if item is None:
                out.append(b"\xff\xff\xff\xff")
                continue
            try:
                data = element._to_binary(item)
            except _Bad as exc:
                wrap(i, exc)
            out.append(_I32.pack(len(data)))
            out.append(data)
        return b"".join(out)

    def from_binary(data: bytes) -> list[object]:
        _check_length(data[:12], 12)
        ndim, flags, elem_oid = struct.unpack_from("!iiI", data)
        if ndim < 0:
            _bad(f"invalid number of dimensions: {ndim}", "22P03")
        if ndim > _MAXDIM:
            _bad(f"number of array dimensions ({ndim}) exceeds the maximum allowed (6)", "54000")
        if flags not in (0, 1):
            _bad("invalid array flags", "22P03")
        if elem_oid != element.oid:
            _bad(f"wrong element type {elem_oid}, expected {element.oid}", "42804")
        _check_length(data[: 12 + 8 * ndim], 12 + 8 * ndim)
        dims = [struct.unpack_from("!ii", data, 12 + 8 * d) for d in range(ndim)]
        pos = 12 + 8 * ndim
        if any(size < 0 for size, _ in dims):
            # The server takes the size as unsigned: far beyond its limit.
            _bad("array size exceeds the maximum allowed", "54000")
        if ndim == 0 or any(size == 0 for size, _ in dims):
            if pos != len(data):
                _bad("bytes after an empty array", "22P03")
            return []
        if ndim > 1:
            _bad("multidimensional arrays are not supported", "0A000")
        count, lower = dims[0]
        if lower != 1:
            _bad(f"arrays with lower bound {lower} are not supported", "0A000")
        result: list[object] = []
        for i in range(count):
            _check_length(data[pos : pos + 4], 4)
            (length,) = _I32.unpack_from(data, pos)
            pos += 4
            if length == -1:
                result.append(None)
                continue
            if length < 0 or pos + length > len(data):
                _bad(f"element {i}: invalid length {length}", "22P03")
            try:
                result.append(element._from_binary(data[pos : pos + length]))
            except _Bad as exc:
                wrap(i, exc)
            pos += length
        if pos != len(data):
            _bad(f"{len(data) - pos} bytes after the last element", "22P03")
        return result

    return prepare, to_text, from_text, to_binary, from_binary


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

_OID_PREPARE, _OID_TO_TEXT, _, _OID_TO_BINARY, _OID_FROM_BINARY = _int_codec_parts(
    0, 2**32 - 1, _U32, "oid"
)
_OID_PARTS = (_OID_PREPARE, _OID_TO_TEXT, _oid_from_text, _OID_TO_BINARY, _OID_FROM_BINARY)
_BOOL_PARTS = (
    _bool_prepare,
    _bool_to_text,
    _bool_from_text,
    _bool_to_binary,
    _bool_from_binary,
)
_TEXT_PARTS = (_str_prepare, _str_identity, _str_from_text, _str_to_binary, _from_utf8)

# (oid, typname, typlen, array oid, parts)
_BASE_TYPES: Final[
    tuple[
        tuple[Oid, str, int, int, tuple[_Prepare, _ToText, _FromText, _ToBinary, _FromBinary]], ...
    ]
] = (
    (Oid.BOOL, "bool", 1, Oid.BOOL_ARRAY, _BOOL_PARTS),
    (Oid.INT2, "int2", 2, Oid.INT2_ARRAY, _int_codec_parts(-(2**15), 2**15 - 1, _I16, "smallint")),
    (Oid.INT4, "int4", 4, Oid.INT4_ARRAY, _int_codec_parts(_I32_MIN, _I32_MAX, _I32, "integer")),
    (Oid.INT8, "int8", 8, Oid.INT8_ARRAY, _int_codec_parts(_I64_MIN, _I64_MAX, _I64, "bigint")),
    (Oid.OID, "oid", 4, Oid.OID_ARRAY, _OID_PARTS),
    (Oid.FLOAT4, "float4", 4, Oid.FLOAT4_ARRAY, _float_codec_parts(single=True)),
    (Oid.FLOAT8, "float8", 8, Oid.FLOAT8_ARRAY, _float_codec_parts(single=False)),
    (
        Oid.NUMERIC,
        "numeric",
        -1,
        Oid.NUMERIC_ARRAY,
        (
            _numeric_prepare,
            _numeric_to_text,
            _numeric_from_text,
            _numeric_to_binary,
            _numeric_from_binary,
        ),
    ),
    (Oid.TEXT, "text", -1, Oid.TEXT_ARRAY, _TEXT_PARTS),
    (Oid.VARCHAR, "varchar", -1, Oid.VARCHAR_ARRAY, _TEXT_PARTS),
    (Oid.BPCHAR, "bpchar", -1, Oid.BPCHAR_ARRAY, _TEXT_PARTS),
    (
        Oid.NAME,
        "name",
        _NAMEDATALEN,
        Oid.NAME_ARRAY,
        (_name_prepare, _str_identity, _name_from_text, _str_to_binary, _name_from_binary),
    ),
    (Oid.UNKNOWN, "unknown", -2, 0, _TEXT_PARTS),
    (
        Oid.BYTEA,
        "bytea",
        -1,
        Oid.BYTEA_ARRAY,
        (_bytea_prepare, _bytea_to_text, _bytea_from_text, _bytes_identity, _bytes_from_binary),
    ),
    (
        Oid.DATE,
        "date",
        4,
        Oid.DATE_ARRAY,
        (_date_prepare, _date_to_text, _date_from_text, _date_to_binary, _date_from_binary),
    ),
    (
        Oid.TIME,
        "time",
        8,
        Oid.TIME_ARRAY,
        (_time_prepare, _time_to_text, _time_from_text, _time_to_binary, _time_from_binary),
    ),
    (
        Oid.TIMESTAMP,
        "timestamp",
        8,
        Oid.TIMESTAMP_ARRAY,
        (
            _timestamp_prepare,
            _timestamp_to_text,
            _timestamp_from_text,
            _timestamp_to_binary,
            _timestamp_from_binary,
        ),
    ),
    (
        Oid.TIMESTAMPTZ,
        "timestamptz",
        8,
        Oid.TIMESTAMPTZ_ARRAY,
        (
            _timestamptz_prepare,
            _timestamptz_to_text,
            _timestamptz_from_text,
            _timestamp_to_binary,
            _timestamptz_from_binary,
        ),
    ),
    (
        Oid.INTERVAL,
        "interval",
        16,
        Oid.INTERVAL_ARRAY,
        (
            _interval_prepare,
            _interval_to_text,
            _interval_from_text,
            _interval_to_binary,
            _interval_from_binary,
        ),
    ),
    (
        Oid.UUID,
        "uuid",
        16,
        Oid.UUID_ARRAY,
        (_uuid_prepare, _uuid_to_text, _uuid_from_text, _uuid_to_binary, _uuid_from_binary),
    ),
    (
        Oid.JSON,
        "json",
        -1,
        Oid.JSON_ARRAY,
        (_json_prepare, _json_to_text, _json_from_text, _json_to_binary, _json_from_binary),
    ),
    (
        Oid.JSONB,
        "jsonb",
        -1,
        Oid.JSONB_ARRAY,
        (_json_prepare, _jsonb_to_text, _jsonb_from_text, _jsonb_to_binary, _jsonb_from_binary),
    ),
)


def _build_registry() -> dict[int, TypeCodec]:
    registry: dict[int, TypeCodec] = {}
    for oid, name, typlen, array_oid, parts in _BASE_TYPES:
        element = TypeCodec(
            oid, name, typlen=typlen, array_oid=array_oid, element_oid=0, parts=parts
        )
        registry[oid] = element
        if array_oid:
            registry[array_oid] = TypeCodec(
                array_oid,
                "_" + name,
                typlen=-1,
                array_oid=0,
                element_oid=oid,
                parts=_array_parts(element),
            )
    return registry


_REGISTRY: Final = _build_registry()


def codec(oid: int) -> TypeCodec:
    """The codec of type ``oid``; :class:`UnsupportedTypeError` if there is none."""
    try:
        return _REGISTRY[oid]
    except (KeyError, TypeError):
        raise UnsupportedTypeError(
            f"oid {oid}",
            "no codec for this type",
            oid=oid if isinstance(oid, int) else 0,
            sqlstate="42704",
        ) from None


def encode(value: object, oid: int, format: int = Format.TEXT) -> bytes:
    """``value`` as type ``oid`` in ``format`` (0 text, 1 binary); see :meth:`TypeCodec.encode`."""
    return codec(oid).encode(value, format)


def decode(data: bytes | bytearray | memoryview, oid: int, format: int = Format.TEXT) -> object:
    """A non-NULL value of type ``oid`` in ``format``; see :meth:`TypeCodec.decode`."""
    return codec(oid).decode(data, format)


def _infer_scalar(value: object) -> Oid:
    if isinstance(value, bool):
        return Oid.BOOL
    if isinstance(value, int):
        # As PostgreSQL types an integer literal: int4, else int8, else numeric.
        if _I32_MIN <= value <= _I32_MAX:
            return Oid.INT4
        return Oid.INT8 if _I64_MIN <= value <= _I64_MAX else Oid.NUMERIC
    if isinstance(value, float):
        return Oid.FLOAT8
    if isinstance(value, Decimal):
        return Oid.NUMERIC
    if isinstance(value, str):
        return Oid.TEXT
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Oid.BYTEA
    if isinstance(value, _dt.datetime):
        return Oid.TIMESTAMP if value.utcoffset() is None else Oid.TIMESTAMPTZ
    if isinstance(value, _dt.date):
        return Oid.DATE
    if isinstance(value, _dt.time) and value.utcoffset() is None:
        return Oid.TIME
    if isinstance(value, (Interval, _dt.timedelta)):
        return Oid.INTERVAL
    if isinstance(value, uuid.UUID):
        return Oid.UUID
    if isinstance(value, dict):
        return Oid.JSONB
    raise UnsupportedTypeError(
        type(value).__name__,
        "no default PostgreSQL type for this Python type"
        + (" (date, timestamp or timestamptz?)" if isinstance(value, Infinity) else ""),
        sqlstate="42804",
    )


_WIDER_INT = {Oid.INT4: 0, Oid.INT8: 1, Oid.NUMERIC: 2}


def infer_oid(value: object) -> Oid:
    """The type a Python value maps to by default, for choosing a column's type.

    bool: bool; int: int4, int8 or numeric by size, as PostgreSQL types an
    integer literal; float: float8; Decimal: numeric; str: text; bytes:
    bytea; datetime: timestamptz if aware, else timestamp; date: date;
    time: time; Interval or timedelta: interval; UUID: uuid; dict: jsonb;
    None: text (as PostgreSQL resolves an untyped NULL).  A list or tuple
    is the array of its elements' common type (integers widen; None is
    skipped; empty or all None: text[]).  Anything else, an aware time,
    :class:`Infinity` (which fits several types) or a mixed or nested list
    raises :class:`UnsupportedTypeError`.
    """
    if value is None:
        return Oid.TEXT
    if not isinstance(value, (list, tuple)):
        return _infer_scalar(value)
    found: Oid | None = None
    for item in value:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            raise UnsupportedTypeError(
                "list", "nested lists (multidimensional arrays) are not supported", sqlstate="0A000"
            )
        oid = _infer_scalar(item)
        if found is None or found == oid:
            found = oid
        elif found in _WIDER_INT and oid in _WIDER_INT:
            found = max(found, oid, key=_WIDER_INT.__getitem__)
        else:
            raise UnsupportedTypeError(
                "list",
                f"elements of different types ({found.name.lower()} and {oid.name.lower()})",
                sqlstate="42804",
            )
    return Oid(codec(found if found is not None else Oid.TEXT).array_oid)
