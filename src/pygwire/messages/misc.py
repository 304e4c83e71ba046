"""Function calls and session termination."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Self

from .._wire import INT16, UINT32, Reader, Writer
from ._base import BackendMessage, FrontendMessage, message

__all__ = ["FunctionCall", "FunctionCallResponse", "Terminate"]


@message(b"F")
class FunctionCall(FrontendMessage):
    """Call the function ``function_oid`` (the legacy fast-path interface)."""

    function_oid: Annotated[int, UINT32] = 0
    arg_formats: list[Annotated[int, INT16]] = field(default_factory=list)
    arguments: list[bytes | None] = field(default_factory=list)
    result_format: Annotated[int, INT16] = 0

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


@message(b"V", long=True)
class FunctionCallResponse(BackendMessage):
    """The result of a FunctionCall; ``None`` is SQL NULL."""

    result: bytes | None = None

    def _write(self, w: Writer) -> None:
        w.value(self.result, "result")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(result=r.value())


@message(b"X", small=True)
class Terminate(FrontendMessage):
    """The client is closing the connection."""
