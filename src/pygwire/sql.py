"""Split a simple-query string into statements, by PostgreSQL's lexical rules.

A Query message may carry several statements separated by semicolons;
PostgreSQL runs them one after another and answers each (CommandComplete,
rows, ...), then sends one ReadyForQuery.  A server built on pygwire must
find the same statement boundaries, which means skipping the semicolons
that sit inside quoted text: single-quoted strings (``''`` doubles a
quote), escape strings ``E'...'`` (a backslash escapes the next
character), quoted identifiers (``""`` doubles a quote), dollar-quoted
strings (``$$...$$``, ``$tag$...$tag$``), ``--`` line comments and nested
``/* */`` block comments.

Decisions, following what PostgreSQL itself does:

* Statements that are empty (only whitespace and comments) are dropped,
  as the server's grammar drops them: ``"select 1;;"`` is one statement,
  and ``";"`` or ``"-- nothing"`` is none (a server answers a query
  without statements with EmptyQueryResponse).
* A statement is returned as the text between its semicolons, without
  the semicolon and without surrounding whitespace; comments inside or
  before it are kept.
* An unterminated quoted string, quoted identifier, dollar-quoted string
  or block comment, and a zero-length quoted identifier (``""``), are
  lexical errors: PostgreSQL reports them (SQLSTATE 42601) before running
  any statement of the query, and :class:`SqlSyntaxError` carries the
  same code and the position to report.
* ``standard_conforming_strings`` is on by default, as in every
  PostgreSQL since 9.1; with it off, backslashes also escape inside
  plain single-quoted strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final, NamedTuple

from .exceptions import PygwireError

__all__ = [
    "SqlSyntaxError",
    "Token",
    "command_keyword",
    "is_empty",
    "parameters",
    "split_statements",
    "statement_spans",
    "tokens",
]


class SqlSyntaxError(PygwireError):
    """The query text cannot be split: an unterminated quote or comment.

    ``reason`` is PostgreSQL's wording (``unterminated quoted string``),
    ``offset`` the 0-based index in the query string where the offending
    construct starts, ``position`` the same as a 1-based character
    position (the ErrorResponse ``P`` field), and ``sqlstate`` is 42601
    (syntax_error).
    """

    sqlstate: Final = "42601"

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at position {offset + 1}")
        self.reason = reason
        self.offset = offset
        self.position = offset + 1


# The lexer's {space}: the six ASCII whitespace characters.
_SPACE: Final = " \t\n\r\v\f"
_NEWLINE: Final = "\n\r"
# Identifier characters, as in PostgreSQL's lexer (bytes 0x80-0xFF there:
# every non-ASCII character here).  A dollar quote's tag follows the same
# rules but cannot contain "$".
_IDENT_START = re.compile(r"[A-Za-z_\x80-\U0010ffff]")
_IDENT_REST = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]*")
_NUMBER_REST = re.compile(r"[A-Za-z0-9_.\x80-\U0010ffff]*")
_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
# What may separate the parts of one string constant ('a' <newline> 'b'):
# whitespace and -- comments, with at least one newline among them.
_CONTINUATION = re.compile(r"(?:[ \t\n\r\v\f]|--[^\n\r]*)*")


_COMMENT_MARK = re.compile(r"/\*|\*/")
_LINE_END = re.compile(r"[\n\r]")
_QUOTE = re.compile(r"'")
_QUOTE_OR_BACKSLASH = re.compile(r"['\\]")


def _skip_block_comment(sql: str, start: int) -> int:
    """Index after the ``*/`` that closes the comment opened at ``start`` (nesting)."""
    depth = 0
    i = start
    # One search for whichever mark comes first keeps this linear however
    # many comments a query holds.
    while (mark := _COMMENT_MARK.search(sql, i)) is not None:
        i = mark.end()
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return i
    raise SqlSyntaxError("unterminated /* comment", start)


def _skip_quoted(sql: str, start: int, quote_at: int, backslashes: bool) -> int:
    """Index after a single-quoted constant whose opening quote is at ``quote_at``.

    ``start`` is where the token began (an ``E`` prefix, say), for the
    error position.  A constant may continue after a newline with another
    quoted part, in the same mode (so ``E'a'`` <newline> ``'\\''`` is one
    escape string).
    """
    i = quote_at + 1
    n = len(sql)
    special = _QUOTE_OR_BACKSLASH if backslashes else _QUOTE
    while True:
        found = special.search(sql, i)
        if found is None:
            raise SqlSyntaxError("unterminated quoted string", start)
        i = found.start()
        c = sql[i]
        if c == "'":
            if sql.startswith("'", i + 1):
                i += 2  # '' is a quote inside the string
                continue
            gap = _CONTINUATION.match(sql, i + 1)
            assert gap is not None
            j = gap.end()
            if j < n and sql[j] == "'" and any(ch in _NEWLINE for ch in gap.group()):
                i = j + 1
                continue
            return i + 1
        i += 2  # a backslash escapes the next character
        if i > n:
            raise SqlSyntaxError("unterminated quoted string", start)


def _tokens(sql: str, standard_conforming_strings: bool) -> Iterator[tuple[str, int, int]]:
    """Yields ``(kind, start, end)`` for each token; whitespace and comments are skipped.

    Kinds: ``";"``, ``"word"`` (identifier or keyword), ``"string"``,
    ``"ident"`` (quoted identifier), ``"dollar"``, ``"number"`` and
    ``"other"`` (operators, punctuation, parameters' ``$``).
    """
    i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        if c in _SPACE:
            i += 1
        elif c == "-" and sql.startswith("--", i):
            line_end = _LINE_END.search(sql, i)
            i = n if line_end is None else line_end.start()
        elif c == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == ";":
            yield ";", i, i + 1
            i += 1
        elif c == "'":
            end = _skip_quoted(sql, i, i, not standard_conforming_strings)
            yield "string", i, end
            i = end
        elif c == '"':
            j = i + 1
            while True:
                j = sql.find('"', j)
                if j < 0:
                    raise SqlSyntaxError("unterminated quoted identifier", i)
                if sql.startswith('"', j + 1):
                    j += 2  # "" is a quote inside the identifier
                    continue
                break
            if j == i + 1:
                raise SqlSyntaxError("zero-length delimited identifier", i)
            yield "ident", i, j + 1
            i = j + 1
        elif c == "$":
            m = _DOLLAR_QUOTE.match(sql, i)
            if m is None:
                yield "other", i, i + 1  # a parameter ($1) or a stray $
                i += 1
                continue
            close = sql.find(m.group(), m.end())
            if close < 0:
                raise SqlSyntaxError("unterminated dollar-quoted string", i)
            end = close + len(m.group())
            yield "dollar", i, end
            i = end
        elif _IDENT_START.match(c):
            rest = _IDENT_REST.match(sql, i + 1)
            assert rest is not None
            j = rest.end()
            # E'...' is an escape string only when the E is a token of its
            # own: in "one'...'", the e belongs to the identifier.
            if j == i + 1 and c in "eE" and sql.startswith("'", j):
                end = _skip_quoted(sql, i, j, True)
                yield "string", i, end
                i = end
                continue
            yield "word", i, j
            i = j
        elif c.isascii() and c.isdigit():
            rest = _NUMBER_REST.match(sql, i + 1)
            assert rest is not None
            yield "number", i, rest.end()
            i = rest.end()
        else:
            yield "other", i, i + 1
            i += 1


def statement_spans(sql: str, *, standard_conforming_strings: bool = True) -> list[tuple[int, int]]:
    """``(start, end)`` of each non-empty statement in ``sql``, in order.

    ``sql[start:end]`` is the statement without its semicolon and without
    surrounding whitespace; offsets let a server translate an error
    position inside one statement into a position in the whole query.
    Raises :class:`SqlSyntaxError` for an unterminated quote or comment.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    has_token = False
    for kind, _tok_start, tok_end in _tokens(sql, standard_conforming_strings):
        if kind == ";":
            if has_token:
                spans.append(_trim(sql, start, _tok_start))
            start = tok_end
            has_token = False
        else:
            has_token = True
    if has_token:
        spans.append(_trim(sql, start, len(sql)))
    return spans


def _trim(sql: str, start: int, end: int) -> tuple[int, int]:
    while start < end and sql[start] in _SPACE:
        start += 1
    while end > start and sql[end - 1] in _SPACE:
        end -= 1
    return start, end


def split_statements(sql: str, *, standard_conforming_strings: bool = True) -> list[str]:
    """The statements of a simple-query string, empty ones dropped.

    ``"select 1; select ';'"`` gives ``["select 1", "select ';'"]``; a
    string with only whitespace, comments and semicolons gives ``[]``.
    Raises :class:`SqlSyntaxError` for an unterminated quote or comment.
    """
    return [
        sql[start:end]
        for start, end in statement_spans(
            sql, standard_conforming_strings=standard_conforming_strings
        )
    ]


def is_empty(sql: str, *, standard_conforming_strings: bool = True) -> bool:
    """True if ``sql`` holds no statement: only whitespace, comments and semicolons.

    PostgreSQL answers such a query with EmptyQueryResponse.  Raises
    :class:`SqlSyntaxError` for an unterminated comment or quote.
    """
    return not statement_spans(sql, standard_conforming_strings=standard_conforming_strings)


def command_keyword(statement: str, *, standard_conforming_strings: bool = True) -> str | None:
    """The first word of a statement, upper-cased: ``"SELECT"``, ``"BEGIN"``, ``"WITH"``.

    Leading whitespace and comments are skipped.  None when the statement
    is empty or does not start with a plain ASCII word (``(select 1)``, a
    quoted identifier).  Only the first token is looked at, so an
    unterminated quote further on does not raise.
    """
    for kind, start, end in _tokens(statement, standard_conforming_strings):
        word = statement[start:end]
        if kind == "word" and word.isascii():
            return word.upper()
        return None
    return None


class Token(NamedTuple):
    """One lexical token of a SQL string: ``sql[start:end]`` is its text.

    ``kind`` is ``";"``, ``"word"`` (an identifier or keyword),
    ``"string"`` (a quoted constant, prefixes such as ``E`` included),
    ``"ident"`` (a quoted identifier), ``"dollar"`` (a dollar-quoted
    string), ``"number"``, ``"param"`` (a positional parameter ``$1``) or
    ``"other"`` (one character of an operator or punctuation: ``::`` is two
    tokens).
    """

    kind: str
    start: int
    end: int


def tokens(sql: str, *, standard_conforming_strings: bool = True) -> list[Token]:
    """The tokens of ``sql`` in order; whitespace and comments are skipped.

    A server uses them to look at a statement without being fooled by
    quoted text: the parameters it holds, the cast after an expression, the
    name after ``FETCH``.  Raises :class:`SqlSyntaxError` for an
    unterminated quote or comment.
    """
    found: list[Token] = []
    for kind, start, end in _tokens(sql, standard_conforming_strings):
        previous = found[-1] if found else None
        # The lexer's {param}: "$" directly followed by decimal digits.
        if (
            kind == "number"
            and previous is not None
            and previous.kind == "other"
            and previous.end == start
            and sql[previous.start] == "$"
            and sql[start:end].isdigit()
            and sql[start:end].isascii()
        ):
            found[-1] = Token("param", previous.start, end)
            continue
        found.append(Token(kind, start, end))
    return found


def parameters(sql: str, *, standard_conforming_strings: bool = True) -> list[int]:
    """The numbers of the positional parameters ``sql`` uses, in order of
    appearance, repeats kept: ``"select $2, $1, $2"`` gives ``[2, 1, 2]``.

    ``$1`` inside quoted text, quoted identifiers or comments is not a
    parameter.  A statement needs as many parameter values as the largest
    number (PostgreSQL counts ``$3`` alone as three parameters).
    """
    return [
        int(sql[tok.start + 1 : tok.end])
        for tok in tokens(sql, standard_conforming_strings=standard_conforming_strings)
        if tok.kind == "param"
    ]
