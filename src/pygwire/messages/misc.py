"""Function calls and session termination."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from .._wire import Reader, Writer
from ._base import BackendMessage, FrontendMessage

__all__ = ["FunctionCall", "FunctionCallResponse", "Terminate"]


@dataclass(slots=True)
class FunctionCall(FrontendMessage):
    """Call the function ``function_oid`` (the legacy fast-path interface)."""

    identifier = b"F"
    function_oid: int = 0
    arg_formats: list[int] = field(default_factory=list)
    arguments: list[bytes | None] = field(default_factory=list)
    result_format: int = 0

    def _write(self, w: Writer) -> None:
        w.uint32(self.function_oid, "function_oid")
        w.int16_array(self.arg_formats, "arg_formats")
        w.values(self.arguments, "arguments")
        w.int16(self.result_format, "result_format")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        oid = r.uint32()
        formats = r.int16_array(r.uint16())
        args = [r.value() for _ in range(r.uint16())]
        return cls(function_oid=oid, arg_formats=formats, arguments=args, result_format=r.int16())


@dataclass(slots=True)
class FunctionCallResponse(BackendMessage):
    """The result of a FunctionCall; ``None`` is SQL NULL."""

    identifier = b"V"
    result: bytes | None = None

    def _write(self, w: Writer) -> None:
        w.value(self.result, "result")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(result=r.value())


@dataclass(slots=True)
class Terminate(FrontendMessage):
    """The client is closing the connection."""

    identifier = b"X"
