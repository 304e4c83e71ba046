"""The server's side of authentication as one object: message in, answers out.

:class:`ServerAuthenticator` runs one method (``trust``, ``password``,
``md5`` or ``scram-sha-256``, the names of ``pg_hba.conf``) for one user.
It behaves like PostgreSQL where a client can observe it: an unknown user
is asked the same questions and fails with the same SQLSTATE and message
as a wrong password; a user whose password is stored as a SCRAM verifier
is switched from ``md5`` to SCRAM; SCRAM-SHA-256-PLUS is offered over TLS.
"""

from __future__ import annotations

import secrets
from typing import Literal

from ..exceptions import AuthenticationError
from ..messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendMessage,
    ErrorResponse,
    FrontendMessage,
    PasswordMessage,
    SASLInitialResponse,
    SASLResponse,
)
from .password import verify_cleartext, verify_md5
from .scram import SCRAM_SHA_256, ScramServer

__all__ = ["AuthMethod", "ServerAuthenticator", "error_response"]

AuthMethod = Literal["trust", "password", "md5", "scram-sha-256"]
"""The ``pg_hba.conf`` methods :class:`ServerAuthenticator` runs."""


def error_response(exc: AuthenticationError) -> ErrorResponse:
    """The FATAL ErrorResponse PostgreSQL would send for ``exc``."""
    return ErrorResponse(fields={"S": "FATAL", "V": "FATAL", "C": exc.sqlstate, "M": exc.message})


class ServerAuthenticator:
    """Authenticates one client with one method.

    ``stored`` is what the server keeps for the user: a plain password, an
    ``md5`` hash or a SCRAM verifier; None if the user does not exist.
    ``tls_certificate`` is the server's DER certificate when the connection
    runs over TLS.  Send what :meth:`start` returns, then pass each ``p``
    message to :meth:`handle` and send what it returns; AuthenticationOk
    comes last, after which :attr:`authenticated` is True.  Failures raise
    AuthenticationError (see :func:`error_response`).
    """

    def __init__(
        self,
        method: AuthMethod,
        user: str,
        stored: str | None,
        *,
        tls_certificate: bytes | None = None,
        mock_secret: bytes = b"",
    ) -> None:
        if method == "md5" and stored is not None and stored.startswith(SCRAM_SHA_256 + "$"):
            method = "scram-sha-256"  # as PostgreSQL: MD5 cannot use a SCRAM secret
        if method not in ("trust", "password", "md5", "scram-sha-256"):
            raise ValueError(f"unknown authentication method {method!r}")
        self.method = method
        self.user = user
        self.stored = stored
        self.authenticated = False
        self._salt = secrets.token_bytes(4)
        self._scram: ScramServer | None = None
        if method == "scram-sha-256":
            self._scram = ScramServer(
                stored, user=user, tls_certificate=tls_certificate, mock_secret=mock_secret
            )

    def _fail(self) -> AuthenticationError:
        return AuthenticationError(
            f'password authentication failed for user "{self.user}"', "28P01"
        )

    def _ok(self) -> list[BackendMessage]:
        self.authenticated = True
        return [AuthenticationOk()]

    def start(self) -> list[BackendMessage]:
        """The first message(s) to send after StartupMessage."""
        if self.method == "trust":
            return self._ok()
        if self.method == "password":
            return [AuthenticationCleartextPassword()]
        if self.method == "md5":
            return [AuthenticationMD5Password(salt=self._salt)]
        assert self._scram is not None
        return [AuthenticationSASL(mechanisms=self._scram.mechanisms)]

    def handle(self, msg: FrontendMessage) -> list[BackendMessage]:
        """Check the client's answer; return what to send next."""
        if self.authenticated:
            raise AuthenticationError("authentication is already complete")
        if isinstance(msg, PasswordMessage) and self.method in ("password", "md5"):
            if self.stored is None:
                raise self._fail()  # asked the same question; fail the same way
            if self.method == "password":
                ok = verify_cleartext(self.stored, self.user, msg.password)
            else:
                ok = verify_md5(self.stored, self.user, self._salt, msg.password)
            if not ok:
                raise self._fail()
            return self._ok()
        if self._scram is not None:
            if isinstance(msg, SASLInitialResponse):
                data = self._scram.server_first(msg.mechanism, msg.data)
                return [AuthenticationSASLContinue(data=data)]
            if isinstance(msg, SASLResponse):
                data = self._scram.server_final(msg.data)
                return [AuthenticationSASLFinal(data=data), *self._ok()]
        raise AuthenticationError(
            f"unexpected {type(msg).__name__} during {self.method} authentication"
        )
