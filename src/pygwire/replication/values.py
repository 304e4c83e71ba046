"""Values of the replication protocols: WAL locations and timestamps.

:class:`LSN` is a WAL location (PostgreSQL's ``XLogRecPtr``, the ``pg_lsn``
type): an unsigned 64-bit integer that PostgreSQL writes as two hexadecimal
halves, ``16/B374D848``.  :class:`Timestamp` is a ``TimestampTz`` as the
replication protocols carry it: signed microseconds since midnight
2000-01-01 UTC.  Both are ``int`` subclasses, so they order, hash and
compare with plain integers, and messages keep the exact value from the
wire; they add parsing, formatting and conversion.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from ..exceptions import PygwireError

__all__ = ["LSN", "PG_EPOCH", "ReplicationValueError", "Timestamp"]

PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Midnight 2000-01-01 UTC: PostgreSQL's timestamp epoch."""

_U64_MAX = 2**64 - 1
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_ONE_US = timedelta(microseconds=1)
# PostgreSQL's pg_lsn input: 1 to 8 hexadecimal digits on each side.
_LSN_TEXT = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


class ReplicationValueError(PygwireError, ValueError):
    """An LSN or timestamp that is malformed or out of range."""


class LSN(int):
    """A WAL location: parses and formats ``16/B374D848``, orders, adds.

    ``LSN("16/B374D848")`` and ``LSN(0x16B374D848)`` are the same location;
    ``str()`` gives PostgreSQL's notation.  Adding an integer gives an LSN
    (a location that many bytes further); subtracting two gives the
    distance in bytes, a plain ``int``.
    """

    __slots__ = ()

    def __new__(cls, value: int | str = 0) -> LSN:
        if isinstance(value, str):
            match = _LSN_TEXT.fullmatch(value)
            if match is None:
                raise ReplicationValueError(f"{value!r} is not a WAL location like 16/B374D848")
            return int.__new__(cls, int(match[1], 16) << 32 | int(match[2], 16))
        if not isinstance(value, int) or isinstance(value, bool):
            raise ReplicationValueError(f"an LSN is an integer or text, not {type(value).__name__}")
        if not 0 <= value <= _U64_MAX:
            raise ReplicationValueError(f"{value} is outside the LSN range 0..2**64-1")
        return int.__new__(cls, value)

    def __str__(self) -> str:
        return f"{self >> 32:X}/{self & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"LSN('{self}')"

    def __format__(self, spec: str) -> str:
        # f"{lsn}" reads as PostgreSQL writes it; numeric specs still work.
        return str(self) if not spec else int.__format__(self, spec)

    def __add__(self, other: int) -> LSN:
        if not isinstance(other, int):
            return NotImplemented
        return LSN(int(self) + int(other))

    __radd__ = __add__


def lsn_unchecked(value: int) -> LSN:
    """An LSN from a value the wire already bounds (no checks)."""
    return int.__new__(LSN, value)


class Timestamp(int):
    """A PostgreSQL ``TimestampTz``: microseconds since 2000-01-01 UTC.

    The value is kept exactly as the wire carries it, including the two
    infinities (``Timestamp.INFINITY``, ``Timestamp.NEG_INFINITY``) and
    values :class:`datetime` cannot hold; :meth:`to_datetime` converts
    when it can.
    """

    __slots__ = ()

    #: PostgreSQL's ``infinity`` and ``-infinity``.
    INFINITY: Final = _I64_MAX
    NEG_INFINITY: Final = _I64_MIN

    def __new__(cls, value: int = 0) -> Timestamp:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ReplicationValueError(
                f"a timestamp is an integer of microseconds, not {type(value).__name__}"
            )
        if not _I64_MIN <= value <= _I64_MAX:
            raise ReplicationValueError(f"{value} is outside the Int64 range of a timestamp")
        return int.__new__(cls, value)

    @classmethod
    def from_datetime(cls, value: datetime) -> Timestamp:
        """The timestamp of an aware ``datetime`` (naive ones are refused:
        the protocol's timestamps are absolute)."""
        if not isinstance(value, datetime):
            raise ReplicationValueError(f"expected a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ReplicationValueError("a naive datetime is ambiguous; give it a time zone")
        # Integer division of timedeltas is exact: no float rounding.
        return cls((value - PG_EPOCH) // _ONE_US)

    @classmethod
    def now(cls) -> Timestamp:
        """The current time (the clock is read, nothing else)."""
        return cls.from_datetime(datetime.now(UTC))

    @property
    def is_infinite(self) -> bool:
        """True for ``infinity`` and ``-infinity``."""
        return self in (_I64_MAX, _I64_MIN)

    def to_datetime(self) -> datetime:
        """An aware UTC ``datetime``.

        Raises :class:`ReplicationValueError` for the infinities and for
        values outside the years 1 to 9999.
        """
        if self.is_infinite:
            raise ReplicationValueError("infinite timestamps have no datetime")
        try:
            return PG_EPOCH + timedelta(microseconds=int(self))
        except OverflowError:
            raise ReplicationValueError(
                f"timestamp {int(self)} is outside the range of datetime"
            ) from None

    def __repr__(self) -> str:
        if self == _I64_MAX:
            return "Timestamp(infinity)"
        if self == _I64_MIN:
            return "Timestamp(-infinity)"
        try:
            return f"Timestamp('{self.to_datetime().isoformat()}')"
        except ReplicationValueError:
            return f"Timestamp({int(self)})"


def timestamp_unchecked(value: int) -> Timestamp:
    """A Timestamp from a value the wire already bounds (no checks)."""
    return int.__new__(Timestamp, value)


# Defaults of message fields (a dataclass default must not be a call).
LSN_ZERO: Final = LSN(0)
TIMESTAMP_ZERO: Final = Timestamp(0)
