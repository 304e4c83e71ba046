"""Authentication, sans-I/O, for clients, proxies and servers.

The bytes carried by the authentication messages, produced and checked:

* SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (tls-server-end-point channel
  binding), client and server, with PostgreSQL's verifier format;
* MD5 and cleartext passwords, client and server;
* :class:`ClientAuthenticator` and :class:`ServerAuthenticator`, which turn
  one Authentication message into the next one to send and enforce the
  policies (``channel_binding="require"``, no AuthenticationOk before a
  SCRAM exchange completed, indistinguishable unknown users).
"""

from .channel_binding import CertificateError, tls_server_end_point
from .client import ClientAuthenticator
from .password import md5_password, md5_stored, verify_cleartext, verify_md5
from .saslprep import prepare_password, saslprep
from .scram import (
    SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
    ChannelBinding,
    ScramClient,
    ScramServer,
    ScramVerifier,
)
from .server import AuthMethod, ServerAuthenticator, error_response

__all__ = [
    "SCRAM_SHA_256",
    "SCRAM_SHA_256_PLUS",
    "AuthMethod",
    "CertificateError",
    "ChannelBinding",
    "ClientAuthenticator",
    "ScramClient",
    "ScramServer",
    "ScramVerifier",
    "ServerAuthenticator",
    "error_response",
    "md5_password",
    "md5_stored",
    "prepare_password",
    "saslprep",
    "tls_server_end_point",
    "verify_cleartext",
    "verify_md5",
]
