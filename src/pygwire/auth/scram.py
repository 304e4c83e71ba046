"""SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) for both roles.

These classes produce and consume the SASL payloads that travel inside
SASLInitialResponse / SASLResponse and AuthenticationSASLContinue /
AuthenticationSASLFinal; they do no I/O and know nothing of sockets.

PostgreSQL's profile of SCRAM: the user name in the client-first message
is ignored (the startup packet's ``user`` counts) and sent empty; passwords
go through :func:`~pygwire.auth.saslprep.prepare_password`; channel binding
is ``tls-server-end-point`` only.  Every message is parsed strictly, and
everything the peer controls is bounded (message size, iteration count)
so that a hostile peer gets an :class:`AuthenticationError`, never a hang.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from ..exceptions import AuthenticationError
from .channel_binding import CertificateError, tls_server_end_point
from .saslprep import prepare_password

__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_MAX_ITERATIONS",
    "SCRAM_SHA_256",
    "SCRAM_SHA_256_PLUS",
    "ChannelBinding",
    "ScramClient",
    "ScramServer",
    "ScramVerifier",
]

SCRAM_SHA_256 = "SCRAM-SHA-256"
"""The SASL mechanism name of SCRAM-SHA-256."""
SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"
"""The SASL mechanism name of SCRAM-SHA-256 with channel binding
(``tls-server-end-point``)."""
_CB_TYPE = "tls-server-end-point"

ChannelBinding = Literal["disable", "prefer", "require"]
"""libpq's ``channel_binding`` modes."""

#: No legitimate SCRAM message comes near this; a larger one is hostile.
MAX_SCRAM_MESSAGE = 4096
DEFAULT_ITERATIONS = 4096
"""The fewest SCRAM iterations a client accepts by default, as RFC 7677
recommends; also the count verifiers are made with (PostgreSQL's
``scram_iterations`` default)."""
DEFAULT_MAX_ITERATIONS = 1_000_000
"""The most iterations a client computes for a server it has not yet
authenticated: each one is a round of HMAC-SHA-256, and a hostile server
could ask for billions.  A million takes a fraction of a second."""
_NONCE_BYTES = 18
_KEY_LEN = 32  # SHA-256
#: Default for ScramServer's ``mock_secret``: one random value per process,
#: so that an unknown user gets the same mock salt on every attempt (as
#: PostgreSQL's cluster-wide mock authentication nonce gives).  A fresh
#: random salt per attempt would reveal that the user does not exist.
_PROCESS_MOCK_SECRET = secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str, sqlstate: str = "08P01") -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise AuthenticationError(f"SCRAM {what} is not valid base64", sqlstate) from None


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.digest(key, msg, "sha256")


def _salted_password(password: str | bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", prepare_password(password), salt, iterations)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _text(data: bytes, what: str) -> str:
    """A SCRAM message as text: bounded, printable ASCII except in names."""
    if len(data) > MAX_SCRAM_MESSAGE:
        raise AuthenticationError(f"SCRAM {what} of {len(data)} bytes is too long")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError(f"SCRAM {what} is not valid UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise AuthenticationError(f"SCRAM {what} contains control characters")
    return text


def _attributes(text: str, names: str, what: str) -> list[str]:
    """Split ``a=..,b=..`` and check the attribute names, in order."""
    parts = text.split(",")
    if len(parts) != len(names):
        raise AuthenticationError(f"SCRAM {what} has {len(parts)} attributes, expected {names!r}")
    values = []
    for part, name in zip(parts, names, strict=True):
        if part[:2] != name + "=":
            raise AuthenticationError(
                f"SCRAM {what}: expected attribute {name!r}, got {part[:2]!r}"
            )
        values.append(part[2:])
    return values


def _check_nonce(nonce: str, what: str) -> None:
    if not nonce or any(not 0x21 <= ord(c) <= 0x7E or c == "," for c in nonce):
        raise AuthenticationError(f"SCRAM {what} nonce is empty or not printable ASCII")


@dataclass(frozen=True, slots=True)
class ScramVerifier:
    """A stored SCRAM-SHA-256 secret, in PostgreSQL's ``pg_authid`` format:
    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(
        cls,
        password: str | bytes,
        *,
        salt: bytes | None = None,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> ScramVerifier:
        """Make a verifier the way PostgreSQL does (16 random salt bytes)."""
        if iterations < 1:
            raise ValueError("iterations must be at least 1")
        salt = secrets.token_bytes(16) if salt is None else salt
        salted = _salted_password(password, salt, iterations)
        return cls(
            iterations=iterations,
            salt=salt,
            stored_key=hashlib.sha256(_hmac(salted, b"Client Key")).digest(),
            server_key=_hmac(salted, b"Server Key"),
        )

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        """Read PostgreSQL's format; ValueError if it is not one."""
        try:
            mech, params, keys = text.split("$")
            iters, salt = params.split(":")
            stored, server = keys.split(":")
            # ASCII digits only: str.isdigit() also accepts e.g. fullwidth
            # digits, which int() reads but PostgreSQL's strtol() rejects.
            if mech != SCRAM_SHA_256 or not (iters.isascii() and iters.isdigit()):
                raise ValueError
            verifier = cls(
                iterations=int(iters),
                salt=binascii.a2b_base64(salt, strict_mode=True),
                stored_key=binascii.a2b_base64(stored, strict_mode=True),
                server_key=binascii.a2b_base64(server, strict_mode=True),
            )
        except (ValueError, binascii.Error):
            raise ValueError("not a SCRAM-SHA-256 verifier") from None
        if (
            verifier.iterations < 1
            or len(verifier.stored_key) != _KEY_LEN
            or (len(verifier.server_key) != _KEY_LEN)
        ):
            raise ValueError("not a SCRAM-SHA-256 verifier")
        return verifier

    def __str__(self) -> str:
        return (
            f"{SCRAM_SHA_256}${self.iterations}:{_b64(self.salt)}"
            f"${_b64(self.stored_key)}:{_b64(self.server_key)}"
        )

    def check_password(self, password: str | bytes) -> bool:
        """True if ``password`` produces this verifier (for cleartext auth)."""
        salted = _salted_password(password, self.salt, self.iterations)
        stored = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
        return hmac.compare_digest(stored, self.stored_key)


class ScramClient:
    """The client side of one SCRAM exchange.

    ``mechanisms`` are those offered by AuthenticationSASL.  ``tls_certificate``
    is the server's DER certificate when the connection runs over TLS (what
    ``SSLSocket.getpeercert(binary_form=True)`` returns) and None otherwise.
    ``channel_binding`` follows libpq: ``require`` refuses to go on without
    SCRAM-SHA-256-PLUS; ``prefer`` uses it when possible; ``disable`` never.

    Use: :attr:`mechanism` and :meth:`client_first` for SASLInitialResponse,
    :meth:`client_final` on the AuthenticationSASLContinue data,
    :meth:`verify_server_final` on the AuthenticationSASLFinal data; then
    :attr:`done` is True.
    """

    def __init__(
        self,
        password: str | bytes,
        mechanisms: list[str],
        *,
        channel_binding: ChannelBinding = "prefer",
        tls_certificate: bytes | None = None,
        min_iterations: int = DEFAULT_ITERATIONS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        nonce: str | None = None,
    ) -> None:
        self._password = password
        self.min_iterations = min_iterations
        self.max_iterations = max_iterations
        self.done = False
        cb_data = b""
        plus_offered = SCRAM_SHA_256_PLUS in mechanisms
        if channel_binding == "require" and not (plus_offered and tls_certificate is not None):
            raise AuthenticationError(
                "channel binding is required, but the server does not offer "
                f"{SCRAM_SHA_256_PLUS}" + ("" if tls_certificate else " over a TLS connection"),
                "28000",
            )
        if plus_offered and tls_certificate is not None and channel_binding != "disable":
            self.mechanism = SCRAM_SHA_256_PLUS
            self._gs2 = f"p={_CB_TYPE},,"
            try:
                cb_data = tls_server_end_point(tls_certificate)
            except CertificateError as exc:
                raise AuthenticationError(f"cannot bind to the server certificate: {exc}") from None
        elif SCRAM_SHA_256 in mechanisms:
            self.mechanism = SCRAM_SHA_256
            # "y": we could bind, but the server seems not to support it; a
            # server that does will then detect the downgrade.
            can_bind = tls_certificate is not None and channel_binding != "disable"
            self._gs2 = "y,," if can_bind else "n,,"
        else:
            raise AuthenticationError(
                f"the server offers no supported SASL mechanism: {mechanisms!r}", "28000"
            )
        self._cbind = self._gs2.encode() + cb_data
        self._nonce = nonce or _b64(secrets.token_bytes(_NONCE_BYTES))
        _check_nonce(self._nonce, "client")
        self._first_bare = f"n=,r={self._nonce}"
        self._server_signature: bytes | None = None

    def client_first(self) -> bytes:
        """The client-first message (data of SASLInitialResponse)."""
        return (self._gs2 + self._first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        """Check the server-first message and answer with the proof."""
        if self._server_signature is not None:
            raise AuthenticationError("SCRAM server-first message received twice")
        text = _text(server_first, "server-first message")
        nonce, salt_b64, iters = _attributes(text, "rsi", "server-first message")
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise AuthenticationError("SCRAM server nonce does not extend the client nonce")
        _check_nonce(nonce, "server")
        salt = _unb64(salt_b64, "salt")
        if not salt:
            raise AuthenticationError("SCRAM salt is empty")
        if not iters.isdigit() or not iters.isascii() or len(iters) > 10:
            raise AuthenticationError(f"SCRAM iteration count {iters[:20]!r} is not a number")
        iterations = int(iters)
        if iterations < max(1, self.min_iterations):
            raise AuthenticationError(
                f"SCRAM iteration count {iterations} is below the minimum "
                f"{max(1, self.min_iterations)}"
            )
        if iterations > self.max_iterations:
            raise AuthenticationError(
                f"SCRAM iteration count {iterations} is above the maximum {self.max_iterations}"
            )
        salted = _salted_password(self._password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        final_bare = f"c={_b64(self._cbind)},r={nonce}"
        auth_message = f"{self._first_bare},{text},{final_bare}".encode()
        signature = _hmac(hashlib.sha256(client_key).digest(), auth_message)
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return f"{final_bare},p={_b64(_xor(client_key, signature))}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        """Check the server's signature; raise AuthenticationError if wrong."""
        if self._server_signature is None:
            raise AuthenticationError("SCRAM server-final message before server-first")
        text = _text(server_final, "server-final message")
        if text.startswith("e="):
            raise AuthenticationError(f"SCRAM server reported an error: {text[2:]}", "28000")
        (value,) = _attributes(text, "v", "server-final message")
        signature = _unb64(value, "server signature")
        if len(signature) != _KEY_LEN or not hmac.compare_digest(signature, self._server_signature):
            raise AuthenticationError("SCRAM server signature is wrong: the server is not genuine")
        self.done = True


class ScramServer:
    """The server side of one SCRAM exchange.

    ``verifier`` is the user's stored secret, or None when the user does not
    exist or has no SCRAM secret: the exchange then runs on a mock salt
    derived from ``mock_secret`` and the user name, does the same work, and
    fails exactly as a wrong password does, so nothing reveals which.
    ``tls_certificate`` is the server's own DER certificate when the
    connection runs over TLS; only then is SCRAM-SHA-256-PLUS offered.

    Use: :attr:`mechanisms` for AuthenticationSASL, :meth:`server_first` on
    SASLInitialResponse, :meth:`server_final` on SASLResponse; after the
    latter returns, authentication succeeded.  Failures raise
    :class:`AuthenticationError` carrying PostgreSQL's SQLSTATE.
    """

    def __init__(
        self,
        verifier: ScramVerifier | str | None,
        *,
        user: str = "",
        tls_certificate: bytes | None = None,
        mock_secret: bytes = b"",
        nonce: str | None = None,
    ) -> None:
        if isinstance(verifier, str):
            try:
                verifier = ScramVerifier.parse(verifier)
            except ValueError:
                verifier = None
        self._real = verifier is not None
        if verifier is None:
            mock = _hmac(mock_secret or _PROCESS_MOCK_SECRET, user.encode())
            verifier = ScramVerifier(
                DEFAULT_ITERATIONS, mock[:16], secrets.token_bytes(32), secrets.token_bytes(32)
            )
        self._verifier = verifier
        self._user = user
        self._cb_data = tls_server_end_point(tls_certificate) if tls_certificate else None
        self.mechanisms = ([SCRAM_SHA_256_PLUS] if self._cb_data else []) + [SCRAM_SHA_256]
        self._nonce_part = nonce or _b64(secrets.token_bytes(_NONCE_BYTES))
        self._state = "first"

    def _fail(self) -> AuthenticationError:
        return AuthenticationError(
            f'password authentication failed for user "{self._user}"', "28P01"
        )

    def server_first(self, mechanism: str, client_first: bytes | None) -> bytes:
        """Check the client-first message; answer with salt and iterations."""
        if self._state != "first":
            raise AuthenticationError("SCRAM client-first message out of order")
        if mechanism not in self.mechanisms:
            raise AuthenticationError(f"client selected an invalid SASL mechanism {mechanism!r}")
        if client_first is None:
            raise AuthenticationError("SCRAM requires an initial client response")
        text = _text(client_first, "client-first message")
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise AuthenticationError("malformed SCRAM client-first message")
        flag, authzid, bare = parts
        plus = mechanism == SCRAM_SHA_256_PLUS
        if flag == "p=" + _CB_TYPE:
            if not plus:
                raise AuthenticationError(
                    "client requested channel binding but selected a mechanism without it"
                )
        elif flag.startswith("p="):
            raise AuthenticationError(f"unsupported SCRAM channel-binding type {flag[2:]!r}")
        elif plus:
            raise AuthenticationError(
                f"client selected {SCRAM_SHA_256_PLUS} without requesting channel binding"
            )
        elif flag == "y":
            if self._cb_data is not None:
                # The client could bind and believes we cannot: something
                # between us removed -PLUS from the offer.
                raise AuthenticationError(
                    "client supports SCRAM channel binding but thinks the server does not; "
                    "this server does support it (possible downgrade attack)",
                    "28000",  # PostgreSQL: ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
                )
        elif flag != "n":
            raise AuthenticationError(f"unexpected SCRAM channel-binding flag {flag!r}")
        if authzid:
            raise AuthenticationError(
                "client uses an authorization identity, which is not supported",
                "0A000",  # PostgreSQL: ERRCODE_FEATURE_NOT_SUPPORTED
            )
        if bare.startswith("m="):
            # A mandatory extension; PostgreSQL: ERRCODE_FEATURE_NOT_SUPPORTED.
            raise AuthenticationError("client requires an unsupported SCRAM extension", "0A000")
        if not bare.startswith("n="):
            raise AuthenticationError("SCRAM client-first message lacks the user name attribute")
        # n=name,r=nonce[,extensions].  PostgreSQL ignores the name and, as
        # RFC 5802 requires, any optional extension after the nonce (each
        # still an attribute: a letter and "="); refusing them, as this did
        # before, turned away clients that PostgreSQL accepts.
        _user, *after_user = bare.split(",")
        if (
            not after_user
            or not after_user[0].startswith("r=")
            or not all(
                ext[:1].isascii() and ext[:1].isalpha() and ext[1:2] == "="
                for ext in after_user[1:]
            )
        ):
            raise AuthenticationError("malformed SCRAM client-first message (nonce)")
        nonce_attr = after_user[0][2:]
        _check_nonce(nonce_attr, "client")
        self._gs2 = f"{flag},,".encode()
        self._nonce = nonce_attr + self._nonce_part
        v = self._verifier
        self._server_first = f"r={self._nonce},s={_b64(v.salt)},i={v.iterations}"
        self._auth_prefix = f"{bare},{self._server_first},"
        self._state = "final"
        return self._server_first.encode()

    def server_final(self, client_final: bytes) -> bytes:
        """Verify the client's proof; answer with the server signature."""
        if self._state != "final":
            raise AuthenticationError("SCRAM client-final message out of order")
        self._state = "done"
        text = _text(client_final, "client-final message")
        head, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise AuthenticationError("SCRAM client-final message lacks the proof")
        fields = head.split(",")
        if len(fields) < 2 or fields[0][:2] != "c=" or fields[1][:2] != "r=":
            raise AuthenticationError("malformed SCRAM client-final message")
        expected_cbind = self._gs2 + (self._cb_data or b"" if self._gs2.startswith(b"p=") else b"")
        if _unb64(fields[0][2:], "channel binding") != expected_cbind:
            # PostgreSQL: a wrong binding is ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
            # a non-binding c= that does not repeat the gs2 header is malformed.
            bound = self._gs2.startswith(b"p=")
            raise AuthenticationError(
                "SCRAM channel binding check failed", "28000" if bound else "08P01"
            )
        if fields[1][2:] != self._nonce:
            raise AuthenticationError("SCRAM nonce does not match")
        proof = _unb64(proof_b64, "proof")
        if len(proof) != _KEY_LEN:
            raise AuthenticationError("malformed SCRAM proof")
        auth_message = (self._auth_prefix + head).encode()
        v = self._verifier
        client_key = _xor(proof, _hmac(v.stored_key, auth_message))
        genuine = hmac.compare_digest(hashlib.sha256(client_key).digest(), v.stored_key)
        if not (genuine and self._real):
            raise self._fail()
        return f"v={_b64(_hmac(v.server_key, auth_message))}".encode()
