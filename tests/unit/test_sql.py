"""pygwire.sql: statement splitting by PostgreSQL's lexical rules.

Hand-written tables check each rule (quotes, escape strings, dollar
quotes, comments, identifiers, empty statements, errors); the tests
against PostgreSQL 18 send whole multi-statement strings as one simple
Query and hold the splitter to what the server ran: as many results as
statements, and each statement alone giving the same result.
"""

from __future__ import annotations

import pytest

from pygwire.exceptions import PygwireError
from pygwire.sql import (
    SqlSyntaxError,
    command_keyword,
    is_empty,
    split_statements,
    statement_spans,
)
from sql_cases import ERRORS

__all__ = ["SPLITS"]

# (query string, the statements it holds)
SPLITS: list[tuple[str, list[str]]] = [
    ("select 1", ["select 1"]),
    ("select 1;", ["select 1"]),
    ("select 1; select 2", ["select 1", "select 2"]),
    ("  select 1  ;\n\tselect 2\n", ["select 1", "select 2"]),
    # empty statements are dropped
    ("", []),
    (";", []),
    (" ;; ; ", []),
    (";;select 1;;;select 2;", ["select 1", "select 2"]),
    ("-- only a comment", []),
    ("/* only */ ; -- comments\n;", []),
    # single-quoted strings, '' doubling, backslash is literal
    ("select 'a;b'; select 2", ["select 'a;b'", "select 2"]),
    ("select 'it''s;'; select 2", ["select 'it''s;'", "select 2"]),
    ("select ''; select ''''", ["select ''", "select ''''"]),
    ("select 'a\\'; select 2", ["select 'a\\'", "select 2"]),
    ("select '--'; select '/*'", ["select '--'", "select '/*'"]),
    # escape strings: backslash escapes, also the quote
    ("select E'a\\';b'; select 2", ["select E'a\\';b'", "select 2"]),
    ("select e'\\\\'; select 2", ["select e'\\\\'", "select 2"]),
    ("select E'\\\\'';'", ["select E'\\\\'';'"]),
    # an e that ends an identifier does not start an escape string
    ("select 1 as one'a\\'; select 2", ["select 1 as one'a\\'", "select 2"]),
    ("select name'a\\'; select 2", ["select name'a\\'", "select 2"]),
    # a constant continued on the next line keeps its escape mode
    ("select E'x'\n'\\';'", ["select E'x'\n'\\';'"]),
    ("select E'x' -- c\n  '\\';'", ["select E'x' -- c\n  '\\';'"]),
    # ... but not without a newline in between
    ("select E'x' '\\'; select '2'", ["select E'x' '\\'", "select '2'"]),
    # other prefixes read like plain strings
    ("select U&'d\\0061t\\+000061;'; select 2", ["select U&'d\\0061t\\+000061;'", "select 2"]),
    ("select B'1;0', X'1F;', N'n;'; select 2", ["select B'1;0', X'1F;', N'n;'", "select 2"]),
    # quoted identifiers
    ('select 1 as "a;b"; select 2', ['select 1 as "a;b"', "select 2"]),
    ('select 1 as "x""y;"; select 2', ['select 1 as "x""y;"', "select 2"]),
    ('select 1 as "$$"; select 2', ['select 1 as "$$"', "select 2"]),
    ('select 1 as U&"d;"; select 2', ['select 1 as U&"d;"', "select 2"]),
    # dollar quotes
    ("select $$a;b$$; select 2", ["select $$a;b$$", "select 2"]),
    ("select $t$ $$ ; $t$; select 2", ["select $t$ $$ ; $t$", "select 2"]),
    ("select $a$;$a$, $b$$a$;$b$", ["select $a$;$a$, $b$$a$;$b$"]),
    ("select $é$;$é$; select 2", ["select $é$;$é$", "select 2"]),
    ("select $x_1$ ; $x_1$", ["select $x_1$ ; $x_1$"]),
    ("select $abc$ $ab$ ; $abc$", ["select $abc$ $ab$ ; $abc$"]),
    # $ inside an identifier is not a dollar quote; $1 is a parameter
    ("select 1 as a$b$; select 2", ["select 1 as a$b$", "select 2"]),
    ("select $1; select $2", ["select $1", "select $2"]),
    ("select 1$$;$$", ["select 1$$;$$"]),
    # comments
    ("select 1 -- c ; d\n; select 2", ["select 1 -- c ; d", "select 2"]),
    ("select 1 -- c\r; select 2", ["select 1 -- c", "select 2"]),
    ("select 1; -- bye", ["select 1"]),
    ("select /* a /* b ; */ c ; */ 1; select 2", ["select /* a /* b ; */ c ; */ 1", "select 2"]),
    ("select 1/*c*/;select 2", ["select 1/*c*/", "select 2"]),
    ("select 2 /**/ ; select 3", ["select 2 /**/", "select 3"]),
    ("select 1 +/* ; */ 2; select 3", ["select 1 +/* ; */ 2", "select 3"]),
    ("select 1 --; \n - 2", ["select 1 --; \n - 2"]),
    ("/* x */ select 1", ["/* x */ select 1"]),
    # numbers and other tokens
    ("select 1.5e3; select .5; select 0x1F", ["select 1.5e3", "select .5", "select 0x1F"]),
    ("select 'é;'; select 'ü' as \"ß;\"", ["select 'é;'", "select 'ü' as \"ß;\""]),
]


@pytest.mark.parametrize(("sql", "expected"), SPLITS)
def test_split(sql: str, expected: list[str]) -> None:
    assert split_statements(sql) == expected
    assert is_empty(sql) is (not expected)


def test_spans_point_into_the_query() -> None:
    sql = " select 1 ;\n select 'x;y' -- z\n; "
    spans = statement_spans(sql)
    assert spans == [(1, 9), (13, 30)]
    assert [sql[a:b] for a, b in spans] == ["select 1", "select 'x;y' -- z"]


def test_standard_conforming_strings_off() -> None:
    sql = "select 'a\\';b'; select 2"
    assert split_statements(sql, standard_conforming_strings=False) == [
        "select 'a\\';b'",
        "select 2",
    ]
    # With standard strings the quote after the backslash closes the
    # string, and the last quote is left open.
    with pytest.raises(SqlSyntaxError):
        split_statements(sql)


@pytest.mark.parametrize(("sql", "reason", "offset"), ERRORS)
def test_errors(sql: str, reason: str, offset: int) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        split_statements(sql)
    err = info.value
    assert isinstance(err, PygwireError)
    assert (err.reason, err.offset, err.position, err.sqlstate) == (
        reason,
        offset,
        offset + 1,
        "42601",
    )
    with pytest.raises(SqlSyntaxError):
        is_empty(sql)


def test_an_error_anywhere_fails_the_whole_query() -> None:
    # The second statement's error fails the whole query, as on the server.
    with pytest.raises(SqlSyntaxError):
        split_statements("select 1; select $$")


@pytest.mark.parametrize(
    ("statement", "keyword"),
    [
        ("select 1", "SELECT"),
        ("  -- c\n/* d */ BEGIN", "BEGIN"),
        ("With x as (select 1) select * from x", "WITH"),
        ("insert into t values (1)", "INSERT"),
        ("(select 1)", None),
        ('"select" 1', None),
        ("", None),
        ("-- nothing", None),
        (";select 1", None),
        ("é 1", None),
        ("select 'unterminated", "SELECT"),
    ],
)
def test_command_keyword(statement: str, keyword: str | None) -> None:
    assert command_keyword(statement) == keyword
