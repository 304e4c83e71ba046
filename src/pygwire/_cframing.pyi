"""Compiled twin of :mod:`pygwire._framing` (see ``_cframing.c``)."""

from collections import deque
from collections.abc import Sequence
from typing import Any

from ._framing import FrameBuffer, Parser

def decode_frames(
    fb: FrameBuffer,
    limits: Sequence[int],
    parsers: Sequence[Parser | None],
    out: deque[Any],
    sizes: deque[int],
    hold: int = -1,
) -> None: ...
def split_data_row(buf: bytes, start: int, end: int) -> list[bytes | None]: ...
def encode_data_row(columns: list[bytes | None]) -> bytes | None: ...
def cstring_payload(buf: bytes, start: int, end: int) -> str | None: ...
def row_description_fields(
    buf: bytes, start: int, end: int, make: type[Any]
) -> list[Any] | None: ...
