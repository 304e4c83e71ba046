"""BASE_BACKUP's messages inside CopyData (PostgreSQL 15 and later).

After its first two result sets BASE_BACKUP sends one CopyOutResponse and
then CopyData whose payload is one of these messages: :class:`NewArchive`
(``n``) opens the tar archive of the data directory or of a tablespace,
:class:`ManifestStart` (``m``) opens the backup manifest,
:class:`ArchiveData` (``d``) carries bytes of whichever was opened last,
and :class:`ProgressReport` (``p``) counts the bytes of the current
tablespace done so far.  ``BASE_BACKUP_STREAM`` is their registry; it needs
no context.

Archive names and tablespace paths are file names on the server, which need
not be UTF-8: they are decoded with ``surrogateescape`` so that any bytes
survive, and encoded back the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from .._wire import Reader, Writer
from ..constants import MessageDirection
from ..messages._subprotocol import SubMessage, SubProtocol

__all__ = [
    "BASE_BACKUP_STREAM",
    "ArchiveData",
    "BaseBackupMessage",
    "ManifestStart",
    "NewArchive",
    "ProgressReport",
]

BASE_BACKUP_STREAM: SubProtocol[None] = SubProtocol("BASE_BACKUP", None)
"""The BASE_BACKUP CopyData sub-protocol (no context)."""


def _path_bytes(w: Writer, value: str | bytes, field: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        w.fail(field, f"expected str or bytes, got {type(value).__name__}")
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        w.fail(field, f"not encodable: {exc.reason}")


class BaseBackupMessage(SubMessage[None]):
    """Base of the BASE_BACKUP stream messages (all from the server)."""

    __slots__ = ()
    protocol = BASE_BACKUP_STREAM
    direction = MessageDirection.BACKEND


@dataclass(slots=True)
class NewArchive(BaseBackupMessage):
    """A new tar archive begins (``n``): one for the data directory, one per
    additional tablespace."""

    tag = b"n"
    #: The archive's file name, e.g. ``base.tar``.
    name: str = ""
    #: Empty for the data directory; else the tablespace's directory.
    tablespace_path: str = ""

    def _write(self, w: Writer, ctx: None) -> None:
        w.cstring(_path_bytes(w, self.name, "name"), "name")
        w.cstring(_path_bytes(w, self.tablespace_path, "tablespace_path"), "tablespace_path")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        name = r.cstring_bytes().decode("utf-8", "surrogateescape")
        return cls(name, r.cstring_bytes().decode("utf-8", "surrogateescape"))


@dataclass(slots=True)
class ManifestStart(BaseBackupMessage):
    """The backup manifest begins (``m``); ArchiveData carries it."""

    tag = b"m"


@dataclass(slots=True)
class ArchiveData(BaseBackupMessage):
    """Bytes of the current archive or of the manifest (``d``)."""

    tag = b"d"
    data: bytes = b""

    def _write(self, w: Writer, ctx: None) -> None:
        w.raw(self.data, "data")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        return cls(r.rest())


@dataclass(slots=True)
class ProgressReport(BaseBackupMessage):
    """Bytes of the current tablespace processed so far (``p``)."""

    tag = b"p"
    bytes_done: int = 0

    def _write(self, w: Writer, ctx: None) -> None:
        w.int64(self.bytes_done, "bytes_done")

    @classmethod
    def _read(cls, r: Reader, ctx: None) -> Self:
        return cls(r.int64())
