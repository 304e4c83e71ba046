"""Startup-phase packets: they have a length word but no identifier byte.

The first Int32 of the payload is a request code (a protocol version for
StartupMessage, a magic number for the others).  The one-byte answers to
SSLRequest and GSSENCRequest are Enums, as users compare them by identity.
"""

from __future__ import annotations

import enum
from dataclasses import field
from typing import Annotated, Self

from .._wire import INT32, UINT32, Reader, Writer
from ..constants import MAX_CANCEL_KEY_LENGTH, MessageDirection, StartupRequestCode
from ..exceptions import DecodingError, EncodingError
from ._base import FrontendMessage, SpecialMessage, check_fields, message

__all__ = [
    "CancelRequest",
    "DirectSSLHandshake",
    "GSSEncRequest",
    "GSSEncResponse",
    "SSLRequest",
    "SSLResponse",
    "StartupMessage",
]


def _expect_code(r: Reader, code: int) -> None:
    got = r.uint32()
    if got != code:
        r.fail(f"request code {got} is not {code}", at=r.pos - 4)


@message()  # any 3.x version: the decoder dispatches on the major number
class StartupMessage(SpecialMessage, FrontendMessage):
    """Opens a session: protocol version and parameters (user, database, ...).

    Any 3.x version is accepted, including 3.9999 which libpq uses to test
    negotiation; ``_pq_.`` protocol options travel among ``params``.
    """

    params: dict[str, str] = field(default_factory=dict)
    protocol_version: Annotated[int, UINT32] = StartupRequestCode.V3_0

    def _write(self, w: Writer) -> None:
        version = self.protocol_version
        # Only 3.x versions: any other code here (CancelRequest's, say) would
        # make the packet decode as a different request.
        if version >> 16 != 3:
            w.fail(
                "protocol_version",
                f"{version} is not a 3.x protocol version (major {version >> 16})",
            )
        w.uint32(version, "protocol_version")
        for name, value in self.params.items():
            # An empty name is the list terminator on the wire.  (``not``
            # rather than ``== ""``: a bytes name must not trip -bb.)
            if not name:
                w.fail("params", "a parameter name cannot be empty")
            w.cstring(name, "params")
            w.cstring(value, "params")
        w.raw(b"\0", "params")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        version = r.uint32()
        if version >> 16 != 3:
            r.fail(f"unsupported protocol version {version >> 16}.{version & 0xFFFF}", at=r.start)
        params: dict[str, str] = {}
        while True:
            at = r.pos
            name = r.cstring()
            if not name:
                break
            if name in params:
                r.fail(f"parameter {name!r} appears twice", at=at)
            params[name] = r.cstring()
        return cls(params=params, protocol_version=version)


@message(code=StartupRequestCode.SSL_REQUEST)
class SSLRequest(SpecialMessage, FrontendMessage):
    """Asks the server to switch to TLS; it answers with one byte."""

    def _write(self, w: Writer) -> None:
        w.uint32(StartupRequestCode.SSL_REQUEST, "code")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        _expect_code(r, StartupRequestCode.SSL_REQUEST)
        return cls()


@message(code=StartupRequestCode.GSSENC_REQUEST)
class GSSEncRequest(SpecialMessage, FrontendMessage):
    """Asks the server to switch to GSSAPI encryption; it answers with one byte."""

    def _write(self, w: Writer) -> None:
        w.uint32(StartupRequestCode.GSSENC_REQUEST, "code")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        _expect_code(r, StartupRequestCode.GSSENC_REQUEST)
        return cls()


@message(code=StartupRequestCode.CANCEL_REQUEST)
class CancelRequest(SpecialMessage, FrontendMessage):
    """Sent on a new connection to cancel the query of another backend.

    ``secret_key`` is 4 bytes in protocol 3.0 and up to 256 bytes in 3.2.
    """

    process_id: Annotated[int, INT32] = 0
    secret_key: bytes = b"\0\0\0\0"

    def _write(self, w: Writer) -> None:
        if not 4 <= len(self.secret_key) <= MAX_CANCEL_KEY_LENGTH:
            w.fail("secret_key", f"must be 4 to {MAX_CANCEL_KEY_LENGTH} bytes")
        w.uint32(StartupRequestCode.CANCEL_REQUEST, "code")
        w.int32(self.process_id, "process_id")
        w.raw(self.secret_key, "secret_key")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        _expect_code(r, StartupRequestCode.CANCEL_REQUEST)
        pid = r.int32()
        if not 4 <= r.remaining <= MAX_CANCEL_KEY_LENGTH:
            r.fail(f"secret key of {r.remaining} bytes; must be 4 to {MAX_CANCEL_KEY_LENGTH}")
        return cls(process_id=pid, secret_key=r.rest())


class _OneByteReply(SpecialMessage, enum.Enum):
    """Shared behaviour of the single-byte negotiation answers."""

    def _fast_wire(self) -> bytes | None:
        return bytes(self.value)

    def _encode_validated(self, buf: bytearray) -> None:
        buf += self.value

    @classmethod
    def _parse_strict(cls, buf: bytes, start: int, end: int) -> Self:
        return cls.decode(buf[start:end])

    _parse = _parse_strict

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Self:
        data = bytes(payload)
        for member in cls:
            if member.value == data:
                return member
        raise DecodingError(cls.__name__, 0, f"unexpected reply {data!r}")


@message()
class SSLResponse(_OneByteReply):
    """The server's one-byte answer to SSLRequest."""

    SUPPORTED = b"S"
    NOT_SUPPORTED = b"N"


@message()
class GSSEncResponse(_OneByteReply):
    """The server's one-byte answer to GSSENCRequest."""

    SUPPORTED = b"G"
    NOT_SUPPORTED = b"N"


# The replies are sent by the server; set after class creation because Enum
# would otherwise turn a class attribute into a member.
SSLResponse.direction = MessageDirection.BACKEND
GSSEncResponse.direction = MessageDirection.BACKEND


@message()
class DirectSSLHandshake(SpecialMessage, FrontendMessage):
    """A TLS handshake where a startup packet was expected (direct SSL).

    PostgreSQL 17+ clients may skip SSLRequest and start TLS at once (the
    first byte, 0x16, is a TLS handshake record, never a plausible length).
    The frontend decoder yields this with every byte it had buffered, so a
    server can pass ``data`` to its TLS layer.  It is not a protocol
    message: ``to_wire`` gives back ``data`` unchanged.
    """

    data: bytes = b""

    # No length word: the raw bytes are the wire form.  A non-bytes ``data``
    # is refused by the validating path rather than returned as is.
    def _fast_wire(self) -> bytes | None:
        return self.data if type(self.data) is bytes else None

    def _encode_validated(self, buf: bytearray) -> None:
        problem = check_fields(self)
        if problem is not None:
            raise EncodingError(type(self).__name__, *problem)
        buf += memoryview(self.data)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(data=r.rest())
