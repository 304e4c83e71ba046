"""Authentication: the server's 'R' requests and the client's 'p' replies.

Every Authentication message shares identifier 'R'; an Int32 code at the
start of the payload tells them apart (``AUTH_CLASSES``).  The client's
replies all share identifier 'p'; only the phase tells them apart, which is
why the frontend decoder consults its phase for them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from .._wire import Reader, Writer
from ..constants import AuthenticationCode, ConnectionPhase
from ..exceptions import DecodingError
from ._base import REGISTRY, BackendMessage, FrontendMessage, OpaqueData, message

__all__ = [
    "AuthenticationCleartextPassword",
    "AuthenticationGSS",
    "AuthenticationGSSContinue",
    "AuthenticationKerberosV5",
    "AuthenticationMD5Password",
    "AuthenticationMessage",
    "AuthenticationOk",
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "AuthenticationSCMCredential",
    "AuthenticationSSPI",
    "GSSResponse",
    "PasswordMessage",
    "SASLInitialResponse",
    "SASLResponse",
]


@message(b"R")
class AuthenticationMessage(BackendMessage):
    """Base of the 'R' family; ``code`` selects the concrete class."""

    __slots__ = ()
    code: ClassVar[AuthenticationCode]

    def _write(self, w: Writer) -> None:
        w.int32(self.code, "code")
        self._write_rest(w)

    def _write_rest(self, w: Writer) -> None:
        """Fields after the code; none by default."""

    @classmethod
    def _parse_strict(cls, buf: bytes, start: int, end: int) -> Self:
        if cls is AuthenticationMessage:
            # The 'R' family as a whole: the code picks the class.
            if end - start < 4:
                raise DecodingError("Authentication", 0, "authentication code needs 4 bytes")
            code = int.from_bytes(buf[start : start + 4], "big", signed=True)
            sub = AUTH_CLASSES.get(code)
            if sub is None:
                raise DecodingError("Authentication", 0, f"unknown authentication code {code}")
            msg = sub._parse_strict(buf, start, end)
            assert isinstance(msg, cls)
            return msg
        return super()._parse_strict(buf, start, end)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        got = r.int32()
        if got != cls.code:
            r.fail(f"authentication code {got} is not {int(cls.code)}", at=r.pos - 4)
        return cls._read_rest(r)

    @classmethod
    def _read_rest(cls, r: Reader) -> Self:
        return cls()


@message(b"R", code=AuthenticationCode.OK)
class AuthenticationOk(AuthenticationMessage):
    """Authentication succeeded."""


@message(b"R", code=AuthenticationCode.KERBEROS_V5)
class AuthenticationKerberosV5(AuthenticationMessage):
    """Kerberos V5 requested (no longer supported by PostgreSQL servers)."""


@message(b"R", code=AuthenticationCode.CLEARTEXT_PASSWORD)
class AuthenticationCleartextPassword(AuthenticationMessage):
    """The client must send its password in clear text."""


@message(b"R", code=AuthenticationCode.MD5_PASSWORD)
class AuthenticationMD5Password(AuthenticationMessage):
    """The client must send its MD5-hashed password, salted with ``salt``."""

    salt: bytes = b"\0\0\0\0"

    def _write_rest(self, w: Writer) -> None:
        if len(self.salt) != 4:
            w.fail("salt", f"must be exactly 4 bytes, not {len(self.salt)}")
        w.raw(self.salt, "salt")

    @classmethod
    def _read_rest(cls, r: Reader) -> Self:
        return cls(salt=r.bytes_n(4))


@message(b"R", code=AuthenticationCode.SCM_CREDENTIAL)
class AuthenticationSCMCredential(AuthenticationMessage):
    """SCM credential message requested (no longer used by PostgreSQL)."""


@message(b"R", code=AuthenticationCode.GSS)
class AuthenticationGSS(AuthenticationMessage):
    """The client must start a GSSAPI exchange."""


@message(b"R", code=AuthenticationCode.SSPI)
class AuthenticationSSPI(AuthenticationMessage):
    """The client must start an SSPI exchange."""


@dataclass(slots=True)
class _AuthData(AuthenticationMessage):
    """An authentication request whose payload ends with opaque data."""

    data: bytes = b""

    def _write_rest(self, w: Writer) -> None:
        w.raw(self.data, "data")

    @classmethod
    def _read_rest(cls, r: Reader) -> Self:
        return cls(data=r.rest())


@message(b"R", code=AuthenticationCode.GSS_CONTINUE)
class AuthenticationGSSContinue(_AuthData):
    """GSSAPI or SSPI data from the server."""


@message(b"R", code=AuthenticationCode.SASL_CONTINUE)
class AuthenticationSASLContinue(_AuthData):
    """A SASL challenge from the server."""


@message(b"R", code=AuthenticationCode.SASL_FINAL)
class AuthenticationSASLFinal(_AuthData):
    """SASL outcome data; authentication is complete on the SASL side."""


@message(b"R", code=AuthenticationCode.SASL)
class AuthenticationSASL(AuthenticationMessage):
    """The client must start SASL with one of ``mechanisms``."""

    mechanisms: list[str] = field(default_factory=list)

    def _write_rest(self, w: Writer) -> None:
        for name in self.mechanisms:
            # An empty name is the list terminator on the wire.  (``not``
            # rather than ``== ""``: a bytes name must not trip -bb.)
            if not name:
                w.fail("mechanisms", "a mechanism name cannot be empty")
            w.cstring(name, "mechanisms")
        w.raw(b"\0", "mechanisms")

    @classmethod
    def _read_rest(cls, r: Reader) -> Self:
        names: list[str] = []
        while name := r.cstring():
            names.append(name)
        return cls(mechanisms=names)


#: Authentication code -> message class, for the 'R' dispatch.
AUTH_CLASSES: dict[int, type[AuthenticationMessage]] = {
    d.code: d.cls
    for d in REGISTRY
    if d.code is not None and issubclass(d.cls, AuthenticationMessage)
}


@message(b"p")  # decoded as such outside the other exchanges' phases
class PasswordMessage(FrontendMessage):
    """A password (cleartext or ``md5``-hashed) as a NUL-terminated string.

    ``password`` decodes to ``str`` when it is valid UTF-8 and to ``bytes``
    otherwise: PostgreSQL compares passwords as bytes in the client's
    encoding, so a non-UTF-8 password must survive a round trip unchanged.
    """

    password: str | bytes = ""

    def _write(self, w: Writer) -> None:
        w.cstring(self.password, "password")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        raw = r.cstring_bytes()
        try:
            return cls(password=raw.decode("utf-8"))
        except UnicodeDecodeError:
            return cls(password=raw)


@message(b"p", decoded_in=(ConnectionPhase.AUTHENTICATING_GSS,))
class GSSResponse(OpaqueData, FrontendMessage):
    """GSSAPI or SSPI data from the client (identifier 'p')."""

    data: bytes = b""


@message(b"p", decoded_in=(ConnectionPhase.AUTHENTICATING_SASL_INITIAL,))
class SASLInitialResponse(FrontendMessage):
    """The chosen SASL mechanism and the client's first message.

    On the wire the data length -1 means "no initial response"; that is
    decoded to, and encoded from, ``data=None``.
    """

    mechanism: str = ""
    data: bytes | None = b""

    def _write(self, w: Writer) -> None:
        w.cstring(self.mechanism, "mechanism")
        w.value(self.data, "data")

    @classmethod
    def _read(cls, r: Reader) -> Self:
        mechanism = r.cstring()
        return cls(mechanism=mechanism, data=r.value())


@message(b"p", decoded_in=(ConnectionPhase.AUTHENTICATING_SASL_CONTINUE,))
class SASLResponse(OpaqueData, FrontendMessage):
    """A SASL message from the client after the first."""

    data: bytes = b""
