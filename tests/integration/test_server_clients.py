"""Real clients against pygwire.server: the SQLite demo and the smallest server.

``examples/sqlite_server.py`` runs in this process (a :class:`ServerThread`
on a loop of its own) over a fresh SQLite file; psql and pgbench of
PostgreSQL 18, psycopg, asyncpg, pg8000 and node-postgres connect to it on
a free loopback port.  Every answer is checked against what the client
read: values, their Python types (which say which type OID and format
the server sent), command tags, SQLSTATEs.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pg8000.native
import psycopg
import pytest
from examples.smallest_server import Hello
from examples.sqlite_server import make_server
from psycopg import errors as pg_errors

from peers import NODE_SESSION, node_session, run_tool
from pygwire.messages import CancelRequest
from pygwire.server import Server, ServerThread

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    path = tmp_path_factory.mktemp("sqlite") / "clients.sqlite3"
    import sqlite3  # noqa: PLC0415 - only to seed the file the server serves

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("create table items (id int4 primary key, name text, price numeric, ok bool)")
    db.executemany(
        "insert into items values (?, ?, ?, ?)",
        [(1, "apple", "1.25", 1), (2, "pear", "0.80", 0), (3, "plum", "2.00", 1)],
    )
    db.close()
    with ServerThread(make_server(path), "127.0.0.1", 0) as running:
        yield running


def _env(server: ServerThread) -> dict[str, str]:
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "PGUSER": "demo",
        "PGDATABASE": "demo",
    }


def _dsn(server: ServerThread) -> str:
    return f"host=127.0.0.1 port={server.port} user=demo dbname=demo sslmode=disable"


# -- psql -----------------------------------------------------------------------------------


def test_psql_c(sqlite_server: ServerThread) -> None:
    result = run_tool(
        "psql",
        ["-X", "-A", "-t", "-c", "select id, name, price, ok from items order by id"],
        _env(sqlite_server),
    )
    assert result.stdout.splitlines() == [
        "1|apple|1.25|t",
        "2|pear|0.8|f",
        "3|plum|2|t",
    ]  # SQLite stores 2.00 as the integer 2


def test_psql_f_script(sqlite_server: ServerThread, tmp_path: Path) -> None:
    script = tmp_path / "script.sql"
    script.write_text(
        "create table psql_t (n int4, word text);\n"
        "insert into psql_t values (1, 'one'), (2, 'two; not a separator');\n"
        "begin;\n"
        "update psql_t set n = n * 10 where word = 'one';\n"
        "commit;\n"
        "begin;\n"
        "delete from psql_t;\n"
        "rollback;\n"
        "select n, word from psql_t order by n;\n"
        "select $$dollar 'quoted'$$ as d; -- a comment; with a semicolon\n"
        "show DateStyle;\n"
    )
    result = run_tool(
        "psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", str(script)], _env(sqlite_server)
    )
    assert result.stdout.splitlines() == [
        "CREATE TABLE",
        "INSERT 0 2",
        "BEGIN",
        "UPDATE 1",
        "COMMIT",
        "BEGIN",
        "DELETE 2",
        "ROLLBACK",
        "2|two; not a separator",
        "10|one",
        "dollar 'quoted'",
        "ISO, MDY",
    ]


def test_multi_statement_query_is_one_transaction(sqlite_server: ServerThread) -> None:
    env = _env(sqlite_server)
    run_tool("psql", ["-X", "-q", "-c", "create table multi_t (n int4)"], env)
    failing = "insert into multi_t values (1); insert into no_such_table values (2)"
    with pytest.raises(AssertionError, match="no such table"):
        run_tool("psql", ["-X", "-c", failing], env)
    # BEGIN inside the string turns the implicit block into the explicit one.
    run_tool("psql", ["-X", "-c", "insert into multi_t values (3); begin; "
                      "insert into multi_t values (4); commit"], env)  # fmt: skip
    count = run_tool("psql", ["-X", "-A", "-t", "-c", "select n from multi_t order by n"], env)
    assert count.stdout.split() == ["3", "4"]


def test_psql_error_fields(sqlite_server: ServerThread) -> None:
    result = subprocess.run(
        [str(_psql()), "-X", "-v", "VERBOSITY=verbose", "-c", "select * from no_such_table"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "PGSSLMODE": "disable", **_env(sqlite_server)},
        check=False,
    )
    assert result.returncode == 1
    assert "ERROR:  42P01:" in result.stderr


def _psql() -> Path:
    from peers import pg_tool  # noqa: PLC0415

    return pg_tool("psql")


# -- psycopg --------------------------------------------------------------------------------


def test_psycopg_text_and_binary_parameters(sqlite_server: ServerThread) -> None:
    with psycopg.connect(_dsn(sqlite_server), autocommit=True) as conn:
        day = datetime.date(2024, 2, 29)
        for binary in (False, True):
            cur = conn.execute(
                "select %s::int4 + 1 as n, %s::text as t, %s::date as d, %s::numeric as x",
                (41, "x", day, decimal.Decimal("1.5")),
                binary=binary,
            )
            assert cur.fetchall() == [(42, "x", day, decimal.Decimal("1.5"))]
            assert [c.name for c in cur.description or ()] == ["n", "t", "d", "x"]
            assert cur.pgresult is not None
            assert cur.pgresult.fformat(0) == (1 if binary else 0)
        cur = conn.execute("select name, ok from items where id = %s", (3,))
        assert cur.fetchone() == ("plum", True)


def test_psycopg_pipeline(sqlite_server: ServerThread) -> None:
    with psycopg.connect(_dsn(sqlite_server), autocommit=True) as conn:
        conn.execute("create table pipe_t (n int4, t text)")
        with conn.pipeline():
            cur = conn.cursor()
            cur.executemany("insert into pipe_t values (%s, %s)", [(i, str(i)) for i in range(50)])
            first = conn.execute("select count(*) from pipe_t")
            second = conn.execute("select sum(n) from pipe_t where n >= %s", (25,))
        assert first.fetchone() == (50,)
        assert second.fetchone() == (sum(range(25, 50)),)

        # An error in a pipeline: the rest up to the Sync is skipped.
        def failing_pipeline() -> None:
            with conn.pipeline():
                conn.execute("insert into pipe_t values (100, 'x')")
                conn.execute("select * from no_such_table")
                conn.execute("insert into pipe_t values (101, 'y')")

        with pytest.raises(pg_errors.UndefinedTable):
            failing_pipeline()
        # The batch up to the Sync was one implicit transaction: the insert
        # before the error is rolled back too, as in PostgreSQL.
        assert conn.execute("select count(*) from pipe_t where n >= 100").fetchone() == (0,)
        assert conn.execute("select count(*) from pipe_t").fetchone() == (50,)


def test_psycopg_copy(sqlite_server: ServerThread) -> None:
    rows = [(i, f"row\t{i}\n", None if i % 3 == 0 else i * 1.5) for i in range(200)]
    with psycopg.connect(_dsn(sqlite_server), autocommit=True) as conn:
        conn.execute("create table copy_t (n int4, t text, f float8)")
        with conn.cursor() as cur:
            with cur.copy("copy copy_t (n, t, f) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            assert cur.rowcount == 200
            got: list[tuple[object, ...]] = []
            with cur.copy("copy copy_t to stdout") as copy:
                copy.set_types(["int4", "text", "float8"])
                got.extend(copy.rows())
            assert sorted(got, key=lambda r: r[0]) == rows  # type: ignore[arg-type, return-value]
        with conn.cursor() as cur:
            with cur.copy("copy (select n from copy_t where n < 3 order by n) to stdout") as copy:
                data = b"".join(bytes(b) for b in copy)
            assert data == b"0\n1\n2\n"


def test_psycopg_binary_copy_out(sqlite_server: ServerThread) -> None:
    # psycopg reads each CopyData of a binary COPY TO STDOUT as whole rows,
    # the header in the first, as PostgreSQL sends them; also with no rows.
    with psycopg.connect(_dsn(sqlite_server), autocommit=True) as conn:
        conn.execute("create table copy_b (n int4, t text)")
        conn.execute("insert into copy_b values (1, 'one'), (2, 'two')")
        with conn.cursor() as cur:
            with cur.copy("copy copy_b to stdout (format binary)") as copy:
                copy.set_types(["int4", "text"])
                got = list(copy.rows())
            assert sorted(got) == [(1, "one"), (2, "two")]
            empty = "copy (select n from copy_b where n > 5) to stdout (format binary)"
            with cur.copy(empty) as copy:
                copy.set_types(["int4"])
                assert list(copy.rows()) == []
            assert cur.rowcount == 0


def test_psycopg_server_side_cursor(sqlite_server: ServerThread) -> None:
    with psycopg.connect(_dsn(sqlite_server)) as conn:
        conn.execute("create table big_t (n int4)")
        conn.cursor().executemany("insert into big_t values (%s)", [(i,) for i in range(1000)])
        conn.commit()
        with conn.cursor(name="walker") as cur:
            cur.itersize = 64
            cur.execute("select n from big_t order by n")
            assert cur.fetchone() == (0,)
            assert cur.fetchmany(3) == [(1,), (2,), (3,)]
            rest = [n for (n,) in cur]
        assert rest == list(range(4, 1000))
        conn.commit()


def test_psycopg_cancel(sqlite_server: ServerThread) -> None:
    with psycopg.connect(_dsn(sqlite_server), autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        try:
            with pytest.raises(pg_errors.QueryCanceled) as info:
                conn.execute("select pg_sleep(20)")
        finally:
            timer.cancel()
        assert info.value.sqlstate == "57014"
        # The session goes on.
        assert conn.execute("select 7").fetchone() == (7,)


def test_failed_transaction_block(sqlite_server: ServerThread) -> None:
    with psycopg.connect(_dsn(sqlite_server)) as conn:
        with pytest.raises(pg_errors.UndefinedColumn):
            conn.execute("select nosuch from items")
        with pytest.raises(pg_errors.InFailedSqlTransaction):
            conn.execute("select 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("select 2").fetchone() == (2,)


# -- asyncpg --------------------------------------------------------------------------------


def test_asyncpg(sqlite_server: ServerThread) -> None:
    async def flow() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=sqlite_server.port, user="demo", database="demo",
            ssl=False, timeout=TIMEOUT,
        )  # fmt: skip
        try:
            stmt = await conn.prepare("select id, name, price from items where id = $1")
            assert [a.name for a in stmt.get_attributes()] == ["id", "name", "price"]
            assert [t.name for t in stmt.get_parameters()] == ["int4"]
            record = await stmt.fetchrow(2)
            assert record is not None
            assert tuple(record) == (2, "pear", decimal.Decimal("0.8"))
            rows = await conn.fetch("select id, ok from items where ok = $1 order by id", True)
            assert [tuple(r) for r in rows] == [(1, True), (3, True)]
            await conn.execute("create table apg_t (n int4, t text)")
            await conn.executemany("insert into apg_t values ($1, $2)", [(1, "a"), (2, "b")])
            tag = await conn.copy_records_to_table("apg_t", records=[(3, "c"), (4, None)])
            assert tag == "COPY 2"
            rows = await conn.fetch("select n, t from apg_t order by n")
            assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c"), (4, None)]
            assert await conn.fetchval("select $1::int8 * 2", 2**40) == 2**41
            # A cursor: Execute with a row limit, PortalSuspended, Execute again.
            async with conn.transaction():
                iterable = conn.cursor("select id from items order by id", prefetch=2)
                assert [r["id"] async for r in iterable] == [1, 2, 3]
                cursor = await conn.cursor("select id from items order by id")
                assert [r["id"] for r in await cursor.fetch(2)] == [1, 2]
                assert [r["id"] for r in await cursor.fetch(5)] == [3]

            # A CancelRequest with this connection's key: the query gets 57014.
            pid = conn.get_server_pid()
            secret = conn._protocol.backend_secret
            sleeper = asyncio.ensure_future(conn.fetchval("select pg_sleep(20)"))
            await asyncio.sleep(0.5)
            _, writer = await asyncio.open_connection("127.0.0.1", sqlite_server.port)
            key = (secret & 0xFFFFFFFF).to_bytes(4, "big")
            writer.write(CancelRequest(process_id=pid, secret_key=key).to_wire())
            await writer.drain()
            with pytest.raises(asyncpg.QueryCanceledError) as info:
                await asyncio.wait_for(sleeper, TIMEOUT)
            assert info.value.sqlstate == "57014"
            writer.close()
            assert await conn.fetchval("select 5") == 5
        finally:
            await conn.close()

    asyncio.run(flow())


# -- pg8000 ---------------------------------------------------------------------------------


def test_pg8000(sqlite_server: ServerThread) -> None:
    conn = pg8000.native.Connection("demo", host="127.0.0.1", port=sqlite_server.port)
    try:
        assert conn.run("select name from items where id = :id", id=1) == [["apple"]]
        conn.run("create table p8_t (n int4, t text)")
        conn.run("insert into p8_t values (:n, :t)", n=1, t="one")
        conn.run("begin")
        conn.run("insert into p8_t values (:n, :t)", n=2, t="two")
        conn.run("rollback")
        assert conn.run("select n, t from p8_t order by n") == [[1, "one"]]
        with pytest.raises(pg8000.native.DatabaseError) as info:
            conn.run("select * from no_such_table")
        assert info.value.args[0]["C"] == "42P01"
        assert conn.run("select 3") == [[3]]
    finally:
        conn.close()


# -- node-postgres --------------------------------------------------------------------------


def test_node_postgres(sqlite_server: ServerThread) -> None:
    assert node_session(_env(sqlite_server)) == NODE_SESSION


# -- pgbench --------------------------------------------------------------------------------


def test_pgbench(sqlite_server: ServerThread, tmp_path: Path) -> None:
    run_tool(
        "psql",
        ["-X", "-q", "-c", "create table accounts (aid int4 primary key, abalance int4)"],
        _env(sqlite_server),
    )
    values = ", ".join(f"({i}, 0)" for i in range(1, 101))
    run_tool(
        "psql", ["-X", "-q", "-c", f"insert into accounts values {values}"], _env(sqlite_server)
    )
    script = tmp_path / "custom.sql"
    script.write_text(
        "\\set aid random(1, 100)\n"
        "select abalance from accounts where aid = :aid;\n"
        "update accounts set abalance = abalance + 1 where aid = :aid;\n"
    )
    result = run_tool(
        "pgbench", ["-n", "-f", str(script), "-c", "8", "-T", "10"], _env(sqlite_server)
    )
    done = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    assert done is not None, result.stdout
    assert int(done[1]) > 0
    assert failed is not None, result.stdout
    assert failed[1] == "0", result.stdout
    total = run_tool(
        "psql", ["-X", "-A", "-t", "-c", "select sum(abalance) from accounts"], _env(sqlite_server)
    )
    # Every transaction's update landed exactly once.
    assert int(total.stdout.strip()) == int(done[1])


# -- the smallest server --------------------------------------------------------------------


def test_smallest_server_with_psql() -> None:
    with ServerThread(Server(Hello), "127.0.0.1", 0) as running:
        env = {**_env(running), "PGUSER": "anyone"}
        now = run_tool("psql", ["-X", "-A", "-t", "-c", "select now()"], env).stdout.strip()
        stamp = datetime.datetime.fromisoformat(now)
        assert abs(stamp - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(minutes=5)
        rows = run_tool("psql", ["-X", "-A", "-t", "-c", "select words"], env).stdout
        assert rows.splitlines() == ["hello|1", "world|2"]
        with psycopg.connect(f"host=127.0.0.1 port={running.port} user=x sslmode=disable") as conn:
            assert conn.execute("select %s", (12,)).fetchone() == (12,)
        bad = subprocess.run(
            [str(_psql()), "-X", "-c", "drop everything"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "PGSSLMODE": "disable", **env},
            check=False,
        )
        assert bad.returncode == 1
        assert "cannot run: drop everything" in bad.stderr


def test_smallest_server_with_asyncpg() -> None:
    # asyncpg prepares every statement (Parse, Describe S) before it binds
    # it, and decodes rows by the RowDescription it got then: a handler
    # with no describe() of its own must still describe its SELECTs truly.
    async def flow(port: int) -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="anyone", ssl=False, timeout=TIMEOUT
        )
        try:
            now = await conn.fetchval("select now()")
            assert isinstance(now, datetime.datetime)
            assert abs(now - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(minutes=5)
            rows = await conn.fetch("select words")
            assert [tuple(r) for r in rows] == [("hello", 1), ("world", 2)]
            # An untyped $1 is text, as PostgreSQL types it.
            assert await conn.fetchval("select $1", "five") == "five"
            with pytest.raises(asyncpg.PostgresSyntaxError, match="cannot run: drop everything"):
                await conn.execute("drop everything", timeout=TIMEOUT)
            assert await conn.fetchval("select now()") is not None
        finally:
            await conn.close()

    with ServerThread(Server(Hello), "127.0.0.1", 0) as running:
        asyncio.run(flow(running.port))


def test_readme_shows_the_smallest_server() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (root / "examples" / "smallest_server.py").read_text()
    assert code in (root / "README.md").read_text()
    assert len(code.splitlines()) <= 22
