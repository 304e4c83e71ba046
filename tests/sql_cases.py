"""Texts the statement splitter must refuse, shared by the offline tests and
the ones against PostgreSQL (which must refuse them at the same places)."""

from __future__ import annotations

__all__ = ["ERRORS"]

# (query, reason, 0-based offset of the construct)
ERRORS: list[tuple[str, str, int]] = [
    ("select 'abc", "unterminated quoted string", 7),
    ("select 1; select 'x", "unterminated quoted string", 17),
    ("select E'abc\\'", "unterminated quoted string", 7),
    ("select 'a' \n 'b", "unterminated quoted string", 7),
    ("select $$abc", "unterminated dollar-quoted string", 7),
    ("select $t$abc$$", "unterminated dollar-quoted string", 7),
    ('select "abc', "unterminated quoted identifier", 7),
    ('select ""', "zero-length delimited identifier", 7),
    ("select /* abc", "unterminated /* comment", 7),
    ("select /* a /* b */", "unterminated /* comment", 7),
]
