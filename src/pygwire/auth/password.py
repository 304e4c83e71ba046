"""MD5 and cleartext password authentication, both roles.

What a server stores for a password is one of three things, as in
PostgreSQL's ``pg_authid.rolpassword``: the plain password (for servers
that keep it), ``md5`` + md5(password + user), or a SCRAM-SHA-256 verifier.
The check functions accept any of them where the method allows.
"""

from __future__ import annotations

import hashlib
import hmac

from .scram import SCRAM_SHA_256, ScramVerifier

__all__ = ["md5_password", "md5_stored", "verify_cleartext", "verify_md5"]


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _to_bytes(s: str | bytes) -> bytes:
    return s.encode("utf-8") if isinstance(s, str) else s


def md5_stored(user: str, password: str | bytes) -> str:
    """What PostgreSQL stores for an MD5 password: ``md5`` + md5(password + user)."""
    return "md5" + _md5_hex(_to_bytes(password) + user.encode("utf-8"))


def md5_password(user: str, password: str | bytes, salt: bytes) -> str:
    """The client's answer to AuthenticationMD5Password.

    ``md5`` + md5(md5(password + user) + salt), with the inner digest in hex.
    """
    inner = md5_stored(user, password)[3:]
    return "md5" + _md5_hex(inner.encode("ascii") + salt)


def _is_md5_stored(stored: str) -> bool:
    return len(stored) == 35 and stored.startswith("md5")


def verify_md5(stored: str, user: str, salt: bytes, response: str | bytes) -> bool:
    """Check an MD5 answer against a plain or ``md5``-stored password.

    A SCRAM verifier cannot answer an MD5 challenge (PostgreSQL switches
    such users to SCRAM); False is returned for it.
    """
    if stored.startswith(SCRAM_SHA_256 + "$"):
        return False
    hashed = stored if _is_md5_stored(stored) else md5_stored(user, stored)
    expected = "md5" + _md5_hex(hashed[3:].encode("ascii") + salt)
    return hmac.compare_digest(expected.encode("ascii"), _to_bytes(response))


def verify_cleartext(stored: str, user: str, password: str | bytes) -> bool:
    """Check a cleartext password against any stored form."""
    if stored.startswith(SCRAM_SHA_256 + "$"):
        try:
            return ScramVerifier.parse(stored).check_password(password)
        except ValueError:
            return False
    if _is_md5_stored(stored):
        return hmac.compare_digest(md5_stored(user, password).encode(), stored.encode())
    return hmac.compare_digest(_to_bytes(password), stored.encode("utf-8"))
