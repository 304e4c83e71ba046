"""Asynchronous and status messages: parameter reports, notifications,
cancellation keys and protocol version negotiation."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Self

from .._wire import INT32, UINT16, Reader, Writer
from ..constants import MAX_CANCEL_KEY_LENGTH
from ._base import BackendMessage, message

__all__ = [
    "BackendKeyData",
    "NegotiateProtocolVersion",
    "NotificationResponse",
    "ParameterStatus",
]


@message(b"S")
class ParameterStatus(BackendMessage):
    """The current value of a run-time parameter (server_version, TimeZone...)."""

    name: str = ""
    value: str = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.name, "name")
        w.cstring(self.value, "value")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        name = r.cstring()
        return cls(name=name, value=r.cstring())


@message(b"K")
class BackendKeyData(BackendMessage):
    """Process id and secret key for CancelRequest.

    The key is 4 bytes in protocol 3.0; from 3.2 it is variable, up to 256
    bytes (PostgreSQL 18 sends 32).
    """

    process_id: Annotated[int, INT32] = 0
    secret_key: bytes = b"\0\0\0\0"

    def _write(self, w: Writer) -> None:
        if not 4 <= len(self.secret_key) <= MAX_CANCEL_KEY_LENGTH:
            w.fail("secret_key", f"must be 4 to {MAX_CANCEL_KEY_LENGTH} bytes")
        w.int32(self.process_id, "process_id")
        w.raw(self.secret_key, "secret_key")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        pid = r.int32()
        if not 4 <= r.remaining <= MAX_CANCEL_KEY_LENGTH:
            r.fail(f"secret key of {r.remaining} bytes; must be 4 to {MAX_CANCEL_KEY_LENGTH}")
        return cls(process_id=pid, secret_key=r.rest())


@message(b"A", long=True)
class NotificationResponse(BackendMessage):
    """A NOTIFY delivered to a listening session."""

    process_id: Annotated[int, INT32] = 0
    channel: str = ""
    payload: str = ""

    def _write(self, w: Writer) -> None:
        w.int32(self.process_id, "process_id")
        w.cstring(self.channel, "channel")
        w.cstring(self.payload, "payload")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        pid = r.int32()
        channel = r.cstring()
        return cls(process_id=pid, channel=channel, payload=r.cstring())


@message(b"v")
class NegotiateProtocolVersion(BackendMessage):
    """The server's newest supported minor version and the ``_pq_.`` options
    it did not recognise.

    The documentation calls the first Int32 the "newest minor protocol
    version", but every PostgreSQL server (9.3 to 18) sends the whole
    version word, ``(3 << 16) | minor``, and libpq reads it that way.  So
    ``newest_minor`` is the minor number and the wire carries the full word;
    a bare minor (major 0) from a server that read the text literally is
    accepted too.
    """

    newest_minor: Annotated[int, UINT16] = 0
    unrecognized: list[str] = field(default_factory=list)

    def _write(self, w: Writer) -> None:
        w.int32(3 << 16 | self.newest_minor, "newest_minor")
        w.int32(len(self.unrecognized), "unrecognized")
        for name in self.unrecognized:
            w.cstring(name, "unrecognized")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        version = r.uint32()
        if version >> 16 not in (0, 3):
            r.fail(f"protocol version {version >> 16}.{version & 0xFFFF} is not 3.x", at=r.start)
        minor = version & 0xFFFF
        count = r.int32()
        # Each name takes at least its terminator: a count larger than the
        # bytes left is malformed, and refusing it early bounds the loop.
        if not 0 <= count <= r.remaining:
            r.fail(f"option count {count} does not fit the payload", at=r.pos - 4)
        return cls(newest_minor=minor, unrecognized=[r.cstring() for _ in range(count)])
