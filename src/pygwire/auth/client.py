"""The client's side of authentication as one object: message in, answer out.

:class:`ClientAuthenticator` answers each Authentication request with the
frontend message to send.  It also enforces the policies that protect a
client from a server that is not the one it meant to reach:

* with ``channel_binding="require"`` no password material is sent unless
  the server offers SCRAM-SHA-256-PLUS over TLS (cleartext, MD5 and plain
  SCRAM requests are refused), and an AuthenticationOk that did not follow
  a completed, channel-bound SCRAM exchange is refused;
* in every mode, an AuthenticationOk in the middle of a SCRAM exchange is
  refused: only a server that proved it knows the password may skip ahead.
"""

from __future__ import annotations

from ..exceptions import AuthenticationError
from ..messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationMessage,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    FrontendMessage,
    PasswordMessage,
    SASLInitialResponse,
    SASLResponse,
)
from .password import md5_password
from .scram import (
    DEFAULT_ITERATIONS,
    DEFAULT_MAX_ITERATIONS,
    SCRAM_SHA_256_PLUS,
    ChannelBinding,
    ScramClient,
)

__all__ = ["ClientAuthenticator"]


class ClientAuthenticator:
    """Answers one connection's authentication requests.

    ``tls_certificate`` is the server's DER certificate when the connection
    runs over TLS, None otherwise.  Call :meth:`handle` with every
    Authentication message received; send what it returns (None means
    nothing to send).  :attr:`authenticated` is True after AuthenticationOk.
    """

    def __init__(
        self,
        user: str,
        password: str | bytes | None,
        *,
        channel_binding: ChannelBinding = "prefer",
        tls_certificate: bytes | None = None,
        min_iterations: int = DEFAULT_ITERATIONS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
    ) -> None:
        if channel_binding not in ("disable", "prefer", "require"):
            raise ValueError(
                f"channel_binding must be disable, prefer or require, not {channel_binding!r}"
            )
        self.user = user
        self.password = password
        self.channel_binding = channel_binding
        self.tls_certificate = tls_certificate
        self.min_iterations = min_iterations
        """SCRAM iteration counts accepted from the server: below the minimum is
        weak (RFC 7677 recommends 4096), above the maximum a denial of service
        (DEFAULT_MAX_ITERATIONS, a million, unless raised here)."""
        self.max_iterations = max_iterations
        self.scram: ScramClient | None = None
        self.authenticated = False

    def _password(self, method: str) -> str | bytes:
        if self.channel_binding == "require":
            raise AuthenticationError(
                f"channel binding is required, but the server asked for {method}; "
                "refusing to send password material",
                "28000",
            )
        if self.password is None:
            raise AuthenticationError(f"the server asked for {method}, but no password is set")
        return self.password

    def handle(self, msg: AuthenticationMessage) -> FrontendMessage | None:
        """The answer to ``msg``, or None; AuthenticationError to give up."""
        if isinstance(msg, AuthenticationOk):
            self._check_ok()
            self.authenticated = True
            return None
        if isinstance(msg, AuthenticationCleartextPassword):
            return PasswordMessage(password=self._password("a cleartext password"))
        if isinstance(msg, AuthenticationMD5Password):
            password = self._password("an MD5 password")
            return PasswordMessage(password=md5_password(self.user, password, msg.salt))
        if isinstance(msg, AuthenticationSASL):
            if self.scram is not None:
                raise AuthenticationError("the server restarted SASL authentication")
            if self.password is None:
                raise AuthenticationError("the server asked for SCRAM, but no password is set")
            self.scram = ScramClient(
                self.password,
                msg.mechanisms,
                channel_binding=self.channel_binding,
                tls_certificate=self.tls_certificate,
                min_iterations=self.min_iterations,
                max_iterations=self.max_iterations,
            )
            return SASLInitialResponse(
                mechanism=self.scram.mechanism, data=self.scram.client_first()
            )
        if isinstance(msg, AuthenticationSASLContinue):
            if self.scram is None:
                raise AuthenticationError("SASL challenge without a SASL exchange")
            return SASLResponse(data=self.scram.client_final(msg.data))
        if isinstance(msg, AuthenticationSASLFinal):
            if self.scram is None:
                raise AuthenticationError("SASL outcome without a SASL exchange")
            self.scram.verify_server_final(msg.data)
            return None
        raise AuthenticationError(f"unsupported authentication method: {type(msg).__name__}")

    def _check_ok(self) -> None:
        if self.scram is not None and not self.scram.done:
            raise AuthenticationError(
                "the server sent AuthenticationOk before the SCRAM exchange completed"
            )
        if self.channel_binding == "require" and (
            self.scram is None or self.scram.mechanism != SCRAM_SHA_256_PLUS
        ):
            raise AuthenticationError(
                "channel binding is required, but the server authenticated the client without it",
                "28000",
            )
