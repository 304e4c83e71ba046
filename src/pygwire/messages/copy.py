"""COPY sub-protocol: the server opens it, then data flows as CopyData."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from .._wire import Reader, Writer
from ._base import BackendMessage, CommonMessage, FrontendMessage, OpaqueData

__all__ = [
    "CopyBothResponse",
    "CopyData",
    "CopyDone",
    "CopyFail",
    "CopyInResponse",
    "CopyOutResponse",
]


@dataclass(slots=True)
class _CopyResponse(BackendMessage):
    """Overall format (0 text, 1 binary) and a format code per column."""

    overall_format: int = 0
    col_formats: list[int] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        # Int8 on the wire and read back signed: byte1 would accept 128..255,
        # which then decodes as a negative number (and it raised TypeError,
        # not EncodingError, for a non-integer).
        w.int8(self.overall_format, "overall_format")
        w.int16_array(self.col_formats, "col_formats")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        overall = r.int8()
        return cls(overall_format=overall, col_formats=r.int16_array(r.uint16()))


@dataclass(slots=True)
class CopyInResponse(_CopyResponse):
    """The server is ready to receive COPY data from the client."""

    identifier = b"G"


@dataclass(slots=True)
class CopyOutResponse(_CopyResponse):
    """The server is about to send COPY data."""

    identifier = b"H"


@dataclass(slots=True)
class CopyBothResponse(_CopyResponse):
    """COPY data flows both ways (streaming replication)."""

    identifier = b"W"


@dataclass(slots=True)
class CopyData(OpaqueData, CommonMessage):
    """A chunk of COPY data, in either direction."""

    identifier = b"d"
    data: bytes = b""


@dataclass(slots=True)
class CopyDone(CommonMessage):
    """The sender has no more COPY data."""

    identifier = b"c"


@dataclass(slots=True)
class CopyFail(FrontendMessage):
    """The client aborts COPY FROM STDIN with ``error_message``."""

    identifier = b"f"
    error_message: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.error_message, "error_message")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(error_message=r.cstring())
