"""COPY sub-protocol: the server opens it, then data flows as CopyData."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Self

from .._wire import INT8, INT16, Reader, Writer
from ._base import BackendMessage, CommonMessage, FrontendMessage, OpaqueData, message

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

    overall_format: Annotated[int, INT8] = 0
    col_formats: list[Annotated[int, INT16]] = field(default_factory=list)

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


@message(b"G")
class CopyInResponse(_CopyResponse):
    """The server is ready to receive COPY data from the client."""


@message(b"H")
class CopyOutResponse(_CopyResponse):
    """The server is about to send COPY data."""


@message(b"W")
class CopyBothResponse(_CopyResponse):
    """COPY data flows both ways (streaming replication)."""


@message(b"d", long=True)
class CopyData(OpaqueData, CommonMessage):
    """A chunk of COPY data, in either direction."""

    data: bytes = b""


@message(b"c", small=True)
class CopyDone(CommonMessage):
    """The sender has no more COPY data."""


@message(b"f", small=True)
class CopyFail(FrontendMessage):
    """The client aborts COPY FROM STDIN with ``error_message``."""

    error_message: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.error_message, "error_message")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(error_message=r.cstring())
