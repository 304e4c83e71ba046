"""SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords.

PostgreSQL normalises a password with SASLprep when it can, and falls back
to the password's raw bytes when it cannot: when the password is not valid
UTF-8, or when SASLprep would reject it (a prohibited or unassigned
character, a bidirectional-text violation).  ASCII passwords are used as
they are.  Client and server must make the same choice or the proof will
not match, so :func:`prepare_password` mirrors that behaviour exactly.
"""

from __future__ import annotations

import stringprep
import unicodedata

__all__ = ["SASLprepError", "prepare_password", "saslprep"]


class SASLprepError(ValueError):
    """The string cannot be prepared (prohibited or unassigned character, bidi)."""


_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogates
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties / deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str) -> str:
    """Apply SASLprep with unassigned code points prohibited (stored strings)."""
    # 2.1 Mapping: non-ASCII spaces to SPACE, "commonly mapped to nothing" away.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # 2.2 Normalisation: NFKC.
    norm = unicodedata.normalize("NFKC", mapped)
    if not norm:
        return norm
    # 2.3 Prohibited output, and unassigned code points (RFC 3454 A.1).
    for ch in norm:
        if stringprep.in_table_a1(ch):
            raise SASLprepError(f"unassigned code point U+{ord(ch):04X}")
        for table in _PROHIBITED:
            if table(ch):
                raise SASLprepError(f"prohibited character U+{ord(ch):04X}")
    # 2.4 Bidirectional characters (RFC 3454 section 6).
    if any(stringprep.in_table_d1(ch) for ch in norm):
        if any(stringprep.in_table_d2(ch) for ch in norm):
            raise SASLprepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(norm[0]) and stringprep.in_table_d1(norm[-1])):
            raise SASLprepError("right-to-left text must start and end with an RTL character")
    return norm


def prepare_password(password: str | bytes) -> bytes:
    """The bytes PostgreSQL feeds to SCRAM for ``password``.

    ``str`` passwords are encoded as UTF-8 first; ``bytes`` are taken as the
    client sends them.  ASCII is used unchanged; otherwise SASLprep is
    applied, and if it fails the raw bytes are used, as PostgreSQL does.
    """
    raw = password.encode("utf-8", "surrogateescape") if isinstance(password, str) else password
    if raw.isascii():
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    try:
        return saslprep(text).encode("utf-8")
    except SASLprepError:
        return raw
