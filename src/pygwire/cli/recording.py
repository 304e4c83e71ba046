"""The recording format of ``pygwire proxy --record``, read by ``pygwire decode``.

One file per connection holds the conversation as the client saw it, after
TLS: every chunk of bytes the client sent and every chunk it received, in
the order the proxy handled them.  Chunks are kept as they came (a message
may span chunks, a chunk may hold many messages), so decoding a recording
replays exactly what the proxy decoded.

Layout (all integers big-endian)::

    b"PGWIRE-REC 1\\n"                 magic and version
    float64  start                     wall-clock time of the connection, Unix seconds
    then, per chunk:
    byte     sender                    b"F" from the client, b"B" to the client
    float64  offset                    seconds since ``start``
    uint32   length
    bytes    data

A file cut short (the proxy was killed mid-write) reads up to its last
whole chunk.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..constants import MessageDirection

__all__ = ["MAGIC", "Chunk", "Recording", "RecordingWriter", "is_recording"]

MAGIC = b"PGWIRE-REC 1\n"
"""The first bytes of every recording file."""
_START = struct.Struct("!d")
_CHUNK = struct.Struct("!cdI")
_SENDERS = {b"F": MessageDirection.FRONTEND, b"B": MessageDirection.BACKEND}


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes one side sent, ``offset`` seconds into the connection."""

    sender: MessageDirection
    offset: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Recording:
    """A recorded connection: when it started, and its chunks in order."""

    start: float
    chunks: list[Chunk]

    @classmethod
    def read(cls, path: Path) -> Recording:
        """Read a recording; a file that is not one is a ValueError."""
        with path.open("rb") as f:
            return cls.parse(f.read())

    @classmethod
    def parse(cls, data: bytes) -> Recording:
        """Parse a recording's bytes; bytes that are not one are a
        ValueError, and an incomplete last chunk is left out."""
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _START.size:
            raise ValueError("not a pygwire recording (bad magic)")
        (start,) = _START.unpack_from(data, len(MAGIC))
        return cls(start, list(_chunks(data, len(MAGIC) + _START.size)))


def _chunks(data: bytes, pos: int) -> Iterator[Chunk]:
    while pos + _CHUNK.size <= len(data):
        sender, offset, length = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        if sender not in _SENDERS:
            raise ValueError(f"not a pygwire recording (sender byte {sender!r} at {pos - 13})")
        if pos + length > len(data):
            return  # cut short: the last chunk is incomplete
        yield Chunk(_SENDERS[sender], offset, data[pos : pos + length])
        pos += length


def is_recording(path: Path) -> bool:
    """Whether ``path`` starts like a recording."""
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


class RecordingWriter:
    """Writes one connection's recording as it happens."""

    __slots__ = ("_file", "_clock")

    def __init__(self, file: BinaryIO, *, wall_start: float, clock_start: float) -> None:
        self._file = file
        self._clock = clock_start
        file.write(MAGIC + _START.pack(wall_start))

    def add(self, sender: MessageDirection, data: bytes, at: float) -> None:
        """Record ``data`` sent by ``sender`` at monotonic time ``at``."""
        if data:
            tag = b"F" if sender is MessageDirection.FRONTEND else b"B"
            self._file.write(_CHUNK.pack(tag, at - self._clock, len(data)))
            self._file.write(data)

    def close(self) -> None:
        """Close the file."""
        self._file.close()
