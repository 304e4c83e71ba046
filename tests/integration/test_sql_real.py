"""The statement splitter against PostgreSQL 18: the server runs exactly the
statements ``split_statements`` finds, and refuses the same texts at the
same places."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from harness.postgres import PostgresServer
from psycopg import pq

from pygwire.sql import (
    SqlSyntaxError,
    is_empty,
    split_statements,
)
from sql_cases import ERRORS

# -- against PostgreSQL 18 ---------------------------------------------------

# Multi-statement strings the server can run; each holds at least one
# semicolon that must not split.
SERVER_QUERIES: list[str] = [
    "select 1; select 2",
    "select 'a;b'; select 'it''s;'",
    "select E'a\\';b'; select 2",
    "select 'a\\'; select 2",
    "select e'\\\\'; select 'x'",
    "select E'\\\\'';'",
    "select name'a\\'; select 2",
    "select E'x'\n'\\';'; select 1",
    "select E'x' -- comment\n  '\\';'; select 1",
    "select 'a'\n'b;'; select 2",
    "select U&'d\\0061t\\+000061;'; select 2",
    "select B'10'::text, X'1F'::text, N'n;'; select 2",
    'select 1 as "a;b"; select 2 as "x""y;"',
    'select 1 as "$$"; select 2',
    "select $$a;b$$; select $tag$ $$ ; $tag$; select 3",
    "select $a$;$a$, $b$$a$;$b$",
    "select $é$;$é$; select 'ü' as \"ß;\"",
    "select $abc$ $ab$ ; $abc$",
    "select 1 as a$b$; select 2",
    "select 1 -- comment ; not a split\n; select 2",
    "select 1 -- comment\r; select 2",
    "select /* a /* nested ; */ still ; */ 1; select 2",
    "select 1/*c*/;select 2 /**/ ; select 3",
    "select 1 +/* ; */ 2; select 3 -- trailing",
    ";;select 1;;;select 2;",
    "select 1; /* only a comment */ ; -- c",
    "select 1.5e3; select .5; select 0x1F",
    "select '--'; select '/*'",
    "create temp table t (a text); insert into t values ('x;y'), ($$;$$);"
    " select * from t order by a",
    "begin; select 1; commit",
    'select 1 as """"; select \'"\'',
]


def _run(conn: pq.abc.PGconn, sql: str) -> list[tuple[object, ...]]:
    """Every result of one simple Query: status, command tag, rows, SQLSTATE."""
    conn.send_query(sql.encode())
    results: list[tuple[object, ...]] = []
    while (res := conn.get_result()) is not None:
        rows = tuple(
            tuple(res.get_value(r, c) for c in range(res.nfields)) for r in range(res.ntuples)
        )
        state = res.error_field(pq.DiagnosticField.SQLSTATE)
        position = res.error_field(pq.DiagnosticField.STATEMENT_POSITION)
        results.append((res.status, res.command_status, rows, state, position))
    return results


@pytest.fixture
def conns(pg18: PostgresServer) -> Iterator[list[pq.abc.PGconn]]:
    """Two fresh sessions: one runs whole queries, the other their pieces."""
    opened = [pq.PGconn.connect(pg18.dsn("trust_user").encode()) for _ in range(2)]
    for conn in opened:
        assert conn.status == pq.ConnStatus.OK, conn.error_message
    yield opened
    for conn in opened:
        conn.finish()


@pytest.mark.parametrize("sql", SERVER_QUERIES)
def test_server_runs_the_same_statements(conns: list[pq.abc.PGconn], sql: str) -> None:
    whole, alone = conns
    results = _run(whole, sql)
    pieces = split_statements(sql)
    ok = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
    assert all(status in ok for status, *_ in results), results
    assert len(results) == len(pieces) >= 1
    for piece, expected in zip(pieces, results, strict=True):
        assert _run(alone, piece) == [expected]


@pytest.mark.parametrize("sql", ["", ";", " ;; ", "-- c", "/* c */;\n-- d"])
def test_server_sees_an_empty_query(conns: list[pq.abc.PGconn], sql: str) -> None:
    results = _run(conns[0], sql)
    assert [r[0] for r in results] == [pq.ExecStatus.EMPTY_QUERY]
    assert split_statements(sql) == []
    assert is_empty(sql)


@pytest.mark.parametrize(("sql", "reason", "offset"), ERRORS)
def test_server_refuses_the_same_text(
    conns: list[pq.abc.PGconn], sql: str, reason: str, offset: int
) -> None:
    # The server lexes the whole string first: nothing runs, one 42601,
    # at the position the splitter reports.
    ((status, _, _, state, position),) = _run(conns[0], sql)
    assert status == pq.ExecStatus.FATAL_ERROR
    with pytest.raises(SqlSyntaxError) as info:
        split_statements(sql)
    assert state == info.value.sqlstate.encode()
    assert position == str(info.value.position).encode()
    assert (info.value.reason, info.value.offset) == (reason, offset)


def test_server_with_standard_conforming_strings_off(conns: list[pq.abc.PGconn]) -> None:
    whole, alone = conns
    for conn in conns:
        _run(conn, "set standard_conforming_strings = off; set escape_string_warning = off")
    sql = "select 'a\\';b'; select 'c\\\\'; select 2"
    results = _run(whole, sql)
    pieces = split_statements(sql, standard_conforming_strings=False)
    assert len(pieces) == len(results) == 3
    for piece, expected in zip(pieces, results, strict=True):
        assert _run(alone, piece) == [expected]


def test_server_counts_combined_pieces(conns: list[pq.abc.PGconn]) -> None:
    # Tricky statements joined by assorted separators: the server runs
    # exactly as many as the splitter finds, in every combination.
    parts = ["select 'a;'", "select $q$;$q$", 'select 1 as ";"', "select E'\\';'", "select 3"]
    separators = [";", " ; ", ";\n-- ;\n;", "; /* ; */ ;"]
    whole = conns[0]
    for combo in itertools.permutations(parts, 3):
        for sep in separators:
            sql = sep.join(combo)
            results = _run(whole, sql)
            assert len(results) == len(split_statements(sql)) == 3, sql
