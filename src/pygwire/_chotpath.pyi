"""Compiled twin of :mod:`pygwire._hotpath` (see ``_chotpath.c``)."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

# The compiled MessageQueue has the methods of the Python one.
from ._hotpath import BoundaryMaker, FrameBuffer, Parser, RowMaker, Stepper
from ._hotpath import FrameBufferCore as FrameBufferCore
from ._hotpath import MessageQueue as MessageQueue

def decode_frames(
    fb: FrameBuffer,
    limits: Sequence[int],
    parsers: Sequence[Parser | None],
    queue: MessageQueue,
    hold: int,
    count: int,
) -> int: ...
def drain(
    queue: MessageQueue,
    refill: Callable[[], bool],
    callback: Callable[..., object] | None,
    holder: object,
    name: str,
    sized: bool,
) -> Iterator[Any]: ...
def data_row_parser(cls: type[Any]) -> Parser: ...
def data_row_columns(cls: type[Any]) -> Any: ...
def data_row_to_wire(
    cls: type[Any], fallback: Callable[[Any], bytes]
) -> Callable[[Any], bytes]: ...
def split_data_row(buf: bytes, start: int, end: int) -> list[bytes | None]: ...
def cstring_payload(buf: bytes, start: int, end: int) -> str | None: ...
def row_description_fields(
    buf: bytes, start: int, end: int, make: type[Any]
) -> list[Any] | None: ...
def pgoutput_row_maker(
    cls: type[Any], lsn: type[int], kinds: Sequence[Any], unchanged: object
) -> RowMaker: ...
def pgoutput_boundary_maker(
    begin: type[Any], commit: type[Any], lsn: type[int], timestamp: type[int]
) -> BoundaryMaker: ...
def model_steppers(
    model: type[Any],
    node: type[Any],
    marks: Sequence[Any],
    requests: Mapping[type[Any], Any],
    describe: type[Any],
    describe_kinds: Mapping[Any, Any],
) -> tuple[Stepper, Stepper]: ...
